//! Unit tests of `session.rs`.

use super::*;
use crate::rlpx::Protocol;

fn config() -> RlpxConfig {
    RlpxConfig::builder().protocol(Protocol::eth(68)).protocol(Protocol::snap()).build().unwrap()
}

async fn pair(
    ca: RlpxConfig,
    cb: RlpxConfig,
) -> (Session<tokio::io::DuplexStream>, Session<tokio::io::DuplexStream>) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let (ka, kb) = (NodeKey::generate(), NodeKey::generate());
    let (ra, rb) = tokio::join!(Session::outgoing(a, &ka, kb.peer_id(), &ca), Session::incoming(b, &kb, &cb));
    (ra.unwrap(), rb.unwrap())
}

#[tokio::test]
async fn messages_both_ways() {
    let (mut a, mut b) = pair(config(), config()).await;
    assert_eq!(a.shared_capabilities().len(), 2);
    assert!(a.is_snappy());
    let eth = a.capability_index("eth").unwrap();
    let big = Bytes::from(vec![0x5a; 3 << 20]);
    a.send(CapMessage::new(eth, 0x03, big.clone())).await.unwrap();
    let snap = b.capability_index("snap").unwrap();
    b.send(CapMessage::new(snap, 0x07, &b"x"[..])).await.unwrap();
    let got = b.next().await.unwrap().unwrap();
    assert_eq!((got.cap, got.id, got.data), (eth, 0x03, big));
    let got = a.next().await.unwrap().unwrap();
    assert_eq!((got.cap, got.id, &got.data[..]), (snap, 0x07, &b"x"[..]));
    // Out-of-range sends are refused locally.
    assert!(matches!(
        a.send(CapMessage::new(eth, 17, Bytes::new())).await,
        Err(RlpxError::InvalidSend { .. })
    ));
    assert!(matches!(a.send(CapMessage::new(9, 0, Bytes::new())).await, Err(RlpxError::InvalidSend { .. })));
}

#[tokio::test]
async fn disconnect_is_delivered_with_reason() {
    let (mut a, mut b) = pair(config(), config()).await;
    a.disconnect(DisconnectReason::TooManyPeers).await.unwrap();
    let err = b.next().await.unwrap().unwrap_err();
    assert!(matches!(err, RlpxError::Disconnected(DisconnectReason::TooManyPeers)), "{err}");
    assert_eq!(err.backoff(), crate::rlpx::Backoff::Low);
    assert!(b.next().await.is_none());
}

#[tokio::test]
async fn no_shared_capability() {
    let other = RlpxConfig::builder().protocol(Protocol::new("les", 4, 23)).build().unwrap();
    let (a, b) = tokio::io::duplex(1 << 16);
    let (ka, kb) = (NodeKey::generate(), NodeKey::generate());
    let ours = config();
    let (ra, rb) =
        tokio::join!(Session::outgoing(a, &ka, kb.peer_id(), &ours), Session::incoming(b, &kb, &other));
    let (ea, eb) = (ra.unwrap_err(), rb.unwrap_err());
    // Each side finds no shared capability in the other's Hello, or reads the other's
    // Disconnect(UselessPeer) first.
    for e in [ea, eb] {
        assert!(
            matches!(
                e,
                RlpxError::NoSharedCapabilities | RlpxError::Disconnected(DisconnectReason::UselessPeer)
            ),
            "{e}"
        );
        assert_eq!(e.backoff(), crate::rlpx::Backoff::High);
    }
}

/// What `devp2p rlpx eth-test`'s MaliciousHandshake sends after the ECIES handshake, and
/// what go-ethereum answers: a Hello sent under the eth message ids (0x10) is closed
/// without a Disconnect; a Hello with a 65-byte node id gets Disconnect(0x07, invalid
/// identity); an honest peer after them is served.
#[tokio::test]
async fn malicious_hellos_end_as_geth_ends_them() {
    async fn first_reply(frame: Vec<u8>) -> (RlpxError, Option<Vec<u8>>) {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (ka, kb) = (NodeKey::generate(), NodeKey::generate());
        let cfg = config();
        let attacker = async {
            let mut stream = EciesStream::connect(a, &ka, kb.peer_id()).await.unwrap();
            stream.send(&frame[..]).await.unwrap();
            // Our Hello first, then the Disconnect if one is sent.
            let _hello = stream.next().await;
            stream.next().await.and_then(Result::ok).map(|f| f.to_vec())
        };
        let (err, reply) = tokio::join!(Session::incoming(b, &kb, &cfg), attacker);
        (err.err().unwrap(), reply)
    }
    let hello = |id: Vec<u8>, cap: &[u8]| {
        let mut caps = Vec::new();
        let mut cap_item = Vec::new();
        cap.encode(&mut cap_item);
        69u32.encode(&mut cap_item);
        alloy_rlp::Header { list: true, payload_length: cap_item.len() }.encode(&mut caps);
        caps.extend(cap_item);
        let mut fields = Vec::new();
        5u8.encode(&mut fields);
        "attacker".encode(&mut fields);
        alloy_rlp::Header { list: true, payload_length: caps.len() }.encode(&mut fields);
        fields.extend(caps);
        0u16.encode(&mut fields);
        id.as_slice().encode(&mut fields);
        let mut out = Vec::new();
        alloy_rlp::Header { list: true, payload_length: fields.len() }.encode(&mut out);
        out.extend(fields);
        out
    };
    let id = NodeKey::generate().peer_id().as_slice().to_vec();
    // Hello's payload under message id 0x10 (the suite writes it on the eth protocol).
    let mut frame = vec![0x10];
    frame.extend(hello(id.clone(), b"eth"));
    let (err, reply) = first_reply(frame).await;
    assert!(matches!(err, RlpxError::HelloExpected(0x10)), "{err}");
    assert_eq!(reply, None, "closed without a Disconnect");
    // A real Hello (id 0x80) with a 65-byte node id.
    let mut long = id;
    long.push(0);
    let mut frame = vec![0x80];
    frame.extend(hello(long, b"eth"));
    let (err, reply) = first_reply(frame).await;
    assert!(matches!(err, RlpxError::BadNodeIdLength(65)), "{err}");
    let disconnect = P2PMessage::Disconnect(DisconnectReason::NullNodeIdentity).encode(false);
    assert_eq!(reply.as_deref(), Some(&disconnect[..]));
    // A well-formed version-5 Hello from another key than the one that authenticated:
    // Disconnect(0x09), snappy-compressed as geth compresses it after reading the Hello.
    let mut frame = vec![0x80];
    frame.extend(hello(NodeKey::generate().peer_id().as_slice().to_vec(), b"eth"));
    let (err, reply) = first_reply(frame).await;
    assert!(matches!(err, RlpxError::UnexpectedIdentity), "{err}");
    let disconnect = P2PMessage::Disconnect(DisconnectReason::UnexpectedHandshakeIdentity).encode(true);
    assert_eq!(reply.as_deref(), Some(&disconnect[..]));
    // (A 2 KB capability name: huge_capability_name_in_hello.) And the next honest peer is served.
    pair(config(), config()).await;
}

// Keepalive with paused time: pings are answered; a peer that stops answering is dropped.
#[tokio::test(start_paused = true)]
async fn ping_pong_and_timeout() {
    // A long idle timeout, so only the missing Pong can end the session.
    let cfg = RlpxConfig::builder()
        .protocol(Protocol::eth(68))
        .idle_timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    let (mut a, mut b) = pair(cfg.clone(), cfg).await;
    // Both sides polled: 100 s of virtual time pass with pings answered.
    let deadline = Instant::now() + Duration::from_secs(100);
    tokio::select! {
        m = a.next() => panic!("a ended: {m:?}"),
        m = b.next() => panic!("b ended: {m:?}"),
        _ = tokio::time::sleep_until(deadline) => {}
    }
    // Now only `a` is polled: `b` no longer answers pings.
    let err = a.next().await.unwrap().unwrap_err();
    assert!(matches!(err, RlpxError::PingTimeout), "{err}");
    assert!(!err.should_ban());
    assert_eq!(err.backoff(), crate::rlpx::Backoff::Low);
    // `a` told `b` why, after the pings `b` never answered.
    let err = b.next().await.unwrap().unwrap_err();
    assert!(matches!(err, RlpxError::Disconnected(DisconnectReason::PingTimeout)), "{err}");
}

// A peer that sends nothing at all (and is never pinged) hits the idle read timeout.
#[tokio::test(start_paused = true)]
async fn idle_timeout() {
    let cfg = RlpxConfig::builder()
        .protocol(Protocol::eth(68))
        .ping_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let (mut a, _b) = pair(cfg.clone(), cfg).await;
    let err = a.next().await.unwrap().unwrap_err();
    assert!(matches!(err, RlpxError::IdleTimeout), "{err}");
    assert!(a.next().await.is_none());
}

// A Hello with a 2 KB capability name is refused (it exceeds the p2p message limit) and the
// error is typed; the connection closes without a Disconnect, as go-ethereum closes it
// (`readProtocolHandshake`: "message too big" is no `DiscReason`).
#[tokio::test]
async fn huge_capability_name_in_hello() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let (ka, kb) = (NodeKey::generate(), NodeKey::generate());
    let cfg = config();
    let server = async {
        let stream = EciesStream::accept(b, &kb).await.unwrap();
        Session::hello(stream, &kb, &cfg).await
    };
    let client = async {
        let mut stream = EciesStream::connect(a, &ka, kb.peer_id()).await.unwrap();
        let hello = Hello {
            protocol_version: 5,
            client_id: "evil".into(),
            capabilities: vec![crate::rlpx::Capability::new("e".repeat(2048), 1)],
            port: 0,
            id: ka.peer_id(),
        };
        stream.send(&P2PMessage::Hello(hello).encode(false)[..]).await.unwrap();
        let _their_hello = stream.next().await.unwrap().unwrap();
        stream.next().await.and_then(Result::ok)
    };
    let (reply, result) = tokio::join!(client, server);
    let err = result.unwrap_err();
    assert!(matches!(err, RlpxError::P2pMessageTooLarge(_)), "{err}");
    assert_ne!(err.backoff(), crate::rlpx::Backoff::None);
    assert_eq!(reply, None);
}

#[tokio::test]
async fn dialing_ourselves_is_refused() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let key = NodeKey::generate();
    let cfg = config();
    let (ra, rb) =
        tokio::join!(Session::outgoing(a, &key, key.peer_id(), &cfg), Session::incoming(b, &key, &cfg));
    for e in [ra.unwrap_err(), rb.unwrap_err()] {
        assert!(
            matches!(
                e,
                RlpxError::ConnectedToSelf | RlpxError::Disconnected(DisconnectReason::ConnectedToSelf)
            ),
            "{e}"
        );
    }
}

#[tokio::test]
async fn snappy_bomb_is_rejected_before_allocating() {
    let (mut a, mut b) = pair(config(), config()).await;
    // A snappy stream declaring 1 GiB: varint length then nothing.
    let mut frame = Vec::new();
    0x10u64.encode(&mut frame);
    let mut n = 1u64 << 30;
    while n >= 0x80 {
        frame.push((n as u8) | 0x80);
        n >>= 7;
    }
    frame.push(n as u8);
    a.inner.send(&frame[..]).await.unwrap();
    let err = b.next().await.unwrap().unwrap_err();
    assert!(matches!(err, RlpxError::DecompressedTooLarge(len) if len == 1 << 30), "{err}");
    assert!(err.should_ban());
    // b told a why.
    let err = a.next().await.unwrap().unwrap_err();
    assert!(matches!(err, RlpxError::Disconnected(DisconnectReason::ProtocolBreach)), "{err}");
}

#[tokio::test]
async fn wrong_hello_identity() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let (ka, kb) = (NodeKey::generate(), NodeKey::generate());
    let cfg = config();
    let server = async {
        let stream = EciesStream::accept(b, &kb).await.unwrap();
        Session::hello(stream, &kb, &cfg).await
    };
    let client = async {
        let stream = EciesStream::connect(a, &ka, kb.peer_id()).await.unwrap();
        // Claim to be someone else in Hello.
        Session::hello(stream, &NodeKey::generate(), &cfg).await
    };
    let (rc, rs) = tokio::join!(client, server);
    let e = rs.unwrap_err();
    assert!(matches!(e, RlpxError::UnexpectedIdentity), "{e}");
    assert!(e.should_ban());
    // The client saw a valid Hello from the server; whatever it got, it is not a panic.
    drop(rc);
}
