//! The RLPx frame codec (rlpx.md, "Framing"), as a `tokio_util` codec.
//!
//! ```text
//! frame  = header-ciphertext (16) ‖ header-mac (16) ‖ frame-ciphertext ‖ frame-mac (16)
//! header = frame-size (3, big-endian) ‖ rlp([0, 0]) ‖ zero padding to 16 bytes
//! ```
//!
//! Both ciphertexts come from one AES-256-CTR stream per direction (IV zero), so the codec
//! must see every frame in order. The MACs are checked before anything is decrypted. The
//! frame-size field is 24 bits, which caps a frame at 16 MiB; the decoder never reserves
//! buffer space by a claimed size (the read buffer only grows with bytes that arrived).

#![cfg_attr(not(any(test, feature = "test-utils")), allow(unreachable_pub, dead_code))]

use aes::{cipher::KeyIvInit, Aes256};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use ctr::cipher::StreamCipher;
use tokio_util::codec::{Decoder, Encoder};

use super::{ecies::Secrets, mac::Mac, RlpxError};

/// rlpx.md: the frame size is a 24-bit integer.
pub const MAX_FRAME_SIZE: usize = (1 << 24) - 1;
/// Header (16) plus header MAC (16).
const HEADER_LEN: usize = 32;
/// rlp([capability-id = 0, context-id = 0]): the header data every client sends and ignores.
const HEADER_DATA: [u8; 3] = [0xc2, 0x80, 0x80];

type Aes256Ctr = ctr::Ctr64BE<Aes256>;

/// Encrypts and MACs outgoing frames, checks and decrypts incoming ones. Items are frame
/// payloads: an RLP message id followed by the message data.
pub struct RlpxCodec {
    egress_aes: Aes256Ctr,
    ingress_aes: Aes256Ctr,
    egress_mac: Mac,
    ingress_mac: Mac,
    /// The body size of the frame whose header was read, while its body is awaited.
    body_size: Option<usize>,
}

impl std::fmt::Debug for RlpxCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RlpxCodec").field("body_size", &self.body_size).finish_non_exhaustive()
    }
}

fn padded(n: usize) -> usize {
    n.div_ceil(16) * 16
}

impl RlpxCodec {
    /// A codec keyed with a finished handshake's secrets.
    pub fn new(secrets: Secrets) -> Self {
        let iv = [0u8; 16];
        Self {
            egress_aes: Aes256Ctr::new(secrets.aes.as_slice().into(), &iv.into()),
            ingress_aes: Aes256Ctr::new(secrets.aes.as_slice().into(), &iv.into()),
            egress_mac: secrets.egress_mac,
            ingress_mac: secrets.ingress_mac,
            body_size: None,
        }
    }

    /// Appends one frame carrying `payload` to `dst`: one copy of the payload, encrypted in
    /// place.
    pub fn write_frame(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<(), RlpxError> {
        if payload.len() > MAX_FRAME_SIZE {
            return Err(RlpxError::FrameTooLarge(payload.len()));
        }
        let body_len = padded(payload.len());
        dst.reserve(HEADER_LEN + body_len + 16);

        let mut header = [0u8; 16];
        header[..3].copy_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        header[3..6].copy_from_slice(&HEADER_DATA);
        self.egress_aes.apply_keystream(&mut header);
        self.egress_mac.update_header(&header);
        dst.put_slice(&header);
        dst.put_slice(&self.egress_mac.digest16());

        let start = dst.len();
        dst.put_slice(payload);
        dst.put_bytes(0, body_len - payload.len());
        let body = &mut dst[start..];
        self.egress_aes.apply_keystream(body);
        self.egress_mac.update(body);
        self.egress_mac.update_body();
        dst.put_slice(&self.egress_mac.digest16());
        Ok(())
    }

    /// Reads one frame from the front of `src`, if it is all there. The payload is decrypted
    /// in place and split off `src` without copying.
    pub fn read_frame(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, RlpxError> {
        let size = match self.body_size {
            Some(size) => size,
            None => {
                if src.len() < HEADER_LEN {
                    return Ok(None);
                }
                let mut header: [u8; 16] = src[..16].try_into().expect("16 bytes");
                self.ingress_mac.update_header(&header);
                if !ct_eq(&self.ingress_mac.digest16(), &src[16..32]) {
                    return Err(RlpxError::HeaderMacMismatch);
                }
                self.ingress_aes.apply_keystream(&mut header);
                src.advance(HEADER_LEN);
                let size = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
                self.body_size = Some(size);
                size
            }
        };
        let body_len = padded(size);
        if src.len() < body_len + 16 {
            return Ok(None);
        }
        self.body_size = None;
        let mut frame = src.split_to(body_len + 16);
        let mac = frame.split_off(body_len);
        self.ingress_mac.update(&frame);
        self.ingress_mac.update_body();
        if !ct_eq(&self.ingress_mac.digest16(), &mac) {
            return Err(RlpxError::BodyMacMismatch);
        }
        self.ingress_aes.apply_keystream(&mut frame);
        frame.truncate(size);
        Ok(Some(frame))
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Decoder for RlpxCodec {
    type Item = BytesMut;
    type Error = RlpxError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, RlpxError> {
        self.read_frame(src)
    }
}

impl Encoder<&[u8]> for RlpxCodec {
    type Error = RlpxError;

    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<(), RlpxError> {
        self.write_frame(payload, dst)
    }
}

impl Encoder<Bytes> for RlpxCodec {
    type Error = RlpxError;

    fn encode(&mut self, payload: Bytes, dst: &mut BytesMut) -> Result<(), RlpxError> {
        self.write_frame(&payload, dst)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rlpx::Handshake;
    use proptest::prelude::*;
    use secp256k1::{SecretKey, SECP256K1};

    /// A pair of codecs from a real in-memory handshake: `(initiator, recipient)`.
    pub(crate) fn codec_pair() -> (RlpxCodec, RlpxCodec) {
        let (ka, kb) = (SecretKey::new(&mut rand::thread_rng()), SecretKey::new(&mut rand::thread_rng()));
        let mut a = Handshake::initiator(&ka, &crate::record::peer_id_of(&kb.public_key(SECP256K1))).unwrap();
        let mut b = Handshake::recipient(&kb);
        b.read_auth(&a.create_auth()).unwrap();
        a.read_ack(&b.create_ack().unwrap()).unwrap();
        (RlpxCodec::new(a.secrets().unwrap()), RlpxCodec::new(b.secrets().unwrap()))
    }

    #[test]
    fn frames_in_order_byte_by_byte() {
        let (mut a, mut b) = codec_pair();
        let mut wire = BytesMut::new();
        let payloads: Vec<Vec<u8>> = vec![vec![], vec![1], vec![7; 16], vec![9; 17], vec![3; 5000]];
        for p in &payloads {
            a.write_frame(p, &mut wire).unwrap();
        }
        // Feed one byte at a time: the decoder must wait, never misparse.
        let mut src = BytesMut::new();
        let mut got = Vec::new();
        for byte in wire {
            src.put_u8(byte);
            while let Some(frame) = b.read_frame(&mut src).unwrap() {
                got.push(frame.to_vec());
            }
        }
        assert_eq!(got, payloads);
    }

    #[test]
    fn bad_macs() {
        let (mut a, mut b) = codec_pair();
        let mut wire = BytesMut::new();
        a.write_frame(b"hello", &mut wire).unwrap();
        let mut bad = wire.clone();
        bad[20] ^= 1;
        assert!(matches!(b.read_frame(&mut bad), Err(RlpxError::HeaderMacMismatch)));

        let (mut a, mut b) = codec_pair();
        let mut wire = BytesMut::new();
        a.write_frame(b"hello", &mut wire).unwrap();
        let last = wire.len() - 20;
        wire[last] ^= 1;
        assert!(matches!(b.read_frame(&mut wire), Err(RlpxError::BodyMacMismatch)));
    }

    #[test]
    fn garbage_is_a_mac_error() {
        let (_, mut b) = codec_pair();
        let mut src = BytesMut::from(&[0xab; 64][..]);
        assert!(matches!(b.read_frame(&mut src), Err(RlpxError::HeaderMacMismatch)));
    }

    #[test]
    fn frame_cap() {
        let (mut a, _) = codec_pair();
        let big = vec![0u8; MAX_FRAME_SIZE + 1];
        assert!(matches!(a.write_frame(&big, &mut BytesMut::new()), Err(RlpxError::FrameTooLarge(_))));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn roundtrip(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 1..8),
                     split in 1usize..200) {
            let (mut a, mut b) = codec_pair();
            let mut wire = BytesMut::new();
            for p in &payloads {
                a.write_frame(p, &mut wire).unwrap();
            }
            let mut src = BytesMut::new();
            let mut got = Vec::new();
            for chunk in wire.chunks(split) {
                src.extend_from_slice(chunk);
                while let Some(f) = b.read_frame(&mut src).unwrap() {
                    got.push(f.to_vec());
                }
            }
            prop_assert_eq!(got, payloads);
        }
    }
}
