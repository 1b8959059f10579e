//! Which network an address is on: the one set of predicates every layer asks, and
//! `--netrestrict`, the networks a node may talk to.
//!
//! - [`is_lan`]: an address on the local network (loopback, RFC 1918, link-local,
//!   unique-local, "this network"). The discv4 table and the pool exempt these from their
//!   subnet limits; discv5 narrows its table filter to them for a private `--netrestrict`.
//! - [`is_special`]: a special-use address no peer should announce (documentation,
//!   benchmarking, broadcast, multicast, 6to4, ...).
//! - [`relay_allowed`]: whether a node at one address may tell us about another (discv4
//!   NEIGHBOURS and FINDNODE answers).
//! - [`is_global_unicast`]: an address routable on the internet, one a public node could
//!   have (what the discv4 address votes believe).
//!
//! The reference is go-ethereum's `p2p/netutil` (`IsLAN`, `IsSpecialNetwork`,
//! `CheckRelayIP`), with one deliberate difference: IPv4 link-local (169.254.0.0/16,
//! RFC 3927) is LAN here, as IPv6 link-local is in geth too; an address that is not routed
//! beyond one link is not one a public node may relay. An IPv4-mapped IPv6 address
//! (`::ffff:a.b.c.d`, what a dual-stack socket reports) is judged as the IPv4 address it is.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use ipnet::IpNet;

/// An IPv4-mapped IPv6 address becomes the IPv4 address it carries; others are unchanged.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        IpAddr::V4(_) => ip,
    }
}

/// An address on the local network: loopback (127.0.0.0/8, ::1), "this network"
/// (0.0.0.0/8, ::), private use (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16), link-local
/// (169.254.0.0/16, fe80::/10) or unique-local (fc00::/7).
///
/// geth `netutil.IsLAN`, plus IPv4 link-local and `::` (see the module docs).
pub(crate) fn is_lan(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.is_loopback() || v4.octets()[0] == 0 || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.is_unspecified() || is_unique_local(&v6) || is_unicast_link_local(&v6)
        }
    }
}

// `Ipv6Addr::is_unique_local`/`is_unicast_link_local` need Rust 1.84; spelled out to keep
// the MSRV question out of the way.
fn is_unique_local(ip: &Ipv6Addr) -> bool {
    ip.segments()[0] & 0xfe00 == 0xfc00
}

fn is_unicast_link_local(ip: &Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// IANA IPv4 special-purpose blocks that are neither LAN nor routable peers (RFC 5735,
/// RFC 5156; the list geth's `netutil` carries), as (network, prefix length).
const SPECIAL_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(192, 0, 0, 0), 29),       // IPv4 Service Continuity
    (Ipv4Addr::new(192, 0, 0, 9), 32),       // PCP Anycast
    (Ipv4Addr::new(192, 0, 0, 170), 32),     // NAT64/DNS64 Discovery
    (Ipv4Addr::new(192, 0, 0, 171), 32),     // NAT64/DNS64 Discovery
    (Ipv4Addr::new(192, 0, 2, 0), 24),       // TEST-NET-1
    (Ipv4Addr::new(192, 31, 196, 0), 24),    // AS112
    (Ipv4Addr::new(192, 52, 193, 0), 24),    // AMT
    (Ipv4Addr::new(192, 88, 99, 0), 24),     // 6to4 Relay Anycast
    (Ipv4Addr::new(192, 175, 48, 0), 24),    // AS112
    (Ipv4Addr::new(198, 18, 0, 0), 15),      // Device Benchmark Testing
    (Ipv4Addr::new(198, 51, 100, 0), 24),    // TEST-NET-2
    (Ipv4Addr::new(203, 0, 113, 0), 24),     // TEST-NET-3
    (Ipv4Addr::new(255, 255, 255, 255), 32), // Limited Broadcast
];

/// IANA IPv6 special-purpose blocks (the iana-ipv6-special-registry entries geth carries).
const SPECIAL_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64), // Discard-Only
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32), // TEREDO
    (Ipv6Addr::new(0x2001, 1, 0, 0, 0, 0, 0, 1), 128), // Port Control Protocol Anycast
    (Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0), 48), // Benchmarking
    (Ipv6Addr::new(0x2001, 3, 0, 0, 0, 0, 0, 0), 32), // AMT
    (Ipv6Addr::new(0x2001, 4, 0x112, 0, 0, 0, 0, 0), 48), // AS112-v6
    (Ipv6Addr::new(0x2001, 5, 0, 0, 0, 0, 0, 0), 32), // EID Space for LISP
    (Ipv6Addr::new(0x2001, 0x10, 0, 0, 0, 0, 0, 0), 28), // ORCHID (deprecated)
    (Ipv6Addr::new(0x2001, 0x20, 0, 0, 0, 0, 0, 0), 28), // ORCHIDv2
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // Documentation
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16), // 6to4
];

/// A special-use address: multicast, limited broadcast, documentation (TEST-NET-1..3,
/// 2001:db8::/32), benchmarking, 6to4, TEREDO and the other IANA special-purpose blocks no
/// peer lives in. geth `netutil.IsSpecialNetwork`.
pub(crate) fn is_special(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            v4.is_multicast()
                || SPECIAL_V4.iter().any(|&(net, len)| prefix_matches(&v4.octets(), &net.octets(), len))
        }
        IpAddr::V6(v6) => {
            v6.is_multicast()
                || SPECIAL_V6.iter().any(|&(net, len)| prefix_matches(&v6.octets(), &net.octets(), len))
        }
    }
}

/// Whether the first `len` bits of `ip` and `net` agree.
fn prefix_matches(ip: &[u8], net: &[u8], len: u8) -> bool {
    let (whole, rest) = (usize::from(len / 8), len % 8);
    if ip[..whole] != net[..whole] {
        return false;
    }
    rest == 0 || (ip[whole] ^ net[whole]) >> (8 - rest) == 0
}

/// A unicast address routable on the internet: not LAN ([`is_lan`]), not special-use
/// ([`is_special`]), not multicast or unspecified; for IPv4 also not shared address space
/// (100.64.0.0/10, RFC 6598: carrier NAT, never reachable from outside), the IETF protocol
/// block 192.0.0.0/24 or the reserved 240.0.0.0/4 (with broadcast); for IPv6 within the
/// global unicast space 2000::/3.
pub(crate) fn is_global_unicast(ip: IpAddr) -> bool {
    let ip = canonical(ip);
    if is_lan(ip) || is_special(ip) || ip.is_unspecified() || ip.is_multicast() {
        return false;
    }
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            let shared = o[0] == 100 && o[1] & 0xc0 == 64;
            !shared && o[..3] != [192, 0, 0] && o[0] < 240
        }
        IpAddr::V6(v6) => v6.segments()[0] & 0xe000 == 0x2000,
    }
}

/// Whether a node at `sender` may tell us about `addr`: only if the address means something
/// from where the sender stands. geth `netutil.CheckRelayIP`, whose four rules are:
/// unspecified and special-use addresses are never valid; loopback only from a loopback
/// sender; LAN only from a LAN sender; anything else from anyone.
pub(crate) fn relay_allowed(sender: IpAddr, addr: IpAddr) -> bool {
    let (sender, addr) = (canonical(sender), canonical(addr));
    if addr.is_unspecified() || is_special(addr) {
        return false;
    }
    if addr.is_loopback() && !sender.is_loopback() {
        return false;
    }
    // A LAN address only from a LAN sender.
    !is_lan(addr) || is_lan(sender)
}

/// A list of CIDR networks. Discovery and dialing ignore every address outside it; an empty
/// list means no restriction.
///
/// ```
/// use ethp2p::NetRestrict;
/// let only_loopback: NetRestrict = "127.0.0.0/8".parse()?;
/// assert!(only_loopback.allows(&"127.0.0.5".parse().unwrap()));
/// assert!(!only_loopback.allows(&"8.8.8.8".parse().unwrap()));
/// # Ok::<(), ethp2p::discovery::NetRestrictError>(())
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
        let ip = canonical(*ip);
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn lan_v4() {
        for lan in
            ["127.0.0.1", "127.255.0.9", "0.0.0.0", "0.1.2.3", "10.0.0.1", "172.16.0.1", "172.31.255.255"]
        {
            assert!(is_lan(ip(lan)), "{lan}");
        }
        for lan in ["192.168.1.1", "169.254.1.1", "::ffff:10.1.2.3", "::ffff:127.0.0.1"] {
            assert!(is_lan(ip(lan)), "{lan}");
        }
        for wan in ["1.1.1.1", "8.8.8.8", "172.15.255.255", "172.32.0.0", "192.169.0.1", "100.64.0.1"] {
            assert!(!is_lan(ip(wan)), "{wan}");
        }
        assert!(!is_lan(ip("::ffff:8.8.8.8")));
    }

    #[test]
    fn lan_v6() {
        for lan in ["::1", "::", "fe80::1", "febf::1", "fc00::1", "fd12:3456::1"] {
            assert!(is_lan(ip(lan)), "{lan}");
        }
        for wan in ["2a00:1450::1", "fec0::1", "fe00::1", "2001:db8::1", "ff02::1"] {
            assert!(!is_lan(ip(wan)), "{wan}");
        }
    }

    #[test]
    fn special_v4() {
        for special in ["192.0.2.1", "198.51.100.7", "203.0.113.255", "198.18.0.1", "198.19.255.255"] {
            assert!(is_special(ip(special)), "{special}");
        }
        for special in
            ["255.255.255.255", "224.0.0.1", "239.1.2.3", "192.0.0.7", "192.88.99.1", "::ffff:192.0.2.1"]
        {
            assert!(is_special(ip(special)), "{special}");
        }
        for normal in
            ["192.0.0.8", "192.0.3.1", "198.20.0.1", "203.0.114.1", "8.8.8.8", "10.0.0.1", "127.0.0.1"]
        {
            assert!(!is_special(ip(normal)), "{normal}");
        }
    }

    #[test]
    fn special_v6() {
        for special in
            ["2001:db8::1", "2001:db8:ffff::1", "2002::1", "ff02::1", "100::1", "2001:1::1", "2001:10::1"]
        {
            assert!(is_special(ip(special)), "{special}");
        }
        for normal in ["2001:db9::1", "2001:1::2", "2a00:1450::1", "::1", "fe80::1", "2001:30::1"] {
            assert!(!is_special(ip(normal)), "{normal}");
        }
    }

    #[test]
    fn global_unicast() {
        for global in
            ["1.1.1.1", "8.8.4.4", "100.63.255.255", "100.128.0.1", "223.255.255.1", "::ffff:9.9.9.9"]
        {
            assert!(is_global_unicast(ip(global)), "{global}");
        }
        for global in ["2a00:1450::1", "2600::1", "3fff::1"] {
            assert!(is_global_unicast(ip(global)), "{global}");
        }
        let not_v4 =
            ["0.0.0.0", "0.1.2.3", "10.0.0.1", "127.0.0.1", "169.254.0.1", "100.64.0.1", "100.127.0.1"];
        let not_v4b = ["192.0.0.1", "192.0.2.1", "198.18.0.1", "224.0.0.1", "240.0.0.1", "255.255.255.255"];
        for not in not_v4.into_iter().chain(not_v4b) {
            assert!(!is_global_unicast(ip(not)), "{not}");
        }
        for not in [
            "::",
            "::1",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "2001:db8::1",
            "2002::1",
            "4000::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_global_unicast(ip(not)), "{not}");
        }
    }

    #[test]
    fn relay_rules() {
        let (lo, lan, wan, wan6) = (ip("127.0.0.1"), ip("192.168.0.2"), ip("8.8.8.8"), ip("2a00:1450::1"));
        // Anyone may relay a public address.
        for sender in [lo, lan, wan, wan6] {
            assert!(relay_allowed(sender, ip("1.2.3.4")));
            assert!(relay_allowed(sender, ip("2a00:1450::2")));
        }
        // Loopback only from loopback; LAN from LAN (loopback is LAN).
        assert!(relay_allowed(lo, ip("127.0.0.2")));
        assert!(!relay_allowed(lan, ip("127.0.0.2")));
        assert!(!relay_allowed(wan, ip("::1")));
        assert!(relay_allowed(lan, ip("10.0.0.1")));
        assert!(relay_allowed(lo, ip("10.0.0.1")));
        assert!(!relay_allowed(wan, ip("10.0.0.1")));
        assert!(!relay_allowed(wan6, ip("fd00::1")));
        assert!(relay_allowed(ip("fd00::2"), ip("fd00::1")));
        // Never: unspecified or special-use, whoever says so.
        for never in ["0.0.0.0", "::", "192.0.2.1", "2001:db8::1", "224.0.0.1", "255.255.255.255"] {
            assert!(!relay_allowed(lo, ip(never)), "{never}");
            assert!(!relay_allowed(wan, ip(never)), "{never}");
        }
        // A mapped sender or address is judged as IPv4.
        assert!(relay_allowed(ip("::ffff:127.0.0.1"), ip("127.0.0.2")));
        assert!(!relay_allowed(ip("::ffff:8.8.8.8"), ip("::ffff:192.168.0.1")));
    }
}
