//! The discv4 task and its handle.
//!
//! [`Discv4Service`] is one tokio task that owns the [`Discv4Core`] and reads the UDP
//! socket; nothing else touches either. [`Discv4`] is the cheap `Clone` handle: each method
//! sends a command over a bounded channel and awaits a oneshot reply. Candidates leave
//! through a bounded [`CandidateStream`]; when its reader lags, new candidates are dropped
//! (and counted) rather than queued without bound.
//!
//! The task reads its datagrams from one of two places (`Source`): the socket itself when
//! discv4 runs alone, or, when the port is shared with discv5, a bounded channel fed by the
//! discv5 service with the datagrams discv5 could not decode (see `discovery::shared`). In
//! both cases the datagrams go on to the core.
//!
//! Dual stack, the task has two sockets, one per IP family (`Sockets`), and reads both when
//! it reads at all. The core is family-blind: it answers whatever address a packet came from,
//! and each datagram is sent on the socket of its destination's family, so a PING that came
//! in over IPv6 is answered over IPv6.
//!
//! With `Discv4Config::crypto_workers` above 0, the task does only the cheap part of each
//! datagram (size, ingest budgets, the core's `precheck`) and hands the rest to worker
//! threads (`workers`): they check the hash, recover the sender and pass the packet back
//! for the core; and they sign the core's replies and send everything the core sends. With
//! 0, the task recovers, signs and sends itself.

use std::{
    collections::HashMap,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use tokio::{
    net::UdpSocket,
    sync::{mpsc, oneshot},
};

use super::{
    core::Discv4Core,
    event::{CoreEvent, Discv4Stats, RequestId},
    proto::{NodeRecord, MAX_PACKET_SIZE},
    workers::{CryptoPool, PoolCounts, Verified, VERIFIED_CHANNEL_CAPACITY},
    Discv4Config, Discv4Error,
};
use crate::{
    discovery::{
        budget::{IngressBudget, IngressLimits, Shed},
        contact::{Contact, ContactProtocol, ContactSink, Contacts},
        socket::Sockets,
        Candidate,
    },
    record::{Enode, Enr, LocalEnr, PeerId},
};

const TARGET: &str = "ethp2p::discv4";

/// Commands queued from handles to the task. Small: each handle call waits for its reply.
const COMMAND_CHANNEL_CAPACITY: usize = 64;

/// Datagrams read per wake-up before the task looks at commands and timers again: enough
/// to amortise the wake-up under load, few enough to keep commands responsive.
const RECV_BATCH: usize = 64;

/// A datagram and its source: what discv5 hands to discv4 on a shared port.
pub(crate) type Datagram = (SocketAddr, Vec<u8>);

/// Where the task reads its datagrams.
#[derive(Debug)]
enum Source {
    /// The socket itself: discv4 runs alone on it.
    Socket,
    /// A channel from discv5, which reads the shared socket; `None` once discv5 has stopped.
    Shared(Option<mpsc::Receiver<Datagram>>),
}

/// The stream of nodes that proved their endpoint to us (and, when they speak EIP-868,
/// sent their record). Ends when the service stops.
#[derive(Debug)]
pub struct CandidateStream {
    rx: mpsc::Receiver<Candidate>,
}

impl CandidateStream {
    /// The next candidate, or `None` once the service has stopped.
    pub async fn recv(&mut self) -> Option<Candidate> {
        self.rx.recv().await
    }
}

impl futures::Stream for CandidateStream {
    type Item = Candidate;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Candidate>> {
        self.rx.poll_recv(cx)
    }
}

#[derive(Debug)]
enum Command {
    Lookup(PeerId, oneshot::Sender<Vec<NodeRecord>>),
    FindNode(Enode, PeerId, oneshot::Sender<Vec<NodeRecord>>),
    Ping(Enode, oneshot::Sender<Result<Option<u64>, ()>>),
    RequestEnr(Enode, oneshot::Sender<Option<Enr>>),
    AddNode(Enode),
    Table(oneshot::Sender<Vec<NodeRecord>>),
    Stats(oneshot::Sender<Discv4Stats>),
    Contacts(oneshot::Sender<Contacts>),
    Shutdown(oneshot::Sender<()>),
}

/// Handle to a running discv4 service. Cheap to clone; every clone talks to the same task.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use ethp2p::{discovery::v4::{Discv4, Discv4Config}, record::LocalEnr, NodeKey};
/// let key = NodeKey::generate();
/// let local = LocalEnr::builder(&key).udp_socket("127.0.0.1:30303".parse()?).build()?;
/// let config = Discv4Config::builder().listen_addr("127.0.0.1:30303".parse()?).build()?;
/// let (discv4, mut candidates) = Discv4::spawn(config, local).await?;
/// while let Some(candidate) = candidates.recv().await {
///     println!("{:?} {:?}", candidate.enode(), candidate.fork_id());
/// }
/// discv4.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Discv4 {
    tx: mpsc::Sender<Command>,
    local_addr: SocketAddr,
    local: LocalEnr,
}

impl Discv4 {
    /// Binds `config.listen_addr`, starts the service task and bootstraps from
    /// `config.bootnodes`. Must be called inside a tokio runtime.
    pub async fn spawn(
        config: Discv4Config,
        local: LocalEnr,
    ) -> Result<(Self, CandidateStream), Discv4Error> {
        config.check()?;
        let addr = config.listen_addr;
        let socket =
            crate::discovery::socket::bind_udp(addr, Some(crate::discovery::socket::DEFAULT_SOCKET_BUFFER))
                .map_err(|source| Discv4Error::Io { addr, source })?;
        Self::spawn_on_socket(Arc::new(socket), config, local)
    }

    /// Starts the service on an already bound socket, which it reads and sends on.
    /// `config.listen_addr` is ignored in favour of the socket's address.
    pub fn spawn_on_socket(
        socket: Arc<UdpSocket>,
        config: Discv4Config,
        local: LocalEnr,
    ) -> Result<(Self, CandidateStream), Discv4Error> {
        Self::start(Sockets::one(socket), config, local, Source::Socket, IngressLimits::unlimited())
    }

    /// Starts the service reading its socket(s) itself, with the port's ingest budgets.
    pub(crate) fn spawn_budgeted(
        socket: Sockets,
        config: Discv4Config,
        local: LocalEnr,
        limits: IngressLimits,
    ) -> Result<(Self, CandidateStream), Discv4Error> {
        Self::start(socket, config, local, Source::Socket, limits)
    }

    /// Starts the service on socket(s) that discv5 reads: the service sends on `socket` and
    /// handles the datagrams that arrive on `inbound` (the ones discv5 could not decode).
    pub(crate) fn spawn_shared(
        socket: Sockets,
        config: Discv4Config,
        local: LocalEnr,
        inbound: mpsc::Receiver<Datagram>,
        limits: IngressLimits,
    ) -> Result<(Self, CandidateStream), Discv4Error> {
        Self::start(socket, config, local, Source::Shared(Some(inbound)), limits)
    }

    fn start(
        sockets: Sockets,
        mut config: Discv4Config,
        local: LocalEnr,
        inbound: Source,
        limits: IngressLimits,
    ) -> Result<(Self, CandidateStream), Discv4Error> {
        config.check()?;
        let local_addr = sockets
            .primary()
            .local_addr()
            .map_err(|source| Discv4Error::Io { addr: config.listen_addr, source })?;
        config.listen_addr = local_addr;
        let (tx, rx) = mpsc::channel(COMMAND_CHANNEL_CAPACITY);
        let (candidates_tx, candidates_rx) = mpsc::channel(config.candidate_channel_capacity);
        let (crypto, verified) = match std::num::NonZeroUsize::new(config.crypto_workers) {
            Some(n) => {
                let (tx, rx) = mpsc::channel(VERIFIED_CHANNEL_CAPACITY);
                let pool = CryptoPool::spawn(n, sockets.clone(), *local.key().secret(), tx)
                    .map_err(|source| Discv4Error::Io { addr: local_addr, source })?;
                (Some(pool), Some(rx))
            }
            None => (None, None),
        };
        let unix_now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let mut core = Discv4Core::new(config, local.clone(), Instant::now(), unix_now, rand::random());
        core.bootstrap(Instant::now());
        let service = Discv4Service {
            core,
            sockets,
            inbound,
            commands: rx,
            candidates: candidates_tx,
            lookups: HashMap::new(),
            pings: HashMap::new(),
            enrs: HashMap::new(),
            next_request: 0,
            dropped_candidates: 0,
            budget: IngressBudget::new(limits, Instant::now()),
            ingress: IngressCounts::default(),
            contacts: ContactSink::default(),
            crypto,
            verified,
        };
        tokio::spawn(service.run());
        Ok((Self { tx, local_addr, local }, CandidateStream { rx: candidates_rx }))
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Our `enode://` URL at the bound address (the TCP port is the UDP port unless the
    /// record says otherwise).
    pub fn local_enode(&self) -> Enode {
        let tcp = self.local.content().tcp4.unwrap_or(self.local_addr.port());
        Enode {
            peer_id: self.local.key().peer_id(),
            ip: self.local_addr.ip(),
            tcp_port: tcp,
            udp_port: self.local_addr.port(),
        }
    }

    /// The local record this service advertises.
    pub fn local_enr(&self) -> Enr {
        self.local.record()
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Discv4Error> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| Discv4Error::ServiceStopped)?;
        rx.await.map_err(|_| Discv4Error::ServiceStopped)
    }

    /// Runs an iterative lookup for `target` and returns the closest nodes that answered.
    pub async fn lookup(&self, target: PeerId) -> Result<Vec<NodeRecord>, Discv4Error> {
        self.call(|tx| Command::Lookup(target, tx)).await
    }

    /// Sends one FINDNODE for `target` to `enode` (bonding first if needed) and returns its
    /// NEIGHBOURS: the entries of its table closest to `target`, empty if it did not answer
    /// in time. No further hops: this is how a crawler reads a node's table, one round trip
    /// per target, where a [`lookup`](Self::lookup) would walk the network.
    pub async fn find_node(&self, enode: Enode, target: PeerId) -> Result<Vec<NodeRecord>, Discv4Error> {
        self.call(|tx| Command::FindNode(enode, target, tx)).await
    }

    /// Pings a node; returns the ENR sequence number from its PONG.
    pub async fn ping(&self, enode: Enode) -> Result<Option<u64>, Discv4Error> {
        self.call(|tx| Command::Ping(enode, tx)).await?.map_err(|()| Discv4Error::Timeout(enode.udp_addr()))
    }

    /// Fetches a node's record with an ENRRequest (bonding first if needed).
    pub async fn request_enr(&self, enode: Enode) -> Result<Enr, Discv4Error> {
        self.call(|tx| Command::RequestEnr(enode, tx)).await?.ok_or(Discv4Error::Timeout(enode.udp_addr()))
    }

    /// Pings a node so it enters the table once it answers (as a bootnode does).
    pub async fn add_node(&self, enode: Enode) -> Result<(), Discv4Error> {
        self.tx.send(Command::AddNode(enode)).await.map_err(|_| Discv4Error::ServiceStopped)
    }

    /// The live entries of the routing table.
    pub async fn table(&self) -> Result<Vec<NodeRecord>, Discv4Error> {
        self.call(Command::Table).await
    }

    /// Packet counters and the table size.
    pub async fn stats(&self) -> Result<Discv4Stats, Discv4Error> {
        self.call(Command::Stats).await
    }

    /// A stream of the nodes that send us verified requests (see [`Contact`]). Reporting
    /// starts now and stops when the stream is dropped; a second call replaces the first
    /// stream, which then ends.
    pub async fn contacts(&self) -> Result<Contacts, Discv4Error> {
        self.call(Command::Contacts).await
    }

    /// Stops the service and waits until its task has ended. Idempotent.
    pub async fn shutdown(&self) {
        let _ = self.call(Command::Shutdown).await;
    }
}

/// The task that owns the socket and the core. Created by [`Discv4::spawn`].
#[derive(Debug)]
pub struct Discv4Service {
    core: Discv4Core,
    /// One socket, or one per family (dual stack); each datagram leaves on its family's.
    sockets: Sockets,
    inbound: Source,
    commands: mpsc::Receiver<Command>,
    candidates: mpsc::Sender<Candidate>,
    lookups: HashMap<u64, oneshot::Sender<Vec<NodeRecord>>>,
    pings: HashMap<u64, oneshot::Sender<Result<Option<u64>, ()>>>,
    enrs: HashMap<u64, oneshot::Sender<Option<Enr>>>,
    next_request: u64,
    dropped_candidates: u64,
    /// The port's ingest budgets, asked about each datagram before the core sees it.
    budget: IngressBudget,
    ingress: IngressCounts,
    /// Who listens for [`Contact`]s, if anyone.
    contacts: ContactSink,
    /// The signature workers, when `crypto_workers` > 0.
    crypto: Option<CryptoPool>,
    /// What the workers decoded, for the core.
    verified: Option<mpsc::Receiver<Verified>>,
}

/// Datagrams the service dropped before the core saw them.
#[derive(Debug, Default, Clone, Copy)]
struct IngressCounts {
    oversize: u64,
    shed_ip: u64,
    shed_subnet: u64,
    shed_global: u64,
}

impl Discv4Service {
    fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    async fn run(mut self) {
        // One byte over the limit: a datagram that fills it is too long (whatever its real
        // length; the kernel filter of `discovery::socket` drops these before us on Linux).
        let mut buf = vec![0u8; MAX_PACKET_SIZE + 1];
        // The second family's socket, dual stack (each `select!` branch owns its buffer).
        let mut buf2 = vec![0u8; MAX_PACKET_SIZE + 1];
        let mut shutdown_reply = None;
        loop {
            let deadline = self.core.next_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown(reply)) => {
                        shutdown_reply = Some(reply);
                        break;
                    }
                    Some(command) => self.handle_command(command),
                    // Every handle is gone.
                    None => break,
                },
                Some(verified) = recv_verified(&mut self.verified) => {
                    self.handle_verified(verified);
                    for _ in 1..RECV_BATCH {
                        match self.verified.as_mut().and_then(|rx| rx.try_recv().ok()) {
                            Some(verified) => self.handle_verified(verified),
                            None => break,
                        }
                    }
                }
                received = self.sockets.primary().recv_from(&mut buf), if matches!(self.inbound, Source::Socket) => {
                    let socket = self.sockets.primary().clone();
                    self.handle_received(&socket, received, &mut buf);
                    // `biased`: a primary socket that is always ready would starve the
                    // second one; it gets a batch of its own after each of the primary's.
                    if let Some(second) = self.sockets.second().cloned() {
                        self.drain(&second, &mut buf2, RECV_BATCH);
                    }
                }
                received = recv_on(self.sockets.second(), &mut buf2), if matches!(self.inbound, Source::Socket) => {
                    if let Some(socket) = self.sockets.second().cloned() {
                        self.handle_received(&socket, received, &mut buf2);
                    }
                }
                received = recv_shared(&mut self.inbound) => match received {
                    Some((from, bytes)) => {
                        self.handle_datagram(from, &bytes);
                        for _ in 1..RECV_BATCH {
                            match try_recv_shared(&mut self.inbound) {
                                Some((from, bytes)) => self.handle_datagram(from, &bytes),
                                None => break,
                            }
                        }
                    }
                    None => {
                        // discv5 stopped: nothing more will arrive; keep serving commands
                        // and timers until our own shutdown.
                        tracing::debug!(target: TARGET, "shared socket reader stopped");
                        self.inbound = Source::Shared(None);
                    }
                },
                _ = sleep_until(deadline) => self.core.handle_timeouts(Instant::now()),
            }
            self.flush().await;
        }
        tracing::debug!(target: TARGET, "discv4 service stopped");
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    /// A datagram received on `socket`, then what else it has queued, up to a batch.
    fn handle_received(
        &mut self,
        socket: &UdpSocket,
        received: std::io::Result<(usize, SocketAddr)>,
        buf: &mut [u8],
    ) {
        match received {
            Ok((len, from)) => {
                self.handle_datagram(from, &buf[..len]);
                // Drain what else is queued without going back through select!.
                self.drain(socket, buf, RECV_BATCH - 1);
            }
            Err(e) => {
                // ICMP port-unreachable surfaces here on some platforms; not fatal.
                tracing::trace!(target: TARGET, error = %e, "recv error");
            }
        }
    }

    /// Up to `max` datagrams already queued on `socket`, without waiting.
    fn drain(&mut self, socket: &UdpSocket, buf: &mut [u8], max: usize) {
        for _ in 0..max {
            match socket.try_recv_from(buf) {
                Ok((len, from)) => self.handle_datagram(from, &buf[..len]),
                Err(_) => break,
            }
        }
    }

    fn handle_datagram(&mut self, from: SocketAddr, bytes: &[u8]) {
        if bytes.len() > MAX_PACKET_SIZE {
            // Dropped, not truncated and parsed as if whole.
            self.ingress.oversize += 1;
            return;
        }
        let now = Instant::now();
        if let Err(shed) = self.budget.admit(now, from.ip()) {
            match shed {
                Shed::Ip => self.ingress.shed_ip += 1,
                Shed::Subnet => self.ingress.shed_subnet += 1,
                Shed::Global => self.ingress.shed_global += 1,
            }
            tracing::trace!(target: TARGET, %from, ?shed, "shed");
            return;
        }
        match &mut self.crypto {
            Some(pool) => {
                if self.core.precheck(now, from, bytes).is_none() {
                    pool.verify(now, from, bytes);
                }
            }
            // What the core cannot parse (too short, too large, wrong hash) it counts as
            // `foreign` and drops: with a shared port discv5 has already tried it.
            None => {
                let _ = self.core.handle_datagram(now, from, bytes);
            }
        }
    }

    fn handle_verified(&mut self, Verified { from, len, decoded }: Verified) {
        let _ = self.core.handle_decoded(Instant::now(), from, len, decoded);
    }

    fn handle_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Lookup(target, reply) => {
                let id = self.request_id();
                self.lookups.insert(id.0, reply);
                self.core.lookup(now, target, Some(id));
            }
            Command::FindNode(enode, target, reply) => {
                let id = self.request_id();
                self.lookups.insert(id.0, reply);
                self.core.find_node(now, &enode, target, id);
            }
            Command::Ping(enode, reply) => {
                let id = self.request_id();
                self.pings.insert(id.0, reply);
                self.core.ping(now, &enode, id);
            }
            Command::RequestEnr(enode, reply) => {
                let id = self.request_id();
                self.enrs.insert(id.0, reply);
                self.core.request_enr(now, &enode, id);
            }
            Command::AddNode(enode) => self.core.add_node(now, &enode),
            Command::Table(reply) => {
                let _ = reply.send(self.core.table().iter().map(|e| e.record()).collect());
            }
            Command::Stats(reply) => {
                let i = self.ingress;
                let pool = self.crypto.as_ref().map(CryptoPool::counts).unwrap_or_default();
                let PoolCounts { busy, quiet_lane, verified_dropped } = pool;
                let stats = Discv4Stats {
                    crypto_busy: busy,
                    quiet_lane,
                    verified_dropped,
                    candidates_dropped: self.dropped_candidates,
                    oversize: i.oversize,
                    shed_ip: i.shed_ip,
                    shed_subnet: i.shed_subnet,
                    shed_global: i.shed_global,
                    contacts_dropped: self.contacts.dropped,
                    ..self.core.stats()
                };
                let _ = reply.send(stats);
            }
            Command::Contacts(reply) => {
                let _ = reply.send(self.contacts.subscribe());
                self.core.report_contacts(true);
            }
            Command::Shutdown(_) => unreachable!("handled by the loop"),
        }
    }

    async fn flush(&mut self) {
        if let Some(pool) = &self.crypto {
            while let Some(outgoing) = self.core.poll_outgoing() {
                pool.send(outgoing).await;
            }
        }
        while let Some((addr, bytes)) = self.core.poll_transmit() {
            // The socket of the destination's family: an answer leaves on the family it was
            // asked on.
            let socket = self.sockets.for_dest(&addr);
            let sent = match socket.try_send_to(&bytes, addr) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => socket.send_to(&bytes, addr).await,
                other => other,
            };
            if let Err(e) = sent {
                tracing::trace!(target: TARGET, %addr, error = %e, "send failed");
            }
        }
        while let Some(event) = self.core.poll_event() {
            match event {
                CoreEvent::Discovered(candidate) => {
                    // A lagging reader loses candidates; the count says how many.
                    self.dropped_candidates += u64::from(self.candidates.try_send(candidate).is_err());
                }
                CoreEvent::LookupFinished { request: Some(id), closest, .. } => {
                    if let Some(reply) = self.lookups.remove(&id.0) {
                        let _ = reply.send(closest);
                    }
                }
                CoreEvent::PingResult { request, result } => {
                    if let Some(reply) = self.pings.remove(&request.0) {
                        let _ = reply.send(result);
                    }
                }
                CoreEvent::EnrResult { request, enr } => {
                    if let Some(reply) = self.enrs.remove(&request.0) {
                        let _ = reply.send(enr);
                    }
                }
                CoreEvent::ExternalIp(ip) => tracing::debug!(target: TARGET, %ip, "external IP"),
                CoreEvent::Contacted { peer, from, tcp_port } => {
                    let protocol = ContactProtocol::Discv4;
                    self.contacts.report(Contact {
                        peer_id: peer,
                        addr: from,
                        tcp_port,
                        enr: None,
                        protocol,
                    });
                    if !self.contacts.wanted() {
                        self.core.report_contacts(false);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The next datagram on `socket`; pending forever without one.
async fn recv_on(socket: Option<&Arc<UdpSocket>>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(socket) => socket.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// The next datagram from discv5; pending forever when discv4 reads the socket itself or
/// discv5 has stopped, so the `select!` branch never fires then.
async fn recv_shared(inbound: &mut Source) -> Option<Datagram> {
    match inbound {
        Source::Shared(Some(rx)) => rx.recv().await,
        _ => std::future::pending().await,
    }
}

/// The next packet the workers decoded; pending forever without workers.
async fn recv_verified(verified: &mut Option<mpsc::Receiver<Verified>>) -> Option<Verified> {
    match verified {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn try_recv_shared(inbound: &mut Source) -> Option<Datagram> {
    match inbound {
        Source::Shared(Some(rx)) => rx.try_recv().ok(),
        _ => None,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
