//! eth decode throughput: a 1024-header `BlockHeaders` and a ~1.5 MB `BlockBodies` message,
//! decoded by `EthMessage::decode` (with and without the validity checks) beside alloy-rlp's
//! raw decode of the same bytes into the same types, and beside raw keccak256 over them
//! (the bound of any check that hashes, in the same run).
//!
//! `cargo bench --bench eth`. The run ends with a ratio table measured by interleaved rounds
//! (see BENCHMARKS.md).

use std::{hint::black_box, time::Duration};

use alloy_consensus::{BlockBody, Header, TxEnvelope, EMPTY_ROOT_HASH};
use alloy_primitives::{keccak256, B256};
use alloy_rlp::Decodable;
use criterion::Criterion;
use ethp2p::eth::{
    decode_block_bodies_encoded, decode_block_headers_hashed, id, validate_bodies_encoded,
    validate_headers_with_hashes, EthMessage, EthVersion, GetBlockHeaders, MemoryChain, RequestPair,
};

mod common;

struct Ops {
    headers_req: GetBlockHeaders,
    headers_bytes: Vec<u8>,
    bodies_headers: Vec<Header>,
    bodies_bytes: Vec<u8>,
}

/// A prague-generation genesis, so every header has all 21 fields, as on today's mainnet.
fn modern_genesis() -> Header {
    Header {
        gas_limit: 30_000_000,
        base_fee_per_gas: Some(1_000_000_000),
        withdrawals_root: Some(EMPTY_ROOT_HASH),
        blob_gas_used: Some(0),
        excess_blob_gas: Some(0),
        parent_beacon_block_root: Some(B256::ZERO),
        requests_hash: Some(B256::repeat_byte(1)),
        ..Default::default()
    }
}

impl Ops {
    fn new() -> Self {
        let chain =
            MemoryChain::builder().genesis(modern_genesis()).blocks(1024).transactions_per_block(0).build();
        let headers: Vec<Header> = (1..=1024).map(|n| chain.header(n).unwrap().clone()).collect();
        let headers_req = GetBlockHeaders { origin: 1u64.into(), count: 1024, skip: 0, reverse: false };
        let headers_bytes = EthMessage::BlockHeaders(RequestPair::new(1, headers)).encoded();

        let chain =
            MemoryChain::builder().genesis(modern_genesis()).blocks(128).transactions_per_block(100).build();
        let bodies_headers: Vec<Header> = (1..=128).map(|n| chain.header(n).unwrap().clone()).collect();
        let bodies: Vec<BlockBody<TxEnvelope>> =
            (1..=128).map(|n| chain.body_by_number(n).unwrap().clone()).collect();
        let bodies_bytes = EthMessage::BlockBodies(RequestPair::new(1, bodies)).encoded();
        Self { headers_req, headers_bytes, bodies_headers, bodies_bytes }
    }

    fn raw_headers(&self) {
        let mut buf = &self.headers_bytes[..];
        let _ = alloy_rlp::Header::decode(&mut buf).unwrap();
        let id = u64::decode(&mut buf).unwrap();
        black_box((id, Vec::<Header>::decode(&mut buf).unwrap()));
    }
    fn ours_headers(&self) {
        black_box(EthMessage::decode(EthVersion::Eth68, id::BLOCK_HEADERS, &self.headers_bytes).unwrap());
    }
    /// What the session does with a `BlockHeaders` response: decode, hashing each header
    /// over the received bytes, then the count, numbering and parent-link checks.
    fn ours_headers_validated(&self) {
        let (pair, hashes) = decode_block_headers_hashed(&self.headers_bytes).unwrap();
        validate_headers_with_hashes(&self.headers_req, &pair.message, &hashes).unwrap();
        black_box((pair, hashes));
    }
    fn keccak_headers(&self) {
        black_box(keccak256(&self.headers_bytes));
    }
    fn raw_bodies(&self) {
        let mut buf = &self.bodies_bytes[..];
        let _ = alloy_rlp::Header::decode(&mut buf).unwrap();
        let id = u64::decode(&mut buf).unwrap();
        black_box((id, Vec::<BlockBody<TxEnvelope>>::decode(&mut buf).unwrap()));
    }
    fn ours_bodies(&self) {
        black_box(EthMessage::decode(EthVersion::Eth68, id::BLOCK_BODIES, &self.bodies_bytes).unwrap());
    }
    /// What the session does with a `BlockBodies` response: decode, keeping each
    /// transaction's received encoding, then the roots (transactions trie from those bytes).
    fn ours_bodies_validated(&self) {
        let (pair, encodings) = decode_block_bodies_encoded(&self.bodies_bytes).unwrap();
        validate_bodies_encoded(&self.bodies_headers, &pair.message, &encodings).unwrap();
        black_box((pair, encodings));
    }
    fn keccak_bodies(&self) {
        black_box(keccak256(&self.bodies_bytes));
    }
}

fn bench(c: &mut Criterion, ops: &Ops) {
    let mut g = c.benchmark_group("eth");
    g.sample_size(20);
    g.bench_function("raw alloy-rlp decode, 1024 headers", |b| b.iter(|| ops.raw_headers()));
    g.bench_function("EthMessage::decode, 1024 headers", |b| b.iter(|| ops.ours_headers()));
    g.bench_function("decode + validate_headers, 1024 headers", |b| b.iter(|| ops.ours_headers_validated()));
    g.bench_function("raw keccak256, headers message", |b| b.iter(|| ops.keccak_headers()));
    g.bench_function("raw alloy-rlp decode, bodies", |b| b.iter(|| ops.raw_bodies()));
    g.bench_function("EthMessage::decode, bodies", |b| b.iter(|| ops.ours_bodies()));
    g.bench_function("decode + validate_bodies, bodies", |b| b.iter(|| ops.ours_bodies_validated()));
    g.bench_function("raw keccak256, bodies message", |b| b.iter(|| ops.keccak_bodies()));
    g.finish();
}

/// Interleaved rounds so that the machine's drift hits every operation alike; the median
/// rate of each, in MB/s of message bytes, and ratios to the raw decode of the same bytes.
fn ratio_report(ops: &Ops) {
    type Op = fn(&Ops);
    let table: [(&str, Op, usize); 8] = [
        ("headers: raw alloy-rlp decode", Ops::raw_headers, ops.headers_bytes.len()),
        ("headers: EthMessage::decode", Ops::ours_headers, ops.headers_bytes.len()),
        ("headers: decode + validate", Ops::ours_headers_validated, ops.headers_bytes.len()),
        ("headers: raw keccak256", Ops::keccak_headers, ops.headers_bytes.len()),
        ("bodies: raw alloy-rlp decode", Ops::raw_bodies, ops.bodies_bytes.len()),
        ("bodies: EthMessage::decode", Ops::ours_bodies, ops.bodies_bytes.len()),
        ("bodies: decode + validate", Ops::ours_bodies_validated, ops.bodies_bytes.len()),
        ("bodies: raw keccak256", Ops::keccak_bodies, ops.bodies_bytes.len()),
    ];
    let rounds = 11;
    let median: Vec<f64> =
        common::interleaved(rounds, Duration::from_millis(200), 1, table.len(), |i| table[i].1(ops))
            .into_iter()
            .zip(&table)
            .map(|(calls, (_, _, size))| calls * *size as f64 / 1e6)
            .collect();
    println!(
        "\neth ratio report ({rounds} interleaved rounds of 200 ms, median MB/s; headers message {} bytes, \
         bodies message {} bytes):",
        ops.headers_bytes.len(),
        ops.bodies_bytes.len()
    );
    for (i, (name, _, _)) in table.iter().enumerate() {
        let raw = if i < 4 { median[0] } else { median[4] };
        let ratio = if i % 4 == 0 { String::new() } else { format!("  {:.3}x raw decode", median[i] / raw) };
        println!("  {name:<32} {:>9.1} MB/s{ratio}", median[i]);
    }
    // Validation must hash every byte once more (header hashes for the links; the
    // transactions trie's leaves), so its physical limit is a raw decode followed by one raw
    // keccak256 pass over the same bytes.
    for (name, raw, validated, keccak) in
        [("headers", median[0], median[2], median[3]), ("bodies", median[4], median[6], median[7])]
    {
        let bound = 1.0 / (1.0 / raw + 1.0 / keccak);
        println!(
            "  {name}: decode + validate at {:.3}x of its bound (raw decode + one keccak pass = {bound:.1} MB/s)",
            validated / bound
        );
    }
}

fn main() {
    let ops = Ops::new();
    let mut criterion = common::criterion();
    bench(&mut criterion, &ops);
    criterion.final_summary();
    ratio_report(&ops);
}
