//! Errors of the discovery layer's discv5 wrapper.

use std::net::{IpAddr, SocketAddr};

use crate::record::{EnrError, NodeId};

/// Why the discv5 service could not start or answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Discv5Error {
    /// A configuration value is out of range.
    #[error("invalid discv5 configuration: {0}")]
    Config(&'static str),
    /// A bootnode's address is outside the netrestrict list.
    #[error("bootnode {0} at {1} is outside the netrestrict list")]
    BootnodeRestricted(NodeId, IpAddr),
    /// A bootnode's record has no IP or no UDP port, so it cannot be contacted.
    #[error("bootnode {0} has no IP address or UDP port in its record")]
    BootnodeUnreachable(NodeId),
    /// discv5 refused a bootnode record (for example a full bucket).
    #[error("discv5 refused bootnode {0}: {1}")]
    BootnodeRejected(NodeId, &'static str),
    /// The UDP socket could not be bound (port in use, address not local, ...).
    #[error("cannot bind discv5 to {0}: {1}")]
    Bind(SocketAddr, String),
    /// The discv5 service failed to start for another reason.
    #[error("discv5 failed to start: {0}")]
    Start(String),
    /// The local record could not be updated with the bound address.
    #[error("local ENR: {0}")]
    Enr(#[from] EnrError),
    /// A lookup failed.
    #[error("discv5 lookup failed: {0}")]
    Query(String),
    /// The service has stopped (after [`shutdown`](crate::discovery::Discv5::shutdown)).
    #[error("the discv5 service has stopped")]
    Stopped,
}
