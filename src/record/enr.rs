//! Ethereum Node Records (EIP-778): parsing remote records with typed errors, and the local
//! record that every discovery task advertises, with its `eth` entry (EIP-868). Reading a
//! remote record's `eth` entry into an [`EthEntry`](crate::discovery::EthEntry) is
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
    path::Path,
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
/// assert!(matches!(ethp2p::record::parse_enr("enr:!!"), Err(ethp2p::record::EnrError::BadBase64)));
/// # Ok::<(), ethp2p::record::EnrError>(())
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
/// # Ok::<(), ethp2p::record::EnrError>(())
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

    /// Writes the current record to `path` (text form, atomically), for
    /// [`LocalEnrBuilder::build_continuing`] at the next start.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        crate::fsutil::write_atomically(path, format!("{}\n", self.record().to_base64()).as_bytes())
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

    /// Signs the record continuing the one saved at `path` by an earlier run (see
    /// [`LocalEnr::save`]), so peers that cached it accept this one:
    /// - the same key and entries as saved: the saved record itself;
    /// - anything different (a new address, port or fork id): the saved one plus one;
    /// - no saved record, or one that does not parse or is another key's: a sequence
    ///   number from the clock (Unix milliseconds, as go-ethereum starts one), higher than
    ///   any counter an earlier run can have reached. An unreadable file is moved aside
    ///   (`<path>.corrupt-<ms>`), never overwritten.
    pub fn build_continuing(&self, path: &Path) -> Result<LocalEnr, EnrError> {
        let clock = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(1)
                .max(1)
        };
        let saved = match std::fs::read_to_string(path) {
            Err(_) => None,
            Ok(text) => match parse_enr(text.trim()) {
                Ok(enr) if enr.node_id().raw() == self.key.node_id().0 => Some(enr),
                Ok(_) => {
                    tracing::warn!(target: "ethp2p::record", path = %path.display(),
                                   "the saved record is another key's; starting a new sequence");
                    None
                }
                Err(e) => {
                    let mut aside = path.as_os_str().to_owned();
                    aside.push(format!(".corrupt-{}", clock()));
                    let _ = std::fs::rename(path, &aside);
                    tracing::warn!(target: "ethp2p::record", path = %path.display(), error = %e,
                                   "the saved record does not parse; moved aside, starting a new sequence");
                    None
                }
            },
        };
        let record = match saved {
            // Signatures are randomised: the saved record itself, not a re-signed copy.
            Some(enr) if EnrContent::of(&enr) == self.content => enr,
            Some(enr) => self.content.build(&self.key, enr.seq().saturating_add(1))?,
            None => self.content.build(&self.key, clock())?,
        };
        Ok(LocalEnr {
            inner: Arc::new(Inner {
                key: self.key.clone(),
                cell: Mutex::new(Arc::new(parking_lot::RwLock::new(record))),
            }),
        })
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
mod tests;
