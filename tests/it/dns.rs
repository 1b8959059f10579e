//! DNS discovery (EIP-1459) against a real DNS server on loopback, through hickory-resolver.

use std::{
    collections::HashSet,
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use ethp2p::discovery::CandidateSource;
use ethp2p::{
    discovery::dns::{sign_tree, DnsConfig, DnsDiscovery, DnsError, HickoryResolver, LinkEntry, TreeStatus},
    record::Enr,
    test_utils::dns::DnsTestServer,
    Candidate, NodeKey, PeerId,
};
use tokio::sync::mpsc;

/// Generous: nothing here should take more than a second or two.
const DEADLINE: Duration = Duration::from_secs(30);

fn key(seed: u8) -> NodeKey {
    NodeKey::from_bytes(&[seed; 32]).unwrap()
}

/// Node records with keys from fixed seeds, `offset..offset + n`.
fn records(offset: u32, n: u32) -> Vec<Enr> {
    (offset..offset + n)
        .map(|i| {
            let mut secret = [7u8; 32];
            secret[..4].copy_from_slice(&i.to_be_bytes());
            let key = NodeKey::from_bytes(&secret).unwrap();
            Enr::builder()
                .ip4(Ipv4Addr::new(127, 0, (i >> 8) as u8, i as u8))
                .tcp4(30303)
                .udp4(30301)
                .build(&key.to_combined_key())
                .unwrap()
        })
        .collect()
}

fn peer_ids(records: &[Enr]) -> HashSet<PeerId> {
    records.iter().map(|r| PeerId::from_slice(&r.public_key().encode_uncompressed())).collect()
}

use enr::EnrPublicKey as _;

/// Fast enough for a test, still exercising the limiter (bursts of 50).
fn config() -> DnsConfig {
    DnsConfig::builder()
        .rate_limit(500.0, 50)
        .lookup_timeout(Duration::from_millis(500))
        .recheck_interval(Duration::from_millis(300))
        .build()
        .unwrap()
}

/// Receives candidates until `want` distinct peers arrived or the deadline passed.
async fn collect(rx: &mut mpsc::Receiver<Candidate>, want: usize) -> HashSet<PeerId> {
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while seen.len() < want {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(c)) => {
                assert_eq!(c.source, CandidateSource::Dns);
                assert_eq!(c.tcp_port, Some(30303));
                assert_eq!(c.udp_port, Some(30301));
                seen.insert(c.peer_id);
            }
            _ => break,
        }
    }
    seen
}

/// Polls the status of `domain` until `done` holds for it, or panics at the deadline.
async fn wait_status(dns: &DnsDiscovery, domain: &str, done: impl Fn(&TreeStatus) -> bool) -> TreeStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let status = dns.status().await.unwrap();
        if let Some(s) = status.iter().find(|s| s.link.domain == domain) {
            if done(s) {
                return s.clone();
            }
        }
        assert!(Instant::now() < deadline, "status never reached: {status:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn all_100_nodes_come_out() {
    let server = DnsTestServer::start().await.unwrap();
    let nodes = records(0, 100);
    let tree = sign_tree(&key(1), "nodes.test", 1, nodes.clone(), Vec::new()).unwrap();
    server.serve_tree(&tree);

    let (tx, mut rx) = mpsc::channel(16);
    let dns = DnsDiscovery::spawn(config(), HickoryResolver::with_name_servers(&[server.addr()]), tx);
    assert!(dns.add_tree(&tree.link.to_string()).await.unwrap());
    assert!(!dns.add_tree(&tree.link.to_string()).await.unwrap());

    let found = collect(&mut rx, 100).await;
    assert_eq!(found, peer_ids(&nodes));
    let status = wait_status(&dns, "nodes.test", |s| s.complete).await;
    assert_eq!((status.seq, status.nodes, status.errors), (Some(1), 100, 0), "{status:?}");
    // One query per entry, plus root rechecks.
    assert!(server.queries() > tree.entries.len());
    dns.shutdown().await;
    assert!(matches!(dns.status().await, Err(DnsError::ServiceStopped)));
}

#[tokio::test]
async fn tampered_records_are_rejected() {
    let server = DnsTestServer::start().await.unwrap();
    let nodes = records(0, 20);
    let tree = sign_tree(&key(1), "nodes.test", 1, nodes.clone(), Vec::new()).unwrap();
    server.serve_tree(&tree);
    // One leaf swapped for another validly signed record: its name no longer matches.
    let victim = tree.records().into_iter().find(|(_, t)| t.starts_with("enr:")).unwrap();
    let intruder = records(1000, 1);
    server.set(&victim.0, vec![intruder[0].to_base64()]);
    // A second tree whose root was signed by the wrong key.
    let forged = sign_tree(&key(3), "forged.test", 9, records(2000, 5), Vec::new()).unwrap();
    server.serve_tree(&forged);
    let claimed = LinkEntry::new(key(4).public(), "forged.test").unwrap();

    let (tx, mut rx) = mpsc::channel(16);
    let dns = DnsDiscovery::spawn(config(), HickoryResolver::with_name_servers(&[server.addr()]), tx);
    dns.add_link(tree.link.clone()).await.unwrap();
    dns.add_link(claimed).await.unwrap();

    let good = wait_status(&dns, "nodes.test", |s| s.complete).await;
    assert_eq!(good.nodes, 19);
    assert_eq!(good.last_error, Some(DnsError::HashMismatch { name: victim.0.clone() }));
    let bad = wait_status(&dns, "forged.test", |s| s.errors > 0).await;
    assert_eq!(bad.last_error, Some(DnsError::BadRootSignature { domain: "forged.test".into() }));
    assert_eq!((bad.seq, bad.nodes), (None, 0));

    let found = collect(&mut rx, 19).await;
    let mut want = peer_ids(&nodes);
    want.retain(|p| !peer_ids(&[victim_record(&victim.1)]).contains(p));
    assert_eq!(found, want);
    // Nothing else arrives: not the intruder, not the forged tree's nodes.
    assert!(rx.try_recv().is_err());
    dns.shutdown().await;
}

fn victim_record(text: &str) -> Enr {
    text.parse().unwrap()
}

#[tokio::test]
async fn lower_seq_root_is_ignored() {
    let server = DnsTestServer::start().await.unwrap();
    let v2 = sign_tree(&key(1), "nodes.test", 2, records(0, 10), Vec::new()).unwrap();
    let v1 = sign_tree(&key(1), "nodes.test", 1, records(100, 10), Vec::new()).unwrap();
    server.serve_tree(&v1);
    server.serve_tree(&v2);

    let (tx, mut rx) = mpsc::channel(16);
    let dns = DnsDiscovery::spawn(config(), HickoryResolver::with_name_servers(&[server.addr()]), tx);
    dns.add_link(v2.link.clone()).await.unwrap();
    assert_eq!(collect(&mut rx, 10).await, peer_ids(&records(0, 10)));

    // Roll the root back (its entries are all still served): the client must not take it.
    server.set("nodes.test", vec![v1.root.to_string()]);
    let status =
        wait_status(&dns, "nodes.test", |s| matches!(s.last_error, Some(DnsError::StaleRoot { .. }))).await;
    assert_eq!(
        status.last_error,
        Some(DnsError::StaleRoot { domain: "nodes.test".into(), seq: 1, known: 2 })
    );
    assert_eq!(status.seq, Some(2));
    assert!(rx.try_recv().is_err(), "a node of the stale tree came out");

    // A higher seq is taken on the next recheck.
    let v3 = sign_tree(&key(1), "nodes.test", 3, records(200, 5), Vec::new()).unwrap();
    server.serve_tree(&v3);
    assert_eq!(collect(&mut rx, 5).await, peer_ids(&records(200, 5)));
    assert_eq!(wait_status(&dns, "nodes.test", |s| s.seq == Some(3)).await.nodes, 5);
    dns.shutdown().await;
}

/// Malformed TXT, a link loop, a huge tree and a server that never answers, all at once
/// next to a good tree: each fails in bounded work with its own error, and the good tree's
/// nodes all come out meanwhile.
#[tokio::test]
async fn bad_trees_do_not_stall_good_ones() {
    let server = DnsTestServer::start().await.unwrap();
    let good = sign_tree(&key(1), "good.test", 1, records(0, 30), Vec::new()).unwrap();
    server.serve_tree(&good);

    // Link loop: a → b → a.
    let a_link = LinkEntry::new(key(2).public(), "a.test").unwrap();
    let b_link = LinkEntry::new(key(3).public(), "b.test").unwrap();
    server.serve_tree(&sign_tree(&key(2), "a.test", 1, records(100, 2), vec![b_link]).unwrap());
    server.serve_tree(&sign_tree(&key(3), "b.test", 1, records(200, 2), vec![a_link.clone()]).unwrap());

    // Huge: more entries than the cap allows.
    let huge = sign_tree(&key(4), "huge.test", 1, records(1000, 400), Vec::new()).unwrap();
    server.serve_tree(&huge);

    // Malformed: the root is not an EIP-1459 root.
    server.set("junk.test", vec!["enrtree-root:v1 e=!!! l=?? seq=x sig=".into(), "v=spf1 -all".into()]);
    let junk_link = LinkEntry::new(key(5).public(), "junk.test").unwrap();

    // Never answers.
    server.blackhole("slow.test");
    let slow_link = LinkEntry::new(key(6).public(), "slow.test").unwrap();

    let config = DnsConfig::builder()
        .rate_limit(500.0, 50)
        .lookup_timeout(Duration::from_millis(300))
        .max_tree_size(100, 16)
        .build()
        .unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    let dns = DnsDiscovery::spawn(config, HickoryResolver::with_name_servers(&[server.addr()]), tx);
    // Take candidates as they come (the walk is lazy: it pauses while nobody reads).
    let drain = tokio::spawn(async move {
        let mut found = HashSet::new();
        while let Some(c) = rx.recv().await {
            found.insert(c.peer_id);
        }
        found
    });
    for link in [slow_link, junk_link, huge.link.clone(), a_link, good.link.clone()] {
        dns.add_link(link).await.unwrap();
    }

    let good_status = wait_status(&dns, "good.test", |s| s.complete).await;
    assert_eq!((good_status.nodes, good_status.errors), (30, 0));

    let slow = wait_status(&dns, "slow.test", |s| s.errors > 0).await;
    assert!(
        matches!(&slow.last_error, Some(DnsError::Resolve { name, .. }) if name == "slow.test"),
        "{slow:?}"
    );
    let junk = wait_status(&dns, "junk.test", |s| s.errors > 0).await;
    assert!(matches!(junk.last_error, Some(DnsError::BadRoot { .. })), "{junk:?}");
    let a = wait_status(&dns, "a.test", |s| s.complete).await;
    assert_eq!(a.nodes, 2);
    let b = wait_status(&dns, "b.test", |s| s.complete).await;
    assert_eq!(b.via.as_deref(), Some("a.test"));
    assert_eq!(b.last_error, Some(DnsError::LinkLoop { domain: "a.test".into() }));
    let huge_status = wait_status(&dns, "huge.test", |s| s.complete).await;
    assert_eq!(
        huge_status.last_error,
        Some(DnsError::TreeTooLarge { domain: "huge.test".into(), what: "entries", limit: 100 })
    );
    assert!(huge_status.entries <= 1 + 100 + 1, "{huge_status:?}");
    assert_eq!(dns.status().await.unwrap().len(), 6);

    dns.shutdown().await;
    // Every good node came out, whatever else did.
    let found = drain.await.unwrap();
    assert!(found.is_superset(&peer_ids(&records(0, 30))));
    assert!(found.is_superset(&peer_ids(&records(100, 2))) && found.is_superset(&peer_ids(&records(200, 2))));
}
