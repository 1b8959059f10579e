//! Admission: whether the pool takes one more peer, apart from who the peers are.
//!
//! Three moments ask: an inbound TCP connection before any handshake (the pending-handshake
//! cap, `net_restrict` and the per-IP throttle), a dial the scheduler wants to make (a
//! subnet slot is reserved for it at once, so a batch of dials cannot overshoot the limit),
//! and a session whose handshake completed (ourselves, duplicates, bans, the slot counts
//! and the subnet limit; trusted peers pass every limit, static ones every count). The
//! peer set (`peers.rs`) says where a peer stands; [`AdmissionControl`] owns the counts
//! that limit it and answers. Refusals are a [`DisconnectReason`], the one word for them.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    num::NonZeroUsize,
    time::Instant,
};

use lru::LruCache;

use super::{
    event::Direction,
    limits::{InboundThrottle, Subnet, SubnetLimiter},
    reputation::PeerKind,
    PoolConfig,
};
use crate::{
    record::{net::is_lan, PeerId},
    rlpx::DisconnectReason,
};

/// IPs remembered for a failed inbound handshake (the oldest forgotten first).
const FAILED_IPS: usize = 4096;

/// What the peer set knows about a peer whose session asks to be admitted.
#[derive(Debug, Clone, Copy)]
pub(super) struct Standing {
    /// It is us (a dial that reached ourselves, or a reflection).
    pub(super) is_self: bool,
    /// It has a session already.
    pub(super) connected: bool,
    /// It is banned now.
    pub(super) banned: bool,
    /// Static, trusted or basic.
    pub(super) kind: PeerKind,
    /// Sessions held now, in all.
    pub(super) sessions: usize,
    /// Of those, inbound.
    pub(super) inbound: usize,
}

/// The counts that limit admission: subnet slots (held by sessions and reserved by dials in
/// flight), the inbound throttle and the handshakes pending on inbound connections.
#[derive(Debug)]
pub(super) struct AdmissionControl {
    subnets: SubnetLimiter,
    throttle: InboundThrottle,
    /// Subnet reservations of dials in flight.
    dial_ips: HashMap<PeerId, IpAddr>,
    pending_inbound: usize,
    /// Of those, per /24 (IPv4) or /48 (IPv6): one host, with one address or a block of
    /// them, cannot hold every pending slot by reconnecting.
    pending_by_subnet: HashMap<Subnet, usize>,
    /// IPs whose inbound handshake failed (a wrong chain, garbage, a timeout), refused
    /// before any ECIES work until the time given.
    failed: LruCache<IpAddr, Instant>,
    /// Loopback and private addresses are exempt from the per-IP rules (a devnet on one
    /// host); `PoolConfig::limit_lan` turns the exemption off.
    exempt_lan: bool,
}

impl AdmissionControl {
    pub(super) fn new(config: &PoolConfig) -> Self {
        Self {
            subnets: SubnetLimiter::new(config.subnet_limit, config.limit_lan),
            throttle: InboundThrottle::new(config.inbound_throttle, config.limit_lan),
            dial_ips: HashMap::new(),
            pending_inbound: 0,
            pending_by_subnet: HashMap::new(),
            failed: LruCache::new(NonZeroUsize::new(FAILED_IPS).expect("non-zero")),
            exempt_lan: !config.limit_lan,
        }
    }

    /// An inbound handshake from `ip` failed in a way that says something about the peer:
    /// its next connections are refused before the handshake until `until`.
    pub(super) fn inbound_failed_from(&mut self, ip: IpAddr, until: Instant) {
        if !(self.exempt_lan && is_lan(ip)) {
            self.failed.put(ip, until);
        }
    }

    /// An inbound TCP connection from `ip`, before any handshake: `Ok` counts it as pending
    /// until [`Self::inbound_finished`].
    pub(super) fn inbound_connection(
        &mut self,
        ip: IpAddr,
        now: Instant,
        config: &PoolConfig,
    ) -> Result<(), DisconnectReason> {
        let failed_recently = self.failed.get(&ip).is_some_and(|until| now < *until);
        let subnet = Subnet::of(ip);
        let limited = !(self.exempt_lan && is_lan(ip));
        let subnet_full = limited
            && self.pending_by_subnet.get(&subnet).copied().unwrap_or(0) >= config.max_pending_per_subnet;
        if self.pending_inbound >= config.max_pending_inbound
            || subnet_full
            || !config.net_restrict.allows(&ip)
            || failed_recently
            || !self.throttle.check(ip, now)
        {
            return Err(DisconnectReason::TooManyPeers);
        }
        self.pending_inbound += 1;
        if limited {
            *self.pending_by_subnet.entry(subnet).or_default() += 1;
        }
        Ok(())
    }

    /// An inbound handshake from `ip` ended, either way.
    pub(super) fn inbound_finished(&mut self, ip: IpAddr) {
        self.pending_inbound = self.pending_inbound.saturating_sub(1);
        let subnet = Subnet::of(ip);
        if let Some(n) = self.pending_by_subnet.get_mut(&subnet) {
            *n -= 1;
            if *n == 0 {
                self.pending_by_subnet.remove(&subnet);
            }
        }
    }

    /// Takes a subnet slot for a basic dial to `ip`, if one is free. The slot passes to the
    /// session ([`Self::dial_connected`]) or is released ([`Self::release_dial`]).
    pub(super) fn reserve_subnet(&mut self, ip: IpAddr) -> bool {
        self.subnets.add(ip)
    }

    /// The dial to `peer_id` holds the slot reserved for `ip`.
    pub(super) fn dial_started(&mut self, peer_id: PeerId, ip: IpAddr) {
        self.dial_ips.insert(peer_id, ip);
    }

    /// Whether a dial to `peer_id` holds a subnet slot.
    pub(super) fn has_dial_reservation(&self, peer_id: &PeerId) -> bool {
        self.dial_ips.contains_key(peer_id)
    }

    /// The dial to `peer_id` failed (or its session was refused): its slot is free again.
    pub(super) fn release_dial(&mut self, peer_id: &PeerId) {
        if let Some(ip) = self.dial_ips.remove(peer_id) {
            self.subnets.remove(ip);
        }
    }

    /// The dial to `peer_id` became a session, which now holds the slot.
    pub(super) fn dial_connected(&mut self, peer_id: &PeerId) {
        self.dial_ips.remove(peer_id);
    }

    /// A session that held a subnet slot at `ip` ended.
    pub(super) fn session_closed(&mut self, ip: IpAddr) {
        self.subnets.remove(ip);
    }

    /// Forgets throttle entries older than its window.
    pub(super) fn expire(&mut self, now: Instant) {
        self.throttle.expire(now);
    }

    /// Whether a session with a peer standing as `standing`, at `addr`, in `direction`, is
    /// admitted. `reserved` says its dial already holds a subnet slot. On `Ok` a basic peer
    /// holds a subnet slot until [`Self::session_closed`].
    pub(super) fn admit(
        &mut self,
        addr: SocketAddr,
        direction: Direction,
        reserved: bool,
        standing: Standing,
        config: &PoolConfig,
    ) -> Result<(), DisconnectReason> {
        if standing.is_self {
            return Err(DisconnectReason::ConnectedToSelf);
        }
        if standing.connected {
            return Err(DisconnectReason::AlreadyConnected);
        }
        if standing.banned {
            return Err(DisconnectReason::ProtocolBreach);
        }
        let kind = standing.kind;
        if kind == PeerKind::Trusted {
            return Ok(());
        }
        let total = standing.sessions;
        let full = match direction {
            Direction::Inbound => total >= config.max_peers || standing.inbound >= config.max_inbound(),
            Direction::Outbound => total >= config.max_peers,
        };
        if full && !kind.is_vouched() {
            return Err(DisconnectReason::TooManyPeers);
        }
        if !kind.is_vouched() && !reserved && !self.subnets.add(addr.ip()) {
            return Err(DisconnectReason::TooManyPeers);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(sessions: usize, inbound: usize) -> Standing {
        Standing { is_self: false, connected: false, banned: false, kind: PeerKind::Basic, sessions, inbound }
    }

    fn addr(last: u8, third: u8) -> SocketAddr {
        SocketAddr::from(([66, 6, third, last], 30303))
    }

    #[test]
    fn refusals_in_order() {
        let config = PoolConfig::default();
        let mut gate = AdmissionControl::new(&config);
        let a = addr(1, 1);
        let refuse = |gate: &mut AdmissionControl, standing| {
            gate.admit(a, Direction::Inbound, false, standing, &config)
        };
        assert_eq!(
            refuse(&mut gate, Standing { is_self: true, ..basic(0, 0) }),
            Err(DisconnectReason::ConnectedToSelf)
        );
        assert_eq!(
            refuse(&mut gate, Standing { connected: true, ..basic(0, 0) }),
            Err(DisconnectReason::AlreadyConnected)
        );
        assert_eq!(
            refuse(&mut gate, Standing { banned: true, ..basic(0, 0) }),
            Err(DisconnectReason::ProtocolBreach)
        );
        let full = basic(config.max_peers, 0);
        assert_eq!(refuse(&mut gate, full), Err(DisconnectReason::TooManyPeers));
        assert_eq!(refuse(&mut gate, basic(1, config.max_inbound())), Err(DisconnectReason::TooManyPeers));
        // Over every limit, a trusted peer still gets in; a static one over the counts.
        assert_eq!(refuse(&mut gate, Standing { kind: PeerKind::Trusted, ..full }), Ok(()));
        assert_eq!(refuse(&mut gate, Standing { kind: PeerKind::Static, ..full }), Ok(()));
    }

    #[test]
    fn subnet_slots_are_shared_by_dials_and_sessions() {
        let config = PoolConfig::default();
        let limit = config.subnet_limit;
        let mut gate = AdmissionControl::new(&config);
        let peers: Vec<PeerId> = (0..=limit as u8).map(|i| PeerId::repeat_byte(i + 1)).collect();
        // Dials reserve the /24's slots...
        for (i, peer) in peers.iter().take(limit).enumerate() {
            assert!(gate.reserve_subnet(addr(i as u8, 1).ip()));
            gate.dial_started(*peer, addr(i as u8, 1).ip());
        }
        // ...so an inbound session from the same /24 is refused, one from elsewhere is not.
        let admit =
            |gate: &mut AdmissionControl, a| gate.admit(a, Direction::Inbound, false, basic(0, 0), &config);
        assert_eq!(admit(&mut gate, addr(200, 1)), Err(DisconnectReason::TooManyPeers));
        assert_eq!(admit(&mut gate, addr(200, 2)), Ok(()));
        // A dial that connects keeps its slot; one that fails frees it.
        assert!(gate.has_dial_reservation(&peers[0]));
        gate.dial_connected(&peers[0]);
        assert!(!gate.has_dial_reservation(&peers[0]));
        assert_eq!(admit(&mut gate, addr(200, 1)), Err(DisconnectReason::TooManyPeers));
        gate.release_dial(&peers[1]);
        assert_eq!(admit(&mut gate, addr(200, 1)), Ok(()));
        // The first session ends: its slot is free too.
        gate.session_closed(addr(0, 1).ip());
        assert!(gate.reserve_subnet(addr(9, 1).ip()));
    }

    #[test]
    fn inbound_connections_are_capped_while_pending() {
        let config = PoolConfig { max_pending_inbound: 1, ..PoolConfig::default() };
        let mut gate = AdmissionControl::new(&config);
        let now = Instant::now();
        assert_eq!(gate.inbound_connection(addr(1, 1).ip(), now, &config), Ok(()));
        assert_eq!(
            gate.inbound_connection(addr(2, 2).ip(), now, &config),
            Err(DisconnectReason::TooManyPeers)
        );
        gate.inbound_finished(addr(1, 1).ip());
        assert_eq!(gate.inbound_connection(addr(2, 2).ip(), now, &config), Ok(()));
        gate.inbound_finished(addr(2, 2).ip());
        // The same IP again within the throttle window is refused before any handshake.
        assert_eq!(
            gate.inbound_connection(addr(1, 1).ip(), now, &config),
            Err(DisconnectReason::TooManyPeers)
        );
    }

    /// One host holding a block of addresses (a /24) reconnects from each: it gets
    /// `max_pending_per_subnet` pending handshakes, not all of them; others still get in,
    /// and a finished handshake frees its subnet's slot.
    #[test]
    fn one_subnet_cannot_hold_every_pending_slot() {
        let config = PoolConfig::default();
        let mut gate = AdmissionControl::new(&config);
        let now = Instant::now();
        let taken = (1..=config.max_pending_inbound as u8)
            .filter(|host| gate.inbound_connection(addr(*host, 1).ip(), now, &config).is_ok())
            .count();
        assert_eq!(taken, config.max_pending_per_subnet);
        assert_eq!(gate.inbound_connection(addr(1, 2).ip(), now, &config), Ok(()));
        gate.inbound_finished(addr(1, 1).ip());
        assert_eq!(gate.inbound_connection(addr(200, 1).ip(), now, &config), Ok(()));
        assert!(gate.inbound_connection(addr(201, 1).ip(), now, &config).is_err());
    }
}
