//! The crawler's engine: find every node of a network, score it, probe it, store it.
//!
//! Pieces, each usable alone:
//!
//! - [`CrawlState`] (sans-IO): every node found, keyed by node id, with go-ethereum's
//!   liveness score (+1 per answer, halved per failure), first/last seen, its record and the
//!   last probe; it marks what changed so the store writes only that.
//! - [`probe`]: one RLPx dial that records the Hello (client id, capabilities) and, when the
//!   peer speaks eth, its Status; or the disconnect reason.
//! - [`nodeset`](to_nodes_json): go-ethereum's `nodes.json`.
//! - [`Summary`]: nodes by network (fork id), client, eth version; the dialable share.
//! - `SqliteStore` (feature `sqlite`): one row per node, saved in transactions; a rerun
//!   loads it and continues.
//!
//! [`Crawler`] puts them together with the discovery services: one task owning the state,
//! at most `workers` jobs in flight; `examples/crawler.rs` is its command line.

#[cfg(feature = "observatory")]
mod api;
mod check;
mod config;
mod crawler;
mod node;
mod nodeset;
mod probe;
#[cfg(feature = "sqlite")]
mod store;
mod summary;

#[cfg(feature = "observatory")]
pub use api::{ApiConfig, ApiServer, MAX_NODES_PER_REQUEST};
pub use check::{
    CheckConfig, CheckError, CheckReport, Checker, ProtocolReport, DEFAULT_CHECKS_IN_FLIGHT,
    DEFAULT_CHECK_INTERVAL, DEFAULT_CHECK_TIMEOUT,
};
pub use config::{
    CrawlConfig, CrawlConfigBuilder, DEFAULT_DISCV5_IN_FLIGHT, DEFAULT_DURATION, DEFAULT_FLUSH_INTERVAL,
    DEFAULT_GONE_AFTER, DEFAULT_IDLE, DEFAULT_REPROBE_AFTER, DEFAULT_WORKERS,
};
pub use crawler::{CrawlProgress, Crawler};
pub use node::{CrawlCounts, CrawlState, CrawledNode, InboundVia, Sighting};
pub use nodeset::{
    nodeset, parse_nodes_json, rfc3339, to_nodes_json, write_nodes_json, Nodeset, NodesetEntry,
};
pub use probe::{probe, reason_text, HelloInfo, ProbeConfig, ProbeResult, StatusReport, PROBE_CLIENT_ID};
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use summary::{ClientName, Shares, Summary, Tally};

/// Seconds since the Unix epoch, the crawler's only clock for stored times.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Why a crawl (or its store) failed. Remote misbehaviour never ends up here: it only
/// lowers the node's score.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrawlError {
    /// The SQLite database failed.
    #[cfg(feature = "sqlite")]
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Writing an output file failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A discovery service could not start or stopped.
    #[error("discovery: {0}")]
    Discovery(String),
    /// A [`CrawlConfig`] failed its checks.
    #[error("invalid crawl configuration: {0}")]
    Config(&'static str),
    /// The database file cannot be used as it is (not a database, damaged, or written by a
    /// newer schema); it was left untouched.
    #[error("database {path}: {reason}; the file was left untouched")]
    Database {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Where the crawl writes changed nodes, in batches. Each `save` should be atomic (the
/// SQLite store writes one transaction), so a crash never leaves half a batch.
pub trait CrawlSink: Send {
    /// Stores `nodes` (new or changed since the last call).
    fn save(&mut self, nodes: &[CrawledNode]) -> Result<(), CrawlError>;

    /// A round starts at `started` (Unix seconds). Default: nothing.
    fn begin_round(&mut self, started: u64) -> Result<(), CrawlError> {
        let _ = started;
        Ok(())
    }

    /// A round ended, after its last `save`: who was up, for uptime sessions. Default:
    /// nothing.
    fn end_round(&mut self, round: &RoundReport) -> Result<(), CrawlError> {
        let _ = round;
        Ok(())
    }
}

/// What one crawl round saw.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoundReport {
    /// When it started (Unix seconds).
    pub started: u64,
    /// When it ended (Unix seconds).
    pub finished: u64,
    /// Found, answered, probed and dialable, over every node known.
    pub counts: CrawlCounts,
    /// The nodes seen up in this round (answered discovery, completed a Hello or contacted
    /// us), each with the last time it was.
    pub up: Vec<(record::NodeId, u64)>,
    /// [`CrawlConfig::gone_after`], for the store to mark nodes gone.
    pub gone_after: u32,
}

use crate::record;

#[cfg(test)]
mod tests;
