//! LAN discovery (feature `lan`): two nodes announce themselves over mDNS and find each
//! other with no bootnodes.
//!
//! mDNS is multicast, and multicast must not leave this machine: the test re-runs itself
//! inside a new network namespace (`unshare --net`) whose only interface is loopback, with
//! multicast switched on there. It needs `unshare` and `ip` and the right to create a
//! namespace (root, as in CI); without them it fails and says why.

use std::{
    net::Ipv4Addr,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use ethp2p::discovery::CandidateSource;
use ethp2p::{
    discovery::lan::{LanConfig, LanDiscovery, LanInterfaces},
    eth::MemoryChain,
    node::NodeBuilder,
    record::{ChainSpec, Enr},
    test_utils::{key_from_seed, poll_until},
    NodeKey,
};
use tokio::sync::mpsc;

const IN_NETNS: &str = "ETHP2P_LAN_TEST_NETNS";
/// Runs the test `name` again inside a new network namespace whose only interface is
/// loopback (multicast on) and checks that it passed there. Returns true when called
/// inside that namespace: the caller then runs the test's body.
fn in_netns(name: &str) -> bool {
    if std::env::var_os(IN_NETNS).is_some() {
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    let output = Command::new("unshare")
        .args([
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && ip link set lo multicast on && exec \"$0\" \"$@\"",
        ])
        .arg(&exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(IN_NETNS, "1")
        .output()
        .expect("running `unshare` (util-linux) to create a network namespace for the mDNS test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "LAN test in a network namespace failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // The child must have run the test, not filtered it out.
    assert!(stdout.contains("1 passed"), "the namespaced run executed no test:\n{stdout}\n{stderr}");
    false
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
}

#[test]
fn two_nodes_find_each_other() {
    if in_netns("lan::two_nodes_find_each_other") {
        runtime().block_on(in_namespace());
    }
}

/// `NodeBuilder::lan`: two nodes with no bootnode and no other discovery find each other
/// over mDNS and connect.
#[test]
fn two_nodes_connect_over_mdns() {
    if in_netns("lan::two_nodes_connect_over_mdns") {
        runtime().block_on(nodes_in_namespace());
    }
}

async fn nodes_in_namespace() {
    let chain = Arc::new(MemoryChain::builder().blocks(2).build());
    let eth = chain.eth_config_for(&ChainSpec::mainnet()).build().unwrap();
    let mut nodes = Vec::new();
    for seed in [13_400, 13_401] {
        let node = NodeBuilder::new(eth.clone(), chain.clone())
            .key(key_from_seed(seed))
            .listen("127.0.0.1:0".parse().unwrap())
            .lan(LanConfig::default().with_interfaces(LanInterfaces::LoopbackOnly))
            .start()
            .await
            .unwrap();
        nodes.push(node);
    }
    let connected = poll_until(Duration::from_secs(30), Duration::from_millis(50), || {
        let nodes = nodes.clone();
        async move {
            for node in &nodes {
                if node.peers().await.unwrap().len() != 1 {
                    return false;
                }
            }
            true
        }
    })
    .await;
    let mut stats = Vec::new();
    for node in &nodes {
        stats.push(node.stats().await.unwrap());
    }
    assert!(connected, "each node connects to the other through its mDNS announcement: {stats:?}");
    assert_eq!(nodes[0].peers().await.unwrap()[0].peer_id, nodes[1].peer_id());
    for node in &nodes {
        node.shutdown().await;
    }
}

fn record(seed: u8, port: u16) -> Enr {
    let key = NodeKey::from_bytes(&[seed; 32]).unwrap();
    Enr::builder().ip4(Ipv4Addr::LOCALHOST).tcp4(port).udp4(port).build(&key.to_combined_key()).unwrap()
}

async fn in_namespace() {
    let config = LanConfig::default().with_interfaces(LanInterfaces::LoopbackOnly);
    let (a_enr, b_enr) = (record(1, 30303), record(2, 30304));
    let (a_tx, mut a_rx) = mpsc::channel(16);
    let (b_tx, mut b_rx) = mpsc::channel(16);
    let a = LanDiscovery::start(config.clone(), &a_enr, a_tx).unwrap();
    let b = LanDiscovery::start(config, &b_enr, b_tx).unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    for (rx, want, name) in [(&mut a_rx, &b_enr, "a finds b"), (&mut b_rx, &a_enr, "b finds a")] {
        let left = deadline.saturating_duration_since(Instant::now());
        let candidate =
            tokio::time::timeout(left, rx.recv()).await.unwrap_or_else(|_| panic!("{name}: timed out"));
        let candidate = candidate.unwrap_or_else(|| panic!("{name}: channel closed"));
        assert_eq!(candidate.source, CandidateSource::Lan);
        // A node never reports itself; only the other one exists here.
        assert_eq!(candidate.enr.as_ref(), Some(want), "{name}");
        assert_eq!(candidate.udp_port, want.udp4());
    }
    a.shutdown().await;
    b.shutdown().await;
}
