//! One iterative Kademlia lookup (discv4.md "Recursive lookup"): pure bookkeeping, driven
//! by the core.
//!
//! The lookup keeps the closest nodes seen so far (at most `3k`, so a flood of far-away
//! Neighbours cannot grow it), asks the `alpha` closest unasked ones at a time, and ends when
//! every one of the `k` closest live nodes has answered or failed. Each node remembers its
//! hop: seeds from our table are hop 0, a node first named by a hop-`h` node is hop `h+1`.

use super::proto::NodeRecord;
use crate::record::{node_id, NodeId, PeerId};

/// How a node in a lookup stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeState {
    /// Not contacted yet.
    NotAsked,
    /// Being bonded with or queried.
    InFlight,
    /// Answered with Neighbours.
    Replied,
    /// Timed out or refused.
    Failed,
}

#[derive(Debug, Clone)]
pub(crate) struct LookupNode {
    pub(crate) record: NodeRecord,
    pub(crate) node_id: NodeId,
    pub(crate) state: NodeState,
    pub(crate) hop: u32,
}

/// The state of one lookup.
#[derive(Debug)]
pub(crate) struct Lookup {
    /// The FindNode `target` field: a public key (or 64 random bytes).
    pub(crate) target: PeerId,
    target_id: NodeId,
    k: usize,
    alpha: usize,
    /// Sorted by distance to `target_id`, closest first.
    nodes: Vec<LookupNode>,
    /// FindNode queries sent (for reports).
    pub(crate) queries: u32,
    /// The hop at which the node whose key is `target` was first seen, if it was.
    pub(crate) target_hop: Option<u32>,
    /// A direct query ([`Lookup::direct`]): the records its one node answered so far.
    /// `None` for an iterative lookup.
    answers: Option<Vec<NodeRecord>>,
}

impl Lookup {
    pub(crate) fn new(target: PeerId, k: usize, alpha: usize, seeds: Vec<NodeRecord>) -> Self {
        let mut lookup = Self {
            target,
            target_id: node_id(&target),
            k,
            alpha,
            nodes: Vec::new(),
            queries: 0,
            target_hop: None,
            answers: None,
        };
        for seed in seeds {
            lookup.add(seed, 0);
        }
        lookup
    }

    /// One FINDNODE for `target` to `node`, no further hops: the result is what `node`
    /// answered (the entries of its table closest to `target`), not the closest nodes that
    /// replied. A crawler reads a node's table this way, one round trip per target.
    pub(crate) fn direct(target: PeerId, node: NodeRecord) -> Self {
        let mut lookup = Self::new(target, 1, 1, vec![node]);
        lookup.answers = Some(Vec::new());
        lookup
    }

    /// Whether this is a [`direct`](Self::direct) query.
    pub(crate) fn is_direct(&self) -> bool {
        self.answers.is_some()
    }

    /// A direct query's first NEIGHBOURS packet of several: kept, the node stays in flight
    /// until the rest arrive or its request times out.
    pub(crate) fn on_partial(&mut self, found: &[NodeRecord]) {
        if let Some(answers) = &mut self.answers {
            answers.extend_from_slice(found);
        }
    }

    fn capacity(&self) -> usize {
        self.k * 3
    }

    /// Adds a node named at hop `hop`; ignored if known or farther than everything kept.
    fn add(&mut self, record: NodeRecord, hop: u32) {
        if record.id == self.target && self.target_hop.is_none() {
            self.target_hop = Some(hop);
        }
        let id = node_id(&record.id);
        let distance = id ^ self.target_id;
        if self.nodes.iter().any(|n| n.record.id == record.id) {
            return;
        }
        let pos = self.nodes.partition_point(|n| (n.node_id ^ self.target_id) < distance);
        if pos >= self.capacity() {
            return;
        }
        self.nodes.insert(pos, LookupNode { record, node_id: id, state: NodeState::NotAsked, hop });
        if self.nodes.len() > self.capacity() {
            // Drop the farthest node that is not in flight: an in-flight one will report back.
            if let Some(drop) = self.nodes.iter().rposition(|n| n.state != NodeState::InFlight) {
                self.nodes.remove(drop);
            }
        }
    }

    /// The next nodes to contact (marking them in flight), keeping at most `alpha` in flight.
    pub(crate) fn next_queries(&mut self) -> Vec<NodeRecord> {
        let mut in_flight = self.nodes.iter().filter(|n| n.state == NodeState::InFlight).count();
        let mut out = Vec::new();
        let mut live_seen = 0;
        for node in &mut self.nodes {
            if in_flight >= self.alpha || live_seen >= self.k {
                break;
            }
            if node.state == NodeState::Failed {
                continue;
            }
            live_seen += 1;
            if node.state == NodeState::NotAsked {
                node.state = NodeState::InFlight;
                in_flight += 1;
                out.push(node.record);
            }
        }
        out
    }

    /// A queried node answered with `found`. Returns whether the node was part of this lookup.
    pub(crate) fn on_reply(&mut self, from: &PeerId, found: &[NodeRecord]) -> bool {
        let Some(node) = self.nodes.iter_mut().find(|n| &n.record.id == from) else { return false };
        if node.state == NodeState::InFlight {
            self.queries += 1;
        }
        node.state = NodeState::Replied;
        if let Some(answers) = &mut self.answers {
            answers.extend_from_slice(found);
            return true;
        }
        let hop = node.hop + 1;
        for record in found {
            self.add(*record, hop);
        }
        true
    }

    /// A node did not answer (or could not be bonded with).
    pub(crate) fn on_failure(&mut self, from: &PeerId) {
        if let Some(node) = self.nodes.iter_mut().find(|n| &n.record.id == from) {
            // A direct query whose node sent part of its answer before the timeout: that
            // part is its answer (a table of fewer than k entries never completes a reply).
            let partial = self.answers.as_ref().is_some_and(|a| !a.is_empty());
            node.state = if partial { NodeState::Replied } else { NodeState::Failed };
        }
    }

    /// The UDP address this lookup knows for `peer`.
    pub(crate) fn address_of(&self, peer: &PeerId) -> Option<std::net::SocketAddr> {
        self.nodes.iter().find(|n| &n.record.id == peer).map(|n| n.record.endpoint.udp_addr())
    }

    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> Vec<PeerId> {
        self.nodes.iter().filter(|n| n.state == NodeState::InFlight).map(|n| n.record.id).collect()
    }

    /// Whether `peer` is in flight in this lookup.
    pub(crate) fn is_in_flight(&self, peer: &PeerId) -> bool {
        self.nodes.iter().any(|n| &n.record.id == peer && n.state == NodeState::InFlight)
    }

    /// Done when none of the `k` closest non-failed nodes is unasked or in flight.
    pub(crate) fn is_done(&self) -> bool {
        self.nodes
            .iter()
            .filter(|n| n.state != NodeState::Failed)
            .take(self.k)
            .all(|n| n.state == NodeState::Replied)
    }

    /// The `k` closest nodes that answered, closest first.
    pub(crate) fn result(&self) -> Vec<NodeRecord> {
        if let Some(answers) = &self.answers {
            return answers.clone();
        }
        self.nodes.iter().filter(|n| n.state == NodeState::Replied).take(self.k).map(|n| n.record).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{discovery::v4::proto::Endpoint, NodeKey};

    fn rec() -> NodeRecord {
        NodeRecord {
            endpoint: Endpoint { ip: "10.0.0.1".parse().unwrap(), udp_port: 1, tcp_port: 1 },
            id: NodeKey::generate().peer_id(),
        }
    }

    #[test]
    fn alpha_bounded_and_terminates() {
        let target = NodeKey::generate().peer_id();
        let seeds: Vec<_> = (0..5).map(|_| rec()).collect();
        let mut l = Lookup::new(target, 16, 3, seeds.clone());
        let first = l.next_queries();
        assert_eq!(first.len(), 3);
        assert!(l.next_queries().is_empty());
        assert!(!l.is_done());
        l.on_reply(&first[0].id, &[]);
        l.on_failure(&first[1].id);
        let more = l.next_queries();
        assert_eq!(more.len(), 2);
        assert!(!l.is_done());
        for n in first[2..].iter().chain(&more) {
            l.on_reply(&n.id, &[]);
        }
        assert!(l.is_done());
        assert_eq!(l.result().len(), 4);
    }

    #[test]
    fn hops_and_target() {
        let target_key = NodeKey::generate();
        let target = NodeRecord { id: target_key.peer_id(), ..rec() };
        let seed = rec();
        let mut l = Lookup::new(target.id, 16, 3, vec![seed]);
        let q = l.next_queries();
        let middle = rec();
        l.on_reply(&q[0].id, &[middle]);
        let q = l.next_queries();
        assert_eq!(q, vec![middle]);
        l.on_reply(&middle.id, &[target]);
        assert_eq!(l.target_hop, Some(2));
    }

    #[test]
    fn bounded_by_capacity() {
        let target = NodeKey::generate().peer_id();
        let mut l = Lookup::new(target, 4, 3, vec![rec()]);
        let q = l.next_queries();
        let flood: Vec<_> = (0..100).map(|_| rec()).collect();
        l.on_reply(&q[0].id, &flood);
        assert!(l.nodes.len() <= 12);
        // Still sorted closest first.
        let tid = node_id(&target);
        assert!(l.nodes.windows(2).all(|w| (w[0].node_id ^ tid) <= (w[1].node_id ^ tid)));
    }

    #[test]
    fn unknown_reply_ignored() {
        let mut l = Lookup::new(NodeKey::generate().peer_id(), 16, 3, vec![rec()]);
        assert!(!l.on_reply(&NodeKey::generate().peer_id(), &[rec()]));
        assert_eq!(l.nodes.len(), 1);
    }
}
