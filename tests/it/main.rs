//! The one integration test binary: a module per area.

mod bootnode;
mod crawl;
mod discovery;
mod dns;
mod dual_stack;
mod ejs;
mod eth;
mod eth7;
mod eth70;
mod geth;
mod hardening;
mod hive;
mod interop_crawl;
mod interop_discv4;
mod interop_eth;
mod interop_geth;
mod interop_pool;
mod interop_rlpx;
mod ip_votes;
#[cfg(feature = "lan")]
mod lan;
mod nat;
mod node;
mod node_api;
mod node_example;
mod observatory;
mod peers;
mod pool;
mod rlpx;
mod shared_port;
mod sync;
