//! Bootnode text (`enode://` URLs, `enr:` records, comma-separated `--bootnodes` lists) and
//! chain files: never panic, and every bootnode that parses prints back to the same bootnode.
#![no_main]

use ethp2p::{record::parse_bootnode_list, Bootnode, ChainSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(node) = text.parse::<Bootnode>() {
        assert_eq!(node.to_string().parse::<Bootnode>().as_ref(), Ok(&node));
    }
    let _ = parse_bootnode_list(text);
    let _ = ChainSpec::from_json(text, "fuzz");
});
