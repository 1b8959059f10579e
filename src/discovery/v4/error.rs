//! Errors of the discv4 layer.
//!
//! [`PacketError`] says why a datagram was dropped: the service counts each kind and never
//! answers a malformed packet. [`Discv4Error`] is what the [`Discv4`](super::Discv4) handle
//! returns to its caller.

use std::net::SocketAddr;

/// Why a datagram is not a valid discv4 packet. None of these is a local fault; the service
/// drops the datagram (or hands it to discv5 when the port is shared) and counts it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// Shorter than `hash || signature || type` (98 bytes).
    #[error("packet too short: {0} bytes")]
    TooShort(usize),
    /// Longer than the 1280-byte limit of discv4.md.
    #[error("packet too large: {0} bytes")]
    TooLarge(usize),
    /// The leading keccak256 does not cover the rest of the packet: not a discv4 packet (or
    /// corrupted). When the port is shared this is what discv5 packets look like.
    #[error("packet hash mismatch")]
    HashMismatch,
    /// The signature does not recover to a public key.
    #[error("invalid signature")]
    BadSignature,
    /// The packet type byte is not one this implementation knows (discv4.md: ignored).
    #[error("unknown packet type {0:#04x}")]
    UnknownType(u8),
    /// The RLP payload does not decode as the packet type's fields.
    #[error("malformed payload: {0}")]
    Rlp(#[from] alloy_rlp::Error),
    /// An endpoint's IP is neither 4 nor 16 bytes.
    #[error("IP address of {0} bytes")]
    BadIpLength(usize),
    /// A node id in Neighbours or FindNode is not 64 bytes.
    #[error("node id of {0} bytes")]
    BadNodeIdLength(usize),
    /// The ENR in an ENRResponse does not decode or its signature is wrong.
    #[error("invalid ENR: {0}")]
    BadEnr(String),
}

impl PacketError {
    /// Whether the datagram could be a packet of another protocol sharing the port (discv5):
    /// true when it does not even carry a valid discv4 hash. A datagram with a good hash but
    /// a bad body is a broken discv4 packet, not a discv5 one.
    pub fn is_foreign(&self) -> bool {
        matches!(self, Self::TooShort(_) | Self::TooLarge(_) | Self::HashMismatch)
    }
}

/// An error returned by the [`Discv4`](super::Discv4) handle or while starting the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Discv4Error {
    /// Binding or reading the UDP socket failed.
    #[error("discv4 socket {addr}: {source}")]
    Io {
        /// The address being bound or used.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The service task has stopped (after `shutdown()`, or because its socket failed).
    #[error("discv4 service is not running")]
    ServiceStopped,
    /// The configuration is inconsistent.
    #[error("invalid discv4 config: {0}")]
    Config(String),
    /// The node did not answer in time, or answered with something we could not use.
    #[error("request to {0} timed out")]
    Timeout(SocketAddr),
    /// The node has no endpoint proof with us and we could not get one.
    #[error("could not bond with {0}")]
    NotBonded(SocketAddr),
}
