//! The `eth` wire protocol, versions 66 to 72.
//!
//! Pure parts, usable without a socket:
//! - [`EthMessage`]: the codec for every message of every version, into alloy-consensus types;
//! - [`StatusInfo`] and [`validate_status`]: our `Status` and the checks on theirs;
//! - [`validate_headers`], [`validate_bodies`], [`validate_receipts`]: responses against
//!   their requests, and the [`Outcome`] the pool scores on;
//! - [`ReceiptsAssembly`] and [`serve_receipts70`]: eth/70's partial receipt lists, asked
//!   for and served (EIP-7975);
//! - [`TxPool`]: the transaction pool pooled transactions are served from and broadcasts
//!   are reported to, and [`MemoryTxPool`], a bounded one for tests and examples;
//! - [`BlockAccessLists`], [`serve_block_access_lists`] and [`validate_block_access_lists`]:
//!   eth/71's block access lists (EIP-8159), checked against the header's hash (EIP-7928);
//! - [`GetCells`], [`Cells`], [`CellMask`], [`serve_cells`] and [`validate_cells`]: eth/72's
//!   blob cells (EIP-8070), served from [`ChainReader::cells`];
//! - [`ChainReader`] and [`respond`]: serving requests within the usual limits, and
//!   [`MemoryChain`], an in-memory chain for tests and examples, and [`FileChain`], a chain
//!   read from a `geth export` RLP file with receipts fetched from peers.
//!
//! Then the session: [`EthSession::handshake`] consumes an RLPx [`Session`](crate::rlpx::Session)
//! and runs the `Status` exchange; [`EthSession::into_peer`] splits it into an [`EthPeer`]
//! handle, the [`EthPeerService`] task that owns the connection (one per peer), and the
//! [`EthEvents`] stream of announcements, request outcomes and offences.
//!
//! ```no_run
//! use std::sync::Arc;
//! use ethp2p::eth::{EthConfig, EthSession, GetBlockHeaders, MemoryChain};
//! use ethp2p::rlpx::{dial, Protocol, RlpxConfig};
//! use ethp2p::{ChainSpec, Enode, NodeKey};
//!
//! # async fn run(enode: Enode) -> Result<(), Box<dyn std::error::Error>> {
//! let spec = ChainSpec::mainnet();
//! let chain = Arc::new(MemoryChain::builder().blocks(0).build());
//! let config = EthConfig::builder(chain.status_info_for(&spec), spec.fork_filter(0, 0)).build()?;
//! let rlpx = RlpxConfig::builder().protocol(Protocol::eth(68)).protocol(Protocol::eth(69)).build()?;
//! let session = dial(&enode, &NodeKey::generate(), &rlpx).await?;
//! let eth = EthSession::handshake(session, config).await?;
//! let (peer, service, _events) = eth.into_peer(chain);
//! tokio::spawn(service.run());
//! let request = GetBlockHeaders { origin: 0u64.into(), count: 16, skip: 0, reverse: false };
//! let headers = peer.get_block_headers(request).await?; // validated: numbers and links
//! assert!(headers.len() <= 16);
//! # Ok(()) }
//! ```

mod bal;
mod cells;
mod config;
mod error;
mod file_chain;
mod known;
mod message;
mod receipts70;
mod responder;
mod serve;
mod session;
mod status;
mod txpool;
mod validate;
mod version;

pub use bal::{
    decode_block_access_list, encode_block_access_list, serve_block_access_lists,
    validate_block_access_lists, BlockAccessLists, MAX_BLOCK_ACCESS_LISTS_SERVE,
};
pub use cells::{
    serve_cells, validate_cells, Cell, CellMask, Cells, GetCells, NewPooledTransactionHashes72,
    BYTES_PER_CELL, CELLS_PER_EXT_BLOB, MAX_BLOBS_PER_TX, MAX_CELLS_HASHES_SERVE,
};
pub use config::{
    EthConfig, EthConfigBuilder, DEFAULT_COMMAND_CAPACITY, DEFAULT_EVENT_CAPACITY, DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT, DEFAULT_SERVE_CONCURRENCY, DEFAULT_SERVE_QUEUE,
};
pub use error::{ChainFileError, EthError, InvalidResponse, MessageError, StatusError};
pub use file_chain::FileChain;
pub use known::{MAX_KNOWN_BLOCKS, MAX_KNOWN_TXS};
pub use message::{
    decode_block_bodies_encoded, decode_block_headers_hashed, id, name_of, BlockHashNumber, BlockRange,
    Bodies, EthMessage, GetBlockHeaders, NewBlock, NewPooledTransactionHashes68, Receipt69, Receipts,
    RequestId, RequestPair, Status, StatusHead, TxEncodings, MAX_MESSAGE_SIZE, MAX_TD_BITS,
};
pub use receipts70::{
    serve_receipts70, Assembled, GetReceipts70, Receipts70, ReceiptsAssembly, LOG_DATA_GAS, MIN_TX_GAS,
};
pub use serve::{
    mainnet_genesis_header, respond, serve_bodies, serve_headers, serve_pooled_transactions, serve_receipts,
    ChainReader, MemoryChain, MemoryChainBuilder, MAX_BODIES_SERVE, MAX_HEADERS_SERVE,
    MAX_POOLED_TRANSACTIONS_SERVE, MAX_RECEIPTS_SERVE, SOFT_RESPONSE_LIMIT,
};
pub use session::{EthEvent, EthEvents, EthPeer, EthPeerService, EthSession};
pub use status::{validate_block_range, validate_status, StatusInfo};
pub(crate) use txpool::NoTxPool;
pub use txpool::{MemoryTxPool, TxPool, DEFAULT_MEMORY_POOL_CAPACITY};
pub use validate::{
    validate_bodies, validate_bodies_encoded, validate_body, validate_headers, validate_headers_with_hashes,
    validate_pooled_transactions, validate_receipts, Outcome, RequestKind,
};
pub use version::EthVersion;

#[cfg(test)]
pub(crate) use session::DetachedSession;
