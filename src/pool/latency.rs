//! Latency and throughput: the estimate that decides who gets the next request.
//!
//! Per peer and per message type we keep two moving averages, as geth's
//! `p2p/msgrate` does: the round-trip time and the capacity (items delivered per second).
//! The request timeout is derived from the RTT (3 × RTT, clamped to [2 s, 20 s], reth's
//! `MINIMUM_TIMEOUT`/`MAXIMUM_TIMEOUT` and geth's `rttMinEstimate`/`rttMaxEstimate`), so a
//! fast peer is given up on quickly and a slow one is not punished for being slow.
//!
//! A peer may have several requests in flight, answered side by side or one after the
//! other: its capacity is then what it delivers over all of them, by Little's law items ×
//! requests in flight / RTT, not one answer's items / RTT (which would count a peer kept
//! busy as slow, by as many times as it is kept busy).
//!
//! Routing ([`rank_best`]) prefers, in order: a peer whose last answer was good (reth
//! `last_response_likely_bad`), then the higher share of capacity a new request would get
//! (capacity / (requests in flight + 1): the earliest expected answer), then the fewer
//! requests in flight, then the lower RTT. So a peer ten times slower gets a request only
//! once the fast ones have ten in flight, instead of its turn whenever it is the least
//! loaded (which made every download wait on its slowest peer). A peer not yet measured is
//! assumed to be as good as the median measured peer (geth starts new peers from the mean),
//! so it gets tried without displacing a peer known to be faster.

// Crate-internal: `pub` items here are re-exported by `pool` only where the public API or the
// `test-utils` feature needs them.
#![allow(unreachable_pub)]
#![cfg_attr(not(test), allow(dead_code))]

use std::time::Duration;

use crate::record::PeerId;

/// geth `measurementImpact`: weight of a new sample in the moving averages.
pub const MEASUREMENT_IMPACT: f64 = 0.1;

/// reth `MINIMUM_TIMEOUT`, geth `rttMinEstimate`: no request times out sooner.
pub const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// reth `MAXIMUM_TIMEOUT` and `INITIAL_REQUEST_TIMEOUT`, geth `rttMaxEstimate`: no request
/// waits longer, and an unmeasured peer gets this much.
pub const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// reth `TIMEOUT_SCALING`, geth `ttlScaling`: the timeout is this many round trips.
pub const TIMEOUT_SCALING: u32 = 3;

/// Samples shorter than this are counted as this long, so that a loopback answer does not
/// produce an infinite capacity.
/// How much less a peer whose last answer was bad (invalid or timed out) is worth than a
/// median peer when requests are routed (see [`rank_best`]).
pub const BAD_ANSWER_PENALTY: f64 = 4.0;

const MIN_ELAPSED: Duration = Duration::from_micros(100);

pub use crate::eth::RequestKind;

/// The slot of `kind`'s estimate.
fn index(kind: RequestKind) -> usize {
    RequestKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

/// Moving averages for one message type.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Estimate {
    /// Round-trip time in seconds.
    rtt: f64,
    /// Items per second.
    capacity: f64,
    /// Number of samples taken (saturating).
    samples: u32,
}

/// The latency and throughput estimate of one peer.
#[derive(Debug, Clone, Default)]
pub struct PeerLatency {
    kinds: [Estimate; RequestKind::ALL.len()],
    last_bad: bool,
}

impl PeerLatency {
    /// A peer with no measurements.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an answer to a `kind` request that took `elapsed` and carried `items`.
    /// An empty answer counts with zero items: fast but useless.
    pub fn record(&mut self, kind: RequestKind, elapsed: Duration, items: usize) {
        self.record_concurrent(kind, elapsed, items, 1);
    }

    /// Like [`Self::record`], for an answer that came while `in_flight` requests (this one
    /// included) were outstanding to the peer: the capacity sample is items × in flight /
    /// elapsed (Little's law), the RTT sample the elapsed time itself (the timeout must
    /// cover the wait behind the other requests).
    pub fn record_concurrent(&mut self, kind: RequestKind, elapsed: Duration, items: usize, in_flight: u32) {
        let elapsed = elapsed.max(MIN_ELAPSED).as_secs_f64();
        let measured = items as f64 * f64::from(in_flight.max(1)) / elapsed;
        let e = &mut self.kinds[index(kind)];
        if e.samples == 0 {
            // The first sample replaces the zero prior instead of being averaged with it.
            e.rtt = elapsed;
            e.capacity = measured;
        } else {
            e.rtt = (1.0 - MEASUREMENT_IMPACT) * e.rtt + MEASUREMENT_IMPACT * elapsed;
            e.capacity = (1.0 - MEASUREMENT_IMPACT) * e.capacity + MEASUREMENT_IMPACT * measured;
        }
        e.samples = e.samples.saturating_add(1);
    }

    /// Records a timeout after `waited`: a sample of zero items over the whole wait, as geth
    /// does, so the capacity falls and the RTT (hence the next timeout) grows.
    pub fn record_timeout(&mut self, kind: RequestKind, waited: Duration) {
        self.record(kind, waited, 0);
        self.last_bad = true;
    }

    /// Marks whether the last answer was good; a peer whose last answer was bad is tried last.
    pub fn set_last_bad(&mut self, bad: bool) {
        self.last_bad = bad;
    }

    /// Whether the last answer was bad (invalid or timed out).
    pub fn last_bad(&self) -> bool {
        self.last_bad
    }

    /// Estimated round-trip time for `kind`, if measured.
    pub fn rtt(&self, kind: RequestKind) -> Option<Duration> {
        let e = &self.kinds[index(kind)];
        (e.samples > 0).then(|| Duration::from_secs_f64(e.rtt))
    }

    /// Estimated items per second for `kind`, if measured.
    pub fn capacity(&self, kind: RequestKind) -> Option<f64> {
        let e = &self.kinds[index(kind)];
        (e.samples > 0).then_some(e.capacity)
    }

    /// The timeout for the next `kind` request: 3 × RTT clamped to [2 s, 20 s], or 20 s if
    /// nothing is known yet.
    pub fn timeout(&self, kind: RequestKind) -> Duration {
        match self.rtt(kind) {
            Some(rtt) => (rtt * TIMEOUT_SCALING).clamp(MIN_REQUEST_TIMEOUT, MAX_REQUEST_TIMEOUT),
            None => MAX_REQUEST_TIMEOUT,
        }
    }
}

/// Picks the best of `peers` (each with its requests in flight) for a `kind` request: the
/// higher capacity per request in flight after this one (a peer whose last answer was bad
/// counts as a median peer divided by [`BAD_ANSWER_PENALTY`]), then
/// the fewer in flight, then the lower RTT, then the lower peer id (so the choice is
/// deterministic).
///
/// Unmeasured peers are ranked with the median capacity of the measured ones (and, before
/// anyone is measured, the least loaded goes first).
pub fn rank_best<'a, I>(peers: I, kind: RequestKind) -> Option<PeerId>
where
    I: IntoIterator<Item = (PeerId, &'a PeerLatency, u32)>,
{
    let peers: Vec<(PeerId, &PeerLatency, u32)> = peers.into_iter().collect();
    let mut measured: Vec<f64> = peers.iter().filter_map(|(_, l, _)| l.capacity(kind)).collect();
    measured.sort_by(f64::total_cmp);
    let median = measured.get(measured.len() / 2).copied().unwrap_or(0.0);
    let key = |l: &PeerLatency, in_flight: u32| {
        // A bad last answer says nothing about capacity: such a peer counts as a median one
        // worth a quarter, so it is asked again (and judged again) only once the good peers
        // are loaded; ranking it behind every good peer would spare a liar its next strikes.
        let capacity =
            if l.last_bad() { median / BAD_ANSWER_PENALTY } else { l.capacity(kind).unwrap_or(median) };
        let share = capacity / (f64::from(in_flight) + 1.0);
        let rtt = l.rtt(kind).map_or(f64::INFINITY, |d| d.as_secs_f64());
        (share, -f64::from(in_flight), -rtt)
    };
    peers
        .into_iter()
        .max_by(|(a_id, a, a_load), (b_id, b, b_load)| {
            let (ka, kb) = (key(a, *a_load), key(b, *b_load));
            ka.0.total_cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then(ka.2.total_cmp(&kb.2)).then(b_id.cmp(a_id))
        })
        .map(|(id, _, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u8) -> PeerId {
        PeerId::repeat_byte(n)
    }

    #[test]
    fn timeout_is_clamped() {
        let mut l = PeerLatency::new();
        assert_eq!(l.timeout(RequestKind::BlockHeaders), MAX_REQUEST_TIMEOUT);
        l.record(RequestKind::BlockHeaders, Duration::from_millis(10), 100);
        assert_eq!(l.timeout(RequestKind::BlockHeaders), MIN_REQUEST_TIMEOUT);
        let mut slow = PeerLatency::new();
        slow.record(RequestKind::BlockHeaders, Duration::from_secs(15), 1);
        assert_eq!(slow.timeout(RequestKind::BlockHeaders), MAX_REQUEST_TIMEOUT);
        let mut mid = PeerLatency::new();
        mid.record(RequestKind::BlockHeaders, Duration::from_secs(2), 1);
        assert_eq!(mid.timeout(RequestKind::BlockHeaders), Duration::from_secs(6));
        // Kinds are independent.
        assert_eq!(mid.timeout(RequestKind::Receipts), MAX_REQUEST_TIMEOUT);
    }

    #[test]
    fn moving_average_converges() {
        let mut l = PeerLatency::new();
        l.record(RequestKind::BlockBodies, Duration::from_secs(1), 10);
        for _ in 0..100 {
            l.record(RequestKind::BlockBodies, Duration::from_millis(100), 10);
        }
        let rtt = l.rtt(RequestKind::BlockBodies).unwrap();
        assert!(rtt < Duration::from_millis(101) && rtt > Duration::from_millis(99), "{rtt:?}");
        assert!((l.capacity(RequestKind::BlockBodies).unwrap() - 100.0).abs() < 0.5);
    }

    #[test]
    fn concurrent_answers_count_the_capacity_over_all_in_flight() {
        let (mut one, mut four) = (PeerLatency::new(), PeerLatency::new());
        one.record(RequestKind::BlockBodies, Duration::from_millis(40), 128);
        four.record_concurrent(RequestKind::BlockBodies, Duration::from_millis(40), 128, 4);
        assert_eq!(
            four.capacity(RequestKind::BlockBodies),
            one.capacity(RequestKind::BlockBodies).map(|c| c * 4.0)
        );
        assert_eq!(
            four.rtt(RequestKind::BlockBodies),
            one.rtt(RequestKind::BlockBodies),
            "the wait is the wait"
        );
        // The share a new request gets: four in flight at four times the capacity is one idle.
        let (a, b) = (PeerId::repeat_byte(1), PeerId::repeat_byte(2));
        assert_eq!(rank_best([(a, &one, 0), (b, &four, 2)], RequestKind::BlockBodies), Some(b));
        assert_eq!(rank_best([(a, &one, 0), (b, &four, 4)], RequestKind::BlockBodies), Some(a));
    }

    #[test]
    fn timeouts_lower_capacity_and_mark_bad() {
        let mut l = PeerLatency::new();
        l.record(RequestKind::BlockHeaders, Duration::from_millis(10), 10);
        let before = l.capacity(RequestKind::BlockHeaders).unwrap();
        l.record_timeout(RequestKind::BlockHeaders, Duration::from_secs(2));
        assert!(l.capacity(RequestKind::BlockHeaders).unwrap() < before);
        assert!(l.last_bad());
    }

    #[test]
    fn prefers_good_then_fast() {
        let mut fast = PeerLatency::new();
        fast.record(RequestKind::BlockHeaders, Duration::from_millis(5), 100);
        let mut slow = PeerLatency::new();
        slow.record(RequestKind::BlockHeaders, Duration::from_millis(300), 100);
        let fresh = PeerLatency::new();
        let best =
            rank_best([(id(1), &slow, 0), (id(2), &fast, 0), (id(3), &fresh, 0)], RequestKind::BlockHeaders);
        assert_eq!(best, Some(id(2)));
        fast.set_last_bad(true);
        // The fast peer just lied: everyone else goes first, and the unmeasured peer is
        // valued at the median capacity, above the slow one.
        let best =
            rank_best([(id(1), &slow, 0), (id(2), &fast, 0), (id(3), &fresh, 0)], RequestKind::BlockHeaders);
        assert_eq!(best, Some(id(3)));
        assert_eq!(rank_best(std::iter::empty(), RequestKind::BlockHeaders), None);
    }

    proptest! {
        /// Between two peers measured on the same items, the faster one is chosen.
        #[test]
        fn best_peer_is_the_faster(a_ms in 1u64..5000, b_ms in 1u64..5000, items in 1usize..1024, n in 1usize..20) {
            let (mut a, mut b) = (PeerLatency::new(), PeerLatency::new());
            for _ in 0..n {
                a.record(RequestKind::BlockHeaders, Duration::from_millis(a_ms), items);
                b.record(RequestKind::BlockHeaders, Duration::from_millis(b_ms), items);
            }
            let best = rank_best([(id(1), &a, 0), (id(2), &b, 0)], RequestKind::BlockHeaders).unwrap();
            if a_ms < b_ms { prop_assert_eq!(best, id(1)); }
            if b_ms < a_ms { prop_assert_eq!(best, id(2)); }
            let t = a.timeout(RequestKind::BlockHeaders);
            prop_assert!(t >= MIN_REQUEST_TIMEOUT && t <= MAX_REQUEST_TIMEOUT);
        }
    }
}
