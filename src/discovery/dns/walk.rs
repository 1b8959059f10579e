//! The sans-IO tree walker: which name to look up next, and what a TXT answer means.
//!
//! [`DnsWalker`] knows every tree (configured or reached by a link), its verified root and
//! the hashes not yet fetched. It never touches the network or the clock: the caller asks
//! [`DnsWalker::poll`] for the next [`Query`], performs the TXT lookup however it likes,
//! and feeds the answer to [`DnsWalker::on_response`] with the current time; the walker
//! returns [`WalkEvent`]s (node records, root updates, errors).
//!
//! Walking follows go-ethereum's `dnsdisc` client: the link subtree of a tree is walked to
//! completion first (links are few and say which other trees to walk), then ENR leaves are
//! fetched one random missing hash at a time, so a consumer that stops early still gets a
//! random sample. A tree has at most one lookup in flight, so a slow or dead server only
//! delays its own tree. All work is bounded: entries per tree, branch depth, number of
//! trees and link depth are capped, and failing lookups back off.
//!
//! Links are reference-counted as in go-ethereum's `linkCache`: once a tree's link
//! subtree has been walked to its end, the trees it no longer names lose it as a referrer,
//! and a linked tree with no referrer left is dropped ([`WalkEvent::TreeRemoved`]), with
//! whatever only it linked to. A link subtree with an entry that could not be fetched
//! drops nothing: an unknown link set is not an empty one.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use rand::{rngs::StdRng, Rng, SeedableRng};

use super::{
    entry::{hash_matches, Entry, LinkEntry, RootEntry, ROOT_PREFIX},
    DnsConfig, DnsError, ResolveError,
};
use crate::record::Enr;

/// Identifies a lookup handed out by [`DnsWalker::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueryId(u64);

/// A TXT lookup to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Pass it back to [`DnsWalker::on_response`].
    pub id: QueryId,
    /// The fully qualified name to look up (without a trailing dot).
    pub name: String,
}

/// What the walker learned from an answer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum WalkEvent {
    /// A node record from a tree's ENR subtree (its signature already checked).
    Node {
        /// The record.
        enr: Box<Enr>,
        /// The domain of the tree it came from.
        tree: String,
    },
    /// A tree's root was accepted (first time, or a new sequence number or content).
    RootUpdated {
        /// The tree's domain.
        domain: String,
        /// The root's sequence number.
        seq: u64,
    },
    /// A link led to a tree not seen before; it is walked from now on.
    TreeAdded {
        /// The new tree.
        link: LinkEntry,
        /// The domain of the tree that linked to it.
        via: String,
    },
    /// No configured tree links to this tree any more (directly or through other links):
    /// it is no longer walked. Its nodes already emitted stay wherever they went.
    TreeRemoved {
        /// The tree no longer walked.
        link: LinkEntry,
    },
    /// Something went wrong; the walk goes on (the tree backs off, or skips the entry).
    Error(DnsError),
}

/// What the walker knows about one tree, for [`DnsWalker::status`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TreeStatus {
    /// The tree's URL.
    pub link: LinkEntry,
    /// The domain of the tree that linked to it; `None` for a configured tree.
    pub via: Option<String>,
    /// The sequence number of the accepted root, if any.
    pub seq: Option<u64>,
    /// Node records found since the root was last accepted.
    pub nodes: usize,
    /// Entries (root, branches, leaves) fetched successfully, over the walker's life.
    pub entries: usize,
    /// Hashes known but not fetched yet.
    pub pending: usize,
    /// Whether both subtrees of the current root have been walked to the end.
    pub complete: bool,
    /// Errors seen, over the walker's life.
    pub errors: usize,
    /// The most recent error.
    pub last_error: Option<DnsError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubtreeKind {
    Links,
    Enrs,
}

#[derive(Debug, Clone)]
struct Missing {
    hash: String,
    depth: usize,
    attempts: u32,
}

/// One subtree of one root: the hashes not fetched yet and every hash ever queued.
#[derive(Debug)]
struct Subtree {
    root: String,
    missing: Vec<Missing>,
    seen: HashSet<String>,
    /// Set once a cap was hit, so the error is reported once.
    capped: bool,
}

impl Subtree {
    fn new(root: &str) -> Self {
        Self {
            root: root.to_owned(),
            missing: vec![Missing { hash: root.to_owned(), depth: 0, attempts: 0 }],
            seen: HashSet::from([root.to_owned()]),
            capped: false,
        }
    }
}

#[derive(Debug)]
enum Pending {
    Root,
    Entry { kind: SubtreeKind, missing: Missing },
}

#[derive(Debug)]
struct Tree {
    link: LinkEntry,
    /// The trees whose current link subtree names this one. Empty for a configured tree,
    /// which is never dropped; a linked tree is dropped when this becomes empty.
    referrers: Vec<LinkEntry>,
    configured: bool,
    /// The links found so far in the current link subtree.
    found_links: Vec<LinkEntry>,
    /// An entry of the current link subtree was given up on, so `found_links` may be
    /// short: nothing is dropped on its account.
    links_incomplete: bool,
    link_depth: usize,
    root: Option<RootEntry>,
    root_due: Instant,
    root_failures: u32,
    links: Option<Subtree>,
    enrs: Option<Subtree>,
    in_flight: Option<(QueryId, Pending)>,
    /// No lookup before this (backoff after a failed entry lookup).
    retry_at: Instant,
    nodes: usize,
    entries: usize,
    errors: usize,
    last_error: Option<DnsError>,
}

impl Tree {
    fn new(link: LinkEntry, referrer: Option<LinkEntry>, link_depth: usize, now: Instant) -> Self {
        Self {
            link,
            configured: referrer.is_none(),
            referrers: referrer.into_iter().collect(),
            found_links: Vec::new(),
            links_incomplete: false,
            link_depth,
            root: None,
            root_due: now,
            root_failures: 0,
            links: None,
            enrs: None,
            in_flight: None,
            retry_at: now,
            nodes: 0,
            entries: 0,
            errors: 0,
            last_error: None,
        }
    }

    fn has_entry_work(&self) -> bool {
        let has = |s: &Option<Subtree>| s.as_ref().is_some_and(|s| !s.missing.is_empty());
        self.root.is_some() && (has(&self.links) || has(&self.enrs))
    }

    /// When this tree next has a lookup to make, if it is idle.
    fn ready_at(&self) -> Option<Instant> {
        if self.in_flight.is_some() {
            return None;
        }
        if self.root.is_none() {
            return Some(self.root_due.max(self.retry_at));
        }
        if self.has_entry_work() {
            return Some(self.retry_at.min(self.root_due));
        }
        Some(self.root_due)
    }
}

/// The sans-IO EIP-1459 client core. See the module docs.
#[derive(Debug)]
pub struct DnsWalker {
    config: DnsConfig,
    trees: Vec<Tree>,
    next_id: u64,
    /// Round-robin start for [`Self::poll`], so that no tree starves the others.
    cursor: usize,
    rng: StdRng,
}

impl DnsWalker {
    /// A walker with no trees, randomised from the OS.
    pub fn new(config: DnsConfig) -> Self {
        Self::with_rng(config, StdRng::from_entropy())
    }

    /// A walker whose random choices come from `seed` (for reproducible tests).
    pub fn with_seed(config: DnsConfig, seed: u64) -> Self {
        Self::with_rng(config, StdRng::seed_from_u64(seed))
    }

    fn with_rng(config: DnsConfig, rng: StdRng) -> Self {
        Self { config, trees: Vec::new(), next_id: 0, cursor: 0, rng }
    }

    /// Adds a configured tree. Returns false if it is already known.
    pub fn add_tree(&mut self, link: LinkEntry, now: Instant) -> bool {
        if self.find(&link).is_some() {
            return false;
        }
        self.trees.push(Tree::new(link, None, 0, now));
        true
    }

    /// The next lookup to make, or `None` if every tree is waiting (for an answer, a backoff
    /// or its next root check). Call until it returns `None`, then wait for an answer or
    /// [`Self::next_wakeup`].
    pub fn poll(&mut self, now: Instant) -> Option<Query> {
        let n = self.trees.len();
        for i in 0..n {
            let index = (self.cursor + i) % n;
            let tree = &mut self.trees[index];
            if tree.in_flight.is_some() {
                continue;
            }
            let pending = if tree.root.is_none() || now >= tree.root_due {
                if tree.root.is_none() && tree.retry_at > now {
                    continue;
                }
                Pending::Root
            } else if tree.retry_at > now {
                continue;
            } else if let Some(missing) = take_missing(&mut tree.links, &mut self.rng) {
                Pending::Entry { kind: SubtreeKind::Links, missing }
            } else if let Some(missing) = take_missing(&mut tree.enrs, &mut self.rng) {
                Pending::Entry { kind: SubtreeKind::Enrs, missing }
            } else {
                continue;
            };
            let name = match &pending {
                Pending::Root => tree.link.domain.clone(),
                Pending::Entry { missing, .. } => format!("{}.{}", missing.hash, tree.link.domain),
            };
            let id = QueryId(self.next_id);
            self.next_id += 1;
            tree.in_flight = Some((id, pending));
            self.cursor = index + 1;
            return Some(Query { id, name });
        }
        None
    }

    /// The earliest time at which [`Self::poll`] may have a new lookup, if no answer
    /// arrives before. `None` when no tree is idle.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.trees.iter().filter_map(Tree::ready_at).min()
    }

    /// Whether any lookup is awaiting its answer.
    pub fn in_flight(&self) -> usize {
        self.trees.iter().filter(|t| t.in_flight.is_some()).count()
    }

    /// Feeds the answer to a lookup: the TXT strings at the name, or why there are none.
    pub fn on_response(
        &mut self,
        id: QueryId,
        answer: Result<Vec<String>, ResolveError>,
        now: Instant,
    ) -> Vec<WalkEvent> {
        let mut events = Vec::new();
        let Some(index) = self.trees.iter().position(|t| t.in_flight.as_ref().is_some_and(|(q, _)| *q == id))
        else {
            return events;
        };
        let (_, pending) = self.trees[index].in_flight.take().expect("found by its in-flight query");
        let links_walked = match pending {
            Pending::Root => {
                self.on_root(index, answer, now, &mut events);
                false
            }
            Pending::Entry { kind, missing } => {
                self.on_entry(index, kind, missing, answer, now, &mut events);
                kind == SubtreeKind::Links
                    && self.trees[index].links.as_ref().is_some_and(|s| s.missing.is_empty())
            }
        };
        for event in &events {
            if let WalkEvent::Error(error) = event {
                tracing::debug!(target: "ethp2p::dns", tree = %self.trees[index].link.domain, %error, "DNS tree error");
                let tree = &mut self.trees[index];
                tree.errors += 1;
                tree.last_error = Some(error.clone());
            }
        }
        // The tree's link subtree has just been walked to its end: trees it no longer links
        // to lose it as a referrer (go-ethereum's linkCache.resetLinks). Last, because it
        // may remove trees and so move indices.
        if links_walked && !self.trees[index].links_incomplete {
            self.drop_unlinked(index, &mut events);
        }
        events
    }

    /// Takes tree `index` off the referrers of every tree its current link subtree no longer
    /// names, then drops every linked tree left without a referrer (and, in turn, the trees
    /// only they linked to).
    fn drop_unlinked(&mut self, index: usize, events: &mut Vec<WalkEvent>) {
        let parent = self.trees[index].link.clone();
        let found = std::mem::take(&mut self.trees[index].found_links);
        for tree in &mut self.trees {
            if !found.contains(&tree.link) {
                tree.referrers.retain(|r| *r != parent);
            }
        }
        self.trees[index].found_links = found;
        while let Some(orphan) = self.trees.iter().position(|t| !t.configured && t.referrers.is_empty()) {
            let tree = self.trees.remove(orphan);
            tracing::debug!(target: "ethp2p::dns", domain = %tree.link.domain, "DNS tree no longer linked, dropped");
            for other in &mut self.trees {
                other.referrers.retain(|r| *r != tree.link);
            }
            events.push(WalkEvent::TreeRemoved { link: tree.link });
        }
        self.cursor %= self.trees.len().max(1);
    }

    /// A snapshot of every tree.
    pub fn status(&self) -> Vec<TreeStatus> {
        self.trees
            .iter()
            .map(|t| {
                let pending = |s: &Option<Subtree>| s.as_ref().map_or(0, |s| s.missing.len());
                let in_flight = usize::from(matches!(t.in_flight, Some((_, Pending::Entry { .. }))));
                let pending = pending(&t.links) + pending(&t.enrs) + in_flight;
                TreeStatus {
                    link: t.link.clone(),
                    via: t.referrers.first().map(|r| r.domain.clone()),
                    seq: t.root.as_ref().map(|r| r.seq),
                    nodes: t.nodes,
                    entries: t.entries,
                    pending,
                    complete: t.root.is_some() && pending == 0,
                    errors: t.errors,
                    last_error: t.last_error.clone(),
                }
            })
            .collect()
    }

    fn find(&self, link: &LinkEntry) -> Option<usize> {
        self.trees.iter().position(|t| t.link.domain == link.domain && t.link.public_key == link.public_key)
    }

    fn root_backoff(&self, failures: u32) -> Duration {
        // 5 s, 10 s, 20 s, … capped at the recheck interval: a dead domain costs a handful
        // of queries per recheck period, not a steady stream.
        let backoff = Duration::from_secs(5).saturating_mul(1 << failures.saturating_sub(1).min(16));
        backoff.min(self.config.recheck_interval)
    }

    fn on_root(
        &mut self,
        index: usize,
        answer: Result<Vec<String>, ResolveError>,
        now: Instant,
        events: &mut Vec<WalkEvent>,
    ) {
        let recheck = self.config.recheck_interval;
        let result = self.check_root(index, answer);
        let tree = &mut self.trees[index];
        let root = match result {
            Ok(root) => root,
            Err(error) => {
                tree.root_failures += 1;
                let failures = tree.root_failures;
                let stale = matches!(error, DnsError::StaleRoot { .. });
                events.push(WalkEvent::Error(error));
                let wait = if stale { recheck } else { self.root_backoff(failures) };
                let tree = &mut self.trees[index];
                // With a root already accepted, keep walking it and only retry the root later.
                tree.root_due = now + wait;
                if tree.root.is_none() {
                    tree.retry_at = now + wait;
                }
                return;
            }
        };
        tree.root_failures = 0;
        tree.root_due = now + recheck;
        tree.entries += 1;
        if tree.root.as_ref() == Some(&root) {
            return;
        }
        if tree.links.as_ref().is_none_or(|s| s.root != root.link_root) {
            tree.links = Some(Subtree::new(&root.link_root));
            tree.found_links.clear();
            tree.links_incomplete = false;
        }
        if tree.enrs.as_ref().is_none_or(|s| s.root != root.enr_root) {
            tree.enrs = Some(Subtree::new(&root.enr_root));
            tree.nodes = 0;
        }
        tracing::debug!(target: "ethp2p::dns", domain = %tree.link.domain, seq = root.seq, "DNS tree root accepted");
        events.push(WalkEvent::RootUpdated { domain: tree.link.domain.clone(), seq: root.seq });
        tree.root = Some(root);
    }

    fn check_root(
        &self,
        index: usize,
        answer: Result<Vec<String>, ResolveError>,
    ) -> Result<RootEntry, DnsError> {
        let tree = &self.trees[index];
        let domain = &tree.link.domain;
        let txts = answer.map_err(|source| DnsError::Resolve { name: domain.clone(), source })?;
        let text = txts
            .iter()
            .find(|t| t.starts_with(ROOT_PREFIX))
            .ok_or_else(|| DnsError::NoRoot { domain: domain.clone() })?;
        let root: RootEntry =
            text.parse().map_err(|source| DnsError::BadRoot { domain: domain.clone(), source })?;
        if !root.verify(&tree.link.public_key) {
            return Err(DnsError::BadRootSignature { domain: domain.clone() });
        }
        // EIP-1459: the sequence number is increased whenever the tree changes. A lower one
        // is an old root (a replay, or a stale resolver cache): keep what we have.
        if let Some(known) = &tree.root {
            if root.seq < known.seq {
                return Err(DnsError::StaleRoot { domain: domain.clone(), seq: root.seq, known: known.seq });
            }
        }
        Ok(root)
    }

    fn on_entry(
        &mut self,
        index: usize,
        kind: SubtreeKind,
        missing: Missing,
        answer: Result<Vec<String>, ResolveError>,
        now: Instant,
        events: &mut Vec<WalkEvent>,
    ) {
        let max_attempts = self.config.entry_attempts;
        let tree = &mut self.trees[index];
        let name = format!("{}.{}", missing.hash, tree.link.domain);
        let txts = match answer {
            Ok(txts) => txts,
            Err(source) => {
                // Transient (or not): retry this hash a few times with backoff, then drop it.
                let attempts = missing.attempts + 1;
                tree.retry_at = now + Duration::from_secs(1 << attempts.min(6));
                if attempts < max_attempts {
                    if let Some(subtree) = subtree_mut(tree, kind) {
                        subtree.missing.push(Missing { attempts, ..missing });
                    }
                } else if kind == SubtreeKind::Links {
                    tree.links_incomplete = true;
                }
                events.push(WalkEvent::Error(DnsError::Resolve { name, source }));
                return;
            }
        };
        // A name may carry several TXT records; the entry is the one whose hash matches.
        let Some(text) = txts.iter().find(|t| hash_matches(&missing.hash, t)) else {
            tree.links_incomplete |= kind == SubtreeKind::Links;
            events.push(WalkEvent::Error(DnsError::HashMismatch { name }));
            return;
        };
        let entry = match text.parse::<Entry>() {
            Ok(entry) => entry,
            Err(source) => {
                tree.links_incomplete |= kind == SubtreeKind::Links;
                events.push(WalkEvent::Error(DnsError::BadEntry { name, source }));
                return;
            }
        };
        tree.entries += 1;
        match (kind, entry) {
            (_, Entry::Branch(branch)) => {
                let limits = (self.config.max_tree_entries, self.config.max_tree_depth);
                let domain = tree.link.domain.clone();
                let Some(subtree) = subtree_mut(tree, kind) else { return };
                for child in branch.children {
                    if let Err(error) = push_child(subtree, child, missing.depth + 1, limits, &domain) {
                        events.push(WalkEvent::Error(error));
                        tree.links_incomplete |= kind == SubtreeKind::Links;
                        break;
                    }
                }
            }
            (SubtreeKind::Enrs, Entry::Enr(enr)) => {
                tree.nodes += 1;
                events.push(WalkEvent::Node { enr, tree: tree.link.domain.clone() });
            }
            (SubtreeKind::Links, Entry::Link(link)) => self.on_link(index, link, now, events),
            (_, other) => {
                tree.links_incomplete |= kind == SubtreeKind::Links;
                events.push(WalkEvent::Error(DnsError::UnexpectedEntry { name, kind: other.kind() }))
            }
        }
    }

    fn on_link(&mut self, parent: usize, link: LinkEntry, now: Instant, events: &mut Vec<WalkEvent>) {
        let parent_link = self.trees[parent].link.clone();
        if !self.trees[parent].found_links.contains(&link) {
            self.trees[parent].found_links.push(link.clone());
        }
        if let Some(existing) = self.find(&link) {
            // A tree already walked. If it is this tree or one of its ancestors, the links
            // form a cycle: say so. Otherwise two trees share a link, which is fine: it is
            // walked once and kept while either links to it.
            if existing == parent || self.is_ancestor(existing, parent) {
                events.push(WalkEvent::Error(DnsError::LinkLoop { domain: link.domain }));
                return;
            }
            let tree = &mut self.trees[existing];
            if !tree.configured && !tree.referrers.contains(&parent_link) {
                tree.referrers.push(parent_link);
            }
            return;
        }
        let depth = self.trees[parent].link_depth + 1;
        if self.trees.len() >= self.config.max_trees {
            let limit = self.config.max_trees;
            events.push(WalkEvent::Error(DnsError::TooManyLinks {
                domain: link.domain,
                what: "trees",
                limit,
            }));
            return;
        }
        if depth > self.config.max_link_depth {
            let limit = self.config.max_link_depth;
            let error = DnsError::TooManyLinks { domain: link.domain, what: "link levels", limit };
            events.push(WalkEvent::Error(error));
            return;
        }
        let via = parent_link.domain.clone();
        self.trees.push(Tree::new(link.clone(), Some(parent_link), depth, now));
        events.push(WalkEvent::TreeAdded { link, via });
    }

    /// Whether tree `ancestor` links, directly or through other trees, to tree `index`.
    fn is_ancestor(&self, ancestor: usize, index: usize) -> bool {
        let target = &self.trees[ancestor].link;
        let mut seen = vec![index];
        let mut queue = vec![index];
        while let Some(i) = queue.pop() {
            for referrer in &self.trees[i].referrers {
                if referrer == target {
                    return true;
                }
                if let Some(j) = self.find(referrer) {
                    if !seen.contains(&j) {
                        seen.push(j);
                        queue.push(j);
                    }
                }
            }
        }
        false
    }
}

fn subtree_mut(tree: &mut Tree, kind: SubtreeKind) -> Option<&mut Subtree> {
    match kind {
        SubtreeKind::Links => tree.links.as_mut(),
        SubtreeKind::Enrs => tree.enrs.as_mut(),
    }
}

/// A random missing hash: random order spreads the nodes a partial walk yields.
fn take_missing(subtree: &mut Option<Subtree>, rng: &mut StdRng) -> Option<Missing> {
    let missing = &mut subtree.as_mut()?.missing;
    if missing.is_empty() {
        return None;
    }
    let index = rng.gen_range(0..missing.len());
    Some(missing.swap_remove(index))
}

fn push_child(
    subtree: &mut Subtree,
    child: String,
    depth: usize,
    (max_entries, max_depth): (usize, usize),
    domain: &str,
) -> Result<(), DnsError> {
    if subtree.capped {
        return Ok(());
    }
    if depth > max_depth {
        subtree.capped = true;
        return Err(DnsError::TreeTooLarge { domain: domain.to_owned(), what: "levels", limit: max_depth });
    }
    if subtree.seen.contains(&child) {
        // Listed twice (in one branch or two): fetch once.
        return Ok(());
    }
    if subtree.seen.len() >= max_entries {
        subtree.capped = true;
        return Err(DnsError::TreeTooLarge {
            domain: domain.to_owned(),
            what: "entries",
            limit: max_entries,
        });
    }
    subtree.seen.insert(child.clone());
    subtree.missing.push(Missing { hash: child, depth, attempts: 0 });
    Ok(())
}

#[cfg(test)]
mod tests {
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
            "enrtree://AKPYQIUQIL7PSIACI32J7FGZW56E5FKHEFCCOFHILBIMW3M6LWXS2@nodes.example.org"
                .parse()
                .unwrap();
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
        assert!(errs
            .iter()
            .any(|e| matches!(e, DnsError::BadEntry { source: EntryError::InvalidHash(_), .. })));
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
}
