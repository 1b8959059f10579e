//! The node's counters, and the labels that name dial failures and session ends in them
//! and in the Prometheus metrics.

use std::{collections::BTreeMap, fmt};

use crate::{
    eth::EthError,
    pool::{PoolStats, SessionClose},
    rlpx::{DisconnectReason, RlpxError},
};

/// Counters and gauges of a running node.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NodeStats {
    /// Peers that dialed us.
    pub inbound: usize,
    /// Peers we dialed.
    pub outbound: usize,
    /// Nodes waiting to be dialed.
    pub candidates: usize,
    /// The pool's counters (dials, failures by backoff class, bans, rotations).
    pub pool: PoolStats,
    /// Failed dials by cause: the TCP connect, the RLPx handshake, the eth `Status`, or our
    /// own pool refusing the finished session. Their sum can exceed
    /// `pool.dial_failures`: a session our pool refused counts here but is not a failure of
    /// the remote.
    pub dial_failures: BTreeMap<DialFailure, u64>,
    /// Inbound TCP connections accepted by the listener (before any handshake).
    pub inbound_connections: u64,
    /// Inbound handshakes started: connections the pool let through its per-IP throttle
    /// and pending-handshake cap. The rest were closed before any cryptography.
    pub inbound_handshakes: u64,
}

/// Why a dial did not end in an admitted session. The label (see [`Self::as_str`]) is
/// the `reason` of the `ethp2p_dial_failures_total` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum DialFailure {
    /// The remote refused the TCP connection.
    ConnectionRefused,
    /// The TCP connect timed out.
    ConnectTimeout,
    /// Another socket error (unreachable, reset, closed).
    Io,
    /// The RLPx or eth handshake did not finish in time.
    HandshakeTimeout,
    /// The ECIES or Hello exchange failed (bad packet, closed half-way).
    Handshake,
    /// The remote said it has too many peers.
    TooManyPeers,
    /// The remote disconnected for another reason.
    Disconnected,
    /// No shared capability or eth version.
    UselessPeer,
    /// Its `Status` names another network, genesis or fork.
    WrongChain,
    /// It is us, or not the node we dialed.
    Identity,
    /// It broke the protocol.
    ProtocolBreach,
    /// The handshake succeeded but our pool refused the session (already connected, no
    /// slot left).
    Refused,
}

impl DialFailure {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectionRefused => "connection_refused",
            Self::ConnectTimeout => "connect_timeout",
            Self::Io => "io",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::Handshake => "handshake",
            Self::TooManyPeers => "too_many_peers",
            Self::Disconnected => "disconnected",
            Self::UselessPeer => "useless_peer",
            Self::WrongChain => "wrong_chain",
            Self::Identity => "identity",
            Self::ProtocolBreach => "protocol_breach",
            Self::Refused => "refused",
        }
    }

    /// The cause of a failed dial or RLPx handshake.
    pub fn of_rlpx(error: &RlpxError) -> Self {
        match error {
            RlpxError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Self::ConnectionRefused,
            RlpxError::Io(_) => Self::Io,
            RlpxError::ConnectTimeout => Self::ConnectTimeout,
            RlpxError::HandshakeTimeout => Self::HandshakeTimeout,
            RlpxError::ClosedDuringHandshake | RlpxError::Ecies(_) | RlpxError::HelloExpected(_) => {
                Self::Handshake
            }
            RlpxError::Disconnected(DisconnectReason::TooManyPeers) => Self::TooManyPeers,
            RlpxError::Disconnected(_) => Self::Disconnected,
            RlpxError::NoSharedCapabilities | RlpxError::IncompatibleVersion(_) => Self::UselessPeer,
            RlpxError::ConnectedToSelf | RlpxError::UnexpectedIdentity => Self::Identity,
            RlpxError::Shunned => Self::Refused,
            _ => Self::ProtocolBreach,
        }
    }

    /// The cause of a failed eth `Status` handshake (or of the RLPx one below it).
    pub fn of_eth(error: &EthError) -> Self {
        match error {
            EthError::Rlpx(e) => Self::of_rlpx(e),
            EthError::HandshakeTimeout => Self::HandshakeTimeout,
            EthError::NoSharedVersion => Self::UselessPeer,
            EthError::Status(_) => Self::WrongChain,
            EthError::SessionClosed => Self::Io,
            _ => Self::ProtocolBreach,
        }
    }
}

impl fmt::Display for DialFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The label of a session's end: `local`, `error`, `closed` (the socket closed without a
/// Disconnect), or the remote's Disconnect reason (`too_many_peers`, `useless_peer`, ...).
pub(crate) fn close_label(close: &SessionClose) -> &'static str {
    match close {
        SessionClose::Local => "local",
        SessionClose::Error { .. } => "error",
        SessionClose::Remote(None) => "closed",
        SessionClose::Remote(Some(reason)) => disconnect_label(*reason),
    }
}

/// A metric label per rlpx.md Disconnect reason.
pub(crate) fn disconnect_label(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::DisconnectRequested => "disconnect_requested",
        DisconnectReason::TcpSubsystemError => "tcp_error",
        DisconnectReason::ProtocolBreach => "protocol_breach",
        DisconnectReason::UselessPeer => "useless_peer",
        DisconnectReason::TooManyPeers => "too_many_peers",
        DisconnectReason::AlreadyConnected => "already_connected",
        DisconnectReason::IncompatibleP2PProtocolVersion => "incompatible_version",
        DisconnectReason::NullNodeIdentity => "null_identity",
        DisconnectReason::ClientQuitting => "client_quitting",
        DisconnectReason::UnexpectedHandshakeIdentity => "unexpected_identity",
        DisconnectReason::ConnectedToSelf => "connected_to_self",
        DisconnectReason::PingTimeout => "ping_timeout",
        DisconnectReason::SubprotocolSpecific => "subprotocol_specific",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eth::StatusError;

    #[test]
    fn failures_are_classified() {
        let refused = RlpxError::Io(std::io::ErrorKind::ConnectionRefused.into());
        assert_eq!(DialFailure::of_rlpx(&refused), DialFailure::ConnectionRefused);
        assert_eq!(
            DialFailure::of_rlpx(&RlpxError::Disconnected(DisconnectReason::TooManyPeers)),
            DialFailure::TooManyPeers
        );
        let status = EthError::Status(StatusError::NetworkIdMismatch { expected: 1, got: 5 });
        assert_eq!(DialFailure::of_eth(&status), DialFailure::WrongChain);
        assert_eq!(DialFailure::of_eth(&EthError::NoSharedVersion), DialFailure::UselessPeer);
        assert_eq!(
            DialFailure::of_eth(&EthError::Rlpx(RlpxError::ConnectTimeout)).as_str(),
            "connect_timeout"
        );
    }

    #[test]
    fn close_labels() {
        assert_eq!(close_label(&SessionClose::Local), "local");
        assert_eq!(close_label(&SessionClose::Remote(None)), "closed");
        assert_eq!(
            close_label(&SessionClose::Remote(Some(DisconnectReason::from_code(0x04)))),
            "too_many_peers"
        );
        assert_eq!(close_label(&SessionClose::Remote(Some(DisconnectReason::from_code(0x77)))), "other");
    }
}
