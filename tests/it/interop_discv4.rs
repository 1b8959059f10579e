//! discv4 interop with the third-party ethereumjs peer, both directions, over loopback UDP.
//!
//! ethereumjs answers FINDNODE without an endpoint proof and knows nothing of EIP-868, so
//! these tests show that we interoperate; strictness is tested against the core itself.

use std::{sync::Arc, time::Duration};

use ethp2p::discovery::CandidateSource;
use ethp2p::discovery::EthEntry;
use ethp2p::{
    discovery::v4::{CandidateStream, Discv4, Discv4Config},
    record::LocalEnr,
    NetRestrict, NodeKey,
};
use tokio::net::UdpSocket;

use crate::ejs::EjsPeer;

const WAIT: Duration = Duration::from_secs(45);

/// A discv4 node of ours on 127.0.0.1 (port 0, read back), restricted to loopback.
async fn our_node(bootnodes: Vec<ethp2p::Enode>) -> (Discv4, CandidateStream) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let key = NodeKey::generate();
    let local = LocalEnr::builder(&key).udp_socket(addr).build().unwrap();
    let config =
        Discv4Config::builder().netrestrict(NetRestrict::loopback()).bootnodes(bootnodes).build().unwrap();
    Discv4::spawn_on_socket(Arc::new(socket), config, local).unwrap()
}

// ethereumjs bootstraps from our node: its PING gets our PONG, and once the endpoint proof
// is complete (our PING, its PONG) its FINDNODE gets NEIGHBOURS naming our other node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejs_bootstraps_from_us() {
    let (boot, _boot_candidates) = our_node(vec![]).await;
    let (other, _other_candidates) = our_node(vec![boot.local_enode()]).await;
    // Wait until `other` is in the bootnode's table, so NEIGHBOURS has something to say.
    let deadline = tokio::time::Instant::now() + WAIT;
    while boot.table().await.unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "our two nodes did not bond");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let boot_enode = boot.local_enode();
    let peer = EjsPeer::spawn(&["--bootnode", &boot_enode.to_string()]);
    let from_boot = format!("127.0.0.1:{}", boot.local_addr().port());
    peer.wait_event_async("discv4-recv", |v| v["type"] == "pong" && v["from"] == from_boot.as_str(), WAIT)
        .await;
    peer.wait_event_async(
        "discv4-recv",
        |v| v["type"] == "neighbors" && v["from"] == from_boot.as_str(),
        WAIT,
    )
    .await;
    // It learned our other node from the NEIGHBOURS and added it after pinging it.
    let other_id = format!("0x{}", hex::encode(other.local_enode().peer_id));
    peer.wait_event_async("discv4-peer-added", |v| v["id"] == other_id.as_str(), WAIT).await;
    let stats = boot.stats().await.unwrap();
    assert!(stats.packets_in > 0 && stats.packets_out > 0);
    // ethereumjs is now in our table too: we verified it with our own PING.
    let table = boot.table().await.unwrap();
    assert!(table.iter().any(|r| r.id == peer.enode().peer_id), "ethereumjs in our table: {table:?}");
    boot.shutdown().await;
    other.shutdown().await;
}

// Our node bootstraps from ethereumjs: we PING it, it answers, it enters our table and our
// self-lookup sends it FINDNODE; it comes out of the candidate stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_bootstrap_from_ejs() {
    let peer = EjsPeer::spawn(&[]);
    let ejs = peer.enode();
    let (ours, mut candidates) = our_node(vec![ejs]).await;
    let candidate =
        tokio::time::timeout(WAIT, candidates.recv()).await.expect("a candidate in time").unwrap();
    assert_eq!(candidate.peer_id, ejs.peer_id);
    assert_eq!(candidate.source, CandidateSource::Discv4);
    assert_eq!(candidate.udp_port, Some(ejs.udp_port));
    // ethereumjs's PONG carries no enr-seq (no EIP-868): its fork id is unknown.
    assert_eq!(candidate.eth, EthEntry::Unknown);
    let our_port = format!("127.0.0.1:{}", ours.local_addr().port());
    peer.wait_event_async("discv4-recv", |v| v["type"] == "findnode" && v["from"] == our_port.as_str(), WAIT)
        .await;
    peer.wait_event_async("discv4-send", |v| v["type"] == "neighbors" && v["to"] == our_port.as_str(), WAIT)
        .await;
    // A lookup through the handle completes and includes ethereumjs among those that answered.
    let closest = ours.lookup(NodeKey::generate().peer_id()).await.unwrap();
    assert!(closest.iter().any(|r| r.id == ejs.peer_id), "{closest:?}");
    ours.shutdown().await;
    assert!(ours.stats().await.is_err(), "stopped after shutdown");
}
