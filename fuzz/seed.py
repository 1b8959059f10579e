#!/usr/bin/env python3
"""Writes a starting corpus for every fuzz target into fuzz/corpus/<target>/.

The seeds are the spec test vectors in ../shared/vectors (EIP-8, EIP-778, EIP-1459, EIP-2124,
EIP-2481) plus a few hand-written valid inputs for the formats that have no vectors (chain
files, the address book, Disconnect forms, NAT-PMP). Run from anywhere:
    python3 fuzz/seed.py
"""
import base64
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "..", "shared", "vectors")
CORPUS = os.path.join(HERE, "corpus")


def vectors(name):
    with open(os.path.join(VECTORS, name)) as f:
        return json.load(f)


def unhex(s):
    s = "".join(s.split())
    return bytes.fromhex(s[2:] if s.startswith("0x") else s)


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    # Named by content, as libFuzzer names its own corpus files.
    with open(os.path.join(folder, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def compressed_pubkey(secret):
    """secp256k1 public key of `secret`, compressed (33 bytes): a few lines beat a dependency."""
    p = 2**256 - 2**32 - 977
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    g = (0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
         0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8)

    def add(a, b):
        if a is None:
            return b
        if b is None:
            return a
        if a[0] == b[0] and (a[1] + b[1]) % p == 0:
            return None
        if a == b:
            lam = 3 * a[0] * a[0] * pow(2 * a[1], -1, p) % p
        else:
            lam = (b[1] - a[1]) * pow(b[0] - a[0], -1, p) % p
        x = (lam * lam - a[0] - b[0]) % p
        return x, (lam * (a[0] - x) - a[1]) % p

    k, point, acc = int.from_bytes(secret, "big") % n, g, None
    while k:
        if k & 1:
            acc = add(acc, point)
        point, k = add(point, point), k >> 1
    return bytes([2 + (acc[1] & 1)]) + acc[0].to_bytes(32, "big")


def main():
    eip8 = vectors("eip-8.json")
    for p in eip8["discv4"]["packets"]:
        packet = unhex(p["packet"])
        write("discv4_packet", packet)
        # hash (32) + signature (65): the type byte and body, for the body parser.
        write("discv4_packet", packet[97:])
    for kind in ("auth", "ack"):
        for p in eip8["rlpx_handshake"][kind]:
            write("rlpx_handshake", unhex(p["packet"]))
    hello = unhex(eip8["devp2p_hello"]["packet"])
    write("p2p_hello", hello)
    write("p2p_hello", b"\x80" + hello)  # as a p2p message: id 0x00 then the Hello
    # Disconnect in every form clients send: [reason], bare reason, empty list, nothing,
    # and snappy-compressed [reason] (snappy literal: len varint, tag, bytes).
    for form in (b"\x01\xc1\x04", b"\x01\x04", b"\x01\xc0", b"\x01", b"\x01\x02\x04\xc1\x04", b"\x02\xc0", b"\x03\xc0"):
        write("p2p_hello", form)

    enr_text = vectors("enr-eip-778.json")["vectors"][0]["enr"]
    write("enr", enr_text)
    write("enr", base64.urlsafe_b64decode(enr_text[4:] + "=" * (-len(enr_text[4:]) % 4)))
    write("bootnode", enr_text)
    node_id = "ca634cae0d49acb401d8a4c6b6fe8c55b70d115bf400769cc1400f3258cd31387574077f301b421bc84df7266c44e9e6d569fc56be00812904767bf5ccd1fc7f"
    write("bootnode", f"enode://{node_id}@127.0.0.1:30303")
    write("bootnode", f"enode://{node_id}@127.0.0.1:30303?discport=30301,{enr_text}")

    for case in vectors("forkid-eip-2124.json")["encoding"]["cases"]:
        fork_id = unhex(case["rlp"])
        write("eth_entry", fork_id)
        write("eth_entry", bytes([0xc0 + len(fork_id)]) + fork_id)  # the ENR entry: [[hash, next]]

    dns = vectors("dnsdisc-eip-1459.json")
    write("dns_entry", dns["url_example"]["url"])
    for record in dns["zone_example"]["records"]:
        write("dns_entry", record["content"])

    # eth_message: the first byte is (version index << 5) | id, versions in EthVersion::ALL
    # order (70, 69, 68, 67, 66).
    ids = {
        "GetBlockHeadersPacket66": 0x03, "BlockHeadersPacket66": 0x04, "GetBlockBodiesPacket66": 0x05,
        "BlockBodiesPacket66": 0x06, "GetNodeDataPacket66": 0x0d, "NodeDataPacket66": 0x0e,
        "GetReceiptsPacket66": 0x0f, "ReceiptsPacket66": 0x10, "GetPooledTransactionsPacket66": 0x09,
        "PooledTransactionsPacket66": 0x0a,
    }
    for v in vectors("eth66-eip-2481.json")["vectors"]:
        payload = unhex(v["rlp"])
        msg_id = ids[v["type"]]
        for version in range(5):
            write("eth_message", bytes([(version << 5) | msg_id]) + payload)

    genesis = "0xd4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3"
    write("chain_spec", json.dumps({
        "name": "my-devnet", "network_id": 1337, "genesis_hash": genesis, "genesis_timestamp": 1700000000,
        "fork_blocks": [0, 100, {"name": "london", "block": 200}],
        "fork_timestamps": [{"name": "shanghai", "timestamp": 1700000100}, 1700000200],
    }, indent=2))
    write("chain_spec", json.dumps({"network_id": 1, "genesis_hash": genesis, "genesis_difficulty": 17179869184,
                                    "fork_blocks": [1150000, 1920000, 2463000], "fork_timestamps": [1681338455]}))

    write("address_book", json.dumps({"version": 1, "entries": [
        {"peer_id": "0x" + node_id, "addr": "10.0.0.1:30303", "kind": "basic", "tried": True,
         "reputation": -5, "last_seen": 1700000000, "banned_until": None},
        {"peer_id": "0x" + node_id, "addr": "[::1]:30303", "kind": "trusted", "tried": False,
         "reputation": 0, "last_seen": 0, "banned_until": 1800000000},
    ]}, indent=2))
    write("address_book", '{"version":1,"entries":[]}')

    # NAT-PMP: a public address response and a UDP mapping response (RFC 6886 3.2, 3.3).
    write("nat_pmp", bytes.fromhex("00800000000000010a000001"))
    write("nat_pmp", bytes.fromhex("0081000000000001765f765f00001c20"))

    # rlpx_session: [len][frame] records; frames are p2p id then data, snappy-compressed
    # after the Hello exchange (a snappy literal: varint length, tag (len-1)<<2, bytes).
    def snappy(raw):
        assert 0 < len(raw) <= 60
        return bytes([len(raw), (len(raw) - 1) << 2]) + raw

    def frame(payload):
        return bytes([len(payload)]) + payload

    write("rlpx_session", frame(b"\x02" + snappy(b"\xc0")) + frame(b"\x03" + snappy(b"\xc0")))
    write("rlpx_session", frame(b"\x01" + snappy(b"\xc1\x04")))
    write("rlpx_session", frame(b"\x01\xc1\x04"))
    write("rlpx_session", frame(b"\x80" + hello))
    write("rlpx_session", frame(b"\x11" + snappy(b"\xc2\x01\xc0")) + frame(b"\x13" + snappy(unhex("e8820457e4a000000000000000000000000000000000000000000000000000000000deadc0de050580"))))
    # A snappy header declaring 2^32 - 1 bytes: must be refused before allocating.
    write("rlpx_session", frame(b"\x10\xff\xff\xff\xff\x0f\x00"))

    # dns_walk: a zone, one TXT string per line, `$j` = hash label of line j; lines 0 and 1
    # are the ENR and link subtree roots. The link goes back to the same key (the target's
    # tree key is 0x03 * 32) under other names: a link loop.
    tree_key = base64.b32encode(compressed_pubkey(bytes([3] * 32))).decode().rstrip("=")
    leaves = [r["content"] for r in dns["zone_example"]["records"] if r["content"].startswith("enr:")]
    write("dns_walk", "\n".join([
        "enrtree-branch:$2,$3,$4", "enrtree-branch:$5,$6",
        leaves[0], leaves[1], leaves[2] if len(leaves) > 2 else enr_text,
        f"enrtree://{tree_key}@loop.example", f"enrtree://{tree_key}@fuzz.example",
    ]))
    write("dns_walk", "\n".join(["enrtree-branch:$2,$2", "enrtree-branch:", enr_text]))

    # Frames: the target cuts its input at 0xff into payloads.
    write("rlpx_frame", b"\x10hello\xff\x02\xc0\xff" + bytes(40))

    total = sum(len(files) for _, _, files in os.walk(CORPUS))
    print(f"wrote {total} seeds under {CORPUS}", file=sys.stderr)


if __name__ == "__main__":
    main()
