//! The ENR `eth` entry (EIP-868/EIP-2124 `[[fork_hash, fork_next], ...]`) and the bare fork id
//! RLP that a `Status` message carries: never panic, and whatever decodes re-encodes to bytes
//! that decode to the same fork id.
#![no_main]

use alloy_rlp::Decodable;
use ethp2p::{record::{decode_eth_entry, encode_eth_entry}, ForkId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(id) = decode_eth_entry(data) {
        assert_eq!(decode_eth_entry(&encode_eth_entry(id)), Ok(id));
    }
    let mut buf = data;
    if let Ok(id) = ForkId::decode(&mut buf) {
        assert_eq!(ForkId::decode(&mut alloy_rlp::encode(id).as_slice()), Ok(id));
    }
});
