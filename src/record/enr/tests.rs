//! Unit tests of `enr.rs`.

use super::*;
use crate::record::{eth_entry_of, Candidate, CandidateSource, EthEntry};
use alloy_primitives::keccak256;
use alloy_rlp::{Encodable, Header};
use base64::Engine as _;

const VECTORS: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors/enr-eip-778.json"));

fn b64(bytes: &[u8]) -> String {
    format!("enr:{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Encodes `[signature, seq, k1, v1, ...]` where each item is already RLP.
fn rlp_list(items: &[Vec<u8>]) -> Vec<u8> {
    let payload: Vec<u8> = items.concat();
    let mut out = Vec::new();
    Header { list: true, payload_length: payload.len() }.encode(&mut out);
    out.extend(payload);
    out
}

fn rlp<T: Encodable + ?Sized>(value: &T) -> Vec<u8> {
    alloy_rlp::encode(value)
}

/// A correctly signed secp256k1 record with the given extra (sorted) pairs.
fn signed(key: &NodeKey, seq: u64, pairs: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let compressed = key.public().serialize();
    let mut content = vec![rlp(&seq)];
    let mut all: Vec<(&str, Vec<u8>)> = pairs.to_vec();
    all.push(("id", rlp(b"v4".as_slice())));
    all.push(("secp256k1", rlp(compressed.as_slice())));
    all.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in all {
        content.push(rlp(k.as_bytes()));
        content.push(v);
    }
    let hash = keccak256(rlp_list(&content));
    let msg = secp256k1::Message::from_digest(hash.0);
    let sig = secp256k1::SECP256K1.sign_ecdsa(&msg, key.secret()).serialize_compact();
    let mut items = vec![rlp(sig.as_slice())];
    items.extend(content);
    rlp_list(&items)
}

fn eip778_key() -> NodeKey {
    NodeKey::from_hex("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291").unwrap()
}

// EIP-778 "Test Vectors": text form, node id, seq and the RLP structure, item by item.
#[test]
fn eip778_vector() {
    let json: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
    let vectors = json["vectors"].as_array().unwrap();
    assert!(!vectors.is_empty());
    for v in vectors {
        let text = v["enr"].as_str().unwrap();
        let enr = parse_enr(text).unwrap();
        assert_eq!(hex::encode(enr.node_id().raw()), v["node_id"].as_str().unwrap());
        assert_eq!(enr.seq(), v["seq"].as_u64().unwrap());
        assert_eq!(enr.id().as_deref(), Some(v["identity_scheme"].as_str().unwrap()));
        assert_eq!(enr.to_base64(), text, "re-encoding gives the same text");
        let key = NodeKey::from_hex(v["private_key"].as_str().unwrap()).unwrap();
        assert_eq!(key.node_id().0, enr.node_id().raw());
        assert_eq!(peer_id_of_enr(&enr).unwrap(), key.peer_id());

        // Walk the RLP list and compare each item with the listed structure.
        let raw = alloy_rlp::encode(&enr);
        let mut buf = raw.as_slice();
        let header = Header::decode(&mut buf).unwrap();
        assert!(header.list);
        let mut items = Vec::new();
        while !buf.is_empty() {
            items.push(Header::decode_bytes(&mut buf, false).unwrap().to_vec());
        }
        let expected: Vec<Vec<u8>> = v["rlp_structure"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let s = s.as_str().unwrap();
                match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    Some(ascii) => ascii.as_bytes().to_vec(),
                    None => hex::decode(s).unwrap(),
                }
            })
            .collect();
        assert_eq!(items, expected);

        // Our signer reproduces the record byte for byte (secp256k1 signing is
        // deterministic, RFC 6979).
        let ours = signed(&key, 1, &[("ip", rlp(&[127u8, 0, 0, 1][..])), ("udp", rlp(&30303u16))]);
        assert_eq!(ours, raw);
        let c = Candidate::from_enr(&enr, CandidateSource::Bootnode).unwrap();
        assert_eq!(c.ip, IpAddr::from([127, 0, 0, 1]));
        assert_eq!((c.udp_port, c.tcp_port), (Some(30303), None));
        assert_eq!(c.eth, EthEntry::Missing);
    }
}

// One test per malformed form, each with its own typed error.
#[test]
fn missing_prefix() {
    let text = b64(&signed(&eip778_key(), 1, &[]));
    assert_eq!(parse_enr(&text[4..]).unwrap_err(), EnrError::MissingPrefix);
    assert_eq!(parse_enr(&format!("enode:{}", &text[4..])).unwrap_err(), EnrError::MissingPrefix);
}

#[test]
fn bad_base64() {
    assert_eq!(parse_enr("enr:abc$def").unwrap_err(), EnrError::BadBase64);
    // Standard (non-URL) alphabet and padding are not the EIP-778 text form.
    assert_eq!(parse_enr("enr:+/+/").unwrap_err(), EnrError::BadBase64);
    assert_eq!(parse_enr("enr:YQ==").unwrap_err(), EnrError::BadBase64);
}

#[test]
fn too_big() {
    let big = signed(&eip778_key(), 1, &[("zz", rlp(&[0u8; 240][..]))]);
    assert!(big.len() > MAX_ENR_SIZE);
    assert_eq!(decode_enr(&big).unwrap_err(), EnrError::TooBig(big.len()));
    assert!(matches!(parse_enr(&b64(&big)).unwrap_err(), EnrError::TooBig(_)));
    // A huge text is refused before it is decoded.
    assert!(matches!(parse_enr(&format!("enr:{}", "A".repeat(100_000))), Err(EnrError::TooBig(_))));
}

#[test]
fn bad_rlp() {
    // Not a list.
    assert!(matches!(decode_enr(&rlp(b"hello".as_slice())), Err(EnrError::BadRlp(_))));
    // Truncated.
    let good = signed(&eip778_key(), 1, &[]);
    assert!(matches!(decode_enr(&good[..good.len() - 3]), Err(EnrError::BadRlp(_))));
    // Empty input.
    assert!(matches!(decode_enr(&[]), Err(EnrError::BadRlp(_))));
}

#[test]
fn missing_seq() {
    let only_sig = rlp_list(&[rlp(&[1u8; 64][..])]);
    assert_eq!(decode_enr(&only_sig).unwrap_err(), EnrError::MissingSeq);
}

#[test]
fn unsorted_keys() {
    let sig = rlp(&[1u8; 64][..]);
    let list = rlp_list(&[
        sig,
        rlp(&1u64),
        rlp(b"udp".as_slice()),
        rlp(&1u16),
        rlp(b"ip".as_slice()),
        rlp(&[1u8, 2, 3, 4][..]),
    ]);
    assert_eq!(decode_enr(&list).unwrap_err(), EnrError::UnsortedKeys);
}

#[test]
fn unsupported_scheme() {
    let list = rlp_list(&[rlp(&[1u8; 64][..]), rlp(&1u64), rlp(b"id".as_slice()), rlp(b"v5".as_slice())]);
    assert_eq!(decode_enr(&list).unwrap_err(), EnrError::UnsupportedScheme);
}

#[test]
fn bad_public_key() {
    // No key at all.
    let list = rlp_list(&[rlp(&[1u8; 64][..]), rlp(&1u64), rlp(b"id".as_slice()), rlp(b"v4".as_slice())]);
    assert_eq!(decode_enr(&list).unwrap_err(), EnrError::BadPublicKey);
    // A key that is not a curve point.
    let list = rlp_list(&[
        rlp(&[1u8; 64][..]),
        rlp(&1u64),
        rlp(b"id".as_slice()),
        rlp(b"v4".as_slice()),
        rlp(b"secp256k1".as_slice()),
        rlp(&[7u8; 33][..]),
    ]);
    assert_eq!(decode_enr(&list).unwrap_err(), EnrError::BadPublicKey);
}

#[test]
fn bad_signature() {
    let mut bytes = signed(&eip778_key(), 1, &[]);
    // The 64-byte signature follows the list header (`f8 len`) and its own (`b8 40`).
    assert_eq!(&bytes[2..4], &[0xb8, 0x40]);
    bytes[4] ^= 1;
    assert_eq!(decode_enr(&bytes).unwrap_err(), EnrError::BadSignature);
    // A valid signature over different content (seq changed after signing).
    let other = signed(&eip778_key(), 2, &[]);
    let good = signed(&eip778_key(), 1, &[]);
    let mut spliced = good.clone();
    spliced[4..4 + 64].copy_from_slice(&other[4..4 + 64]);
    assert_eq!(decode_enr(&spliced).unwrap_err(), EnrError::BadSignature);
}

#[test]
fn trailing_bytes() {
    let mut bytes = signed(&eip778_key(), 1, &[]);
    bytes.extend_from_slice(&[0, 0]);
    assert_eq!(decode_enr(&bytes).unwrap_err(), EnrError::TrailingBytes(2));
}

#[test]
fn no_address_candidate() {
    let enr = decode_enr(&signed(&eip778_key(), 1, &[])).unwrap();
    assert_eq!(Candidate::from_enr(&enr, CandidateSource::Discv5).unwrap_err(), EnrError::NoAddress);
}

#[test]
fn not_secp256k1_candidate() {
    let key = enr::CombinedKey::generate_ed25519();
    let enr = Enr::builder().ip4([127, 0, 0, 1].into()).udp4(1).build(&key).unwrap();
    assert_eq!(Candidate::from_enr(&enr, CandidateSource::Discv5).unwrap_err(), EnrError::NotSecp256k1);
}

fn fork(next: u64) -> ForkId {
    ForkId { hash: [0xfc, 0x64, 0xec, 0x04].into(), next }
}

#[test]
fn eth_entry_forms() {
    let key = eip778_key();
    // EIP-868 form, with a forward-compatible extra item after the fork id.
    let mut value = Vec::new();
    let extra = rlp(&7u8);
    Header { list: true, payload_length: fork(1).length() + extra.len() }.encode(&mut value);
    fork(1).encode(&mut value);
    value.extend(&extra);
    let enr = decode_enr(&signed(&key, 1, &[("eth", value)])).unwrap();
    assert_eq!(eth_entry_of(&enr), EthEntry::ForkId(fork(1)));
    // Missing.
    let enr = decode_enr(&signed(&key, 1, &[])).unwrap();
    assert_eq!(eth_entry_of(&enr), EthEntry::Missing);
    // A bare fork id without the outer list is malformed (geth rejects it too).
    let mut bare = Vec::new();
    fork(1).encode(&mut bare);
    let enr = decode_enr(&signed(&key, 1, &[("eth", bare)])).unwrap();
    assert_eq!(eth_entry_of(&enr), EthEntry::Malformed);
    // A string instead of a list.
    let enr = decode_enr(&signed(&key, 1, &[("eth", rlp(b"x".as_slice()))])).unwrap();
    assert_eq!(eth_entry_of(&enr), EthEntry::Malformed);
    // Round trip of our encoder.
    assert_eq!(decode_eth_entry(&encode_eth_entry(fork(9))).unwrap(), fork(9));
}

#[test]
fn local_enr_seq_bumps_only_on_change() {
    let key = NodeKey::generate();
    let local = LocalEnr::builder(&key)
        .udp_socket(SocketAddr::from(([127, 0, 0, 1], 30303)))
        .tcp4(30303)
        .fork_id(fork(0))
        .build()
        .unwrap();
    assert_eq!(local.seq(), 1);
    assert_eq!(local.node_id(), key.node_id());
    assert_eq!(local.record().node_id().raw(), key.node_id().0);
    assert_eq!(eth_entry_of(&local.record()), EthEntry::ForkId(fork(0)));

    // Same values: nothing changes.
    assert!(!local.set_fork_id(Some(fork(0))).unwrap());
    assert!(!local.set_endpoint([127, 0, 0, 1].into(), 30303, Some(30303)).unwrap());
    assert_eq!(local.seq(), 1);

    // Fork change: one bump.
    assert!(local.set_fork_id(Some(fork(5))).unwrap());
    assert_eq!(local.seq(), 2);
    assert_eq!(local.content().fork_id, Some(fork(5)));

    // Address + both ports changed together: still one bump.
    assert!(local.set_endpoint([10, 0, 0, 1].into(), 1000, Some(2000)).unwrap());
    assert_eq!(local.seq(), 3);
    let r = local.record();
    assert!(r.verify());
    assert_eq!((r.ip4(), r.udp4(), r.tcp4()), (Some([10, 0, 0, 1].into()), Some(1000), Some(2000)));

    // IPv6 added, TCP removed, fork removed.
    assert!(local
        .update(|c| {
            c.set_endpoint("::1".parse().unwrap(), 3000, None);
            c.tcp4 = None;
            c.fork_id = None;
        })
        .unwrap());
    assert_eq!(local.seq(), 4);
    let r = local.record();
    assert_eq!((r.ip6(), r.udp6(), r.tcp4()), (Some("::1".parse().unwrap()), Some(3000), None));
    assert_eq!(eth_entry_of(&r), EthEntry::Missing);

    // The text form parses back through our own strict parser.
    let parsed = parse_enr(&r.to_base64()).unwrap();
    assert_eq!(parsed, r);
    // Clones share the record.
    let clone = local.clone();
    clone.set_fork_id(Some(fork(1))).unwrap();
    assert_eq!(local.seq(), 5);
}

#[test]
fn local_enr_keeps_foreign_entries_and_resumes_seq() {
    let key = NodeKey::generate();
    let local = LocalEnr::builder(&key).seq(41).udp4(1).build().unwrap();
    assert_eq!(local.seq(), 41);
    // Another protocol's entry, added through the shared cell as discv5 would.
    {
        let cell = local.cell();
        let mut r = cell.write();
        r.insert("snap", &Vec::<u8>::new(), &key.to_combined_key()).unwrap();
    }
    assert_eq!(local.seq(), 42);
    local.set_fork_id(Some(fork(3))).unwrap();
    assert_eq!(local.seq(), 43);
    assert!(local.record().get_raw_rlp("snap").is_some());
}

#[test]
fn local_enr_too_big_is_an_error_and_keeps_the_record() {
    let key = NodeKey::generate();
    let local = LocalEnr::builder(&key).udp_socket("127.0.0.1:1".parse().unwrap()).build().unwrap();
    // Another protocol's large entry brings the record near the 300-byte limit.
    local.cell().write().insert("big", &vec![0u8; 150], &key.to_combined_key()).unwrap();
    let before = local.record();
    let err = local
        .update(|c| {
            c.set_endpoint("2001:db8::1".parse().unwrap(), 30303, Some(30303));
            c.fork_id = Some(fork(1));
        })
        .unwrap_err();
    assert!(matches!(err, EnrError::Sign(_)), "{err}");
    assert_eq!(local.record(), before, "a failed update leaves the record untouched");
}

fn arb_content() -> impl proptest::strategy::Strategy<Value = EnrContent> {
    use proptest::prelude::*;
    let port = proptest::option::of(1u16..4);
    (
        proptest::option::of((0u8..3).prop_map(|b| Ipv4Addr::new(10, 0, 0, b))),
        port.clone(),
        port.clone(),
        proptest::option::of((0u16..3).prop_map(|s| Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, s))),
        port.clone(),
        port,
        proptest::option::of((0u64..3).prop_map(fork)),
    )
        .prop_map(|(ip4, tcp4, udp4, ip6, tcp6, udp6, fork_id)| EnrContent {
            ip4,
            tcp4,
            udp4,
            ip6,
            tcp6,
            udp6,
            fork_id,
        })
}

proptest::proptest! {
    // Any sequence of updates: the record always holds exactly the content asked for,
    // verifies, parses back, and its seq grew by one per update that changed something.
    #[test]
    fn updates_bump_seq_once_per_change(steps in proptest::collection::vec(arb_content(), 1..8)) {
        let key = eip778_key();
        let local = LocalEnr::builder(&key).build().unwrap();
        let mut expected_seq = 1;
        let mut current = EnrContent::default();
        for step in steps {
            let changed = local.update(|c| *c = step.clone()).unwrap();
            proptest::prop_assert_eq!(changed, step != current);
            expected_seq += u64::from(changed);
            current = step;
            let record = local.record();
            proptest::prop_assert_eq!(record.seq(), expected_seq);
            proptest::prop_assert_eq!(EnrContent::of(&record), current.clone());
            proptest::prop_assert!(record.verify());
            proptest::prop_assert_eq!(parse_enr(&record.to_base64()).unwrap(), record);
        }
    }
}

#[test]
fn share_with_moves_the_record() {
    let key = NodeKey::generate();
    let local = LocalEnr::builder(&key).udp4(1).build().unwrap();
    let theirs = Arc::new(parking_lot::RwLock::new(local.record()));
    local.set_fork_id(Some(fork(1))).unwrap(); // moved on since the copy
    local.share_with(theirs.clone());
    assert_eq!(theirs.read().seq(), 2);
    local.set_fork_id(Some(fork(2))).unwrap();
    assert_eq!(theirs.read().seq(), 3);
    assert_eq!(EnrContent::of(&theirs.read()).fork_id, Some(fork(2)));
}

#[test]
fn a_saved_record_is_continued_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enr");
    let key = NodeKey::generate();
    let at = |ip: [u8; 4]| {
        let mut b = LocalEnr::builder(&key);
        b.ip4(ip.into()).udp4(30301);
        b
    };
    // First start: a clock-based sequence, far above a counter.
    let first = at([127, 0, 0, 5]).build_continuing(&path).unwrap();
    assert!(first.seq() > 1_600_000_000_000, "Unix milliseconds: {}", first.seq());
    first.save(&path).unwrap();
    // The same record: the same seq and the same signed bytes.
    let again = at([127, 0, 0, 5]).build_continuing(&path).unwrap();
    assert_eq!(again.record().to_base64(), first.record().to_base64());
    // A new address: seq + 1, whatever was saved.
    let moved = at([127, 0, 0, 6]).build_continuing(&path).unwrap();
    assert_eq!(moved.seq(), first.seq() + 1);
    moved.save(&path).unwrap();
    assert_eq!(parse_enr(std::fs::read_to_string(&path).unwrap().trim()).unwrap().seq(), moved.seq());
    // An unreadable file is moved aside and a new sequence starts from the clock, higher than
    // any record signed in an earlier millisecond (the restart here follows within the same
    // millisecond as `moved`, which a real restart never does: let the clock move on first).
    std::thread::sleep(std::time::Duration::from_millis(5));
    std::fs::write(&path, "enr:garbage").unwrap();
    let fresh = at([127, 0, 0, 6]).build_continuing(&path).unwrap();
    assert!(fresh.seq() > moved.seq());
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("enr.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "the bad file is kept aside");
    // Another key's record is not continued.
    let other = NodeKey::generate();
    let mut b = LocalEnr::builder(&other);
    b.ip4([127, 0, 0, 6].into()).udp4(30301);
    assert!(b.build_continuing(&path.with_file_name("missing")).unwrap().seq() > moved.seq());
}
