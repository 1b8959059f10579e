//! Pool configuration.

use std::time::Duration;

use super::{
    limits::{DEFAULT_SUBNET_LIMIT, INBOUND_THROTTLE},
    reputation::ReputationWeights,
    PoolError,
};
use crate::record::{Enode, NetRestrict};

/// geth `MaxPeers` default.
pub const DEFAULT_MAX_PEERS: usize = 50;

/// The pool dials until it has this many peers even without inbound connections, so an
/// outbound-only node (behind NAT) keeps refilling (bnb-chain/reth-bsc#363).
pub const DEFAULT_MIN_PEERS: usize = 30;

/// geth `defaultDialRatio`: a third of the slots are reserved for peers we choose, so an
/// inbound flood cannot take the whole pool.
pub const DEFAULT_DIAL_RATIO: usize = 3;

/// reth: at most 30 dials in flight (geth allows 50 pending handshakes); enough to reach
/// 30 peers in one round.
pub const DEFAULT_MAX_CONCURRENT_DIALS: usize = 30;

/// Inbound handshakes in progress at once; bounds the work an inbound flood can cause.
pub const DEFAULT_MAX_PENDING_INBOUND: usize = 30;

/// Inbound handshakes in progress at once from one /24 (IPv4) or /48 (IPv6): one host,
/// even with a block of addresses, holds at most this many of the pending slots.
pub const DEFAULT_MAX_PENDING_PER_SUBNET: usize = 4;

/// geth `dialHistoryExpiration`: the 30 s inbound throttle plus 5 s, so our redial never
/// hits the remote's own throttle.
pub const DEFAULT_DIAL_HISTORY: Duration = Duration::from_secs(35);

/// reth backoff durations by error class.
pub const DEFAULT_BACKOFF_LOW: Duration = Duration::from_secs(30);
/// reth: medium backoff (malformed messages, handshake timeouts).
pub const DEFAULT_BACKOFF_MEDIUM: Duration = Duration::from_secs(3 * 60);
/// reth: high backoff (protocol breach, useless peer, connection refused).
pub const DEFAULT_BACKOFF_HIGH: Duration = Duration::from_secs(15 * 60);
/// reth: no backoff is longer than an hour.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(60 * 60);
/// reth `max_backoff_count`: after this many consecutive failures a non-static peer is
/// forgotten.
pub const DEFAULT_MAX_BACKOFF_COUNT: u32 = 5;

/// reth `ban_duration`.
pub const DEFAULT_BAN_DURATION: Duration = Duration::from_secs(12 * 60 * 60);

/// reth/geth dropper: rotation happens every 3 to 7 minutes (uniform).
pub const DEFAULT_ROTATION_MIN: Duration = Duration::from_secs(3 * 60);
/// Upper end of the rotation interval.
pub const DEFAULT_ROTATION_MAX: Duration = Duration::from_secs(7 * 60);
/// reth `PEER_ROTATION_MIN_UPTIME`, geth `doNotDropBefore`: a peer is not rotated out in
/// its first 10 minutes, so it has time to prove itself.
pub const DEFAULT_ROTATION_MIN_UPTIME: Duration = Duration::from_secs(10 * 60);

/// Candidates remembered for dialing; beyond it the oldest never-tried ones are dropped,
/// so a discovery flood cannot grow memory (reth#22013 saw 45k tracked peers).
pub const DEFAULT_MAX_CANDIDATES: usize = 4096;

/// At most `outbound target / DEFAULT_DNS_DIAL_RATIO` outbound peers (and dials) may be
/// nodes a DNS tree listed: a tree whose signer or crawler was fooled into listing only an
/// attacker's nodes (Wang et al. 2026) then cannot fill every outbound slot, and the rest
/// come from discovery, as geth's dialer mixes its sources fairly.
pub const DEFAULT_DNS_DIAL_RATIO: usize = 2;

/// How often the service writes the address book (besides at shutdown).
pub const DEFAULT_BOOK_SAVE_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Configuration of the peer pool. Build it with [`PoolConfig::builder`] or start from
/// `PoolConfig::default()`.
///
/// ```
/// use ethp2p::pool::PoolConfig;
/// let config = PoolConfig::builder().max_peers(25).min_peers(10).build()?;
/// assert_eq!(config.max_outbound_share(), 8);
/// # Ok::<(), ethp2p::pool::PoolError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolConfig {
    /// The most peers at once (trusted peers come on top). Default: 50.
    pub max_peers: usize,
    /// Dial until this many peers, even if they are all outbound. Default: 30.
    pub min_peers: usize,
    /// `max_peers / dial_ratio` slots are reserved for outbound peers; inbound peers get
    /// the rest. Default: 3.
    pub dial_ratio: usize,
    /// Dials in flight at once. Default: 30.
    pub max_concurrent_dials: usize,
    /// Inbound handshakes in flight at once. Default: 30.
    pub max_pending_inbound: usize,
    /// Of those, at most this many from one /24 or /48 (loopback and private addresses are
    /// exempt unless `limit_lan`). Default: 4 ([`DEFAULT_MAX_PENDING_PER_SUBNET`]).
    pub max_pending_per_subnet: usize,
    /// No node is dialed twice within this window. Default: 35 s.
    pub dial_history: Duration,
    /// One inbound connection per IP per this window. Default: 30 s.
    pub inbound_throttle: Duration,
    /// Peers per IPv4 /24 and per IPv6 /48. Default: 2.
    pub subnet_limit: usize,
    /// Apply the subnet limit and the inbound throttle to loopback and private addresses
    /// too. Default: false (a LAN devnet would otherwise be capped).
    pub limit_lan: bool,
    /// At most `outbound target / dns_dial_ratio` outbound peers and dials in flight are
    /// nodes listed by a DNS tree (EIP-1459), whatever else found them too. Default: 2
    /// ([`DEFAULT_DNS_DIAL_RATIO`]: half).
    pub dns_dial_ratio: usize,
    /// Backoff after a low-severity failure (too many peers, reset). Default: 30 s.
    pub backoff_low: Duration,
    /// Backoff after a medium-severity failure (bad message, timeout). Default: 3 min.
    pub backoff_medium: Duration,
    /// Backoff after a high-severity failure (breach, refused). Default: 15 min.
    pub backoff_high: Duration,
    /// Cap on any backoff. Default: 1 h.
    pub backoff_max: Duration,
    /// Consecutive failures after which a basic peer is forgotten. Default: 5.
    pub max_backoff_count: u32,
    /// How long a ban lasts. Default: 12 h.
    pub ban_duration: Duration,
    /// Rotation (churn) happens at a random interval in [`rotation_min`, `rotation_max`].
    /// Default: 3 min.
    pub rotation_min: Duration,
    /// Upper end of the rotation interval. Default: 7 min.
    pub rotation_max: Duration,
    /// A peer connected for less than this is never rotated out. Default: 10 min.
    pub rotation_min_uptime: Duration,
    /// Candidates kept for dialing. Default: 4096.
    pub max_candidates: usize,
    /// How often the address book is saved. Default: 5 min.
    pub book_save_interval: Duration,
    /// Reputation weights. Default: [`ReputationWeights::default`].
    pub weights: ReputationWeights,
    /// Peers always (re)dialed and never rotated out. Default: none.
    pub static_peers: Vec<Enode>,
    /// Peers admitted even over the limits, and never rotated out. Default: none.
    pub trusted_peers: Vec<Enode>,
    /// Only these networks are dialed or accepted (`--netrestrict`). Default: no restriction.
    pub net_restrict: NetRestrict,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_peers: DEFAULT_MAX_PEERS,
            min_peers: DEFAULT_MIN_PEERS,
            dial_ratio: DEFAULT_DIAL_RATIO,
            max_concurrent_dials: DEFAULT_MAX_CONCURRENT_DIALS,
            max_pending_inbound: DEFAULT_MAX_PENDING_INBOUND,
            max_pending_per_subnet: DEFAULT_MAX_PENDING_PER_SUBNET,
            dial_history: DEFAULT_DIAL_HISTORY,
            inbound_throttle: INBOUND_THROTTLE,
            subnet_limit: DEFAULT_SUBNET_LIMIT,
            limit_lan: false,
            dns_dial_ratio: DEFAULT_DNS_DIAL_RATIO,
            backoff_low: DEFAULT_BACKOFF_LOW,
            backoff_medium: DEFAULT_BACKOFF_MEDIUM,
            backoff_high: DEFAULT_BACKOFF_HIGH,
            backoff_max: DEFAULT_BACKOFF_MAX,
            max_backoff_count: DEFAULT_MAX_BACKOFF_COUNT,
            ban_duration: DEFAULT_BAN_DURATION,
            rotation_min: DEFAULT_ROTATION_MIN,
            rotation_max: DEFAULT_ROTATION_MAX,
            rotation_min_uptime: DEFAULT_ROTATION_MIN_UPTIME,
            max_candidates: DEFAULT_MAX_CANDIDATES,
            book_save_interval: DEFAULT_BOOK_SAVE_INTERVAL,
            weights: ReputationWeights::default(),
            static_peers: Vec::new(),
            trusted_peers: Vec::new(),
            net_restrict: NetRestrict::none(),
        }
    }
}

impl PoolConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> PoolConfigBuilder {
        PoolConfigBuilder { config: Self::default() }
    }

    /// Slots reserved for outbound peers: `max_peers / dial_ratio` (16 by default).
    pub fn max_outbound_share(&self) -> usize {
        self.max_peers / self.dial_ratio.max(1)
    }

    /// The most inbound peers: the slots not reserved for outbound (34 by default).
    pub fn max_inbound(&self) -> usize {
        self.max_peers - self.max_outbound_share()
    }

    /// Checks the values against each other.
    pub fn validate(&self) -> Result<(), PoolError> {
        let bad = |m: &str| Err(PoolError::InvalidConfig(m.to_owned()));
        if self.max_peers == 0 {
            return bad("max_peers must be at least 1");
        }
        if self.min_peers > self.max_peers {
            return bad("min_peers must not exceed max_peers");
        }
        if self.dial_ratio == 0 {
            return bad("dial_ratio must be at least 1");
        }
        if self.max_concurrent_dials == 0 {
            return bad("max_concurrent_dials must be at least 1");
        }
        if self.max_pending_per_subnet == 0 {
            return bad("max_pending_per_subnet must be at least 1");
        }
        if self.dns_dial_ratio == 0 {
            return bad("dns_dial_ratio must be at least 1");
        }
        if self.subnet_limit == 0 {
            return bad("subnet_limit must be at least 1");
        }
        if self.rotation_min > self.rotation_max {
            return bad("rotation_min must not exceed rotation_max");
        }
        if self.backoff_low > self.backoff_max
            || self.backoff_medium > self.backoff_max
            || self.backoff_high > self.backoff_max
        {
            return bad("no backoff may exceed backoff_max");
        }
        Ok(())
    }
}

/// Builder for [`PoolConfig`]; `build()` validates.
#[derive(Debug, Clone)]
pub struct PoolConfigBuilder {
    config: PoolConfig,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $name(&mut self, value: $ty) -> &mut Self {
                self.config.$name = value;
                self
            }
        )*
    };
}

impl PoolConfigBuilder {
    setters! {
        /// See [`PoolConfig::max_peers`].
        max_peers: usize,
        /// See [`PoolConfig::min_peers`].
        min_peers: usize,
        /// See [`PoolConfig::dial_ratio`].
        dial_ratio: usize,
        /// See [`PoolConfig::max_concurrent_dials`].
        max_concurrent_dials: usize,
        /// See [`PoolConfig::max_pending_inbound`].
        max_pending_inbound: usize,
        /// See [`PoolConfig::max_pending_per_subnet`].
        max_pending_per_subnet: usize,
        /// See [`PoolConfig::dial_history`].
        dial_history: Duration,
        /// See [`PoolConfig::inbound_throttle`].
        inbound_throttle: Duration,
        /// See [`PoolConfig::subnet_limit`].
        subnet_limit: usize,
        /// See [`PoolConfig::limit_lan`].
        limit_lan: bool,
        /// See [`PoolConfig::dns_dial_ratio`].
        dns_dial_ratio: usize,
        /// See [`PoolConfig::ban_duration`].
        ban_duration: Duration,
        /// See [`PoolConfig::rotation_min_uptime`].
        rotation_min_uptime: Duration,
        /// See [`PoolConfig::max_candidates`].
        max_candidates: usize,
        /// See [`PoolConfig::book_save_interval`].
        book_save_interval: Duration,
        /// See [`PoolConfig::weights`].
        weights: ReputationWeights,
        /// See [`PoolConfig::static_peers`].
        static_peers: Vec<Enode>,
        /// See [`PoolConfig::trusted_peers`].
        trusted_peers: Vec<Enode>,
        /// See [`PoolConfig::net_restrict`].
        net_restrict: NetRestrict,
    }

    /// Sets the rotation interval range (see [`PoolConfig::rotation_min`]).
    pub fn rotation_interval(&mut self, min: Duration, max: Duration) -> &mut Self {
        self.config.rotation_min = min;
        self.config.rotation_max = max;
        self
    }

    /// Sets the backoff durations (see [`PoolConfig::backoff_low`]).
    pub fn backoff(&mut self, low: Duration, medium: Duration, high: Duration, max: Duration) -> &mut Self {
        self.config.backoff_low = low;
        self.config.backoff_medium = medium;
        self.config.backoff_high = high;
        self.config.backoff_max = max;
        self
    }

    /// The validated configuration.
    pub fn build(&self) -> Result<PoolConfig, PoolError> {
        self.config.validate()?;
        Ok(self.config.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_anchors() {
        let c = PoolConfig::default();
        c.validate().unwrap();
        assert_eq!((c.min_peers, c.max_peers), (30, 50));
        assert_eq!(c.max_outbound_share(), 16);
        assert_eq!(c.max_inbound(), 34);
    }

    #[test]
    fn builder_rejects_nonsense() {
        assert!(PoolConfig::builder().min_peers(60).build().is_err());
        assert!(PoolConfig::builder().max_peers(0).min_peers(0).build().is_err());
        assert!(PoolConfig::builder().subnet_limit(0).build().is_err());
        assert!(PoolConfig::builder()
            .rotation_interval(Duration::from_secs(10), Duration::from_secs(5))
            .build()
            .is_err());
    }
}
