//! Errors of the RLPx layer, each classified for the pool: [`RlpxError::should_ban`] and
//! [`RlpxError::backoff`] follow reth's classes (`crates/net/network/src/error.rs`), so a
//! peer that sends garbage is treated like reth would treat it.

use super::p2p::DisconnectReason;

/// How long the pool should wait before dialing a peer again after a session failed.
/// The levels mirror reth's `BackoffKind` (low 30 s, medium 3 min, high 15 min by default);
/// the pool picks the durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Backoff {
    /// No backoff: the failure says nothing about the peer (a local fault, or a clean close).
    None,
    /// A transient failure: too many peers, a timeout, a reset connection.
    Low,
    /// Something is wrong with the peer or the path to it: bad messages, a lost MAC.
    Medium,
    /// The peer is useless to us or broke the protocol: don't come back soon.
    High,
}

/// Why an RLPx handshake or session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RlpxError {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The TCP connection was not established within `RlpxConfig::connect_timeout`.
    #[error("TCP connect timed out")]
    ConnectTimeout,
    /// The ECIES and Hello exchange did not finish within `RlpxConfig::handshake_timeout`.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// No frame arrived within `RlpxConfig::idle_timeout`.
    #[error("no frame received within the idle timeout")]
    IdleTimeout,
    /// The peer did not answer a Ping within `RlpxConfig::ping_timeout`.
    #[error("peer did not answer ping")]
    PingTimeout,
    /// The connection closed before the handshake finished.
    #[error("connection closed during the handshake")]
    ClosedDuringHandshake,
    /// The ECIES handshake failed.
    #[error("ECIES handshake: {0}")]
    Ecies(#[from] EciesError),
    /// A frame header's MAC did not verify.
    #[error("frame header MAC mismatch")]
    HeaderMacMismatch,
    /// A frame body's MAC did not verify.
    #[error("frame body MAC mismatch")]
    BodyMacMismatch,
    /// A frame to send is larger than the 24-bit length field allows.
    #[error("frame of {0} bytes exceeds the 16 MiB frame cap")]
    FrameTooLarge(usize),
    /// A frame had no message id, or a message could not be decoded as RLP.
    #[error("malformed message: {0}")]
    Rlp(#[from] alloy_rlp::Error),
    /// A p2p message (Hello, Ping, ...) is larger than the base protocol's 2 KiB limit.
    #[error("p2p message of {0} bytes exceeds the base protocol limit")]
    P2pMessageTooLarge(usize),
    /// A snappy message declares a decompressed size over the 16 MiB cap (a snappy bomb).
    #[error("snappy message declares {0} bytes after decompression, over the 16 MiB cap")]
    DecompressedTooLarge(usize),
    /// A message could not be snappy-decompressed.
    #[error("snappy: {0}")]
    Snappy(#[from] snap::Error),
    /// The first message after the ECIES handshake was not Hello.
    #[error("expected Hello, got message id {0:#x}")]
    HelloExpected(u64),
    /// The remote sent a second Hello.
    #[error("unexpected Hello after the handshake")]
    UnexpectedHello,
    /// The remote's Hello names a node id that is not 64 bytes.
    #[error("Hello node id is {0} bytes, expected 64")]
    BadNodeIdLength(usize),
    /// The remote's Hello names a different node id than the key it authenticated with.
    #[error("Hello node id does not match the ECIES identity")]
    UnexpectedIdentity,
    /// The remote is this node itself (we dialed our own address).
    #[error("connected to self")]
    ConnectedToSelf,
    /// A capability name in Hello is longer than we accept.
    #[error("capability name of {0} bytes is too long")]
    CapabilityNameTooLong(usize),
    /// The remote's base protocol version is below 4 (no version below 4 was ever deployed).
    #[error("incompatible p2p protocol version {0}")]
    IncompatibleVersion(u64),
    /// The peer shares no capability with us.
    #[error("no shared capability")]
    NoSharedCapabilities,
    /// A message id beyond every negotiated capability.
    #[error("message id {0:#x} belongs to no negotiated capability")]
    UnknownMessageId(u64),
    /// We were asked to send a message for a capability index or id that was not negotiated.
    #[error("capability {cap} message id {id:#x} was not negotiated")]
    InvalidSend {
        /// Index into the shared capabilities.
        cap: usize,
        /// The message id relative to the capability.
        id: u8,
    },
    /// The remote sent Disconnect.
    #[error("peer disconnected: {0}")]
    Disconnected(DisconnectReason),
    /// The local side disconnected the session (the session is closed).
    #[error("session closed locally")]
    Closed,
    /// An [`RlpxConfig`](super::RlpxConfig) failed its checks.
    #[error("invalid RLPx configuration: {0}")]
    InvalidConfig(String),

    /// The remote's key failed a handshake with us recently (another chain, garbage, a
    /// stall): its auth was read and the connection closed without an ack.
    #[error("key refused after a recent failed handshake")]
    Shunned,
}

impl RlpxError {
    /// Whether the pool should ban the peer: it did something no honest implementation does
    /// (a snappy bomb, a Hello that lies about its identity, an absurd capability name, a message
    /// id outside every capability it negotiated).
    pub fn should_ban(&self) -> bool {
        matches!(
            self,
            Self::DecompressedTooLarge(_)
                | Self::UnexpectedIdentity
                | Self::BadNodeIdLength(_)
                | Self::CapabilityNameTooLong(_)
                | Self::UnexpectedHello
                | Self::UnknownMessageId(_)
        )
    }

    /// How long to wait before dialing the peer again, in reth's classes.
    pub fn backoff(&self) -> Backoff {
        use std::io::ErrorKind;
        match self {
            Self::Io(e) => match e.kind() {
                ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof => Backoff::Low,
                ErrorKind::ConnectionRefused => Backoff::High,
                _ => Backoff::Medium,
            },
            Self::HandshakeTimeout
            | Self::IdleTimeout
            | Self::PingTimeout
            | Self::ClosedDuringHandshake
            | Self::Ecies(_) => Backoff::Low,
            Self::ConnectTimeout
            | Self::HeaderMacMismatch
            | Self::BodyMacMismatch
            | Self::Rlp(_)
            | Self::P2pMessageTooLarge(_)
            | Self::Snappy(_)
            | Self::HelloExpected(_)
            | Self::UnknownMessageId(_) => Backoff::Medium,
            Self::DecompressedTooLarge(_)
            | Self::UnexpectedHello
            | Self::BadNodeIdLength(_)
            | Self::UnexpectedIdentity
            | Self::CapabilityNameTooLong(_)
            | Self::IncompatibleVersion(_)
            | Self::ConnectedToSelf
            | Self::NoSharedCapabilities => Backoff::High,
            Self::Disconnected(reason) => reason.backoff(),
            // Shunned: the refusal already is the backoff; a retry does not extend it.
            Self::FrameTooLarge(_)
            | Self::InvalidSend { .. }
            | Self::Closed
            | Self::InvalidConfig(_)
            | Self::Shunned => Backoff::None,
        }
    }

    /// The Disconnect reason we send the peer when this error ends a session, if the
    /// connection can still carry one.
    pub(crate) fn disconnect_reason(&self) -> Option<DisconnectReason> {
        Some(match self {
            Self::PingTimeout | Self::IdleTimeout => DisconnectReason::PingTimeout,
            Self::UnexpectedIdentity => DisconnectReason::UnexpectedHandshakeIdentity,
            Self::IncompatibleVersion(_) => DisconnectReason::IncompatibleP2PProtocolVersion,
            Self::NoSharedCapabilities => DisconnectReason::UselessPeer,
            Self::ConnectedToSelf => DisconnectReason::ConnectedToSelf,
            Self::Rlp(_)
            | Self::P2pMessageTooLarge(_)
            | Self::DecompressedTooLarge(_)
            | Self::Snappy(_)
            | Self::HelloExpected(_)
            | Self::UnexpectedHello
            | Self::BadNodeIdLength(_)
            | Self::CapabilityNameTooLong(_) => DisconnectReason::ProtocolBreach,
            // A message id beyond every negotiated capability's space (say, eth/71's 0x12 on an
            // eth/70 session): go-ethereum's read loop fails on it ("msg code out of range"),
            // which it classes `DiscNetworkError` and closes the connection without writing a
            // Disconnect (`rlpxTransport.close`). We do the same; the error still bans.
            Self::UnknownMessageId(_) => return None,
            _ => return None,
        })
    }
}

/// Why the ECIES (auth/ack) part of the handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EciesError {
    /// The packet is shorter than an ECIES envelope or its declared size.
    #[error("handshake packet too short ({0} bytes)")]
    TooShort(usize),
    /// The EIP-8 size prefix declares more than we accept.
    #[error("handshake packet declares {0} bytes, over the limit")]
    TooLarge(usize),
    /// The ECIES envelope's public key is not a point on the curve.
    #[error("invalid public key in handshake")]
    InvalidPublicKey,
    /// The ECIES tag did not verify: the packet was not encrypted to our key, or was altered.
    #[error("handshake packet does not decrypt (bad ECIES tag)")]
    BadTag,
    /// The auth signature does not recover to a public key.
    #[error("invalid auth signature")]
    InvalidSignature,
    /// The decrypted auth or ack body is malformed.
    #[error("malformed handshake body: {0}")]
    Malformed(&'static str),
    /// An EIP-8 body is not valid RLP.
    #[error("malformed handshake RLP: {0}")]
    Rlp(#[from] alloy_rlp::Error),
    /// The handshake methods were called in the wrong order (a local bug).
    #[error("handshake step out of order")]
    OutOfOrder,
}
