//! eth/66–72 wire messages (devp2p `caps/eth.md`, EIP-2481, EIP-4938, EIP-5793, EIP-7642,
//! EIP-7975, EIP-8159, EIP-8070; eth/70's receipt messages are in `receipts70.rs`, eth/71's
//! block access lists in `bal.rs`, eth/72's cells and cell-mask announcement in `cells.rs`).
//!
//! A message is a message id (relative to the eth capability's offset) and an RLP payload,
//! snappy-decompressed by RLPx. [`EthMessage::decode`] turns one into a typed value for a
//! given [`EthVersion`]; [`EthMessage::encode`] writes the payload back. Headers, bodies,
//! transactions and receipts are alloy-consensus types, so a header of any generation
//! (frontier's 15 fields to prague's 21) and every typed transaction decode as they are.
//!
//! Decoding never allocates by a length the peer claims: alloy-rlp checks every list and
//! string header against the bytes actually present, and lists grow element by element.
//! A payload larger than [`MAX_MESSAGE_SIZE`] is refused before any parsing.

use alloy_consensus::{
    transaction::PooledTransaction, BlockBody, Header, Receipt, ReceiptEnvelope, ReceiptWithBloom,
    TxEnvelope, TxType,
};
use alloy_eips::BlockHashOrNumber;
use alloy_primitives::{Bytes, B256, U256};
use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};

use crate::eth::bal::BlockAccessLists;
use crate::eth::cells::{Cells, GetCells, NewPooledTransactionHashes72};
use crate::eth::error::MessageError;
use crate::eth::receipts70::{GetReceipts70, Receipts70};
use crate::eth::version::EthVersion;
use crate::record::ForkId;

/// devp2p `caps/eth.md` and geth's `maxMessageSize`: larger eth messages are refused.
pub const MAX_MESSAGE_SIZE: usize = 10 * 1024 * 1024;

/// Message ids, relative to the eth capability's offset in the RLPx message-id space.
pub mod id {
    /// `Status` (0x00).
    pub const STATUS: u8 = 0x00;
    /// `NewBlockHashes` (0x01), eth/66–68.
    pub const NEW_BLOCK_HASHES: u8 = 0x01;
    /// `Transactions` (0x02).
    pub const TRANSACTIONS: u8 = 0x02;
    /// `GetBlockHeaders` (0x03).
    pub const GET_BLOCK_HEADERS: u8 = 0x03;
    /// `BlockHeaders` (0x04).
    pub const BLOCK_HEADERS: u8 = 0x04;
    /// `GetBlockBodies` (0x05).
    pub const GET_BLOCK_BODIES: u8 = 0x05;
    /// `BlockBodies` (0x06).
    pub const BLOCK_BODIES: u8 = 0x06;
    /// `NewBlock` (0x07), eth/66–68.
    pub const NEW_BLOCK: u8 = 0x07;
    /// `NewPooledTransactionHashes` (0x08).
    pub const NEW_POOLED_TRANSACTION_HASHES: u8 = 0x08;
    /// `GetPooledTransactions` (0x09).
    pub const GET_POOLED_TRANSACTIONS: u8 = 0x09;
    /// `PooledTransactions` (0x0a).
    pub const POOLED_TRANSACTIONS: u8 = 0x0a;
    /// `GetNodeData` (0x0d), eth/66 only.
    pub const GET_NODE_DATA: u8 = 0x0d;
    /// `NodeData` (0x0e), eth/66 only.
    pub const NODE_DATA: u8 = 0x0e;
    /// `GetReceipts` (0x0f).
    pub const GET_RECEIPTS: u8 = 0x0f;
    /// `Receipts` (0x10).
    pub const RECEIPTS: u8 = 0x10;
    /// `BlockRangeUpdate` (0x11), eth/69.
    pub const BLOCK_RANGE_UPDATE: u8 = 0x11;
    /// `GetBlockAccessLists` (0x12), eth/71 (EIP-8159).
    pub const GET_BLOCK_ACCESS_LISTS: u8 = 0x12;
    /// `BlockAccessLists` (0x13), eth/71.
    pub const BLOCK_ACCESS_LISTS: u8 = 0x13;
    /// `GetCells` (0x14), eth/72 (EIP-8070).
    pub const GET_CELLS: u8 = 0x14;
    /// `Cells` (0x15), eth/72.
    pub const CELLS: u8 = 0x15;
}

/// EIP-2481 request id: chosen by the requester, echoed by the responder.
pub type RequestId = u64;

/// EIP-2481: a request or response with its request id, `[request-id, message]`.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct RequestPair<T> {
    /// The id the requester chose; the response carries the same one.
    pub request_id: RequestId,
    /// The message itself.
    pub message: T,
}

impl<T> RequestPair<T> {
    /// Pairs `message` with `request_id`.
    pub const fn new(request_id: RequestId, message: T) -> Self {
        Self { request_id, message }
    }
}

/// `GetBlockHeaders`: `count` headers from `origin`, every `skip + 1`th one, descending if
/// `reverse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct GetBlockHeaders {
    /// The first header: by hash or by number.
    pub origin: BlockHashOrNumber,
    /// At most this many headers.
    pub count: u64,
    /// Headers skipped between two returned ones (0 = consecutive).
    pub skip: u64,
    /// Towards genesis if true.
    pub reverse: bool,
}

/// One entry of `NewBlockHashes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct BlockHashNumber {
    /// The announced block's hash.
    pub hash: B256,
    /// Its number.
    pub number: u64,
}

/// `NewBlock` (eth/66–68): a full block and the sender's total difficulty with it.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct NewBlock {
    /// The block.
    pub block: alloy_consensus::Block<TxEnvelope>,
    /// Total difficulty including this block.
    pub total_difficulty: U256,
}

/// `NewPooledTransactionHashes` in its eth/68 shape (EIP-5793): `[types, sizes, hashes]`,
/// three lists of equal length.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable)]
pub struct NewPooledTransactionHashes68 {
    /// Each transaction's EIP-2718 type byte.
    pub types: Bytes,
    /// Each transaction's encoded size (the network encoding, with blobs for type 3).
    pub sizes: Vec<u32>,
    /// Each transaction's hash.
    pub hashes: Vec<B256>,
}

impl Decodable for NewPooledTransactionHashes68 {
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        #[derive(RlpDecodable)]
        struct Raw {
            types: Bytes,
            sizes: Vec<u32>,
            hashes: Vec<B256>,
        }
        let Raw { types, sizes, hashes } = Raw::decode(buf)?;
        // EIP-5793: the three lists describe the same transactions, so they must line up.
        if types.len() != hashes.len() || sizes.len() != hashes.len() {
            return Err(alloy_rlp::Error::Custom("NewPooledTransactionHashes: list lengths differ"));
        }
        Ok(Self { types, sizes, hashes })
    }
}

/// A block range, `[earliest, latest, latest-hash]`: the payload of eth/69's
/// `BlockRangeUpdate` and the tail of its `Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, RlpEncodable, RlpDecodable)]
pub struct BlockRange {
    /// The oldest block whose body and receipts the peer still serves.
    pub earliest: u64,
    /// The peer's latest block.
    pub latest: u64,
    /// The latest block's hash.
    pub latest_hash: B256,
}

/// What a `Status` says about the sender's chain head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusHead {
    /// eth/66–68: the total difficulty and the best block's hash.
    TotalDifficulty {
        /// Total difficulty of the best block (at most 160 bits, see [`MAX_TD_BITS`]).
        total_difficulty: U256,
        /// Hash of the best block.
        best_hash: B256,
    },
    /// eth/69: the range of blocks served.
    Range(BlockRange),
}

/// reth's and geth's bound on a `Status` total difficulty: mainnet's final TD fits in 58 bits,
/// so anything above 160 bits is garbage that would otherwise be carried around.
pub const MAX_TD_BITS: usize = 160;

/// `Status`, the first eth message each side sends.
///
/// eth/66–68: `[version, networkid, td, blockhash, genesis, forkid]`; eth/69 (EIP-7642):
/// `[version, networkid, genesis, forkid, earliest, latest, latesthash]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The protocol version the sender claims (must equal the negotiated one).
    pub version: u8,
    /// The network id (1 = mainnet).
    pub network_id: u64,
    /// Hash of the genesis block.
    pub genesis: B256,
    /// The sender's EIP-2124 fork id.
    pub fork_id: ForkId,
    /// Total difficulty (66–68) or block range (69).
    pub head: StatusHead,
}

impl Status {
    fn encode_payload(&self, out: &mut Vec<u8>) {
        match &self.head {
            StatusHead::TotalDifficulty { total_difficulty, best_hash } => {
                let payload_length = self.version.length()
                    + self.network_id.length()
                    + total_difficulty.length()
                    + best_hash.length()
                    + self.genesis.length()
                    + self.fork_id.length();
                alloy_rlp::Header { list: true, payload_length }.encode(out);
                self.version.encode(out);
                self.network_id.encode(out);
                total_difficulty.encode(out);
                best_hash.encode(out);
                self.genesis.encode(out);
                self.fork_id.encode(out);
            }
            StatusHead::Range(range) => {
                let payload_length = self.version.length()
                    + self.network_id.length()
                    + self.genesis.length()
                    + self.fork_id.length()
                    + range.earliest.length()
                    + range.latest.length()
                    + range.latest_hash.length();
                alloy_rlp::Header { list: true, payload_length }.encode(out);
                self.version.encode(out);
                self.network_id.encode(out);
                self.genesis.encode(out);
                self.fork_id.encode(out);
                range.earliest.encode(out);
                range.latest.encode(out);
                range.latest_hash.encode(out);
            }
        }
    }

    /// Decodes a `Status` in the shape `version` uses.
    fn decode_payload(version: EthVersion, buf: &mut &[u8]) -> Result<Self, MessageError> {
        let rlp = |e| MessageError::Rlp { message: "Status", source: e };
        let mut payload = alloy_rlp::Header::decode_bytes(buf, true).map_err(rlp)?;
        let p = &mut payload;
        let status_version = u8::decode(p).map_err(rlp)?;
        let network_id = u64::decode(p).map_err(rlp)?;
        let status = if version.has_total_difficulty() {
            let total_difficulty = decode_total_difficulty(p)?;
            let best_hash = B256::decode(p).map_err(rlp)?;
            let genesis = B256::decode(p).map_err(rlp)?;
            let fork_id = ForkId::decode(p).map_err(rlp)?;
            Self {
                version: status_version,
                network_id,
                genesis,
                fork_id,
                head: StatusHead::TotalDifficulty { total_difficulty, best_hash },
            }
        } else {
            let genesis = B256::decode(p).map_err(rlp)?;
            let fork_id = ForkId::decode(p).map_err(rlp)?;
            let earliest = u64::decode(p).map_err(rlp)?;
            let latest = u64::decode(p).map_err(rlp)?;
            let latest_hash = B256::decode(p).map_err(rlp)?;
            Self {
                version: status_version,
                network_id,
                genesis,
                fork_id,
                head: StatusHead::Range(BlockRange { earliest, latest, latest_hash }),
            }
        };
        if !p.is_empty() {
            return Err(MessageError::TrailingBytes { message: "Status", count: p.len() });
        }
        Ok(status)
    }
}

/// Decodes a TD, refusing more than [`MAX_TD_BITS`] bits with its own error (a 300-bit TD is
/// not valid RLP for a U256 either, but the pool should see what the peer did).
fn decode_total_difficulty(buf: &mut &[u8]) -> Result<U256, MessageError> {
    let rlp = |e| MessageError::Rlp { message: "Status", source: e };
    let mut peek = *buf;
    let header = alloy_rlp::Header::decode(&mut peek).map_err(rlp)?;
    if !header.list && header.payload_length > MAX_TD_BITS / 8 {
        return Err(MessageError::TotalDifficultyTooLarge { bits: header.payload_length * 8 });
    }
    U256::decode(buf).map_err(rlp)
}

/// An eth/69 receipt (EIP-7642): `[tx-type, post-state-or-status, cumulative-gas, logs]`,
/// without the bloom that a receiver can recompute from the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt69 {
    /// The type of the transaction this receipt belongs to.
    pub tx_type: TxType,
    /// Status (or pre-Byzantium state root), gas and logs.
    pub receipt: Receipt,
}

impl Receipt69 {
    /// The consensus receipt, with its bloom recomputed from the logs.
    pub fn into_envelope(self) -> ReceiptEnvelope {
        ReceiptEnvelope::from_typed(self.tx_type, ReceiptWithBloom::from(self.receipt))
    }

    /// Drops the bloom of a consensus receipt.
    pub fn from_envelope(envelope: &ReceiptEnvelope) -> Self {
        let tx_type = envelope.tx_type();
        // Every variant carries a receipt; `Option` only leaves room for future types.
        let receipt = envelope.as_receipt_with_bloom().map(|r| r.receipt.clone()).unwrap_or_default();
        Self { tx_type, receipt }
    }

    fn fields_len(&self) -> usize {
        (self.tx_type as u8).length()
            + self.receipt.status.length()
            + self.receipt.cumulative_gas_used.length()
            + self.receipt.logs.length()
    }
}

impl Encodable for Receipt69 {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        alloy_rlp::Header { list: true, payload_length: self.fields_len() }.encode(out);
        (self.tx_type as u8).encode(out);
        self.receipt.status.encode(out);
        self.receipt.cumulative_gas_used.encode(out);
        self.receipt.logs.encode(out);
    }

    fn length(&self) -> usize {
        let len = self.fields_len();
        len + alloy_rlp::length_of_length(len)
    }
}

impl Decodable for Receipt69 {
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        let mut payload = alloy_rlp::Header::decode_bytes(buf, true)?;
        let p = &mut payload;
        let tx_type = TxType::try_from(u8::decode(p)?)
            .map_err(|_| alloy_rlp::Error::Custom("unknown transaction type"))?;
        let status = Decodable::decode(p)?;
        let cumulative_gas_used = u64::decode(p)?;
        let logs = Decodable::decode(p)?;
        if !p.is_empty() {
            return Err(alloy_rlp::Error::ListLengthMismatch { expected: 0, got: p.len() });
        }
        Ok(Self { tx_type, receipt: Receipt { status, cumulative_gas_used, logs } })
    }
}

/// The receipts of one `Receipts` response: with blooms (eth/66–68) or without (eth/69).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipts {
    /// eth/66–68: consensus-encoded receipts, per block.
    WithBloom(Vec<Vec<ReceiptEnvelope>>),
    /// eth/69: bloomless receipts, per block.
    Bloomless(Vec<Vec<Receipt69>>),
}

impl Receipts {
    /// Number of blocks answered.
    pub fn len(&self) -> usize {
        match self {
            Self::WithBloom(r) => r.len(),
            Self::Bloomless(r) => r.len(),
        }
    }

    /// Whether no block was answered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Consensus receipts per block (blooms recomputed for eth/69).
    pub fn into_envelopes(self) -> Vec<Vec<ReceiptEnvelope>> {
        match self {
            Self::WithBloom(r) => r,
            Self::Bloomless(r) => {
                r.into_iter().map(|b| b.into_iter().map(Receipt69::into_envelope).collect()).collect()
            }
        }
    }

    /// The receipts in the shape `version` sends.
    pub fn for_version(receipts: Vec<Vec<ReceiptEnvelope>>, version: EthVersion) -> Self {
        if version >= EthVersion::Eth69 {
            Self::Bloomless(
                receipts.iter().map(|b| b.iter().map(Receipt69::from_envelope).collect()).collect(),
            )
        } else {
            Self::WithBloom(receipts)
        }
    }
}

impl Encodable for Receipts {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        match self {
            Self::WithBloom(r) => r.encode(out),
            Self::Bloomless(r) => r.encode(out),
        }
    }

    fn length(&self) -> usize {
        match self {
            Self::WithBloom(r) => r.length(),
            Self::Bloomless(r) => r.length(),
        }
    }
}

/// One eth message, of any version we speak.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EthMessage {
    /// `Status` (0x00).
    Status(Status),
    /// `NewBlockHashes` (0x01, eth/66–68).
    NewBlockHashes(Vec<BlockHashNumber>),
    /// `Transactions` (0x02): full transactions, broadcast.
    Transactions(Vec<TxEnvelope>),
    /// `GetBlockHeaders` (0x03).
    GetBlockHeaders(RequestPair<GetBlockHeaders>),
    /// `BlockHeaders` (0x04).
    BlockHeaders(RequestPair<Vec<Header>>),
    /// `GetBlockBodies` (0x05): block hashes.
    GetBlockBodies(RequestPair<Vec<B256>>),
    /// `BlockBodies` (0x06).
    BlockBodies(RequestPair<Vec<BlockBody<TxEnvelope>>>),
    /// `NewBlock` (0x07, eth/66–68).
    NewBlock(Box<NewBlock>),
    /// `NewPooledTransactionHashes` (0x08) in its eth/66–67 shape: hashes only.
    NewPooledTransactionHashes66(Vec<B256>),
    /// `NewPooledTransactionHashes` (0x08) in its eth/68–71 shape.
    NewPooledTransactionHashes68(NewPooledTransactionHashes68),
    /// `NewPooledTransactionHashes` (0x08) in its eth/72 shape, with a cell mask (EIP-8070).
    NewPooledTransactionHashes72(NewPooledTransactionHashes72),
    /// `GetPooledTransactions` (0x09): transaction hashes.
    GetPooledTransactions(RequestPair<Vec<B256>>),
    /// `PooledTransactions` (0x0a): in their network form (blob transactions with sidecars).
    PooledTransactions(RequestPair<Vec<PooledTransaction>>),
    /// `GetNodeData` (0x0d, eth/66): trie node hashes.
    GetNodeData(RequestPair<Vec<B256>>),
    /// `NodeData` (0x0e, eth/66).
    NodeData(RequestPair<Vec<Bytes>>),
    /// `GetReceipts` (0x0f, eth/66–69): block hashes.
    GetReceipts(RequestPair<Vec<B256>>),
    /// `Receipts` (0x10, eth/66–69).
    Receipts(RequestPair<Receipts>),
    /// `GetReceipts` (0x0f) in its eth/70 shape, with `firstBlockReceiptIndex` (EIP-7975).
    GetReceipts70(GetReceipts70),
    /// `Receipts` (0x10) in its eth/70 shape, with `lastBlockIncomplete` (EIP-7975).
    Receipts70(Receipts70),
    /// `BlockRangeUpdate` (0x11, eth/69).
    BlockRangeUpdate(BlockRange),
    /// `GetBlockAccessLists` (0x12, eth/71): block hashes.
    GetBlockAccessLists(RequestPair<Vec<B256>>),
    /// `BlockAccessLists` (0x13, eth/71).
    BlockAccessLists(BlockAccessLists),
    /// `GetCells` (0x14, eth/72).
    GetCells(GetCells),
    /// `Cells` (0x15, eth/72).
    Cells(Cells),
}

impl EthMessage {
    /// The message id, relative to the eth capability's offset.
    pub fn id(&self) -> u8 {
        match self {
            Self::Status(_) => id::STATUS,
            Self::NewBlockHashes(_) => id::NEW_BLOCK_HASHES,
            Self::Transactions(_) => id::TRANSACTIONS,
            Self::GetBlockHeaders(_) => id::GET_BLOCK_HEADERS,
            Self::BlockHeaders(_) => id::BLOCK_HEADERS,
            Self::GetBlockBodies(_) => id::GET_BLOCK_BODIES,
            Self::BlockBodies(_) => id::BLOCK_BODIES,
            Self::NewBlock(_) => id::NEW_BLOCK,
            Self::NewPooledTransactionHashes66(_)
            | Self::NewPooledTransactionHashes68(_)
            | Self::NewPooledTransactionHashes72(_) => id::NEW_POOLED_TRANSACTION_HASHES,
            Self::GetPooledTransactions(_) => id::GET_POOLED_TRANSACTIONS,
            Self::PooledTransactions(_) => id::POOLED_TRANSACTIONS,
            Self::GetNodeData(_) => id::GET_NODE_DATA,
            Self::NodeData(_) => id::NODE_DATA,
            Self::GetReceipts(_) | Self::GetReceipts70(_) => id::GET_RECEIPTS,
            Self::Receipts(_) | Self::Receipts70(_) => id::RECEIPTS,
            Self::BlockRangeUpdate(_) => id::BLOCK_RANGE_UPDATE,
            Self::GetBlockAccessLists(_) => id::GET_BLOCK_ACCESS_LISTS,
            Self::BlockAccessLists(_) => id::BLOCK_ACCESS_LISTS,
            Self::GetCells(_) => id::GET_CELLS,
            Self::Cells(_) => id::CELLS,
        }
    }

    /// The spec's name of the message, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::NewPooledTransactionHashes66(_) => "NewPooledTransactionHashes",
            other => name_of(other.id()),
        }
    }

    /// The request id, for requests and responses.
    pub fn request_id(&self) -> Option<RequestId> {
        Some(match self {
            Self::GetBlockHeaders(p) => p.request_id,
            Self::BlockHeaders(p) => p.request_id,
            Self::GetBlockBodies(p) => p.request_id,
            Self::BlockBodies(p) => p.request_id,
            Self::GetPooledTransactions(p) => p.request_id,
            Self::PooledTransactions(p) => p.request_id,
            Self::GetNodeData(p) => p.request_id,
            Self::NodeData(p) => p.request_id,
            Self::GetReceipts(p) => p.request_id,
            Self::Receipts(p) => p.request_id,
            Self::GetReceipts70(p) => p.request_id,
            Self::Receipts70(p) => p.request_id,
            Self::GetBlockAccessLists(p) => p.request_id,
            Self::BlockAccessLists(p) => p.request_id,
            Self::GetCells(p) => p.request_id,
            Self::Cells(p) => p.request_id,
            _ => return None,
        })
    }

    /// Whether `version` defines this message in this shape.
    pub fn is_valid_for(&self, version: EthVersion) -> bool {
        match self {
            Self::NewPooledTransactionHashes66(_) => version < EthVersion::Eth68,
            Self::NewPooledTransactionHashes68(_) => version >= EthVersion::Eth68 && !version.has_cells(),
            Self::NewPooledTransactionHashes72(_) => version.has_cells(),
            Self::Status(s) => s.head_matches(version),
            Self::GetReceipts(_) => !version.has_partial_receipts(),
            Self::Receipts(r) => {
                !version.has_partial_receipts()
                    && matches!(r.message, Receipts::Bloomless(_)) == (version >= EthVersion::Eth69)
            }
            Self::GetReceipts70(_) | Self::Receipts70(_) => version.has_partial_receipts(),
            other => version.has_message(other.id()),
        }
    }

    /// Writes the RLP payload (without the message id).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Status(s) => s.encode_payload(out),
            Self::NewBlockHashes(m) => m.encode(out),
            Self::Transactions(m) => m.encode(out),
            Self::GetBlockHeaders(m) => m.encode(out),
            Self::BlockHeaders(m) => m.encode(out),
            Self::GetBlockBodies(m) => m.encode(out),
            Self::BlockBodies(m) => m.encode(out),
            Self::NewBlock(m) => m.encode(out),
            Self::NewPooledTransactionHashes66(m) => m.encode(out),
            Self::NewPooledTransactionHashes68(m) => m.encode(out),
            Self::NewPooledTransactionHashes72(m) => m.encode(out),
            Self::GetPooledTransactions(m) => m.encode(out),
            Self::PooledTransactions(m) => m.encode(out),
            Self::GetNodeData(m) => m.encode(out),
            Self::NodeData(m) => m.encode(out),
            Self::GetReceipts(m) => m.encode(out),
            Self::Receipts(m) => m.encode(out),
            Self::GetReceipts70(m) => m.encode(out),
            Self::Receipts70(m) => m.encode(out),
            Self::BlockRangeUpdate(m) => m.encode(out),
            Self::GetBlockAccessLists(m) => m.encode(out),
            Self::BlockAccessLists(m) => m.encode(out),
            Self::GetCells(m) => m.encode(out),
            Self::Cells(m) => m.encode(out),
        }
    }

    /// The RLP payload as a fresh buffer.
    pub fn encoded(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes message `id` of `version` from its (decompressed) RLP payload.
    ///
    /// The whole payload must be one RLP item; trailing bytes, ids the version does not
    /// define, payloads over [`MAX_MESSAGE_SIZE`] and malformed RLP are typed errors.
    pub fn decode(version: EthVersion, id: u8, payload: &[u8]) -> Result<Self, MessageError> {
        if payload.len() > MAX_MESSAGE_SIZE {
            return Err(MessageError::TooLarge { size: payload.len(), max: MAX_MESSAGE_SIZE });
        }
        if !version.has_message(id) {
            return Err(MessageError::UnknownMessage { id, version });
        }
        let name = name_of(id);
        let mut buf = payload;
        let b = &mut buf;
        let msg = match id {
            id::STATUS => Self::Status(Status::decode_payload(version, b)?),
            id::NEW_BLOCK_HASHES => Self::NewBlockHashes(rlp(name, b)?),
            id::TRANSACTIONS => Self::Transactions(rlp(name, b)?),
            id::GET_BLOCK_HEADERS => Self::GetBlockHeaders(rlp(name, b)?),
            id::BLOCK_HEADERS => Self::BlockHeaders(rlp(name, b)?),
            id::GET_BLOCK_BODIES => Self::GetBlockBodies(rlp(name, b)?),
            id::BLOCK_BODIES => Self::BlockBodies(rlp(name, b)?),
            id::NEW_BLOCK => Self::NewBlock(Box::new(rlp(name, b)?)),
            id::NEW_POOLED_TRANSACTION_HASHES if version.has_cells() => {
                Self::NewPooledTransactionHashes72(rlp(name, b)?)
            }
            id::NEW_POOLED_TRANSACTION_HASHES if version >= EthVersion::Eth68 => {
                Self::NewPooledTransactionHashes68(rlp(name, b)?)
            }
            id::NEW_POOLED_TRANSACTION_HASHES => Self::NewPooledTransactionHashes66(rlp(name, b)?),
            id::GET_POOLED_TRANSACTIONS => Self::GetPooledTransactions(rlp(name, b)?),
            id::POOLED_TRANSACTIONS => Self::PooledTransactions(rlp(name, b)?),
            id::GET_NODE_DATA => Self::GetNodeData(rlp(name, b)?),
            id::NODE_DATA => Self::NodeData(rlp(name, b)?),
            id::GET_RECEIPTS if version.has_partial_receipts() => Self::GetReceipts70(rlp(name, b)?),
            id::GET_RECEIPTS => Self::GetReceipts(rlp(name, b)?),
            id::RECEIPTS if version.has_partial_receipts() => Self::Receipts70(rlp(name, b)?),
            id::RECEIPTS if version >= EthVersion::Eth69 => {
                let p: RequestPair<Vec<Vec<Receipt69>>> = rlp(name, b)?;
                Self::Receipts(RequestPair::new(p.request_id, Receipts::Bloomless(p.message)))
            }
            id::RECEIPTS => {
                let p: RequestPair<Vec<Vec<ReceiptEnvelope>>> = rlp(name, b)?;
                Self::Receipts(RequestPair::new(p.request_id, Receipts::WithBloom(p.message)))
            }
            id::BLOCK_RANGE_UPDATE => Self::BlockRangeUpdate(rlp(name, b)?),
            id::GET_BLOCK_ACCESS_LISTS => Self::GetBlockAccessLists(rlp(name, b)?),
            id::BLOCK_ACCESS_LISTS => Self::BlockAccessLists(rlp(name, b)?),
            id::GET_CELLS => Self::GetCells(rlp(name, b)?),
            id::CELLS => Self::Cells(rlp(name, b)?),
            _ => return Err(MessageError::UnknownMessage { id, version }),
        };
        if !buf.is_empty() {
            return Err(MessageError::TrailingBytes { message: name, count: buf.len() });
        }
        Ok(msg)
    }
}

impl Status {
    fn head_matches(&self, version: EthVersion) -> bool {
        matches!(self.head, StatusHead::TotalDifficulty { .. }) == version.has_total_difficulty()
    }
}

/// Decodes a `BlockHeaders` payload and hashes each header over the bytes received, the
/// cheapest way to get the hashes that parent-link checks need (no re-encoding).
///
/// ```
/// use ethp2p::eth::{decode_block_headers_hashed, EthMessage, MemoryChain, RequestPair};
/// let chain = MemoryChain::builder().blocks(3).build();
/// let headers = (0..=3).map(|n| chain.header(n).unwrap().clone()).collect();
/// let payload = EthMessage::BlockHeaders(RequestPair::new(9, headers)).encoded();
/// let (pair, hashes) = decode_block_headers_hashed(&payload)?;
/// assert_eq!(pair.request_id, 9);
/// assert_eq!(hashes[3], chain.hash(3).unwrap());
/// # Ok::<(), ethp2p::eth::MessageError>(())
/// ```
pub fn decode_block_headers_hashed(
    payload: &[u8],
) -> Result<(RequestPair<Vec<Header>>, Vec<B256>), MessageError> {
    const NAME: &str = "BlockHeaders";
    let rlp = |source| MessageError::Rlp { message: NAME, source };
    let (request_id, mut list) = split_request_list(payload, NAME)?;
    let (mut headers, mut hashes) = (Vec::new(), Vec::new());
    while !list.is_empty() {
        let start = list;
        headers.push(Header::decode(&mut list).map_err(rlp)?);
        hashes.push(alloy_primitives::keccak256(&start[..start.len() - list.len()]));
    }
    Ok((RequestPair::new(request_id, headers), hashes))
}

/// Splits a `[request-id, [items...]]` payload into the id and the items' bytes, with the
/// size cap and the trailing-bytes checks every response decoder needs.
fn split_request_list<'a>(payload: &'a [u8], name: &'static str) -> Result<(u64, &'a [u8]), MessageError> {
    if payload.len() > MAX_MESSAGE_SIZE {
        return Err(MessageError::TooLarge { size: payload.len(), max: MAX_MESSAGE_SIZE });
    }
    let rlp = |source| MessageError::Rlp { message: name, source };
    let mut buf = payload;
    let mut pair = alloy_rlp::Header::decode_bytes(&mut buf, true).map_err(rlp)?;
    if !buf.is_empty() {
        return Err(MessageError::TrailingBytes { message: name, count: buf.len() });
    }
    let request_id = u64::decode(&mut pair).map_err(rlp)?;
    let list = alloy_rlp::Header::decode_bytes(&mut pair, true).map_err(rlp)?;
    if !pair.is_empty() {
        return Err(rlp(alloy_rlp::Error::ListLengthMismatch { expected: 0, got: pair.len() }));
    }
    Ok((request_id, list))
}

/// The bodies of a `BlockBodies` message.
pub type Bodies = Vec<BlockBody<TxEnvelope>>;

/// Transactions' EIP-2718 encodings as received, per body: the leaves of each body's
/// transactions trie.
pub type TxEncodings<'a> = Vec<Vec<&'a [u8]>>;

/// Decodes a `BlockBodies` payload and keeps each transaction's EIP-2718 encoding as
/// received (borrowed from `payload`), so the transactions root can be computed without
/// re-encoding ([`validate_bodies_encoded`](crate::eth::validate_bodies_encoded)).
pub fn decode_block_bodies_encoded(
    payload: &[u8],
) -> Result<(RequestPair<Bodies>, TxEncodings<'_>), MessageError> {
    const NAME: &str = "BlockBodies";
    let rlp = |source| MessageError::Rlp { message: NAME, source };
    let (request_id, mut list) = split_request_list(payload, NAME)?;
    let (mut bodies, mut encodings) = (Vec::new(), Vec::new());
    while !list.is_empty() {
        let mut body = alloy_rlp::Header::decode_bytes(&mut list, true).map_err(rlp)?;
        let mut txs = alloy_rlp::Header::decode_bytes(&mut body, true).map_err(rlp)?;
        let (mut transactions, mut encoded) = (Vec::new(), Vec::new());
        while !txs.is_empty() {
            let start = txs;
            transactions.push(TxEnvelope::decode(&mut txs).map_err(rlp)?);
            let mut item = &start[..start.len() - txs.len()];
            // A legacy transaction is its own RLP list; a typed one is an RLP string whose
            // payload is `type || rlp(fields)`.
            if item.first().is_some_and(|b| *b < 0xc0) {
                item = alloy_rlp::Header::decode_bytes(&mut item, false).map_err(rlp)?;
            }
            encoded.push(item);
        }
        let ommers = Vec::<Header>::decode(&mut body).map_err(rlp)?;
        let withdrawals =
            if body.is_empty() { None } else { Some(Decodable::decode(&mut body).map_err(rlp)?) };
        if !body.is_empty() {
            return Err(rlp(alloy_rlp::Error::ListLengthMismatch { expected: 0, got: body.len() }));
        }
        bodies.push(BlockBody { transactions, ommers, withdrawals });
        encodings.push(encoded);
    }
    Ok((RequestPair::new(request_id, bodies), encodings))
}

fn rlp<T: Decodable>(message: &'static str, buf: &mut &[u8]) -> Result<T, MessageError> {
    T::decode(buf).map_err(|source| MessageError::Rlp { message, source })
}

/// The spec's name for message `id`.
pub fn name_of(id: u8) -> &'static str {
    match id {
        id::STATUS => "Status",
        id::NEW_BLOCK_HASHES => "NewBlockHashes",
        id::TRANSACTIONS => "Transactions",
        id::GET_BLOCK_HEADERS => "GetBlockHeaders",
        id::BLOCK_HEADERS => "BlockHeaders",
        id::GET_BLOCK_BODIES => "GetBlockBodies",
        id::BLOCK_BODIES => "BlockBodies",
        id::NEW_BLOCK => "NewBlock",
        id::NEW_POOLED_TRANSACTION_HASHES => "NewPooledTransactionHashes",
        id::GET_POOLED_TRANSACTIONS => "GetPooledTransactions",
        id::POOLED_TRANSACTIONS => "PooledTransactions",
        id::GET_NODE_DATA => "GetNodeData",
        id::NODE_DATA => "NodeData",
        id::GET_RECEIPTS => "GetReceipts",
        id::RECEIPTS => "Receipts",
        id::BLOCK_RANGE_UPDATE => "BlockRangeUpdate",
        id::GET_BLOCK_ACCESS_LISTS => "GetBlockAccessLists",
        id::BLOCK_ACCESS_LISTS => "BlockAccessLists",
        id::GET_CELLS => "GetCells",
        id::CELLS => "Cells",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::{Eip658Value, Transaction, TxEip4844};
    use alloy_primitives::{address, b256, hex, Log, LogData};
    use proptest::prelude::*;

    const VECTORS: &str =
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors/eth66-eip-2481.json"));

    fn message_id(ty: &str) -> u8 {
        match ty {
            "GetBlockHeadersPacket66" => id::GET_BLOCK_HEADERS,
            "BlockHeadersPacket66" => id::BLOCK_HEADERS,
            "GetBlockBodiesPacket66" => id::GET_BLOCK_BODIES,
            "BlockBodiesPacket66" => id::BLOCK_BODIES,
            "GetNodeDataPacket66" => id::GET_NODE_DATA,
            "NodeDataPacket66" => id::NODE_DATA,
            "GetReceiptsPacket66" => id::GET_RECEIPTS,
            "ReceiptsPacket66" => id::RECEIPTS,
            "GetPooledTransactionsPacket66" => id::GET_POOLED_TRANSACTIONS,
            "PooledTransactionsPacket66" => id::POOLED_TRANSACTIONS,
            other => panic!("vector type {other} has no message"),
        }
    }

    fn b256_of(v: &serde_json::Value) -> B256 {
        v.as_str().unwrap().parse().unwrap()
    }

    fn u64_of(v: &serde_json::Value) -> u64 {
        let s = v.as_str().unwrap().trim_start_matches("0x");
        u64::from_str_radix(s, 16).unwrap()
    }

    /// The legacy transactions of the vectors: fields and hash as the EIP lists them.
    fn check_txs(txs: &[TxEnvelope], data: &serde_json::Value) {
        let data = data.as_array().unwrap();
        assert_eq!(txs.len(), data.len());
        for (tx, d) in txs.iter().zip(data) {
            assert_eq!(tx.nonce(), u64_of(&d["nonce"]));
            assert_eq!(tx.gas_limit(), u64_of(&d["gas"]));
            assert_eq!(tx.gas_price(), Some(u64_of(&d["gasPrice"]) as u128));
            assert_eq!(tx.to(), Some(d["to"].as_str().unwrap().parse().unwrap()));
            assert_eq!(tx.value(), U256::from(u64_of(&d["value"])));
            assert_eq!(*tx.tx_hash(), b256_of(&d["hash"]));
        }
    }

    fn check_header(h: &Header, d: &serde_json::Value) {
        assert_eq!(h.difficulty, U256::from(u64_of(&d["difficulty"])));
        assert_eq!(h.number, u64_of(&d["number"]));
        assert_eq!(h.gas_limit, u64_of(&d["gasLimit"]));
        assert_eq!(h.gas_used, u64_of(&d["gasUsed"]));
        assert_eq!(h.timestamp, u64_of(&d["timestamp"]));
        assert_eq!(h.extra_data.as_ref(), hex::decode(d["extraData"].as_str().unwrap()).unwrap());
        assert_eq!(h.base_fee_per_gas, None, "15-field frontier header");
        assert_eq!(h.hash_slow(), b256_of(&d["hash"]));
    }

    fn hashes(d: &serde_json::Value) -> Vec<B256> {
        d.as_array().unwrap().iter().map(b256_of).collect()
    }

    /// EIP-2481 "Test Cases": every vector decodes to the listed data and re-encodes to the
    /// same bytes.
    #[test]
    fn eip2481_vectors() {
        let file: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        let vectors = file["vectors"].as_array().unwrap();
        assert_eq!(vectors.len(), 11);
        for v in vectors {
            let ty = v["type"].as_str().unwrap();
            let rlp = hex::decode(v["rlp"].as_str().unwrap()).unwrap();
            let data = &v["data"];
            let msg = EthMessage::decode(EthVersion::Eth66, message_id(ty), &rlp)
                .unwrap_or_else(|e| panic!("{ty}: {e}"));
            assert_eq!(msg.request_id(), Some(data["RequestId"].as_u64().unwrap()), "{ty}");
            assert_eq!(msg.encoded(), rlp, "{ty} re-encodes to the same bytes");
            match &msg {
                EthMessage::GetBlockHeaders(p) => {
                    let origin = &data["Origin"];
                    let hash = b256_of(&origin["Hash"]);
                    let expected = if hash.is_zero() {
                        BlockHashOrNumber::Number(origin["Number"].as_u64().unwrap())
                    } else {
                        BlockHashOrNumber::Hash(hash)
                    };
                    assert_eq!(p.message.origin, expected);
                    assert_eq!(p.message.count, data["Amount"].as_u64().unwrap());
                    assert_eq!(p.message.skip, data["Skip"].as_u64().unwrap());
                    assert_eq!(p.message.reverse, data["Reverse"].as_bool().unwrap());
                }
                EthMessage::BlockHeaders(p) => {
                    let d = data["BlockHeadersPacket"].as_array().unwrap();
                    assert_eq!(p.message.len(), d.len());
                    check_header(&p.message[0], &d[0]);
                }
                EthMessage::GetBlockBodies(p) => {
                    assert_eq!(p.message, hashes(&data["GetBlockBodiesPacket"]))
                }
                EthMessage::GetNodeData(p) => assert_eq!(p.message, hashes(&data["GetNodeDataPacket"])),
                EthMessage::GetReceipts(p) => assert_eq!(p.message, hashes(&data["GetReceiptsPacket"])),
                EthMessage::GetPooledTransactions(p) => {
                    assert_eq!(p.message, hashes(&data["GetPooledTransactionsPacket"]))
                }
                EthMessage::NodeData(p) => {
                    let d: Vec<Bytes> = data["NodeDataPacket"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_str().unwrap().parse().unwrap())
                        .collect();
                    assert_eq!(p.message, d);
                }
                EthMessage::BlockBodies(p) => {
                    let d = &data["BlockBodiesPacket"][0];
                    assert_eq!(p.message.len(), 1);
                    let body = &p.message[0];
                    check_txs(&body.transactions, &d["Transactions"]);
                    assert_eq!(body.ommers.len(), 1);
                    check_header(&body.ommers[0], &d["Uncles"][0]);
                    assert_eq!(body.withdrawals, None);
                }
                EthMessage::PooledTransactions(p) => {
                    let txs: Vec<TxEnvelope> = p
                        .message
                        .iter()
                        .cloned()
                        .map(|t| TxEnvelope::from(alloy_consensus::EthereumTxEnvelope::<TxEip4844>::from(t)))
                        .collect();
                    check_txs(&txs, &data["PooledTransactionsPacket"]);
                }
                EthMessage::Receipts(p) => {
                    let Receipts::WithBloom(blocks) = &p.message else { panic!("eth/66 has blooms") };
                    let d = &data["ReceiptsPacket"][0][0];
                    assert_eq!(blocks.len(), 1);
                    assert_eq!(blocks[0].len(), 1);
                    let ReceiptEnvelope::Legacy(r) = &blocks[0][0] else { panic!("legacy receipt") };
                    // "root": "0x", "status": "0x0": an empty first field is a failed status.
                    assert_eq!(r.receipt.status, Eip658Value::Eip658(false));
                    assert_eq!(r.receipt.cumulative_gas_used, u64_of(&d["cumulativeGasUsed"]));
                    let log = &r.receipt.logs[0];
                    assert_eq!(log.address, address!("0000000000000000000000000000000000000011"));
                    assert_eq!(log.topics(), hashes(&d["logs"][0]["topics"]).as_slice());
                    assert_eq!(log.data.data.as_ref(), [1u8, 0, 0xff]);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn oversized_payload_is_refused_before_parsing() {
        let big = vec![0u8; MAX_MESSAGE_SIZE + 1];
        let err = EthMessage::decode(EthVersion::Eth68, id::BLOCK_HEADERS, &big).unwrap_err();
        assert!(matches!(err, MessageError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn ids_outside_the_version_are_refused() {
        let payload = EthMessage::GetNodeData(RequestPair::new(1, vec![])).encoded();
        assert!(EthMessage::decode(EthVersion::Eth66, id::GET_NODE_DATA, &payload).is_ok());
        for (v, id) in [
            (EthVersion::Eth67, id::GET_NODE_DATA),
            (EthVersion::Eth69, id::NEW_BLOCK),
            (EthVersion::Eth68, id::BLOCK_RANGE_UPDATE),
            (EthVersion::Eth69, 0x12),
            (EthVersion::Eth70, id::GET_BLOCK_ACCESS_LISTS),
            (EthVersion::Eth71, id::GET_CELLS),
            (EthVersion::Eth72, 0x16),
        ] {
            let err = EthMessage::decode(v, id, &payload).unwrap_err();
            assert!(matches!(err, MessageError::UnknownMessage { .. }), "{v} {id}: {err}");
        }
    }

    #[test]
    fn malformed_payloads_are_typed_errors() {
        let good = EthMessage::GetBlockBodies(RequestPair::new(7, vec![B256::repeat_byte(1)])).encoded();
        // Trailing garbage after the single item.
        let mut trailing = good.clone();
        trailing.push(0x80);
        assert!(matches!(
            EthMessage::decode(EthVersion::Eth68, id::GET_BLOCK_BODIES, &trailing),
            Err(MessageError::TrailingBytes { count: 1, .. })
        ));
        // Truncated: the list claims more bytes than exist.
        for cut in 0..good.len() {
            assert!(EthMessage::decode(EthVersion::Eth68, id::GET_BLOCK_BODIES, &good[..cut]).is_err());
        }
        // A list header claiming 4 GiB of elements in 6 bytes must fail, not allocate.
        let huge = [0xfb, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(EthMessage::decode(EthVersion::Eth68, id::BLOCK_HEADERS, &huge).is_err());
        // A string where the request pair's list belongs.
        assert!(EthMessage::decode(EthVersion::Eth68, id::GET_RECEIPTS, &[0x83, 1, 2, 3]).is_err());
        // eth/68 announcement with mismatched list lengths.
        let bad = NewPooledTransactionHashes68 {
            types: Bytes::from_static(&[2, 2]),
            sizes: vec![100],
            hashes: vec![B256::ZERO, B256::ZERO],
        };
        let mut buf = Vec::new();
        bad.encode(&mut buf);
        assert!(EthMessage::decode(EthVersion::Eth68, id::NEW_POOLED_TRANSACTION_HASHES, &buf).is_err());
    }

    fn status(version: EthVersion, td_bytes: usize) -> Status {
        let head = if version.has_total_difficulty() {
            let td = if td_bytes == 0 { U256::ZERO } else { U256::MAX >> (256 - td_bytes * 8) };
            StatusHead::TotalDifficulty { total_difficulty: td, best_hash: B256::repeat_byte(2) }
        } else {
            StatusHead::Range(BlockRange { earliest: 0, latest: 100, latest_hash: B256::repeat_byte(3) })
        };
        Status {
            version: version.as_u8(),
            network_id: 1,
            genesis: b256!("d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3"),
            fork_id: ForkId { hash: [0xfc, 0x64, 0xec, 0x04].into(), next: 1_150_000 },
            head,
        }
    }

    #[test]
    fn status_roundtrips_in_both_shapes() {
        for v in EthVersion::ALL {
            let s = EthMessage::Status(status(v, 20));
            assert!(s.is_valid_for(v));
            assert_eq!(EthMessage::decode(v, id::STATUS, &s.encoded()).unwrap(), s, "{v}");
        }
        // The 69 shape is not a 68 Status and vice versa.
        let s69 = EthMessage::Status(status(EthVersion::Eth69, 0)).encoded();
        assert!(EthMessage::decode(EthVersion::Eth68, id::STATUS, &s69).is_err());
    }

    #[test]
    fn status_total_difficulty_over_160_bits_is_refused() {
        // 21 bytes = 168 bits; and a 300-bit (38-byte) TD hand-encoded since U256 cannot hold it.
        let s = EthMessage::Status(status(EthVersion::Eth68, 21)).encoded();
        assert!(matches!(
            EthMessage::decode(EthVersion::Eth68, id::STATUS, &s),
            Err(MessageError::TotalDifficultyTooLarge { bits: 168 })
        ));
        let mut fields = Vec::new();
        68u8.encode(&mut fields);
        1u64.encode(&mut fields);
        fields.push(0x80 + 38);
        fields.extend_from_slice(&[0xff; 38]);
        B256::ZERO.encode(&mut fields);
        B256::ZERO.encode(&mut fields);
        ForkId { hash: [0; 4].into(), next: 0 }.encode(&mut fields);
        let mut msg = Vec::new();
        alloy_rlp::Header { list: true, payload_length: fields.len() }.encode(&mut msg);
        msg.extend_from_slice(&fields);
        assert!(matches!(
            EthMessage::decode(EthVersion::Eth68, id::STATUS, &msg),
            Err(MessageError::TotalDifficultyTooLarge { bits: 304 })
        ));
    }

    #[test]
    fn eth69_receipts_drop_the_bloom_and_get_it_back() {
        let receipt = Receipt {
            status: Eip658Value::Eip658(true),
            cumulative_gas_used: 21_000,
            logs: vec![Log {
                address: address!("0000000000000000000000000000000000000011"),
                data: LogData::new_unchecked(vec![B256::repeat_byte(9)], Bytes::from_static(b"hi")),
            }],
        };
        let envelope = ReceiptEnvelope::from_typed(TxType::Eip1559, ReceiptWithBloom::from(receipt.clone()));
        let blocks = vec![vec![envelope.clone()], vec![]];
        let msg69 = EthMessage::Receipts(RequestPair::new(
            3,
            Receipts::for_version(blocks.clone(), EthVersion::Eth69),
        ));
        let bytes = msg69.encoded();
        let decoded = EthMessage::decode(EthVersion::Eth69, id::RECEIPTS, &bytes).unwrap();
        assert_eq!(decoded, msg69);
        let EthMessage::Receipts(p) = decoded else { unreachable!() };
        assert_eq!(p.message.into_envelopes(), blocks);
        // EIP-7642's shape: [tx-type, status, cumulative-gas, logs], no 256-byte bloom.
        let mut one = Vec::new();
        Receipt69::from_envelope(&envelope).encode(&mut one);
        assert!(one.len() < 100);
        // Long-list header (0xf8, length), then type 2 and status 1.
        assert_eq!(&one[2..4], &[0x02, 0x01]);
        // A 68 receipts payload is not a 69 one.
        let msg68 = EthMessage::Receipts(RequestPair::new(3, Receipts::WithBloom(blocks))).encoded();
        assert!(EthMessage::decode(EthVersion::Eth69, id::RECEIPTS, &msg68).is_err());
        assert!(EthMessage::decode(EthVersion::Eth68, id::RECEIPTS, &msg68).is_ok());
    }

    /// One sample of every message, with a version that has it.
    fn samples() -> Vec<(EthVersion, EthMessage)> {
        let chain = crate::eth::MemoryChain::builder()
            .blocks(2)
            .transactions_per_block(2)
            .pooled_transactions(1)
            .build();
        let body = chain.body_by_number(1).unwrap().clone();
        let header = chain.header(1).unwrap().clone();
        let hashes = vec![B256::repeat_byte(1), B256::repeat_byte(2)];
        let receipts = vec![chain.receipts_by_hash(&chain.hash(1).unwrap()).unwrap().clone()];
        let pooled = crate::eth::serve_pooled_transactions(&chain.tx_pool(), &chain.pooled_hashes());
        use EthVersion::*;
        vec![
            (Eth68, EthMessage::Status(status(Eth68, 8))),
            (Eth69, EthMessage::Status(status(Eth69, 0))),
            (Eth68, EthMessage::NewBlockHashes(vec![BlockHashNumber { hash: hashes[0], number: 1 }])),
            (Eth68, EthMessage::Transactions(body.transactions.clone())),
            (
                Eth68,
                EthMessage::GetBlockHeaders(RequestPair::new(
                    1,
                    GetBlockHeaders { origin: hashes[0].into(), count: 2, skip: 0, reverse: true },
                )),
            ),
            (Eth68, EthMessage::BlockHeaders(RequestPair::new(1, vec![header.clone()]))),
            (Eth68, EthMessage::GetBlockBodies(RequestPair::new(1, hashes.clone()))),
            (Eth68, EthMessage::BlockBodies(RequestPair::new(1, vec![body.clone()]))),
            (
                Eth68,
                EthMessage::NewBlock(Box::new(NewBlock {
                    block: alloy_consensus::Block { header, body: body.clone() },
                    total_difficulty: U256::from(5),
                })),
            ),
            (Eth67, EthMessage::NewPooledTransactionHashes66(hashes.clone())),
            (
                Eth68,
                EthMessage::NewPooledTransactionHashes68(NewPooledTransactionHashes68 {
                    types: vec![0, 2].into(),
                    sizes: vec![100, 200],
                    hashes: hashes.clone(),
                }),
            ),
            (Eth68, EthMessage::GetPooledTransactions(RequestPair::new(1, hashes.clone()))),
            (Eth68, EthMessage::PooledTransactions(RequestPair::new(1, pooled))),
            (Eth66, EthMessage::GetNodeData(RequestPair::new(1, hashes.clone()))),
            (Eth66, EthMessage::NodeData(RequestPair::new(1, vec![Bytes::from_static(b"node")]))),
            (Eth68, EthMessage::GetReceipts(RequestPair::new(1, hashes.clone()))),
            (Eth68, EthMessage::Receipts(RequestPair::new(1, Receipts::WithBloom(receipts.clone())))),
            (
                Eth69,
                EthMessage::Receipts(RequestPair::new(1, Receipts::for_version(receipts.clone(), Eth69))),
            ),
            (
                Eth69,
                EthMessage::BlockRangeUpdate(BlockRange { earliest: 0, latest: 1, latest_hash: B256::ZERO }),
            ),
            (
                Eth70,
                EthMessage::GetReceipts70(GetReceipts70 {
                    request_id: 1,
                    first_block_receipt_index: 3,
                    hashes: hashes.clone(),
                }),
            ),
            (
                Eth70,
                EthMessage::Receipts70(Receipts70 {
                    request_id: 1,
                    last_block_incomplete: true,
                    receipts: receipts
                        .iter()
                        .map(|b| b.iter().map(Receipt69::from_envelope).collect())
                        .collect(),
                }),
            ),
            (Eth71, EthMessage::GetBlockAccessLists(RequestPair::new(1, hashes.clone()))),
            (
                Eth71,
                EthMessage::BlockAccessLists(BlockAccessLists {
                    request_id: 1,
                    lists: vec![
                        None,
                        Some(Bytes::from_static(&[0xc0])),
                        Some(crate::eth::encode_block_access_list(&[Default::default()])),
                    ],
                }),
            ),
            (
                Eth72,
                EthMessage::NewPooledTransactionHashes72(NewPooledTransactionHashes72 {
                    types: vec![3, 2].into(),
                    sizes: vec![131_000, 200],
                    hashes: hashes.clone(),
                    cell_mask: crate::eth::CellMask::from_indices([1, 64]),
                }),
            ),
            (
                Eth72,
                EthMessage::GetCells(GetCells {
                    request_id: 1,
                    hashes: hashes.clone(),
                    cell_mask: crate::eth::CellMask::from_indices([0, 5]),
                }),
            ),
            (
                Eth72,
                EthMessage::Cells(Cells {
                    request_id: 1,
                    hashes: hashes[..1].to_vec(),
                    cells: vec![vec![crate::eth::Cell::repeat_byte(7); 2]],
                    cell_mask: crate::eth::CellMask::from_indices([0, 5]),
                }),
            ),
        ]
    }

    /// For every message: it roundtrips; every truncation, a trailing byte, a string header in
    /// place of the outer list, and a length claim beyond the input are typed errors.
    #[test]
    fn every_message_refuses_malformed_payloads() {
        for (v, m) in samples() {
            assert!(m.is_valid_for(v), "{v} {}", m.name());
            let bytes = m.encoded();
            assert_eq!(EthMessage::decode(v, m.id(), &bytes).unwrap(), m, "{}", m.name());
            for cut in 0..bytes.len() {
                assert!(EthMessage::decode(v, m.id(), &bytes[..cut]).is_err(), "{} cut at {cut}", m.name());
            }
            let mut trailing = bytes.clone();
            trailing.push(0x80);
            assert!(matches!(
                EthMessage::decode(v, m.id(), &trailing),
                Err(MessageError::TrailingBytes { count: 1, .. })
            ));
            // Every payload is one list: its header byte minus 0x40 is the same-length string.
            let mut as_string = bytes.clone();
            assert!(as_string[0] >= 0xc0);
            as_string[0] -= 0x40;
            assert!(EthMessage::decode(v, m.id(), &as_string).is_err(), "{} as a string", m.name());
            // Claim 16 MiB of payload in a 4-byte length.
            let mut huge = vec![0xfb, 0x01, 0x00, 0x00, 0x00];
            huge.extend_from_slice(&bytes[1..]);
            assert!(EthMessage::decode(v, m.id(), &huge).is_err(), "{} huge claim", m.name());
        }
    }

    #[test]
    fn hashed_header_decode_matches_the_generic_one() {
        for (v, m) in samples().into_iter().filter(|(_, m)| m.id() == id::BLOCK_HEADERS) {
            let bytes = m.encoded();
            let (pair, hashes) = decode_block_headers_hashed(&bytes).unwrap();
            let EthMessage::BlockHeaders(generic) = EthMessage::decode(v, m.id(), &bytes).unwrap() else {
                unreachable!()
            };
            assert_eq!(pair, generic);
            let slow: Vec<B256> = generic.message.iter().map(Header::hash_slow).collect();
            assert_eq!(hashes, slow);
            for cut in 0..bytes.len() {
                assert!(decode_block_headers_hashed(&bytes[..cut]).is_err());
            }
            let mut trailing = bytes.clone();
            trailing.push(0x80);
            assert!(decode_block_headers_hashed(&trailing).is_err());
        }
    }

    #[test]
    fn encoded_body_decode_matches_the_generic_one() {
        use alloy_eips::eip2718::Encodable2718;
        let mut bodies_seen = 0;
        for (v, m) in samples().into_iter().filter(|(_, m)| m.id() == id::BLOCK_BODIES) {
            let bytes = m.encoded();
            let (pair, encodings) = decode_block_bodies_encoded(&bytes).unwrap();
            let EthMessage::BlockBodies(generic) = EthMessage::decode(v, m.id(), &bytes).unwrap() else {
                unreachable!()
            };
            assert_eq!(pair, generic);
            for (body, enc) in generic.message.iter().zip(&encodings) {
                let again: Vec<Vec<u8>> = body.transactions.iter().map(|t| t.encoded_2718()).collect();
                assert_eq!(enc.iter().map(|e| e.to_vec()).collect::<Vec<_>>(), again);
                bodies_seen += 1;
            }
            for cut in 0..bytes.len() {
                assert!(decode_block_bodies_encoded(&bytes[..cut]).is_err());
            }
            let mut trailing = bytes.clone();
            trailing.push(0x80);
            assert!(decode_block_bodies_encoded(&trailing).is_err());
        }
        assert!(bodies_seen > 0);
    }

    #[test]
    fn new_block_and_transactions_roundtrip() {
        let chain = crate::eth::MemoryChain::builder().blocks(3).transactions_per_block(4).build();
        let block = alloy_consensus::Block {
            header: chain.header(2).unwrap().clone(),
            body: chain.body_by_number(2).unwrap().clone(),
        };
        let msgs = [
            EthMessage::NewBlock(Box::new(NewBlock { block, total_difficulty: chain.total_difficulty() })),
            EthMessage::Transactions(chain.body_by_number(3).unwrap().transactions.clone()),
            EthMessage::BlockBodies(RequestPair::new(0, vec![chain.body_by_number(1).unwrap().clone()])),
        ];
        for m in msgs {
            for v in EthVersion::ALL.into_iter().filter(|v| m.is_valid_for(*v)) {
                assert_eq!(EthMessage::decode(v, m.id(), &m.encoded()).unwrap(), m, "{v} {}", m.name());
            }
        }
    }

    fn arb_b256() -> impl Strategy<Value = B256> {
        any::<[u8; 32]>().prop_map(B256::from)
    }

    fn arb_header() -> impl Strategy<Value = Header> {
        // Every generation: each optional field is present only if the previous one is,
        // which is how alloy encodes them (and how the chain grew).
        (
            arb_b256(),
            any::<u64>(),
            any::<u64>(),
            any::<u128>(),
            proptest::collection::vec(any::<u8>(), 0..40),
            0usize..=7,
            any::<u64>(),
            arb_b256(),
        )
            .prop_map(|(h, number, gas, difficulty, extra, generation, fee, root)| Header {
                parent_hash: h,
                number,
                gas_limit: gas,
                gas_used: gas / 2,
                difficulty: U256::from(difficulty),
                extra_data: extra.into(),
                base_fee_per_gas: (generation >= 1).then_some(fee),
                withdrawals_root: (generation >= 2).then_some(root),
                blob_gas_used: (generation >= 3).then_some(fee / 3),
                excess_blob_gas: (generation >= 3).then_some(fee / 5),
                parent_beacon_block_root: (generation >= 3).then_some(h),
                requests_hash: (generation >= 4).then_some(root),
                ..Default::default()
            })
    }

    proptest! {
        #[test]
        fn get_block_headers_roundtrip(
            id in any::<u64>(), by_hash in any::<bool>(), h in arb_b256(), n in any::<u64>(),
            count in any::<u64>(), skip in any::<u64>(), reverse in any::<bool>()
        ) {
            let origin = if by_hash { BlockHashOrNumber::Hash(h) } else { BlockHashOrNumber::Number(n) };
            let m = EthMessage::GetBlockHeaders(RequestPair::new(id, GetBlockHeaders { origin, count, skip, reverse }));
            prop_assert_eq!(EthMessage::decode(EthVersion::Eth68, m.id(), &m.encoded()).unwrap(), m);
        }

        #[test]
        fn block_headers_roundtrip(id in any::<u64>(), headers in proptest::collection::vec(arb_header(), 0..8)) {
            let m = EthMessage::BlockHeaders(RequestPair::new(id, headers));
            for v in EthVersion::ALL {
                prop_assert_eq!(&EthMessage::decode(v, m.id(), &m.encoded()).unwrap(), &m);
            }
        }

        #[test]
        fn status_roundtrip(v in 0usize..EthVersion::ALL.len(), network_id in any::<u64>(), td in any::<u128>(),
                            h in arb_b256(), fork in any::<[u8; 4]>(), next in any::<u64>(),
                            earliest in any::<u64>(), latest in any::<u64>()) {
            let version = EthVersion::ALL[v];
            let head = if version.has_total_difficulty() {
                StatusHead::TotalDifficulty { total_difficulty: U256::from(td), best_hash: h }
            } else {
                StatusHead::Range(BlockRange { earliest, latest, latest_hash: h })
            };
            let m = EthMessage::Status(Status {
                version: version.as_u8(), network_id, genesis: h,
                fork_id: ForkId { hash: fork.into(), next }, head,
            });
            prop_assert_eq!(EthMessage::decode(version, id::STATUS, &m.encoded()).unwrap(), m);
        }

        #[test]
        fn announcements_roundtrip(hashes in proptest::collection::vec(arb_b256(), 0..20), n in any::<u64>()) {
            let types: Vec<u8> = hashes.iter().map(|h| h[0] % 5).collect();
            let sizes: Vec<u32> = hashes.iter().map(|h| u32::from(h[1]) * 100).collect();
            let m68 = EthMessage::NewPooledTransactionHashes68(NewPooledTransactionHashes68 {
                types: types.into(), sizes, hashes: hashes.clone(),
            });
            prop_assert_eq!(&EthMessage::decode(EthVersion::Eth68, m68.id(), &m68.encoded()).unwrap(), &m68);
            let m66 = EthMessage::NewPooledTransactionHashes66(hashes.clone());
            prop_assert_eq!(&EthMessage::decode(EthVersion::Eth67, m66.id(), &m66.encoded()).unwrap(), &m66);
            let nbh = EthMessage::NewBlockHashes(hashes.iter().map(|&hash| BlockHashNumber { hash, number: n }).collect());
            prop_assert_eq!(&EthMessage::decode(EthVersion::Eth68, nbh.id(), &nbh.encoded()).unwrap(), &nbh);
            let range = EthMessage::BlockRangeUpdate(BlockRange { earliest: n / 2, latest: n, latest_hash: B256::repeat_byte(1) });
            prop_assert_eq!(&EthMessage::decode(EthVersion::Eth69, range.id(), &range.encoded()).unwrap(), &range);
        }

        /// Arbitrary bytes under every id and version: an error or a value, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(v in 0usize..EthVersion::ALL.len(), id in 0u8..0x17, bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = EthMessage::decode(EthVersion::ALL[v], id, &bytes);
        }
    }
}
