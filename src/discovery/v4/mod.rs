//! discv4: our own implementation of the Node Discovery Protocol v4 (discv4.md) with EIP-8
//! forward compatibility and EIP-868 ENR requests.
//!
//! Three parts, as everywhere in ethp2p:
//! - pure pieces: `proto` (the packet codec), `table` (the Kademlia table with replacement
//!   lists and subnet limits), the lookup bookkeeping, and `Discv4Core`, the sans-IO state
//!   machine that ties them together and takes `now` with every input (public only with the
//!   `test-utils` feature, for benches, fuzz targets and simulations);
//! - one task, `Discv4Service`, that owns the UDP socket (or shares it with discv5) and
//!   the core, and does the I/O, with a few worker threads (`workers`) that recover and
//!   make the signatures, the costly half of each packet, so that more than one core serves;
//! - a cheap `Clone` handle, [`Discv4`], that talks to the task over a bounded channel.
//!
//! Nodes that prove their endpoint enter the table and come out of the
//! [`CandidateStream`] as [`Candidate`](crate::Candidate)s, with their fork id when their
//! record (fetched with an ENRRequest) has an `eth` entry.

// The sans-IO pieces are the crate's own; benches, fuzz targets and simulations reach them
// through the `test-utils` feature.
#[cfg(any(test, feature = "test-utils"))]
pub mod proto;
#[cfg(not(any(test, feature = "test-utils")))]
pub(crate) mod proto;
#[cfg(any(test, feature = "test-utils"))]
pub mod table;
#[cfg(not(any(test, feature = "test-utils")))]
pub(crate) mod table;

mod config;
mod core;
mod error;
mod event;
mod lookup;
mod service;
mod workers;

pub use config::{
    default_crypto_workers, Discv4Config, Discv4ConfigBuilder, ALPHA, BOND_EXPIRATION, BUCKET_SIZE,
    CANDIDATE_CHANNEL_CAPACITY, IP_VOTE_WINDOW, LOOKUP_INTERVAL, MAX_PENDING_REQUESTS, MAX_REPLACEMENTS,
    MAX_TRACKED_NODES, MIN_IP_VOTES, PACKET_EXPIRATION, REPLY_RATE_PER_IP, REQUEST_TIMEOUT,
    REVALIDATION_INTERVAL,
};
pub_with_test_utils!(core::Discv4Core);
pub use error::{Discv4Error, PacketError};
pub use event::Discv4Stats;
pub_with_test_utils!(event::{CoreEvent, DropReason, Inbound, Outgoing, Payload, RequestId});

pub(crate) use service::Datagram;
pub use service::{CandidateStream, Discv4, Discv4Service};

#[cfg(test)]
mod tests;
