//! discv5 through the `discv5` crate, behind our own types.
//!
//! [`Discv5::start`] spawns one task, the `Discv5Service`, which owns the `discv5::Discv5`
//! instance. The service bootstraps from the configured ENRs, runs random lookups (fast at
//! first while they keep finding nodes, then at a steady pace: see `LookupPace`), and turns
//! every record it learns — lookup results, `Discovered` events, inbound sessions — into a
//! [`Candidate`] on a bounded channel, [`Candidates`]. The cheap `Clone` handle [`Discv5`]
//! talks to the service over a bounded command channel with oneshot replies; shutdown is
//! explicit ([`Discv5::shutdown`]).
//!
//! The local record is the [`LocalEnr`] the caller passes in: when the service starts it
//! moves the record into discv5's own lock (`LocalEnr::share_with`), so discv5's IP votes
//! and the node's fork updates change one record with one sequence number.
//!
//! ## Netrestrict
//! `discv5` 0.12 accepts only a plain `fn(&Enr) -> bool` as table filter, and applies it both
//! to routing-table inserts and to the records a lookup will contact next. A plain function
//! cannot hold a CIDR list, so the service installs the narrowest built-in class that covers
//! the list — loopback only, private networks only, or everything — and checks the exact list
//! itself: records outside it are counted (`restricted`) and never emitted, and peers outside
//! it that reach the table are removed and their IP is banned. For the loopback list every test
//! uses, the class *is* the list, so no test node can send a packet off the machine.
//!
//! Records are emitted once per node and sequence number; a record with a foreign or missing
//! `eth` entry is still emitted (with its [`EthEntry`]) and counted in [`Discv5Stats`].

use std::{
    net::{IpAddr, Ipv6Addr, SocketAddr},
    num::NonZeroUsize,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use discv5::NodeContact;
use enr::{CombinedPublicKey, NodeId as Discv5NodeId};
use ipnet::IpNet;
use tokio::{
    net::UdpSocket,
    sync::{mpsc, oneshot},
    task::JoinSet,
    time::Instant,
};
use tracing::{debug, trace};

use super::{v4::Datagram, Candidate, CandidateSource, Discv5Error, EthEntry, NetRestrict};
use crate::record::{public_key_of, Enode, Enr, ForkFilter, LocalEnr, NodeId};

/// discv5.md recommends a refresh of the table by random lookups; geth runs one every 30 s
/// once its table is full, reth every 60 s. We pick 30 s.
pub const DEFAULT_LOOKUP_INTERVAL: Duration = Duration::from_secs(30);
/// Lookups while bootstrapping: quick, so a fresh node fills its table in seconds.
pub const DEFAULT_BOOTSTRAP_LOOKUP_INTERVAL: Duration = Duration::from_secs(2);
/// How many lookups the bootstrap phase lasts before slowing down (~1 min at the default
/// pace, when every one of them finds new nodes).
pub const DEFAULT_BOOTSTRAP_LOOKUPS: u32 = 30;
/// Candidates buffered for a slow consumer before new ones are dropped (and counted).
pub const DEFAULT_CANDIDATE_CAPACITY: usize = 1024;
/// Nodes remembered to emit each (node, seq) once; ~100 bytes each.
pub const DEFAULT_SEEN_CAPACITY: usize = 16_384;
/// The devp2p default port, as geth and reth use for discovery.
pub const DEFAULT_PORT: u16 = 30303;
/// Commands queued to the service before senders wait.
const COMMAND_CAPACITY: usize = 64;

/// Configuration of the discv5 service. Every field says its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Discv5Config {
    /// UDP address to listen on. Port 0 picks a free port; read it back with
    /// [`Discv5::local_addr`]. Default: `0.0.0.0:30303`.
    pub listen: SocketAddr,
    /// Records to bootstrap from. Each must be within `netrestrict`. Default: none (the node
    /// only answers until someone contacts it).
    pub bootnodes: Vec<Enr>,
    /// `enode://` bootnodes (no record). discv5 needs a record to put a node in its table, so
    /// the service opens a session with each (a TALKREQ) and discv5 then asks the node for
    /// its record (FINDNODE at distance 0); the node joins the table once it answers. Only
    /// nodes that speak discv5 on their UDP port can answer. Default: none.
    pub bootnode_enodes: Vec<Enode>,
    /// Pause between random lookups after the bootstrap phase. Default: 30 s
    /// ([`DEFAULT_LOOKUP_INTERVAL`]).
    pub lookup_interval: Duration,
    /// Pause between random lookups during the bootstrap phase, after a lookup that learned
    /// a new record. A bootstrap lookup that learned nothing new doubles the pause before the
    /// next one, up to `lookup_interval` (2 s, 4 s, 8 s, 16 s, 30 s by default); one that
    /// learns something restores this pace. Default: 2 s.
    pub bootstrap_lookup_interval: Duration,
    /// Number of lookups in the bootstrap phase. Default: 30.
    pub bootstrap_lookups: u32,
    /// Capacity of the candidate channel; when it is full new candidates are dropped and
    /// counted in [`Discv5Stats::dropped`]. Default: 1024.
    pub candidate_capacity: usize,
    /// Number of (node, seq) pairs remembered to emit each record once. Default: 16384.
    pub seen_capacity: usize,
    /// Networks the node may talk to. Default: no restriction.
    pub netrestrict: NetRestrict,
    /// Fork filter of our chain, used to count records with a foreign fork id. Without one,
    /// a record is foreign when its fork hash differs from the one in our own record.
    /// Default: none.
    pub fork_filter: Option<ForkFilter>,
    /// Let discv5 update our record's IP and port from what peers observe (PONG votes).
    /// Default: true.
    pub enr_update: bool,
    /// Run random lookups (the bootstrap phase, then one every `lookup_interval`). Without
    /// them the node only answers, and looks up when asked ([`Discv5::lookup`]): what a
    /// crawler's own node or a test network whose tables are filled directly wants, since
    /// every lookup costs its node up to 48 record signature checks per peer asked.
    /// Default: true.
    pub random_lookups: bool,
}

impl Default for Discv5Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            bootnodes: Vec::new(),
            bootnode_enodes: Vec::new(),
            lookup_interval: DEFAULT_LOOKUP_INTERVAL,
            bootstrap_lookup_interval: DEFAULT_BOOTSTRAP_LOOKUP_INTERVAL,
            bootstrap_lookups: DEFAULT_BOOTSTRAP_LOOKUPS,
            candidate_capacity: DEFAULT_CANDIDATE_CAPACITY,
            seen_capacity: DEFAULT_SEEN_CAPACITY,
            netrestrict: NetRestrict::none(),
            fork_filter: None,
            enr_update: true,
            random_lookups: true,
        }
    }
}

impl Discv5Config {
    /// A builder starting from the defaults.
    pub fn builder() -> Discv5ConfigBuilder {
        Discv5ConfigBuilder { config: Self::default() }
    }
}

/// Builds a [`Discv5Config`].
///
/// ```
/// use ethp2p::{Discv5Config, NetRestrict};
/// let config = Discv5Config::builder()
///     .listen("127.0.0.1:0".parse().unwrap())
///     .netrestrict(NetRestrict::loopback())
///     .build()?;
/// assert_eq!(config.listen.port(), 0);
/// # Ok::<(), ethp2p::Discv5Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Discv5ConfigBuilder {
    config: Discv5Config,
}

impl Discv5ConfigBuilder {
    /// See [`Discv5Config::listen`].
    pub fn listen(&mut self, addr: SocketAddr) -> &mut Self {
        self.config.listen = addr;
        self
    }

    /// Adds one bootstrap record. See [`Discv5Config::bootnodes`].
    pub fn bootnode(&mut self, enr: Enr) -> &mut Self {
        self.config.bootnodes.push(enr);
        self
    }

    /// See [`Discv5Config::bootnodes`].
    pub fn bootnodes(&mut self, enrs: impl IntoIterator<Item = Enr>) -> &mut Self {
        self.config.bootnodes.extend(enrs);
        self
    }

    /// Adds one `enode://` bootnode. See [`Discv5Config::bootnode_enodes`].
    pub fn bootnode_enode(&mut self, enode: Enode) -> &mut Self {
        self.config.bootnode_enodes.push(enode);
        self
    }

    /// See [`Discv5Config::lookup_interval`].
    pub fn lookup_interval(&mut self, interval: Duration) -> &mut Self {
        self.config.lookup_interval = interval;
        self
    }

    /// Sets the bootstrap phase: `lookups` lookups, `interval` apart while they find new
    /// records (see [`Discv5Config::bootstrap_lookup_interval`]).
    pub fn bootstrap(&mut self, lookups: u32, interval: Duration) -> &mut Self {
        self.config.bootstrap_lookups = lookups;
        self.config.bootstrap_lookup_interval = interval;
        self
    }

    /// See [`Discv5Config::candidate_capacity`].
    pub fn candidate_capacity(&mut self, capacity: usize) -> &mut Self {
        self.config.candidate_capacity = capacity;
        self
    }

    /// See [`Discv5Config::seen_capacity`].
    pub fn seen_capacity(&mut self, capacity: usize) -> &mut Self {
        self.config.seen_capacity = capacity;
        self
    }

    /// See [`Discv5Config::netrestrict`].
    pub fn netrestrict(&mut self, netrestrict: NetRestrict) -> &mut Self {
        self.config.netrestrict = netrestrict;
        self
    }

    /// See [`Discv5Config::fork_filter`].
    pub fn fork_filter(&mut self, filter: ForkFilter) -> &mut Self {
        self.config.fork_filter = Some(filter);
        self
    }

    /// Keeps our record's address as given. See [`Discv5Config::enr_update`].
    pub fn disable_enr_update(&mut self) -> &mut Self {
        self.config.enr_update = false;
        self
    }

    /// Turns random lookups off. See [`Discv5Config::random_lookups`].
    pub fn disable_random_lookups(&mut self) -> &mut Self {
        self.config.random_lookups = false;
        self
    }

    /// Checks the configuration.
    pub fn build(&self) -> Result<Discv5Config, Discv5Error> {
        let c = &self.config;
        if c.lookup_interval.is_zero() || (c.bootstrap_lookups > 0 && c.bootstrap_lookup_interval.is_zero()) {
            return Err(Discv5Error::Config("lookup intervals must be non-zero"));
        }
        if c.candidate_capacity == 0 || c.seen_capacity == 0 {
            return Err(Discv5Error::Config("candidate and seen capacities must be non-zero"));
        }
        for enr in &c.bootnodes {
            check_bootnode(enr, &c.netrestrict)?;
        }
        for enode in &c.bootnode_enodes {
            check_enode(enode, &c.netrestrict)?;
        }
        Ok(c.clone())
    }
}

fn check_bootnode(enr: &Enr, netrestrict: &NetRestrict) -> Result<(), Discv5Error> {
    let node_id = NodeId::from(enr.node_id().raw());
    let ip = enr.ip4().map(IpAddr::V4).or(enr.ip6().map(IpAddr::V6));
    match ip {
        None => Err(Discv5Error::BootnodeUnreachable(node_id)),
        Some(ip) if !netrestrict.allows(&ip) => Err(Discv5Error::BootnodeRestricted(node_id, ip)),
        Some(_) if enr.udp4().or(enr.udp6()).is_none() => Err(Discv5Error::BootnodeUnreachable(node_id)),
        Some(_) => Ok(()),
    }
}

fn check_enode(enode: &Enode, netrestrict: &NetRestrict) -> Result<(), Discv5Error> {
    if !netrestrict.allows(&enode.ip) {
        return Err(Discv5Error::BootnodeRestricted(enode.node_id(), enode.ip));
    }
    if enode.udp_port == 0 {
        return Err(Discv5Error::BootnodeUnreachable(enode.node_id()));
    }
    Ok(())
}

/// The discv5 contact of an enode: its key and UDP endpoint, without a record.
fn enode_contact(enode: &Enode) -> Result<NodeContact, Discv5Error> {
    let public = public_key_of(&enode.peer_id).ok_or(Discv5Error::BootnodeUnreachable(enode.node_id()))?;
    let key = enr::k256::ecdsa::VerifyingKey::from_sec1_bytes(&public.serialize())
        .map_err(|_| Discv5Error::BootnodeUnreachable(enode.node_id()))?;
    Ok(NodeContact::new(CombinedPublicKey::from(key), enode.udp_addr(), None))
}

/// The TALKREQ protocol name used to open a session with an enode bootnode. Nobody serves
/// it; the empty answer is enough, as the session is what we want.
const SESSION_OPENER_PROTOCOL: &[u8] = b"ethp2p-hello";

/// What the service has seen so far. Counts are of distinct (node, seq) records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Discv5Stats {
    /// Records learned (distinct node and sequence number).
    pub discovered: u64,
    /// Of those, records with a decodable `eth` entry.
    pub with_eth: u64,
    /// Of those with an `eth` entry, records whose fork id is not compatible with ours.
    pub foreign_fork: u64,
    /// Records without an `eth` entry (consensus-layer nodes, mostly).
    pub missing_eth: u64,
    /// Records whose `eth` entry does not decode.
    pub malformed_eth: u64,
    /// Records that cannot become a candidate (no IP, or not a secp256k1 key).
    pub unusable: u64,
    /// Records or sessions outside the netrestrict list (ignored, never emitted).
    pub restricted: u64,
    /// Candidates dropped because the consumer did not keep up.
    pub dropped: u64,
    /// Candidates emitted.
    pub emitted: u64,
    /// Random lookups completed.
    pub lookups: u64,
    /// Datagrams discv5 could not decode (`Event::UnrecognizedFrame`): discv4 packets when
    /// the port is shared, and garbage. Each is handed to discv4 when it shares the port.
    pub unrecognized: u64,
    /// Of `unrecognized`, those dropped: discv4's queue was full (it is behind), or no
    /// discv4 shares the port.
    pub unrecognized_dropped: u64,
    /// Nodes in the routing table now.
    pub table_size: usize,
    /// Nodes with a live session now.
    pub connected: usize,
}

/// Counters the service bumps and the handle reads (atomics: the one kind of shared state
/// STYLE allows besides the local record).
#[derive(Debug, Default)]
struct Counters {
    discovered: AtomicU64,
    with_eth: AtomicU64,
    foreign_fork: AtomicU64,
    missing_eth: AtomicU64,
    malformed_eth: AtomicU64,
    unusable: AtomicU64,
    restricted: AtomicU64,
    dropped: AtomicU64,
    emitted: AtomicU64,
    lookups: AtomicU64,
    unrecognized: AtomicU64,
    unrecognized_dropped: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    fn snapshot(&self, table_size: usize, connected: usize) -> Discv5Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Discv5Stats {
            discovered: get(&self.discovered),
            with_eth: get(&self.with_eth),
            foreign_fork: get(&self.foreign_fork),
            missing_eth: get(&self.missing_eth),
            malformed_eth: get(&self.malformed_eth),
            unusable: get(&self.unusable),
            restricted: get(&self.restricted),
            dropped: get(&self.dropped),
            emitted: get(&self.emitted),
            lookups: get(&self.lookups),
            unrecognized: get(&self.unrecognized),
            unrecognized_dropped: get(&self.unrecognized_dropped),
            table_size,
            connected,
        }
    }
}

/// The stream of nodes found by discv5: each record once per sequence number, in the order
/// found. Ends when the service stops.
#[derive(Debug)]
pub struct Candidates {
    rx: mpsc::Receiver<Candidate>,
}

impl Candidates {
    /// The next candidate, or `None` once the service has stopped.
    pub async fn recv(&mut self) -> Option<Candidate> {
        self.rx.recv().await
    }

    /// A candidate if one is ready now.
    pub fn try_recv(&mut self) -> Option<Candidate> {
        self.rx.try_recv().ok()
    }
}

impl futures::Stream for Candidates {
    type Item = Candidate;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Candidate>> {
        self.rx.poll_recv(cx)
    }
}

/// Inputs to the service.
enum Command {
    Stats(oneshot::Sender<Discv5Stats>),
    AddEnr(Enr, oneshot::Sender<Result<(), Discv5Error>>),
    Lookup(NodeId, oneshot::Sender<Result<Vec<Candidate>, Discv5Error>>),
    FindNode(Enr, Vec<u64>, oneshot::Sender<Result<Vec<Enr>, Discv5Error>>),
    TableEntries(oneshot::Sender<Vec<Enr>>),
    AddEnode(Enode, oneshot::Sender<Result<(), Discv5Error>>),
    Shutdown(oneshot::Sender<()>),
}

/// Handle to a running discv5 service. Cheap to clone.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use ethp2p::{record::LocalEnr, Discv5, Discv5Config, NodeKey};
/// let key = NodeKey::generate();
/// let local = LocalEnr::builder(&key).build()?;
/// let bootnode = ethp2p::record::parse_enr("enr:-IS4Q...")?;
/// let config = Discv5Config::builder().bootnode(bootnode).build()?;
/// let (discv5, mut candidates) = Discv5::start(local, config).await?;
/// while let Some(candidate) = candidates.recv().await {
///     println!("{} {:?}", candidate.node_id(), candidate.fork_id());
/// }
/// discv5.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Discv5 {
    commands: mpsc::Sender<Command>,
    counters: Arc<Counters>,
    local_addr: SocketAddr,
    local_enr: LocalEnr,
}

impl Discv5 {
    /// Starts discv5 with `local_enr` as our record: binds the socket, adds the bootnodes and
    /// spawns the service on the current tokio runtime.
    ///
    /// If the record has no UDP port for the listen address's family, the bound port is
    /// written into it; if it has no IP and the listen address is specific, that IP is too.
    pub async fn start(local_enr: LocalEnr, config: Discv5Config) -> Result<(Self, Candidates), Discv5Error> {
        let config = Discv5ConfigBuilder { config }.build()?;
        let socket = bind(config.listen).await?;
        Self::start_on_socket(local_enr, config, socket, None).await
    }

    /// Starts discv5 on a bound socket, which discv5 reads and sends on. Datagrams it cannot
    /// decode go to `unrecognized` when given (a full channel drops them, counted in
    /// [`Discv5Stats::unrecognized_dropped`]): this is how discv4 shares the port
    /// ([`crate::discovery::Discovery`]). `config.listen` is ignored.
    pub(crate) async fn start_on_socket(
        local_enr: LocalEnr,
        config: Discv5Config,
        socket: Arc<UdpSocket>,
        unrecognized: Option<mpsc::Sender<Datagram>>,
    ) -> Result<(Self, Candidates), Discv5Error> {
        let config = Discv5ConfigBuilder { config }.build()?;
        let addr = socket.local_addr().map_err(|e| Discv5Error::Bind(config.listen, e.to_string()))?;
        record_listen_addr(&local_enr, addr)?;
        let discv5 =
            start_protocol(&local_enr, protocol_config(&config, socket)).await.map_err(|e| match e {
                discv5::Error::Io(e) => Discv5Error::Bind(addr, e.to_string()),
                e => Discv5Error::Start(format!("{e:?}")),
            })?;
        Self::spawn(discv5, addr, local_enr, config, unrecognized).await
    }

    async fn spawn(
        discv5: discv5::Discv5,
        local_addr: SocketAddr,
        local_enr: LocalEnr,
        config: Discv5Config,
        unrecognized: Option<mpsc::Sender<Datagram>>,
    ) -> Result<(Self, Candidates), Discv5Error> {
        local_enr.share_with(discv5.external_enr());
        let events = discv5.event_stream().await.map_err(|e| Discv5Error::Start(e.to_string()))?;
        for enr in &config.bootnodes {
            // `build()` checked reachability and netrestrict; the table filter agrees with
            // netrestrict's class, so a refusal here is a full bucket, which cannot happen in
            // an empty table.
            if let Err(reason) = discv5.add_enr(enr.clone()) {
                return Err(Discv5Error::BootnodeRejected(NodeId::from(enr.node_id().raw()), reason));
            }
        }
        let (commands, command_rx) = mpsc::channel(COMMAND_CAPACITY);
        let (candidate_tx, candidate_rx) = mpsc::channel(config.candidate_capacity);
        let counters = Arc::new(Counters::default());
        let seen = lru::LruCache::new(NonZeroUsize::new(config.seen_capacity).unwrap_or(NonZeroUsize::MIN));
        let mut service = Discv5Service {
            local_id: local_enr.node_id(),
            discv5,
            config,
            local_enr: local_enr.clone(),
            counters: counters.clone(),
            candidates: candidate_tx,
            seen,
            lookups: JoinSet::new(),
            pace: LookupPace::default(),
            probes: JoinSet::new(),
            unrecognized,
        };
        for enode in service.config.bootnode_enodes.clone() {
            service.open_session(&enode)?;
        }
        tokio::spawn(service.run(command_rx, events));
        debug!(target: "ethp2p::discv5", %local_addr, node_id = %local_enr.node_id(), "discv5 started");
        Ok((Self { commands, counters, local_addr, local_enr }, Candidates { rx: candidate_rx }))
    }

    /// The UDP address the service is bound to (with the real port if 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Our record, shared with the service.
    pub fn local_enr(&self) -> &LocalEnr {
        &self.local_enr
    }

    async fn request<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Discv5Error> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| Discv5Error::Stopped)?;
        rx.await.map_err(|_| Discv5Error::Stopped)
    }

    /// Counters, table size and live sessions.
    pub async fn stats(&self) -> Result<Discv5Stats, Discv5Error> {
        self.request(Command::Stats).await
    }

    /// Adds a record to the routing table (it must be within netrestrict).
    pub async fn add_enr(&self, enr: Enr) -> Result<(), Discv5Error> {
        self.request(|tx| Command::AddEnr(enr, tx)).await?
    }

    /// Opens a session with an `enode://` node so that discv5 fetches its record and adds it
    /// to the table (see [`Discv5Config::bootnode_enodes`]). Returns once the request is sent.
    pub async fn add_enode(&self, enode: Enode) -> Result<(), Discv5Error> {
        self.request(|tx| Command::AddEnode(enode, tx)).await?
    }

    /// Runs one lookup for `target` now and returns the nodes it found closest to it. They
    /// also go to the candidate stream like any other discovery.
    pub async fn lookup(&self, target: NodeId) -> Result<Vec<Candidate>, Discv5Error> {
        self.request(|tx| Command::Lookup(target, tx)).await?
    }

    /// Asks one node for the records in its table at the given log2 `distances` (1..=256;
    /// 0 asks for its own record) with a single FINDNODE, and returns its answer as is: not
    /// filtered, not added to our table, not sent to the candidate stream. This is what a
    /// crawler uses to read a node's whole table, distance by distance.
    pub async fn find_node(&self, enr: Enr, distances: Vec<u64>) -> Result<Vec<Enr>, Discv5Error> {
        self.request(|tx| Command::FindNode(enr, distances, tx)).await?
    }

    /// The records in the routing table now.
    pub async fn table_entries(&self) -> Result<Vec<Enr>, Discv5Error> {
        self.request(Command::TableEntries).await
    }

    /// Counters only, without asking the service (no table size: 0).
    pub fn counters(&self) -> Discv5Stats {
        self.counters.snapshot(0, 0)
    }

    /// Stops the service and closes its socket; the candidate stream then ends. Returns once
    /// the service has stopped. Calling it again, or on a clone, is harmless.
    pub async fn shutdown(&self) {
        let _ = self.request(Command::Shutdown).await;
    }
}

/// Builds the `discv5` crate's configuration from ours, on `socket`. This and
/// [`start_protocol`] are the only places that construct discv5.
///
/// discv5 gets the socket through `ListenConfig::FromSockets`: it spawns its own receive
/// task on it (and a send task), so whoever else uses the socket must only send on it. Its
/// packet filter (rate limits per IP) stays off, as by default: it would run before a
/// datagram is known to be discv5 and so throttle discv4 too. Its ban list does apply to
/// every datagram; we only ban IPs outside netrestrict, which discv4 drops as well.
fn protocol_config(config: &Discv5Config, socket: Arc<UdpSocket>) -> discv5::Config {
    let listen = match socket.local_addr().map(|a| a.ip()) {
        Ok(IpAddr::V6(_)) => discv5::ListenConfig::FromSockets { ipv4: None, ipv6: Some(socket) },
        _ => discv5::ListenConfig::FromSockets { ipv4: Some(socket), ipv6: None },
    };
    let mut builder = discv5::ConfigBuilder::new(listen);
    builder.table_filter(table_filter_for(&config.netrestrict));
    if !config.enr_update {
        builder.disable_enr_update();
    }
    builder.build()
}

/// Creates and starts the discv5 protocol with our record and a ready `discv5::Config`.
async fn start_protocol(
    local_enr: &LocalEnr,
    protocol: discv5::Config,
) -> Result<discv5::Discv5, discv5::Error> {
    let mut discv5 = discv5::Discv5::new(local_enr.record(), local_enr.key().to_combined_key(), protocol)
        .map_err(discv5::Error::Custom)?;
    discv5.start().await?;
    Ok(discv5)
}

/// Binds the UDP socket discv5 will own. An IPv6 address binds an IPv6-only socket, as
/// discv5 does when it binds its own: IPv4 peers are reached through an IPv4 listen address.
async fn bind(addr: SocketAddr) -> Result<Arc<UdpSocket>, Discv5Error> {
    let err = |e: std::io::Error| Discv5Error::Bind(addr, e.to_string());
    let socket = match addr {
        SocketAddr::V4(_) => UdpSocket::bind(addr).await.map_err(err)?,
        SocketAddr::V6(_) => {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None).map_err(err)?;
            socket.set_only_v6(true).map_err(err)?;
            socket.set_nonblocking(true).map_err(err)?;
            socket.bind(&addr.into()).map_err(err)?;
            UdpSocket::from_std(socket.into()).map_err(err)?
        }
    };
    Ok(Arc::new(socket))
}

/// Writes the bound address into our record where the record has none: the UDP port
/// always, the IP when it is a specific one.
fn record_listen_addr(local_enr: &LocalEnr, addr: SocketAddr) -> Result<(), Discv5Error> {
    let content = local_enr.content();
    let (has_ip, has_udp) = match addr.ip() {
        IpAddr::V4(_) => (content.ip4.is_some(), content.udp4.is_some()),
        IpAddr::V6(_) => (content.ip6.is_some(), content.udp6.is_some()),
    };
    local_enr
        .update(|c| {
            let specific = !addr.ip().is_unspecified();
            match addr.ip() {
                IpAddr::V4(ip) => {
                    if !has_ip && specific {
                        c.ip4 = Some(ip);
                    }
                    if !has_udp {
                        c.udp4 = Some(addr.port());
                    }
                }
                IpAddr::V6(ip) => {
                    if !has_ip && specific {
                        c.ip6 = Some(ip);
                    }
                    if !has_udp {
                        c.udp6 = Some(addr.port());
                    }
                }
            }
        })
        .map(|_| ())
        .map_err(Discv5Error::Enr)
}

/// The narrowest built-in filter class that covers every network of `netrestrict` (see the
/// module docs for why this is a class and not the list itself).
fn table_filter_for(netrestrict: &NetRestrict) -> fn(&Enr) -> bool {
    let nets = netrestrict.networks();
    if nets.is_empty() {
        return allow_all;
    }
    if nets.iter().all(is_loopback_net) {
        return loopback_only;
    }
    if nets.iter().all(|net| is_loopback_net(net) || is_private_net(net)) {
        return private_only;
    }
    allow_all
}

fn allow_all(_: &Enr) -> bool {
    true
}

/// Every address in the record is loopback, and there is at least one.
fn loopback_only(enr: &Enr) -> bool {
    all_addresses(enr, |ip| ip.is_loopback())
}

/// Every address in the record is loopback or private (RFC 1918, RFC 4193, link-local).
fn private_only(enr: &Enr) -> bool {
    all_addresses(enr, is_private_ip)
}

fn all_addresses(enr: &Enr, allowed: impl Fn(IpAddr) -> bool) -> bool {
    let ips: Vec<IpAddr> = enr.ip4().map(IpAddr::V4).into_iter().chain(enr.ip6().map(IpAddr::V6)).collect();
    !ips.is_empty() && ips.into_iter().all(allowed)
}

fn is_private_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        IpAddr::V6(ip) => ip.is_loopback() || is_unique_local(&ip) || is_unicast_link_local(&ip),
    }
}

// `Ipv6Addr::is_unique_local`/`is_unicast_link_local` need Rust 1.84; spelled out to keep the
// MSRV question out of the way.
fn is_unique_local(ip: &Ipv6Addr) -> bool {
    ip.segments()[0] & 0xfe00 == 0xfc00
}

fn is_unicast_link_local(ip: &Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

fn is_loopback_net(net: &IpNet) -> bool {
    match net {
        IpNet::V4(n) => n.network().is_loopback() && n.prefix_len() >= 8,
        IpNet::V6(n) => n.prefix_len() == 128 && n.network().is_loopback(),
    }
}

fn is_private_net(net: &IpNet) -> bool {
    // A network is private if both its first and last address are, and it is no wider than
    // the private block it sits in (the blocks are /8, /10, /12, /16, /7).
    let (first, last) = (net.network(), net.broadcast());
    let min_prefix = match first {
        IpAddr::V4(ip) if ip.octets()[0] == 10 || ip.is_loopback() => 8,
        IpAddr::V4(ip) if ip.is_link_local() || ip.octets()[0] == 192 => 16,
        IpAddr::V4(_) => 12,
        IpAddr::V6(ip) if is_unique_local(&ip) => 7,
        IpAddr::V6(_) => 10,
    };
    net.prefix_len() >= min_prefix && is_private_ip(first) && is_private_ip(last)
}

/// The pace of the service's random lookups (a pure core: it sees each lookup's outcome and
/// returns the pause before the next one, counted from the start of the one that ended).
///
/// The first [`Discv5Config::bootstrap_lookups`] lookups are the bootstrap phase, meant to
/// fill the table quickly; after it, one lookup every [`Discv5Config::lookup_interval`]
/// keeps the table fresh. A bootstrap lookup that learned no new record doubles the pause
/// (2 s, 4 s, … up to `lookup_interval`) and one that learned something restores the
/// bootstrap pace, as the node's demand lookups do. Once the table holds what the network
/// can tell us, the remaining fast lookups learn nothing, yet each one costs the peers it
/// asks a NODES answer and us a signature check of every record in it. In `benches/pool.rs`
/// (100 nodes in one process on two cores) those checks were 80% of the CPU time and, at the
/// fixed 2 s pace, kept both cores busy for the first ~95 s, 35 s after the peer counts had
/// settled; with the backoff, for ~23 s.
#[derive(Debug, Default)]
struct LookupPace {
    /// Lookups ended so far.
    done: u32,
    /// Bootstrap lookups in a row that learned nothing new.
    fruitless: u32,
}

impl LookupPace {
    fn after_lookup(&mut self, learned: bool, config: &Discv5Config) -> Duration {
        self.done = self.done.saturating_add(1);
        if self.done > config.bootstrap_lookups {
            return config.lookup_interval;
        }
        self.fruitless = if learned { 0 } else { self.fruitless.saturating_add(1) };
        let ceiling = config.lookup_interval.max(config.bootstrap_lookup_interval);
        // 2^16 × any bootstrap interval worth having is past any sane `lookup_interval`.
        config.bootstrap_lookup_interval.saturating_mul(1 << self.fruitless.min(16)).min(ceiling)
    }
}

/// The task that owns the `discv5::Discv5` instance.
struct Discv5Service {
    /// Our node id, computed once: deriving it from the key is a scalar multiplication,
    /// too slow to repeat for every record considered.
    local_id: NodeId,
    discv5: discv5::Discv5,
    config: Discv5Config,
    local_enr: LocalEnr,
    counters: Arc<Counters>,
    candidates: mpsc::Sender<Candidate>,
    /// Last sequence number emitted per node, to emit each record once.
    seen: lru::LruCache<NodeId, u64>,
    /// The running random lookup (one at a time); dropping the service aborts it.
    lookups: JoinSet<Result<Vec<Enr>, discv5::QueryError>>,
    /// The pause after each random lookup.
    pace: LookupPace,
    /// Requests whose answer discv5 handles itself: TALKREQs that open sessions with enode
    /// bootnodes, and PINGs that revalidate new table entries. Each ends with discv5's
    /// request timeout at the latest.
    probes: JoinSet<()>,
    /// Where datagrams discv5 cannot decode go: discv4's queue, when it shares the port.
    unrecognized: Option<mpsc::Sender<Datagram>>,
}

impl Discv5Service {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, mut events: mpsc::Receiver<discv5::Event>) {
        let mut next_lookup = Instant::now();
        // When the running random lookup started, and the records learned by then.
        let mut running = (next_lookup, 0);
        let mut shutdown_reply = None;
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Shutdown(reply)) => {
                        shutdown_reply = Some(reply);
                        break;
                    }
                    Some(command) => self.on_command(command),
                    // Every handle is gone: nobody can ask for a shutdown any more.
                    None => break,
                },
                Some(event) = events.recv() => self.on_event(event),
                // One random lookup at a time; the next one is scheduled when it ends, from
                // what it learned.
                () = tokio::time::sleep_until(next_lookup),
                    if self.config.random_lookups && self.lookups.is_empty() => {
                    let target = Discv5NodeId::random();
                    trace!(target: "ethp2p::discv5", %target, "random lookup");
                    self.lookups.spawn(self.discv5.find_node(target));
                    running = (Instant::now(), self.counters.discovered.load(Ordering::Relaxed));
                }
                Some(_) = self.probes.join_next() => {}
                Some(done) = self.lookups.join_next() => {
                    bump(&self.counters.lookups);
                    match done {
                        Ok(Ok(enrs)) => {
                            for enr in &enrs {
                                self.consider(enr);
                            }
                        }
                        Ok(Err(e)) => debug!(target: "ethp2p::discv5", error = ?e, "lookup failed"),
                        Err(e) => debug!(target: "ethp2p::discv5", error = %e, "lookup task ended"),
                    }
                    // Its `Discovered` events and its result went through `consider`, which
                    // counts each new (node, seq) once.
                    let learned = self.counters.discovered.load(Ordering::Relaxed) > running.1;
                    let pause = self.pace.after_lookup(learned, &self.config);
                    trace!(target: "ethp2p::discv5", learned, ?pause, "random lookup done");
                    next_lookup = running.0 + pause;
                }
            }
        }
        self.lookups.shutdown().await;
        self.probes.shutdown().await;
        self.discv5.shutdown();
        debug!(target: "ethp2p::discv5", "discv5 stopped");
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    /// Sends a TALKREQ to an enode so that discv5 opens a session and then fetches its record.
    /// The answer does not matter; the task ends with discv5's request timeout at the latest.
    fn open_session(&mut self, enode: &Enode) -> Result<(), Discv5Error> {
        let contact = enode_contact(enode)?;
        let talk = self.discv5.talk_req(contact, SESSION_OPENER_PROTOCOL.to_vec(), Vec::new());
        let node_id = enode.node_id();
        self.probes.spawn(async move {
            if let Err(e) = talk.await {
                debug!(target: "ethp2p::discv5", %node_id, error = ?e, "enode session opener failed");
            }
        });
        Ok(())
    }

    /// PINGs a node that just entered the table. discv5 0.12 pings a node it dialled at once,
    /// but one that contacted us only after `ping_interval` (5 min): until then a node that
    /// completed one handshake from a spoofable-looking address sits in the table unchecked,
    /// and is served to others in NODES. geth revalidates new entries within seconds, and
    /// hive's `discv5 test` FindnodeResults waits 60 s for our PINGs to its bystanders.
    /// For a node we dialled this is a second PING, one packet per table insertion.
    fn revalidate(&mut self, enr: Enr) {
        let node_id = enr.node_id();
        let ping = self.discv5.send_ping(enr);
        self.probes.spawn(async move {
            if let Err(e) = ping.await {
                trace!(target: "ethp2p::discv5", %node_id, error = ?e, "new entry did not answer PING");
            }
        });
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Stats(reply) => {
                let stats = self
                    .counters
                    .snapshot(self.discv5.table_entries_id().len(), self.discv5.connected_peers());
                let _ = reply.send(stats);
            }
            Command::AddEnr(enr, reply) => {
                let result = check_bootnode(&enr, &self.config.netrestrict).and_then(|()| {
                    self.discv5.add_enr(enr.clone()).map_err(|reason| {
                        Discv5Error::BootnodeRejected(NodeId::from(enr.node_id().raw()), reason)
                    })
                });
                let _ = reply.send(result);
            }
            Command::Lookup(target, reply) => {
                // Run it beside the service loop; its results go through `consider` via the
                // Discovered events, and the caller gets the closest nodes.
                let query = self.discv5.find_node(Discv5NodeId::new(&target.0));
                let netrestrict = self.config.netrestrict.clone();
                tokio::spawn(async move {
                    let result = match query.await {
                        Ok(enrs) => Ok(enrs
                            .iter()
                            .filter_map(|enr| Candidate::from_enr(enr, CandidateSource::Discv5).ok())
                            .filter(|c| netrestrict.allows(&c.ip))
                            .collect()),
                        Err(e) => Err(Discv5Error::Query(format!("{e:?}"))),
                    };
                    let _ = reply.send(result);
                });
            }
            Command::AddEnode(enode, reply) => {
                let result =
                    check_enode(&enode, &self.config.netrestrict).and_then(|()| self.open_session(&enode));
                let _ = reply.send(result);
            }
            Command::FindNode(enr, distances, reply) => {
                let query = self.discv5.find_node_designated_peer(enr, distances);
                tokio::spawn(async move {
                    let _ = reply.send(query.await.map_err(|e| Discv5Error::Query(format!("{e:?}"))));
                });
            }
            Command::TableEntries(reply) => {
                let _ = reply.send(self.discv5.table_entries_enr());
            }
            Command::Shutdown(_) => unreachable!("handled by the loop"),
        }
    }

    fn on_event(&mut self, event: discv5::Event) {
        match event {
            discv5::Event::Discovered(enr) => self.consider(&enr),
            discv5::Event::SessionEstablished(enr, addr) => {
                if self.config.netrestrict.allows(&addr.ip()) {
                    self.consider(&enr);
                } else {
                    self.restrict(enr.node_id(), addr.ip());
                }
            }
            discv5::Event::NodeInserted { node_id, .. } => {
                let Some(enr) = self.discv5.find_enr(&node_id) else { return };
                // The table filter is only the netrestrict class; enforce the exact list.
                let ip = enr.ip4().map(IpAddr::V4).or(enr.ip6().map(IpAddr::V6));
                if let Some(ip) = ip.filter(|ip| !self.config.netrestrict.allows(ip)) {
                    self.restrict(node_id, ip);
                    return;
                }
                self.revalidate(enr);
            }
            discv5::Event::UnrecognizedFrame(frame) => {
                bump(&self.counters.unrecognized);
                let forwarded = match &self.unrecognized {
                    // Full means discv4 is behind: drop, as a full socket buffer would,
                    // rather than stall discv5's events behind it.
                    Some(v4) => v4.try_send((frame.src_address, frame.packet)).is_ok(),
                    None => false,
                };
                if !forwarded {
                    bump(&self.counters.unrecognized_dropped);
                    trace!(target: "ethp2p::discv5", from = %frame.src_address, "unrecognized datagram dropped");
                }
            }
            discv5::Event::SocketUpdated(addr) => {
                debug!(target: "ethp2p::discv5", %addr, seq = self.local_enr.seq(), "our address changed");
            }
            // Dropping a TalkRequest answers it with an empty response; we serve no talk
            // protocols.
            _ => {}
        }
    }

    /// Removes a node outside netrestrict from the table and bans its IP, so discv5 drops its
    /// packets. discv5's ban list is process-wide; that is acceptable because a process runs
    /// one node, and tests never hit this (their nodes only know loopback peers).
    fn restrict(&mut self, node_id: Discv5NodeId, ip: IpAddr) {
        bump(&self.counters.restricted);
        self.discv5.remove_node(&node_id);
        self.discv5.ban_ip(ip, None);
        debug!(target: "ethp2p::discv5", %ip, "peer outside netrestrict removed and banned");
    }

    /// Classifies a record, counts it and emits it as a candidate, once per (node, seq).
    fn consider(&mut self, enr: &Enr) {
        let node_id = NodeId::from(enr.node_id().raw());
        if node_id == self.local_id {
            return;
        }
        if self.seen.get(&node_id).is_some_and(|&seq| seq >= enr.seq()) {
            return;
        }
        self.seen.put(node_id, enr.seq());
        bump(&self.counters.discovered);
        let candidate = match Candidate::from_enr(enr, CandidateSource::Discv5) {
            Ok(candidate) => candidate,
            Err(e) => {
                bump(&self.counters.unusable);
                trace!(target: "ethp2p::discv5", %node_id, error = %e, "record cannot be a candidate");
                return;
            }
        };
        if !self.config.netrestrict.allows(&candidate.ip) {
            bump(&self.counters.restricted);
            return;
        }
        match candidate.eth {
            EthEntry::ForkId(fork_id) => {
                bump(&self.counters.with_eth);
                let foreign = match &self.config.fork_filter {
                    Some(filter) => filter.validate(fork_id).is_err(),
                    None => self.local_enr.content().fork_id.is_some_and(|ours| ours.hash != fork_id.hash),
                };
                if foreign {
                    bump(&self.counters.foreign_fork);
                }
            }
            EthEntry::Missing => bump(&self.counters.missing_eth),
            _ => bump(&self.counters.malformed_eth),
        }
        trace!(target: "ethp2p::discv5", %node_id, ip = %candidate.ip, eth = ?candidate.eth, "candidate");
        match self.candidates.try_send(candidate) {
            Ok(()) => bump(&self.counters.emitted),
            Err(_) => bump(&self.counters.dropped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeKey;

    fn enr_at(ip: IpAddr) -> Enr {
        let key = NodeKey::generate();
        let mut b = Enr::builder();
        b.ip(ip).udp4(30303).udp6(30303);
        b.build(&key.to_combined_key()).unwrap()
    }

    #[test]
    fn filter_classes() {
        let lo = table_filter_for(&NetRestrict::loopback());
        assert!(lo(&enr_at([127, 0, 0, 9].into())));
        assert!(!lo(&enr_at([10, 0, 0, 1].into())));
        assert!(!lo(&enr_at([8, 8, 8, 8].into())));
        // A record with no address never passes a restricted class.
        let key = NodeKey::generate();
        let bare = Enr::builder().build(&key.to_combined_key()).unwrap();
        assert!(!lo(&bare));

        let private = table_filter_for(&"10.0.0.0/8,192.168.1.0/24,fd00::/8".parse().unwrap());
        assert!(private(&enr_at([10, 1, 1, 1].into())));
        assert!(private(&enr_at([192, 168, 7, 1].into())), "the class is wider than the list");
        assert!(!private(&enr_at([8, 8, 8, 8].into())));
        assert!(!private(&enr_at("2001:db8::1".parse().unwrap())));

        let public = table_filter_for(&"10.0.0.0/8,1.2.3.0/24".parse().unwrap());
        assert!(public(&enr_at([8, 8, 8, 8].into())));
        let wide = table_filter_for(&"0.0.0.0/0".parse().unwrap());
        assert!(wide(&enr_at([8, 8, 8, 8].into())));
        let none = table_filter_for(&NetRestrict::none());
        assert!(none(&bare));
    }

    #[test]
    fn private_net_bounds() {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        assert!(is_private_net(&net("10.0.0.0/8")));
        assert!(!is_private_net(&net("10.0.0.0/7")));
        assert!(is_private_net(&net("172.16.0.0/12")));
        assert!(!is_private_net(&net("172.16.0.0/11")));
        assert!(is_private_net(&net("192.168.0.0/16")));
        assert!(!is_private_net(&net("192.0.0.0/8")));
        assert!(is_private_net(&net("fc00::/7")));
        assert!(!is_private_net(&net("fc00::/6")));
        assert!(is_loopback_net(&net("127.0.0.0/8")));
        assert!(!is_loopback_net(&net("127.0.0.0/7")));
        assert!(is_loopback_net(&net("::1/128")));
    }

    #[test]
    fn bootstrap_pace_backs_off_while_lookups_learn_nothing() {
        let config = Discv5Config::default();
        let secs = Duration::from_secs;
        let mut pace = LookupPace::default();
        // Learning: the bootstrap pace.
        assert_eq!(pace.after_lookup(true, &config), secs(2));
        // Nothing new: 4, 8, 16 s, then the steady interval, never more.
        let fruitless: Vec<_> = (0..5).map(|_| pace.after_lookup(false, &config)).collect();
        assert_eq!(fruitless, [secs(4), secs(8), secs(16), secs(30), secs(30)]);
        // Something new again: back to the bootstrap pace.
        assert_eq!(pace.after_lookup(true, &config), secs(2));
        // The phase ends after `bootstrap_lookups` lookups whatever they learn.
        for _ in pace.done..config.bootstrap_lookups {
            assert_eq!(pace.after_lookup(true, &config), secs(2));
        }
        assert_eq!(pace.after_lookup(true, &config), config.lookup_interval);

        // No bootstrap phase: the steady interval from the first lookup.
        let none = Discv5Config { bootstrap_lookups: 0, ..Discv5Config::default() };
        assert_eq!(LookupPace::default().after_lookup(true, &none), none.lookup_interval);
        // A bootstrap pace slower than the steady one is kept as configured.
        let slow = Discv5Config { bootstrap_lookup_interval: secs(60), ..Discv5Config::default() };
        assert_eq!(LookupPace::default().after_lookup(false, &slow), secs(60));
    }

    #[test]
    fn config_validation() {
        assert!(matches!(
            Discv5Config::builder().lookup_interval(Duration::ZERO).build(),
            Err(Discv5Error::Config(_))
        ));
        assert!(matches!(Discv5Config::builder().candidate_capacity(0).build(), Err(Discv5Error::Config(_))));
        let outside = enr_at([8, 8, 8, 8].into());
        let err = Discv5Config::builder().netrestrict(NetRestrict::loopback()).bootnode(outside).build();
        assert!(
            matches!(err, Err(Discv5Error::BootnodeRestricted(_, ip)) if ip == IpAddr::from([8, 8, 8, 8]))
        );
        let key = NodeKey::generate();
        let no_ip = Enr::builder().udp4(1).build(&key.to_combined_key()).unwrap();
        assert!(matches!(
            Discv5Config::builder().bootnode(no_ip).build(),
            Err(Discv5Error::BootnodeUnreachable(_))
        ));
        let enode = Enode::new(NodeKey::generate().peer_id(), "10.0.0.1:30303".parse().unwrap());
        assert!(matches!(
            Discv5Config::builder().netrestrict(NetRestrict::loopback()).bootnode_enode(enode).build(),
            Err(Discv5Error::BootnodeRestricted(..))
        ));
        let mut no_udp = Enode::new(NodeKey::generate().peer_id(), SocketAddr::from(([127, 0, 0, 1], 30303)));
        no_udp.udp_port = 0;
        assert!(matches!(
            Discv5Config::builder().bootnode_enode(no_udp).build(),
            Err(Discv5Error::BootnodeUnreachable(_))
        ));
        let defaults = Discv5Config::default();
        assert_eq!(defaults.listen.port(), DEFAULT_PORT);
        assert!(defaults.netrestrict.is_unrestricted());
    }

    #[tokio::test]
    async fn start_reads_back_port_and_shuts_down() {
        let key = NodeKey::generate();
        let local = LocalEnr::builder(&key).build().unwrap();
        let config = Discv5Config::builder()
            .listen("127.0.0.1:0".parse().unwrap())
            .netrestrict(NetRestrict::loopback())
            .build()
            .unwrap();
        let (discv5, mut candidates) = Discv5::start(local.clone(), config).await.unwrap();
        let addr = discv5.local_addr();
        assert_ne!(addr.port(), 0);
        // The bound address went into the record, which is now discv5's record too.
        let record = local.record();
        assert_eq!(
            record.udp4_socket(),
            Some(std::net::SocketAddrV4::new([127, 0, 0, 1].into(), addr.port()))
        );
        let stats = discv5.stats().await.unwrap();
        assert_eq!(stats.table_size, 0);
        // Our record updates are visible to discv5 (it serves this record to peers).
        local.set_fork_id(Some(crate::ForkId { hash: [1, 2, 3, 4].into(), next: 0 })).unwrap();
        discv5.shutdown().await;
        assert!(candidates.recv().await.is_none(), "stream ends after shutdown");
        assert!(matches!(discv5.stats().await, Err(Discv5Error::Stopped)));
        discv5.shutdown().await; // harmless twice
                                 // The port is free again.
        std::net::UdpSocket::bind(addr).unwrap();
    }
}
