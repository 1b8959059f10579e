//! The pool's vocabulary: what it tells the node ([`PoolAction`], [`PoolEvent`]), what it
//! shows ([`PeerSnapshot`], [`PoolStats`]), and the words for a session's direction and end
//! ([`Direction`], [`SessionClose`]).

// Crate-internal: `pub` items here are re-exported by `pool` only where the public API or the
// `test-utils` feature needs them.
#![allow(unreachable_pub)]
#![cfg_attr(not(test), allow(dead_code))]

use std::{net::SocketAddr, time::Duration};

#[cfg(doc)]
use super::PoolState;
use super::{
    dial::{Backoff, DialTarget},
    latency::PeerLatency,
    reputation::{PeerKind, Reputation},
};
use crate::{
    eth::{BlockRange, EthError, EthVersion},
    record::PeerId,
    rlpx::{DisconnectReason, RlpxError},
};

/// Who opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Direction {
    /// The remote dialed us.
    Inbound,
    /// We dialed the remote.
    Outbound,
}

/// How a session ended, as the session layer reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionClose {
    /// We closed it.
    Local,
    /// The remote sent a p2p Disconnect with this reason, or closed the socket (`None`).
    Remote(Option<DisconnectReason>),
    /// It failed; the failing layer classified the error (`backoff()`, `should_ban()`).
    Error {
        /// How long to wait before redialing.
        backoff: Backoff,
        /// The error is a protocol breach that deserves a ban.
        ban: bool,
    },
}

impl SessionClose {
    /// How a session that ended with `error` reads to the pool. Nothing is reinterpreted:
    /// the error answers [`EthError::backoff`] and [`EthError::should_ban`] itself; the
    /// remote's Disconnect is kept as such so it is scored as a drop, not an error.
    pub fn from_error(error: &EthError) -> Self {
        match error {
            EthError::SessionClosed | EthError::Rlpx(RlpxError::Closed) => Self::Local,
            EthError::Rlpx(RlpxError::Disconnected(reason)) => Self::Remote(Some(*reason)),
            e => Self::Error { backoff: e.backoff(), ban: e.should_ban() },
        }
    }

    /// Backoff before a redial: the remote's reason classifies itself
    /// ([`DisconnectReason::backoff`]); a clean close still waits out the remote's inbound
    /// throttle (reth).
    pub(super) fn backoff(self) -> Backoff {
        match self {
            Self::Local | Self::Remote(None) => Backoff::Low,
            Self::Remote(Some(reason)) => reason.backoff(),
            Self::Error { backoff, .. } => backoff,
        }
    }
}

/// Something the pool observed, for the node's event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolEvent {
    /// A session was admitted.
    PeerConnected {
        /// Who.
        peer_id: PeerId,
        /// Its address.
        addr: SocketAddr,
        /// Who dialed.
        direction: Direction,
    },
    /// A session ended.
    PeerDisconnected {
        /// Who.
        peer_id: PeerId,
        /// Why.
        reason: SessionClose,
    },
    /// A peer was banned.
    PeerBanned {
        /// Who.
        peer_id: PeerId,
        /// For how long.
        duration: Duration,
    },
    /// A ban expired or was lifted.
    PeerUnbanned {
        /// Who.
        peer_id: PeerId,
    },
}

/// What the pool wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolAction {
    /// Dial this node.
    Dial(DialTarget),
    /// Close this session with this reason.
    Disconnect {
        /// Who.
        peer_id: PeerId,
        /// The reason to send.
        reason: DisconnectReason,
    },
    /// Tell the world.
    Event(PoolEvent),
}

/// Counters for the node's stats and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Dials started.
    pub dials: u64,
    /// Dials that ended in a session.
    pub dials_succeeded: u64,
    /// Dials that failed, by backoff class: low, medium, high.
    pub dial_failures: [u64; 3],
    /// Candidates dropped by the filter (wrong fork, no TCP port, ourselves, banned).
    pub candidates_rejected: u64,
    /// Sessions refused at admission (limits, subnet, throttle, ban, duplicate).
    pub sessions_refused: u64,
    /// Bans imposed.
    pub bans: u64,
    /// Peers rotated out.
    pub rotations: u64,
}

/// A snapshot of one connected peer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PeerSnapshot {
    /// Who.
    pub peer_id: PeerId,
    /// Its address.
    pub addr: SocketAddr,
    /// Who dialed.
    pub direction: Direction,
    /// Static, trusted or basic.
    pub kind: PeerKind,
    /// Its reputation.
    pub reputation: Reputation,
    /// Its latency estimate.
    pub latency: PeerLatency,
    /// Requests in flight.
    pub in_flight: u32,
    /// How long it has been connected.
    pub connected_for: Duration,
    /// The client id from its RLPx Hello, once the session reported it.
    pub client_id: Option<String>,
    /// The negotiated eth version, once the session reported it.
    pub eth_version: Option<EthVersion>,
    /// The blocks an eth/69+ peer serves, as it last announced them (its `Status`, then
    /// its `BlockRangeUpdate`s); filled in by the node, `None` from the pool alone.
    pub block_range: Option<BlockRange>,
}

impl PeerSnapshot {
    /// Its reputation points (0 is neutral; the ban threshold is far below).
    pub fn score(&self) -> i32 {
        self.reputation.get()
    }
}
