//! Unit tests of `proto.rs`.

use super::*;
use crate::NodeKey;
use proptest::prelude::*;

const VECTORS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors/eip-8.json"));

fn vectors() -> serde_json::Value {
    serde_json::from_str(VECTORS).unwrap()
}

fn vector(name: &str) -> Vec<u8> {
    let v = vectors();
    let packets = v["discv4"]["packets"].as_array().unwrap();
    let p = packets.iter().find(|p| p["name"] == name).unwrap();
    hex::decode(p["packet"].as_str().unwrap()).unwrap()
}

fn vector_key() -> NodeKey {
    NodeKey::from_hex(vectors()["discv4"]["node_key"].as_str().unwrap()).unwrap()
}

fn ep(ip: &str, udp: u16, tcp: u16) -> Endpoint {
    Endpoint { ip: ip.parse().unwrap(), udp_port: udp, tcp_port: tcp }
}

/// EIP-8 "RLPx Discovery Protocol" test vectors: every one decodes, is signed by the
/// vector key, and carries the values go-ethereum's v4wire_test.go expects.
#[test]
fn eip8_vectors() {
    let v = vectors();
    let packets = v["discv4"]["packets"].as_array().unwrap();
    assert_eq!(packets.len(), 5);
    let signer = vector_key().peer_id();
    for p in packets {
        let bytes = hex::decode(p["packet"].as_str().unwrap()).unwrap();
        let decoded = decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p["name"]));
        assert_eq!(decoded.peer_id, signer, "{}", p["name"]);
        assert_eq!(decoded.hash.as_slice(), &bytes[..32]);
    }

    let expiration = 1136239445;
    match decode(&vector("ping_v4_extra_elements")).unwrap().message {
        Message::Ping(p) => assert_eq!(
            p,
            Ping {
                from: ep("127.0.0.1", 3322, 5544),
                to: ep("::1", 2222, 3333),
                expiration,
                enr_seq: Some(1)
            }
        ),
        other => panic!("{other:?}"),
    }
    match decode(&vector("ping_v555_extra_elements_and_data")).unwrap().message {
        Message::Ping(p) => {
            assert_eq!(p.from, ep("2001:db8:3c4d:15::abcd:ef12", 3322, 5544));
            assert_eq!(p.to, ep("2001:db8:85a3:8d3:1319:8a2e:370:7348", 2222, 33338));
            assert_eq!(p.expiration, expiration);
            // The fifth element is the list [1, 2, 3, 4, 5]: EIP-8 extra data, not a seq.
            assert_eq!(p.enr_seq, None);
        }
        other => panic!("{other:?}"),
    }
    match decode(&vector("pong_extra_elements_and_data")).unwrap().message {
        Message::Pong(p) => {
            assert_eq!(p.to, ep("2001:db8:85a3:8d3:1319:8a2e:370:7348", 2222, 33338));
            assert_eq!(
                p.ping_hash.to_string(),
                "0xfbc914b16819237dcd8801d7e53f69e9719adecb3cc0e790c57e91ca4461c954"
            );
            assert_eq!(p.expiration, expiration);
        }
        other => panic!("{other:?}"),
    }
    match decode(&vector("findnode_extra_elements_and_data")).unwrap().message {
        Message::FindNode(f) => {
            assert_eq!(hex::encode(f.target), "ca634cae0d49acb401d8a4c6b6fe8c55b70d115bf400769cc1400f3258cd31387574077f301b421bc84df7266c44e9e6d569fc56be00812904767bf5ccd1fc7f");
            assert_eq!(f.expiration, expiration);
        }
        other => panic!("{other:?}"),
    }
    // The neighbours expectations come from the supplementary go-ethereum decodings.
    let supp = &v["supplementary_go_ethereum_expectations"]["discv4_decoded"];
    let expected = supp.as_array().unwrap().iter().find(|e| e["expected"]["type"] == "Neighbors").unwrap();
    match decode(&vector("neighbours_extra_elements_and_data")).unwrap().message {
        Message::Neighbours(n) => {
            let want = expected["expected"]["nodes"].as_array().unwrap();
            assert_eq!(n.nodes.len(), want.len());
            for (got, want) in n.nodes.iter().zip(want) {
                assert_eq!(hex::encode(got.id), want["id"].as_str().unwrap());
                assert_eq!(got.endpoint.ip, want["ip"].as_str().unwrap().parse::<IpAddr>().unwrap());
                assert_eq!(got.endpoint.udp_port as u64, want["udp"].as_u64().unwrap());
                assert_eq!(got.endpoint.tcp_port as u64, want["tcp"].as_u64().unwrap());
            }
            assert_eq!(n.expiration, expiration);
        }
        other => panic!("{other:?}"),
    }
    // go-ethereum's extra ping without extra fields (same key): no enr-seq.
    let extra = &supp[0];
    let bytes = hex::decode(extra["packet"].as_str().unwrap()).unwrap();
    let decoded = decode(&bytes).unwrap();
    assert_eq!(decoded.peer_id, signer);
    match decoded.message {
        Message::Ping(p) => {
            assert_eq!(p.enr_seq, None);
            assert_eq!(p.from, ep("127.0.0.1", 3322, 5544));
            assert_eq!(p.to, ep("::1", 2222, 3333));
        }
        other => panic!("{other:?}"),
    }
}

fn all_messages() -> Vec<Message> {
    let key = NodeKey::from_bytes(&[7; 32]).unwrap();
    let enr = Enr::builder().ip4(Ipv4Addr::LOCALHOST).udp4(30303).build(&key.to_combined_key()).unwrap();
    vec![
        Message::Ping(Ping {
            from: ep("1.2.3.4", 1, 2),
            to: ep("::1", 3, 0),
            expiration: 99,
            enr_seq: Some(5),
        }),
        Message::Ping(Ping {
            from: ep("1.2.3.4", 1, 2),
            to: ep("5.6.7.8", 3, 4),
            expiration: 99,
            enr_seq: None,
        }),
        Message::Pong(Pong {
            to: ep("9.9.9.9", 30303, 30303),
            ping_hash: B256::repeat_byte(3),
            expiration: u64::MAX,
            enr_seq: Some(0),
        }),
        Message::FindNode(FindNode { target: key.peer_id(), expiration: 1 }),
        Message::Neighbours(Neighbours {
            nodes: vec![NodeRecord { endpoint: ep("10.0.0.1", 1, 2), id: key.peer_id() }],
            expiration: 3,
        }),
        Message::Neighbours(Neighbours { nodes: vec![], expiration: 3 }),
        Message::EnrRequest(EnrRequest { expiration: 1234 }),
        Message::EnrResponse(EnrResponse { request_hash: B256::repeat_byte(9), enr }),
    ]
}

#[test]
fn roundtrip_every_type() {
    let key = NodeKey::generate();
    for message in all_messages() {
        let (bytes, hash) = encode(&message, key.secret());
        assert_eq!(bytes.len(), message.packet_len());
        let packet = decode(&bytes).unwrap();
        assert_eq!(packet.message, message);
        assert_eq!(packet.peer_id, key.peer_id());
        assert_eq!(packet.hash, hash);
    }
}

fn resign(packet_type: u8, body: &[u8]) -> Vec<u8> {
    // Frame an arbitrary body with a valid hash and signature, to test body parsing.
    let key = NodeKey::from_bytes(&[1; 32]).unwrap();
    let mut out = vec![0u8; HEADER_LEN];
    out.push(packet_type);
    out.extend_from_slice(body);
    let signed = keccak256(&out[HEADER_LEN..]);
    let (rid, compact) = SECP256K1
        .sign_ecdsa_recoverable(&SecpMessage::from_digest(signed.0), key.secret())
        .serialize_compact();
    out[32..96].copy_from_slice(&compact);
    out[96] = i32::from(rid) as u8;
    let hash = keccak256(&out[32..]);
    out[..32].copy_from_slice(hash.as_slice());
    out
}

#[test]
fn too_short_and_too_large() {
    assert_eq!(decode(&[0u8; 97]), Err(PacketError::TooShort(97)));
    assert_eq!(decode(&[]), Err(PacketError::TooShort(0)));
    let big = resign(0x05, &vec![0u8; 1200]);
    assert_eq!(decode(&big), Err(PacketError::TooLarge(1298)));
    assert!(PacketError::TooLarge(1).is_foreign());
}

#[test]
fn bad_hash() {
    let (mut bytes, _) = encode(&all_messages()[0], NodeKey::generate().secret());
    bytes[0] ^= 1;
    assert_eq!(decode(&bytes), Err(PacketError::HashMismatch));
    assert!(PacketError::HashMismatch.is_foreign());
}

#[test]
fn bad_signature() {
    let (bytes, _) = encode(&all_messages()[0], NodeKey::generate().secret());
    // A recovery id of 7 is invalid; recompute the outer hash so only the signature is bad.
    let mut tampered = bytes.clone();
    tampered[96] = 7;
    let hash = keccak256(&tampered[32..]);
    tampered[..32].copy_from_slice(hash.as_slice());
    assert_eq!(decode(&tampered), Err(PacketError::BadSignature));
    // r = 0 is not a valid signature.
    let mut tampered = bytes.clone();
    tampered[32..64].fill(0);
    let hash = keccak256(&tampered[32..]);
    tampered[..32].copy_from_slice(hash.as_slice());
    assert_eq!(decode(&tampered), Err(PacketError::BadSignature));
    assert!(!PacketError::BadSignature.is_foreign());
}

#[test]
fn tampered_body_recovers_another_key() {
    // A valid signature over other data recovers some other key: never the signer's.
    let key = NodeKey::generate();
    let (bytes, _) = encode(&all_messages()[6], key.secret());
    let mut tampered = bytes.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let hash = keccak256(&tampered[32..]);
    tampered[..32].copy_from_slice(hash.as_slice());
    if let Ok(p) = decode(&tampered) {
        assert_ne!(p.peer_id, key.peer_id());
    }
}

#[test]
fn unknown_type() {
    assert_eq!(decode(&resign(0x07, &[0xc1, 0x01])), Err(PacketError::UnknownType(0x07)));
    assert_eq!(decode(&resign(0x00, &[0xc1, 0x01])), Err(PacketError::UnknownType(0x00)));
}

#[test]
fn bad_rlp() {
    // Not a list.
    assert!(matches!(decode(&resign(0x05, &[0x01])), Err(PacketError::Rlp(_))));
    // List header claiming more than the datagram holds.
    assert!(matches!(decode(&resign(0x05, &[0xf9, 0xff, 0xff, 0x01])), Err(PacketError::Rlp(_))));
    // Truncated: expiration missing.
    assert!(matches!(decode(&resign(0x05, &[0xc0])), Err(PacketError::Rlp(_))));
    // Expiration wider than u64.
    let mut body = vec![0xca, 0x89];
    body.extend_from_slice(&[0xff; 9]);
    assert!(matches!(decode(&resign(0x05, &body)), Err(PacketError::Rlp(_))));
    // Wrong type: the Ping `from` endpoint given as a string.
    assert!(matches!(decode(&resign(0x01, &[0xc3, 0x04, 0x81, 0x80])), Err(PacketError::Rlp(_))));
    // Empty body.
    assert!(matches!(decode(&resign(0x02, &[])), Err(PacketError::Rlp(_))));
}

#[test]
fn bad_ip_and_id_lengths() {
    // FindNode with a 63-byte target.
    let mut body = vec![0xf8, 0x42, 0xb8, 63];
    body.extend_from_slice(&[1; 63]);
    body.push(0x01);
    assert_eq!(decode(&resign(0x03, &body)), Err(PacketError::BadNodeIdLength(63)));
    // Neighbours with a 5-byte IP.
    let key = NodeKey::generate();
    let mut node = Vec::new();
    let id = key.peer_id();
    let payload = 6 + 1 + 1 + id.length();
    Header { list: true, payload_length: payload }.encode(&mut node);
    [1u8, 2, 3, 4, 5].as_slice().encode(&mut node);
    1u16.encode(&mut node);
    1u16.encode(&mut node);
    id.encode(&mut node);
    let mut nodes = Vec::new();
    Header { list: true, payload_length: node.len() }.encode(&mut nodes);
    nodes.extend_from_slice(&node);
    let mut body = Vec::new();
    Header { list: true, payload_length: nodes.len() + 1 }.encode(&mut body);
    body.extend_from_slice(&nodes);
    body.push(0x05);
    assert_eq!(decode(&resign(0x04, &body)), Err(PacketError::BadIpLength(5)));
}

#[test]
fn bad_enr() {
    let mut body = vec![0xe2, 0xa0];
    body.extend_from_slice(&[0; 32]);
    body.push(0xc0);
    assert!(matches!(decode(&resign(0x06, &body)), Err(PacketError::BadEnr(_))));
}

#[test]
fn huge_neighbours_claim_does_not_allocate() {
    // A node list that claims 4 GiB inside a 1280-byte datagram fails on the header.
    let body = [0xc8, 0xfb, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02, 0x03];
    assert!(matches!(decode(&resign(0x04, &body)), Err(PacketError::Rlp(_))));
}

#[test]
fn expiration_rules() {
    assert!(is_expired(99, 100));
    assert!(is_expired(100, 100));
    assert!(!is_expired(101, 100));
    // Huge as u64, negative as i64: expired (geth reads it as int64).
    assert!(is_expired(u64::MAX, 100));
    assert!(is_expired(1 << 63, 100));
    assert!(!is_expired(i64::MAX as u64, 100));
}

#[test]
fn neighbours_split_to_fit() {
    let key = NodeKey::generate();
    let mut nodes = Vec::new();
    for i in 0..40u8 {
        let ip = if i % 2 == 0 {
            IpAddr::V6(Ipv6Addr::new(0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, i as u16))
        } else {
            IpAddr::V4(Ipv4Addr::new(255, 255, 255, i))
        };
        nodes.push(NodeRecord {
            endpoint: Endpoint { ip, udp_port: 65535, tcp_port: 65535 },
            id: NodeKey::generate().peer_id(),
        });
    }
    for count in [0, 1, 12, 13, 16, 40] {
        let packets = encode_neighbours(&nodes[..count], u64::MAX >> 1, key.secret());
        let mut got = Vec::new();
        for p in &packets {
            assert!(p.len() <= MAX_PACKET_SIZE, "{} bytes", p.len());
            match decode(p).unwrap().message {
                Message::Neighbours(n) => got.extend(n.nodes),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, nodes[..count]);
        // Never more packets than geth's worst-case 12 per packet would need.
        assert!(packets.len() <= count.div_ceil(12).max(1));
    }
    // A full packet of worst-case IPv6 records holds at least 12 (geth's maxNeighbors).
    let v6: Vec<_> = nodes.iter().filter(|n| n.endpoint.ip.is_ipv6()).take(12).copied().collect();
    assert_eq!(encode_neighbours(&v6, u64::MAX >> 1, key.secret()).len(), 1);
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1400)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn body_decode_never_panics(t in 0u8..8, body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_message(t, &body);
    }

    #[test]
    fn ping_roundtrip(ip in any::<[u8; 4]>(), ip6 in any::<[u8; 16]>(), udp in any::<u16>(), tcp in any::<u16>(),
                      expiration in any::<u64>(), seq in proptest::option::of(any::<u64>())) {
        let key = NodeKey::from_bytes(&[5; 32]).unwrap();
        let message = Message::Ping(Ping {
            from: Endpoint { ip: IpAddr::from(ip), udp_port: udp, tcp_port: tcp },
            to: Endpoint { ip: IpAddr::from(ip6), udp_port: tcp, tcp_port: udp },
            expiration,
            enr_seq: seq,
        });
        let (bytes, hash) = encode(&message, key.secret());
        let packet = decode(&bytes).unwrap();
        prop_assert_eq!(packet.message, message);
        prop_assert_eq!(packet.hash, hash);
    }
}
