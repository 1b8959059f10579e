//! Errors of the node.

use std::sync::Arc;

use crate::{
    discovery::{dns::DnsError, DiscoveryError},
    eth::EthError,
    nat::NatError,
    pool::PoolError,
    rlpx::RlpxError,
};

/// What can go wrong starting a node or serving a request through it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The builder is missing something or holds an invalid value.
    #[error("invalid node configuration: {0}")]
    InvalidConfig(String),
    /// Binding the RLPx listener failed.
    #[error("listener: {0}")]
    Listen(#[source] RlpxError),
    /// Discovery (see [`NodeBuilder::discovery`](super::NodeBuilder::discovery)) could not
    /// start: its port is in use, no protocol was configured, ...
    #[error("discovery: {0}")]
    Discovery(#[from] DiscoveryError),
    /// The metrics endpoint (see [`NodeBuilder::metrics`](super::NodeBuilder::metrics))
    /// could not bind its address.
    #[error("metrics endpoint: {0}")]
    Metrics(#[source] std::io::Error),
    /// DNS discovery (see [`NodeBuilder::dns`](super::NodeBuilder::dns)): a tree URL does
    /// not parse, or no resolver could be configured.
    #[error("DNS discovery: {0}")]
    Dns(#[from] DnsError),
    /// NAT (see [`NodeBuilder::nat`](super::NodeBuilder::nat)): no gateway answered.
    #[error("NAT: {0}")]
    Nat(#[source] NatError),
    /// LAN discovery (see `NodeBuilder::lan`, feature `lan`) could not start mDNS.
    #[cfg(feature = "lan")]
    #[error("LAN discovery: {0}")]
    Lan(#[source] crate::discovery::lan::LanError),
    /// The pool (configuration or address book) failed.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// No connected peer could take the request.
    #[error("no peer available")]
    NoPeers,
    /// Every attempt failed; the last error is attached.
    #[error("request failed after {attempts} attempts: {last}")]
    RequestFailed {
        /// Peers tried.
        attempts: usize,
        /// The last peer's error.
        last: Arc<EthError>,
    },
    /// The node has shut down.
    #[error("node shut down")]
    Shutdown,
}
