//! Every eth message decoder, for every version: the first byte picks the version and the
//! message id, the rest is the payload. Decoding never panics, and whatever decodes
//! re-encodes to a payload that decodes to the same message. What the session does next
//! with a decoded message runs too: `Status` validation, and for `BlockHeaders` the hashing
//! decoder (which must agree with the plain one) and the response checks.
#![no_main]

use ethp2p::{eth::{
        decode_block_headers_hashed, id, validate_block_range, validate_headers_with_hashes, validate_status,
        EthMessage, EthVersion, GetBlockHeaders, StatusInfo,
    }, ChainSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else { return };
    // Three bits pick the version (in `EthVersion::ALL` order, 72 down to 66), five the id.
    let version = EthVersion::ALL[usize::from(selector >> 5) % EthVersion::ALL.len()];
    // 0x00..=0x16 covers every id of every version, plus a few undefined ones.
    let id = (selector & 0x1f) % 0x17;
    let decoded = EthMessage::decode(version, id, payload);
    if id == id::BLOCK_HEADERS && version.has_message(id) {
        // The hashing decoder accepts exactly what the plain one accepts, with the same headers.
        let hashed = decode_block_headers_hashed(payload);
        match (&decoded, &hashed) {
            (Ok(EthMessage::BlockHeaders(plain)), Ok((pair, hashes))) => {
                assert_eq!(plain, pair);
                assert_eq!(hashes.len(), pair.message.len());
                if let Some(first) = pair.message.first() {
                    let request = GetBlockHeaders {
                        origin: first.number.into(),
                        count: pair.message.len() as u64,
                        skip: 0,
                        reverse: false,
                    };
                    let _ = validate_headers_with_hashes(&request, &pair.message, hashes);
                }
            }
            (Err(_), Err(_)) => {}
            (plain, hashed) => panic!("decoders disagree: {plain:?} vs {hashed:?}"),
        }
    }
    let Ok(msg) = decoded else { return };
    let again = EthMessage::decode(version, id, &msg.encoded()).expect("re-encoded message decodes");
    assert_eq!(again, msg);
    match &msg {
        EthMessage::Status(status) => {
            let spec = ChainSpec::mainnet();
            let ours = StatusInfo {
                network_id: status.network_id,
                genesis: status.genesis,
                fork_id: spec.genesis_fork_id(),
                total_difficulty: Default::default(),
                earliest: 0,
                latest: 0,
                latest_hash: Default::default(),
            };
            let _ = validate_status(version, &ours, &spec.fork_filter(0, 0), status);
        }
        EthMessage::BlockRangeUpdate(range) => {
            let _ = validate_block_range(range);
        }
        _ => {}
    }
});
