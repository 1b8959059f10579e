//! Discovery: every source of peers feeds one stream of [`Candidate`]s.
//!
//! Sources: `v4` (our own discv4), `v5` (the `discv5` crate), bootnode lists, and later DNS
//! trees, NAT-learned addresses and LAN announcements. Each source runs in its own task and
//! sends candidates over a bounded channel; the pool filters them by fork id before it dials.
//! The [`Candidate`] type itself lives in `record`, below both discovery and the pool.

mod budget;
mod contact;
pub mod dns;
mod error;
#[cfg(feature = "lan")]
pub mod lan;
mod shared;
mod socket;
pub mod v5;
pub(crate) mod votes;
pub use budget::{
    IngressLimits, DEFAULT_INGEST_BUDGET, DEFAULT_PACKETS_PER_IP, DEFAULT_PACKETS_PER_SUBNET,
    DEFAULT_V5_SESSIONS_PER_IP, V5_SESSION_BAN,
};
pub use contact::{Contact, ContactProtocol, Contacts, CONTACT_CHANNEL_CAPACITY};
pub use socket::{udp_receive_buffer_drops, DEFAULT_SOCKET_BUFFER};

/// Log directives that keep the `discv5` crate quiet: it logs a WARN for some packets an
/// unauthenticated sender can replay at will (a log flood, issue 16). Append them to a
/// tracing filter unless you want the crate's diagnostics.
pub const QUIET_LOG_DIRECTIVES: &str = "discv5=error";

/// `user`'s filter (`RUST_LOG`, or `default` when unset) with [`QUIET_LOG_DIRECTIVES`]
/// appended unless it already names the `discv5` target.
///
/// ```
/// use ethp2p::discovery::log_filter;
/// assert_eq!(log_filter(None, "info"), "info,discv5=error");
/// assert_eq!(log_filter(Some("debug"), "info"), "debug,discv5=error");
/// assert_eq!(log_filter(Some("info,discv5=debug"), "info"), "info,discv5=debug");
/// ```
pub fn log_filter(user: Option<&str>, default: &str) -> String {
    let base = user.filter(|s| !s.trim().is_empty()).unwrap_or(default);
    if base.contains("discv5") {
        base.to_owned()
    } else {
        format!("{base},{QUIET_LOG_DIRECTIVES}")
    }
}

pub use crate::record::{eth_entry_of, Candidate, CandidateSource, EthEntry, NetRestrict, NetRestrictError};
pub use error::Discv5Error;
pub use shared::{
    Discovery, DiscoveryCandidates, DiscoveryConfig, DiscoveryError, DiscoveryStats, V4_INBOUND_CAPACITY,
};
pub use v5::{Candidates, Discv5, Discv5Config, Discv5ConfigBuilder, Discv5Stats};

pub mod v4;
