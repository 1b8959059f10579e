//! Errors of the eth layer, each classifying itself for the pool.

use alloy_primitives::B256;

use crate::eth::version::EthVersion;
use crate::record::ForkId;

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
    /// EIP-2124 says the peer is on another chain or fork.
    #[error("fork id {fork_id} rejected: {reason}")]
    ForkIdRejected {
        /// The peer's fork id.
        fork_id: ForkId,
        /// The filter's verdict.
        reason: String,
    },
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
}

/// How the pool should treat a peer after an error, from mildest to harshest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Backoff {
    /// Retry soon: a transient condition (timeout, too many peers).
    Short,
    /// Retry much later: the peer is fine but not useful now (wrong fork, behind).
    Long,
    /// Do not retry: the peer is on another network or broke the protocol.
    Never,
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
    /// An error of the RLPx transport below.
    #[error("rlpx: {0}")]
    Transport(String),
}

impl StatusError {
    /// Whether the peer should be banned: on another network or chain, it will never be
    /// useful; a broken `Status` is a protocol breach.
    pub fn should_ban(&self) -> bool {
        !matches!(self, Self::ForkIdRejected { .. })
    }

    /// How long to wait before dialing the peer again.
    pub fn backoff(&self) -> Backoff {
        match self {
            // A fork-id rejection may be temporary: the remote (or we) may be about to fork.
            Self::ForkIdRejected { .. } => Backoff::Long,
            _ => Backoff::Never,
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
            Self::HandshakeTimeout
            | Self::NoSharedVersion
            | Self::UnsolicitedResponse { .. }
            | Self::Timeout
            | Self::SessionClosed
            | Self::Transport(_) => false,
        }
    }

    /// Whether the session cannot continue after this error.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, Self::InvalidResponse(_) | Self::UnsolicitedResponse { .. } | Self::Timeout)
    }

    /// How long to wait before dialing the peer again.
    pub fn backoff(&self) -> Backoff {
        match self {
            Self::Status(e) => e.backoff(),
            Self::NoSharedVersion => Backoff::Never,
            e if e.should_ban() => Backoff::Never,
            _ => Backoff::Short,
        }
    }
}
