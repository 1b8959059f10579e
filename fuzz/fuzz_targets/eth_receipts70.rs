//! eth/70's partial receipt lists (EIP-7975): a run of `Receipts` payloads, each behind a
//! 2-byte length, answers one request for two blocks of a small chain, through the decoder
//! and the `ReceiptsAssembly` the session uses. Nothing panics; the held partial list never
//! outgrows the block's gas; a completed request holds only the chain's own lists.
#![no_main]

use std::sync::OnceLock;

use ethp2p::eth::{
    id, Assembled, ChainReader, EthMessage, EthVersion, MemoryChain, ReceiptsAssembly, MIN_TX_GAS,
};
use libfuzzer_sys::fuzz_target;

fn chain() -> &'static MemoryChain {
    static CHAIN: OnceLock<MemoryChain> = OnceLock::new();
    CHAIN.get_or_init(|| MemoryChain::builder().blocks(2).transactions_per_block(2).build())
}

fuzz_target!(|data: &[u8]| {
    let chain = chain();
    let headers: Vec<_> = (1..=2).map(|n| chain.header(n).unwrap().clone()).collect();
    let hashes: Vec<_> = (1..=2).map(|n| chain.hash(n).unwrap()).collect();
    let mut assembly = ReceiptsAssembly::new(headers.clone(), hashes.clone());
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (payload, tail) = rest[2..].split_at(len);
        rest = tail;
        let Ok(EthMessage::Receipts70(response)) =
            EthMessage::decode(EthVersion::Eth70, id::RECEIPTS, payload)
        else {
            continue;
        };
        let request = assembly.request(response.request_id);
        assert!(request.hashes.len() <= 2);
        match assembly.on_response(response) {
            Ok(Assembled::Continue) => {
                let block = &headers[2 - assembly.request(0).hashes.len()];
                let held = assembly.request(0).first_block_receipt_index;
                assert!(held > 0 && held <= block.gas_used / MIN_TX_GAS);
            }
            Ok(_) => {
                // Lists that hash to the roots are the chain's own (short of a keccak collision).
                for (list, hash) in assembly.into_receipts().iter().zip(&hashes) {
                    assert_eq!(Some(list), chain.receipts(hash).as_ref());
                }
                return;
            }
            Err(_) => return,
        }
    }
});
