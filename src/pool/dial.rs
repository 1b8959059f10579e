//! The dial scheduler: which node to dial next.
//!
//! Candidates arrive from every discovery source; a [`CandidateFilter`] (the EIP-2124 fork
//! filter in a node) drops other chains' nodes *before* they take any memory or dial slot
//! (reth#22013: 45k tracked peers from other networks burned the dial slots).
//!
//! Candidates wait in three round-robin queues:
//!
//! - `priority`: known-good peers from the address book, dialed first after a restart;
//! - `fresh`: nodes only heard of;
//! - `tried`: nodes we were connected to before.
//!
//! Each dial moves its node to the back of its queue, and the scheduler alternates between
//! `fresh` and `tried`, so every candidate gets its turn before any is dialed again: a few
//! repeatedly backed-off nodes cannot starve new ones (reth#1405: 10,990 dials to 931
//! addresses in 3 hours). Nodes in backoff or dialed within the dial history (35 s, geth)
//! are skipped without consuming a dial slot. Static and trusted peers are looked at before
//! any queue and are never forgotten.

// Crate-internal: `pub` items here are re-exported by `pool` only where the public API or the
// `test-utils` feature needs them.
#![allow(unreachable_pub)]
#![cfg_attr(not(test), allow(dead_code))]

use std::{
    collections::{HashMap, HashSet, VecDeque},
    net::SocketAddr,
    time::{Duration, Instant},
};

use super::{reputation::PeerKind, PoolConfig};
use crate::record::{Candidate, CandidateSource, EthEntry, ForkFilter, ForkId, PeerId};

pub use crate::rlpx::Backoff;

/// The wait before redialing a node after its `failures`-th consecutive failure of class
/// `kind`: the class's base duration × (1 + failures), capped at
/// [`PoolConfig::backoff_max`] (reth's formula). The class is the failing error's own
/// answer ([`RlpxError::backoff`](crate::rlpx::RlpxError::backoff),
/// [`EthError::backoff`](crate::eth::EthError::backoff)); the pool only picks durations.
/// [`Backoff::None`] (the failure says nothing about the peer) still waits the low
/// duration: reth backs off even a clean close, for the remote's inbound throttle.
pub fn backoff_duration(kind: Backoff, config: &PoolConfig, failures: u32) -> Duration {
    let base = match kind {
        Backoff::None | Backoff::Low => config.backoff_low,
        Backoff::Medium => config.backoff_medium,
        Backoff::High => config.backoff_high,
    };
    base.saturating_mul(failures.saturating_add(1)).min(config.backoff_max)
}

/// Decides whether a discovered node is worth dialing; it sees the node before anything
/// else does. Any `Fn(&Candidate) -> bool` is one.
pub trait CandidateFilter: Send + Sync + 'static {
    /// `true` to keep the candidate.
    fn accept(&self, candidate: &Candidate) -> bool;
}

impl<F> CandidateFilter for F
where
    F: Fn(&Candidate) -> bool + Send + Sync + 'static,
{
    fn accept(&self, candidate: &Candidate) -> bool {
        self(candidate)
    }
}

/// Filters candidates by the fork id in their record (EIP-2124 via EIP-868).
///
/// `check` is the fork validation (`ForkFilter::validate(..).is_ok()` in a node). A record
/// without an `eth` entry, or with an undecodable one, is rejected: it is a consensus-layer
/// node or another network's. A candidate with no record at all (a bootnode URL, a discv4
/// node that has not answered ENRRequest) is let through when `allow_unknown` is set,
/// since the Status handshake checks the fork id again.
pub struct ForkIdFilter<F> {
    check: F,
    allow_unknown: bool,
}

impl<F> std::fmt::Debug for ForkIdFilter<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForkIdFilter").field("allow_unknown", &self.allow_unknown).finish_non_exhaustive()
    }
}

impl<F: Fn(ForkId) -> bool + Send + Sync + 'static> ForkIdFilter<F> {
    /// A filter using `check` on each advertised fork id.
    pub fn new(check: F, allow_unknown: bool) -> Self {
        Self { check, allow_unknown }
    }
}

impl ForkIdFilter<()> {
    /// A filter that validates each advertised fork id against `filter` (EIP-2124 rules).
    /// When the local head passes a fork, build a new one and hand it to
    /// [`PoolState::set_filter`](super::PoolState::set_filter).
    pub fn from_fork_filter(
        filter: ForkFilter,
        allow_unknown: bool,
    ) -> ForkIdFilter<impl Fn(ForkId) -> bool + Send + Sync + 'static> {
        ForkIdFilter::new(move |id| filter.validate(id).is_ok(), allow_unknown)
    }
}

impl<F: Fn(ForkId) -> bool + Send + Sync + 'static> CandidateFilter for ForkIdFilter<F> {
    fn accept(&self, candidate: &Candidate) -> bool {
        if matches!(candidate.source, CandidateSource::Static) {
            return true;
        }
        match candidate.eth {
            EthEntry::ForkId(id) => (self.check)(id),
            EthEntry::Missing | EthEntry::Malformed => false,
            EthEntry::Unknown => self.allow_unknown,
            // A future variant: be conservative.
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
}

/// What the pool says about a node the scheduler wants to dial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Dial it.
    Dial,
    /// Not now (its subnet is full); keep it queued.
    Later,
    /// Not at all (connected, banned, ourselves); drop it from the queue until it comes
    /// back through [`DialScheduler::requeue`].
    Skip,
}

/// A dial the pool should make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialTarget {
    /// Who.
    pub peer_id: PeerId,
    /// Where (its RLPx TCP address).
    pub addr: SocketAddr,
    /// Static, trusted or basic.
    pub kind: PeerKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queue {
    Priority,
    Fresh,
    Tried,
}

#[derive(Debug, Clone)]
struct Entry {
    addr: SocketAddr,
    kind: PeerKind,
    tried: bool,
    failures: u32,
    backoff_until: Option<Instant>,
    last_dialed: Option<Instant>,
    queued: Option<Queue>,
}

/// The dial scheduler core. Owned by [`PoolState`](super::PoolState).
#[derive(Debug)]
pub struct DialScheduler {
    entries: HashMap<PeerId, Entry>,
    statics: Vec<PeerId>,
    priority: VecDeque<PeerId>,
    fresh: VecDeque<PeerId>,
    tried: VecDeque<PeerId>,
    dialing: HashSet<PeerId>,
    /// Nodes a DNS tree listed (their share of outbound slots is capped).
    dns: HashSet<PeerId>,
    /// Alternation between the fresh and tried queues.
    fresh_turn: bool,
}

impl DialScheduler {
    /// An empty scheduler.
    pub fn new() -> Self {
        Self {
            entries: HashMap::new(),
            statics: Vec::new(),
            priority: VecDeque::new(),
            fresh: VecDeque::new(),
            tried: VecDeque::new(),
            dialing: HashSet::new(),
            dns: HashSet::new(),
            fresh_turn: true,
        }
    }

    /// Adds a static or trusted peer: dialed before anything else, never forgotten.
    pub fn add_static(&mut self, peer_id: PeerId, addr: SocketAddr, kind: PeerKind) {
        let entry = self.entries.entry(peer_id).or_insert_with(|| Entry {
            addr,
            kind,
            tried: false,
            failures: 0,
            backoff_until: None,
            last_dialed: None,
            queued: None,
        });
        entry.addr = addr;
        entry.kind = kind;
        if !self.statics.contains(&peer_id) {
            self.statics.push(peer_id);
        }
    }

    /// Adds (or refreshes the address of) a discovered node. `known_good` puts it in the
    /// priority queue (address-book peers we were connected to). When the scheduler holds
    /// `max` nodes the oldest never-tried one is forgotten to make room.
    pub fn add(&mut self, peer_id: PeerId, addr: SocketAddr, known_good: bool, max: usize) {
        if let Some(entry) = self.entries.get_mut(&peer_id) {
            // A node that moved: dial the new address next time.
            entry.addr = addr;
            return;
        }
        if self.entries.len() >= max && !self.evict_one() {
            return;
        }
        let queue = if known_good { Queue::Priority } else { Queue::Fresh };
        self.entries.insert(
            peer_id,
            Entry {
                addr,
                kind: PeerKind::Basic,
                tried: known_good,
                failures: 0,
                backoff_until: None,
                last_dialed: None,
                queued: None,
            },
        );
        self.push(peer_id, queue);
    }

    fn evict_one(&mut self) -> bool {
        while let Some(victim) = self.fresh.pop_front() {
            if self.dialing.contains(&victim) {
                self.fresh.push_back(victim);
                return false;
            }
            if let Some(e) = self.entries.get(&victim) {
                if e.kind == PeerKind::Basic {
                    self.entries.remove(&victim);
                    self.dns.remove(&victim);
                    return true;
                }
            }
        }
        false
    }

    fn push(&mut self, peer_id: PeerId, queue: Queue) {
        let Some(entry) = self.entries.get_mut(&peer_id) else { return };
        if entry.queued.is_some() || entry.kind.is_vouched() {
            return;
        }
        entry.queued = Some(queue);
        match queue {
            Queue::Priority => self.priority.push_back(peer_id),
            Queue::Fresh => self.fresh.push_back(peer_id),
            Queue::Tried => self.tried.push_back(peer_id),
        }
    }

    /// Puts a node back in line after its session ended (or its ban expired).
    pub fn requeue(&mut self, peer_id: PeerId) {
        if let Some(e) = self.entries.get(&peer_id) {
            let q = if e.tried { Queue::Tried } else { Queue::Fresh };
            self.push(peer_id, q);
        }
    }

    /// Forgets a node (banned, or failed too often). Static peers stay.
    pub fn remove(&mut self, peer_id: &PeerId) {
        if self.entries.get(peer_id).is_some_and(|e| e.kind.is_vouched()) {
            return;
        }
        // Queues are cleaned lazily: a popped id without an entry is skipped.
        self.entries.remove(peer_id);
        self.dns.remove(peer_id);
    }

    fn ready(&self, peer_id: &PeerId, now: Instant, history: Duration) -> bool {
        let Some(e) = self.entries.get(peer_id) else { return false };
        if self.dialing.contains(peer_id) {
            return false;
        }
        if e.backoff_until.is_some_and(|t| now < t) {
            return false;
        }
        e.last_dialed.is_none_or(|t| now.saturating_duration_since(t) >= history)
    }

    /// Up to `max` dials to make now, static peers first, then the priority queue, then
    /// fresh and tried alternately. `admit` is asked about each (its last argument: whether a
    /// DNS tree listed it); nodes it refuses for now stay queued.
    pub fn next_dials(
        &mut self,
        now: Instant,
        max: usize,
        history: Duration,
        mut admit: impl FnMut(&PeerId, SocketAddr, PeerKind, bool) -> Admission,
    ) -> Vec<DialTarget> {
        let mut out = Vec::new();
        for i in 0..self.statics.len() {
            if out.len() >= max {
                return out;
            }
            let id = self.statics[i];
            if !self.ready(&id, now, history) {
                continue;
            }
            let e = &self.entries[&id];
            if admit(&id, e.addr, e.kind, self.dns.contains(&id)) == Admission::Dial {
                out.push(self.start(id, now));
            }
        }
        // Each queue is scanned at most once around per call, so a queue full of nodes in
        // backoff costs one pass and never loops.
        let mut budget = [self.priority.len(), self.fresh.len(), self.tried.len()];
        while out.len() < max {
            let queue = if budget[0] > 0 {
                Queue::Priority
            } else if budget[1] > 0 && (self.fresh_turn || budget[2] == 0) {
                Queue::Fresh
            } else if budget[2] > 0 {
                Queue::Tried
            } else {
                break;
            };
            let (q, b) = match queue {
                Queue::Priority => (&mut self.priority, &mut budget[0]),
                Queue::Fresh => (&mut self.fresh, &mut budget[1]),
                Queue::Tried => (&mut self.tried, &mut budget[2]),
            };
            *b -= 1;
            let Some(id) = q.pop_front() else { continue };
            let Some(entry) = self.entries.get_mut(&id) else { continue };
            if entry.queued != Some(queue) {
                continue; // a stale duplicate
            }
            entry.queued = None;
            if !self.ready(&id, now, history) {
                self.push(id, queue);
                continue;
            }
            let e = &self.entries[&id];
            match admit(&id, e.addr, e.kind, self.dns.contains(&id)) {
                Admission::Dial => {
                    out.push(self.start(id, now));
                    if queue != Queue::Priority {
                        self.fresh_turn = queue == Queue::Tried;
                    }
                }
                Admission::Later => self.push(id, queue),
                Admission::Skip => {}
            }
        }
        out
    }

    fn start(&mut self, peer_id: PeerId, now: Instant) -> DialTarget {
        let e = self.entries.get_mut(&peer_id).expect("started entries exist");
        e.last_dialed = Some(now);
        self.dialing.insert(peer_id);
        DialTarget { peer_id, addr: e.addr, kind: e.kind }
    }

    /// Dials in flight.
    pub fn dialing(&self) -> usize {
        self.dialing.len()
    }

    /// Marks a known node as listed by a DNS tree; it stays so while it is known.
    pub fn mark_dns(&mut self, peer_id: PeerId) {
        if self.entries.contains_key(&peer_id) {
            self.dns.insert(peer_id);
        }
    }

    /// Whether a DNS tree listed `peer_id`.
    pub fn is_dns(&self, peer_id: &PeerId) -> bool {
        self.dns.contains(peer_id)
    }

    /// Dials in flight to nodes a DNS tree listed.
    pub fn dialing_dns(&self) -> usize {
        self.dialing.iter().filter(|id| self.dns.contains(*id)).count()
    }

    /// The dial succeeded: the node is now known good.
    pub fn on_dial_success(&mut self, peer_id: &PeerId) {
        self.dialing.remove(peer_id);
        self.on_connected(peer_id);
    }

    /// A session with the node (either direction) was established.
    pub fn on_connected(&mut self, peer_id: &PeerId) {
        if let Some(e) = self.entries.get_mut(peer_id) {
            e.tried = true;
            e.failures = 0;
            e.backoff_until = None;
        }
    }

    /// The dial failed. Returns `true` if the node was forgotten (too many failures).
    pub fn on_dial_failure(
        &mut self,
        peer_id: &PeerId,
        kind: Backoff,
        now: Instant,
        config: &PoolConfig,
    ) -> bool {
        self.dialing.remove(peer_id);
        let Some(e) = self.entries.get_mut(peer_id) else { return false };
        e.backoff_until = Some(now + backoff_duration(kind, config, e.failures));
        e.failures = e.failures.saturating_add(1);
        if e.failures > config.max_backoff_count && !e.kind.is_vouched() {
            self.entries.remove(peer_id);
            self.dns.remove(peer_id);
            return true;
        }
        self.requeue(*peer_id);
        false
    }

    /// A session ended; `backoff` says how long to wait before redialing (reth backs off
    /// even a clean close for the inbound throttle, so it is at least `Low`).
    pub fn on_disconnected(&mut self, peer_id: &PeerId, backoff: Backoff, now: Instant, config: &PoolConfig) {
        if let Some(e) = self.entries.get_mut(peer_id) {
            let until = now + backoff_duration(backoff, config, 0);
            e.backoff_until = Some(e.backoff_until.map_or(until, |t| t.max(until)));
        }
        self.requeue(*peer_id);
    }

    /// Nodes known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether `peer_id` is known.
    pub fn contains(&self, peer_id: &PeerId) -> bool {
        self.entries.contains_key(peer_id)
    }

    /// Every known node with its address and whether we were ever connected to it.
    pub fn known(&self) -> impl Iterator<Item = (PeerId, SocketAddr, bool)> + '_ {
        self.entries.iter().map(|(id, e)| (*id, e.addr, e.tried))
    }
}

impl Default for DialScheduler {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u32) -> PeerId {
        let mut b = [0u8; 64];
        b[..4].copy_from_slice(&n.to_be_bytes());
        PeerId::from(b)
    }

    fn addr(n: u32) -> SocketAddr {
        SocketAddr::from((n.to_be_bytes(), 30303))
    }

    #[test]
    fn backoff_grows_and_caps() {
        let c = PoolConfig::default();
        assert_eq!(backoff_duration(Backoff::Low, &c, 0), Duration::from_secs(30));
        assert_eq!(backoff_duration(Backoff::Low, &c, 2), Duration::from_secs(90));
        assert_eq!(backoff_duration(Backoff::High, &c, 10), c.backoff_max);
    }

    #[test]
    fn history_and_backoff_prevent_redial() {
        let c = PoolConfig::default();
        let mut s = DialScheduler::new();
        let t0 = Instant::now();
        s.add(id(1), addr(1), false, 100);
        let d = s.next_dials(t0, 10, c.dial_history, |_, _, _, _| Admission::Dial);
        assert_eq!(d.len(), 1);
        s.on_dial_failure(&id(1), Backoff::Low, t0, &c);
        assert!(s
            .next_dials(t0 + Duration::from_secs(20), 10, c.dial_history, |_, _, _, _| Admission::Dial)
            .is_empty());
        // Out of the 35 s history but still in the 30 s backoff × 1... backoff is 30 s, history 35 s.
        assert!(s
            .next_dials(t0 + Duration::from_secs(34), 10, c.dial_history, |_, _, _, _| Admission::Dial)
            .is_empty());
        assert_eq!(
            s.next_dials(t0 + Duration::from_secs(36), 10, c.dial_history, |_, _, _, _| Admission::Dial)
                .len(),
            1
        );
    }

    #[test]
    fn forgets_after_too_many_failures_but_not_statics() {
        let c = PoolConfig::default();
        let mut s = DialScheduler::new();
        let t = Instant::now();
        s.add(id(1), addr(1), false, 100);
        s.add_static(id(2), addr(2), PeerKind::Static);
        for _ in 0..=c.max_backoff_count {
            s.on_dial_failure(&id(1), Backoff::High, t, &c);
            s.on_dial_failure(&id(2), Backoff::High, t, &c);
        }
        assert!(!s.contains(&id(1)));
        assert!(s.contains(&id(2)));
    }

    #[test]
    fn statics_first_then_priority() {
        let c = PoolConfig::default();
        let mut s = DialScheduler::new();
        let t = Instant::now();
        for n in 10..20 {
            s.add(id(n), addr(n), false, 100);
        }
        s.add(id(5), addr(5), true, 100);
        s.add_static(id(1), addr(1), PeerKind::Static);
        let d = s.next_dials(t, 2, c.dial_history, |_, _, _, _| Admission::Dial);
        assert_eq!(d.iter().map(|d| d.peer_id).collect::<Vec<_>>(), vec![id(1), id(5)]);
    }

    #[test]
    fn bounded_memory() {
        let mut s = DialScheduler::new();
        for n in 0..1000 {
            s.add(id(n), addr(n), false, 100);
        }
        assert_eq!(s.len(), 100);
        // The newest are kept.
        assert!(s.contains(&id(999)) && !s.contains(&id(0)));
    }

    #[test]
    fn fork_filter() {
        let good = ForkId { hash: [1, 2, 3, 4].into(), next: 0 };
        let bad = ForkId { hash: [9, 9, 9, 9].into(), next: 0 };
        let f = ForkIdFilter::new(move |id| id == good, true);
        let enode = crate::Enode { peer_id: id(1), ip: "1.2.3.4".parse().unwrap(), tcp_port: 1, udp_port: 1 };
        let mut c = Candidate::from_enode(&enode, CandidateSource::Discv5);
        assert!(f.accept(&c));
        c.eth = EthEntry::ForkId(good);
        assert!(f.accept(&c));
        c.eth = EthEntry::ForkId(bad);
        assert!(!f.accept(&c));
        c.eth = EthEntry::Missing;
        assert!(!f.accept(&c));
        c.source = CandidateSource::Static;
        assert!(f.accept(&c));
    }

    proptest! {
        /// Rotation fairness: with some nodes always failing, every node is still dialed
        /// within a bounded number of rounds, and no node is dialed twice inside the history.
        #[test]
        fn rotation_is_fair_and_history_respected(n in 2u32..60, failing in 0u32..60, per_round in 1usize..8) {
            let c = PoolConfig { max_backoff_count: u32::MAX, ..PoolConfig::default() };
            let mut s = DialScheduler::new();
            for i in 0..n { s.add(id(i), addr(i), false, 10_000); }
            let t0 = Instant::now();
            let mut last: HashMap<PeerId, Instant> = HashMap::new();
            let mut dialed: HashSet<PeerId> = HashSet::new();
            // Enough rounds for every node to come up once, even with the failures.
            let rounds = (n as usize).div_ceil(per_round) * 2 + 2;
            for r in 0..rounds {
                let now = t0 + Duration::from_secs(40 * r as u64);
                for d in s.next_dials(now, per_round, c.dial_history, |_, _, _, _| Admission::Dial) {
                    if let Some(prev) = last.insert(d.peer_id, now) {
                        prop_assert!(now.duration_since(prev) >= c.dial_history);
                    }
                    dialed.insert(d.peer_id);
                    let n_id = u32::from_be_bytes(d.peer_id[..4].try_into().unwrap());
                    if n_id < failing {
                        s.on_dial_failure(&d.peer_id, Backoff::Low, now, &c);
                    } else {
                        s.on_dial_success(&d.peer_id);
                        s.on_disconnected(&d.peer_id, Backoff::Low, now, &c);
                    }
                }
            }
            prop_assert_eq!(dialed.len(), n as usize);
        }
    }
}
