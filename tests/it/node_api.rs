//! The syncer's half of `Node` over real sockets (issue 15): announcements in from
//! ethereumjs, transactions out to ethereumjs and a second node of ours and never echoed,
//! `set_head` moving our record's fork id across a fork and sending `BlockRangeUpdate` to
//! an eth/69 peer.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use alloy_primitives::B256;
use ethp2p::{
    discovery::{v4::Discv4Config, DiscoveryConfig, NetRestrict},
    eth::{EthEvent, EthMessage, EthSession, MemoryChain, MemoryTxPool, StatusHead, TxPool},
    node::{Announcement, Announcements, Node, NodeBuilder},
    record::ChainSpec,
    rlpx::{dial, Protocol, RlpxConfig},
    test_utils::poll_until,
    Enode, NodeKey, PeerId,
};

use crate::{ejs::EjsPeer, eth::eth_config};

const WAIT: Duration = Duration::from_secs(30);

async fn node(chain: &Arc<MemoryChain>, pool: Arc<MemoryTxPool>, bootnodes: Vec<Enode>) -> Node {
    NodeBuilder::new(eth_config(chain), chain.clone())
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .tx_pool(pool)
        .bootnodes(bootnodes)
        .tick_interval(Duration::from_millis(100))
        .start()
        .await
        .expect("node starts")
}

/// The next announcement from `peer` that `pick` accepts.
async fn next_from<T>(
    stream: &mut Announcements,
    peer: PeerId,
    mut pick: impl FnMut(EthMessage) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let Announcement { peer_id, message, .. } = stream.recv().await.expect("node running");
            if peer_id == peer {
                if let Some(t) = pick(message) {
                    return t;
                }
            }
        }
    })
    .await
    .expect("announcement in time")
}

fn tx_hashes(m: EthMessage) -> Option<Vec<B256>> {
    match m {
        EthMessage::Transactions(t) => Some(t.iter().map(|t| *t.tx_hash()).collect()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_in_and_transactions_out_never_echoed() {
    // The ethereumjs chain's genesis (mainnet), so Status and fork ids agree.
    let chain = Arc::new(MemoryChain::builder().blocks(0).build());
    let (pool_a, pool_b) = (Arc::new(MemoryTxPool::default()), Arc::new(MemoryTxPool::default()));
    let a = node(&chain, pool_a.clone(), vec![]).await;
    let mut heard_a = a.announcements();
    let b = node(&chain, pool_b.clone(), vec![a.enode()]).await;
    let mut heard_b = b.announcements();
    let ejs = EjsPeer::spawn(&["--no-discv4", "--eth", "68", "--announce", "--dial", &a.enode().to_string()]);
    let ejs_id = ejs.enode().peer_id;
    let both = poll_until(WAIT, Duration::from_millis(50), || {
        let a = a.clone();
        async move { a.peers().await.map(|p| p.len() == 2).unwrap_or(false) }
    })
    .await;
    assert!(both, "a holds sessions with b and ethereumjs: {:?}\n{:#?}", a.peers().await, ejs.events());

    // In: what ethereumjs announces reaches the stream, and its transaction the tx pool.
    let head = next_from(&mut heard_a, ejs_id, |m| match m {
        EthMessage::NewBlockHashes(h) => Some(h),
        _ => None,
    })
    .await;
    assert_eq!(head[0].number, 32, "ethereumjs' head");
    let ejs_tx = next_from(&mut heard_a, ejs_id, tx_hashes).await;
    let announced = next_from(&mut heard_a, ejs_id, |m| match m {
        EthMessage::NewPooledTransactionHashes68(a) => Some(a.hashes),
        _ => None,
    })
    .await;
    assert_eq!((ejs_tx.len(), &announced), (1, &ejs_tx));
    assert!(pool_a.contains(&ejs_tx[0]), "the tx pool heard the broadcast");

    // Out: a broadcasts the ethereumjs transaction and one of its own. ⌈√2⌉ = 2: both
    // peers get them in full; ethereumjs gets only ours (it sent the other).
    let own = MemoryChain::builder().blocks(0).pooled_transactions(1).build().tx_pool();
    let own_tx = own.hashes()[0];
    pool_a.insert(own.get(&own_tx).unwrap());
    let txs = vec![pool_a.get(&ejs_tx[0]).unwrap(), pool_a.get(&own_tx).unwrap()];
    let summary = a.broadcast_transactions(txs.clone()).await.unwrap();
    assert_eq!((summary.direct, summary.announced, summary.dropped), (2, 0, 0));
    let got = next_from(&mut heard_b, a.peer_id(), tx_hashes).await;
    assert_eq!(got, vec![ejs_tx[0], own_tx], "b gets both");
    let at_ejs = ejs.wait_event_async("eth-recv", |v| v["msg"] == "TX", WAIT).await;
    let hashes: Vec<String> = serde_json::from_value(at_ejs["hashes"].clone()).unwrap();
    assert_eq!(hashes, vec![own_tx.to_string()], "ethereumjs never gets its own transaction back");

    // b passes them on: a already has them, so nothing is echoed; a new one goes through,
    // and it is the first thing a hears from b.
    let newer = MemoryChain::builder().blocks(0).pooled_transactions(2).build().tx_pool();
    let new_tx = newer.hashes().into_iter().find(|h| *h != own_tx).unwrap();
    b.broadcast_transactions(txs).await.unwrap();
    pool_b.insert(newer.get(&new_tx).unwrap());
    b.broadcast_transactions(vec![newer.get(&new_tx).unwrap()]).await.unwrap();
    let first = next_from(&mut heard_a, b.peer_id(), tx_hashes).await;
    assert_eq!(first, vec![new_tx], "the echo was cut; only the new transaction arrived");
    assert!(pool_b.contains(&own_tx) && pool_b.contains(&ejs_tx[0]));

    // Fetched on demand: a asks b for the transaction b announced to it.
    let fetched = a.get_pooled_transactions(b.peer_id(), vec![new_tx]).await.expect("b serves its pool");
    assert_eq!(fetched.iter().map(|t| *t.hash()).collect::<Vec<_>>(), vec![new_tx]);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_head_moves_the_record_fork_id_and_sends_block_range_updates() {
    let spec = ChainSpec::mainnet();
    let chain = Arc::new(MemoryChain::builder().blocks(0).build());
    let mut v4 = Discv4Config::builder();
    v4.listen_addr(SocketAddr::from(([127, 0, 0, 1], 0))).netrestrict(NetRestrict::loopback());
    let node = NodeBuilder::new(eth_config(&chain), chain.clone())
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .discovery(DiscoveryConfig::new(Some(v4.build().unwrap()), None))
        .start()
        .await
        .unwrap();
    let record = node.discovery().unwrap().local_enr().clone();
    let (seq, fork) = (record.record().seq(), record.content().fork_id);
    assert_eq!(fork, Some(spec.fork_id(0, 0)));

    // An eth/69 peer of ours, at the genesis too.
    let rlpx = RlpxConfig::builder().protocol(Protocol::eth(69)).build().unwrap();
    let session = dial(&node.enode(), &NodeKey::generate(), &rlpx).await.unwrap();
    let eth = EthSession::handshake(session, eth_config(&chain)).await.unwrap();
    let (_peer, service, mut events) = eth.into_peer(chain.clone());
    tokio::spawn(service.run());
    let admitted = poll_until(WAIT, Duration::from_millis(20), || {
        let node = node.clone();
        async move { node.peers().await.map(|p| p.len() == 1).unwrap_or(false) }
    })
    .await;
    assert!(admitted, "the node admitted our eth/69 peer");

    // Homestead (block 1,150,000): the fork id changes, once; the record follows with one
    // sequence bump; the eth/69 peer hears the new range.
    let (number, hash) = (1_150_000, B256::repeat_byte(0x11));
    node.set_head(number, hash, 1_457_981_393).await.unwrap();
    let range = tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await.expect("session open") {
                EthEvent::Announcement(EthMessage::BlockRangeUpdate(r)) => return r,
                _ => continue,
            }
        }
    })
    .await
    .expect("a BlockRangeUpdate");
    assert_eq!((range.earliest, range.latest, range.latest_hash), (0, number, hash));
    assert_eq!(record.content().fork_id, Some(spec.fork_id(number, 1_457_981_393)));
    assert_ne!(record.content().fork_id, fork);
    assert_eq!(record.record().seq(), seq + 1, "one sequence bump");

    // A session started now gets the new head in Status.
    let session = dial(&node.enode(), &NodeKey::generate(), &rlpx).await.unwrap();
    let eth = EthSession::handshake(session, eth_config(&chain)).await.expect("our past fork id is accepted");
    assert_eq!(eth.remote_status().head, StatusHead::Range(range));
    node.shutdown().await;
}
