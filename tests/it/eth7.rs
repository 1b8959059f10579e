//! eth/71 (EIP-8159, block access lists) and eth/72 (EIP-8070, cells), and version
//! negotiation from 66 to 72: between two of our nodes on every version, against a
//! hand-driven peer that lies (a BAL that does not hash to its header, cells for a blob we
//! did not ask for, message ids beyond the negotiated version), and against geth v1.17.10 on
//! 69, 70, 71 and 72 forced by our configuration.
//!
//! The ethtest chain geth serves carries no block access lists we can check against ours and
//! no blobs in its pool, so BALs and cells end to end are shown ours↔ours with EIP-shaped
//! encodings (README, Conformance).

use std::{io::Write, sync::Arc, time::Duration};

use alloy_consensus::{Header, Sealed, EMPTY_ROOT_HASH};
use alloy_primitives::{b256, keccak256, Bytes, B256};
use ethp2p::{
    eth::{
        Cell, CellMask, Cells, ChainReader, EthConfig, EthError, EthEvent, EthMessage, EthSession,
        EthVersion, FileChain, GetBlockHeaders, InvalidResponse, MemoryChain, MessageError,
        NewPooledTransactionHashes68, Outcome, RequestKind, CELLS_PER_EXT_BLOB,
    },
    record::{ChainSpec, GethGenesis},
    rlpx::{dial, DisconnectReason, Protocol, RlpxConfig, RlpxError, RlpxListener},
    Enode, NodeKey,
};
use futures::{SinkExt, StreamExt};

use crate::eth::{next_event, ours_and_raw, pair, start};
use crate::{geth::GethNode, peers};

/// A chain with prague's header fields, so that its blocks carry a block access list hash,
/// with pooled transactions and the cells of one blob transaction (two blobs).
fn modern_chain() -> (MemoryChain, B256, Vec<Vec<Cell>>) {
    let genesis = Header {
        base_fee_per_gas: Some(7),
        withdrawals_root: Some(EMPTY_ROOT_HASH),
        blob_gas_used: Some(0),
        excess_blob_gas: Some(0),
        parent_beacon_block_root: Some(B256::ZERO),
        requests_hash: Some(b256!("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")),
        ..Default::default()
    };
    let mut chain = MemoryChain::builder()
        .genesis(genesis)
        .blocks(24)
        .transactions_per_block(3)
        .pooled_transactions(3)
        .block_access_lists(true)
        .build();
    let blob_tx = B256::repeat_byte(0xb1);
    let blobs: Vec<Vec<Cell>> = (0..2u8)
        .map(|b| {
            (0..CELLS_PER_EXT_BLOB)
                .map(|i| Cell::repeat_byte(b.wrapping_mul(128).wrapping_add(i as u8)))
                .collect()
        })
        .collect();
    chain.insert_blob_cells(blob_tx, blobs.clone());
    (chain, blob_tx, blobs)
}

/// RLPx offering what `eth` speaks.
fn rlpx_for(eth: &EthConfig) -> RlpxConfig {
    let mut b = RlpxConfig::builder();
    for p in eth.protocols() {
        b.protocol(p);
    }
    b.build().unwrap()
}

fn config(chain: &MemoryChain, versions: &[EthVersion]) -> EthConfig {
    chain.eth_config_for(&ChainSpec::mainnet()).versions(versions).build().unwrap()
}

fn sealed(chain: &MemoryChain, n: u64) -> Sealed<Header> {
    Sealed::new_unchecked(chain.header(n).unwrap().clone(), chain.hash(n).unwrap())
}

/// Two of our nodes, offering every version, forced to each of 66..=72 by the dialer's RLPx
/// capabilities: every request type the version has round-trips and validates, and the ones
/// it lacks are refused locally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_from_66_to_72_between_two_of_our_nodes() {
    let (chain, blob_tx, blobs) = modern_chain();
    let chain = Arc::new(chain);
    for v in [66u32, 67, 68, 69, 70, 71, 72] {
        let version = EthVersion::try_from(v as u8).unwrap();
        let (sa, sb) = pair(&[v]).await;
        let (ea, eb) = tokio::join!(
            EthSession::handshake(sa, config(&chain, &EthVersion::ALL)),
            EthSession::handshake(sb, config(&chain, &EthVersion::ALL))
        );
        let (ea, eb) = (ea.unwrap(), eb.unwrap());
        assert_eq!(ea.version(), version);
        let (a, mut events) = start(ea, chain.clone());
        // B serves pooled transactions from the chain's pool.
        let (_b, b_service, mut b_events) = eb.into_peer(chain.clone());
        tokio::spawn(b_service.with_tx_pool(Arc::new(chain.tx_pool())).run());

        let request = GetBlockHeaders { origin: 1u64.into(), count: 24, skip: 0, reverse: false };
        let headers = a.get_block_headers(request).await.unwrap();
        assert_eq!(headers.len(), 24, "{version}");
        assert!(headers.iter().all(|h| h.block_access_list_hash.is_some()));
        let bodies = a.get_block_bodies(headers.clone()).await.unwrap();
        assert_eq!(bodies.len(), 24);
        let receipts = a.get_receipts(headers.clone()).await.unwrap();
        assert_eq!(receipts[3], chain.receipts(&headers[3].hash()).unwrap());
        let pooled = a.get_pooled_transactions(chain.pooled_hashes()).await.unwrap();
        assert_eq!(pooled.len(), 3);

        // An eth/68-shaped announcement goes out in the version's shape (eth/72: with a mask).
        if version >= EthVersion::Eth68 {
            let hashes = vec![B256::repeat_byte(0xa1)];
            let announcement =
                NewPooledTransactionHashes68 { types: vec![2].into(), sizes: vec![120], hashes };
            a.announce(EthMessage::NewPooledTransactionHashes68(announcement.clone())).await.unwrap();
            let got = next_event(&mut b_events, |e| match e {
                EthEvent::Announcement(m) => Some(m),
                _ => None,
            })
            .await;
            match got {
                EthMessage::NewPooledTransactionHashes72(m) => {
                    assert_eq!(version, EthVersion::Eth72);
                    assert_eq!((m.hashes, m.cell_mask), (announcement.hashes, CellMask::NONE));
                }
                EthMessage::NewPooledTransactionHashes68(m) => {
                    assert!(version < EthVersion::Eth72);
                    assert_eq!(m, announcement);
                }
                other => panic!("{version}: {other:?}"),
            }
        }

        let bals = a.get_block_access_lists(headers.clone()).await;
        if version >= EthVersion::Eth71 {
            let bals = bals.unwrap();
            assert_eq!(bals.len(), 24);
            for (h, bal) in headers.iter().zip(&bals) {
                let bal = bal.as_ref().expect("we hold every BAL");
                assert_eq!(Some(keccak256(bal)), h.block_access_list_hash);
                assert_eq!(Some(bal), chain.block_access_list_by_hash(&h.hash()));
                ethp2p::eth::decode_block_access_list(bal).unwrap();
            }
            // An unknown block and a known one: the empty string, then the list.
            let mut unknown = sealed(&chain, 1);
            unknown = Sealed::new_unchecked(unknown.into_inner(), B256::repeat_byte(0xee));
            let lists = a.get_block_access_lists(vec![unknown, sealed(&chain, 2)]).await.unwrap();
            assert_eq!(lists[0], None);
            assert!(lists[1].is_some());
            let outcome = next_event(&mut events, |e| match e {
                EthEvent::RequestOutcome { kind: RequestKind::BlockAccessLists, outcome } => Some(outcome),
                _ => None,
            })
            .await;
            assert!(matches!(outcome, Outcome::Valid { items: 24, .. }), "{outcome:?}");
        } else {
            assert!(matches!(bals, Err(EthError::NotForVersion { .. })), "{version}: {bals:?}");
        }

        let mask = CellMask::from_indices([0, 7, 127]);
        let cells = a.get_cells(vec![B256::repeat_byte(0x99), blob_tx], mask).await;
        if version >= EthVersion::Eth72 {
            let cells = cells.unwrap();
            assert_eq!(cells.hashes, vec![blob_tx], "the unknown transaction is left out");
            let expected: Vec<Cell> = blobs.iter().flat_map(|b| mask.indices().map(|i| b[i])).collect();
            assert_eq!(cells.cells, vec![expected]);
            assert_eq!(cells.cell_mask, mask);
            let too_many = a.get_cells(vec![B256::ZERO; 65], mask).await;
            assert!(matches!(too_many, Err(EthError::RequestTooLarge { max: 64, got: 65 })));
        } else {
            assert!(matches!(cells, Err(EthError::NotForVersion { .. })), "{version}: {cells:?}");
        }
    }
}

/// A BAL that does not hash to its header, and cells for a blob we did not ask for: each an
/// invalid, scored answer; the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lies_about_bals_and_cells_are_scored() {
    let (chain, blob_tx, _) = modern_chain();
    let chain = Arc::new(chain);

    let (ours, mut raw) = ours_and_raw(71, chain.clone(), |_| {}).await;
    let (peer, mut events) = start(ours.unwrap(), chain.clone());
    assert!(matches!(raw.recv().await.unwrap(), EthMessage::Status(_)));
    let (p, block3) = (peer.clone(), sealed(&chain, 3));
    let ask = tokio::spawn(async move { p.get_block_access_lists(vec![block3]).await });
    let EthMessage::GetBlockAccessLists(req) = raw.recv().await.unwrap() else { panic!("a BAL request") };
    // Block 4's list for block 3.
    let wrong = chain.block_access_list_by_hash(&chain.hash(4).unwrap()).unwrap().clone();
    raw.send(&EthMessage::BlockAccessLists(ethp2p::eth::BlockAccessLists {
        request_id: req.request_id,
        lists: vec![Some(wrong)],
    }))
    .await;
    let err = ask.await.unwrap().unwrap_err();
    assert!(
        matches!(err, EthError::InvalidResponse(InvalidResponse::BlockAccessListHash { index: 0 })),
        "{err}"
    );
    assert!(err.should_ban() && !err.is_fatal());
    let outcome = next_event(&mut events, |e| match e {
        EthEvent::RequestOutcome { kind: RequestKind::BlockAccessLists, outcome } => Some(outcome),
        _ => None,
    })
    .await;
    assert!(matches!(outcome, Outcome::Invalid { reason: InvalidResponse::BlockAccessListHash { .. }, .. }));

    let (ours, mut raw) = ours_and_raw(72, chain.clone(), |_| {}).await;
    let (peer, mut events) = start(ours.unwrap(), chain.clone());
    assert!(matches!(raw.recv().await.unwrap(), EthMessage::Status(_)));
    let mask = CellMask::from_indices([1, 2]);
    let p = peer.clone();
    let ask = tokio::spawn(async move { p.get_cells(vec![blob_tx], mask).await });
    let EthMessage::GetCells(req) = raw.recv().await.unwrap() else { panic!("a cells request") };
    assert_eq!((req.hashes.clone(), req.cell_mask), (vec![blob_tx], mask));
    let other = B256::repeat_byte(0x0d);
    raw.send(&EthMessage::Cells(Cells {
        request_id: req.request_id,
        hashes: vec![other],
        cells: vec![vec![Cell::ZERO; 2]],
        cell_mask: mask,
    }))
    .await;
    let err = ask.await.unwrap().unwrap_err();
    assert!(
        matches!(err, EthError::InvalidResponse(InvalidResponse::UnrequestedCells { hash }) if hash == other),
        "{err}"
    );
    let outcome = next_event(&mut events, |e| match e {
        EthEvent::RequestOutcome { kind: RequestKind::Cells, outcome } => Some(outcome),
        _ => None,
    })
    .await;
    assert!(matches!(outcome, Outcome::Invalid { reason: InvalidResponse::UnrequestedCells { .. }, .. }));

    // Columns we did not ask for: invalid too. The session is still up.
    let p = peer.clone();
    let ask = tokio::spawn(async move { p.get_cells(vec![blob_tx], mask).await });
    let EthMessage::GetCells(req) = raw.recv().await.unwrap() else { panic!("a cells request") };
    raw.send(&EthMessage::Cells(Cells {
        request_id: req.request_id,
        hashes: vec![blob_tx],
        cells: vec![vec![Cell::ZERO; 3]],
        cell_mask: CellMask::from_indices([1, 2, 3]),
    }))
    .await;
    let err = ask.await.unwrap().unwrap_err();
    assert!(matches!(err, EthError::InvalidResponse(InvalidResponse::CellMaskNotRequested)), "{err}");
}

/// Message ids beyond the negotiated version: one outside every capability (a peer that
/// thinks eth/70 has eth/72's 22 ids sends `GetBlockAccessLists`) ends the session with a
/// banning RLPx error and no Disconnect, as go-ethereum closes; one inside eth's space that
/// the version does not define ends it with `SubprotocolSpecific` (0x10), as go-ethereum's
/// `errInvalidMsgCode`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_ids_beyond_the_version_are_a_breach() {
    let (chain, _, _) = modern_chain();
    let chain = Arc::new(chain);
    let key_raw = NodeKey::generate();
    let key_ours = NodeKey::generate();
    // The raw peer counts 22 ids for eth/70; we count 18.
    let raw_rlpx = RlpxConfig::builder().protocol(Protocol::new("eth", 70, 22)).build().unwrap();
    let mut listener =
        RlpxListener::bind("127.0.0.1:0".parse().unwrap(), key_raw.clone(), raw_rlpx).await.unwrap();
    let enode = Enode::new(key_raw.peer_id(), listener.local_addr());
    let ours_config = config(&chain, &[EthVersion::Eth70]);
    let ours_rlpx = rlpx_for(&ours_config);
    let (ours, raw) = tokio::join!(dial(&enode, &key_ours, &ours_rlpx), listener.accept());
    let (ours, mut raw) = (ours.unwrap(), raw.unwrap().unwrap());
    let status = ours_config.status.status(EthVersion::Eth70);
    raw.send(ethp2p::rlpx::CapMessage::new(0, 0, EthMessage::Status(status).encoded())).await.unwrap();
    let session = EthSession::handshake(ours, ours_config).await.unwrap();
    assert_eq!(session.version(), EthVersion::Eth70);
    let (_peer, mut events) = start(session, chain.clone());
    let get = EthMessage::GetBlockAccessLists(ethp2p::eth::RequestPair::new(1, vec![B256::ZERO]));
    raw.send(ethp2p::rlpx::CapMessage::new(0, get.id(), get.encoded())).await.unwrap();
    let closed = next_event(&mut events, |e| match e {
        EthEvent::Closed(e) => Some(e),
        _ => None,
    })
    .await;
    assert!(matches!(&*closed, EthError::Rlpx(RlpxError::UnknownMessageId(34))), "{closed}");
    assert!(closed.should_ban(), "a breach");
    // No Disconnect: the stream just ends (our Status came first).
    let mut rest = Vec::new();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(10), raw.next()).await {
        rest.push(msg.map(|m| m.id));
        if rest.len() > 4 {
            break;
        }
    }
    assert!(rest.iter().all(|m| !matches!(m, Err(RlpxError::Disconnected(_)))), "{rest:?}");

    // Inside eth/72's 22 ids but undefined there (0x0b): SubprotocolSpecific.
    let (ours, mut raw) = ours_and_raw(72, chain.clone(), |_| {}).await;
    let (_peer, mut events) = start(ours.unwrap(), chain.clone());
    assert!(matches!(raw.recv().await.unwrap(), EthMessage::Status(_)));
    raw.session.send(ethp2p::rlpx::CapMessage::new(0, 0x0b, vec![0xc0])).await.unwrap();
    let closed = next_event(&mut events, |e| match e {
        EthEvent::Closed(e) => Some(e),
        _ => None,
    })
    .await;
    assert!(
        matches!(
            &*closed,
            EthError::Message(MessageError::UnknownMessage { id: 0x0b, version: EthVersion::Eth72 })
        ),
        "{closed}"
    );
    assert!(closed.should_ban());
    assert_eq!(closed.disconnect_reason(), Some(DisconnectReason::SubprotocolSpecific));
    let err = raw.recv().await.unwrap_err();
    assert!(matches!(err, RlpxError::Disconnected(DisconnectReason::SubprotocolSpecific)), "{err}");
}

/// Against geth v1.17.10 serving the ethtest chain: a session on each of 69, 70, 71 and 72,
/// forced by our configuration (the versions we offer), with every header, and bodies and
/// receipts of every block fetched and validated (on eth/69, block 14's 10.6 MB receipt list
/// cannot travel in one message and is left out). On 71 and 72 we ask for the BALs of the
/// last 16 blocks (each answered one validated, or the empty string) and on 72 for cells of
/// a transaction geth does not hold (an empty, valid answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_with_geth_on_69_70_71_and_72() {
    peers::init_tracing();
    let dir = peers::ethtest_dir();
    let genesis = GethGenesis::from_file(dir.join("genesis.json")).unwrap();
    let geth = GethNode::builder().genesis(&dir.join("genesis.json")).import(&dir.join("chain.rlp")).start();
    let head = geth.block_number();
    let chain = Arc::new(MemoryChain::builder().genesis(genesis.header().clone()).blocks(0).build());
    for version in [EthVersion::Eth69, EthVersion::Eth70, EthVersion::Eth71, EthVersion::Eth72] {
        let eth = chain.eth_config_for(genesis.spec()).versions(&[version]).build().unwrap();
        let rlpx = rlpx_for(&eth);
        let session = dial(&geth.enode(), &NodeKey::generate(), &rlpx).await.expect("rlpx with geth");
        assert!(
            session.remote_hello().client_id.starts_with("Geth/v1.17.10"),
            "{}",
            session.remote_hello().client_id
        );
        let session =
            EthSession::handshake(session, eth).await.unwrap_or_else(|e| panic!("{version} with geth: {e}"));
        assert_eq!(session.version(), version);
        let (peer, _events) = start(session, chain.clone());

        let mut headers: Vec<Sealed<Header>> = Vec::new();
        while (headers.len() as u64) < head {
            let from = headers.len() as u64 + 1;
            let request = GetBlockHeaders {
                origin: from.into(),
                count: (head - from + 1).min(192),
                skip: 0,
                reverse: false,
            };
            let batch = peer.get_block_headers(request).await.expect("headers");
            assert!(!batch.is_empty());
            for h in batch {
                let parent = headers.last().map_or(genesis.spec().genesis_hash, |p| p.hash());
                assert_eq!(h.parent_hash, parent);
                headers.push(h);
            }
        }
        let (mut txs, mut receipts, mut next) = (0usize, 0usize, 0usize);
        while next < headers.len() {
            let mut batch: Vec<Sealed<Header>> = headers[next..(next + 32).min(headers.len())].to_vec();
            if version == EthVersion::Eth69 {
                batch.retain(|h| h.number != 14);
            }
            let bodies = peer.get_block_bodies(batch.clone()).await.expect("bodies");
            let lists = peer.get_receipts(batch[..bodies.len()].to_vec()).await.expect("receipts");
            let done = bodies.len().min(lists.len());
            assert!(done > 0, "{version}: bodies and receipts from block {}", batch[0].number);
            txs += bodies[..done].iter().map(|b| b.transactions.len()).sum::<usize>();
            receipts += lists[..done].iter().map(Vec::len).sum::<usize>();
            let last = batch[done - 1].number as usize;
            next = last;
        }
        assert_eq!(txs, receipts, "{version}: a receipt per transaction");
        let mut bal_note = String::new();
        if version >= EthVersion::Eth71 {
            // Every BAL the chain commits to, fetched from geth, checked by the session and
            // again by a FileChain of the same file that then serves them.
            let file = FileChain::from_file(dir.join("chain.rlp"), genesis.header().clone()).unwrap();
            let missing = file.missing_block_access_lists();
            let wanted = missing.len();
            let mut served = 0;
            for batch in missing.chunks(64) {
                let bals = peer.get_block_access_lists(batch.to_vec()).await.expect("validated BALs");
                for (h, bal) in batch.iter().zip(bals) {
                    if let Some(bal) = bal {
                        file.import_block_access_list(&h.hash(), bal).unwrap();
                        served += 1;
                    }
                }
            }
            assert!(
                wanted > 0 && served == wanted,
                "geth serves the {wanted} BALs of the ethtest chain ({served})"
            );
            assert!(file.missing_block_access_lists().is_empty());
            let last = headers.last().unwrap();
            assert_eq!(
                file.block_access_list(&last.hash()).map(|b| keccak256(&b)),
                last.block_access_list_hash
            );
            bal_note = format!("; BALs: {served} of {wanted} blocks' served and validated");
        }
        if version >= EthVersion::Eth72 {
            let cells = peer.get_cells(vec![B256::repeat_byte(0x42)], CellMask::ALL).await.expect("cells");
            assert!(cells.hashes.is_empty(), "geth holds no such blob transaction");
        }
        let _ = writeln!(
            std::io::stderr().lock(),
            "interop geth {version}: {} headers, {txs} txs and receipts validated{bal_note}",
            headers.len()
        );
        drop(peer);
    }
}

#[test]
fn bals_validate_against_the_served_header_hash() {
    let (chain, _, _) = modern_chain();
    let h = sealed(&chain, 5);
    let bal: Bytes = chain.block_access_list(&h.hash()).unwrap();
    assert_eq!(Some(keccak256(&bal)), h.block_access_list_hash);
}
