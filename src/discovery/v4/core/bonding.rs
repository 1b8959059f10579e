//! Endpoint proofs (discv4.md, "Endpoint Proof"): the PING/PONG exchange that lets a node
//! answer FINDNODE and ENRRequest only for endpoints that have shown they receive at the
//! address they claim, so that discv4 cannot be used to amplify traffic at a third party.
//!
//! [`Bonds`] is the bookkeeping: per node, the IP and when each side's proof was last
//! renewed. The rest is the part of the core that runs the exchange: answering a PING (and
//! pinging back), matching a PONG to the PING it quotes, one PING in flight per node with the
//! callers that wait on it ([`Waiter`]), and requests held back until the node has pinged us
//! in turn ([`AfterPingBack`]).

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroUsize,
    time::{Duration, Instant},
};

use alloy_primitives::B256;
use lru::LruCache;

use super::{canonical_addr, CoreEvent, Discv4Core, DropReason, EnrAsk, RequestId, Timer, TARGET};
use crate::discovery::v4::{
    config::MAX_PENDING_REQUESTS,
    proto::{Endpoint, Message, Ping, Pong},
    table::{InsertResult, TableEntry},
};
use crate::record::PeerId;

/// What we know of each node's endpoint proof, for the most recently active nodes.
#[derive(Debug)]
pub(super) struct Bonds {
    bonds: LruCache<PeerId, Bond>,
    /// How long a proof holds (`Discv4Config::bond_expiration`).
    expiration: Duration,
}

impl Bonds {
    /// Room for `capacity` nodes (the least recently touched are forgotten first); a proof
    /// holds for `expiration`.
    pub(super) fn new(capacity: NonZeroUsize, expiration: Duration) -> Self {
        Self { bonds: LruCache::new(capacity), expiration }
    }

    fn entry(&mut self, peer: PeerId, ip: IpAddr) -> &mut Bond {
        let fresh = Bond { ip, pong_received: None, ping_received: None };
        let bond = self.bonds.get_or_insert_mut(peer, || fresh);
        if bond.ip != ip {
            // A proof holds for one IP only.
            *bond = fresh;
        }
        bond
    }

    /// `peer` answered our PING from `ip` with a matching PONG at `now`.
    pub(super) fn pong_received(&mut self, peer: PeerId, ip: IpAddr, now: Instant) {
        self.entry(peer, ip).pong_received = Some(now);
    }

    /// `peer` pinged us from `ip` at `now`, and we answered.
    pub(super) fn ping_received(&mut self, peer: PeerId, ip: IpAddr, now: Instant) {
        self.entry(peer, ip).ping_received = Some(now);
    }

    fn within(&self, at: Option<Instant>, now: Instant) -> bool {
        at.is_some_and(|t| now.saturating_duration_since(t) < self.expiration)
    }

    /// Their endpoint is proven to us (they answered our PING from this IP, recently).
    pub(super) fn is_proven(&self, peer: &PeerId, ip: IpAddr, now: Instant) -> bool {
        self.bonds.peek(peer).is_some_and(|b| b.ip == ip && self.within(b.pong_received, now))
    }

    /// Their endpoint was proven to us less than `window` ago.
    pub(super) fn proven_within(&self, peer: &PeerId, ip: IpAddr, now: Instant, window: Duration) -> bool {
        self.bonds.peek(peer).is_some_and(|b| {
            b.ip == ip && b.pong_received.is_some_and(|t| now.saturating_duration_since(t) < window)
        })
    }

    /// We are proven to them (they pinged us from this IP and we answered, recently).
    pub(super) fn knows_us(&self, peer: &PeerId, ip: IpAddr, now: Instant) -> bool {
        self.bonds.peek(peer).is_some_and(|b| b.ip == ip && self.within(b.ping_received, now))
    }

    /// The record of `peer`, for debugging output.
    #[cfg(test)]
    pub(super) fn peek(&self, peer: &PeerId) -> Option<&Bond> {
        self.bonds.peek(peer)
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Bond {
    ip: IpAddr,
    /// Our PING was answered by a matching PONG: their endpoint is proven to us.
    pong_received: Option<Instant>,
    /// They pinged us and we answered: we are (presumably) proven to them.
    ping_received: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Waiter {
    Lookup(u64),
    Request(RequestId),
    EnrAfterPong(RequestId),
    Revalidate,
    Inbound,
}

#[derive(Debug)]
pub(super) struct PendingPing {
    pub(super) peer: PeerId,
    pub(super) addr: SocketAddr,
    pub(super) tcp_port: u16,
    pub(super) waiters: Vec<Waiter>,
}

/// A request held back until the node it goes to pings us (geth's `ensureBond`): a node
/// answers FINDNODE and ENRRequest only from nodes whose endpoint it has proven, which it
/// does by pinging them after they pinged it. Asking at once, on their PONG, races their
/// PING and is dropped.
#[derive(Debug, Clone, Copy)]
pub(super) enum AfterPingBack {
    /// A lookup's FINDNODE (the address is the lookup's).
    FindNode(u64),
    /// An ENRRequest.
    Enr(EnrAsk),
}

impl Discv4Core {
    /// Reports (or stops reporting) every verified PING, FINDNODE and ENRRequest as a
    /// [`CoreEvent::Contacted`].
    pub fn report_contacts(&mut self, on: bool) {
        self.report_contacts = on;
    }

    /// A verified request from `peer` at `from`: reported when someone listens.
    pub(super) fn contacted(&mut self, peer: PeerId, from: SocketAddr, tcp_port: Option<u16>) {
        if self.report_contacts {
            self.events.push_back(CoreEvent::Contacted { peer, from, tcp_port });
        }
    }

    pub(super) fn on_ping(
        &mut self,
        now: Instant,
        from: SocketAddr,
        peer: PeerId,
        hash: B256,
        ping: Ping,
    ) -> Result<(), DropReason> {
        // The PONG goes to where the datagram came from, never to `ping.from`: answering a
        // claimed address would let anyone aim our replies at a third party.
        let pong = Pong {
            to: Endpoint { ip: from.ip(), udp_port: from.port(), tcp_port: ping.from.tcp_port },
            ping_hash: hash,
            expiration: self.expiration(now),
            enr_seq: Some(self.local.seq()),
        };
        self.reply(from, Message::Pong(pong));
        // A node we just pinged pings back to prove us in turn (geth does, right after its
        // PONG): that is our contact, not theirs. Any other PING is theirs.
        let ping_back = self.ping_by_peer.contains_key(&peer)
            || self.bonds.proven_within(&peer, from.ip(), now, self.config.request_timeout);
        if !ping_back {
            self.contacted(peer, from, (ping.from.tcp_port != 0).then_some(ping.from.tcp_port));
        }
        self.bonds.ping_received(peer, from.ip(), now);

        // Requests waiting for this node to ping us back can go now.
        self.release_ping_backs(now, peer, Some(from));
        if self.bonds.is_proven(&peer, from.ip(), now) {
            self.check_enr_seq(now, peer, from, ping.enr_seq);
        } else if !self.ping_by_peer.contains_key(&peer) {
            // Verify them in turn (geth does the same): until we hold a proof of their
            // endpoint we will not answer their FINDNODE, and they will not answer ours until
            // they hold one of us, which our PONG just gave them. One PING in flight per key,
            // and the per-IP request limit above, bound what a flood of fresh keys costs.
            self.send_ping(now, peer, from, ping.from.tcp_port, Waiter::Inbound);
        }
        Ok(())
    }

    pub(super) fn on_pong(
        &mut self,
        now: Instant,
        from: SocketAddr,
        peer: PeerId,
        pong: Pong,
    ) -> Result<(), DropReason> {
        // Only a PONG quoting a PING we sent, to this key at this IP, proves anything.
        match self.pings.get(&pong.ping_hash) {
            Some(p) if p.peer == peer && p.addr.ip() == from.ip() => {}
            _ => return Err(DropReason::Unsolicited),
        }
        let pending = self.pings.remove(&pong.ping_hash).expect("checked above");
        self.ping_by_peer.remove(&peer);
        self.bonds.pong_received(peer, from.ip(), now);
        self.vote(now, from.ip(), pong.to.ip);

        let endpoint = Endpoint { ip: from.ip(), udp_port: from.port(), tcp_port: pending.tcp_port };
        let mut entry = TableEntry::new(peer, endpoint, now);
        entry.enr_seq = pong.enr_seq;
        match self.table.insert(entry) {
            InsertResult::Inserted => {
                tracing::debug!(target: TARGET, ?peer, %from, "table: added");
                self.on_new_node(now, peer, from, pong.enr_seq);
                if self.self_lookup_pending {
                    self.start_self_lookup(now);
                }
            }
            InsertResult::Updated => {
                self.table.mark_live(&peer, now, pong.enr_seq);
                self.check_enr_seq(now, peer, from, pong.enr_seq);
            }
            // Its bucket is full, but the node has just proved its endpoint: the pool may
            // still want it. A table holds a few dozen of the busiest buckets' nodes; a
            // pool that dialed only table entries would never see the rest of a network
            // (go-ethereum's dialer takes every node its lookups meet, not only its table).
            InsertResult::Replacement => self.report(now, peer, endpoint, None),
            InsertResult::SubnetLimited | InsertResult::IsSelf => {}
        }
        for waiter in pending.waiters {
            match waiter {
                Waiter::Lookup(id) => self.after_ping_back(now, peer, from, AfterPingBack::FindNode(id)),
                Waiter::Request(request) => {
                    self.events.push_back(CoreEvent::PingResult { request, result: Ok(pong.enr_seq) })
                }
                Waiter::EnrAfterPong(request) => self.send_enr_request(now, peer, from, Some(request), false),
                Waiter::Revalidate | Waiter::Inbound => {}
            }
        }
        Ok(())
    }

    pub(super) fn send_ping(
        &mut self,
        now: Instant,
        peer: PeerId,
        addr: SocketAddr,
        tcp_port: u16,
        waiter: Waiter,
    ) {
        let addr = canonical_addr(addr);
        if peer == self.peer_id || !self.config.netrestrict.allows(&addr.ip()) {
            self.fail_waiter(now, peer, waiter);
            return;
        }
        // One PING in flight per node: later askers wait for the same PONG.
        if let Some(hash) = self.ping_by_peer.get(&peer) {
            if let Some(p) = self.pings.get_mut(hash) {
                if p.addr == addr {
                    if !p.waiters.contains(&waiter) {
                        p.waiters.push(waiter);
                    }
                    return;
                }
            }
        }
        if self.pings.len() >= MAX_PENDING_REQUESTS {
            self.fail_waiter(now, peer, waiter);
            return;
        }
        let ping = Ping {
            from: self.local_endpoint(addr.ip()),
            to: Endpoint { ip: addr.ip(), udp_port: addr.port(), tcp_port },
            expiration: self.expiration(now),
            enr_seq: Some(self.local.seq()),
        };
        let hash = self.send(addr, &Message::Ping(ping));
        let deadline = now + self.config.request_timeout;
        self.pings.insert(hash, PendingPing { peer, addr, tcp_port, waiters: vec![waiter] });
        self.ping_by_peer.insert(peer, hash);
        self.schedule(deadline, Timer::Ping(hash));
    }

    pub(super) fn fail_waiter(&mut self, now: Instant, peer: PeerId, waiter: Waiter) {
        match waiter {
            Waiter::Lookup(id) => {
                if let Some(state) = self.lookups.get_mut(&id) {
                    state.lookup.on_failure(&peer);
                }
                self.advance_lookup(now, id);
            }
            Waiter::Request(request) => {
                self.events.push_back(CoreEvent::PingResult { request, result: Err(()) })
            }
            Waiter::EnrAfterPong(request) => {
                self.events.push_back(CoreEvent::EnrResult { request, enr: None })
            }
            Waiter::Revalidate => {
                if let Some(promoted) = self.table.remove(&peer) {
                    tracing::debug!(target: TARGET, ?peer, ?promoted, "table: replaced dead node");
                    if let Some(entry) = self.table.get(&promoted) {
                        let (addr, tcp) = (entry.endpoint.udp_addr(), entry.endpoint.tcp_port);
                        self.send_ping(now, promoted, addr, tcp, Waiter::Revalidate);
                    }
                } else {
                    tracing::debug!(target: TARGET, ?peer, "table: removed dead node");
                }
            }
            Waiter::Inbound => {}
        }
    }

    /// Sends `request` at once if the node has pinged us (we are bonded on its side), else
    /// when it does, or after `request_timeout` if it does not (it may know us from before).
    pub(super) fn after_ping_back(
        &mut self,
        now: Instant,
        peer: PeerId,
        from: SocketAddr,
        request: AfterPingBack,
    ) {
        if self.bonds.knows_us(&peer, from.ip(), now) {
            self.send_after_ping_back(now, peer, Some(from), request);
            return;
        }
        if !self.ping_backs.contains_key(&peer) {
            self.schedule(now + self.config.request_timeout, Timer::PingBack(peer));
        }
        self.ping_backs.entry(peer).or_default().push(request);
    }

    /// Sends what waited for `peer` to ping us; `from` is where its PING came from, if it did.
    pub(super) fn release_ping_backs(&mut self, now: Instant, peer: PeerId, from: Option<SocketAddr>) {
        for request in self.ping_backs.remove(&peer).unwrap_or_default() {
            self.send_after_ping_back(now, peer, from, request);
        }
    }

    pub(super) fn send_after_ping_back(
        &mut self,
        now: Instant,
        peer: PeerId,
        from: Option<SocketAddr>,
        request: AfterPingBack,
    ) {
        match request {
            AfterPingBack::FindNode(id) => {
                if let Some(addr) = from.or_else(|| self.lookup_addr(id, &peer)) {
                    self.send_findnode(now, id, peer, addr);
                }
            }
            AfterPingBack::Enr(ask) => {
                self.send_enr_request_now(now, peer, EnrAsk { addr: from.unwrap_or(ask.addr), ..ask })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeKey;

    #[test]
    fn a_proof_holds_for_one_ip_and_expires() {
        let peer = NodeKey::generate().peer_id();
        let (ip, other) = (IpAddr::from([127, 0, 0, 2]), IpAddr::from([127, 0, 0, 3]));
        let start = Instant::now();
        let hour = Duration::from_secs(3600);
        let mut bonds = Bonds::new(NonZeroUsize::new(4).unwrap(), hour);
        assert!(!bonds.is_proven(&peer, ip, start) && !bonds.knows_us(&peer, ip, start));

        bonds.pong_received(peer, ip, start);
        assert!(bonds.is_proven(&peer, ip, start));
        assert!(!bonds.knows_us(&peer, ip, start), "their PONG proves them, not us");
        assert!(!bonds.is_proven(&peer, other, start), "a proof is for one IP");
        assert!(!bonds.is_proven(&peer, ip, start + hour), "and for bond_expiration");

        bonds.ping_received(peer, ip, start);
        assert!(bonds.knows_us(&peer, ip, start) && bonds.is_proven(&peer, ip, start));
        // The node moves: what it proved at the old IP is gone.
        bonds.ping_received(peer, other, start);
        assert!(bonds.knows_us(&peer, other, start));
        assert!(!bonds.is_proven(&peer, other, start) && !bonds.is_proven(&peer, ip, start));
    }
}
