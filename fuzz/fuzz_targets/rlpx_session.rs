//! A real RLPx [`Session`] (snappy on, eth/68 shared) fed arbitrary frames by an
//! authenticated peer: the p2p dispatch (Ping, Pong, Disconnect in any form, a second Hello,
//! reserved and unknown ids) and the snappy decompression of capability messages. Never
//! panics, never allocates by a declared length beyond the limit, and every message it hands
//! out belongs to a shared capability.
//!
//! Input: a sequence of `[len: u8][payload: len bytes]`, each payload one frame (p2p message
//! id then data, as on the wire after decryption).
#![no_main]

use std::sync::OnceLock;

use futures::{SinkExt, StreamExt};
use libfuzzer_sys::fuzz_target;

use ethp2p::{rlpx::{
        EciesStream, Hello, P2PMessage, Protocol, RlpxConfig, Session, BASE_PROTOCOL_VERSION,
        MAX_DECOMPRESSED_SIZE,
    }, NodeKey};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    ours: NodeKey,
    theirs: NodeKey,
    config: RlpxConfig,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture {
        runtime: tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"),
        ours: NodeKey::from_bytes(&[1; 32]).expect("valid key"),
        theirs: NodeKey::from_bytes(&[2; 32]).expect("valid key"),
        config: RlpxConfig::builder().protocol(Protocol::eth(68)).build().expect("valid config"),
    })
}

fn frames(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let len = usize::from(len).min(rest.len());
        out.push(&rest[..len]);
        data = &rest[len..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let frames = frames(data);
    f.runtime.block_on(async {
        let (a, b) = tokio::io::duplex(1 << 20);
        let peer = async {
            let mut stream = EciesStream::connect(b, &f.theirs, f.ours.peer_id()).await.expect("handshake");
            let hello = Hello {
                protocol_version: BASE_PROTOCOL_VERSION,
                client_id: "fuzz".into(),
                capabilities: vec![Protocol::eth(68).cap],
                port: 0,
                id: f.theirs.peer_id(),
            };
            stream.send(&P2PMessage::Hello(hello).encode(false)[..]).await.expect("send Hello");
            let _their_hello = stream.next().await;
            for frame in &frames {
                if stream.send(*frame).await.is_err() {
                    break;
                }
            }
            let _ = SinkExt::<&[u8]>::close(&mut stream).await;
            stream
        };
        let (session, _peer) = tokio::join!(Session::incoming(a, &f.ours, &f.config), peer);
        let mut session = session.expect("the Hello exchange succeeds");
        assert!(session.is_snappy());
        let caps = session.shared_capabilities().to_vec();
        while let Some(item) = session.next().await {
            let Ok(msg) = item else { break };
            let shared = &caps[msg.cap];
            assert!(msg.id < shared.messages);
            assert!(msg.data.len() <= MAX_DECOMPRESSED_SIZE);
        }
    });
});
