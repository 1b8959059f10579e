//! Eclipse attacks replayed on the sans-IO cores, in virtual time (issue 16).
//!
//! A victim (a [`Discv4Core`] feeding a [`PoolState`], as the node's service wires them)
//! lives in a network of honest discv4 cores, each on its own public /24, and meets an
//! [`Attacker`] that owns a few IPs and as many node keys as it likes. Datagrams travel on
//! a virtual wire with a fixed latency; dials resolve at once (an honest node that is
//! online accepts, the attacker always accepts); honest nodes churn; the attacker answers
//! every PING, fills every NEIGHBOURS with its own nodes, connects inbound from each of its
//! hosts every second and never leaves. [`EclipseSim::share`] reads what an eclipse is
//! about: how many of the victim's outbound peers are honest, and the most peers it holds
//! from one /24.
//!
//! Nothing here opens a socket or reads the clock, so a two-hour attack runs in seconds
//! and every run is the same.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, Instant, SystemTime},
};

use rand::{rngs::StdRng, Rng, SeedableRng};

use super::key_from_seed;
use crate::{
    discovery::v4::{
        proto::{self, Endpoint, Message, Neighbours, NodeRecord, Pong},
        CoreEvent, Discv4Config, Discv4Core,
    },
    pool::{AddressBook, Direction, PoolAction, PoolConfig, PoolState, SessionClose},
    record::{Candidate, CandidateSource, Enode, LocalEnr, NodeKey, PeerId},
};

/// Unix time at the simulation's start (packet expirations are computed from it).
const UNIX0: u64 = 1_700_000_000;

/// One-way latency of the virtual wire.
const LATENCY: Duration = Duration::from_millis(5);

/// discv4: NEIGHBOURS packets carry at most 12 records to stay under 1280 bytes.
const NEIGHBOURS_PER_PACKET: usize = 12;

/// The port every honest node listens on (UDP and TCP).
const PORT: u16 = 30303;

/// Who sits at an address of the virtual network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Victim,
    Honest(usize),
    Attacker(usize),
}

/// The attacker: a few IPs ("hosts") and many node keys spread over them, key `i` on host
/// `i % hosts`, each on its own port (one process per key, as Marcus et al. ran them).
#[derive(Debug)]
pub struct Attacker {
    hosts: Vec<IpAddr>,
    keys: Vec<NodeKey>,
    /// Keys that have pinged the victim so far (the unsolicited flood).
    flooded: usize,
    /// Keys pinged per host and second in the flood (the victim answers 100 requests per
    /// second and IP; more would only be dropped).
    flood_rate: usize,
    /// Inbound connections made (each with a fresh key).
    inbound: u64,
    /// Whether the flood also sends NEIGHBOURS nobody asked for and PONGs quoting no PING.
    unsolicited: bool,
}

impl Attacker {
    /// An attacker on `hosts` with `keys` node keys.
    pub fn new(hosts: &[IpAddr], keys: usize) -> Self {
        Self {
            hosts: hosts.to_vec(),
            keys: (0..keys).map(|i| key_from_seed(1_000_000 + i as u64)).collect(),
            flooded: 0,
            flood_rate: 50,
            inbound: 0,
            unsolicited: false,
        }
    }

    /// Also send unsolicited NEIGHBOURS and PONGs with the flood (Wang et al. 2026).
    pub fn with_unsolicited(mut self) -> Self {
        self.unsolicited = true;
        self
    }

    /// The address of key `i`.
    fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::new(self.hosts[i % self.hosts.len()], 20_000 + (i / self.hosts.len()) as u16)
    }

    /// Whether `ip` is one of the attacker's.
    pub fn owns(&self, ip: IpAddr) -> bool {
        self.hosts.contains(&ip)
    }

    /// Twelve of its nodes, starting at key `from`, as NEIGHBOURS records.
    fn records(&self, from: usize) -> Vec<NodeRecord> {
        (0..NEIGHBOURS_PER_PACKET)
            .map(|j| {
                let i = (from + j) % self.keys.len();
                let addr = self.addr(i);
                NodeRecord {
                    endpoint: Endpoint { ip: addr.ip(), udp_port: addr.port(), tcp_port: addr.port() },
                    id: self.keys[i].peer_id(),
                }
            })
            .collect()
    }

    /// Candidates for a poisoned DNS tree: every one of its nodes.
    pub fn dns_candidates(&self, now: Instant) -> Vec<Candidate> {
        (0..self.keys.len())
            .map(|i| {
                let enode = Enode::new(self.keys[i].peer_id(), self.addr(i));
                Candidate { seen: now, ..Candidate::from_enode(&enode, CandidateSource::Dns) }
            })
            .collect()
    }
}

/// What the victim holds at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// Outbound peers on honest nodes.
    pub honest_outbound: usize,
    /// Outbound peers in all.
    pub outbound: usize,
    /// Inbound peers from the attacker.
    pub attacker_inbound: usize,
    /// Inbound peers in all.
    pub inbound: usize,
    /// The most peers (either direction) from one /24.
    pub max_per_subnet: usize,
    /// Attacker nodes in the victim's discv4 table.
    pub attacker_in_table: usize,
    /// Entries in the victim's discv4 table.
    pub table: usize,
}

impl Share {
    /// Honest outbound peers as a fraction of outbound peers (0 without any).
    pub fn honest_fraction(&self) -> f64 {
        if self.outbound == 0 {
            0.0
        } else {
            self.honest_outbound as f64 / self.outbound as f64
        }
    }
}

impl std::fmt::Display for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "honest outbound {}/{} ({:.0}%), attacker inbound {}/{}, max per /24 {}, attacker in table {}/{}",
            self.honest_outbound,
            self.outbound,
            self.honest_fraction() * 100.0,
            self.attacker_inbound,
            self.inbound,
            self.max_per_subnet,
            self.attacker_in_table,
            self.table
        )
    }
}

/// The simulated network: the victim, the honest cores and the attacker. See the module
/// docs.
#[derive(Debug)]
pub struct EclipseSim {
    now: Instant,
    t0: Instant,
    wall0: SystemTime,
    victim_key: NodeKey,
    victim_addr: SocketAddr,
    victim: Discv4Core,
    pool: PoolState,
    pool_config: PoolConfig,
    honest: Vec<Discv4Core>,
    honest_addrs: Vec<SocketAddr>,
    online: Vec<bool>,
    attacker: Attacker,
    owners: HashMap<SocketAddr, Owner>,
    wire: BTreeMap<(Instant, u64), (SocketAddr, SocketAddr, Vec<u8>)>,
    seq: u64,
    rng: StdRng,
    /// Per minute: the chance an online honest node leaves, and an offline one returns.
    churn: (f64, f64),
    /// Honest nodes connected to the victim (either direction), by peer id.
    honest_ids: HashMap<PeerId, usize>,
    /// Restarts so far (each one seeds a new pool).
    restarts: u64,
}

fn honest_addr(i: usize) -> SocketAddr {
    // One /24 per node, spread over 20.0.0.0/8 and 21.0.0.0/8.
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(20 + (i / 250) as u8, 0, (i % 250) as u8, 1)), PORT)
}

fn honest_config(addr: SocketAddr, bootnodes: Vec<Enode>) -> Discv4Config {
    Discv4Config {
        listen_addr: addr,
        tcp_port: Some(PORT),
        bootnodes,
        reply_rate_per_ip: None,
        // Ten times slower than the defaults: the honest network only has to be there, and
        // a two-hour run stays a few seconds of CPU.
        revalidation_interval: Duration::from_secs(30),
        lookup_interval: Duration::from_secs(200),
        ..Default::default()
    }
}

impl EclipseSim {
    /// A network of `honest` nodes, bootstrapped for a minute, then the victim with
    /// `pool_config` and the `attacker` (who starts attacking only when asked).
    pub fn new(honest: usize, pool_config: PoolConfig, attacker: Attacker) -> Self {
        let t0 = Instant::now();
        let honest_addrs: Vec<SocketAddr> = (0..honest).map(honest_addr).collect();
        let keys: Vec<NodeKey> = (0..honest).map(|i| key_from_seed(10_000 + i as u64)).collect();
        let boot = Enode::new(keys[0].peer_id(), honest_addrs[0]);
        let cores = (0..honest)
            .map(|i| {
                let bootnodes = if i == 0 { vec![] } else { vec![boot] };
                let local = LocalEnr::builder(&keys[i])
                    .udp_socket(honest_addrs[i])
                    .tcp4(PORT)
                    .build()
                    .expect("valid record");
                Discv4Core::new(honest_config(honest_addrs[i], bootnodes), local, t0, UNIX0, i as u64)
            })
            .collect();
        let mut owners: HashMap<SocketAddr, Owner> =
            honest_addrs.iter().enumerate().map(|(i, a)| (*a, Owner::Honest(i))).collect();
        for i in 0..attacker.keys.len() {
            owners.insert(attacker.addr(i), Owner::Attacker(i));
        }
        let victim_addr: SocketAddr = "30.0.0.1:30303".parse().expect("valid");
        owners.insert(victim_addr, Owner::Victim);
        let victim_key = key_from_seed(1);
        let bootnodes = (0..3).map(|i| Enode::new(keys[i].peer_id(), honest_addrs[i])).collect();
        let (victim, pool) = Self::victim(&victim_key, victim_addr, bootnodes, &pool_config, t0, UNIX0, 0);
        let mut sim = Self {
            now: t0,
            t0,
            wall0: SystemTime::UNIX_EPOCH + Duration::from_secs(UNIX0),
            victim_key,
            victim_addr,
            victim,
            pool,
            pool_config,
            honest: cores,
            honest_addrs,
            online: vec![true; honest],
            attacker,
            owners,
            wire: BTreeMap::new(),
            seq: 0,
            rng: StdRng::seed_from_u64(16),
            churn: (0.0, 0.0),
            honest_ids: keys.iter().enumerate().map(|(i, k)| (k.peer_id(), i)).collect(),
            restarts: 0,
        };
        for i in 0..honest {
            sim.honest[i].bootstrap(t0);
            sim.flush_honest(i);
        }
        sim.run_quiet(Duration::from_secs(60));
        sim.victim.bootstrap(sim.now);
        sim.flush_victim();
        sim
    }

    /// A fresh victim: a discv4 core bootstrapping from three honest nodes and an empty
    /// pool.
    fn victim(
        key: &NodeKey,
        addr: SocketAddr,
        bootnodes: Vec<Enode>,
        pool_config: &PoolConfig,
        now: Instant,
        unix: u64,
        seed: u64,
    ) -> (Discv4Core, PoolState) {
        let config =
            Discv4Config { listen_addr: addr, tcp_port: Some(PORT), bootnodes, ..Default::default() };
        let local = LocalEnr::builder(key).udp_socket(addr).tcp4(PORT).build().expect("valid record");
        let core = Discv4Core::new(config, local, now, unix, seed);
        let pool = PoolState::new(pool_config.clone(), key.peer_id(), |_: &Candidate| true, now, seed);
        (core, pool)
    }

    /// The victim's bootnodes: the first three honest nodes.
    fn bootnodes(&self) -> Vec<Enode> {
        (0..3).map(|i| Enode::new(self.honest[i].peer_id(), self.honest_addrs[i])).collect()
    }

    /// Honest nodes leave with chance `leave` and come back with chance `back`, per minute.
    pub fn set_churn(&mut self, leave: f64, back: f64) {
        self.churn = (leave, back);
    }

    /// The attacker.
    pub fn attacker(&self) -> &Attacker {
        &self.attacker
    }

    /// The victim's pool.
    pub fn pool(&self) -> &PoolState {
        &self.pool
    }

    /// Time since the simulation started.
    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    fn unix(&self) -> u64 {
        UNIX0 + self.elapsed().as_secs()
    }

    fn send(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        self.seq += 1;
        self.wire.insert((self.now + LATENCY, self.seq), (from, to, bytes));
    }

    fn flush_honest(&mut self, i: usize) {
        while let Some((to, bytes)) = self.honest[i].poll_transmit() {
            let from = self.honest_addrs[i];
            self.send(from, to, bytes);
        }
        while self.honest[i].poll_event().is_some() {}
    }

    fn flush_victim(&mut self) {
        while let Some((to, bytes)) = self.victim.poll_transmit() {
            let from = self.victim_addr;
            self.send(from, to, bytes);
        }
        let mut found = false;
        while let Some(event) = self.victim.poll_event() {
            if let CoreEvent::Discovered(candidate) = event {
                found |= self.pool.add_candidate(&candidate, self.now);
            }
        }
        if found {
            self.pool.dial_if_below_target(self.now);
            self.run_pool();
        }
    }

    /// The attacker's answer to a datagram sent to its key `i`: a PONG to any PING, its
    /// own nodes to any FINDNODE.
    fn attacker_receives(&mut self, i: usize, from: SocketAddr, bytes: &[u8]) {
        let Ok(packet) = proto::decode(bytes) else { return };
        let expiration = self.unix() + 20;
        let answer = match packet.message {
            Message::Ping(_) => Message::Pong(Pong {
                to: Endpoint { ip: from.ip(), udp_port: from.port(), tcp_port: 0 },
                ping_hash: packet.hash,
                expiration,
                enr_seq: None,
            }),
            Message::FindNode(_) => {
                let nodes = self.attacker.records(self.rng.gen_range(0..self.attacker.keys.len()));
                Message::Neighbours(Neighbours { nodes, expiration })
            }
            _ => return,
        };
        let (out, _) = proto::encode(&answer, self.attacker.keys[i].secret());
        let addr = self.attacker.addr(i);
        self.send(addr, from, out);
    }

    fn deliver(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        match self.owners.get(&to) {
            Some(Owner::Victim) => {
                self.victim.handle_datagram(self.now, from, &bytes);
                self.flush_victim();
            }
            Some(Owner::Honest(i)) if self.online[*i] => {
                let i = *i;
                self.honest[i].handle_datagram(self.now, from, &bytes);
                self.flush_honest(i);
            }
            Some(Owner::Attacker(i)) => {
                let i = *i;
                self.attacker_receives(i, from, &bytes);
            }
            _ => {}
        }
    }

    /// Runs packets and timers up to `until`, without the per-second actors.
    fn run_packets(&mut self, until: Instant, with_victim: bool) {
        loop {
            let next_packet = self.wire.keys().next().map(|(t, _)| *t);
            let honest_timer = self.honest.iter().filter_map(|c| c.next_timeout()).min();
            let victim_timer = if with_victim { self.victim.next_timeout() } else { None };
            let next = [next_packet, honest_timer, victim_timer].into_iter().flatten().min();
            let Some(next) = next.filter(|t| *t <= until) else {
                self.now = until;
                return;
            };
            self.now = next;
            if next_packet == Some(next) {
                let (_, (from, to, bytes)) = self.wire.pop_first().expect("non-empty");
                self.deliver(from, to, bytes);
                continue;
            }
            for i in 0..self.honest.len() {
                if self.honest[i].next_timeout().is_some_and(|t| t <= next) {
                    self.honest[i].handle_timeouts(next);
                    self.flush_honest(i);
                }
            }
            if with_victim && self.victim.next_timeout().is_some_and(|t| t <= next) {
                self.victim.handle_timeouts(next);
                self.flush_victim();
            }
        }
    }

    fn run_quiet(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_packets(until, false);
    }

    /// Carries out the pool's actions: dials resolve at once.
    fn run_pool(&mut self) {
        while let Some(action) = self.pool.poll_action() {
            match action {
                PoolAction::Dial(target) => {
                    let reachable = match self.owners.get(&target.addr) {
                        Some(Owner::Honest(i)) => self.online[*i],
                        Some(Owner::Attacker(_)) => true,
                        _ => false,
                    };
                    if reachable {
                        let _ = self.pool.on_session_established(
                            target.peer_id,
                            target.addr,
                            Direction::Outbound,
                            self.now,
                        );
                    } else {
                        self.pool.on_dial_failed(&target.peer_id, crate::rlpx::Backoff::Medium, self.now);
                    }
                }
                PoolAction::Disconnect { peer_id, .. } => {
                    self.pool.on_session_closed(&peer_id, SessionClose::Local, self.now)
                }
                PoolAction::Event(_) => {}
                #[allow(unreachable_patterns)]
                _ => {}
            }
        }
    }

    /// An inbound connection from `addr` by `peer_id`, through both of the pool's gates.
    fn inbound(&mut self, peer_id: PeerId, addr: SocketAddr) {
        if self.pool.on_inbound_connection(addr.ip(), self.now).is_ok() {
            let _ = self.pool.on_session_established(peer_id, addr, Direction::Inbound, self.now);
        }
        self.run_pool();
    }

    /// The attacker connects once from each host, each time with a fresh key.
    fn attacker_connects(&mut self) {
        for h in 0..self.attacker.hosts.len() {
            self.attacker.inbound += 1;
            let peer_id = key_from_seed(5_000_000 + self.attacker.inbound).peer_id();
            let addr =
                SocketAddr::new(self.attacker.hosts[h], 40_000 + (self.attacker.inbound % 20_000) as u16);
            self.inbound(peer_id, addr);
        }
    }

    /// One second of the actors: the attacker's flood and inbound connections, honest
    /// inbound connections and churn, the pool's tick.
    fn second(&mut self, attack: bool) {
        let now = self.now;
        if attack {
            self.attacker_connects();
            let flood = (self.attacker.flood_rate * self.attacker.hosts.len())
                .min(self.attacker.keys.len() - self.attacker.flooded);
            let expiration = self.unix() + 20;
            let to = Endpoint { ip: self.victim_addr.ip(), udp_port: self.victim_addr.port(), tcp_port: 0 };
            for _ in 0..flood {
                let i = self.attacker.flooded;
                self.attacker.flooded += 1;
                let addr = self.attacker.addr(i);
                let from = Endpoint { ip: addr.ip(), udp_port: addr.port(), tcp_port: addr.port() };
                let ping = Message::Ping(proto::Ping { from, to, expiration, enr_seq: None });
                let (bytes, _) = proto::encode(&ping, self.attacker.keys[i].secret());
                self.send(addr, self.victim_addr, bytes);
            }
            if self.attacker.unsolicited {
                for h in 0..self.attacker.hosts.len() {
                    let i = self.rng.gen_range(0..self.attacker.keys.len() / self.attacker.hosts.len())
                        * self.attacker.hosts.len()
                        + h;
                    let nodes = self.attacker.records(i);
                    let bogus = alloy_primitives::B256::repeat_byte(self.rng.gen());
                    let key = self.attacker.keys[i].clone();
                    let addr = self.attacker.addr(i);
                    for message in [
                        Message::Neighbours(Neighbours { nodes, expiration }),
                        Message::Pong(Pong { to, ping_hash: bogus, expiration, enr_seq: Some(1) }),
                    ] {
                        let (bytes, _) = proto::encode(&message, key.secret());
                        self.send(addr, self.victim_addr, bytes);
                    }
                }
            }
        }
        // An honest node dials the victim now and then.
        if self.rng.gen_bool(0.05) {
            let i = self.rng.gen_range(0..self.honest.len());
            let peer_id = self.honest[i].peer_id();
            if self.online[i] && !self.pool.is_connected(&peer_id) {
                let addr = SocketAddr::new(self.honest_addrs[i].ip(), 50_000);
                self.inbound(peer_id, addr);
            }
        }
        if self.elapsed().as_secs() % 60 == 0 {
            self.churn_minute();
        }
        self.pool.tick(now);
        self.run_pool();
    }

    fn churn_minute(&mut self) {
        let (leave, back) = self.churn;
        for i in 1..self.honest.len() {
            if self.online[i] && self.rng.gen_bool(leave) {
                self.online[i] = false;
                let peer_id = self.honest[i].peer_id();
                if self.pool.is_connected(&peer_id) {
                    self.pool.on_session_closed(&peer_id, SessionClose::Remote(None), self.now);
                    self.run_pool();
                }
            } else if !self.online[i] && self.rng.gen_bool(back) {
                self.online[i] = true;
            }
        }
    }

    /// Runs the network for `d`, with the attacker attacking if `attack`.
    pub fn run(&mut self, d: Duration, attack: bool) {
        let until = self.now + d;
        while self.now < until {
            let next = (self.now + Duration::from_secs(1)).min(until);
            self.run_packets(next, true);
            self.second(attack);
        }
    }

    /// A poisoned DNS tree: every node of the attacker arrives as a DNS candidate.
    pub fn poison_dns(&mut self) {
        for candidate in self.attacker.dns_candidates(self.now) {
            self.pool.add_candidate(&candidate, self.now);
        }
        self.pool.dial_if_below_target(self.now);
        self.run_pool();
    }

    /// The victim restarts: its address book goes through JSON and back into a new pool,
    /// its discv4 table starts empty (bootnodes only), and the attacker rushes the inbound
    /// slots before the first dial completes.
    pub fn restart(&mut self) {
        let wall = self.wall0 + self.elapsed();
        let book = self.pool.to_book(self.now, wall);
        let json = serde_json::to_vec(&book).expect("a book serializes");
        let book: AddressBook = serde_json::from_slice(&json).expect("and reads back");
        self.restarts += 1;
        let (victim, mut pool) = Self::victim(
            &self.victim_key,
            self.victim_addr,
            self.bootnodes(),
            &self.pool_config,
            self.now,
            self.unix(),
            self.restarts,
        );
        // Packets in flight to the old process are lost.
        let victim_addr = self.victim_addr;
        self.wire.retain(|_, (_, to, _)| *to != victim_addr);
        // The attacker is there first: it connects from every host before the book loads.
        std::mem::swap(&mut self.pool, &mut pool);
        self.attacker_connects();
        self.pool.load_book(&book, self.now, wall);
        self.victim = victim;
        self.victim.bootstrap(self.now);
        self.flush_victim();
        self.pool.tick(self.now);
        self.run_pool();
    }

    /// What the victim holds now.
    pub fn share(&self) -> Share {
        let peers = self.pool.peers(self.now);
        let mut per_subnet: HashMap<[u8; 3], usize> = HashMap::new();
        let mut share = Share {
            honest_outbound: 0,
            outbound: 0,
            attacker_inbound: 0,
            inbound: 0,
            max_per_subnet: 0,
            attacker_in_table: 0,
            table: self.victim.table().len(),
        };
        for p in &peers {
            let attacker = self.attacker.owns(p.addr.ip());
            match p.direction {
                Direction::Outbound => {
                    share.outbound += 1;
                    if !attacker && self.honest_ids.contains_key(&p.peer_id) {
                        share.honest_outbound += 1;
                    }
                }
                Direction::Inbound => {
                    share.inbound += 1;
                    share.attacker_inbound += usize::from(attacker);
                }
            }
            if let IpAddr::V4(v4) = p.addr.ip() {
                let o = v4.octets();
                *per_subnet.entry([o[0], o[1], o[2]]).or_default() += 1;
            }
        }
        share.max_per_subnet = per_subnet.values().copied().max().unwrap_or(0);
        let attacker_ids: HashSet<PeerId> = self.attacker.keys.iter().map(|k| k.peer_id()).collect();
        share.attacker_in_table =
            self.victim.table().iter().filter(|e| attacker_ids.contains(&e.peer_id)).count();
        share
    }
}

#[cfg(test)]
mod tests;
