//! Ethereum Node Records (EIP-778): parsing remote records with typed errors, and the local
//! record that every discovery task advertises, with its `eth` entry (EIP-868). Reading a
//! remote record's `eth` entry into an [`EthEntry`](crate::EthEntry) is
//! [`eth_entry_of`](super::eth_entry_of)'s job, next to the `Candidate` it feeds.
//!
//! The local record is a [`LocalEnr`]: a cheap `Clone` handle around one record behind a
//! short synchronous lock (the one piece of shared state STYLE allows). discv4 reads it to
//! answer ENRRequests; discv5 is handed the same lock when it starts, so address updates
//! from discv5's IP voting and fork updates from the node land in one record with one
//! sequence number.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Arc, Mutex, PoisonError},
};

use alloy_rlp::Decodable;
use enr::{CombinedPublicKey, EnrPublicKey};

use super::{decode_eth_entry, encode_eth_entry, peer_id_of, EnrError, ForkId, NodeId, NodeKey, PeerId};
use crate::record::Enr;

/// EIP-778: "The maximum encoded size of a node record is 300 bytes."
pub const MAX_ENR_SIZE: usize = 300;

/// EIP-778: the textual form of a record is `enr:` followed by base64url (no padding).
const ENR_PREFIX: &str = "enr:";

/// EIP-868/EIP-2124: the ENR key under which execution-layer nodes advertise their fork id.
pub const ETH_ENR_KEY: &str = "eth";

/// Parses a record from its text form `enr:<base64url>` (EIP-778), verifying its signature.
///
/// Each malformation has its own [`EnrError`] variant.
///
/// ```
/// let text = "enr:-IS4QHCYrYZbAKWCBRlAy5zzaDZXJBGkcnh4MHcBFZntXNFrdvJjX04jRzjzCBOonrkTfj499SZuOh8R33Ls8RRcy5wBgmlkgnY0gmlwhH8AAAGJc2VjcDI1NmsxoQPKY0yuDUmstAHYpMa2_oxVtw0RW_QAdpzBQA8yWM0xOIN1ZHCCdl8";
/// let enr = ethp2p::record::parse_enr(text)?;
/// assert_eq!(enr.seq(), 1);
/// assert_eq!(enr.udp4(), Some(30303));
/// assert!(matches!(ethp2p::record::parse_enr("enr:!!"), Err(ethp2p::EnrError::BadBase64)));
/// # Ok::<(), ethp2p::EnrError>(())
/// ```
pub fn parse_enr(text: &str) -> Result<Enr, EnrError> {
    use base64::Engine as _;
    let body = text.trim().strip_prefix(ENR_PREFIX).ok_or(EnrError::MissingPrefix)?;
    // base64 expands 3 bytes to 4 characters: reject an oversized text before decoding it,
    // so a hostile input never makes us allocate more than a few hundred bytes.
    if body.len() > MAX_ENR_SIZE.div_ceil(3) * 4 {
        return Err(EnrError::TooBig(body.len() / 4 * 3));
    }
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).map_err(|_| EnrError::BadBase64)?;
    decode_enr(&bytes)
}

/// Decodes a record from its RLP bytes, verifying its signature. Trailing bytes are an error.
pub fn decode_enr(bytes: &[u8]) -> Result<Enr, EnrError> {
    if bytes.len() > MAX_ENR_SIZE {
        return Err(EnrError::TooBig(bytes.len()));
    }
    let mut buf = bytes;
    let enr = Enr::decode(&mut buf).map_err(classify_decode_error)?;
    if !buf.is_empty() {
        return Err(EnrError::TrailingBytes(buf.len()));
    }
    Ok(enr)
}

/// The `enr` crate reports its semantic checks as `alloy_rlp::Error::Custom` strings; turn
/// each into its own variant. The strings are pinned by the malformed-record tests below, so
/// an `enr` upgrade that rewords them fails a test instead of silently degrading to `BadRlp`.
fn classify_decode_error(e: alloy_rlp::Error) -> EnrError {
    match e {
        alloy_rlp::Error::Custom("enr exceeds max size") => EnrError::TooBig(MAX_ENR_SIZE + 1),
        alloy_rlp::Error::Custom("Seq is missing") => EnrError::MissingSeq,
        alloy_rlp::Error::Custom("Unsorted keys") => EnrError::UnsortedKeys,
        alloy_rlp::Error::Custom("Unsupported identity scheme") => EnrError::UnsupportedScheme,
        alloy_rlp::Error::Custom("Unknown signature")
        | alloy_rlp::Error::Custom("Invalid Secp256k1 Signature")
        | alloy_rlp::Error::Custom("Invalid ed25519 Signature") => EnrError::BadPublicKey,
        alloy_rlp::Error::Custom("Invalid Signature") => EnrError::BadSignature,
        other => EnrError::BadRlp(other),
    }
}

/// The 64-byte public key of a record, if it is a secp256k1 record (every execution-layer
/// node's is; ed25519 records exist only on other networks).
pub fn peer_id_of_enr(enr: &Enr) -> Result<PeerId, EnrError> {
    match enr.public_key() {
        CombinedPublicKey::Secp256k1(key) => {
            let compressed = EnrPublicKey::encode(&key);
            let public = secp256k1::PublicKey::from_slice(&compressed).map_err(|_| EnrError::BadPublicKey)?;
            Ok(peer_id_of(&public))
        }
        CombinedPublicKey::Ed25519(_) => Err(EnrError::NotSecp256k1),
    }
}

/// The entries of the local record that ethp2p manages. `None` means "absent from the record".
///
/// Used to build a [`LocalEnr`] and to change it with [`LocalEnr::update`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnrContent {
    /// `ip`: the advertised IPv4 address.
    pub ip4: Option<Ipv4Addr>,
    /// `tcp`: the RLPx port on IPv4.
    pub tcp4: Option<u16>,
    /// `udp`: the discovery port on IPv4.
    pub udp4: Option<u16>,
    /// `ip6`: the advertised IPv6 address.
    pub ip6: Option<Ipv6Addr>,
    /// `tcp6`: the RLPx port on IPv6.
    pub tcp6: Option<u16>,
    /// `udp6`: the discovery port on IPv6.
    pub udp6: Option<u16>,
    /// `eth`: the EIP-2124 fork id of the chain this node follows.
    pub fork_id: Option<ForkId>,
}

impl EnrContent {
    /// Reads the managed entries of a record.
    pub fn of(enr: &Enr) -> Self {
        Self {
            ip4: enr.ip4(),
            tcp4: enr.tcp4(),
            udp4: enr.udp4(),
            ip6: enr.ip6(),
            tcp6: enr.tcp6(),
            udp6: enr.udp6(),
            // A malformed entry in our own record cannot happen; in a foreign one it reads as
            // absent here (`eth_entry_of` tells the two apart).
            fork_id: enr.get_raw_rlp(ETH_ENR_KEY).and_then(|raw| decode_eth_entry(raw).ok()),
        }
    }

    /// Sets the address and ports of `ip`'s family: the UDP port, and the TCP port if given
    /// (`None` removes it: a discovery-only node such as a bootnode has no RLPx port).
    pub fn set_endpoint(&mut self, ip: IpAddr, udp: u16, tcp: Option<u16>) {
        match ip {
            IpAddr::V4(ip) => (self.ip4, self.udp4, self.tcp4) = (Some(ip), Some(udp), tcp),
            IpAddr::V6(ip) => (self.ip6, self.udp6, self.tcp6) = (Some(ip), Some(udp), tcp),
        }
    }

    /// Builds a fresh record with these entries and sequence number.
    fn build(&self, key: &NodeKey, seq: u64) -> Result<Enr, EnrError> {
        let mut builder = Enr::builder();
        builder.seq(seq);
        if let Some(ip) = self.ip4 {
            builder.ip4(ip);
        }
        if let Some(port) = self.tcp4 {
            builder.tcp4(port);
        }
        if let Some(port) = self.udp4 {
            builder.udp4(port);
        }
        if let Some(ip) = self.ip6 {
            builder.ip6(ip);
        }
        if let Some(port) = self.tcp6 {
            builder.tcp6(port);
        }
        if let Some(port) = self.udp6 {
            builder.udp6(port);
        }
        if let Some(fork_id) = &self.fork_id {
            builder.add_value_rlp(ETH_ENR_KEY, encode_eth_entry(*fork_id).into());
        }
        builder.build(&key.to_combined_key()).map_err(sign_error)
    }

    /// Rewrites `enr` so that its managed entries equal `self`, keeping every other entry
    /// (another protocol may have added its own) and bumping the sequence number by exactly
    /// one, however many entries changed.
    fn apply(&self, enr: &mut Enr, key: &NodeKey) -> Result<(), EnrError> {
        let combined = key.to_combined_key();
        let key = &combined;
        let old = Self::of(enr);
        let seq =
            enr.seq().checked_add(1).ok_or_else(|| EnrError::Sign("sequence number exhausted".into()))?;
        // Work on a copy: on any error the live record stays as it was.
        let mut next = enr.clone();
        let port = |next: &mut Enr, name: &str, value: Option<u16>| match value {
            Some(port) => next.insert(name, &port, key).map(drop),
            None => next.remove_key(name, key),
        };
        if old.ip4 != self.ip4 {
            match self.ip4 {
                Some(ip) => next.set_ip(ip.into(), key).map(drop),
                None => next.remove_key("ip", key),
            }
            .map_err(sign_error)?;
        }
        if old.ip6 != self.ip6 {
            match self.ip6 {
                Some(ip) => next.set_ip(ip.into(), key).map(drop),
                None => next.remove_key("ip6", key),
            }
            .map_err(sign_error)?;
        }
        for (name, old, new) in [
            ("tcp", old.tcp4, self.tcp4),
            ("udp", old.udp4, self.udp4),
            ("tcp6", old.tcp6, self.tcp6),
            ("udp6", old.udp6, self.udp6),
        ] {
            if old != new {
                port(&mut next, name, new).map_err(sign_error)?;
            }
        }
        if old.fork_id != self.fork_id {
            match &self.fork_id {
                Some(fork_id) => {
                    next.insert_raw_rlp(ETH_ENR_KEY, encode_eth_entry(*fork_id).into(), key).map(drop)
                }
                None => next.remove_key(ETH_ENR_KEY, key),
            }
            .map_err(sign_error)?;
        }
        // Each setter above bumped the sequence number; one change of content is one bump.
        next.set_seq(seq, key).map_err(sign_error)?;
        *enr = next;
        Ok(())
    }
}

fn sign_error(e: enr::Error) -> EnrError {
    EnrError::Sign(e.to_string())
}

/// The local node record, shared by every discovery task.
///
/// A cheap `Clone` handle. Reads and updates take a short synchronous lock, never held
/// across an `.await`. An update that changes nothing leaves the sequence number alone;
/// any real change bumps it by one, so peers that cached the old record fetch the new one.
///
/// ```
/// use ethp2p::{record::LocalEnr, ForkId, NodeKey};
/// let local = LocalEnr::builder(&NodeKey::generate())
///     .udp_socket("127.0.0.1:30303".parse().unwrap())
///     .tcp4(30303)
///     .build()?;
/// assert_eq!(local.seq(), 1);
/// let fork = ForkId { hash: [0xfc, 0x64, 0xec, 0x04].into(), next: 1_150_000 };
/// assert!(local.set_fork_id(Some(fork))?);
/// assert!(!local.set_fork_id(Some(fork))?); // unchanged: no bump
/// assert_eq!(local.seq(), 2);
/// # Ok::<(), ethp2p::EnrError>(())
/// ```
#[derive(Clone)]
pub struct LocalEnr {
    inner: Arc<Inner>,
}

struct Inner {
    key: NodeKey,
    /// The record's cell. It starts as our own and is swapped for discv5's cell when a
    /// discv5 service starts (see [`LocalEnr::share_with`]), so both update one record.
    cell: Mutex<Arc<parking_lot::RwLock<Enr>>>,
}

impl fmt::Debug for LocalEnr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalEnr").field("record", &self.record().to_base64()).finish()
    }
}

impl LocalEnr {
    /// Starts a record for `key`; every entry is absent until set on the builder.
    pub fn builder(key: &NodeKey) -> LocalEnrBuilder {
        LocalEnrBuilder { key: key.clone(), content: EnrContent::default(), seq: 1 }
    }

    fn cell(&self) -> Arc<parking_lot::RwLock<Enr>> {
        self.inner.cell.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// A copy of the current record.
    pub fn record(&self) -> Enr {
        self.cell().read().clone()
    }

    /// The current sequence number.
    pub fn seq(&self) -> u64 {
        self.cell().read().seq()
    }

    /// The node id in the record.
    pub fn node_id(&self) -> NodeId {
        self.inner.key.node_id()
    }

    /// The key that signs the record.
    pub fn key(&self) -> &NodeKey {
        &self.inner.key
    }

    /// The managed entries of the current record.
    pub fn content(&self) -> EnrContent {
        EnrContent::of(&self.cell().read())
    }

    /// Changes the managed entries. Returns whether the record changed; if it did, the
    /// sequence number went up by exactly one and the record is re-signed.
    pub fn update(&self, change: impl FnOnce(&mut EnrContent)) -> Result<bool, EnrError> {
        // Hold the cell lock for the whole read-modify-write so two updaters cannot both
        // compute seq+1 from the same record.
        let guard = self.inner.cell.lock().unwrap_or_else(PoisonError::into_inner);
        let mut record = guard.write();
        let mut content = EnrContent::of(&record);
        let before = content.clone();
        change(&mut content);
        if content == before {
            return Ok(false);
        }
        content.apply(&mut record, &self.inner.key)?;
        tracing::debug!(target: "ethp2p::discv5", seq = record.seq(), "local ENR updated");
        Ok(true)
    }

    /// Sets or removes the `eth` entry. Returns whether the record changed.
    pub fn set_fork_id(&self, fork_id: Option<ForkId>) -> Result<bool, EnrError> {
        self.update(|c| c.fork_id = fork_id)
    }

    /// Sets the address and ports of `ip`'s family (see [`EnrContent::set_endpoint`]).
    /// Returns whether the record changed.
    pub fn set_endpoint(&self, ip: IpAddr, udp: u16, tcp: Option<u16>) -> Result<bool, EnrError> {
        self.update(|c| c.set_endpoint(ip, udp, tcp))
    }

    /// Makes `cell` (a discv5 service's own record lock) the home of this record, so that
    /// discv5's address updates and ours share one record and one sequence number. If our
    /// record moved on since discv5 copied it, ours is written into the cell first.
    pub(crate) fn share_with(&self, cell: Arc<parking_lot::RwLock<Enr>>) {
        let mut guard = self.inner.cell.lock().unwrap_or_else(PoisonError::into_inner);
        {
            let ours = guard.read();
            let mut theirs = cell.write();
            if ours.seq() > theirs.seq() {
                *theirs = ours.clone();
            }
        }
        *guard = cell;
    }
}

/// Builds a [`LocalEnr`]; see [`LocalEnr::builder`].
#[derive(Debug)]
pub struct LocalEnrBuilder {
    key: NodeKey,
    content: EnrContent,
    seq: u64,
}

impl LocalEnrBuilder {
    /// The IPv4 address (`ip`). Default: absent.
    pub fn ip4(&mut self, ip: Ipv4Addr) -> &mut Self {
        self.content.ip4 = Some(ip);
        self
    }

    /// The IPv6 address (`ip6`). Default: absent.
    pub fn ip6(&mut self, ip: Ipv6Addr) -> &mut Self {
        self.content.ip6 = Some(ip);
        self
    }

    /// The IPv4 RLPx port (`tcp`). Default: absent (discovery-only node).
    pub fn tcp4(&mut self, port: u16) -> &mut Self {
        self.content.tcp4 = Some(port);
        self
    }

    /// The IPv6 RLPx port (`tcp6`). Default: absent.
    pub fn tcp6(&mut self, port: u16) -> &mut Self {
        self.content.tcp6 = Some(port);
        self
    }

    /// The IPv4 discovery port (`udp`). Default: absent.
    pub fn udp4(&mut self, port: u16) -> &mut Self {
        self.content.udp4 = Some(port);
        self
    }

    /// The IPv6 discovery port (`udp6`). Default: absent.
    pub fn udp6(&mut self, port: u16) -> &mut Self {
        self.content.udp6 = Some(port);
        self
    }

    /// The address and discovery port of `addr`'s family. Default: absent.
    pub fn udp_socket(&mut self, addr: SocketAddr) -> &mut Self {
        match addr {
            SocketAddr::V4(a) => self.ip4(*a.ip()).udp4(a.port()),
            SocketAddr::V6(a) => self.ip6(*a.ip()).udp6(a.port()),
        }
    }

    /// The `eth` entry's fork id. Default: absent.
    pub fn fork_id(&mut self, fork_id: ForkId) -> &mut Self {
        self.content.fork_id = Some(fork_id);
        self
    }

    /// All managed entries at once.
    pub fn content(&mut self, content: EnrContent) -> &mut Self {
        self.content = content;
        self
    }

    /// The starting sequence number, to continue from a record persisted before a restart
    /// (peers ignore a record whose seq is not higher than one they already have).
    /// Default: 1.
    pub fn seq(&mut self, seq: u64) -> &mut Self {
        self.seq = seq;
        self
    }

    /// Signs the record.
    pub fn build(&self) -> Result<LocalEnr, EnrError> {
        let record = self.content.build(&self.key, self.seq)?;
        Ok(LocalEnr {
            inner: Arc::new(Inner {
                key: self.key.clone(),
                cell: Mutex::new(Arc::new(parking_lot::RwLock::new(record))),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{eth_entry_of, Candidate, CandidateSource, EthEntry};
    use alloy_primitives::keccak256;
    use alloy_rlp::{Encodable, Header};
    use base64::Engine as _;

    const VECTORS: &str =
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors/enr-eip-778.json"));

    fn b64(bytes: &[u8]) -> String {
        format!("enr:{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Encodes `[signature, seq, k1, v1, ...]` where each item is already RLP.
    fn rlp_list(items: &[Vec<u8>]) -> Vec<u8> {
        let payload: Vec<u8> = items.concat();
        let mut out = Vec::new();
        Header { list: true, payload_length: payload.len() }.encode(&mut out);
        out.extend(payload);
        out
    }

    fn rlp<T: Encodable + ?Sized>(value: &T) -> Vec<u8> {
        alloy_rlp::encode(value)
    }

    /// A correctly signed secp256k1 record with the given extra (sorted) pairs.
    fn signed(key: &NodeKey, seq: u64, pairs: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let compressed = key.public().serialize();
        let mut content = vec![rlp(&seq)];
        let mut all: Vec<(&str, Vec<u8>)> = pairs.to_vec();
        all.push(("id", rlp(b"v4".as_slice())));
        all.push(("secp256k1", rlp(compressed.as_slice())));
        all.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in all {
            content.push(rlp(k.as_bytes()));
            content.push(v);
        }
        let hash = keccak256(rlp_list(&content));
        let msg = secp256k1::Message::from_digest(hash.0);
        let sig = secp256k1::SECP256K1.sign_ecdsa(&msg, key.secret()).serialize_compact();
        let mut items = vec![rlp(sig.as_slice())];
        items.extend(content);
        rlp_list(&items)
    }

    fn eip778_key() -> NodeKey {
        NodeKey::from_hex("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291").unwrap()
    }

    // EIP-778 "Test Vectors": text form, node id, seq and the RLP structure, item by item.
    #[test]
    fn eip778_vector() {
        let json: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        let vectors = json["vectors"].as_array().unwrap();
        assert!(!vectors.is_empty());
        for v in vectors {
            let text = v["enr"].as_str().unwrap();
            let enr = parse_enr(text).unwrap();
            assert_eq!(hex::encode(enr.node_id().raw()), v["node_id"].as_str().unwrap());
            assert_eq!(enr.seq(), v["seq"].as_u64().unwrap());
            assert_eq!(enr.id().as_deref(), Some(v["identity_scheme"].as_str().unwrap()));
            assert_eq!(enr.to_base64(), text, "re-encoding gives the same text");
            let key = NodeKey::from_hex(v["private_key"].as_str().unwrap()).unwrap();
            assert_eq!(key.node_id().0, enr.node_id().raw());
            assert_eq!(peer_id_of_enr(&enr).unwrap(), key.peer_id());

            // Walk the RLP list and compare each item with the listed structure.
            let raw = alloy_rlp::encode(&enr);
            let mut buf = raw.as_slice();
            let header = Header::decode(&mut buf).unwrap();
            assert!(header.list);
            let mut items = Vec::new();
            while !buf.is_empty() {
                items.push(Header::decode_bytes(&mut buf, false).unwrap().to_vec());
            }
            let expected: Vec<Vec<u8>> = v["rlp_structure"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let s = s.as_str().unwrap();
                    match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                        Some(ascii) => ascii.as_bytes().to_vec(),
                        None => hex::decode(s).unwrap(),
                    }
                })
                .collect();
            assert_eq!(items, expected);

            // Our signer reproduces the record byte for byte (secp256k1 signing is
            // deterministic, RFC 6979).
            let ours = signed(&key, 1, &[("ip", rlp(&[127u8, 0, 0, 1][..])), ("udp", rlp(&30303u16))]);
            assert_eq!(ours, raw);
            let c = Candidate::from_enr(&enr, CandidateSource::Bootnode).unwrap();
            assert_eq!(c.ip, IpAddr::from([127, 0, 0, 1]));
            assert_eq!((c.udp_port, c.tcp_port), (Some(30303), None));
            assert_eq!(c.eth, EthEntry::Missing);
        }
    }

    // One test per malformed form, each with its own typed error.
    #[test]
    fn missing_prefix() {
        let text = b64(&signed(&eip778_key(), 1, &[]));
        assert_eq!(parse_enr(&text[4..]).unwrap_err(), EnrError::MissingPrefix);
        assert_eq!(parse_enr(&format!("enode:{}", &text[4..])).unwrap_err(), EnrError::MissingPrefix);
    }

    #[test]
    fn bad_base64() {
        assert_eq!(parse_enr("enr:abc$def").unwrap_err(), EnrError::BadBase64);
        // Standard (non-URL) alphabet and padding are not the EIP-778 text form.
        assert_eq!(parse_enr("enr:+/+/").unwrap_err(), EnrError::BadBase64);
        assert_eq!(parse_enr("enr:YQ==").unwrap_err(), EnrError::BadBase64);
    }

    #[test]
    fn too_big() {
        let big = signed(&eip778_key(), 1, &[("zz", rlp(&[0u8; 240][..]))]);
        assert!(big.len() > MAX_ENR_SIZE);
        assert_eq!(decode_enr(&big).unwrap_err(), EnrError::TooBig(big.len()));
        assert!(matches!(parse_enr(&b64(&big)).unwrap_err(), EnrError::TooBig(_)));
        // A huge text is refused before it is decoded.
        assert!(matches!(parse_enr(&format!("enr:{}", "A".repeat(100_000))), Err(EnrError::TooBig(_))));
    }

    #[test]
    fn bad_rlp() {
        // Not a list.
        assert!(matches!(decode_enr(&rlp(b"hello".as_slice())), Err(EnrError::BadRlp(_))));
        // Truncated.
        let good = signed(&eip778_key(), 1, &[]);
        assert!(matches!(decode_enr(&good[..good.len() - 3]), Err(EnrError::BadRlp(_))));
        // Empty input.
        assert!(matches!(decode_enr(&[]), Err(EnrError::BadRlp(_))));
    }

    #[test]
    fn missing_seq() {
        let only_sig = rlp_list(&[rlp(&[1u8; 64][..])]);
        assert_eq!(decode_enr(&only_sig).unwrap_err(), EnrError::MissingSeq);
    }

    #[test]
    fn unsorted_keys() {
        let sig = rlp(&[1u8; 64][..]);
        let list = rlp_list(&[
            sig,
            rlp(&1u64),
            rlp(b"udp".as_slice()),
            rlp(&1u16),
            rlp(b"ip".as_slice()),
            rlp(&[1u8, 2, 3, 4][..]),
        ]);
        assert_eq!(decode_enr(&list).unwrap_err(), EnrError::UnsortedKeys);
    }

    #[test]
    fn unsupported_scheme() {
        let list = rlp_list(&[rlp(&[1u8; 64][..]), rlp(&1u64), rlp(b"id".as_slice()), rlp(b"v5".as_slice())]);
        assert_eq!(decode_enr(&list).unwrap_err(), EnrError::UnsupportedScheme);
    }

    #[test]
    fn bad_public_key() {
        // No key at all.
        let list = rlp_list(&[rlp(&[1u8; 64][..]), rlp(&1u64), rlp(b"id".as_slice()), rlp(b"v4".as_slice())]);
        assert_eq!(decode_enr(&list).unwrap_err(), EnrError::BadPublicKey);
        // A key that is not a curve point.
        let list = rlp_list(&[
            rlp(&[1u8; 64][..]),
            rlp(&1u64),
            rlp(b"id".as_slice()),
            rlp(b"v4".as_slice()),
            rlp(b"secp256k1".as_slice()),
            rlp(&[7u8; 33][..]),
        ]);
        assert_eq!(decode_enr(&list).unwrap_err(), EnrError::BadPublicKey);
    }

    #[test]
    fn bad_signature() {
        let mut bytes = signed(&eip778_key(), 1, &[]);
        // The 64-byte signature follows the list header (`f8 len`) and its own (`b8 40`).
        assert_eq!(&bytes[2..4], &[0xb8, 0x40]);
        bytes[4] ^= 1;
        assert_eq!(decode_enr(&bytes).unwrap_err(), EnrError::BadSignature);
        // A valid signature over different content (seq changed after signing).
        let other = signed(&eip778_key(), 2, &[]);
        let good = signed(&eip778_key(), 1, &[]);
        let mut spliced = good.clone();
        spliced[4..4 + 64].copy_from_slice(&other[4..4 + 64]);
        assert_eq!(decode_enr(&spliced).unwrap_err(), EnrError::BadSignature);
    }

    #[test]
    fn trailing_bytes() {
        let mut bytes = signed(&eip778_key(), 1, &[]);
        bytes.extend_from_slice(&[0, 0]);
        assert_eq!(decode_enr(&bytes).unwrap_err(), EnrError::TrailingBytes(2));
    }

    #[test]
    fn no_address_candidate() {
        let enr = decode_enr(&signed(&eip778_key(), 1, &[])).unwrap();
        assert_eq!(Candidate::from_enr(&enr, CandidateSource::Discv5).unwrap_err(), EnrError::NoAddress);
    }

    #[test]
    fn not_secp256k1_candidate() {
        let key = enr::CombinedKey::generate_ed25519();
        let enr = Enr::builder().ip4([127, 0, 0, 1].into()).udp4(1).build(&key).unwrap();
        assert_eq!(Candidate::from_enr(&enr, CandidateSource::Discv5).unwrap_err(), EnrError::NotSecp256k1);
    }

    fn fork(next: u64) -> ForkId {
        ForkId { hash: [0xfc, 0x64, 0xec, 0x04].into(), next }
    }

    #[test]
    fn eth_entry_forms() {
        let key = eip778_key();
        // EIP-868 form, with a forward-compatible extra item after the fork id.
        let mut value = Vec::new();
        let extra = rlp(&7u8);
        Header { list: true, payload_length: fork(1).length() + extra.len() }.encode(&mut value);
        fork(1).encode(&mut value);
        value.extend(&extra);
        let enr = decode_enr(&signed(&key, 1, &[("eth", value)])).unwrap();
        assert_eq!(eth_entry_of(&enr), EthEntry::ForkId(fork(1)));
        // Missing.
        let enr = decode_enr(&signed(&key, 1, &[])).unwrap();
        assert_eq!(eth_entry_of(&enr), EthEntry::Missing);
        // A bare fork id without the outer list is malformed (geth rejects it too).
        let mut bare = Vec::new();
        fork(1).encode(&mut bare);
        let enr = decode_enr(&signed(&key, 1, &[("eth", bare)])).unwrap();
        assert_eq!(eth_entry_of(&enr), EthEntry::Malformed);
        // A string instead of a list.
        let enr = decode_enr(&signed(&key, 1, &[("eth", rlp(b"x".as_slice()))])).unwrap();
        assert_eq!(eth_entry_of(&enr), EthEntry::Malformed);
        // Round trip of our encoder.
        assert_eq!(decode_eth_entry(&encode_eth_entry(fork(9))).unwrap(), fork(9));
    }

    #[test]
    fn local_enr_seq_bumps_only_on_change() {
        let key = NodeKey::generate();
        let local = LocalEnr::builder(&key)
            .udp_socket(SocketAddr::from(([127, 0, 0, 1], 30303)))
            .tcp4(30303)
            .fork_id(fork(0))
            .build()
            .unwrap();
        assert_eq!(local.seq(), 1);
        assert_eq!(local.node_id(), key.node_id());
        assert_eq!(local.record().node_id().raw(), key.node_id().0);
        assert_eq!(eth_entry_of(&local.record()), EthEntry::ForkId(fork(0)));

        // Same values: nothing changes.
        assert!(!local.set_fork_id(Some(fork(0))).unwrap());
        assert!(!local.set_endpoint([127, 0, 0, 1].into(), 30303, Some(30303)).unwrap());
        assert_eq!(local.seq(), 1);

        // Fork change: one bump.
        assert!(local.set_fork_id(Some(fork(5))).unwrap());
        assert_eq!(local.seq(), 2);
        assert_eq!(local.content().fork_id, Some(fork(5)));

        // Address + both ports changed together: still one bump.
        assert!(local.set_endpoint([10, 0, 0, 1].into(), 1000, Some(2000)).unwrap());
        assert_eq!(local.seq(), 3);
        let r = local.record();
        assert!(r.verify());
        assert_eq!((r.ip4(), r.udp4(), r.tcp4()), (Some([10, 0, 0, 1].into()), Some(1000), Some(2000)));

        // IPv6 added, TCP removed, fork removed.
        assert!(local
            .update(|c| {
                c.set_endpoint("::1".parse().unwrap(), 3000, None);
                c.tcp4 = None;
                c.fork_id = None;
            })
            .unwrap());
        assert_eq!(local.seq(), 4);
        let r = local.record();
        assert_eq!((r.ip6(), r.udp6(), r.tcp4()), (Some("::1".parse().unwrap()), Some(3000), None));
        assert_eq!(eth_entry_of(&r), EthEntry::Missing);

        // The text form parses back through our own strict parser.
        let parsed = parse_enr(&r.to_base64()).unwrap();
        assert_eq!(parsed, r);
        // Clones share the record.
        let clone = local.clone();
        clone.set_fork_id(Some(fork(1))).unwrap();
        assert_eq!(local.seq(), 5);
    }

    #[test]
    fn local_enr_keeps_foreign_entries_and_resumes_seq() {
        let key = NodeKey::generate();
        let local = LocalEnr::builder(&key).seq(41).udp4(1).build().unwrap();
        assert_eq!(local.seq(), 41);
        // Another protocol's entry, added through the shared cell as discv5 would.
        {
            let cell = local.cell();
            let mut r = cell.write();
            r.insert("snap", &Vec::<u8>::new(), &key.to_combined_key()).unwrap();
        }
        assert_eq!(local.seq(), 42);
        local.set_fork_id(Some(fork(3))).unwrap();
        assert_eq!(local.seq(), 43);
        assert!(local.record().get_raw_rlp("snap").is_some());
    }

    #[test]
    fn local_enr_too_big_is_an_error_and_keeps_the_record() {
        let key = NodeKey::generate();
        let local = LocalEnr::builder(&key).udp_socket("127.0.0.1:1".parse().unwrap()).build().unwrap();
        // Another protocol's large entry brings the record near the 300-byte limit.
        local.cell().write().insert("big", &vec![0u8; 150], &key.to_combined_key()).unwrap();
        let before = local.record();
        let err = local
            .update(|c| {
                c.set_endpoint("2001:db8::1".parse().unwrap(), 30303, Some(30303));
                c.fork_id = Some(fork(1));
            })
            .unwrap_err();
        assert!(matches!(err, EnrError::Sign(_)), "{err}");
        assert_eq!(local.record(), before, "a failed update leaves the record untouched");
    }

    fn arb_content() -> impl proptest::strategy::Strategy<Value = EnrContent> {
        use proptest::prelude::*;
        let port = proptest::option::of(1u16..4);
        (
            proptest::option::of((0u8..3).prop_map(|b| Ipv4Addr::new(10, 0, 0, b))),
            port.clone(),
            port.clone(),
            proptest::option::of((0u16..3).prop_map(|s| Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, s))),
            port.clone(),
            port,
            proptest::option::of((0u64..3).prop_map(fork)),
        )
            .prop_map(|(ip4, tcp4, udp4, ip6, tcp6, udp6, fork_id)| EnrContent {
                ip4,
                tcp4,
                udp4,
                ip6,
                tcp6,
                udp6,
                fork_id,
            })
    }

    proptest::proptest! {
        // Any sequence of updates: the record always holds exactly the content asked for,
        // verifies, parses back, and its seq grew by one per update that changed something.
        #[test]
        fn updates_bump_seq_once_per_change(steps in proptest::collection::vec(arb_content(), 1..8)) {
            let key = eip778_key();
            let local = LocalEnr::builder(&key).build().unwrap();
            let mut expected_seq = 1;
            let mut current = EnrContent::default();
            for step in steps {
                let changed = local.update(|c| *c = step.clone()).unwrap();
                proptest::prop_assert_eq!(changed, step != current);
                expected_seq += u64::from(changed);
                current = step;
                let record = local.record();
                proptest::prop_assert_eq!(record.seq(), expected_seq);
                proptest::prop_assert_eq!(EnrContent::of(&record), current.clone());
                proptest::prop_assert!(record.verify());
                proptest::prop_assert_eq!(parse_enr(&record.to_base64()).unwrap(), record);
            }
        }
    }

    #[test]
    fn share_with_moves_the_record() {
        let key = NodeKey::generate();
        let local = LocalEnr::builder(&key).udp4(1).build().unwrap();
        let theirs = Arc::new(parking_lot::RwLock::new(local.record()));
        local.set_fork_id(Some(fork(1))).unwrap(); // moved on since the copy
        local.share_with(theirs.clone());
        assert_eq!(theirs.read().seq(), 2);
        local.set_fork_id(Some(fork(2))).unwrap();
        assert_eq!(theirs.read().seq(), 3);
        assert_eq!(EnrContent::of(&theirs.read()).fork_id, Some(fork(2)));
    }
}
