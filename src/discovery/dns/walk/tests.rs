//! Unit tests of `walk.rs`.

use std::{collections::HashMap, net::Ipv4Addr};

use super::*;
use crate::{
    discovery::dns::{entry::subdomain, sign_tree, BranchEntry, EntryError, SignedTree},
    NodeKey,
};

type Zone = HashMap<String, Vec<String>>;

fn zone_of(trees: &[&SignedTree]) -> Zone {
    let mut zone = Zone::new();
    for tree in trees {
        for (name, text) in tree.records() {
            zone.entry(name).or_default().push(text);
        }
    }
    zone
}

/// Runs every lookup the walker asks for against `zone` until it has nothing left to do
/// at `now`. Returns the events and the number of lookups.
fn drive(walker: &mut DnsWalker, zone: &Zone, now: Instant) -> (Vec<WalkEvent>, usize) {
    let mut events = Vec::new();
    let mut lookups = 0;
    while let Some(query) = walker.poll(now) {
        lookups += 1;
        assert!(lookups < 100_000, "unbounded walk");
        let answer = zone.get(&query.name).cloned().ok_or(ResolveError::NotFound);
        events.extend(walker.on_response(query.id, answer, now));
    }
    (events, lookups)
}

fn nodes(events: &[WalkEvent]) -> Vec<Enr> {
    events
        .iter()
        .filter_map(|e| match e {
            WalkEvent::Node { enr, .. } => Some((**enr).clone()),
            _ => None,
        })
        .collect()
}

fn errors(events: &[WalkEvent]) -> Vec<DnsError> {
    events
        .iter()
        .filter_map(|e| match e {
            WalkEvent::Error(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn record(i: u32) -> Enr {
    let mut secret = [1u8; 32];
    secret[..4].copy_from_slice(&i.to_be_bytes());
    let key = NodeKey::from_bytes(&secret).unwrap();
    Enr::builder().ip4(Ipv4Addr::new(127, 0, 0, 1)).tcp4(30303).build(&key.to_combined_key()).unwrap()
}

fn key(i: u8) -> NodeKey {
    NodeKey::from_bytes(&[i; 32]).unwrap()
}

fn tree(key_seed: u8, domain: &str, seq: u64, n: u32, links: Vec<LinkEntry>) -> SignedTree {
    sign_tree(&key(key_seed), domain, seq, (0..n).map(record).collect(), links).unwrap()
}

/// EIP-1459 "DNS Record Structure" example zone, served from memory: the three leaves
/// come out, and the link is followed to the second tree.
#[test]
fn eip1459_example_tree() {
    let v: serde_json::Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/vectors/dnsdisc-eip-1459.json"
    )))
    .unwrap();
    let mut zone = Zone::new();
    for r in v["zone_example"]["records"].as_array().unwrap() {
        let name = match r["name"].as_str().unwrap() {
            "@" => "nodes.example.org".to_owned(),
            hash => format!("{hash}.nodes.example.org"),
        };
        zone.entry(name).or_default().push(r["content"].as_str().unwrap().to_owned());
    }
    // The consistent key (see the vector file's consistency_note).
    let link: LinkEntry =
        "enrtree://AKPYQIUQIL7PSIACI32J7FGZW56E5FKHEFCCOFHILBIMW3M6LWXS2@nodes.example.org".parse().unwrap();
    let now = Instant::now();
    let mut walker = DnsWalker::with_seed(DnsConfig::default(), 1);
    assert!(walker.add_tree(link, now));
    let (events, lookups) = drive(&mut walker, &zone, now);
    assert_eq!(nodes(&events).len(), 3);
    // root, link, branch, 3 leaves, then the linked tree's root (absent here).
    assert_eq!(lookups, 7);
    assert!(events.iter().any(
        |e| matches!(e, WalkEvent::TreeAdded { link, via } if link.domain == "morenodes.example.org" && via == "nodes.example.org")
    ));
    assert_eq!(
        errors(&events),
        [DnsError::Resolve { name: "morenodes.example.org".into(), source: ResolveError::NotFound }]
    );
    let status = walker.status();
    assert_eq!(status[0].seq, Some(1));
    assert_eq!(status[0].nodes, 3);
    assert!(status[0].complete);
    assert_eq!(status[1].via.as_deref(), Some("nodes.example.org"));

    // The URL as printed in the EIP (AM5FCQ…) does not verify the example root.
    let printed: LinkEntry = v["url_example"]["url"].as_str().unwrap().parse().unwrap();
    let mut walker = DnsWalker::with_seed(DnsConfig::default(), 1);
    walker.add_tree(printed, now);
    let (events, _) = drive(&mut walker, &zone, now);
    assert_eq!(errors(&events), [DnsError::BadRootSignature { domain: "nodes.example.org".into() }]);
    assert!(nodes(&events).is_empty());
}

#[test]
fn walks_every_leaf_once() {
    let t = tree(1, "nodes.test", 1, 100, Vec::new());
    let zone = zone_of(&[&t]);
    let now = Instant::now();
    let mut walker = DnsWalker::with_seed(DnsConfig::default(), 7);
    walker.add_tree(t.link.clone(), now);
    let (events, lookups) = drive(&mut walker, &zone, now);
    let mut found: Vec<_> = nodes(&events).iter().map(|e| e.node_id().raw()).collect();
    found.sort();
    found.dedup();
    assert_eq!(found.len(), 100);
    assert!(errors(&events).is_empty());
    assert_eq!(lookups, 1 + t.entries.len());
    // Nothing more until the root is due again; then only the root is looked up.
    assert_eq!(walker.next_wakeup(), Some(now + DEFAULT_RECHECK_INTERVAL_FOR_TEST));
    let later = now + DEFAULT_RECHECK_INTERVAL_FOR_TEST;
    let (events, lookups) = drive(&mut walker, &zone, later);
    assert_eq!((events.len(), lookups), (0, 1));
}

const DEFAULT_RECHECK_INTERVAL_FOR_TEST: Duration = crate::discovery::dns::DEFAULT_RECHECK_INTERVAL;

#[test]
fn tampered_leaf_is_rejected() {
    let t = tree(1, "nodes.test", 1, 5, Vec::new());
    let mut zone = zone_of(&[&t]);
    // Replace one leaf by another valid record: its hash no longer matches its name.
    let (victim, _) = t.entries.iter().find(|(_, e)| matches!(e, Entry::Enr(_))).unwrap();
    let name = format!("{victim}.nodes.test");
    zone.insert(name.clone(), vec![format!("{}", record(999).to_base64())]);
    let now = Instant::now();
    let mut walker = DnsWalker::with_seed(DnsConfig::default(), 1);
    walker.add_tree(t.link.clone(), now);
    let (events, _) = drive(&mut walker, &zone, now);
    assert_eq!(nodes(&events).len(), 4);
    assert_eq!(errors(&events), [DnsError::HashMismatch { name }]);
    assert!(nodes(&events).iter().all(|e| e.node_id() != record(999).node_id()));
}

#[test]
fn tampered_root_is_rejected() {
    let t = tree(1, "nodes.test", 1, 5, Vec::new());
    let mut zone = zone_of(&[&t]);
    // Signed by another key.
    let forged = RootEntry::sign(t.root.enr_root.clone(), t.root.link_root.clone(), 2, &key(2));
    zone.insert("nodes.test".into(), vec![forged.to_string()]);
    let now = Instant::now();
    let mut walker = DnsWalker::with_seed(DnsConfig::default(), 1);
    walker.add_tree(t.link.clone(), now);
    let (events, lookups) = drive(&mut walker, &zone, now);
    assert_eq!(lookups, 1);
    assert_eq!(errors(&events), [DnsError::BadRootSignature { domain: "nodes.test".into() }]);
    // It backs off, then tries again.
    let wake = walker.next_wakeup().unwrap();
    assert!(wake > now);
    assert_eq!(drive(&mut walker, &zone, wake).1, 1);
}

#[test]
fn lower_seq_root_is_ignored() {
    let v2 = tree(1, "nodes.test", 2, 5, Vec::new());
    let v1 = tree(1, "nodes.test", 1, 9, Vec::new());
    let mut zone = zone_of(&[&v2, &v1]);
    zone.insert("nodes.test".into(), vec![v2.root.to_string()]);
    let now = Instant::now();
    let mut walker = DnsWalker::with_seed(DnsConfig::default(), 1);
    walker.add_tree(v2.link.clone(), now);
    assert_eq!(nodes(&drive(&mut walker, &zone, now).0).len(), 5);
    // The server now serves the older root (a replay): ignored, nothing fetched.
    zone.insert("nodes.test".into(), vec![v1.root.to_string()]);
    let later = walker.next_wakeup().unwrap();
    let (events, lookups) = drive(&mut walker, &zone, later);
    assert_eq!(lookups, 1);
    assert_eq!(errors(&events), [DnsError::StaleRoot { domain: "nodes.test".into(), seq: 1, known: 2 }]);
    assert_eq!(walker.status()[0].seq, Some(2));
    // A newer root is walked.
    let v3 = tree(1, "nodes.test", 3, 7, Vec::new());
    let mut zone = zone_of(&[&v3]);
    zone.insert("nodes.test".into(), vec![v3.root.to_string()]);
    let later = walker.next_wakeup().unwrap();
    let (events, _) = drive(&mut walker, &zone, later);
    assert_eq!(nodes(&events).len(), 7);
    assert_eq!(walker.status()[0].seq, Some(3));
}

#[test]
fn link_loops_are_detected() {
    let a_link = LinkEntry::new(key(1).public(), "a.test").unwrap();
    let b_link = LinkEntry::new(key(2).public(), "b.test").unwrap();
    let a = tree(1, "a.test", 1, 2, vec![b_link.clone()]);
    let b = tree(2, "b.test", 1, 3, vec![a_link.clone(), b_link]);
    let zone = zone_of(&[&a, &b]);
    let now = Instant::now();
    let mut walker = DnsWalker::with_seed(DnsConfig::default(), 1);
    walker.add_tree(a_link, now);
    let (events, lookups) = drive(&mut walker, &zone, now);
    assert_eq!(nodes(&events).len(), 5);
    let loops = errors(&events);
    assert_eq!(loops.len(), 2, "{loops:?}");
    assert!(loops.iter().all(|e| matches!(e, DnsError::LinkLoop { .. })));
    assert_eq!(walker.status().len(), 2);
    assert!(lookups <= 2 + a.entries.len() + b.entries.len());
}

/// A link that disappears from a later root drops the tree it led to, unless another
/// tree still links to it; trees reachable only through a dropped one go with it.
#[test]
fn removed_links_drop_their_trees() {
    let link = |seed: u8, domain: &str| LinkEntry::new(key(seed).public(), domain).unwrap();
    let (a_link, b_link, c_link, d_link) =
        (link(1, "a.test"), link(2, "b.test"), link(3, "c.test"), link(4, "d.test"));
    let domains = |walker: &DnsWalker| {
        let mut d: Vec<String> = walker.status().into_iter().map(|t| t.link.domain).collect();
        d.sort();
        d
    };
    let removed = |events: &[WalkEvent]| {
        let mut d: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                WalkEvent::TreeRemoved { link } => Some(link.domain.clone()),
                _ => None,
            })
            .collect();
        d.sort();
        d
    };
    // a → b, a → c; c → b, c → d.
    let b = tree(2, "b.test", 1, 2, Vec::new());
    let c = tree(3, "c.test", 1, 2, vec![b_link.clone(), d_link.clone()]);
    let d = tree(4, "d.test", 1, 2, Vec::new());
    let a1 = tree(1, "a.test", 1, 1, vec![b_link.clone(), c_link.clone()]);
    let now = Instant::now();
    let mut walker = DnsWalker::with_seed(DnsConfig::default(), 1);
    walker.add_tree(a_link.clone(), now);
    let (events, _) = drive(&mut walker, &zone_of(&[&a1, &b, &c, &d]), now);
    assert_eq!(nodes(&events).len(), 7);
    assert_eq!(domains(&walker), ["a.test", "b.test", "c.test", "d.test"]);
    assert!(removed(&events).is_empty());

    // a drops c: c goes, and d (only c linked to it) with it; b stays, a still links it.
    let a2 = tree(1, "a.test", 2, 1, vec![b_link.clone()]);
    let later = walker.next_wakeup().unwrap();
    let (events, _) = drive(&mut walker, &zone_of(&[&a2, &b, &c, &d]), later);
    assert_eq!(removed(&events), ["c.test", "d.test"]);
    assert_eq!(domains(&walker), ["a.test", "b.test"]);

    // a drops every link: b goes too; the configured tree a is never dropped.
    let a3 = tree(1, "a.test", 3, 1, Vec::new());
    let later = walker.next_wakeup().unwrap();
    let (events, _) = drive(&mut walker, &zone_of(&[&a3, &b]), later);
    assert_eq!(removed(&events), ["b.test"]);
    assert_eq!(domains(&walker), ["a.test"]);
    // Nothing of the dropped trees is looked up again.
    let later = walker.next_wakeup().unwrap();
    while let Some(query) = walker.poll(later) {
        assert!(query.name.ends_with("a.test"), "{}", query.name);
        walker.on_response(query.id, Err(ResolveError::NotFound), later);
    }
}

/// A link entry that cannot be fetched leaves the link set unknown: nothing is dropped
/// on its account.
#[test]
fn unreadable_link_subtree_drops_nothing() {
    let link = |seed: u8, domain: &str| LinkEntry::new(key(seed).public(), domain).unwrap();
    let (b_link, c_link, d_link) = (link(2, "b.test"), link(3, "c.test"), link(4, "d.test"));
    let b = tree(2, "b.test", 1, 1, Vec::new());
    let c = tree(3, "c.test", 1, 1, Vec::new());
    let d = tree(4, "d.test", 1, 1, Vec::new());
    let a1 = tree(1, "a.test", 1, 1, vec![b_link.clone(), c_link.clone()]);
    let now = Instant::now();
    let mut walker = DnsWalker::with_seed(DnsConfig::default(), 1);
    walker.add_tree(a1.link.clone(), now);
    drive(&mut walker, &zone_of(&[&a1, &b, &c]), now);
    assert_eq!(walker.status().len(), 3);
    // The new root still links to b (and adds d), but b's link leaf cannot be fetched:
    // b must not be dropped for it.
    let a2 = tree(1, "a.test", 2, 1, vec![b_link, c_link, d_link]);
    let mut zone = zone_of(&[&a2, &b, &c, &d]);
    let leaf = a2.records().into_iter().find(|(_, text)| text.ends_with("@b.test")).unwrap().0;
    zone.remove(&leaf);
    let mut at = walker.next_wakeup().unwrap();
    let mut given_up = false;
    for _ in 0..50 {
        let (events, _) = drive(&mut walker, &zone, at);
        assert!(!events.iter().any(|e| matches!(e, WalkEvent::TreeRemoved { .. })), "{events:?}");
        let status = walker.status();
        if status.iter().find(|t| t.link.domain == "a.test").is_some_and(|t| t.complete) {
            given_up = true;
            break;
        }
        at = walker.next_wakeup().unwrap();
    }
    assert!(given_up, "the missing leaf was never given up on");
    let mut domains: Vec<String> = walker.status().into_iter().map(|t| t.link.domain).collect();
    domains.sort();
    assert_eq!(domains, ["a.test", "b.test", "c.test", "d.test"]);
}

#[test]
fn link_caps() {
    // A chain of trees each linking to the next, longer than max_link_depth.
    let keys: Vec<NodeKey> = (1..=8).map(key).collect();
    let links: Vec<LinkEntry> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| LinkEntry::new(k.public(), &format!("t{i}.test")).unwrap())
        .collect();
    let trees: Vec<SignedTree> = (0..8)
        .map(|i| {
            let next = links.get(i + 1).cloned().into_iter().collect();
            sign_tree(&keys[i], &format!("t{i}.test"), 1, vec![record(i as u32)], next).unwrap()
        })
        .collect();
    let zone = zone_of(&trees.iter().collect::<Vec<_>>());
    let now = Instant::now();
    let config = DnsConfig::builder().max_link_depth(3).build().unwrap();
    let mut walker = DnsWalker::with_seed(config, 1);
    walker.add_tree(links[0].clone(), now);
    let (events, _) = drive(&mut walker, &zone, now);
    assert_eq!(walker.status().len(), 4);
    assert_eq!(nodes(&events).len(), 4);
    assert_eq!(
        errors(&events),
        [DnsError::TooManyLinks { domain: "t4.test".into(), what: "link levels", limit: 3 }]
    );
}

#[test]
fn huge_tree_is_capped() {
    let t = tree(1, "nodes.test", 1, 300, Vec::new());
    let zone = zone_of(&[&t]);
    let now = Instant::now();
    let config = DnsConfig::builder().max_tree_size(50, 16).build().unwrap();
    let mut walker = DnsWalker::with_seed(config, 1);
    walker.add_tree(t.link.clone(), now);
    let (events, lookups) = drive(&mut walker, &zone, now);
    assert!(lookups <= 2 + 50, "{lookups}");
    assert!(!nodes(&events).is_empty());
    assert_eq!(
        errors(&events),
        [DnsError::TreeTooLarge { domain: "nodes.test".into(), what: "entries", limit: 50 }]
    );
}

#[test]
fn deep_chain_is_capped() {
    // Single-child branches 40 levels deep above one leaf.
    let k = key(1);
    let leaf = record(1).to_base64();
    let mut zone = Zone::new();
    let mut hash = subdomain(&leaf);
    zone.insert(format!("{hash}.deep.test"), vec![leaf]);
    for _ in 0..40 {
        let branch = BranchEntry { children: vec![hash] }.to_string();
        hash = subdomain(&branch);
        zone.insert(format!("{hash}.deep.test"), vec![branch]);
    }
    let links = BranchEntry::default().to_string();
    zone.insert(format!("{}.deep.test", subdomain(&links)), vec![links.clone()]);
    let root = RootEntry::sign(hash, subdomain(&links), 1, &k);
    zone.insert("deep.test".into(), vec![root.to_string()]);
    let now = Instant::now();
    let mut walker = DnsWalker::with_seed(DnsConfig::default(), 1);
    walker.add_tree(LinkEntry::new(k.public(), "deep.test").unwrap(), now);
    let (events, lookups) = drive(&mut walker, &zone, now);
    assert!(lookups <= 2 + DEFAULT_MAX_TREE_DEPTH_FOR_TEST + 1);
    assert!(nodes(&events).is_empty());
    assert_eq!(
        errors(&events),
        [DnsError::TreeTooLarge { domain: "deep.test".into(), what: "levels", limit: 16 }]
    );
}

const DEFAULT_MAX_TREE_DEPTH_FOR_TEST: usize = crate::discovery::dns::DEFAULT_MAX_TREE_DEPTH;

#[test]
fn malformed_and_misplaced_entries() {
    let t = tree(1, "nodes.test", 1, 3, Vec::new());
    let mut zone = zone_of(&[&t]);
    let bad = "enrtree-branch:not-a-hash";
    let misplaced = "enrtree://AKPYQIUQIL7PSIACI32J7FGZW56E5FKHEFCCOFHILBIMW3M6LWXS2@x.test";
    let branch_text = BranchEntry { children: vec![subdomain(bad), subdomain(misplaced)] }.to_string();
    // Hang the bad entries off a new ENR root, signed properly.
    zone.insert(format!("{}.nodes.test", subdomain(bad)), vec!["junk".into(), bad.into()]);
    zone.insert(format!("{}.nodes.test", subdomain(misplaced)), vec![misplaced.into()]);
    zone.insert(format!("{}.nodes.test", subdomain(&branch_text)), vec![branch_text.clone()]);
    let root = RootEntry::sign(subdomain(&branch_text), t.root.link_root.clone(), 1, &key(1));
    zone.insert("nodes.test".into(), vec!["v=spf1 -all".into(), root.to_string()]);
    let now = Instant::now();
    let mut walker = DnsWalker::with_seed(DnsConfig::default(), 1);
    walker.add_tree(t.link.clone(), now);
    let (events, _) = drive(&mut walker, &zone, now);
    let mut errs = errors(&events);
    errs.sort_by_key(|e| e.to_string());
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs.iter().any(|e| matches!(e, DnsError::BadEntry { source: EntryError::InvalidHash(_), .. })));
    assert!(errs.iter().any(|e| matches!(e, DnsError::UnexpectedEntry { kind: "link", .. })));
}

#[test]
fn failed_lookups_retry_then_give_up() {
    let t = tree(1, "nodes.test", 1, 1, Vec::new());
    let mut zone = zone_of(&[&t]);
    let leaf = format!("{}.nodes.test", t.root.enr_root);
    zone.remove(&leaf);
    let mut now = Instant::now();
    let mut walker = DnsWalker::with_seed(DnsConfig::default(), 1);
    walker.add_tree(t.link.clone(), now);
    let mut attempts = 0;
    for _ in 0..10 {
        let (events, _) = drive(&mut walker, &zone, now);
        attempts += errors(&events)
            .iter()
            .filter(|e| matches!(e, DnsError::Resolve { name, .. } if *name == leaf))
            .count();
        match walker.next_wakeup() {
            Some(at) if at < now + Duration::from_secs(60) => now = at,
            _ => break,
        }
    }
    assert_eq!(attempts, DEFAULT_ENTRY_ATTEMPTS_FOR_TEST as usize);
    assert_eq!(walker.status()[0].pending, 0);
}

const DEFAULT_ENTRY_ATTEMPTS_FOR_TEST: u32 = crate::discovery::dns::DEFAULT_ENTRY_ATTEMPTS;

#[test]
fn one_lookup_per_tree_in_flight() {
    let a = tree(1, "a.test", 1, 20, Vec::new());
    let b = tree(2, "b.test", 1, 20, Vec::new());
    let now = Instant::now();
    let mut walker = DnsWalker::with_seed(DnsConfig::default(), 1);
    walker.add_tree(a.link.clone(), now);
    walker.add_tree(b.link.clone(), now);
    let q1 = walker.poll(now).unwrap();
    let q2 = walker.poll(now).unwrap();
    assert_eq!(walker.poll(now), None);
    assert_ne!(q1.name, q2.name);
    assert_eq!(walker.in_flight(), 2);
    // An unknown id is ignored.
    assert!(walker.on_response(QueryId(999), Ok(vec![]), now).is_empty());
    assert_eq!(walker.in_flight(), 2);
}
