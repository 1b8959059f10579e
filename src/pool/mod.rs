//! The peer pool: keeps 30–50 scored peers and picks the best one for each request.
//!
//! Everything here is a sans-IO core: it takes events and `now` and returns decisions.
//! The node's service task owns one [`PoolState`], feeds it discovery candidates, dial
//! results, session openings and closings and response outcomes, and carries out the
//! [`PoolAction`]s it returns.
//!
//! - [`reputation`]: who stays connected (reth's model, weights documented);
//! - [`latency`]: who gets the next request (geth msgrate-like moving averages);
//! - [`dial`]: who to dial next (fork-id filter, history, backoff, rotation among candidates);
//! - [`limits`]: eclipse resistance (per-subnet caps, per-IP inbound throttle);
//! - `book`: the address book on disk ([`AddressBook`]);
//! - `peers`: the state machine tying them together.

mod admission;
mod book;
pub mod config;
pub mod dial;
mod error;
mod event;
pub mod latency;
pub mod limits;
mod peers;
pub mod reputation;

pub use book::{AddressBook, BookEntry, BOOK_FILE, BOOK_VERSION};
pub use config::{PoolConfig, PoolConfigBuilder};
pub use dial::{backoff_duration, Backoff, CandidateFilter, DialTarget, ForkIdFilter};
pub use error::PoolError;
pub use event::{Direction, PeerSnapshot, PoolAction, PoolEvent, PoolStats, SessionClose};
pub use latency::{PeerLatency, RequestKind};
pub use peers::PoolState;
pub use reputation::{PeerKind, Reputation, ReputationChange, ReputationWeights};

#[cfg(test)]
mod tests;
