//! The crawler against the third-party ethereumjs peer: `crawler --probe <its enode>` (the
//! library call behind it, and the JSON it prints), and a discv4 crawl seeded with it.

use std::{sync::Arc, time::Duration};

use ethp2p::discovery::CandidateSource;
use ethp2p::{
    crawl::{probe, CrawlConfig, Crawler, ProbeConfig},
    discovery::v4::{Discv4, Discv4Config},
    record::{ChainSpec, LocalEnr},
    Candidate, NetRestrict, NodeKey,
};
use tokio::net::UdpSocket;

use crate::ejs::EjsPeer;

const WAIT: Duration = Duration::from_secs(30);

/// The mainnet genesis hash, which the peer's `--chain mainnet` (its default) announces.
const MAINNET_GENESIS: &str = "0xd4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3";

// What `crawler --probe <enode>` prints for the ethereumjs peer: its client id, its
// capabilities and its eth Status, as one JSON object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_names_the_ejs_client_and_its_status() {
    let peer = EjsPeer::spawn(&["--no-discv4"]);
    let result = probe(&peer.enode(), &NodeKey::generate(), &ProbeConfig::with_timeout(WAIT)).await;
    let json = serde_json::to_value(&result).unwrap();
    eprintln!("crawler --probe: {json}");
    assert_eq!(result.error, None, "{json}");
    let hello = result.hello.as_ref().expect("Hello recorded");
    assert_eq!(hello.client_id, "ethereumjs-devp2p/interop");
    for cap in ["eth/66", "eth/67", "eth/68"] {
        assert!(hello.capabilities.iter().any(|c| c == cap), "{cap} missing from {:?}", hello.capabilities);
    }
    assert_eq!(hello.eth_version(), Some(68));
    let status = result.status.as_ref().expect("eth Status recorded");
    assert_eq!(status.version, 68);
    assert_eq!(status.network_id, 1);
    assert_eq!(status.genesis.to_string(), MAINNET_GENESIS);
    // Frontier's fork id: the peer serves 32 frontier blocks on the real genesis.
    let frontier = ChainSpec::mainnet().fork_id(32, 0);
    assert_eq!(status.fork_id, frontier);
    assert_eq!(format!("{}", status.fork_id.hash), "0xfc64ec04");
    // The printed object carries the same facts under stable names.
    assert_eq!(json["hello"]["client_id"], "ethereumjs-devp2p/interop");
    assert_eq!(json["status"]["network_id"], 1);
    // We left politely: it saw our Disconnect (DisconnectRequested, 0x00).
    let removed = peer.wait_event_async("peer-removed", |_| true, WAIT).await;
    assert_eq!(removed["byUs"], false, "{removed}");
    assert_eq!(removed["reason"], 0, "{removed}");
}

// A discv4 crawl seeded with the ethereumjs peer: it answers FINDNODE, so the crawler counts
// it as answering, and the probe records its client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discv4_crawl_of_the_ejs_peer() {
    let peer = EjsPeer::spawn(&[]);
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let key = NodeKey::generate();
    let local = LocalEnr::builder(&key).udp_socket(socket.local_addr().unwrap()).build().unwrap();
    let v4 = Discv4Config::builder().netrestrict(NetRestrict::loopback()).build().unwrap();
    let (discv4, candidates) = Discv4::spawn_on_socket(Arc::new(socket), v4, local).unwrap();
    let config = CrawlConfig::builder()
        .workers(8)
        .idle(Duration::from_secs(3))
        .duration(Duration::from_secs(60))
        .probe(Some(ProbeConfig::with_timeout(Duration::from_secs(10))))
        .build()
        .unwrap();
    let seed = Candidate::from_enode(&peer.enode(), CandidateSource::Bootnode);
    let crawler = Crawler::new(config, key).discv4(discv4.clone(), candidates).seeds([seed]);
    let progress = crawler.progress();
    let state = crawler.run(std::future::pending()).await.expect("crawl runs");
    discv4.shutdown().await;
    let ejs = peer.enode().peer_id;
    let node = state.nodes().find(|n| n.peer_id == ejs).expect("the ethereumjs peer is in the crawl");
    eprintln!("crawled ethereumjs: {node:?}");
    assert!(progress.answered() >= 1, "the peer answered FINDNODE");
    assert!(node.score > 0, "an answering node scores above zero: {node:?}");
    let probe = node.probe.as_ref().expect("probed");
    assert_eq!(probe.hello.as_ref().map(|h| h.client_id.as_str()), Some("ethereumjs-devp2p/interop"));
    peer.wait_event_async("discv4-recv", |v| v["type"] == "findnode", WAIT).await;
}
