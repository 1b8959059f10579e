//! Custom chain files (`--chain <file>`, JSON): never panic; a file that parses prints back
//! (`to_json`) to a file that parses to the same chain, and the fork id machinery on the
//! parsed schedule (hashes at every fork boundary, validation of a remote id) never panics.
#![no_main]

use ethp2p::{ChainSpec, ForkId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(spec) = ChainSpec::from_json(text, "fuzz") else { return };
    let printed = spec.to_json();
    assert_eq!(ChainSpec::from_json(&printed, "other").ok().as_ref(), Some(&spec), "{printed}");
    let _ = spec.genesis_fork_id();
    let heads = spec.fork_blocks().chain(spec.fork_timestamps()).flat_map(|n| [n.saturating_sub(1), n]);
    for head in heads.take(64) {
        let filter = spec.fork_filter(head, head);
        let id = filter.current();
        assert_eq!(filter.validate(id), Ok(()), "our own fork id validates");
        let _ = filter.validate(ForkId { hash: id.hash, next: head });
        let _ = spec.fork_id_at_time(head);
    }
});
