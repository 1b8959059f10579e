//! The `eth` wire protocol, versions 66 to 69.
//!
//! Pure parts first: [`EthMessage`] (codec), [`Status`] and its validation, response
//! validity checks ([`validate`](self#validity)), and serving requests from a
//! [`ChainReader`]. The session that drives them over an RLPx connection is owned by one
//! task per peer; its handle sends requests and receives validated responses and events.

mod error;
mod message;
mod serve;
mod session;
mod status;
mod validate;
mod version;

pub use error::{EthError, InvalidResponse, MessageError, StatusError};
pub use message::{
    id, name_of, BlockHashNumber, BlockRange, EthMessage, GetBlockHeaders, NewBlock,
    NewPooledTransactionHashes68, Receipt69, Receipts, RequestId, RequestPair, Status, StatusHead,
    MAX_MESSAGE_SIZE, MAX_TD_BITS,
};
pub use serve::{
    mainnet_genesis_header, respond, serve_bodies, serve_headers, serve_pooled_transactions, serve_receipts,
    ChainReader, MemoryChain, MemoryChainBuilder, MAX_BODIES_SERVE, MAX_HEADERS_SERVE,
    MAX_POOLED_TRANSACTIONS_SERVE, MAX_RECEIPTS_SERVE, SOFT_RESPONSE_LIMIT,
};
pub use session::{
    EthConfig, EthConfigBuilder, EthEvent, EthEvents, EthPeer, EthPeerService, EthSession,
    DEFAULT_COMMAND_CAPACITY, DEFAULT_EVENT_CAPACITY, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_REQUEST_TIMEOUT,
};
pub use status::{validate_block_range, validate_status, StatusInfo};
pub use validate::{
    validate_bodies, validate_body, validate_headers, validate_pooled_transactions, validate_receipts,
    Outcome,
};
pub use version::EthVersion;
