//! Bootnodes: the public entry points of each built-in network, embedded at compile time from
//! `bootnodes/<network>.txt`, and the `--bootnodes a,b,c` lists users give on the command line.
//!
//! A bootnode is written either as an `enode://` URL (what discv4 and RLPx dial) or as an
//! `enr:` record (what discv5 bootstraps from). Each file's header names its public source.
//! The built-in lists are only for programs a user runs against a real network; tests never
//! contact them.

use std::{fmt, net::SocketAddr, str::FromStr};

use super::{
    enr::{parse_enr, peer_id_of_enr},
    BootnodeError, Enode, Enr, NodeId, PeerId,
};
use super::{Candidate, CandidateSource};

/// `(network name, file contents)` of every embedded list, in [`super::BUILTIN_CHAINS`] order.
const BUILTIN_LISTS: [(&str, &str); 5] = [
    ("mainnet", include_str!("../../bootnodes/mainnet.txt")),
    ("sepolia", include_str!("../../bootnodes/sepolia.txt")),
    ("holesky", include_str!("../../bootnodes/holesky.txt")),
    ("hoodi", include_str!("../../bootnodes/hoodi.txt")),
    ("bsc", include_str!("../../bootnodes/bsc.txt")),
];

/// One bootnode: an `enode://` URL or a signed `enr:` record.
///
/// ```
/// use ethp2p::Bootnode;
/// let url = "enode://d860a01f9722d78051619d1e2351aba3f43f943f6f00718d1b9baa4101932a1f5011f16bb2b1bb35db20d6fe28fa0bf09636d26a87d31de9ec6203eeedb1f666@18.138.108.67:30303";
/// let node: Bootnode = url.parse()?;
/// assert!(matches!(node, Bootnode::Enode(_)));
/// assert_eq!(node.udp_addr().unwrap().port(), 30303);
/// assert!(matches!("http://x".parse::<Bootnode>(), Err(ethp2p::record::BootnodeError::UnknownScheme(_))));
/// # Ok::<(), ethp2p::record::BootnodeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootnode {
    /// An `enode://` URL: id and endpoints, no record.
    Enode(Enode),
    /// A secp256k1 ENR whose signature verified and which has a UDP endpoint.
    Enr(Enr),
}

impl Bootnode {
    /// The node's 64-byte public key.
    pub fn peer_id(&self) -> PeerId {
        match self {
            Self::Enode(enode) => enode.peer_id,
            // Checked at parse time: only secp256k1 records become a `Bootnode`.
            Self::Enr(enr) => peer_id_of_enr(enr).unwrap_or_default(),
        }
    }

    /// The node id (keccak256 of the public key).
    pub fn node_id(&self) -> NodeId {
        super::node_id(&self.peer_id())
    }

    /// Where to send discovery packets: the enode's UDP port, or the record's IPv4 UDP
    /// endpoint (else its IPv6 one).
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Enode(enode) => Some(enode.udp_addr()),
            Self::Enr(enr) => {
                enr.udp4_socket().map(SocketAddr::V4).or_else(|| enr.udp6_socket().map(SocketAddr::V6))
            }
        }
    }

    /// The record, if this bootnode was given as one.
    pub fn enr(&self) -> Option<&Enr> {
        match self {
            Self::Enr(enr) => Some(enr),
            Self::Enode(_) => None,
        }
    }

    /// The bootnode as a discovery [`Candidate`] from [`CandidateSource::Bootnode`].
    pub fn to_candidate(&self) -> Result<Candidate, BootnodeError> {
        match self {
            Self::Enode(enode) => Ok(Candidate::from_enode(enode, CandidateSource::Bootnode)),
            Self::Enr(enr) => Ok(Candidate::from_enr(enr, CandidateSource::Bootnode)?),
        }
    }
}

impl fmt::Display for Bootnode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Enode(enode) => enode.fmt(f),
            Self::Enr(enr) => f.write_str(&enr.to_base64()),
        }
    }
}

impl FromStr for Bootnode {
    type Err = BootnodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.starts_with("enode://") {
            return Ok(Self::Enode(s.parse()?));
        }
        if s.starts_with("enr:") {
            let enr = parse_enr(s)?;
            // A bootnode must be dialable: a secp256k1 key (execution-layer discovery) and a
            // UDP endpoint to send the first packet to.
            peer_id_of_enr(&enr)?;
            if enr.udp4_socket().is_none() && enr.udp6_socket().is_none() {
                return Err(BootnodeError::NoUdpEndpoint);
            }
            return Ok(Self::Enr(enr));
        }
        Err(BootnodeError::UnknownScheme(s.chars().take(16).collect()))
    }
}

/// The built-in bootnodes of a network (one of [`super::BUILTIN_CHAINS`], case-insensitive).
///
/// ```
/// let nodes = ethp2p::record::bootnodes("sepolia")?;
/// assert!(nodes.iter().any(|n| matches!(n, ethp2p::Bootnode::Enode(_))));
/// assert!(nodes.iter().any(|n| matches!(n, ethp2p::Bootnode::Enr(_))));
/// # Ok::<(), ethp2p::record::BootnodeError>(())
/// ```
pub fn bootnodes(network: &str) -> Result<Vec<Bootnode>, BootnodeError> {
    let (_, text) = BUILTIN_LISTS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(network))
        .ok_or_else(|| BootnodeError::NoBuiltinList(network.to_owned()))?;
    parse_bootnode_file(text)
}

/// Parses a bootnode file: one entry per line; blank lines and lines starting with `#` are
/// skipped. An error names the (1-based) line.
pub fn parse_bootnode_file(text: &str) -> Result<Vec<Bootnode>, BootnodeError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|(i, line)| {
            line.parse().map_err(|e| BootnodeError::Entry { position: i + 1, source: Box::new(e) })
        })
        .collect()
}

/// Parses a comma-separated bootnode list, as given to `--bootnodes`. Whitespace around
/// entries is ignored; an empty entry (`a,,b`) is an error, since it is usually a typo. An
/// error names the (1-based) entry.
///
/// ```
/// let list = "enode://d860a01f9722d78051619d1e2351aba3f43f943f6f00718d1b9baa4101932a1f5011f16bb2b1bb35db20d6fe28fa0bf09636d26a87d31de9ec6203eeedb1f666@127.0.0.1:30303, \
///             enr:-IS4QHCYrYZbAKWCBRlAy5zzaDZXJBGkcnh4MHcBFZntXNFrdvJjX04jRzjzCBOonrkTfj499SZuOh8R33Ls8RRcy5wBgmlkgnY0gmlwhH8AAAGJc2VjcDI1NmsxoQPKY0yuDUmstAHYpMa2_oxVtw0RW_QAdpzBQA8yWM0xOIN1ZHCCdl8";
/// assert_eq!(ethp2p::record::parse_bootnode_list(list)?.len(), 2);
/// # Ok::<(), ethp2p::record::BootnodeError>(())
/// ```
pub fn parse_bootnode_list(list: &str) -> Result<Vec<Bootnode>, BootnodeError> {
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    list.split(',')
        .enumerate()
        .map(|(i, entry)| {
            let wrap = |e| BootnodeError::Entry { position: i + 1, source: Box::new(e) };
            if entry.trim().is_empty() {
                return Err(wrap(BootnodeError::Empty));
            }
            entry.parse().map_err(wrap)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ChainSpec, EnodeError, EnrError, BUILTIN_CHAINS};

    /// EIP-778's example record (127.0.0.1:30303).
    const ENR: &str = "enr:-IS4QHCYrYZbAKWCBRlAy5zzaDZXJBGkcnh4MHcBFZntXNFrdvJjX04jRzjzCBOonrkTfj499SZuOh8R33Ls8RRcy5wBgmlkgnY0gmlwhH8AAAGJc2VjcDI1NmsxoQPKY0yuDUmstAHYpMa2_oxVtw0RW_QAdpzBQA8yWM0xOIN1ZHCCdl8";
    const ENODE: &str = "enode://d860a01f9722d78051619d1e2351aba3f43f943f6f00718d1b9baa4101932a1f5011f16bb2b1bb35db20d6fe28fa0bf09636d26a87d31de9ec6203eeedb1f666@127.0.0.1:30303";

    /// Every entry of every embedded file parses: enodes are valid secp256k1 keys, ENRs have
    /// verified signatures, secp256k1 keys and a UDP endpoint. Counting the lines that look
    /// like entries makes sure no entry is skipped.
    #[test]
    fn every_builtin_entry_is_valid() {
        let mut total = 0;
        for ((name, text), chain) in BUILTIN_LISTS.iter().zip(BUILTIN_CHAINS) {
            assert_eq!(*name, chain);
            assert!(ChainSpec::by_name(name).is_some());
            assert!(text.starts_with("# "), "{name}.txt has no header naming its source");
            let nodes = bootnodes(name).unwrap_or_else(|e| panic!("{name}.txt: {e}"));
            let entries = text.lines().filter(|l| l.starts_with("enode://") || l.starts_with("enr:")).count();
            assert_eq!(nodes.len(), entries, "{name}.txt");
            assert!(nodes.iter().any(|n| matches!(n, Bootnode::Enode(_))), "{name}.txt has no enode");
            for node in &nodes {
                assert!(node.udp_addr().is_some_and(|a| a.port() != 0), "{name}: {node}");
                assert!(node.to_candidate().is_ok(), "{name}: {node}");
                // The text form round-trips.
                assert_eq!(node.to_string().parse::<Bootnode>().unwrap(), *node);
            }
            let mut ids: Vec<_> = nodes.iter().map(|n| n.node_id()).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), nodes.len(), "{name}.txt lists a node twice");
            total += nodes.len();
        }
        assert!(total > 50);
    }

    #[test]
    fn enrs_where_the_network_publishes_them() {
        for name in ["mainnet", "sepolia", "holesky", "hoodi"] {
            assert!(bootnodes(name).unwrap().iter().any(|n| n.enr().is_some()), "{name}");
        }
        assert!(bootnodes("bsc").unwrap().iter().all(|n| n.enr().is_none()));
    }

    #[test]
    fn list_parsing() {
        let list = parse_bootnode_list(&format!(" {ENODE} ,{ENR}")).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].udp_addr(), Some(SocketAddr::from(([127, 0, 0, 1], 30303))));
        assert_eq!(list[1].to_string(), ENR);
        assert!(parse_bootnode_list("  ").unwrap().is_empty());
        let file =
            parse_bootnode_file(&format!("# header\n\n{ENODE}\n  # indented comment\n{ENR}\n")).unwrap();
        assert_eq!(file, list);
    }

    // One test per malformed entry, each with its own typed error.
    #[test]
    fn unknown_scheme() {
        assert!(matches!("127.0.0.1:30303".parse::<Bootnode>(), Err(BootnodeError::UnknownScheme(_))));
        assert!(matches!(
            "enrtree://AAA@nodes.example.org".parse::<Bootnode>(),
            Err(BootnodeError::UnknownScheme(_))
        ));
    }
    #[test]
    fn bad_enode() {
        let bad = ENODE.replace("@127.0.0.1:30303", "@127.0.0.1");
        assert!(matches!(bad.parse::<Bootnode>(), Err(BootnodeError::Enode(EnodeError::MissingPort))));
    }
    #[test]
    fn bad_enr_signature() {
        // Flip one character of the signature.
        let bad = ENR.replacen("QHCY", "QHCZ", 1);
        assert!(
            matches!(bad.parse::<Bootnode>(), Err(BootnodeError::Enr(_))),
            "{:?}",
            bad.parse::<Bootnode>()
        );
    }
    #[test]
    fn bad_enr_base64() {
        assert!(matches!("enr:!!".parse::<Bootnode>(), Err(BootnodeError::Enr(EnrError::BadBase64))));
    }
    #[test]
    fn enr_without_udp() {
        use crate::record::LocalEnr;
        let record = LocalEnr::builder(&crate::NodeKey::generate()).build().unwrap().record();
        let text = record.to_base64();
        assert!(matches!(text.parse::<Bootnode>(), Err(BootnodeError::NoUdpEndpoint)));
    }
    #[test]
    fn empty_list_entry() {
        let err = parse_bootnode_list(&format!("{ENODE},,{ENR}")).unwrap_err();
        assert!(
            matches!(err, BootnodeError::Entry { position: 2, ref source } if matches!(**source, BootnodeError::Empty))
        );
        assert!(err.to_string().contains("#2"), "{err}");
    }
    #[test]
    fn bad_file_line_is_named() {
        let err = parse_bootnode_file(&format!("# header\n{ENODE}\nenode://zz\n")).unwrap_err();
        assert!(matches!(err, BootnodeError::Entry { position: 3, .. }), "{err}");
    }
    #[test]
    fn no_builtin_list() {
        assert!(matches!(bootnodes("goerli"), Err(BootnodeError::NoBuiltinList(ref n)) if n == "goerli"));
        assert!(bootnodes("MAINNET").is_ok());
    }
}
