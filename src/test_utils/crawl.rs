//! A loopback network to crawl: discovery nodes (discv4, discv5 or both on one port) that
//! also accept RLPx and answer the eth Status handshake under a chosen client id, some with
//! their TCP port closed.
//!
//! Each node is our own stack on its own loopback address (`127.0.x.y`: all of 127.0.0.0/8
//! is loopback on Linux): a [`Discovery`] service, an [`RlpxListener`] and an eth
//! [`EthSession`] handshake over an in-memory chain on mainnet's genesis, so a crawler's probe
//! sees what it would see on a real network: a Hello, a Status, or a refused connection.
//!
//! ## Why the tables are filled directly
//! A real network's nodes have converged tables and each runs on its own machine. Here
//! hundreds share one process and two cores, and discovery's own upkeep is what does not
//! scale: every discv5 lookup asks each peer for three distances, and each record in the
//! NODES answers (up to 48 per peer) costs a secp256k1 signature check. Measured with `perf`
//! on 120 discv5 nodes bootstrapping by lookups (debug build, deps at opt-level 2), ~55% of all
//! CPU went to `Enr::verify` inside NODES decoding; both cores stayed busy for tens of seconds,
//! discv5's 1 s request timeouts fired, failed requests dropped sessions, and the retries and
//! new handshakes added more work: a crawler's FINDNODEs mostly timed out (17 of 20). So a
//! `CrawlNet` computes each node's table (the sans-IO part: log-distances between known
//! ids) and hands it over before the crawl: discv5 nodes get records with `add_enr` and run
//! no random lookups; discv4 nodes ping their chosen neighbours (bonding is how a discv4 table
//! fills) and look up rarely. The crawl then measures the crawler, not the network's upkeep.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use super::{key_from_seed, poll_until, test_discv5_config};
use crate::crawl::CrawlProgress;
use crate::{
    discovery::{
        v4::{Discv4Config, Discv4Error},
        Discovery, DiscoveryConfig, DiscoveryError, Discv5, Discv5Config, NetRestrict,
    },
    eth::{EthConfig, EthSession, MemoryChain},
    record::{ChainSpec, Enode, Enr, EnrContent, ForkId, LocalEnr, NodeId, NodeKey},
    rlpx::{Protocol, RlpxConfig, RlpxListener},
};

/// Resolves with the time from now until 99% (rounded up) of `nodes` are known to the crawl,
/// sampled every 10 ms beside it: the crawl benchmarks' headline figure.
pub fn time_to_99_percent(progress: Arc<CrawlProgress>, nodes: usize) -> tokio::task::JoinHandle<Duration> {
    let want = nodes * 99 / 100 + usize::from(nodes * 99 % 100 != 0);
    tokio::spawn(async move {
        let start = std::time::Instant::now();
        while progress.found() < want {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        start.elapsed()
    })
}

/// discv5 settings for a crawl network: [`test_discv5_config`] without random lookups (the
/// tables are filled directly; see the module docs).
pub fn crawl_net_discv5_config() -> Discv5Config {
    let mut config = test_discv5_config();
    config.random_lookups = false;
    config
}

/// discv4 settings for a crawl network: loopback, no per-IP reply limit (a crawler asks from
/// one address), no signature worker threads, and a random lookup only every 10 minutes.
pub fn crawl_net_discv4_config() -> Discv4Config {
    let mut builder = Discv4Config::builder();
    builder
        .listen_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .netrestrict(NetRestrict::loopback())
        .reply_rate_per_ip(None)
        // Hundreds of nodes in one process: their crypto on their tasks, not 2 threads each.
        .crypto_workers(0)
        .lookup_interval(Duration::from_secs(600));
    builder.build().expect("crawl network discv4 configuration is valid")
}

/// Client ids handed out round-robin, so a crawl summary has several clients to count.
pub const CLIENT_IDS: [&str; 3] = [
    "Geth/v1.14.12-stable/linux-amd64/go1.23.4",
    "reth/v1.1.5-7f8e8c3/x86_64-unknown-linux-gnu",
    "Nethermind/v1.30.3+87c86379/linux-x64/dotnet9.0.0",
];

/// discv5 and go-ethereum's discv4: records per bucket.
const BUCKET_SIZE: usize = 16;
/// discv4 neighbours each node pings while the network is built, per bucket: enough for
/// lookups to route from anywhere to anywhere, few enough that building the tables (a PING
/// and PONG each way per entry) stays cheap. Near buckets hold fewer nodes than this anyway,
/// so every node keeps all its close neighbours.
const DISCV4_PER_BUCKET: usize = 4;
/// How long building the discv4 tables may take before `start` gives up.
const DISCV4_BOND_DEADLINE: Duration = Duration::from_secs(60);

/// Which discovery protocols a node speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeProtocols {
    /// discv4 only (an old client).
    Discv4,
    /// discv5 only (a consensus-layer style node).
    Discv5,
    /// Both, on one UDP port ([`Discovery`]).
    Both,
}

impl NodeProtocols {
    /// Whether it speaks discv4.
    pub fn v4(self) -> bool {
        matches!(self, Self::Discv4 | Self::Both)
    }

    /// Whether it speaks discv5.
    pub fn v5(self) -> bool {
        matches!(self, Self::Discv5 | Self::Both)
    }
}

/// Why a [`CrawlNet`] did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrawlNetError {
    /// A node's discovery failed to start.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// A node's record could not be built.
    #[error("record: {0}")]
    Record(String),
    /// discv4 nodes did not bond with their neighbours in time.
    #[error("discv4 tables did not fill: {0} of {1} entries")]
    Discv4Tables(usize, usize),
    /// A discv4 handle failed.
    #[error(transparent)]
    Discv4(#[from] Discv4Error),
}

/// One node of a [`CrawlNet`].
#[derive(Debug)]
pub struct CrawlNetNode {
    /// Its key.
    pub key: NodeKey,
    /// Its record.
    pub enr: LocalEnr,
    /// Its discovery services.
    pub discovery: Discovery,
    /// The protocols it speaks.
    pub protocols: NodeProtocols,
    /// The client id its Hello announces, when its TCP port is open.
    pub client_id: Option<&'static str>,
    /// Its RLPx listener task, when its TCP port is open; aborted on drop.
    listener: Option<tokio::task::JoinHandle<()>>,
    /// What [`CrawlNet::restart_node`] needs to bring it back on the same ports.
    restart: Restart,
}

/// A node's settings as it was started, with its bound ports filled in.
#[derive(Debug, Clone)]
struct Restart {
    v4: Option<Discv4Config>,
    v5: Option<Discv5Config>,
    /// The RLPx port it listened on, if open.
    rlpx: Option<SocketAddr>,
    eth: EthConfig,
    chain: Arc<MemoryChain>,
    /// Whether it is stopped now.
    stopped: bool,
}

impl CrawlNetNode {
    /// Its node id.
    pub fn node_id(&self) -> NodeId {
        self.key.node_id()
    }

    /// Its current record.
    pub fn record(&self) -> Enr {
        self.enr.record()
    }

    /// Its `enode://` address (its discovery port as UDP port).
    pub fn enode(&self) -> Enode {
        let addr = self.discovery.local_addr();
        let tcp_port = self.enr.content().tcp4.unwrap_or(0);
        Enode { peer_id: self.key.peer_id(), ip: addr.ip(), tcp_port, udp_port: addr.port() }
    }

    /// Its discv5 service, if it speaks discv5.
    pub fn discv5(&self) -> Option<&Discv5> {
        self.discovery.v5()
    }

    /// Whether its RLPx port accepts connections.
    pub fn tcp_open(&self) -> bool {
        self.listener.is_some()
    }
}

impl Drop for CrawlNetNode {
    fn drop(&mut self) {
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}

/// Options for a [`CrawlNet`].
#[derive(Debug, Clone)]
pub struct CrawlNetBuilder {
    nodes: usize,
    first_seed: u64,
    closed_every: usize,
    mix: Vec<NodeProtocols>,
    discv5: Discv5Config,
    discv4: Discv4Config,
}

impl CrawlNetBuilder {
    /// The seed of node 0's key; node `i` uses `first_seed + i`. Default: 10 000.
    pub fn first_seed(&mut self, seed: u64) -> &mut Self {
        self.first_seed = seed;
        self
    }

    /// One node in `every` advertises a TCP port nobody listens on (0: none). Default: 4.
    pub fn closed_every(&mut self, every: usize) -> &mut Self {
        self.closed_every = every;
        self
    }

    /// The protocols of node `i` are `mix[i % mix.len()]`, except node 0 (the bootnode),
    /// which speaks both. Default: `[Both, Discv5, Discv4]`.
    pub fn mix(&mut self, mix: impl IntoIterator<Item = NodeProtocols>) -> &mut Self {
        self.mix = mix.into_iter().collect();
        if self.mix.is_empty() {
            self.mix.push(NodeProtocols::Both);
        }
        self
    }

    /// discv5 settings (listen address and netrestrict are always set per node). Default:
    /// [`crawl_net_discv5_config`].
    pub fn discv5(&mut self, config: Discv5Config) -> &mut Self {
        self.discv5 = config;
        self
    }

    /// discv4 settings (listen address and TCP port are always set per node). Default:
    /// [`crawl_net_discv4_config`].
    pub fn discv4(&mut self, config: Discv4Config) -> &mut Self {
        self.discv4 = config;
        self
    }

    /// Starts every node, then fills their tables (see the module docs) and waits until the
    /// discv4 nodes have bonded with their neighbours.
    pub async fn start(&self) -> Result<CrawlNet, CrawlNetError> {
        let spec = ChainSpec::mainnet();
        let chain = Arc::new(MemoryChain::builder().blocks(4).build());
        let status = chain.status_info_for(&spec);
        let eth = EthConfig::builder(status, spec.fork_filter(0, 0)).build().expect("valid eth config");
        let mut nodes: Vec<CrawlNetNode> = Vec::with_capacity(self.nodes);
        for i in 0..self.nodes {
            let ip = node_ip(i);
            let key = key_from_seed(self.first_seed + i as u64);
            let protocols = if i == 0 { NodeProtocols::Both } else { self.mix[i % self.mix.len()] };
            let open = self.closed_every == 0 || i % self.closed_every != self.closed_every - 1;
            let client_id = CLIENT_IDS[i % CLIENT_IDS.len()];
            let (tcp_port, listener) = if open {
                let addr = SocketAddr::new(IpAddr::V4(ip), 0);
                let (port, task) = serve_rlpx(addr, key.clone(), client_id, eth.clone(), chain.clone()).await;
                (port, Some(task))
            } else {
                (closed_port(ip).await, None)
            };
            let enr = LocalEnr::builder(&key)
                .content(EnrContent { fork_id: Some(status.fork_id), ..Default::default() })
                .ip4(ip)
                .tcp4(tcp_port)
                .build()
                .map_err(|e| CrawlNetError::Record(e.to_string()))?;
            let listen = SocketAddr::new(IpAddr::V4(ip), 0);
            let v5 = protocols.v5().then(|| {
                let mut config = self.discv5.clone();
                config.listen = listen;
                config.netrestrict = NetRestrict::loopback();
                config
            });
            let v4 = protocols.v4().then(|| {
                let mut config = self.discv4.clone();
                config.listen_addr = listen;
                config.tcp_port = Some(tcp_port);
                config.netrestrict = NetRestrict::loopback();
                config
            });
            // Nobody reads these nodes' candidates; dropping the stream makes the services
            // drop them (and count it) instead of queueing.
            let (discovery, _candidates) =
                Discovery::start(enr.clone(), DiscoveryConfig::new(v4.clone(), v5.clone())).await?;
            let bound = discovery.local_addr();
            let restart = Restart {
                v4: v4.map(|mut c| {
                    c.listen_addr = bound;
                    c
                }),
                v5: v5.map(|mut c| {
                    c.listen = bound;
                    c
                }),
                rlpx: open.then(|| SocketAddr::new(IpAddr::V4(ip), tcp_port)),
                eth: eth.clone(),
                chain: chain.clone(),
                stopped: false,
            };
            nodes.push(CrawlNetNode {
                key,
                enr,
                discovery,
                protocols,
                client_id: open.then_some(client_id),
                listener,
                restart,
            });
        }
        let net = CrawlNet { nodes, fork_id: status.fork_id };
        net.fill_tables().await?;
        Ok(net)
    }
}

/// `n` nodes on loopback, each on its own address: node 0 is the bootnode (both protocols),
/// the others follow the builder's mix; one in `closed_every` advertises a closed TCP port.
#[derive(Debug)]
pub struct CrawlNet {
    nodes: Vec<CrawlNetNode>,
    fork_id: ForkId,
}

impl CrawlNet {
    /// Options for a network of `nodes` nodes.
    pub fn builder(nodes: usize) -> CrawlNetBuilder {
        CrawlNetBuilder {
            nodes: nodes.max(1),
            first_seed: 10_000,
            closed_every: 4,
            mix: vec![NodeProtocols::Both, NodeProtocols::Discv5, NodeProtocols::Discv4],
            discv5: crawl_net_discv5_config(),
            discv4: crawl_net_discv4_config(),
        }
    }

    /// Every node; node 0 is the bootnode.
    pub fn nodes(&self) -> &[CrawlNetNode] {
        &self.nodes
    }

    /// The bootnode's record, to start a crawl from.
    pub fn bootnode(&self) -> Enr {
        self.nodes[0].record()
    }

    /// The bootnode's `enode://` address, to start a discv4 crawl from.
    pub fn bootnode_enode(&self) -> Enode {
        self.nodes[0].enode()
    }

    /// The fork id every node advertises (mainnet's at the in-memory chain's head).
    pub fn fork_id(&self) -> ForkId {
        self.fork_id
    }

    /// Takes node `i` off the network: its discovery stops and its RLPx port closes. It keeps
    /// its key, record and ports for [`restart_node`](Self::restart_node).
    pub async fn stop_node(&mut self, i: usize) {
        let Some(node) = self.nodes.get_mut(i) else { return };
        node.discovery.shutdown().await;
        if let Some(listener) = node.listener.take() {
            listener.abort();
            // The abort lands at the task's next await; wait for it so the port is free.
            let _ = listener.await;
        }
        node.restart.stopped = true;
    }

    /// Brings a stopped node back on the same addresses and ports, with the same key and
    /// record, and an empty table (as after a real restart): it is found again by being
    /// asked, not by its neighbours.
    pub async fn restart_node(&mut self, i: usize) -> Result<(), CrawlNetError> {
        let Some(node) = self.nodes.get_mut(i) else { return Ok(()) };
        if !node.restart.stopped {
            return Ok(());
        }
        let restart = node.restart.clone();
        let (discovery, _candidates) =
            Discovery::start(node.enr.clone(), DiscoveryConfig::new(restart.v4, restart.v5)).await?;
        node.discovery = discovery;
        if let (Some(addr), Some(client_id)) = (restart.rlpx, node.client_id) {
            let (_, task) = serve_rlpx(addr, node.key.clone(), client_id, restart.eth, restart.chain).await;
            node.listener = Some(task);
        }
        node.restart.stopped = false;
        Ok(())
    }

    /// Stops every node.
    pub async fn shutdown(self) {
        for node in &self.nodes {
            node.discovery.shutdown().await;
        }
    }

    /// Gives every node the table it would have converged to (see the module docs).
    async fn fill_tables(&self) -> Result<(), CrawlNetError> {
        let ids: Vec<NodeId> = self.nodes.iter().map(CrawlNetNode::node_id).collect();
        let v5: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.nodes[i].protocols.v5()).collect();
        let v4: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.nodes[i].protocols.v4()).collect();
        let records: Vec<Enr> = self.nodes.iter().map(CrawlNetNode::record).collect();
        for &i in &v5 {
            let Some(discv5) = self.nodes[i].discv5() else { continue };
            for j in bucket_fill(&ids, i, &v5, BUCKET_SIZE) {
                // A full bucket refuses; bucket_fill never offers more than fits.
                let _ = discv5.add_enr(records[j].clone()).await;
            }
        }
        let mut wanted = 0;
        for &i in &v4 {
            let Some(discv4) = self.nodes[i].discovery.v4() else { continue };
            let picks = bucket_fill(&ids, i, &v4, DISCV4_PER_BUCKET);
            for j in picks {
                discv4.add_node(self.nodes[j].enode()).await?;
                wanted += 1;
            }
        }
        // Bonding takes a PING/PONG each way, and the pinged node bonds back, so the tables
        // end up holding more than `wanted`; wait until nearly that many made it (a lost
        // datagram is retried by the tables' own revalidation, not here).
        let (nodes, v4) = (&self.nodes, &v4);
        let total = || async move {
            let mut total = 0;
            for &i in v4 {
                if let Some(discv4) = nodes[i].discovery.v4() {
                    total += discv4.table().await.map(|t| t.len()).unwrap_or(0);
                }
            }
            total
        };
        let enough = wanted * 9 / 10;
        if !poll_until(DISCV4_BOND_DEADLINE, Duration::from_millis(100), || async { total().await >= enough })
            .await
        {
            return Err(CrawlNetError::Discv4Tables(total().await, wanted));
        }
        Ok(())
    }
}

/// The address of node `i`: `127.0.(1 + i / 250).(1 + i % 250)`.
pub fn node_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8)
}

/// XOR distance between two ids, as a big-endian byte array (orders like the integer).
pub(crate) fn xor(a: &NodeId, b: &NodeId) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, (x, y)) in out.iter_mut().zip(a.0.iter().zip(b.0.iter())) {
        *o = x ^ y;
    }
    out
}

/// log2 distance (1..=256; 0 for the same id), as discv5 numbers its buckets.
fn log_distance(a: &NodeId, b: &NodeId) -> usize {
    let d = xor(a, b);
    d.iter().position(|&byte| byte != 0).map_or(0, |i| 256 - i * 8 - d[i].leading_zeros() as usize)
}

/// The members of `peers` that node `i`'s table holds: per log-distance bucket, the first
/// `per_bucket` in an order that differs per node (so far buckets differ between nodes, as
/// they do on a real network, and every node is held by someone).
pub(crate) fn bucket_fill(ids: &[NodeId], i: usize, peers: &[usize], per_bucket: usize) -> Vec<usize> {
    let mut count = [0usize; 257];
    let n = peers.len().max(1);
    let start = peers.iter().position(|&p| p == i).unwrap_or(0);
    let mut out = Vec::new();
    for k in 1..n {
        let j = peers[(start + k * 7919) % n];
        let distance = log_distance(&ids[i], &ids[j]);
        if j != i && distance > 0 && count[distance] < per_bucket {
            count[distance] += 1;
            out.push(j);
        }
    }
    out
}

/// Listens for RLPx on `addr` (port 0: a free one); each session runs the eth handshake and
/// is then held until the peer leaves.
async fn serve_rlpx(
    addr: SocketAddr,
    key: NodeKey,
    client_id: &'static str,
    eth: EthConfig,
    chain: Arc<MemoryChain>,
) -> (u16, tokio::task::JoinHandle<()>) {
    let mut config = RlpxConfig::builder();
    config.client_id(client_id).protocol(Protocol::eth(68)).protocol(Protocol::eth(69));
    config.handshake_timeout(Duration::from_secs(10));
    let config = config.build().expect("valid rlpx config");
    let mut listener = RlpxListener::bind(addr, key, config).await.expect("bind loopback");
    let port = listener.local_addr().port();
    let task = tokio::spawn(async move {
        let mut sessions = tokio::task::JoinSet::new();
        while let Some(accepted) = listener.accept().await {
            if let Ok(session) = accepted {
                let (eth, chain) = (eth.clone(), chain.clone());
                sessions.spawn(async move {
                    if let Ok(session) = EthSession::handshake(session, eth).await {
                        // Serve it until the prober hangs up.
                        let (_peer, service, _events) = session.into_peer(chain);
                        service.run().await;
                    }
                });
            }
            while sessions.try_join_next().is_some() {}
        }
    });
    (port, task)
}

/// A TCP port of `ip` nobody listens on (bound, then released).
async fn closed_port(ip: Ipv4Addr) -> u16 {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind loopback");
    listener.local_addr().expect("bound").port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_distance_matches_discv5() {
        let a = key_from_seed(1).node_id();
        let b = key_from_seed(2).node_id();
        let ours = log_distance(&a, &b) as u64;
        let theirs = discv5::kbucket::Key::from(enr::NodeId::new(&a.0))
            .log2_distance(&discv5::kbucket::Key::from(enr::NodeId::new(&b.0)));
        assert_eq!(Some(ours), theirs);
        assert_eq!(log_distance(&a, &a), 0);
    }

    #[test]
    fn every_node_is_held_by_someone() {
        let ids: Vec<NodeId> = (0..300).map(|s| key_from_seed(s).node_id()).collect();
        let peers: Vec<usize> = (0..300).collect();
        let mut held = vec![false; 300];
        for i in 0..300 {
            let fill = bucket_fill(&ids, i, &peers, BUCKET_SIZE);
            assert!(fill.len() >= 60, "node {i} holds {}", fill.len());
            for j in fill {
                held[j] = true;
            }
        }
        assert!(held.iter().all(|h| *h));
    }

    #[test]
    fn addresses_are_distinct_loopback() {
        let ips: std::collections::HashSet<Ipv4Addr> = (0..1000).map(node_ip).collect();
        assert_eq!(ips.len(), 1000);
        assert!(ips.iter().all(|ip| ip.is_loopback() && *ip != Ipv4Addr::LOCALHOST));
    }
}
