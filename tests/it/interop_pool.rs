//! The pool with the third-party ethereumjs peer (issue 6): a [`Node`] holds one session we
//! dialed (the peer given as a bootnode) and one the peer dialed, routes `GetBlockHeaders`,
//! `GetBlockBodies` and `GetReceipts` to both, gets answers that pass validation, and keeps
//! both sessions across every request.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use alloy_consensus::{Header, Sealed};
use alloy_eips::BlockHashOrNumber;
use ethp2p::{
    eth::{GetBlockHeaders, MemoryChain},
    node::{Node, NodeBuilder},
    pool::{Direction, PeerSnapshot},
    record::MAINNET_GENESIS_HASH,
    test_utils::poll_until,
    Enode, EthVersion, PeerId,
};

use crate::{ejs::EjsPeer, eth::eth_config};

/// Generous: two Node.js processes and our node on two busy cores.
const WAIT: Duration = Duration::from_secs(30);
/// Rounds of two concurrent requests of each kind.
const ROUNDS: usize = 4;
/// The ethereumjs peer's mainnet-style chain has the genesis plus 32 blocks (peer.mjs
/// default `--blocks 32`).
const EJS_HEAD: u64 = 32;

/// Headers numbered `first, first ± 1, …` (by `reverse`), each the parent (or child) of the
/// next, as a request for consecutive headers must return.
fn assert_linked(headers: &[Sealed<Header>], first: u64, reverse: bool) {
    for (i, h) in headers.iter().enumerate() {
        let want = if reverse { first - i as u64 } else { first + i as u64 };
        assert_eq!(h.number, want, "header {i}");
        assert_eq!(h.hash(), h.inner().hash_slow(), "sealed with its own hash");
    }
    for pair in headers.windows(2) {
        let (older, newer) = if reverse { (&pair[1], &pair[0]) } else { (&pair[0], &pair[1]) };
        assert_eq!(newer.parent_hash, older.hash(), "headers {} and {} link", older.number, newer.number);
    }
}

/// Our two sessions, by direction, with the peers they must be.
async fn sessions(node: &Node, dialed: PeerId, dialer: PeerId) -> Vec<PeerSnapshot> {
    let mut peers = node.peers().await.expect("node running");
    peers.sort_by_key(|p| p.direction == Direction::Inbound);
    let got: Vec<_> = peers.iter().map(|p| (p.peer_id, p.direction)).collect();
    assert_eq!(
        got,
        [(dialed, Direction::Outbound), (dialer, Direction::Inbound)],
        "one session each way with the ethereumjs peers"
    );
    for p in &peers {
        let client = p.client_id.as_deref().unwrap_or_default();
        assert!(client.starts_with("ethereumjs-devp2p"), "Hello client id {client:?}");
        assert_eq!(p.eth_version, Some(EthVersion::Eth68), "the highest version both speak");
    }
    peers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_routes_requests_to_ethereumjs_both_directions() {
    // Our chain is the ethereumjs chain's genesis (mainnet): same Status, fork id fc64ec04.
    let chain = Arc::new(MemoryChain::builder().blocks(0).build());
    assert_eq!(chain.hash(0), Some(MAINNET_GENESIS_HASH));
    // One peer listens and is our bootnode: we dial it.
    let listener = EjsPeer::spawn(&["--no-discv4"]);
    let node = NodeBuilder::new(eth_config(&chain), chain.clone())
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .bootnodes([listener.enode()])
        .tick_interval(Duration::from_millis(100))
        .start()
        .await
        .expect("node starts");
    // The other one dials us.
    let ours = Enode::new(node.peer_id(), node.local_addr()).to_string();
    let dialer = EjsPeer::spawn(&["--no-discv4", "--dial", &ours]);
    let (dialed_id, dialer_id) = (listener.enode().peer_id, dialer.enode().peer_id);

    let both = poll_until(WAIT, Duration::from_millis(50), || {
        let node = node.clone();
        async move { node.peers().await.map(|p| p.len() == 2).unwrap_or(false) }
    })
    .await;
    assert!(
        both,
        "sessions with both ethereumjs peers; ours: {:?}; listener events: {:#?}; dialer events: {:#?}",
        node.peers().await,
        listener.events(),
        dialer.events()
    );
    let before = sessions(&node, dialed_id, dialer_id).await;

    let genesis = GetBlockHeaders { origin: 0u64.into(), count: 16, skip: 0, reverse: false };
    let mut served_by = Vec::new();
    for round in 0..ROUNDS {
        // Two requests at once: the pool hands each to the peer with fewer in flight, so
        // both sessions carry traffic.
        let from_top = GetBlockHeaders {
            origin: BlockHashOrNumber::Number(EJS_HEAD - round as u64),
            count: 8,
            skip: 0,
            reverse: true,
        };
        let (a, b) = tokio::join!(node.get_block_headers(genesis), node.get_block_headers(from_top));
        let (peer_a, headers) = a.expect("headers from genesis");
        assert_eq!(headers.len(), 16);
        assert_eq!(headers[0].hash(), MAINNET_GENESIS_HASH, "the real mainnet genesis");
        assert_linked(&headers, 0, false);
        let (peer_b, top) = b.expect("headers towards genesis");
        assert_eq!(top.len(), 8);
        assert_linked(&top, EJS_HEAD - round as u64, true);
        // The same blocks, asked by hash from the other end, are the same headers.
        let by_hash =
            GetBlockHeaders { origin: headers[15].hash().into(), count: 1, skip: 0, reverse: false };
        let (_, again) = node.get_block_headers(by_hash).await.expect("header by hash");
        assert_eq!(again[0].hash(), headers[15].hash());

        let (bodies, receipts) =
            tokio::join!(node.get_block_bodies(headers.clone()), node.get_receipts(top.clone()));
        let (peer_c, bodies) = bodies.expect("bodies matching the headers' roots");
        assert_eq!(bodies.len(), 16);
        let (peer_d, receipts) = receipts.expect("receipts matching the headers' roots");
        assert_eq!(receipts.len(), 8);
        served_by.extend([peer_a, peer_b, peer_c, peer_d]);

        // Both sessions are still the ones we started with.
        let now = sessions(&node, dialed_id, dialer_id).await;
        for (b, n) in before.iter().zip(&now) {
            assert!(n.connected_for > b.connected_for, "session {:?} was not replaced", n.peer_id);
        }
    }
    assert!(served_by.iter().all(|p| *p == dialed_id || *p == dialer_id));
    assert!(
        served_by.contains(&dialed_id) && served_by.contains(&dialer_id),
        "requests routed to both sessions: {served_by:?}"
    );
    // The ethereumjs side agrees: it served us on both sessions and dropped neither.
    for peer in [&listener, &dialer] {
        peer.wait_event_async("eth-serve", |_| true, WAIT).await;
        let removed: Vec<_> = peer.events().into_iter().filter(|e| e["ev"] == "peer-removed").collect();
        assert!(removed.is_empty(), "ethereumjs dropped a session: {removed:?}");
    }
    let stats = node.stats().await.unwrap();
    assert_eq!((stats.inbound, stats.outbound), (1, 1));
    node.shutdown().await;
    listener.wait_event_async("peer-removed", |_| true, WAIT).await;
}
