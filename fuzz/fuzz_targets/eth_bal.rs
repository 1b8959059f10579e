//! eth/71's `BlockAccessLists` (EIP-8159): a payload answering a request for the block
//! access lists of three blocks of a small chain, through the decoder and the check the
//! session runs. Nothing panics; what decodes re-encodes to the same bytes (entries are kept
//! as received); each entry is the empty string or one RLP list; a checked answer holds only
//! the chain's own lists (short of a keccak collision), and each decodes as EIP-7928 account
//! changes or is refused without a panic.
#![no_main]

use std::sync::OnceLock;

use alloy_rlp::Encodable;
use ethp2p::eth::{
    decode_block_access_list, id, validate_block_access_lists, ChainReader, EthMessage, EthVersion,
    MemoryChain,
};
use libfuzzer_sys::fuzz_target;

fn chain() -> &'static MemoryChain {
    static CHAIN: OnceLock<MemoryChain> = OnceLock::new();
    CHAIN.get_or_init(|| {
        let mut genesis = ethp2p::eth::mainnet_genesis_header();
        genesis.base_fee_per_gas = Some(7);
        genesis.withdrawals_root = Some(alloy_consensus::EMPTY_ROOT_HASH);
        genesis.blob_gas_used = Some(0);
        genesis.excess_blob_gas = Some(0);
        genesis.parent_beacon_block_root = Some(Default::default());
        genesis.requests_hash = Some(Default::default());
        MemoryChain::builder()
            .genesis(genesis)
            .blocks(3)
            .transactions_per_block(2)
            .block_access_lists(true)
            .build()
    })
}

fuzz_target!(|data: &[u8]| {
    let chain = chain();
    let Ok(EthMessage::BlockAccessLists(response)) =
        EthMessage::decode(EthVersion::Eth71, id::BLOCK_ACCESS_LISTS, data)
    else {
        return;
    };
    let mut again = Vec::new();
    response.encode(&mut again);
    assert_eq!(again, data, "entries are kept as received");
    assert!(response.lists.iter().flatten().all(|raw| raw[0] >= 0xc0));
    let headers: Vec<_> = (1..=3).map(|n| chain.header(n).unwrap().clone()).collect();
    if validate_block_access_lists(&headers, &response.lists).is_ok() {
        for (n, list) in (1..=3).zip(&response.lists) {
            if let Some(raw) = list {
                assert_eq!(Some(raw), chain.block_access_list(&chain.hash(n).unwrap()).as_ref());
            }
        }
    }
    for raw in response.lists.iter().flatten() {
        let _ = decode_block_access_list(raw);
    }
});
