//! The `sync` example's downloader against a loopback network in one process, and the bound
//! it is measured against (BENCHMARKS.md, "Sync").
//!
//! `--peers` `Node`s serve one synthetic [`MemoryChain`] (every block with transactions and
//! receipts): all honest but one that answers 200 ms late and one that swaps a body for
//! another block's now and then. A syncer (the `sync` example's code, `examples/sync/`)
//! downloads every header, body and receipt list into a fresh store. Then, on the same data,
//! the decode + validate bound: every `BlockHeaders`, `BlockBodies` and eth/69 `Receipts`
//! message the download needs, decoded and checked as a session does, on one core and on
//! two threads. The figure is the download's rate as a share of that bound.
//!
//! ```text
//! cargo run --release --example sync_bench -- --blocks 20000 --txs 4 --peers 8
//! ```

#[path = "sync/faulty.rs"]
mod faulty;
#[path = "sync/store.rs"]
mod store;
#[path = "sync/syncer.rs"]
mod syncer;
#[path = "sync/writer.rs"]
mod writer;

use std::{
    net::SocketAddr,
    sync::{atomic::Ordering::Relaxed, Arc},
    time::{Duration, Instant},
};

use alloy_consensus::Header;
use clap::Parser;
use ethp2p::{
    eth::{
        decode_block_bodies_encoded, decode_block_headers_hashed, id, validate_bodies_encoded,
        validate_headers_with_hashes, validate_receipts, EthConfig, EthMessage, EthVersion, GetBlockHeaders,
        MemoryChain, Receipts, RequestPair,
    },
    node::{Node, NodeBuilder},
    ChainReader, ChainSpec,
};

use crate::{
    faulty::{Liar, Lie, Slow},
    store::Store,
    syncer::{Progress, SyncConfig, BODY_BATCH, RECEIPT_BATCH, SEGMENT},
};

#[path = "common/mod.rs"]
mod common;

#[derive(Debug, Parser)]
#[command(about = "Benchmark the sync example on a loopback network against the decode + validate bound")]
struct Args {
    /// Blocks in the chain.
    #[arg(long, default_value_t = 20_000)]
    blocks: u64,
    /// Transactions per block.
    #[arg(long, default_value_t = 4)]
    txs: usize,
    /// Serving nodes (one slow, one liar, the rest honest).
    #[arg(long, default_value_t = 8)]
    peers: usize,
    /// The slow peer's delay per answer, in milliseconds.
    #[arg(long, default_value_t = 200)]
    slow_ms: u64,
    /// The liar swaps one body in this many.
    #[arg(long, default_value_t = 50)]
    lie_every: u64,
    /// The syncer's requests in flight at most.
    #[arg(long, default_value_t = 96)]
    max_in_flight: usize,
    /// Requests in flight per connected peer.
    #[arg(long, default_value_t = 2)]
    per_peer: usize,
    /// Times the bound is measured (the median is reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Args = common::init();
    let built = Instant::now();
    let chain = Arc::new(MemoryChain::builder().blocks(args.blocks).transactions_per_block(args.txs).build());
    eprintln!("chain of {} blocks built in {:.1} s", args.blocks, built.elapsed().as_secs_f64());
    let spec = ChainSpec::mainnet();
    let eth = chain.eth_config_for(&spec).build()?;

    // The servers run on a runtime of their own (same process, same two cores), only so
    // that their CPU can be told apart from the syncer's: its threads are named.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(SERVER_THREADS)
        .enable_all()
        .build()?;
    let mut servers: Vec<Node> = Vec::new();
    for i in 0..args.peers.max(3) {
        let reader: Arc<dyn ChainReader> = match i {
            0 => Arc::new(Slow::new(chain.clone(), Duration::from_millis(args.slow_ms))),
            1 => Arc::new(Liar::new(chain.clone(), Lie::Bodies, args.lie_every)),
            _ => chain.clone(),
        };
        let builder = NodeBuilder::new(eth.clone(), reader);
        let node = server_rt
            .spawn(async move { builder.listen(SocketAddr::from(([127, 0, 0, 1], 0))).start().await })
            .await??;
        servers.push(node);
    }
    let (liar, slow) = (servers[1].peer_id(), servers[0].peer_id());

    let dir = tempfile::tempdir()?;
    let genesis = chain.header(0).expect("a genesis");
    let store = Arc::new(Store::open(dir.path(), genesis.hash_slow(), Some(genesis))?);
    let our_eth = EthConfig::builder(store.status_info(&spec), spec.fork_filter(0, 0)).build()?;
    let node = NodeBuilder::new(our_eth, store.clone())
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .bootnodes(servers.iter().map(Node::enode))
        .start()
        .await?;
    while node.peers().await?.len() < servers.len() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let progress = Arc::new(Progress::default());
    let config = SyncConfig {
        max_in_flight: args.max_in_flight,
        per_peer: args.per_peer.max(1),
        exit_when_synced: true,
        min_peers: servers.len(),
        ..SyncConfig::default()
    };
    // The download ends when the last block is stored (the syncer's own exit waits a few
    // seconds more to be sure no peer has a newer head).
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let server_cpu_before = thread_cpu_seconds(SERVER_THREADS);
    let watch = {
        let progress = progress.clone();
        let head = args.blocks;
        tokio::spawn(async move {
            let mut in_use = 0;
            while progress.stored.load(Relaxed) < head {
                in_use = in_use.max(progress.in_use.load(Relaxed));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (started.elapsed(), in_use)
        })
    };
    let head =
        syncer::run(node.clone(), store.clone(), config, progress.clone(), std::future::pending()).await?;
    let (took, in_use) = watch.await?;
    let cpu = cpu_seconds() - cpu_before;
    let server_cpu = thread_cpu_seconds(SERVER_THREADS) - server_cpu_before;
    let peers = node.peers().await?;
    let liar_banned = !peers.iter().any(|p| p.peer_id == liar);
    let slow_served = progress.served_by(&slow);
    let most_served = servers.iter().map(|s| progress.served_by(&s.peer_id())).max().unwrap_or(0);
    assert_eq!(Some(head.hash()), chain.hash(args.blocks), "synced to the source's head");
    for n in [1, args.blocks / 2, args.blocks] {
        assert_eq!(
            store.block(n).map(|b| b.body),
            chain.body_by_number(n).cloned(),
            "block {n} stored as served"
        );
    }
    let bytes = progress.bytes.load(Relaxed) as f64;
    let secs = took.as_secs_f64();
    let sync_bps = args.blocks as f64 / secs;
    println!(
        "sync: {} blocks ({:.1} MB of headers, bodies and receipts) in {secs:.2} s: {sync_bps:.0} blocks/s, {:.2} MB/s; \
         {} peers, up to {in_use} in use at once, {} re-queued, {} hedged, {} disputed; CPU {cpu:.2} s ({:.0}% of 2 cores, \
         servers included)",
        args.blocks,
        bytes / 1e6,
        bytes / 1e6 / secs,
        servers.len(),
        progress.retries.load(Relaxed),
        progress.hedged.load(Relaxed),
        progress.disputes.load(Relaxed),
        100.0 * cpu / (2.0 * secs),
    );
    println!(
        "peers: the liar {}; the slow peer answered {slow_served} requests (the busiest peer {most_served})",
        if liar_banned { "banned" } else { "NOT banned" },
    );
    node.shutdown().await;
    for s in &servers {
        s.shutdown().await;
    }
    server_rt.shutdown_background();

    // The bound: the same blocks as the messages that carried them, decoded and validated.
    let messages = Messages::new(&chain, args.blocks);
    let mut one = Vec::new();
    let mut two = Vec::new();
    for _ in 0..args.rounds.max(1) {
        one.push(messages.time(1));
        two.push(messages.time(2));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (one, two) = (median(&mut one), median(&mut two));
    let (bound1, bound2) = (args.blocks as f64 / one, args.blocks as f64 / two);
    println!(
        "bound (decode + validate, same data): 1 core {bound1:.0} blocks/s ({:.2} MB/s), 2 threads {bound2:.0} blocks/s ({:.2} MB/s)",
        bytes / 1e6 / one,
        bytes / 1e6 / two
    );
    println!(
        "ratio: sync / 1-core bound = {:.3}, sync / 2-thread bound = {:.3}",
        sync_bps / bound1,
        sync_bps / bound2
    );
    // The download's CPU (every node in the process: the servers and the syncer) against
    // the bound's one-core time for the same blocks, per block.
    let per_block = |s: f64| s / args.blocks as f64 * 1e6;
    let syncer_cpu = cpu - server_cpu;
    println!(
        "CPU per block: download {:.1} us (servers {:.1} us, syncer {:.1} us) against the bound's {:.1} us",
        per_block(cpu),
        per_block(server_cpu),
        per_block(syncer_cpu),
        per_block(one),
    );
    // The ceiling on two cores: they must also carry the servers' work, which the bound
    // leaves out (generous: the syncer's own transport, decrypt + MAC + snappy, is left out
    // of it too, as the bound does).
    let ceiling = 2.0 * args.blocks as f64 / (one + server_cpu);
    println!(
        "ceiling (2 cores / (bound + servers) per block): {ceiling:.0} blocks/s = {:.3} of the 2-thread bound; \
         the download is {:.3} of the ceiling",
        ceiling / bound2,
        sync_bps / ceiling
    );
    Ok(())
}

/// Name of the server runtime's threads (its workers and blocking threads).
const SERVER_THREADS: &str = "sync-server";

/// User + system CPU time so far of this process's threads whose name is `name` (Linux; 0
/// elsewhere). Threads that have exited are not counted: the blocking pool keeps its
/// threads 10 s after their last task, longer than a download here.
fn thread_cpu_seconds(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    let mut ticks = 0.0;
    for task in tasks.flatten() {
        let path = task.path();
        // `comm` holds at most 15 bytes of the name (ours is shorter).
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        let fields: Vec<&str> =
            stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        ticks += field(11) + field(12);
    }
    ticks / 100.0
}

/// User + system CPU time of this process so far, from `/proc/self/stat` (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces, so split after its ')').
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Every message a download of blocks 1..=n receives, encoded, with the headers each batch
/// is checked against.
struct Messages {
    headers: Vec<(GetBlockHeaders, Vec<u8>)>,
    bodies: Vec<(Vec<Header>, Vec<u8>)>,
    receipts: Vec<(Vec<Header>, Vec<u8>)>,
}

impl Messages {
    fn new(chain: &MemoryChain, n: u64) -> Self {
        let header = |i: u64| chain.header(i).expect("in the chain").clone();
        let mut headers = Vec::new();
        for from in (1..=n).step_by(SEGMENT as usize) {
            let count = SEGMENT.min(n - from + 1);
            let request = GetBlockHeaders { origin: from.into(), count, skip: 0, reverse: false };
            let batch = (from..from + count).map(header).collect();
            headers.push((request, EthMessage::BlockHeaders(RequestPair::new(1, batch)).encoded()));
        }
        let mut bodies = Vec::new();
        for from in (1..=n).step_by(BODY_BATCH) {
            let batch: Vec<Header> = (from..=n.min(from + BODY_BATCH as u64 - 1)).map(header).collect();
            let b = batch.iter().map(|h| chain.body_by_number(h.number).expect("a body").clone()).collect();
            bodies.push((batch, EthMessage::BlockBodies(RequestPair::new(1, b)).encoded()));
        }
        let mut receipts = Vec::new();
        for from in (1..=n).step_by(RECEIPT_BATCH) {
            let batch: Vec<Header> = (from..=n.min(from + RECEIPT_BATCH as u64 - 1)).map(header).collect();
            let r = batch
                .iter()
                .map(|h| chain.receipts_by_hash(&h.hash_slow()).expect("receipts").clone())
                .collect();
            let message =
                EthMessage::Receipts(RequestPair::new(1, Receipts::for_version(r, EthVersion::Eth69)));
            receipts.push((batch, message.encoded()));
        }
        Self { headers, bodies, receipts }
    }

    /// Seconds to decode and validate every message on `threads` threads (messages dealt
    /// out round robin).
    fn time(&self, threads: usize) -> f64 {
        let started = Instant::now();
        std::thread::scope(|s| {
            for t in 0..threads {
                s.spawn(move || self.check(t, threads));
            }
        });
        started.elapsed().as_secs_f64()
    }

    fn check(&self, part: usize, parts: usize) {
        for (request, payload) in self.headers.iter().skip(part).step_by(parts) {
            let (pair, hashes) = decode_block_headers_hashed(payload).expect("decodes");
            validate_headers_with_hashes(request, &pair.message, &hashes).expect("valid");
        }
        for (headers, payload) in self.bodies.iter().skip(part).step_by(parts) {
            let (pair, encodings) = decode_block_bodies_encoded(payload).expect("decodes");
            validate_bodies_encoded(headers, &pair.message, &encodings).expect("valid");
        }
        for (headers, payload) in self.receipts.iter().skip(part).step_by(parts) {
            let Ok(EthMessage::Receipts(pair)) = EthMessage::decode(EthVersion::Eth69, id::RECEIPTS, payload)
            else {
                panic!("receipts decode");
            };
            validate_receipts(headers, &pair.message.into_envelopes()).expect("valid");
        }
    }
}
