//! One call starts everything (issue 6): nodes built with `NodeBuilder::discovery` run
//! discv4 and discv5 on one UDP port and fill their pools from it, with no candidate fed
//! by hand.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use ethp2p::{
    discovery::{v4::Discv4Config, DiscoveryConfig},
    eth::{EthConfig, MemoryChain},
    node::{Node, NodeBuilder},
    record::ChainSpec,
    test_utils::{key_from_seed, poll_until, test_discv5_config},
    Enode, Enr, NetRestrict,
};

/// Generous: six nodes with two discovery protocols each, on two busy cores.
const DEADLINE: Duration = Duration::from_secs(90);
const NODES: u8 = 6;
/// Peers every node must reach: more than its bootstrap node alone can give.
const WANT_PEERS: usize = 3;

fn eth_config(chain: &MemoryChain) -> EthConfig {
    let spec = ChainSpec::mainnet();
    let head = chain.header(chain.head_number()).unwrap();
    EthConfig::builder(chain.status_info_for(&spec), spec.fork_filter(head.number, head.timestamp))
        .build()
        .unwrap()
}

/// discv4 and discv5 on one loopback port, restricted to loopback, bootstrapping from
/// `boot` (its enode for discv4, its record for discv5).
fn discovery(ip: [u8; 4], boot: Option<(Enode, Enr)>) -> DiscoveryConfig {
    let listen = SocketAddr::from((ip, 0));
    let mut v4 = Discv4Config::builder();
    v4.listen_addr(listen).netrestrict(NetRestrict::loopback()).lookup_interval(Duration::from_secs(1));
    let mut v5 = test_discv5_config();
    v5.listen = listen;
    if let Some((enode, enr)) = boot {
        v4.bootnodes(vec![enode]);
        v5.bootnodes = vec![enr];
    }
    DiscoveryConfig::new(Some(v4.build().unwrap()), Some(v5))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_with_discovery_find_and_connect_to_each_other() {
    let chain = Arc::new(MemoryChain::builder().blocks(2).build());
    let eth = eth_config(&chain);
    let mut nodes: Vec<Node> = Vec::new();
    let mut boot = None;
    for i in 0..NODES {
        // One IP per node (all of 127.0.0.0/8 answers): no subnet or per-IP limit of the
        // table or the pool applies between them.
        let ip = [127, i + 1, 0, 1];
        let node = NodeBuilder::new(eth.clone(), chain.clone())
            .key(key_from_seed(12_000 + u64::from(i)))
            .listen(SocketAddr::from((ip, 0)))
            .seed(u64::from(i))
            .discovery(discovery(ip, boot.clone()))
            .start()
            .await
            .unwrap();
        let disc = node.discovery().expect("started with discovery");
        let record = disc.local_enr().record();
        assert_eq!(record.tcp4(), Some(node.local_addr().port()), "record carries the RLPx port");
        assert_eq!(record.udp4(), Some(disc.local_addr().port()), "record carries the UDP port");
        assert_eq!(record.ip4(), Some(ip.into()));
        assert_eq!(
            disc.local_enr().content().fork_id,
            Some(eth.status.fork_id),
            "record carries our fork id"
        );
        if boot.is_none() {
            let enode = Enode {
                peer_id: node.peer_id(),
                ip: ip.into(),
                tcp_port: node.local_addr().port(),
                udp_port: disc.local_addr().port(),
            };
            boot = Some((enode, record));
        }
        nodes.push(node);
    }

    let connected = poll_until(DEADLINE, Duration::from_millis(200), || {
        let nodes = nodes.clone();
        async move {
            for node in &nodes {
                if node.peers().await.map(|p| p.len()).unwrap_or(0) < WANT_PEERS {
                    return false;
                }
            }
            true
        }
    })
    .await;
    let mut counts = Vec::new();
    for node in &nodes {
        let stats = node.discovery().unwrap().stats().await.unwrap();
        counts.push((node.peers().await.unwrap().len(), stats.table_size));
    }
    assert!(
        connected,
        "every node reaches {WANT_PEERS} peers through discovery; (peers, table) per node: {counts:?}"
    );

    for node in &nodes {
        node.shutdown().await;
    }
    assert!(nodes[0].discovery().unwrap().stats().await.is_err(), "shutdown stops discovery");
}
