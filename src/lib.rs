//! # ethp2p — join an Ethereum devp2p network from any Rust program
//!
//! ethp2p finds peers (discv4, discv5, DNS trees), connects to them over RLPx, speaks
//! the `eth` wire protocol (66–70) and keeps a scored pool of the best ones, so that a
//! syncer can ask "give me headers 1000..2000" and get a validated answer.
//!
//! ## Bird's-eye view
//!
//! ```text
//!                 ┌──────────────────────── node ─────────────────────────┐
//!                 │  Node handle ── commands ──▶ NodeService (one task)   │
//!                 └───────┬─────────────────────────────┬─────────────────┘
//!        candidates (fork-id filtered)                  │ sessions
//!   ┌─────────────┴──────────────┐            ┌─────────┴─────────┐
//!   │ discovery                  │            │ pool              │ scores, dials, routes
//!   │  v4  (own, sans-IO core)   │            │  └── eth          │ Status, requests, validity
//!   │  v5  (the discv5 crate)    │            │       └── rlpx    │ ECIES, frames, p2p Hello
//!   │  dns (EIP-1459), lan       │            └───────────────────┘
//!   └─────────────┬──────────────┘
//!                 │   nat: external address, port mappings
//!                 └──────────────── record ────────────────────────────────
//!                   keys, node ids, enode URLs, ENRs, fork ids, chain specs, bootnodes
//! ```
//!
//! One line per layer, lowest first:
//!
//! - [`record`]: node keys and ids, `enode://` URLs, the local ENR, EIP-2124 fork ids and
//!   their validation filter, chain specs (mainnet, sepolia, holesky, hoodi, BSC, or a chain
//!   file) and each network's embedded bootnodes. Pure data; every other layer uses it.
//! - `discovery`: the [`Candidate`] stream shared by every source. `v4` is our own
//!   discv4 (EIP-8, EIP-868) with a sans-IO core; `v5` wraps the `discv5` crate; both share
//!   one UDP port, in IPv4 and IPv6 at once when asked (dual stack: one socket per family).
//!   DNS trees (EIP-1459) and LAN discovery feed the same stream.
//! - [`nat`]: the public address: `--nat none|extip:IP|upnp|pmp|any`, gateway port mappings
//!   (UPnP, NAT-PMP) and the hook that writes an external address into the local ENR.
//! - [`rlpx`]: the ECIES handshake, frame codec and the p2p base protocol (Hello, Ping,
//!   Disconnect, snappy).
//! - [`eth`]: eth/66–70 messages, the Status handshake, request ids, response validity and
//!   the serving trait a syncer implements.
//! - [`pool`]: reputation, latency estimates, dialing, eclipse limits and the on-disk
//!   address book; it decides, the node acts.
//! - [`crawl`]: the crawler's engine on top of discovery and RLPx: geth-style liveness
//!   scores, RLPx/eth probes, `nodes.json`, a summary and (feature `sqlite`) a SQLite store.
//! - [`node`]: the [`Node`] handle that starts everything and routes requests.
//! - [`metrics`]: the Prometheus metric names the node records and a `/metrics` endpoint
//!   ([`NodeBuilder::metrics`]); no global recorder is ever installed by the library.
//!
//! Dependencies point one way: `record ← discovery`, `record ← rlpx ← eth ← pool ← node`,
//! `record ← nat ← node`, `discovery ← node`. Each layer's module doc says which task owns
//! its state.
//!
//! The library never installs a tracing subscriber; it logs under the targets
//! `ethp2p::discv4`, `ethp2p::discv5`, `ethp2p::rlpx`, `ethp2p::eth`, `ethp2p::pool`,
//! `ethp2p::dns`.

/// Re-exports a layer's internals (sans-IO cores, codecs, ECIES) publicly with the
/// `test-utils` feature, for benches, fuzz targets and simulations, and crate-wide otherwise:
/// the public surface a user sees stays small.
macro_rules! pub_with_test_utils {
    ($($path:tt)*) => {
        #[cfg(any(test, feature = "test-utils"))]
        pub use $($path)*;
        #[cfg(not(any(test, feature = "test-utils")))]
        #[allow(unused_imports)]
        pub(crate) use $($path)*;
    };
}

pub mod record;

pub mod discovery;

pub mod nat;

pub mod rlpx;

pub mod eth;

pub mod pool;

pub mod node;

pub mod metrics;

pub mod crawl;

mod fsutil;

#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;

// The names a newcomer needs: start a node, give it a chain and a pool, fetch and serve. Every
// other public name lives in its layer's module (`ethp2p::eth::GetBlockHeaders`,
// `ethp2p::discovery::dns::DnsConfig`, ...).
pub use discovery::{Candidate, DiscoveryConfig, NetRestrict};
pub use eth::{ChainReader, EthConfig, EthVersion, MemoryChain, MemoryTxPool, TxPool};
pub use node::{Announcement, Node, NodeBuilder, NodeError, NodeStats};
pub use pool::{PeerSnapshot, PoolConfig};
pub use record::{Bootnode, ChainSpec, Enode, Enr, ForkId, LocalEnr, NodeId, NodeKey, PeerId};
pub use rlpx::DisconnectReason;
