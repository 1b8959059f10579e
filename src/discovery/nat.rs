//! NAT traversal settings: how the node learns and advertises its public address.
//!
//! `--nat none|extip:IP|upnp|pmp[:GATEWAY]|any`, as in go-ethereum. [`NatConfig`] is the
//! parsed form the bootnode and node CLIs share.

use std::{fmt, net::IpAddr, str::FromStr};

/// How to find (and open) the node's public address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NatConfig {
    /// Advertise the listen address; learn nothing. For nodes with a public address.
    None,
    /// Advertise this address (the node sits behind a NAT whose ports are forwarded).
    ExtIp(IpAddr),
    /// Map the ports on the gateway with UPnP IGD and advertise its external address.
    Upnp,
    /// Map the ports with NAT-PMP (RFC 6886), on this gateway or the default route's.
    Pmp(Option<IpAddr>),
    /// Try UPnP, then NAT-PMP; the address votes of discv4/discv5 apply either way.
    /// Default, as in go-ethereum and reth.
    #[default]
    Any,
}

/// A `--nat` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NatConfigError {
    /// Not one of the known mechanisms.
    #[error("unknown NAT mechanism {0:?} (expected none, extip:<IP>, upnp, pmp[:<IP>] or any)")]
    Unknown(String),
    /// `extip:` without an address.
    #[error("extip needs an address, as in extip:203.0.113.7")]
    MissingIp,
    /// The address after `extip:` or `pmp:` is not an IP address.
    #[error("invalid IP address {0:?}")]
    InvalidIp(String),
}

impl FromStr for NatConfig {
    type Err = NatConfigError;

    /// ```
    /// use ethp2p::discovery::NatConfig;
    /// assert_eq!("extip:203.0.113.7".parse::<NatConfig>()?, NatConfig::ExtIp([203, 0, 113, 7].into()));
    /// assert_eq!("any".parse::<NatConfig>()?, NatConfig::Any);
    /// assert!("stun".parse::<NatConfig>().is_err());
    /// # Ok::<(), ethp2p::discovery::NatConfigError>(())
    /// ```
    fn from_str(text: &str) -> Result<Self, NatConfigError> {
        let text = text.trim();
        let (mechanism, arg) = match text.split_once(':') {
            Some((m, a)) => (m, Some(a)),
            None => (text, None),
        };
        let ip = |a: &str| a.parse::<IpAddr>().map_err(|_| NatConfigError::InvalidIp(a.to_owned()));
        match (mechanism.to_ascii_lowercase().as_str(), arg) {
            ("none" | "off", None) => Ok(Self::None),
            ("extip", Some("") | None) => Err(NatConfigError::MissingIp),
            ("extip", Some(a)) => Ok(Self::ExtIp(ip(a)?)),
            ("upnp", None) => Ok(Self::Upnp),
            ("pmp" | "natpmp", None) => Ok(Self::Pmp(None)),
            ("pmp" | "natpmp", Some(a)) => Ok(Self::Pmp(Some(ip(a)?))),
            ("any" | "", None) => Ok(Self::Any),
            _ => Err(NatConfigError::Unknown(text.to_owned())),
        }
    }
}

impl fmt::Display for NatConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::ExtIp(ip) => write!(f, "extip:{ip}"),
            Self::Upnp => f.write_str("upnp"),
            Self::Pmp(None) => f.write_str("pmp"),
            Self::Pmp(Some(ip)) => write!(f, "pmp:{ip}"),
            Self::Any => f.write_str("any"),
        }
    }
}

impl NatConfig {
    /// The address to advertise without asking any gateway, if the setting fixes one.
    pub fn static_ip(&self) -> Option<IpAddr> {
        match self {
            Self::ExtIp(ip) => Some(*ip),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let cases = [
            ("none", NatConfig::None),
            ("NONE", NatConfig::None),
            ("extip:1.2.3.4", NatConfig::ExtIp([1, 2, 3, 4].into())),
            ("extip:2001:db8::1", NatConfig::ExtIp("2001:db8::1".parse().unwrap())),
            ("upnp", NatConfig::Upnp),
            ("pmp", NatConfig::Pmp(None)),
            ("pmp:192.168.1.1", NatConfig::Pmp(Some([192, 168, 1, 1].into()))),
            ("any", NatConfig::Any),
        ];
        for (text, want) in cases {
            let got: NatConfig = text.parse().unwrap();
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string().parse::<NatConfig>().unwrap(), want);
        }
        assert_eq!(NatConfig::default(), NatConfig::Any);
        assert_eq!(NatConfig::ExtIp([1, 2, 3, 4].into()).static_ip(), Some([1, 2, 3, 4].into()));
    }

    #[test]
    fn errors() {
        assert_eq!("extip".parse::<NatConfig>(), Err(NatConfigError::MissingIp));
        assert_eq!("extip:".parse::<NatConfig>(), Err(NatConfigError::MissingIp));
        assert_eq!("extip:1.2.3".parse::<NatConfig>(), Err(NatConfigError::InvalidIp("1.2.3".into())));
        assert_eq!("pmp:gw".parse::<NatConfig>(), Err(NatConfigError::InvalidIp("gw".into())));
        assert_eq!("stun".parse::<NatConfig>(), Err(NatConfigError::Unknown("stun".into())));
        assert_eq!("upnp:1.2.3.4".parse::<NatConfig>(), Err(NatConfigError::Unknown("upnp:1.2.3.4".into())));
    }
}
