//! The pool over real loopback sockets: a 60-node simulation with slow and lying peers,
//! restarts from the address book, and a corrupt book.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use alloy_consensus::{BlockBody, Header, ReceiptEnvelope, TxEnvelope};
use alloy_eips::BlockHashOrNumber;
use alloy_primitives::B256;
use ethp2p::{
    eth::RequestKind,
    eth::{ChainReader, EthConfig, GetBlockHeaders, MemoryChain},
    node::{Node, NodeBuilder},
    pool::{PoolConfig, PoolEvent},
    record::ChainSpec,
    Enode, NodeKey,
};

/// Generous: the whole test runs on two busy cores.
const DEADLINE: Duration = Duration::from_secs(60);

/// Headers per request in the simulation. `serve_headers` looks up one header more than
/// it returns (it stops on the next one), so a request costs `COUNT + 1` lookups.
const COUNT: u64 = 8;
const LOOKUPS_PER_REQUEST: usize = COUNT as usize + 1;

/// A chain that may answer slowly, or lie (each header is the next block's: wrong numbers).
/// `delay` is per lookup: a request is delayed by `LOOKUPS_PER_REQUEST` × `delay`.
struct TestChain {
    inner: Arc<MemoryChain>,
    delay: Duration,
    lie: bool,
    served: AtomicUsize,
}

impl ChainReader for TestChain {
    fn header_by_number(&self, number: u64) -> Option<Header> {
        if !self.delay.is_zero() {
            // The serving code is synchronous; let the runtime move other tasks off this
            // worker while we stall.
            tokio::task::block_in_place(|| std::thread::sleep(self.delay));
        }
        self.served.fetch_add(1, Ordering::Relaxed);
        let n = if self.lie { number + 1 } else { number };
        self.inner.header_by_number(n)
    }
    fn header_by_hash(&self, hash: &B256) -> Option<Header> {
        self.inner.header_by_hash(hash)
    }
    fn body(&self, hash: &B256) -> Option<BlockBody<TxEnvelope>> {
        self.inner.body(hash)
    }
    fn receipts(&self, hash: &B256) -> Option<Vec<ReceiptEnvelope>> {
        self.inner.receipts(hash)
    }
}

fn eth_config(chain: &MemoryChain) -> EthConfig {
    chain.eth_config_for(&ChainSpec::mainnet()).build().unwrap()
}

fn key(seed: u32) -> NodeKey {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&seed.to_be_bytes());
    b[31] = 1;
    NodeKey::from_bytes(&b).unwrap()
}

async fn server(chain: &Arc<MemoryChain>, seed: u32, delay: Duration, lie: bool) -> (Node, Arc<TestChain>) {
    let test_chain = Arc::new(TestChain { inner: chain.clone(), delay, lie, served: AtomicUsize::new(0) });
    let node = NodeBuilder::new(eth_config(chain), test_chain.clone())
        .key(key(seed))
        .listen("127.0.0.1:0".parse().unwrap())
        .seed(u64::from(seed))
        .start()
        .await
        .unwrap();
    (node, test_chain)
}

fn enode(node: &Node) -> Enode {
    let addr = node.local_addr();
    Enode { peer_id: node.peer_id(), ip: addr.ip(), tcp_port: addr.port(), udp_port: addr.port() }
}

async fn wait_for_peers(node: &Node, n: usize) -> usize {
    let start = Instant::now();
    loop {
        let have = node.peers().await.unwrap().len();
        if have >= n || start.elapsed() > DEADLINE {
            return have;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn request(origin: u64, count: u64) -> GetBlockHeaders {
    GetBlockHeaders { origin: BlockHashOrNumber::Number(origin), count, skip: 0, reverse: false }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn sixty_nodes_slow_and_lying_peers() {
    let chain = Arc::new(MemoryChain::builder().blocks(64).build());
    let mut servers = Vec::new();
    for i in 0..60u32 {
        // 10 slow (100-300 ms), 5 liars, the rest honest and fast.
        let answer_delay = if (10..20).contains(&i) {
            Duration::from_millis(100 + 20 * u64::from(i - 10))
        } else {
            Duration::ZERO
        };
        let delay = answer_delay / LOOKUPS_PER_REQUEST as u32;
        let lie = (20..25).contains(&i);
        servers.push(server(&chain, 1000 + i, delay, lie).await);
    }
    let liars: HashSet<_> = servers[20..25].iter().map(|(n, _)| n.peer_id()).collect();
    let slow: HashSet<_> = servers[10..20].iter().map(|(n, _)| n.peer_id()).collect();

    let pool = PoolConfig::builder().min_peers(60).max_peers(60).build().unwrap();
    let started = Instant::now();
    let node = NodeBuilder::new(eth_config(&chain), chain.clone())
        .key(key(1))
        .listen("127.0.0.1:0".parse().unwrap())
        .pool(pool)
        .bootnodes(servers.iter().map(|(n, _)| enode(n)))
        .seed(1)
        .start()
        .await
        .unwrap();
    let mut events = node.events();
    assert!(wait_for_peers(&node, 30).await >= 30, "reached 30 peers");
    let to_30 = started.elapsed();
    let all = wait_for_peers(&node, 60).await;
    assert_eq!(all, 60, "every server accepted us");

    // Warm-up: rounds of one concurrent request per peer, the way a syncer spreads its
    // first batches, until every liar has been caught (a liar that answered badly is asked
    // only when every better peer is busy, so this takes a few rounds).
    let mut banned = HashSet::new();
    let mut rounds = 0;
    while banned != liars && rounds < 20 {
        rounds += 1;
        let tasks: Vec<_> = (0..60u64)
            .map(|i| {
                let node = node.clone();
                tokio::spawn(
                    async move { node.get_block_headers(request(1 + (i + rounds) % 32, COUNT)).await },
                )
            })
            .collect();
        for t in tasks {
            let (peer, headers) = t.await.unwrap().expect("served after retries");
            assert!(!liars.contains(&peer), "a liar's answer was accepted");
            assert_eq!(headers.len(), COUNT as usize);
        }
        while let Ok(event) = events.try_recv() {
            if let PoolEvent::PeerBanned { peer_id, .. } = event {
                banned.insert(peer_id);
            }
        }
    }
    assert_eq!(banned, liars, "exactly the liars are banned");
    // Each liar's chain counts its lookups (`LOOKUPS_PER_REQUEST` per request).
    let bad_answers: Vec<usize> =
        servers[20..25].iter().map(|(_, c)| c.served.load(Ordering::Relaxed) / LOOKUPS_PER_REQUEST).collect();
    assert!(bad_answers.iter().all(|&n| (1..=3).contains(&n)), "bad answers per liar: {bad_answers:?}");

    // 200 requests, four at a time: where do they go?
    let mut served_by: HashMap<_, usize> = HashMap::new();
    for batch in 0..50u64 {
        let tasks: Vec<_> = (0..4u64)
            .map(|i| {
                let node = node.clone();
                tokio::spawn(
                    async move { node.get_block_headers(request(1 + (batch * 4 + i) % 48, COUNT)).await },
                )
            })
            .collect();
        for t in tasks {
            let (peer, headers) = t.await.unwrap().unwrap();
            assert_eq!(headers.len(), COUNT as usize);
            *served_by.entry(peer).or_default() += 1;
        }
    }
    // The fastest quarter by the node's own estimates after the run (among 45 equally
    // fast loopback peers, "fastest" is whatever the node measured; the slow ten are
    // never in it).
    let peers = node.peers().await.unwrap();
    let mut by_rtt: Vec<_> = peers
        .iter()
        .filter_map(|p| p.latency.rtt(RequestKind::BlockHeaders).map(|rtt| (rtt, p.peer_id)))
        .collect();
    by_rtt.sort();
    let quarter: HashSet<_> = by_rtt.iter().take(by_rtt.len().div_ceil(4)).map(|(_, id)| *id).collect();
    let to_fast: usize = served_by.iter().filter(|(id, _)| quarter.contains(*id)).map(|(_, n)| n).sum();
    let to_slow: usize = served_by.iter().filter(|(id, _)| slow.contains(*id)).map(|(_, n)| n).sum();
    let stats = node.stats().await.unwrap();
    println!(
        "pool simulation: 30 peers after {to_30:?}; liars banned {}/5 after {bad_answers:?} bad answers \
         ({rounds} warm-up rounds); \
         {to_fast}/200 requests to the fastest quarter ({} peers), {to_slow} to slow peers; stats {stats:?}",
        banned.len(),
        quarter.len()
    );
    assert!(to_fast * 100 >= 80 * 200, "{to_fast}/200 to the fastest quarter");
    assert!(to_slow <= 10, "{to_slow}/200 to slow peers");
    node.shutdown().await;
    for (s, _) in servers {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_redials_known_good_peers_first() {
    let chain = Arc::new(MemoryChain::builder().blocks(8).build());
    let dir = tempfile::tempdir().unwrap();
    let mut servers = Vec::new();
    for i in 0..10u32 {
        servers.push(server(&chain, 2000 + i, Duration::ZERO, false).await.0);
    }
    let config = PoolConfig::builder().min_peers(5).max_peers(5).max_concurrent_dials(5).build().unwrap();
    let first = NodeBuilder::new(eth_config(&chain), chain.clone())
        .key(key(2))
        .listen("127.0.0.1:0".parse().unwrap())
        .pool(config.clone())
        .data_dir(dir.path())
        .bootnodes(servers[..5].iter().map(enode))
        .start()
        .await
        .unwrap();
    assert_eq!(wait_for_peers(&first, 5).await, 5);
    let good: HashSet<_> = first.peers().await.unwrap().iter().map(|p| p.peer_id).collect();
    first.shutdown().await;
    assert!(dir.path().join("peers.json").exists(), "the book is saved at shutdown");

    // Restart with five other nodes offered as fresh candidates: the book's peers win.
    let second = NodeBuilder::new(eth_config(&chain), chain.clone())
        .key(key(2))
        .listen("127.0.0.1:0".parse().unwrap())
        .pool(config)
        .data_dir(dir.path())
        .bootnodes(servers[5..].iter().map(enode))
        .start()
        .await
        .unwrap();
    assert_eq!(wait_for_peers(&second, 5).await, 5);
    let again: HashSet<_> = second.peers().await.unwrap().iter().map(|p| p.peer_id).collect();
    assert_eq!(again, good, "the previously good peers were redialed first");
    second.shutdown().await;
    for s in servers {
        s.shutdown().await;
    }
}

#[tokio::test]
async fn corrupt_book_is_moved_aside() {
    let chain = Arc::new(MemoryChain::builder().blocks(2).build());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("peers.json"), b"{\"version\":1,\"entries\":[{\"peer_id\"").unwrap();
    let node = NodeBuilder::new(eth_config(&chain), chain.clone())
        .listen("127.0.0.1:0".parse().unwrap())
        .data_dir(dir.path())
        .start()
        .await
        .expect("a corrupt book is not fatal");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().any(|n| n.starts_with("peers.json.corrupt-")), "{names:?}");
    node.shutdown().await;
    // Shutdown wrote a fresh, valid book next to the kept corrupt one.
    let (book, aside) = ethp2p::pool::AddressBook::load(&dir.path().join("peers.json")).unwrap();
    assert!(aside.is_none() && book.entries.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eclipse_one_subnet_gets_at_most_its_share() {
    let chain = Arc::new(MemoryChain::builder().blocks(2).build());
    let mut servers = Vec::new();
    // Ten nodes in one /24 (127.0.0.0/24) and ten in distinct /24s: loopback answers on
    // all of 127.0.0.0/8, so each gets its own address.
    for i in 0..10u8 {
        for ip in [format!("127.0.0.{}", 10 + i), format!("127.{}.0.1", 1 + i)] {
            let chain_reader = Arc::new(TestChain {
                inner: chain.clone(),
                delay: Duration::ZERO,
                lie: false,
                served: AtomicUsize::new(0),
            });
            let node = NodeBuilder::new(eth_config(&chain), chain_reader)
                .key(key(3000 + servers.len() as u32))
                .listen(format!("{ip}:0").parse().unwrap())
                .start()
                .await
                .unwrap();
            servers.push(node);
        }
    }
    // The subnet limit applies to loopback here because we ask for it.
    let config =
        PoolConfig::builder().min_peers(20).max_peers(20).subnet_limit(2).limit_lan(true).build().unwrap();
    let node = NodeBuilder::new(eth_config(&chain), chain.clone())
        .key(key(3))
        .listen("127.0.0.1:0".parse().unwrap())
        .pool(config)
        .bootnodes(servers.iter().map(enode))
        .start()
        .await
        .unwrap();
    // Ten distinct subnets plus two from the crowded one.
    assert_eq!(wait_for_peers(&node, 12).await, 12);
    let peers = node.peers().await.unwrap();
    let crowded = peers.iter().filter(|p| p.addr.ip().to_string().starts_with("127.0.0.")).count();
    println!("eclipse: {} peers, {crowded} from the crowded /24", peers.len());
    assert_eq!(crowded, 2, "at most the configured number from one /24");
    node.shutdown().await;
    for s in servers {
        s.shutdown().await;
    }
}

/// geth's `checkInboundConn`: the per-IP throttle is applied when the TCP connection is
/// accepted, before the ECIES handshake. One IP opening many connections gets one
/// handshake; the others are closed without a byte of cryptography.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_throttle_refuses_before_the_handshake() {
    use tokio::io::AsyncReadExt;
    const CONNECTIONS: u64 = 8;
    let chain = Arc::new(MemoryChain::builder().blocks(2).build());
    // Loopback is exempt by default (a devnet on one host); this node throttles it too.
    let mut pool = PoolConfig::builder();
    pool.limit_lan(true);
    let node = NodeBuilder::new(eth_config(&chain), chain.clone())
        .key(key(7_001))
        .listen("127.0.0.1:0".parse().unwrap())
        .pool(pool.build().unwrap())
        .start()
        .await
        .unwrap();
    let mut held = Vec::new();
    let mut closed_early = 0;
    for i in 0..CONNECTIONS {
        let mut tcp = tokio::net::TcpStream::connect(node.local_addr()).await.unwrap();
        if i == 0 {
            // The first one is let through: its handshake waits for our auth message.
            held.push(tcp);
            continue;
        }
        // The rest are closed by the node without it sending anything.
        let mut buf = [0u8; 1];
        match tokio::time::timeout(DEADLINE, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed_early += 1,
            Ok(Ok(_)) => panic!("the node sent bytes on a throttled connection"),
            Err(_) => panic!("connection {i} from a throttled IP was left open"),
        }
    }
    assert_eq!(closed_early, CONNECTIONS - 1);
    let stats = node.stats().await.unwrap();
    assert_eq!(stats.inbound_connections, CONNECTIONS, "{stats:?}");
    assert_eq!(stats.inbound_handshakes, 1, "one handshake for one IP: {stats:?}");
    assert_eq!(stats.pool.sessions_refused, CONNECTIONS - 1, "{stats:?}");
    drop(held);
    node.shutdown().await;
}

/// An inbound flood of connections that connect and stall: at most `max_pending_inbound`
/// of them get a handshake, the rest are closed at once; once the stalled handshakes time
/// out, an honest peer still gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_inbound_flood_is_capped_before_the_handshake() {
    use tokio::io::AsyncReadExt;
    const PENDING: usize = 4;
    const FLOOD: usize = 12;
    let chain = Arc::new(MemoryChain::builder().blocks(2).build());
    let mut pool = PoolConfig::builder();
    pool.max_pending_inbound(PENDING);
    let mut rlpx = ethp2p::rlpx::RlpxConfig::builder();
    rlpx.handshake_timeout(Duration::from_millis(500));
    let node = NodeBuilder::new(eth_config(&chain), chain.clone())
        .key(key(7_101))
        .listen("127.0.0.1:0".parse().unwrap())
        .pool(pool.build().unwrap())
        .rlpx(rlpx.build().unwrap())
        .start()
        .await
        .unwrap();
    // Loopback is exempt from the per-IP throttle by default: only the cap stands.
    let mut stalled = Vec::new();
    for _ in 0..FLOOD {
        stalled.push(tokio::net::TcpStream::connect(node.local_addr()).await.unwrap());
    }
    let counted = poll_until_stats(&node, |s| s.inbound_connections == FLOOD as u64).await;
    assert!(counted, "every connection was seen");
    let stats = node.stats().await.unwrap();
    assert_eq!(stats.inbound_handshakes, PENDING as u64, "handshakes capped: {stats:?}");
    // Those over the cap were closed without a byte; those handshaking time out.
    let mut closed = 0;
    for mut tcp in stalled {
        let mut buf = [0u8; 1];
        match tokio::time::timeout(DEADLINE, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
            other => panic!("a stalled connection was not closed: {other:?}"),
        }
    }
    assert_eq!(closed, FLOOD);

    // The flood is gone: an honest peer connects.
    let (peer, _) = server(&chain, 7_102, Duration::ZERO, false).await;
    peer.add_peer(enode(&node)).await.unwrap();
    assert_eq!(wait_for_peers(&node, 1).await, 1, "an honest peer gets in after the flood");
    peer.shutdown().await;
    node.shutdown().await;
}

async fn poll_until_stats(node: &Node, done: impl Fn(&ethp2p::NodeStats) -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if done(&node.stats().await.unwrap()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
