//! One call starts everything (issue 6): nodes built with `NodeBuilder::discovery` run
//! discv4 and discv5 on one UDP port and fill their pools from it, with no candidate fed
//! by hand.

use std::{collections::HashSet, net::SocketAddr, sync::Arc, time::Duration};

use ethp2p::{
    discovery::{
        dns::{sign_tree, DnsConfig, HickoryResolver},
        v4::Discv4Config,
        DiscoveryConfig,
    },
    eth::{EthConfig, EthVersion, GetBlockHeaders, MemoryChain},
    nat::{NatConfig, PmpGateway},
    node::{DialFailure, Node, NodeBuilder, NodeError},
    pool::{Direction, PoolConfig, ReputationWeights},
    record::ChainSpec,
    rlpx::{Protocol, RlpxConfig},
    test_utils::{
        dns::DnsTestServer,
        key_from_seed,
        nat::{FakePmpGateway, PmpRequest},
        poll_until, test_discv5_config,
    },
    Enode, Enr, LocalEnr, NetRestrict, PeerId,
};

/// Generous: six nodes with two discovery protocols each, on two busy cores.
const DEADLINE: Duration = Duration::from_secs(90);
const NODES: u8 = 6;
/// Peers every node must reach: more than its bootstrap node alone can give.
const WANT_PEERS: usize = 3;

fn eth_config(chain: &MemoryChain) -> EthConfig {
    chain.eth_config_for(&ChainSpec::mainnet()).build().unwrap()
}

/// discv4 and discv5 on one loopback port, restricted to loopback, bootstrapping from
/// `boot` (its enode for discv4, its record for discv5).
fn discovery(ip: [u8; 4], boot: Option<(Enode, Enr)>) -> DiscoveryConfig {
    let listen = SocketAddr::from((ip, 0));
    let mut v4 = Discv4Config::builder();
    v4.listen_addr(listen).netrestrict(NetRestrict::loopback()).lookup_interval(Duration::from_secs(1));
    let mut v5 = test_discv5_config();
    v5.listen = listen;
    if let Some((enode, enr)) = boot {
        v4.bootnodes(vec![enode]);
        v5.bootnodes = vec![enr];
    }
    DiscoveryConfig::new(Some(v4.build().unwrap()), Some(v5))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_with_discovery_find_and_connect_to_each_other() {
    let chain = Arc::new(MemoryChain::builder().blocks(2).build());
    let eth = eth_config(&chain);
    let mut nodes: Vec<Node> = Vec::new();
    let mut boot = None;
    for i in 0..NODES {
        // One IP per node (all of 127.0.0.0/8 answers): no subnet or per-IP limit of the
        // table or the pool applies between them.
        let ip = [127, i + 1, 0, 1];
        let node = NodeBuilder::new(eth.clone(), chain.clone())
            .key(key_from_seed(12_000 + u64::from(i)))
            .listen(SocketAddr::from((ip, 0)))
            .seed(u64::from(i))
            .discovery(discovery(ip, boot.clone()))
            .start()
            .await
            .unwrap();
        let disc = node.discovery().expect("started with discovery");
        let record = disc.local_enr().record();
        assert_eq!(record.tcp4(), Some(node.local_addr().port()), "record carries the RLPx port");
        assert_eq!(record.udp4(), Some(disc.local_addr().port()), "record carries the UDP port");
        assert_eq!(record.ip4(), Some(ip.into()));
        assert_eq!(
            disc.local_enr().content().fork_id,
            Some(eth.status.fork_id),
            "record carries our fork id"
        );
        if boot.is_none() {
            let enode = Enode {
                peer_id: node.peer_id(),
                ip: ip.into(),
                tcp_port: node.local_addr().port(),
                udp_port: disc.local_addr().port(),
            };
            boot = Some((enode, record));
        }
        nodes.push(node);
    }

    let connected = poll_until(DEADLINE, Duration::from_millis(200), || {
        let nodes = nodes.clone();
        async move {
            for node in &nodes {
                if node.peers().await.map(|p| p.len()).unwrap_or(0) < WANT_PEERS {
                    return false;
                }
            }
            true
        }
    })
    .await;
    let mut counts = Vec::new();
    for node in &nodes {
        let stats = node.discovery().unwrap().stats().await.unwrap();
        counts.push((node.peers().await.unwrap().len(), stats.table_size));
    }
    assert!(
        connected,
        "every node reaches {WANT_PEERS} peers through discovery; (peers, table) per node: {counts:?}"
    );

    for node in &nodes {
        node.shutdown().await;
    }
    assert!(nodes[0].discovery().unwrap().stats().await.is_err(), "shutdown stops discovery");
}

async fn loopback_node(chain: &Arc<MemoryChain>, seed: u64, rlpx: Option<RlpxConfig>) -> Node {
    let mut builder = NodeBuilder::new(eth_config(chain), chain.clone())
        .key(key_from_seed(seed))
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .seed(seed);
    if let Some(rlpx) = rlpx {
        builder = builder.rlpx(rlpx);
    }
    builder.start().await.unwrap()
}

fn enode_of(node: &Node) -> Enode {
    Enode::new(node.peer_id(), node.local_addr())
}

/// The peer table shows what the handshakes said: the remote's client id from its Hello
/// and the eth version both sides negotiated; the stats count dials and failed dials by
/// cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_carries_client_id_and_eth_version() {
    let chain = Arc::new(MemoryChain::builder().blocks(2).build());
    // The remote speaks eth/68 only, so the negotiated version is not simply our newest.
    let mut rlpx = RlpxConfig::builder();
    rlpx.client_id("snapshot-test/v9.9.9/linux-amd64/rust").protocol(Protocol::eth(68));
    let remote = loopback_node(&chain, 13_001, Some(rlpx.build().unwrap())).await;
    let local = loopback_node(&chain, 13_002, None).await;

    local.add_peer(enode_of(&remote)).await.unwrap();
    // A node at a closed port: the dial must fail with a refused connection.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    local.add_peer(Enode::new(key_from_seed(13_003).peer_id(), closed)).await.unwrap();

    let ready = poll_until(Duration::from_secs(30), Duration::from_millis(50), || {
        let local = local.clone();
        async move {
            let stats = local.stats().await.unwrap();
            let peers = local.peers().await.unwrap();
            peers.len() == 1 && stats.dial_failures.get(&DialFailure::ConnectionRefused) == Some(&1)
        }
    })
    .await;
    let (peers, stats) = (local.peers().await.unwrap(), local.stats().await.unwrap());
    assert!(ready, "one peer and one refused dial; peers {peers:?}, stats {stats:?}");
    let peer = &peers[0];
    assert_eq!(peer.peer_id, remote.peer_id());
    assert_eq!(peer.client_id.as_deref(), Some("snapshot-test/v9.9.9/linux-amd64/rust"));
    assert_eq!(peer.eth_version, Some(EthVersion::Eth68));
    assert_eq!(peer.direction, Direction::Outbound);
    assert_eq!(peer.score(), peer.reputation.get());
    assert_eq!(stats.pool.dials, 2, "two dials: {stats:?}");
    assert_eq!(stats.pool.dials_succeeded, 1);
    assert_eq!(stats.dial_failures.values().sum::<u64>(), 1, "{stats:?}");

    // The remote sees us as inbound, with our default client id and the same version.
    let theirs = remote.peers().await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].direction, Direction::Inbound);
    assert_eq!(theirs[0].eth_version, Some(EthVersion::Eth68));
    assert_eq!(theirs[0].client_id.as_deref(), Some(RlpxConfig::default().client_id.as_str()));

    local.shutdown().await;
    remote.shutdown().await;
}

/// A plain HTTP/1.1 GET of `/metrics`, as Prometheus scrapes.
async fn scrape(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n")
        .await
        .unwrap();
    let mut page = String::new();
    stream.read_to_string(&mut page).await.unwrap();
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    page
}

/// The value of one sample line (`name{labels} value`) on a scraped page.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `NodeBuilder::metrics` serves the node's own registry: the peer gauge follows the
/// pool, dials, candidates and routed requests are counted. The other node records
/// nothing there (no global recorder is installed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_counts_peers_dials_and_requests() {
    let chain = Arc::new(MemoryChain::builder().blocks(4).build());
    let remote = loopback_node(&chain, 13_101, None).await;
    let local = NodeBuilder::new(eth_config(&chain), chain.clone())
        .key(key_from_seed(13_102))
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .metrics(SocketAddr::from(([127, 0, 0, 1], 0)))
        .start()
        .await
        .unwrap();
    assert_eq!(remote.metrics_addr(), None);
    let addr = local.metrics_addr().expect("started with metrics");
    assert_ne!(addr.port(), 0, "the bound port is reported");
    assert_eq!(sample(&scrape(addr).await, "ethp2p_peers{direction=\"outbound\"}"), None);

    local.add_peer(enode_of(&remote)).await.unwrap();
    let outbound = "ethp2p_peers{direction=\"outbound\"}";
    let connected = poll_until(Duration::from_secs(30), Duration::from_millis(50), || async move {
        sample(&scrape(addr).await, outbound) == Some(1.0)
    })
    .await;
    let page = scrape(addr).await;
    assert!(connected, "the outbound gauge reaches 1: {page}");
    assert_eq!(local.peers().await.unwrap().len(), 1);
    assert_eq!(sample(&page, "ethp2p_dials_total"), Some(1.0), "{page}");
    assert_eq!(sample(&page, "ethp2p_discovery_candidates_total{source=\"static\"}"), Some(1.0), "{page}");

    let request = GetBlockHeaders { origin: 1u64.into(), count: 2, skip: 0, reverse: false };
    let (_, headers) = local.get_block_headers(request).await.unwrap();
    assert_eq!(headers.len(), 2);
    let page = scrape(addr).await;
    assert_eq!(
        sample(&page, "ethp2p_requests_total{kind=\"block_headers\",outcome=\"valid\"}"),
        Some(1.0),
        "{page}"
    );
    assert_eq!(sample(&page, "ethp2p_request_duration_seconds_count{kind=\"block_headers\"}"), Some(1.0));

    // The remote closes: the gauge drops and the close is counted by its reason.
    remote.shutdown().await;
    let dropped = poll_until(Duration::from_secs(30), Duration::from_millis(50), || async move {
        sample(&scrape(addr).await, outbound) == Some(0.0)
    })
    .await;
    let page = scrape(addr).await;
    assert!(dropped, "the gauge follows the disconnect: {page}");
    assert_eq!(
        sample(&page, "ethp2p_sessions_closed_total{reason=\"client_quitting\"}"),
        Some(1.0),
        "{page}"
    );

    local.shutdown().await;
    let closed = poll_until(Duration::from_secs(10), Duration::from_millis(20), || async move {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
    assert!(closed, "shutdown closes the endpoint");
}

/// `NodeBuilder::dns`: a node with no bootnode and no discovery fills its pool from an
/// EIP-1459 tree served by a loopback DNS server, whose leaves are the records of three
/// running nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_fills_its_pool_from_a_dns_tree() {
    const SERVERS: u64 = 3;
    let chain = Arc::new(MemoryChain::builder().blocks(2).build());
    let eth = eth_config(&chain);
    let mut servers = Vec::new();
    let mut records = Vec::new();
    for i in 0..SERVERS {
        let seed = 13_200 + i;
        let node = loopback_node(&chain, seed, None).await;
        let mut record = LocalEnr::builder(&key_from_seed(seed));
        record.ip4([127, 0, 0, 1].into()).tcp4(node.local_addr().port()).fork_id(eth.status.fork_id);
        records.push(record.build().unwrap().record());
        servers.push(node);
    }
    let tree = sign_tree(&key_from_seed(13_299), "nodes.example.org", 1, records, Vec::new()).unwrap();
    let dns_server = DnsTestServer::start().await.unwrap();
    dns_server.serve_tree(&tree);

    let config =
        DnsConfig::builder().rate_limit(100.0, 20).lookup_timeout(Duration::from_secs(2)).build().unwrap();
    let node = NodeBuilder::new(eth.clone(), chain.clone())
        .key(key_from_seed(13_250))
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .dns([tree.link.to_string()], config)
        .dns_resolver(HickoryResolver::with_name_servers(&[dns_server.addr()]))
        .start()
        .await
        .unwrap();
    let filled = poll_until(Duration::from_secs(30), Duration::from_millis(50), || {
        let node = node.clone();
        async move { node.peers().await.unwrap().len() == SERVERS as usize }
    })
    .await;
    let peers: HashSet<PeerId> = node.peers().await.unwrap().iter().map(|p| p.peer_id).collect();
    assert!(filled, "the pool reaches every node of the tree: {peers:?}");
    let want: HashSet<PeerId> = servers.iter().map(Node::peer_id).collect();
    assert_eq!(peers, want);
    let status = node.dns().expect("started with DNS").status().await.unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!((status[0].seq, status[0].nodes), (Some(1), SERVERS as usize), "{status:?}");
    assert!(dns_server.queries() > 0);

    node.shutdown().await;
    assert!(node.dns().unwrap().status().await.is_err(), "shutdown stops the DNS walk");
    for s in servers {
        s.shutdown().await;
    }
    // A URL that does not parse is a configuration error, not a silent no-op.
    let bad = NodeBuilder::new(eth, chain)
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .dns(["enrtree://not-a-key@example.org"], DnsConfig::default())
        .dns_resolver(HickoryResolver::with_name_servers(&[dns_server.addr()]))
        .start()
        .await;
    assert!(matches!(bad, Err(NodeError::Dns(_))), "{bad:?}");
}

/// `NodeBuilder::nat`: `extip` puts the configured address in our record and enode. (The
/// node also serves metrics here, to check its discovery gauges.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_extip_is_advertised() {
    let chain = Arc::new(MemoryChain::builder().blocks(2).build());
    let external = std::net::IpAddr::from([127, 0, 0, 77]);
    let node = NodeBuilder::new(eth_config(&chain), chain.clone())
        .key(key_from_seed(13_300))
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .nat(NatConfig::ExtIp(external))
        .discovery(discovery([127, 0, 0, 1], None))
        .metrics(SocketAddr::from(([127, 0, 0, 1], 0)))
        .start()
        .await
        .unwrap();
    let record = node.discovery().unwrap().local_enr().record();
    assert_eq!(
        record.ip4().map(std::net::IpAddr::from),
        Some(external),
        "the record carries the external IP"
    );
    assert_eq!(record.tcp4(), Some(node.local_addr().port()));
    let enode = node.enode();
    assert_eq!((enode.ip, enode.tcp_port), (external, node.local_addr().port()));
    assert_eq!(enode.udp_port, node.discovery().unwrap().local_addr().port());
    // A node with its own metrics endpoint publishes its discovery gauges there too.
    let addr = node.metrics_addr().unwrap();
    let published = poll_until(Duration::from_secs(30), Duration::from_millis(50), || async move {
        sample(&scrape(addr).await, "ethp2p_discovery_table_size").is_some()
    })
    .await;
    assert!(published, "discovery gauges at /metrics: {}", scrape(addr).await);
    node.shutdown().await;
}

/// `NodeBuilder::port_mapper` (what `nat(pmp)` does with the gateway it finds): the ports
/// are mapped on a fake NAT-PMP gateway on loopback, the granted address lands in our
/// record, and shutdown removes the mappings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_port_mapping_updates_the_record_and_is_removed_at_shutdown() {
    // A documentation address (RFC 5737): only ever text in the fake gateway's answer.
    let wan = std::net::Ipv4Addr::new(203, 0, 113, 7);
    let gateway = FakePmpGateway::start(wan).await.unwrap();
    let chain = Arc::new(MemoryChain::builder().blocks(2).build());
    let node = NodeBuilder::new(eth_config(&chain), chain.clone())
        .key(key_from_seed(13_310))
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .port_mapper(PmpGateway::new(gateway.addr()))
        .discovery(discovery([127, 0, 0, 1], None))
        .start()
        .await
        .unwrap();
    let tcp = node.local_addr().port();
    let udp = node.discovery().unwrap().local_addr().port();
    let mapped = poll_until(Duration::from_secs(30), Duration::from_millis(20), || {
        let node = node.clone();
        async move { node.discovery().unwrap().local_enr().record().ip4() == Some(wan) }
    })
    .await;
    assert!(
        mapped,
        "the granted address reaches the record: {:?}",
        node.discovery().unwrap().local_enr().record()
    );
    let ext = node.external_addr().unwrap();
    assert_eq!(ext.ip, std::net::IpAddr::from(wan));
    assert_eq!((ext.tcp_port, ext.udp_port), (Some(tcp), Some(udp)));
    assert_eq!(node.enode().ip, std::net::IpAddr::from(wan));

    node.shutdown().await;
    let removed: Vec<_> =
        gateway.requests().into_iter().filter(|r| matches!(r, PmpRequest::Map { lifetime: 0, .. })).collect();
    assert_eq!(removed.len(), 2, "both mappings (TCP and UDP) removed: {:?}", gateway.requests());
}

/// A pool below `min_peers` keeps discovery looking (go-ethereum's dialer pulls from its
/// lookup iterator) instead of waiting for the periodic refresh. The network here is
/// discv4-only with an hour between periodic lookups, so after each node's start-up lookup
/// nothing moves unless someone asks; the newcomer's dials all fail (nobody listens on
/// TCP), so its pool stays hungry and its demand lookups must find every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hungry_pool_keeps_discovery_looking() {
    const OTHERS: u64 = 48;
    const MIN_PEERS: usize = 30;
    let hour = Duration::from_secs(3600);
    let chain = Arc::new(MemoryChain::builder().blocks(1).build());
    // Records carry the newcomer's fork id, or its pool would rightly refuse them.
    let fork_id = eth_config(&chain).status.fork_id;
    let start = |seed: u64, boot: Vec<Enode>| async move {
        let key = key_from_seed(seed);
        // A TCP port nobody listens on: the newcomer's dials fail at once.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = Discv4Config::builder()
            .listen_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
            .netrestrict(NetRestrict::loopback())
            .lookup_interval(hour)
            .tcp_port(Some(closed))
            .bootnodes(boot)
            .build()
            .unwrap();
        let local = LocalEnr::builder(&key).fork_id(fork_id).build().unwrap();
        ethp2p::discovery::v4::Discv4::spawn(config, local).await.unwrap()
    };
    let (boot, _boot_candidates) = start(50_000, Vec::new()).await;
    let mut others = Vec::new();
    for seed in 50_001..50_001 + OTHERS {
        others.push(start(seed, vec![boot.local_enode()]).await);
    }
    // The bootnode has met every node (their start-up lookups went through it).
    let all_met = poll_until(DEADLINE, Duration::from_millis(50), || async {
        boot.table().await.unwrap().len() as u64 >= OTHERS / 2
    })
    .await;
    assert!(all_met, "the bootnode's table: {}", boot.table().await.unwrap().len());

    let mut v4 = Discv4Config::builder();
    v4.listen_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .netrestrict(NetRestrict::loopback())
        .lookup_interval(hour)
        .bootnodes(vec![boot.local_enode()]);
    // Refused dials cost no reputation here, so the pool keeps every node it heard of and
    // its candidate count is what discovery found. MIN_PEERS is what the pool wants: 0 turns
    // the demand lookups off (the control run).
    let weights = ReputationWeights { failed_to_connect: 0, ..ReputationWeights::default() };
    let pool = PoolConfig::builder().min_peers(MIN_PEERS).weights(weights).build().unwrap();
    let node = NodeBuilder::new(eth_config(&chain), chain.clone())
        .key(key_from_seed(49_999))
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .discovery(DiscoveryConfig::new(Some(v4.build().unwrap()), None))
        .pool(pool)
        .start()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let known = || async { node.stats().await.unwrap().candidates as u64 };
    let found = poll_until(DEADLINE, Duration::from_millis(50), || async { known().await > OTHERS }).await;
    let v4stats = node.discovery().unwrap().v4().unwrap().stats().await.unwrap();
    eprintln!("demand: {} candidates after {:?}, discv4 {:?}", known().await, started.elapsed(), v4stats);
    assert!(found, "the hungry node knows {} of the {} other nodes", known().await, OTHERS + 1);
    node.shutdown().await;
    boot.shutdown().await;
    for (d, _) in others {
        d.shutdown().await;
    }
}
