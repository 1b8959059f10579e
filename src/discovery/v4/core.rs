//! The sans-IO discv4 state machine: the table, endpoint proofs, pending requests, lookups,
//! rate limits and IP votes. It never touches a socket or the clock.
//!
//! Inputs: [`Discv4Core::handle_datagram`] (bytes and their real source address),
//! [`Discv4Core::handle_timeouts`], and commands such as [`Discv4Core::lookup`]. Each takes
//! `now`. Outputs are pulled: [`Discv4Core::poll_transmit`] gives datagrams to send
//! ([`Discv4Core::poll_outgoing`] leaves the replies unsigned, see `core/io.rs`),
//! [`Discv4Core::poll_event`] gives [`CoreEvent`]s, [`Discv4Core::next_timeout`] says when to
//! call `handle_timeouts` next. The service task is a loop around these; a simulation can
//! run hundreds of cores in virtual time inside one test.
//!
//! Strictness (what the devp2p v4 conformance suite checks):
//! - a valid PING gets a PONG sent to the datagram's source, whatever `from` and `to` say;
//! - expired packets and unknown packet types are ignored;
//! - FINDNODE and ENRRequest are answered only for a bonded endpoint: a PONG of that key,
//!   from that IP, answering our PING, within `bond_expiration`;
//! - a PONG must quote the hash of a PING we sent to that key at that IP;
//! - NEIGHBOURS and ENRResponse count only when we asked that key at that IP;
//! - requests are rate-limited per source IP, before the signature is even checked.
//!
//! The endpoint proofs (PING/PONG, their bookkeeping and the requests that wait on them) are
//! in `core/bonding.rs`; what the core reports ([`CoreEvent`], [`Inbound`], [`Discv4Stats`])
//! is in `event.rs`.

#![cfg_attr(not(any(test, feature = "test-utils")), allow(unreachable_pub, dead_code))]

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, VecDeque},
    net::{IpAddr, SocketAddr},
    num::NonZeroUsize,
    time::Instant,
};

use alloy_primitives::B256;
use lru::LruCache;
use rand::{rngs::StdRng, Rng, SeedableRng};

mod bonding;
mod io;

use self::bonding::{AfterPingBack, Bonds, PendingPing, Waiter};
use super::event::{CoreEvent, Discv4Stats, DropReason, Outgoing, RequestId};
use super::{
    config::{Discv4Config, MAX_PENDING_REQUESTS, MAX_TRACKED_NODES},
    lookup::Lookup,
    proto::{self, Endpoint, EnrRequest, EnrResponse, FindNode, Message, Neighbours, NodeRecord},
    table::{Table, TableEntry},
};
use crate::discovery::votes::{local_is_lan, IpVotes};
use crate::{
    discovery::{eth_entry_of, Candidate, CandidateSource, EthEntry},
    record::{
        net::{canonical, relay_allowed},
        node_id, Enode, Enr, LocalEnr, PeerId,
    },
};

const TARGET: &str = "ethp2p::discv4";

#[derive(Debug)]
struct PendingFindNode {
    addr: SocketAddr,
    lookup: u64,
    deadline: Instant,
    received: usize,
}

#[derive(Debug)]
struct PendingEnr {
    /// The request's packet hash, which the answer quotes.
    hash: B256,
    addr: SocketAddr,
    /// Callers waiting for this answer (several may ask while one request is out).
    requests: Vec<RequestId>,
    /// The node's first record fetch: on failure it is still reported, without a record.
    first: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Ping(B256),
    FindNode(PeerId),
    Enr(PeerId, B256),
    PingBack(PeerId),
    Revalidate,
    Lookup,
}

/// An ENRRequest to send: where to, for which caller (if any), and whether the node is new
/// to the table (it is reported when the answer, or the timeout, comes).
#[derive(Debug, Clone, Copy)]
struct EnrAsk {
    addr: SocketAddr,
    request: Option<RequestId>,
    first: bool,
}

#[derive(Debug)]
struct LookupState {
    lookup: Lookup,
    request: Option<RequestId>,
}

#[derive(Debug, Clone, Copy)]
struct RateBucket {
    tokens: f64,
    last: Instant,
}

/// The discv4 state machine. See the module docs.
#[derive(Debug)]
pub struct Discv4Core {
    config: Discv4Config,
    local: LocalEnr,
    peer_id: PeerId,
    table: Table,
    bonds: Bonds,
    pings: HashMap<B256, PendingPing>,
    ping_by_peer: HashMap<PeerId, B256>,
    findnodes: HashMap<PeerId, PendingFindNode>,
    ping_backs: HashMap<PeerId, Vec<AfterPingBack>>,
    queued_findnodes: HashMap<PeerId, Vec<(u64, SocketAddr)>>,
    /// ENRRequests in flight, one per node, keyed by node and not by packet hash: an
    /// ENRRequest names no recipient, so two sent in the same expiration second to different
    /// nodes are the same packet with the same hash (signatures are deterministic).
    enrs: HashMap<PeerId, PendingEnr>,
    lookups: HashMap<u64, LookupState>,
    next_lookup_id: u64,
    background_lookup: Option<u64>,
    self_lookup_pending: bool,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    timer_kinds: HashMap<u64, Timer>,
    next_timer: u64,
    limiter: LruCache<IpAddr, RateBucket>,
    /// What verified PONGs say our address is (see [`IpVotes`]): IPv4 statements and IPv6
    /// statements apart, as a dual-stack node has one address of each and neither may
    /// outvote the other.
    votes: [IpVotes; 2],
    outbox: VecDeque<Outgoing>,
    events: VecDeque<CoreEvent>,
    /// Whether verified requests are reported as [`CoreEvent::Contacted`]: off until the
    /// service has a listener, so a node nobody watches queues nothing.
    report_contacts: bool,
    stats: Discv4Stats,
    base_instant: Instant,
    base_unix: u64,
    rng: StdRng,
}

impl Discv4Core {
    /// A core for the node whose record is `local`. `now` and `unix_now` (seconds) anchor
    /// the virtual clock: packet expirations are computed from them. `seed` seeds the random
    /// lookup targets, so a simulation is reproducible.
    pub fn new(config: Discv4Config, local: LocalEnr, now: Instant, unix_now: u64, seed: u64) -> Self {
        let peer_id = local.key().peer_id();
        let table =
            Table::new(local.node_id(), config.bucket_size, config.max_replacements, config.subnet_limits);
        let tracked = NonZeroUsize::new(MAX_TRACKED_NODES).expect("non-zero");
        let mut core = Self {
            local,
            peer_id,
            table,
            bonds: Bonds::new(tracked, config.bond_expiration),
            pings: HashMap::new(),
            ping_by_peer: HashMap::new(),
            findnodes: HashMap::new(),
            ping_backs: HashMap::new(),
            queued_findnodes: HashMap::new(),
            enrs: HashMap::new(),
            lookups: HashMap::new(),
            next_lookup_id: 0,
            background_lookup: None,
            self_lookup_pending: true,
            timers: BinaryHeap::new(),
            timer_kinds: HashMap::new(),
            next_timer: 0,
            limiter: LruCache::new(tracked),
            votes: [(); 2].map(|()| {
                IpVotes::new(
                    config.ip_vote_window,
                    config.min_ip_votes,
                    local_is_lan(config.listen_addr.ip()),
                )
            }),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            report_contacts: false,
            stats: Discv4Stats::default(),
            base_instant: now,
            base_unix: unix_now,
            rng: StdRng::seed_from_u64(seed),
            config,
        };
        core.schedule(now + core.config.revalidation_interval, Timer::Revalidate);
        core.schedule(now + core.config.lookup_interval, Timer::Lookup);
        core
    }

    /// Pings the configured bootnodes; the self-lookup starts when the first one answers.
    pub fn bootstrap(&mut self, now: Instant) {
        for enode in self.config.bootnodes.clone() {
            self.add_node(now, &enode);
        }
        if self.config.bootnodes.is_empty() && !self.table.is_empty() {
            self.start_self_lookup(now);
        }
    }

    /// Pings a node so that it enters the table once it answers.
    pub fn add_node(&mut self, now: Instant, enode: &Enode) {
        self.send_ping(now, enode.peer_id, enode.udp_addr(), enode.tcp_port, Waiter::Inbound);
    }

    /// Our public key.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The routing table.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Counters since start.
    pub fn stats(&self) -> Discv4Stats {
        Discv4Stats { table_len: self.table.len() as u64, ..self.stats }
    }

    /// The external IP that a majority of recent PONGs reported, if any.
    pub fn predicted_ip(&self) -> Option<IpAddr> {
        self.votes[0].predicted().or(self.votes[1].predicted())
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<CoreEvent> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeouts`] must be called next.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Starts a lookup for `target` (a public key: the lookup converges on keccak256 of it).
    pub fn lookup(&mut self, now: Instant, target: PeerId, request: Option<RequestId>) {
        let seeds = self.table.closest(&node_id(&target), self.config.bucket_size);
        let seeds = seeds.into_iter().map(TableEntry::record).collect();
        let id = self.next_lookup_id;
        self.next_lookup_id += 1;
        let lookup = Lookup::new(target, self.config.bucket_size, self.config.alpha, seeds);
        self.lookups.insert(id, LookupState { lookup, request });
        tracing::debug!(target: TARGET, id, ?target, "lookup started");
        self.advance_lookup(now, id);
    }

    /// Sends one FINDNODE for `target` to `enode` (bonding first if needed); the records it
    /// answered come as [`CoreEvent::LookupFinished`] (empty if it did not answer in time).
    pub fn find_node(&mut self, now: Instant, enode: &Enode, target: PeerId, request: RequestId) {
        let endpoint = Endpoint { ip: enode.ip, udp_port: enode.udp_port, tcp_port: enode.tcp_port };
        let lookup = Lookup::direct(target, NodeRecord { endpoint, id: enode.peer_id });
        let id = self.next_lookup_id;
        self.next_lookup_id += 1;
        self.lookups.insert(id, LookupState { lookup, request: Some(request) });
        self.advance_lookup(now, id);
    }

    /// Pings a node; the answer comes as [`CoreEvent::PingResult`].
    pub fn ping(&mut self, now: Instant, enode: &Enode, request: RequestId) {
        self.send_ping(now, enode.peer_id, enode.udp_addr(), enode.tcp_port, Waiter::Request(request));
    }

    /// Fetches a node's record (bonding first); the answer comes as [`CoreEvent::EnrResult`].
    pub fn request_enr(&mut self, now: Instant, enode: &Enode, request: RequestId) {
        let addr = enode.udp_addr();
        if self.bonds.is_proven(&enode.peer_id, addr.ip(), now) {
            self.send_enr_request(now, enode.peer_id, addr, Some(request), false);
        } else {
            self.send_ping(now, enode.peer_id, addr, enode.tcp_port, Waiter::EnrAfterPong(request));
        }
    }

    fn unix_now(&self, now: Instant) -> u64 {
        self.base_unix + now.saturating_duration_since(self.base_instant).as_secs()
    }

    fn expiration(&self, now: Instant) -> u64 {
        self.unix_now(now) + self.config.packet_expiration.as_secs()
    }

    fn schedule(&mut self, at: Instant, timer: Timer) {
        let id = self.next_timer;
        self.next_timer += 1;
        self.timers.push(Reverse((at, id)));
        self.timer_kinds.insert(id, timer);
    }

    /// Our endpoint as a PING to `to` states it: the record's address of `to`'s family when
    /// it has one (a dual-stack node tells an IPv6 peer its IPv6 address), else the other.
    fn local_endpoint(&self, to: IpAddr) -> Endpoint {
        let content = self.local.content();
        let v4 = content.ip4.map(|ip| (IpAddr::V4(ip), content.udp4));
        let v6 = content.ip6.map(|ip| (IpAddr::V6(ip), content.udp6));
        let preferred = if canonical(to).is_ipv6() { v6.or(v4) } else { v4.or(v6) };
        let (ip, udp) = preferred.unwrap_or((IpAddr::from([0, 0, 0, 0]), None));
        Endpoint {
            ip,
            udp_port: udp.unwrap_or(self.config.listen_addr.port()),
            tcp_port: self.config.tcp_port.unwrap_or(0),
        }
    }

    fn on_findnode(
        &mut self,
        now: Instant,
        from: SocketAddr,
        peer: PeerId,
        find: FindNode,
    ) -> Result<(), DropReason> {
        // Answering an unproven endpoint would make us an amplifier for spoofed sources.
        if !self.bonds.is_proven(&peer, from.ip(), now) {
            return Err(DropReason::NotBonded);
        }
        self.contacted(peer, from, None);
        let target = node_id(&find.target);
        let requester = from.ip();
        let nodes: Vec<NodeRecord> = self
            .table
            .closest(&target, self.config.bucket_size)
            .into_iter()
            .filter(|e| relay_allowed(requester, e.endpoint.ip))
            .map(TableEntry::record)
            .collect();
        for message in proto::split_neighbours(&nodes, self.expiration(now)) {
            self.reply(from, message);
        }
        Ok(())
    }

    fn on_neighbours(
        &mut self,
        now: Instant,
        from: SocketAddr,
        peer: PeerId,
        n: Neighbours,
    ) -> Result<(), DropReason> {
        let Some(pending) = self.findnodes.get_mut(&peer) else { return Err(DropReason::Unsolicited) };
        if pending.addr.ip() != from.ip() {
            return Err(DropReason::Unsolicited);
        }
        pending.received += n.nodes.len();
        let lookup_id = pending.lookup;
        let complete = pending.received >= self.config.bucket_size;
        if complete {
            self.findnodes.remove(&peer);
        }
        let sender = from.ip();
        let nodes: Vec<NodeRecord> = n
            .nodes
            .into_iter()
            .filter(|r| {
                r.id != self.peer_id
                    && r.endpoint.udp_port != 0
                    && !r.endpoint.ip.is_unspecified()
                    && !r.endpoint.ip.is_multicast()
                    && relay_allowed(sender, r.endpoint.ip)
                    && self.config.netrestrict.allows(&r.endpoint.ip)
            })
            .collect();
        if let Some(state) = self.lookups.get_mut(&lookup_id) {
            // A direct query waits for the whole answer (up to k records in two packets).
            if state.lookup.is_direct() && !complete {
                state.lookup.on_partial(&nodes);
            } else {
                state.lookup.on_reply(&peer, &nodes);
            }
        }
        self.advance_lookup(now, lookup_id);
        if complete {
            self.send_queued_findnode(now, peer);
        }
        Ok(())
    }

    fn on_enr_request(
        &mut self,
        now: Instant,
        from: SocketAddr,
        peer: PeerId,
        hash: B256,
    ) -> Result<(), DropReason> {
        if !self.bonds.is_proven(&peer, from.ip(), now) {
            return Err(DropReason::NotBonded);
        }
        self.contacted(peer, from, None);
        let response = EnrResponse { request_hash: hash, enr: self.local.record() };
        self.reply(from, Message::EnrResponse(response));
        Ok(())
    }

    fn on_enr_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        peer: PeerId,
        response: EnrResponse,
    ) -> Result<(), DropReason> {
        match self.enrs.get(&peer) {
            Some(p) if p.hash == response.request_hash && p.addr.ip() == from.ip() => {}
            _ => return Err(DropReason::Unsolicited),
        }
        // A record signed by another key is no answer.
        if response.enr.node_id().raw() != node_id(&peer).0 {
            return Err(DropReason::Unsolicited);
        }
        let pending = self.enrs.remove(&peer).expect("checked above");
        let enr = response.enr;
        if let Some(entry) = self.table.get_mut(&peer) {
            entry.enr_seq = Some(entry.enr_seq.unwrap_or(0).max(enr.seq()));
            entry.enr = Some(enr.clone());
            let endpoint = entry.endpoint;
            self.report(now, peer, endpoint, Some(enr.clone()));
        }
        for request in pending.requests {
            self.events.push_back(CoreEvent::EnrResult { request, enr: Some(enr.clone()) });
        }
        Ok(())
    }

    /// A node just entered the table: fetch its record, or report it right away.
    fn on_new_node(&mut self, now: Instant, peer: PeerId, addr: SocketAddr, enr_seq: Option<u64>) {
        // A PONG without enr-seq comes from a node that does not speak EIP-868.
        if self.config.enr_requests && enr_seq.is_some() {
            self.send_enr_request(now, peer, addr, None, true);
        } else if let Some(entry) = self.table.get(&peer) {
            let endpoint = entry.endpoint;
            self.report(now, peer, endpoint, None);
        }
    }

    /// EIP-868: a seq above the record we hold means the record changed; fetch it again.
    fn check_enr_seq(&mut self, now: Instant, peer: PeerId, addr: SocketAddr, seq: Option<u64>) {
        let Some(seq) = seq else { return };
        let Some(entry) = self.table.get_mut(&peer) else { return };
        let known = entry.enr.as_ref().map(|e| e.seq());
        if seq > entry.enr_seq.unwrap_or(0) {
            entry.enr_seq = Some(seq);
        }
        if self.config.enr_requests && known.is_some_and(|k| seq > k) {
            self.send_enr_request(now, peer, addr, None, false);
        }
    }

    fn report(&mut self, now: Instant, peer: PeerId, endpoint: Endpoint, enr: Option<Enr>) {
        let (eth, tcp_port) = match &enr {
            Some(enr) => {
                let tcp = match endpoint.ip {
                    IpAddr::V4(_) => enr.tcp4(),
                    IpAddr::V6(_) => enr.tcp6().or(enr.tcp4()),
                };
                (eth_entry_of(enr), tcp.or(Some(endpoint.tcp_port)))
            }
            None => (EthEntry::Unknown, Some(endpoint.tcp_port)),
        };
        self.stats.candidates += 1;
        self.events.push_back(CoreEvent::Discovered(Candidate {
            peer_id: peer,
            ip: endpoint.ip,
            tcp_port: tcp_port.filter(|p| *p != 0),
            udp_port: Some(endpoint.udp_port),
            eth,
            enr,
            source: CandidateSource::Discv4,
            seen: now,
        }));
    }

    fn send_findnode(&mut self, now: Instant, lookup: u64, peer: PeerId, addr: SocketAddr) {
        let Some(state) = self.lookups.get(&lookup) else { return };
        let target = state.lookup.target;
        if let Some(pending) = self.findnodes.get(&peer) {
            if pending.received == 0 {
                // NEIGHBOURS cannot say which FINDNODE they answer: one query per node at a
                // time, the next one waits for this one to end.
                self.queued_findnodes.entry(peer).or_default().push((lookup, addr));
                return;
            }
            // That query has its answer and only waits for a possible second packet.
        }
        let message = Message::FindNode(FindNode { target, expiration: self.expiration(now) });
        self.send(addr, &message);
        let deadline = now + self.config.request_timeout;
        self.findnodes.insert(peer, PendingFindNode { addr, lookup, deadline, received: 0 });
        self.schedule(deadline, Timer::FindNode(peer));
    }

    fn send_queued_findnode(&mut self, now: Instant, peer: PeerId) {
        let Some(queue) = self.queued_findnodes.get_mut(&peer) else { return };
        let next = queue.remove(0);
        if queue.is_empty() {
            self.queued_findnodes.remove(&peer);
        }
        self.send_findnode(now, next.0, peer, next.1);
    }

    /// Asks `peer` for its record, once it knows us (see [`AfterPingBack`] and [`EnrAsk`]).
    fn send_enr_request(
        &mut self,
        now: Instant,
        peer: PeerId,
        addr: SocketAddr,
        request: Option<RequestId>,
        first: bool,
    ) {
        self.after_ping_back(now, peer, addr, AfterPingBack::Enr(EnrAsk { addr, request, first }));
    }

    fn send_enr_request_now(&mut self, now: Instant, peer: PeerId, EnrAsk { addr, request, first }: EnrAsk) {
        // One request in flight per node: a later asker waits for the same answer.
        if let Some(pending) = self.enrs.get_mut(&peer) {
            pending.requests.extend(request);
            return;
        }
        if self.enrs.len() >= MAX_PENDING_REQUESTS {
            if let Some(request) = request {
                self.events.push_back(CoreEvent::EnrResult { request, enr: None });
            }
            return;
        }
        let message = Message::EnrRequest(EnrRequest { expiration: self.expiration(now) });
        let hash = self.send(addr, &message);
        let deadline = now + self.config.request_timeout;
        self.enrs.insert(peer, PendingEnr { hash, addr, requests: request.into_iter().collect(), first });
        self.schedule(deadline, Timer::Enr(peer, hash));
    }

    fn advance_lookup(&mut self, now: Instant, id: u64) {
        loop {
            let Some(state) = self.lookups.get_mut(&id) else { return };
            let queries = state.lookup.next_queries();
            if queries.is_empty() {
                break;
            }
            for record in queries {
                let addr = record.endpoint.udp_addr();
                if self.bonds.is_proven(&record.id, addr.ip(), now)
                    && self.bonds.knows_us(&record.id, addr.ip(), now)
                {
                    self.send_findnode(now, id, record.id, addr);
                } else {
                    self.send_ping(now, record.id, addr, record.endpoint.tcp_port, Waiter::Lookup(id));
                }
            }
        }
        let Some(state) = self.lookups.get(&id) else { return };
        if state.lookup.is_done() {
            let state = self.lookups.remove(&id).expect("present");
            if self.background_lookup == Some(id) {
                self.background_lookup = None;
            }
            let closest = state.lookup.result();
            tracing::debug!(target: TARGET, id, found = closest.len(), queries = state.lookup.queries, "lookup done");
            self.events.push_back(CoreEvent::LookupFinished {
                request: state.request,
                closest,
                target_hop: state.lookup.target_hop,
                queries: state.lookup.queries,
            });
        }
    }

    fn start_self_lookup(&mut self, now: Instant) {
        self.self_lookup_pending = false;
        let id = self.next_lookup_id;
        self.background_lookup = Some(id);
        self.lookup(now, self.peer_id, None);
    }

    /// A verified PONG from `reporter` says we are at `ip`; once the votes settle on a new
    /// address (see [`IpVotes`]: once per reporting network, only addresses we could have,
    /// a quorum and a majority), it goes into our record unless the config keeps it fixed.
    fn vote(&mut self, now: Instant, reporter: IpAddr, ip: IpAddr) {
        let family = usize::from(canonical(ip).is_ipv6());
        let Some(best) = self.votes[family].vote(now, reporter, ip) else { return };
        tracing::debug!(target: TARGET, ip = %best, "external IP predicted");
        if self.config.update_enr_ip {
            // Our listen port; dual stack, an address of the other family keeps the port
            // the record has for it (its own socket's, which may differ).
            let listen = self.config.listen_addr;
            let content = self.local.content();
            let other = if best.is_ipv6() { content.udp6 } else { content.udp4 };
            let udp = match other {
                Some(port) if best.is_ipv6() != listen.is_ipv6() => port,
                _ => listen.port(),
            };
            if let Err(e) = self.local.set_endpoint(best, udp, self.config.tcp_port) {
                tracing::warn!(target: TARGET, error = %e, "could not update local ENR");
            }
        }
        self.events.push_back(CoreEvent::ExternalIp(best));
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeouts(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(timer) = self.timer_kinds.remove(&id) else { continue };
            self.fire(now, timer);
        }
    }

    fn fire(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Ping(hash) => {
                if let Some(p) = self.pings.remove(&hash) {
                    self.ping_by_peer.remove(&p.peer);
                    for waiter in p.waiters {
                        self.fail_waiter(now, p.peer, waiter);
                    }
                }
            }
            Timer::FindNode(peer) => {
                if let Some(p) = self.findnodes.get(&peer) {
                    if p.deadline <= now {
                        let p = self.findnodes.remove(&peer).expect("present");
                        if let Some(state) = self.lookups.get_mut(&p.lookup) {
                            if state.lookup.is_in_flight(&peer) {
                                state.lookup.on_failure(&peer);
                            }
                        }
                        self.advance_lookup(now, p.lookup);
                        self.send_queued_findnode(now, peer);
                    }
                }
            }
            Timer::Enr(peer, hash) => {
                // Only the request this timer was set for (a later one has its own timer).
                if self.enrs.get(&peer).is_some_and(|p| p.hash == hash) {
                    let p = self.enrs.remove(&peer).expect("checked above");
                    for request in p.requests {
                        self.events.push_back(CoreEvent::EnrResult { request, enr: None });
                    }
                    if p.first {
                        if let Some(entry) = self.table.get(&peer) {
                            let endpoint = entry.endpoint;
                            self.report(now, peer, endpoint, None);
                        }
                    }
                }
            }
            // They did not ping back; they may know us from earlier. Ask anyway.
            Timer::PingBack(peer) => self.release_ping_backs(now, peer, None),
            Timer::Revalidate => {
                self.schedule(now + self.config.revalidation_interval, Timer::Revalidate);
                let stale = self
                    .table
                    .stalest()
                    .filter(|e| {
                        now.saturating_duration_since(e.last_pong) >= self.config.revalidation_interval
                    })
                    .map(|e| (e.peer_id, e.endpoint));
                if let Some((peer, endpoint)) = stale {
                    self.send_ping(now, peer, endpoint.udp_addr(), endpoint.tcp_port, Waiter::Revalidate);
                }
            }
            Timer::Lookup => {
                self.schedule(now + self.config.lookup_interval, Timer::Lookup);
                if self.table.is_empty() {
                    // Nobody left (or nobody answered yet): start over from the bootnodes.
                    self.self_lookup_pending = true;
                    self.bootstrap(now);
                } else if self.background_lookup.is_none() {
                    let mut target = PeerId::ZERO;
                    self.rng.fill(&mut target.0[..]);
                    self.background_lookup = Some(self.next_lookup_id);
                    self.lookup(now, target, None);
                }
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn debug_lookups(&self) -> String {
        let mut out = String::new();
        for (id, state) in &self.lookups {
            for peer in state.lookup.in_flight() {
                out += &format!(
                    "lookup {id} in flight {peer}: ping {:?} findnode {:?} pingback {:?} bond {:?}\n",
                    self.pings.values().filter(|p| p.peer == peer).map(|p| &p.waiters).collect::<Vec<_>>(),
                    self.findnodes.get(&peer),
                    self.ping_backs.get(&peer),
                    self.bonds.peek(&peer)
                );
            }
        }
        out
    }

    fn lookup_addr(&self, id: u64, peer: &PeerId) -> Option<SocketAddr> {
        self.lookups.get(&id)?.lookup.address_of(peer)
    }
}

/// A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6; we think of them as IPv4.
fn canonical_addr(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical(addr.ip()), addr.port())
}
