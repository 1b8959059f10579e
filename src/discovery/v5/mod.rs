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
//! `eth` entry is still emitted (with its [`EthEntry`](crate::discovery::EthEntry)) and counted in [`Discv5Stats`].

mod config;
mod filter;
mod service;

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    task::{Context, Poll},
};

use tokio::sync::{mpsc, oneshot};

pub use config::{
    Discv5Config, Discv5ConfigBuilder, DEFAULT_BOOTSTRAP_LOOKUPS, DEFAULT_BOOTSTRAP_LOOKUP_INTERVAL,
    DEFAULT_CANDIDATE_CAPACITY, DEFAULT_LOOKUP_INTERVAL, DEFAULT_PING_INTERVAL, DEFAULT_PORT,
    DEFAULT_SEEN_CAPACITY,
};
use service::{bind, protocol_config, record_listen_addr, start_protocol};

use super::{
    budget::{IngressLimits, SessionCap},
    contact::Contacts,
    socket::Sockets,
    v4::Datagram,
    Candidate, Discv5Error,
};
use crate::record::{Enode, Enr, LocalEnr, NodeId};

/// Commands queued to the service before senders wait.
const COMMAND_CAPACITY: usize = 64;

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
    /// IPs banned from the port for completing more than
    /// [`IngressLimits::v5_sessions_per_ip`](crate::discovery::IngressLimits::v5_sessions_per_ip)
    /// handshakes in a minute.
    pub banned_ips: u64,
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
    banned_ips: AtomicU64,
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
            banned_ips: get(&self.banned_ips),
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
    Contacts(oneshot::Sender<Contacts>),
    Shutdown(oneshot::Sender<()>),
}

/// Handle to a running discv5 service. Cheap to clone.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use ethp2p::{discovery::{Discv5, Discv5Config}, LocalEnr, NodeKey};
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
        Self::start_on_socket(local_enr, config, Sockets::one(socket), None, &IngressLimits::default()).await
    }

    /// Starts discv5 on bound socket(s), one per IP family, which discv5 reads and sends on. Datagrams it cannot
    /// decode go to `unrecognized` when given (a full channel drops them, counted in
    /// [`Discv5Stats::unrecognized_dropped`]): this is how discv4 shares the port
    /// ([`crate::discovery::Discovery`]). `config.listen` is ignored. `limits` gives the
    /// cap on new sessions per IP.
    pub(crate) async fn start_on_socket(
        local_enr: LocalEnr,
        config: Discv5Config,
        sockets: Sockets,
        unrecognized: Option<mpsc::Sender<Datagram>>,
        limits: &IngressLimits,
    ) -> Result<(Self, Candidates), Discv5Error> {
        let config = Discv5ConfigBuilder { config }.build()?;
        let mut addr = None;
        for socket in sockets.iter() {
            let bound = socket.local_addr().map_err(|e| Discv5Error::Bind(config.listen, e.to_string()))?;
            // Each family's address and port goes into the record (`ip`/`udp`, `ip6`/`udp6`).
            record_listen_addr(&local_enr, bound)?;
            addr.get_or_insert(bound);
        }
        let addr = addr.expect("Sockets holds a primary socket");
        let discv5 =
            start_protocol(&local_enr, protocol_config(&config, &sockets)).await.map_err(|e| match e {
                discv5::Error::Io(e) => Discv5Error::Bind(addr, e.to_string()),
                e => Discv5Error::Start(format!("{e:?}")),
            })?;
        Self::spawn(discv5, addr, local_enr, config, unrecognized, SessionCap::new(limits)).await
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

    /// A stream of the nodes that open a discv5 session with us on their own initiative
    /// (see [`Contact`](crate::discovery::Contact)). Reporting starts now and stops when the
    /// stream is dropped; a second call replaces the first stream, which then ends.
    ///
    /// Who started a session is read from discv5's routing table, which keeps the direction
    /// of a node's first session: a node that contacted us after we had contacted it is not
    /// reported, nor one that contacted us while its bucket was full, unless its record has
    /// no address we could have dialled (a node behind NAT, the case that matters).
    pub async fn contacts(&self) -> Result<Contacts, Discv5Error> {
        self.request(Command::Contacts).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NetRestrict, NodeKey};

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
