//! The node: one handle that starts the listener, the dialer and the pool, and routes
//! requests to the best peer.
//!
//! ```text
//!  Node (Clone handle) ── Command ──▶ NodeService (one task: owns PoolState)
//!                                       │ PoolAction::Dial ──▶ dial task (rlpx::dial + eth Status)
//!   candidate sources ─ Candidate ─────▶│ accept task ─ TCP ─▶ pool admission ─▶ handshake task
//!                                       │ per-peer EthPeerService tasks (JoinSet)
//!                                       └─ events ─▶ broadcast::Sender<PoolEvent>
//! ```
//!
//! The service is the only owner of the pool state; every socket lives in a task it
//! spawned into its `JoinSet`, so dropping or shutting down the service stops them all.
//! Requests do not run in the service: it picks a peer (the best idle one for that
//! request type) and hands the caller the peer's handle and timeout, so a slow peer never
//! blocks the service. The peer's session task judges the answer and its outcome reaches
//! the pool as a session event: requests are scored where answers arrive, once.

mod announce;
mod error;
mod fanout;
mod head;
mod service;
mod sessions;
mod stats;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use alloy_consensus::{transaction::PooledTransaction, Header, Sealed};
use alloy_primitives::B256;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

pub use announce::{Announcement, Announcements};
pub use error::NodeError;
pub use fanout::{BroadcastSummary, MAX_BROADCAST_TX_SIZE};
pub use head::BLOCK_RANGE_UPDATE_INTERVAL;
pub use stats::{DialFailure, NodeStats};

use self::service::{Broadcast, Command, NodeService};
use crate::{
    discovery::{
        dns::{DnsConfig, DnsDiscovery, DnsError, HickoryResolver, LinkEntry},
        Candidate, Discovery, DiscoveryConfig,
    },
    eth::{BlockHashNumber, NewBlock, RequestKind, TxPool},
    eth::{ChainReader, EthConfig, EthError, EthPeer, GetBlockHeaders},
    metrics::{self, MetricsServer, Recorder},
    nat::{ExternalAddr, NatConfig, PortMapper, PortMapping},
    pool::{PeerSnapshot, PoolConfig, PoolEvent, ReputationChange},
    record::{Enode, NodeKey, PeerId},
    rlpx::{DisconnectReason, RlpxConfig},
};

/// Commands queued from handles to the service.
const COMMAND_CAPACITY: usize = 256;
/// Pool events buffered for slow subscribers (older ones are dropped for them, never for
/// the node).
const EVENT_CAPACITY: usize = 1024;
/// A request is tried on at most this many peers.
pub const MAX_REQUEST_ATTEMPTS: usize = 3;

/// Builds and starts a [`Node`].
///
/// ```no_run
/// # async fn run(eth: ethp2p::eth::EthConfig, chain: std::sync::Arc<ethp2p::eth::MemoryChain>) -> Result<(), ethp2p::node::NodeError> {
/// use ethp2p::node::NodeBuilder;
/// let node = NodeBuilder::new(eth, chain).listen("127.0.0.1:0".parse().unwrap()).data_dir("/tmp/node").start().await?;
/// node.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct NodeBuilder {
    key: Option<NodeKey>,
    listen: SocketAddr,
    listen_dual_stack: Option<SocketAddr>,
    eth: EthConfig,
    chain: Arc<dyn ChainReader>,
    tx_pool: Arc<dyn TxPool>,
    pool: PoolConfig,
    rlpx: RlpxConfig,
    data_dir: Option<PathBuf>,
    bootnodes: Vec<Enode>,
    sources: Vec<mpsc::Receiver<Candidate>>,
    discovery: Option<DiscoveryConfig>,
    tick: Duration,
    seed: Option<u64>,
    metrics: Option<SocketAddr>,
    nat: NatConfig,
    port_mapper: Option<service::MapperFactory>,
    dns: Option<(DnsConfig, Vec<String>)>,
    dns_resolver: Option<HickoryResolver>,
    #[cfg(feature = "lan")]
    lan: Option<crate::discovery::lan::LanConfig>,
}

impl NodeBuilder {
    /// A node on the chain described by `eth` (our Status and fork filter), serving from
    /// `chain`.
    pub fn new(eth: EthConfig, chain: Arc<dyn ChainReader>) -> Self {
        Self {
            key: None,
            listen: SocketAddr::from(([0, 0, 0, 0], 30303)),
            listen_dual_stack: None,
            eth,
            chain,
            tx_pool: Arc::new(crate::eth::NoTxPool),
            pool: PoolConfig::default(),
            rlpx: RlpxConfig::default(),
            data_dir: None,
            bootnodes: Vec::new(),
            sources: Vec::new(),
            discovery: None,
            tick: Duration::from_secs(1),
            seed: None,
            metrics: None,
            nat: NatConfig::None,
            port_mapper: None,
            dns: None,
            dns_resolver: None,
            #[cfg(feature = "lan")]
            lan: None,
        }
    }

    /// The transaction pool peers' `GetPooledTransactions` are served from, and that hears
    /// the transactions they broadcast and announce. Default: none (nothing is served,
    /// broadcasts still reach [`Node::announcements`]).
    pub fn tx_pool(mut self, pool: Arc<dyn TxPool>) -> Self {
        self.tx_pool = pool;
        self
    }

    /// The node key. Default: a fresh random key.
    pub fn key(mut self, key: NodeKey) -> Self {
        self.key = Some(key);
        self
    }

    /// The RLPx TCP listen address. Default: `0.0.0.0:30303`; port 0 picks a free one.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// A second RLPx TCP listen address, of the other IP family than [`Self::listen`], to
    /// accept peers over IPv4 and IPv6 at once: the record gets both `tcp` and `tcp6`. Port
    /// 0 takes the first listener's port when it is free in this family too. For discovery
    /// on both families, set [`DiscoveryConfig::dual_stack`] as well. Default: none.
    pub fn listen_dual_stack(mut self, addr: SocketAddr) -> Self {
        self.listen_dual_stack = Some(addr);
        self
    }

    /// Pool limits and policies. Default: [`PoolConfig::default`].
    pub fn pool(mut self, config: PoolConfig) -> Self {
        self.pool = config;
        self
    }

    /// RLPx timeouts and client id. Default: [`RlpxConfig::default`]; the versions of the
    /// [`EthConfig`] ([`EthConfig::protocols`]: every one we speak unless configured) are
    /// added when no protocol is configured. Inbound handshakes are capped by the
    /// pool's `max_pending_inbound` (checked with the per-IP throttle before the
    /// handshake), not by `max_pending_handshakes`, which only [`crate::rlpx::RlpxListener`]
    /// uses.
    pub fn rlpx(mut self, config: RlpxConfig) -> Self {
        self.rlpx = config;
        self
    }

    /// Where the address book lives (`<dir>/peers.json`). Default: none (nothing persisted).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Nodes to dial at start (their fork id is checked in the Status handshake).
    pub fn bootnodes(mut self, nodes: impl IntoIterator<Item = Enode>) -> Self {
        self.bootnodes.extend(nodes);
        self
    }

    /// A discovery source (discv4, discv5, DNS): every candidate it sends is fork-id
    /// filtered and queued for dialing.
    pub fn candidates(mut self, source: mpsc::Receiver<Candidate>) -> Self {
        self.sources.push(source);
        self
    }

    /// Runs discovery (discv4, discv5 or both on one UDP port, see [`Discovery`]) as part of
    /// the node: [`Self::start`] builds our record from the node key, the bound RLPx port
    /// and the fork id of our `Status`, starts it, and feeds its candidates to the pool;
    /// [`Node::shutdown`] stops it. When discv4 runs and its `tcp_port` is unset, it is set
    /// to the RLPx port; when discv5 runs without a fork filter, it gets ours. Other
    /// sources given with [`Self::candidates`] keep working alongside. Default: none.
    pub fn discovery(mut self, config: DiscoveryConfig) -> Self {
        self.discovery = Some(config);
        self
    }

    /// Fills the pool from EIP-1459 DNS trees (`enrtree://KEY@domain` URLs, such as the
    /// network's list in go-ethereum's `params/bootnodes.go`): every node record the walk
    /// finds becomes a candidate, fork-id filtered like any other. Trees are rechecked per
    /// `config`. Names are resolved with the system's configuration unless
    /// [`Self::dns_resolver`] says otherwise. Default: none.
    pub fn dns(mut self, trees: impl IntoIterator<Item = impl Into<String>>, config: DnsConfig) -> Self {
        self.dns = Some((config, trees.into_iter().map(Into::into).collect()));
        self
    }

    /// The resolver for [`Self::dns`], e.g. [`HickoryResolver::with_name_servers`].
    /// Default: the system's (`/etc/resolv.conf` on Unix).
    pub fn dns_resolver(mut self, resolver: HickoryResolver) -> Self {
        self.dns_resolver = Some(resolver);
        self
    }

    /// Announces the node on the local network over mDNS and dials the nodes announced
    /// there (feature `lan`; see [`crate::discovery::lan`]). The announced record carries
    /// the listen address (not the NAT's external one: LAN peers dial us directly), so
    /// listen on the LAN address rather than `0.0.0.0`; its UDP port is the discovery
    /// port, or the RLPx port without discovery. Default: none.
    #[cfg(feature = "lan")]
    pub fn lan(mut self, config: crate::discovery::lan::LanConfig) -> Self {
        self.lan = Some(config);
        self
    }

    /// How the node learns and advertises its public address, as geth's `--nat`:
    /// `extip:IP` puts that IP in our record (and [`Node::enode`]); `upnp`, `pmp` and `any`
    /// map the RLPx port (and the discovery port) on the gateway, keep the mappings
    /// renewed, put the external address in our record as the gateway grants it, and
    /// remove the mappings at shutdown. [`Self::start`] fails if no gateway answers.
    /// Default: [`NatConfig::None`] (advertise the listen address; discovery may still
    /// learn the public IP from its peers).
    pub fn nat(mut self, config: NatConfig) -> Self {
        self.nat = config;
        self
    }

    /// Maps the ports on this gateway instead of the one [`Self::nat`] would find (a
    /// gateway at a known address: `PmpGateway::new(addr)`; or a fake one in tests).
    /// Default: none.
    pub fn port_mapper<M: PortMapper>(mut self, mapper: M) -> Self {
        self.port_mapper =
            Some(service::MapperFactory(Box::new(move |config| PortMapping::spawn(mapper, config))));
        self
    }

    /// Serves the node's Prometheus metrics (names in [`crate::metrics`]) at
    /// `http://<addr>/metrics`; port 0 picks a free one, see [`Node::metrics_addr`]. The
    /// node then records into a registry of its own, so several nodes in one process keep
    /// separate endpoints. No global recorder is installed: without this call the node's
    /// metrics go to the application's global `metrics` recorder, if it installed one.
    /// Default: none.
    pub fn metrics(mut self, addr: SocketAddr) -> Self {
        self.metrics = Some(addr);
        self
    }

    /// How often the pool's timers run. Default: 1 s.
    pub fn tick_interval(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// Seed for the pool's rotation jitter. Default: random.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Binds the listener, loads the address book and starts the service.
    pub async fn start(mut self) -> Result<Node, NodeError> {
        self.pool.validate()?;
        if self.tick.is_zero() {
            return Err(NodeError::InvalidConfig("tick interval must be non-zero".into()));
        }
        if self.rlpx.protocols.is_empty() {
            self.rlpx.protocols = self.eth.protocols();
        }
        let key = self.key.take().unwrap_or_else(NodeKey::generate);
        let metrics = match self.metrics {
            Some(addr) => Some(MetricsServer::bind(addr).await.map_err(NodeError::Metrics)?),
            None => None,
        };
        let recorder = metrics.as_ref().map(MetricsServer::recorder).unwrap_or_default();
        let dns = match self.dns.take() {
            Some((config, urls)) => {
                let links = urls
                    .iter()
                    .map(|u| {
                        u.trim().parse::<LinkEntry>().map_err(|e| NodeError::Dns(DnsError::InvalidUrl(e)))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let resolver = match self.dns_resolver.take() {
                    Some(r) => r,
                    None => HickoryResolver::from_system_conf().map_err(|source| {
                        NodeError::Dns(DnsError::Resolve {
                            name: "the system resolver configuration".into(),
                            source,
                        })
                    })?,
                };
                let (tx, rx) = mpsc::channel(config.candidate_buffer.max(1));
                let dns = DnsDiscovery::spawn(config, resolver, tx);
                for link in links {
                    dns.add_link(link).await?;
                }
                // The walk stops by itself if the node fails to start: its channel closes.
                self.sources.push(rx);
                Some(dns)
            }
            None => None,
        };
        let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let (announcements, _) = broadcast::channel(announce::ANNOUNCEMENT_CAPACITY);
        let peer_id = key.peer_id();
        let (service, (local_addr, dual_stack_addr), discovery, external) =
            NodeService::start(service::Setup {
                key,
                listen: self.listen,
                listen_dual_stack: self.listen_dual_stack,
                eth: self.eth,
                chain: self.chain,
                tx_pool: self.tx_pool,
                pool: self.pool,
                rlpx: self.rlpx,
                data_dir: self.data_dir,
                bootnodes: self.bootnodes,
                sources: self.sources,
                discovery: self.discovery,
                tick: self.tick,
                seed: self.seed.unwrap_or_else(rand::random),
                commands: rx,
                events: events.clone(),
                announcements: announcements.clone(),
                recorder: recorder.clone(),
                nat: self.nat,
                port_mapper: self.port_mapper,
                #[cfg(feature = "lan")]
                lan: self.lan,
            })
            .await?;
        let task = tokio::spawn(service.run());
        Ok(Node {
            inner: Arc::new(Inner {
                commands: tx,
                events,
                announcements,
                peer_id,
                local_addr,
                dual_stack_addr,
                discovery,
                task: std::sync::Mutex::new(Some(task)),
                metrics_addr: metrics.as_ref().map(MetricsServer::local_addr),
                metrics: std::sync::Mutex::new(metrics),
                recorder,
                external,
                dns,
            }),
        })
    }
}

#[derive(Debug)]
struct Inner {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<PoolEvent>,
    announcements: broadcast::Sender<Announcement>,
    peer_id: PeerId,
    local_addr: SocketAddr,
    dual_stack_addr: Option<SocketAddr>,
    discovery: Option<Discovery>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    metrics_addr: Option<SocketAddr>,
    metrics: std::sync::Mutex<Option<MetricsServer>>,
    recorder: Recorder,
    external: watch::Receiver<Option<ExternalAddr>>,
    dns: Option<DnsDiscovery>,
}

/// A running node. Cheap to clone; every clone talks to the same service.
#[derive(Debug, Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

impl Node {
    /// Our public key.
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    /// The RLPx listener's address (with the port actually bound).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The second RLPx listener's address, of the other IP family, when started with
    /// [`NodeBuilder::listen_dual_stack`].
    pub fn dual_stack_addr(&self) -> Option<SocketAddr> {
        self.inner.dual_stack_addr
    }

    /// The discovery the node runs, when it was started with [`NodeBuilder::discovery`]:
    /// its UDP address, our record, its tables and counters.
    pub fn discovery(&self) -> Option<&Discovery> {
        self.inner.discovery.as_ref()
    }

    /// Our public address as far as we know it: the `extip` of [`NodeBuilder::nat`], or
    /// what the gateway granted; `None` without NAT configuration or before the gateway
    /// answered.
    pub fn external_addr(&self) -> Option<ExternalAddr> {
        *self.inner.external.borrow()
    }

    /// Our `enode://` URL as others should dial it: the external address (see
    /// [`Self::external_addr`]) where known, else the listener's address.
    pub fn enode(&self) -> Enode {
        let mut enode = Enode::new(self.inner.peer_id, self.inner.local_addr);
        if let Some(d) = &self.inner.discovery {
            enode.udp_port = d.local_addr().port();
        }
        if let Some(ext) = self.external_addr() {
            enode.ip = ext.ip;
            enode.tcp_port = ext.tcp_port.unwrap_or(enode.tcp_port);
            enode.udp_port = ext.udp_port.unwrap_or(enode.udp_port);
        }
        enode
    }

    /// The DNS discovery the node runs, when started with [`NodeBuilder::dns`]: add
    /// trees, read each tree's status.
    pub fn dns(&self) -> Option<&DnsDiscovery> {
        self.inner.dns.as_ref()
    }

    /// The address of the `/metrics` endpoint, when started with [`NodeBuilder::metrics`].
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.inner.metrics_addr
    }

    /// A stream of pool events from now on.
    pub fn events(&self) -> broadcast::Receiver<PoolEvent> {
        self.inner.events.subscribe()
    }

    /// Announcements from every peer from now on (blocks, transactions, block ranges),
    /// validated by the peer's session. Bounded: a consumer that falls behind loses the
    /// oldest ones, counted by [`Announcements::dropped`], and never slows the node.
    pub fn announcements(&self) -> Announcements {
        Announcements::new(self.inner.announcements.subscribe())
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.inner.commands.send(make(tx)).await.map_err(|_| NodeError::Shutdown)?;
        rx.await.map_err(|_| NodeError::Shutdown)
    }

    /// The connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerSnapshot>, NodeError> {
        self.ask(Command::Peers).await
    }

    /// Counters: peers by direction, dials, failures, bans.
    pub async fn stats(&self) -> Result<NodeStats, NodeError> {
        self.ask(Command::Stats).await
    }

    /// Queues a node for dialing, as if a discovery source had found it.
    pub async fn add_peer(&self, enode: Enode) -> Result<(), NodeError> {
        let candidate = Candidate::from_enode(&enode, crate::discovery::CandidateSource::Static);
        self.inner.commands.send(Command::Candidate(candidate)).await.map_err(|_| NodeError::Shutdown)
    }

    /// Block headers from the best idle peer, validated against the request; on a timeout
    /// or an invalid answer the request is retried on another peer (up to
    /// [`MAX_REQUEST_ATTEMPTS`]). Returns the peer that served them.
    pub async fn get_block_headers(
        &self,
        request: GetBlockHeaders,
    ) -> Result<(PeerId, Vec<Sealed<Header>>), NodeError> {
        // A peer is asked only if its announced range holds the first block wanted.
        let block = match request.origin {
            alloy_eips::BlockHashOrNumber::Number(n) => Some(n),
            alloy_eips::BlockHashOrNumber::Hash(_) => None,
        };
        self.route(
            RequestKind::BlockHeaders,
            block,
            |peer| async move { peer.get_block_headers(request).await },
            |h| h.len(),
        )
        .await
    }

    /// Block bodies for `headers` (validated against their roots), routed like
    /// [`Self::get_block_headers`].
    pub async fn get_block_bodies(
        &self,
        headers: Vec<Sealed<Header>>,
    ) -> Result<(PeerId, Vec<alloy_consensus::BlockBody<alloy_consensus::TxEnvelope>>), NodeError> {
        let block = headers.iter().map(|h| h.number).min();
        self.route(
            RequestKind::BlockBodies,
            block,
            |peer| {
                let headers = headers.clone();
                async move { peer.get_block_bodies(headers).await }
            },
            |b| b.len(),
        )
        .await
    }

    /// Receipts for `headers` (validated against their roots), routed like
    /// [`Self::get_block_headers`].
    pub async fn get_receipts(
        &self,
        headers: Vec<Sealed<Header>>,
    ) -> Result<(PeerId, Vec<Vec<alloy_consensus::ReceiptEnvelope>>), NodeError> {
        let block = headers.iter().map(|h| h.number).min();
        self.route(
            RequestKind::Receipts,
            block,
            |peer| {
                let headers = headers.clone();
                async move { peer.get_receipts(headers).await }
            },
            |r| r.len(),
        )
        .await
    }

    /// Transactions from `peer`'s pool (usually the peer that announced them), validated:
    /// each must be one that was asked for. Not retried elsewhere: other peers may not
    /// have them. [`NodeError::NoPeers`] if `peer` is not connected.
    pub async fn get_pooled_transactions(
        &self,
        peer: PeerId,
        hashes: Vec<B256>,
    ) -> Result<Vec<PooledTransaction>, NodeError> {
        let Some((handle, timeout)) = self.ask(|reply| Command::Peer { peer_id: peer, reply }).await? else {
            return Err(NodeError::NoPeers);
        };
        handle
            .with_request_timeout(timeout)
            .get_pooled_transactions(hashes)
            .await
            .map_err(|e| NodeError::RequestFailed { attempts: 1, last: Arc::new(e) })
    }

    /// Our head moved to block `number` with `hash` and `timestamp` (forwards, or back
    /// in a reorg): new sessions' `Status` and fork-id checks follow it; when a fork is
    /// crossed, our record's `eth` entry changes (one sequence number bump); eth/69+ peers
    /// get a `BlockRangeUpdate` every [`BLOCK_RANGE_UPDATE_INTERVAL`] blocks and at once
    /// when the head moves back, as go-ethereum sends them.
    pub async fn set_head(&self, number: u64, hash: B256, timestamp: u64) -> Result<(), NodeError> {
        self.send(Command::SetHead { number, hash, timestamp }).await
    }

    /// Broadcasts transactions as go-ethereum does: in full to √n of the peers (blob
    /// transactions and those over [`MAX_BROADCAST_TX_SIZE`] bytes never), as hashes to
    /// the others; never to a peer that sent or announced them to us, never twice to one
    /// peer. Peers that then ask for them are served from the node's
    /// [`NodeBuilder::tx_pool`], so put them there first.
    pub async fn broadcast_transactions(
        &self,
        txs: Vec<PooledTransaction>,
    ) -> Result<BroadcastSummary, NodeError> {
        self.ask(|reply| Command::Broadcast { what: Broadcast::Transactions(txs), reply }).await
    }

    /// Propagates a new block to eth/66–68 peers: in full (`NewBlock`) to √n of them,
    /// its hash (`NewBlockHashes`) to the rest; eth/69+ peers learn of it from
    /// [`Self::set_head`]'s `BlockRangeUpdate`. Never sent to a peer that announced it.
    pub async fn broadcast_block(&self, block: NewBlock) -> Result<BroadcastSummary, NodeError> {
        self.ask(|reply| Command::Broadcast { what: Broadcast::Block(Box::new(block)), reply }).await
    }

    /// Announces block hashes (`NewBlockHashes`) to every eth/66–68 peer that does not
    /// know them.
    pub async fn announce_block_hashes(
        &self,
        hashes: Vec<BlockHashNumber>,
    ) -> Result<BroadcastSummary, NodeError> {
        self.ask(|reply| Command::Broadcast { what: Broadcast::BlockHashes(hashes), reply }).await
    }

    /// Ends the session with `peer` with `reason` (a judgement made above the network
    /// layer); the pool may dial it again later.
    pub async fn disconnect(&self, peer: PeerId, reason: DisconnectReason) -> Result<(), NodeError> {
        self.send(Command::Disconnect { peer_id: peer, reason }).await
    }

    /// Bans `peer` for `duration`: disconnected now, neither dialed nor accepted until then.
    pub async fn ban(&self, peer: PeerId, duration: Duration) -> Result<(), NodeError> {
        self.send(Command::Ban { peer_id: peer, duration }).await
    }

    /// Scores `peer` for something it did that only a higher layer can judge (a block
    /// that fails execution, a transaction flood): `change` is applied to its reputation,
    /// which bans it if it falls below the threshold.
    pub async fn report(&self, peer: PeerId, change: ReputationChange) -> Result<(), NodeError> {
        self.send(Command::Report { peer_id: peer, change }).await
    }

    async fn send(&self, command: Command) -> Result<(), NodeError> {
        self.inner.commands.send(command).await.map_err(|_| NodeError::Shutdown)
    }

    /// eth/71 block access lists for `headers`, each checked against its header's hash
    /// (`None` where the peer has none), routed like [`Self::get_receipts`] (to peers whose
    /// announced range holds the first block) but only to peers whose session negotiated
    /// eth/71 or later: older ones are left out of the choice, so
    /// no attempt is spent on a peer that cannot answer.
    pub async fn get_block_access_lists(
        &self,
        headers: Vec<Sealed<Header>>,
    ) -> Result<(PeerId, Vec<Option<alloy_primitives::Bytes>>), NodeError> {
        let kind = RequestKind::BlockAccessLists;
        let older: Vec<PeerId> = self
            .peers()
            .await?
            .into_iter()
            .filter(|p| !p.eth_version.is_some_and(|v| v.has_block_access_lists()))
            .map(|p| p.peer_id)
            .collect();
        let block = headers.first().map(|h| h.number);
        self.route_skipping(
            kind,
            block,
            older,
            |peer| {
                let headers = headers.clone();
                async move { peer.get_block_access_lists(headers).await }
            },
            |v| v.iter().filter(|l| l.is_some()).count(),
        )
        .await
    }

    async fn route<T, F, Fut>(
        &self,
        kind: RequestKind,
        block: Option<u64>,
        send: F,
        count: impl Fn(&T) -> usize,
    ) -> Result<(PeerId, T), NodeError>
    where
        F: Fn(EthPeer) -> Fut,
        Fut: std::future::Future<Output = Result<T, EthError>>,
    {
        self.route_skipping(kind, block, Vec::new(), send, count).await
    }

    /// [`Self::route`], never choosing a peer in `skip` (one that cannot answer this kind).
    async fn route_skipping<T, F, Fut>(
        &self,
        kind: RequestKind,
        block: Option<u64>,
        skip: Vec<PeerId>,
        send: F,
        count: impl Fn(&T) -> usize,
    ) -> Result<(PeerId, T), NodeError>
    where
        F: Fn(EthPeer) -> Fut,
        Fut: std::future::Future<Output = Result<T, EthError>>,
    {
        let mut tried = Vec::new();
        let mut last = None;
        while tried.len() < MAX_REQUEST_ATTEMPTS {
            let exclude = tried.iter().chain(&skip).copied().collect();
            let Some((peer, timeout)) =
                self.ask(|reply| Command::Acquire { kind, block, exclude, reply }).await?
            else {
                break;
            };
            let peer_id = peer.peer_id();
            tried.push(peer_id);
            // The session task enforces the pool's timeout for this peer and reports the
            // request's outcome (valid, empty, invalid, timed out) to the pool itself: the
            // answer is scored where it arrives, once, even if this caller goes away.
            let started = tokio::time::Instant::now();
            let value = send(peer.with_request_timeout(timeout)).await;
            let rtt = started.elapsed();
            self.inner.recorder.with(|| {
                let label = match &value {
                    Ok(v) if count(v) == 0 => "empty",
                    Ok(_) => "valid",
                    Err(EthError::InvalidResponse(_)) => "invalid",
                    Err(EthError::Timeout) => "timeout",
                    Err(_) => "failed",
                };
                let kind = kind.as_str();
                ::metrics::counter!(metrics::REQUESTS, "kind" => kind, "outcome" => label).increment(1);
                ::metrics::histogram!(metrics::REQUEST_DURATION, "kind" => kind).record(rtt.as_secs_f64());
            });
            let value = value.map_err(Arc::new);
            match value {
                Ok(v) if count(&v) > 0 => return Ok((peer_id, v)),
                // An empty answer may be honest; another peer may have the data.
                Ok(v) => last = last.or(Some(Ok((peer_id, v)))),
                Err(e) => last = Some(Err(e)),
            }
        }
        match last {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(NodeError::RequestFailed { attempts: tried.len(), last: e }),
            None => Err(NodeError::NoPeers),
        }
    }

    /// Stops the node: stops its discovery (if it runs one), disconnects every peer, saves
    /// the address book and waits for every task to end.
    pub async fn shutdown(&self) {
        // Discovery first, so no candidate arrives while the pool winds down.
        if let Some(discovery) = &self.inner.discovery {
            discovery.shutdown().await;
        }
        if let Some(dns) = &self.inner.dns {
            dns.shutdown().await;
        }
        let (tx, rx) = oneshot::channel();
        if self.inner.commands.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
        let task = self.inner.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
        // Last, so a final scrape can see the shutdown's disconnects.
        let metrics = self.inner.metrics.lock().ok().and_then(|mut m| m.take());
        drop(metrics);
    }
}
