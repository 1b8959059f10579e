#![allow(dead_code)] // Shared with examples/sync_bench.rs and tests/it/sync.rs, which use parts.

//! The download: headers by skeleton and parallel fill, then bodies and receipts for every
//! block, many requests in flight across the pool, and complete blocks appended to the
//! [`Store`] in order.
//!
//! ```text
//!  skeleton (one peer): headers T+192, T+384, … (skip 191), up to MAX_AHEAD past the store
//!  fill (any peers, in parallel): segment k = T+192(k-1)+1 ..= T+192k, accepted only if its
//!      first header's parent is point k-1 (or T) and its last header is point k
//!  linked segments ─▶ verified headers ─▶ bodies and receipts (any peers, batches, in parallel)
//!  complete blocks, lowest first ─▶ Writer (its own thread): Store::append ─▶ Node::set_head
//! ```
//!
//! As go-ethereum's downloader does, one peer's skeleton anchors the others' answers: the
//! library checks that each fill is one linked run of the right numbers, and the syncer that
//! it joins the skeleton at both ends, so every accepted header is linked to the stored head
//! and from there to the genesis. A fill that does not join is reported and re-queued; when
//! two different peers' fills disagree with the skeleton at one point, the skeleton is the
//! suspect: its peer is reported and a new skeleton is fetched. Near the head (less than a
//! segment past the last skeleton point) headers are fetched forward from the verified tip
//! and must link to it.
//!
//! Bodies and receipts are asked by hash for verified headers only; the node validates each
//! against its header (transactions, ommers, withdrawals and receipts roots) and retries a
//! failed request on up to three peers, scoring each. What comes back partial or not at all
//! goes straight back into the queue. Blocks whose header says they are empty (empty
//! transactions root and no ommers) need no request.
//!
//! Limits: this syncer trusts the longest linked chain its peers serve, as a header-first
//! sync before consensus checks does; it checks no proof of work or beacon signatures. The
//! node routes each request to its best idle peer and cannot be told to skip a peer whose
//! announced block range ends below the request: a peer that lacks blocks answers empty and
//! the node tries another (see the report for the library change that would avoid this).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use alloy_consensus::{
    BlockBody, Header, ReceiptEnvelope, Sealed, TxEnvelope, EMPTY_OMMER_ROOT_HASH, EMPTY_ROOT_HASH,
};
use alloy_rlp::Encodable;
use ethp2p::{
    eth::{EthMessage, GetBlockHeaders},
    node::Node,
    pool::ReputationChange,
    NodeError, PeerId,
};
use parking_lot::Mutex;
use tokio::task::JoinSet;

use crate::{
    store::{Store, StoreError, StoredBlock},
    writer::Writer,
};

#[path = "hedge.rs"]
mod hedge;
use hedge::Outstanding;

/// Headers per fill segment, and the skeleton's stride: go-ethereum's `MaxHeaderFetch`.
pub(crate) const SEGMENT: u64 = 192;
/// Skeleton points per request: go-ethereum's `MaxSkeletonSize`.
pub(crate) const SKELETON_POINTS: u64 = 128;
/// Blocks per `GetBlockBodies`: go-ethereum's `MaxBlockFetch`.
pub(crate) const BODY_BATCH: usize = 128;
/// Blocks per `GetReceipts`: go-ethereum's `MaxReceiptFetch` is 256; half keeps answers of
/// receipt-heavy blocks well under the 2 MiB soft limit, so fewer come back partial.
pub(crate) const RECEIPT_BATCH: usize = 128;
/// Once two different peers' fills disagree with a skeleton point, the skeleton is dropped.
const SKELETON_DISPUTES: usize = 2;
/// ... and after this many failed fills of one segment, whoever disagreed.
const SEGMENT_FAILURES: usize = 4;
/// How long to wait before asking again when no peer could take a request.
const NO_PEER_BACKOFF: Duration = Duration::from_millis(200);
/// How long to wait at the head before asking for newer headers again.
const AT_HEAD_POLL: Duration = Duration::from_secs(1);
/// How many times in a row the head must be confirmed before `exit_when_synced` stops.
const SYNCED_CONFIRMATIONS: u32 = 3;
/// A peer counts as "in use" for this long after it served an answer.
const IN_USE_WINDOW: Duration = Duration::from_secs(5);
/// The node is told of our head at most this often (it sends `BlockRangeUpdate` itself).
const SET_HEAD_INTERVAL: Duration = Duration::from_millis(500);
/// With nothing else to ask, a request in flight for this many times the usual answer time
/// is sent again to another peer (the first answer wins): one slow peer then never holds
/// up the end of a download, or the in-order writer.
const HEDGE_FACTOR: u32 = 4;
/// ... but never sooner than this.
const MIN_HEDGE_AFTER: Duration = Duration::from_millis(50);

/// How the syncer runs.
#[derive(Debug, Clone)]
pub(crate) struct SyncConfig {
    /// Requests in flight at most, across the pool. Default: 96, two each for 48 peers.
    pub(crate) max_in_flight: usize,
    /// Requests in flight per connected peer (the node spreads them, least loaded first).
    /// Default: 2, so a peer has the next request queued while it answers one.
    pub(crate) per_peer: usize,
    /// Verified headers kept ahead of the stored head (bounds memory). Default: 16,384.
    pub(crate) max_ahead: u64,
    /// Stop once no peer has blocks past ours. Default: keep following the head.
    pub(crate) exit_when_synced: bool,
    /// Wait for this many peers before the first request. Default: 1.
    pub(crate) min_peers: usize,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self { max_in_flight: 96, per_peer: 2, max_ahead: 16_384, exit_when_synced: false, min_peers: 1 }
    }
}

/// Counters the progress display reads (atomics: written by the syncer task only).
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// The stored head.
    pub(crate) stored: AtomicU64,
    /// The highest block number any peer showed us.
    pub(crate) target: AtomicU64,
    /// Headers accepted.
    pub(crate) headers: AtomicU64,
    /// Bytes of headers, bodies and receipts accepted (RLP).
    pub(crate) bytes: AtomicU64,
    /// Blocks stored by this run.
    pub(crate) blocks: AtomicU64,
    /// Requests in flight.
    pub(crate) in_flight: AtomicUsize,
    /// Connected peers.
    pub(crate) peers: AtomicUsize,
    /// Peers that served an answer in the last few seconds.
    pub(crate) in_use: AtomicUsize,
    /// Requests re-queued (failed after the node's retries, empty, partial, or not linked).
    pub(crate) retries: AtomicU64,
    /// Answers that were valid to the library but did not join the chain (reported).
    pub(crate) disputes: AtomicU64,
    /// Requests sent again to another peer because the first was slow.
    pub(crate) hedged: AtomicU64,
    /// Answers used, per peer that gave them (a short lock, taken once an answer).
    answers: Mutex<HashMap<PeerId, u64>>,
}

impl Progress {
    /// How many answers `peer` gave that the syncer used or checked.
    pub(crate) fn served_by(&self, peer: &PeerId) -> u64 {
        self.answers.lock().get(peer).copied().unwrap_or(0)
    }
}

/// Why the syncer stopped with an error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    /// The store failed (the message names the file).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The node stopped under us.
    #[error("the node shut down")]
    Shutdown,
}

/// One request the syncer sends.
#[derive(Debug)]
enum Job {
    Skeleton { anchor: Sealed<Header> },
    Tail { anchor: Sealed<Header> },
    Fill { segment: usize, from: u64 },
    Bodies(Vec<Sealed<Header>>),
    Receipts(Vec<Sealed<Header>>),
}

/// A job's outcome: the answer and the peer that gave it, or why there is none.
type Served = Result<(PeerId, Answer), NodeError>;

#[derive(Debug)]
enum Answer {
    Headers(Vec<Sealed<Header>>),
    Bodies(Vec<BlockBody<TxEnvelope>>),
    Receipts(Vec<Vec<ReceiptEnvelope>>),
}

#[derive(Debug)]
enum Segment {
    Pending,
    InFlight,
    Done(Vec<Sealed<Header>>),
    /// Moved into the verified headers.
    Linked,
}

#[derive(Debug)]
struct Skeleton {
    peer: PeerId,
    /// The verified header the skeleton starts after.
    anchor: Sealed<Header>,
    points: Vec<Sealed<Header>>,
    segments: Vec<Segment>,
    /// Fills that did not join, per segment: the peers that sent them.
    disputes: Vec<Vec<PeerId>>,
    /// Segments before this one are linked into the verified headers.
    linked: usize,
}

/// A verified header waiting for its body and receipts.
#[derive(Debug)]
struct Pending {
    header: Sealed<Header>,
    body: Option<BlockBody<TxEnvelope>>,
    receipts: Option<Vec<ReceiptEnvelope>>,
}

/// The syncer's state: owned by one task, driven by answers.
#[derive(Debug)]
struct Syncer {
    node: Node,
    store: Arc<Store>,
    config: SyncConfig,
    progress: Arc<Progress>,
    /// The last verified header (the stored head, or past it).
    tip: Sealed<Header>,
    skeleton: Option<Skeleton>,
    header_job: bool,
    blocks: BTreeMap<u64, Pending>,
    need_bodies: BTreeSet<u64>,
    need_receipts: BTreeSet<u64>,
    in_flight: [usize; 3],
    paused_until: Option<Instant>,
    at_head: Option<(Instant, u32)>,
    served: HashMap<PeerId, Instant>,
    /// The store's append thread, and the last block handed to it (the store's head, or
    /// past it while appends are queued).
    writer: Writer,
    handed: u64,
    /// Requests in flight by id (ids grow, so the oldest comes first).
    outstanding: BTreeMap<u64, Outstanding>,
    next_id: u64,
    /// A moving average of answer times.
    rtt: Duration,
}

/// Request classes, for the in-flight split.
const HEADERS: usize = 0;
const BODIES: usize = 1;
const RECEIPTS: usize = 2;

/// Downloads into `store` through `node` until synced (with `exit_when_synced`), `stop`
/// resolves, or an error.
pub(crate) async fn run(
    node: Node,
    store: Arc<Store>,
    config: SyncConfig,
    progress: Arc<Progress>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<Sealed<Header>, SyncError> {
    let tip = store.head();
    progress.stored.store(tip.number, Relaxed);
    progress.target.fetch_max(tip.number, Relaxed);
    let writer = {
        let (node, progress, runtime) = (node.clone(), progress.clone(), tokio::runtime::Handle::current());
        let mut last_set_head: Option<Instant> = None;
        Writer::spawn(store.clone(), move |head, appended| {
            progress.stored.store(head.number, Relaxed);
            progress.blocks.fetch_add(appended as u64, Relaxed);
            if last_set_head.is_none_or(|t| t.elapsed() >= SET_HEAD_INTERVAL) {
                last_set_head = Some(Instant::now());
                let (node, number, hash, timestamp) =
                    (node.clone(), head.number, head.hash(), head.timestamp);
                // The node's command queue is bounded; never hold the writer on it.
                runtime.spawn(async move {
                    let _ = node.set_head(number, hash, timestamp).await;
                });
            }
        })
        .map_err(|source| StoreError::Io {
            path: store.path().to_path_buf(),
            what: "cannot start the writer thread",
            source,
        })?
    };
    let mut syncer = Syncer {
        node: node.clone(),
        store,
        config,
        progress,
        handed: tip.number,
        tip,
        skeleton: None,
        header_job: false,
        blocks: BTreeMap::new(),
        need_bodies: BTreeSet::new(),
        need_receipts: BTreeSet::new(),
        in_flight: [0; 3],
        paused_until: None,
        at_head: None,
        served: HashMap::new(),
        writer,
        outstanding: BTreeMap::new(),
        next_id: 0,
        rtt: MIN_HEDGE_AFTER,
    };
    let mut announcements = node.announcements();
    let mut jobs: JoinSet<(u64, Job, Served)> = JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tokio::pin!(stop);
    let mut peers = 0;
    loop {
        if peers >= syncer.config.min_peers.max(1) {
            syncer.config.min_peers = 0;
            for (id, job) in syncer.next_jobs(peers, jobs.len()) {
                let node = node.clone();
                jobs.spawn(async move {
                    let answer = send(&node, &job).await;
                    (id, job, answer)
                });
            }
        }
        syncer.progress.in_flight.store(jobs.len(), Relaxed);
        if jobs.is_empty() && syncer.synced() {
            break;
        }
        tokio::select! {
            _ = &mut stop => break,
            Some(done) = jobs.join_next() => {
                let (id, job, answer) = done.expect("request tasks do not panic");
                syncer.on_answer(id, job, answer).await?;
            }
            _ = tick.tick() => {
                if syncer.writer.failed() {
                    syncer.writer.finish().await?;
                }
                peers = node.peers().await.map_err(|_| SyncError::Shutdown)?.len();
                syncer.progress.peers.store(peers, Relaxed);
                let window = Instant::now() - IN_USE_WINDOW;
                syncer.served.retain(|_, at| *at > window);
                syncer.progress.in_use.store(syncer.served.len(), Relaxed);
            }
            Some(a) = announcements.recv() => {
                // A peer's head, as far as it tells: only shown as the target; headers are
                // still fetched (and checked) from the skeleton.
                if let EthMessage::BlockRangeUpdate(range) = a.message {
                    syncer.progress.target.fetch_max(range.latest, Relaxed);
                }
            }
        }
    }
    jobs.shutdown().await;
    syncer.writer.finish().await?;
    syncer.store.sync()?;
    let head = syncer.store.head();
    let _ = node.set_head(head.number, head.hash(), head.timestamp).await;
    Ok(head)
}

/// Sends one job through the node (which picks the peer, validates, retries and scores).
async fn send(node: &Node, job: &Job) -> Served {
    let headers = |from: u64, count: u64, skip: u64| GetBlockHeaders {
        origin: from.into(),
        count,
        skip,
        reverse: false,
    };
    match job {
        Job::Skeleton { anchor } => {
            let request = headers(anchor.number + SEGMENT, SKELETON_POINTS, SEGMENT - 1);
            node.get_block_headers(request).await.map(|(p, h)| (p, Answer::Headers(h)))
        }
        Job::Tail { anchor } => node
            .get_block_headers(headers(anchor.number + 1, SEGMENT, 0))
            .await
            .map(|(p, h)| (p, Answer::Headers(h))),
        Job::Fill { from, .. } => {
            node.get_block_headers(headers(*from, SEGMENT, 0)).await.map(|(p, h)| (p, Answer::Headers(h)))
        }
        Job::Bodies(h) => node.get_block_bodies(h.clone()).await.map(|(p, b)| (p, Answer::Bodies(b))),
        Job::Receipts(h) => node.get_receipts(h.clone()).await.map(|(p, r)| (p, Answer::Receipts(r))),
    }
}

impl Syncer {
    /// Whether a run with `exit_when_synced` is done: the head confirmed and nothing pending.
    fn synced(&self) -> bool {
        self.config.exit_when_synced
            && self.blocks.is_empty()
            && self.skeleton.is_none()
            && self.at_head.is_some_and(|(_, n)| n >= SYNCED_CONFIRMATIONS)
    }

    /// The requests to send now, within the in-flight budget, each with its id.
    fn next_jobs(&mut self, peers: usize, in_flight: usize) -> Vec<(u64, Job)> {
        let now = Instant::now();
        if self.paused_until.is_some_and(|t| now < t) {
            return Vec::new();
        }
        let budget = (peers * self.config.per_peer).clamp(1, self.config.max_in_flight.max(1));
        // Each class may take at most half the budget (at least one), so headers never
        // starve the bodies they feed, nor the reverse.
        let share = budget.div_ceil(2).max(1);
        let mut jobs = Vec::new();
        let mut free = budget.saturating_sub(in_flight);
        while free > 0 {
            let before = jobs.len();
            for class in [BODIES, RECEIPTS, HEADERS] {
                if free == 0 || self.in_flight[class] >= share {
                    continue;
                }
                if let Some(job) = self.next_job(class, now) {
                    free -= 1;
                    jobs.push(self.track(class, job, true));
                }
            }
            if jobs.len() == before {
                break;
            }
        }
        if free > 0 && jobs.is_empty() && self.need_bodies.is_empty() && self.need_receipts.is_empty() {
            jobs.extend(self.hedges(free, now));
        }
        jobs.extend(self.unblock_writer(now));
        jobs
    }

    fn next_job(&mut self, class: usize, now: Instant) -> Option<Job> {
        match class {
            BODIES => {
                let batch = take_batch(&mut self.need_bodies, BODY_BATCH);
                (!batch.is_empty()).then(|| Job::Bodies(self.headers_of(&batch)))
            }
            RECEIPTS => {
                let batch = take_batch(&mut self.need_receipts, RECEIPT_BATCH);
                (!batch.is_empty()).then(|| Job::Receipts(self.headers_of(&batch)))
            }
            _ => self.next_header_job(now),
        }
    }

    fn next_header_job(&mut self, now: Instant) -> Option<Job> {
        if let Some(s) = &mut self.skeleton {
            let k = s.segments.iter().position(|seg| matches!(seg, Segment::Pending))?;
            s.segments[k] = Segment::InFlight;
            return Some(Job::Fill { segment: k, from: s.anchor.number + SEGMENT * k as u64 + 1 });
        }
        if self.header_job {
            return None;
        }
        let stored = self.progress.stored.load(Relaxed);
        if self.tip.number.saturating_sub(stored) + SEGMENT > self.config.max_ahead {
            return None;
        }
        if let Some((at, _)) = self.at_head {
            if now.duration_since(at) < AT_HEAD_POLL {
                return None;
            }
        }
        self.header_job = true;
        let anchor = self.tip.clone();
        // At the head, ask forward from the tip; otherwise a skeleton first.
        Some(if self.at_head.is_some() { Job::Tail { anchor } } else { Job::Skeleton { anchor } })
    }

    fn headers_of(&self, numbers: &[u64]) -> Vec<Sealed<Header>> {
        numbers.iter().map(|n| self.blocks[n].header.clone()).collect()
    }

    async fn on_answer(&mut self, id: u64, job: Job, answer: Served) -> Result<(), SyncError> {
        if let Some(o) = self.outstanding.remove(&id) {
            tracing::trace!(
                target: "sync",
                id,
                class = o.class,
                took_ms = o.started.elapsed().as_millis() as u64,
                peer = ?answer.as_ref().ok().map(|(p, _)| *p),
                ok = answer.is_ok(),
                stored = self.progress.stored.load(Relaxed),
                "answer"
            );
            self.in_flight[o.class] -= 1;
            if answer.is_ok() {
                self.rtt = (self.rtt * 7 + o.started.elapsed()) / 8;
            }
        }
        let answer = match answer {
            Ok((peer, answer)) => {
                self.served.insert(peer, Instant::now());
                *self.progress.answers.lock().entry(peer).or_insert(0) += 1;
                Some((peer, answer))
            }
            Err(NodeError::Shutdown) => return Err(SyncError::Shutdown),
            Err(NodeError::NoPeers) => {
                self.paused_until = Some(Instant::now() + NO_PEER_BACKOFF);
                None
            }
            // Failed on every peer tried (each scored by the node): queued again at once.
            Err(e) => {
                tracing::debug!(target: "sync", error = %e, "request failed");
                None
            }
        };
        match (job, answer) {
            (Job::Skeleton { anchor }, Some((peer, Answer::Headers(points)))) => {
                self.header_job = false;
                self.on_skeleton(anchor, peer, points);
            }
            (Job::Tail { anchor }, Some((peer, Answer::Headers(headers)))) => {
                self.header_job = false;
                self.on_tail(anchor, peer, headers).await;
            }
            (Job::Skeleton { .. } | Job::Tail { .. }, _) => {
                self.header_job = false;
                self.retry();
            }
            (Job::Fill { segment, from }, answer) => {
                let headers = match answer {
                    Some((peer, Answer::Headers(h))) => Some((peer, h)),
                    _ => None,
                };
                self.on_fill(segment, from, headers).await;
            }
            (Job::Bodies(asked), answer) => {
                let got = match answer {
                    Some((_, Answer::Bodies(b))) => b,
                    _ => Vec::new(),
                };
                if got.len() < asked.len() {
                    self.retry();
                }
                for (header, body) in asked.iter().zip(got) {
                    // A hedged duplicate's answer may come second: counted and kept once.
                    if let Some(p) = self.blocks.get_mut(&header.number).filter(|p| p.body.is_none()) {
                        self.progress.bytes.fetch_add(body.length() as u64, Relaxed);
                        p.body = Some(body);
                    }
                }
                for header in
                    asked.iter().filter(|h| self.blocks.get(&h.number).is_some_and(|p| p.body.is_none()))
                {
                    self.need_bodies.insert(header.number);
                }
            }
            (Job::Receipts(asked), answer) => {
                let got = match answer {
                    Some((_, Answer::Receipts(r))) => r,
                    _ => Vec::new(),
                };
                if got.len() < asked.len() {
                    self.retry();
                }
                for (header, receipts) in asked.iter().zip(got) {
                    if let Some(p) = self.blocks.get_mut(&header.number).filter(|p| p.receipts.is_none()) {
                        self.progress.bytes.fetch_add(receipts.length() as u64, Relaxed);
                        p.receipts = Some(receipts);
                    }
                }
                for header in
                    asked.iter().filter(|h| self.blocks.get(&h.number).is_some_and(|p| p.receipts.is_none()))
                {
                    self.need_receipts.insert(header.number);
                }
            }
        }
        // Headers of empty blocks complete them at once; answers complete the others.
        self.write().await
    }

    fn retry(&self) {
        self.progress.retries.fetch_add(1, Relaxed);
    }

    fn on_skeleton(&mut self, anchor: Sealed<Header>, peer: PeerId, points: Vec<Sealed<Header>>) {
        if anchor.hash() != self.tip.hash() {
            return; // The tip moved while it was in flight (cannot happen with one header job).
        }
        if points.is_empty() {
            // No peer has a full segment past our tip: fetch the rest forward.
            self.at_head = Some((Instant::now() - AT_HEAD_POLL, 0));
            return;
        }
        self.progress.target.fetch_max(points[points.len() - 1].number, Relaxed);
        let n = points.len();
        self.skeleton = Some(Skeleton {
            peer,
            anchor,
            points,
            segments: (0..n).map(|_| Segment::Pending).collect(),
            disputes: vec![Vec::new(); n],
            linked: 0,
        });
    }

    async fn on_tail(&mut self, anchor: Sealed<Header>, peer: PeerId, headers: Vec<Sealed<Header>>) {
        let now = Instant::now();
        if headers.is_empty() {
            let confirmations = self.at_head.map_or(0, |(_, n)| n) + 1;
            self.at_head = Some((now, confirmations));
            return;
        }
        if headers[0].parent_hash != anchor.hash() || anchor.hash() != self.tip.hash() {
            // Not our chain: a peer on another branch (or lying). Scored, asked again.
            self.dispute(peer).await;
            self.at_head = Some((now - AT_HEAD_POLL, 0));
            return;
        }
        let full = headers.len() as u64 == SEGMENT;
        self.progress.target.fetch_max(headers[headers.len() - 1].number, Relaxed);
        self.verified(headers);
        // A full answer means there may be a skeleton's worth more: go back to skeletons.
        self.at_head = if full { None } else { Some((now - AT_HEAD_POLL, 0)) };
    }

    async fn on_fill(&mut self, k: usize, from: u64, answer: Option<(PeerId, Vec<Sealed<Header>>)>) {
        let Some(s) = &mut self.skeleton else { return };
        if s.anchor.number + SEGMENT * k as u64 + 1 != from || k >= s.segments.len() {
            return; // An answer for a skeleton since dropped.
        }
        if matches!(s.segments[k], Segment::Done(_) | Segment::Linked) {
            return; // A duplicate's answer, after the other one's.
        }
        let Some((peer, headers)) = answer else {
            s.segments[k] = Segment::Pending;
            self.retry();
            return;
        };
        if headers.len() as u64 != SEGMENT {
            // Empty or partial (the peer does not have them all yet): ask again.
            s.segments[k] = Segment::Pending;
            self.retry();
            return;
        }
        let parent = if k == 0 { s.anchor.hash() } else { s.points[k - 1].hash() };
        let joins =
            headers[0].parent_hash == parent && headers[headers.len() - 1].hash() == s.points[k].hash();
        if !joins {
            s.segments[k] = Segment::Pending;
            s.disputes[k].push(peer);
            let distinct: HashSet<&PeerId> = s.disputes[k].iter().collect();
            let (drop_skeleton, skeleton_peer) =
                (distinct.len() >= SKELETON_DISPUTES || s.disputes[k].len() >= SEGMENT_FAILURES, s.peer);
            self.retry();
            if drop_skeleton {
                // Two peers disagree with the skeleton at the same point: it is the suspect,
                // and only its peer is reported (the fillers may well have been right).
                tracing::debug!(target: "sync", segment = k, "skeleton disputed; fetching another");
                self.dispute(skeleton_peer).await;
                self.skeleton = None;
            }
            return;
        }
        // The skeleton holds at this point, so whoever disagreed with it here was wrong.
        let wrong = std::mem::take(&mut s.disputes[k]);
        s.segments[k] = Segment::Done(headers);
        // Link every finished segment that follows the verified tip.
        let mut ready = Vec::new();
        while s.linked < s.segments.len() {
            if !matches!(s.segments[s.linked], Segment::Done(_)) {
                break;
            }
            if let Segment::Done(h) = std::mem::replace(&mut s.segments[s.linked], Segment::Linked) {
                ready.extend(h);
            }
            s.linked += 1;
        }
        if s.linked == s.segments.len() {
            self.skeleton = None;
        }
        for peer in wrong {
            self.dispute(peer).await;
        }
        if !ready.is_empty() {
            self.verified(ready);
        }
    }

    /// Reports a peer whose answer the library accepted but which does not join our chain.
    async fn dispute(&self, peer: PeerId) {
        self.progress.disputes.fetch_add(1, Relaxed);
        let _ = self.node.report(peer, ReputationChange::InvalidResponse).await;
    }

    /// Headers linked to the tip: queued for bodies and receipts.
    fn verified(&mut self, headers: Vec<Sealed<Header>>) {
        self.progress.headers.fetch_add(headers.len() as u64, Relaxed);
        for header in headers {
            self.progress.bytes.fetch_add(header.inner().length() as u64, Relaxed);
            let empty_body =
                header.transactions_root == EMPTY_ROOT_HASH && header.ommers_hash == EMPTY_OMMER_ROOT_HASH;
            // A block with withdrawals but no transactions still needs its body fetched.
            let body = match (empty_body, header.withdrawals_root) {
                (true, None) => Some(BlockBody { transactions: vec![], ommers: vec![], withdrawals: None }),
                (true, Some(root)) if root == EMPTY_ROOT_HASH => Some(BlockBody {
                    transactions: vec![],
                    ommers: vec![],
                    withdrawals: Some(Default::default()),
                }),
                _ => None,
            };
            let receipts = (header.receipts_root == EMPTY_ROOT_HASH).then(Vec::new);
            self.queue(header, body, receipts);
        }
    }

    fn queue(
        &mut self,
        header: Sealed<Header>,
        body: Option<BlockBody<TxEnvelope>>,
        receipts: Option<Vec<ReceiptEnvelope>>,
    ) {
        let n = header.number;
        if body.is_none() {
            self.need_bodies.insert(n);
        }
        if receipts.is_none() {
            self.need_receipts.insert(n);
        }
        self.tip = header.clone();
        self.blocks.insert(n, Pending { header, body, receipts });
    }

    /// Hands every complete block that follows the last one handed to the writer.
    async fn write(&mut self) -> Result<(), SyncError> {
        let mut ready = Vec::new();
        let mut next = self.handed + 1;
        while self.blocks.get(&next).is_some_and(|p| p.body.is_some() && p.receipts.is_some()) {
            let p = self.blocks.remove(&next).expect("checked above");
            ready.push(StoredBlock {
                header: p.header,
                body: p.body.expect("checked above"),
                receipts: p.receipts.expect("checked above"),
            });
            next += 1;
        }
        if ready.is_empty() {
            return Ok(());
        }
        self.handed = next - 1;
        self.writer.append(ready).await?;
        Ok(())
    }
}

/// Up to `max` of the lowest numbers in `set`, taken out of it.
fn take_batch(set: &mut BTreeSet<u64>, max: usize) -> Vec<u64> {
    let batch: Vec<u64> = set.iter().take(max).copied().collect();
    for n in &batch {
        set.remove(n);
    }
    batch
}
