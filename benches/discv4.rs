//! discv4 codec throughput: encode+sign and decode+verify for Ping and a full Neighbours,
//! each next to the raw secp256k1 operation that bounds it, measured in the same run.
//!
//! `cargo bench --bench discv4`. Besides criterion's per-operation times, the run ends with a
//! ratio table measured by interleaved rounds on one core (see BENCHMARKS.md).

use std::{
    hint::black_box,
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use alloy_primitives::{keccak256, B256};
use criterion::Criterion;
use ethp2p::{
    discovery::v4::proto::{self, Endpoint, Message, Neighbours, NodeRecord, Ping},
    NodeKey,
};
use rand::{Rng, SeedableRng};
use secp256k1::{ecdsa::RecoverableSignature, Message as SecpMessage, SECP256K1};

mod common;

fn ping() -> Message {
    Message::Ping(Ping {
        from: Endpoint { ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), udp_port: 30303, tcp_port: 30303 },
        to: Endpoint { ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), udp_port: 30303, tcp_port: 30303 },
        expiration: 1_900_000_000,
        enr_seq: Some(7),
    })
}

/// 12 random IPv4 records, as reth's bench (geth's maxNeighbors for the worst case).
fn neighbours() -> Message {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let nodes = (0..12)
        .map(|_| NodeRecord {
            endpoint: Endpoint {
                ip: IpAddr::V4(Ipv4Addr::from(rng.gen::<u32>())),
                udp_port: 30303,
                tcp_port: 30303,
            },
            id: NodeKey::generate().peer_id(),
        })
        .collect();
    Message::Neighbours(Neighbours { nodes, expiration: 1_900_000_000 })
}

struct Ops {
    key: NodeKey,
    ping: Message,
    ping_bytes: Vec<u8>,
    neighbours: Message,
    neighbours_bytes: Vec<u8>,
    digest: SecpMessage,
    signature: RecoverableSignature,
}

impl Ops {
    fn new() -> Self {
        let key = NodeKey::from_bytes(&[0x42; 32]).unwrap();
        let ping = ping();
        let neighbours = neighbours();
        let ping_bytes = proto::encode(&ping, key.secret()).0;
        let neighbours_bytes = proto::encode(&neighbours, key.secret()).0;
        let digest = SecpMessage::from_digest(B256::repeat_byte(9).0);
        let signature = SECP256K1.sign_ecdsa_recoverable(&digest, key.secret());
        Self { key, ping, ping_bytes, neighbours, neighbours_bytes, digest, signature }
    }
    fn raw_sign(&self) {
        black_box(SECP256K1.sign_ecdsa_recoverable(black_box(&self.digest), self.key.secret()));
    }
    fn raw_recover(&self) {
        black_box(SECP256K1.recover_ecdsa(black_box(&self.digest), &self.signature).unwrap());
    }
    fn raw_keccak_1k(&self) {
        black_box(keccak256(black_box(&self.neighbours_bytes)));
    }
    fn ping_encode(&self) {
        black_box(proto::encode(black_box(&self.ping), self.key.secret()));
    }
    fn ping_decode(&self) {
        black_box(proto::decode(black_box(&self.ping_bytes)).unwrap());
    }
    fn neighbours_encode(&self) {
        black_box(proto::encode(black_box(&self.neighbours), self.key.secret()));
    }
    fn neighbours_decode(&self) {
        black_box(proto::decode(black_box(&self.neighbours_bytes)).unwrap());
    }
}

fn bench(c: &mut Criterion) {
    let ops = Ops::new();
    let mut g = c.benchmark_group("discv4");
    g.bench_function("raw secp256k1 sign_recoverable", |b| b.iter(|| ops.raw_sign()));
    g.bench_function("raw secp256k1 recover", |b| b.iter(|| ops.raw_recover()));
    g.bench_function("raw keccak256 of the neighbours packet", |b| b.iter(|| ops.raw_keccak_1k()));
    g.bench_function("ping encode+sign", |b| b.iter(|| ops.ping_encode()));
    g.bench_function("ping decode+verify", |b| b.iter(|| ops.ping_decode()));
    g.bench_function("neighbours(12) encode+sign", |b| b.iter(|| ops.neighbours_encode()));
    g.bench_function("neighbours(12) decode+verify", |b| b.iter(|| ops.neighbours_decode()));
    g.finish();
}

/// Interleaved rounds (see `common`): the median rate per operation, and each codec figure
/// as a ratio to its raw limit.
fn ratio_report() {
    let ops = Ops::new();
    type Op = fn(&Ops);
    let table: [(&str, Op); 7] = [
        ("raw sign", Ops::raw_sign),
        ("raw recover", Ops::raw_recover),
        ("raw keccak 1 KiB", Ops::raw_keccak_1k),
        ("ping encode+sign", Ops::ping_encode),
        ("ping decode+verify", Ops::ping_decode),
        ("neighbours(12) encode+sign", Ops::neighbours_encode),
        ("neighbours(12) decode+verify", Ops::neighbours_decode),
    ];
    let rounds = 15;
    let median =
        common::interleaved(rounds, Duration::from_millis(100), 32, table.len(), |i| table[i].1(&ops));
    let (sign, recover) = (median[0], median[1]);
    println!("\ndiscv4 ratio report ({rounds} interleaved rounds of 100 ms, median ops/s):");
    for (i, (name, _)) in table.iter().enumerate() {
        let ratio = match i {
            3 | 5 => format!("  {:.3}x raw sign", median[i] / sign),
            4 | 6 => format!("  {:.3}x raw recover", median[i] / recover),
            _ => String::new(),
        };
        println!("  {name:<30} {:>12.0}{ratio}", median[i]);
    }
}

fn main() {
    let mut criterion = common::criterion();
    bench(&mut criterion);
    criterion.final_summary();
    ratio_report();
}
