//! RLPx interop with the third-party ethereumjs peer, both directions, over loopback TCP.

use std::time::Duration;

use ethp2p::{
    rlpx::{dial, CapMessage, DisconnectReason, Protocol, RlpxConfig, RlpxError, RlpxListener},
    NodeKey,
};
use futures::{SinkExt, StreamExt};

use crate::ejs::EjsPeer;

const WAIT: Duration = Duration::from_secs(30);

fn config() -> RlpxConfig {
    RlpxConfig::builder()
        .protocol(Protocol::eth(66))
        .protocol(Protocol::eth(67))
        .protocol(Protocol::eth(68))
        .build()
        .unwrap()
}

// We dial ethereumjs: ECIES (its EIP-8 ack), Hello both ways, negotiation of eth/68, then
// its first eth message (Status, snappy-compressed) arrives through our session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_dial_ejs() {
    let peer = EjsPeer::spawn(&["--no-discv4"]);
    let key = NodeKey::generate();
    let mut session = dial(&peer.enode(), &key, &config()).await.expect("dial ethereumjs");
    let hello = session.remote_hello().clone();
    let caps: Vec<String> = hello.capabilities.iter().map(|c| c.to_string()).collect();
    eprintln!(
        "ethereumjs Hello: client id {:?}, caps {caps:?}, version {}",
        hello.client_id, hello.protocol_version
    );
    assert_eq!(session.remote_id(), peer.enode().peer_id);
    assert_eq!(hello.client_id, "ethereumjs-devp2p/interop");
    assert!(session.is_snappy());
    let shared: Vec<String> = session.shared_capabilities().iter().map(|s| s.cap.to_string()).collect();
    assert_eq!(shared, ["eth/68"]);

    let status = tokio::time::timeout(WAIT, session.next()).await.expect("Status in time").unwrap().unwrap();
    assert_eq!((status.cap, status.id), (0, 0x00), "eth Status first");
    // eth/68 Status: [version, networkid, td, besthash, genesis, forkid].
    assert_eq!(status.data[0] & 0xc0, 0xc0, "Status is an RLP list");

    let added = peer.wait_event_async("peer-added", |_| true, WAIT).await;
    assert_eq!(added["direction"], "inbound");
    assert_eq!(added["eip8Auth"], true);

    session.disconnect(DisconnectReason::ClientQuitting).await.unwrap();
    let removed = peer.wait_event_async("peer-removed", |_| true, WAIT).await;
    assert_eq!(removed["reason"], DisconnectReason::ClientQuitting.code());
    assert_eq!(removed["byUs"], false);
}

// ethereumjs dials us: our listener accepts, runs the recipient handshake (its EIP-8 auth)
// and Hello.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejs_dials_us() {
    let key = NodeKey::generate();
    let mut listener =
        RlpxListener::bind("127.0.0.1:0".parse().unwrap(), key.clone(), config()).await.unwrap();
    let our_enode = ethp2p::Enode::new(key.peer_id(), listener.local_addr());
    let peer = EjsPeer::spawn(&["--no-discv4", "--dial", &our_enode.to_string()]);
    let session = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("ethereumjs connects in time")
        .expect("listener running")
        .expect("inbound handshake succeeds");
    eprintln!(
        "ethereumjs dialed us: client id {:?}, caps {:?}",
        session.remote_hello().client_id,
        session.remote_hello().capabilities
    );
    assert_eq!(session.remote_id(), peer.enode().peer_id);
    assert_eq!(session.shared_capabilities()[0].cap.to_string(), "eth/68");
    let added = peer.wait_event_async("peer-added", |_| true, WAIT).await;
    assert_eq!(added["direction"], "outbound");
    assert_eq!(added["id"].as_str().unwrap().trim_start_matches("0x"), hex::encode(key.peer_id()));
}

// ethereumjs disconnects us (a malformed eth Status makes it send SUBPROTOCOL_ERROR): its
// Disconnect is a bare RLP integer, uncompressed even after a v5 Hello, and must decode
// with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_from_ejs_decodes() {
    let peer = EjsPeer::spawn(&["--no-discv4"]);
    let key = NodeKey::generate();
    let mut session = dial(&peer.enode(), &key, &config()).await.expect("dial ethereumjs");
    session.send(CapMessage::new(0, 0x00, &[0xc0][..])).await.unwrap();
    let err = loop {
        match tokio::time::timeout(WAIT, session.next()).await.expect("Disconnect in time") {
            Some(Ok(msg)) => eprintln!("ethereumjs sent eth message {:#x}", msg.id),
            Some(Err(e)) => break e,
            None => panic!("connection closed without Disconnect"),
        }
    };
    // ethereumjs reports the removal once the socket is closed on both ends.
    drop(session);
    let removed = peer.wait_event_async("peer-removed", |_| true, WAIT).await;
    eprintln!("ethereumjs removed us: {removed}");
    let reason = removed["reason"].as_u64().unwrap() as u8;
    assert!(
        matches!(err, RlpxError::Disconnected(r) if r.code() == reason),
        "expected Disconnected({reason:#x}), got {err}"
    );
    assert_eq!(removed["byUs"], true);
}
