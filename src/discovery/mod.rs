//! Discovery: every source of peers feeds one stream of [`Candidate`]s.
//!
//! Sources: `v4` (our own discv4), `v5` (the `discv5` crate), bootnode lists, and later DNS
//! trees, NAT-learned addresses and LAN announcements. Each source runs in its own task and
//! sends candidates over a bounded channel; the pool filters them by fork id before it dials.
//! The [`Candidate`] type itself lives in `record`, below both discovery and the pool.

pub mod dns;
mod error;
#[cfg(feature = "lan")]
pub mod lan;
mod shared;
pub mod v5;

pub use crate::record::{eth_entry_of, Candidate, CandidateSource, EthEntry, NetRestrict, NetRestrictError};
pub use error::Discv5Error;
pub use shared::{
    Discovery, DiscoveryCandidates, DiscoveryConfig, DiscoveryError, DiscoveryStats, V4_INBOUND_CAPACITY,
};
pub use v5::{Candidates, Discv5, Discv5Config, Discv5ConfigBuilder, Discv5Stats};

pub mod v4;
