//! A loopback network to crawl: discovery nodes that also accept RLPx and answer the eth
//! Status handshake under a chosen client id, some with their TCP port closed.
//!
//! Each node is our own stack: a discv5 service, an [`RlpxListener`] and an eth
//! [`EthSession`] handshake over an in-memory chain on mainnet's genesis, so a crawler's probe
//! sees what it would see on a real network: a Hello, a Status, or a refused connection.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use super::{key_from_seed, test_discv5_config};
use crate::{
    discovery::{Discv5, Discv5Config, Discv5Error, NetRestrict},
    eth::{EthConfig, EthSession, MemoryChain},
    record::{ChainSpec, Enr, EnrContent, ForkId, LocalEnr, NodeId, NodeKey},
    rlpx::{Protocol, RlpxConfig, RlpxListener},
};

/// discv5 settings for a crawl network: [`test_discv5_config`] with a gentler bootstrap
/// (5 lookups, 500 ms apart, then one every 5 s), so that hundreds of nodes in one process
/// do not spend the CPU on their own lookups while they are being crawled.
pub fn crawl_net_discv5_config() -> Discv5Config {
    let mut config = test_discv5_config();
    config.bootstrap_lookups = 5;
    config.bootstrap_lookup_interval = Duration::from_millis(500);
    config.lookup_interval = Duration::from_secs(5);
    config
}

/// Client ids handed out round-robin, so a crawl summary has several clients to count.
pub const CLIENT_IDS: [&str; 3] = [
    "Geth/v1.14.12-stable/linux-amd64/go1.23.4",
    "reth/v1.1.5-7f8e8c3/x86_64-unknown-linux-gnu",
    "Nethermind/v1.30.3+87c86379/linux-x64/dotnet9.0.0",
];

/// One node of a [`CrawlNet`].
#[derive(Debug)]
pub struct CrawlNetNode {
    /// Its key.
    pub key: NodeKey,
    /// Its record.
    pub enr: LocalEnr,
    /// Its discv5 service.
    pub discv5: Discv5,
    /// The client id its Hello announces, when its TCP port is open.
    pub client_id: Option<&'static str>,
    /// Its RLPx listener task, when its TCP port is open; aborted on drop.
    listener: Option<tokio::task::JoinHandle<()>>,
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

/// `n` nodes on loopback: node 0 is the bootnode the others join through; every
/// `closed_every`-th node advertises a TCP port nobody listens on.
#[derive(Debug)]
pub struct CrawlNet {
    nodes: Vec<CrawlNetNode>,
    fork_id: ForkId,
}

impl CrawlNet {
    /// Starts `n` nodes (seeds `first_seed..`), one in `closed_every` with a closed TCP port
    /// (0: none). The discv5 settings are [`crawl_net_discv5_config`].
    pub async fn start(n: usize, first_seed: u64, closed_every: usize) -> Result<Self, Discv5Error> {
        Self::start_with(n, first_seed, closed_every, crawl_net_discv5_config()).await
    }

    /// [`start`](Self::start) with other discv5 settings (listen address and netrestrict are
    /// always loopback).
    pub async fn start_with(
        n: usize,
        first_seed: u64,
        closed_every: usize,
        discv5: Discv5Config,
    ) -> Result<Self, Discv5Error> {
        let spec = ChainSpec::mainnet();
        let chain = Arc::new(MemoryChain::builder().blocks(4).build());
        let status = chain.status_info_for(&spec);
        let eth = EthConfig::builder(status, spec.fork_filter(0, 0)).build().expect("valid eth config");
        let mut nodes: Vec<CrawlNetNode> = Vec::with_capacity(n);
        for i in 0..n {
            let key = key_from_seed(first_seed + i as u64);
            let open = closed_every == 0 || i % closed_every != closed_every - 1;
            let client_id = CLIENT_IDS[i % CLIENT_IDS.len()];
            let (tcp_port, listener) = if open {
                let (port, task) = serve_rlpx(key.clone(), client_id, eth.clone(), chain.clone()).await;
                (port, Some(task))
            } else {
                (closed_port().await, None)
            };
            let enr = LocalEnr::builder(&key)
                .content(EnrContent { fork_id: Some(status.fork_id), ..Default::default() })
                .ip4(std::net::Ipv4Addr::LOCALHOST)
                .tcp4(tcp_port)
                .build()?;
            let mut config = discv5.clone();
            config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
            config.netrestrict = NetRestrict::loopback();
            config.bootnodes = nodes.first().map(|boot| vec![boot.record()]).unwrap_or_default();
            let (discv5, candidates) = Discv5::start(enr.clone(), config).await?;
            // Nobody reads these nodes' candidates; dropping the stream makes the service
            // drop them (and count it) instead of queueing.
            drop(candidates);
            nodes.push(CrawlNetNode { key, enr, discv5, client_id: open.then_some(client_id), listener });
        }
        Ok(Self { nodes, fork_id: status.fork_id })
    }

    /// Every node; node 0 is the bootnode.
    pub fn nodes(&self) -> &[CrawlNetNode] {
        &self.nodes
    }

    /// The bootnode's record, to start a crawl from.
    pub fn bootnode(&self) -> Enr {
        self.nodes[0].record()
    }

    /// The fork id every node advertises (mainnet's at the in-memory chain's head).
    pub fn fork_id(&self) -> ForkId {
        self.fork_id
    }

    /// Stops every node.
    pub async fn shutdown(self) {
        for node in &self.nodes {
            node.discv5.shutdown().await;
        }
    }
}

/// Listens for RLPx on a free loopback port; each session runs the eth handshake and is then
/// held until the peer leaves.
async fn serve_rlpx(
    key: NodeKey,
    client_id: &'static str,
    eth: EthConfig,
    chain: Arc<MemoryChain>,
) -> (u16, tokio::task::JoinHandle<()>) {
    let mut config = RlpxConfig::builder();
    config.client_id(client_id).protocol(Protocol::eth(68)).protocol(Protocol::eth(69));
    config.handshake_timeout(Duration::from_secs(10));
    let config = config.build().expect("valid rlpx config");
    let mut listener =
        RlpxListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), key, config).await.expect("bind loopback");
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

/// A loopback TCP port nobody listens on (bound, then released).
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    listener.local_addr().expect("bound").port()
}
