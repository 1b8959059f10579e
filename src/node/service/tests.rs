//! The node service with fake neighbours (as sigp/discv5's `service/test.rs` builds its
//! service): the test plays the session manager through the service's channel ends and
//! checks that each [`SessionEvent`] becomes the right pool call, with no socket.

use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot};

use super::*;
use crate::{
    discovery::{Candidate, CandidateSource},
    eth::{
        BlockHashNumber, DetachedSession, EthMessage, EthVersion, InvalidResponse, MemoryChain, MemoryTxPool,
        Outcome,
    },
    pool::SessionClose,
    record::ChainSpec,
    rlpx::{Backoff, DisconnectReason},
};

fn id(n: u8) -> PeerId {
    let mut b = [n; 64];
    b[0] = 0x42;
    PeerId::from(b)
}

fn addr(n: u8) -> SocketAddr {
    SocketAddr::from(([10, n, 0, 1], 30303))
}

/// The test's end of a running service.
struct Harness {
    commands: mpsc::Sender<Command>,
    /// What the service asks of the sessions.
    sessions: mpsc::Receiver<SessionCommand>,
    /// Session events into the service.
    events: mpsc::Sender<SessionEvent>,
    pool_events: broadcast::Receiver<PoolEvent>,
    announcements: broadcast::Receiver<Announcement>,
    /// The fake peers' command queues, by peer number (dropping one closes that session).
    guards: HashMap<u8, DetachedSession>,
    tx_pool: Arc<MemoryTxPool>,
    next: u64,
}

impl Harness {
    fn start(config: PoolConfig) -> Self {
        let pool = PoolState::new(config, PeerId::ZERO, |_: &Candidate| true, Instant::now(), 7);
        let (commands, commands_rx) = mpsc::channel(16);
        let (session_tx, sessions) = mpsc::channel(16);
        let (events, session_rx) = mpsc::channel(16);
        let (pool_tx, pool_events) = broadcast::channel(64);
        let (ann_tx, announcements) = broadcast::channel(16);
        let spec = ChainSpec::mainnet();
        let chain = MemoryChain::builder().blocks(0).build();
        let head = (chain.status_info_for(&spec), spec.fork_filter(0, 0));
        let tx_pool = Arc::new(MemoryTxPool::default());
        let service = NodeService::with_fake_sessions(
            pool,
            head,
            tx_pool.clone(),
            commands_rx,
            session_tx,
            session_rx,
            pool_tx,
            ann_tx,
        );
        tokio::spawn(service.run());
        Self {
            commands,
            sessions,
            events,
            pool_events,
            announcements,
            guards: HashMap::new(),
            tx_pool,
            next: 0,
        }
    }

    async fn send(&self, event: SessionEvent) {
        self.events.send(event).await.unwrap();
    }

    /// A finished handshake with peer `n`; returns the handshake's number.
    async fn handshaken(&mut self, n: u8, direction: Direction) -> u64 {
        self.handshaken_on(n, direction, EthVersion::Eth68).await
    }

    async fn handshaken_on(&mut self, n: u8, direction: Direction, version: EthVersion) -> u64 {
        let (peer, guard) = EthPeer::detached(id(n), version);
        self.guards.insert(n, guard);
        self.next += 1;
        let event = SessionEvent::Handshaken {
            id: self.next,
            peer,
            addr: addr(n),
            direction,
            client_id: format!("fake/{n}"),
        };
        self.send(event).await;
        self.next
    }

    async fn command(&mut self) -> SessionCommand {
        tokio::time::timeout(Duration::from_secs(5), self.sessions.recv()).await.unwrap().unwrap()
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> T {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.unwrap();
        rx.await.unwrap()
    }

    /// Session events and commands arrive on separate channels: asks until the service
    /// has caught up with what was sent, or fails after 5 s.
    async fn peers_until(&self, done: impl Fn(&[PeerSnapshot]) -> bool) -> Vec<PeerSnapshot> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let peers = self.ask(Command::Peers).await;
            if done(&peers) || Instant::now() > deadline {
                return peers;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn stats_until(&self, done: impl Fn(&NodeStats) -> bool) -> NodeStats {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let stats = self.ask(Command::Stats).await;
            if done(&stats) || Instant::now() > deadline {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn pool_event(&mut self) -> PoolEvent {
        tokio::time::timeout(Duration::from_secs(5), self.pool_events.recv()).await.unwrap().unwrap()
    }
}

#[tokio::test]
async fn handshakes_are_admitted_or_refused_by_the_pool() {
    let mut h = Harness::start(PoolConfig::builder().max_peers(2).min_peers(2).build().unwrap());
    let first = h.handshaken(1, Direction::Outbound).await;
    assert!(matches!(h.command().await, SessionCommand::Admit { id } if id == first));
    assert!(matches!(h.pool_event().await, PoolEvent::PeerConnected { peer_id, .. } if peer_id == id(1)));
    let peers = h.ask(Command::Peers).await;
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].client_id.as_deref(), Some("fake/1"));

    // The same peer again: the pool refuses the duplicate, and the session manager is told
    // to send it a Disconnect (no peer task).
    let dup = h.handshaken(1, Direction::Inbound).await;
    match h.command().await {
        SessionCommand::Refuse { id, reason } => {
            assert_eq!(id, dup);
            assert_eq!(reason, DisconnectReason::AlreadyConnected);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // An outbound session the pool refuses counts as a refused dial.
    h.handshaken(2, Direction::Outbound).await;
    assert!(matches!(h.command().await, SessionCommand::Admit { .. }));
    h.handshaken(3, Direction::Outbound).await;
    assert!(
        matches!(h.command().await, SessionCommand::Refuse { reason: DisconnectReason::TooManyPeers, .. }),
        "the pool is full at max_peers"
    );
    let stats = h.stats_until(|s| !s.dial_failures.is_empty()).await;
    assert_eq!(stats.dial_failures.get(&DialFailure::Refused), Some(&1));
    assert_eq!(stats.outbound, 2);
}

#[tokio::test]
async fn outcomes_offences_and_closes_reach_the_pool() {
    let mut h = Harness::start(PoolConfig::default());
    h.handshaken(1, Direction::Outbound).await;
    h.command().await;
    h.pool_event().await;

    // A valid answer is scored where it arrives: the latency estimate moves.
    let rtt = Duration::from_millis(30);
    let outcome = Outcome::Valid { rtt, size: 100, items: 8 };
    h.send(SessionEvent::RequestOutcome { peer_id: id(1), kind: RequestKind::BlockHeaders, outcome }).await;
    let peers = h.peers_until(|p| p[0].latency.rtt(RequestKind::BlockHeaders).is_some()).await;
    assert_eq!(peers[0].latency.rtt(RequestKind::BlockHeaders), Some(rtt));

    // Three invalid answers ban the peer: the pool's Disconnect goes to the sessions.
    for _ in 0..3 {
        let outcome =
            Outcome::Invalid { reason: InvalidResponse::TooMany { requested: 1, got: 2 }, rtt, size: 0 };
        h.send(SessionEvent::RequestOutcome { peer_id: id(1), kind: RequestKind::BlockHeaders, outcome })
            .await;
    }
    match h.command().await {
        SessionCommand::Disconnect { peer_id, reason } => {
            assert_eq!(peer_id, id(1));
            assert_eq!(reason, DisconnectReason::ProtocolBreach);
        }
        other => panic!("expected a disconnect, got {other:?}"),
    }
    assert!(matches!(h.pool_event().await, PoolEvent::PeerBanned { peer_id, .. } if peer_id == id(1)));

    // The close is reported; the peer leaves the pool with the reason given.
    let close = SessionClose::Remote(Some(DisconnectReason::TooManyPeers));
    h.send(SessionEvent::Closed { peer_id: id(1), close }).await;
    match h.pool_event().await {
        PoolEvent::PeerDisconnected { peer_id, reason } => {
            assert_eq!(peer_id, id(1));
            assert_eq!(reason, close);
        }
        other => panic!("expected a disconnect event, got {other:?}"),
    }
    assert!(h.peers_until(|p| p.is_empty()).await.is_empty());

    // A banning offence from a new peer bans it at once.
    h.handshaken(2, Direction::Inbound).await;
    h.command().await;
    h.pool_event().await;
    h.send(SessionEvent::Offence { peer_id: id(2), ban: true }).await;
    assert!(matches!(h.command().await, SessionCommand::Disconnect { peer_id, .. } if peer_id == id(2)));
}

#[tokio::test]
async fn announcements_are_fanned_out_and_dial_failures_counted() {
    let mut h = Harness::start(PoolConfig::default());
    let message = EthMessage::NewBlockHashes(vec![BlockHashNumber { hash: Default::default(), number: 9 }]);
    h.send(SessionEvent::Announcement(Announcement { peer_id: id(4), message: message.clone() })).await;
    let got = tokio::time::timeout(Duration::from_secs(5), h.announcements.recv()).await.unwrap().unwrap();
    assert_eq!((got.peer_id, got.message), (id(4), message));

    // A candidate is dialed through the session manager; its failure is counted by cause
    // and backs the node off.
    let candidate = Candidate::from_enode(&Enode::new(id(5), addr(5)), CandidateSource::Static);
    h.commands.send(Command::Candidate(candidate)).await.unwrap();
    match h.command().await {
        SessionCommand::Dial { peer_id, addr: a } => assert_eq!((peer_id, a), (id(5), addr(5))),
        other => panic!("expected a dial, got {other:?}"),
    }
    let failure = DialFailure::ConnectionRefused;
    h.send(SessionEvent::DialFailed { peer_id: id(5), backoff: Backoff::High, ban: false, failure }).await;
    let stats = h.stats_until(|s| !s.dial_failures.is_empty()).await;
    assert_eq!(stats.dial_failures.get(&failure), Some(&1));
    assert_eq!(stats.pool.dial_failures, [0, 0, 1], "counted in the high class");
    h.send(SessionEvent::InboundFailed { addr: addr(6), peer_id: None, backoff: Backoff::High }).await;
    drop(h.guards);
}

/// Admits fake peers 1..=n on these versions.
async fn admitted(h: &mut Harness, versions: &[EthVersion]) {
    for (i, v) in versions.iter().enumerate() {
        h.handshaken_on(i as u8 + 1, Direction::Outbound, *v).await;
        assert!(matches!(h.command().await, SessionCommand::Admit { .. }));
        h.pool_event().await;
    }
}

#[tokio::test]
async fn set_head_updates_new_sessions_and_sends_range_updates_to_eth69_peers_only() {
    let mut h = Harness::start(PoolConfig::default());
    admitted(&mut h, &[EthVersion::Eth68, EthVersion::Eth69, EthVersion::Eth70]).await;
    let hash = B256::repeat_byte(7);
    h.commands.send(Command::SetHead { number: 40, hash, timestamp: 480 }).await.unwrap();
    match h.command().await {
        SessionCommand::SetHead { status, .. } => assert_eq!((status.latest, status.latest_hash), (40, hash)),
        other => panic!("expected the new head for the session manager, got {other:?}"),
    }
    h.stats_until(|_| true).await; // the service has handled the command
    assert!(h.guards.get_mut(&1).unwrap().sent().is_empty(), "eth/68 has no BlockRangeUpdate");
    for n in [2, 3] {
        let sent = h.guards.get_mut(&n).unwrap().sent();
        assert!(
            matches!(&sent[..], [EthMessage::BlockRangeUpdate(r)] if r.latest == 40 && r.latest_hash == hash),
            "peer {n} got {sent:?}"
        );
    }
    // Ten blocks on: not due yet. Back to 30 (a reorg): due at once.
    h.commands.send(Command::SetHead { number: 50, hash, timestamp: 600 }).await.unwrap();
    h.command().await;
    h.stats_until(|_| true).await;
    assert!(h.guards.get_mut(&2).unwrap().sent().is_empty());
    h.commands.send(Command::SetHead { number: 30, hash, timestamp: 360 }).await.unwrap();
    h.command().await;
    h.stats_until(|_| true).await;
    assert!(
        matches!(&h.guards.get_mut(&2).unwrap().sent()[..], [EthMessage::BlockRangeUpdate(r)] if r.latest == 30)
    );
}

#[tokio::test]
async fn broadcasts_follow_the_square_root_rule_and_a_full_queue_costs_one_copy() {
    let mut h = Harness::start(PoolConfig::default());
    admitted(&mut h, &[EthVersion::Eth69; 4]).await;
    let chain = MemoryChain::builder().blocks(0).pooled_transactions(2).build();
    let pool = chain.tx_pool();
    let txs: Vec<_> = pool.hashes().iter().map(|x| crate::eth::TxPool::get(&pool, x).unwrap()).collect();
    // Peer 4's session is gone: its copy is dropped, the others are sent.
    drop(h.guards.remove(&4));
    let summary =
        h.ask(|reply| Command::Broadcast { what: Broadcast::Transactions(txs.clone()), reply }).await;
    assert_eq!(summary.direct + summary.announced + summary.dropped, 4);
    assert_eq!(summary.dropped, 1);
    let mut full = 0;
    for n in 1..=3 {
        for m in h.guards.get_mut(&n).unwrap().sent() {
            match m {
                EthMessage::Transactions(t) => {
                    assert_eq!(t.len(), 2);
                    full += 1
                }
                EthMessage::NewPooledTransactionHashes68(a) => assert_eq!(a.hashes.len(), 2),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(full, summary.direct.min(3));
    assert!(summary.direct >= 1 && summary.direct <= 2, "⌈√4⌉ = 2 direct copies at most");
}

#[tokio::test]
async fn judgements_from_above_reach_the_pool_and_broadcast_transactions_reach_the_tx_pool() {
    let mut h = Harness::start(PoolConfig::default());
    admitted(&mut h, &[EthVersion::Eth69, EthVersion::Eth69]).await;
    h.commands
        .send(Command::Disconnect { peer_id: id(1), reason: DisconnectReason::UselessPeer })
        .await
        .unwrap();
    assert!(matches!(
        h.command().await,
        SessionCommand::Disconnect { peer_id, reason: DisconnectReason::UselessPeer } if peer_id == id(1)
    ));
    let duration = Duration::from_secs(600);
    h.commands.send(Command::Ban { peer_id: id(2), duration }).await.unwrap();
    assert!(matches!(h.command().await, SessionCommand::Disconnect { peer_id, .. } if peer_id == id(2)));
    assert!(
        matches!(h.pool_event().await, PoolEvent::PeerBanned { peer_id, duration: d } if peer_id == id(2) && d == duration)
    );
    h.commands.send(Command::Report { peer_id: id(1), change: ReputationChange::Other(-5) }).await.unwrap();
    let peers = h.peers_until(|p| p.iter().any(|p| p.peer_id == id(1) && p.score() == -5)).await;
    assert!(peers.iter().any(|p| p.peer_id == id(1) && p.score() == -5), "{peers:?}");

    let chain = MemoryChain::builder().blocks(1).transactions_per_block(2).build();
    let txs = chain.body_by_number(1).unwrap().transactions.clone();
    let message = EthMessage::Transactions(txs.clone());
    h.send(SessionEvent::Announcement(Announcement { peer_id: id(1), message })).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.tx_pool.len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(txs.iter().all(|t| h.tx_pool.contains(t.tx_hash())));
}

#[tokio::test]
async fn requests_go_only_to_peers_whose_announced_range_holds_the_block() {
    let mut h = Harness::start(PoolConfig::default());
    admitted(&mut h, &[EthVersion::Eth69, EthVersion::Eth69]).await;
    let range = |earliest, latest| crate::eth::BlockRange { earliest, latest, latest_hash: B256::ZERO };
    for (n, r) in [(1, range(20, 100)), (2, range(0, 10))] {
        let message = EthMessage::BlockRangeUpdate(r);
        h.send(SessionEvent::Announcement(Announcement { peer_id: id(n), message })).await;
    }
    let peers = h.peers_until(|p| p.iter().all(|p| p.block_range.is_some())).await;
    assert!(peers.iter().any(|p| p.peer_id == id(1) && p.block_range == Some(range(20, 100))), "{peers:?}");
    let acquire = |kind, block| {
        let h = &h;
        async move {
            let got = h.ask(|reply| Command::Acquire { kind, block, exclude: vec![], reply }).await;
            got.map(|(peer, _)| peer.peer_id())
        }
    };
    // Block 50: only peer 1 has it; bodies of block 5: peer 1 expired them, peer 2 has them.
    for _ in 0..4 {
        assert_eq!(acquire(RequestKind::BlockHeaders, Some(50)).await, Some(id(1)));
        assert_eq!(acquire(RequestKind::BlockBodies, Some(5)).await, Some(id(2)));
    }
    // Headers are kept for all history: block 5's header may come from either.
    assert!(acquire(RequestKind::BlockHeaders, Some(5)).await.is_some());
    // Nobody announced block 500: the best peer is asked anyway (ranges lag up to 31
    // blocks), and an empty answer says there is nothing newer.
    assert!(acquire(RequestKind::Receipts, Some(500)).await.is_some());
}
