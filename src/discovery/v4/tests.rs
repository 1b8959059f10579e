//! Tests of the sans-IO core: one per strictness rule, each driving a core with packets
//! signed by test keys and a virtual clock (no sockets, no sleeps), then a 200-node
//! simulation in virtual time.

use std::{
    collections::{BTreeMap, HashMap},
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use alloy_primitives::B256;

use super::{
    proto::{self, Endpoint, EnrRequest, FindNode, Message, Neighbours, NodeRecord, Packet, Ping, Pong},
    CoreEvent, Discv4Config, Discv4Core, DropReason, Inbound, PacketError, RequestId,
};
use crate::{
    discovery::EthEntry,
    record::{Enode, LocalEnr},
    ForkId, NodeKey,
};

const UNIX0: u64 = 1_700_000_000;

fn key(seed: u64) -> NodeKey {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_be_bytes());
    bytes[31] = 1;
    NodeKey::from_bytes(&bytes).unwrap()
}

fn local_enr(key: &NodeKey, addr: SocketAddr) -> LocalEnr {
    LocalEnr::builder(key).udp_socket(addr).build().unwrap()
}

fn test_config(addr: SocketAddr) -> Discv4Config {
    Discv4Config { listen_addr: addr, ..Default::default() }
}

/// The core under test at 10.0.0.1:30303, and remote test keys that talk to it.
struct Harness {
    core: Discv4Core,
    /// The record the core signs (a handle sharing it).
    local: LocalEnr,
    addr: SocketAddr,
    t0: Instant,
    now: Instant,
}

struct Remote {
    key: NodeKey,
    addr: SocketAddr,
}

impl Remote {
    fn new(seed: u64, addr: &str) -> Self {
        Self { key: key(seed), addr: addr.parse().unwrap() }
    }
    fn packet(&self, message: &Message) -> (Vec<u8>, B256) {
        proto::encode(message, self.key.secret())
    }
    fn endpoint(&self) -> Endpoint {
        Endpoint { ip: self.addr.ip(), udp_port: self.addr.port(), tcp_port: self.addr.port() }
    }
}

impl Harness {
    fn new() -> Self {
        Self::with(|_| {})
    }
    fn with(change: impl FnOnce(&mut Discv4Config)) -> Self {
        let addr: SocketAddr = "10.0.0.1:30303".parse().unwrap();
        let mut config = test_config(addr);
        change(&mut config);
        let t0 = Instant::now();
        let local = local_enr(&key(1), addr);
        let core = Discv4Core::new(config, local.clone(), t0, UNIX0, 1);
        Self { core, local, addr, t0, now: t0 }
    }
    fn exp(&self) -> u64 {
        UNIX0 + 20 + self.now.duration_since(self.t0).as_secs()
    }
    fn recv(&mut self, from: &Remote, message: &Message) -> (Inbound, B256) {
        let (bytes, hash) = from.packet(message);
        (self.core.handle_datagram(self.now, from.addr, &bytes), hash)
    }
    fn recv_raw(&mut self, from: SocketAddr, bytes: &[u8]) -> Inbound {
        self.core.handle_datagram(self.now, from, bytes)
    }
    /// Everything the core sent, decoded.
    fn sent(&mut self) -> Vec<(SocketAddr, Packet)> {
        let mut out = Vec::new();
        while let Some((addr, bytes)) = self.core.poll_transmit() {
            assert!(bytes.len() <= proto::MAX_PACKET_SIZE);
            out.push((addr, proto::decode(&bytes).unwrap()));
        }
        out
    }
    fn events(&mut self) -> Vec<CoreEvent> {
        std::iter::from_fn(|| self.core.poll_event()).collect()
    }
    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.core.handle_timeouts(self.now);
    }
    fn ping_from(&mut self, remote: &Remote) -> (Inbound, B256) {
        let ping = Message::Ping(Ping {
            from: remote.endpoint(),
            to: Endpoint { ip: self.addr.ip(), udp_port: self.addr.port(), tcp_port: 0 },
            expiration: self.exp(),
            enr_seq: Some(1),
        });
        self.recv(remote, &ping)
    }
    /// Full bond: the remote pings us, we pong and ping back, the remote pongs.
    fn bond(&mut self, remote: &Remote) {
        self.ping_from(remote);
        let sent = self.sent();
        let ping_hash = sent
            .iter()
            .find(|(a, p)| *a == remote.addr && matches!(p.message, Message::Ping(_)))
            .map(|(_, p)| p.hash)
            .expect("core pings back an unknown node");
        let pong = self.pong(remote, ping_hash, Some(1));
        assert_eq!(self.recv(remote, &pong).0, Inbound::Handled);
    }
    fn pong(&self, remote: &Remote, ping_hash: B256, enr_seq: Option<u64>) -> Message {
        let _ = remote;
        Message::Pong(Pong {
            to: Endpoint { ip: self.addr.ip(), udp_port: self.addr.port(), tcp_port: 0 },
            ping_hash,
            expiration: self.exp(),
            enr_seq,
        })
    }
}

// Rule: a valid PING gets a PONG whatever its `to` and `from` say, sent to the real source.
#[test]
fn ping_answered_at_real_source() {
    let mut h = Harness::new();
    let remote = Remote::new(2, "10.0.0.2:4000");
    let ping = Message::Ping(Ping {
        from: Endpoint { ip: "1.1.1.1".parse().unwrap(), udp_port: 9, tcp_port: 9 },
        to: Endpoint { ip: "2.2.2.2".parse().unwrap(), udp_port: 7, tcp_port: 7 },
        expiration: h.exp(),
        enr_seq: None,
    });
    let (result, hash) = h.recv(&remote, &ping);
    assert_eq!(result, Inbound::Handled);
    let sent = h.sent();
    let (addr, pong) = sent.iter().find(|(_, p)| matches!(p.message, Message::Pong(_))).unwrap();
    assert_eq!(*addr, remote.addr);
    match &pong.message {
        Message::Pong(p) => {
            assert_eq!(p.ping_hash, hash);
            assert_eq!(p.to.ip, remote.addr.ip());
            assert_eq!(p.to.udp_port, 4000);
            assert!(p.enr_seq.is_some());
        }
        _ => unreachable!(),
    }
    // Nothing goes to the claimed addresses.
    assert!(sent.iter().all(|(a, _)| *a == remote.addr));
}

// Rule: an expired packet is ignored, including huge-as-u64/negative-as-i64 expirations.
#[test]
fn expired_packets_ignored() {
    let mut h = Harness::new();
    let remote = Remote::new(2, "10.0.0.2:4000");
    for expiration in [UNIX0 - 1, UNIX0, u64::MAX, 1 << 63] {
        let ping =
            Message::Ping(Ping { from: remote.endpoint(), to: remote.endpoint(), expiration, enr_seq: None });
        assert_eq!(h.recv(&remote, &ping).0, Inbound::Dropped(DropReason::Expired), "{expiration}");
    }
    assert!(h.sent().is_empty());
    assert_eq!(h.core.stats().expired, 4);
}

// Rule: an unknown packet type is ignored.
#[test]
fn unknown_type_ignored() {
    let mut h = Harness::new();
    let remote = Remote::new(2, "10.0.0.2:4000");
    let bytes = proto::sign_raw(0x09, &[0xc2, 0x01, 0x02], remote.key.secret());
    assert_eq!(
        h.recv_raw(remote.addr, &bytes),
        Inbound::Dropped(DropReason::Malformed(PacketError::UnknownType(9)))
    );
    assert!(h.sent().is_empty());
    assert_eq!(h.core.stats().malformed, 1);
}

// Rule: FINDNODE is answered only for a bonded endpoint (same key, same IP, not expired).
#[test]
fn findnode_requires_bond() {
    let mut h = Harness::with(|c| c.bond_expiration = Duration::from_secs(60));
    let remote = Remote::new(2, "10.0.0.2:4000");
    let find = Message::FindNode(FindNode { target: key(7).peer_id(), expiration: h.exp() });
    assert_eq!(h.recv(&remote, &find).0, Inbound::Dropped(DropReason::NotBonded));
    assert!(h.sent().is_empty());

    // A PING alone is not a proof: we have not seen them answer our PING.
    h.ping_from(&remote);
    h.sent();
    assert_eq!(h.recv(&remote, &find).0, Inbound::Dropped(DropReason::NotBonded));

    let mut h = Harness::with(|c| c.bond_expiration = Duration::from_secs(60));
    h.bond(&remote);
    h.sent();
    let find = Message::FindNode(FindNode { target: key(7).peer_id(), expiration: h.exp() });
    assert_eq!(h.recv(&remote, &find).0, Inbound::Handled);
    let sent = h.sent();
    assert!(matches!(sent[0].1.message, Message::Neighbours(_)));
    assert_eq!(sent[0].0, remote.addr);

    // The same key from another IP is not bonded.
    let moved = Remote { key: remote.key.clone(), addr: "10.0.0.3:4000".parse().unwrap() };
    assert_eq!(h.recv(&moved, &find).0, Inbound::Dropped(DropReason::NotBonded));

    // Proofs expire.
    h.advance(Duration::from_secs(61));
    h.sent();
    let find = Message::FindNode(FindNode { target: key(7).peer_id(), expiration: h.exp() });
    assert_eq!(h.recv(&remote, &find).0, Inbound::Dropped(DropReason::NotBonded));
}

// Rule: ENRRequest is answered only for a bonded endpoint, with our record and the hash.
#[test]
fn enr_request_requires_bond() {
    let mut h = Harness::new();
    let remote = Remote::new(2, "10.0.0.2:4000");
    let request = Message::EnrRequest(EnrRequest { expiration: h.exp() });
    assert_eq!(h.recv(&remote, &request).0, Inbound::Dropped(DropReason::NotBonded));
    assert!(h.sent().is_empty());
    h.bond(&remote);
    h.sent();
    let (result, hash) = h.recv(&remote, &request);
    assert_eq!(result, Inbound::Handled);
    let sent = h.sent();
    match &sent[0].1.message {
        Message::EnrResponse(r) => {
            assert_eq!(r.request_hash, hash);
            assert_eq!(r.enr.node_id().raw(), key(1).node_id().0);
        }
        other => panic!("{other:?}"),
    }
}

// Rule: a PONG whose ping hash does not match proves nothing.
#[test]
fn pong_with_wrong_hash_proves_nothing() {
    let mut h = Harness::new();
    let remote = Remote::new(2, "10.0.0.2:4000");
    h.ping_from(&remote);
    let ping_hash = h.sent().iter().find(|(_, p)| matches!(p.message, Message::Ping(_))).unwrap().1.hash;

    let wrong = h.pong(&remote, B256::repeat_byte(0xaa), None);
    assert_eq!(h.recv(&remote, &wrong).0, Inbound::Dropped(DropReason::Unsolicited));
    // The right hash from another key proves nothing either.
    let other = Remote::new(3, "10.0.0.2:4000");
    let right = h.pong(&remote, ping_hash, None);
    assert_eq!(h.recv(&other, &right).0, Inbound::Dropped(DropReason::Unsolicited));
    // Nor from the right key at another IP.
    let elsewhere = Remote { key: remote.key.clone(), addr: "10.0.0.9:4000".parse().unwrap() };
    assert_eq!(h.recv(&elsewhere, &right).0, Inbound::Dropped(DropReason::Unsolicited));
    assert!(h.core.table().is_empty());
    let find = Message::FindNode(FindNode { target: key(7).peer_id(), expiration: h.exp() });
    assert_eq!(h.recv(&remote, &find).0, Inbound::Dropped(DropReason::NotBonded));

    // The genuine PONG works, once.
    assert_eq!(h.recv(&remote, &right).0, Inbound::Handled);
    assert_eq!(h.core.table().len(), 1);
    assert_eq!(h.recv(&remote, &right).0, Inbound::Dropped(DropReason::Unsolicited));
}

// Rule: a PONG after the PING timed out is not accepted.
#[test]
fn late_pong_ignored() {
    let mut h = Harness::new();
    let remote = Remote::new(2, "10.0.0.2:4000");
    h.ping_from(&remote);
    let ping_hash = h.sent().iter().find(|(_, p)| matches!(p.message, Message::Ping(_))).unwrap().1.hash;
    h.advance(Duration::from_secs(1));
    let pong = h.pong(&remote, ping_hash, None);
    assert_eq!(h.recv(&remote, &pong).0, Inbound::Dropped(DropReason::Unsolicited));
    assert!(h.core.table().is_empty());
}

// Rule: NEIGHBOURS that we did not ask for are ignored and never enter the table.
#[test]
fn unsolicited_neighbours_ignored() {
    let mut h = Harness::new();
    let remote = Remote::new(2, "10.0.0.2:4000");
    h.bond(&remote);
    h.sent();
    let stranger = Remote::new(9, "10.0.0.9:4000");
    let neighbours = Message::Neighbours(Neighbours {
        nodes: vec![NodeRecord { endpoint: stranger.endpoint(), id: stranger.key.peer_id() }],
        expiration: h.exp(),
    });
    // The self-lookup that started when the table got its first node queried `remote`;
    // once that query has timed out, nothing from `remote` is expected.
    h.advance(Duration::from_secs(1));
    h.sent();
    assert_eq!(h.recv(&remote, &neighbours).0, Inbound::Dropped(DropReason::Unsolicited));
    assert!(h.sent().is_empty(), "no ping to the advertised node");
    assert_eq!(h.core.table().len(), 1);
    assert!(h.core.table().get(&stranger.key.peer_id()).is_none());
}

// Rule: replies are rate-limited per source IP (checked before signature recovery,
// charged after it).
#[test]
fn requests_rate_limited_per_ip() {
    let mut h = Harness::with(|c| c.reply_rate_per_ip = Some(5));
    let remotes: Vec<_> = (0..20).map(|i| Remote::new(100 + i, "10.0.0.2:4000")).collect();
    let answered = remotes.iter().filter(|r| h.ping_from(r).0 == Inbound::Handled).count();
    assert_eq!(answered, 10, "burst of twice the rate");
    assert_eq!(h.core.stats().rate_limited, 10);
    // Another IP has its own budget.
    assert_eq!(h.ping_from(&Remote::new(200, "10.0.0.3:4000")).0, Inbound::Handled);
    // Tokens refill with time.
    h.advance(Duration::from_secs(1));
    let answered = remotes.iter().filter(|r| h.ping_from(r).0 == Inbound::Handled).count();
    assert_eq!(answered, 5);
}

// Issue 16's spoofing attack: unsigned junk with a valid hash, "from" a victim's IP, used
// to drain the victim's reply budget. Only requests whose signature checks out are
// charged, so the victim's real PINGs are still answered.
#[test]
fn junk_spoofed_from_a_victim_does_not_use_up_its_replies() {
    let mut h = Harness::with(|c| c.reply_rate_per_ip = Some(5));
    let victim = Remote::new(300, "10.0.0.7:4000");
    for i in 0..100u8 {
        let mut body = vec![0u8; 65]; // not a signature anything recovers from
        body.push(0x01); // a PING
        body.extend_from_slice(&[0xc3, 0x01, 0x02, i]);
        let mut packet = alloy_primitives::keccak256(&body).to_vec();
        packet.extend_from_slice(&body);
        assert!(matches!(h.recv_raw(victim.addr, &packet), Inbound::Dropped(DropReason::Malformed(_))));
    }
    assert_eq!(h.core.stats().rate_limited, 0);
    assert_eq!(h.ping_from(&victim).0, Inbound::Handled, "the victim is still answered");
}

#[test]
fn foreign_and_restricted() {
    let mut h = Harness::with(|c| c.netrestrict = "10.0.0.0/24".parse().unwrap());
    // A discv5-looking datagram: no valid discv4 hash.
    assert_eq!(h.recv_raw("10.0.0.2:1".parse().unwrap(), &[0u8; 120]), Inbound::Foreign);
    assert_eq!(h.core.stats().foreign, 1);
    let outsider = Remote::new(2, "10.0.1.2:4000");
    assert_eq!(h.ping_from(&outsider).0, Inbound::Dropped(DropReason::Restricted));
    assert!(h.sent().is_empty());
}

// Our ENRRequest to a node we have not bonded with waits, after its PONG, for its PING (its
// proof of us): sent at once on the PONG, it would race that PING and be dropped as coming
// from an unproven node. A node that never pings back gets the request after
// `request_timeout` (it may know us from before).
#[test]
fn enr_request_waits_for_the_ping_back() {
    let enr_requests = |sent: &[(SocketAddr, Packet)]| {
        sent.iter().filter(|(_, p)| matches!(p.message, Message::EnrRequest(_))).count()
    };
    let our_ping = |sent: &[(SocketAddr, Packet)]| {
        sent.iter().find(|(_, p)| matches!(p.message, Message::Ping(_))).expect("we ping first").1.hash
    };
    for pings_back in [true, false] {
        let mut h = Harness::new();
        let remote = Remote::new(2, "10.0.0.2:4000");
        h.core.request_enr(h.now, &Enode::new(remote.key.peer_id(), remote.addr), RequestId(7));
        let ping = our_ping(&h.sent());
        let pong = h.pong(&remote, ping, Some(1));
        assert_eq!(h.recv(&remote, &pong).0, Inbound::Handled);
        assert_eq!(enr_requests(&h.sent()), 0, "not before they have pinged us");
        if pings_back {
            h.advance(Duration::from_millis(20));
            h.ping_from(&remote);
            let sent = h.sent();
            assert_eq!(enr_requests(&sent), 1, "right after our PONG to their PING");
            assert_eq!(sent.last().map(|(a, _)| *a), Some(remote.addr));
        } else {
            h.advance(Discv4Config::default().request_timeout - Duration::from_millis(1));
            assert_eq!(enr_requests(&h.sent()), 0);
            h.advance(Duration::from_millis(1));
            assert_eq!(enr_requests(&h.sent()), 1, "asked anyway when they do not ping back");
        }
    }
}

// A record signed by another key than the one we asked is no answer.
#[test]
fn enr_response_must_match_key() {
    let mut h = Harness::new();
    let remote = Remote::new(2, "10.0.0.2:4000");
    h.bond(&remote);
    let enr_req_hash = h
        .sent()
        .iter()
        .find(|(_, p)| matches!(p.message, Message::EnrRequest(_)))
        .map(|(_, p)| p.hash)
        .expect("a new node with enr-seq gets an ENRRequest");
    let impostor = local_enr(&key(99), remote.addr).record();
    let bad = Message::EnrResponse(proto::EnrResponse { request_hash: enr_req_hash, enr: impostor });
    assert_eq!(h.recv(&remote, &bad).0, Inbound::Dropped(DropReason::Unsolicited));
    let fork = ForkId { hash: [1, 2, 3, 4].into(), next: 0 };
    let genuine = LocalEnr::builder(&remote.key).udp_socket(remote.addr).fork_id(fork).build().unwrap();
    let good = Message::EnrResponse(proto::EnrResponse { request_hash: enr_req_hash, enr: genuine.record() });
    assert_eq!(h.recv(&remote, &good).0, Inbound::Handled);
    let discovered: Vec<_> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            CoreEvent::Discovered(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(discovered.len(), 1);
    assert_eq!(discovered[0].eth, EthEntry::ForkId(fork));
    assert_eq!(discovered[0].peer_id, remote.key.peer_id());
}

// EIP-868: a PING or PONG with a higher enr-seq than the record we hold triggers a re-fetch.
#[test]
fn enr_seq_growth_refetches() {
    let mut h = Harness::new();
    let remote = Remote::new(2, "10.0.0.2:4000");
    h.bond(&remote);
    let req = h.sent().into_iter().find(|(_, p)| matches!(p.message, Message::EnrRequest(_))).unwrap().1.hash;
    let record = LocalEnr::builder(&remote.key).udp_socket(remote.addr).build().unwrap();
    let resp = Message::EnrResponse(proto::EnrResponse { request_hash: req, enr: record.record() });
    assert_eq!(h.recv(&remote, &resp).0, Inbound::Handled);
    // Same seq: nothing to fetch.
    h.ping_from(&remote);
    assert!(!h.sent().iter().any(|(_, p)| matches!(p.message, Message::EnrRequest(_))));
    // Higher seq: fetch again.
    let ping = Message::Ping(Ping {
        from: remote.endpoint(),
        to: remote.endpoint(),
        expiration: h.exp(),
        enr_seq: Some(record.seq() + 1),
    });
    h.recv(&remote, &ping);
    assert!(h.sent().iter().any(|(_, p)| matches!(p.message, Message::EnrRequest(_))));
}

// External IP prediction: a majority of distinct recent reporters.
#[test]
fn external_ip_majority() {
    let mut h = Harness::with(|c| c.min_ip_votes = 3);
    let mut reported = Vec::new();
    for (i, claim) in ["7.7.7.7", "8.8.8.8", "7.7.7.7", "7.7.7.7"].iter().enumerate() {
        let remote = Remote::new(10 + i as u64, &format!("10.0.0.{}:4000", 10 + i));
        h.ping_from(&remote);
        let ping_hash = h.sent().iter().find(|(_, p)| matches!(p.message, Message::Ping(_))).unwrap().1.hash;
        let pong = Message::Pong(Pong {
            to: Endpoint { ip: claim.parse().unwrap(), udp_port: 30303, tcp_port: 0 },
            ping_hash,
            expiration: h.exp(),
            enr_seq: None,
        });
        h.recv(&remote, &pong);
        reported.extend(h.events().into_iter().filter_map(|e| match e {
            CoreEvent::ExternalIp(ip) => Some(ip),
            _ => None,
        }));
    }
    // After 3 votes (2 of 3 for 7.7.7.7) the majority is clear.
    let ip: IpAddr = "7.7.7.7".parse().unwrap();
    assert_eq!(reported, vec![ip]);
    assert_eq!(h.core.predicted_ip(), Some(ip));
}

// Issue 16's attack: twelve keys on one IP answer our PINGs with PONGs naming an address
// of their choice. Before, one vote per key moved our record; now a host (or a /24) counts
// once, and impossible addresses (documentation, multicast, broadcast) never win.
#[test]
fn one_host_with_many_keys_cannot_move_our_address() {
    let mut h = Harness::with(|c| c.min_ip_votes = 3);
    let before = h.local.record().clone();
    for (n, claim) in ["192.0.2.66", "224.0.0.251", "255.255.255.255", "8.8.4.4"].iter().enumerate() {
        for i in 0..12u64 {
            let remote = Remote::new(100 + 20 * n as u64 + i, &format!("10.9.9.9:{}", 4000 + i));
            h.ping_from(&remote);
            let ping_hash = h
                .sent()
                .iter()
                .rev()
                .find(|(to, p)| *to == remote.addr && matches!(p.message, Message::Ping(_)))
                .unwrap()
                .1
                .hash;
            let pong = Message::Pong(Pong {
                to: Endpoint { ip: claim.parse().unwrap(), udp_port: 30303, tcp_port: 0 },
                ping_hash,
                expiration: h.exp(),
                enr_seq: None,
            });
            h.recv(&remote, &pong);
        }
    }
    assert!(!h.events().iter().any(|e| matches!(e, CoreEvent::ExternalIp(_))));
    assert_eq!(h.core.predicted_ip(), None);
    assert_eq!(h.local.record().seq(), before.seq(), "the record was not re-signed");
    assert_eq!(h.local.record().ip4(), before.ip4());
}

// Revalidation: a table entry that stops answering is removed.
#[test]
fn revalidation_evicts_dead_node() {
    let mut h = Harness::with(|c| c.enr_requests = false);
    let remote = Remote::new(2, "10.0.0.2:4000");
    h.bond(&remote);
    assert_eq!(h.core.table().len(), 1);
    h.sent();
    // At the revalidation tick the stale entry is pinged; nobody answers.
    h.advance(Duration::from_secs(3));
    assert!(h.sent().iter().any(|(a, p)| *a == remote.addr && matches!(p.message, Message::Ping(_))));
    h.advance(Duration::from_secs(1));
    assert!(h.core.table().is_empty());
}

/// A virtual network of cores: datagrams are delivered after a fixed latency, in order.
struct Sim {
    cores: Vec<Discv4Core>,
    addrs: Vec<SocketAddr>,
    index: HashMap<SocketAddr, usize>,
    wire: BTreeMap<(Instant, u64), (SocketAddr, SocketAddr, Vec<u8>)>,
    seq: u64,
    now: Instant,
    latency: Duration,
    results: HashMap<(usize, u64), CoreEvent>,
    packets: u64,
}

impl Sim {
    fn flush(&mut self, i: usize) {
        while let Some((to, bytes)) = self.cores[i].poll_transmit() {
            self.seq += 1;
            self.wire.insert((self.now + self.latency, self.seq), (self.addrs[i], to, bytes));
        }
        while let Some(event) = self.cores[i].poll_event() {
            let id = match &event {
                CoreEvent::LookupFinished { request: Some(r), .. } => r.0,
                CoreEvent::EnrResult { request, .. } => request.0,
                _ => continue,
            };
            self.results.insert((i, id), event);
        }
    }

    /// Runs the network until virtual time `until`.
    fn run_until(&mut self, until: Instant) {
        loop {
            let next_packet = self.wire.keys().next().map(|(t, _)| *t);
            let next_timer = self.cores.iter().filter_map(|c| c.next_timeout()).min();
            let next = match (next_packet, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).expect("cores always have timers"),
            };
            if next > until {
                self.now = until;
                return;
            }
            self.now = next;
            if next_packet == Some(next) {
                let (_, (from, to, bytes)) = self.wire.pop_first().expect("non-empty");
                self.packets += 1;
                let j = self.index[&to];
                self.cores[j].handle_datagram(next, from, &bytes);
                self.flush(j);
            } else {
                for i in 0..self.cores.len() {
                    if self.cores[i].next_timeout().is_some_and(|t| t <= next) {
                        self.cores[i].handle_timeouts(next);
                        self.flush(i);
                    }
                }
            }
        }
    }
}

/// 200 cores on a virtual network: each bootstraps from node 0, then every node looks up
/// another and fetches its record. Deterministic (fixed keys, seeds, FIFO delivery).
#[test]
fn simulation_200_nodes() {
    const N: usize = 200;
    let t0 = Instant::now();
    let addrs: Vec<SocketAddr> = (0..N).map(|i| SocketAddr::from(([10, 1, i as u8, 1], 30303))).collect();
    let keys: Vec<NodeKey> = (0..N).map(|i| key(1000 + i as u64)).collect();
    let boot = Enode::new(keys[0].peer_id(), addrs[0]);
    let cores = (0..N)
        .map(|i| {
            let mut config = test_config(addrs[i]);
            config.bootnodes = if i == 0 { vec![] } else { vec![boot] };
            config.reply_rate_per_ip = None;
            Discv4Core::new(config, local_enr(&keys[i], addrs[i]), t0, UNIX0, i as u64)
        })
        .collect();
    let mut sim = Sim {
        cores,
        index: addrs.iter().enumerate().map(|(i, a)| (*a, i)).collect(),
        addrs: addrs.clone(),
        wire: BTreeMap::new(),
        seq: 0,
        now: t0,
        latency: Duration::from_millis(5),
        results: HashMap::new(),
        packets: 0,
    };
    for i in 0..N {
        sim.cores[i].bootstrap(t0);
        sim.flush(i);
    }

    // Bootstrap and self-lookups, then one round of random lookups (lookup interval 20 s).
    sim.run_until(t0 + Duration::from_secs(25));
    let mut sizes: Vec<usize> = sim.cores.iter().map(|c| c.table().len()).collect();
    sizes.sort();
    println!("after 25 s: table sizes min {} median {} max {}", sizes[0], sizes[N / 2], sizes[N - 1]);
    assert!(sizes[0] > 0);

    // Every node looks up another one and then fetches its record.
    let target_of = |i: usize| (i + 1 + (37 * i) % (N - 1)) % N;
    for i in 0..N {
        let j = target_of(i);
        assert_ne!(i, j);
        let now = sim.now;
        sim.cores[i].lookup(now, keys[j].peer_id(), Some(RequestId(1)));
        sim.flush(i);
    }
    sim.run_until(sim.now + Duration::from_secs(15));
    let mut hops: BTreeMap<u32, usize> = BTreeMap::new();
    let mut found = 0;
    for i in 0..N {
        let j = target_of(i);
        match sim.results.get(&(i, 1)) {
            Some(CoreEvent::LookupFinished { closest, target_hop, .. }) => {
                if closest.first().map(|r| r.id) == Some(keys[j].peer_id()) {
                    found += 1;
                    *hops.entry(target_hop.unwrap_or(u32::MAX)).or_default() += 1;
                }
            }
            other => panic!(
                "node {i}: lookup did not finish: {other:?} now {:?} t0 {t0:?} next {:?}\n{}",
                sim.now,
                sim.cores[i].next_timeout(),
                sim.cores[i].debug_lookups()
            ),
        }
        let now = sim.now;
        sim.cores[i].request_enr(now, &Enode::new(keys[j].peer_id(), addrs[j]), RequestId(2));
        sim.flush(i);
    }
    sim.run_until(sim.now + Duration::from_secs(5));
    let mut records = 0;
    for i in 0..N {
        let j = target_of(i);
        if let Some(CoreEvent::EnrResult { enr: Some(enr), .. }) = sim.results.get(&(i, 2)) {
            assert_eq!(enr.node_id().raw(), keys[j].node_id().0);
            records += 1;
        }
    }
    println!(
        "simulation: {N} nodes, {} packets delivered, {found}/{N} lookups found their target, {records}/{N} records fetched",
        sim.packets
    );
    println!("hops at which the target was first seen (0 = already in the table): {hops:?}");
    assert_eq!(found, N, "every lookup finds its target");
    assert_eq!(records, N, "every record is fetched");
}

// Dual stack: IPv4 peers state our IPv4 address and IPv6 peers our IPv6 one. Counted
// together, three of each would be a tie and neither would win; counted per family,
// each family's quorum settles its own address and the record gets both.
#[test]
fn ip_votes_are_counted_per_family() {
    let mut h = Harness::with(|c| c.min_ip_votes = 3);
    let claims = [
        ("10.0.0.1:4000", "7.7.7.7"),
        ("[fd00::1]:4000", "2001:4860::1"),
        ("10.0.0.2:4000", "7.7.7.7"),
        ("[fd00::2]:4000", "2001:4860::1"),
        ("10.0.0.3:4000", "7.7.7.7"),
        ("[fd00::3]:4000", "2001:4860::1"),
    ];
    let mut reported = Vec::new();
    for (i, (from, claim)) in claims.iter().enumerate() {
        let remote = Remote::new(300 + i as u64, from);
        h.ping_from(&remote);
        let ping_hash = h
            .sent()
            .iter()
            .rev()
            .find(|(to, p)| *to == remote.addr && matches!(p.message, Message::Ping(_)))
            .expect("we ping back")
            .1
            .hash;
        let pong = Message::Pong(Pong {
            to: Endpoint { ip: claim.parse().unwrap(), udp_port: 30303, tcp_port: 0 },
            ping_hash,
            expiration: h.exp(),
            enr_seq: None,
        });
        h.recv(&remote, &pong);
        reported.extend(h.events().into_iter().filter_map(|e| match e {
            CoreEvent::ExternalIp(ip) => Some(ip),
            _ => None,
        }));
    }
    let (v4, v6): (IpAddr, IpAddr) = ("7.7.7.7".parse().unwrap(), "2001:4860::1".parse().unwrap());
    assert_eq!(reported, vec![v4, v6]);
    let record = h.local.record();
    assert_eq!(record.ip4(), Some("7.7.7.7".parse().unwrap()));
    assert_eq!(record.ip6(), Some("2001:4860::1".parse().unwrap()));
}

// The two-step path of a service with signature workers: precheck, decode elsewhere,
// handle_decoded. The PONG leaves unsigned and before the signed PING back; the reply budget
// is peeked before the recovery and charged only for a packet that decodes.
#[test]
fn two_step_ingress_charges_only_decoded_requests_and_leaves_replies_unsigned() {
    use super::Payload;
    let mut h = Harness::with(|c| c.reply_rate_per_ip = Some(1));
    let remote = Remote::new(2, "10.0.0.2:4000");
    let ping = Message::Ping(Ping {
        from: remote.endpoint(),
        to: Endpoint { ip: h.addr.ip(), udp_port: h.addr.port(), tcp_port: 0 },
        expiration: h.exp(),
        enr_seq: Some(1),
    });
    let (bytes, hash) = remote.packet(&ping);
    let two_step = |h: &mut Harness, bytes: &[u8]| match h.core.precheck(h.now, remote.addr, bytes) {
        Some(dropped) => dropped,
        None => h.core.handle_decoded(h.now, remote.addr, bytes.len(), proto::decode(bytes)),
    };
    assert_eq!(two_step(&mut h, &bytes), Inbound::Handled);
    match h.core.poll_outgoing().map(|o| (o.addr, o.payload)) {
        Some((addr, Payload::Unsigned(Message::Pong(pong)))) => {
            assert_eq!((addr, pong.ping_hash), (remote.addr, hash));
        }
        other => panic!("expected an unsigned PONG first, got {other:?}"),
    }
    match h.core.poll_outgoing().map(|o| o.payload) {
        Some(Payload::Signed(ping_back)) => {
            let packet = proto::decode(&ping_back).unwrap();
            assert!(matches!(packet.message, Message::Ping(_)));
            assert_eq!(packet.peer_id, key(1).peer_id());
        }
        other => panic!("expected the signed PING back, got {other:?}"),
    }
    // A burst of two at one request a second: one left. Junk that claims to be a PING passes
    // the precheck but is not charged, so the next real PING is still answered...
    let mut junk = vec![0u8; 150];
    junk[97] = 0x01;
    assert_eq!(two_step(&mut h, &junk), Inbound::Foreign);
    assert_eq!(two_step(&mut h, &bytes), Inbound::Handled);
    // ...and the one after it is over the rate, refused before any recovery.
    assert_eq!(h.core.precheck(h.now, remote.addr, &bytes), Some(Inbound::Dropped(DropReason::RateLimited)));
}
