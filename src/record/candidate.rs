//! The one type every source of peers produces and the pool consumes: a [`Candidate`], with
//! where it came from ([`CandidateSource`]) and what its record says about its chain
//! ([`EthEntry`]). It lives here, below discovery and the pool, because both speak it and
//! neither may depend on the other.

use std::{fmt, net::IpAddr, time::Instant};

use super::{
    decode_eth_entry, node_id, peer_id_of_enr, Enode, Enr, EnrError, ForkId, NodeId, PeerId, ETH_ENR_KEY,
};

/// Where a [`Candidate`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum CandidateSource {
    /// Found by a discv4 lookup.
    Discv4,
    /// Found by a discv5 lookup.
    Discv5,
    /// Read from an EIP-1459 DNS tree.
    Dns,
    /// Given in a bootnode list.
    Bootnode,
    /// Given by the user as a static or trusted peer.
    Static,
    /// Announced on the local network (mDNS).
    Lan,
}

impl CandidateSource {
    /// Its short name (`discv4`, `discv5`, `dns`, `bootnode`, `static`, `lan`), also the
    /// `source` label of the candidates metric.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Discv4 => "discv4",
            Self::Discv5 => "discv5",
            Self::Dns => "dns",
            Self::Bootnode => "bootnode",
            Self::Static => "static",
            Self::Lan => "lan",
        }
    }
}

impl fmt::Display for CandidateSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a candidate's record says about its chain (the ENR `eth` entry, EIP-2124/EIP-868).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EthEntry {
    /// The record carries an `eth` entry with this fork id.
    ForkId(ForkId),
    /// The record has no `eth` entry (a consensus-layer node, or a client that omits it).
    Missing,
    /// The `eth` entry is present but does not decode.
    Malformed,
    /// No record was available (a discv4 node that has not answered an ENRRequest, or a
    /// plain `enode://` URL).
    Unknown,
}

impl EthEntry {
    /// The fork id, if the record carried one.
    pub fn fork_id(&self) -> Option<ForkId> {
        match self {
            Self::ForkId(id) => Some(*id),
            _ => None,
        }
    }
}

/// A node that some discovery source found: enough to decide whether to dial it, and to dial.
///
/// This one type is what discv4, discv5, DNS, bootnode lists and the pool all exchange.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The node's 64-byte public key, which RLPx dials.
    pub peer_id: PeerId,
    /// Its IP address.
    pub ip: IpAddr,
    /// Its RLPx port, if it advertises one (a discovery-only node has none).
    pub tcp_port: Option<u16>,
    /// Its discovery port.
    pub udp_port: Option<u16>,
    /// The `eth` entry of its record.
    pub eth: EthEntry,
    /// Its ENR, when the source had one.
    pub enr: Option<Enr>,
    /// Which source found it.
    pub source: CandidateSource,
    /// When it was found.
    pub seen: Instant,
}

impl Candidate {
    /// keccak256 of the public key: the id in its ENR.
    pub fn node_id(&self) -> NodeId {
        node_id(&self.peer_id)
    }

    /// The fork id from its record, if any.
    pub fn fork_id(&self) -> Option<ForkId> {
        self.eth.fork_id()
    }

    /// Its `enode://` form, if it has a TCP port to dial.
    pub fn enode(&self) -> Option<Enode> {
        Enode::dialable(self.peer_id, self.ip, self.tcp_port, self.udp_port)
    }

    /// The candidate as one JSON object: `node_id`, `peer_id`, `ip`, `udp`, `tcp`, `fork_id`
    /// (`{"hash": "0x…", "next": n}` or null), `eth` (`fork_id`, `missing`, `malformed` or
    /// `unknown`), `source` and `enr` (text form, or null). What `examples/discv5_lookup.rs`
    /// prints, one line per node.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "node_id": self.node_id(),
            "peer_id": self.peer_id,
            "ip": self.ip,
            "udp": self.udp_port,
            "tcp": self.tcp_port,
            "fork_id": self.fork_id(),
            "eth": match self.eth {
                EthEntry::ForkId(_) => "fork_id",
                EthEntry::Missing => "missing",
                EthEntry::Malformed => "malformed",
                EthEntry::Unknown => "unknown",
            },
            "source": self.source.to_string(),
            "enr": self.enr.as_ref().map(|enr| enr.to_base64()),
        })
    }

    /// A candidate from an `enode://` URL (no record, so the fork id is unknown).
    pub fn from_enode(enode: &Enode, source: CandidateSource) -> Self {
        Self {
            peer_id: enode.peer_id,
            ip: enode.ip,
            tcp_port: (enode.tcp_port != 0).then_some(enode.tcp_port),
            udp_port: (enode.udp_port != 0).then_some(enode.udp_port),
            eth: EthEntry::Unknown,
            enr: None,
            source,
            seen: Instant::now(),
        }
    }
}

/// The `eth` entry of a record (EIP-868: `[[fork-hash, fork-next], ...rest]`; later list
/// items are ignored for forward compatibility, as geth does with its `rlp:"tail"` field).
///
/// ```
/// use ethp2p::{discovery::EthEntry, record::eth_entry_of, ForkId, LocalEnr, NodeKey};
/// let fork = ForkId { hash: [0xfc, 0x64, 0xec, 0x04].into(), next: 1_150_000 };
/// let local = LocalEnr::builder(&NodeKey::generate()).fork_id(fork).build()?;
/// assert_eq!(eth_entry_of(&local.record()), EthEntry::ForkId(fork));
/// # Ok::<(), ethp2p::record::EnrError>(())
/// ```
pub fn eth_entry_of(enr: &Enr) -> EthEntry {
    match enr.get_raw_rlp(ETH_ENR_KEY) {
        None => EthEntry::Missing,
        Some(raw) => match decode_eth_entry(raw) {
            Ok(fork_id) => EthEntry::ForkId(fork_id),
            Err(_) => EthEntry::Malformed,
        },
    }
}

impl Candidate {
    /// A candidate from a record: its key, its first address (IPv4 preferred, as most of
    /// the network is IPv4-only) with that family's ports, and its `eth` entry.
    ///
    /// Fails for records that cannot be dialed at all: no secp256k1 key, or no IP.
    pub fn from_enr(enr: &Enr, source: CandidateSource) -> Result<Self, EnrError> {
        let peer_id = peer_id_of_enr(enr)?;
        let (ip, tcp_port, udp_port) = if let Some(ip) = enr.ip4() {
            (IpAddr::V4(ip), enr.tcp4(), enr.udp4())
        } else if let Some(ip) = enr.ip6() {
            // EIP-778: `tcp6`/`udp6` "can be omitted if the IPv6 port is the same as IPv4".
            (IpAddr::V6(ip), enr.tcp6().or(enr.tcp4()), enr.udp6().or(enr.udp4()))
        } else {
            return Err(EnrError::NoAddress);
        };
        Ok(Self {
            peer_id,
            ip,
            tcp_port: tcp_port.filter(|p| *p != 0),
            udp_port: udp_port.filter(|p| *p != 0),
            eth: eth_entry_of(enr),
            enr: Some(enr.clone()),
            source,
            seen: std::time::Instant::now(),
        })
    }
}
