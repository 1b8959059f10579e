//! The crawl task: asks every node it finds for its neighbours, probes it, stores it.
//!
//! [`Crawler::run`] is one task that owns the [`CrawlState`]: discovery answers and probe
//! results come back to it from a `JoinSet` of at most `workers` jobs, and it alone updates
//! the state and saves changed nodes through the [`CrawlSink`] every `flush_interval`. The
//! only shared state is [`CrawlProgress`], atomic counters a progress bar reads.
//!
//! How a node is asked for its neighbours:
//! - discv5: FINDNODE at distance 256, then 255, 254, ... (one distance per request, since an
//!   answer holds at most 16 records), until two distances in a row come back empty. A
//!   bucket of a node's table is at most 16 records, so this reads its whole table.
//! - discv4: a PING (which bonds): the PONG scores the node. If the PONG carries an ENR
//!   sequence number (EIP-868), an ENRRequest fetches its record; a node without EIP-868
//!   (older clients, ethereumjs) still counts as answering. Then the node itself is asked
//!   for its table: one FINDNODE towards its own id (its closest neighbours, the nodes that
//!   may be known to nobody else) and [`V4_RANDOM_TARGETS`] towards random ids (the far
//!   buckets, where most of a table is): a bonded node answers NEIGHBOURS for any target. No iterative lookups: each found node is asked
//!   in turn, so a job is a few round trips, not several hops of timeouts.
//!
//! Scores follow go-ethereum's `devp2p crawl`: +1 per answer, halved per failure.

use std::{
    collections::{HashSet, VecDeque},
    future::Future,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::{sync::Semaphore, task::JoinSet, time::Instant};
use tracing::{debug, warn};

use super::{
    probe::{probe, record_inbound, ProbeResult},
    unix_now, CrawlConfig, CrawlError, CrawlSink, CrawlState, CrawledNode, RoundReport, Sighting,
};
use crate::{
    discovery::{
        v4::{CandidateStream, Discv4},
        Candidate, CandidateSource, Candidates, Contact, Contacts, Discv5,
    },
    record::{node_id, Enode, Enr, NodeId, NodeKey},
    rlpx::RlpxListener,
};

const TARGET: &str = "ethp2p::crawl";

/// discv5: stop walking down the distances after this many empty answers in a row.
const EMPTY_DISTANCES_TO_STOP: u32 = 2;
/// A node that answered none of our requests is tried this many times in all: UDP loses
/// packets, and two nodes that start a discv5 handshake at the same moment both fail it.
const MAX_ATTEMPTS: u32 = 3;
/// Pause before asking a silent node again.
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// discv4: longest wait for one request towards a node. The service times a request out
/// after 500 ms (a PING, then the FINDNODE or ENRRequest it waited for); this only bounds a
/// service too busy to answer, so that it never holds a worker slot for long.
const V4_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// discv4: FINDNODEs towards random targets per node, besides the one towards its own id.
/// A random target is at log-distance 256 from the node half the time, 255 a quarter, ...:
/// each answer is up to 16 entries of the far buckets, which hold most of a table (a
/// bucket at distance d holds nodes only if the network has ~2^(256-d) of them). Two
/// read most of a table of a 10,000-node network; more cost packets and find little.
const V4_RANDOM_TARGETS: usize = 2;
/// discv5: never ask below this distance (a table of 2^(256-232) nodes is not a network).
const LOWEST_DISTANCE: u64 = 232;

/// Live counters of a running crawl, for a progress bar. Cheap to read from any thread.
#[derive(Debug, Default)]
pub struct CrawlProgress {
    found: AtomicUsize,
    answered: AtomicUsize,
    failed: AtomicUsize,
    probed: AtomicUsize,
    dialable: AtomicUsize,
    in_flight: AtomicUsize,
    queued: AtomicUsize,
}

impl CrawlProgress {
    /// Nodes known.
    pub fn found(&self) -> usize {
        self.found.load(Ordering::Relaxed)
    }
    /// Discovery requests answered (several per node).
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::Relaxed)
    }
    /// Discovery requests that failed.
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::Relaxed)
    }
    /// RLPx probes done.
    pub fn probed(&self) -> usize {
        self.probed.load(Ordering::Relaxed)
    }
    /// Probes that completed the Hello.
    pub fn dialable(&self) -> usize {
        self.dialable.load(Ordering::Relaxed)
    }
    /// Jobs running now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
    /// Jobs waiting for a free worker slot (retries not yet due excluded).
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// Work for one slot.
#[derive(Debug)]
enum Job {
    AskV5(NodeId, Enr, u32),
    AskV4(NodeId, Enode, u32),
    Probe(NodeId, Enode),
}

/// What a job brings back.
#[derive(Debug)]
enum Done {
    AskV5 {
        id: NodeId,
        enr: Enr,
        attempt: u32,
        answers: u32,
        failures: u32,
        found: Vec<Enr>,
    },
    AskV4 {
        id: NodeId,
        enode: Enode,
        attempt: u32,
        answered: bool,
        enr: Option<Enr>,
        /// Its PONG announced a record (EIP-868) that could not be fetched.
        enr_missing: bool,
        found: Vec<Candidate>,
    },
    Probe(NodeId, ProbeResult),
    /// A node dialed us: its id, where from, what it said.
    Inbound(crate::record::PeerId, Option<std::net::SocketAddr>, ProbeResult),
}

/// A crawl: the discovery services to ask, the key to probe with, and where to save.
///
/// ```no_run
/// # async fn run(discv5: ethp2p::discovery::Discv5, candidates: ethp2p::discovery::Candidates) -> Result<(), ethp2p::crawl::CrawlError> {
/// use ethp2p::crawl::{CrawlConfig, Crawler, Summary};
/// let config = CrawlConfig::builder().workers(64).build()?;
/// let crawler = Crawler::new(config, ethp2p::NodeKey::generate()).discv5(discv5, candidates);
/// let state = crawler.run(std::future::pending()).await?;
/// println!("{}", Summary::of(state.nodes()));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Crawler {
    config: CrawlConfig,
    key: NodeKey,
    state: CrawlState,
    discv5: Option<(Discv5, Candidates)>,
    discv4: Option<(Discv4, CandidateStream)>,
    sink: Option<SinkBox>,
    seeds: Vec<Candidate>,
    progress: Arc<CrawlProgress>,
    rlpx: Option<RlpxListener>,
    /// The discovery services' streams of nodes that contact us, asked for at the first
    /// round and kept: what arrives between rounds waits (bounded) for the next one.
    contacts: Option<[Option<Contacts>; 2]>,
}

/// The sink, boxed; `Debug` only names it.
struct SinkBox(Box<dyn CrawlSink>);

impl std::fmt::Debug for SinkBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CrawlSink")
    }
}

impl Crawler {
    /// A crawl with no discovery service yet; add them with [`discv5`](Self::discv5).
    /// `key` is the identity the RLPx probes dial with.
    pub fn new(config: CrawlConfig, key: NodeKey) -> Self {
        Self {
            config,
            key,
            state: CrawlState::new(),
            discv5: None,
            discv4: None,
            sink: None,
            seeds: Vec::new(),
            progress: Arc::new(CrawlProgress::default()),
            rlpx: None,
            contacts: None,
        }
    }

    /// Crawls discv5 through this running service and its candidate stream.
    pub fn discv5(mut self, discv5: Discv5, candidates: Candidates) -> Self {
        self.discv5 = Some((discv5, candidates));
        self
    }

    /// Crawls discv4 through this running service and its candidate stream.
    pub fn discv4(mut self, discv4: Discv4, candidates: CandidateStream) -> Self {
        self.discv4 = Some((discv4, candidates));
        self
    }

    /// Saves changed nodes to `sink` (e.g. a `SqliteStore`) as the crawl goes.
    pub fn sink(mut self, sink: impl CrawlSink + 'static) -> Self {
        self.sink = Some(SinkBox(Box::new(sink)));
        self
    }

    /// Nodes from an earlier run (e.g. `SqliteStore::load`): known from the start and
    /// asked again, so a rerun continues where the last one stopped.
    pub fn restore(mut self, nodes: Vec<CrawledNode>) -> Self {
        self.state.restore(nodes);
        self
    }

    /// Where to start besides the services' own bootnodes (`--bootnodes`, each network's
    /// built-in list).
    pub fn seeds(mut self, seeds: impl IntoIterator<Item = Candidate>) -> Self {
        self.seeds.extend(seeds);
        self
    }

    /// Accepts RLPx sessions on `listener` during rounds (advertise its port in the
    /// discovery record): every node that dials us is recorded as `seen_inbound` with its
    /// Hello and Status, even one we cannot dial back (NAT, a closed port).
    pub fn rlpx_listener(mut self, listener: RlpxListener) -> Self {
        self.rlpx = Some(listener);
        self
    }

    /// The live counters; clone the `Arc` before [`run`](Self::run).
    pub fn progress(&self) -> Arc<CrawlProgress> {
        self.progress.clone()
    }

    /// The state so far: every node known, from earlier rounds too.
    pub fn state(&self) -> &CrawlState {
        &self.state
    }

    /// One crawl, then the state: [`round`](Self::round) once.
    pub async fn run(mut self, stop: impl Future<Output = ()>) -> Result<CrawlState, CrawlError> {
        self.round(stop).await?;
        Ok(self.state)
    }

    /// One round: asks every node known (from earlier rounds, the store and the seeds) and
    /// every node found on the way, until done (nothing in flight and nothing new for
    /// `idle`), until `duration` has passed, or until `stop` completes. Saves what changed,
    /// tells the sink which nodes were up (for uptime sessions) and returns the same.
    /// Call it again for the next round: the discovery services and the state carry over.
    pub async fn round(&mut self, stop: impl Future<Output = ()>) -> Result<RoundReport, CrawlError> {
        let started = unix_now();
        self.state.begin_round();
        if let Some(SinkBox(sink)) = &mut self.sink {
            sink.begin_round(started)?;
        }
        if self.contacts.is_none() {
            // Nodes that ping or query us are sightings too: NAT'd nodes only show up this way.
            let v4 = match &self.discv4 {
                Some((d, _)) => d.contacts().await.ok(),
                None => None,
            };
            let v5 = match &self.discv5 {
                Some((d, _)) => d.contacts().await.ok(),
                None => None,
            };
            self.contacts = Some([v4, v5]);
        }
        let Self { config, key, state, discv5, discv4, sink, seeds, progress, rlpx, contacts } = self;
        let [contacts_v4, contacts_v5] = contacts.get_or_insert_with(|| [None, None]);
        let (discv5, mut candidates) = match discv5 {
            Some((d, c)) => (Some(d.clone()), Some(c)),
            None => (None, None),
        };
        let (discv4, mut candidates_v4) = match discv4 {
            Some((d, c)) => (Some(d.clone()), Some(c)),
            None => (None, None),
        };
        let mut run = Run {
            config,
            key: key.clone(),
            discv5,
            discv4,
            queue: VecDeque::new(),
            retries: VecDeque::new(),
            jobs: JoinSet::new(),
            asked_v5: HashSet::new(),
            asked_v4: HashSet::new(),
            probed: HashSet::new(),
            progress,
            run_started: started,
            v5_permits: Arc::new(Semaphore::new(config.discv5_in_flight)),
        };
        // Every node known first (earlier rounds, earlier runs): the widest seed there is,
        // and a round is meant to ask each of them whether it is still up.
        let known: Vec<CrawledNode> = state.nodes().cloned().collect();
        for node in &known {
            run.schedule(node);
        }
        for seed in seeds.iter() {
            run.found(state, seed);
        }
        progress.found.store(state.len(), Ordering::Relaxed);

        tokio::pin!(stop);
        let deadline = tokio::time::sleep(config.duration);
        tokio::pin!(deadline);
        let mut flush = tokio::time::interval(config.flush_interval);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_news = Instant::now();
        loop {
            run.launch();
            let idle_for = last_news.elapsed();
            if run.jobs.is_empty()
                && run.queue.is_empty()
                && run.retries.is_empty()
                && idle_for >= config.idle
            {
                debug!(target: TARGET, nodes = state.len(), "crawl round finished: nothing left to ask");
                break;
            }
            let idle_check =
                tokio::time::sleep(config.idle.saturating_sub(idle_for).max(Duration::from_millis(50)));
            tokio::select! {
                _ = &mut stop => break,
                _ = &mut deadline => {
                    debug!(target: TARGET, "crawl duration reached");
                    break;
                }
                Some(candidate) = next_candidate(&mut candidates) => {
                    if run.found(state, &candidate) {
                        last_news = Instant::now();
                    }
                }
                Some(candidate) = next_candidate(&mut candidates_v4) => {
                    if run.found(state, &candidate) {
                        last_news = Instant::now();
                    }
                }
                Some(done) = run.jobs.join_next(), if !run.jobs.is_empty() => {
                    progress.in_flight.store(run.jobs.len(), Ordering::Relaxed);
                    match done {
                        Ok(done) => {
                            if run.apply(state, done) {
                                last_news = Instant::now();
                            }
                        }
                        Err(e) => warn!(target: TARGET, error = %e, "crawl job panicked"),
                    }
                }
                Some(accepted) = next_inbound(rlpx) => {
                    if let Ok(session) = accepted {
                        let timeout = config.probe.as_ref().map_or(INBOUND_STATUS_TIMEOUT, |p| p.rlpx.handshake_timeout);
                        run.jobs.spawn(async move {
                            let (peer, addr) = (session.remote_id(), session.remote_addr());
                            let result = record_inbound(session, timeout).await;
                            Done::Inbound(peer, addr, result)
                        });
                    }
                }
                Some(contact) = next_contact(contacts_v4) => {
                    if run.contacted(state, &contact) {
                        last_news = Instant::now();
                    }
                }
                Some(contact) = next_contact(contacts_v5) => {
                    if run.contacted(state, &contact) {
                        last_news = Instant::now();
                    }
                }
                _ = flush.tick() => save(sink, state)?,
                _ = idle_check => {}
            }
            progress.found.store(state.len(), Ordering::Relaxed);
        }
        run.jobs.shutdown().await;
        progress.in_flight.store(0, Ordering::Relaxed);
        save(sink, state)?;
        let report = RoundReport {
            started,
            finished: unix_now(),
            counts: state.counts(),
            up: state.up().map(|(id, at)| (*id, at)).collect(),
            gone_after: config.gone_after,
        };
        if let Some(SinkBox(sink)) = sink {
            sink.end_round(&report)?;
        }
        Ok(report)
    }
}

fn save(sink: &mut Option<SinkBox>, state: &mut CrawlState) -> Result<(), CrawlError> {
    let Some(SinkBox(sink)) = sink else { return Ok(()) };
    let dirty = state.take_dirty();
    if !dirty.is_empty() {
        sink.save(&dirty)?;
    }
    Ok(())
}

/// How long an inbound session may take to send its Status when probes are off.
const INBOUND_STATUS_TIMEOUT: Duration = Duration::from_secs(5);

/// The next inbound RLPx session; never resolves without a listener.
async fn next_inbound(
    listener: &mut Option<RlpxListener>,
) -> Option<Result<crate::rlpx::Session, crate::rlpx::InboundError>> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// The next node that contacted a discovery service; never resolves once the stream has
/// ended (or was never given).
async fn next_contact(contacts: &mut Option<Contacts>) -> Option<Contact> {
    match contacts {
        Some(c) => match c.recv().await {
            Some(contact) => Some(contact),
            None => {
                *contacts = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}

/// discv5's and discv4's candidate streams, read alike.
trait CandidateRecv {
    async fn recv(&mut self) -> Option<Candidate>;
}

impl CandidateRecv for Candidates {
    async fn recv(&mut self) -> Option<Candidate> {
        Candidates::recv(self).await
    }
}

impl CandidateRecv for CandidateStream {
    async fn recv(&mut self) -> Option<Candidate> {
        CandidateStream::recv(self).await
    }
}

/// The next candidate of a running discovery service; never resolves once it has stopped
/// (or was never given), so a `select!` arm on it goes quiet.
async fn next_candidate(candidates: &mut Option<&mut impl CandidateRecv>) -> Option<Candidate> {
    match candidates {
        Some(c) => match c.recv().await {
            Some(candidate) => Some(candidate),
            None => {
                // The service stopped: stop polling it.
                *candidates = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}

/// The crawl loop's working set (not shared).
struct Run<'a> {
    config: &'a CrawlConfig,
    key: NodeKey,
    discv5: Option<Discv5>,
    discv4: Option<Discv4>,
    queue: VecDeque<Job>,
    /// Silent nodes to ask again, due in order (every retry waits the same delay).
    retries: VecDeque<(Instant, Job)>,
    jobs: JoinSet<Done>,
    asked_v5: HashSet<NodeId>,
    asked_v4: HashSet<NodeId>,
    probed: HashSet<NodeId>,
    progress: &'a CrawlProgress,
    run_started: u64,
    /// Permits for discv5 FINDNODEs (see [`DEFAULT_DISCV5_IN_FLIGHT`]).
    v5_permits: Arc<Semaphore>,
}

impl Run<'_> {
    /// Folds a sighting into the state and queues what it calls for; returns whether the
    /// node was new.
    fn found(&mut self, state: &mut CrawlState, candidate: &Candidate) -> bool {
        let sighting = state.found(candidate, unix_now());
        if sighting != Sighting::Known {
            if let Some(node) = state.get(&candidate.node_id()) {
                let node = node.clone();
                self.schedule(&node);
            }
        }
        sighting == Sighting::New
    }

    /// Folds in a node that contacted us; returns whether it was new (it is then asked and
    /// probed like a found node, which tells whether it is dialable).
    fn contacted(&mut self, state: &mut CrawlState, contact: &Contact) -> bool {
        let sighting = state.contacted(contact, unix_now());
        if sighting != Sighting::Known {
            if let Some(node) = state.get(&node_id(&contact.peer_id)) {
                let node = node.clone();
                self.schedule(&node);
            }
        }
        sighting == Sighting::New
    }

    /// Queues the requests a node still needs in this run.
    fn schedule(&mut self, node: &CrawledNode) {
        // discv5 for nodes found through it or from elsewhere (a seed, DNS, an earlier run);
        // a record fetched over discv4 does not say the node speaks discv5.
        if self.discv5.is_some() && node.udp_port.is_some() && (node.discv5 || !node.discv4) {
            if let Some(enr) = &node.enr {
                if self.asked_v5.insert(node.node_id) {
                    self.queue.push_back(Job::AskV5(node.node_id, enr.clone(), 1));
                }
            }
        }
        // discv4 for nodes found through it, and for record-less ones (an enode:// seed).
        if self.discv4.is_some() && (node.discv4 || node.enr.is_none()) {
            if let (Some(udp_port), true) = (node.udp_port, !self.asked_v4.contains(&node.node_id)) {
                self.asked_v4.insert(node.node_id);
                let enode = Enode {
                    peer_id: node.peer_id,
                    ip: node.ip,
                    tcp_port: node.tcp_port.unwrap_or(0),
                    udp_port,
                };
                self.queue.push_back(Job::AskV4(node.node_id, enode, 1));
            }
        }
        if self.config.probe.is_some() && !self.probed.contains(&node.node_id) {
            let recent = node.probe.as_ref().is_some_and(|p| {
                p.at + self.config.reprobe_after.as_secs() > self.run_started && p.hello.is_some()
            });
            if let (Some(enode), false) = (node.enode(), recent) {
                self.probed.insert(node.node_id);
                self.queue.push_back(Job::Probe(node.node_id, enode));
            }
        }
    }

    /// Starts queued jobs while slots are free.
    fn launch(&mut self) {
        let now = Instant::now();
        while self.retries.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, job)) = self.retries.pop_front() {
                self.queue.push_back(job);
            }
        }
        while self.jobs.len() < self.config.workers {
            let Some(job) = self.queue.pop_front() else { break };
            match job {
                Job::AskV5(id, enr, attempt) => {
                    let Some(discv5) = self.discv5.clone() else { continue };
                    self.jobs.spawn(ask_v5(discv5, self.v5_permits.clone(), id, enr, attempt));
                }
                Job::AskV4(id, enode, attempt) => {
                    let Some(discv4) = self.discv4.clone() else { continue };
                    self.jobs.spawn(ask_v4(discv4, id, enode, attempt));
                }
                Job::Probe(id, enode) => {
                    let Some(config) = self.config.probe.clone() else { continue };
                    let key = self.key.clone();
                    self.jobs.spawn(async move { Done::Probe(id, probe(&enode, &key, &config).await) });
                }
            }
        }
        self.progress.in_flight.store(self.jobs.len(), Ordering::Relaxed);
        self.progress.queued.store(self.queue.len(), Ordering::Relaxed);
    }

    /// Applies a finished job; returns whether it found a new node.
    fn apply(&mut self, state: &mut CrawlState, done: Done) -> bool {
        let now = unix_now();
        match done {
            Done::AskV5 { id, enr, attempt, answers, failures, found } => {
                if answers == 0 && attempt < MAX_ATTEMPTS {
                    self.retries.push_back((Instant::now() + RETRY_DELAY, Job::AskV5(id, enr, attempt + 1)));
                }
                for _ in 0..answers {
                    state.answered(&id, now, None);
                }
                for _ in 0..failures {
                    state.failed(&id, now);
                }
                self.progress.answered.fetch_add(answers as usize, Ordering::Relaxed);
                self.progress.failed.fetch_add(failures as usize, Ordering::Relaxed);
                let mut new = false;
                for enr in &found {
                    // A record we cannot dial or that lies about its key is skipped.
                    if let Ok(candidate) = Candidate::from_enr(enr, CandidateSource::Discv5) {
                        new |= self.found(state, &candidate);
                    }
                }
                new
            }
            Done::AskV4 { id, enode, attempt, answered, enr, enr_missing, found } => {
                match answered {
                    true => {
                        state.answered(&id, now, enr.as_ref());
                        self.progress.answered.fetch_add(1, Ordering::Relaxed);
                        // Its PONG announced a record we could not fetch: ask again later.
                        if enr_missing && attempt < MAX_ATTEMPTS {
                            let job = Job::AskV4(id, enode, attempt + 1);
                            self.retries.push_back((Instant::now() + RETRY_DELAY, job));
                        }
                    }
                    false => {
                        state.failed(&id, now);
                        self.progress.failed.fetch_add(1, Ordering::Relaxed);
                        if attempt < MAX_ATTEMPTS {
                            let job = Job::AskV4(id, enode, attempt + 1);
                            self.retries.push_back((Instant::now() + RETRY_DELAY, job));
                        }
                    }
                }
                let mut new = false;
                for candidate in &found {
                    new |= self.found(state, candidate);
                }
                new
            }
            Done::Inbound(peer, addr, result) => {
                let Some(addr) = addr else { return false };
                let new = state.get_by_peer(&peer).is_none();
                state.inbound(peer, addr, result);
                new
            }
            Done::Probe(id, result) => {
                self.progress.probed.fetch_add(1, Ordering::Relaxed);
                if result.hello.is_some() {
                    self.progress.dialable.fetch_add(1, Ordering::Relaxed);
                }
                state.probed(&id, result);
                false
            }
        }
    }
}

/// Pings one discv4 node (the PONG is what scores it), fetches its record if it has one
/// (EIP-868), then asks it for its table: FINDNODE towards its own id and towards
/// [`V4_RANDOM_TARGETS`] random ids, all at once (the service sends them one after the
/// other, as NEIGHBOURS cannot say which FINDNODE they answer). Every record named comes back.
async fn ask_v4(discv4: Discv4, id: NodeId, enode: Enode, attempt: u32) -> Done {
    let pong = tokio::time::timeout(V4_REQUEST_TIMEOUT, discv4.ping(enode)).await;
    let answered = matches!(pong, Ok(Ok(_)));
    let announces_record = matches!(pong, Ok(Ok(Some(_))));
    let enr = match pong {
        Ok(Ok(Some(_seq))) => match request_enr(&discv4, enode).await {
            Some(enr) => Some(enr),
            // The first request may race the node's own bonding: it answers a PING from an
            // unknown node, then pings back and ignores our ENRRequest until we have answered.
            // By the time our request timed out we have; ask once more before giving up.
            None => request_enr(&discv4, enode).await,
        },
        _ => None,
    };
    let mut found = Vec::new();
    if answered {
        let mut targets = vec![enode.peer_id];
        for _ in 0..V4_RANDOM_TARGETS {
            let mut random = [0u8; 64];
            rand::Rng::fill(&mut rand::thread_rng(), &mut random[..]);
            targets.push(crate::record::PeerId::from(random));
        }
        let asks = targets
            .into_iter()
            .map(|target| tokio::time::timeout(V4_REQUEST_TIMEOUT, discv4.find_node(enode, target)));
        for answer in futures::future::join_all(asks).await {
            let Ok(Ok(records)) = answer else {
                debug!(target: TARGET, %id, "discv4 FINDNODE failed or did not end in time");
                continue;
            };
            for record in records {
                let neighbour = Enode {
                    peer_id: record.id,
                    ip: record.endpoint.ip,
                    tcp_port: record.endpoint.tcp_port,
                    udp_port: record.endpoint.udp_port,
                };
                found.push(Candidate::from_enode(&neighbour, CandidateSource::Discv4));
            }
        }
    }
    let enr_missing = announces_record && enr.is_none();
    Done::AskV4 { id, enode, attempt, answered, enr, enr_missing, found }
}

async fn request_enr(discv4: &Discv4, enode: Enode) -> Option<Enr> {
    match tokio::time::timeout(V4_REQUEST_TIMEOUT, discv4.request_enr(enode)).await {
        Ok(enr) => enr.ok(),
        Err(_) => {
            debug!(target: TARGET, peer = %enode.peer_id, "discv4 ENR request did not end in time");
            None
        }
    }
}

/// Reads one node's discv5 table distance by distance (see the module docs).
async fn ask_v5(discv5: Discv5, permits: Arc<Semaphore>, id: NodeId, enr: Enr, attempt: u32) -> Done {
    let (mut answers, mut failures, mut empty_in_a_row) = (0, 0, 0);
    let mut found = Vec::new();
    let mut distance = 256u64;
    while distance >= LOWEST_DISTANCE && empty_in_a_row < EMPTY_DISTANCES_TO_STOP {
        let answer = {
            // The semaphore is never closed; without a permit, ask anyway.
            let _permit = permits.acquire().await.ok();
            discv5.find_node(enr.clone(), vec![distance]).await
        };
        match answer {
            Ok(records) => {
                answers += 1;
                empty_in_a_row = if records.is_empty() { empty_in_a_row + 1 } else { 0 };
                found.extend(records);
            }
            Err(e) => {
                debug!(target: TARGET, %id, distance, error = %e, "FINDNODE failed");
                failures += 1;
                // A node that does not answer at all is not asked 25 times.
                if answers == 0 {
                    break;
                }
                empty_in_a_row += 1;
            }
        }
        distance -= 1;
    }
    Done::AskV5 { id, enr, attempt, answers, failures, found }
}
