//! Unit tests of the crawl core, nodeset, summary, probe and store.

use std::{net::Ipv4Addr, time::Duration};

#[cfg(feature = "sqlite")]
use super::store;
use super::*;
use crate::{
    discovery::{Candidate, CandidateSource},
    record::{Enode, ForkId, LocalEnr, NodeKey},
    rlpx::{DisconnectReason, Protocol, RlpxConfig, RlpxListener},
};

fn key(seed: u8) -> NodeKey {
    NodeKey::from_bytes(&[seed.max(1); 32]).expect("valid key")
}

fn record(key: &NodeKey, seq: u64, tcp: u16) -> crate::record::Enr {
    LocalEnr::builder(key)
        .ip4(Ipv4Addr::LOCALHOST)
        .udp4(30303)
        .tcp4(tcp)
        .fork_id(ForkId::new([1, 2, 3, 4], 0))
        .seq(seq)
        .build()
        .expect("record")
        .record()
}

fn enr_candidate(key: &NodeKey, seq: u64, tcp: u16) -> Candidate {
    Candidate::from_enr(&record(key, seq, tcp), CandidateSource::Discv5).expect("candidate")
}

#[test]
fn score_is_geths_plus_one_and_halving() {
    let mut state = CrawlState::new();
    let c = enr_candidate(&key(1), 1, 30303);
    assert_eq!(state.found(&c, 100), Sighting::New);
    let id = c.node_id();
    for t in 0..5 {
        state.answered(&id, 101 + t, None);
    }
    assert_eq!(state.get(&id).unwrap().score, 5);
    state.failed(&id, 200);
    assert_eq!(state.get(&id).unwrap().score, 2);
    state.failed(&id, 201);
    state.failed(&id, 202);
    let node = state.get(&id).unwrap();
    assert_eq!(node.score, 0);
    assert_eq!((node.first_response, node.last_response, node.last_check), (Some(101), Some(105), Some(202)));
    // Unknown ids are ignored rather than invented.
    state.answered(&crate::record::NodeId::ZERO, 1, None);
    assert_eq!(state.len(), 1);
}

#[test]
fn records_only_move_forward() {
    let k = key(2);
    let mut state = CrawlState::new();
    state.found(&enr_candidate(&k, 5, 1000), 10);
    // A neighbour relaying an older record does not roll the node back.
    assert_eq!(state.found(&enr_candidate(&k, 3, 2000), 11), Sighting::Known);
    let node = state.get_by_peer(&k.peer_id()).unwrap();
    assert_eq!((node.seq(), node.tcp_port, node.last_seen), (5, Some(1000), 11));
    assert_eq!(state.found(&enr_candidate(&k, 6, 3000), 12), Sighting::Updated);
    assert_eq!(state.get_by_peer(&k.peer_id()).unwrap().tcp_port, Some(3000));
    // A record-less discv4 sighting marks the protocol but cannot replace the endpoint.
    let enode =
        Enode { peer_id: k.peer_id(), ip: Ipv4Addr::new(127, 0, 0, 9).into(), tcp_port: 9, udp_port: 9 };
    let mut v4 = Candidate::from_enode(&enode, CandidateSource::Discv4);
    v4.source = CandidateSource::Discv4;
    assert_eq!(state.found(&v4, 13), Sighting::Updated);
    let node = state.get_by_peer(&k.peer_id()).unwrap();
    assert!(node.discv4 && node.discv5);
    assert_eq!(node.ip, std::net::IpAddr::from(Ipv4Addr::LOCALHOST));
}

#[test]
fn dirty_nodes_are_taken_once() {
    let mut state = CrawlState::new();
    let a = enr_candidate(&key(3), 1, 1);
    let b = enr_candidate(&key(4), 1, 1);
    state.found(&a, 1);
    state.found(&b, 1);
    assert_eq!(state.take_dirty().len(), 2);
    assert!(state.take_dirty().is_empty());
    state.failed(&a.node_id(), 2);
    let dirty = state.take_dirty();
    assert_eq!(dirty.len(), 1);
    assert_eq!(dirty[0].node_id, a.node_id());
    // Restored nodes are already stored: not dirty.
    let mut fresh = CrawlState::new();
    fresh.restore(state.nodes().cloned());
    assert_eq!(fresh.len(), 2);
    assert!(fresh.take_dirty().is_empty());
}

fn probed_node(seed: u8, client_id: Option<&str>, disconnect: Option<&str>) -> CrawledNode {
    let mut node = CrawledNode::from_candidate(&enr_candidate(&key(seed), 1, 30303), 1);
    node.probe = Some(ProbeResult {
        at: 2,
        enode: node.enode().unwrap().to_string(),
        hello: client_id.map(|id| HelloInfo {
            client_id: id.into(),
            capabilities: vec!["eth/68".into(), "eth/69".into(), "snap/1".into()],
            protocol_version: 5,
        }),
        status: None,
        disconnect: disconnect.map(str::to_string),
        error: None,
        millis: 3,
    });
    node
}

#[test]
fn summary_counts_clients_versions_and_failures() {
    let nodes = [
        probed_node(10, Some("Geth/v1.14.0-stable/linux-amd64/go1.22"), None),
        probed_node(11, Some("Geth/v1.14.0-stable/linux-amd64/go1.22"), None),
        probed_node(12, Some("reth/v1.1.0/x86_64-unknown-linux-gnu"), None),
        probed_node(13, None, Some("too many peers")),
    ];
    let summary = Summary::of(&nodes);
    assert_eq!((summary.nodes, summary.probed, summary.dialable), (4, 4, 3));
    assert_eq!(summary.by_client.get("Geth"), 2);
    assert_eq!(summary.by_client_version.get("reth v1.1.0"), 1);
    assert_eq!(summary.by_eth_version.get("eth/69"), 3);
    assert_eq!(summary.by_failure.get("too many peers"), 1);
    assert_eq!(summary.by_network.get("01020304/0"), 4);
    let text = summary.to_string();
    assert!(text.contains("dialable 3 (75.0%)"), "{text}");
    assert!(text.contains("Geth v1.14.0-stable"), "{text}");
    // Shares are of the 3 nodes whose client is known, not of the 4 probed.
    assert_eq!(summary.known_client, 3);
    assert!((summary.client_share.percent("Geth") - 200.0 / 3.0).abs() < 1e-9);
    assert_eq!(summary.client_version_share.of(), 3);
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["client_share"]["Geth"], 66.7);
    assert_eq!(json["client_version_share"]["reth v1.1.0"], 33.3);
    assert!(text.contains("share of 3 with a known client"), "{text}");
    assert!(text.contains(" 66.7%"), "{text}");
}

/// A node that only ever dialed us (NAT'd: never dialable) still has a client, eth versions
/// and a network from the Hello and Status it sent: the census counts it, the probe figures
/// (probed, dialable, failures) do not.
#[test]
fn summary_counts_the_clients_of_nodes_that_dialed_us() {
    let mut natted = CrawledNode::from_candidate(&enr_candidate(&key(14), 1, 30303), 1);
    natted.fork_id = None;
    let mut said = probed_node(14, Some("Nethermind/v1.30.0/linux-x64/dotnet9"), None).probe.unwrap();
    said.status = Some(StatusReport {
        version: 69,
        network_id: 1,
        genesis: Default::default(),
        fork_id: ForkId { hash: [9, 9, 9, 9].into(), next: 0 },
        head: Default::default(),
        total_difficulty: None,
        earliest_block: Some(0),
        latest_block: Some(10),
    });
    natted.inbound = Some(said);
    natted.seen_inbound = true;
    let nodes = [probed_node(10, Some("Geth/v1.14.0-stable/linux-amd64/go1.22"), None), natted];
    let summary = Summary::of(&nodes);
    assert_eq!((summary.nodes, summary.probed, summary.dialable), (2, 1, 1));
    assert_eq!((summary.known_client, summary.known_from_inbound), (2, 1));
    assert_eq!(summary.by_client.get("Nethermind"), 1);
    assert!((summary.client_share.percent("Nethermind") - 50.0).abs() < 1e-9);
    assert_eq!(summary.by_eth_offered.get("eth/69"), 2);
    assert_eq!(summary.snap, 2);
    assert_eq!(summary.by_history.get("full"), 1);
    assert_eq!(summary.by_network.get("09090909/0"), 1, "the network from the Status it sent");
    assert!(summary.by_failure.sorted().is_empty(), "an inbound sighting is not a failed probe");
    let text = summary.to_string();
    assert!(text.contains("share of 2 with a known client, 1 of them only from dialing us"), "{text}");
}

#[test]
fn nodes_json_is_geths_nodeset() {
    let mut node = probed_node(20, None, None);
    node.score = 3;
    node.first_response = Some(1_710_338_135);
    node.last_response = Some(1_710_338_135);
    node.last_check = Some(1_710_338_136);
    let json = to_nodes_json([&node]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let entry = &value[hex::encode(node.node_id)];
    assert_eq!(entry["seq"], 1);
    assert_eq!(entry["score"], 3);
    assert_eq!(entry["firstResponse"], "2024-03-13T13:55:35Z");
    assert_eq!(entry["lastCheck"], "2024-03-13T13:55:36Z");
    assert!(entry["record"].as_str().unwrap().starts_with("enr:-"));
    let parsed = parse_nodes_json(&json).unwrap();
    assert_eq!(parsed.len(), 1);
    // A node with no record and no TCP port cannot be written at all.
    let mut bare = node.clone();
    bare.enr = None;
    bare.tcp_port = None;
    assert!(NodesetEntry::of(&bare).is_none());
    bare.tcp_port = Some(30303);
    assert!(NodesetEntry::of(&bare).unwrap().record.starts_with("enode://"));
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_round_trip_and_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crawl.db");
    let mut nodes = vec![
        probed_node(30, Some("Geth/v1.14.0-stable/linux-amd64/go1.22"), None),
        probed_node(31, None, None),
    ];
    nodes[1].probe = None;
    nodes[1].score = 7;
    {
        let mut store = SqliteStore::open(&path).unwrap();
        store.begin_crawl(1).unwrap();
        store.save(&nodes).unwrap();
        store.finish_crawl(2, &CrawlCounts { found: 2, ..Default::default() }).unwrap();
    }
    let mut store = SqliteStore::open(&path).unwrap();
    let mut loaded = store.load().unwrap();
    loaded.sort_by_key(|n| n.node_id);
    nodes.sort_by_key(|n| n.node_id);
    assert_eq!(loaded, nodes);
    // Plain SQL sees the flattened columns.
    let geth: i64 = store
        .connection()
        .query_row("SELECT COUNT(*) FROM nodes WHERE client_name = 'Geth' AND eth_version = 69", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(geth, 1);
    // A rerun updates rows in place rather than adding.
    nodes[0].score = 9;
    store.save(&nodes[..1]).unwrap();
    let count: i64 = store.connection().query_row("SELECT COUNT(*) FROM nodes", [], |r| r.get(0)).unwrap();
    assert_eq!(count, 2);
    assert!(store.load().unwrap().iter().any(|n| n.score == 9));
    assert_eq!(store.crawl_runs().unwrap(), 1);
}

#[tokio::test]
async fn probe_records_hello_and_refusals() {
    let server_key = key(40);
    let mut config = RlpxConfig::builder();
    config.client_id("Geth/v1.14.0-stable/linux-amd64/go1.22").protocol(Protocol::eth(68));
    let listener =
        RlpxListener::bind("127.0.0.1:0".parse().unwrap(), server_key.clone(), config.build().unwrap()).await;
    let mut listener = listener.unwrap();
    let addr = listener.local_addr();
    let spec = crate::ChainSpec::mainnet();
    let chain = crate::eth::MemoryChain::builder().blocks(3).build();
    let status = chain.status_info_for(&spec);
    let eth = crate::eth::EthConfig::builder(status, spec.fork_filter(0, 0)).build().unwrap();
    let server = tokio::spawn(async move {
        // A real eth handshake: it accepts the prober's echoed Status.
        let session = listener.accept().await.unwrap().unwrap();
        crate::eth::EthSession::handshake(session, eth).await.map(|_| ())
    });
    let enode = Enode::new(server_key.peer_id(), addr);
    let result = probe(&enode, &key(41), &ProbeConfig::with_timeout(Duration::from_secs(5))).await;
    let hello = result.hello.clone().expect("hello");
    assert_eq!(hello.client_id, "Geth/v1.14.0-stable/linux-amd64/go1.22");
    assert_eq!(hello.eth_version(), Some(68));
    assert!(result.error.is_none(), "{result:?}");
    let status = result.status.clone().expect("status");
    assert_eq!((status.version, status.network_id), (68, 1));
    assert_eq!(status.genesis, spec.genesis_hash);
    assert_eq!(status.fork_id, chain.status_info_for(&spec).fork_id);
    assert!(status.total_difficulty.is_some());
    server.await.unwrap().expect("the server accepted our Status echo");

    // A closed port is an error, not a Hello.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let result =
        probe(&Enode::new(server_key.peer_id(), closed_addr), &key(41), &ProbeConfig::default()).await;
    assert!(result.hello.is_none());
    assert!(result.error.is_some());
    assert_eq!(reason_text(DisconnectReason::TooManyPeers), "too many peers");
}

/// A file written by the first schema (no `user_version`, no sessions) is migrated in place:
/// its rows survive, the new columns are filled from the old ones, and a second open is a
/// no-op.
#[cfg(feature = "sqlite")]
#[test]
fn sqlite_migrates_a_version_1_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let node = probed_node(50, Some("Geth/v1.14.0-stable/linux-amd64/go1.22"), None);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(store::SCHEMA_V1).unwrap();
        // The row as the first schema's crawler wrote it.
        conn.execute(
            "INSERT INTO nodes (node_id, peer_id, ip, tcp_port, udp_port, enr, seq, discv4, discv5,
                 first_seen, last_seen, score, probed_at, client_id, client_name, capabilities,
                 eth_version, probe_json)
             VALUES (?1, ?2, '127.0.0.1', 30303, 30303, ?3, 1, 0, 1, 1, 1, 4, 2, ?4, 'Geth',
                     'eth/68,eth/69,snap/1', 69, ?5)",
            rusqlite::params![
                hex::encode(node.node_id),
                hex::encode(node.peer_id),
                node.enr.as_ref().unwrap().to_base64(),
                node.probe.as_ref().unwrap().hello.as_ref().unwrap().client_id,
                serde_json::to_string(node.probe.as_ref().unwrap()).unwrap(),
            ],
        )
        .unwrap();
        conn.execute("INSERT INTO crawls (started, finished, found) VALUES (1, 2, 1)", []).unwrap();
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, 0, "the first schema had no version");
    }
    let store = SqliteStore::open(&path).expect("migrates");
    assert_eq!(store.schema_version().unwrap(), store::SCHEMA_VERSION);
    let loaded = store.load().unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].probe, node.probe);
    let (dialable, snap, gone, sessions): (bool, bool, i64, i64) = store
        .connection()
        .query_row("SELECT dialable, snap, gone, (SELECT COUNT(*) FROM node_sessions) FROM nodes", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap();
    assert_eq!((dialable, snap, gone, sessions), (true, true, 0, 0));
    assert_eq!(store.crawl_runs().unwrap(), 1, "the old crawl row is kept");
    drop(store);
    let again = SqliteStore::open(&path).unwrap();
    assert_eq!(again.load().unwrap().len(), 1);

    // A version 2 file, whose only inbound sightings were RLPx: they say so after version 3.
    let path = dir.path().join("v2.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(store::SCHEMA_V1).unwrap();
        conn.execute_batch(store::MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute(
            "INSERT INTO nodes (node_id, peer_id, ip, seq, discv4, discv5, first_seen, last_seen, score,
                 seen_inbound, last_inbound)
             VALUES (?1, ?2, '127.0.0.1', 0, 0, 0, 1, 1, 0, 1, 1)",
            rusqlite::params![hex::encode(node.node_id), hex::encode(node.peer_id)],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).expect("migrates");
    assert_eq!(store.schema_version().unwrap(), store::SCHEMA_VERSION);
    let loaded = store.load().unwrap();
    assert!(loaded[0].seen_inbound);
    assert_eq!(loaded[0].inbound_via.to_string(), "rlpx");
}

/// A file that is not a database, and one from a newer crawler, are refused with the path in
/// the error, and neither is changed (nor does anything appear beside it).
#[cfg(feature = "sqlite")]
#[test]
fn sqlite_refuses_corrupt_and_newer_files_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    let bytes: Vec<u8> = (0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&garbage, &bytes).unwrap();
    let err = SqliteStore::open(&garbage).expect_err("garbage is refused");
    let text = err.to_string();
    assert!(matches!(err, CrawlError::Database { .. }), "{err:?}");
    assert!(text.contains(&garbage.display().to_string()), "{text}");
    assert!(std::fs::read(&garbage).unwrap() == bytes, "the file is untouched");

    // A real database whose page 2 onwards was overwritten.
    let damaged = dir.path().join("damaged.db");
    {
        let mut store = SqliteStore::open(&damaged).unwrap();
        let nodes: Vec<_> = (60..90).map(|s| probed_node(s, Some("Geth/v1"), None)).collect();
        store.save(&nodes).unwrap();
    }
    let mut file = std::fs::read(&damaged).unwrap();
    assert!(file.len() > 8192, "several pages");
    for b in &mut file[4096..8192] {
        *b = 0x5a;
    }
    std::fs::write(&damaged, &file).unwrap();
    let err = SqliteStore::open(&damaged).expect_err("damage is refused");
    assert!(err.to_string().contains(&damaged.display().to_string()), "{err}");
    assert!(std::fs::read(&damaged).unwrap() == file, "the damaged file is untouched");

    let newer = dir.path().join("newer.db");
    {
        let conn = rusqlite::Connection::open(&newer).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;").unwrap();
    }
    let before = std::fs::read(&newer).unwrap();
    let err = SqliteStore::open(&newer).expect_err("a newer schema is refused");
    assert!(err.to_string().contains("newer"), "{err}");
    assert!(std::fs::read(&newer).unwrap() == before, "the newer file is untouched");
    let beside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(
        !beside.iter().any(|n| n.to_string_lossy().starts_with("garbage.db-")),
        "no journal beside the refused file: {beside:?}"
    );
}

/// Rounds make sessions: up, up, down, up gives two sessions; three rounds unseen with
/// `gone_after = 2` marks a node gone, and it comes back with a new session.
#[cfg(feature = "sqlite")]
#[test]
fn sqlite_rounds_make_uptime_sessions() {
    let mut store = SqliteStore::in_memory().unwrap();
    let nodes: Vec<_> = (70..73).map(|s| probed_node(s, None, None)).collect();
    let ids: Vec<_> = nodes.iter().map(|n| n.node_id).collect();
    store.save(&nodes).unwrap();
    // Who is up in rounds 1..=5.
    let plan: [&[usize]; 5] = [&[0, 1, 2], &[0, 1], &[0], &[0], &[0, 1, 2]];
    for (round, up) in plan.iter().enumerate() {
        let t = 100 * (round as u64 + 1);
        store.begin_crawl(t).unwrap();
        let report = RoundReport {
            started: t,
            finished: t + 10,
            counts: CrawlCounts::default(),
            up: up.iter().map(|&i| (ids[i], t + 5)).collect(),
            gone_after: 2,
        };
        store.end_round(&report).unwrap();
        let gone: Vec<i64> = ids
            .iter()
            .map(|id| {
                store
                    .connection()
                    .query_row("SELECT gone FROM nodes WHERE node_id = ?1", [hex::encode(id)], |r| r.get(0))
                    .unwrap()
            })
            .collect();
        let expect_gone = match round {
            3 => vec![0, 1, 1], // node 1 unseen in rounds 3-4, node 2 in 2-4
            2 => vec![0, 0, 1],
            _ => vec![0, 0, 0],
        };
        assert_eq!(gone, expect_gone, "after round {}", round + 1);
    }
    let sessions = |i: usize| -> Vec<(i64, i64, Option<i64>, i64)> {
        let mut stmt = store
            .connection()
            .prepare(
                "SELECT first_crawl, last_crawl, ended_crawl, up_rounds FROM node_sessions
                 WHERE node_id = ?1 ORDER BY first_crawl",
            )
            .unwrap();
        stmt.query_map([hex::encode(ids[i])], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(sessions(0), vec![(1, 5, None, 5)]);
    assert_eq!(sessions(1), vec![(1, 2, Some(3), 2), (5, 5, None, 1)]);
    assert_eq!(sessions(2), vec![(1, 1, Some(2), 1), (5, 5, None, 1)]);
    let ups: Vec<i64> = store
        .connection()
        .prepare("SELECT up FROM crawls ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ups, vec![3, 2, 1, 1, 3]);
}

/// The census: eth versions offered, snap, history ranges, fork readiness, and nodes without a
/// record classified from Hello and Status.
#[test]
fn summary_census() {
    let status = |earliest: Option<u64>, fork: ForkId| StatusReport {
        version: 69,
        network_id: 1,
        genesis: alloy_primitives::B256::ZERO,
        fork_id: fork,
        head: alloy_primitives::B256::ZERO,
        total_difficulty: None,
        earliest_block: earliest,
        latest_block: Some(100),
    };
    let expected = ForkId::new([9, 9, 9, 9], 2000);
    let mut nodes = vec![
        probed_node(80, Some("Geth/v1.16.0"), None),
        probed_node(81, Some("reth/v1.5.0"), None),
        probed_node(82, Some("Nethermind/v1.30.0"), None),
        probed_node(83, None, Some("too many peers")),
    ];
    nodes[0].probe.as_mut().unwrap().status = Some(status(Some(0), expected));
    nodes[1].probe.as_mut().unwrap().status = Some(status(Some(15_537_394), ForkId::new([9, 9, 9, 9], 0)));
    nodes[2].probe.as_mut().unwrap().status = Some(status(None, ForkId::new([1, 1, 1, 1], 0)));
    nodes[2].probe.as_mut().unwrap().hello.as_mut().unwrap().capabilities = vec!["eth/68".into()];
    nodes[2].enr = None;
    let mut summary = Summary::of(&nodes);
    assert_eq!(summary.by_eth_offered.get("eth/68"), 3);
    assert_eq!(summary.by_eth_offered.get("eth/69"), 2);
    assert_eq!(summary.snap, 2);
    assert_eq!(summary.by_history.get("full"), 1);
    assert_eq!(summary.by_history.get("expired"), 1);
    assert_eq!(summary.by_history.get("unknown (eth/68 or older)"), 1);
    assert_eq!(summary.classified_without_record, 1);
    summary.fork_readiness(&nodes, expected);
    assert_eq!(summary.by_fork_readiness.get("ready"), 1);
    assert_eq!(summary.by_fork_readiness.get("not ready"), 1);
    // Node 2's Status names another fork; node 3 only has its record's (01020304/0).
    assert_eq!(summary.by_fork_readiness.get("other fork"), 2);
    let text = summary.to_string();
    assert!(text.contains("fork readiness (expected 09090909/2000)"), "{text}");
    assert!(text.contains("snap offered by 2 of 3"), "{text}");
}
