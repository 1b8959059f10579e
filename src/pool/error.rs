//! Errors of the pool layer.

use std::path::PathBuf;

/// What can go wrong in the pool: configuration and the address book on disk.
///
/// Decisions about peers are not errors: they come out of the pool's state machine
/// as actions for the node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// A configuration value is out of range; the message says which and why.
    #[error("invalid pool configuration: {0}")]
    InvalidConfig(String),
    /// Reading, writing or renaming the address book failed.
    #[error("address book {path}: {source}")]
    BookIo {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The address book could not be serialised.
    #[error("address book encoding: {0}")]
    BookEncode(#[from] serde_json::Error),
}
