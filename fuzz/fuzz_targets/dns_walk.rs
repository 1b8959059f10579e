//! The EIP-1459 tree walker ([`DnsWalker`], sans-IO) against a hostile DNS server.
//!
//! The input is a zone: one TXT string per line. In line `i`, `$j` (a digit `j > i`)
//! stands for the hash label of line `j`, so branches can point at real children (hashes
//! cannot be found by mutation). Every root lookup, for any domain, is answered with a
//! root signed by the tree's key whose `e=` and `l=` are lines 0 and 1; entry lookups are
//! answered from the zone by label, else NXDOMAIN. Links may lead back to the same zone
//! under other names, so link loops and shared subtrees are reachable.
//!
//! Never panics; the work stays within the configured caps (trees, entries, link depth);
//! an idle walker always names a future wakeup.
#![no_main]

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use ethp2p::{discovery::dns::{entry::subdomain, DnsConfig, DnsWalker, LinkEntry, ResolveError, RootEntry, WalkEvent}, NodeKey};
use libfuzzer_sys::fuzz_target;

const DOMAIN: &str = "fuzz.example";
/// Lookups answered per input: enough to walk a few small trees (each root answer costs
/// a signature check, so this sets the speed).
const MAX_LOOKUPS: usize = 100;
/// Idle periods skipped (backoffs, root rechecks) per input.
const MAX_WAKEUPS: usize = 3;

fn zone(text: &str) -> Vec<String> {
    let raw: Vec<&str> = text.split('\n').take(10).collect();
    let mut lines = vec![String::new(); raw.len()];
    for i in (0..raw.len()).rev() {
        let mut line = raw[i].to_owned();
        for j in (i + 1)..raw.len() {
            line = line.replace(&format!("${j}"), &subdomain(&lines[j]));
        }
        lines[i] = line;
    }
    lines
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lines = zone(text);
    let key = NodeKey::from_bytes(&[3; 32]).expect("valid key");
    let labels: HashMap<String, &String> = lines.iter().map(|l| (subdomain(l), l)).collect();
    let label =
        |i: usize| lines.get(i).map_or_else(|| "AAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(), |l| subdomain(l));
    let root = RootEntry::sign(label(0), label(1), 1, &key).to_string();

    let config = DnsConfig::default();
    let mut walker = DnsWalker::with_seed(config.clone(), 7);
    let mut now = Instant::now();
    walker.add_tree(LinkEntry::new(key.public(), DOMAIN).expect("valid domain"), now);
    let mut lookups = 0;
    let mut nodes = 0usize;
    let mut wakeups = 0;
    while lookups < MAX_LOOKUPS {
        let Some(query) = walker.poll(now) else {
            // Every lookup is answered at once, so an idle walker must name a future wakeup
            // (a wakeup at or before `now` with nothing to poll would spin its service).
            match walker.next_wakeup() {
                Some(_) if wakeups == MAX_WAKEUPS => break,
                Some(at) => {
                    assert!(at > now, "poll has nothing, yet the wakeup is due");
                    wakeups += 1;
                    now = at;
                    continue;
                }
                None => break,
            }
        };
        lookups += 1;
        // Entry names are `<label>.<domain>`; any other name is taken for a root lookup
        // (links may name any domain), with an occasional NXDOMAIN.
        let first = query.name.split('.').next().unwrap_or_default();
        let answer = match labels.get(first) {
            Some(line) => Ok(vec![(*line).clone()]),
            None if lookups % 7 == 0 => Err(ResolveError::NotFound),
            None => Ok(vec![root.clone()]),
        };
        for event in walker.on_response(query.id, answer, now) {
            if let WalkEvent::Node { .. } = event {
                nodes += 1;
            }
        }
        now += Duration::from_millis(10);
    }
    let status = walker.status();
    assert!(status.len() <= config.max_trees, "{} trees", status.len());
    for tree in &status {
        assert!(tree.nodes <= config.max_tree_entries, "{} nodes in one tree", tree.nodes);
    }
    assert!(nodes <= lookups);
});
