//! The node's service task: owns the [`PoolState`], the listener and every session task.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use alloy_primitives::B256;
use futures::StreamExt;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{broadcast, mpsc, oneshot, watch},
    task::JoinSet,
};

use rand::SeedableRng;

use super::{
    announce::Announcement,
    fanout::{plan_block, plan_block_hashes, plan_transactions, BroadcastSummary, Planned},
    head::LocalHead,
    sessions::{
        SessionCommand, SessionEvent, SessionManager, SESSION_COMMAND_CAPACITY, SESSION_EVENT_CAPACITY,
    },
    stats::{close_label, DialFailure},
    NodeError, NodeStats,
};
use crate::{
    discovery::{Candidate, CandidateSource, Discovery, DiscoveryConfig},
    eth::{
        BlockHashNumber, BlockRange, ChainReader, EthConfig, EthMessage, EthPeer, EthVersion, NewBlock,
        RequestKind, StatusHead, TxPool,
    },
    metrics::{self, Recorder},
    nat::{ExternalAddr, NatConfig, PortMapping},
    pool::{
        AddressBook, Direction, ForkIdFilter, PeerSnapshot, PoolAction, PoolConfig, PoolEvent, PoolState,
        ReputationChange, BOOK_FILE,
    },
    record::{Enode, ForkId, LocalEnr, NodeKey, PeerId},
    rlpx::{DisconnectReason, RlpxConfig, RlpxError},
};

/// Reports from the tasks the service spawned.
const INTERNAL_CAPACITY: usize = 1024;

pub(super) enum Command {
    Candidate(Candidate),
    Peers(oneshot::Sender<Vec<PeerSnapshot>>),
    Stats(oneshot::Sender<NodeStats>),
    Acquire {
        kind: RequestKind,
        /// The block the request starts at, when known: peers whose announced range does
        /// not hold it are not asked.
        block: Option<u64>,
        exclude: Vec<PeerId>,
        reply: oneshot::Sender<Option<(EthPeer, Duration)>>,
    },
    /// The session handle of one connected peer, for a request to that peer.
    Peer {
        peer_id: PeerId,
        reply: oneshot::Sender<Option<(EthPeer, Duration)>>,
    },
    SetHead {
        number: u64,
        hash: B256,
        timestamp: u64,
    },
    Broadcast {
        what: Broadcast,
        reply: oneshot::Sender<BroadcastSummary>,
    },
    Disconnect {
        peer_id: PeerId,
        reason: DisconnectReason,
    },
    Ban {
        peer_id: PeerId,
        duration: Duration,
    },
    Report {
        peer_id: PeerId,
        change: ReputationChange,
    },
    Shutdown(oneshot::Sender<()>),
}

/// What [`Node`](super::Node) asks the service to broadcast.
pub(super) enum Broadcast {
    Transactions(Vec<alloy_consensus::transaction::PooledTransaction>),
    Block(Box<NewBlock>),
    BlockHashes(Vec<BlockHashNumber>),
}

/// Reports from the demand lookups the service spawned.
enum Internal {
    /// A demand lookup (see [`DemandLookups`]) finished.
    LookupDone,
}

/// One source of candidates (discovery, LAN, a builder's channel).
type CandidateStream = std::pin::Pin<Box<dyn futures::Stream<Item = Candidate> + Send>>;
/// Every source merged: the service polls one stream.
type CandidateStreams = futures::stream::SelectAll<CandidateStream>;

/// The longest pause between two demand lookups that found nothing new.
const MAX_LOOKUP_PAUSE: Duration = Duration::from_secs(30);

/// Random lookups run back to back while the pool is below `min_peers`, as go-ethereum's
/// dialer pulls nodes from its lookup iterator: discovery's periodic refresh (every 20–30
/// s) is for keeping the table fresh, not for filling a pool at start. A lookup that brings
/// no new candidate doubles the pause before the next one (1 s, 2 s, … 30 s), so a network
/// smaller than `min_peers` is not flooded with lookups.
#[derive(Debug)]
struct DemandLookups {
    running: bool,
    not_before: Instant,
    fruitless: u32,
    /// Candidates new to the pool since the running lookup started.
    new_candidates: usize,
}

pub(super) struct NodeService {
    pool: PoolState,
    /// Our head: new sessions' `Status`, the fork filter, our record's fork id.
    head: LocalHead,
    /// Told about the transactions peers broadcast and announce.
    tx_pool: Arc<dyn TxPool>,
    /// Chooses the peers that get full broadcasts.
    rng: rand::rngs::StdRng,
    /// Candidates from every source, merged.
    candidates: CandidateStreams,
    /// Raw TCP connections from the accept task, not yet handshaken.
    inbound: mpsc::Receiver<(TcpStream, SocketAddr)>,
    /// The handle of each session the pool admitted, for routing requests to it.
    peers: HashMap<PeerId, EthPeer>,
    /// The block range each eth/69+ peer last announced (its `Status`, then its
    /// `BlockRangeUpdate`s): requests for blocks outside it go elsewhere.
    ranges: HashMap<PeerId, BlockRange>,
    /// Commands to the session manager, and its events.
    session_tx: mpsc::Sender<SessionCommand>,
    session_rx: mpsc::Receiver<SessionEvent>,
    commands: mpsc::Receiver<Command>,
    internal_tx: mpsc::Sender<Internal>,
    internal_rx: mpsc::Receiver<Internal>,
    /// The session manager's task, book saves and demand lookups.
    tasks: JoinSet<()>,
    sources: JoinSet<()>,
    events: broadcast::Sender<PoolEvent>,
    announcements: broadcast::Sender<Announcement>,
    book_path: Option<PathBuf>,
    /// The address book save in progress: saves never overlap, so an older snapshot
    /// cannot land after a newer one.
    book_save: Option<tokio::task::JoinHandle<()>>,
    tick: Duration,
    dial_failures: BTreeMap<DialFailure, u64>,
    inbound_connections: u64,
    inbound_handshakes: u64,
    recorder: Recorder,
    /// Peers per direction (inbound, outbound) last added to the gauge: it moves by the
    /// difference, so nodes sharing the application's global recorder add up.
    published_peers: [usize; 2],
    /// The gateway's port mappings, removed at shutdown.
    mapping: Option<PortMapping>,
    /// The mDNS announcement, withdrawn at shutdown.
    #[cfg(feature = "lan")]
    lan: Option<crate::discovery::lan::LanDiscovery>,
    /// The discovery the demand lookups run on.
    discovery: Option<Discovery>,
    lookups: DemandLookups,
}

impl std::fmt::Debug for NodeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeService").field("pool", &self.pool).finish_non_exhaustive()
    }
}

impl NodeService {
    /// A service with fake neighbours: its session manager is the other end of
    /// `session_tx` / `session_rx`, and nothing else (no listener, discovery, NAT or book).
    #[cfg(test)]
    #[allow(clippy::too_many_arguments)]
    fn with_fake_sessions(
        pool: PoolState,
        (status, fork_filter): (crate::eth::StatusInfo, crate::record::ForkFilter),
        tx_pool: Arc<dyn TxPool>,
        commands: mpsc::Receiver<Command>,
        session_tx: mpsc::Sender<SessionCommand>,
        session_rx: mpsc::Receiver<SessionEvent>,
        events: broadcast::Sender<PoolEvent>,
        announcements: broadcast::Sender<Announcement>,
    ) -> Self {
        let (internal_tx, internal_rx) = mpsc::channel(INTERNAL_CAPACITY);
        Self {
            head: LocalHead::new(status, fork_filter),
            tx_pool,
            rng: rand::rngs::StdRng::seed_from_u64(1),
            pool,
            candidates: CandidateStreams::new(),
            inbound: mpsc::channel(1).1,
            peers: HashMap::new(),
            ranges: HashMap::new(),
            session_tx,
            session_rx,
            commands,
            internal_tx,
            internal_rx,
            tasks: JoinSet::new(),
            sources: JoinSet::new(),
            events,
            announcements,
            book_path: None,
            book_save: None,
            tick: Duration::from_secs(3600),
            dial_failures: BTreeMap::new(),
            inbound_connections: 0,
            inbound_handshakes: 0,
            recorder: Recorder::default(),
            published_peers: [0; 2],
            mapping: None,
            #[cfg(feature = "lan")]
            lan: None,
            discovery: None,
            lookups: DemandLookups {
                running: false,
                not_before: Instant::now(),
                fruitless: 0,
                new_candidates: 0,
            },
        }
    }

    pub(super) async fn run(mut self) {
        let mut tick = tokio::time::interval(self.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut save = tokio::time::interval(self.pool.config().book_save_interval);
        save.tick().await; // the first tick is immediate; the book was just loaded
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown(reply)) => {
                        self.shutdown().await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(command) => self.on_command(command),
                    None => {
                        self.shutdown().await;
                        return;
                    }
                },
                Some(report) = self.internal_rx.recv() => self.on_internal(report),
                Some(event) = self.session_rx.recv() => self.on_session_event(event),
                Some(c) = self.candidates.next(), if !self.candidates.is_empty() => {
                    self.add_candidate(&c, Instant::now())
                }
                Some((tcp, addr)) = self.inbound.recv() => self.on_inbound(tcp, addr),
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
                _ = tick.tick() => self.pool.tick(Instant::now()),
                _ = save.tick() => self.save_book_in_background(),
            }
            self.process_actions();
            self.publish_peer_gauge();
            self.maybe_lookup(Instant::now());
        }
    }

    /// Starts a demand lookup if the pool wants peers and none is running or pausing.
    fn maybe_lookup(&mut self, now: Instant) {
        let Some(discovery) = &self.discovery else { return };
        let lookups = &mut self.lookups;
        if lookups.running || now < lookups.not_before || self.pool.len() >= self.pool.config().min_peers {
            return;
        }
        lookups.running = true;
        lookups.new_candidates = 0;
        let (discovery, tx) = (discovery.clone(), self.internal_tx.clone());
        self.tasks.spawn(async move {
            let found = discovery.random_lookup().await;
            tracing::trace!(target: "ethp2p::pool", found, "demand lookup done");
            let _ = tx.send(Internal::LookupDone).await;
        });
    }

    fn on_lookup_done(&mut self, now: Instant) {
        let lookups = &mut self.lookups;
        lookups.running = false;
        if lookups.new_candidates > 0 {
            lookups.fruitless = 0;
            lookups.not_before = now;
        } else {
            lookups.fruitless += 1;
            let pause = Duration::from_secs(1 << (lookups.fruitless - 1).min(5)).min(MAX_LOOKUP_PAUSE);
            lookups.not_before = now + pause;
        }
    }

    fn publish_peer_gauge(&mut self) {
        let now = [self.pool.count(Direction::Inbound), self.pool.count(Direction::Outbound)];
        if now == self.published_peers {
            return;
        }
        let before = std::mem::replace(&mut self.published_peers, now);
        self.recorder.with(|| {
            for (i, direction) in ["inbound", "outbound"].into_iter().enumerate() {
                let delta = now[i] as f64 - before[i] as f64;
                if delta != 0.0 {
                    ::metrics::gauge!(metrics::PEERS, "direction" => direction).increment(delta);
                }
            }
        });
    }

    fn add_candidate(&mut self, candidate: &Candidate, now: Instant) {
        self.recorder.with(|| metrics::record_candidate(candidate));
        // Dialed now, not at the next tick: a cold start waits for no timer.
        let known = self.pool.candidates();
        if self.pool.add_candidate(candidate, now) {
            self.lookups.new_candidates += usize::from(self.pool.candidates() > known);
            self.pool.dial_if_below_target(now);
        }
    }

    fn count_dial_failure(&mut self, failure: DialFailure) {
        *self.dial_failures.entry(failure).or_default() += 1;
        self.recorder
            .with(|| ::metrics::counter!(metrics::DIAL_FAILURES, "reason" => failure.as_str()).increment(1));
    }

    fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Candidate(c) => self.add_candidate(&c, now),
            Command::Peers(reply) => {
                let mut peers = self.pool.peers(now);
                for p in &mut peers {
                    p.block_range = self.ranges.get(&p.peer_id).copied();
                }
                let _ = reply.send(peers);
            }
            Command::Stats(reply) => {
                let _ = reply.send(NodeStats {
                    inbound: self.pool.count(Direction::Inbound),
                    outbound: self.pool.count(Direction::Outbound),
                    candidates: self.pool.candidates(),
                    pool: self.pool.stats().clone(),
                    dial_failures: self.dial_failures.clone(),
                    inbound_connections: self.inbound_connections,
                    inbound_handshakes: self.inbound_handshakes,
                });
            }
            Command::Acquire { kind, block, exclude, reply } => {
                // Peers whose announced range holds the block first. Headers are kept for
                // all history; bodies and receipts only from `earliest` on (eth/69 history
                // expiry). When no peer's range holds it, the best peer is asked anyway:
                // ranges are announced only every 32 blocks, so a peer can be up to 31
                // blocks past its last update, and "nothing newer" is an empty answer.
                let outside: Vec<PeerId> = block
                    .map(|block| {
                        let history = kind != RequestKind::BlockHeaders;
                        self.ranges
                            .iter()
                            .filter(|(_, r)| !(block <= r.latest && (!history || block >= r.earliest)))
                            .map(|(id, _)| *id)
                            .collect()
                    })
                    .unwrap_or_default();
                let mut narrowed = exclude.clone();
                narrowed.extend(outside);
                let best =
                    self.pool.best_peer(kind, &narrowed).or_else(|| self.pool.best_peer(kind, &exclude));
                let choice = best.and_then(|id| {
                    let peer = self.peers.get(&id)?.clone();
                    self.pool.on_request_sent(&id);
                    Some((peer, self.pool.request_timeout(&id, kind)))
                });
                if let Err(Some((peer, _))) = reply.send(choice) {
                    self.pool.on_request_cancelled(&peer.peer_id());
                }
            }
            Command::Peer { peer_id, reply } => {
                let choice = self.peers.get(&peer_id).cloned().map(|peer| {
                    self.pool.on_request_sent(&peer_id);
                    (peer, self.pool.request_timeout(&peer_id, RequestKind::PooledTransactions))
                });
                if let Err(Some((peer, _))) = reply.send(choice) {
                    self.pool.on_request_cancelled(&peer.peer_id());
                }
            }
            Command::SetHead { number, hash, timestamp } => self.set_head(number, hash, timestamp),
            Command::Broadcast { what, reply } => {
                let _ = reply.send(self.broadcast(what));
            }
            Command::Disconnect { peer_id, reason } => {
                self.command_sessions(SessionCommand::Disconnect { peer_id, reason })
            }
            Command::Ban { peer_id, duration } => self.pool.ban_for(&peer_id, duration, now),
            Command::Report { peer_id, change } => self.pool.change_reputation(&peer_id, change, now),
            Command::Shutdown(_) => unreachable!("handled in run"),
        }
    }

    /// Moves our head: new sessions' `Status` and fork filter, the candidate filter and
    /// our record's `eth` entry when the fork changes, and a `BlockRangeUpdate` to every
    /// eth/69+ peer when one is due.
    fn set_head(&mut self, number: u64, hash: B256, timestamp: u64) {
        let change = self.head.set(number, hash, timestamp);
        tracing::debug!(target: "ethp2p::pool", number, %hash, fork = ?change.fork_id, "head moved");
        if let Some(fork_id) = change.fork_id {
            self.pool.set_filter(ForkIdFilter::from_fork_filter(self.head.fork_filter().clone(), true));
            if let Some(d) = &self.discovery {
                if let Err(e) = d.local_enr().set_fork_id(Some(fork_id)) {
                    tracing::warn!(target: "ethp2p::pool", error = %e, "cannot put the new fork id in our record");
                }
            }
        }
        self.command_sessions(SessionCommand::SetHead {
            status: *self.head.status(),
            fork_filter: self.head.fork_filter().clone(),
        });
        if let Some(range) = change.range {
            let plan = self
                .peers
                .values()
                .filter(|p| p.version() >= EthVersion::Eth69)
                .map(|p| (p.peer_id(), EthMessage::BlockRangeUpdate(range), false))
                .collect();
            self.send_planned(plan);
        }
    }

    fn broadcast(&mut self, what: Broadcast) -> BroadcastSummary {
        let peers: Vec<(PeerId, EthVersion)> =
            self.peers.values().map(|p| (p.peer_id(), p.version())).collect();
        let plan = match &what {
            Broadcast::Transactions(txs) => plan_transactions(peers, txs, &mut self.rng),
            Broadcast::Block(block) => plan_block(peers, block, &mut self.rng),
            Broadcast::BlockHashes(hashes) => plan_block_hashes(peers, hashes),
        };
        self.send_planned(plan)
    }

    /// Sends each planned message without waiting: a peer whose queue is full loses its
    /// copy, and nobody else waits for it.
    fn send_planned(&mut self, plan: Vec<Planned>) -> BroadcastSummary {
        let mut summary = BroadcastSummary::default();
        for (peer_id, message, full) in plan {
            let Some(peer) = self.peers.get(&peer_id) else { continue };
            match peer.try_announce(message) {
                Ok(()) if full => summary.direct += 1,
                Ok(()) => summary.announced += 1,
                Err(e) => {
                    tracing::trace!(target: "ethp2p::pool", ?peer_id, error = %e, "broadcast copy dropped");
                    summary.dropped += 1;
                }
            }
        }
        summary
    }

    /// A TCP connection arrived. The pool's per-IP throttle and pending-handshake cap are
    /// checked here, before any cryptography: a refused connection is closed at once and
    /// costs no ECIES work (geth `checkInboundConn`, reth `on_incoming_pending_session`).
    fn on_inbound(&mut self, tcp: TcpStream, addr: SocketAddr) {
        self.inbound_connections += 1;
        if let Err(reason) = self.pool.on_inbound_connection(addr.ip(), Instant::now()) {
            tracing::trace!(target: "ethp2p::pool", %addr, ?reason, "inbound connection refused before the handshake");
            self.recorder.with(|| {
                ::metrics::counter!(metrics::INBOUND_CONNECTIONS, "outcome" => "refused").increment(1)
            });
            // No session exists yet to carry a Disconnect: closing the socket is the answer.
            drop(tcp);
            return;
        }
        self.inbound_handshakes += 1;
        self.recorder.with(|| {
            ::metrics::counter!(metrics::INBOUND_CONNECTIONS, "outcome" => "handshake").increment(1)
        });
        if self.session_tx.try_send(SessionCommand::Accept { tcp, addr }).is_err() {
            // The session manager is saturated (or gone): the connection is closed.
            self.pool.on_inbound_failed(addr.ip());
        }
    }

    fn on_internal(&mut self, report: Internal) {
        match report {
            Internal::LookupDone => self.on_lookup_done(Instant::now()),
        }
    }

    /// Each session event becomes pool calls (and, for a finished handshake, the pool's
    /// verdict goes back to the session manager).
    fn on_session_event(&mut self, event: SessionEvent) {
        let now = Instant::now();
        match event {
            SessionEvent::Handshaken { id, peer, addr, direction, client_id } => {
                let peer_id = peer.peer_id();
                let command = match self.pool.on_session_established(peer_id, addr, direction, now) {
                    Ok(()) => {
                        self.pool.set_peer_info(&peer_id, &client_id, peer.version());
                        if let StatusHead::Range(range) = peer.remote_status().head {
                            self.ranges.insert(peer_id, range);
                        }
                        self.peers.insert(peer_id, peer);
                        SessionCommand::Admit { id }
                    }
                    Err(reason) => {
                        if direction == Direction::Outbound {
                            self.count_dial_failure(DialFailure::Refused);
                        }
                        SessionCommand::Refuse { id, reason }
                    }
                };
                self.command_sessions(command);
            }
            SessionEvent::DialFailed { peer_id, backoff, ban, failure } => {
                self.count_dial_failure(failure);
                if ban {
                    self.pool.change_reputation(&peer_id, ReputationChange::ProtocolBreach, now);
                }
                self.pool.on_dial_failed(&peer_id, backoff, now);
            }
            SessionEvent::InboundFailed { addr, peer_id, backoff } => {
                // The IP is refused before any ECIES work (unless exempt as LAN); a known
                // key is refused from every address, right after its auth packet.
                let until = self.pool.on_inbound_failed_from(addr.ip(), backoff, now);
                if let (Some(peer_id), Some(until)) = (peer_id, until) {
                    self.command_sessions(SessionCommand::Shun { peer_id, until });
                }
            }
            SessionEvent::Offence { peer_id, ban } => {
                let change =
                    if ban { ReputationChange::ProtocolBreach } else { ReputationChange::BadMessage };
                self.pool.change_reputation(&peer_id, change, now);
            }
            SessionEvent::RequestOutcome { peer_id, kind, outcome } => {
                self.pool.on_response(&peer_id, kind, &outcome, now)
            }
            SessionEvent::Announcement(a) => {
                match &a.message {
                    EthMessage::Transactions(txs) => self.tx_pool.on_transactions(a.peer_id, txs),
                    EthMessage::NewPooledTransactionHashes66(hashes) => {
                        self.tx_pool.on_announced(a.peer_id, hashes)
                    }
                    EthMessage::NewPooledTransactionHashes68(m) => {
                        self.tx_pool.on_announced(a.peer_id, &m.hashes)
                    }
                    EthMessage::BlockRangeUpdate(range) if self.peers.contains_key(&a.peer_id) => {
                        self.ranges.insert(a.peer_id, *range);
                    }
                    _ => {}
                }
                // Nobody listening is fine; a slow listener loses the oldest, not the node.
                let _ = self.announcements.send(a);
            }
            SessionEvent::Closed { peer_id, close } => {
                self.peers.remove(&peer_id);
                self.ranges.remove(&peer_id);
                self.pool.on_session_closed(&peer_id, close, now);
            }
        }
    }

    /// Queues a command for the session manager. It is never full in practice (its
    /// queue is larger than the pool's dial and inbound caps); if it were, the command is
    /// dropped and logged rather than stalling the service.
    fn command_sessions(&mut self, command: SessionCommand) {
        if let Err(e) = self.session_tx.try_send(command) {
            tracing::warn!(target: "ethp2p::pool", error = %e, "session manager queue full, command dropped");
        }
    }

    fn process_actions(&mut self) {
        while let Some(action) = self.pool.poll_action() {
            match action {
                PoolAction::Dial(target) => {
                    self.recorder.with(|| ::metrics::counter!(metrics::DIALS).increment(1));
                    self.command_sessions(SessionCommand::Dial {
                        peer_id: target.peer_id,
                        addr: target.addr,
                    });
                }
                PoolAction::Disconnect { peer_id, reason } => {
                    self.command_sessions(SessionCommand::Disconnect { peer_id, reason });
                }
                PoolAction::Event(event) => {
                    self.recorder.with(|| match &event {
                        PoolEvent::PeerDisconnected { reason, .. } => {
                            ::metrics::counter!(metrics::SESSIONS_CLOSED, "reason" => close_label(reason))
                                .increment(1)
                        }
                        PoolEvent::PeerBanned { .. } => ::metrics::counter!(metrics::BANS).increment(1),
                        _ => {}
                    });
                    // Nobody listening is fine.
                    let _ = self.events.send(event);
                }
            }
        }
    }

    fn save_book_in_background(&mut self) {
        let Some(path) = self.book_path.clone() else { return };
        if self.book_save.as_ref().is_some_and(|s| !s.is_finished()) {
            return; // the next interval saves a fresher book
        }
        let book = self.pool.to_book(Instant::now(), SystemTime::now());
        self.book_save = Some(tokio::task::spawn_blocking(move || {
            if let Err(e) = book.save(&path) {
                tracing::warn!(target: "ethp2p::pool", error = %e, "saving the address book failed");
            }
        }));
    }

    async fn shutdown(&mut self) {
        self.sources.shutdown().await;
        if let Some(mapping) = self.mapping.take() {
            mapping.shutdown().await;
        }
        #[cfg(feature = "lan")]
        if let Some(lan) = self.lan.take() {
            lan.shutdown().await;
        }
        // Save before waiting on sessions, so a stuck peer cannot cost us the book; after
        // a periodic save still running, so the final book lands last.
        if let Some(running) = self.book_save.take() {
            let _ = running.await;
        }
        if let Some(path) = self.book_path.clone() {
            let book = self.pool.to_book(Instant::now(), SystemTime::now());
            match tokio::task::spawn_blocking(move || book.save(&path)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(target: "ethp2p::pool", error = %e, "saving the address book failed")
                }
                Err(e) => tracing::warn!(target: "ethp2p::pool", error = %e, "address book writer panicked"),
            }
        }
        // The session manager disconnects every peer with ClientQuitting and waits for
        // their goodbyes (bounded); then the remaining tasks stop.
        let (done, wait) = oneshot::channel();
        if self.session_tx.send(SessionCommand::Shutdown(done)).await.is_ok() {
            let _ = wait.await;
        }
        self.tasks.shutdown().await;
    }
}

mod startup;
#[cfg(test)]
mod tests;

pub(super) use startup::{MapperFactory, Setup};
