//! The discv4 packet codec (discv4.md, EIP-8, EIP-868): pure functions from messages to
//! signed datagrams and back. No state, no I/O.
//!
//! A packet is `hash || signature || packet-type || packet-data`:
//! - `hash` = keccak256(signature || packet-type || packet-data), 32 bytes;
//! - `signature` = a recoverable secp256k1 signature of keccak256(packet-type || packet-data),
//!   65 bytes (`r || s || v`, v in 0..=1);
//! - `packet-data` is an RLP list. EIP-8: a decoder ignores extra list elements and any
//!   bytes after the list, and accepts any Ping `version`.
//!
//! Decoding checks the hash first (cheap, and it tells a discv5 datagram sharing the port
//! from a discv4 one), then recovers the sender's key, then parses the body without ever
//! sizing an allocation by a length the remote claims: every list is walked item by item
//! inside a datagram of at most 1280 bytes.

#![cfg_attr(not(any(test, feature = "test-utils")), allow(unreachable_pub, dead_code))]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use alloy_primitives::{keccak256, B256};
use alloy_rlp::{Buf, Decodable, Encodable, Header};
use secp256k1::{
    ecdsa::{RecoverableSignature, RecoveryId},
    Message as SecpMessage, SecretKey, SECP256K1,
};

use super::error::PacketError;
use crate::record::{peer_id_of, Enr, PeerId};

/// discv4.md: "The maximum size of any packet is 1280 bytes." Larger datagrams are dropped,
/// and Neighbours replies are split so that no packet we send exceeds it.
pub const MAX_PACKET_SIZE: usize = 1280;

const HASH_LEN: usize = 32;
const SIGNATURE_LEN: usize = 65;
/// `hash || signature`: everything before the type byte.
const HEADER_LEN: usize = HASH_LEN + SIGNATURE_LEN;
/// The smallest possible packet: a header and a type byte (the body may then fail to parse).
const MIN_PACKET_SIZE: usize = HEADER_LEN + 1;

/// The protocol version we put in Ping (discv4.md). Any value is accepted on receipt (EIP-8).
pub const PING_VERSION: u8 = 4;

/// A node's UDP and TCP endpoint as discv4 carries it: `[ip, udp-port, tcp-port]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// IPv4 (4 bytes on the wire) or IPv6 (16 bytes).
    pub ip: IpAddr,
    /// Discovery port.
    pub udp_port: u16,
    /// RLPx port (0 if the node does not accept connections).
    pub tcp_port: u16,
}

impl Endpoint {
    /// The UDP socket address.
    pub fn udp_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.ip, self.udp_port)
    }
}

/// One entry of a Neighbours packet: `[ip, udp-port, tcp-port, node-id]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeRecord {
    /// Where the node can be reached.
    pub endpoint: Endpoint,
    /// Its 64-byte public key.
    pub id: PeerId,
}

/// Ping (type 0x01): `[version, from, to, expiration, enr-seq?]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ping {
    /// The sender's endpoint as it believes it to be. Never trusted: replies go to the
    /// datagram's real source.
    pub from: Endpoint,
    /// The recipient's endpoint as the sender sees it.
    pub to: Endpoint,
    /// Absolute UNIX time after which the packet is void.
    pub expiration: u64,
    /// EIP-868: the sender's current ENR sequence number.
    pub enr_seq: Option<u64>,
}

/// Pong (type 0x02): `[to, ping-hash, expiration, enr-seq?]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pong {
    /// The Ping's source endpoint as the Pong's sender saw it: our external address.
    pub to: Endpoint,
    /// The hash of the Ping this answers.
    pub ping_hash: B256,
    /// Absolute UNIX time after which the packet is void.
    pub expiration: u64,
    /// EIP-868: the sender's current ENR sequence number.
    pub enr_seq: Option<u64>,
}

/// FindNode (type 0x03): `[target, expiration]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FindNode {
    /// A public key whose keccak256 is the lookup target.
    pub target: PeerId,
    /// Absolute UNIX time after which the packet is void.
    pub expiration: u64,
}

/// Neighbours (type 0x04): `[[node, ...], expiration]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbours {
    /// The nodes closest to the requested target that the sender knows.
    pub nodes: Vec<NodeRecord>,
    /// Absolute UNIX time after which the packet is void.
    pub expiration: u64,
}

/// ENRRequest (type 0x05, EIP-868): `[expiration]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnrRequest {
    /// Absolute UNIX time after which the packet is void.
    pub expiration: u64,
}

/// ENRResponse (type 0x06, EIP-868): `[request-hash, ENR]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrResponse {
    /// The hash of the ENRRequest this answers.
    pub request_hash: B256,
    /// The sender's record (its signature was checked when decoding).
    pub enr: Enr,
}

/// A discv4 message, named as in discv4.md.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// 0x01
    Ping(Ping),
    /// 0x02
    Pong(Pong),
    /// 0x03
    FindNode(FindNode),
    /// 0x04
    Neighbours(Neighbours),
    /// 0x05
    EnrRequest(EnrRequest),
    /// 0x06
    EnrResponse(EnrResponse),
}

impl Message {
    /// The packet-type byte.
    pub fn packet_type(&self) -> u8 {
        match self {
            Self::Ping(_) => 0x01,
            Self::Pong(_) => 0x02,
            Self::FindNode(_) => 0x03,
            Self::Neighbours(_) => 0x04,
            Self::EnrRequest(_) => 0x05,
            Self::EnrResponse(_) => 0x06,
        }
    }

    /// The spec's name of the message, for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ping(_) => "ping",
            Self::Pong(_) => "pong",
            Self::FindNode(_) => "findnode",
            Self::Neighbours(_) => "neighbours",
            Self::EnrRequest(_) => "enr-request",
            Self::EnrResponse(_) => "enr-response",
        }
    }

    /// The absolute expiration time, for messages that carry one.
    pub fn expiration(&self) -> Option<u64> {
        match self {
            Self::Ping(p) => Some(p.expiration),
            Self::Pong(p) => Some(p.expiration),
            Self::FindNode(p) => Some(p.expiration),
            Self::Neighbours(p) => Some(p.expiration),
            Self::EnrRequest(p) => Some(p.expiration),
            // EIP-868 gives ENRResponse no expiration; it is matched to a request instead.
            Self::EnrResponse(_) => None,
        }
    }

    fn payload_length(&self) -> usize {
        match self {
            Self::Ping(p) => {
                PING_VERSION.length()
                    + p.from.length()
                    + p.to.length()
                    + p.expiration.length()
                    + p.enr_seq.map_or(0, |s| s.length())
            }
            Self::Pong(p) => {
                p.to.length()
                    + p.ping_hash.length()
                    + p.expiration.length()
                    + p.enr_seq.map_or(0, |s| s.length())
            }
            Self::FindNode(p) => p.target.length() + p.expiration.length(),
            Self::Neighbours(p) => list_length(&p.nodes) + p.expiration.length(),
            Self::EnrRequest(p) => p.expiration.length(),
            Self::EnrResponse(p) => p.request_hash.length() + p.enr.length(),
        }
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        Header { list: true, payload_length: self.payload_length() }.encode(out);
        match self {
            Self::Ping(p) => {
                PING_VERSION.encode(out);
                p.from.encode(out);
                p.to.encode(out);
                p.expiration.encode(out);
                if let Some(seq) = p.enr_seq {
                    seq.encode(out);
                }
            }
            Self::Pong(p) => {
                p.to.encode(out);
                p.ping_hash.encode(out);
                p.expiration.encode(out);
                if let Some(seq) = p.enr_seq {
                    seq.encode(out);
                }
            }
            Self::FindNode(p) => {
                p.target.encode(out);
                p.expiration.encode(out);
            }
            Self::Neighbours(p) => {
                Header { list: true, payload_length: p.nodes.iter().map(Encodable::length).sum() }
                    .encode(out);
                for node in &p.nodes {
                    node.encode(out);
                }
                p.expiration.encode(out);
            }
            Self::EnrRequest(p) => p.expiration.encode(out),
            Self::EnrResponse(p) => {
                p.request_hash.encode(out);
                p.enr.encode(out);
            }
        }
    }

    /// The size of this message as a packet.
    pub fn packet_len(&self) -> usize {
        let payload = self.payload_length();
        HEADER_LEN + 1 + alloy_rlp::length_of_length(payload) + payload
    }
}

fn list_length<T: Encodable>(items: &[T]) -> usize {
    let payload: usize = items.iter().map(Encodable::length).sum();
    alloy_rlp::length_of_length(payload) + payload
}

fn ip_length(ip: &IpAddr) -> usize {
    match ip {
        IpAddr::V4(_) => 5,
        IpAddr::V6(_) => 17,
    }
}

fn encode_ip(ip: &IpAddr, out: &mut dyn alloy_rlp::BufMut) {
    match ip {
        IpAddr::V4(v4) => v4.octets().as_slice().encode(out),
        IpAddr::V6(v6) => v6.octets().as_slice().encode(out),
    }
}

impl Endpoint {
    fn fields_length(&self) -> usize {
        ip_length(&self.ip) + self.udp_port.length() + self.tcp_port.length()
    }
}

impl Encodable for Endpoint {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        Header { list: true, payload_length: self.fields_length() }.encode(out);
        encode_ip(&self.ip, out);
        self.udp_port.encode(out);
        self.tcp_port.encode(out);
    }

    fn length(&self) -> usize {
        let payload = self.fields_length();
        alloy_rlp::length_of_length(payload) + payload
    }
}

impl Encodable for NodeRecord {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        Header { list: true, payload_length: self.endpoint.fields_length() + self.id.length() }.encode(out);
        encode_ip(&self.endpoint.ip, out);
        self.endpoint.udp_port.encode(out);
        self.endpoint.tcp_port.encode(out);
        self.id.encode(out);
    }

    fn length(&self) -> usize {
        let payload = self.endpoint.fields_length() + self.id.length();
        alloy_rlp::length_of_length(payload) + payload
    }
}

/// Signs and frames a message. Returns the datagram and its hash (the first 32 bytes, which a
/// Pong or ENRResponse will quote back).
pub fn encode(message: &Message, key: &SecretKey) -> (Vec<u8>, B256) {
    let mut out = Vec::with_capacity(message.packet_len());
    out.resize(HEADER_LEN, 0);
    out.push(message.packet_type());
    message.encode_body(&mut out);
    let signed = keccak256(&out[HEADER_LEN..]);
    let signature = SECP256K1.sign_ecdsa_recoverable(&SecpMessage::from_digest(signed.0), key);
    let (recovery_id, compact) = signature.serialize_compact();
    out[HASH_LEN..HASH_LEN + 64].copy_from_slice(&compact);
    out[HASH_LEN + 64] = i32::from(recovery_id) as u8;
    let hash = keccak256(&out[HASH_LEN..]);
    out[..HASH_LEN].copy_from_slice(hash.as_slice());
    (out, hash)
}

/// Encodes `nodes` as as few Neighbours packets as fit within [`MAX_PACKET_SIZE`] each.
/// An empty list gives one packet with no nodes (an honest "I know nobody").
pub fn encode_neighbours(nodes: &[NodeRecord], expiration: u64, key: &SecretKey) -> Vec<Vec<u8>> {
    split_neighbours(nodes, expiration).iter().map(|message| encode(message, key).0).collect()
}

/// The Neighbours messages of [`encode_neighbours`], unsigned: as few as fit within
/// [`MAX_PACKET_SIZE`] each once signed.
pub fn split_neighbours(nodes: &[NodeRecord], expiration: u64) -> Vec<Message> {
    // Fixed part: header, type, outer list header (≤ 3 bytes for payloads < 64 KiB), node list
    // header (≤ 3 bytes) and the expiration.
    let fixed = HEADER_LEN + 1 + 3 + 3 + expiration.length();
    let mut packets = Vec::new();
    let mut start = 0;
    loop {
        let mut size = fixed;
        let mut end = start;
        while end < nodes.len() && size + nodes[end].length() <= MAX_PACKET_SIZE {
            size += nodes[end].length();
            end += 1;
        }
        packets.push(Message::Neighbours(Neighbours { nodes: nodes[start..end].to_vec(), expiration }));
        start = end;
        if start >= nodes.len() {
            return packets;
        }
    }
}

/// Frames an arbitrary body with a valid hash and signature: tests use it to send packets
/// no honest encoder would produce.
#[cfg(test)]
pub(crate) fn sign_raw(packet_type: u8, body: &[u8], key: &SecretKey) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    out.push(packet_type);
    out.extend_from_slice(body);
    let signed = keccak256(&out[HEADER_LEN..]);
    let (rid, compact) =
        SECP256K1.sign_ecdsa_recoverable(&SecpMessage::from_digest(signed.0), key).serialize_compact();
    out[HASH_LEN..HASH_LEN + 64].copy_from_slice(&compact);
    out[HASH_LEN + 64] = i32::from(rid) as u8;
    let hash = keccak256(&out[HASH_LEN..]);
    out[..HASH_LEN].copy_from_slice(hash.as_slice());
    out
}

/// A decoded, signature-checked packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The message.
    pub message: Message,
    /// The sender's public key, recovered from the signature.
    pub peer_id: PeerId,
    /// The packet hash (its first 32 bytes), which a reply quotes.
    pub hash: B256,
}

/// Checks the hash and signature of a datagram and decodes its message.
///
/// Unknown packet types give [`PacketError::UnknownType`] (discv4.md says to ignore them);
/// expiration is *not* checked here, since that needs the clock: see [`is_expired`].
pub fn decode(packet: &[u8]) -> Result<Packet, PacketError> {
    let hash = check_hash(packet)?;
    decode_checked(packet, hash)
}

/// The cheap first step of [`decode`]: size limits and the leading keccak256. A datagram
/// that fails it is not discv4 at all (with a shared port, it is discv5's).
pub fn check_hash(packet: &[u8]) -> Result<B256, PacketError> {
    if packet.len() < MIN_PACKET_SIZE {
        return Err(PacketError::TooShort(packet.len()));
    }
    if packet.len() > MAX_PACKET_SIZE {
        return Err(PacketError::TooLarge(packet.len()));
    }
    let hash = keccak256(&packet[HASH_LEN..]);
    if hash.as_slice() != &packet[..HASH_LEN] {
        return Err(PacketError::HashMismatch);
    }
    Ok(hash)
}

/// The packet-type byte of a datagram that passed [`check_hash`].
pub fn packet_type(packet: &[u8]) -> Option<u8> {
    packet.get(HEADER_LEN).copied()
}

/// The rest of [`decode`] for a datagram whose hash [`check_hash`] returned.
pub fn decode_checked(packet: &[u8], hash: B256) -> Result<Packet, PacketError> {
    // Parse the body before the costly recovery: a malformed packet costs us a keccak only.
    let packet_type = packet[HEADER_LEN];
    let message = decode_message(packet_type, &packet[HEADER_LEN + 1..])?;
    let signed = keccak256(&packet[HEADER_LEN..]);
    let recovery_id =
        RecoveryId::try_from(i32::from(packet[HEADER_LEN - 1])).map_err(|_| PacketError::BadSignature)?;
    let signature = RecoverableSignature::from_compact(&packet[HASH_LEN..HEADER_LEN - 1], recovery_id)
        .map_err(|_| PacketError::BadSignature)?;
    let public = SECP256K1
        .recover_ecdsa(&SecpMessage::from_digest(signed.0), &signature)
        .map_err(|_| PacketError::BadSignature)?;
    Ok(Packet { message, peer_id: peer_id_of(&public), hash })
}

/// discv4.md: a packet whose expiration is in the past is ignored. As geth does, the value is
/// read as a signed 64-bit UNIX time, so one with the top bit set (huge as `u64`, negative as
/// `i64`) is expired too rather than valid forever.
pub fn is_expired(expiration: u64, now_unix_secs: u64) -> bool {
    i64::try_from(expiration).map_or(true, |e| e <= now_unix_secs as i64)
}

/// Decodes the RLP body of a packet of the given type.
pub fn decode_message(packet_type: u8, data: &[u8]) -> Result<Message, PacketError> {
    let mut list = open_list(&mut &data[..])?;
    let message = match packet_type {
        0x01 => {
            // `version`: any value is accepted (EIP-8); it need not even be an integer we know.
            skip_item(&mut list)?;
            let from = decode_endpoint(&mut list)?;
            let to = decode_endpoint(&mut list)?;
            let expiration = u64::decode(&mut list)?;
            let enr_seq = decode_optional_u64(&mut list)?;
            Message::Ping(Ping { from, to, expiration, enr_seq })
        }
        0x02 => {
            let to = decode_endpoint(&mut list)?;
            let ping_hash = decode_hash(&mut list)?;
            let expiration = u64::decode(&mut list)?;
            let enr_seq = decode_optional_u64(&mut list)?;
            Message::Pong(Pong { to, ping_hash, expiration, enr_seq })
        }
        0x03 => {
            let target = decode_peer_id(&mut list)?;
            let expiration = u64::decode(&mut list)?;
            Message::FindNode(FindNode { target, expiration })
        }
        0x04 => {
            let mut node_list = open_list(&mut list)?;
            // Grows one decoded record at a time: bounded by the datagram, not by a claim.
            let mut nodes = Vec::new();
            while !node_list.is_empty() {
                let mut record = open_list(&mut node_list)?;
                let ip = decode_ip(&mut record)?;
                let udp_port = u16::decode(&mut record)?;
                let tcp_port = u16::decode(&mut record)?;
                let id = decode_peer_id(&mut record)?;
                nodes.push(NodeRecord { endpoint: Endpoint { ip, udp_port, tcp_port }, id });
            }
            let expiration = u64::decode(&mut list)?;
            Message::Neighbours(Neighbours { nodes, expiration })
        }
        0x05 => Message::EnrRequest(EnrRequest { expiration: u64::decode(&mut list)? }),
        0x06 => {
            let request_hash = decode_hash(&mut list)?;
            let enr = Enr::decode(&mut list).map_err(|e| PacketError::BadEnr(e.to_string()))?;
            Message::EnrResponse(EnrResponse { request_hash, enr })
        }
        other => return Err(PacketError::UnknownType(other)),
    };
    // Whatever is left in `list` are EIP-8 extra elements: ignored.
    Ok(message)
}

/// Reads a list header and returns its payload, advancing `buf` past the whole list.
fn open_list<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], PacketError> {
    let header = Header::decode(buf)?;
    if !header.list {
        return Err(alloy_rlp::Error::UnexpectedString.into());
    }
    // Header::decode has checked that the payload fits in `buf`.
    let (payload, rest) = buf.split_at(header.payload_length);
    *buf = rest;
    Ok(payload)
}

fn skip_item(buf: &mut &[u8]) -> Result<(), PacketError> {
    let header = Header::decode(buf)?;
    buf.advance(header.payload_length);
    Ok(())
}

/// EIP-868's trailing `enr-seq`. EIP-8 came first: its Ping and Pong vectors put arbitrary
/// extra elements (lists, even) where `enr-seq` now sits, and they must still decode. So an
/// element that is not a 64-bit integer is taken as EIP-8 extra data, not as an error.
fn decode_optional_u64(buf: &mut &[u8]) -> Result<Option<u64>, PacketError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut probe = *buf;
    Ok(u64::decode(&mut probe).ok())
}

fn decode_hash(buf: &mut &[u8]) -> Result<B256, PacketError> {
    let bytes = Header::decode_bytes(buf, false)?;
    if bytes.len() != 32 {
        return Err(alloy_rlp::Error::UnexpectedLength.into());
    }
    Ok(B256::from_slice(bytes))
}

fn decode_peer_id(buf: &mut &[u8]) -> Result<PeerId, PacketError> {
    let bytes = Header::decode_bytes(buf, false)?;
    if bytes.len() != 64 {
        return Err(PacketError::BadNodeIdLength(bytes.len()));
    }
    Ok(PeerId::from_slice(bytes))
}

fn decode_ip(buf: &mut &[u8]) -> Result<IpAddr, PacketError> {
    let bytes = Header::decode_bytes(buf, false)?;
    match bytes.len() {
        4 => Ok(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).expect("length checked")))),
        16 => Ok(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).expect("length checked")))),
        // Some clients leave their own `from` IP empty; it is never trusted anyway.
        0 => Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        n => Err(PacketError::BadIpLength(n)),
    }
}

fn decode_endpoint(buf: &mut &[u8]) -> Result<Endpoint, PacketError> {
    let mut fields = open_list(buf)?;
    let ip = decode_ip(&mut fields)?;
    let udp_port = u16::decode(&mut fields)?;
    let tcp_port = u16::decode(&mut fields)?;
    Ok(Endpoint { ip, udp_port, tcp_port })
}

#[cfg(test)]
mod tests;
