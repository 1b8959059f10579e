//! Serving requests: the [`ChainReader`] trait a syncer implements, the pure functions
//! that answer each request from it within the usual limits, and [`MemoryChain`], an
//! in-memory chain for tests and examples.
//!
//! Limits follow geth (`eth/protocols/eth/handler.go`) and reth (`eth_requests.rs`): at
//! most [`MAX_HEADERS_SERVE`] headers, [`MAX_BODIES_SERVE`] bodies and
//! [`MAX_RECEIPTS_SERVE`] receipt lists, and the response stops growing once it passes
//! [`SOFT_RESPONSE_LIMIT`] bytes. Bodies and receipts stop at the first unknown hash, so
//! that position `i` of a response always answers position `i` of the request.

use std::collections::HashMap;

use alloy_consensus::{
    proofs, transaction::PooledTransaction, BlockBody, EthereumTxEnvelope, Header, Receipt, ReceiptEnvelope,
    ReceiptWithBloom, SignableTransaction, TxEip1559, TxEip4844, TxEnvelope, TxLegacy, TxReceipt, TxType,
    EMPTY_OMMER_ROOT_HASH, EMPTY_ROOT_HASH,
};
use alloy_eips::{eip4895::Withdrawals, BlockHashOrNumber};
use alloy_primitives::{address, b256, hex, Address, Bytes, Log, LogData, Signature, TxKind, B256, U256};
use alloy_rlp::Encodable;

use crate::eth::bal::{encode_block_access_list, serve_block_access_lists, BlockAccessLists};
use crate::eth::cells::{serve_cells, Cell, CellMask};
use crate::eth::message::{EthMessage, GetBlockHeaders, Receipts, RequestPair};
use crate::eth::receipts70::{serve_receipts70, Receipts70};
use crate::eth::status::StatusInfo;
use crate::eth::txpool::{MemoryTxPool, TxPool, DEFAULT_MEMORY_POOL_CAPACITY};
use crate::eth::version::EthVersion;
use crate::record::{ChainSpec, ForkId};

/// geth and reth `MAX_HEADERS_SERVE`: headers per `BlockHeaders` response.
pub const MAX_HEADERS_SERVE: usize = 1024;
/// geth and reth `MAX_BODIES_SERVE`: bodies per `BlockBodies` response.
pub const MAX_BODIES_SERVE: usize = 1024;
/// geth and reth `MAX_RECEIPTS_SERVE`: blocks per `Receipts` response.
pub const MAX_RECEIPTS_SERVE: usize = 1024;
/// geth `maxTxPacketSize`-like bound on pooled transactions per response (reth uses 256).
pub const MAX_POOLED_TRANSACTIONS_SERVE: usize = 256;
/// geth `softResponseLimit`, reth `SOFT_RESPONSE_LIMIT`: stop adding items past 2 MiB.
pub const SOFT_RESPONSE_LIMIT: usize = 2 * 1024 * 1024;

/// Read access to a chain, implemented by the syncer that uses this library; the eth
/// session answers peers' requests from it.
///
/// Every method returns `None` for data it does not have. A session calls it off its own
/// task, on tokio's blocking pool, for up to [`EthConfig::serve_concurrency`] requests of
/// each peer at once (so from many threads): a read from disk holds up only the answer that
/// needs it. Implementations should still never wait on the network.
///
/// [`EthConfig::serve_concurrency`]: crate::eth::EthConfig::serve_concurrency
pub trait ChainReader: Send + Sync + 'static {
    /// The canonical header at `number`.
    fn header_by_number(&self, number: u64) -> Option<Header>;
    /// The header with this hash.
    fn header_by_hash(&self, hash: &B256) -> Option<Header>;
    /// The body of the block with this hash.
    fn body(&self, hash: &B256) -> Option<BlockBody<TxEnvelope>>;
    /// The receipts of the block with this hash.
    fn receipts(&self, hash: &B256) -> Option<Vec<ReceiptEnvelope>>;
    /// eth/71 (EIP-8159): the block access list of the block with this hash, as its RLP list
    /// (`keccak256` of these bytes is the header's `block_access_list_hash`; build one with
    /// [`encode_block_access_list`]). Default: none (answered with the empty string, as for a
    /// pruned list).
    fn block_access_list(&self, _hash: &B256) -> Option<Bytes> {
        None
    }
    /// eth/72 (EIP-8070): the serving hook of a blob pool. The cells of `mask`'s columns for
    /// every blob of the pooled transaction `tx_hash`, blob by blob, each blob's columns
    /// ascending (`blobs × mask.count()` cells), or `None` if it does not hold them all.
    /// Default: none (the transaction is left out of the `Cells` answer).
    fn cells(&self, _tx_hash: &B256, _mask: CellMask) -> Option<Vec<Cell>> {
        None
    }
}

/// Headers for `request`, at most [`MAX_HEADERS_SERVE`] and about [`SOFT_RESPONSE_LIMIT`]
/// bytes. Walks by number after the origin, so a hash origin must be canonical.
pub fn serve_headers(chain: &dyn ChainReader, request: &GetBlockHeaders) -> Vec<Header> {
    let mut headers = Vec::new();
    let mut next = match request.origin {
        BlockHashOrNumber::Hash(h) => chain.header_by_hash(&h),
        BlockHashOrNumber::Number(n) => chain.header_by_number(n),
    };
    let limit = request.count.min(MAX_HEADERS_SERVE as u64) as usize;
    let step = request.skip.saturating_add(1);
    let mut bytes = 0;
    while let Some(header) = next.take() {
        if headers.len() >= limit || bytes >= SOFT_RESPONSE_LIMIT {
            break;
        }
        bytes += header.length();
        let number =
            if request.reverse { header.number.checked_sub(step) } else { header.number.checked_add(step) };
        headers.push(header);
        next = number.and_then(|n| chain.header_by_number(n));
    }
    headers
}

/// Bodies for `hashes`, in order, stopping at the first unknown one and at the limits.
pub fn serve_bodies(chain: &dyn ChainReader, hashes: &[B256]) -> Vec<BlockBody<TxEnvelope>> {
    let mut bytes = 0;
    let mut bodies = Vec::new();
    for hash in hashes.iter().take(MAX_BODIES_SERVE) {
        let Some(body) = chain.body(hash) else { break };
        bytes += body.length();
        bodies.push(body);
        if bytes >= SOFT_RESPONSE_LIMIT {
            break;
        }
    }
    bodies
}

/// Receipts for `hashes`, in order, stopping at the first unknown one and at the limits.
pub fn serve_receipts(chain: &dyn ChainReader, hashes: &[B256]) -> Vec<Vec<ReceiptEnvelope>> {
    let mut bytes = 0;
    let mut receipts = Vec::new();
    for hash in hashes.iter().take(MAX_RECEIPTS_SERVE) {
        let Some(block) = chain.receipts(hash) else { break };
        bytes += block.length();
        receipts.push(block);
        if bytes >= SOFT_RESPONSE_LIMIT {
            break;
        }
    }
    receipts
}

/// Pooled transactions for `hashes`; unknown ones are left out (devp2p `caps/eth.md`).
pub fn serve_pooled_transactions(pool: &dyn TxPool, hashes: &[B256]) -> Vec<PooledTransaction> {
    let mut bytes = 0;
    let mut txs = Vec::new();
    for hash in hashes.iter().take(MAX_POOLED_TRANSACTIONS_SERVE) {
        if let Some(tx) = pool.get(hash) {
            bytes += tx.length();
            txs.push(tx);
            if bytes >= SOFT_RESPONSE_LIMIT {
                break;
            }
        }
    }
    txs
}

/// The response to a request message on `version`, or `None` if `request` is not a request.
/// Blocks come from `chain`, pooled transactions from `pool`. `GetNodeData` (eth/66) is
/// answered with no data: we keep no state trie.
pub fn respond(
    chain: &dyn ChainReader,
    pool: &dyn TxPool,
    version: EthVersion,
    request: &EthMessage,
) -> Option<EthMessage> {
    Some(match request {
        EthMessage::GetBlockHeaders(r) => {
            EthMessage::BlockHeaders(RequestPair::new(r.request_id, serve_headers(chain, &r.message)))
        }
        EthMessage::GetBlockBodies(r) => {
            EthMessage::BlockBodies(RequestPair::new(r.request_id, serve_bodies(chain, &r.message)))
        }
        EthMessage::GetReceipts(r) => EthMessage::Receipts(RequestPair::new(
            r.request_id,
            Receipts::for_version(serve_receipts(chain, &r.message), version),
        )),
        EthMessage::GetReceipts70(r) => {
            let (receipts, last_block_incomplete) =
                serve_receipts70(chain, r.first_block_receipt_index, &r.hashes);
            EthMessage::Receipts70(Receipts70 { request_id: r.request_id, last_block_incomplete, receipts })
        }
        EthMessage::GetPooledTransactions(r) => EthMessage::PooledTransactions(RequestPair::new(
            r.request_id,
            serve_pooled_transactions(pool, &r.message),
        )),
        EthMessage::GetNodeData(r) => EthMessage::NodeData(RequestPair::new(r.request_id, Vec::new())),
        EthMessage::GetBlockAccessLists(r) => EthMessage::BlockAccessLists(BlockAccessLists {
            request_id: r.request_id,
            lists: serve_block_access_lists(chain, &r.message),
        }),
        EthMessage::GetCells(r) => EthMessage::Cells(serve_cells(chain, r)),
        _ => return None,
    })
}

/// The mainnet genesis header (block 0, hash `0xd4e5…8fa3`), so a [`MemoryChain`] built on
/// it passes mainnet `Status` checks.
pub fn mainnet_genesis_header() -> Header {
    Header {
        parent_hash: B256::ZERO,
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: Address::ZERO,
        state_root: b256!("d7f8974fb5ac78d9ac099b9ad5018bedc2ce0a72dad1827a1709da30580f0544"),
        transactions_root: EMPTY_ROOT_HASH,
        receipts_root: EMPTY_ROOT_HASH,
        difficulty: U256::from(0x4_0000_0000u64),
        number: 0,
        gas_limit: 5000,
        timestamp: 0,
        extra_data: Bytes::from_static(&hex!(
            "11bbe8db4e347b4e8c937c1c8370e4b5ed33adb3db69cbdb7a38e1e50b1b82fa"
        )),
        nonce: 0x42u64.into(),
        ..Default::default()
    }
}

/// A chain held in memory: a genesis header and synthetic blocks linked on top of it, with
/// signed transactions and their receipts, all roots consistent. For tests and examples.
///
/// Blocks copy the genesis header's generation: on a frontier genesis they are 15-field
/// headers with legacy transactions; on a genesis with prague's fields they carry every
/// optional field, EIP-1559 transactions and empty withdrawals.
///
/// ```
/// use ethp2p::eth::{ChainReader, MemoryChain};
/// use ethp2p::record::MAINNET_GENESIS_HASH;
/// let chain = MemoryChain::builder().blocks(8).build();
/// assert_eq!(chain.hash(0), Some(MAINNET_GENESIS_HASH));
/// let head = chain.header_by_number(8).unwrap();
/// assert_eq!(head.parent_hash, chain.hash(7).unwrap());
/// ```
#[derive(Debug, Clone)]
pub struct MemoryChain {
    headers: Vec<Header>,
    hashes: Vec<B256>,
    numbers: HashMap<B256, u64>,
    bodies: Vec<BlockBody<TxEnvelope>>,
    receipts: Vec<Vec<ReceiptEnvelope>>,
    pool: HashMap<B256, PooledTransaction>,
    /// Block access lists (RLP) by block hash.
    bals: HashMap<B256, Bytes>,
    /// Per blob transaction: its blobs, each all [`CELLS_PER_EXT_BLOB`](crate::eth::CELLS_PER_EXT_BLOB) cells.
    blob_cells: HashMap<B256, Vec<Vec<Cell>>>,
}

/// Builder of a [`MemoryChain`].
#[derive(Debug, Clone)]
pub struct MemoryChainBuilder {
    genesis: Header,
    blocks: u64,
    transactions_per_block: usize,
    chain_id: u64,
    pooled: usize,
    block_access_lists: bool,
}

impl Default for MemoryChainBuilder {
    fn default() -> Self {
        Self {
            genesis: mainnet_genesis_header(),
            blocks: 32,
            transactions_per_block: 2,
            chain_id: 1,
            pooled: 0,
            block_access_lists: false,
        }
    }
}

/// A fixed key for the synthetic transactions' sender (never a real account).
const SENDER_KEY: [u8; 32] = [0x42; 32];
/// Where the synthetic transactions send value.
const RECIPIENT: Address = address!("3535353535353535353535353535353535353535");

impl MemoryChainBuilder {
    /// The genesis header. Default: mainnet's.
    pub fn genesis(&mut self, genesis: Header) -> &mut Self {
        self.genesis = genesis;
        self
    }

    /// Blocks on top of genesis. Default: 32.
    pub fn blocks(&mut self, n: u64) -> &mut Self {
        self.blocks = n;
        self
    }

    /// Signed transactions per block (each with a receipt, some with a log). Default: 2.
    pub fn transactions_per_block(&mut self, n: usize) -> &mut Self {
        self.transactions_per_block = n;
        self
    }

    /// Chain id of the transactions (EIP-155). Default: 1.
    pub fn chain_id(&mut self, id: u64) -> &mut Self {
        self.chain_id = id;
        self
    }

    /// Transactions kept in the pool for `GetPooledTransactions`. Default: 0.
    pub fn pooled_transactions(&mut self, n: usize) -> &mut Self {
        self.pooled = n;
        self
    }

    /// Gives every block after genesis a block access list (EIP-7928: the recipient's
    /// balance after each transaction) and its hash in the header, for eth/71. The genesis
    /// must carry prague's header fields (`requests_hash`), since the hash is the header's
    /// next field. Default: false.
    pub fn block_access_lists(&mut self, yes: bool) -> &mut Self {
        self.block_access_lists = yes;
        self
    }

    /// Builds the chain.
    pub fn build(&self) -> MemoryChain {
        let genesis = self.genesis.clone();
        let genesis_hash = genesis.hash_slow();
        let modern = genesis.base_fee_per_gas.is_some();
        let key = secp256k1::SecretKey::from_slice(&SENDER_KEY).expect("a valid constant key");
        let mut nonce = 0u64;
        let mut sign = |i: usize| {
            let tx = make_tx(self.chain_id, nonce, i, modern, &key);
            nonce += 1;
            tx
        };
        let mut chain = MemoryChain {
            headers: vec![genesis.clone()],
            hashes: vec![genesis_hash],
            numbers: HashMap::from([(genesis_hash, 0)]),
            bodies: vec![BlockBody {
                transactions: vec![],
                ommers: vec![],
                withdrawals: genesis.withdrawals_root.map(|_| Withdrawals::default()),
            }],
            receipts: vec![vec![]],
            pool: HashMap::new(),
            bals: HashMap::new(),
            blob_cells: HashMap::new(),
        };
        let with_bals = self.block_access_lists && genesis.requests_hash.is_some();
        for number in 1..=self.blocks {
            let transactions: Vec<TxEnvelope> = (0..self.transactions_per_block).map(&mut sign).collect();
            let receipts: Vec<ReceiptEnvelope> =
                transactions.iter().enumerate().map(|(i, tx)| make_receipt(tx, i)).collect();
            let withdrawals = genesis.withdrawals_root.map(|_| Withdrawals::default());
            let parent = &chain.headers[chain.headers.len() - 1];
            let bal = with_bals.then(|| synthetic_block_access_list(&transactions));
            let header = Header {
                parent_hash: chain.hashes[chain.hashes.len() - 1],
                ommers_hash: EMPTY_OMMER_ROOT_HASH,
                beneficiary: genesis.beneficiary,
                state_root: genesis.state_root,
                transactions_root: proofs::calculate_transaction_root(&transactions),
                receipts_root: proofs::calculate_receipt_root(&receipts),
                withdrawals_root: withdrawals.as_ref().map(|w| proofs::calculate_withdrawals_root(w)),
                logs_bloom: receipts.iter().fold(Default::default(), |acc, r| acc | r.bloom()),
                difficulty: genesis.difficulty,
                number,
                gas_limit: genesis.gas_limit.max(30_000_000),
                gas_used: 21_000 * transactions.len() as u64,
                timestamp: parent.timestamp + 12,
                extra_data: Bytes::from(format!("ethp2p block {number}").into_bytes()),
                base_fee_per_gas: genesis.base_fee_per_gas,
                blob_gas_used: genesis.blob_gas_used.map(|_| 0),
                excess_blob_gas: genesis.excess_blob_gas.map(|_| 0),
                parent_beacon_block_root: genesis.parent_beacon_block_root.map(|_| B256::with_last_byte(1)),
                requests_hash: genesis.requests_hash,
                block_access_list_hash: bal.as_ref().map(alloy_primitives::keccak256),
                ..Default::default()
            };
            let hash = header.hash_slow();
            if let Some(bal) = bal {
                chain.bals.insert(hash, bal);
            }
            chain.headers.push(header);
            chain.hashes.push(hash);
            chain.numbers.insert(hash, number);
            chain.bodies.push(BlockBody { transactions, ommers: vec![], withdrawals });
            chain.receipts.push(receipts);
        }
        for i in 0..self.pooled {
            // The synthetic transactions are never blob transactions, so every one pools.
            let tx: EthereumTxEnvelope<TxEip4844> = sign(i).into();
            if let Ok(tx) = tx.try_into_pooled() {
                chain.pool.insert(*tx.hash(), tx);
            }
        }
        chain
    }
}

fn make_tx(chain_id: u64, nonce: u64, i: usize, modern: bool, key: &secp256k1::SecretKey) -> TxEnvelope {
    let input = Bytes::from(vec![i as u8; i % 4]);
    let value = U256::from(1_000 + nonce);
    if modern {
        let tx = TxEip1559 {
            chain_id,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to: TxKind::Call(RECIPIENT),
            value,
            input,
            access_list: Default::default(),
        };
        let sig = sign_hash(key, tx.signature_hash());
        tx.into_signed(sig).into()
    } else {
        let tx = TxLegacy {
            chain_id: Some(chain_id),
            nonce,
            gas_price: 20_000_000_000,
            gas_limit: 21_000,
            to: TxKind::Call(RECIPIENT),
            value,
            input,
        };
        let sig = sign_hash(key, tx.signature_hash());
        tx.into_signed(sig).into()
    }
}

fn sign_hash(key: &secp256k1::SecretKey, hash: B256) -> Signature {
    let msg = secp256k1::Message::from_digest(hash.0);
    let (rec, bytes) = secp256k1::SECP256K1.sign_ecdsa_recoverable(&msg, key).serialize_compact();
    let r = U256::from_be_slice(&bytes[..32]);
    let s = U256::from_be_slice(&bytes[32..]);
    Signature::new(r, s, i32::from(rec) == 1)
}

fn make_receipt(tx: &TxEnvelope, index: usize) -> ReceiptEnvelope {
    // Every other receipt has a log, so blooms and log encoding are exercised.
    let logs = if index % 2 == 0 {
        vec![Log {
            address: RECIPIENT,
            data: LogData::new_unchecked(vec![*tx.tx_hash()], Bytes::from_static(b"ethp2p")),
        }]
    } else {
        vec![]
    };
    let receipt = Receipt { status: true.into(), cumulative_gas_used: 21_000 * (index as u64 + 1), logs };
    let ty = if matches!(tx, TxEnvelope::Legacy(_)) { TxType::Legacy } else { TxType::Eip1559 };
    ReceiptEnvelope::from_typed(ty, ReceiptWithBloom::from(receipt))
}

/// A block access list for `transactions` (EIP-7928): the recipient's balance after each
/// one (block access index `i + 1`), RLP-encoded.
fn synthetic_block_access_list(transactions: &[TxEnvelope]) -> Bytes {
    use alloy_consensus::Transaction;
    use alloy_eips::eip7928::{AccountChanges, BalanceChange, BlockAccessIndex};
    let mut recipient = AccountChanges::new(RECIPIENT);
    let mut balance = U256::ZERO;
    for (i, tx) in transactions.iter().enumerate() {
        balance += tx.value();
        recipient.balance_changes.push(BalanceChange {
            block_access_index: BlockAccessIndex(i as u64 + 1),
            post_balance: balance,
        });
    }
    let accounts = if transactions.is_empty() { vec![] } else { vec![recipient] };
    encode_block_access_list(&accounts)
}

impl MemoryChain {
    /// A builder with the defaults (mainnet genesis, 32 blocks, 2 transactions each).
    pub fn builder() -> MemoryChainBuilder {
        MemoryChainBuilder::default()
    }

    /// The head's number.
    pub fn head_number(&self) -> u64 {
        self.headers.len() as u64 - 1
    }

    /// The header at `number`.
    pub fn header(&self, number: u64) -> Option<&Header> {
        self.headers.get(usize::try_from(number).ok()?)
    }

    /// The hash of block `number`.
    pub fn hash(&self, number: u64) -> Option<B256> {
        self.hashes.get(usize::try_from(number).ok()?).copied()
    }

    /// The body of block `number`.
    pub fn body_by_number(&self, number: u64) -> Option<&BlockBody<TxEnvelope>> {
        self.bodies.get(usize::try_from(number).ok()?)
    }

    /// The receipts of the block with this hash.
    pub fn receipts_by_hash(&self, hash: &B256) -> Option<&Vec<ReceiptEnvelope>> {
        self.receipts.get(*self.numbers.get(hash)? as usize)
    }

    /// The block access list (RLP) of the block with this hash.
    pub fn block_access_list_by_hash(&self, hash: &B256) -> Option<&Bytes> {
        self.bals.get(hash)
    }

    /// Stores a block access list for the block with this hash, to serve it on eth/71 (the
    /// caller vouches for it: the header's hash is not checked here, so tests can serve a
    /// wrong one).
    pub fn insert_block_access_list(&mut self, hash: B256, bal: Bytes) {
        self.bals.insert(hash, bal);
    }

    /// Holds the cells of a blob transaction, to serve them on eth/72: `blobs[b]` is blob
    /// `b`'s extended cells, [`CELLS_PER_EXT_BLOB`](crate::eth::CELLS_PER_EXT_BLOB) of them.
    pub fn insert_blob_cells(&mut self, tx_hash: B256, blobs: Vec<Vec<Cell>>) {
        self.blob_cells.insert(tx_hash, blobs);
    }

    /// Hashes of the pooled transactions.
    pub fn pooled_hashes(&self) -> Vec<B256> {
        self.pool.keys().copied().collect()
    }

    /// A [`MemoryTxPool`] holding the pooled transactions made by
    /// [`MemoryChainBuilder::pooled_transactions`] (signed by this chain's test sender).
    pub fn tx_pool(&self) -> MemoryTxPool {
        let pool = MemoryTxPool::with_capacity(self.pool.len().max(DEFAULT_MEMORY_POOL_CAPACITY));
        for tx in self.pool.values() {
            pool.insert(tx.clone());
        }
        pool
    }

    /// The sum of every block's difficulty: a `Status` total difficulty.
    pub fn total_difficulty(&self) -> U256 {
        self.headers.iter().map(|h| h.difficulty).sum()
    }

    /// What we announce in `Status` for this chain as `spec` (its network id, and its fork
    /// id at our head), with our head's number and timestamp.
    pub fn status_info_for(&self, spec: &ChainSpec) -> StatusInfo {
        let head = &self.headers[self.headers.len() - 1];
        self.status_info(spec.network_id, spec.fork_id(head.number, head.timestamp))
    }

    /// An eth configuration for serving this chain as `spec`: our `Status` and the fork
    /// filter at our head. Adjust it (versions, limits) before `build()`.
    pub fn eth_config_for(&self, spec: &ChainSpec) -> crate::eth::EthConfigBuilder {
        let head = &self.headers[self.headers.len() - 1];
        crate::eth::EthConfig::builder(
            self.status_info_for(spec),
            spec.fork_filter(head.number, head.timestamp),
        )
    }

    /// What we announce in `Status` for this chain, on `network_id` with `fork_id`.
    pub fn status_info(&self, network_id: u64, fork_id: ForkId) -> StatusInfo {
        StatusInfo {
            network_id,
            genesis: self.hashes[0],
            fork_id,
            total_difficulty: self.total_difficulty(),
            earliest: 0,
            latest: self.head_number(),
            latest_hash: self.hashes[self.hashes.len() - 1],
        }
    }
}

impl ChainReader for MemoryChain {
    fn header_by_number(&self, number: u64) -> Option<Header> {
        self.header(number).cloned()
    }

    fn header_by_hash(&self, hash: &B256) -> Option<Header> {
        self.header(*self.numbers.get(hash)?).cloned()
    }

    fn body(&self, hash: &B256) -> Option<BlockBody<TxEnvelope>> {
        self.body_by_number(*self.numbers.get(hash)?).cloned()
    }

    fn receipts(&self, hash: &B256) -> Option<Vec<ReceiptEnvelope>> {
        self.receipts_by_hash(hash).cloned()
    }

    fn block_access_list(&self, hash: &B256) -> Option<Bytes> {
        self.bals.get(hash).cloned()
    }

    fn cells(&self, tx_hash: &B256, mask: CellMask) -> Option<Vec<Cell>> {
        let blobs = self.blob_cells.get(tx_hash)?;
        let mut out = Vec::with_capacity(blobs.len() * mask.count());
        for blob in blobs {
            for i in mask.indices() {
                out.push(*blob.get(i)?);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eth::validate::{validate_bodies, validate_headers, validate_receipts};
    use crate::record::MAINNET_GENESIS_HASH;
    use alloy_consensus::transaction::SignerRecoverable;

    #[test]
    fn mainnet_genesis_hash_is_right() {
        assert_eq!(mainnet_genesis_header().hash_slow(), MAINNET_GENESIS_HASH);
        let c = MemoryChain::builder().blocks(3).build();
        assert_eq!(c.total_difficulty(), U256::from(17_179_869_184u64 * 4));
    }

    #[test]
    fn served_data_passes_validation() {
        let c = MemoryChain::builder().blocks(50).build();
        for req in [
            GetBlockHeaders { origin: 0u64.into(), count: 16, skip: 0, reverse: false },
            GetBlockHeaders { origin: c.hash(40).unwrap().into(), count: 16, skip: 0, reverse: true },
            GetBlockHeaders { origin: 3u64.into(), count: 10, skip: 4, reverse: false },
            GetBlockHeaders { origin: 45u64.into(), count: 100, skip: 0, reverse: false },
        ] {
            let headers = serve_headers(&c, &req);
            assert!(!headers.is_empty());
            let hashes = validate_headers(&req, &headers).unwrap();
            let bodies = serve_bodies(&c, &hashes);
            assert_eq!(bodies.len(), headers.len());
            validate_bodies(&headers, &bodies).unwrap();
            let receipts = serve_receipts(&c, &hashes);
            validate_receipts(&headers, &receipts).unwrap();
        }
        // Past the head, below genesis, unknown hash.
        let req = GetBlockHeaders { origin: 51u64.into(), count: 5, skip: 0, reverse: false };
        assert!(serve_headers(&c, &req).is_empty());
        let req = GetBlockHeaders { origin: 2u64.into(), count: 5, skip: 0, reverse: true };
        assert_eq!(serve_headers(&c, &req).len(), 3);
        assert!(serve_bodies(&c, &[B256::ZERO, c.hash(1).unwrap()]).is_empty(), "stops at unknown");
    }

    #[test]
    fn limits_hold() {
        let c = MemoryChain::builder().blocks(1100).transactions_per_block(0).build();
        let req = GetBlockHeaders { origin: 0u64.into(), count: u64::MAX, skip: 0, reverse: false };
        assert_eq!(serve_headers(&c, &req).len(), MAX_HEADERS_SERVE);
        let hashes: Vec<B256> = (0..1100).map(|n| c.hash(n).unwrap()).collect();
        assert_eq!(serve_bodies(&c, &hashes).len(), MAX_BODIES_SERVE);
        // skip = u64::MAX: one header, no overflow.
        let req = GetBlockHeaders { origin: 5u64.into(), count: 3, skip: u64::MAX, reverse: false };
        assert_eq!(serve_headers(&c, &req).len(), 1);
    }

    #[test]
    fn soft_limit_bounds_big_bodies() {
        // ~60 transactions of ~110 bytes per block: ~7 KB a body, so 2 MiB is ~300 bodies.
        let c = MemoryChain::builder().blocks(400).transactions_per_block(60).build();
        let hashes: Vec<B256> = (1..=400).map(|n| c.hash(n).unwrap()).collect();
        let bodies = serve_bodies(&c, &hashes);
        let size: usize = bodies.iter().map(|b| b.length()).sum();
        assert!(bodies.len() < 400 && size >= SOFT_RESPONSE_LIMIT, "{} bodies, {size} bytes", bodies.len());
    }

    #[test]
    fn modern_genesis_gives_modern_blocks() {
        let genesis = Header {
            base_fee_per_gas: Some(7),
            withdrawals_root: Some(EMPTY_ROOT_HASH),
            blob_gas_used: Some(0),
            excess_blob_gas: Some(0),
            parent_beacon_block_root: Some(B256::ZERO),
            requests_hash: Some(b256!("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")),
            ..Default::default()
        };
        let c = MemoryChain::builder().genesis(genesis).chain_id(1337).blocks(4).build();
        let h = c.header(4).unwrap();
        assert!(h.requests_hash.is_some() && h.withdrawals_root == Some(EMPTY_ROOT_HASH));
        let tx = &c.body_by_number(4).unwrap().transactions[0];
        assert!(matches!(tx, TxEnvelope::Eip1559(_)));
        assert!(tx.recover_signer().is_ok());
        let headers: Vec<Header> = (1..=4).map(|n| c.header(n).unwrap().clone()).collect();
        let bodies: Vec<_> = (1..=4).map(|n| c.body_by_number(n).unwrap().clone()).collect();
        validate_bodies(&headers, &bodies).unwrap();
    }

    #[test]
    fn respond_answers_requests_only() {
        let c = MemoryChain::builder().blocks(4).pooled_transactions(3).build();
        let pool = c.tx_pool();
        let get = EthMessage::GetPooledTransactions(RequestPair::new(9, c.pooled_hashes()));
        let Some(EthMessage::PooledTransactions(p)) = respond(&c, &pool, EthVersion::Eth68, &get) else {
            panic!()
        };
        assert_eq!((p.request_id, p.message.len()), (9, 3));
        let get = EthMessage::GetReceipts(RequestPair::new(1, vec![c.hash(1).unwrap()]));
        let Some(EthMessage::Receipts(r)) = respond(&c, &pool, EthVersion::Eth69, &get) else { panic!() };
        assert!(matches!(r.message, Receipts::Bloomless(_)));
        assert!(respond(&c, &pool, EthVersion::Eth68, &EthMessage::Transactions(vec![])).is_none());
    }
}
