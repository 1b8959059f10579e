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
mod tests;
