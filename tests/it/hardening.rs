//! Attacks of issue 16 replayed over real sockets on loopback, with the loopback
//! exemptions of the pool's per-IP rules switched off (`PoolConfig::limit_lan`), as a
//! public node meets them.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use ethp2p::{
    eth::{EthError, EthSession, MemoryChain},
    node::{Node, NodeBuilder},
    pool::PoolConfig,
    rlpx::{dial, Protocol, RlpxConfig},
    test_utils::poll_until,
    NodeKey,
};

use crate::eth::eth_config;

/// A peer on another chain (another genesis) dials, is refused at `Status`, and dials
/// again at once: the second connection is closed before any handshake work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_chain_peer_is_not_handshaken_again() {
    let ours = Arc::new(MemoryChain::builder().blocks(2).build());
    let pool = PoolConfig::builder()
        .limit_lan(true)
        .inbound_throttle(Duration::from_millis(50)) // only the new rule is under test
        .build()
        .unwrap();
    let node: Node = NodeBuilder::new(eth_config(&ours), ours.clone())
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .pool(pool)
        .start()
        .await
        .unwrap();
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
