//! Reputation: the score that decides who stays connected.
//!
//! The model is reth's (`crates/net/network-types/src/peers/reputation.rs`): an `i32` that
//! starts at 0, falls by multiples of a unit on misbehaviour, and bans the peer once it drops
//! below [`BANNED_REPUTATION`]. We keep reth's unit and threshold so the numbers read the
//! same to anyone who knows reth, and change two things:
//!
//! - an invalid response costs 20 units instead of 16, so the third lie bans (20 × 3 = 60 >
//!   50) while one or two can be honest mistakes (a reorg racing a request);
//! - good answers earn a little credit ([`VALID_RESPONSE_REWARD`]) up to
//!   [`MAX_REPUTATION`], so that among healthy peers the score still says something. The cap
//!   is small enough that credit never saves a liar from its third strike (checked at
//!   compile time below).
//!
//! Reputation is only one half of scoring: which peer gets the next *request* is decided by
//! the latency estimate in [`latency`](super::latency) (reth#826: reputation decides
//! connect/disconnect, round-trip time decides routing).

// Crate-internal: `pub` items here are re-exported by `pool` only where the public API or the
// `test-utils` feature needs them.
#![allow(unreachable_pub)]
#![cfg_attr(not(test), allow(dead_code))]

use std::time::Duration;

/// reth `REPUTATION_UNIT`: every weight is a multiple of it.
pub const REPUTATION_UNIT: i32 = -1024;

/// Where every peer starts.
pub const DEFAULT_REPUTATION: i32 = 0;

/// reth: a peer whose reputation falls below 50 units is disconnected and banned.
pub const BANNED_REPUTATION: i32 = 50 * REPUTATION_UNIT;

/// The most credit good answers can earn: 8 units. Small on purpose, see the module docs.
pub const MAX_REPUTATION: i32 = -8 * REPUTATION_UNIT;

/// Credit for one valid, non-empty answer: 1/8 unit, so 64 good answers earn back one unit.
pub const VALID_RESPONSE_REWARD: i32 = 128;

/// reth: the largest single penalty a trusted or static peer can take (2 units), so that
/// a peer the operator vouched for is not banned by a burst of bad luck.
pub const MAX_TRUSTED_PENALTY: i32 = 2 * REPUTATION_UNIT;

/// reth: recovery of +1 per second connected while below zero, so a peer that misbehaved
/// once earns its way back in about an hour per 4 units, but never fast enough to absorb a
/// steady stream of offences.
pub const RECOVERY_PER_SECOND: i32 = 1;

// Credit must never save a liar from the ban on its third invalid answer.
const _: () = assert!(MAX_REPUTATION + 3 * 20 * REPUTATION_UNIT < BANNED_REPUTATION);

/// Why a peer's reputation changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReputationChange {
    /// The remote closed the session (a Disconnect message or a dropped socket).
    Dropped,
    /// A dial to it failed (refused, unreachable, handshake failure).
    FailedToConnect,
    /// A request got no answer within its timeout.
    Timeout,
    /// An answer that fails validation: wrong headers, bodies that do not match their
    /// roots, more items than asked for.
    InvalidResponse,
    /// A well-formed but empty answer to a request the peer claimed it could serve.
    EmptyResponse,
    /// An undecodable or unexpected message.
    BadMessage,
    /// A breach of the protocol that no honest implementation makes (a wrong genesis after
    /// Status, an unsolicited response flood): an instant ban.
    ProtocolBreach,
    /// A valid, useful answer.
    ValidResponse,
    /// A change chosen by the caller, in raw reputation points.
    Other(i32),
}

/// The weight of each [`ReputationChange`], in reputation points (negative is a penalty).
///
/// Default values and why:
///
/// | change | default | why |
/// | --- | --- | --- |
/// | `dropped` | −4 units | reth: a disconnect alone is normal churn, twelve of them are not |
/// | `failed_to_connect` | −25 units | reth: two failed dials in a row ban a dead address |
/// | `timeout` | −4 units | reth: slowness is handled by routing; only silence costs |
/// | `invalid_response` | −20 units | the third lie bans (60 > 50 units) |
/// | `empty_response` | −1 unit | may be honest (pruned history), but a peer that is always empty is useless |
/// | `bad_message` | −16 units | reth `BadMessage`: four undecodable messages ban |
/// | `protocol_breach` | `i32::MIN` | reth `BadProtocol`: instant ban |
/// | `valid_response` | +128 | credit capped at +8,192 (8 units) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReputationWeights {
    /// Remote disconnect. Default: −4096 (4 units).
    pub dropped: i32,
    /// Failed dial. Default: −25600 (25 units).
    pub failed_to_connect: i32,
    /// Request timeout. Default: −4096 (4 units).
    pub timeout: i32,
    /// Invalid response. Default: −20480 (20 units).
    pub invalid_response: i32,
    /// Empty response. Default: −1024 (1 unit).
    pub empty_response: i32,
    /// Undecodable or unexpected message. Default: −16384 (16 units).
    pub bad_message: i32,
    /// Protocol breach. Default: `i32::MIN` (instant ban).
    pub protocol_breach: i32,
    /// Valid answer. Default: +128.
    pub valid_response: i32,
}

impl Default for ReputationWeights {
    fn default() -> Self {
        Self {
            dropped: 4 * REPUTATION_UNIT,
            failed_to_connect: 25 * REPUTATION_UNIT,
            timeout: 4 * REPUTATION_UNIT,
            invalid_response: 20 * REPUTATION_UNIT,
            empty_response: REPUTATION_UNIT,
            bad_message: 16 * REPUTATION_UNIT,
            protocol_breach: i32::MIN,
            valid_response: VALID_RESPONSE_REWARD,
        }
    }
}

impl ReputationWeights {
    /// The points for `change`.
    pub fn value(&self, change: ReputationChange) -> i32 {
        match change {
            ReputationChange::Dropped => self.dropped,
            ReputationChange::FailedToConnect => self.failed_to_connect,
            ReputationChange::Timeout => self.timeout,
            ReputationChange::InvalidResponse => self.invalid_response,
            ReputationChange::EmptyResponse => self.empty_response,
            ReputationChange::BadMessage => self.bad_message,
            ReputationChange::ProtocolBreach => self.protocol_breach,
            ReputationChange::ValidResponse => self.valid_response,
            ReputationChange::Other(points) => points,
        }
    }
}

/// How the operator classified a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerKind {
    /// Found by discovery or connected to us.
    #[default]
    Basic,
    /// Configured by the operator: always redialed, never rotated out.
    Static,
    /// Configured by the operator: like static, and admitted over the peer limits.
    Trusted,
}

impl PeerKind {
    /// Static or trusted: the operator vouched for it.
    pub fn is_vouched(self) -> bool {
        !matches!(self, Self::Basic)
    }
}

/// What a reputation change means for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReputationOutcome {
    /// Nothing to do.
    None,
    /// The peer crossed the ban threshold.
    Ban,
}

/// A peer's reputation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reputation(i32);

impl Default for Reputation {
    fn default() -> Self {
        Self(DEFAULT_REPUTATION)
    }
}

impl Reputation {
    /// A reputation of `points`, clamped to [`MAX_REPUTATION`].
    pub fn new(points: i32) -> Self {
        Self(points.min(MAX_REPUTATION))
    }

    /// The raw points.
    pub fn get(self) -> i32 {
        self.0
    }

    /// Below the ban threshold.
    pub fn is_banned(self) -> bool {
        self.0 < BANNED_REPUTATION
    }

    /// Applies `change` for a peer of `kind`.
    ///
    /// Trusted and static peers are exempt from the penalties for being dropped and for
    /// timeouts (reth `apply_reputation_change`), and no single penalty costs them more
    /// than [`MAX_TRUSTED_PENALTY`].
    pub fn apply(
        &mut self,
        change: ReputationChange,
        kind: PeerKind,
        weights: &ReputationWeights,
    ) -> ReputationOutcome {
        let was_banned = self.is_banned();
        let mut points = weights.value(change);
        if kind.is_vouched() {
            if matches!(change, ReputationChange::Dropped | ReputationChange::Timeout) {
                points = 0;
            }
            points = points.max(MAX_TRUSTED_PENALTY);
        }
        self.0 = self.0.saturating_add(points).min(MAX_REPUTATION);
        if !was_banned && self.is_banned() {
            ReputationOutcome::Ban
        } else {
            ReputationOutcome::None
        }
    }

    /// Slow recovery while connected: +[`RECOVERY_PER_SECOND`] per second spent connected,
    /// only while negative and never above zero (good answers earn the rest).
    pub fn recover(&mut self, connected_for: Duration) {
        if self.0 < 0 {
            let gain =
                i64::try_from(connected_for.as_secs()).unwrap_or(i64::MAX) * i64::from(RECOVERY_PER_SECOND);
            self.0 = (i64::from(self.0) + gain).min(0) as i32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn third_invalid_response_bans() {
        let w = ReputationWeights::default();
        let mut r = Reputation::new(MAX_REPUTATION);
        assert_eq!(r.apply(ReputationChange::InvalidResponse, PeerKind::Basic, &w), ReputationOutcome::None);
        assert_eq!(r.apply(ReputationChange::InvalidResponse, PeerKind::Basic, &w), ReputationOutcome::None);
        assert_eq!(r.apply(ReputationChange::InvalidResponse, PeerKind::Basic, &w), ReputationOutcome::Ban);
        assert!(r.is_banned());
    }

    #[test]
    fn protocol_breach_bans_at_once_and_does_not_overflow() {
        let w = ReputationWeights::default();
        let mut r = Reputation::default();
        assert_eq!(r.apply(ReputationChange::ProtocolBreach, PeerKind::Basic, &w), ReputationOutcome::Ban);
        // A second breach on an already banned peer saturates instead of wrapping around.
        assert_eq!(r.apply(ReputationChange::ProtocolBreach, PeerKind::Basic, &w), ReputationOutcome::None);
        assert_eq!(r.get(), i32::MIN);
    }

    #[test]
    fn vouched_peers_take_capped_penalties() {
        let w = ReputationWeights::default();
        let mut r = Reputation::default();
        r.apply(ReputationChange::Timeout, PeerKind::Static, &w);
        r.apply(ReputationChange::Dropped, PeerKind::Trusted, &w);
        assert_eq!(r.get(), 0);
        r.apply(ReputationChange::ProtocolBreach, PeerKind::Trusted, &w);
        assert_eq!(r.get(), MAX_TRUSTED_PENALTY);
    }

    #[test]
    fn recovery_is_slow_and_stops_at_zero() {
        let mut r = Reputation::new(-4096);
        r.recover(Duration::from_secs(96));
        assert_eq!(r.get(), -4000);
        r.recover(Duration::from_secs(1_000_000));
        assert_eq!(r.get(), 0);
        let mut good = Reputation::new(500);
        good.recover(Duration::from_secs(60));
        assert_eq!(good.get(), 500);
    }

    proptest! {
        /// Whatever a peer did before, three invalid answers in a row ban it.
        #[test]
        fn liars_banned_after_three(history in proptest::collection::vec(0u8..4, 0..200)) {
            let w = ReputationWeights::default();
            let mut r = Reputation::default();
            for h in history {
                let change = match h {
                    0 => ReputationChange::ValidResponse,
                    1 => ReputationChange::EmptyResponse,
                    2 => ReputationChange::Timeout,
                    _ => ReputationChange::Dropped,
                };
                r.apply(change, PeerKind::Basic, &w);
            }
            for _ in 0..3 {
                r.apply(ReputationChange::InvalidResponse, PeerKind::Basic, &w);
            }
            prop_assert!(r.is_banned());
        }

        /// The score never exceeds its cap.
        #[test]
        fn never_above_cap(n in 0usize..10_000) {
            let w = ReputationWeights::default();
            let mut r = Reputation::default();
            for _ in 0..n {
                r.apply(ReputationChange::ValidResponse, PeerKind::Basic, &w);
            }
            prop_assert!(r.get() <= MAX_REPUTATION);
        }
    }
}
