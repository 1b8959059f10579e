//! `PoolState` fed a sequence of events (candidates, sessions, dial failures, inbound
//! connections, responses, bans, time): never more sessions than `max_peers` or than the
//! subnet limit in one /24, and no dial to a banned or connected peer
//! (`ethp2p::test_utils::stateful::pool_sequence`, also run by proptest in `cargo test`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ethp2p::test_utils::stateful::pool_sequence(data);
});
