//! The table filter class that stands in for the netrestrict list inside the `discv5` crate
//! (see the parent module's docs on netrestrict).

use std::net::IpAddr;

use ipnet::IpNet;

use crate::record::{net::is_lan, Enr, NetRestrict};

/// The narrowest built-in filter class that covers every network of `netrestrict` (see the
/// module docs for why this is a class and not the list itself).
pub(super) fn table_filter_for(netrestrict: &NetRestrict) -> fn(&Enr) -> bool {
    let nets = netrestrict.networks();
    if nets.is_empty() {
        return allow_all;
    }
    if nets.iter().all(is_loopback_net) {
        return loopback_only;
    }
    if nets.iter().all(|net| is_loopback_net(net) || is_private_net(net)) {
        return private_only;
    }
    allow_all
}

fn allow_all(_: &Enr) -> bool {
    true
}

/// Every address in the record is loopback, and there is at least one.
fn loopback_only(enr: &Enr) -> bool {
    all_addresses(enr, |ip| ip.is_loopback())
}

/// Every address in the record is on the local network ([`is_lan`]).
fn private_only(enr: &Enr) -> bool {
    all_addresses(enr, is_lan)
}

fn all_addresses(enr: &Enr, allowed: impl Fn(IpAddr) -> bool) -> bool {
    let ips: Vec<IpAddr> = enr.ip4().map(IpAddr::V4).into_iter().chain(enr.ip6().map(IpAddr::V6)).collect();
    !ips.is_empty() && ips.into_iter().all(allowed)
}

fn is_loopback_net(net: &IpNet) -> bool {
    match net {
        IpNet::V4(n) => n.network().is_loopback() && n.prefix_len() >= 8,
        IpNet::V6(n) => n.prefix_len() == 128 && n.network().is_loopback(),
    }
}

fn is_private_net(net: &IpNet) -> bool {
    // A network is private if both its first and last address are, and it is no wider than
    // the private block it sits in (the blocks are /8, /10, /12, /16, /7).
    let (first, last) = (net.network(), net.broadcast());
    let min_prefix = match first {
        IpAddr::V4(ip) if ip.octets()[0] == 10 || ip.is_loopback() => 8,
        IpAddr::V4(ip) if ip.is_link_local() || ip.octets()[0] == 192 => 16,
        IpAddr::V4(_) => 12,
        // fc00::/7, unique-local.
        IpAddr::V6(ip) if ip.segments()[0] & 0xfe00 == 0xfc00 => 7,
        IpAddr::V6(_) => 10,
    };
    net.prefix_len() >= min_prefix && is_lan(first) && is_lan(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeKey;

    fn enr_at(ip: IpAddr) -> Enr {
        let key = NodeKey::generate();
        let mut b = Enr::builder();
        b.ip(ip).udp4(30303).udp6(30303);
        b.build(&key.to_combined_key()).unwrap()
    }

    #[test]
    fn filter_classes() {
        let lo = table_filter_for(&NetRestrict::loopback());
        assert!(lo(&enr_at([127, 0, 0, 9].into())));
        assert!(!lo(&enr_at([10, 0, 0, 1].into())));
        assert!(!lo(&enr_at([8, 8, 8, 8].into())));
        // A record with no address never passes a restricted class.
        let key = NodeKey::generate();
        let bare = Enr::builder().build(&key.to_combined_key()).unwrap();
        assert!(!lo(&bare));

        let private = table_filter_for(&"10.0.0.0/8,192.168.1.0/24,fd00::/8".parse().unwrap());
        assert!(private(&enr_at([10, 1, 1, 1].into())));
        assert!(private(&enr_at([192, 168, 7, 1].into())), "the class is wider than the list");
        assert!(!private(&enr_at([8, 8, 8, 8].into())));
        assert!(!private(&enr_at("2001:db8::1".parse().unwrap())));

        let public = table_filter_for(&"10.0.0.0/8,1.2.3.0/24".parse().unwrap());
        assert!(public(&enr_at([8, 8, 8, 8].into())));
        let wide = table_filter_for(&"0.0.0.0/0".parse().unwrap());
        assert!(wide(&enr_at([8, 8, 8, 8].into())));
        let none = table_filter_for(&NetRestrict::none());
        assert!(none(&bare));
    }

    #[test]
    fn private_net_bounds() {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        assert!(is_private_net(&net("10.0.0.0/8")));
        assert!(!is_private_net(&net("10.0.0.0/7")));
        assert!(is_private_net(&net("172.16.0.0/12")));
        assert!(!is_private_net(&net("172.16.0.0/11")));
        assert!(is_private_net(&net("192.168.0.0/16")));
        assert!(!is_private_net(&net("192.0.0.0/8")));
        assert!(is_private_net(&net("fc00::/7")));
        assert!(!is_private_net(&net("fc00::/6")));
        assert!(is_loopback_net(&net("127.0.0.0/8")));
        assert!(!is_loopback_net(&net("127.0.0.0/7")));
        assert!(is_loopback_net(&net("::1/128")));
    }
}
