//! RLPx: full ECIES handshakes per second (initiator + recipient in memory) next to the
//! elliptic-curve operations they need, and frame throughput (encrypt + MAC, MAC check +
//! decrypt) next to raw AES-256-CTR + keccak256 over the same bytes, measured in the same run.
//!
//! `cargo bench --bench rlpx`. Besides criterion's per-operation times, the run ends with a
//! ratio table measured by interleaved rounds on one core (see BENCHMARKS.md).

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use aes::{
    cipher::{KeyIvInit, StreamCipher},
    Aes256,
};
use alloy_primitives::keccak256;
use bytes::BytesMut;
use criterion::Criterion;
use ethp2p::{
    record::peer_id_of,
    rlpx::{Handshake, RlpxCodec},
    NodeKey,
};
use secp256k1::{ecdh::shared_secret_point, Message, PublicKey, SECP256K1};

mod common;

/// EC operations in one full handshake (both sides), counted in `src/rlpx/ecies.rs`:
/// ECDH: static-static on each side (2), ECIES encrypt of auth and ack (2), decrypt (2),
/// ephemeral agreement on each side (2). Public keys derived: the initiator's own, the
/// recipient's ephemeral, and each ECIES envelope's (4). One sign, one recover.
const ECDH: f64 = 8.0;
const PUBKEY: f64 = 4.0;
/// reth's count for the same handshake (../shared/reference/perf-anchors.md).
const RETH_ECDH: f64 = 6.0;
const RETH_PUBKEY: f64 = 6.0;

const SIZES: [usize; 3] = [1024, 64 * 1024, 1024 * 1024];
/// Payload bytes per timed batch of frames, as in reth's bench (~8 MiB).
const BATCH: usize = 8 << 20;

struct Ec {
    a: NodeKey,
    b: NodeKey,
    b_public: PublicKey,
    digest: Message,
    sig: secp256k1::ecdsa::RecoverableSignature,
}

impl Ec {
    fn new() -> Self {
        let a = NodeKey::from_bytes(&[0x11; 32]).unwrap();
        let b = NodeKey::from_bytes(&[0x22; 32]).unwrap();
        let digest = Message::from_digest([7; 32]);
        let sig = SECP256K1.sign_ecdsa_recoverable(&digest, a.secret());
        Self { b_public: b.public(), a, b, digest, sig }
    }
    fn handshake(&self) {
        let mut init = Handshake::initiator(self.a.secret(), &peer_id_of(&self.b_public)).unwrap();
        let mut resp = Handshake::recipient(self.b.secret());
        resp.read_auth(&init.create_auth()).unwrap();
        init.read_ack(&resp.create_ack().unwrap()).unwrap();
        black_box((init.secrets().unwrap(), resp.secrets().unwrap()));
    }
    fn ecdh(&self) {
        black_box(shared_secret_point(black_box(&self.b_public), self.a.secret()));
    }
    fn pubkey(&self) {
        black_box(self.a.secret().public_key(SECP256K1));
    }
    fn sign(&self) {
        black_box(SECP256K1.sign_ecdsa_recoverable(black_box(&self.digest), self.a.secret()));
    }
    fn recover(&self) {
        black_box(SECP256K1.recover_ecdsa(black_box(&self.digest), &self.sig).unwrap());
    }
}

/// A connected codec pair from a real handshake.
fn codecs() -> (RlpxCodec, RlpxCodec) {
    let (a, b) = (NodeKey::generate(), NodeKey::generate());
    let mut init = Handshake::initiator(a.secret(), &b.peer_id()).unwrap();
    let mut resp = Handshake::recipient(b.secret());
    resp.read_auth(&init.create_auth()).unwrap();
    init.read_ack(&resp.create_ack().unwrap()).unwrap();
    (RlpxCodec::new(init.secrets().unwrap()), RlpxCodec::new(resp.secrets().unwrap()))
}

/// Frame write and read rates (MB/s of payload) over one batch, and the raw limit: AES-256-CTR
/// plus one keccak256 pass over the same (padded) bytes.
struct Frames {
    size: usize,
    payload: Vec<u8>,
    writer: RlpxCodec,
    reader: RlpxCodec,
    wire: BytesMut,
    raw_buf: Vec<u8>,
    raw_aes: ctr::Ctr64BE<Aes256>,
}

impl Frames {
    fn new(size: usize) -> Self {
        let (writer, reader) = codecs();
        Self {
            size,
            payload: vec![0xab; size],
            writer,
            reader,
            wire: BytesMut::with_capacity(BATCH + BATCH / 16 + 4096),
            raw_buf: vec![0xab; size.div_ceil(16) * 16],
            raw_aes: ctr::Ctr64BE::<Aes256>::new(&[1u8; 32].into(), &[0u8; 16].into()),
        }
    }
    fn frames_per_batch(&self) -> usize {
        (BATCH / self.size).max(1)
    }
    /// Seconds to write one batch and to read it back. Writer and reader share one cipher
    /// stream, so every written frame must be read.
    fn round(&mut self) -> (f64, f64) {
        (self.write(), self.read())
    }
    /// Seconds to write one batch (left in `self.wire` for [`Self::read`]).
    fn write(&mut self) -> f64 {
        self.wire.clear();
        let start = Instant::now();
        for _ in 0..self.frames_per_batch() {
            self.writer.write_frame(&self.payload, &mut self.wire).unwrap();
        }
        start.elapsed().as_secs_f64()
    }
    /// Seconds to read the batch written last.
    fn read(&mut self) -> f64 {
        let start = Instant::now();
        let mut n = 0;
        while let Some(frame) = self.reader.read_frame(&mut self.wire).unwrap() {
            black_box(&frame);
            n += 1;
        }
        let t = start.elapsed().as_secs_f64();
        assert_eq!(n, self.frames_per_batch());
        t
    }
    /// Seconds for raw AES-256-CTR + keccak256 over the same bytes as one batch.
    fn raw(&mut self) -> f64 {
        let start = Instant::now();
        for _ in 0..self.frames_per_batch() {
            self.raw_aes.apply_keystream(&mut self.raw_buf);
            black_box(keccak256(&self.raw_buf));
        }
        start.elapsed().as_secs_f64()
    }
    fn batch_mb(&self) -> f64 {
        (self.frames_per_batch() * self.size) as f64 / 1e6
    }
}

fn bench(c: &mut Criterion) {
    let ec = Ec::new();
    let mut g = c.benchmark_group("rlpx handshake");
    g.bench_function("full handshake (initiator + recipient)", |b| b.iter(|| ec.handshake()));
    g.bench_function("raw secp256k1 ECDH", |b| b.iter(|| ec.ecdh()));
    g.bench_function("raw secp256k1 pubkey from secret", |b| b.iter(|| ec.pubkey()));
    g.bench_function("raw secp256k1 sign_recoverable", |b| b.iter(|| ec.sign()));
    g.bench_function("raw secp256k1 recover", |b| b.iter(|| ec.recover()));
    g.finish();

    let mut g = c.benchmark_group("rlpx frames");
    for size in SIZES {
        let mut f = Frames::new(size);
        g.throughput(criterion::Throughput::Bytes((f.frames_per_batch() * size) as u64));
        g.bench_function(format!("write {} KiB", size / 1024), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| Duration::from_secs_f64(f.round().0)).sum())
        });
        g.bench_function(format!("read {} KiB", size / 1024), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| Duration::from_secs_f64(f.round().1)).sum())
        });
        g.bench_function(format!("raw aes-ctr + keccak {} KiB", size / 1024), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| Duration::from_secs_f64(f.raw())).sum())
        });
    }
    g.finish();
}

/// Rate of `op` over ~100 ms.
fn rate(op: impl FnMut()) -> f64 {
    common::rate(Duration::from_millis(100), 8, op)
}

/// Interleaved rounds so that the machine's drift hits every operation alike; medians, and
/// each figure as a ratio to its limit.
fn ratio_report() {
    let rounds = 15;
    let ec = Ec::new();
    let (mut hs, mut ecdh, mut pubk, mut sign, mut rec) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        hs.push(rate(|| ec.handshake()));
        ecdh.push(rate(|| ec.ecdh()));
        pubk.push(rate(|| ec.pubkey()));
        sign.push(rate(|| ec.sign()));
        rec.push(rate(|| ec.recover()));
    }
    let (hs, ecdh, pubk, sign, rec) = (
        common::median(hs),
        common::median(ecdh),
        common::median(pubk),
        common::median(sign),
        common::median(rec),
    );
    let limit = 1.0 / (ECDH / ecdh + PUBKEY / pubk + 1.0 / sign + 1.0 / rec);
    let reth_limit = 1.0 / (RETH_ECDH / ecdh + RETH_PUBKEY / pubk + 1.0 / sign + 1.0 / rec);
    println!("\nrlpx ratio report ({rounds} interleaved rounds, medians):");
    println!("  raw ECDH {ecdh:.0}/s, pubkey {pubk:.0}/s, sign {sign:.0}/s, recover {rec:.0}/s");
    println!(
        "  full handshake {hs:>8.0}/s   limit ({ECDH} ECDH + {PUBKEY} pubkey + sign + recover) {limit:.0}/s → {:.3}x",
        hs / limit
    );
    println!(
        "  (against reth's op count, 6 ECDH + 6 pubkey + sign + recover: limit {reth_limit:.0}/s → {:.3}x)",
        hs / reth_limit
    );

    for size in SIZES {
        let mut f = Frames::new(size);
        let (mut w, mut r, mut raw) = (vec![], vec![], vec![]);
        for _ in 0..rounds {
            let (wt, rt) = f.round();
            w.push(f.batch_mb() / wt);
            r.push(f.batch_mb() / rt);
            raw.push(f.batch_mb() / f.raw());
        }
        let (w, r, raw) = (common::median(w), common::median(r), common::median(raw));
        println!(
            "  frames {:>4} KiB: write {w:>6.1} MB/s ({:.3}x), read {r:>6.1} MB/s ({:.3}x), raw aes-ctr+keccak {raw:>6.1} MB/s",
            size / 1024,
            w / raw,
            r / raw
        );
    }
}

fn main() {
    let mut criterion = common::criterion();
    bench(&mut criterion);
    criterion.final_summary();
    ratio_report();
}
