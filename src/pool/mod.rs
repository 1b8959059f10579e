//! The peer pool: keeps 30–50 scored peers and picks the best one for each request.
//!
//! Everything here is a sans-IO core: it takes events and `now` and returns decisions.
//! The node's service task owns one `PoolState`, feeds it discovery candidates, dial
//! results, session openings and closings and response outcomes, and carries out the
//! `PoolAction`s it returns (both public only with the `test-utils` feature, for simulations
//! and fuzz targets). What a user sets and sees is [`PoolConfig`], [`PoolEvent`] and
//! [`PeerSnapshot`].
//!
//! - `reputation`: who stays connected (reth's model, weights in [`ReputationWeights`]);
//! - `latency`: who gets the next request (geth msgrate-like moving averages);
//! - `dial`: who to dial next (fork-id filter, history, backoff, rotation among candidates);
//! - `limits`: eclipse resistance (per-subnet caps, per-IP inbound throttle);
//! - `book`: the address book on disk ([`AddressBook`]);
//! - `peers`: the state machine tying them together.

mod admission;
mod book;
pub mod config;
mod dial;
mod error;
mod event;
mod latency;
mod limits;
mod peers;
mod reputation;

pub use book::{AddressBook, BookEntry, BOOK_FILE, BOOK_VERSION};
pub use config::{PoolConfig, PoolConfigBuilder};
pub use error::PoolError;
pub use event::{Direction, PeerSnapshot, PoolEvent, PoolStats};
pub use reputation::{PeerKind, ReputationChange, ReputationWeights};

// The sans-IO core and its parts: the node's service drives them; simulations, benches and
// fuzz targets reach them through the `test-utils` feature.
pub_with_test_utils!(dial::{backoff_duration, Backoff, CandidateFilter, DialTarget, ForkIdFilter});
pub_with_test_utils!(event::{PoolAction, SessionClose});
pub_with_test_utils!(latency::PeerLatency);
pub_with_test_utils!(peers::PoolState);
pub_with_test_utils!(reputation::Reputation);

#[cfg(test)]
mod tests;
