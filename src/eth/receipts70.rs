//! eth/70 (EIP-7975): block receipt lists split over several `Receipts` messages.
//!
//! A block's receipt list can outgrow one message (geth's ethtest chain has one of 10.6 MB;
//! eth messages are capped at 10 MiB), so eth/70 reshapes the pair:
//!
//! ```text
//! GetReceipts (0x0f): [request-id, firstBlockReceiptIndex, [blockhash, ...]]
//! Receipts    (0x10): [request-id, lastBlockIncomplete, [[receipt, ...], ...]]
//! ```
//!
//! with eth/69's bloomless receipts. Three pure parts live here, used by the session task:
//! - [`GetReceipts70`] and [`Receipts70`], the codecs (go-ethereum `GetReceiptsPacket70`,
//!   `ReceiptsPacket70`);
//! - [`serve_receipts70`]: the answer, cut inside a block's list at the soft response limit;
//! - [`ReceiptsAssembly`]: the requester's side. It turns the answers to one request into
//!   whole lists: it asks for the rest of an incomplete list from where it stopped, checks
//!   every completed list against its header's receipts root and every incomplete one
//!   against the EIP's bounds, so that a peer can make us buffer no more than a block's gas
//!   allows.

use alloy_consensus::{proofs, Header, ReceiptEnvelope};
use alloy_primitives::B256;
use alloy_rlp::{Encodable, RlpDecodable, RlpEncodable};

use crate::eth::error::InvalidResponse;
use crate::eth::message::{Receipt69, RequestId, MAX_MESSAGE_SIZE};
use crate::eth::serve::{ChainReader, MAX_RECEIPTS_SERVE, SOFT_RESPONSE_LIMIT};

/// The cheapest transaction's gas, which bounds how many receipts a block's gas allows.
/// EIP-2780 (Amsterdam) lowers the intrinsic cost from 21,000 to 4,500; the session does not
/// know which fork a header belongs to, so it takes the lower one (go-ethereum picks by the
/// header's timestamp). A looser bound, never a wrong one.
pub const MIN_TX_GAS: u64 = 4_500;

/// Gas per byte of log data (yellow paper `G_logdata`, go-ethereum `params.LogDataGas`): a
/// receipt's logs cannot be larger than its gas divided by this.
pub const LOG_DATA_GAS: u64 = 8;

/// Room left under [`MAX_MESSAGE_SIZE`] for the RLP headers around the receipts
/// (`[request-id, flag, [[...]]]` takes a few dozen bytes).
const ENVELOPE_ROOM: usize = 1024;

/// `GetReceipts` (0x0f) on eth/70: `[request-id, firstBlockReceiptIndex, [blockhash, ...]]`.
/// For the first block the server leaves out the receipts before the index.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct GetReceipts70 {
    /// The id the requester chose; the response carries the same one.
    pub request_id: RequestId,
    /// Receipts of the first block to skip (those already received).
    pub first_block_receipt_index: u64,
    /// The blocks whose receipts are asked for.
    pub hashes: Vec<B256>,
}

/// `Receipts` (0x10) on eth/70: `[request-id, lastBlockIncomplete, [[receipt, ...], ...]]`.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Receipts70 {
    /// The request's id.
    pub request_id: RequestId,
    /// Whether the last list stops short of its block's last receipt.
    pub last_block_incomplete: bool,
    /// Bloomless receipts, per block; the first one starts at the request's index.
    pub receipts: Vec<Vec<Receipt69>>,
}

/// Receipts for `hashes` from `chain`, the first block's from `first_index` on, and whether
/// the last list is incomplete.
///
/// Blocks are added while the response is under [`SOFT_RESPONSE_LIMIT`] (at most
/// [`MAX_RECEIPTS_SERVE`], stopping at the first unknown block, as for eth/69); a block's
/// list is cut before the receipt that would take the response past the soft limit, and
/// the cut list is the last one, marked incomplete. One receipt is always sent if any is
/// left, even a larger one (a transaction's logs can reach 30M gas / 8 = 3.75 MiB), so that
/// every answer makes progress. go-ethereum cuts a list only at the 10 MiB message limit
/// (`serviceGetReceiptsQuery70`); cutting at the soft limit keeps every message we send
/// small, at the cost of a few more round trips for the rare huge block.
pub fn serve_receipts70(
    chain: &dyn ChainReader,
    first_index: u64,
    hashes: &[B256],
) -> (Vec<Vec<Receipt69>>, bool) {
    let mut bytes = 0usize;
    let mut lists = Vec::new();
    for (i, hash) in hashes.iter().take(MAX_RECEIPTS_SERVE).enumerate() {
        if bytes >= SOFT_RESPONSE_LIMIT {
            break;
        }
        let Some(block) = chain.receipts(hash) else { break };
        let skip = if i == 0 { usize::try_from(first_index).unwrap_or(usize::MAX) } else { 0 };
        let mut list = Vec::new();
        for receipt in block.iter().skip(skip) {
            let receipt = Receipt69::from_envelope(receipt);
            let size = receipt.length();
            // The response's first receipt goes out whatever its size, within the hard limit.
            let limit = if bytes == 0 { MAX_MESSAGE_SIZE - ENVELOPE_ROOM } else { SOFT_RESPONSE_LIMIT };
            if bytes + size > limit {
                if list.is_empty() {
                    // Not even its first receipt fits: the block is asked for again.
                    return (lists, false);
                }
                lists.push(list);
                return (lists, true);
            }
            bytes += size;
            list.push(receipt);
        }
        lists.push(list);
    }
    (lists, false)
}

/// What [`ReceiptsAssembly::on_response`] made of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Assembled {
    /// The request is answered: take the lists with [`ReceiptsAssembly::into_receipts`].
    Complete,
    /// The last list is incomplete: send [`ReceiptsAssembly::request`] to the same peer.
    Continue,
}

/// The requester's side of one eth/70 receipts request, across its partial answers.
///
/// Memory is bounded by the headers: completed lists hash to their receipts roots, and the
/// one incomplete list is held to the EIP's bounds (at most `gas_used / MIN_TX_GAS`
/// receipts, each receipt's logs at most `gas_limit / 8` bytes, all its logs at most
/// `gas_used / 8` bytes); each continuation must add a receipt, so a peer cannot keep a
/// request going forever either.
///
/// ```
/// use ethp2p::eth::{Assembled, ChainReader, MemoryChain, ReceiptsAssembly, Receipts70, Receipt69};
/// let chain = MemoryChain::builder().blocks(2).transactions_per_block(3).build();
/// let headers: Vec<_> = (1..=2).map(|n| chain.header(n).unwrap().clone()).collect();
/// let hashes: Vec<_> = (1..=2).map(|n| chain.hash(n).unwrap()).collect();
/// let receipts = |n: u64| chain.receipts(&chain.hash(n).unwrap()).unwrap();
/// let bloomless = |r: &[_]| r.iter().map(Receipt69::from_envelope).collect::<Vec<_>>();
/// let mut assembly = ReceiptsAssembly::new(headers, hashes);
/// // Block 1 whole, then the first receipt of block 2, marked incomplete.
/// let first = Receipts70 {
///     request_id: 7,
///     last_block_incomplete: true,
///     receipts: vec![bloomless(&receipts(1)), bloomless(&receipts(2)[..1])],
/// };
/// assert_eq!(assembly.on_response(first)?, Assembled::Continue);
/// let next = assembly.request(7);
/// assert_eq!((next.first_block_receipt_index, next.hashes.len()), (1, 1));
/// let rest = Receipts70 { request_id: 7, last_block_incomplete: false, receipts: vec![bloomless(&receipts(2)[1..])] };
/// assert_eq!(assembly.on_response(rest)?, Assembled::Complete);
/// assert_eq!(assembly.into_receipts(), vec![receipts(1), receipts(2)]);
/// # Ok::<(), ethp2p::eth::InvalidResponse>(())
/// ```
#[derive(Debug, Clone)]
pub struct ReceiptsAssembly {
    headers: Vec<Header>,
    hashes: Vec<B256>,
    /// Whole, validated lists: `done[i]` belongs to `headers[i]`.
    done: Vec<Vec<ReceiptEnvelope>>,
    /// The received start of `headers[done.len()]`'s list.
    partial: Vec<ReceiptEnvelope>,
    /// Log bytes in `partial`, for the total bound.
    partial_logs: u64,
}

impl ReceiptsAssembly {
    /// An assembly for the receipts of `headers`, whose hashes are `hashes` (same order).
    pub fn new(headers: Vec<Header>, hashes: Vec<B256>) -> Self {
        Self { headers, hashes, done: Vec::new(), partial: Vec::new(), partial_logs: 0 }
    }

    /// The headers whose receipts are asked for.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The request to send now: every block not yet whole, from the first receipt missing.
    pub fn request(&self, request_id: RequestId) -> GetReceipts70 {
        GetReceipts70 {
            request_id,
            first_block_receipt_index: self.partial.len() as u64,
            hashes: self.hashes[self.done.len().min(self.hashes.len())..].to_vec(),
        }
    }

    /// Whether a continuation is under way (part of a block's list is held).
    pub fn is_partial(&self) -> bool {
        !self.partial.is_empty()
    }

    /// Takes in the peer's answer to [`request`](Self::request). An empty answer ends the
    /// request with the lists completed so far (the peer has no more; a held partial list is
    /// dropped). Any failed check is an [`InvalidResponse`] and the assembly must not be
    /// used further.
    pub fn on_response(&mut self, response: Receipts70) -> Result<Assembled, InvalidResponse> {
        let remaining = self.headers.len() - self.done.len();
        let lists = response.receipts;
        if lists.len() > remaining {
            return Err(InvalidResponse::TooMany { requested: remaining, got: lists.len() });
        }
        let count = lists.len();
        if count == 0 {
            if response.last_block_incomplete {
                return Err(InvalidResponse::IncompleteWithoutReceipts { index: self.done.len() });
            }
            self.partial.clear();
            return Ok(Assembled::Complete);
        }
        for (i, list) in lists.into_iter().enumerate() {
            let index = self.done.len();
            let root = self.headers[index].receipts_root;
            if i + 1 == count && response.last_block_incomplete {
                if list.is_empty() {
                    return Err(InvalidResponse::IncompleteWithoutReceipts { index });
                }
                self.check_partial(index, &list)?;
                self.partial.extend(list.into_iter().map(Receipt69::into_envelope));
                // A list that already hashes to the root was whole: the flag is a lie that
                // would cost us a round trip per block.
                if proofs::calculate_receipt_root(&self.partial) == root {
                    return Err(InvalidResponse::FalselyIncomplete { index });
                }
                return Ok(Assembled::Continue);
            }
            let mut whole = std::mem::take(&mut self.partial);
            self.partial_logs = 0;
            whole.extend(list.into_iter().map(Receipt69::into_envelope));
            if proofs::calculate_receipt_root(&whole) != root {
                return Err(InvalidResponse::ReceiptsRoot { index });
            }
            self.done.push(whole);
        }
        Ok(Assembled::Complete)
    }

    /// The whole lists received, in request order (fewer than asked if the peer had fewer).
    pub fn into_receipts(self) -> Vec<Vec<ReceiptEnvelope>> {
        self.done
    }

    /// EIP-7975's checks of an incomplete list, `list` appended to what is held: the receipt
    /// count against the block's gas, each receipt's logs against the gas limit / 8, and the
    /// logs of the whole partial list against the gas used / 8.
    fn check_partial(&mut self, index: usize, list: &[Receipt69]) -> Result<(), InvalidResponse> {
        let header = &self.headers[index];
        let count = self.partial.len() + list.len();
        let max_count = header.gas_used / MIN_TX_GAS;
        if count as u64 > max_count {
            return Err(InvalidResponse::TooManyReceipts { index, count, max: max_count });
        }
        let max_receipt = header.gas_limit / LOG_DATA_GAS;
        let max_total = header.gas_used / LOG_DATA_GAS;
        let mut total = self.partial_logs;
        for receipt in list {
            let size = logs_size(receipt);
            if size > max_receipt {
                return Err(InvalidResponse::ReceiptTooLarge { index, size, max: max_receipt });
            }
            total = total.saturating_add(size);
        }
        if total > max_total {
            return Err(InvalidResponse::ReceiptsTooLarge { index, size: total, max: max_total });
        }
        self.partial_logs = total;
        Ok(())
    }
}

/// The bytes of a receipt's logs (the payload of its RLP logs list), as go-ethereum's
/// `ReceiptList.LogsSize` counts them: every log byte costs at least [`LOG_DATA_GAS`].
fn logs_size(receipt: &Receipt69) -> u64 {
    receipt.receipt.logs.iter().map(|log| log.length() as u64).sum()
}
