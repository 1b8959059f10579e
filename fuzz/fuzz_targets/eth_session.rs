//! A real eth/68 session after a real handshake (ECIES, Hello, `Status` on both sides),
//! then fed a sequence of eth messages by the authenticated peer: the peer service decodes
//! each one, answers requests from a small chain, validates answers and announcements,
//! and ends when the peer's stream ends or it misbehaves. Never panics; the session's
//! end is always a classified error.
//!
//! Input: a sequence of `[id: u8][len: u8][payload: len bytes]`, each one eth message (id
//! relative to the capability, taken modulo 0x20) with its RLP data.
#![no_main]

use std::sync::{Arc, OnceLock};

use futures::{SinkExt, StreamExt};
use libfuzzer_sys::fuzz_target;

use ethp2p::{eth::{EthConfig, EthMessage, EthSession, MemoryChain}, rlpx::{CapMessage, DisconnectReason, Protocol, RlpxConfig, Session}, ChainSpec, NodeKey};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    ours: NodeKey,
    theirs: NodeKey,
    rlpx: RlpxConfig,
    chain: Arc<MemoryChain>,
    eth: EthConfig,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let chain = Arc::new(MemoryChain::builder().blocks(8).build());
        let eth = chain.eth_config_for(&ChainSpec::mainnet()).build().expect("valid eth config");
        Fixture {
            runtime: tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"),
            ours: NodeKey::from_bytes(&[1; 32]).expect("valid key"),
            theirs: NodeKey::from_bytes(&[2; 32]).expect("valid key"),
            rlpx: RlpxConfig::builder().protocol(Protocol::eth(68)).build().expect("valid config"),
            chain,
            eth,
        }
    })
}

fn messages(mut data: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while let [id, len, rest @ ..] = data {
        let len = usize::from(*len).min(rest.len());
        out.push((id % 0x20, &rest[..len]));
        data = &rest[len..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let messages = messages(data);
    f.runtime.block_on(async {
        let (a, b) = tokio::io::duplex(1 << 20);
        let peer = async {
            let mut session =
                Session::outgoing(b, &f.theirs, f.ours.peer_id(), &f.rlpx).await.expect("RLPx handshake");
            let cap = session.capability_index("eth").expect("eth shared");
            let status = EthMessage::Status(f.eth.status.status(ethp2p::EthVersion::Eth68));
            session.send(CapMessage::new(cap, 0, status.encoded())).await.expect("send Status");
            // Our Status arrives before anything else: the handshake is done on our side
            // whatever the peer does next.
            let _ours = session.next().await;
            for (id, payload) in &messages {
                if session.send(CapMessage::new(cap, *id, payload.to_vec())).await.is_err() {
                    break;
                }
            }
            // A Disconnect ends our side's service; read what it answers until then, so its
            // writes never block on a full pipe.
            let _ = session.disconnect(DisconnectReason::ClientQuitting).await;
            while let Some(Ok(_)) = session.next().await {}
        };
        let ours = async {
            let session = Session::incoming(a, &f.ours, &f.rlpx).await.expect("RLPx handshake");
            let session = EthSession::handshake(session, f.eth.clone()).await.expect("Status handshake");
            let (_peer, service, mut events) = session.into_peer(f.chain.clone());
            let drain = async { while events.recv().await.is_some() {} };
            let (error, ()) = tokio::join!(service.run(), drain);
            error
        };
        let (_error, ()) = tokio::join!(ours, peer);
    });
});
