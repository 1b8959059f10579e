//! eth sessions between our own nodes over loopback TCP: eth/69 end to end (Status with a
//! block range, `BlockRangeUpdate`, bloomless receipts), request-id matching, offences,
//! invalid responses, timeouts and Status rejections with their Disconnect reasons.

use std::{sync::Arc, time::Duration};

use alloy_primitives::{B256, U256};
use alloy_rlp::Encodable;
use ethp2p::{
    eth::{
        id, BlockHashNumber, BlockRange, ChainReader, EthConfig, EthError, EthEvent, EthEvents, EthMessage,
        EthPeer, EthSession, EthVersion, GetBlockHeaders, InvalidResponse, MemoryChain, NewBlock,
        NewPooledTransactionHashes68, Outcome, RequestPair, StatusError, StatusHead,
    },
    record::ChainSpec,
    rlpx::{dial, CapMessage, DisconnectReason, Protocol, RlpxConfig, RlpxError, RlpxListener, Session},
    Enode, NodeKey,
};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(20);

fn rlpx_config(versions: &[u32]) -> RlpxConfig {
    let mut b = RlpxConfig::builder();
    for &v in versions {
        b.protocol(Protocol::eth(v));
    }
    b.build().unwrap()
}

pub(crate) fn eth_config(chain: &MemoryChain) -> EthConfig {
    chain.eth_config_for(&ChainSpec::mainnet()).build().unwrap()
}

/// Two RLPx sessions connected over loopback TCP: (dialer, listener side).
pub(crate) async fn pair(versions: &[u32]) -> (Session<TcpStream>, Session<TcpStream>) {
    let key_a = NodeKey::generate();
    let key_b = NodeKey::generate();
    let mut listener =
        RlpxListener::bind("127.0.0.1:0".parse().unwrap(), key_b.clone(), rlpx_config(versions))
            .await
            .unwrap();
    let enode = Enode::new(key_b.peer_id(), listener.local_addr());
    let config = rlpx_config(versions);
    let (a, b) = tokio::join!(dial(&enode, &key_a, &config), listener.accept());
    (a.unwrap(), b.unwrap().unwrap())
}

pub(crate) fn start(session: EthSession<TcpStream>, chain: Arc<dyn ChainReader>) -> (EthPeer, EthEvents) {
    let (peer, service, events) = session.into_peer(chain);
    tokio::spawn(service.run());
    (peer, events)
}

/// The next event that `pick` accepts, skipping others.
pub(crate) async fn next_event<T>(events: &mut EthEvents, mut pick: impl FnMut(EthEvent) -> Option<T>) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let ev = events.recv().await.expect("events end only after Closed");
            if let Some(t) = pick(ev) {
                return t;
            }
        }
    })
    .await
    .expect("event in time")
}

fn headers_req(origin: u64, count: u64) -> GetBlockHeaders {
    GetBlockHeaders { origin: origin.into(), count, skip: 0, reverse: false }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eth69_between_two_of_our_nodes() {
    let chain_a = Arc::new(MemoryChain::builder().blocks(8).build());
    let chain_b =
        Arc::new(MemoryChain::builder().blocks(40).transactions_per_block(3).pooled_transactions(4).build());
    let (sa, sb) = pair(&[66, 67, 68, 69]).await;
    let (ea, eb) = tokio::join!(
        EthSession::handshake(sa, eth_config(&chain_a)),
        EthSession::handshake(sb, eth_config(&chain_b))
    );
    let (ea, eb) = (ea.unwrap(), eb.unwrap());
    assert_eq!(ea.version(), EthVersion::Eth69);
    // eth/69 Status: a block range instead of a total difficulty.
    assert_eq!(
        ea.remote_status().head,
        StatusHead::Range(BlockRange { earliest: 0, latest: 40, latest_hash: chain_b.hash(40).unwrap() })
    );
    let (a, mut a_events) = start(ea, chain_a.clone());
    // b serves pooled transactions from its pool.
    let (b, b_service, _b_events) = eb.into_peer(chain_b.clone());
    tokio::spawn(b_service.with_tx_pool(Arc::new(chain_b.tx_pool())).run());

    let headers = a.get_block_headers(headers_req(0, 16)).await.unwrap();
    assert_eq!(headers.len(), 16);
    assert_eq!(headers[0].hash_slow(), ethp2p::record::MAINNET_GENESIS_HASH);
    assert_eq!(headers[15].inner(), chain_b.header(15).unwrap());
    assert_eq!(headers[15].hash(), chain_b.hash(15).unwrap());
    let outcome = next_event(&mut a_events, |e| match e {
        EthEvent::RequestOutcome { kind: ethp2p::eth::RequestKind::BlockHeaders, outcome } => Some(outcome),
        _ => None,
    })
    .await;
    assert!(matches!(outcome, Outcome::Valid { items: 16, .. }), "{outcome:?}");

    let bodies = a.get_block_bodies(headers[1..].to_vec()).await.unwrap();
    assert_eq!(bodies.len(), 15);
    assert_eq!(bodies[0].transactions.len(), 3);
    // Receipts travel without blooms on eth/69; they come back with recomputed blooms that
    // hash to the receipts roots.
    let receipts = a.get_receipts(headers[1..].to_vec()).await.unwrap();
    assert_eq!(&receipts[4], &chain_b.receipts(&headers[5].hash()).unwrap());

    let mut hashes = chain_b.pooled_hashes();
    hashes.push(B256::repeat_byte(0xee)); // unknown: left out of the answer
    let pooled = a.get_pooled_transactions(hashes).await.unwrap();
    assert_eq!(pooled.len(), 4);

    // Reverse request by hash, answered by the other side too.
    let req = GetBlockHeaders { origin: chain_a.hash(8).unwrap().into(), count: 4, skip: 0, reverse: true };
    let back = b.get_block_headers(req).await.unwrap();
    assert_eq!(back.iter().map(|h| h.number).collect::<Vec<_>>(), [8, 7, 6, 5]);

    // BlockRangeUpdate from B arrives as a validated announcement.
    let range = BlockRange { earliest: 2, latest: 41, latest_hash: B256::repeat_byte(7) };
    b.announce(EthMessage::BlockRangeUpdate(range)).await.unwrap();
    let got = next_event(&mut a_events, |e| match e {
        EthEvent::Announcement(EthMessage::BlockRangeUpdate(r)) => Some(r),
        _ => None,
    })
    .await;
    assert_eq!(got, range);
    // NewBlock does not exist on eth/69: refused locally.
    let err = b.announce(EthMessage::NewBlockHashes(vec![])).await.unwrap_err();
    assert!(matches!(err, EthError::NotForVersion { .. }), "{err}");

    // Dropping B's handles ends its session; A sees the Disconnect.
    drop(b);
    let closed = next_event(&mut a_events, |e| match e {
        EthEvent::Closed(e) => Some(e),
        _ => None,
    })
    .await;
    assert!(
        matches!(&*closed, EthError::Rlpx(RlpxError::Disconnected(DisconnectReason::ClientQuitting))),
        "{closed}"
    );
    assert!(matches!(a.get_block_headers(headers_req(0, 1)).await, Err(EthError::SessionClosed)));
}

/// Our node against a hand-driven peer that speaks raw eth messages.
pub(crate) struct RawPeer {
    pub(crate) session: Session<TcpStream>,
    pub(crate) version: EthVersion,
}

impl RawPeer {
    pub(crate) async fn send(&mut self, msg: &EthMessage) {
        self.session.send(CapMessage::new(0, msg.id(), msg.encoded())).await.unwrap();
    }

    async fn send_raw(&mut self, id: u8, data: Vec<u8>) {
        self.session.send(CapMessage::new(0, id, data)).await.unwrap();
    }

    pub(crate) async fn recv(&mut self) -> Result<EthMessage, RlpxError> {
        let msg = tokio::time::timeout(WAIT, self.session.next()).await.expect("message in time");
        let msg = msg.ok_or(RlpxError::Closed)??;
        Ok(EthMessage::decode(self.version, msg.id, &msg.data).unwrap())
    }
}

/// Our eth peer (dialer) and a raw peer (listener side) on `version`; `raw_status` edits the
/// raw peer's Status before it is sent. Returns our handshake result.
pub(crate) async fn ours_and_raw(
    version: u32,
    chain: Arc<MemoryChain>,
    edit: impl FnOnce(&mut ethp2p::eth::Status),
) -> (Result<EthSession<TcpStream>, EthError>, RawPeer) {
    let (ours, raw) = pair(&[version]).await;
    let v = EthVersion::try_from(version as u8).unwrap();
    let mut raw = RawPeer { session: raw, version: v };
    let mut status = eth_config(&chain).status.status(v);
    edit(&mut status);
    raw.send(&EthMessage::Status(status)).await;
    let ours = EthSession::handshake(ours, eth_config(&chain)).await;
    (ours, raw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_offences_and_invalid_responses() {
    let chain = Arc::new(MemoryChain::builder().blocks(20).build());
    let (ours, mut raw) = ours_and_raw(68, chain.clone(), |_| {}).await;
    let (peer, mut events) = start(ours.unwrap(), chain.clone());
    assert!(matches!(raw.recv().await.unwrap(), EthMessage::Status(_)));

    // Our first request uses id 0; the answer is matched and validated.
    let p = peer.clone();
    let first = tokio::spawn(async move { p.get_block_headers(headers_req(3, 4)).await });
    let EthMessage::GetBlockHeaders(req) = raw.recv().await.unwrap() else { panic!("headers request") };
    assert_eq!(req.request_id, 0);
    let answer: Vec<_> = (3..7).map(|n| chain.header(n).unwrap().clone()).collect();
    let response = EthMessage::BlockHeaders(RequestPair::new(0, answer.clone()));
    raw.send(&response).await;
    let got: Vec<_> = first.await.unwrap().unwrap().into_iter().map(|h| h.into_inner()).collect();
    assert_eq!(got, answer);

    // The same response again: a duplicate, reported as an offence; the session goes on.
    raw.send(&response).await;
    let offence = next_event(&mut events, |e| match e {
        EthEvent::Offence(e) => Some(e),
        _ => None,
    })
    .await;
    assert!(matches!(offence, EthError::UnsolicitedResponse { request_id: 0, .. }), "{offence}");
    assert!(!offence.is_fatal() && !offence.should_ban());

    // The raw peer asks twice with the same id and once with id 0: three answers.
    for (request_id, origin) in [(7, 1), (7, 2), (0, 3)] {
        raw.send(&EthMessage::GetBlockHeaders(RequestPair::new(request_id, headers_req(origin, 2)))).await;
    }
    for (request_id, origin) in [(7, 1), (7, 2), (0, 3)] {
        let EthMessage::BlockHeaders(r) = raw.recv().await.unwrap() else { panic!("headers") };
        assert_eq!((r.request_id, r.message[0].number, r.message.len()), (request_id, origin, 2));
    }

    // Headers that do not link: a typed error for the caller and an Invalid outcome.
    let p = peer.clone();
    let bad = tokio::spawn(async move { p.get_block_headers(headers_req(3, 3)).await });
    let EthMessage::GetBlockHeaders(req) = raw.recv().await.unwrap() else { panic!() };
    assert_eq!(req.request_id, 1);
    let mut forged: Vec<_> = (3..6).map(|n| chain.header(n).unwrap().clone()).collect();
    forged[1].gas_used += 1;
    raw.send(&EthMessage::BlockHeaders(RequestPair::new(1, forged))).await;
    let err = bad.await.unwrap().unwrap_err();
    assert!(matches!(err, EthError::InvalidResponse(InvalidResponse::BrokenLink { index: 2 })), "{err}");
    let outcome = next_event(&mut events, |e| match e {
        EthEvent::RequestOutcome { outcome: o @ Outcome::Invalid { .. }, .. } => Some(o),
        _ => None,
    })
    .await;
    assert!(matches!(outcome, Outcome::Invalid { reason: InvalidResponse::BrokenLink { .. }, .. }));

    // Bodies for a headers request: wrong kind, also invalid, not fatal.
    let p = peer.clone();
    let wrong = tokio::spawn(async move { p.get_block_headers(headers_req(1, 1)).await });
    let EthMessage::GetBlockHeaders(req) = raw.recv().await.unwrap() else { panic!() };
    raw.send(&EthMessage::BlockBodies(RequestPair::new(req.request_id, vec![]))).await;
    assert!(matches!(
        wrong.await.unwrap(),
        Err(EthError::InvalidResponse(InvalidResponse::WrongKind { .. }))
    ));

    // An empty answer is Empty, not Invalid.
    let p = peer.clone();
    let empty = tokio::spawn(async move { p.get_block_headers(headers_req(100, 5)).await });
    let EthMessage::GetBlockHeaders(req) = raw.recv().await.unwrap() else { panic!() };
    raw.send(&EthMessage::BlockHeaders(RequestPair::new(req.request_id, vec![]))).await;
    assert!(empty.await.unwrap().unwrap().is_empty());
    let outcome = next_event(&mut events, |e| match e {
        EthEvent::RequestOutcome { outcome: o @ Outcome::Empty { .. }, .. } => Some(o),
        _ => None,
    })
    .await;
    assert!(matches!(outcome, Outcome::Empty { .. }));

    // Garbage in a known message is fatal: ProtocolBreach.
    raw.send_raw(id::BLOCK_HEADERS, vec![0xc3, 0x01, 0x02]).await;
    let closed = next_event(&mut events, |e| match e {
        EthEvent::Closed(e) => Some(e),
        _ => None,
    })
    .await;
    assert!(matches!(&*closed, EthError::Message(_)) && closed.should_ban(), "{closed}");
    let err = raw.recv().await.unwrap_err();
    assert!(matches!(err, RlpxError::Disconnected(DisconnectReason::ProtocolBreach)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeout_is_reported_and_late_answer_ignored() {
    let chain = Arc::new(MemoryChain::builder().blocks(4).build());
    let (ours, raw) = pair(&[68]).await;
    let mut raw = RawPeer { session: raw, version: EthVersion::Eth68 };
    let mut config = eth_config(&chain);
    config.request_timeout = Duration::from_millis(300);
    raw.send(&EthMessage::Status(config.status.status(EthVersion::Eth68))).await;
    let ours = EthSession::handshake(ours, config).await.unwrap();
    let (peer, mut events) = start(ours, chain.clone());
    assert!(matches!(raw.recv().await.unwrap(), EthMessage::Status(_)));

    let err = peer.get_block_headers(headers_req(0, 2)).await.unwrap_err();
    assert!(matches!(err, EthError::Timeout), "{err}");
    let outcome = next_event(&mut events, |e| match e {
        EthEvent::RequestOutcome { outcome, .. } => Some(outcome),
        _ => None,
    })
    .await;
    assert!(matches!(outcome, Outcome::Timeout { .. }));
    // The late answer is neither delivered nor an offence; an unknown id is one.
    let EthMessage::GetBlockHeaders(req) = raw.recv().await.unwrap() else { panic!() };
    raw.send(&EthMessage::BlockHeaders(RequestPair::new(req.request_id, vec![]))).await;
    raw.send(&EthMessage::BlockHeaders(RequestPair::new(99, vec![]))).await;
    let offence = next_event(&mut events, |e| match e {
        EthEvent::Offence(e) => Some(e),
        _ => None,
    })
    .await;
    assert!(matches!(offence, EthError::UnsolicitedResponse { request_id: 99, .. }), "{offence}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_mismatches_are_rejected_with_the_right_reason() {
    let chain = Arc::new(MemoryChain::builder().blocks(4).build());
    type Edit = Box<dyn FnOnce(&mut ethp2p::eth::Status)>;
    type Case = (u32, Edit, DisconnectReason, fn(&EthError) -> bool);
    let cases: Vec<Case> = vec![
        (68, Box::new(|s| s.network_id = 5), DisconnectReason::SubprotocolSpecific, |e| {
            matches!(e, EthError::Status(StatusError::NetworkIdMismatch { expected: 1, got: 5 }))
        }),
        (67, Box::new(|s| s.genesis = B256::repeat_byte(1)), DisconnectReason::SubprotocolSpecific, |e| {
            matches!(e, EthError::Status(StatusError::GenesisMismatch { .. }))
        }),
        (
            66,
            Box::new(|s| s.fork_id.hash = [0xde, 0xad, 0xbe, 0xef].into()),
            DisconnectReason::SubprotocolSpecific,
            |e| matches!(e, EthError::Status(StatusError::ForkId(_))),
        ),
        (
            69,
            Box::new(|s| {
                s.head = StatusHead::Range(BlockRange { earliest: 5, latest: 4, latest_hash: B256::ZERO })
            }),
            DisconnectReason::ProtocolBreach,
            |e| matches!(e, EthError::Status(StatusError::InvalidBlockRange { .. })),
        ),
        (68, Box::new(|s| s.version = 66), DisconnectReason::SubprotocolSpecific, |e| {
            matches!(e, EthError::Status(StatusError::VersionMismatch { .. }))
        }),
    ];
    for (version, edit, reason, check) in cases {
        let (ours, mut raw) = ours_and_raw(version, chain.clone(), edit).await;
        let err = ours.unwrap_err();
        assert!(check(&err), "eth/{version}: {err}");
        assert!(err.should_ban());
        assert_eq!(err.disconnect_reason(), Some(reason));
        // The raw peer gets our Status, then the Disconnect with that reason.
        assert!(matches!(raw.recv().await.unwrap(), EthMessage::Status(_)));
        let got = raw.recv().await.unwrap_err();
        assert!(matches!(got, RlpxError::Disconnected(r) if r == reason), "eth/{version}: {got}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_with_a_300_bit_td_is_a_protocol_breach() {
    let chain = Arc::new(MemoryChain::builder().blocks(4).build());
    let (ours, raw) = pair(&[68]).await;
    let mut raw = RawPeer { session: raw, version: EthVersion::Eth68 };
    let config = eth_config(&chain);
    // [68, 1, <38-byte TD>, best, genesis, forkid]: not representable as a U256.
    let s = config.status.status(EthVersion::Eth68);
    let mut fields = Vec::new();
    68u8.encode(&mut fields);
    1u64.encode(&mut fields);
    fields.push(0x80 + 38);
    fields.extend_from_slice(&[0xff; 38]);
    s.genesis.encode(&mut fields);
    s.genesis.encode(&mut fields);
    s.fork_id.encode(&mut fields);
    let mut payload = Vec::new();
    alloy_rlp::Header { list: true, payload_length: fields.len() }.encode(&mut payload);
    payload.extend_from_slice(&fields);
    raw.send_raw(id::STATUS, payload).await;
    let err = EthSession::handshake(ours, config).await.unwrap_err();
    assert!(matches!(
        err,
        EthError::Message(ethp2p::eth::MessageError::TotalDifficultyTooLarge { bits: 304 })
    ));
    assert!(raw.recv().await.is_ok(), "our Status");
    let got = raw.recv().await.unwrap_err();
    assert!(matches!(got, RlpxError::Disconnected(DisconnectReason::ProtocolBreach)), "{got}");
    // Sanity: a U256 TD just above 160 bits is caught by validation, also a breach.
    assert_eq!(U256::from(1).checked_shl(160).unwrap().bit_len(), 161);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_status_within_the_timeout() {
    let chain = Arc::new(MemoryChain::builder().blocks(1).build());
    let (ours, _raw) = pair(&[68]).await;
    let mut config = eth_config(&chain);
    config.handshake_timeout = Duration::from_millis(200);
    let err = EthSession::handshake(ours, config).await.unwrap_err();
    assert!(matches!(err, EthError::HandshakeTimeout), "{err}");
    assert!(!err.should_ban());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eth68_announcements_arrive_as_sent() {
    let chain = Arc::new(MemoryChain::builder().blocks(6).transactions_per_block(2).build());
    let (sa, sb) = pair(&[67, 68]).await;
    let (ea, eb) = tokio::join!(
        EthSession::handshake(sa, eth_config(&chain)),
        EthSession::handshake(sb, eth_config(&chain))
    );
    let (a, _a_events) = start(ea.unwrap(), chain.clone());
    let (_b, mut b_events) = start(eb.unwrap(), chain.clone());
    assert_eq!(a.version(), EthVersion::Eth68);

    let body = chain.body_by_number(5).unwrap().clone();
    let other = chain.body_by_number(4).unwrap().clone();
    let block = alloy_consensus::Block { header: chain.header(5).unwrap().clone(), body: body.clone() };
    let sent = [
        EthMessage::NewBlockHashes(vec![BlockHashNumber { hash: chain.hash(6).unwrap(), number: 6 }]),
        EthMessage::NewBlock(Box::new(NewBlock { block, total_difficulty: chain.total_difficulty() })),
        EthMessage::Transactions(body.transactions.clone()),
        EthMessage::NewPooledTransactionHashes68(NewPooledTransactionHashes68 {
            types: vec![0u8; 2].into(),
            sizes: other.transactions.iter().map(|t| t.length() as u32).collect(),
            hashes: other.transactions.iter().map(|t| *t.tx_hash()).collect(),
        }),
    ];
    for m in &sent {
        a.announce(m.clone()).await.unwrap();
    }
    for m in &sent {
        let got = next_event(&mut b_events, |e| match e {
            EthEvent::Announcement(m) => Some(m),
            _ => None,
        })
        .await;
        assert_eq!(&got, m);
    }
    // What the peer has (sent or announced either way) is never sent to it again: the
    // repeats are cut by the session, and the next thing b hears is the new block hash.
    a.announce(EthMessage::Transactions(body.transactions.clone())).await.unwrap();
    a.announce(EthMessage::Transactions(other.transactions.clone())).await.unwrap();
    a.announce(sent[0].clone()).await.unwrap();
    let marker =
        EthMessage::NewBlockHashes(vec![BlockHashNumber { hash: chain.hash(3).unwrap(), number: 3 }]);
    a.announce(marker.clone()).await.unwrap();
    let got = next_event(&mut b_events, |e| match e {
        EthEvent::Announcement(m) => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(got, marker);
    // The eth/66 shape does not exist on eth/68, and a request is not an announcement.
    let err = a.announce(EthMessage::NewPooledTransactionHashes66(vec![])).await.unwrap_err();
    assert!(matches!(err, EthError::NotForVersion { .. }));
    let err = a.announce(EthMessage::GetBlockBodies(RequestPair::new(1, vec![]))).await.unwrap_err();
    assert!(matches!(err, EthError::NotForVersion { .. }));
}
