//! Eclipse resistance: subnet limits and the per-IP inbound throttle.
//!
//! An attacker who controls a few address blocks can fill a node's pool and feed it a
//! fake chain ("False Friends" eclipsed geth from two /24s). We admit at most
//! [`DEFAULT_SUBNET_LIMIT`] peers per IPv4 /24 and per IPv6 /48 (ethereum/go-ethereum#20522:
//! a /24-style limit on IPv6 must be on the /48 a single site gets, not on single addresses).
//! Loopback and private addresses are exempt by default, as in geth's `DistinctNetSet`
//! use: a devnet on one LAN would otherwise be capped at two peers.

// Crate-internal: `pub` items here are re-exported by `pool` only where the public API or the
// `test-utils` feature needs them.
#![allow(unreachable_pub)]
#![cfg_attr(not(test), allow(dead_code))]

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::{Duration, Instant},
};

use crate::record::net::is_lan;

/// Default peers per IPv4 /24 and per IPv6 /48.
pub const DEFAULT_SUBNET_LIMIT: usize = 2;

/// geth `inboundThrottleTime`, reth `INBOUND_IP_THROTTLE_DURATION`: one inbound connection
/// per source IP per 30 s.
pub const INBOUND_THROTTLE: Duration = Duration::from_secs(30);

/// The subnet an address counts against: its /24 or /48 network address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet(IpAddr);

impl Subnet {
    /// The subnet of `ip` (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                Self(IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], 0)))
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                Self(IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0)))
            }
        }
    }
}

/// Counts peers per subnet and refuses one more than the limit.
#[derive(Debug, Clone)]
pub struct SubnetLimiter {
    limit: usize,
    limit_lan: bool,
    counts: HashMap<Subnet, usize>,
}

impl SubnetLimiter {
    /// A limiter allowing `limit` peers per subnet; `limit_lan` also applies it to local
    /// addresses.
    pub fn new(limit: usize, limit_lan: bool) -> Self {
        Self { limit, limit_lan, counts: HashMap::new() }
    }

    fn applies(&self, ip: IpAddr) -> bool {
        self.limit_lan || !is_lan(ip)
    }

    /// Whether one more peer from `ip` fits.
    pub fn allows(&self, ip: IpAddr) -> bool {
        !self.applies(ip) || self.counts.get(&Subnet::of(ip)).copied().unwrap_or(0) < self.limit
    }

    /// Counts a peer from `ip`; `false` (and nothing counted) if it does not fit.
    pub fn add(&mut self, ip: IpAddr) -> bool {
        if !self.allows(ip) {
            return false;
        }
        if self.applies(ip) {
            *self.counts.entry(Subnet::of(ip)).or_default() += 1;
        }
        true
    }

    /// Forgets a peer from `ip`.
    pub fn remove(&mut self, ip: IpAddr) {
        if !self.applies(ip) {
            return;
        }
        let subnet = Subnet::of(ip);
        if let Some(n) = self.counts.get_mut(&subnet) {
            *n -= 1;
            if *n == 0 {
                self.counts.remove(&subnet);
            }
        }
    }

    /// Peers counted in the subnet of `ip`.
    pub fn count(&self, ip: IpAddr) -> usize {
        self.counts.get(&Subnet::of(ip)).copied().unwrap_or(0)
    }
}

/// Refuses a second inbound connection from the same IP within the throttle window.
/// Local addresses are exempt (geth `checkInboundConn`) unless configured otherwise.
#[derive(Debug, Clone)]
pub struct InboundThrottle {
    window: Duration,
    limit_lan: bool,
    recent: HashMap<IpAddr, Instant>,
}

impl InboundThrottle {
    /// A throttle of one connection per `window` per IP.
    pub fn new(window: Duration, limit_lan: bool) -> Self {
        Self { window, limit_lan, recent: HashMap::new() }
    }

    /// Whether a connection from `ip` is allowed now; if so it is remembered.
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> bool {
        if !self.limit_lan && is_lan(ip) {
            return true;
        }
        let ip = ip.to_canonical();
        match self.recent.get(&ip) {
            Some(&at) if now.saturating_duration_since(at) < self.window => false,
            _ => {
                self.recent.insert(ip, now);
                true
            }
        }
    }

    /// Forgets entries older than the window, so memory stays bounded by the connection rate.
    pub fn expire(&mut self, now: Instant) {
        let window = self.window;
        self.recent.retain(|_, at| now.saturating_duration_since(*at) < window);
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.recent.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn subnets() {
        assert_eq!(Subnet::of("1.2.3.4".parse().unwrap()), Subnet::of("1.2.3.200".parse().unwrap()));
        assert_ne!(Subnet::of("1.2.3.4".parse().unwrap()), Subnet::of("1.2.4.4".parse().unwrap()));
        assert_eq!(
            Subnet::of("2001:db8:1::1".parse().unwrap()),
            Subnet::of("2001:db8:1:ffff::2".parse().unwrap())
        );
        assert_ne!(
            Subnet::of("2001:db8:1::1".parse().unwrap()),
            Subnet::of("2001:db8:2::1".parse().unwrap())
        );
        // IPv4-mapped IPv6 counts against the IPv4 /24.
        assert_eq!(Subnet::of("::ffff:1.2.3.4".parse().unwrap()), Subnet::of("1.2.3.9".parse().unwrap()));
    }

    #[test]
    fn limiter_caps_a_subnet_and_frees_on_remove() {
        let mut l = SubnetLimiter::new(2, false);
        let a: IpAddr = "8.8.8.1".parse().unwrap();
        let b: IpAddr = "8.8.8.2".parse().unwrap();
        let c: IpAddr = "8.8.8.3".parse().unwrap();
        assert!(l.add(a) && l.add(b));
        assert!(!l.add(c));
        l.remove(a);
        assert!(l.add(c));
        // LAN is exempt unless asked.
        for i in 0..10 {
            assert!(l.add(IpAddr::V4(Ipv4Addr::new(127, 0, 0, i))));
        }
        let mut strict = SubnetLimiter::new(2, true);
        assert!(strict.add("127.0.0.1".parse().unwrap()) && strict.add("127.0.0.2".parse().unwrap()));
        assert!(!strict.add("127.0.0.3".parse().unwrap()));
    }

    #[test]
    fn throttle_per_ip() {
        let now = Instant::now();
        let mut t = InboundThrottle::new(INBOUND_THROTTLE, false);
        let ip: IpAddr = "9.9.9.9".parse().unwrap();
        assert!(t.check(ip, now));
        assert!(!t.check(ip, now + Duration::from_secs(29)));
        assert!(t.check(ip, now + Duration::from_secs(31)));
        assert!(t.check("10.0.0.1".parse().unwrap(), now));
        assert!(t.check("10.0.0.1".parse().unwrap(), now));
        t.expire(now + Duration::from_secs(100));
        assert!(t.is_empty());
    }

    proptest! {
        /// Whatever the order of adds and removes, no subnet ever holds more than the limit.
        #[test]
        fn subnet_limit_never_exceeded(
            limit in 1usize..4,
            ops in proptest::collection::vec((any::<bool>(), 0u8..4, 0u8..6), 0..300),
        ) {
            let mut l = SubnetLimiter::new(limit, true);
            let mut held: Vec<IpAddr> = Vec::new();
            for (add, net, host) in ops {
                let ip = IpAddr::V4(Ipv4Addr::new(44, 0, net, host));
                if add {
                    if l.add(ip) { held.push(ip); }
                } else if let Some(pos) = held.iter().position(|h| *h == ip) {
                    held.remove(pos);
                    l.remove(ip);
                }
                for net in 0..4u8 {
                    let n = held.iter().filter(|h| Subnet::of(**h) == Subnet::of(IpAddr::V4(Ipv4Addr::new(44, 0, net, 0)))).count();
                    prop_assert!(n <= limit);
                    prop_assert_eq!(n, l.count(IpAddr::V4(Ipv4Addr::new(44, 0, net, 1))));
                }
            }
        }
    }
}
