//! Attacks of issue 16 replayed over real sockets on loopback, with the loopback
//! exemptions of the pool's per-IP rules switched off (`PoolConfig::limit_lan`), as a
//! public node meets them.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::net::TcpSocket;

use ethp2p::{
    eth::{EthError, EthSession, MemoryChain},
    node::{Node, NodeBuilder},
    pool::PoolConfig,
    rlpx::{self, dial, Protocol, RlpxConfig},
    test_utils::poll_until,
    NodeKey,
};

use crate::eth::eth_config;

/// A node on loopback with the LAN exemptions off (`limit_lan`) and a 50 ms per-IP throttle,
/// so only the rules under test refuse anyone.
async fn guarded_node(chain: &Arc<MemoryChain>) -> Node {
    let pool =
        PoolConfig::builder().limit_lan(true).inbound_throttle(Duration::from_millis(50)).build().unwrap();
    NodeBuilder::new(eth_config(chain), chain.clone())
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .pool(pool)
        .start()
        .await
        .unwrap()
}

/// A peer on another chain (another genesis) dials, is refused at `Status`, and dials
/// again at once: the second connection is closed before any handshake work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_chain_peer_is_not_handshaken_again() {
    let ours = Arc::new(MemoryChain::builder().blocks(2).build());
    let node = guarded_node(&ours).await;
    let theirs = MemoryChain::builder().genesis(Default::default()).blocks(2).build();
    let rlpx = RlpxConfig::builder().protocol(Protocol::eth(68)).protocol(Protocol::eth(69)).build().unwrap();
    let key = NodeKey::generate();

    let session = dial(&node.enode(), &key, &rlpx).await.expect("the first connection is handshaken");
    let refused = EthSession::handshake(session, eth_config(&theirs)).await;
    assert!(matches!(refused, Err(EthError::Status(_)) | Err(EthError::Rlpx(_))), "{refused:?}");
    let counted = poll_until(Duration::from_secs(10), Duration::from_millis(20), || {
        let node = node.clone();
        async move { node.stats().await.map(|s| s.inbound_connections == 1).unwrap_or(false) }
    })
    .await;
    assert!(counted);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let again = dial(&node.enode(), &key, &rlpx).await;
    assert!(again.is_err(), "the connection is closed before the RLPx handshake");
    let stats = node.stats().await.unwrap();
    assert_eq!((stats.inbound_connections, stats.inbound_handshakes), (2, 1), "{stats:?}");
    node.shutdown().await;
}

/// One host with a block of addresses (here 127.0.0.1–8, one /24) opens connections and
/// sends nothing, to hold the pending-handshake slots: only `max_pending_per_subnet` of
/// them get a handshake; a host on another /24 still does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_cannot_hold_the_pending_handshake_slots() {
    let chain = Arc::new(MemoryChain::builder().blocks(2).build());
    let pool = PoolConfig::builder()
        .limit_lan(true)
        .inbound_throttle(Duration::from_millis(1)) // distinct IPs anyway; only the new rule is under test
        .build()
        .unwrap();
    let per_subnet = pool.max_pending_per_subnet;
    let node: Node = NodeBuilder::new(eth_config(&chain), chain.clone())
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .pool(pool)
        // The held connections must still be pending when the last one arrives.
        .rlpx(RlpxConfig::builder().handshake_timeout(Duration::from_secs(120)).build().unwrap())
        .start()
        .await
        .unwrap();
    let target = node.local_addr();
    let mut held = Vec::new();
    let sources: Vec<[u8; 4]> = (1..=8).map(|h| [127, 0, 0, h]).chain([[127, 0, 9, 1]]).collect();
    for source in &sources {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((*source, 0))).unwrap();
        held.push(socket.connect(target).await.unwrap());
        let seen = held.len() as u64;
        let counted = poll_until(Duration::from_secs(10), Duration::from_millis(10), || {
            let node = node.clone();
            async move { node.stats().await.map(|s| s.inbound_connections == seen).unwrap_or(false) }
        })
        .await;
        assert!(counted, "connection {seen} reached the node");
    }
    let stats = node.stats().await.unwrap();
    println!(
        "{} connections from one /24 and one from another: {} handshakes",
        sources.len() - 1,
        stats.inbound_handshakes
    );
    assert_eq!(stats.inbound_handshakes, per_subnet as u64 + 1, "{stats:?}");
    node.shutdown().await;
}

/// Twelve discv5 keys on one host (127.0.0.1) answer our PINGs with the address they see,
/// which is not the one in our record (127.0.0.99): the `discv5` crate counts one vote
/// per node id, so with its own votes on (the old default) the sybil set rewrites our
/// record; by default it keeps it (our record's address moves only through our own
/// votes, once per /24, or stays as configured).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discv5_sybils_on_one_host_cannot_move_our_address() {
    use ethp2p::discovery::Discv5;
    use ethp2p::{
        record::LocalEnr,
        test_utils::{key_from_seed, test_discv5_config, Testnet},
    };
    let sybils = Testnet::builder(12).bootnode(false).first_seed(7_100).start().await.unwrap();
    let records: Vec<_> = sybils.nodes().iter().map(|n| n.record()).collect();
    let ours = std::net::Ipv4Addr::new(127, 0, 0, 99);
    let mut outcome = Vec::new();
    for enr_update in [true, false] {
        let key = key_from_seed(7_000 + u64::from(enr_update));
        let local = LocalEnr::builder(&key).ip4(ours).build().unwrap();
        let mut config = test_discv5_config();
        config.random_lookups = false;
        if enr_update {
            config.enr_update = true; // the `discv5` crate's own votes, as before
        }
        let (v5, _candidates) = Discv5::start(local.clone(), config).await.unwrap();
        // We contact each sybil (a FINDNODE opens the session; a new outgoing node gets a
        // PING at once, whose PONG carries the address the sybil sees).
        for record in &records {
            let _ = v5.find_node(record.clone(), vec![0]).await;
        }
        let contacted = poll_until(Duration::from_secs(20), Duration::from_millis(50), || {
            let v5 = v5.clone();
            async move { v5.stats().await.map(|s| s.table_size >= 12).unwrap_or(false) }
        })
        .await;
        assert!(contacted, "the sybils joined our table");
        // The crate counts a PONG as soon as it arrives; give the twelve PONGs time to land.
        let moved = poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
            let local = local.clone();
            async move { local.content().ip4 != Some(ours) }
        })
        .await;
        println!("discv5 enr_update {enr_update}: record ip {:?} (seq {})", local.content().ip4, local.seq());
        outcome.push(moved);
        v5.shutdown().await;
    }
    assert_eq!(outcome, [true, false], "the crate's votes move it (control); ours keep it");
    sybils.shutdown().await;
}

/// Dials `node` from the loopback address `from` with `key` and runs the RLPx handshake.
async fn dial_from(
    from: [u8; 4],
    node: &Node,
    key: &NodeKey,
    rlpx: &RlpxConfig,
) -> Result<rlpx::Session, rlpx::RlpxError> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    let tcp = socket.connect(node.enode().tcp_addr()).await?;
    rlpx::Session::outgoing(tcp, key, node.enode().peer_id, rlpx).await
}

/// The same wrong-chain peer comes back from another address (its IP rule does not
/// apply there): its key is refused as soon as its auth packet is decrypted, before our
/// ack, so its RLPx handshake fails (it got past RLPx before the rule). Another key from
/// that address is handshaken as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_chain_key_is_refused_from_any_address() {
    let ours = Arc::new(MemoryChain::builder().blocks(2).build());
    let node = guarded_node(&ours).await;
    let theirs = MemoryChain::builder().genesis(Default::default()).blocks(2).build();
    let rlpx = RlpxConfig::builder().protocol(Protocol::eth(68)).protocol(Protocol::eth(69)).build().unwrap();
    let key = NodeKey::generate();

    let session =
        dial_from([127, 0, 0, 2], &node, &key, &rlpx).await.expect("the first connection is handshaken");
    let refused = EthSession::handshake(session, eth_config(&theirs)).await;
    assert!(matches!(refused, Err(EthError::Status(_)) | Err(EthError::Rlpx(_))), "{refused:?}");
    let counted = poll_until(Duration::from_secs(10), Duration::from_millis(20), || {
        let node = node.clone();
        async move { node.stats().await.map(|s| s.inbound_handshakes == 1).unwrap_or(false) }
    })
    .await;
    assert!(counted);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let again = dial_from([127, 0, 0, 3], &node, &key, &rlpx).await;
    assert!(again.is_err(), "the shunned key gets no ack: {again:?}");
    let stats = node.stats().await.unwrap();
    assert_eq!(
        (stats.inbound_connections, stats.inbound_handshakes),
        (2, 2),
        "the new address passed the IP rule: {stats:?}"
    );

    tokio::time::sleep(Duration::from_millis(200)).await; // past the per-IP throttle
    let honest =
        dial_from([127, 0, 0, 3], &node, &NodeKey::generate(), &rlpx).await.expect("another key is let in");
    EthSession::handshake(honest, eth_config(&ours)).await.expect("and handshaken");
    node.shutdown().await;
}
