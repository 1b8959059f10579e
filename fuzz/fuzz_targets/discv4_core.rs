//! The discv4 core fed a sequence of datagrams from eight remotes and clock advances: the
//! table stays within its buckets, NEIGHBOURS go only to endpoints whose PONG proved them,
//! and every datagram sent fits the packet limit
//! (`ethp2p::test_utils::stateful::discv4_sequence`, also run by proptest in `cargo test`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ethp2p::test_utils::stateful::discv4_sequence(data);
});
