//! Tests of the pool state machine as a whole, driven with made-up time.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, Instant, SystemTime},
};

use proptest::prelude::*;

use super::*;
use crate::{
    eth::{InvalidResponse, Outcome, RequestKind},
    record::{Candidate, CandidateSource, Enode, EthEntry, ForkId, PeerId},
    rlpx::DisconnectReason,
};

/// A response that failed validation after `rtt` (the check that failed does not matter
/// to the pool).
fn invalid(rtt: Duration) -> Outcome {
    Outcome::Invalid { reason: InvalidResponse::TooMany { requested: 1, got: 2 }, rtt, size: 0 }
}

fn id(n: u32) -> PeerId {
    let mut b = [0u8; 64];
    b[..4].copy_from_slice(&n.to_be_bytes());
    b[63] = 1; // never the zero id used as the local node
    PeerId::from(b)
}

/// A public address: node `n` in its own /24 unless `subnet` says otherwise.
fn ip(subnet: u32, host: u8) -> IpAddr {
    let s = subnet.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(40 + s[1], s[2], s[3], host))
}

fn candidate(n: u32, ip: IpAddr) -> Candidate {
    let enode = Enode { peer_id: id(n), ip, tcp_port: 30303, udp_port: 30303 };
    Candidate::from_enode(&enode, CandidateSource::Discv4)
}

fn pool(config: PoolConfig, now: Instant) -> PoolState {
    PoolState::new(config, PeerId::ZERO, |_: &Candidate| true, now, 7)
}

fn drain(p: &mut PoolState) -> Vec<PoolAction> {
    std::iter::from_fn(|| p.poll_action()).collect()
}

fn dials(actions: &[PoolAction]) -> Vec<DialTarget> {
    actions
        .iter()
        .filter_map(|a| match a {
            PoolAction::Dial(t) => Some(*t),
            _ => None,
        })
        .collect()
}

/// Dials every target and lets it succeed; returns how many sessions were admitted.
fn connect_all(p: &mut PoolState, now: Instant) -> usize {
    let mut admitted = 0;
    loop {
        let targets = dials(&drain(p));
        if targets.is_empty() {
            return admitted;
        }
        for t in targets {
            if p.on_session_established(t.peer_id, t.addr, Direction::Outbound, now).is_ok() {
                admitted += 1;
            }
        }
    }
}

#[test]
fn fills_to_min_peers_without_inbound_and_respects_concurrency() {
    let now = Instant::now();
    let mut p = pool(PoolConfig::builder().max_concurrent_dials(10).build().unwrap(), now);
    for n in 0..200 {
        assert!(p.add_candidate(&candidate(n, ip(n, 1)), now));
    }
    p.tick(now);
    let first = dials(&drain(&mut p));
    assert_eq!(first.len(), 10, "concurrency limit");
    for t in first {
        p.on_session_established(t.peer_id, t.addr, Direction::Outbound, now).unwrap();
    }
    connect_all(&mut p, now);
    assert_eq!(p.len(), 30, "min_peers reached by dialing alone");
    assert_eq!(p.count(Direction::Outbound), 30);
}

/// A cold start dials what discovery delivers as it arrives, not at the next tick; once the
/// outbound target is covered by sessions and dials in flight, new candidates only queue.
#[test]
fn candidates_are_dialed_on_arrival_below_target() {
    let now = Instant::now();
    let mut p = pool(PoolConfig::default(), now);
    assert!(p.add_candidate(&candidate(1, ip(1, 1)), now));
    p.dial_if_below_target(now);
    assert_eq!(dials(&drain(&mut p)).len(), 1, "dialed without a tick");
    for n in 2..=40 {
        p.add_candidate(&candidate(n, ip(n, 1)), now);
    }
    p.dial_if_below_target(now);
    // The target (min_peers, no inbound) is 30 and the first dial is still in flight.
    assert_eq!(dials(&drain(&mut p)).len(), 29);
    p.add_candidate(&candidate(41, ip(41, 1)), now);
    p.dial_if_below_target(now);
    assert!(dials(&drain(&mut p)).is_empty(), "target covered: queued for later");
}

#[test]
fn inbound_flood_stays_within_limits() {
    let now = Instant::now();
    let mut p = pool(PoolConfig::default(), now);
    let mut admitted = 0;
    for n in 0..500u32 {
        let addr = SocketAddr::new(ip(n, 1), 30303);
        if p.on_inbound_connection(addr.ip(), now).is_ok()
            && p.on_session_established(id(n), addr, Direction::Inbound, now).is_ok()
        {
            admitted += 1;
        }
    }
    assert_eq!(admitted, p.config().max_inbound());
    // The same IP again within 30 s is throttled before any handshake.
    let again = ip(0, 1);
    assert_eq!(
        p.on_inbound_connection(again, now + Duration::from_secs(1)),
        Err(DisconnectReason::TooManyPeers)
    );
    // Outbound slots are still there: we dial our share.
    for n in 1000..1100 {
        p.add_candidate(&candidate(n, ip(n, 1)), now);
    }
    p.tick(now);
    connect_all(&mut p, now);
    assert_eq!(p.count(Direction::Outbound), p.config().max_outbound_share());
    assert_eq!(p.len(), p.config().max_peers);
}

#[test]
fn trusted_admitted_over_the_limit_and_statics_redialed() {
    let now = Instant::now();
    let trusted = Enode { peer_id: id(9000), ip: ip(9000, 1), tcp_port: 30303, udp_port: 30303 };
    let fixed = Enode { peer_id: id(9001), ip: ip(9001, 1), tcp_port: 30303, udp_port: 30303 };
    let config = PoolConfig::builder()
        .max_peers(3)
        .min_peers(3)
        .trusted_peers(vec![trusted])
        .static_peers(vec![fixed])
        .build()
        .unwrap();
    let mut p = pool(config, now);
    for n in 0..3 {
        let addr = SocketAddr::new(ip(n, 1), 1);
        p.on_inbound_connection(addr.ip(), now).unwrap();
        let _ = p.on_session_established(id(n), addr, Direction::Inbound, now);
    }
    let full = p.len();
    assert!(p
        .on_session_established(id(9000), SocketAddr::new(trusted.ip, 1), Direction::Inbound, now)
        .is_ok());
    assert_eq!(p.len(), full + 1);
    // The static peer is dialed even though there is no free slot, and again after a failure.
    p.tick(now);
    let d = dials(&drain(&mut p));
    assert!(d.iter().any(|t| t.peer_id == id(9001)));
    p.on_dial_failed(&id(9001), Backoff::High, now);
    for _ in 0..10 {
        p.on_dial_failed(&id(9001), Backoff::High, now);
    }
    p.tick(now + Duration::from_secs(2 * 3600));
    assert!(dials(&drain(&mut p)).iter().any(|t| t.peer_id == id(9001)), "statics are never forgotten");
}

#[test]
fn liar_banned_after_three_bad_answers_and_ban_expires() {
    let now = Instant::now();
    let mut p = pool(PoolConfig::default(), now);
    let addr = SocketAddr::new(ip(1, 1), 30303);
    p.on_session_established(id(1), addr, Direction::Outbound, now).unwrap();
    drain(&mut p);
    for i in 0..3 {
        p.on_request_sent(&id(1));
        p.on_response(&id(1), RequestKind::BlockHeaders, &invalid(Duration::from_millis(5)), now);
        let actions = drain(&mut p);
        let banned = actions.iter().any(|a| matches!(a, PoolAction::Event(PoolEvent::PeerBanned { .. })));
        let dropped = actions
            .contains(&PoolAction::Disconnect { peer_id: id(1), reason: DisconnectReason::ProtocolBreach });
        assert_eq!(banned, i == 2, "banned at the third lie, not before");
        assert_eq!(dropped, i == 2);
    }
    assert!(p.is_banned(&id(1), now));
    p.on_session_closed(&id(1), SessionClose::Local, now);
    // A banned node is neither re-added by discovery nor admitted.
    assert!(!p.add_candidate(&candidate(1, addr.ip()), now));
    assert_eq!(
        p.on_session_established(id(1), addr, Direction::Inbound, now),
        Err(DisconnectReason::ProtocolBreach)
    );
    let later = now + p.config().ban_duration + Duration::from_secs(1);
    p.tick(later);
    assert!(!p.is_banned(&id(1), later));
    assert!(drain(&mut p).contains(&PoolAction::Event(PoolEvent::PeerUnbanned { peer_id: id(1) })));
}

#[test]
fn best_idle_peer_prefers_fast_and_skips_busy() {
    let now = Instant::now();
    let mut p = pool(PoolConfig::default(), now);
    for (n, ms) in [(1, 200u64), (2, 5), (3, 50)] {
        p.on_session_established(id(n), SocketAddr::new(ip(n, 1), 1), Direction::Outbound, now).unwrap();
        p.on_request_sent(&id(n));
        p.on_response(
            &id(n),
            RequestKind::BlockHeaders,
            &Outcome::Valid { rtt: Duration::from_millis(ms), size: 0, items: 64 },
            now,
        );
    }
    assert_eq!(p.best_idle_peer(RequestKind::BlockHeaders, &[]), Some(id(2)));
    p.on_request_sent(&id(2));
    assert_eq!(p.best_idle_peer(RequestKind::BlockHeaders, &[]), Some(id(3)), "busy peers are skipped");
    assert_eq!(p.best_idle_peer(RequestKind::BlockHeaders, &[id(3)]), Some(id(1)), "retry goes elsewhere");
    assert_eq!(p.request_timeout(&id(1), RequestKind::BlockHeaders), Duration::from_secs(2));
}

#[test]
fn best_peer_spreads_by_load_then_prefers_the_faster() {
    let now = Instant::now();
    let mut p = pool(PoolConfig::default(), now);
    for n in 1..=3 {
        p.on_session_established(id(n), SocketAddr::new(ip(n, 1), 1), Direction::Outbound, now).unwrap();
    }
    // Before any measurement the least loaded goes first: three requests, three peers.
    let mut first: Vec<PeerId> = (0..3)
        .map(|_| {
            let best = p.best_peer(RequestKind::BlockBodies, &[]).unwrap();
            p.on_request_sent(&best);
            best
        })
        .collect();
    first.sort();
    assert_eq!(first, [id(1), id(2), id(3)]);
    // Peer 1 answers 128 bodies in 200 ms, peers 2 and 3 in 6 ms.
    for (n, ms) in [(1, 200u64), (2, 6), (3, 6)] {
        let outcome = Outcome::Valid { rtt: Duration::from_millis(ms), size: 0, items: 128 };
        p.on_response(&id(n), RequestKind::BlockBodies, &outcome, now);
    }
    // Equal load: the fast peers first; the slow one when they are ahead of it.
    let fast = p.best_peer(RequestKind::BlockBodies, &[]).unwrap();
    assert!(fast == id(2) || fast == id(3), "{fast:?}");
    p.on_request_sent(&fast);
    let other = p.best_peer(RequestKind::BlockBodies, &[]).unwrap();
    assert!(other != fast && other != id(1), "{other:?}");
    p.on_request_sent(&other);
    assert_eq!(p.best_peer(RequestKind::BlockBodies, &[]), Some(id(1)), "the least loaded gets its turn");
    assert_eq!(p.best_peer(RequestKind::BlockBodies, &[id(1)]).map(|b| b == id(2) || b == id(3)), Some(true));
}

#[test]
fn rotation_replaces_the_worst_basic_peer_when_full() {
    let now = Instant::now();
    let fixed = Enode { peer_id: id(500), ip: ip(500, 1), tcp_port: 1, udp_port: 1 };
    let config = PoolConfig::builder().max_peers(4).min_peers(4).static_peers(vec![fixed]).build().unwrap();
    let mut p = pool(config, now);
    p.on_session_established(id(500), SocketAddr::new(fixed.ip, 1), Direction::Outbound, now).unwrap();
    for n in 1..4 {
        p.on_session_established(id(n), SocketAddr::new(ip(n, 1), 1), Direction::Outbound, now).unwrap();
    }
    // Peer 2 is the worst: a timeout.
    p.on_request_sent(&id(2));
    p.on_response(
        &id(2),
        RequestKind::BlockHeaders,
        &Outcome::Timeout { after: Duration::from_secs(2) },
        now,
    );
    p.change_reputation(&id(500), ReputationChange::Other(-40_000), now);
    drain(&mut p);
    // Not before the minimum uptime...
    p.tick(now + Duration::from_secs(7 * 60));
    assert!(!drain(&mut p).iter().any(|a| matches!(a, PoolAction::Disconnect { .. })));
    // ...then exactly one, the worst basic peer, never the static one.
    let mut rotated = Vec::new();
    for minutes in 11..30 {
        p.tick(now + Duration::from_secs(minutes * 60));
        for a in drain(&mut p) {
            if let PoolAction::Disconnect { peer_id, reason } = a {
                assert_eq!(reason, DisconnectReason::UselessPeer);
                rotated.push(peer_id);
                p.on_session_closed(&peer_id, SessionClose::Local, now + Duration::from_secs(minutes * 60));
                // A newcomer takes the slot.
                let n = 100 + minutes as u32;
                p.on_session_established(id(n), SocketAddr::new(ip(n, 1), 1), Direction::Outbound, now)
                    .unwrap();
            }
        }
    }
    assert_eq!(rotated.first(), Some(&id(2)));
    assert!(rotated.len() >= 2, "rotation keeps going every 3-7 minutes: {rotated:?}");
    assert!(!rotated.contains(&id(500)));
}

#[test]
fn eclipse_one_subnet_cannot_take_the_pool() {
    let now = Instant::now();
    let mut p = pool(PoolConfig::default(), now);
    // 50 candidates from one /24, 50 from distinct subnets, interleaved.
    for n in 0..50 {
        p.add_candidate(&candidate(n, IpAddr::V4(Ipv4Addr::new(66, 6, 6, n as u8 + 1))), now);
        p.add_candidate(&candidate(1000 + n, ip(1000 + n, 1)), now);
    }
    p.tick(now);
    connect_all(&mut p, now);
    // And the attacker also dials in.
    for n in 0..50u32 {
        let a = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(66, 6, 6, 100 + n as u8)), 1);
        if p.on_inbound_connection(a.ip(), now).is_ok() {
            let _ = p.on_session_established(id(2000 + n), a, Direction::Inbound, now);
        }
    }
    let from_attacker = p
        .peers(now)
        .iter()
        .filter(|s| limits::Subnet::of(s.addr.ip()) == limits::Subnet::of([66, 6, 6, 0].into()))
        .count();
    assert!(from_attacker <= 2, "{from_attacker} peers from one /24");
    assert_eq!(p.len(), 30);
}

#[test]
fn fork_filter_runs_before_any_dial() {
    let now = Instant::now();
    let ours = ForkId { hash: [1, 1, 1, 1].into(), next: 0 };
    let filter = ForkIdFilter::new(move |f| f == ours, false);
    let mut p = PoolState::new(PoolConfig::default(), PeerId::ZERO, filter, now, 1);
    let mut c = candidate(1, ip(1, 1));
    c.eth = EthEntry::ForkId(ForkId { hash: [2, 2, 2, 2].into(), next: 0 });
    assert!(!p.add_candidate(&c, now));
    c.eth = EthEntry::Unknown;
    assert!(!p.add_candidate(&c, now));
    c.eth = EthEntry::ForkId(ours);
    assert!(p.add_candidate(&c, now));
    p.tick(now);
    assert_eq!(dials(&drain(&mut p)).len(), 1);
    assert_eq!(p.stats().candidates_rejected, 2);
}

#[test]
fn real_fork_filter_and_netrestrict() {
    let now = Instant::now();
    let genesis = alloy_primitives::B256::repeat_byte(7);
    let forks = crate::record::ForkFilter::new(genesis, 0, vec![100u64], Vec::<u64>::new(), 0, 0);
    let ours = forks.current();
    let config = PoolConfig::builder().net_restrict("40.0.0.0/8".parse().unwrap()).build().unwrap();
    let mut p = PoolState::new(config, PeerId::ZERO, ForkIdFilter::from_fork_filter(forks, true), now, 1);
    let mut c = candidate(1, ip(1, 1));
    c.eth = EthEntry::ForkId(ours);
    assert!(p.add_candidate(&c, now));
    c.eth = EthEntry::ForkId(ForkId { hash: [0xde, 0xad, 0xbe, 0xef].into(), next: 0 });
    assert!(!p.add_candidate(&c, now));
    let outside = candidate(2, "8.8.8.8".parse().unwrap());
    assert!(!p.add_candidate(&outside, now));
    assert!(p.on_inbound_connection("8.8.8.8".parse().unwrap(), now).is_err());
}

#[test]
fn book_restores_bans_and_redials_known_good_first() {
    let now = Instant::now();
    let wall = SystemTime::now();
    let mut p = pool(PoolConfig::default(), now);
    for n in 0..40 {
        p.add_candidate(&candidate(n, ip(n, 1)), now);
    }
    p.tick(now);
    connect_all(&mut p, now);
    let good: Vec<PeerId> = p.peers(now).iter().map(|s| s.peer_id).collect();
    assert_eq!(good.len(), 30);
    p.ban(&good[0], now);
    let book = p.to_book(now, wall);
    assert_eq!(book.tried().count(), 29);
    assert!(book.entries.iter().any(|e| e.peer_id == good[0] && e.banned_until.is_some()));
    assert_eq!(book.new_set().count(), 11, "10 never dialed + the banned one");

    // A restarted node: lots of fresh candidates arrive first, then the book is loaded.
    let later = now + Duration::from_secs(60);
    let mut q = pool(PoolConfig::builder().max_concurrent_dials(29).build().unwrap(), later);
    for n in 5000..5100 {
        q.add_candidate(&candidate(n, ip(n, 1)), later);
    }
    q.load_book(&book, later, wall + Duration::from_secs(60));
    assert!(q.is_banned(&good[0], later));
    q.tick(later);
    let first: Vec<PeerId> = dials(&drain(&mut q)).iter().map(|t| t.peer_id).collect();
    assert_eq!(first.len(), 29);
    assert!(first.iter().all(|id| good[1..].contains(id)), "the 29 unbanned known-good peers come first");
}

#[test]
fn dial_failures_back_off_and_cost_reputation() {
    let now = Instant::now();
    let mut p = pool(PoolConfig::default(), now);
    p.add_candidate(&candidate(1, ip(1, 1)), now);
    p.tick(now);
    assert_eq!(dials(&drain(&mut p)).len(), 1);
    p.on_dial_failed(&id(1), Backoff::High, now);
    assert!(p.reputation(&id(1)).unwrap().get() < 0);
    p.tick(now + Duration::from_secs(60));
    assert!(dials(&drain(&mut p)).is_empty(), "15 min high backoff");
    p.tick(now + Duration::from_secs(16 * 60));
    assert_eq!(dials(&drain(&mut p)).len(), 1);
}

#[derive(Debug, Clone)]
enum Op {
    Candidate(u32, u8),
    Inbound(u32, u8),
    DialOk(usize),
    DialFail(usize, u8),
    Close(usize),
    Lie(usize),
    Tick(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u32..300, 0u8..4).prop_map(|(n, s)| Op::Candidate(n, s)),
        (300u32..600, 0u8..4).prop_map(|(n, s)| Op::Inbound(n, s)),
        (0usize..64).prop_map(Op::DialOk),
        (0usize..64, 0u8..3).prop_map(|(i, k)| Op::DialFail(i, k)),
        (0usize..64).prop_map(Op::Close),
        (0usize..64).prop_map(Op::Lie),
        (1u16..120).prop_map(Op::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever happens, the pool stays within its limits: total, inbound, per subnet,
    /// dials in flight, and no banned peer stays connected.
    #[test]
    fn limits_hold_under_any_event_sequence(ops in proptest::collection::vec(op(), 1..400)) {
        let t0 = Instant::now();
        let config = PoolConfig::builder().max_peers(12).min_peers(8).max_concurrent_dials(5).build().unwrap();
        let mut p = pool(config.clone(), t0);
        let mut now = t0;
        let mut pending: Vec<DialTarget> = Vec::new();
        // Host numbers share four /24s, so the subnet limit is constantly tested.
        let addr_of = |n: u32, s: u8| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(50, 0, s, (n % 250) as u8 + 1)), 1);
        let mut addrs: HashMap<PeerId, SocketAddr> = HashMap::new();
        for op in ops {
            match op {
                Op::Candidate(n, s) => { p.add_candidate(&candidate(n, addr_of(n, s).ip()), now); }
                Op::Inbound(n, s) => {
                    let a = addr_of(n, s);
                    if p.on_inbound_connection(a.ip(), now).is_ok() && p.on_session_established(id(n), a, Direction::Inbound, now).is_ok() {
                        addrs.insert(id(n), a);
                    }
                }
                Op::DialOk(i) if !pending.is_empty() => {
                    let t = pending.remove(i % pending.len());
                    if p.on_session_established(t.peer_id, t.addr, Direction::Outbound, now).is_ok() {
                        addrs.insert(t.peer_id, t.addr);
                    }
                }
                Op::DialFail(i, k) if !pending.is_empty() => {
                    let t = pending.remove(i % pending.len());
                    let kind = [Backoff::Low, Backoff::Medium, Backoff::High][k as usize];
                    p.on_dial_failed(&t.peer_id, kind, now);
                }
                Op::Close(i) => {
                    let peers = p.peers(now);
                    if !peers.is_empty() {
                        let id = peers[i % peers.len()].peer_id;
                        p.on_session_closed(&id, SessionClose::Remote(Some(DisconnectReason::TooManyPeers)), now);
                    }
                }
                Op::Lie(i) => {
                    let peers = p.peers(now);
                    if !peers.is_empty() {
                        let id = peers[i % peers.len()].peer_id;
                        p.on_request_sent(&id);
                        p.on_response(&id, RequestKind::BlockHeaders, &invalid(Duration::from_millis(1)), now);
                    }
                }
                Op::Tick(s) => { now += Duration::from_secs(u64::from(s)); p.tick(now); }
                _ => {}
            }
            for a in std::iter::from_fn(|| p.poll_action()).collect::<Vec<_>>() {
                match a {
                    PoolAction::Dial(t) => {
                        prop_assert!(!p.is_connected(&t.peer_id));
                        prop_assert!(!p.is_banned(&t.peer_id, now));
                        pending.push(t);
                    }
                    PoolAction::Disconnect { peer_id, .. } => p.on_session_closed(&peer_id, SessionClose::Local, now),
                    _ => {}
                }
            }
            prop_assert!(pending.len() <= config.max_concurrent_dials);
            prop_assert!(p.len() <= config.max_peers);
            prop_assert!(p.count(Direction::Inbound) <= config.max_inbound());
            let peers = p.peers(now);
            for s in &peers {
                prop_assert!(!p.is_banned(&s.peer_id, now));
                let same = peers.iter().filter(|o| limits::Subnet::of(o.addr.ip()) == limits::Subnet::of(s.addr.ip())).count();
                prop_assert!(same <= config.subnet_limit, "{} peers in one /24", same);
            }
        }
    }
}

#[test]
fn snapshot_shows_peer_info_until_the_session_ends() {
    let now = Instant::now();
    let mut p = pool(PoolConfig::default(), now);
    let addr = SocketAddr::new(ip(1, 1), 30303);
    // Info for a peer that is not connected is ignored.
    p.set_peer_info(&id(1), "early", crate::eth::EthVersion::Eth66);
    p.on_session_established(id(1), addr, Direction::Inbound, now).unwrap();
    let snap = &p.peers(now)[0];
    assert_eq!((snap.client_id.as_deref(), snap.eth_version), (None, None));
    p.set_peer_info(&id(1), "Geth/v1.15.0", crate::eth::EthVersion::Eth69);
    let snap = &p.peers(now + Duration::from_secs(3))[0];
    assert_eq!(snap.client_id.as_deref(), Some("Geth/v1.15.0"));
    assert_eq!(snap.eth_version, Some(crate::eth::EthVersion::Eth69));
    assert_eq!(
        (snap.direction, snap.score(), snap.connected_for),
        (Direction::Inbound, 0, Duration::from_secs(3))
    );
    p.on_session_closed(&id(1), SessionClose::Local, now);
    p.on_session_established(id(1), addr, Direction::Inbound, now).unwrap();
    assert_eq!(p.peers(now)[0].client_id, None, "a new session starts without the old one's info");
}

/// Both sides dialed at once: each side ends with the connection the lower id dialed, so
/// they agree on one and close the other, whatever order the sessions completed in.
#[test]
fn simultaneous_dial_keeps_the_connection_the_lower_id_dialed() {
    let now = Instant::now();
    let (low, high) = (id(1), id(2));
    let addr = SocketAddr::new(ip(1, 1), 30303);
    let at = |local: PeerId| PoolState::new(PoolConfig::default(), local, |_: &Candidate| true, now, 7);
    for outbound_first in [true, false] {
        // `low`'s side: its own dial (outbound) must win.
        let mut p = at(low);
        let (first, second) = if outbound_first {
            (Direction::Outbound, Direction::Inbound)
        } else {
            (Direction::Inbound, Direction::Outbound)
        };
        p.on_session_established(high, addr, first, now).unwrap();
        let kept = p.on_session_established(high, addr, second, now);
        assert_eq!(p.peers(now)[0].direction, Direction::Outbound, "low keeps its dial");
        assert_eq!(kept.is_ok(), second == Direction::Outbound);
        assert_eq!(p.len(), 1);
        // `high`'s side: the connection `low` dialed is its inbound one.
        let mut p = at(high);
        p.on_session_established(low, addr, first, now).unwrap();
        let kept = p.on_session_established(low, addr, second, now);
        assert_eq!(p.peers(now)[0].direction, Direction::Inbound, "high keeps low's dial");
        assert_eq!(kept.is_ok(), second == Direction::Inbound);
        // A second session in the same direction is a plain duplicate.
        assert_eq!(
            p.on_session_established(low, addr, Direction::Inbound, now),
            Err(DisconnectReason::AlreadyConnected)
        );
    }
}

// Issue 16: a peer rejected for a wrong genesis reconnected at once and got another
// handshake. A failed inbound handshake now keeps its IP out, before any ECIES work, for
// its class's backoff; loopback and private hosts only when `limit_lan` is on.
#[test]
fn a_failed_inbound_handshake_keeps_its_ip_out_for_the_backoff() {
    let now = Instant::now();
    let config = PoolConfig::builder().inbound_throttle(Duration::from_millis(100)).build().unwrap();
    let mut p = pool(config.clone(), now);
    let wrong_chain = ip(7, 1);
    p.on_inbound_connection(wrong_chain, now).unwrap();
    p.on_inbound_failed_from(wrong_chain, Backoff::High, now);
    let soon = now + Duration::from_secs(60);
    assert!(p.on_inbound_connection(wrong_chain, soon).is_err(), "refused before the handshake");
    assert!(p.on_inbound_connection(ip(8, 1), soon).is_ok(), "others are not affected");
    let later = now + config.backoff_high + Duration::from_secs(1);
    assert!(p.on_inbound_connection(wrong_chain, later).is_ok(), "after the backoff it may try again");
    // A failure that says nothing about the peer costs it nothing.
    let honest = ip(9, 1);
    p.on_inbound_connection(honest, now).unwrap();
    p.on_inbound_failed_from(honest, Backoff::None, now);
    assert!(p.on_inbound_connection(honest, now + Duration::from_secs(1)).is_ok());
    // Loopback is exempt by default (a devnet on one host), not with `limit_lan`.
    let lo: IpAddr = [127, 0, 0, 1].into();
    for (limit_lan, refused) in [(false, false), (true, true)] {
        let config = PoolConfig::builder()
            .inbound_throttle(Duration::from_millis(100))
            .limit_lan(limit_lan)
            .build()
            .unwrap();
        let mut p = pool(config, now);
        p.on_inbound_connection(lo, now).unwrap();
        p.on_inbound_failed_from(lo, Backoff::High, now);
        assert_eq!(p.on_inbound_connection(lo, soon).is_err(), refused, "limit_lan {limit_lan}");
    }
}
