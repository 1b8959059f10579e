//! The discv5 service's configuration, its builder, and the checks `build()` runs on the
//! bootnodes against netrestrict.

use std::{net::IpAddr, net::SocketAddr, time::Duration};

use super::super::NetRestrict;
#[cfg(doc)]
use super::{Discv5, Discv5Stats};
use crate::{
    discovery::Discv5Error,
    record::{Enode, Enr, ForkFilter, NodeId},
};

/// The `discv5` crate's default ping interval.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(300);

/// discv5.md recommends a refresh of the table by random lookups; geth runs one every 30 s
/// once its table is full, reth every 60 s. We pick 30 s.
pub const DEFAULT_LOOKUP_INTERVAL: Duration = Duration::from_secs(30);
/// Lookups while bootstrapping: quick, so a fresh node fills its table in seconds.
pub const DEFAULT_BOOTSTRAP_LOOKUP_INTERVAL: Duration = Duration::from_secs(2);
/// How many lookups the bootstrap phase lasts before slowing down (~1 min at the default
/// pace, when every one of them finds new nodes).
pub const DEFAULT_BOOTSTRAP_LOOKUPS: u32 = 30;
/// Candidates buffered for a slow consumer before new ones are dropped (and counted).
pub const DEFAULT_CANDIDATE_CAPACITY: usize = 1024;
/// Nodes remembered to emit each (node, seq) once; ~100 bytes each.
pub const DEFAULT_SEEN_CAPACITY: usize = 16_384;
/// The devp2p default port, as geth and reth use for discovery.
pub const DEFAULT_PORT: u16 = 30303;

/// Configuration of the discv5 service. Every field says its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Discv5Config {
    /// UDP address to listen on. Port 0 picks a free port; read it back with
    /// [`Discv5::local_addr`]. Default: `0.0.0.0:30303`.
    pub listen: SocketAddr,
    /// Records to bootstrap from. Each must be within `netrestrict`. Default: none (the node
    /// only answers until someone contacts it).
    pub bootnodes: Vec<Enr>,
    /// `enode://` bootnodes (no record). discv5 needs a record to put a node in its table, so
    /// the service opens a session with each (a TALKREQ) and discv5 then asks the node for
    /// its record (FINDNODE at distance 0); the node joins the table once it answers. Only
    /// nodes that speak discv5 on their UDP port can answer. Default: none.
    pub bootnode_enodes: Vec<Enode>,
    /// Pause between random lookups after the bootstrap phase. Default: 30 s
    /// ([`DEFAULT_LOOKUP_INTERVAL`]).
    pub lookup_interval: Duration,
    /// Pause between random lookups during the bootstrap phase, after a lookup that learned
    /// a new record. A bootstrap lookup that learned nothing new doubles the pause before the
    /// next one, up to `lookup_interval` (2 s, 4 s, 8 s, 16 s, 30 s by default); one that
    /// learns something restores this pace. Default: 2 s.
    pub bootstrap_lookup_interval: Duration,
    /// Number of lookups in the bootstrap phase. Default: 30.
    pub bootstrap_lookups: u32,
    /// Capacity of the candidate channel; when it is full new candidates are dropped and
    /// counted in [`Discv5Stats::dropped`]. Default: 1024.
    pub candidate_capacity: usize,
    /// Number of (node, seq) pairs remembered to emit each record once. Default: 16384.
    pub seen_capacity: usize,
    /// Networks the node may talk to. Default: no restriction.
    pub netrestrict: NetRestrict,
    /// Fork filter of our chain, used to count records with a foreign fork id. Without one,
    /// a record is foreign when its fork hash differs from the one in our own record.
    /// Default: none.
    pub fork_filter: Option<ForkFilter>,
    /// Let the `discv5` crate update our record's IP and port from what peers observe
    /// (its PONG votes). Default: false: the crate counts one vote per node id, so a sybil
    /// set of keys on one host can rewrite our address (issue 16). Our record's address
    /// moves only through discv4's votes (once per reporting /24, a quorum of networks,
    /// only addresses we could have), which write the record discv5 serves, or stays as
    /// configured (`--nat extip:`).
    pub enr_update: bool,
    /// How often discv5 pings each connected node of its table (liveness, record seq and
    /// its address votes). Default: 300 s, the `discv5` crate's.
    pub ping_interval: Duration,
    /// Run random lookups (the bootstrap phase, then one every `lookup_interval`). Without
    /// them the node only answers, and looks up when asked ([`Discv5::lookup`]): what a
    /// crawler's own node or a test network whose tables are filled directly wants, since
    /// every lookup costs its node up to 48 record signature checks per peer asked.
    /// Default: true.
    pub random_lookups: bool,
}

impl Default for Discv5Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            bootnodes: Vec::new(),
            bootnode_enodes: Vec::new(),
            lookup_interval: DEFAULT_LOOKUP_INTERVAL,
            bootstrap_lookup_interval: DEFAULT_BOOTSTRAP_LOOKUP_INTERVAL,
            bootstrap_lookups: DEFAULT_BOOTSTRAP_LOOKUPS,
            candidate_capacity: DEFAULT_CANDIDATE_CAPACITY,
            seen_capacity: DEFAULT_SEEN_CAPACITY,
            netrestrict: NetRestrict::none(),
            fork_filter: None,
            enr_update: false,
            ping_interval: DEFAULT_PING_INTERVAL,
            random_lookups: true,
        }
    }
}

impl Discv5Config {
    /// A builder starting from the defaults.
    pub fn builder() -> Discv5ConfigBuilder {
        Discv5ConfigBuilder { config: Self::default() }
    }
}

/// Builds a [`Discv5Config`].
///
/// ```
/// use ethp2p::{discovery::Discv5Config, NetRestrict};
/// let config = Discv5Config::builder()
///     .listen("127.0.0.1:0".parse().unwrap())
///     .netrestrict(NetRestrict::loopback())
///     .build()?;
/// assert_eq!(config.listen.port(), 0);
/// # Ok::<(), ethp2p::discovery::Discv5Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Discv5ConfigBuilder {
    pub(super) config: Discv5Config,
}

impl Discv5ConfigBuilder {
    /// See [`Discv5Config::listen`].
    pub fn listen(&mut self, addr: SocketAddr) -> &mut Self {
        self.config.listen = addr;
        self
    }

    /// Adds one bootstrap record. See [`Discv5Config::bootnodes`].
    pub fn bootnode(&mut self, enr: Enr) -> &mut Self {
        self.config.bootnodes.push(enr);
        self
    }

    /// See [`Discv5Config::bootnodes`].
    pub fn bootnodes(&mut self, enrs: impl IntoIterator<Item = Enr>) -> &mut Self {
        self.config.bootnodes.extend(enrs);
        self
    }

    /// Adds one `enode://` bootnode. See [`Discv5Config::bootnode_enodes`].
    pub fn bootnode_enode(&mut self, enode: Enode) -> &mut Self {
        self.config.bootnode_enodes.push(enode);
        self
    }

    /// See [`Discv5Config::lookup_interval`].
    pub fn lookup_interval(&mut self, interval: Duration) -> &mut Self {
        self.config.lookup_interval = interval;
        self
    }

    /// Sets the bootstrap phase: `lookups` lookups, `interval` apart while they find new
    /// records (see [`Discv5Config::bootstrap_lookup_interval`]).
    pub fn bootstrap(&mut self, lookups: u32, interval: Duration) -> &mut Self {
        self.config.bootstrap_lookups = lookups;
        self.config.bootstrap_lookup_interval = interval;
        self
    }

    /// See [`Discv5Config::candidate_capacity`].
    pub fn candidate_capacity(&mut self, capacity: usize) -> &mut Self {
        self.config.candidate_capacity = capacity;
        self
    }

    /// See [`Discv5Config::seen_capacity`].
    pub fn seen_capacity(&mut self, capacity: usize) -> &mut Self {
        self.config.seen_capacity = capacity;
        self
    }

    /// See [`Discv5Config::netrestrict`].
    pub fn netrestrict(&mut self, netrestrict: NetRestrict) -> &mut Self {
        self.config.netrestrict = netrestrict;
        self
    }

    /// See [`Discv5Config::fork_filter`].
    pub fn fork_filter(&mut self, filter: ForkFilter) -> &mut Self {
        self.config.fork_filter = Some(filter);
        self
    }

    /// See [`Discv5Config::ping_interval`].
    pub fn ping_interval(&mut self, interval: Duration) -> &mut Self {
        self.config.ping_interval = interval;
        self
    }

    /// Lets the `discv5` crate's own votes move our address. See
    /// [`Discv5Config::enr_update`] for why it is off by default.
    pub fn enable_enr_update(&mut self) -> &mut Self {
        self.config.enr_update = true;
        self
    }

    /// Keeps our record's address as given (the default). See [`Discv5Config::enr_update`].
    pub fn disable_enr_update(&mut self) -> &mut Self {
        self.config.enr_update = false;
        self
    }

    /// Turns random lookups off. See [`Discv5Config::random_lookups`].
    pub fn disable_random_lookups(&mut self) -> &mut Self {
        self.config.random_lookups = false;
        self
    }

    /// Checks the configuration.
    pub fn build(&self) -> Result<Discv5Config, Discv5Error> {
        let c = &self.config;
        if c.lookup_interval.is_zero() || (c.bootstrap_lookups > 0 && c.bootstrap_lookup_interval.is_zero()) {
            return Err(Discv5Error::Config("lookup intervals must be non-zero"));
        }
        if c.candidate_capacity == 0 || c.seen_capacity == 0 {
            return Err(Discv5Error::Config("candidate and seen capacities must be non-zero"));
        }
        for enr in &c.bootnodes {
            check_bootnode(enr, &c.netrestrict)?;
        }
        for enode in &c.bootnode_enodes {
            check_enode(enode, &c.netrestrict)?;
        }
        Ok(c.clone())
    }
}

pub(super) fn check_bootnode(enr: &Enr, netrestrict: &NetRestrict) -> Result<(), Discv5Error> {
    let node_id = NodeId::from(enr.node_id().raw());
    let ip = enr.ip4().map(IpAddr::V4).or(enr.ip6().map(IpAddr::V6));
    match ip {
        None => Err(Discv5Error::BootnodeUnreachable(node_id)),
        Some(ip) if !netrestrict.allows(&ip) => Err(Discv5Error::BootnodeRestricted(node_id, ip)),
        Some(_) if enr.udp4().or(enr.udp6()).is_none() => Err(Discv5Error::BootnodeUnreachable(node_id)),
        Some(_) => Ok(()),
    }
}

pub(super) fn check_enode(enode: &Enode, netrestrict: &NetRestrict) -> Result<(), Discv5Error> {
    if !netrestrict.allows(&enode.ip) {
        return Err(Discv5Error::BootnodeRestricted(enode.node_id(), enode.ip));
    }
    if enode.udp_port == 0 {
        return Err(Discv5Error::BootnodeUnreachable(enode.node_id()));
    }
    Ok(())
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
    fn config_validation() {
        assert!(matches!(
            Discv5Config::builder().lookup_interval(Duration::ZERO).build(),
            Err(Discv5Error::Config(_))
        ));
        assert!(matches!(Discv5Config::builder().candidate_capacity(0).build(), Err(Discv5Error::Config(_))));
        let outside = enr_at([8, 8, 8, 8].into());
        let err = Discv5Config::builder().netrestrict(NetRestrict::loopback()).bootnode(outside).build();
        assert!(
            matches!(err, Err(Discv5Error::BootnodeRestricted(_, ip)) if ip == IpAddr::from([8, 8, 8, 8]))
        );
        let key = NodeKey::generate();
        let no_ip = Enr::builder().udp4(1).build(&key.to_combined_key()).unwrap();
        assert!(matches!(
            Discv5Config::builder().bootnode(no_ip).build(),
            Err(Discv5Error::BootnodeUnreachable(_))
        ));
        let enode = Enode::new(NodeKey::generate().peer_id(), "10.0.0.1:30303".parse().unwrap());
        assert!(matches!(
            Discv5Config::builder().netrestrict(NetRestrict::loopback()).bootnode_enode(enode).build(),
            Err(Discv5Error::BootnodeRestricted(..))
        ));
        let mut no_udp = Enode::new(NodeKey::generate().peer_id(), SocketAddr::from(([127, 0, 0, 1], 30303)));
        no_udp.udp_port = 0;
        assert!(matches!(
            Discv5Config::builder().bootnode_enode(no_udp).build(),
            Err(Discv5Error::BootnodeUnreachable(_))
        ));
        let defaults = Discv5Config::default();
        assert_eq!(defaults.listen.port(), DEFAULT_PORT);
        assert!(defaults.netrestrict.is_unrestricted());
    }
}
