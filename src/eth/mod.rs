//! The `eth` wire protocol, versions 66 to 69.
//!
//! Pure parts first: [`EthMessage`] (codec), [`Status`] and its validation, response
//! validity checks ([`validate`](self#validity)), and serving requests from a
//! [`ChainReader`]. The session that drives them over an RLPx connection is owned by one
//! task per peer; its handle sends requests and receives validated responses and events.

mod error;
mod message;
mod version;

pub use error::{Backoff, EthError, InvalidResponse, MessageError, StatusError};
pub use message::{
    id, name_of, BlockHashNumber, BlockRange, EthMessage, GetBlockHeaders, NewBlock,
    NewPooledTransactionHashes68, Receipt69, Receipts, RequestId, RequestPair, Status, StatusHead,
    MAX_MESSAGE_SIZE, MAX_TD_BITS,
};
pub use version::EthVersion;
