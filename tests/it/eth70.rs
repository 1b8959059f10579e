//! eth/70 (EIP-7975) between our own nodes over loopback TCP: a block whose receipt list is
//! larger than one message (11 MiB) is served in partial lists and fetched whole; and
//! against a hand-driven peer: the continuation asks for the rest under the same request id
//! from the index where the list stopped, and a peer that lies with `lastBlockIncomplete`
//! or sends more than the block's gas allows gets an invalid, scored answer, and one that
//! never completes a list times out at the first request's deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_consensus::{
    proofs, BlockBody, Eip658Value, Header, Receipt, ReceiptEnvelope, ReceiptWithBloom, Sealed, TxEnvelope,
    TxType,
};
use alloy_primitives::{Address, Bytes, Log, B256};
use ethp2p::eth::{
    ChainReader, EthError, EthEvent, EthMessage, EthSession, EthVersion, InvalidResponse, MemoryChain,
    Outcome, Receipt69, Receipts70, RequestKind, MAX_MESSAGE_SIZE,
};

use ethp2p::record::ChainSpec;

use crate::eth::{eth_config, next_event, ours_and_raw, pair, start, RawPeer};

/// A [`MemoryChain`] plus one extra block (not linked into it) with a huge receipt list.
#[derive(Debug)]
struct HugeReceipts {
    chain: MemoryChain,
    header: Header,
    hash: B256,
    receipts: Vec<ReceiptEnvelope>,
}

impl HugeReceipts {
    /// `count` receipts, each with one log of `log_bytes` bytes; the header's receipts root
    /// and gas cover them.
    fn new(chain: MemoryChain, count: usize, log_bytes: usize) -> Self {
        let receipts: Vec<ReceiptEnvelope> = (0..count)
            .map(|i| {
                let data = Bytes::from(vec![i as u8; log_bytes]);
                let log =
                    Log::new_unchecked(Address::repeat_byte(0x70), vec![B256::with_last_byte(i as u8)], data);
                let receipt = Receipt {
                    status: Eip658Value::Eip658(true),
                    cumulative_gas_used: (i as u64 + 1) * 9_000_000,
                    logs: vec![log],
                };
                ReceiptEnvelope::from_typed(TxType::Eip1559, ReceiptWithBloom::from(receipt))
            })
            .collect();
        let gas_used = count as u64 * 9_000_000;
        let parent = chain.header(chain.header_count() - 1).unwrap();
        let header = Header {
            parent_hash: parent.hash_slow(),
            number: parent.number + 1,
            gas_limit: gas_used,
            gas_used,
            receipts_root: proofs::calculate_receipt_root(&receipts),
            ..Default::default()
        };
        let hash = header.hash_slow();
        Self { chain, header, hash, receipts }
    }

    fn sealed(&self) -> Sealed<Header> {
        Sealed::new_unchecked(self.header.clone(), self.hash)
    }
}

impl ChainReader for HugeReceipts {
    fn header_by_number(&self, number: u64) -> Option<Header> {
        self.chain.header_by_number(number)
    }
    fn header_by_hash(&self, hash: &B256) -> Option<Header> {
        self.chain.header_by_hash(hash)
    }
    fn body(&self, hash: &B256) -> Option<BlockBody<TxEnvelope>> {
        self.chain.body(hash)
    }
    fn receipts(&self, hash: &B256) -> Option<Vec<ReceiptEnvelope>> {
        if *hash == self.hash {
            return Some(self.receipts.clone());
        }
        self.chain.receipts(hash)
    }
}

trait HeaderCount {
    fn header_count(&self) -> u64;
}

impl HeaderCount for MemoryChain {
    fn header_count(&self) -> u64 {
        (0..).find(|n| self.header(*n).is_none()).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_list_over_10_mib_is_fetched_in_parts_between_our_nodes() {
    let chain = MemoryChain::builder().blocks(4).transactions_per_block(3).build();
    // 88 receipts of 128 KiB of logs: 11 MiB, more than any one message may carry.
    let server = Arc::new(HugeReceipts::new(chain.clone(), 88, 128 * 1024));
    let size: usize =
        server.receipts.iter().map(|r| alloy_rlp::Encodable::length(&Receipt69::from_envelope(r))).sum();
    assert!(size > MAX_MESSAGE_SIZE, "{size}");
    let client = Arc::new(chain.clone());

    let (sa, sb) = pair(&[68, 69, 70]).await;
    let (ea, eb) = tokio::join!(
        EthSession::handshake(sa, eth_config(&chain)),
        EthSession::handshake(sb, eth_config(&chain))
    );
    let (ea, eb) = (ea.unwrap(), eb.unwrap());
    assert_eq!(ea.version(), EthVersion::Eth70, "the highest version both offer");
    let (a, mut a_events) = start(ea, client);
    let (_b, _b_events) = start(eb, server.clone());

    // Blocks 3 and 4 whole, then the huge one, then 1 again: the answer is every list whole.
    let mut headers: Vec<Sealed<Header>> = (3..=4)
        .map(|n| Sealed::new_unchecked(chain.header(n).unwrap().clone(), chain.hash(n).unwrap()))
        .collect();
    headers.push(server.sealed());
    headers.push(Sealed::new_unchecked(chain.header(1).unwrap().clone(), chain.hash(1).unwrap()));
    let lists = a.get_receipts(headers.clone()).await.unwrap();
    assert_eq!(lists.len(), 4);
    assert_eq!(lists[2], server.receipts);
    assert_eq!(&lists[3], chain.receipts_by_hash(&headers[3].hash()).unwrap());

    // Each partial answer was one round trip with its own outcome: 11 MiB in answers cut at
    // the 2 MiB soft limit takes at least six.
    let mut parts = 0;
    while parts < 6 {
        let outcome = next_event(&mut a_events, |e| match e {
            EthEvent::RequestOutcome { kind: RequestKind::Receipts, outcome } => Some(outcome),
            _ => None,
        })
        .await;
        assert!(outcome.is_valid(), "{outcome:?}");
        parts += 1;
    }
    // Once more, now starting at the huge block: the same list.
    let lists = a.get_receipts(vec![server.sealed()]).await.unwrap();
    assert_eq!(lists, vec![server.receipts.clone()]);
}

fn bloomless(receipts: &[ReceiptEnvelope]) -> Vec<Receipt69> {
    receipts.iter().map(Receipt69::from_envelope).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuation_and_lies_against_a_raw_peer() {
    let chain = Arc::new(MemoryChain::builder().blocks(4).transactions_per_block(3).build());
    let (ours, mut raw) = ours_and_raw(70, chain.clone(), |_| {}).await;
    let ours = ours.unwrap();
    assert_eq!(ours.version(), EthVersion::Eth70);
    let (peer, mut events) = start(ours, chain.clone());
    assert!(matches!(raw.recv().await.unwrap(), EthMessage::Status(_)));
    let sealed = |n: u64| Sealed::new_unchecked(chain.header(n).unwrap().clone(), chain.hash(n).unwrap());
    let receipts = |n: u64| chain.receipts_by_hash(&chain.hash(n).unwrap()).unwrap().clone();

    // A list split in two: we ask for the rest under the same id, from where it stopped.
    let p = peer.clone();
    let headers = vec![sealed(1), sealed(2)];
    let fetch = tokio::spawn(async move { p.get_receipts(headers).await });
    let EthMessage::GetReceipts70(req) = raw.recv().await.unwrap() else { panic!("eth/70 GetReceipts") };
    assert_eq!((req.first_block_receipt_index, req.hashes.len()), (0, 2));
    let first = vec![bloomless(&receipts(1)), bloomless(&receipts(2)[..2])];
    raw.send(&EthMessage::Receipts70(Receipts70 {
        request_id: req.request_id,
        last_block_incomplete: true,
        receipts: first,
    }))
    .await;
    let EthMessage::GetReceipts70(next) = raw.recv().await.unwrap() else { panic!("the continuation") };
    assert_eq!(next.request_id, req.request_id, "the same request goes on");
    assert_eq!(next.first_block_receipt_index, 2);
    assert_eq!(next.hashes, vec![chain.hash(2).unwrap()]);
    raw.send(&EthMessage::Receipts70(Receipts70 {
        request_id: req.request_id,
        last_block_incomplete: false,
        receipts: vec![bloomless(&receipts(2)[2..])],
    }))
    .await;
    assert_eq!(fetch.await.unwrap().unwrap(), vec![receipts(1), receipts(2)]);

    // A whole list marked incomplete: invalid for the caller, an Invalid outcome for the pool.
    let p = peer.clone();
    let headers = vec![sealed(3)];
    let lie = tokio::spawn(async move { p.get_receipts(headers).await });
    let EthMessage::GetReceipts70(req) = raw.recv().await.unwrap() else { panic!() };
    raw.send(&EthMessage::Receipts70(Receipts70 {
        request_id: req.request_id,
        last_block_incomplete: true,
        receipts: vec![bloomless(&receipts(3))],
    }))
    .await;
    let err = lie.await.unwrap().unwrap_err();
    assert!(
        matches!(err, EthError::InvalidResponse(InvalidResponse::FalselyIncomplete { index: 0 })),
        "{err}"
    );
    assert!(err.should_ban() && !err.is_fatal(), "scored as an invalid answer; the session goes on");
    let outcome = next_event(&mut events, |e| match e {
        EthEvent::RequestOutcome { outcome: o @ Outcome::Invalid { .. }, .. } => Some(o),
        _ => None,
    })
    .await;
    assert!(matches!(outcome, Outcome::Invalid { reason: InvalidResponse::FalselyIncomplete { .. }, .. }));

    // A partial list with more log bytes than the block's gas pays for (3 transfers: 63,000
    // gas, 7,875 bytes of logs): refused before anything more is buffered.
    let p = peer.clone();
    let headers = vec![sealed(4)];
    let fat = tokio::spawn(async move { p.get_receipts(headers).await });
    let EthMessage::GetReceipts70(req) = raw.recv().await.unwrap() else { panic!() };
    let mut list = bloomless(&receipts(4)[..1]);
    list[0].receipt.logs = vec![Log::new_unchecked(Address::ZERO, vec![], Bytes::from(vec![1; 1 << 20]))];
    raw.send(&EthMessage::Receipts70(Receipts70 {
        request_id: req.request_id,
        last_block_incomplete: true,
        receipts: vec![list],
    }))
    .await;
    let err = fat.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            EthError::InvalidResponse(InvalidResponse::ReceiptsTooLarge { index: 0, max: 7_875, .. })
        ),
        "{err}"
    );
    let outcome = next_event(&mut events, |e| match e {
        EthEvent::RequestOutcome { outcome: o @ Outcome::Invalid { .. }, .. } => Some(o),
        _ => None,
    })
    .await;
    assert!(matches!(outcome, Outcome::Invalid { reason: InvalidResponse::ReceiptsTooLarge { .. }, .. }));

    // The session survived both: a plain request still works.
    let p = peer.clone();
    let headers = vec![sealed(4)];
    let again = tokio::spawn(async move { p.get_receipts(headers).await });
    let EthMessage::GetReceipts70(req) = raw.recv().await.unwrap() else { panic!() };
    raw.send(&EthMessage::Receipts70(Receipts70 {
        request_id: req.request_id,
        last_block_incomplete: false,
        receipts: vec![bloomless(&receipts(4))],
    }))
    .await;
    assert_eq!(again.await.unwrap().unwrap(), vec![receipts(4)]);
}

/// A list that never completes: the request ends at the first request's timeout, however
/// the peer drips its partial answers (continuations do not restart the clock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_that_never_completes_times_out() {
    let chain = Arc::new(MemoryChain::builder().blocks(2).transactions_per_block(3).build());
    let (ours, raw) = pair(&[70]).await;
    let mut raw = RawPeer { session: raw, version: EthVersion::Eth70 };
    raw.send(&EthMessage::Status(eth_config(&chain).status.status(EthVersion::Eth70))).await;
    let timeout = Duration::from_millis(1_500);
    let config = chain.eth_config_for(&ChainSpec::mainnet()).request_timeout(timeout).build().unwrap();
    let (peer, mut events) = start(EthSession::handshake(ours, config).await.unwrap(), chain.clone());
    assert!(matches!(raw.recv().await.unwrap(), EthMessage::Status(_)));
    let receipts = chain.receipts_by_hash(&chain.hash(1).unwrap()).unwrap().clone();

    let headers = vec![Sealed::new_unchecked(chain.header(1).unwrap().clone(), chain.hash(1).unwrap())];
    let started = Instant::now();
    let fetch = tokio::spawn(async move { peer.get_receipts(headers).await });
    // Two valid partial answers, 1.2 s apart: the second comes after the first one's
    // timeout would have restarted, the third never does.
    for (i, wait) in [(0, 0), (1, 1_200)] {
        let EthMessage::GetReceipts70(req) = raw.recv().await.unwrap() else { panic!() };
        assert_eq!(req.first_block_receipt_index, i as u64);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        raw.send(&EthMessage::Receipts70(Receipts70 {
            request_id: req.request_id,
            last_block_incomplete: true,
            receipts: vec![bloomless(&receipts[i..=i])],
        }))
        .await;
    }
    let err = fetch.await.unwrap().unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, EthError::Timeout), "{err}");
    assert!(took >= timeout && took < timeout + Duration::from_millis(800), "{took:?}");
    let outcome = next_event(&mut events, |e| match e {
        EthEvent::RequestOutcome { kind: RequestKind::Receipts, outcome: o @ Outcome::Timeout { .. } } => {
            Some(o)
        }
        _ => None,
    })
    .await;
    assert!(matches!(outcome, Outcome::Timeout { .. }));
}
