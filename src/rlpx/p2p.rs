//! The p2p base protocol (rlpx.md, "p2p Capability"): Hello, Disconnect, Ping, Pong, and
//! capability negotiation.
//!
//! Message ids 0x00–0x0f belong to p2p; the negotiated capabilities follow from 0x10, in
//! alphabetical order of name, each taking as many ids as it defines. After a Hello of
//! version 5 or more from both sides, every message except Hello is snappy-compressed.

use alloy_primitives::B512;
use alloy_rlp::{Decodable, Encodable, Header};
use bytes::{Buf, Bytes};

use super::{codec::MAX_FRAME_SIZE, RlpxError};
use crate::{record::PeerId, rlpx::Backoff};

/// rlpx.md: the base protocol version we speak (5: snappy).
pub const BASE_PROTOCOL_VERSION: u64 = 5;
/// geth `baseProtocolMaxMsgSize`: p2p messages are tiny; anything over 2 KiB is an attack.
pub const MAX_P2P_MESSAGE_SIZE: usize = 2 * 1024;
/// rlpx.md: a snappy message may not decompress to more than a frame can carry (16 MiB).
pub const MAX_DECOMPRESSED_SIZE: usize = MAX_FRAME_SIZE;
/// The number of message ids reserved for p2p; capabilities start here.
pub(crate) const BASE_PROTOCOL_LENGTH: u64 = 0x10;
/// Capability names are at most 8 ASCII letters in rlpx.md. We accept up to 32 so a peer
/// with an unusual capability we'd ignore anyway still connects, but refuse anything larger.
pub(crate) const MAX_CAPABILITY_NAME_LEN: usize = 32;

const HELLO: u64 = 0x00;
const DISCONNECT: u64 = 0x01;
const PING: u64 = 0x02;
const PONG: u64 = 0x03;

/// A capability as Hello lists it: a name and a version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Capability {
    /// The name, e.g. `eth` or `snap`.
    pub name: String,
    /// The version.
    pub version: u32,
}

impl Capability {
    /// A capability from its name and version.
    pub fn new(name: impl Into<String>, version: u32) -> Self {
        Self { name: name.into(), version }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.name, self.version)
    }
}

/// A capability we offer, with the number of message ids it uses (needed to lay out the
/// message-id space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    /// Name and version.
    pub cap: Capability,
    /// How many message ids it uses, counting from its offset.
    pub messages: u8,
}

impl Protocol {
    /// A capability using `messages` message ids.
    pub fn new(name: impl Into<String>, version: u32, messages: u8) -> Self {
        Self { cap: Capability::new(name, version), messages }
    }

    /// `eth/<version>`: 17 message ids (0x00–0x10) up to eth/68, 18 for eth/69 and 70
    /// (`BlockRangeUpdate`, 0x11), 20 for eth/71 (block access lists, 0x12–0x13) and 22 from
    /// eth/72 (cells, 0x14–0x15): go-ethereum's `protocolLengths`. The length decides where
    /// the next capability's ids start, so it must match the peer's table exactly.
    pub fn eth(version: u32) -> Self {
        let messages = match version {
            ..=68 => 17,
            69 | 70 => 18,
            71 => 20,
            _ => 22,
        };
        Self::new("eth", version, messages)
    }

    /// `snap/1`: 8 message ids.
    pub fn snap() -> Self {
        Self::new("snap", 1, 8)
    }
}

/// A capability both sides speak, with its place in the message-id space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedCapability {
    /// Name and negotiated version (the highest both sides offer).
    pub cap: Capability,
    /// The first absolute message id (0x10 for the first capability).
    pub offset: u64,
    /// How many message ids it uses.
    pub messages: u8,
}

/// Capability negotiation: for each name both sides offer, the highest version both offer;
/// sorted by name, with message ids assigned consecutively from 0x10.
pub fn negotiate(local: &[Protocol], remote: &[Capability]) -> Vec<SharedCapability> {
    let mut best: Vec<&Protocol> = Vec::new();
    for p in local.iter().filter(|p| remote.contains(&p.cap)) {
        match best.iter_mut().find(|b| b.cap.name == p.cap.name) {
            Some(b) if b.cap.version < p.cap.version => *b = p,
            Some(_) => {}
            None => best.push(p),
        }
    }
    best.sort_by(|a, b| a.cap.name.cmp(&b.cap.name));
    let mut offset = BASE_PROTOCOL_LENGTH;
    best.into_iter()
        .map(|p| {
            let shared = SharedCapability { cap: p.cap.clone(), offset, messages: p.messages };
            offset += p.messages as u64;
            shared
        })
        .collect()
}

/// The Hello message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The base protocol version (5 today).
    pub protocol_version: u64,
    /// The client's self-description, e.g. `Geth/v1.14.0-stable/linux-amd64/go1.22.2`.
    pub client_id: String,
    /// The capabilities it offers.
    pub capabilities: Vec<Capability>,
    /// The TCP port it listens on (0 if it doesn't say).
    pub port: u16,
    /// Its node id, which must be the key it authenticated with.
    pub id: PeerId,
}

impl Hello {
    /// Encodes the RLP list (without the message id).
    pub fn encode(&self, out: &mut dyn bytes::BufMut) {
        let caps_len: usize = self.capabilities.iter().map(cap_rlp_len).sum();
        let caps_header = Header { list: true, payload_length: caps_len };
        let payload_length = self.protocol_version.length()
            + self.client_id.as_str().length()
            + caps_header.length()
            + caps_len
            + self.port.length()
            + self.id.length();
        Header { list: true, payload_length }.encode(out);
        self.protocol_version.encode(out);
        self.client_id.as_str().encode(out);
        caps_header.encode(out);
        for cap in &self.capabilities {
            Header { list: true, payload_length: cap.name.as_str().length() + cap.version.length() }
                .encode(out);
            cap.name.as_str().encode(out);
            cap.version.encode(out);
        }
        self.port.encode(out);
        self.id.encode(out);
    }

    /// Decodes the RLP list (without the message id). EIP-8: extra list elements (in Hello
    /// and in each capability) are ignored and a higher version is accepted. A node id that
    /// is not 64 bytes and a capability name over 32 bytes are errors.
    pub fn decode(buf: &[u8]) -> Result<Self, RlpxError> {
        let mut buf = buf;
        let mut list = list_payload(&mut buf)?;
        let protocol_version = u64::decode(&mut list)?;
        let client_id = String::from_utf8_lossy(Header::decode_bytes(&mut list, false)?).into_owned();
        let mut caps = list_payload(&mut list)?;
        let mut capabilities = Vec::new();
        while !caps.is_empty() {
            let mut cap = list_payload(&mut caps)?;
            let name = Header::decode_bytes(&mut cap, false)?;
            if name.len() > MAX_CAPABILITY_NAME_LEN {
                return Err(RlpxError::CapabilityNameTooLong(name.len()));
            }
            let version = u32::decode(&mut cap)?;
            capabilities.push(Capability { name: String::from_utf8_lossy(name).into_owned(), version });
        }
        let port = u16::decode(&mut list)?;
        let id = Header::decode_bytes(&mut list, false)?;
        if id.len() != 64 {
            return Err(RlpxError::BadNodeIdLength(id.len()));
        }
        Ok(Self { protocol_version, client_id, capabilities, port, id: B512::from_slice(id) })
    }
}

fn cap_rlp_len(cap: &Capability) -> usize {
    let payload = cap.name.as_str().length() + cap.version.length();
    Header { list: true, payload_length: payload }.length() + payload
}

/// The payload of the RLP list at the front of `buf`, advancing `buf` past it.
fn list_payload<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], alloy_rlp::Error> {
    let header = Header::decode(buf)?;
    if !header.list {
        return Err(alloy_rlp::Error::UnexpectedString);
    }
    if buf.len() < header.payload_length {
        return Err(alloy_rlp::Error::InputTooShort);
    }
    let (payload, rest) = buf.split_at(header.payload_length);
    *buf = rest;
    Ok(payload)
}

/// rlpx.md "Disconnect": why a peer ends a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// 0x00: disconnect requested.
    DisconnectRequested,
    /// 0x01: TCP subsystem error.
    TcpSubsystemError,
    /// 0x02: breach of protocol, e.g. a malformed message or bad RLP.
    ProtocolBreach,
    /// 0x03: useless peer.
    UselessPeer,
    /// 0x04: too many peers.
    TooManyPeers,
    /// 0x05: already connected.
    AlreadyConnected,
    /// 0x06: incompatible p2p protocol version.
    IncompatibleP2PProtocolVersion,
    /// 0x07: null node identity received.
    NullNodeIdentity,
    /// 0x08: client quitting.
    ClientQuitting,
    /// 0x09: unexpected identity in handshake.
    UnexpectedHandshakeIdentity,
    /// 0x0a: identity is the same as this node (connected to self).
    ConnectedToSelf,
    /// 0x0b: ping timeout.
    PingTimeout,
    /// 0x10: some other reason specific to a subprotocol.
    SubprotocolSpecific,
    /// A code rlpx.md does not define (kept, so the pool can log it).
    Other(u8),
}

impl DisconnectReason {
    /// The wire code.
    pub fn code(self) -> u8 {
        match self {
            Self::DisconnectRequested => 0x00,
            Self::TcpSubsystemError => 0x01,
            Self::ProtocolBreach => 0x02,
            Self::UselessPeer => 0x03,
            Self::TooManyPeers => 0x04,
            Self::AlreadyConnected => 0x05,
            Self::IncompatibleP2PProtocolVersion => 0x06,
            Self::NullNodeIdentity => 0x07,
            Self::ClientQuitting => 0x08,
            Self::UnexpectedHandshakeIdentity => 0x09,
            Self::ConnectedToSelf => 0x0a,
            Self::PingTimeout => 0x0b,
            Self::SubprotocolSpecific => 0x10,
            Self::Other(code) => code,
        }
    }

    /// The reason for a wire code.
    pub fn from_code(code: u8) -> Self {
        match code {
            0x00 => Self::DisconnectRequested,
            0x01 => Self::TcpSubsystemError,
            0x02 => Self::ProtocolBreach,
            0x03 => Self::UselessPeer,
            0x04 => Self::TooManyPeers,
            0x05 => Self::AlreadyConnected,
            0x06 => Self::IncompatibleP2PProtocolVersion,
            0x07 => Self::NullNodeIdentity,
            0x08 => Self::ClientQuitting,
            0x09 => Self::UnexpectedHandshakeIdentity,
            0x0a => Self::ConnectedToSelf,
            0x0b => Self::PingTimeout,
            0x10 => Self::SubprotocolSpecific,
            other => Self::Other(other),
        }
    }

    /// The backoff the pool applies when a peer disconnects us for this reason (reth's
    /// classes: busy or transient → low, useless or incompatible → high).
    pub fn backoff(self) -> Backoff {
        match self {
            Self::TooManyPeers
            | Self::AlreadyConnected
            | Self::PingTimeout
            | Self::DisconnectRequested
            | Self::TcpSubsystemError
            | Self::ClientQuitting => Backoff::Low,
            Self::ProtocolBreach
            | Self::UselessPeer
            | Self::IncompatibleP2PProtocolVersion
            | Self::NullNodeIdentity
            | Self::UnexpectedHandshakeIdentity
            | Self::ConnectedToSelf => Backoff::High,
            Self::SubprotocolSpecific | Self::Other(_) => Backoff::Medium,
        }
    }

    /// Decodes a Disconnect payload in any form real clients send: `[reason]` (geth, reth),
    /// a bare integer (ethereumjs), an empty list or no payload at all (treated as
    /// `DisconnectRequested`), each snappy-compressed or not. `snappy` says which form to try
    /// first; the other is the fallback, since clients disagree about whether Disconnect is
    /// compressed.
    pub fn decode(payload: &[u8], snappy: bool) -> Result<Self, RlpxError> {
        let plain = || Self::decode_plain(payload);
        let compressed = || {
            let len = snap::raw::decompress_len(payload)?;
            if len > MAX_P2P_MESSAGE_SIZE {
                return Err(RlpxError::P2pMessageTooLarge(len));
            }
            Self::decode_plain(&snap::raw::Decoder::new().decompress_vec(payload)?)
        };
        if snappy {
            compressed().or_else(|_| plain())
        } else {
            plain().or_else(|e| compressed().map_err(|_| e))
        }
    }

    fn decode_plain(mut buf: &[u8]) -> Result<Self, RlpxError> {
        if buf.is_empty() {
            return Ok(Self::DisconnectRequested);
        }
        let whole = buf;
        let header = Header::decode(&mut buf)?;
        let code = if header.list {
            if header.payload_length != buf.len() {
                return Err(alloy_rlp::Error::UnexpectedLength.into());
            }
            if buf.is_empty() {
                return Ok(Self::DisconnectRequested);
            }
            u8::decode(&mut buf)?
        } else {
            buf = whole;
            u8::decode(&mut buf)?
        };
        if !buf.is_empty() {
            return Err(alloy_rlp::Error::UnexpectedLength.into());
        }
        Ok(Self::from_code(code))
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            Self::DisconnectRequested => "disconnect requested",
            Self::TcpSubsystemError => "TCP subsystem error",
            Self::ProtocolBreach => "breach of protocol",
            Self::UselessPeer => "useless peer",
            Self::TooManyPeers => "too many peers",
            Self::AlreadyConnected => "already connected",
            Self::IncompatibleP2PProtocolVersion => "incompatible p2p protocol version",
            Self::NullNodeIdentity => "null node identity",
            Self::ClientQuitting => "client quitting",
            Self::UnexpectedHandshakeIdentity => "unexpected identity in handshake",
            Self::ConnectedToSelf => "connected to self",
            Self::PingTimeout => "ping timeout",
            Self::SubprotocolSpecific => "subprotocol-specific reason",
            Self::Other(code) => return write!(f, "unknown reason {code:#04x}"),
        };
        f.write_str(text)
    }
}

/// A p2p base protocol message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum P2PMessage {
    /// 0x00: Hello (never compressed).
    Hello(Hello),
    /// 0x01: Disconnect.
    Disconnect(DisconnectReason),
    /// 0x02: Ping.
    Ping,
    /// 0x03: Pong.
    Pong,
}

impl P2PMessage {
    /// The frame payload: message id then data, compressed if `snappy` (except Hello).
    /// Disconnect is sent in the list form `[reason]`.
    pub fn encode(&self, snappy: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        let data: Vec<u8> = match self {
            Self::Hello(hello) => {
                HELLO.encode(&mut out);
                hello.encode(&mut out);
                return out;
            }
            Self::Disconnect(reason) => {
                DISCONNECT.encode(&mut out);
                let mut list = Vec::with_capacity(2);
                alloy_rlp::encode_list::<u8, u8>(&[reason.code()], &mut list);
                list
            }
            Self::Ping => {
                PING.encode(&mut out);
                vec![0xc0]
            }
            Self::Pong => {
                PONG.encode(&mut out);
                vec![0xc0]
            }
        };
        if snappy {
            out.extend(snap::raw::Encoder::new().compress_vec(&data).expect("tiny input compresses"));
        } else {
            out.extend(data);
        }
        out
    }

    /// Decodes a frame payload whose message id is below 0x10.
    pub fn decode(frame: &[u8], snappy: bool) -> Result<Self, RlpxError> {
        if frame.len() > MAX_P2P_MESSAGE_SIZE {
            return Err(RlpxError::P2pMessageTooLarge(frame.len()));
        }
        let mut buf = frame;
        let id = u64::decode(&mut buf)?;
        Ok(match id {
            HELLO => Self::Hello(Hello::decode(buf)?),
            DISCONNECT => Self::Disconnect(DisconnectReason::decode(buf, snappy)?),
            // Ping and Pong carry an empty list that nobody checks; neither do we.
            PING => Self::Ping,
            PONG => Self::Pong,
            other => return Err(RlpxError::UnknownMessageId(other)),
        })
    }
}

/// A message of a negotiated capability, as the session hands it out and takes it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapMessage {
    /// Index into [`Session::shared_capabilities`](super::Session::shared_capabilities).
    pub cap: usize,
    /// The message id relative to the capability (0x00 is `Status` for eth).
    pub id: u8,
    /// The message data (RLP), already decompressed.
    pub data: Bytes,
}

impl CapMessage {
    /// A message for capability index `cap`.
    pub fn new(cap: usize, id: u8, data: impl Into<Bytes>) -> Self {
        Self { cap, id, data: data.into() }
    }
}

/// Splits a frame payload into its message id and data.
pub(crate) fn split_id(frame: &mut bytes::BytesMut) -> Result<u64, RlpxError> {
    let mut buf = &frame[..];
    let id = u64::decode(&mut buf)?;
    let consumed = frame.len() - buf.len();
    frame.advance(consumed);
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // EIP-8 "devp2p Base Protocol" vector: a Hello with a future version and extra list
    // elements must be accepted.
    #[test]
    fn eip8_hello_vector() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors/eip-8.json"))
                .unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let packet = hex::decode(v["devp2p_hello"]["packet"].as_str().unwrap()).unwrap();
        let hello = Hello::decode(&packet).unwrap();
        // The EIP's prose says "version 22", but the bytes carry 0x37 = 55 as the base
        // protocol version (22 is mork's capability version); either way, a version above
        // ours must be accepted.
        assert_eq!(hello.protocol_version, 55);
        assert_eq!(hello.client_id, "kneth/v0.91/plan9");
        assert_eq!(hello.capabilities, vec![Capability::new("eth", 61), Capability::new("mork", 22)]);
        assert_eq!(hello.port, 9999);
        assert_eq!(
            hello.id.to_string(),
            "0xfda1cff674c90c9a197539fe3dfb53086ace64f83ed7c6eabec741f7f381cc803e52ab2cd55d5569bce4347107a310dfd5f88a010cd2ffd1005ca406f1842877"
        );
        // Also through the message decoder, with the 0x80 message id in front.
        let mut frame = vec![0x80];
        frame.extend(&packet);
        assert_eq!(P2PMessage::decode(&frame, false).unwrap(), P2PMessage::Hello(hello));
    }

    #[test]
    fn negotiation() {
        let local = [
            Protocol::eth(67),
            Protocol::eth(68),
            Protocol::eth(69),
            Protocol::snap(),
            Protocol::new("abc", 1, 3),
        ];
        let remote = [
            Capability::new("eth", 66),
            Capability::new("eth", 67),
            Capability::new("eth", 68),
            Capability::new("snap", 1),
            Capability::new("abc", 1),
            Capability::new("zzz", 9),
        ];
        let shared = negotiate(&local, &remote);
        let got: Vec<_> = shared.iter().map(|s| (s.cap.to_string(), s.offset, s.messages)).collect();
        // Alphabetical: abc at 0x10 (3 ids), eth/68 (the highest both have) at 0x13, snap at 0x24.
        assert_eq!(
            got,
            vec![("abc/1".into(), 0x10, 3), ("eth/68".into(), 0x13, 17), ("snap/1".into(), 0x24, 8)]
        );
        assert!(negotiate(&local, &[Capability::new("les", 4)]).is_empty());
    }

    #[test]
    fn disconnect_every_form() {
        for code in (0u8..=0x0b).chain([0x10, 0x42]) {
            let reason = DisconnectReason::from_code(code);
            assert_eq!(reason.code(), code);
            let bare = alloy_rlp::encode(code);
            let mut list = Vec::new();
            alloy_rlp::encode_list::<u8, u8>(&[code], &mut list);
            for form in [bare, list] {
                let compressed = snap::raw::Encoder::new().compress_vec(&form).unwrap();
                for snappy in [false, true] {
                    assert_eq!(
                        DisconnectReason::decode(&form, snappy).unwrap(),
                        reason,
                        "{form:x?} {snappy}"
                    );
                    assert_eq!(
                        DisconnectReason::decode(&compressed, snappy).unwrap(),
                        reason,
                        "{compressed:x?}"
                    );
                }
            }
            // Our own encoding, both ways.
            for snappy in [false, true] {
                let frame = P2PMessage::Disconnect(reason).encode(snappy);
                assert_eq!(P2PMessage::decode(&frame, snappy).unwrap(), P2PMessage::Disconnect(reason));
            }
        }
        assert_eq!(DisconnectReason::decode(&[], true).unwrap(), DisconnectReason::DisconnectRequested);
        assert_eq!(DisconnectReason::decode(&[0xc0], false).unwrap(), DisconnectReason::DisconnectRequested);
        assert!(DisconnectReason::decode(&[0xc2, 0x01, 0x02], false).is_err());
        assert!(DisconnectReason::decode(&[0x82, 0x01, 0x02], false).is_err());
    }

    fn hello_with(name_len: usize, id_len: usize) -> Vec<u8> {
        // Built by hand to produce what our encoder refuses to.
        let mut fields = Vec::new();
        5u64.encode(&mut fields);
        "x".encode(&mut fields);
        let name = vec![b'a'; name_len];
        let mut cap = Vec::new();
        Header { list: true, payload_length: name.as_slice().length() + 1 }.encode(&mut cap);
        name.as_slice().encode(&mut cap);
        1u32.encode(&mut cap);
        Header { list: true, payload_length: cap.len() }.encode(&mut fields);
        fields.extend(cap);
        0u16.encode(&mut fields);
        vec![7u8; id_len].as_slice().encode(&mut fields);
        let mut out = Vec::new();
        Header { list: true, payload_length: fields.len() }.encode(&mut out);
        out.extend(fields);
        out
    }

    #[test]
    fn malformed_hello() {
        assert!(Hello::decode(&hello_with(3, 64)).is_ok());
        let e = Hello::decode(&hello_with(2048, 64)).unwrap_err();
        assert!(matches!(e, RlpxError::CapabilityNameTooLong(2048)));
        assert!(e.should_ban());
        for len in [0, 33, 63, 65] {
            assert!(
                matches!(Hello::decode(&hello_with(3, len)), Err(RlpxError::BadNodeIdLength(l)) if l == len)
            );
        }
        assert!(matches!(Hello::decode(&[0xc0]), Err(RlpxError::Rlp(_))));
        assert!(matches!(Hello::decode(&[]), Err(RlpxError::Rlp(_))));
        // As a whole frame, a 2 KB name exceeds the p2p message limit first.
        let mut frame = vec![0x80];
        frame.extend(hello_with(2048, 64));
        assert!(matches!(P2PMessage::decode(&frame, false), Err(RlpxError::P2pMessageTooLarge(_))));
        assert!(matches!(P2PMessage::decode(&[0x04, 0xc0], false), Err(RlpxError::UnknownMessageId(4))));
    }

    proptest! {
        #[test]
        fn hello_roundtrip(version in any::<u64>(), client in ".{0,40}", port in any::<u16>(),
                           id in any::<[u8; 64]>(),
                           caps in proptest::collection::vec(("[a-z]{1,8}", any::<u32>()), 0..6)) {
            let hello = Hello {
                protocol_version: version,
                client_id: client,
                capabilities: caps.into_iter().map(|(n, v)| Capability::new(n, v)).collect(),
                port,
                id: B512::from(id),
            };
            let frame = P2PMessage::Hello(hello.clone()).encode(true);
            prop_assert_eq!(P2PMessage::decode(&frame, true).unwrap(), P2PMessage::Hello(hello));
        }
    }
}
