//! The p2p message decoders (Hello, Disconnect in every form, Ping, Pong) on arbitrary
//! bytes: never panic, and whatever decodes re-encodes to an equal message.
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
        // Whatever decodes re-encodes (in our form: `[reason]`, compressed if `snappy`)
        // to a frame that decodes to the same message.
        if let Ok(msg) = P2PMessage::decode(data, snappy) {
            assert_eq!(P2PMessage::decode(&msg.encode(snappy), snappy).expect("own encoding decodes"), msg);
        }
        if let Ok(reason) = DisconnectReason::decode(data, snappy) {
            let frame = P2PMessage::Disconnect(reason).encode(snappy);
            assert_eq!(P2PMessage::decode(&frame, snappy).ok(), Some(P2PMessage::Disconnect(reason)));
        }
    }
});
