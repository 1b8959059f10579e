//! Crawls a loopback network of our own nodes and checks that the crawler finds them, stores
//! them in SQLite and nodes.json, and names their clients.

use std::{collections::HashSet, time::Duration};

use ethp2p::discovery::CandidateSource;
use ethp2p::{
    crawl::{parse_nodes_json, to_nodes_json, CrawlConfig, Crawler, ProbeConfig, SqliteStore, Summary},
    discovery::{v4::Discv4, Discv5},
    record::NodeId,
    test_utils::{
        crawl::{crawl_net_discv4_config, crawl_net_discv5_config, CrawlNet, NodeProtocols},
        key_from_seed,
    },
    Candidate, NodeKey,
};

/// Nodes in the CI crawl, as the issue asks: a third discv4-only, a third discv5-only, a third
/// both on one port (node 0, the bootnode, among them).
const NODES: usize = 300;
/// Every 4th node advertises a closed TCP port.
const CLOSED_EVERY: usize = 4;

/// The crawler's own discovery: discv5 and discv4 on `127.0.0.1:0`, neither running random
/// lookups of its own (the crawl asks every node directly).
pub(crate) async fn crawler_for(
    net: &CrawlNet,
    key: NodeKey,
    config: CrawlConfig,
) -> (Crawler, Discv5, Discv4) {
    let local = ethp2p::LocalEnr::builder(&key).build().unwrap();
    let (discv5, candidates) = Discv5::start(local, crawl_net_discv5_config()).await.expect("discv5 starts");
    let local = ethp2p::LocalEnr::builder(&key).build().unwrap();
    let (discv4, candidates_v4) =
        Discv4::spawn(crawl_net_discv4_config(), local).await.expect("discv4 starts");
    let boot = Candidate::from_enr(&net.bootnode(), CandidateSource::Bootnode).unwrap();
    let seeds = [
        Candidate { source: CandidateSource::Discv5, ..boot.clone() },
        Candidate { source: CandidateSource::Discv4, ..boot },
    ];
    let crawler = Crawler::new(config, key)
        .discv5(discv5.clone(), candidates)
        .discv4(discv4.clone(), candidates_v4)
        .seeds(seeds);
    (crawler, discv5, discv4)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_finds_the_whole_loopback_network() {
    let net = CrawlNet::builder(NODES).closed_every(CLOSED_EVERY).start().await.expect("network starts");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crawl.db");

    let config = CrawlConfig::builder()
        .workers(128)
        .idle(Duration::from_secs(2))
        .duration(Duration::from_secs(300))
        .probe(Some(ProbeConfig::with_timeout(Duration::from_secs(5))))
        .build()
        .unwrap();
    let (crawler, discv5, discv4) = crawler_for(&net, key_from_seed(9_999), config).await;
    let crawler = crawler.sink(SqliteStore::open(&db).unwrap());
    let progress = crawler.progress();
    let state = crawler.run(std::future::pending()).await.expect("crawl runs");
    discv5.shutdown().await;
    discv4.shutdown().await;
    eprintln!(
        "crawl: found {} answered {} failed {} probed {}",
        progress.found(),
        progress.answered(),
        progress.failed(),
        progress.probed()
    );

    let ours: HashSet<NodeId> = net.nodes().iter().map(|n| n.node_id()).collect();
    let found: HashSet<NodeId> = state.nodes().map(|n| n.node_id).filter(|id| ours.contains(id)).collect();
    assert!(found.len() * 100 >= ours.len() * 99, "found {} of {} nodes", found.len(), ours.len());
    // Nothing that is not ours (the crawler itself never appears as a finding of its own).
    assert_eq!(state.len(), found.len());

    // Every protocol mix was reached: discv4-only nodes only through discv4, discv5-only ones
    // only through discv5.
    for kind in [NodeProtocols::Discv4, NodeProtocols::Discv5, NodeProtocols::Both] {
        let of_kind: Vec<_> = net.nodes().iter().filter(|n| n.protocols == kind).collect();
        let reached = of_kind.iter().filter(|n| found.contains(&n.node_id())).count();
        assert!(reached * 100 >= of_kind.len() * 99, "{kind:?}: {reached} of {}", of_kind.len());
    }
    // Nearly every node answered a discovery request (UDP on a loaded loopback may still lose
    // the odd one after all retries).
    let answered = state.nodes().filter(|n| n.first_response.is_some()).count();
    assert!(answered * 100 >= found.len() * 98, "{answered} of {} answered", found.len());

    // Probes: open ports gave their client id and Status, closed ones an error.
    let summary = Summary::of(state.nodes());
    println!("{summary}");
    let open = net.nodes().iter().filter(|n| n.tcp_open() && found.contains(&n.node_id())).count();
    assert_eq!(summary.probed, found.len());
    assert_eq!(summary.dialable, open);
    for node in net.nodes().iter().filter(|n| found.contains(&n.node_id())) {
        let crawled = state.get(&node.node_id()).unwrap();
        let probe = crawled.probe.as_ref().expect("every found node with a TCP port is probed");
        match node.client_id {
            Some(client_id) => {
                assert_eq!(probe.hello.as_ref().map(|h| h.client_id.as_str()), Some(client_id));
                let status = probe.status.as_ref().expect("eth Status");
                assert_eq!(status.fork_id, net.fork_id());
                assert_eq!(status.network_id, 1);
            }
            None => assert!(probe.hello.is_none() && probe.error.is_some(), "{probe:?}"),
        }
    }
    for name in ["Geth", "reth", "Nethermind"] {
        assert!(summary.by_client.get(name) > 0, "{summary}");
    }
    assert_eq!(summary.by_network.get(&net.fork_id().to_string()), found.len());

    // The SQLite file holds them all, with clients queryable by name.
    let store = SqliteStore::open(&db).unwrap();
    let stored = store.load().unwrap();
    assert_eq!(stored.len(), found.len());
    let geth: i64 = store
        .connection()
        .query_row(
            "SELECT COUNT(*) FROM nodes WHERE client_name = 'Geth' AND status_fork_id IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(geth as usize, summary.by_client.get("Geth"));

    // nodes.json in go-ethereum's format holds them all too.
    let json = to_nodes_json(state.nodes());
    let nodeset = parse_nodes_json(&json).unwrap();
    assert_eq!(nodeset.len(), found.len());
    for id in &found {
        let entry = &nodeset[&hex::encode(id)];
        assert!(entry.record.starts_with("enr:"), "{entry:?}");
    }

    // A rerun from the database continues: it knows every node before asking anyone, and
    // asks them again. It is stopped at its first answer; the 60 s cap is only for a loaded
    // machine, where 300 new discv5 sessions take a while.
    let key = key_from_seed(9_998);
    let local = ethp2p::LocalEnr::builder(&key).build().unwrap();
    let (service, candidates) = Discv5::start(local, crawl_net_discv5_config()).await.unwrap();
    let config = CrawlConfig::builder()
        .idle(Duration::from_secs(1))
        .duration(Duration::from_secs(60))
        .probe(None)
        .build()
        .unwrap();
    let rerun = Crawler::new(config, key).discv5(service.clone(), candidates).restore(stored);
    let progress = rerun.progress();
    let answered = {
        let progress = progress.clone();
        async move {
            while progress.answered() == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let state = rerun.run(answered).await.unwrap();
    service.shutdown().await;
    // It may also find the first crawler, which the network still remembers.
    assert!(found.iter().all(|id| state.get(id).is_some()));
    assert!(progress.answered() > 0);
    net.shutdown().await;
}

/// A node that lies in its answers: its table holds validly signed records of nodes that do
/// not exist (dead UDP ports) and of impostors (other real nodes' addresses under keys that
/// are not theirs). The crawl still finds every real node, records the fakes as found but
/// never answering, and ends on its own (bounded retries), not at its time cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_survives_a_lying_node() {
    const REAL: usize = 20;
    const FAKES: u64 = 48;
    let net = CrawlNet::builder(REAL)
        .first_seed(20_000)
        .mix([NodeProtocols::Discv5])
        .start()
        .await
        .expect("network starts");
    let liar = net.nodes()[0].discv5().expect("the bootnode speaks discv5");
    let mut fakes = HashSet::new();
    for i in 0..FAKES {
        let key = key_from_seed(30_000 + i);
        let (ip, port) = if i % 2 == 0 {
            // Nobody there: a port that was free a moment ago.
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            (std::net::Ipv4Addr::LOCALHOST, socket.local_addr().unwrap().port())
        } else {
            // A real node's address, but not its key.
            let real = net.nodes()[1 + (i as usize % (REAL - 1))].enode();
            let std::net::IpAddr::V4(ip) = real.ip else { unreachable!("loopback IPv4") };
            (ip, real.udp_port)
        };
        let enr = ethp2p::Enr::builder().ip4(ip).udp4(port).tcp4(port).build(&key.to_combined_key()).unwrap();
        fakes.insert(NodeId::from(enr.node_id().raw()));
        // The table takes what fits its buckets; the rest are refused, which is fine.
        let _ = liar.add_enr(enr).await;
    }
    let config = CrawlConfig::builder()
        .workers(64)
        .idle(Duration::from_secs(2))
        .duration(Duration::from_secs(600))
        .probe(None)
        .build()
        .unwrap();
    let (crawler, discv5, discv4) = crawler_for(&net, key_from_seed(29_999), config).await;
    let started = std::time::Instant::now();
    let state = crawler.run(std::future::pending()).await.expect("crawl runs");
    let took = started.elapsed();
    discv5.shutdown().await;
    discv4.shutdown().await;

    let ours: HashSet<NodeId> = net.nodes().iter().map(|n| n.node_id()).collect();
    let found_real = state.nodes().filter(|n| ours.contains(&n.node_id)).count();
    let found_fake: Vec<_> = state.nodes().filter(|n| fakes.contains(&n.node_id)).collect();
    eprintln!(
        "lying node: {found_real} of {REAL} real nodes, {} fakes met, crawl took {took:?}",
        found_fake.len()
    );
    assert_eq!(found_real, REAL, "every real node is found despite the liar");
    assert!(!found_fake.is_empty(), "the liar's records were handed out (else this test shows nothing)");
    for fake in &found_fake {
        assert!(fake.first_response.is_none() && fake.score <= 0, "a fake never answers: {fake:?}");
    }
    // Nothing but real nodes and the liar's fakes.
    assert_eq!(state.len(), found_real + found_fake.len());
    assert!(took < Duration::from_secs(600), "the crawl ended on its own");
    net.shutdown().await;
}

/// Three rounds on a network where nodes leave and come back: node A is up, down, up; node B
/// up, then gone. The `node_sessions` table and the uptime computed from it in SQL match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recurring_rounds_track_uptime_sessions() {
    const NODES: usize = 12;
    let (a, b) = (4, 5);
    let mut net =
        CrawlNet::builder(NODES).first_seed(40_000).closed_every(0).start().await.expect("network starts");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rounds.db");
    let config = CrawlConfig::builder()
        .workers(64)
        .idle(Duration::from_secs(1))
        .duration(Duration::from_secs(120))
        .probe(Some(ProbeConfig::with_timeout(Duration::from_secs(3))))
        .gone_after(2)
        .build()
        .unwrap();
    let (crawler, discv5, discv4) = crawler_for(&net, key_from_seed(49_999), config).await;
    let mut crawler = crawler.sink(SqliteStore::open(&db).unwrap());
    let ours: Vec<NodeId> = net.nodes().iter().map(|n| n.node_id()).collect();
    let up_in = |report: &ethp2p::crawl::RoundReport| -> HashSet<NodeId> {
        report.up.iter().map(|(id, _)| *id).collect()
    };

    let round1 = crawler.round(std::future::pending()).await.expect("round 1");
    assert_eq!(up_in(&round1), ours.iter().copied().collect(), "round 1: everyone up");

    net.stop_node(a).await;
    net.stop_node(b).await;
    let round2 = crawler.round(std::future::pending()).await.expect("round 2");
    let expected: HashSet<NodeId> =
        ours.iter().enumerate().filter(|(i, _)| *i != a && *i != b).map(|(_, id)| *id).collect();
    assert_eq!(up_in(&round2), expected, "round 2: A and B down");

    net.restart_node(a).await.expect("A comes back");
    let round3 = crawler.round(std::future::pending()).await.expect("round 3");
    let expected: HashSet<NodeId> =
        ours.iter().enumerate().filter(|(i, _)| *i != b).map(|(_, id)| *id).collect();
    assert_eq!(up_in(&round3), expected, "round 3: A back, B still down");
    discv5.shutdown().await;
    discv4.shutdown().await;
    drop(crawler);

    let store = SqliteStore::open(&db).unwrap();
    let conn = store.connection();
    let crawls: Vec<(i64, i64)> = conn
        .prepare("SELECT id, up FROM crawls ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(crawls, vec![(1, NODES as i64), (2, NODES as i64 - 2), (3, NODES as i64 - 1)]);
    let sessions = |id: &NodeId| -> Vec<(i64, i64, Option<i64>, i64)> {
        conn.prepare(
            "SELECT first_crawl, last_crawl, ended_crawl, up_rounds FROM node_sessions
             WHERE node_id = ?1 ORDER BY first_crawl",
        )
        .unwrap()
        .query_map([hex::encode(id)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    for (i, id) in ours.iter().enumerate() {
        let expected = match i {
            _ if i == a => vec![(1, 1, Some(2), 1), (3, 3, None, 1)],
            _ if i == b => vec![(1, 1, Some(2), 1)],
            _ => vec![(1, 3, None, 3)],
        };
        assert_eq!(sessions(id), expected, "node {i}");
    }
    // Uptime out of plain SQL: rounds up over rounds since the node was first found.
    let uptime: Vec<(String, f64, i64)> = conn
        .prepare(
            "SELECT n.node_id,
                    100.0 * (SELECT COALESCE(SUM(up_rounds), 0) FROM node_sessions s WHERE s.node_id = n.node_id)
                          / (SELECT COUNT(*) FROM crawls c WHERE c.id >= n.first_crawl),
                    n.gone
             FROM nodes n",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(uptime.len(), NODES);
    for (node_id, percent, gone) in uptime {
        let i = ours.iter().position(|id| hex::encode(id) == node_id).expect("one of ours");
        let (want, want_gone) = match i {
            _ if i == a => (200.0 / 3.0, 0),
            _ if i == b => (100.0 / 3.0, 1),
            _ => (100.0, 0),
        };
        assert!((percent - want).abs() < 1e-9 && gone == want_gone, "node {i}: {percent}% gone={gone}");
    }
    net.shutdown().await;
}

/// The inbound-sighting tests' round: one round of at most a minute, ending 2 s after the
/// last new node, every node probed (3 s timeout).
fn inbound_round_config() -> CrawlConfig {
    CrawlConfig::builder()
        .workers(32)
        .idle(Duration::from_secs(2))
        .duration(Duration::from_secs(60))
        .probe(Some(ProbeConfig::with_timeout(Duration::from_secs(3))))
        .build()
        .unwrap()
}

/// A node that cannot be dialed (it listens nowhere) but dials the crawler is recorded as
/// `seen_inbound` with its Hello and Status, up in that round, and apart from `dialable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_dials_the_crawler_is_seen_inbound() {
    use std::sync::Arc;

    use ethp2p::{
        eth::{EthConfig, EthSession, MemoryChain},
        rlpx::{dial, Protocol, RlpxConfig, RlpxListener},
        ChainSpec, Enode,
    };
    let net = CrawlNet::builder(4).first_seed(60_000).closed_every(0).start().await.expect("network starts");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("inbound.db");
    let config = inbound_round_config();
    let crawler_key = key_from_seed(69_999);
    let probe_rlpx = ProbeConfig::default_rlpx(Duration::from_secs(3));
    let listener = RlpxListener::bind("127.0.0.1:0".parse().unwrap(), crawler_key.clone(), probe_rlpx)
        .await
        .expect("bind loopback");
    let crawler_enode = Enode::new(crawler_key.peer_id(), listener.local_addr());
    let (crawler, discv5, discv4) = crawler_for(&net, crawler_key, config).await;
    let mut crawler = crawler.sink(SqliteStore::open(&db).unwrap()).rlpx_listener(listener);

    // The NAT'd node: no listener anywhere, it only dials out, speaking eth/69.
    let nat_key = key_from_seed(69_000);
    let nat_peer = nat_key.peer_id();
    let dialer = tokio::spawn(async move {
        let spec = ChainSpec::mainnet();
        let chain = Arc::new(MemoryChain::builder().blocks(2).build());
        let eth = EthConfig::builder(chain.status_info_for(&spec), spec.fork_filter(0, 0)).build().unwrap();
        let mut rlpx = RlpxConfig::builder();
        rlpx.client_id("Geth/v1.16.0-natted/linux-amd64/go1.24").protocol(Protocol::eth(69));
        let session = dial(&crawler_enode, &nat_key, &rlpx.build().unwrap()).await.expect("dial the crawler");
        // The crawler echoes our Status, so the eth handshake completes.
        EthSession::handshake(session, eth).await.map(|_| ())
    });
    let round = crawler.round(std::future::pending()).await.expect("a round");
    dialer.await.unwrap().expect("the crawler answered our Status");
    discv5.shutdown().await;
    discv4.shutdown().await;

    let node = crawler.state().get_by_peer(&nat_peer).expect("the dialer is recorded");
    assert!(node.seen_inbound && node.last_inbound.is_some());
    assert!(node.probe.is_none() && node.tcp_port.is_none(), "never dialable: nothing to dial");
    let inbound = node.inbound.as_ref().expect("what it said");
    assert_eq!(
        inbound.hello.as_ref().map(|h| h.client_id.as_str()),
        Some("Geth/v1.16.0-natted/linux-amd64/go1.24")
    );
    assert_eq!(inbound.status.as_ref().map(|s| s.version), Some(69));
    assert!(round.up.iter().any(|(id, _)| *id == node.node_id), "up in the round it dialed");
    // Its client counts in the census, from the Hello it sent us.
    let summary = Summary::of(crawler.state().nodes());
    assert_eq!(summary.known_from_inbound, 1, "{summary}");
    assert_eq!(summary.by_client_version.get("Geth v1.16.0-natted"), 1, "{summary}");
    // The crawled nodes were not inbound; the dialer was not dialable: separate columns.
    let store = SqliteStore::open(&db).unwrap();
    let rows: Vec<(String, bool, Option<bool>, Option<String>)> = store
        .connection()
        .prepare("SELECT node_id, seen_inbound, dialable, inbound_via FROM nodes")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 5);
    for (id, seen_inbound, dialable, via) in rows {
        if id == hex::encode(node.node_id) {
            assert_eq!((seen_inbound, dialable, via.as_deref()), (true, None, Some("rlpx")));
        } else {
            // The crawled nodes may have pinged us on their own (table revalidation), never
            // dialed us.
            assert_eq!(dialable, Some(true), "{id}");
            assert!(!via.unwrap_or_default().contains("rlpx"), "{id}");
        }
    }
    net.shutdown().await;
}

/// Nodes that contact the crawler's discovery ports and that it was told of nowhere (not a
/// seed, in no table it reads), with a closed TCP port: one PINGs it over discv4, one starts
/// a discv5 session with it. Both are recorded as `seen_inbound`, named by protocol, probed,
/// and not dialable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_contact_the_crawlers_discovery_are_seen_inbound() {
    use std::sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    };

    use ethp2p::{discovery::v4::Discv4Config, Enode};
    let net = CrawlNet::builder(4).first_seed(61_000).closed_every(0).start().await.expect("network starts");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("contacts.db");
    let config = inbound_round_config();
    let crawler_key = key_from_seed(61_999);
    let crawler_peer = crawler_key.peer_id();
    let (crawler, discv5, discv4) = crawler_for(&net, crawler_key, config).await;
    let mut crawler = crawler.sink(SqliteStore::open(&db).unwrap());
    let crawler_v4 = Enode::new(crawler_peer, discv4.local_addr());
    let crawler_enr = discv5.local_enr().record();

    // A TCP port nobody listens on: bound, read back, closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let record = |seed: u64| {
        let key = key_from_seed(seed);
        let mut builder = ethp2p::LocalEnr::builder(&key);
        builder.ip4([127, 0, 0, 1].into()).tcp4(closed);
        (key, builder.build().unwrap())
    };
    let (v4_key, v4_local) = record(61_100);
    let v4_config = Discv4Config::builder().listen_addr("127.0.0.1:0".parse().unwrap()).build().unwrap();
    let (pinger, _pinger_candidates) = Discv4::spawn(v4_config, v4_local).await.expect("discv4 starts");
    let (v5_key, v5_local) = record(61_200);
    let (caller, _caller_candidates) =
        Discv5::start(v5_local, crawl_net_discv5_config()).await.expect("discv5 starts");

    // They contact the crawler once its round runs (it listens from then on: a discv5
    // session opened before would not be reported, and is not opened again), and keep at it.
    let done = Arc::new(AtomicBool::new(false));
    let progress = crawler.progress();
    let contacting = {
        let (pinger, caller, done) = (pinger.clone(), caller.clone(), done.clone());
        tokio::spawn(async move {
            while progress.found() == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            while !done.load(Ordering::Relaxed) {
                let _ = pinger.ping(crawler_v4).await;
                let _ = caller.find_node(crawler_enr.clone(), vec![256]).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    crawler.round(std::future::pending()).await.expect("a round");
    done.store(true, Ordering::Relaxed);
    contacting.await.unwrap();
    for (key, via) in [(&v4_key, "discv4"), (&v5_key, "discv5")] {
        let node =
            crawler.state().get_by_peer(&key.peer_id()).unwrap_or_else(|| panic!("{via} contact recorded"));
        assert!(node.seen_inbound && node.last_inbound.is_some(), "{via}");
        assert_eq!(node.inbound_via.to_string(), via);
        assert_eq!(node.tcp_port, Some(closed), "{via}: the port it announced");
        let probe = node.probe.as_ref().unwrap_or_else(|| panic!("{via} contact probed"));
        assert!(probe.hello.is_none(), "{via}: nothing listens on its TCP port");
    }
    let store = SqliteStore::open(&db).unwrap();
    for (key, via) in [(&v4_key, "discv4"), (&v5_key, "discv5")] {
        let id = hex::encode(ethp2p::record::node_id(&key.peer_id()));
        let row: (bool, Option<bool>, Option<String>) = store
            .connection()
            .query_row(
                "SELECT seen_inbound, dialable, inbound_via FROM nodes WHERE node_id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(row, (true, Some(false), Some(via.to_owned())));
    }
    pinger.shutdown().await;
    caller.shutdown().await;
    discv5.shutdown().await;
    discv4.shutdown().await;
    net.shutdown().await;
}
