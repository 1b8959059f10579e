//! Every eth message decoder, for every version: the first byte picks the version and the
//! message id, the rest is the payload. Decoding never panics, and whatever decodes
//! re-encodes to a payload that decodes to the same message.
#![no_main]

use ethp2p::eth::{EthMessage, EthVersion};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else { return };
    let version = EthVersion::ALL[usize::from(selector >> 6)];
    // 0x00..=0x11 covers every id of every version, plus a few undefined ones.
    let id = (selector & 0x3f) % 0x14;
    if let Ok(msg) = EthMessage::decode(version, id, payload) {
        let again = EthMessage::decode(version, id, &msg.encoded()).expect("re-encoded message decodes");
        assert_eq!(again, msg);
    }
});
