//! The RLPx handshake (rlpx.md, "Initial Handshake"; EIP-8), as a sans-IO core.
//!
//! [`Handshake`] never touches a socket: the initiator calls [`Handshake::create_auth`] and
//! later [`Handshake::read_ack`]; the recipient calls [`Handshake::read_auth`] and
//! [`Handshake::create_ack`]. Both then call [`Handshake::secrets`] to get the frame keys.
//! [`packet_len`] tells the I/O layer how many bytes make up a whole auth or ack, so it can
//! read exactly one packet before calling the core.
//!
//! We always send EIP-8 packets and accept both EIP-8 and the older fixed-size format.

#![cfg_attr(not(any(test, feature = "test-utils")), allow(unreachable_pub, dead_code))]

use aes::{
    cipher::{KeyIvInit, StreamCipher},
    Aes128,
};
use alloy_primitives::{keccak256, FixedBytes, B256, B512};
use alloy_rlp::{Decodable, Encodable, Header};
use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac as _};
use rand::{Rng, RngCore};
use secp256k1::{
    ecdsa::{RecoverableSignature, RecoveryId},
    Message, PublicKey, SecretKey, SECP256K1,
};
use sha2::{Digest, Sha256};

use super::{mac::Mac, EciesError};
use crate::record::{peer_id_of, public_key_of, PeerId};

/// rlpx.md: the handshake version we announce in auth and ack.
const PROTOCOL_VERSION: u64 = 4;
/// ECIES overhead: the 65-byte ephemeral public key, the 16-byte IV and the 32-byte tag.
const ECIES_OVERHEAD: usize = 65 + 16 + 32;
/// Pre-EIP-8 auth: ECIES of signature (65) ‖ keccak(ephemeral) (32) ‖ pubkey (64) ‖ nonce
/// (32) ‖ 0x00 = 194 bytes of plaintext.
const AUTH_V4_LEN: usize = ECIES_OVERHEAD + 194;
/// Pre-EIP-8 ack: ECIES of ephemeral pubkey (64) ‖ nonce (32) ‖ 0x00 = 97 bytes.
const ACK_V4_LEN: usize = ECIES_OVERHEAD + 97;
/// The largest EIP-8 packet we read. Honest packets are under 700 bytes (RLP body plus at
/// most 300 bytes of padding); geth also caps the handshake read buffer. The limit bounds
/// what a remote can make us buffer before it has proven anything.
pub(crate) const MAX_PACKET_LEN: usize = 2048;
/// EIP-8: "add at least 100 bytes of junk data" so packets are distinguishable by size.
const PADDING_MIN: usize = 100;
/// EIP-8 implementations use up to 300 bytes of padding.
const PADDING_MAX: usize = 300;

/// Which packet a length is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// The initiator's first packet.
    Auth,
    /// The recipient's answer.
    Ack,
}

/// The total length of an auth or ack packet, given its first two bytes.
///
/// A packet starting with `0x04` is the pre-EIP-8 fixed-size format (its first byte is the
/// uncompressed public key prefix); anything else is a 2-byte big-endian size prefix (EIP-8).
pub fn packet_len(kind: PacketKind, prefix: [u8; 2]) -> Result<usize, EciesError> {
    if prefix[0] == 0x04 {
        return Ok(match kind {
            PacketKind::Auth => AUTH_V4_LEN,
            PacketKind::Ack => ACK_V4_LEN,
        });
    }
    let size = u16::from_be_bytes(prefix) as usize;
    if size > MAX_PACKET_LEN {
        return Err(EciesError::TooLarge(size));
    }
    if size < ECIES_OVERHEAD {
        return Err(EciesError::TooShort(size));
    }
    Ok(size + 2)
}

/// The keys a finished handshake yields for the frame codec.
#[derive(Clone)]
pub struct Secrets {
    /// The AES-256-CTR key for frames (both directions; each has its own counter).
    pub(crate) aes: B256,
    /// The mac-secret.
    pub(crate) mac: B256,
    /// The MAC state for frames we send.
    pub(crate) egress_mac: Mac,
    /// The MAC state for frames we receive.
    pub(crate) ingress_mac: Mac,
}

impl Secrets {
    /// The aes-secret (the frame cipher key).
    pub fn aes_secret(&self) -> B256 {
        self.aes
    }

    /// The mac-secret (the key of the MAC's block cipher).
    pub fn mac_secret(&self) -> B256 {
        self.mac
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").finish_non_exhaustive()
    }
}

/// One side of the RLPx (ECIES) handshake, free of I/O.
///
/// ```
/// use ethp2p::{rlpx::Handshake, NodeKey};
/// let (a, b) = (NodeKey::generate(), NodeKey::generate());
/// let mut initiator = Handshake::initiator(a.secret(), &b.peer_id())?;
/// let mut recipient = Handshake::recipient(b.secret());
/// let auth = initiator.create_auth();
/// assert_eq!(recipient.read_auth(&auth)?, a.peer_id());
/// let ack = recipient.create_ack()?;
/// initiator.read_ack(&ack)?;
/// let (_ours, _theirs) = (initiator.secrets()?, recipient.secrets()?);
/// # Ok::<(), ethp2p::rlpx::EciesError>(())
/// ```
pub struct Handshake {
    initiator: bool,
    secret: SecretKey,
    ephemeral: SecretKey,
    nonce: B256,
    remote_public: Option<PublicKey>,
    remote_ephemeral: Option<PublicKey>,
    remote_nonce: Option<B256>,
    remote_version: Option<u64>,
    /// The auth packet as sent or received (with its EIP-8 size prefix): the MACs absorb it.
    auth: Option<Bytes>,
    /// The ack packet as sent or received.
    ack: Option<Bytes>,
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("initiator", &self.initiator)
            .field("remote", &self.remote_public.as_ref().map(peer_id_of))
            .finish_non_exhaustive()
    }
}

impl Handshake {
    /// The dialing side, which knows the remote's id in advance.
    pub fn initiator(secret: &SecretKey, remote: &PeerId) -> Result<Self, EciesError> {
        let remote = public_key_of(remote).ok_or(EciesError::InvalidPublicKey)?;
        let mut hs = Self::new(true, secret);
        hs.remote_public = Some(remote);
        Ok(hs)
    }

    /// The accepting side, which learns the remote's id from its auth packet.
    pub fn recipient(secret: &SecretKey) -> Self {
        Self::new(false, secret)
    }

    fn new(initiator: bool, secret: &SecretKey) -> Self {
        let mut rng = rand::thread_rng();
        Self {
            initiator,
            secret: *secret,
            ephemeral: SecretKey::new(&mut rng),
            nonce: B256::from(rng.gen::<[u8; 32]>()),
            remote_public: None,
            remote_ephemeral: None,
            remote_nonce: None,
            remote_version: None,
            auth: None,
            ack: None,
        }
    }

    /// Replaces the random ephemeral key and nonce, to reproduce the spec's test vectors.
    pub fn with_ephemeral(mut self, ephemeral: SecretKey, nonce: B256) -> Self {
        self.ephemeral = ephemeral;
        self.nonce = nonce;
        self
    }

    /// The remote's id: given for the initiator, learned from auth for the recipient.
    pub fn remote_id(&self) -> Option<PeerId> {
        self.remote_public.as_ref().map(peer_id_of)
    }

    /// The handshake version the remote announced (4 today; EIP-8 allows higher).
    pub fn remote_version(&self) -> Option<u64> {
        self.remote_version
    }

    /// Initiator: the EIP-8 auth packet, `[sig, pubkey, nonce, 4]` + padding, ECIES-encrypted
    /// to the remote's static key.
    pub fn create_auth(&mut self) -> Bytes {
        let remote = self.remote_public.expect("initiator always knows the remote key");
        let shared = ecdh_x(&remote, &self.secret);
        let sig = sign(&self.ephemeral, &(shared ^ self.nonce));
        let public = peer_id_of(&self.secret.public_key(SECP256K1));
        let fields_len = sig.length() + public.length() + self.nonce.length() + PROTOCOL_VERSION.length();
        let mut body = Vec::with_capacity(fields_len + 3 + PADDING_MAX);
        Header { list: true, payload_length: fields_len }.encode(&mut body);
        sig.encode(&mut body);
        public.encode(&mut body);
        self.nonce.encode(&mut body);
        PROTOCOL_VERSION.encode(&mut body);
        pad(&mut body);
        let packet = encrypt(&remote, &body);
        self.auth = Some(packet.clone());
        packet
    }

    /// Recipient: decrypts and checks an auth packet (EIP-8 or pre-EIP-8, exactly one whole
    /// packet as [`packet_len`] measures it) and returns the initiator's id.
    pub fn read_auth(&mut self, packet: &[u8]) -> Result<PeerId, EciesError> {
        if self.initiator || self.auth.is_some() {
            return Err(EciesError::OutOfOrder);
        }
        let body = decrypt_packet(&self.secret, packet)?;
        let (sig, public, nonce, version) = if packet[0] == 0x04 {
            // Pre-EIP-8: sig ‖ keccak(ephemeral) ‖ pubkey ‖ nonce ‖ 0x00. Like geth we skip the
            // ephemeral hash: the signature recovery below authenticates the ephemeral key.
            if body.len() != 194 {
                return Err(EciesError::Malformed("pre-EIP-8 auth length"));
            }
            let sig = FixedBytes::<65>::from_slice(&body[..65]);
            let public = B512::from_slice(&body[97..161]);
            let nonce = B256::from_slice(&body[161..193]);
            (sig, public, nonce, PROTOCOL_VERSION)
        } else {
            let mut buf = &body[..];
            let mut list = list_payload(&mut buf)?;
            let sig = FixedBytes::<65>::decode(&mut list)?;
            let public = B512::decode(&mut list)?;
            let nonce = B256::decode(&mut list)?;
            let version = u64::decode(&mut list)?;
            // EIP-8: further list elements and the padding after the list are ignored.
            (sig, public, nonce, version)
        };
        let remote = public_key_of(&public).ok_or(EciesError::InvalidPublicKey)?;
        let shared = ecdh_x(&remote, &self.secret);
        let remote_ephemeral = recover(&sig, &(shared ^ nonce))?;
        self.remote_public = Some(remote);
        self.remote_ephemeral = Some(remote_ephemeral);
        self.remote_nonce = Some(nonce);
        self.remote_version = Some(version);
        self.auth = Some(Bytes::copy_from_slice(packet));
        Ok(public)
    }

    /// Recipient: the EIP-8 ack packet, `[ephemeral pubkey, nonce, 4]` + padding.
    pub fn create_ack(&mut self) -> Result<Bytes, EciesError> {
        let remote = match (self.initiator, self.remote_public) {
            (false, Some(remote)) if self.ack.is_none() => remote,
            _ => return Err(EciesError::OutOfOrder),
        };
        let ephemeral = peer_id_of(&self.ephemeral.public_key(SECP256K1));
        let fields_len = ephemeral.length() + self.nonce.length() + PROTOCOL_VERSION.length();
        let mut body = Vec::with_capacity(fields_len + 3 + PADDING_MAX);
        Header { list: true, payload_length: fields_len }.encode(&mut body);
        ephemeral.encode(&mut body);
        self.nonce.encode(&mut body);
        PROTOCOL_VERSION.encode(&mut body);
        pad(&mut body);
        let packet = encrypt(&remote, &body);
        self.ack = Some(packet.clone());
        Ok(packet)
    }

    /// Initiator: decrypts an ack packet (EIP-8 or pre-EIP-8).
    pub fn read_ack(&mut self, packet: &[u8]) -> Result<(), EciesError> {
        if !self.initiator || self.auth.is_none() || self.ack.is_some() {
            return Err(EciesError::OutOfOrder);
        }
        let body = decrypt_packet(&self.secret, packet)?;
        let (ephemeral, nonce, version) = if packet[0] == 0x04 {
            if body.len() != 97 {
                return Err(EciesError::Malformed("pre-EIP-8 ack length"));
            }
            (B512::from_slice(&body[..64]), B256::from_slice(&body[64..96]), PROTOCOL_VERSION)
        } else {
            let mut buf = &body[..];
            let mut list = list_payload(&mut buf)?;
            let ephemeral = B512::decode(&mut list)?;
            let nonce = B256::decode(&mut list)?;
            let version = u64::decode(&mut list)?;
            (ephemeral, nonce, version)
        };
        self.remote_ephemeral = Some(public_key_of(&ephemeral).ok_or(EciesError::InvalidPublicKey)?);
        self.remote_nonce = Some(nonce);
        self.remote_version = Some(version);
        self.ack = Some(Bytes::copy_from_slice(packet));
        Ok(())
    }

    /// The frame secrets, once auth and ack have both been sent or received:
    ///
    /// ```text
    /// shared-secret = keccak256(ephemeral-key ‖ keccak256(recipient-nonce ‖ initiator-nonce))
    /// aes-secret    = keccak256(ephemeral-key ‖ shared-secret)
    /// mac-secret    = keccak256(ephemeral-key ‖ aes-secret)
    /// egress-mac    = keccak256.init((mac-secret ^ remote-nonce) ‖ packet we sent)
    /// ingress-mac   = keccak256.init((mac-secret ^ own-nonce) ‖ packet we received)
    /// ```
    pub fn secrets(&self) -> Result<Secrets, EciesError> {
        let (Some(remote_ephemeral), Some(remote_nonce), Some(auth), Some(ack)) =
            (self.remote_ephemeral, self.remote_nonce, &self.auth, &self.ack)
        else {
            return Err(EciesError::OutOfOrder);
        };
        let ephemeral_key = ecdh_x(&remote_ephemeral, &self.ephemeral);
        let (initiator_nonce, recipient_nonce) =
            if self.initiator { (self.nonce, remote_nonce) } else { (remote_nonce, self.nonce) };
        let nonce_hash = keccak256([recipient_nonce.as_slice(), initiator_nonce.as_slice()].concat());
        let shared = keccak256([ephemeral_key.as_slice(), nonce_hash.as_slice()].concat());
        let aes = keccak256([ephemeral_key.as_slice(), shared.as_slice()].concat());
        let mac = keccak256([ephemeral_key.as_slice(), aes.as_slice()].concat());
        let (sent, received) = if self.initiator { (auth, ack) } else { (ack, auth) };
        let mut egress_mac = Mac::new(mac);
        egress_mac.update((mac ^ remote_nonce).as_slice());
        egress_mac.update(sent);
        let mut ingress_mac = Mac::new(mac);
        ingress_mac.update((mac ^ self.nonce).as_slice());
        ingress_mac.update(received);
        Ok(Secrets { aes, mac, egress_mac, ingress_mac })
    }
}

/// The x coordinate of `secret · public`: rlpx.md's `ecdh.agree` (not hashed).
fn ecdh_x(public: &PublicKey, secret: &SecretKey) -> B256 {
    let point = secp256k1::ecdh::shared_secret_point(public, secret);
    B256::from_slice(&point[..32])
}

/// A recoverable signature as 65 bytes `r ‖ s ‖ v`.
fn sign(secret: &SecretKey, digest: &B256) -> FixedBytes<65> {
    let sig = SECP256K1.sign_ecdsa_recoverable(&Message::from_digest(digest.0), secret);
    let (recid, rs) = sig.serialize_compact();
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(&rs);
    out[64] = i32::from(recid) as u8;
    FixedBytes(out)
}

fn recover(sig: &FixedBytes<65>, digest: &B256) -> Result<PublicKey, EciesError> {
    let recid = RecoveryId::try_from(sig[64] as i32).map_err(|_| EciesError::InvalidSignature)?;
    let sig =
        RecoverableSignature::from_compact(&sig[..64], recid).map_err(|_| EciesError::InvalidSignature)?;
    SECP256K1.recover_ecdsa(&Message::from_digest(digest.0), &sig).map_err(|_| EciesError::InvalidSignature)
}

/// The payload of the RLP list at the start of `buf`; anything after the list (EIP-8
/// padding) is left in `buf` and ignored.
fn list_payload<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], EciesError> {
    let header = Header::decode(buf)?;
    if !header.list {
        return Err(EciesError::Malformed("handshake body is not an RLP list"));
    }
    if buf.len() < header.payload_length {
        return Err(alloy_rlp::Error::InputTooShort.into());
    }
    let (payload, rest) = buf.split_at(header.payload_length);
    *buf = rest;
    Ok(payload)
}

fn pad(body: &mut Vec<u8>) {
    let mut rng = rand::thread_rng();
    let n = rng.gen_range(PADDING_MIN..=PADDING_MAX);
    let start = body.len();
    body.resize(start + n, 0);
    rng.fill_bytes(&mut body[start..]);
}

/// NIST SP 800-56 concatenation KDF with SHA-256, 32 bytes of output (one round), no
/// shared info: `sha256(0x00000001 ‖ z)`.
fn kdf(shared: &B256) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(1u32.to_be_bytes());
    h.update(shared);
    h.finalize().into()
}

/// The ECIES keys for a shared point: 16 bytes of AES-128 key and the HMAC key
/// `sha256(kdf[16..])`.
fn ecies_keys(shared: &B256) -> ([u8; 16], [u8; 32]) {
    let k = kdf(shared);
    let mut enc = [0u8; 16];
    enc.copy_from_slice(&k[..16]);
    (enc, Sha256::digest(&k[16..]).into())
}

fn ecies_tag(mac_key: &[u8; 32], iv: &[u8], ciphertext: &[u8], shared_data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as hmac::Mac>::new_from_slice(mac_key).expect("HMAC takes any key length");
    m.update(iv);
    m.update(ciphertext);
    m.update(shared_data);
    m.finalize().into_bytes().into()
}

/// ECIES-encrypts arbitrary bytes to `remote` as an EIP-8 packet, so fuzzers and tests can
/// reach the auth/ack body parsers behind the ECIES tag check. Not needed by users.
#[doc(hidden)]
pub fn encrypt_to(remote: &PublicKey, plain: &[u8]) -> Bytes {
    encrypt(remote, plain)
}

/// ECIES-encrypts `plain` to `remote` as an EIP-8 packet: `size ‖ R ‖ iv ‖ c ‖ tag`, where the
/// 2-byte size prefix is also the tag's shared MAC data.
fn encrypt(remote: &PublicKey, plain: &[u8]) -> Bytes {
    let mut rng = rand::thread_rng();
    let r = SecretKey::new(&mut rng);
    let (enc_key, mac_key) = ecies_keys(&ecdh_x(remote, &r));
    let iv: [u8; 16] = rng.gen();
    let size = (ECIES_OVERHEAD + plain.len()) as u16;
    let mut out = BytesMut::with_capacity(2 + size as usize);
    out.put_u16(size);
    out.put_slice(&r.public_key(SECP256K1).serialize_uncompressed());
    out.put_slice(&iv);
    let start = out.len();
    out.put_slice(plain);
    ctr::Ctr128BE::<Aes128>::new(&enc_key.into(), &iv.into()).apply_keystream(&mut out[start..]);
    let tag = ecies_tag(&mac_key, &iv, &out[start..], &size.to_be_bytes());
    out.put_slice(&tag);
    out.freeze()
}

/// Decrypts a whole auth or ack packet. EIP-8 packets carry a size prefix that is the tag's
/// shared MAC data; pre-EIP-8 packets (starting with 0x04) have neither.
fn decrypt_packet(secret: &SecretKey, packet: &[u8]) -> Result<Vec<u8>, EciesError> {
    if packet.len() < 2 {
        return Err(EciesError::TooShort(packet.len()));
    }
    let (shared_data, envelope) = if packet[0] == 0x04 {
        (&[][..], packet)
    } else {
        let (prefix, rest) = packet.split_at(2);
        let size = u16::from_be_bytes([prefix[0], prefix[1]]) as usize;
        if size != rest.len() {
            return Err(EciesError::TooShort(packet.len()));
        }
        (prefix, rest)
    };
    if envelope.len() < ECIES_OVERHEAD {
        return Err(EciesError::TooShort(packet.len()));
    }
    let r = PublicKey::from_slice(&envelope[..65]).map_err(|_| EciesError::InvalidPublicKey)?;
    let iv = &envelope[65..81];
    let (ciphertext, tag) = envelope[81..].split_at(envelope.len() - 81 - 32);
    let (enc_key, mac_key) = ecies_keys(&ecdh_x(&r, secret));
    let expected = ecies_tag(&mac_key, iv, ciphertext, shared_data);
    // Not secret-dependent timing that matters here (the key is ephemeral per packet), but a
    // constant-time compare costs nothing.
    if expected.iter().zip(tag).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0 {
        return Err(EciesError::BadTag);
    }
    let mut plain = ciphertext.to_vec();
    let iv: [u8; 16] = iv.try_into().expect("16 bytes");
    ctr::Ctr128BE::<Aes128>::new(&enc_key.into(), &iv.into()).apply_keystream(&mut plain);
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors() -> Value {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors/eip-8.json"))
                .expect("shared vectors present");
        serde_json::from_str::<Value>(&text).unwrap()["rlpx_handshake"].clone()
    }

    fn key(v: &Value, name: &str) -> SecretKey {
        SecretKey::from_slice(&hex::decode(v[name].as_str().unwrap()).unwrap()).unwrap()
    }

    fn b256(v: &Value, name: &str) -> B256 {
        v[name].as_str().unwrap().parse().unwrap()
    }

    fn packet(v: &Value, list: &str, name: &str) -> Vec<u8> {
        let entry = v[list].as_array().unwrap().iter().find(|e| e["name"] == name).unwrap();
        hex::decode(entry["packet"].as_str().unwrap()).unwrap()
    }

    fn recipient_b(v: &Value) -> Handshake {
        Handshake::recipient(&key(v, "static_key_b"))
            .with_ephemeral(key(v, "ephemeral_key_b"), b256(v, "nonce_b"))
    }

    fn initiator_a(v: &Value) -> Handshake {
        let b = peer_id_of(&key(v, "static_key_b").public_key(SECP256K1));
        Handshake::initiator(&key(v, "static_key_a"), &b)
            .unwrap()
            .with_ephemeral(key(v, "ephemeral_key_a"), b256(v, "nonce_a"))
    }

    // EIP-8 "RLPx Handshake" test vectors: B reads Auth₁ (pre-EIP-8), Auth₂ and Auth₃.
    #[test]
    fn eip8_auth_vectors() {
        let v = vectors();
        let a = peer_id_of(&key(&v, "static_key_a").public_key(SECP256K1));
        let eph_a = key(&v, "ephemeral_key_a").public_key(SECP256K1);
        for (name, version) in [("auth1", 4), ("auth2", 4), ("auth3", 56)] {
            let p = packet(&v, "auth", name);
            let prefix = [p[0], p[1]];
            assert_eq!(packet_len(PacketKind::Auth, prefix).unwrap(), p.len(), "{name}");
            let mut b = recipient_b(&v);
            assert_eq!(b.read_auth(&p).unwrap(), a, "{name}");
            assert_eq!(b.remote_ephemeral, Some(eph_a), "{name}");
            assert_eq!(b.remote_nonce, Some(b256(&v, "nonce_a")), "{name}");
            assert_eq!(b.remote_version, Some(version), "{name}");
        }
    }

    // EIP-8 vectors: A reads Ack₁ (pre-EIP-8), Ack₂ and Ack₃.
    #[test]
    fn eip8_ack_vectors() {
        let v = vectors();
        let eph_b = key(&v, "ephemeral_key_b").public_key(SECP256K1);
        for (name, version) in [("ack1", 4), ("ack2", 4), ("ack3", 57)] {
            let p = packet(&v, "ack", name);
            assert_eq!(packet_len(PacketKind::Ack, [p[0], p[1]]).unwrap(), p.len(), "{name}");
            let mut a = initiator_a(&v);
            a.create_auth();
            a.read_ack(&p).unwrap();
            assert_eq!(a.remote_ephemeral, Some(eph_b), "{name}");
            assert_eq!(a.remote_nonce, Some(b256(&v, "nonce_b")), "{name}");
            assert_eq!(a.remote_version, Some(version), "{name}");
        }
    }

    // EIP-8: "Node B derives the connection secrets for (Auth₂, Ack₂)", and B's ingress MAC
    // on "foo". Both sides must agree: A's egress MAC is B's ingress MAC.
    #[test]
    fn eip8_derived_secrets() {
        let v = vectors();
        let expected = &v["secrets_for_auth2_ack2"];
        let auth2 = packet(&v, "auth", "auth2");
        let ack2 = packet(&v, "ack", "ack2");
        let mut b = recipient_b(&v);
        b.read_auth(&auth2).unwrap();
        b.ack = Some(Bytes::from(ack2.clone()));
        let s = b.secrets().unwrap();
        assert_eq!(s.aes, expected["aes_secret"].as_str().unwrap().parse::<B256>().unwrap());
        assert_eq!(s.mac, expected["mac_secret"].as_str().unwrap().parse::<B256>().unwrap());
        let mut ingress = s.ingress_mac.clone();
        ingress.update(b"foo");
        let foo: B256 = expected["ingress_mac_foo"]["hash"].as_str().unwrap().parse().unwrap();
        assert_eq!(ingress.digest(), foo);

        let mut a = initiator_a(&v);
        a.auth = Some(Bytes::from(auth2));
        a.read_ack(&ack2).unwrap();
        let sa = a.secrets().unwrap();
        assert_eq!((sa.aes, sa.mac), (s.aes, s.mac));
        let mut egress = sa.egress_mac.clone();
        egress.update(b"foo");
        assert_eq!(egress.digest(), foo);
    }

    #[test]
    fn roundtrip_agrees() {
        let (ka, kb) = (SecretKey::new(&mut rand::thread_rng()), SecretKey::new(&mut rand::thread_rng()));
        let mut a = Handshake::initiator(&ka, &peer_id_of(&kb.public_key(SECP256K1))).unwrap();
        let mut b = Handshake::recipient(&kb);
        let auth = a.create_auth();
        assert_eq!(packet_len(PacketKind::Auth, [auth[0], auth[1]]).unwrap(), auth.len());
        assert_eq!(b.read_auth(&auth).unwrap(), peer_id_of(&ka.public_key(SECP256K1)));
        let ack = b.create_ack().unwrap();
        a.read_ack(&ack).unwrap();
        let (sa, sb) = (a.secrets().unwrap(), b.secrets().unwrap());
        assert_eq!((sa.aes, sa.mac), (sb.aes, sb.mac));
        assert_eq!(sa.egress_mac.digest(), sb.ingress_mac.digest());
        assert_eq!(sa.ingress_mac.digest(), sb.egress_mac.digest());
    }

    // Bad input: each malformation gives its own typed error and never panics.
    #[test]
    fn malformed_auth() {
        let kb = SecretKey::new(&mut rand::thread_rng());
        let mut a = Handshake::initiator(
            &SecretKey::new(&mut rand::thread_rng()),
            &peer_id_of(&kb.public_key(SECP256K1)),
        )
        .unwrap();
        let auth = a.create_auth().to_vec();
        // Encrypted to someone else.
        let mut other = Handshake::recipient(&SecretKey::new(&mut rand::thread_rng()));
        assert_eq!(other.read_auth(&auth), Err(EciesError::BadTag));
        // One flipped ciphertext bit.
        let mut flipped = auth.clone();
        flipped[100] ^= 1;
        assert_eq!(Handshake::recipient(&kb).read_auth(&flipped), Err(EciesError::BadTag));
        // Truncated and garbage.
        assert!(matches!(Handshake::recipient(&kb).read_auth(&auth[..50]), Err(EciesError::TooShort(_))));
        assert_eq!(Handshake::recipient(&kb).read_auth(&[0x04; 307]), Err(EciesError::InvalidPublicKey));
        assert_eq!(packet_len(PacketKind::Auth, [0xff, 0xff]), Err(EciesError::TooLarge(0xffff)));
        assert_eq!(packet_len(PacketKind::Auth, [0x00, 0x10]), Err(EciesError::TooShort(0x10)));
        // Steps out of order.
        assert_eq!(Handshake::recipient(&kb).create_ack().map(|_| ()), Err(EciesError::OutOfOrder));
        assert_eq!(a.read_auth(&auth).map(|_| ()), Err(EciesError::OutOfOrder));
    }

    #[test]
    fn auth_with_valid_envelope_but_junk_body() {
        let kb = SecretKey::new(&mut rand::thread_rng());
        let packet = encrypt(&kb.public_key(SECP256K1), &[0xc0; 120]);
        // An empty list: the signature is missing.
        assert!(matches!(Handshake::recipient(&kb).read_auth(&packet), Err(EciesError::Rlp(_))));
        let packet = encrypt(&kb.public_key(SECP256K1), &[0x80; 120]);
        assert!(matches!(Handshake::recipient(&kb).read_auth(&packet), Err(EciesError::Malformed(_))));
    }
}
