//! eth decode throughput: a 1024-header `BlockHeaders` and a ~1.5 MB `BlockBodies` message,
//! decoded by `EthMessage::decode` (with and without the validity checks) beside alloy-rlp's
//! raw decode of the same bytes into the same types, and beside raw keccak256 over them
//! (the bound of any check that hashes, in the same run). Then eth/71's `BlockAccessLists`
//! (64 lists of ~21 KB kept as received, beside alloy-rlp's typed EIP-7928 decode of the
//! same bytes) and eth/72's `Cells` (beside alloy-rlp decoding the same fields).
//!
//! `cargo bench --bench eth`. The run ends with a ratio table measured by interleaved rounds
//! (see BENCHMARKS.md).

use std::{hint::black_box, time::Duration};

use alloy_consensus::{BlockBody, Header, TxEnvelope, EMPTY_ROOT_HASH};
use alloy_eips::eip7928::{AccountChanges, BalanceChange, BlockAccessIndex, SlotChanges, StorageChange};
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use alloy_rlp::{Decodable, RlpDecodable};
use criterion::Criterion;
use ethp2p::eth::{
    decode_block_access_list, decode_block_bodies_encoded, decode_block_headers_hashed,
    encode_block_access_list, id, validate_block_access_lists, validate_bodies_encoded,
    validate_headers_with_hashes, BlockAccessLists, Cell, CellMask, Cells, EthMessage, EthVersion,
    GetBlockHeaders, MemoryChain, RequestPair,
};

mod common;

struct Ops {
    headers_req: GetBlockHeaders,
    headers_bytes: Vec<u8>,
    bodies_headers: Vec<Header>,
    bodies_bytes: Vec<u8>,
    bal_headers: Vec<Header>,
    bals_bytes: Vec<u8>,
    cells_bytes: Vec<u8>,
}

/// A block access list of `accounts` accounts, each with a balance change, a nonce-free
/// storage write and two reads: ~150 bytes an account, ~70 KiB at 500 (EIP-8159's average).
fn synthetic_bal(seed: u8, accounts: usize) -> Bytes {
    let bal: Vec<AccountChanges> = (0..accounts)
        .map(|i| {
            let mut a = AccountChanges::new(Address::with_last_byte(seed).create(i as u64));
            a.balance_changes
                .push(BalanceChange { block_access_index: BlockAccessIndex(1), post_balance: U256::from(i) });
            a.storage_changes.push(SlotChanges {
                slot: U256::from(i),
                changes: vec![StorageChange {
                    block_access_index: BlockAccessIndex(1),
                    new_value: U256::from(seed),
                }],
            });
            a.storage_reads = vec![U256::from(i + 1), U256::from(i + 2)];
            a
        })
        .collect();
    encode_block_access_list(&bal)
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

        let lists: Vec<Bytes> = (0..64u8).map(|i| synthetic_bal(i, 500)).collect();
        let bal_headers = lists
            .iter()
            .map(|l| Header { block_access_list_hash: Some(keccak256(l)), ..modern_genesis() })
            .collect();
        let bals_bytes = EthMessage::BlockAccessLists(BlockAccessLists {
            request_id: 1,
            lists: lists.into_iter().map(Some).collect(),
        })
        .encoded();
        // 64 transactions of 2 blobs, 8 columns each: 1024 cells, 2 MiB.
        let mask = CellMask::from_indices([0, 16, 32, 48, 64, 80, 96, 112]);
        let cells_bytes = EthMessage::Cells(Cells {
            request_id: 1,
            hashes: (0..64u8).map(B256::with_last_byte).collect(),
            cells: (0..64u8).map(|i| vec![Cell::repeat_byte(i); 16]).collect(),
            cell_mask: mask,
        })
        .encoded();
        Self {
            headers_req,
            headers_bytes,
            bodies_headers,
            bodies_bytes,
            bal_headers,
            bals_bytes,
            cells_bytes,
        }
    }

    /// alloy-rlp decoding the same `BlockAccessLists` into typed EIP-7928 values in one go
    /// (the id, then every list as `Vec<AccountChanges>`): the plain way to read the message.
    fn raw_bals(&self) {
        let mut buf = &self.bals_bytes[..];
        let _ = alloy_rlp::Header::decode(&mut buf).unwrap();
        let id = u64::decode(&mut buf).unwrap();
        black_box((id, Vec::<Vec<AccountChanges>>::decode(&mut buf).unwrap()));
    }
    fn ours_bals(&self) {
        black_box(EthMessage::decode(EthVersion::Eth71, id::BLOCK_ACCESS_LISTS, &self.bals_bytes).unwrap());
    }
    /// What the session does: decode, then keccak each list against its header.
    fn ours_bals_validated(&self) {
        let Ok(EthMessage::BlockAccessLists(r)) =
            EthMessage::decode(EthVersion::Eth71, id::BLOCK_ACCESS_LISTS, &self.bals_bytes)
        else {
            unreachable!()
        };
        validate_block_access_lists(&self.bal_headers, &r.lists).unwrap();
        black_box(r);
    }
    /// The typed EIP-7928 decode of every list (alloy-eip7928), for a caller that wants them.
    fn typed_bals(&self) {
        let Ok(EthMessage::BlockAccessLists(r)) =
            EthMessage::decode(EthVersion::Eth71, id::BLOCK_ACCESS_LISTS, &self.bals_bytes)
        else {
            unreachable!()
        };
        for raw in r.lists.iter().flatten() {
            black_box(decode_block_access_list(raw).unwrap());
        }
    }
    fn raw_cells(&self) {
        #[derive(RlpDecodable)]
        struct Raw {
            request_id: u64,
            hashes: Vec<B256>,
            cells: Vec<Vec<Cell>>,
            mask: [u8; 16],
        }
        let raw = Raw::decode(&mut &self.cells_bytes[..]).unwrap();
        black_box((raw.request_id, raw.hashes, raw.cells, raw.mask));
    }
    fn ours_cells(&self) {
        black_box(EthMessage::decode(EthVersion::Eth72, id::CELLS, &self.cells_bytes).unwrap());
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
    g.bench_function("raw alloy-rlp typed decode, 64 BALs", |b| b.iter(|| ops.raw_bals()));
    g.bench_function("EthMessage::decode, 64 BALs", |b| b.iter(|| ops.ours_bals()));
    g.bench_function("decode + validate_block_access_lists, 64 BALs", |b| {
        b.iter(|| ops.ours_bals_validated())
    });
    g.bench_function("typed EIP-7928 decode, 64 BALs", |b| b.iter(|| ops.typed_bals()));
    g.bench_function("raw alloy-rlp decode, 1024 cells", |b| b.iter(|| ops.raw_cells()));
    g.bench_function("EthMessage::decode, 1024 cells", |b| b.iter(|| ops.ours_cells()));
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
    let table: [(&str, Op, usize); 6] = [
        ("BALs: raw alloy-rlp typed decode", Ops::raw_bals, ops.bals_bytes.len()),
        ("BALs: EthMessage::decode", Ops::ours_bals, ops.bals_bytes.len()),
        ("BALs: decode + validate", Ops::ours_bals_validated, ops.bals_bytes.len()),
        ("BALs: + typed EIP-7928 decode", Ops::typed_bals, ops.bals_bytes.len()),
        ("cells: raw alloy-rlp decode", Ops::raw_cells, ops.cells_bytes.len()),
        ("cells: EthMessage::decode", Ops::ours_cells, ops.cells_bytes.len()),
    ];
    let median: Vec<f64> =
        common::interleaved(rounds, Duration::from_millis(200), 1, table.len(), |i| table[i].1(ops))
            .into_iter()
            .zip(&table)
            .map(|(calls, (_, _, size))| calls * *size as f64 / 1e6)
            .collect();
    println!(
        "\neth/71-72 ratio report (median MB/s; BALs message {} bytes, cells message {} bytes):",
        ops.bals_bytes.len(),
        ops.cells_bytes.len()
    );
    for (i, (name, _, _)) in table.iter().enumerate() {
        let raw = if i < 4 { median[0] } else { median[4] };
        let ratio = if i == 0 || i == 4 { String::new() } else { format!("  {:.3}x raw", median[i] / raw) };
        println!("  {name:<32} {:>9.1} MB/s{ratio}", median[i]);
    }
}

fn main() {
    let ops = Ops::new();
    let mut criterion = common::criterion();
    bench(&mut criterion, &ops);
    criterion.final_summary();
    ratio_report(&ops);
}
