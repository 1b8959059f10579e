//! EIP-1459 TXT entries (root, branch, link, enr leaf) from DNS answers: never panic, and
//! whatever parses prints back to text that parses to the same entry.
#![no_main]

use ethp2p::discovery::dns::{entry::hash_matches, Entry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(entry) = text.parse::<Entry>() {
        let printed = entry.to_string();
        assert_eq!(printed.parse::<Entry>().as_ref(), Ok(&entry));
    }
    // The name check takes any label the server's answer could be matched against.
    let _ = hash_matches(text, text);
});
