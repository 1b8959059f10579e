//! EIP-1459 node lists in DNS: read them ([`DnsDiscovery`]) and publish them ([`sign_tree`]).
//!
//! A tree is a set of TXT records under one domain: a signed root, branches naming their
//! children by hash, links to other trees, and `enr:` leaves. Because every entry below
//! the root is named by the hash of its content and the root is signed, a client checks the
//! whole tree against the one public key in the tree's `enrtree://KEY@domain` URL.
//!
//! Layers, as everywhere in ethp2p:
//! - [`entry`]: the text form of the four entry types, parsing and signing (pure).
//! - [`DnsWalker`]: the sans-IO client core — which name to look up next, what an answer
//!   means, caps on work.
//! - [`DnsDiscovery`]: the handle to the task that owns a walker, performs lookups
//!   through a [`Resolver`] (rate-limited, with a timeout), rechecks roots, and sends the
//!   nodes it finds as [`Candidate`](crate::Candidate)s with source
//!   [`CandidateSource::Dns`](crate::discovery::CandidateSource::Dns) on a bounded channel.
//! - [`sign_tree`] / [`SignedTree`]: build and sign a tree from node records, and write it
//!   as a zone file or as JSON.

pub mod entry;
mod error;
mod resolver;
mod service;
mod tree;
mod walk;

use std::time::Duration;

pub use entry::{BranchEntry, Entry, LinkEntry, RootEntry};
pub use error::{DnsError, EntryError, ResolveError};
pub use resolver::{HickoryResolver, MemoryResolver, Resolver};
pub use service::DnsDiscovery;
pub use tree::{
    read_nodes_json, sign_nodes_file, sign_tree, SignError, SignOutput, SignedTree, ENTRY_TTL,
    MAX_BRANCH_CHILDREN, ROOT_TTL,
};
pub use walk::{DnsWalker, Query, QueryId, TreeStatus, WalkEvent};

/// reth and go-ethereum: re-resolve each tree's root every 30 minutes.
pub const DEFAULT_RECHECK_INTERVAL: Duration = Duration::from_secs(30 * 60);
/// reth and go-ethereum: give up on one TXT lookup after 5 seconds.
pub const DEFAULT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// go-ethereum `dnsdisc`: 3 lookups per second on average…
pub const DEFAULT_RATE_LIMIT: f64 = 3.0;
/// …with bursts of up to 10.
pub const DEFAULT_RATE_BURST: u32 = 10;
/// One lookup per tree is in flight at most; this caps the total over all trees.
pub const DEFAULT_MAX_CONCURRENT_LOOKUPS: usize = 4;
/// Entries (branches and leaves) fetched per subtree of one root. The largest public trees
/// (all.mainnet.ethdisco.net) hold a few thousand nodes; 20 000 is ample for them and caps
/// a hostile tree at ~2 h of rate-limited lookups per root.
pub const DEFAULT_MAX_TREE_ENTRIES: usize = 20_000;
/// Branch levels below a root. go-ethereum's 13-way branches reach 20 000 leaves in 4;
/// a chain of single-child branches deeper than this is an attack, not a tree.
pub const DEFAULT_MAX_TREE_DEPTH: usize = 16;
/// Trees walked at once, configured and linked together.
pub const DEFAULT_MAX_TREES: usize = 32;
/// Links followed from a configured tree (a link in a linked tree is level 2, …).
pub const DEFAULT_MAX_LINK_DEPTH: usize = 4;
/// Lookups of one entry before it is skipped.
pub const DEFAULT_ENTRY_ATTEMPTS: u32 = 3;
/// Node records buffered for a slow consumer before the walk pauses: the walk is lazy,
/// it fetches only as fast as candidates are taken.
pub const DEFAULT_CANDIDATE_BUFFER: usize = 64;

/// DNS discovery settings. Build with [`DnsConfig::builder`] or start from `Default`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DnsConfig {
    /// How often each tree's root is looked up again. Default: [`DEFAULT_RECHECK_INTERVAL`].
    pub recheck_interval: Duration,
    /// Timeout of one TXT lookup. Default: [`DEFAULT_LOOKUP_TIMEOUT`].
    pub lookup_timeout: Duration,
    /// Average lookups per second, over all trees. Default: [`DEFAULT_RATE_LIMIT`].
    pub rate_limit: f64,
    /// Lookups allowed in a burst. Default: [`DEFAULT_RATE_BURST`].
    pub rate_burst: u32,
    /// Lookups in flight at once. Default: [`DEFAULT_MAX_CONCURRENT_LOOKUPS`].
    pub max_concurrent_lookups: usize,
    /// Entries per subtree per root. Default: [`DEFAULT_MAX_TREE_ENTRIES`].
    pub max_tree_entries: usize,
    /// Branch levels per subtree. Default: [`DEFAULT_MAX_TREE_DEPTH`].
    pub max_tree_depth: usize,
    /// Trees, configured and linked. Default: [`DEFAULT_MAX_TREES`].
    pub max_trees: usize,
    /// Levels of links followed. Default: [`DEFAULT_MAX_LINK_DEPTH`].
    pub max_link_depth: usize,
    /// Attempts per entry lookup. Default: [`DEFAULT_ENTRY_ATTEMPTS`].
    pub entry_attempts: u32,
    /// Records buffered for the consumer. Default: [`DEFAULT_CANDIDATE_BUFFER`].
    pub candidate_buffer: usize,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            recheck_interval: DEFAULT_RECHECK_INTERVAL,
            lookup_timeout: DEFAULT_LOOKUP_TIMEOUT,
            rate_limit: DEFAULT_RATE_LIMIT,
            rate_burst: DEFAULT_RATE_BURST,
            max_concurrent_lookups: DEFAULT_MAX_CONCURRENT_LOOKUPS,
            max_tree_entries: DEFAULT_MAX_TREE_ENTRIES,
            max_tree_depth: DEFAULT_MAX_TREE_DEPTH,
            max_trees: DEFAULT_MAX_TREES,
            max_link_depth: DEFAULT_MAX_LINK_DEPTH,
            entry_attempts: DEFAULT_ENTRY_ATTEMPTS,
            candidate_buffer: DEFAULT_CANDIDATE_BUFFER,
        }
    }
}

impl DnsConfig {
    /// A builder starting from the defaults.
    ///
    /// ```
    /// use ethp2p::discovery::dns::DnsConfig;
    /// let config = DnsConfig::builder().rate_limit(10.0, 20).max_trees(4).build()?;
    /// assert_eq!(config.max_trees, 4);
    /// # Ok::<(), ethp2p::discovery::dns::DnsConfigError>(())
    /// ```
    pub fn builder() -> DnsConfigBuilder {
        DnsConfigBuilder { config: Self::default() }
    }
}

/// A [`DnsConfig`] value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsConfigError {
    /// The named setting must be positive.
    #[error("{0} must be positive")]
    NotPositive(&'static str),
}

/// Builder for [`DnsConfig`].
#[derive(Debug, Clone)]
pub struct DnsConfigBuilder {
    config: DnsConfig,
}

impl DnsConfigBuilder {
    /// See [`DnsConfig::recheck_interval`].
    pub fn recheck_interval(&mut self, interval: Duration) -> &mut Self {
        self.config.recheck_interval = interval;
        self
    }

    /// See [`DnsConfig::lookup_timeout`].
    pub fn lookup_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.config.lookup_timeout = timeout;
        self
    }

    /// See [`DnsConfig::rate_limit`] and [`DnsConfig::rate_burst`].
    pub fn rate_limit(&mut self, per_second: f64, burst: u32) -> &mut Self {
        self.config.rate_limit = per_second;
        self.config.rate_burst = burst;
        self
    }

    /// See [`DnsConfig::max_concurrent_lookups`].
    pub fn max_concurrent_lookups(&mut self, n: usize) -> &mut Self {
        self.config.max_concurrent_lookups = n;
        self
    }

    /// See [`DnsConfig::max_tree_entries`] and [`DnsConfig::max_tree_depth`].
    pub fn max_tree_size(&mut self, entries: usize, depth: usize) -> &mut Self {
        self.config.max_tree_entries = entries;
        self.config.max_tree_depth = depth;
        self
    }

    /// See [`DnsConfig::max_trees`].
    pub fn max_trees(&mut self, n: usize) -> &mut Self {
        self.config.max_trees = n;
        self
    }

    /// See [`DnsConfig::max_link_depth`].
    pub fn max_link_depth(&mut self, n: usize) -> &mut Self {
        self.config.max_link_depth = n;
        self
    }

    /// See [`DnsConfig::entry_attempts`].
    pub fn entry_attempts(&mut self, n: u32) -> &mut Self {
        self.config.entry_attempts = n;
        self
    }

    /// See [`DnsConfig::candidate_buffer`].
    pub fn candidate_buffer(&mut self, n: usize) -> &mut Self {
        self.config.candidate_buffer = n;
        self
    }

    /// Checks the settings.
    pub fn build(&self) -> Result<DnsConfig, DnsConfigError> {
        let c = &self.config;
        let checks = [
            (c.recheck_interval.is_zero(), "recheck_interval"),
            (c.lookup_timeout.is_zero(), "lookup_timeout"),
            (!(c.rate_limit > 0.0 && c.rate_limit.is_finite()), "rate_limit"),
            (c.rate_burst == 0, "rate_burst"),
            (c.max_concurrent_lookups == 0, "max_concurrent_lookups"),
            (c.max_tree_entries == 0, "max_tree_entries"),
            (c.max_trees == 0, "max_trees"),
            (c.entry_attempts == 0, "entry_attempts"),
            (c.candidate_buffer == 0, "candidate_buffer"),
        ];
        match checks.iter().find(|(bad, _)| *bad) {
            Some((_, name)) => Err(DnsConfigError::NotPositive(name)),
            None => Ok(c.clone()),
        }
    }
}
