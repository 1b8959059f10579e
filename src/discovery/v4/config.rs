//! discv4 configuration: every number names its source.

use std::{net::SocketAddr, time::Duration};

use super::{table::SubnetLimits, Discv4Error};
use crate::{discovery::NetRestrict, record::Enode};

/// geth `bucketSize`, Kademlia's k: live entries per bucket and nodes per lookup result.
pub const BUCKET_SIZE: usize = 16;
/// geth `maxReplacements`: candidates kept per bucket for when a live entry dies.
pub const MAX_REPLACEMENTS: usize = 10;
/// geth `alpha`: concurrent FindNode queries per lookup.
pub const ALPHA: usize = 3;
/// geth v4 `expiration`: how far in the future our packets' expiration lies.
pub const PACKET_EXPIRATION: Duration = Duration::from_secs(20);
/// geth `bondExpiration` (reth `ENDPOINT_PROOF_EXPIRATION`): how long an endpoint proof lasts.
pub const BOND_EXPIRATION: Duration = Duration::from_secs(24 * 60 * 60);
/// geth `respTimeout`: how long to wait for a reply (Pong, Neighbours, ENRResponse).
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
/// geth `PingInterval`: how often the stalest table entry is re-pinged.
pub const REVALIDATION_INTERVAL: Duration = Duration::from_secs(3);
/// reth `lookup_interval`: how often a random lookup refills the table.
pub const LOOKUP_INTERVAL: Duration = Duration::from_secs(20);
/// geth's `ipTracker` for discv5 (`minStatements` 10, window 5 min) is tuned for mainnet;
/// we take the same statement count.
pub const MIN_IP_VOTES: usize = 10;
/// geth `ipTrackerWindow`: how long a PONG's statement about our address counts.
pub const IP_VOTE_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Replies per second allowed to one source IP. A lookup from one node sends at most a few
/// FindNodes per second; 100 leaves room for many nodes behind one NAT while capping what a
/// spoofer can make us send.
pub const REPLY_RATE_PER_IP: u32 = 100;
/// Endpoint proofs and rate-limit buckets remembered (LRU); bounds memory under a flood of
/// fresh keys or spoofed sources.
pub const MAX_TRACKED_NODES: usize = 16_384;
/// Outstanding requests of each kind (pings, ENR requests); beyond it we stop initiating.
pub const MAX_PENDING_REQUESTS: usize = 4_096;
/// Capacity of the candidate channel; when the consumer lags, candidates are dropped and
/// counted rather than buffered without bound.
pub const CANDIDATE_CHANNEL_CAPACITY: usize = 1_024;

/// The default of [`Discv4Config::crypto_workers`]: one signature worker per core the
/// process may use (`std::thread::available_parallelism`), 1 where that is unknown. Beside
/// them the service task needs little CPU (BENCHMARKS.md, `discv4_load`).
pub fn default_crypto_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Configuration of a discv4 service. Build with [`Discv4Config::builder`] or start from
/// `Default` and set fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Discv4Config {
    /// UDP address to bind. Default: `0.0.0.0:30303` (the devp2p port).
    pub listen_addr: SocketAddr,
    /// RLPx port advertised in our Ping `from` endpoint; `None` for a discovery-only node
    /// (a bootnode). Default: `None`.
    pub tcp_port: Option<u16>,
    /// Nodes to bootstrap from. Default: none.
    pub bootnodes: Vec<Enode>,
    /// Live entries per bucket. Default: [`BUCKET_SIZE`] (16).
    pub bucket_size: usize,
    /// Replacement candidates per bucket. Default: [`MAX_REPLACEMENTS`] (10).
    pub max_replacements: usize,
    /// Subnet limits of the table. Default: 2 per /24 (/48 for IPv6) per bucket, 10 per table.
    pub subnet_limits: SubnetLimits,
    /// Networks we talk to; addresses outside are neither contacted nor entered. Default: all.
    pub netrestrict: NetRestrict,
    /// Concurrent queries per lookup. Default: [`ALPHA`] (3).
    pub alpha: usize,
    /// Expiration we put on our packets. Default: [`PACKET_EXPIRATION`] (20 s).
    pub packet_expiration: Duration,
    /// How long an endpoint proof lasts. Default: [`BOND_EXPIRATION`] (24 h).
    pub bond_expiration: Duration,
    /// Reply timeout. Default: [`REQUEST_TIMEOUT`] (500 ms).
    pub request_timeout: Duration,
    /// Table revalidation period. Default: [`REVALIDATION_INTERVAL`] (3 s).
    pub revalidation_interval: Duration,
    /// Random lookup period (the first lookup, of our own id, runs at start). Default:
    /// [`LOOKUP_INTERVAL`] (20 s).
    pub lookup_interval: Duration,
    /// EIP-868: fetch each new node's record (and its fork id) with an ENRRequest, and fetch
    /// it again when its sequence number grows. Default: true.
    pub enr_requests: bool,
    /// PONG statements about our address needed before we trust a majority. Default:
    /// [`MIN_IP_VOTES`] (10).
    pub min_ip_votes: usize,
    /// How long a PONG's statement counts. Default: [`IP_VOTE_WINDOW`] (5 min).
    pub ip_vote_window: Duration,
    /// Write the predicted external IP into the local ENR. Default: true.
    pub update_enr_ip: bool,
    /// Replies per second to one source IP; `None` disables the limit (load tests only).
    /// Default: `Some(`[`REPLY_RATE_PER_IP`]`)`.
    pub reply_rate_per_ip: Option<u32>,
    /// Capacity of the candidate channel. Default: [`CANDIDATE_CHANNEL_CAPACITY`].
    pub candidate_channel_capacity: usize,
    /// Threads that recover the signatures of incoming packets and sign and send our replies,
    /// beside the task that owns the table; 0 does all of it on the task (one core, and the
    /// order of everything is the order of the datagrams: simulations of many nodes in one
    /// process use it). Default: [`default_crypto_workers`] (the available parallelism).
    pub crypto_workers: usize,
}

impl Default for Discv4Config {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([0, 0, 0, 0], 30303)),
            tcp_port: None,
            bootnodes: Vec::new(),
            bucket_size: BUCKET_SIZE,
            max_replacements: MAX_REPLACEMENTS,
            subnet_limits: SubnetLimits::default(),
            netrestrict: NetRestrict::none(),
            alpha: ALPHA,
            packet_expiration: PACKET_EXPIRATION,
            bond_expiration: BOND_EXPIRATION,
            request_timeout: REQUEST_TIMEOUT,
            revalidation_interval: REVALIDATION_INTERVAL,
            lookup_interval: LOOKUP_INTERVAL,
            enr_requests: true,
            min_ip_votes: MIN_IP_VOTES,
            ip_vote_window: IP_VOTE_WINDOW,
            update_enr_ip: true,
            reply_rate_per_ip: Some(REPLY_RATE_PER_IP),
            candidate_channel_capacity: CANDIDATE_CHANNEL_CAPACITY,
            crypto_workers: default_crypto_workers(),
        }
    }
}

impl Discv4Config {
    /// A builder starting from the defaults.
    ///
    /// ```
    /// use ethp2p::discovery::v4::Discv4Config;
    /// let config = Discv4Config::builder().listen_addr("127.0.0.1:0".parse().unwrap()).alpha(3).build()?;
    /// assert_eq!(config.bucket_size, 16);
    /// # Ok::<(), ethp2p::discovery::v4::Discv4Error>(())
    /// ```
    pub fn builder() -> Discv4ConfigBuilder {
        Discv4ConfigBuilder { config: Self::default() }
    }

    fn validate(&self) -> Result<(), Discv4Error> {
        let bad = |what: &str| Err(Discv4Error::Config(what.to_owned()));
        if self.bucket_size == 0 {
            return bad("bucket_size must be at least 1");
        }
        if self.alpha == 0 {
            return bad("alpha must be at least 1");
        }
        if self.request_timeout.is_zero() {
            return bad("request_timeout must be positive");
        }
        if self.candidate_channel_capacity == 0 {
            return bad("candidate_channel_capacity must be at least 1");
        }
        if self.reply_rate_per_ip == Some(0) {
            return bad("reply_rate_per_ip must be positive (None disables the limit)");
        }
        Ok(())
    }
}

/// Builder for [`Discv4Config`]; each setter documents the field it sets.
#[derive(Debug, Clone)]
pub struct Discv4ConfigBuilder {
    config: Discv4Config,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        impl Discv4ConfigBuilder {
            $(
                $(#[$doc])*
                pub fn $name(&mut self, value: $ty) -> &mut Self {
                    self.config.$name = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// See [`Discv4Config::listen_addr`].
    listen_addr: SocketAddr,
    /// See [`Discv4Config::tcp_port`].
    tcp_port: Option<u16>,
    /// See [`Discv4Config::bootnodes`].
    bootnodes: Vec<Enode>,
    /// See [`Discv4Config::bucket_size`].
    bucket_size: usize,
    /// See [`Discv4Config::max_replacements`].
    max_replacements: usize,
    /// See [`Discv4Config::subnet_limits`].
    subnet_limits: SubnetLimits,
    /// See [`Discv4Config::netrestrict`].
    netrestrict: NetRestrict,
    /// See [`Discv4Config::alpha`].
    alpha: usize,
    /// See [`Discv4Config::packet_expiration`].
    packet_expiration: Duration,
    /// See [`Discv4Config::bond_expiration`].
    bond_expiration: Duration,
    /// See [`Discv4Config::request_timeout`].
    request_timeout: Duration,
    /// See [`Discv4Config::revalidation_interval`].
    revalidation_interval: Duration,
    /// See [`Discv4Config::lookup_interval`].
    lookup_interval: Duration,
    /// See [`Discv4Config::enr_requests`].
    enr_requests: bool,
    /// See [`Discv4Config::min_ip_votes`].
    min_ip_votes: usize,
    /// See [`Discv4Config::ip_vote_window`].
    ip_vote_window: Duration,
    /// See [`Discv4Config::update_enr_ip`].
    update_enr_ip: bool,
    /// See [`Discv4Config::reply_rate_per_ip`].
    reply_rate_per_ip: Option<u32>,
    /// See [`Discv4Config::candidate_channel_capacity`].
    candidate_channel_capacity: usize,
    /// See [`Discv4Config::crypto_workers`].
    crypto_workers: usize,
}

impl Discv4ConfigBuilder {
    /// Checks the configuration and returns it.
    pub fn build(&self) -> Result<Discv4Config, Discv4Error> {
        self.config.validate()?;
        Ok(self.config.clone())
    }
}

impl Discv4Config {
    /// Checks a configuration built without the builder.
    pub fn check(&self) -> Result<(), Discv4Error> {
        self.validate()
    }
}
