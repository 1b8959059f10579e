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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eth::message::{id, EthMessage};
    use crate::eth::serve::MemoryChain;
    use crate::eth::version::EthVersion;
    use alloy_consensus::{Eip658Value, Receipt, ReceiptWithBloom, TxEnvelope, TxType};
    use alloy_primitives::{hex, Address, Bytes, Log};
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// A block of `count` receipts, each with one log of `log_bytes` bytes of data, and a
    /// header whose roots and gas fit them (gas used covers every log byte at 8 gas).
    fn big_block(number: u64, count: usize, log_bytes: usize) -> (Header, Vec<ReceiptEnvelope>) {
        let receipts: Vec<ReceiptEnvelope> = (0..count)
            .map(|i| {
                let log = Log::new_unchecked(
                    Address::repeat_byte(i as u8),
                    vec![],
                    vec![i as u8; log_bytes].into(),
                );
                let receipt = Receipt {
                    status: Eip658Value::Eip658(true),
                    cumulative_gas_used: 30_000 * (i as u64 + 1),
                    logs: vec![log],
                };
                ReceiptEnvelope::from_typed(TxType::Eip1559, ReceiptWithBloom::from(receipt))
            })
            .collect();
        let gas_used = (count as u64) * (21_000 + LOG_DATA_GAS * (log_bytes as u64 + 64));
        let header = Header {
            number,
            gas_used,
            gas_limit: gas_used,
            receipts_root: proofs::calculate_receipt_root(&receipts),
            ..Default::default()
        };
        (header, receipts)
    }

    /// A chain reader holding a few blocks' receipts by hash.
    #[derive(Debug, Default)]
    struct Receipts(HashMap<B256, Vec<ReceiptEnvelope>>);

    impl ChainReader for Receipts {
        fn header_by_number(&self, _: u64) -> Option<Header> {
            None
        }
        fn header_by_hash(&self, _: &B256) -> Option<Header> {
            None
        }
        fn body(&self, _: &B256) -> Option<alloy_consensus::BlockBody<TxEnvelope>> {
            None
        }
        fn receipts(&self, hash: &B256) -> Option<Vec<ReceiptEnvelope>> {
            self.0.get(hash).cloned()
        }
    }

    fn bloomless(receipts: &[ReceiptEnvelope]) -> Vec<Receipt69> {
        receipts.iter().map(Receipt69::from_envelope).collect()
    }

    /// EIP-7975's shapes, encoded by hand from the spec: `[request-id, firstBlockReceiptIndex,
    /// [blockhash]]` and `[request-id, lastBlockIncomplete, [[receipt]]]` with an eth/69
    /// receipt `[tx-type, status, cumulative-gas, logs]`.
    #[test]
    fn encodings_follow_the_eip() {
        let get = EthMessage::GetReceipts70(GetReceipts70 {
            request_id: 1111,
            first_block_receipt_index: 5,
            hashes: vec![B256::repeat_byte(0xde)],
        });
        let mut want = hex!("e6820457 05 e1 a0").to_vec();
        want.extend([0xde; 32]);
        assert_eq!(get.encoded(), want);
        assert_eq!(EthMessage::decode(EthVersion::Eth70, id::GET_RECEIPTS, &want).unwrap(), get);
        // The same bytes are not an eth/69 GetReceipts, and the eth/69 shape is not eth/70's.
        assert!(EthMessage::decode(EthVersion::Eth69, id::GET_RECEIPTS, &want).is_err());

        let receipt =
            Receipt { status: Eip658Value::Eip658(true), cumulative_gas_used: 21_000, logs: vec![] };
        let receipts = Receipts70 {
            request_id: 1111,
            last_block_incomplete: true,
            receipts: vec![vec![Receipt69 { tx_type: TxType::Legacy, receipt }]],
        };
        let want = hex!("cd 820457 01 c8 c7 c6 80 01 825208 c0");
        let msg = EthMessage::Receipts70(receipts.clone());
        assert_eq!(msg.encoded(), want);
        assert_eq!(EthMessage::decode(EthVersion::Eth70, id::RECEIPTS, &want).unwrap(), msg);
        // `false` is the empty string; a flag of 2 is not a boolean.
        let complete = Receipts70 { last_block_incomplete: false, ..receipts };
        assert_eq!(EthMessage::Receipts70(complete).encoded()[4], 0x80);
        let mut two = want.to_vec();
        two[4] = 0x02;
        assert!(EthMessage::decode(EthVersion::Eth70, id::RECEIPTS, &two).is_err());
        assert!(!msg.is_valid_for(EthVersion::Eth69) && msg.is_valid_for(EthVersion::Eth70));
    }

    #[test]
    fn serving_cuts_a_big_list_at_the_soft_limit_and_resumes_at_the_index() {
        // 40 receipts of ~128 KiB: 5 MiB, more than two soft limits.
        let (small_header, small) = big_block(1, 3, 10);
        let (big_header, big) = big_block(2, 40, 128 * 1024);
        let (small_hash, big_hash) = (small_header.hash_slow(), big_header.hash_slow());
        let chain = Receipts(HashMap::from([(small_hash, small.clone()), (big_hash, big.clone())]));

        let (lists, incomplete) = serve_receipts70(&chain, 0, &[small_hash, big_hash]);
        assert!(incomplete);
        assert_eq!(lists.len(), 2);
        assert_eq!(lists[0], bloomless(&small));
        let first = lists[1].len();
        assert!(first > 0 && first < big.len());
        let size: usize = lists.iter().flatten().map(Encodable::length).sum();
        assert!(size <= SOFT_RESPONSE_LIMIT, "{size}");
        // One more receipt would have passed the limit.
        assert!(size + Receipt69::from_envelope(&big[first]).length() > SOFT_RESPONSE_LIMIT);

        // The rest, from the index where it stopped, until the list is whole.
        let mut got = lists[1].clone();
        let mut rounds = 1;
        loop {
            let (lists, incomplete) = serve_receipts70(&chain, got.len() as u64, &[big_hash]);
            assert_eq!(lists.len(), 1);
            assert!(!lists[0].is_empty(), "every answer makes progress");
            got.extend(lists[0].iter().cloned());
            rounds += 1;
            if !incomplete {
                break;
            }
        }
        assert_eq!(got, bloomless(&big));
        assert_eq!(rounds, 3, "5 MiB in 2 MiB answers");

        // An index past the list: an empty, complete list; the next blocks follow whole.
        let (lists, incomplete) = serve_receipts70(&chain, 1_000, &[small_hash, small_hash]);
        assert!(!incomplete);
        assert_eq!(lists, vec![vec![], bloomless(&small)]);
        // Unknown blocks end the answer, as on eth/69.
        let (lists, _) = serve_receipts70(&chain, 0, &[B256::ZERO, small_hash]);
        assert!(lists.is_empty());
    }

    #[test]
    fn a_receipt_larger_than_the_soft_limit_goes_alone() {
        let (header, receipts) = big_block(1, 2, 3 * 1024 * 1024);
        let hash = header.hash_slow();
        let chain = Receipts(HashMap::from([(hash, receipts.clone())]));
        let (lists, incomplete) = serve_receipts70(&chain, 0, &[hash]);
        assert!(incomplete);
        assert_eq!(lists, vec![bloomless(&receipts[..1])]);
        let (lists, incomplete) = serve_receipts70(&chain, 1, &[hash]);
        assert!(!incomplete);
        assert_eq!(lists, vec![bloomless(&receipts[1..])]);
    }

    /// Serves `hashes` from `chain` into an assembly until it completes; returns the rounds.
    fn fetch(chain: &Receipts, assembly: &mut ReceiptsAssembly) -> usize {
        let mut rounds = 0;
        loop {
            rounds += 1;
            let request = assembly.request(9);
            let (receipts, last_block_incomplete) =
                serve_receipts70(chain, request.first_block_receipt_index, &request.hashes);
            let response = Receipts70 { request_id: 9, last_block_incomplete, receipts };
            if assembly.on_response(response).unwrap() == Assembled::Complete {
                return rounds;
            }
        }
    }

    #[test]
    fn assembly_completes_split_lists_against_their_roots() {
        let (h1, r1) = big_block(1, 3, 100);
        let (h2, r2) = big_block(2, 40, 128 * 1024);
        let (h3, r3) = big_block(3, 2, 100);
        let hashes = vec![h1.hash_slow(), h2.hash_slow(), h3.hash_slow()];
        let chain = Receipts(hashes.iter().copied().zip([r1.clone(), r2.clone(), r3.clone()]).collect());
        let mut assembly = ReceiptsAssembly::new(vec![h1, h2, h3], hashes);
        assert_eq!(fetch(&chain, &mut assembly), 3);
        assert_eq!(assembly.into_receipts(), vec![r1, r2, r3]);
    }

    #[test]
    fn lies_and_overflows_are_invalid() {
        let chain = MemoryChain::builder().blocks(2).transactions_per_block(3).build();
        let headers: Vec<Header> = (1..=2).map(|n| chain.header(n).unwrap().clone()).collect();
        let hashes: Vec<B256> = (1..=2).map(|n| chain.hash(n).unwrap()).collect();
        let r1 = chain.receipts(&hashes[0]).unwrap();
        let assembly = || ReceiptsAssembly::new(headers.clone(), hashes.clone());
        let response =
            |incomplete, receipts| Receipts70 { request_id: 1, last_block_incomplete: incomplete, receipts };

        // A whole list marked incomplete.
        let lie = response(true, vec![bloomless(&r1)]);
        assert_eq!(assembly().on_response(lie), Err(InvalidResponse::FalselyIncomplete { index: 0 }));
        // Incomplete with nothing, or with an empty last list: no progress.
        assert_eq!(
            assembly().on_response(response(true, vec![])),
            Err(InvalidResponse::IncompleteWithoutReceipts { index: 0 })
        );
        assert_eq!(
            assembly().on_response(response(true, vec![bloomless(&r1), vec![]])),
            Err(InvalidResponse::IncompleteWithoutReceipts { index: 1 })
        );
        // More lists than blocks asked for.
        let three = response(false, vec![bloomless(&r1), vec![], vec![]]);
        assert_eq!(assembly().on_response(three), Err(InvalidResponse::TooMany { requested: 2, got: 3 }));
        // A partial list whose logs outgrow the block's gas (3 txs: 63,000 gas, 7,875 log bytes).
        let mut fat = bloomless(&r1[..1]);
        fat[0].receipt.logs = vec![Log::new_unchecked(Address::ZERO, vec![], Bytes::from(vec![0; 8_000]))];
        assert_eq!(
            assembly().on_response(response(true, vec![fat])),
            Err(InvalidResponse::ReceiptsTooLarge { index: 0, size: 8_000 + 3 + 21 + 1 + 3, max: 7_875 })
        );
        // More receipts than the block's gas pays for (63,000 / 4,500 = 14).
        let many = vec![bloomless(&r1[..1])[0].clone(); 15];
        assert_eq!(
            assembly().on_response(response(true, vec![many])),
            Err(InvalidResponse::TooManyReceipts { index: 0, count: 15, max: 14 })
        );
        // A completed list that does not hash to its root, after a partial start.
        let mut a = assembly();
        assert_eq!(a.on_response(response(true, vec![bloomless(&r1[..1])])), Ok(Assembled::Continue));
        assert_eq!(a.request(1).first_block_receipt_index, 1);
        assert_eq!(
            a.on_response(response(false, vec![bloomless(&r1[2..])])),
            Err(InvalidResponse::ReceiptsRoot { index: 0 })
        );
        // An empty answer to a continuation ends the request with what is whole.
        let mut a = assembly();
        let r2 = chain.receipts(&hashes[1]).unwrap();
        assert_eq!(
            a.on_response(response(true, vec![bloomless(&r1), bloomless(&r2[..2])])),
            Ok(Assembled::Continue)
        );
        assert_eq!(a.on_response(response(false, vec![])), Ok(Assembled::Complete));
        assert_eq!(a.into_receipts(), vec![r1]);
    }

    fn arb_receipt() -> impl Strategy<Value = Receipt69> {
        let log = (
            any::<[u8; 20]>(),
            proptest::collection::vec(any::<[u8; 32]>(), 0..4),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(a, t, d)| {
                Log::new_unchecked(Address::from(a), t.into_iter().map(B256::from).collect(), d.into())
            });
        (0u8..5, any::<bool>(), any::<u64>(), proptest::collection::vec(log, 0..3)).prop_map(
            |(ty, ok, gas, logs)| Receipt69 {
                tx_type: TxType::try_from(ty).unwrap(),
                receipt: Receipt { status: Eip658Value::Eip658(ok), cumulative_gas_used: gas, logs },
            },
        )
    }

    proptest! {
        #[test]
        fn eth70_messages_roundtrip(
            request_id in any::<u64>(),
            index in any::<u64>(),
            hashes in proptest::collection::vec(any::<[u8; 32]>().prop_map(B256::from), 0..8),
            incomplete in any::<bool>(),
            receipts in proptest::collection::vec(proptest::collection::vec(arb_receipt(), 0..4), 0..4),
        ) {
            let get = EthMessage::GetReceipts70(GetReceipts70 { request_id, first_block_receipt_index: index, hashes });
            prop_assert_eq!(&EthMessage::decode(EthVersion::Eth70, id::GET_RECEIPTS, &get.encoded()).unwrap(), &get);
            let msg = EthMessage::Receipts70(Receipts70 { request_id, last_block_incomplete: incomplete, receipts });
            let bytes = msg.encoded();
            prop_assert_eq!(&EthMessage::decode(EthVersion::Eth70, id::RECEIPTS, &bytes).unwrap(), &msg);
            for cut in [0, bytes.len() / 2, bytes.len() - 1] {
                prop_assert!(EthMessage::decode(EthVersion::Eth70, id::RECEIPTS, &bytes[..cut]).is_err());
            }
        }

        /// Whatever a peer answers, the assembly never panics, holds no more than the
        /// block's gas allows, and only completes with lists that hash to their roots.
        #[test]
        fn assembly_never_accepts_what_does_not_hash(
            answers in proptest::collection::vec(
                (any::<bool>(), proptest::collection::vec(proptest::collection::vec(arb_receipt(), 0..4), 0..3)),
                1..6,
            ),
        ) {
            let chain = MemoryChain::builder().blocks(2).transactions_per_block(2).build();
            let headers: Vec<Header> = (1..=2).map(|n| chain.header(n).unwrap().clone()).collect();
            let hashes: Vec<B256> = (1..=2).map(|n| chain.hash(n).unwrap()).collect();
            let mut assembly = ReceiptsAssembly::new(headers.clone(), hashes);
            for (incomplete, receipts) in answers {
                match assembly.on_response(Receipts70 { request_id: 0, last_block_incomplete: incomplete, receipts }) {
                    Ok(Assembled::Continue) => {
                        let max = (headers[assembly.done.len()].gas_used / MIN_TX_GAS) as usize;
                        prop_assert!(assembly.partial.len() <= max);
                    }
                    Ok(_) => {
                        for (list, header) in assembly.clone().into_receipts().iter().zip(&headers) {
                            prop_assert_eq!(proofs::calculate_receipt_root(list), header.receipts_root);
                        }
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
    }
}
