//! What the crawler knows about one node, and the pure bookkeeping that updates it.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
};

use serde::{Deserialize, Serialize};

use super::probe::ProbeResult;
use crate::{
    discovery::{Candidate, CandidateSource, Contact, ContactProtocol},
    record::{node_id, Enode, Enr, ForkId, NodeId, PeerId},
};

/// One crawled node: its addresses and record, when it was seen and answered, its score and
/// the result of the last RLPx probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CrawledNode {
    /// keccak256 of the public key (the ENR node id).
    pub node_id: NodeId,
    /// The 64-byte public key.
    pub peer_id: PeerId,
    /// Its IP address (from the newest record or neighbour entry).
    pub ip: IpAddr,
    /// Its RLPx port, if it advertises one.
    pub tcp_port: Option<u16>,
    /// Its discovery port.
    pub udp_port: Option<u16>,
    /// Its newest record, if any source gave one.
    #[serde(with = "enr_text")]
    pub enr: Option<Enr>,
    /// Found through discv4.
    pub discv4: bool,
    /// Found through discv5.
    pub discv5: bool,
    /// The fork id of its record's `eth` entry.
    pub fork_id: Option<ForkId>,
    /// When it was first found (Unix seconds).
    pub first_seen: u64,
    /// When it was last found in a neighbour list or stream (Unix seconds).
    pub last_seen: u64,
    /// go-ethereum's crawler score: +1 per answer, halved per failure.
    pub score: i64,
    /// Its first answer (Unix seconds).
    pub first_response: Option<u64>,
    /// Its last answer (Unix seconds).
    pub last_response: Option<u64>,
    /// Our last attempt to ask it (Unix seconds).
    pub last_check: Option<u64>,
    /// The last RLPx probe.
    pub probe: Option<ProbeResult>,
    /// It opened an RLPx session to us (it may not be dialable itself: NAT, a firewall).
    #[serde(default)]
    pub seen_inbound: bool,
    /// When it last did (Unix seconds).
    #[serde(default)]
    pub last_inbound: Option<u64>,
    /// What its last inbound session said (Hello, Status).
    #[serde(default)]
    pub inbound: Option<ProbeResult>,
    /// Which protocols it contacted us over (discv4, discv5, RLPx).
    #[serde(default)]
    pub inbound_via: InboundVia,
}

/// The protocols a node contacted us over. Written as a comma-separated list in a fixed
/// order (`discv4,discv5,rlpx`), the form the database column and the API use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InboundVia {
    /// It sent us a verified discv4 request (PING, FINDNODE, ENRRequest).
    pub discv4: bool,
    /// It started a discv5 handshake with us.
    pub discv5: bool,
    /// It opened an RLPx session to us.
    pub rlpx: bool,
}

impl InboundVia {
    /// Whether it never contacted us.
    pub fn is_empty(&self) -> bool {
        !(self.discv4 || self.discv5 || self.rlpx)
    }

    /// Parses what [`Display`](std::fmt::Display) writes; unknown names are ignored.
    pub fn parse(text: &str) -> Self {
        let mut via = Self::default();
        for name in text.split(',') {
            match name.trim() {
                "discv4" => via.discv4 = true,
                "discv5" => via.discv5 = true,
                "rlpx" => via.rlpx = true,
                _ => {}
            }
        }
        via
    }
}

impl std::fmt::Display for InboundVia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = [(self.discv4, "discv4"), (self.discv5, "discv5"), (self.rlpx, "rlpx")];
        let mut first = true;
        for (_, name) in names.iter().filter(|(on, _)| *on) {
            if !first {
                f.write_str(",")?;
            }
            f.write_str(name)?;
            first = false;
        }
        Ok(())
    }
}

impl CrawledNode {
    /// A node first seen now, from `candidate`.
    pub fn from_candidate(candidate: &Candidate, now: u64) -> Self {
        let mut node = Self {
            node_id: candidate.node_id(),
            peer_id: candidate.peer_id,
            ip: candidate.ip,
            tcp_port: candidate.tcp_port,
            udp_port: candidate.udp_port,
            enr: None,
            discv4: false,
            discv5: false,
            fork_id: None,
            first_seen: now,
            last_seen: now,
            score: 0,
            first_response: None,
            last_response: None,
            last_check: None,
            probe: None,
            seen_inbound: false,
            last_inbound: None,
            inbound: None,
            inbound_via: InboundVia::default(),
        };
        node.merge(candidate, now);
        node
    }

    /// Its `enode://` URL, if it has a TCP port to dial.
    pub fn enode(&self) -> Option<Enode> {
        Enode::dialable(self.peer_id, self.ip, self.tcp_port, self.udp_port)
    }

    /// The record's sequence number (0 without a record).
    pub fn seq(&self) -> u64 {
        self.enr.as_ref().map_or(0, |enr| enr.seq())
    }

    /// Folds a new sighting in; returns whether anything stored changed. A record only
    /// replaces one with a lower sequence number, so a neighbour that relays a stale copy
    /// cannot roll the node back.
    pub fn merge(&mut self, candidate: &Candidate, now: u64) -> bool {
        let mut before = self.clone();
        self.last_seen = self.last_seen.max(now);
        match candidate.source {
            CandidateSource::Discv4 => self.discv4 = true,
            CandidateSource::Discv5 => self.discv5 = true,
            _ => {}
        }
        match &candidate.enr {
            Some(enr) if self.enr.as_ref().is_none_or(|old| old.seq() < enr.seq()) => {
                self.enr = Some(enr.clone());
                self.take_endpoint(candidate);
                if let Some(fork_id) = candidate.fork_id() {
                    self.fork_id = Some(fork_id);
                }
            }
            Some(_) => {}
            // A record-less sighting (a discv4 neighbour entry) updates the endpoint only
            // while no record vouches for one.
            None if self.enr.is_none() => self.take_endpoint(candidate),
            None => {}
        }
        // A later last_seen alone is not news.
        before.last_seen = self.last_seen;
        before != *self
    }

    fn take_endpoint(&mut self, candidate: &Candidate) {
        self.ip = candidate.ip;
        if candidate.tcp_port.is_some() {
            self.tcp_port = candidate.tcp_port;
        }
        if candidate.udp_port.is_some() {
            self.udp_port = candidate.udp_port;
        }
    }
}

/// What [`CrawlState::found`] made of a sighting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sighting {
    /// A node not known before: ask it for neighbours.
    New,
    /// A known node whose record or endpoint changed.
    Updated,
    /// Nothing new.
    Known,
}

/// Counters shown on the progress bar and in the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CrawlCounts {
    /// Nodes known.
    pub found: usize,
    /// Nodes that answered at least once.
    pub answered: usize,
    /// Nodes probed over RLPx (either outcome).
    pub probed: usize,
    /// Probed nodes that completed the Hello exchange.
    pub dialable: usize,
}

/// The crawler's sans-IO core: every node it knows, keyed by node id, and which ones
/// changed since the store last saw them. The crawl task owns it; nothing here does I/O or
/// reads a clock (`now` is passed in).
#[derive(Debug, Default)]
pub struct CrawlState {
    nodes: HashMap<NodeId, CrawledNode>,
    dirty: HashSet<NodeId>,
    /// Nodes seen up in the current round (answered discovery, completed a Hello, or
    /// contacted us), with the last time they were: what uptime sessions are made of.
    up: HashMap<NodeId, u64>,
}

impl CrawlState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads nodes from an earlier run (not marked dirty: the store already has them).
    pub fn restore(&mut self, nodes: impl IntoIterator<Item = CrawledNode>) {
        for node in nodes {
            self.nodes.insert(node.node_id, node);
        }
    }

    /// Starts a new round: nobody has been seen up in it yet.
    pub fn begin_round(&mut self) {
        self.up.clear();
    }

    /// The nodes seen up since [`begin_round`](Self::begin_round), with the last time each
    /// was, in no particular order.
    pub fn up(&self) -> impl Iterator<Item = (&NodeId, u64)> {
        self.up.iter().map(|(id, at)| (id, *at))
    }

    fn mark_up(&mut self, id: &NodeId, at: u64) {
        let last = self.up.entry(*id).or_insert(at);
        *last = (*last).max(at);
    }

    /// Records a sighting of `candidate` at `now`.
    pub fn found(&mut self, candidate: &Candidate, now: u64) -> Sighting {
        let id = candidate.node_id();
        match self.nodes.get_mut(&id) {
            Some(node) => {
                let changed = node.merge(candidate, now);
                self.dirty.insert(id);
                if changed {
                    Sighting::Updated
                } else {
                    Sighting::Known
                }
            }
            None => {
                self.nodes.insert(id, CrawledNode::from_candidate(candidate, now));
                self.dirty.insert(id);
                Sighting::New
            }
        }
    }

    /// The node answered a request at `now` (a FINDNODE, an ENR request): score + 1, as
    /// go-ethereum's `devp2p crawl` does. `enr`, when the answer carried a record, replaces
    /// an older one.
    pub fn answered(&mut self, id: &NodeId, now: u64, enr: Option<&Enr>) {
        let Some(node) = self.nodes.get_mut(id) else { return };
        node.score += 1;
        node.last_check = Some(now);
        node.first_response.get_or_insert(now);
        node.last_response = Some(now);
        if let Some(enr) = enr {
            if let Ok(candidate) = Candidate::from_enr(enr, CandidateSource::Static) {
                node.merge(&candidate, now);
            }
        }
        self.dirty.insert(*id);
        self.mark_up(id, now);
    }

    /// The node did not answer at `now`: its score is halved (go-ethereum's rule, so a node
    /// that answered often survives a few misses but a dead one decays to 0).
    pub fn failed(&mut self, id: &NodeId, now: u64) {
        let Some(node) = self.nodes.get_mut(id) else { return };
        node.score /= 2;
        node.last_check = Some(now);
        self.dirty.insert(*id);
    }

    /// Stores the result of an RLPx probe; one that completed the Hello shows the node up.
    pub fn probed(&mut self, id: &NodeId, result: ProbeResult) {
        let Some(node) = self.nodes.get_mut(id) else { return };
        let up = result.hello.is_some().then_some(result.at);
        node.probe = Some(result);
        self.dirty.insert(*id);
        if let Some(at) = up {
            self.mark_up(id, at);
        }
    }

    /// A node opened an RLPx session to us from `addr` at `result.at`: it is recorded (a new
    /// node if unknown, with the address it came from and no UDP port) as `seen_inbound` and
    /// up in this round. Its dialability is left to the probes.
    pub fn inbound(&mut self, peer_id: PeerId, addr: std::net::SocketAddr, result: ProbeResult) {
        let id = node_id(&peer_id);
        let at = result.at;
        let node = self.nodes.entry(id).or_insert_with(|| {
            // Its TCP source port is an ephemeral one, not where it listens.
            let mut candidate = Candidate::from_enode(&Enode::new(peer_id, addr), CandidateSource::Static);
            candidate.tcp_port = None;
            candidate.udp_port = None;
            CrawledNode::from_candidate(&candidate, at)
        });
        node.last_seen = node.last_seen.max(at);
        node.seen_inbound = true;
        node.last_inbound = Some(at);
        node.inbound = Some(result);
        node.inbound_via.rlpx = true;
        self.dirty.insert(id);
        self.mark_up(&id, at);
    }

    /// A node contacted our discovery port at `now` (see [`Contact`]): it is recorded (a
    /// new node if unknown, at the address it came from) as `seen_inbound` and up in this
    /// round. A record it brought replaces an older one. Returns what that made of it, so
    /// a new node gets asked and probed like any other.
    pub fn contacted(&mut self, contact: &Contact, now: u64) -> Sighting {
        let source = match contact.protocol {
            ContactProtocol::Discv5 => CandidateSource::Discv5,
            _ => CandidateSource::Discv4,
        };
        // Its record when it has an address; else where its datagram came from (a node
        // behind NAT has no address of its own to announce).
        let candidate =
            contact.enr.as_ref().and_then(|enr| Candidate::from_enr(enr, source).ok()).unwrap_or_else(|| {
                let enode = Enode {
                    peer_id: contact.peer_id,
                    ip: contact.addr.ip(),
                    tcp_port: contact.tcp_port.unwrap_or(0),
                    udp_port: contact.addr.port(),
                };
                Candidate::from_enode(&enode, source)
            });
        let id = node_id(&contact.peer_id);
        let sighting = self.found(&candidate, now);
        if let Some(node) = self.nodes.get_mut(&id) {
            node.seen_inbound = true;
            node.last_inbound = Some(now);
            match contact.protocol {
                ContactProtocol::Discv5 => node.inbound_via.discv5 = true,
                _ => node.inbound_via.discv4 = true,
            }
        }
        self.mark_up(&id, now);
        sighting
    }

    /// A node by id.
    pub fn get(&self, id: &NodeId) -> Option<&CrawledNode> {
        self.nodes.get(id)
    }

    /// A node by its public key.
    pub fn get_by_peer(&self, peer_id: &PeerId) -> Option<&CrawledNode> {
        self.nodes.get(&node_id(peer_id))
    }

    /// Every known node, in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = &CrawledNode> {
        self.nodes.values()
    }

    /// How many nodes are known.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node is known.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The nodes changed since the last call, for the store to write in one transaction.
    pub fn take_dirty(&mut self) -> Vec<CrawledNode> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty.iter().filter_map(|id| self.nodes.get(id).cloned()).collect()
    }

    /// Found, answered, probed and dialable counts.
    pub fn counts(&self) -> CrawlCounts {
        let mut counts = CrawlCounts { found: self.nodes.len(), ..CrawlCounts::default() };
        for node in self.nodes.values() {
            counts.answered += usize::from(node.first_response.is_some());
            if let Some(probe) = &node.probe {
                counts.probed += 1;
                counts.dialable += usize::from(probe.hello.is_some());
            }
        }
        counts
    }
}

/// `Option<Enr>` as its `enr:` text.
mod enr_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::record::{parse_enr, Enr};

    pub(super) fn serialize<S: Serializer>(enr: &Option<Enr>, s: S) -> Result<S::Ok, S::Error> {
        match enr {
            Some(enr) => s.serialize_some(&enr.to_base64()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Enr>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| parse_enr(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}
