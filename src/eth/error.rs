//! Errors of the eth layer, each classifying itself for the pool.

use alloy_primitives::B256;

use crate::eth::version::EthVersion;
use crate::record::ForkIdError;
use crate::rlpx::{Backoff, DisconnectReason, RlpxError};

/// A message that could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The payload exceeds [`MAX_MESSAGE_SIZE`](crate::eth::MAX_MESSAGE_SIZE).
    #[error("message of {size} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Size of the payload.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The id is not defined by the negotiated version.
    #[error("message id {id:#04x} is not defined in {version}")]
    UnknownMessage {
        /// The relative message id.
        id: u8,
        /// The negotiated version.
        version: EthVersion,
    },
    /// Malformed RLP.
    #[error("malformed {message}: {source}")]
    Rlp {
        /// The message being decoded.
        message: &'static str,
        /// What alloy-rlp found.
        source: alloy_rlp::Error,
    },
    /// Bytes left after the message's single RLP item.
    #[error("{count} trailing bytes after {message}")]
    TrailingBytes {
        /// The message being decoded.
        message: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// A `Status` total difficulty above [`MAX_TD_BITS`](crate::eth::MAX_TD_BITS).
    #[error("Status total difficulty of {bits} bits exceeds 160")]
    TotalDifficultyTooLarge {
        /// Bits the encoding occupies.
        bits: usize,
    },
}

/// Why a peer's `Status` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// The `Status` version differs from the negotiated capability.
    #[error("Status says eth/{got}, negotiated {expected}")]
    VersionMismatch {
        /// The negotiated version.
        expected: EthVersion,
        /// The version in the peer's `Status`.
        got: u8,
    },
    /// A different network.
    #[error("network id {got}, expected {expected}")]
    NetworkIdMismatch {
        /// Ours.
        expected: u64,
        /// Theirs.
        got: u64,
    },
    /// A different genesis block.
    #[error("genesis {got}, expected {expected}")]
    GenesisMismatch {
        /// Ours.
        expected: B256,
        /// Theirs.
        got: B256,
    },
    /// EIP-2124 says the peer is on another chain or fork, or needs a software update.
    #[error(transparent)]
    ForkId(#[from] ForkIdError),
    /// A total difficulty over 160 bits (eth/66–68).
    #[error("total difficulty of {bits} bits exceeds 160")]
    TotalDifficultyTooLarge {
        /// Its bit length.
        bits: usize,
    },
    /// eth/69: `earliest > latest`.
    #[error("block range {earliest}..={latest} is empty")]
    InvalidBlockRange {
        /// The peer's earliest block.
        earliest: u64,
        /// The peer's latest block.
        latest: u64,
    },
    /// eth/69: the latest block hash is zero.
    #[error("latest block hash is zero")]
    ZeroLatestHash,
    /// The `Status` did not have the shape of the negotiated version.
    #[error("Status shape does not match {0}")]
    WrongShape(EthVersion),
}

/// Why a response does not answer its request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidResponse {
    /// More items than were asked for.
    #[error("{got} items for a request of {requested}")]
    TooMany {
        /// Items asked for.
        requested: usize,
        /// Items received.
        got: usize,
    },
    /// The first header is not the one asked for.
    #[error("first header is not the requested origin")]
    WrongOrigin,
    /// A header's number does not follow from the request's skip and direction.
    #[error("header {index} has number {got}, expected {expected}")]
    WrongNumber {
        /// Position in the response.
        index: usize,
        /// Number it should have.
        expected: u64,
        /// Number it has.
        got: u64,
    },
    /// Consecutive headers (with skip 0) are not linked by their parent hash.
    #[error("header {index} does not link to its predecessor")]
    BrokenLink {
        /// Position in the response.
        index: usize,
    },
    /// A body's transactions do not hash to its header's transactions root.
    #[error("body {index}: transactions root mismatch")]
    TransactionsRoot {
        /// Position in the response.
        index: usize,
    },
    /// A body's ommers do not hash to its header's ommers hash.
    #[error("body {index}: ommers hash mismatch")]
    OmmersHash {
        /// Position in the response.
        index: usize,
    },
    /// A body's withdrawals do not match its header's withdrawals root (or one is missing).
    #[error("body {index}: withdrawals root mismatch")]
    WithdrawalsRoot {
        /// Position in the response.
        index: usize,
    },
    /// A block's receipts do not hash to its header's receipts root.
    #[error("block {index}: receipts root mismatch")]
    ReceiptsRoot {
        /// Position in the response.
        index: usize,
    },
    /// A pooled transaction that was not asked for.
    #[error("transaction {hash} was not requested")]
    UnrequestedTransaction {
        /// Its hash.
        hash: B256,
    },
    /// A response of another kind than the request (e.g. bodies for a headers request).
    #[error("{got} does not answer {expected}")]
    WrongKind {
        /// The response the request calls for.
        expected: &'static str,
        /// What arrived.
        got: &'static str,
    },
    /// eth/70: `lastBlockIncomplete` set with no receipt for the last block (no progress).
    #[error("block {index}: marked incomplete without a receipt")]
    IncompleteWithoutReceipts {
        /// Position of the block in the request.
        index: usize,
    },
    /// eth/70: `lastBlockIncomplete` set on a list that already hashes to the receipts root.
    #[error("block {index}: a whole receipt list marked incomplete")]
    FalselyIncomplete {
        /// Position of the block in the request.
        index: usize,
    },
    /// eth/70 (EIP-7975): more receipts in an incomplete list than the block's gas allows.
    #[error("block {index}: {count} receipts in an incomplete list, the block's gas allows {max}")]
    TooManyReceipts {
        /// Position of the block in the request.
        index: usize,
        /// Receipts received for the block so far.
        count: usize,
        /// The bound: gas used / the cheapest transaction's gas.
        max: u64,
    },
    /// eth/70 (EIP-7975): a receipt of an incomplete list has more log bytes than the gas
    /// limit / 8.
    #[error("block {index}: a receipt with {size} bytes of logs, the gas limit allows {max}")]
    ReceiptTooLarge {
        /// Position of the block in the request.
        index: usize,
        /// Its log bytes.
        size: u64,
        /// The bound.
        max: u64,
    },
    /// eth/71 (EIP-8159): a block access list that does not hash to its header's
    /// `block_access_list_hash`.
    #[error("block {index}: block access list hash mismatch")]
    BlockAccessListHash {
        /// Position of the block in the request.
        index: usize,
    },
    /// eth/71: a block access list for a header that commits to none (pre-Amsterdam).
    #[error("block {index}: a block access list for a header without a block access list hash")]
    UnexpectedBlockAccessList {
        /// Position of the block in the request.
        index: usize,
    },
    /// eth/72 (EIP-8070): cells for a transaction that was not asked for (or twice).
    #[error("cells for transaction {hash}, which was not requested")]
    UnrequestedCells {
        /// The transaction's hash.
        hash: B256,
    },
    /// eth/72: a `Cells` mask with columns that were not asked for.
    #[error("cells for columns that were not requested")]
    CellMaskNotRequested,
    /// eth/72: a transaction's cells are not a whole number of blobs (1 to
    /// `MAX_BLOBS_PER_TX`) times the mask's columns.
    #[error("transaction {index}: {count} cells for {per_blob} columns per blob")]
    CellCount {
        /// Position of the transaction in the response.
        index: usize,
        /// Cells received for it.
        count: usize,
        /// Columns in the answered mask.
        per_blob: usize,
    },
    /// eth/70 (EIP-7975): an incomplete list has more log bytes than the gas used / 8.
    #[error("block {index}: {size} bytes of logs so far, the block's gas allows {max}")]
    ReceiptsTooLarge {
        /// Position of the block in the request.
        index: usize,
        /// Log bytes received for the block so far.
        size: u64,
        /// The bound.
        max: u64,
    },
}

/// Why an RLP chain file (`geth export`) was refused by [`FileChain`](crate::eth::FileChain), or
/// receipts were refused for one of its blocks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainFileError {
    /// The file could not be read.
    #[error("chain file {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Block `index` (0-based, in file order) is not valid RLP of a block.
    #[error("chain file block {index}: {error}")]
    Decode {
        /// Its position in the file.
        index: usize,
        /// The decoder's message.
        error: String,
    },
    /// The file belongs to another genesis than the chain spec's.
    #[error("chain file genesis {file} is not the chain's genesis {spec}")]
    GenesisMismatch {
        /// The genesis the file names (its block 0's hash, or block 1's parent).
        file: B256,
        /// The genesis computed from the chain spec.
        spec: B256,
    },
    /// Blocks are not consecutive.
    #[error("chain file block {index} has number {got}, expected {expected}")]
    WrongNumber {
        /// Its position in the file.
        index: usize,
        /// The number that should come next.
        expected: u64,
        /// Its number.
        got: u64,
    },
    /// A block's parent hash is not the previous block's hash.
    #[error("chain file block {number} does not link to block {}", number - 1)]
    BrokenLink {
        /// The block.
        number: u64,
    },
    /// A block's body does not match its header's roots.
    #[error("chain file block {number}: {error}")]
    InvalidBody {
        /// The block.
        number: u64,
        /// Which root does not match.
        error: InvalidResponse,
    },
    /// Receipts for a block that is not in the chain.
    #[error("no block {0} in the chain")]
    UnknownBlock(B256),
    /// A block access list that does not match the block's header.
    #[error("block access list of block {number}: {error}")]
    InvalidBlockAccessList {
        /// The block.
        number: u64,
        /// The mismatch.
        error: InvalidResponse,
    },
    /// Receipts that do not match the block's receipts root.
    #[error("receipts of block {number}: {error}")]
    InvalidReceipts {
        /// The block.
        number: u64,
        /// The mismatch.
        error: InvalidResponse,
    },
}

/// An error of an eth session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EthError {
    /// A message could not be decoded.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The peer's `Status` was refused.
    #[error(transparent)]
    Status(#[from] StatusError),
    /// A response did not answer its request.
    #[error(transparent)]
    InvalidResponse(#[from] InvalidResponse),
    /// No `Status` within the handshake timeout.
    #[error("no Status within the handshake timeout")]
    HandshakeTimeout,
    /// A message other than `Status` arrived before the handshake completed.
    #[error("{0} before Status")]
    MessageBeforeStatus(&'static str),
    /// A second `Status` after the handshake.
    #[error("Status after the handshake")]
    StatusAfterHandshake,
    /// The peer shares no eth version with us.
    #[error("no shared eth version")]
    NoSharedVersion,
    /// A response whose request id matches no request in flight.
    #[error("unsolicited {message} with request id {request_id}")]
    UnsolicitedResponse {
        /// The response's name.
        message: &'static str,
        /// Its request id.
        request_id: u64,
    },
    /// The request timed out.
    #[error("request timed out")]
    Timeout,
    /// The session ended.
    #[error("session closed")]
    SessionClosed,
    /// A message that the negotiated version does not have, or that is not an announcement.
    #[error("{message} cannot be sent on {version}")]
    NotForVersion {
        /// The message's name.
        message: &'static str,
        /// The negotiated version.
        version: EthVersion,
    },
    /// An invalid configuration.
    #[error("invalid eth config: {0}")]
    Config(String),
    /// A request with more items than the protocol lets us ask for at once (eth/72
    /// `GetCells`: 64 transactions).
    #[error("{got} items in one request, at most {max}")]
    RequestTooLarge {
        /// The limit.
        max: usize,
        /// Items asked for.
        got: usize,
    },
    /// An error of the RLPx session below (including the peer's Disconnect).
    #[error(transparent)]
    Rlpx(#[from] RlpxError),
}

impl StatusError {
    /// Whether the peer should be banned: on another network or chain it will never be
    /// useful, and a malformed `Status` is a protocol breach. A stale fork id is not banned:
    /// the peer may upgrade.
    pub fn should_ban(&self) -> bool {
        match self {
            Self::ForkId(e) => e.should_ban(),
            _ => true,
        }
    }

    /// How long to wait before dialing the peer again.
    pub fn backoff(&self) -> Backoff {
        Backoff::High
    }

    /// The Disconnect reason to send. A `Status` that is well formed but for another
    /// network, genesis, version or fork gets `SubprotocolSpecific` (0x10), as geth
    /// (`discReasonForError`) and ethereumjs send; a malformed one is a `ProtocolBreach`.
    pub fn disconnect_reason(&self) -> DisconnectReason {
        match self {
            Self::VersionMismatch { .. }
            | Self::NetworkIdMismatch { .. }
            | Self::GenesisMismatch { .. }
            | Self::ForkId(_) => DisconnectReason::SubprotocolSpecific,
            Self::TotalDifficultyTooLarge { .. }
            | Self::InvalidBlockRange { .. }
            | Self::ZeroLatestHash
            | Self::WrongShape(_) => DisconnectReason::ProtocolBreach,
        }
    }
}

impl EthError {
    /// Whether the error is the peer's misbehaviour and warrants a ban.
    pub fn should_ban(&self) -> bool {
        match self {
            Self::Message(_)
            | Self::InvalidResponse(_)
            | Self::MessageBeforeStatus(_)
            | Self::StatusAfterHandshake => true,
            Self::Status(e) => e.should_ban(),
            Self::Rlpx(e) => e.should_ban(),
            Self::HandshakeTimeout
            | Self::NoSharedVersion
            | Self::UnsolicitedResponse { .. }
            | Self::Timeout
            | Self::NotForVersion { .. }
            | Self::Config(_)
            | Self::RequestTooLarge { .. }
            | Self::SessionClosed => false,
        }
    }

    /// Whether the session cannot continue after this error. A bad or unsolicited response
    /// and a timeout are scored offences, not a reason to drop the session at once.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, Self::InvalidResponse(_) | Self::UnsolicitedResponse { .. } | Self::Timeout)
    }

    /// How long to wait before dialing the peer again.
    pub fn backoff(&self) -> Backoff {
        match self {
            Self::Status(e) => e.backoff(),
            Self::Rlpx(e) => e.backoff(),
            Self::NoSharedVersion => Backoff::High,
            Self::SessionClosed
            | Self::NotForVersion { .. }
            | Self::Config(_)
            | Self::RequestTooLarge { .. } => Backoff::None,
            e if e.should_ban() => Backoff::High,
            Self::HandshakeTimeout | Self::Timeout => Backoff::Low,
            _ => Backoff::Medium,
        }
    }

    /// The Disconnect reason we send when this error ends a session, if we send one.
    pub fn disconnect_reason(&self) -> Option<DisconnectReason> {
        Some(match self {
            Self::Status(e) => e.disconnect_reason(),
            // A message id inside the eth capability's space that the negotiated version does
            // not define: go-ethereum's `handleMessage` fails with `errInvalidMsgCode`, which
            // its p2p layer turns into `DiscSubprotocolError` (0x10). Still a breach for the
            // pool: `should_ban`.
            Self::Message(MessageError::UnknownMessage { .. }) => DisconnectReason::SubprotocolSpecific,
            Self::Message(_)
            | Self::InvalidResponse(_)
            | Self::MessageBeforeStatus(_)
            | Self::StatusAfterHandshake => DisconnectReason::ProtocolBreach,
            // geth's eth handshake gives up with DiscReadTimeout (0x0b).
            Self::HandshakeTimeout => DisconnectReason::PingTimeout,
            Self::NoSharedVersion => DisconnectReason::UselessPeer,
            Self::UnsolicitedResponse { .. } | Self::Timeout => return None,
            Self::SessionClosed
            | Self::Rlpx(_)
            | Self::NotForVersion { .. }
            | Self::Config(_)
            | Self::RequestTooLarge { .. } => return None,
        })
    }
}
