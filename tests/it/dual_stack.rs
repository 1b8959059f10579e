//! Dual stack (issue 17): discv4 and discv5 on one port number in IPv4 and IPv6 at once, one
//! socket per family (`src/discovery/shared.rs`, "Dual stack"). A dual-stack hub on
//! `127.0.0.1` and `::1` serves an IPv4-only node and an IPv6-only node, each of which was
//! given only the hub's address of its own family, and each learns of the other through it.
//!
//! A single-family node cannot talk to a node of the other family, so "learns of" means:
//! over discv5, the other's record comes out of its candidate stream (discv5 reports every
//! record a lookup returns); over discv4, whose candidates are only nodes that proved their
//! endpoint to us, the hub's NEIGHBOURS answer to a node of one family carries the node of
//! the other family, with its address.
//!
//! These tests need `::1`: where the host has no IPv6 loopback they fail at the first bind,
//! loudly, rather than skip.

use std::{
    net::{IpAddr, Ipv6Addr, SocketAddr},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use ethp2p::{
    discovery::{
        v4::{
            proto::{self, Endpoint, FindNode, Message, NodeRecord, Ping, Pong},
            Discv4Config,
        },
        Discovery, DiscoveryCandidates, DiscoveryConfig, Discv5, Discv5Config,
    },
    test_utils::{key_from_seed, poll_until},
    Enode, LocalEnr, NetRestrict, NodeKey, PeerId,
};
use tokio::{net::UdpSocket, time::timeout};

const V4_LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
const V6_LOOPBACK: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

fn v4_config(listen: IpAddr, bootnodes: Vec<Enode>) -> Discv4Config {
    let mut builder = Discv4Config::builder();
    builder.listen_addr(SocketAddr::new(listen, 0)).netrestrict(NetRestrict::loopback()).bootnodes(bootnodes);
    builder.build().expect("valid config")
}

fn v5_config(listen: IpAddr, bootnodes: Vec<ethp2p::Enr>) -> Discv5Config {
    let mut builder = Discv5Config::builder();
    builder
        .listen(SocketAddr::new(listen, 0))
        .netrestrict(NetRestrict::loopback())
        .bootnodes(bootnodes)
        .bootstrap(40, Duration::from_millis(250))
        .lookup_interval(Duration::from_secs(1));
    builder.build().expect("valid config")
}

/// A hub on `127.0.0.1:0` and `[::1]:0`, running discv4 and, when `v5`, discv5.
async fn hub(seed: u64, v5: bool) -> (Discovery, DiscoveryCandidates, NodeKey) {
    let key = key_from_seed(seed);
    let local = LocalEnr::builder(&key).ip4([127, 0, 0, 1].into()).build().unwrap();
    let mut config = DiscoveryConfig::new(
        Some(v4_config(V4_LOOPBACK, Vec::new())),
        v5.then(|| v5_config(V4_LOOPBACK, Vec::new())),
    );
    config.dual_stack = Some(SocketAddr::new(V6_LOOPBACK, 0));
    let (hub, candidates) = Discovery::start(local, config).await.expect("the hub binds 127.0.0.1 and ::1");
    (hub, candidates, key)
}

fn expiration() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 20
}

fn endpoint(addr: SocketAddr) -> Endpoint {
    Endpoint { ip: addr.ip(), udp_port: addr.port(), tcp_port: 0 }
}

/// The next discv4 packet on `socket` that `pick` accepts, with its source address.
async fn next_packet<T>(
    socket: &UdpSocket,
    mut pick: impl FnMut(&proto::Packet) -> Option<T>,
) -> Option<(T, SocketAddr)> {
    let mut buf = vec![0u8; 1280];
    timeout(Duration::from_secs(10), async {
        loop {
            let (n, from) = socket.recv_from(&mut buf).await.expect("recv");
            if let Some(found) = proto::decode(&buf[..n]).ok().as_ref().and_then(&mut pick) {
                return (found, from);
            }
        }
    })
    .await
    .ok()
}

/// A raw discv4 client at `socket` bonds with `hub` (PING, then the PONG to the hub's PING).
/// Returns the source of the hub's PONG and the `from` endpoint of the hub's PING.
async fn bond(socket: &UdpSocket, key: &NodeKey, hub: SocketAddr) -> (SocketAddr, Endpoint) {
    let local = socket.local_addr().unwrap();
    let ping = Message::Ping(Ping {
        from: endpoint(local),
        to: endpoint(hub),
        expiration: expiration(),
        enr_seq: None,
    });
    let (bytes, ping_hash) = proto::encode(&ping, key.secret());
    socket.send_to(&bytes, hub).await.unwrap();
    let (mut pong_from, mut hub_ping) = (None, None);
    let mut buf = vec![0u8; 1280];
    let bonded = timeout(Duration::from_secs(10), async {
        while pong_from.is_none() || hub_ping.is_none() {
            let (n, from) = socket.recv_from(&mut buf).await.expect("recv");
            let Ok(packet) = proto::decode(&buf[..n]) else { continue };
            match packet.message {
                Message::Pong(pong) if pong.ping_hash == ping_hash => {
                    assert_eq!(pong.to.ip, local.ip(), "the PONG states where the PING came from");
                    pong_from = Some(from);
                }
                Message::Ping(their) => {
                    let pong = Message::Pong(Pong {
                        to: endpoint(from),
                        ping_hash: packet.hash,
                        expiration: expiration(),
                        enr_seq: None,
                    });
                    socket.send_to(&proto::encode(&pong, key.secret()).0, from).await.unwrap();
                    hub_ping = Some(their.from);
                }
                _ => {}
            }
        }
    })
    .await;
    assert!(
        bonded.is_ok(),
        "{local} could not bond with the hub at {hub}: pong {pong_from:?}, ping {hub_ping:?}"
    );
    (pong_from.unwrap(), hub_ping.unwrap())
}

/// The nodes of the hub's NEIGHBOURS answer to a FINDNODE for `target` from a bonded client.
async fn neighbours(socket: &UdpSocket, key: &NodeKey, hub: SocketAddr, target: PeerId) -> Vec<NodeRecord> {
    let find = Message::FindNode(FindNode { target, expiration: expiration() });
    socket.send_to(&proto::encode(&find, key.secret()).0, hub).await.unwrap();
    let answer = next_packet(socket, |p| match &p.message {
        Message::Neighbours(n) => Some(n.nodes.clone()),
        _ => None,
    })
    .await;
    answer.expect("the hub answers FINDNODE").0
}

/// (2) and (3): the record carries both families with their ports, and a discv4 PING over
/// IPv6 is answered from the IPv6 socket (over IPv4, from the IPv4 one), whether discv4
/// reads the sockets itself or gets its datagrams from discv5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_family_is_answered_from_its_own_socket() {
    for (seed, v5) in [(17_001, false), (17_002, true)] {
        let (hub, _candidates, _) = hub(seed, v5).await;
        let (v4_addr, v6_addr) = (hub.local_addr(), hub.dual_stack_addr().expect("dual stack"));
        assert_eq!((v4_addr.ip(), v6_addr.ip()), (V4_LOOPBACK, V6_LOOPBACK));
        assert_ne!(v6_addr.port(), 0);
        let record = hub.local_enr().record();
        assert_eq!(record.ip4(), Some([127, 0, 0, 1].into()), "v5 {v5}: {record:?}");
        assert_eq!(record.udp4(), Some(v4_addr.port()), "v5 {v5}: {record:?}");
        assert_eq!(record.ip6(), Some(Ipv6Addr::LOCALHOST), "v5 {v5}: {record:?}");
        assert_eq!(record.udp6(), Some(v6_addr.port()), "v5 {v5}: {record:?}");

        let key = key_from_seed(seed + 100);
        let client6 = UdpSocket::bind("[::1]:0").await.expect("this host must have ::1 (ip -6 addr show lo)");
        let (pong_from, hub_ping) = bond(&client6, &key, v6_addr).await;
        assert_eq!(pong_from, v6_addr, "v5 {v5}: the PONG to a ::1 PING comes from the IPv6 socket");
        assert_eq!(
            hub_ping.ip, V6_LOOPBACK,
            "v5 {v5}: the hub's PING to an IPv6 node states its IPv6 address"
        );
        assert_eq!(hub_ping.udp_port, v6_addr.port());

        let client4 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (pong_from, hub_ping) = bond(&client4, &key_from_seed(seed + 200), v4_addr).await;
        assert_eq!(pong_from, v4_addr, "v5 {v5}: the PONG to a 127.0.0.1 PING comes from the IPv4 socket");
        assert_eq!(hub_ping.ip, V4_LOOPBACK);
        hub.shutdown().await;
    }
}

/// (1) over discv4: an IPv4-only and an IPv6-only node bootstrap from the hub's enode of
/// their own family; the hub's table holds both, each at its own family's address, and its
/// NEIGHBOURS to a client of either family carry the node of the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discv4_nodes_of_both_families_meet_at_a_dual_stack_hub() {
    let (hub, _hub_candidates, hub_key) = hub(17_010, true).await;
    let v4_hub = Enode::new(hub_key.peer_id(), hub.local_addr());
    let v6_hub = Enode::new(hub_key.peer_id(), hub.dual_stack_addr().expect("dual stack"));

    let a_key = key_from_seed(17_011);
    let a_local = LocalEnr::builder(&a_key).ip4([127, 0, 0, 1].into()).build().unwrap();
    let (a, mut a_candidates) =
        Discovery::start(a_local, DiscoveryConfig::new(Some(v4_config(V4_LOOPBACK, vec![v4_hub])), None))
            .await
            .unwrap();
    let b_key = key_from_seed(17_012);
    let b_local = LocalEnr::builder(&b_key).ip6(Ipv6Addr::LOCALHOST).build().unwrap();
    let (b, mut b_candidates) =
        Discovery::start(b_local, DiscoveryConfig::new(Some(v4_config(V6_LOOPBACK, vec![v6_hub])), None))
            .await
            .expect("this host must have ::1 (ip -6 addr show lo)");
    let (a_addr, b_addr) = (a.local_addr(), b.local_addr());
    assert!(b_addr.is_ipv6() && a_addr.is_ipv4());

    let hub_v4 = hub.v4().unwrap().clone();
    let (a_peer, b_peer) = (a_key.peer_id(), b_key.peer_id());
    let both = poll_until(Duration::from_secs(30), Duration::from_millis(100), || {
        let hub_v4 = hub_v4.clone();
        async move {
            let table = hub_v4.table().await.unwrap_or_default();
            let at = |peer: PeerId| table.iter().find(|n| n.id == peer).map(|n| n.endpoint.udp_addr());
            at(a_peer) == Some(a_addr) && at(b_peer) == Some(b_addr)
        }
    })
    .await;
    assert!(both, "the hub's table holds A at {a_addr} and B at {b_addr}: {:?}", hub_v4.table().await);
    // Each node found the hub over its own family.
    let hub_seen = |c: Option<ethp2p::Candidate>| c.map(|c| (c.peer_id, c.ip));
    let a_first = timeout(Duration::from_secs(10), a_candidates.recv()).await.ok().flatten();
    assert_eq!(hub_seen(a_first), Some((hub_key.peer_id(), V4_LOOPBACK)));
    let b_first = timeout(Duration::from_secs(10), b_candidates.recv()).await.ok().flatten();
    assert_eq!(hub_seen(b_first), Some((hub_key.peer_id(), V6_LOOPBACK)));

    // An IPv4 client learns of B (at its IPv6 address), an IPv6 client of A.
    let client4 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let key4 = key_from_seed(17_013);
    bond(&client4, &key4, hub.local_addr()).await;
    let found = neighbours(&client4, &key4, hub.local_addr(), b_key.peer_id()).await;
    assert!(
        found.iter().any(|n| n.id == b_key.peer_id() && n.endpoint.udp_addr() == b_addr),
        "IPv4 NEIGHBOURS carry the IPv6 node {b_addr}: {found:?}"
    );
    let client6 = UdpSocket::bind("[::1]:0").await.unwrap();
    let key6 = key_from_seed(17_014);
    let v6_addr = hub.dual_stack_addr().unwrap();
    bond(&client6, &key6, v6_addr).await;
    let found = neighbours(&client6, &key6, v6_addr, a_key.peer_id()).await;
    assert!(
        found.iter().any(|n| n.id == a_key.peer_id() && n.endpoint.udp_addr() == a_addr),
        "IPv6 NEIGHBOURS carry the IPv4 node {a_addr}: {found:?}"
    );

    a.shutdown().await;
    b.shutdown().await;
    hub.shutdown().await;
}

/// Drains `candidates` until the node `id` comes out; returns its advertised IP.
async fn candidate_ip(candidates: &mut ethp2p::discovery::Candidates, id: ethp2p::NodeId) -> Option<IpAddr> {
    timeout(Duration::from_secs(60), async {
        while let Some(c) = candidates.recv().await {
            if c.node_id() == id {
                return Some(c.ip);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

/// (1) over discv5: an IPv4-only and an IPv6-only node bootstrap from the hub's record
/// (which carries both families; each contacts it over its own); each one's candidate stream
/// yields the other's record, at the other's address, from the hub's NODES answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discv5_nodes_of_both_families_find_each_other_through_a_dual_stack_hub() {
    let (hub, _hub_candidates, _) = hub(17_020, true).await;
    let hub_enr = hub.local_enr().record();

    let a_key = key_from_seed(17_021);
    let a_local = LocalEnr::builder(&a_key).build().unwrap();
    let (a, mut a_candidates) =
        Discv5::start(a_local, v5_config(V4_LOOPBACK, vec![hub_enr.clone()])).await.unwrap();
    let b_key = key_from_seed(17_022);
    let b_local = LocalEnr::builder(&b_key).build().unwrap();
    let (b, mut b_candidates) = Discv5::start(b_local, v5_config(V6_LOOPBACK, vec![hub_enr]))
        .await
        .expect("this host must have ::1 (ip -6 addr show lo)");
    let (a_record, b_record) = (a.local_enr().record(), b.local_enr().record());
    assert!(a_record.ip4().is_some() && a_record.ip6().is_none(), "A is IPv4-only: {a_record:?}");
    assert!(b_record.ip6().is_some() && b_record.ip4().is_none(), "B is IPv6-only: {b_record:?}");

    assert_eq!(
        candidate_ip(&mut a_candidates, b_key.node_id()).await,
        Some(V6_LOOPBACK),
        "A found B through the hub; hub stats {:?}",
        hub.stats().await
    );
    assert_eq!(
        candidate_ip(&mut b_candidates, a_key.node_id()).await,
        Some(V4_LOOPBACK),
        "B found A through the hub; hub stats {:?}",
        hub.stats().await
    );
    // The hub's table holds both, and counts one of each family.
    let stats = hub.stats().await.unwrap();
    assert!(stats.table_by_family[0] >= 1 && stats.table_by_family[1] >= 1, "{stats:?}");

    a.shutdown().await;
    b.shutdown().await;
    hub.shutdown().await;
}

const BOOTNODE: &str = env!("CARGO_BIN_EXE_bootnode");

/// Kills the bootnode child when a test ends, whatever its outcome.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `bootnode --addr 127.0.0.1:0 --addr [::1]:0`: the enode line is the IPv4 address, the ENR
/// carries both families with their bound ports, and each family is served on its own
/// socket: a discv4 PONG over IPv6 from the IPv6 address, a discv5 session from an IPv6-only
/// node. One address per family only: two of one family, or three, is a one-line error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootnode_with_one_addr_per_family_serves_both() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let key = "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291";
    for (addrs, needle) in [
        (&["127.0.0.1:0", "127.0.0.2:0"][..], "one IPv4 and one IPv6"),
        (&["127.0.0.1:0", "[::1]:0", "[::1]:0"][..], "at most two"),
    ] {
        let mut command = Command::new(BOOTNODE);
        command.args(["--nodekeyhex", key, "--datadir", dir.path().to_str().unwrap()]);
        for addr in addrs {
            command.args(["--addr", addr]);
        }
        let out = command.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{addrs:?} must fail");
        assert_eq!(err.lines().count(), 1, "one line for {addrs:?}: {err:?}");
        assert!(err.contains(needle), "{addrs:?}: {err:?} should say {needle:?}");
    }

    let mut child = Child(
        Command::new(BOOTNODE)
            .args(["--nodekeyhex", key, "--datadir", dir.path().to_str().unwrap()])
            .args(["--addr", "127.0.0.1:0", "--addr", "[::1]:0", "--netrestrict", "127.0.0.0/8,::1/128"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let enode: Enode = lines.next().unwrap().unwrap().parse().expect("line 1 is the enode URL");
    let enr = ethp2p::record::parse_enr(&lines.next().unwrap().unwrap()).expect("line 2 is the ENR");
    assert_eq!(enode.ip, V4_LOOPBACK, "the enode is the first --addr's");
    assert_eq!((enr.ip4(), enr.udp4()), (Some([127, 0, 0, 1].into()), Some(enode.udp_port)), "{enr:?}");
    assert_eq!(enr.ip6(), Some(Ipv6Addr::LOCALHOST), "{enr:?}");
    let udp6 = enr.udp6().expect("the ENR has udp6");
    let v6_addr = SocketAddr::new(V6_LOOPBACK, udp6);

    let client6 = UdpSocket::bind("[::1]:0").await.expect("this host must have ::1 (ip -6 addr show lo)");
    let (pong_from, hub_ping) = bond(&client6, &key_from_seed(17_031), v6_addr).await;
    assert_eq!(pong_from, v6_addr, "the PONG to a ::1 PING comes from the bootnode's IPv6 socket");
    assert_eq!(hub_ping.ip, V6_LOOPBACK);

    let v6_key = key_from_seed(17_032);
    let (v6_node, _c) =
        Discv5::start(LocalEnr::builder(&v6_key).build().unwrap(), v5_config(V6_LOOPBACK, vec![enr]))
            .await
            .unwrap();
    let session = poll_until(Duration::from_secs(30), Duration::from_millis(100), || {
        let v6_node = v6_node.clone();
        async move { v6_node.stats().await.is_ok_and(|s| s.connected > 0) }
    })
    .await;
    assert!(session, "an IPv6-only discv5 node has a session with the bootnode");

    Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().unwrap();
    let status = child.0.wait().unwrap();
    assert!(status.success(), "clean shutdown on SIGTERM: {status:?}");
    v6_node.shutdown().await;
}

/// The same for a `Node`: RLPx listeners on `127.0.0.1` and `::1` (and discovery on both),
/// the record carrying `tcp`/`udp` and `tcp6`/`udp6`; an IPv4-only node dials it over IPv4,
/// an IPv6-only node over IPv6, and it ends with both as peers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dual_stack_node_takes_peers_of_both_families() {
    use ethp2p::{eth::MemoryChain, node::NodeBuilder, ChainSpec};
    use std::sync::Arc;
    let chain = Arc::new(MemoryChain::builder().blocks(2).build());
    let eth = chain.eth_config_for(&ChainSpec::mainnet()).build().unwrap();
    let mut discovery = DiscoveryConfig::new(
        Some(v4_config(V4_LOOPBACK, Vec::new())),
        Some(v5_config(V4_LOOPBACK, Vec::new())),
    );
    discovery.dual_stack = Some(SocketAddr::new(V6_LOOPBACK, 0));
    let hub = NodeBuilder::new(eth.clone(), chain.clone())
        .key(key_from_seed(17_040))
        .listen(SocketAddr::new(V4_LOOPBACK, 0))
        .listen_dual_stack(SocketAddr::new(V6_LOOPBACK, 0))
        .discovery(discovery)
        .seed(1)
        .start()
        .await
        .expect("this host must have ::1 (ip -6 addr show lo)");
    let (tcp4, tcp6) = (hub.local_addr(), hub.dual_stack_addr().expect("dual stack"));
    assert_eq!((tcp4.ip(), tcp6.ip()), (V4_LOOPBACK, V6_LOOPBACK));
    let disc = hub.discovery().unwrap();
    let udp6 = disc.dual_stack_addr().expect("discovery is dual stack too");
    let record = disc.local_enr().record();
    assert_eq!(
        (record.ip4(), record.tcp4(), record.udp4()),
        (Some([127, 0, 0, 1].into()), Some(tcp4.port()), Some(disc.local_addr().port())),
        "{record:?}"
    );
    assert_eq!(
        (record.ip6(), record.tcp6(), record.udp6()),
        (Some(Ipv6Addr::LOCALHOST), Some(tcp6.port()), Some(udp6.port())),
        "{record:?}"
    );

    let mut peers = Vec::new();
    for (seed, listen, dial) in [(17_041, V4_LOOPBACK, tcp4), (17_042, V6_LOOPBACK, tcp6)] {
        let node = NodeBuilder::new(eth.clone(), chain.clone())
            .key(key_from_seed(seed))
            .listen(SocketAddr::new(listen, 0))
            .seed(seed)
            .start()
            .await
            .unwrap();
        node.add_peer(Enode::new(hub.peer_id(), dial)).await.unwrap();
        peers.push(node);
    }
    let want: Vec<PeerId> = peers.iter().map(|n| n.peer_id()).collect();
    let hub2 = hub.clone();
    let both = poll_until(Duration::from_secs(30), Duration::from_millis(100), || {
        let (hub, want) = (hub2.clone(), want.clone());
        async move {
            let have = hub.peers().await.unwrap_or_default();
            want.iter().all(|id| have.iter().any(|p| p.peer_id == *id))
        }
    })
    .await;
    let have: Vec<_> = hub.peers().await.unwrap().iter().map(|p| (p.peer_id, p.addr)).collect();
    assert!(both, "the hub has the IPv4 and the IPv6 node as peers: {have:?}");
    let families: Vec<bool> =
        want.iter().map(|id| have.iter().find(|(p, _)| p == id).map(|(_, a)| a.is_ipv6()).unwrap()).collect();
    assert_eq!(families, [false, true], "each came over its own family: {have:?}");

    for node in &peers {
        node.shutdown().await;
    }
    hub.shutdown().await;
}

/// The crawler on dual-stack discovery (discv5 on one pair of sockets, discv4 on another,
/// as the crawler example runs them) crawls from a dual-stack hub into both families: it
/// finds an IPv4-only node and an IPv6-only node, over discv4 and over discv5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crawler_crawls_both_families() {
    use ethp2p::{
        crawl::{CrawlConfig, Crawler},
        record::CandidateSource,
        Candidate,
    };
    let (hub, _hub_candidates, hub_key) = hub(17_050, true).await;
    let hub_enr = hub.local_enr().record();
    let mut nodes = Vec::new();
    for (seed, ip, boot) in
        [(17_051, V4_LOOPBACK, hub.local_addr()), (17_052, V6_LOOPBACK, hub.dual_stack_addr().unwrap())]
    {
        let key = key_from_seed(seed);
        let config = DiscoveryConfig::new(
            Some(v4_config(ip, vec![Enode::new(hub_key.peer_id(), boot)])),
            Some(v5_config(ip, vec![hub_enr.clone()])),
        );
        let (node, _candidates) = Discovery::start(LocalEnr::builder(&key).build().unwrap(), config)
            .await
            .expect("this host must have ::1 (ip -6 addr show lo)");
        nodes.push((node, key.node_id()));
    }
    // Both are in the hub's tables before the crawl starts.
    let hub_v4 = hub.v4().unwrap().clone();
    let met = poll_until(Duration::from_secs(30), Duration::from_millis(100), || {
        let hub_v4 = hub_v4.clone();
        async move { hub_v4.table().await.map(|t| t.len() >= 2).unwrap_or(false) }
    })
    .await;
    assert!(met, "the hub met both nodes over discv4");

    let key = key_from_seed(17_053);
    let dual = |v4: Option<Discv4Config>, v5: Option<Discv5Config>| {
        let mut config = DiscoveryConfig::new(v4, v5);
        config.dual_stack = Some(SocketAddr::new(V6_LOOPBACK, 0));
        config
    };
    let local = LocalEnr::builder(&key).build().unwrap();
    let (d5, c5) =
        Discovery::start(local, dual(None, Some(v5_config(V4_LOOPBACK, Vec::new())))).await.unwrap();
    let local = LocalEnr::builder(&key).build().unwrap();
    let (d4, c4) =
        Discovery::start(local, dual(Some(v4_config(V4_LOOPBACK, Vec::new())), None)).await.unwrap();
    let (_, c5) = c5.into_parts();
    let (c4, _) = c4.into_parts();
    let seed = Candidate::from_enr(&hub_enr, CandidateSource::Bootnode).unwrap();
    let mut config = CrawlConfig::builder();
    config.workers(8).idle(Duration::from_secs(2)).duration(Duration::from_secs(60)).probe(None);
    let crawler = Crawler::new(config.build().unwrap(), key)
        .discv5(d5.v5().unwrap().clone(), c5.unwrap())
        .discv4(d4.v4().unwrap().clone(), c4.unwrap())
        .seeds([
            Candidate { source: CandidateSource::Discv5, ..seed.clone() },
            Candidate { source: CandidateSource::Discv4, ..seed },
        ]);
    let state = crawler.run(std::future::pending()).await.expect("crawl runs");
    let found: Vec<_> = state.nodes().map(|n| (n.node_id, n.ip, n.discv4, n.discv5)).collect();
    for (node, id) in &nodes {
        let ip = node.local_addr().ip();
        assert!(
            found.contains(&(*id, ip, true, true)),
            "the crawl found the node at {ip} over both protocols: {found:?}"
        );
    }

    d5.shutdown().await;
    d4.shutdown().await;
    for (node, _) in nodes {
        node.shutdown().await;
    }
    hub.shutdown().await;
}

/// Dual stack means one address of each family: two of one family are refused before
/// anything is bound, by discovery and by the node's listeners.
#[tokio::test]
async fn two_addresses_of_one_family_are_refused() {
    let key = key_from_seed(17_060);
    let mut config = DiscoveryConfig::new(Some(v4_config(V4_LOOPBACK, Vec::new())), None);
    config.dual_stack = Some("127.0.0.2:0".parse().unwrap());
    let err = Discovery::start(LocalEnr::builder(&key).build().unwrap(), config).await.unwrap_err();
    assert!(matches!(err, ethp2p::discovery::DiscoveryError::SameFamily { .. }), "{err}");

    use ethp2p::{eth::MemoryChain, node::NodeBuilder, ChainSpec};
    let chain = std::sync::Arc::new(MemoryChain::builder().blocks(1).build());
    let eth = chain.eth_config_for(&ChainSpec::mainnet()).build().unwrap();
    let err = NodeBuilder::new(eth, chain.clone())
        .listen(SocketAddr::new(V6_LOOPBACK, 0))
        .listen_dual_stack(SocketAddr::new(V6_LOOPBACK, 0))
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, ethp2p::node::NodeError::InvalidConfig(_)), "{err}");
}
