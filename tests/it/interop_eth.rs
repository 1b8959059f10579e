//! eth interop with the third-party ethereumjs peer, both directions, over loopback TCP:
//! Status on eth/66, 67 and 68 on its mainnet-style chain and on its `--chain modern` chain
//! (21-field prague headers), 16 headers with their bodies and receipts fetched and
//! validated; it fetches from our in-memory chain; wrong Status fields are rejected with the
//! Disconnect reason geth and ethereumjs use (0x10).

use std::{sync::Arc, time::Duration};

use alloy_consensus::{Header, EMPTY_OMMER_ROOT_HASH, EMPTY_ROOT_HASH};
use alloy_primitives::{b256, B256, U256};
use ethp2p::{
    eth::{
        EthConfig, EthError, EthEvent, EthMessage, EthSession, GetBlockHeaders, MemoryChain, StatusError,
        StatusHead, StatusInfo,
    },
    record::{ForkFilter, MAINNET_GENESIS_HASH},
    rlpx::{dial, Protocol, RlpxConfig, RlpxListener},
    Enode, NodeKey,
};

use crate::{ejs::EjsPeer, eth::eth_config};

const WAIT: Duration = Duration::from_secs(30);

fn rlpx_config() -> RlpxConfig {
    RlpxConfig::builder()
        .protocol(Protocol::eth(66))
        .protocol(Protocol::eth(67))
        .protocol(Protocol::eth(68))
        .protocol(Protocol::eth(69))
        .build()
        .unwrap()
}

/// The genesis of ethereumjs' `--chain modern` (peer.mjs): every field at its default
/// except gas limit 30M, base fee 1 gwei and the empty-trie state root; prague's 21 fields.
fn modern_genesis() -> Header {
    Header {
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        state_root: EMPTY_ROOT_HASH,
        transactions_root: EMPTY_ROOT_HASH,
        receipts_root: EMPTY_ROOT_HASH,
        gas_limit: 30_000_000,
        base_fee_per_gas: Some(1_000_000_000),
        withdrawals_root: Some(EMPTY_ROOT_HASH),
        blob_gas_used: Some(0),
        excess_blob_gas: Some(0),
        parent_beacon_block_root: Some(B256::ZERO),
        // EIP-7685: sha256 of no requests.
        requests_hash: Some(b256!("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")),
        ..Default::default()
    }
}

/// Our config for the modern chain: network 1337, every fork at genesis, so the fork id is
/// the genesis checksum with no next fork; TD 0.
fn modern_config(chain: &MemoryChain) -> EthConfig {
    let genesis = chain.hash(0).unwrap();
    let filter = ForkFilter::new(genesis, 0, [], [], chain.head_number(), 0);
    let mut status: StatusInfo = chain.status_info(1337, filter.current());
    status.total_difficulty = U256::ZERO;
    EthConfig::builder(status, filter).build().unwrap()
}

async fn we_dial(version: u32, modern: bool) {
    let mut args = vec!["--no-discv4", "--eth"];
    let v = version.to_string();
    args.push(&v);
    if modern {
        args.extend(["--chain", "modern"]);
    }
    let peer = EjsPeer::spawn(&args);
    let chain = if modern {
        MemoryChain::builder().genesis(modern_genesis()).chain_id(1337).blocks(0).build()
    } else {
        MemoryChain::builder().blocks(0).build()
    };
    let config = if modern { modern_config(&chain) } else { eth_config(&chain) };
    let session = dial(&peer.enode(), &NodeKey::generate(), &rlpx_config()).await.expect("dial ethereumjs");
    let eth = EthSession::handshake(session, config).await.expect("Status handshake with ethereumjs");
    assert_eq!(eth.version().as_u8() as u32, version);
    let status = *eth.remote_status();
    assert_eq!(status.genesis, chain.hash(0).unwrap(), "our genesis header hashes like theirs");
    let (peer_handle, service, _events) = eth.into_peer(Arc::new(chain));
    tokio::spawn(service.run());

    let req = GetBlockHeaders { origin: 0u64.into(), count: 16, skip: 0, reverse: false };
    let headers = peer_handle.get_block_headers(req).await.expect("16 valid headers");
    assert_eq!(headers.len(), 16);
    if modern {
        assert!(headers.iter().all(|h| h.requests_hash.is_some()), "21-field headers");
        assert_eq!(*headers[0].inner(), modern_genesis());
        assert_eq!(headers[0].hash(), modern_genesis().hash_slow());
    } else {
        assert!(headers.iter().all(|h| h.base_fee_per_gas.is_none()), "15-field headers");
        assert_eq!(headers[0].hash_slow(), MAINNET_GENESIS_HASH);
        let StatusHead::TotalDifficulty { total_difficulty, .. } = status.head else { panic!("TD") };
        assert_eq!(total_difficulty, U256::from(17_179_869_184u64 * 33));
    }
    let bodies = peer_handle.get_block_bodies(headers.clone()).await.expect("bodies match the roots");
    assert_eq!(bodies.len(), 16);
    assert_eq!(bodies[3].withdrawals.is_some(), modern);
    let receipts = peer_handle.get_receipts(headers).await.expect("receipts match the roots");
    assert_eq!(receipts.len(), 16);
    peer.wait_event_async("eth-serve", |_| true, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_dial_ejs_eth66_mainnet() {
    we_dial(66, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_dial_ejs_eth67_mainnet() {
    we_dial(67, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_dial_ejs_eth68_mainnet() {
    we_dial(68, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_dial_ejs_eth68_modern() {
    we_dial(68, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_dial_ejs_eth66_modern() {
    we_dial(66, true).await;
}

/// ethereumjs dials us with `--requests --exit-when-done` and fetches headers, bodies and
/// receipts from our in-memory chain, checking numbers, links and the genesis.
async fn ejs_dials_us(version: u32, modern: bool) {
    let key = NodeKey::generate();
    let mut listener =
        RlpxListener::bind("127.0.0.1:0".parse().unwrap(), key.clone(), rlpx_config()).await.unwrap();
    let our_enode = Enode::new(key.peer_id(), listener.local_addr());
    let chain = if modern {
        MemoryChain::builder().genesis(modern_genesis()).chain_id(1337).blocks(24).build()
    } else {
        MemoryChain::builder().blocks(24).build()
    };
    let config = if modern { modern_config(&chain) } else { eth_config(&chain) };
    let v = version.to_string();
    let enode = our_enode.to_string();
    let mut args = vec!["--no-discv4", "--eth", &v, "--dial", &enode, "--requests", "--exit-when-done"];
    if modern {
        args.extend(["--chain", "modern"]);
    }
    let peer = EjsPeer::spawn(&args);
    let session =
        tokio::time::timeout(WAIT, listener.accept()).await.expect("inbound in time").unwrap().unwrap();
    let eth = EthSession::handshake(session, config).await.expect("Status handshake");
    assert_eq!(eth.version().as_u8() as u32, version);
    let (_handle, service, _events) = eth.into_peer(Arc::new(chain));
    tokio::spawn(service.run());
    let done = peer.wait_event_async("requests-done", |_| true, WAIT).await;
    assert_eq!(done["ok"], true, "ethereumjs validated our answers: {done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejs_dials_us_eth66() {
    ejs_dials_us(66, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejs_dials_us_eth67() {
    ejs_dials_us(67, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejs_dials_us_eth68() {
    ejs_dials_us(68, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejs_dials_us_eth68_modern() {
    ejs_dials_us(68, true).await;
}

/// ethereumjs sends a wrong Status field; our handshake refuses it with the typed error and
/// the peer sees Disconnect 0x10 (subprotocol error).
async fn wrong_status(args: &[&str], check: fn(&EthError) -> bool) {
    let peer = EjsPeer::spawn(&[&["--no-discv4", "--eth", "68"], args].concat());
    let chain = MemoryChain::builder().blocks(0).build();
    let session = dial(&peer.enode(), &NodeKey::generate(), &rlpx_config()).await.expect("dial ethereumjs");
    let err = EthSession::handshake(session, eth_config(&chain)).await.unwrap_err();
    assert!(check(&err), "{err}");
    let removed = peer.wait_event_async("peer-removed", |_| true, WAIT).await;
    assert_eq!(removed["reason"], 0x10, "{removed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejs_wrong_network_id_is_rejected() {
    wrong_status(&["--network-id", "5"], |e| {
        matches!(e, EthError::Status(StatusError::NetworkIdMismatch { expected: 1, got: 5 }))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejs_wrong_genesis_is_rejected() {
    let wrong = format!("0x{}", "11".repeat(32));
    let check: fn(&EthError) -> bool = |e| matches!(e, EthError::Status(StatusError::GenesisMismatch { .. }));
    wrong_status(&["--status-genesis", &wrong], check).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejs_wrong_fork_hash_is_rejected() {
    wrong_status(
        &["--fork-hash", "deadbeef"],
        |e| matches!(e, EthError::Status(StatusError::ForkId(f)) if f.should_ban()),
    )
    .await;
}

/// ethereumjs `--announce`: NewBlockHashes, Transactions (a signed legacy tx) and
/// NewPooledTransactionHashes in the version's shape arrive as our announcement events.
async fn ejs_announces(version: u32) {
    let v = version.to_string();
    let peer = EjsPeer::spawn(&["--no-discv4", "--eth", &v, "--announce"]);
    let chain = MemoryChain::builder().blocks(0).build();
    let session = dial(&peer.enode(), &NodeKey::generate(), &rlpx_config()).await.expect("dial ethereumjs");
    let eth = EthSession::handshake(session, eth_config(&chain)).await.expect("Status handshake");
    let (_handle, service, mut events) = eth.into_peer(Arc::new(chain));
    tokio::spawn(service.run());
    let (mut hashes, mut txs, mut pooled) = (None, None, None);
    tokio::time::timeout(WAIT, async {
        while hashes.is_none() || txs.is_none() || pooled.is_none() {
            match events.recv().await.expect("session open") {
                EthEvent::Announcement(EthMessage::NewBlockHashes(h)) => hashes = Some(h),
                EthEvent::Announcement(EthMessage::Transactions(t)) => txs = Some(t),
                EthEvent::Announcement(m @ EthMessage::NewPooledTransactionHashes66(_))
                | EthEvent::Announcement(m @ EthMessage::NewPooledTransactionHashes68(_)) => pooled = Some(m),
                other => panic!("unexpected event {other:?}"),
            }
        }
    })
    .await
    .expect("three announcements in time");
    let hashes = hashes.unwrap();
    assert_eq!(hashes.len(), 1);
    assert_eq!(hashes[0].number, 32, "its head");
    let txs = txs.unwrap();
    assert_eq!(txs.len(), 1);
    let tx_hash = *txs[0].tx_hash();
    match pooled.unwrap() {
        EthMessage::NewPooledTransactionHashes68(a) => {
            assert_eq!(version, 68);
            assert_eq!((a.types.as_ref(), a.hashes.as_slice()), (&[0u8][..], &[tx_hash][..]));
            // The announced size is the transaction's network encoding, the one it sent.
            let size = alloy_eips::eip2718::Encodable2718::encode_2718_len(&txs[0]);
            assert_eq!(a.sizes, [size as u32]);
        }
        EthMessage::NewPooledTransactionHashes66(h) => {
            assert!(version < 68);
            assert_eq!(h, [tx_hash]);
        }
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejs_announcements_eth67() {
    ejs_announces(67).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejs_announcements_eth68() {
    ejs_announces(68).await;
}
