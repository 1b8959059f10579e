//! What others say our address is (the `to` of discv4 PONGs), and when to believe them.
//! Sans-IO: the discovery core feeds statements in and gets a newly predicted address out.
//!
//! One host must not be able to move our record (issue 16: twelve keys on one IP once
//! did). So, beyond go-ethereum's `IPTracker` (one statement per node, a window, a
//! minimum count):
//! - a statement counts once per reporting network: per /24 (IPv4) or /48 (IPv6) for a
//!   public reporter, per address for a loopback or private one (a LAN has no subnets to
//!   tell hosts apart by), whatever number of keys it holds;
//! - only an address we could have is believed: a unicast, globally routable one, or a
//!   loopback or private one when we listen on such an address ourselves; never
//!   multicast, broadcast, unspecified or documentation ranges;
//! - a quorum of distinct reporting networks and a strict majority of them must agree,
//!   within a window after which statements expire.
//!
//! A configured external address (`--nat extip:`) is never subject to votes: the caller
//! does not feed them then.
//!
//! Which addresses are LAN or globally routable is `record::net`'s answer, the same one the
//! discv4 table, the relay check and the pool's subnet limits use.

use std::{
    net::IpAddr,
    num::NonZeroUsize,
    time::{Duration, Instant},
};

use lru::LruCache;

use crate::record::net::{canonical, is_global_unicast, is_lan};

/// Who made a statement: a public reporter's network, or a LAN reporter's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Reporter {
    Net4([u8; 3]),
    Net6([u8; 6]),
    Host(IpAddr),
}

impl Reporter {
    fn of(ip: IpAddr) -> Self {
        match canonical(ip) {
            ip if is_lan(ip) => Self::Host(ip),
            IpAddr::V4(v4) => {
                let o = v4.octets();
                Self::Net4([o[0], o[1], o[2]])
            }
            IpAddr::V6(v6) => {
                let o = v6.octets();
                Self::Net6([o[0], o[1], o[2], o[3], o[4], o[5]])
            }
        }
    }
}

/// Statements about our address, bounded in count and age.
#[derive(Debug)]
pub(crate) struct IpVotes {
    window: Duration,
    quorum: usize,
    /// Whether we listen on a loopback or private address (then such addresses may win).
    local_is_lan: bool,
    votes: LruCache<Reporter, (IpAddr, Instant)>,
    predicted: Option<IpAddr>,
}

impl IpVotes {
    /// Statements expire after `window`; `quorum` distinct reporting networks must have
    /// spoken and a strict majority of them agree.
    pub(crate) fn new(window: Duration, quorum: usize, local_is_lan: bool) -> Self {
        let cap = NonZeroUsize::new(quorum.max(1) * 8).expect("non-zero");
        Self { window, quorum: quorum.max(1), local_is_lan, votes: LruCache::new(cap), predicted: None }
    }

    /// The address the votes settled on, if any.
    #[cfg_attr(not(any(test, feature = "test-utils")), allow(dead_code))]
    pub(crate) fn predicted(&self) -> Option<IpAddr> {
        self.predicted
    }

    /// `reporter` (the source address of a verified PONG) says we are at `claimed`.
    /// Returns the address when the votes settle on a new one.
    pub(crate) fn vote(&mut self, now: Instant, reporter: IpAddr, claimed: IpAddr) -> Option<IpAddr> {
        let claimed = canonical(claimed);
        if !self.believable(&claimed) {
            tracing::trace!(target: "ethp2p::discv4", %reporter, %claimed, "address statement ignored");
            return None;
        }
        self.votes.put(Reporter::of(reporter), (claimed, now));
        let mut counts: Vec<(IpAddr, usize)> = Vec::new();
        let mut total = 0;
        for (_, (ip, at)) in self.votes.iter() {
            if now.saturating_duration_since(*at) < self.window {
                total += 1;
                match counts.iter_mut().find(|(c, _)| c == ip) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((*ip, 1)),
                }
            }
        }
        let (best, count) = counts.into_iter().max_by_key(|(_, n)| *n)?;
        if total < self.quorum || count * 2 <= total || self.predicted == Some(best) {
            return None;
        }
        self.predicted = Some(best);
        Some(best)
    }

    fn believable(&self, ip: &IpAddr) -> bool {
        if is_global_unicast(*ip) {
            return true;
        }
        // "This network" (0.0.0.0/8, ::) is LAN space but no host's address.
        let this_network = ip.is_unspecified() || matches!(ip, IpAddr::V4(v4) if v4.octets()[0] == 0);
        self.local_is_lan && is_lan(*ip) && !this_network
    }
}

/// Whether the node's own listen address is LAN space (or unspecified on a host whose
/// only address may be): then LAN addresses may win a vote.
pub(crate) fn local_is_lan(listen: IpAddr) -> bool {
    is_lan(listen) || listen.is_unspecified()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn many_keys_on_one_host_or_subnet_count_once() {
        let now = Instant::now();
        let mut votes = IpVotes::new(Duration::from_secs(300), 3, false);
        // The attack: twelve reporters from one IP, then from one /24, name 8.8.4.4.
        for _ in 0..12 {
            assert_eq!(votes.vote(now, ip("9.9.9.9"), ip("8.8.4.4")), None);
        }
        for i in 0..12 {
            assert_eq!(votes.vote(now, IpAddr::V4(Ipv4Addr::new(9, 9, 9, i)), ip("8.8.4.4")), None);
        }
        // Three distinct networks agree: believed.
        assert_eq!(votes.vote(now, ip("1.1.1.1"), ip("8.8.4.4")), None);
        assert_eq!(votes.vote(now, ip("2.2.2.2"), ip("8.8.4.4")), Some(ip("8.8.4.4")));
        assert_eq!(votes.vote(now, ip("3.3.3.3"), ip("8.8.4.4")), None, "reported once");
        assert_eq!(votes.predicted(), Some(ip("8.8.4.4")));
    }

    #[test]
    fn impossible_addresses_never_win() {
        let now = Instant::now();
        let mut public = IpVotes::new(Duration::from_secs(300), 2, false);
        for (i, claimed) in [
            "192.0.2.66",
            "224.0.0.251",
            "255.255.255.255",
            "0.0.0.0",
            "10.0.0.1",
            "127.0.0.5",
            "2001:db8::1",
            "ff02::1",
        ]
        .into_iter()
        .enumerate()
        {
            for r in 0..4u8 {
                let reporter = IpAddr::V4(Ipv4Addr::new(20 + i as u8, r, 0, 1));
                assert_eq!(public.vote(now, reporter, ip(claimed)), None, "{claimed}");
            }
        }
        assert_eq!(public.predicted(), None);
        // A node on loopback can learn a loopback address; each LAN host is one reporter.
        let mut lan = IpVotes::new(Duration::from_secs(300), 2, true);
        assert_eq!(lan.vote(now, ip("127.0.0.2"), ip("127.0.0.9")), None);
        assert_eq!(lan.vote(now, ip("127.0.0.2"), ip("127.0.0.9")), None, "one host, one vote");
        assert_eq!(lan.vote(now, ip("127.0.0.3"), ip("127.0.0.9")), Some(ip("127.0.0.9")));
        assert_eq!(lan.vote(now, ip("127.0.0.4"), ip("224.0.0.251")), None);
    }

    #[test]
    fn a_minority_liar_never_moves_the_address_and_statements_expire() {
        let start = Instant::now();
        let mut votes = IpVotes::new(Duration::from_secs(60), 3, false);
        for r in 1..=3u8 {
            votes.vote(start, IpAddr::V4(Ipv4Addr::new(r, 1, 1, 1)), ip("8.8.8.8"));
        }
        assert_eq!(votes.predicted(), Some(ip("8.8.8.8")));
        assert_eq!(votes.vote(start, ip("66.6.6.6"), ip("9.9.9.9")), None, "one liar among four");
        // An hour later the old statements are gone; two new networks are below quorum.
        let later = start + Duration::from_secs(3600);
        assert_eq!(votes.vote(later, ip("4.4.4.4"), ip("9.9.9.9")), None);
        assert_eq!(votes.vote(later, ip("5.5.5.5"), ip("9.9.9.9")), None);
        assert_eq!(votes.vote(later, ip("7.7.7.7"), ip("9.9.9.9")), Some(ip("9.9.9.9")));
        assert_eq!(votes.vote(later, ip("::ffff:7.7.8.7"), ip("::ffff:9.9.9.9")), None, "mapped = v4");
    }
}
