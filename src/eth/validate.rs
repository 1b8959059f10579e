//! Validity of responses against their requests: pure functions, run before a response is
//! handed out, and the [`Outcome`] the pool scores on.
//!
//! - headers against their `GetBlockHeaders`: count, origin, numbering with skip and
//!   direction, parent-hash links;
//! - bodies against their headers: transactions root, ommers hash, withdrawals root;
//! - receipts against their headers' receipts roots;
//! - pooled transactions against the hashes asked for.
//!
//! A short response is valid (peers may not have everything); an empty one is reported as
//! [`Outcome::Empty`] so the pool can route elsewhere without penalising as hard.

use std::collections::HashSet;
use std::time::Duration;

use alloy_consensus::{
    proofs, transaction::PooledTransaction, BlockBody, Header, ReceiptEnvelope, TxEnvelope,
};
use alloy_eips::BlockHashOrNumber;
use alloy_primitives::B256;

use crate::eth::error::InvalidResponse;
use crate::eth::message::GetBlockHeaders;

/// The request types a peer is asked for. One word for the concept: the session task tags
/// each [`Outcome`] with it, and the pool keeps a latency estimate per kind (a peer can be
/// quick with headers and slow with receipts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestKind {
    /// `GetBlockHeaders`.
    BlockHeaders,
    /// `GetBlockBodies`.
    BlockBodies,
    /// `GetReceipts`.
    Receipts,
    /// `GetPooledTransactions`.
    PooledTransactions,
    /// `GetBlockAccessLists` (eth/71).
    BlockAccessLists,
    /// `GetCells` (eth/72).
    Cells,
}

impl RequestKind {
    /// Every kind, in a fixed order (the pool indexes its estimates by it).
    pub const ALL: [Self; 6] = [
        Self::BlockHeaders,
        Self::BlockBodies,
        Self::Receipts,
        Self::PooledTransactions,
        Self::BlockAccessLists,
        Self::Cells,
    ];

    /// A short name (`block_headers`, `block_bodies`, `receipts`, `pooled_transactions`,
    /// `block_access_lists`, `cells`), used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BlockHeaders => "block_headers",
            Self::BlockBodies => "block_bodies",
            Self::Receipts => "receipts",
            Self::PooledTransactions => "pooled_transactions",
            Self::BlockAccessLists => "block_access_lists",
            Self::Cells => "cells",
        }
    }

    /// The request message's name (`GetBlockHeaders`, ...).
    pub fn request_name(self) -> &'static str {
        match self {
            Self::BlockHeaders => "GetBlockHeaders",
            Self::BlockBodies => "GetBlockBodies",
            Self::Receipts => "GetReceipts",
            Self::PooledTransactions => "GetPooledTransactions",
            Self::BlockAccessLists => "GetBlockAccessLists",
            Self::Cells => "GetCells",
        }
    }
}

/// How a request ended, as the pool scores it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A non-empty response that passed every check.
    Valid {
        /// Time from sending the request to receiving the response.
        rtt: Duration,
        /// Size of the response payload in bytes.
        size: usize,
        /// Items in the response.
        items: usize,
    },
    /// The peer answered with no items.
    Empty {
        /// Time from sending the request to receiving the response.
        rtt: Duration,
    },
    /// The response failed a check.
    Invalid {
        /// The failed check.
        reason: InvalidResponse,
        /// Time from sending the request to receiving the response.
        rtt: Duration,
        /// Size of the response payload in bytes.
        size: usize,
    },
    /// No response within the request timeout.
    Timeout {
        /// The timeout that expired.
        after: Duration,
    },
}

impl Outcome {
    /// Whether the response was usable.
    pub fn is_valid(&self) -> bool {
        matches!(self, Self::Valid { .. })
    }

    /// A short name (`valid`, `empty`, `invalid`, `timeout`), used as a metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Valid { .. } => "valid",
            Self::Empty { .. } => "empty",
            Self::Invalid { .. } => "invalid",
            Self::Timeout { .. } => "timeout",
        }
    }
}

/// Checks `headers` against the request that asked for them and returns their hashes.
///
/// Rules: no more than `count`; the first is the origin (by number, or by hash); each next
/// number is the previous one plus (or, `reverse`, minus) `skip + 1`; with `skip == 0` each
/// header's parent hash is the previous header's hash (or, reversed, the other way round).
pub fn validate_headers(request: &GetBlockHeaders, headers: &[Header]) -> Result<Vec<B256>, InvalidResponse> {
    if headers.len() as u64 > request.count {
        return Err(InvalidResponse::TooMany { requested: request.count as usize, got: headers.len() });
    }
    let hashes: Vec<B256> = headers.iter().map(Header::hash_slow).collect();
    validate_headers_with_hashes(request, headers, &hashes)?;
    Ok(hashes)
}

/// [`validate_headers`] with the headers' hashes already known, e.g. computed over the
/// received bytes by [`decode_block_headers_hashed`](crate::eth::decode_block_headers_hashed),
/// which saves re-encoding every header. `hashes[i]` must be the hash of `headers[i]`.
pub fn validate_headers_with_hashes(
    request: &GetBlockHeaders,
    headers: &[Header],
    hashes: &[B256],
) -> Result<(), InvalidResponse> {
    if headers.len() as u64 > request.count {
        return Err(InvalidResponse::TooMany { requested: request.count as usize, got: headers.len() });
    }
    let Some(first) = headers.first() else { return Ok(()) };
    match request.origin {
        BlockHashOrNumber::Number(n) if first.number != n => return Err(InvalidResponse::WrongOrigin),
        BlockHashOrNumber::Hash(h) if hashes.first() != Some(&h) => return Err(InvalidResponse::WrongOrigin),
        _ => {}
    }
    let step = request.skip.saturating_add(1);
    for i in 1..headers.len() {
        let prev = headers[i - 1].number;
        let expected = if request.reverse { prev.checked_sub(step) } else { prev.checked_add(step) };
        let got = headers[i].number;
        if expected != Some(got) {
            return Err(InvalidResponse::WrongNumber { index: i, expected: expected.unwrap_or(0), got });
        }
        if request.skip == 0 {
            let linked = if request.reverse {
                Some(&headers[i - 1].parent_hash) == hashes.get(i)
            } else {
                Some(&headers[i].parent_hash) == hashes.get(i - 1)
            };
            if !linked {
                return Err(InvalidResponse::BrokenLink { index: i });
            }
        }
    }
    Ok(())
}

/// Checks `bodies` against the headers of the blocks they were requested for, in request
/// order: body `i` belongs to `headers[i]`. Fewer bodies than headers is allowed.
pub fn validate_bodies(headers: &[Header], bodies: &[BlockBody<TxEnvelope>]) -> Result<(), InvalidResponse> {
    if bodies.len() > headers.len() {
        return Err(InvalidResponse::TooMany { requested: headers.len(), got: bodies.len() });
    }
    for (index, (header, body)) in headers.iter().zip(bodies).enumerate() {
        validate_body(index, header, body)?;
    }
    Ok(())
}

/// [`validate_bodies`] with each transaction's EIP-2718 encoding as received (from
/// [`decode_block_bodies_encoded`](crate::eth::decode_block_bodies_encoded)): the
/// transactions trie is built from those bytes instead of re-encoding every transaction.
/// `encodings[i][j]` must be the encoding of `bodies[i].transactions[j]`.
pub fn validate_bodies_encoded(
    headers: &[Header],
    bodies: &[BlockBody<TxEnvelope>],
    encodings: &[Vec<&[u8]>],
) -> Result<(), InvalidResponse> {
    if bodies.len() > headers.len() {
        return Err(InvalidResponse::TooMany { requested: headers.len(), got: bodies.len() });
    }
    for (index, ((header, body), encoded)) in headers.iter().zip(bodies).zip(encodings).enumerate() {
        check_ommers_and_withdrawals(index, header, body)?;
        if proofs::ordered_trie_root_encoded(encoded) != header.transactions_root {
            return Err(InvalidResponse::TransactionsRoot { index });
        }
    }
    Ok(())
}

/// Checks one body against its header; `index` is the body's position, for the error.
pub fn validate_body(
    index: usize,
    header: &Header,
    body: &BlockBody<TxEnvelope>,
) -> Result<(), InvalidResponse> {
    check_ommers_and_withdrawals(index, header, body)?;
    // Last, since it is the costly one: a trie over every transaction.
    if proofs::calculate_transaction_root(&body.transactions) != header.transactions_root {
        return Err(InvalidResponse::TransactionsRoot { index });
    }
    Ok(())
}

fn check_ommers_and_withdrawals(
    index: usize,
    header: &Header,
    body: &BlockBody<TxEnvelope>,
) -> Result<(), InvalidResponse> {
    if proofs::calculate_ommers_root(&body.ommers) != header.ommers_hash {
        return Err(InvalidResponse::OmmersHash { index });
    }
    let withdrawals_ok = match (&header.withdrawals_root, &body.withdrawals) {
        (None, None) => true,
        (Some(root), Some(w)) => proofs::calculate_withdrawals_root(w) == *root,
        _ => false,
    };
    if !withdrawals_ok {
        return Err(InvalidResponse::WithdrawalsRoot { index });
    }
    Ok(())
}

/// Checks receipts, per block, against the receipts roots of the headers they were
/// requested for, in request order.
pub fn validate_receipts(
    headers: &[Header],
    receipts: &[Vec<ReceiptEnvelope>],
) -> Result<(), InvalidResponse> {
    if receipts.len() > headers.len() {
        return Err(InvalidResponse::TooMany { requested: headers.len(), got: receipts.len() });
    }
    for (index, (header, block)) in headers.iter().zip(receipts).enumerate() {
        if proofs::calculate_receipt_root(block) != header.receipts_root {
            return Err(InvalidResponse::ReceiptsRoot { index });
        }
    }
    Ok(())
}

/// Checks that every pooled transaction was asked for, and no more arrived than were.
pub fn validate_pooled_transactions(
    requested: &[B256],
    transactions: &[PooledTransaction],
) -> Result<(), InvalidResponse> {
    if transactions.len() > requested.len() {
        return Err(InvalidResponse::TooMany { requested: requested.len(), got: transactions.len() });
    }
    let asked: HashSet<&B256> = requested.iter().collect();
    for tx in transactions {
        if !asked.contains(tx.hash()) {
            return Err(InvalidResponse::UnrequestedTransaction { hash: *tx.hash() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eth::serve::MemoryChain;
    use alloy_consensus::{Eip658Value, Receipt, ReceiptWithBloom, TxEip4844, TxType};

    fn chain() -> MemoryChain {
        MemoryChain::builder().blocks(40).transactions_per_block(3).build()
    }

    fn req(origin: impl Into<BlockHashOrNumber>, count: u64, skip: u64, reverse: bool) -> GetBlockHeaders {
        GetBlockHeaders { origin: origin.into(), count, skip, reverse }
    }

    #[test]
    fn headers_forward_reverse_and_skip() {
        let c = chain();
        let h = |n: u64| c.header(n).unwrap().clone();
        let fwd: Vec<Header> = (5..15).map(h).collect();
        let hashes = validate_headers(&req(5u64, 10, 0, false), &fwd).unwrap();
        assert_eq!(hashes[3], c.hash(8).unwrap());
        // By hash.
        validate_headers(&req(c.hash(5).unwrap(), 10, 0, false), &fwd).unwrap();
        // Reverse.
        let rev: Vec<Header> = (6..=15).rev().map(h).collect();
        validate_headers(&req(15u64, 10, 0, true), &rev).unwrap();
        // Skip 2, forward and reverse: numbers step by 3, links are not checkable.
        let skip: Vec<Header> = [3, 6, 9, 12].into_iter().map(h).collect();
        validate_headers(&req(3u64, 4, 2, false), &skip).unwrap();
        let skip_rev: Vec<Header> = [12, 9, 6, 3].into_iter().map(h).collect();
        validate_headers(&req(12u64, 4, 2, true), &skip_rev).unwrap();
        // A short answer is fine, an empty one too.
        validate_headers(&req(5u64, 100, 0, false), &fwd).unwrap();
        assert!(validate_headers(&req(5u64, 100, 0, false), &[]).unwrap().is_empty());
    }

    #[test]
    fn bad_headers_are_caught() {
        let c = chain();
        let h = |n: u64| c.header(n).unwrap().clone();
        let fwd: Vec<Header> = (5..15).map(h).collect();
        assert_eq!(
            validate_headers(&req(5u64, 9, 0, false), &fwd),
            Err(InvalidResponse::TooMany { requested: 9, got: 10 })
        );
        assert_eq!(validate_headers(&req(4u64, 10, 0, false), &fwd), Err(InvalidResponse::WrongOrigin));
        assert_eq!(
            validate_headers(&req(c.hash(4).unwrap(), 10, 0, false), &fwd),
            Err(InvalidResponse::WrongOrigin)
        );
        // A gap.
        let gap: Vec<Header> = [5, 6, 8].into_iter().map(h).collect();
        assert_eq!(
            validate_headers(&req(5u64, 3, 0, false), &gap),
            Err(InvalidResponse::WrongNumber { index: 2, expected: 7, got: 8 })
        );
        // Right numbers, wrong parent: a forged header 7.
        let mut forged = fwd.clone();
        forged[2].extra_data = b"forged".to_vec().into();
        assert_eq!(
            validate_headers(&req(5u64, 10, 0, false), &forged),
            Err(InvalidResponse::BrokenLink { index: 3 })
        );
        // Reversed order on a forward request.
        let rev: Vec<Header> = (5..15).rev().map(h).collect();
        assert!(validate_headers(&req(14u64, 10, 0, false), &rev).is_err());
        // Reverse walking below genesis.
        let below: Vec<Header> = [h(1), h(0), h(0)].into();
        assert!(validate_headers(&req(1u64, 3, 0, true), &below).is_err());
    }

    #[test]
    fn bodies_against_roots() {
        let c = chain();
        let headers: Vec<Header> = (1..6).map(|n| c.header(n).unwrap().clone()).collect();
        let bodies: Vec<BlockBody<TxEnvelope>> =
            (1..6).map(|n| c.body_by_number(n).unwrap().clone()).collect();
        assert!(bodies[0].transactions.len() == 3);
        validate_bodies(&headers, &bodies).unwrap();
        validate_bodies(&headers, &bodies[..2]).unwrap();
        // Swapped bodies: transactions differ, so the roots do.
        let mut swapped = bodies.clone();
        swapped.swap(0, 1);
        assert_eq!(validate_bodies(&headers, &swapped), Err(InvalidResponse::TransactionsRoot { index: 0 }));
        // A dropped transaction.
        let mut short = bodies.clone();
        short[2].transactions.pop();
        assert_eq!(validate_bodies(&headers, &short), Err(InvalidResponse::TransactionsRoot { index: 2 }));
        // An invented ommer.
        let mut ommer = bodies.clone();
        ommer[1].ommers.push(headers[0].clone());
        assert_eq!(validate_bodies(&headers, &ommer), Err(InvalidResponse::OmmersHash { index: 1 }));
        // Withdrawals where the header has none.
        let mut wd = bodies.clone();
        wd[4].withdrawals = Some(Default::default());
        assert_eq!(validate_bodies(&headers, &wd), Err(InvalidResponse::WithdrawalsRoot { index: 4 }));
        assert!(matches!(validate_bodies(&headers[..1], &bodies[..2]), Err(InvalidResponse::TooMany { .. })));
    }

    #[test]
    fn encoded_bodies_validate_like_decoded_ones() {
        use crate::eth::{decode_block_bodies_encoded, EthMessage, RequestPair};
        let c = chain();
        let headers: Vec<Header> = (1..6).map(|n| c.header(n).unwrap().clone()).collect();
        let bodies: Vec<BlockBody<TxEnvelope>> =
            (1..6).map(|n| c.body_by_number(n).unwrap().clone()).collect();
        let bytes = EthMessage::BlockBodies(RequestPair::new(1, bodies.clone())).encoded();
        let (pair, enc) = decode_block_bodies_encoded(&bytes).unwrap();
        validate_bodies_encoded(&headers, &pair.message, &enc).unwrap();
        let mut swapped = bodies;
        swapped.swap(1, 2);
        let bytes = EthMessage::BlockBodies(RequestPair::new(1, swapped)).encoded();
        let (pair, enc) = decode_block_bodies_encoded(&bytes).unwrap();
        assert_eq!(
            validate_bodies_encoded(&headers, &pair.message, &enc),
            Err(InvalidResponse::TransactionsRoot { index: 1 })
        );
    }

    #[test]
    fn receipts_against_roots() {
        let c = chain();
        let headers: Vec<Header> = (1..4).map(|n| c.header(n).unwrap().clone()).collect();
        let receipts: Vec<Vec<ReceiptEnvelope>> =
            headers.iter().map(|h| c.receipts_by_hash(&h.hash_slow()).unwrap().clone()).collect();
        validate_receipts(&headers, &receipts).unwrap();
        let mut bad = receipts.clone();
        bad[1][0] = ReceiptEnvelope::from_typed(
            TxType::Legacy,
            ReceiptWithBloom::from(Receipt {
                status: Eip658Value::Eip658(false),
                cumulative_gas_used: 1,
                logs: vec![],
            }),
        );
        assert_eq!(validate_receipts(&headers, &bad), Err(InvalidResponse::ReceiptsRoot { index: 1 }));
    }

    #[test]
    fn pooled_transactions_must_be_requested() {
        let c = chain();
        let txs: Vec<PooledTransaction> = c
            .body_by_number(1)
            .unwrap()
            .transactions
            .iter()
            .map(|t| {
                alloy_consensus::EthereumTxEnvelope::<TxEip4844>::from(t.clone()).try_into_pooled().unwrap()
            })
            .collect();
        let hashes: Vec<B256> = txs.iter().map(|t| *t.hash()).collect();
        validate_pooled_transactions(&hashes, &txs).unwrap();
        assert!(matches!(
            validate_pooled_transactions(&hashes[..2], &txs[1..]),
            Err(InvalidResponse::UnrequestedTransaction { .. })
        ));
        assert!(matches!(
            validate_pooled_transactions(&hashes[..1], &txs),
            Err(InvalidResponse::TooMany { .. })
        ));
    }
}
