//! Node records from the network or a user (EIP-778): the text form and the RLP form. Never
//! panic; whatever decodes re-encodes to a record that decodes to the same thing, and reading
//! its `eth` entry or turning it into a candidate never panics either.
#![no_main]

use ethp2p::{discovery::eth_entry_of, record::{decode_enr, parse_enr}, Candidate};
use ethp2p::discovery::CandidateSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(enr) = decode_enr(data) {
        let again = decode_enr(&alloy_rlp::encode(&enr)).expect("a decoded record re-encodes");
        assert_eq!(again, enr);
        let _ = eth_entry_of(&enr);
        let _ = Candidate::from_enr(&enr, CandidateSource::Discv5);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(enr) = parse_enr(text) {
            assert_eq!(parse_enr(&enr.to_base64()).expect("our text form parses"), enr);
        }
    }
});
