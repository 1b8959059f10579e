//! RLPx over real loopback sockets: dial and listen, the pending-handshake cap under a
//! flood of half-open connections, and timeouts.

use std::time::{Duration, Instant};

use ethp2p::{
    rlpx::{dial, CapMessage, DisconnectReason, Protocol, RlpxConfig, RlpxError, RlpxListener},
    Enode, NodeKey,
};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;

fn config() -> RlpxConfig {
    RlpxConfig::builder().protocol(Protocol::eth(68)).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_and_accept_over_tcp() {
    let (ka, kb) = (NodeKey::generate(), NodeKey::generate());
    let mut listener =
        RlpxListener::bind("127.0.0.1:0".parse().unwrap(), kb.clone(), config()).await.unwrap();
    let enode = Enode::new(kb.peer_id(), listener.local_addr());
    let ours = config();
    let (dialed, accepted) = tokio::join!(dial(&enode, &ka, &ours), listener.accept());
    let mut a = dialed.unwrap();
    let mut b = accepted.unwrap().unwrap();
    assert_eq!(a.remote_id(), kb.peer_id());
    assert_eq!(b.remote_id(), ka.peer_id());
    assert_eq!(b.remote_addr().unwrap().ip(), listener.local_addr().ip());
    a.send(CapMessage::new(0, 0x05, &b"\xc0"[..])).await.unwrap();
    let msg = b.next().await.unwrap().unwrap();
    assert_eq!((msg.cap, msg.id, &msg.data[..]), (0, 0x05, &b"\xc0"[..]));
    b.disconnect(DisconnectReason::UselessPeer).await.unwrap();
    assert!(matches!(a.next().await, Some(Err(RlpxError::Disconnected(DisconnectReason::UselessPeer)))));
}

// A thousand connections that never send auth: the listener runs at most the cap (50) of
// handshakes and closes the rest at once; when the flood ends, a real peer gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_half_open_connections() {
    const FLOOD: usize = 1000;
    let kb = NodeKey::generate();
    let cfg = RlpxConfig::builder()
        .protocol(Protocol::eth(68))
        .handshake_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    assert_eq!(cfg.max_pending_handshakes, 50);
    let mut listener = RlpxListener::bind("127.0.0.1:0".parse().unwrap(), kb.clone(), cfg).await.unwrap();
    let addr = listener.local_addr();
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        flood.push(TcpStream::connect(addr).await.unwrap());
        assert!(listener.pending_handshakes() <= 50);
    }
    // Every connection is either pending or was rejected.
    let deadline = Instant::now() + Duration::from_secs(30);
    while listener.rejected() < (FLOOD - 50) as u64 {
        assert!(Instant::now() < deadline, "rejected only {} of {FLOOD}", listener.rejected());
        assert!(listener.pending_handshakes() <= 50);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(listener.pending_handshakes(), 50);
    assert_eq!(listener.rejected(), (FLOOD - 50) as u64);
    // While saturated, a real peer is turned away...
    let ka = NodeKey::generate();
    let enode = Enode::new(kb.peer_id(), addr);
    assert!(dial(&enode, &ka, &config()).await.is_err());
    // ...and once the flood closes, it gets in.
    drop(flood);
    let deadline = Instant::now() + Duration::from_secs(30);
    while listener.pending_handshakes() > 0 {
        assert!(Instant::now() < deadline, "pending handshakes never drained");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ours = config();
    let (dialed, accepted) = tokio::join!(dial(&enode, &ka, &ours), async {
        loop {
            // Skip the flood's failed handshakes (reported for per-IP accounting).
            match listener.accept().await.unwrap() {
                Ok(session) => break session,
                Err(inbound) => assert!(!inbound.error.should_ban()),
            }
        }
    });
    assert_eq!(dialed.unwrap().remote_id(), kb.peer_id());
    assert_eq!(accepted.remote_id(), ka.peer_id());
}

#[tokio::test]
async fn handshake_timeout_on_silent_peer() {
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let enode = Enode::new(NodeKey::generate().peer_id(), server.local_addr().unwrap());
    let cfg = RlpxConfig::builder()
        .protocol(Protocol::eth(68))
        .handshake_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let _silent = tokio::spawn(async move {
        let (conn, _) = server.accept().await.unwrap();
        // Hold the connection open without ever answering.
        std::future::pending::<()>().await;
        drop(conn);
    });
    let err = dial(&enode, &NodeKey::generate(), &cfg).await.unwrap_err();
    assert!(matches!(err, RlpxError::HandshakeTimeout), "{err}");
    assert_eq!(err.backoff(), ethp2p::rlpx::Backoff::Low);
}

#[tokio::test]
async fn connection_refused_backs_off_high() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let enode = Enode::new(NodeKey::generate().peer_id(), ([127, 0, 0, 1], port).into());
    let err = dial(&enode, &NodeKey::generate(), &config()).await.unwrap_err();
    assert!(matches!(err, RlpxError::Io(_)), "{err}");
    assert_eq!(err.backoff(), ethp2p::rlpx::Backoff::High);
}
