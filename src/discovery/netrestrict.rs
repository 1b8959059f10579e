//! `--netrestrict`: the networks a node may talk to.

use std::{fmt, net::IpAddr, str::FromStr};

use ipnet::IpNet;

/// A list of CIDR networks. Discovery and dialing ignore every address outside it; an empty
/// list means no restriction.
///
/// ```
/// use ethp2p::NetRestrict;
/// let only_loopback: NetRestrict = "127.0.0.0/8".parse()?;
/// assert!(only_loopback.allows(&"127.0.0.5".parse().unwrap()));
/// assert!(!only_loopback.allows(&"8.8.8.8".parse().unwrap()));
/// # Ok::<(), ethp2p::NetRestrictError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetRestrict {
    nets: Vec<IpNet>,
}

/// A `--netrestrict` entry that is not a CIDR network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid network {0:?} in netrestrict list: expected CIDR like 10.0.0.0/8 or fd00::/8")]
pub struct NetRestrictError(pub String);

impl NetRestrict {
    /// No restriction: every address is allowed.
    pub fn none() -> Self {
        Self::default()
    }

    /// Only 127.0.0.0/8 and ::1: what every test node uses, so that no test can send a
    /// packet off this machine.
    pub fn loopback() -> Self {
        Self {
            nets: vec!["127.0.0.0/8".parse().expect("valid CIDR"), "::1/128".parse().expect("valid CIDR")],
        }
    }

    /// A restriction to the given networks.
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self { nets }
    }

    /// Whether `ip` may be contacted.
    pub fn allows(&self, ip: &IpAddr) -> bool {
        if self.nets.is_empty() {
            return true;
        }
        // An IPv4-mapped IPv6 source (dual-stack sockets) is judged as the IPv4 address it is.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(*ip),
            IpAddr::V4(_) => *ip,
        };
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// Whether there is no restriction.
    pub fn is_unrestricted(&self) -> bool {
        self.nets.is_empty()
    }

    /// The networks.
    pub fn networks(&self) -> &[IpNet] {
        &self.nets
    }
}

impl FromStr for NetRestrict {
    type Err = NetRestrictError;

    /// Parses a comma-separated CIDR list; an empty string means no restriction.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let nets = s
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| part.parse::<IpNet>().map_err(|_| NetRestrictError(part.to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { nets })
    }
}

impl fmt::Display for NetRestrict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.nets.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_filter() {
        let r: NetRestrict = "10.0.0.0/8, 192.168.1.0/24".parse().unwrap();
        assert!(r.allows(&"10.1.2.3".parse().unwrap()));
        assert!(r.allows(&"192.168.1.9".parse().unwrap()));
        assert!(!r.allows(&"192.168.2.9".parse().unwrap()));
        assert!(r.allows(&"::ffff:10.0.0.1".parse().unwrap()));
        assert_eq!(r.to_string(), "10.0.0.0/8,192.168.1.0/24");
        assert!(NetRestrict::none().allows(&"1.1.1.1".parse().unwrap()));
        assert!(!NetRestrict::loopback().allows(&"1.1.1.1".parse().unwrap()));
    }

    #[test]
    fn malformed() {
        assert_eq!("10.0.0.0/33".parse::<NetRestrict>(), Err(NetRestrictError("10.0.0.0/33".into())));
        assert_eq!("10.0.0.1".parse::<NetRestrict>(), Err(NetRestrictError("10.0.0.1".into())));
        assert_eq!("foo".parse::<NetRestrict>(), Err(NetRestrictError("foo".into())));
    }
}
