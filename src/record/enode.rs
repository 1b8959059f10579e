//! `enode://` URLs: `enode://<128 hex node id>@<ip>:<tcp port>[?discport=<udp port>]`.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    str::FromStr,
};

use super::{key::public_key_of, node_id, EnodeError, NodeId, PeerId};

/// A node's id and endpoint, as written in an `enode://` URL.
///
/// ```
/// use ethp2p::Enode;
/// let url = "enode://d860a01f9722d78051619d1e2351aba3f43f943f6f00718d1b9baa4101932a1f5011f16bb2b1bb35db20d6fe28fa0bf09636d26a87d31de9ec6203eeedb1f666@18.138.108.67:30303";
/// let enode: Enode = url.parse()?;
/// assert_eq!(enode.tcp_port, 30303);
/// assert_eq!(enode.to_string(), url);
/// # Ok::<(), ethp2p::record::EnodeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Enode {
    /// The node's 64-byte public key.
    pub peer_id: PeerId,
    /// Its IP address.
    pub ip: IpAddr,
    /// Its RLPx (TCP) port; 0 if it does not accept connections.
    pub tcp_port: u16,
    /// Its discovery (UDP) port; equal to `tcp_port` unless the URL has `?discport=`.
    pub udp_port: u16,
}

impl Enode {
    /// An enode whose TCP and UDP ports are the same.
    pub fn new(peer_id: PeerId, addr: SocketAddr) -> Self {
        Self { peer_id, ip: addr.ip(), tcp_port: addr.port(), udp_port: addr.port() }
    }

    /// The enode of a node known by its ports, if it has a TCP port to dial; without a UDP
    /// port, discovery is assumed on the TCP port (the enode URL's default).
    pub fn dialable(
        peer_id: PeerId,
        ip: IpAddr,
        tcp_port: Option<u16>,
        udp_port: Option<u16>,
    ) -> Option<Self> {
        let tcp_port = tcp_port?;
        Some(Self { peer_id, ip, tcp_port, udp_port: udp_port.unwrap_or(tcp_port) })
    }

    /// The node id (keccak256 of the public key).
    pub fn node_id(&self) -> NodeId {
        node_id(&self.peer_id)
    }

    /// The TCP endpoint for RLPx.
    pub fn tcp_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.tcp_port)
    }

    /// The UDP endpoint for discovery.
    pub fn udp_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.udp_port)
    }
}

impl fmt::Display for Enode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "enode://{}@{}", hex::encode(self.peer_id), SocketAddr::new(self.ip, self.tcp_port))?;
        if self.udp_port != self.tcp_port {
            write!(f, "?discport={}", self.udp_port)?;
        }
        Ok(())
    }
}

impl FromStr for Enode {
    type Err = EnodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.trim().strip_prefix("enode://").ok_or(EnodeError::BadScheme)?;
        let (id_hex, rest) = rest.split_once('@').ok_or(EnodeError::MissingAt)?;
        if id_hex.len() != 128 {
            return Err(EnodeError::BadIdLength(id_hex.len()));
        }
        let mut id = [0u8; 64];
        hex::decode_to_slice(id_hex, &mut id).map_err(|_| EnodeError::BadIdHex)?;
        let peer_id = PeerId::from(id);
        if public_key_of(&peer_id).is_none() {
            return Err(EnodeError::InvalidPublicKey);
        }
        let (addr, query) = match rest.split_once('?') {
            Some((addr, query)) => (addr, Some(query)),
            None => (rest, None),
        };
        let (host, port) = addr.rsplit_once(':').ok_or(EnodeError::MissingPort)?;
        // IPv6 hosts are bracketed: `[::1]:30303`.
        let host_unbracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let ip: IpAddr = host_unbracketed.parse().map_err(|_| EnodeError::BadIp(host.to_owned()))?;
        if host_unbracketed != host && ip.is_ipv4() {
            return Err(EnodeError::BadIp(host.to_owned()));
        }
        let tcp_port: u16 = port.parse().map_err(|_| EnodeError::BadPort(port.to_owned()))?;
        let udp_port = match query {
            None => tcp_port,
            Some(query) => {
                let value =
                    query.strip_prefix("discport=").ok_or_else(|| EnodeError::BadQuery(query.to_owned()))?;
                value.parse().map_err(|_| EnodeError::BadDiscPort(value.to_owned()))?
            }
        };
        Ok(Self { peer_id, ip, tcp_port, udp_port })
    }
}

impl serde::Serialize for Enode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Enode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeKey;
    use proptest::prelude::*;

    const ID: &str = "d860a01f9722d78051619d1e2351aba3f43f943f6f00718d1b9baa4101932a1f5011f16bb2b1bb35db20d6fe28fa0bf09636d26a87d31de9ec6203eeedb1f666";

    fn parse(s: &str) -> Result<Enode, EnodeError> {
        s.parse()
    }

    #[test]
    fn discport_and_ipv6() {
        let e = parse(&format!("enode://{ID}@10.3.58.6:30303?discport=30301")).unwrap();
        assert_eq!((e.tcp_port, e.udp_port), (30303, 30301));
        assert_eq!(e.to_string(), format!("enode://{ID}@10.3.58.6:30303?discport=30301"));
        let e = parse(&format!("enode://{ID}@[::1]:30303")).unwrap();
        assert_eq!(e.ip, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(e.to_string(), format!("enode://{ID}@[::1]:30303"));
    }

    // One test per malformed form, each with its own typed error.
    #[test]
    fn bad_scheme() {
        assert_eq!(parse(&format!("enr://{ID}@1.2.3.4:1")), Err(EnodeError::BadScheme));
    }
    #[test]
    fn missing_at() {
        assert_eq!(parse(&format!("enode://{ID}")), Err(EnodeError::MissingAt));
    }
    #[test]
    fn bad_id_length() {
        assert_eq!(parse("enode://abcd@1.2.3.4:1"), Err(EnodeError::BadIdLength(4)));
    }
    #[test]
    fn bad_id_hex() {
        assert_eq!(parse(&format!("enode://{}@1.2.3.4:1", "g".repeat(128))), Err(EnodeError::BadIdHex));
    }
    #[test]
    fn invalid_public_key() {
        assert_eq!(
            parse(&format!("enode://{}@1.2.3.4:1", "00".repeat(64))),
            Err(EnodeError::InvalidPublicKey)
        );
    }
    #[test]
    fn missing_port() {
        assert_eq!(parse(&format!("enode://{ID}@1.2.3.4")), Err(EnodeError::MissingPort));
    }
    #[test]
    fn bad_ip() {
        assert_eq!(
            parse(&format!("enode://{ID}@example.org:30303")),
            Err(EnodeError::BadIp("example.org".into()))
        );
        assert!(matches!(parse(&format!("enode://{ID}@[1.2.3.4]:30303")), Err(EnodeError::BadIp(_))));
    }
    #[test]
    fn bad_port() {
        assert_eq!(parse(&format!("enode://{ID}@1.2.3.4:70000")), Err(EnodeError::BadPort("70000".into())));
    }
    #[test]
    fn bad_query() {
        assert_eq!(
            parse(&format!("enode://{ID}@1.2.3.4:1?foo=2")),
            Err(EnodeError::BadQuery("foo=2".into()))
        );
    }
    #[test]
    fn bad_discport() {
        assert_eq!(
            parse(&format!("enode://{ID}@1.2.3.4:1?discport=x")),
            Err(EnodeError::BadDiscPort("x".into()))
        );
    }

    proptest! {
        #[test]
        fn roundtrip(seed in any::<[u8; 32]>(), v6 in any::<bool>(), ip4 in any::<[u8; 4]>(),
                     ip6 in any::<[u8; 16]>(), tcp in any::<u16>(), udp in any::<u16>()) {
            let key = NodeKey::from_bytes(&seed).unwrap_or_else(|_| NodeKey::generate());
            let ip = if v6 { IpAddr::from(ip6) } else { IpAddr::from(ip4) };
            let enode = Enode { peer_id: key.peer_id(), ip, tcp_port: tcp, udp_port: udp };
            let parsed: Enode = enode.to_string().parse().unwrap();
            // An IPv4-mapped IPv6 address prints as IPv6 and parses back as the same value.
            prop_assert_eq!(parsed, enode);
        }
    }
}
