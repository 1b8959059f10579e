//! NAT-PMP (RFC 6886) responses from a gateway: never panic; a decoded mapping's fields
//! come from the bytes given.
#![no_main]

use ethp2p::nat::{decode_pmp_response, PmpResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(PmpResponse::Mapping { internal_port, .. }) = decode_pmp_response(data) {
        assert_eq!(internal_port, u16::from_be_bytes([data[8], data[9]]));
    }
});
