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
    time::{Duration, Instant},
};

use ethp2p::{
    discovery::lan::{LanConfig, LanDiscovery, LanInterfaces},
    record::Enr,
    CandidateSource, NodeKey,
};
use tokio::sync::mpsc;

const IN_NETNS: &str = "ETHP2P_LAN_TEST_NETNS";
const TEST_NAME: &str = "lan::two_nodes_find_each_other";

#[test]
fn two_nodes_find_each_other() {
    if std::env::var_os(IN_NETNS).is_none() {
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
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
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
        return;
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(in_namespace());
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
