//! The p2p message decoders (Hello, Disconnect in every form, Ping, Pong) on arbitrary
//! bytes: never panic, and an accepted Hello re-encodes to an equal one.
#![no_main]

use ethp2p::rlpx::{DisconnectReason, Hello, P2PMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(hello) = Hello::decode(data) {
        let mut out = Vec::new();
        hello.encode(&mut out);
        assert_eq!(Hello::decode(&out).expect("own encoding decodes"), hello);
    }
    for snappy in [false, true] {
        let _ = P2PMessage::decode(data, snappy);
        let _ = DisconnectReason::decode(data, snappy);
    }
});
