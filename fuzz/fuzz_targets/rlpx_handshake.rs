//! Auth and ack decoding on arbitrary bytes: raw packets (stopped by the ECIES tag) and, to
//! reach the body parsers, the same bytes ECIES-encrypted to the right key. Never panics.
#![no_main]

use ethp2p::{rlpx::{encrypt_to, packet_len, Handshake, PacketKind}, NodeKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let a = NodeKey::from_bytes(&[1; 32]).expect("valid key");
    let b = NodeKey::from_bytes(&[2; 32]).expect("valid key");
    if data.len() >= 2 {
        let _ = packet_len(PacketKind::Auth, [data[0], data[1]]);
        let _ = packet_len(PacketKind::Ack, [data[0], data[1]]);
    }
    // Raw bytes as auth and as ack.
    let _ = Handshake::recipient(b.secret()).read_auth(data);
    let mut initiator = Handshake::initiator(a.secret(), &b.peer_id()).expect("valid id");
    let _ = initiator.create_auth();
    let _ = initiator.read_ack(data);
    // The bytes as a decrypted body.
    if data.len() < 1500 {
        let mut recipient = Handshake::recipient(b.secret());
        if recipient.read_auth(&encrypt_to(&b.public(), data)).is_ok() {
            let _ = recipient.create_ack();
            let _ = recipient.secrets();
        }
        let mut initiator = Handshake::initiator(a.secret(), &b.peer_id()).expect("valid id");
        let _ = initiator.create_auth();
        if initiator.read_ack(&encrypt_to(&a.public(), data)).is_ok() {
            let _ = initiator.secrets();
        }
    }
});
