//! Stateful fuzzing of the sans-IO state machines: a byte string is read as a sequence of
//! inputs (events, datagrams, clock advances) for one machine, and after every step the
//! machine's invariants are checked; a violation panics. The same functions run under
//! libFuzzer (`fuzz/fuzz_targets/pool_state.rs`, `discv4_core.rs`) and under proptest in
//! `cargo test`, so the invariants are exercised on every run, not only in fuzz campaigns.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use crate::{
    discovery::v4::{
        proto::{self, Endpoint, FindNode, Message, Neighbours, NodeRecord, Ping, Pong},
        Discv4Config, Discv4Core, Inbound, BUCKET_SIZE,
    },
    eth::{EthVersion, InvalidResponse, Outcome, RequestKind},
    pool::{Direction, PoolAction, PoolConfig, PoolState, ReputationChange, SessionClose},
    record::{Candidate, CandidateSource, Enode, LocalEnr, NodeKey, PeerId},
    rlpx::{Backoff, DisconnectReason},
};

/// Reads the fuzz input a byte at a time; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        b
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Peer `i` of the sequence's 32: its id, and an address in one of four public /24s.
fn pool_peer(i: u8) -> (PeerId, SocketAddr) {
    let i = i % 32;
    let mut id = [0x11; 64];
    id[0] = i;
    let ip = IpAddr::V4(Ipv4Addr::new(20, 0, i % 4, 1 + i / 4));
    (PeerId::from(id), SocketAddr::new(ip, 30303))
}

/// Feeds `data` to a [`PoolState`] as a sequence of pool events (candidates, sessions
/// established and closed, dial failures, inbound connections, responses, bans, time) and
/// checks after each: never more sessions than `max_peers` nor more than `subnet_limit`
/// in one /24; directions add up; a dial never targets a banned or connected peer.
/// Returns the most sessions the pool held at once, so tests can show the sequence went
/// deep.
pub fn pool_sequence(data: &[u8]) -> usize {
    let mut input = Input(data);
    let config = PoolConfig::builder().max_peers(8).min_peers(4).build().expect("valid");
    let (max, subnet_limit) = (config.max_peers, config.subnet_limit);
    let mut now = Instant::now();
    let mut pool = PoolState::new(config, PeerId::ZERO, |_: &Candidate| true, now, 7);
    let (mut steps, mut most) = (0, 0);
    while !input.is_empty() && steps < 4096 {
        steps += 1;
        let (op, arg) = (input.byte(), input.byte());
        let (peer, addr) = pool_peer(arg);
        match op % 10 {
            0 => {
                let enode = Enode::new(peer, addr);
                pool.add_candidate(&Candidate::from_enode(&enode, CandidateSource::Discv4), now);
                pool.dial_if_below_target(now);
            }
            1 | 2 => {
                let direction = if op % 10 == 1 { Direction::Outbound } else { Direction::Inbound };
                if direction == Direction::Inbound && pool.on_inbound_connection(addr.ip(), now).is_err() {
                    continue;
                }
                if pool.on_session_established(peer, addr, direction, now).is_ok() {
                    pool.set_peer_info(&peer, "fuzz", EthVersion::Eth69);
                }
            }
            3 => {
                let close = match input.byte() % 4 {
                    0 => SessionClose::Local,
                    1 => SessionClose::Remote(Some(DisconnectReason::TooManyPeers)),
                    2 => SessionClose::Remote(None),
                    _ => SessionClose::Error { backoff: Backoff::Medium, ban: input.byte() % 2 == 0 },
                };
                pool.on_session_closed(&peer, close, now);
            }
            4 => {
                let backoff =
                    [Backoff::None, Backoff::Low, Backoff::Medium, Backoff::High][usize::from(arg % 4)];
                pool.on_dial_failed(&peer, backoff, now);
            }
            5 => now += Duration::from_millis(u64::from(arg) * 250),
            6 => {
                pool.on_request_sent(&peer);
                let rtt = Duration::from_millis(u64::from(input.byte()));
                let outcome = match input.byte() % 4 {
                    0 => Outcome::Valid { rtt, size: 100, items: 1 },
                    1 => Outcome::Empty { rtt },
                    2 => Outcome::Invalid {
                        reason: InvalidResponse::TooMany { requested: 1, got: 2 },
                        rtt,
                        size: 1,
                    },
                    _ => Outcome::Timeout { after: rtt },
                };
                pool.on_response(&peer, RequestKind::BlockHeaders, &outcome, now);
            }
            7 => pool.ban(&peer, now),
            8 => pool.change_reputation(&peer, ReputationChange::Other(-i32::from(input.byte()) * 64), now),
            _ => pool.tick(now),
        }
        check_pool(&mut pool, now, max, subnet_limit);
        most = most.max(pool.len());
    }
    most
}

fn check_pool(pool: &mut PoolState, now: Instant, max: usize, subnet_limit: usize) {
    while let Some(action) = pool.poll_action() {
        if let PoolAction::Dial(target) = action {
            assert!(!pool.is_banned(&target.peer_id, now), "dialed a banned peer {:?}", target.peer_id);
            assert!(!pool.is_connected(&target.peer_id), "dialed a connected peer {:?}", target.peer_id);
        }
    }
    let peers = pool.peers(now);
    assert!(peers.len() <= max, "{} sessions over max_peers {max}", peers.len());
    assert_eq!(pool.count(Direction::Inbound) + pool.count(Direction::Outbound), pool.len());
    assert_eq!(peers.len(), pool.len());
    let mut per_subnet: HashMap<[u8; 3], usize> = HashMap::new();
    for p in &peers {
        if let IpAddr::V4(v4) = p.addr.ip() {
            let o = v4.octets();
            *per_subnet.entry([o[0], o[1], o[2]]).or_default() += 1;
        }
    }
    assert!(per_subnet.values().all(|n| *n <= subnet_limit), "subnet limit broken: {per_subnet:?}");
}

/// One remote of the discv4 sequence: a key at an address (several keys share an IP).
struct Remote {
    key: NodeKey,
    addr: SocketAddr,
}

/// Feeds `data` to a [`Discv4Core`] as a sequence of datagrams from eight remotes (PING,
/// PONG quoting our last PING or not, FINDNODE, NEIGHBOURS, garbage) and clock advances,
/// and checks after each step: the table never exceeds its buckets; NEIGHBOURS go only to
/// an address whose PONG the core accepted (no amplification toward unproven endpoints);
/// every datagram sent fits the packet limit.
/// Returns how many NEIGHBOURS the core sent, so tests can show the sequence went deep.
pub fn discv4_sequence(data: &[u8]) -> usize {
    let mut input = Input(data);
    let local_addr: SocketAddr = "10.0.0.1:30303".parse().expect("valid");
    let key = NodeKey::from_bytes(&[0x42; 32]).expect("valid key");
    let local = LocalEnr::builder(&key).udp_socket(local_addr).build().expect("valid record");
    let config = Discv4Config { listen_addr: local_addr, ..Default::default() };
    let t0 = Instant::now();
    let unix0 = 1_700_000_000;
    let mut core = Discv4Core::new(config, local, t0, unix0, 1);
    let remotes: Vec<Remote> = (0..8u8)
        .map(|i| {
            let mut secret = [0x10; 32];
            secret[0] = i + 1;
            let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 1, i / 2 + 2)), 4000 + u16::from(i));
            Remote { key: NodeKey::from_bytes(&secret).expect("valid key"), addr }
        })
        .collect();
    let mut now = t0;
    // The last PING the core sent to each address, and the addresses whose PONG it took.
    let mut pings: HashMap<SocketAddr, alloy_primitives::B256> = HashMap::new();
    let mut proven: HashSet<SocketAddr> = HashSet::new();
    let (mut steps, mut neighbours) = (0, 0);
    while !input.is_empty() && steps < 2048 {
        steps += 1;
        let (op, who) = (input.byte(), input.byte());
        let remote = &remotes[usize::from(who % 8)];
        let expiration = unix0 + now.duration_since(t0).as_secs() + 20;
        let endpoint = Endpoint { ip: remote.addr.ip(), udp_port: remote.addr.port(), tcp_port: 30303 };
        let to = Endpoint { ip: local_addr.ip(), udp_port: local_addr.port(), tcp_port: 0 };
        let message = match op % 7 {
            0 => Some(Message::Ping(Ping { from: endpoint, to, expiration, enr_seq: Some(1) })),
            1 => {
                // A PONG quoting our last PING to this address, or a made-up hash.
                let ping_hash = if input.byte() % 4 == 0 {
                    alloy_primitives::B256::repeat_byte(input.byte())
                } else {
                    pings.get(&remote.addr).copied().unwrap_or_default()
                };
                Some(Message::Pong(Pong { to: endpoint, ping_hash, expiration, enr_seq: None }))
            }
            2 => {
                let mut target = [0u8; 64];
                target[0] = input.byte();
                Some(Message::FindNode(FindNode { target: PeerId::from(target), expiration }))
            }
            3 => {
                let n = input.byte() % 4;
                let nodes = (0..n)
                    .map(|j| NodeRecord {
                        endpoint: Endpoint {
                            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 2, input.byte())),
                            udp_port: 30303,
                            tcp_port: 30303 + u16::from(j),
                        },
                        id: PeerId::from([input.byte(); 64]),
                    })
                    .collect();
                Some(Message::Neighbours(Neighbours { nodes, expiration }))
            }
            4 => {
                now += Duration::from_millis(u64::from(input.byte()) * 100);
                core.handle_timeouts(now);
                None
            }
            5 => {
                // Garbage with a valid hash, or without.
                let len = usize::from(input.byte());
                let body: Vec<u8> = (0..len).map(|_| input.byte()).collect();
                let mut packet = alloy_primitives::keccak256(&body).to_vec();
                packet.extend_from_slice(&body);
                if op % 2 == 0 {
                    packet[0] ^= 1;
                }
                core.handle_datagram(now, remote.addr, &packet);
                None
            }
            _ => {
                now += Duration::from_secs(u64::from(input.byte()) * 60);
                core.handle_timeouts(now);
                None
            }
        };
        if let Some(message) = message {
            let (bytes, _) = proto::encode(&message, remote.key.secret());
            let result = core.handle_datagram(now, remote.addr, &bytes);
            if matches!(message, Message::Pong(_)) && result == Inbound::Handled {
                proven.insert(remote.addr);
            }
        }
        while let Some((to, bytes)) = core.poll_transmit() {
            assert!(bytes.len() <= proto::MAX_PACKET_SIZE, "a {}-byte datagram", bytes.len());
            let packet = proto::decode(&bytes).expect("we send what we can decode");
            match packet.message {
                Message::Ping(_) => {
                    pings.insert(to, packet.hash);
                }
                Message::Neighbours(_) => {
                    assert!(proven.contains(&to), "NEIGHBOURS to {to}, whose endpoint is unproven");
                    neighbours += 1;
                }
                _ => {}
            }
        }
        while core.poll_event().is_some() {}
        assert!(core.table().len() <= 256 * BUCKET_SIZE, "table over its buckets");
    }
    neighbours
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn pool_invariants_hold_for_any_event_sequence(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            pool_sequence(&data);
        }

        #[test]
        fn discv4_invariants_hold_for_any_datagram_sequence(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
            discv4_sequence(&data);
        }
    }

    /// Sequences that reach the interesting states: sessions up to the limits, bonds,
    /// FINDNODE answered.
    #[test]
    fn crafted_sequences_reach_deep_states() {
        let mut fill = Vec::new();
        for i in 0..32u8 {
            fill.extend_from_slice(&[0, i, 1, i, 2, i.wrapping_add(7)]);
        }
        fill.extend_from_slice(&[7, 3, 9, 0, 5, 200, 9, 0, 3, 1, 0]);
        assert_eq!(pool_sequence(&fill), 8, "the pool filled to max_peers");
        let mut bond = Vec::new();
        for who in 0..8u8 {
            // Their PING (we answer and ping back), their PONG quoting ours, a FINDNODE.
            bond.extend_from_slice(&[0, who, 1, who, 1, 2, who, 0]);
        }
        assert!(discv4_sequence(&bond) > 0, "bonded remotes got NEIGHBOURS");
    }
}
