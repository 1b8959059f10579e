//! The frame decoder on arbitrary wire bytes (stopped by the header MAC), and a round trip:
//! the input cut into payloads, written as frames and read back in arbitrary chunks.
#![no_main]

use std::sync::OnceLock;

use bytes::BytesMut;
use ethp2p::{rlpx::{Handshake, RlpxCodec, Secrets}, NodeKey};
use libfuzzer_sys::fuzz_target;

/// Both sides' frame codecs, fresh for each input. The handshake runs once (it dominated
/// the run time); each input starts from clones of its secrets.
fn codecs() -> (RlpxCodec, RlpxCodec) {
    static SECRETS: OnceLock<(Secrets, Secrets)> = OnceLock::new();
    let (init, resp) = SECRETS.get_or_init(|| {
        let a = NodeKey::from_bytes(&[1; 32]).expect("valid key");
        let b = NodeKey::from_bytes(&[2; 32]).expect("valid key");
        let mut init = Handshake::initiator(a.secret(), &b.peer_id()).expect("valid id");
        let mut resp = Handshake::recipient(b.secret());
        resp.read_auth(&init.create_auth()).expect("own auth");
        init.read_ack(&resp.create_ack().expect("ack")).expect("own ack");
        (init.secrets().expect("secrets"), resp.secrets().expect("secrets"))
    });
    (RlpxCodec::new(init.clone()), RlpxCodec::new(resp.clone()))
}

fuzz_target!(|data: &[u8]| {
    let (_, mut reader) = codecs();
    let mut src = BytesMut::from(data);
    while let Ok(Some(_)) = reader.read_frame(&mut src) {}

    let (mut writer, mut reader) = codecs();
    let payloads: Vec<&[u8]> = data.split(|&b| b == 0xff).collect();
    let mut wire = BytesMut::new();
    for p in &payloads {
        writer.write_frame(p, &mut wire).expect("small frames");
    }
    let chunk = data.first().map_or(1, |&b| b as usize + 1);
    let mut src = BytesMut::new();
    let mut got = Vec::new();
    for piece in wire.chunks(chunk) {
        src.extend_from_slice(piece);
        while let Some(frame) = reader.read_frame(&mut src).expect("own frames verify") {
            got.push(frame.to_vec());
        }
    }
    assert_eq!(got.len(), payloads.len());
    for (g, p) in got.iter().zip(&payloads) {
        assert_eq!(g.as_slice(), *p);
    }
});
