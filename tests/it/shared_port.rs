//! discv4 and discv5 on one UDP port (issue: "One UDP port for both"): a node running both
//! through `Discovery` is found by a discv4-only node and by a discv5-only node that were
//! given the same address, and it finds both of them. discv5 reads the port and hands what
//! it cannot decode to discv4 (`src/discovery/shared.rs`).

use std::{net::SocketAddr, time::Duration};

use ethp2p::discovery::Discv5;
use ethp2p::{
    discovery::{
        v4::{Discv4, Discv4Config},
        Discovery, DiscoveryConfig,
    },
    test_utils::{key_from_seed, poll_until, test_discv5_config},
    Enode, LocalEnr, NetRestrict,
};

fn loopback_v4(bootnodes: Vec<Enode>) -> Discv4Config {
    let mut builder = Discv4Config::builder();
    builder
        .listen_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .netrestrict(NetRestrict::loopback())
        .bootnodes(bootnodes);
    builder.build().expect("valid config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discv4_and_discv5_share_one_port() {
    let hub_key = key_from_seed(9_001);
    let hub_local = LocalEnr::builder(&hub_key).ip4([127, 0, 0, 1].into()).build().unwrap();
    let (hub, _hub_candidates) = Discovery::start(
        hub_local.clone(),
        DiscoveryConfig::new(Some(loopback_v4(Vec::new())), Some(test_discv5_config())),
    )
    .await
    .unwrap();
    let port = hub.local_addr().port();
    assert_ne!(port, 0);
    let hub_enr = hub.local_enr().record();
    assert_eq!(hub_enr.udp4(), Some(port), "the record advertises the shared port");
    let hub_enode = Enode::new(hub_key.peer_id(), hub.local_addr());

    // A discv5-only node bootstrapping from the hub's record (same port).
    let v5_key = key_from_seed(9_002);
    let v5_local = LocalEnr::builder(&v5_key).ip4([127, 0, 0, 1].into()).build().unwrap();
    let mut v5_config = test_discv5_config();
    v5_config.bootnodes = vec![hub_enr.clone()];
    let (v5_node, _v5_candidates) = Discv5::start(v5_local, v5_config).await.unwrap();

    // A discv4-only node bootstrapping from the hub's enode (same port).
    let v4_key = key_from_seed(9_003);
    let v4_local = LocalEnr::builder(&v4_key).ip4([127, 0, 0, 1].into()).build().unwrap();
    let (v4_node, _v4_candidates) = Discv4::spawn(loopback_v4(vec![hub_enode]), v4_local).await.unwrap();

    let v5_id = v5_key.node_id();
    let v4_peer = v4_key.peer_id();
    let hub_v5 = hub.v5().unwrap().clone();
    let hub_v4 = hub.v4().unwrap().clone();
    let found = poll_until(Duration::from_secs(30), Duration::from_millis(100), || {
        let (hub_v5, hub_v4, v5_node, v4_node) =
            (hub_v5.clone(), hub_v4.clone(), v5_node.clone(), v4_node.clone());
        async move {
            let hub_knows_v5 = hub_v5
                .table_entries()
                .await
                .map(|t| t.iter().any(|e| e.node_id().raw() == v5_id.0))
                .unwrap_or(false);
            let hub_knows_v4 =
                hub_v4.table().await.map(|t| t.iter().any(|n| n.id == v4_peer)).unwrap_or(false);
            let v5_knows_hub = v5_node.table_entries().await.map(|t| !t.is_empty()).unwrap_or(false);
            let v4_knows_hub = v4_node.table().await.map(|t| !t.is_empty()).unwrap_or(false);
            hub_knows_v5 && hub_knows_v4 && v5_knows_hub && v4_knows_hub
        }
    })
    .await;
    let stats = hub.stats().await.unwrap();
    assert!(found, "both protocols must work on the one port; hub stats: {stats:?}");
    // discv5 reads the port: the discv4 packets it could not decode reached discv4, and
    // no discv5 packet was mistaken for garbage on the way.
    let v4_stats = stats.v4.as_ref().unwrap();
    let v5_stats = stats.v5.as_ref().unwrap();
    assert!(v5_stats.unrecognized > 0, "discv4 datagrams passed through discv5 to discv4: {v5_stats:?}");
    assert_eq!(v5_stats.unrecognized_dropped, 0, "none lost on a quiet machine: {v5_stats:?}");
    assert!(v4_stats.packets_in > 0, "discv4 packets handled: {v4_stats:?}");
    assert_eq!(v4_stats.foreign, 0, "every datagram discv4 got was discv4: {v4_stats:?}");
    assert_eq!(stats.packets_in, v4_stats.datagrams_in());

    v4_node.shutdown().await;
    v5_node.shutdown().await;
    hub.shutdown().await;
}

#[tokio::test]
async fn nothing_to_run_is_an_error() {
    let key = key_from_seed(9_004);
    let local = LocalEnr::builder(&key).build().unwrap();
    let err = Discovery::start(local, DiscoveryConfig::default()).await.unwrap_err();
    assert!(matches!(err, ethp2p::discovery::DiscoveryError::NothingToRun), "{err}");
}
