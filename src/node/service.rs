//! The node's service task: owns the [`PoolState`], the listener and every session task.

use std::{
    collections::{BTreeMap, HashMap},
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::{broadcast, mpsc, oneshot, watch},
    task::JoinSet,
};

use super::{
    announce::Announcement,
    sessions::{
        SessionCommand, SessionEvent, SessionManager, SESSION_COMMAND_CAPACITY, SESSION_EVENT_CAPACITY,
    },
    stats::{close_label, DialFailure},
    NodeError, NodeStats,
};
use crate::{
    discovery::{
        nat::{start_port_mapping, ExternalAddr, PortMapConfig, PortMapping},
        Candidate, CandidateSource, Discovery, DiscoveryConfig, NatConfig,
    },
    eth::{ChainReader, EthConfig, EthPeer, RequestKind},
    metrics::{self, Recorder},
    pool::{
        AddressBook, Direction, ForkIdFilter, PeerSnapshot, PoolAction, PoolConfig, PoolEvent, PoolState,
        ReputationChange, BOOK_FILE,
    },
    record::{Enode, ForkId, LocalEnr, NodeKey, PeerId},
    rlpx::{RlpxConfig, RlpxError},
};

/// Reports from the tasks the service spawned.
const INTERNAL_CAPACITY: usize = 1024;
/// Accepted TCP connections waiting for the service's admission check; beyond it the
/// kernel's backlog holds them.
const INBOUND_CAPACITY: usize = 64;
/// A failing `accept` (out of file descriptors) is retried after this pause, not in a loop.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// LAN candidates buffered between the mDNS task and the service.
#[cfg(feature = "lan")]
const LAN_CAPACITY: usize = 64;
/// How often the discovery stats are copied into the node's own metrics registry.
const DISCOVERY_METRICS_INTERVAL: Duration = Duration::from_secs(5);

pub(super) enum Command {
    Candidate(Candidate),
    Peers(oneshot::Sender<Vec<PeerSnapshot>>),
    Stats(oneshot::Sender<NodeStats>),
    Acquire { kind: RequestKind, exclude: Vec<PeerId>, reply: oneshot::Sender<Option<(EthPeer, Duration)>> },
    Shutdown(oneshot::Sender<()>),
}

/// Reports from the candidate pumps and demand lookups the service spawned.
enum Internal {
    Candidate(Box<Candidate>),
    /// A demand lookup (see [`DemandLookups`]) finished.
    LookupDone,
}

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

pub(super) struct Setup {
    pub(super) key: NodeKey,
    pub(super) listen: SocketAddr,
    pub(super) eth: EthConfig,
    pub(super) chain: Arc<dyn ChainReader>,
    pub(super) pool: PoolConfig,
    pub(super) rlpx: RlpxConfig,
    pub(super) data_dir: Option<PathBuf>,
    pub(super) bootnodes: Vec<Enode>,
    pub(super) sources: Vec<mpsc::Receiver<Candidate>>,
    pub(super) discovery: Option<DiscoveryConfig>,
    pub(super) tick: Duration,
    pub(super) seed: u64,
    pub(super) commands: mpsc::Receiver<Command>,
    pub(super) events: broadcast::Sender<PoolEvent>,
    pub(super) announcements: broadcast::Sender<Announcement>,
    pub(super) recorder: Recorder,
    pub(super) nat: NatConfig,
    pub(super) port_mapper: Option<MapperFactory>,
    #[cfg(feature = "lan")]
    pub(super) lan: Option<crate::discovery::lan::LanConfig>,
}

/// What [`NodeService::start`] hands the [`Node`](super::Node): the service, the bound
/// listener address, the running discovery and the external address as it becomes known.
pub(super) type Started = (NodeService, SocketAddr, Option<Discovery>, watch::Receiver<Option<ExternalAddr>>);

/// Starts a [`PortMapping`] on a gateway of the caller's choice (tests use fake ones).
pub(super) struct MapperFactory(pub(super) Box<dyn FnOnce(PortMapConfig) -> PortMapping + Send>);

impl std::fmt::Debug for MapperFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MapperFactory")
    }
}

/// What the NAT setting asks for: a fixed external IP (`extip`), or port mappings on a
/// gateway (`upnp`, `pmp`, `any`, or the builder's own mapper), for the RLPx port and the
/// discovery port. Returns the mapping's handle and the external address as it changes.
async fn start_nat(
    nat: &NatConfig,
    port_mapper: Option<MapperFactory>,
    tcp: SocketAddr,
    discovery: Option<&Discovery>,
) -> Result<(Option<PortMapping>, watch::Receiver<Option<ExternalAddr>>), NodeError> {
    let udp = discovery.map(|d| d.local_addr().port());
    if let Some(ip) = nat.static_ip() {
        let (_, rx) = watch::channel(Some(ExternalAddr { ip, tcp_port: Some(tcp.port()), udp_port: udp }));
        return Ok((None, rx));
    }
    let mapping = match port_mapper {
        Some(factory) => {
            let internal = if tcp.ip().is_unspecified() {
                crate::discovery::nat::local_ip_towards(IpAddr::from([192, 0, 2, 1])).unwrap_or(tcp.ip())
            } else {
                tcp.ip()
            };
            Some((factory.0)(PortMapConfig::new(internal, Some(tcp.port()), udp)))
        }
        None => start_port_mapping(nat, Some(tcp.port()), udp).await.map_err(NodeError::Nat)?,
    };
    let rx = match &mapping {
        Some(m) => m.subscribe(),
        None => watch::channel(None).1,
    };
    Ok((mapping, rx))
}

pub(super) struct NodeService {
    pool: PoolState,
    /// Raw TCP connections from the accept task, not yet handshaken.
    inbound: mpsc::Receiver<(TcpStream, SocketAddr)>,
    /// The handle of each session the pool admitted, for routing requests to it.
    peers: HashMap<PeerId, EthPeer>,
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

/// Our record for discovery: the node key, the RLPx port and our chain's fork id (the
/// `eth` entry peers filter on). The IP is the configured external one (`extip`), else
/// the discovery socket's, else the RLPx
/// listener's; when both are unspecified (`0.0.0.0`) it stays absent until the discovery
/// protocols learn it from their peers' votes. The UDP port is written by
/// [`Discovery::start`] once bound.
fn local_record(
    key: &NodeKey,
    external: Option<IpAddr>,
    udp: Option<SocketAddr>,
    tcp: SocketAddr,
    fork_id: ForkId,
) -> Result<LocalEnr, NodeError> {
    let ip = external.or_else(|| udp.map(|a| a.ip()).filter(|ip| !ip.is_unspecified())).or_else(|| {
        let ip = tcp.ip();
        (!ip.is_unspecified()).then_some(ip)
    });
    let mut builder = LocalEnr::builder(key);
    builder.fork_id(fork_id);
    // The TCP port goes with the family we advertise (the listener's when no IP is known).
    match ip.unwrap_or(tcp.ip()) {
        IpAddr::V4(v4) => {
            builder.tcp4(tcp.port());
            if ip.is_some() {
                builder.ip4(v4);
            }
        }
        IpAddr::V6(v6) => {
            builder.tcp6(tcp.port());
            if ip.is_some() {
                builder.ip6(v6);
            }
        }
    }
    builder.build().map_err(|e| NodeError::InvalidConfig(format!("local ENR: {e}")))
}

/// The record LAN peers see: our listen address (never the NAT's external one: they dial
/// us directly), or, when listening on every interface, the address of the interface
/// that carries mDNS multicast; the UDP port is the discovery port, else the RLPx port.
#[cfg(feature = "lan")]
fn lan_record(
    key: &NodeKey,
    udp: Option<SocketAddr>,
    tcp: SocketAddr,
    fork_id: ForkId,
) -> Result<crate::record::Enr, NodeError> {
    /// RFC 6762: the mDNS IPv4 multicast group.
    const MDNS_GROUP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(224, 0, 0, 251));
    let lan_ip = crate::discovery::nat::local_ip_towards(MDNS_GROUP).ok();
    let local = local_record(key, None, udp, tcp, fork_id)?;
    let udp_port = udp.map_or(tcp.port(), |a| a.port());
    local
        .update(|c| {
            if c.ip4.is_none() && c.ip6.is_none() {
                if let Some(IpAddr::V4(ip)) = lan_ip {
                    c.ip4 = Some(ip);
                    c.tcp4 = Some(tcp.port());
                }
            }
            if c.ip4.is_some() || c.ip6.is_none() {
                c.udp4 = Some(udp_port);
            } else {
                c.udp6 = Some(udp_port);
            }
        })
        .map(|_| local.record())
        .map_err(|e| NodeError::InvalidConfig(format!("LAN record: {e}")))
}

/// Accepts TCP connections and hands them to the service, which decides before any
/// handshake work. Stops when the service is gone.
async fn accept_loop(listener: TcpListener, tx: mpsc::Sender<(TcpStream, SocketAddr)>) {
    loop {
        match listener.accept().await {
            Ok(connection) => {
                if tx.send(connection).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // A local fault (out of file descriptors and the like).
                tracing::warn!(target: "ethp2p::pool", error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

impl NodeService {
    pub(super) async fn start(setup: Setup) -> Result<Started, NodeError> {
        let Setup {
            key,
            listen,
            eth,
            chain,
            pool,
            mut rlpx,
            data_dir,
            bootnodes,
            sources,
            discovery,
            tick,
            seed,
            commands,
            events,
            announcements,
            recorder,
            nat,
            port_mapper,
            #[cfg(feature = "lan")]
            lan,
        } = setup;
        let listener = TcpListener::bind(listen).await.map_err(|e| NodeError::Listen(RlpxError::Io(e)))?;
        let local_addr = listener.local_addr().map_err(|e| NodeError::Listen(RlpxError::Io(e)))?;
        rlpx.listen_port = local_addr.port();
        let now = Instant::now();
        // Candidates on another chain are dropped before they take a dial slot.
        let filter = ForkIdFilter::from_fork_filter(eth.fork_filter.clone(), true);
        let mut state = PoolState::new(pool, key.peer_id(), filter, now, seed);
        let book_path = data_dir.map(|d| d.join(BOOK_FILE));
        if let Some(path) = &book_path {
            let path = path.clone();
            let (book, _) = tokio::task::spawn_blocking(move || AddressBook::load(&path))
                .await
                .map_err(|e| NodeError::InvalidConfig(format!("book loader panicked: {e}")))??;
            state.load_book(&book, now, SystemTime::now());
        }
        for b in &bootnodes {
            state.add_candidate(&Candidate::from_enode(b, CandidateSource::Bootnode), now);
        }
        let (internal_tx, internal_rx) = mpsc::channel(INTERNAL_CAPACITY);
        let mut source_tasks = JoinSet::new();
        let (inbound_tx, inbound) = mpsc::channel(INBOUND_CAPACITY);
        source_tasks.spawn(accept_loop(listener, inbound_tx));
        // Discovery, NAT and LAN start last, in this order; a failure stops the ones already
        // running, so a failed start leaves nothing behind.
        let discovery = match discovery {
            Some(mut config) => {
                if let Some(v4) = &mut config.v4 {
                    v4.tcp_port = v4.tcp_port.or(Some(local_addr.port()));
                }
                if let Some(v5) = &mut config.v5 {
                    v5.fork_filter = v5.fork_filter.take().or_else(|| Some(eth.fork_filter.clone()));
                }
                let udp = config.v4.as_ref().map(|c| c.listen_addr).or(config.v5.as_ref().map(|c| c.listen));
                let local = local_record(&key, nat.static_ip(), udp, local_addr, eth.status.fork_id)?;
                let (discovery, mut candidates) = Discovery::start(local, config).await?;
                let tx = internal_tx.clone();
                source_tasks.spawn(async move {
                    while let Some(c) = candidates.recv().await {
                        if tx.send(Internal::Candidate(Box::new(c))).await.is_err() {
                            return;
                        }
                    }
                });
                if recorder.is_own() {
                    // The discovery gauges (table, sessions, packets) for the node's endpoint.
                    let (d, recorder) = (discovery.clone(), recorder.clone());
                    source_tasks.spawn(async move {
                        let mut every = tokio::time::interval(DISCOVERY_METRICS_INTERVAL);
                        loop {
                            every.tick().await;
                            let Ok(stats) = d.stats().await else { return };
                            recorder.with(|| metrics::record_discovery(&stats));
                        }
                    });
                }
                Some(discovery)
            }
            None => None,
        };
        let (mapping, external) = match start_nat(&nat, port_mapper, local_addr, discovery.as_ref()).await {
            Ok(started) => started,
            Err(e) => {
                if let Some(d) = &discovery {
                    d.shutdown().await;
                }
                return Err(e);
            }
        };
        #[cfg(feature = "lan")]
        let lan = match lan {
            Some(config) => {
                let (tx, mut rx) = mpsc::channel(LAN_CAPACITY);
                let udp = discovery.as_ref().map(|d| d.local_addr());
                let started = lan_record(&key, udp, local_addr, eth.status.fork_id).and_then(|record| {
                    crate::discovery::lan::LanDiscovery::start(config, &record, tx).map_err(NodeError::Lan)
                });
                let lan = match started {
                    Ok(lan) => lan,
                    Err(e) => {
                        if let Some(d) = &discovery {
                            d.shutdown().await;
                        }
                        if let Some(m) = mapping {
                            m.shutdown().await;
                        }
                        return Err(e);
                    }
                };
                let tx = internal_tx.clone();
                source_tasks.spawn(async move {
                    while let Some(c) = rx.recv().await {
                        if tx.send(Internal::Candidate(Box::new(c))).await.is_err() {
                            return;
                        }
                    }
                });
                Some(lan)
            }
            None => None,
        };
        if let (Some(mapping), Some(d)) = (&mapping, &discovery) {
            // Each address the gateway grants goes into our record (one seq bump each).
            let (mut rx, local, bound_udp) =
                (mapping.subscribe(), d.local_enr().clone(), d.local_addr().port());
            source_tasks.spawn(async move {
                while rx.changed().await.is_ok() {
                    let Some(ext) = *rx.borrow_and_update() else { continue };
                    match local.set_endpoint(ext.ip, ext.udp_port.unwrap_or(bound_udp), ext.tcp_port) {
                        Ok(true) => tracing::debug!(target: "ethp2p::pool", ip = %ext.ip, "record updated with the external address"),
                        Ok(false) => {}
                        Err(e) => tracing::warn!(target: "ethp2p::pool", error = %e, "cannot put the external address in our record"),
                    }
                }
            });
        }
        for mut source in sources {
            let tx = internal_tx.clone();
            source_tasks.spawn(async move {
                while let Some(c) = source.recv().await {
                    if tx.send(Internal::Candidate(Box::new(c))).await.is_err() {
                        return;
                    }
                }
            });
        }
        let (session_tx, manager_rx) = mpsc::channel(SESSION_COMMAND_CAPACITY);
        let (manager_tx, session_rx) = mpsc::channel(SESSION_EVENT_CAPACITY);
        let mut tasks = JoinSet::new();
        tasks.spawn(SessionManager::new(key, rlpx, eth, chain, manager_rx, manager_tx).run());
        let service = Self {
            pool: state,
            inbound,
            peers: HashMap::new(),
            session_tx,
            session_rx,
            commands,
            internal_tx,
            internal_rx,
            tasks,
            sources: source_tasks,
            events,
            announcements,
            book_path,
            tick,
            dial_failures: BTreeMap::new(),
            inbound_connections: 0,
            inbound_handshakes: 0,
            recorder,
            published_peers: [0; 2],
            mapping,
            #[cfg(feature = "lan")]
            lan,
            discovery: discovery.clone(),
            lookups: DemandLookups {
                running: false,
                not_before: Instant::now(),
                fruitless: 0,
                new_candidates: 0,
            },
        };
        Ok((service, local_addr, discovery, external))
    }

    /// A service with fake neighbours: its session manager is the other end of
    /// `session_tx` / `session_rx`, and nothing else (no listener, discovery, NAT or book).
    #[cfg(test)]
    fn with_fake_sessions(
        pool: PoolState,
        commands: mpsc::Receiver<Command>,
        session_tx: mpsc::Sender<SessionCommand>,
        session_rx: mpsc::Receiver<SessionEvent>,
        events: broadcast::Sender<PoolEvent>,
        announcements: broadcast::Sender<Announcement>,
    ) -> Self {
        let (internal_tx, internal_rx) = mpsc::channel(INTERNAL_CAPACITY);
        Self {
            pool,
            inbound: mpsc::channel(1).1,
            peers: HashMap::new(),
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
                let _ = reply.send(self.pool.peers(now));
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
            Command::Acquire { kind, exclude, reply } => {
                let choice = self.pool.best_peer(kind, &exclude).and_then(|id| {
                    let peer = self.peers.get(&id)?.clone();
                    self.pool.on_request_sent(&id);
                    Some((peer, self.pool.request_timeout(&id, kind)))
                });
                if let Err(Some((peer, _))) = reply.send(choice) {
                    self.pool.on_request_cancelled(&peer.peer_id());
                }
            }
            Command::Shutdown(_) => unreachable!("handled in run"),
        }
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
            self.pool.on_inbound_failed();
        }
    }

    fn on_internal(&mut self, report: Internal) {
        match report {
            Internal::Candidate(c) => self.add_candidate(&c, Instant::now()),
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
            SessionEvent::InboundFailed => self.pool.on_inbound_failed(),
            SessionEvent::Offence { peer_id, ban } => {
                let change =
                    if ban { ReputationChange::ProtocolBreach } else { ReputationChange::BadMessage };
                self.pool.change_reputation(&peer_id, change, now);
            }
            SessionEvent::RequestOutcome { peer_id, kind, outcome } => {
                self.pool.on_response(&peer_id, kind, &outcome, now)
            }
            SessionEvent::Announcement(a) => {
                // Nobody listening is fine; a slow listener loses the oldest, not the node.
                let _ = self.announcements.send(a);
            }
            SessionEvent::Closed { peer_id, close } => {
                self.peers.remove(&peer_id);
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
        let book = self.pool.to_book(Instant::now(), SystemTime::now());
        self.tasks.spawn(async move {
            let result = tokio::task::spawn_blocking(move || book.save(&path)).await;
            if let Ok(Err(e)) = result {
                tracing::warn!(target: "ethp2p::pool", error = %e, "saving the address book failed");
            }
        });
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
        // Save before waiting on sessions, so a stuck peer cannot cost us the book.
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

#[cfg(test)]
mod tests;
