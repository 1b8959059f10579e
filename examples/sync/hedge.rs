//! Hedging: a request in flight for too long is sent again to another peer, for what it
//! still lacks, and the first answer wins. Two cases: at the end of a download (nothing else
//! to ask, so the oldest late requests are duplicated) and whenever a late request holds
//! the block the in-order writer needs next (duplicated at once, whatever else is queued).

use std::{
    sync::atomic::Ordering::Relaxed,
    time::{Duration, Instant},
};

use super::{Job, Segment, Syncer, HEDGE_FACTOR, MIN_HEDGE_AFTER, SEGMENT};

/// A request in flight, for hedging: what it asked for, and since when.
#[derive(Debug)]
pub(super) struct Outstanding {
    pub(super) class: usize,
    pub(super) started: Instant,
    /// What a duplicate would ask for (`None`: skeletons and tails are not hedged, nor are
    /// duplicates themselves).
    pub(super) hedge: Option<Hedge>,
}

#[derive(Debug, Clone)]
pub(super) enum Hedge {
    Fill { segment: usize, from: u64 },
    Bodies(Vec<u64>),
    Receipts(Vec<u64>),
}

impl Hedge {
    /// Whether the request asks for something of block `n`.
    fn covers(&self, n: u64) -> bool {
        match self {
            Hedge::Fill { from, .. } => (*from..*from + SEGMENT).contains(&n),
            Hedge::Bodies(numbers) | Hedge::Receipts(numbers) => numbers.binary_search(&n).is_ok(),
        }
    }
}

impl Syncer {
    /// Gives `job` an id and remembers it as in flight.
    pub(super) fn track(&mut self, class: usize, job: Job, hedgeable: bool) -> (u64, Job) {
        let hedge = match &job {
            _ if !hedgeable => None,
            Job::Fill { segment, from } => Some(Hedge::Fill { segment: *segment, from: *from }),
            Job::Bodies(h) => Some(Hedge::Bodies(h.iter().map(|h| h.number).collect())),
            Job::Receipts(h) => Some(Hedge::Receipts(h.iter().map(|h| h.number).collect())),
            Job::Skeleton { .. } | Job::Tail { .. } => None,
        };
        let id = self.next_id;
        self.next_id += 1;
        self.in_flight[class] += 1;
        self.outstanding.insert(id, Outstanding { class, started: Instant::now(), hedge });
        (id, job)
    }

    /// Duplicates of the oldest requests still waiting long past the usual answer time, for
    /// what they still lack (at most `free`).
    pub(super) fn hedges(&mut self, free: usize, now: Instant) -> Vec<(u64, Job)> {
        let after = self.late_after();
        let mut picked = Vec::new();
        for o in self.outstanding.values_mut() {
            if picked.len() == free || now.duration_since(o.started) < after {
                break;
            }
            if let Some(hedge) = o.hedge.take() {
                picked.push((o.class, hedge));
            }
        }
        picked.into_iter().filter_map(|(class, hedge)| self.duplicate(class, hedge)).collect()
    }

    /// The request that a hedge still needs (what no answer has brought yet), tracked as not
    /// hedgeable again; `None` when nothing is missing any more.
    fn duplicate(&mut self, class: usize, hedge: Hedge) -> Option<(u64, Job)> {
        let job = match hedge {
            Hedge::Fill { segment, from } => {
                let live = self.skeleton.as_ref().is_some_and(|s| {
                    s.anchor.number + SEGMENT * segment as u64 + 1 == from
                        && matches!(s.segments.get(segment), Some(Segment::InFlight))
                });
                live.then_some(Job::Fill { segment, from })
            }
            Hedge::Bodies(n) => {
                let missing: Vec<u64> =
                    n.into_iter().filter(|n| self.blocks.get(n).is_some_and(|p| p.body.is_none())).collect();
                (!missing.is_empty()).then(|| Job::Bodies(self.headers_of(&missing)))
            }
            Hedge::Receipts(n) => {
                let missing: Vec<u64> = n
                    .into_iter()
                    .filter(|n| self.blocks.get(n).is_some_and(|p| p.receipts.is_none()))
                    .collect();
                (!missing.is_empty()).then(|| Job::Receipts(self.headers_of(&missing)))
            }
        };
        let job = job?;
        self.progress.hedged.fetch_add(1, Relaxed);
        Some(self.track(class, job, false))
    }

    /// Duplicates, to another peer, the late requests that hold the first block the in-order
    /// writer needs, whatever else is queued and over the budget: otherwise one slow peer's
    /// answer holds up every block stored after it, while the fast peers' answers pile up
    /// in memory. A request is late after `HEDGE_FACTOR` times the usual answer time (at
    /// least `MIN_HEDGE_AFTER`); each is duplicated once, and the first answer wins.
    pub(super) fn unblock_writer(&mut self, now: Instant) -> Vec<(u64, Job)> {
        let next = self.handed + 1;
        let after = self.late_after();
        let mut picked = Vec::new();
        for o in self.outstanding.values_mut() {
            if now.duration_since(o.started) < after {
                break; // ids grow with time: the rest are younger
            }
            if o.hedge.as_ref().is_some_and(|h| h.covers(next)) {
                picked.push((o.class, o.hedge.take().expect("checked above")));
            }
        }
        picked.into_iter().filter_map(|(class, hedge)| self.duplicate(class, hedge)).collect()
    }

    /// How long a request may wait before it counts as late: `HEDGE_FACTOR` times the usual
    /// answer time, at least `MIN_HEDGE_AFTER`.
    fn late_after(&self) -> Duration {
        (self.rtt * HEDGE_FACTOR).max(MIN_HEDGE_AFTER)
    }
}
