//! The discv4 packet decoder on arbitrary datagrams: it must never panic, and whatever it
//! accepts must re-encode to a packet that decodes to the same message.
#![no_main]

use ethp2p::discovery::v4::proto;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Whole datagrams: hash and signature checks first, so most inputs stop early.
    let _ = proto::decode(data);
    // The body parser alone, reached without a valid signature: the first byte picks the type.
    if let Some((&packet_type, body)) = data.split_first() {
        if let Ok(message) = proto::decode_message(packet_type, body) {
            let key = ethp2p::NodeKey::from_bytes(&[1; 32]).expect("valid key");
            let (bytes, _) = proto::encode(&message, key.secret());
            // Empty IPs re-encode as 4 bytes, so a re-encoding may outgrow the size limit.
            if bytes.len() > proto::MAX_PACKET_SIZE {
                return;
            }
            let again = proto::decode(&bytes).expect("our own encoding decodes");
            assert_eq!(again.message, message);
        }
    }
});
