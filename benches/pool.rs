//! The peer pool, end to end over loopback sockets (issue 6):
//!
//! - **cold start**: a fresh node given one bootnode of a running 100-node network (discv4 +
//!   discv5 on one port, RLPx, eth Status) until it holds 30 peers; and, to tell discovery
//!   apart from dialing, a fresh node given 30 of the network's enodes as bootnodes. The
//!   network is built once, outside the timed loop; only the fresh node's start → 30 peers
//!   is timed. The physical limit, measured in the same run, is 30 full RLPx handshakes at
//!   the raw secp256k1 cost of their elliptic-curve operations.
//! - **memory**: the resident set (`VmRSS`, `VmHWM` from `/proc/self/status`) of one node in
//!   a process of its own (this binary, re-run as a child) before any session and at 10, 25
//!   and 50 sessions with peers served from this process.
//!
//! `cargo bench --bench pool`. Criterion prints the cold-start times; the run ends with a
//! report of the phases, the ratio to the limit and the memory figures (see BENCHMARKS.md).

use std::{
    hint::black_box,
    io::{BufRead, BufReader, Write},
    net::SocketAddr,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use criterion::{Criterion, SamplingMode};
use ethp2p::{
    discovery::{v4::Discv4Config, DiscoveryConfig, Discv5Config},
    eth::{EthConfig, MemoryChain},
    node::{Node, NodeBuilder},
    pool::PoolConfig,
    record::ChainSpec,
    test_utils::{
        key_from_seed,
        procfs::{cpu_seconds, memory_kib},
    },
    Enode, Enr, NetRestrict, NodeKey,
};
use secp256k1::{ecdh::shared_secret_point, Message, PublicKey, SECP256K1};
use tokio::runtime::Runtime;

/// Nodes in the running network.
const NETWORK: usize = 100;
/// Peers the fresh node must reach.
const TARGET: usize = 30;
/// A cold start that has not reached [`TARGET`] by then is stopped and counted at this
/// time (so medians are pessimistic, never flattered); the report lists such runs.
const GIVE_UP: Duration = Duration::from_secs(30);
/// How often the fresh node's peer count is read while timing.
const POLL: Duration = Duration::from_millis(2);
/// EC operations in one full RLPx handshake, both sides (counted in `src/rlpx/ecies.rs`,
/// as in `benches/rlpx.rs`): 8 ECDH, 4 public keys derived, one sign, one recover.
const HANDSHAKE_ECDH: f64 = 8.0;
const HANDSHAKE_PUBKEY: f64 = 4.0;
/// Sessions held by the measured node, in steps.
const MEMORY_STEPS: [usize; 3] = [10, 25, 50];
/// Set it to print the fresh node's progress every 250 ms.
const TRACE_ENV: &str = "ETHP2P_POOL_BENCH_TRACE";
/// Enodes a fresh node starts with in the no-discovery variant: more than [`TARGET`], as an
/// address book would hold, since some nodes may be full.
const KNOWN: usize = 45;
/// The network counts as settled once its process uses less than this share of one core
/// (its steady discovery traffic is a few percent; start-up lookups take both cores).
const QUIET_CORES: f64 = 0.5;
/// Marks the child process of the memory measurement.
const CHILD_ENV: &str = "ETHP2P_POOL_BENCH_CHILD";

fn eth_config(chain: &MemoryChain) -> EthConfig {
    chain.eth_config_for(&ChainSpec::mainnet()).build().unwrap()
}

/// discv4 + discv5 with their default timers on one loopback port, restricted to loopback.
fn discovery(ip: [u8; 4], boot: Option<&(Enode, Enr)>) -> DiscoveryConfig {
    let listen = SocketAddr::from((ip, 0));
    let mut v4 = Discv4Config::builder();
    v4.listen_addr(listen).netrestrict(NetRestrict::loopback());
    let mut v5 = Discv5Config::builder();
    v5.listen(listen).netrestrict(NetRestrict::loopback());
    if let Some((enode, enr)) = boot {
        v4.bootnodes(vec![*enode]);
        v5.bootnode(enr.clone());
    }
    DiscoveryConfig::new(Some(v4.build().unwrap()), Some(v5.build().unwrap()))
}

/// The network's nodes dial 10 peers each (and accept up to 40): about 20 sessions per
/// node, leaving room for newcomers. With the defaults (16 to 30 dials each) the 100 nodes
/// fill each other's inbound slots and a newcomer is refused by many of them (see
/// BENCHMARKS.md).
fn network_pool() -> PoolConfig {
    PoolConfig::builder().max_peers(50).min_peers(10).dial_ratio(5).build().unwrap()
}

/// The running network: node 0 is everyone's bootnode.
struct Network {
    nodes: Vec<Node>,
    /// Node 0's enode (with its discovery port) and record.
    boot: (Enode, Enr),
    chain: Arc<MemoryChain>,
    eth: EthConfig,
}

impl Network {
    /// Starts [`NETWORK`] nodes with the default pool and discovery settings, each on an IP
    /// of its own /24 of 127.0.0.0/8 (so no table or pool subnet limit applies between
    /// them), and waits until their peer counts stop moving.
    async fn start() -> Self {
        let chain = Arc::new(MemoryChain::builder().blocks(2).build());
        let eth = eth_config(&chain);
        let mut nodes = Vec::with_capacity(NETWORK);
        let mut boot: Option<(Enode, Enr)> = None;
        for i in 0..NETWORK {
            let ip = [127, 1, i as u8 + 1, 1];
            let node = NodeBuilder::new(eth.clone(), chain.clone())
                .key(key_from_seed(100_000 + i as u64))
                .listen(SocketAddr::from((ip, 0)))
                .seed(i as u64)
                .pool(network_pool())
                .discovery(discovery(ip, boot.as_ref()))
                .start()
                .await
                .expect("network node starts");
            if boot.is_none() {
                let disc = node.discovery().unwrap();
                let enode = Enode {
                    peer_id: node.peer_id(),
                    ip: ip.into(),
                    tcp_port: node.local_addr().port(),
                    udp_port: disc.local_addr().port(),
                };
                boot = Some((enode, disc.local_enr().record()));
            }
            nodes.push(node);
        }
        let net = Self { nodes, boot: boot.unwrap(), chain, eth };
        let started = Instant::now();
        let cpu = net.settle(Duration::from_secs(120)).await;
        let (peers, tables) = net.counts().await;
        eprintln!(
            "pool bench: {NETWORK}-node network settled in {:.1} s (CPU {:.0}% of a core): peers per node \
             min {} median {} max {}, discv4+discv5 table min {}",
            started.elapsed().as_secs_f64(),
            cpu * 100.0,
            peers.iter().min().unwrap(),
            peers[peers.len() / 2],
            peers.iter().max().unwrap(),
            tables.iter().min().unwrap(),
        );
        net
    }

    /// Sorted peer counts and discovery table sizes of every node.
    async fn counts(&self) -> (Vec<usize>, Vec<usize>) {
        let (mut peers, mut tables) = (Vec::new(), Vec::new());
        for node in &self.nodes {
            peers.push(node.peers().await.map_or(0, |p| p.len()));
            tables.push(node.discovery().unwrap().stats().await.map_or(0, |s| s.table_size));
        }
        peers.sort_unstable();
        tables.sort_unstable();
        (peers, tables)
    }

    /// Waits until the total peer count moves by at most 2% over three reads 500 ms apart
    /// (a few nodes keep retrying full peers, so it never freezes) and the network has gone
    /// quiet: this process (the 100 nodes) used under [`QUIET_CORES`] of a core over the
    /// last 500 ms, so that discovery's start-up work is not timed with the first cold
    /// starts. Gives up at `deadline`. Returns the CPU share of the last read.
    async fn settle(&self, deadline: Duration) -> f64 {
        let end = Instant::now() + deadline;
        let mut totals: Vec<usize> = Vec::new();
        let mut cpu = 0.0;
        while Instant::now() < end {
            let (wall, cpu_start) = (Instant::now(), cpu_seconds());
            tokio::time::sleep(Duration::from_millis(500)).await;
            cpu = (cpu_seconds() - cpu_start) / wall.elapsed().as_secs_f64();
            totals.push(self.counts().await.0.iter().sum());
            if let [.., a, b, c] = totals[..] {
                let (lo, hi) = (a.min(b).min(c), a.max(b).max(c));
                if (hi - lo) * 50 <= hi && cpu < QUIET_CORES {
                    return cpu;
                }
            }
        }
        cpu
    }
}

/// How a fresh node learns about the network.
#[derive(Clone, Copy, PartialEq)]
enum Start {
    /// One bootnode, for discv4 and discv5; candidates come from discovery.
    Discovery,
    /// [`KNOWN`] enodes of the network as bootnodes (what a node with an address book
    /// starts with); no discovery.
    KnownPeers,
}

/// Timings of one cold start, from before `NodeBuilder::start`.
#[derive(Clone, Copy, Debug)]
struct ColdStart {
    first_peer: Duration,
    ten: Duration,
    target: Duration,
    /// Peers and known candidates at [`GIVE_UP`], for a run that did not reach [`TARGET`].
    stuck: Option<(usize, usize)>,
}

/// Starts a fresh node (key and IP never used before), times it to [`TARGET`] peers, shuts
/// it down and lets the network absorb the departure (untimed).
async fn cold_start(net: &Network, how: Start, run: u64) -> ColdStart {
    // 127.2.x.1 for discovery runs, 127.3.x.1 for known-peer runs: new IPs and keys each time.
    let ip = [127, if how == Start::Discovery { 2 } else { 3 }, (run % 250) as u8 + 1, 1];
    let mut builder = NodeBuilder::new(net.eth.clone(), net.chain.clone())
        .key(key_from_seed(200_000 + run * 2 + u64::from(how == Start::KnownPeers)))
        .listen(SocketAddr::from((ip, 0)));
    builder = match how {
        Start::Discovery => builder.discovery(discovery(ip, Some(&net.boot))),
        Start::KnownPeers => builder.bootnodes(
            // A different slice of the network each run.
            (0..KNOWN).map(|i| {
                let node = &net.nodes[(run as usize * 7 + i) % NETWORK];
                Enode::new(node.peer_id(), node.local_addr())
            }),
        ),
    };
    let started = Instant::now();
    let node = builder.start().await.expect("fresh node starts");
    let (mut first_peer, mut ten) = (None, None);
    let trace = std::env::var_os(TRACE_ENV).is_some();
    let mut last_trace = Duration::ZERO;
    let mut stuck = None;
    let target = loop {
        let n = node.peers().await.unwrap().len();
        let t = started.elapsed();
        if n >= 1 && first_peer.is_none() {
            first_peer = Some(t);
        }
        if n >= 10 && ten.is_none() {
            ten = Some(t);
        }
        if n >= TARGET {
            break t;
        }
        if trace && t >= last_trace + Duration::from_millis(250) {
            last_trace = t;
            let stats = node.stats().await.unwrap();
            let table = match node.discovery() {
                Some(d) => d.stats().await.map_or(0, |s| s.table_size),
                None => 0,
            };
            eprintln!(
                "  {t:.2?}: {n} peers, {} candidates, {} dials, discovery table {table}",
                stats.candidates, stats.pool.dials
            );
        }
        if t >= GIVE_UP {
            let candidates = node.stats().await.unwrap().candidates;
            stuck = Some((n, candidates));
            break GIVE_UP;
        }
        tokio::time::sleep(POLL).await;
    };
    node.shutdown().await;
    net.settle(Duration::from_secs(5)).await;
    ColdStart { first_peer: first_peer.unwrap_or(GIVE_UP), ten: ten.unwrap_or(GIVE_UP), target, stuck }
}

/// Raw secp256k1 rates (operations per second, single thread) over ~100 ms each.
struct Ec {
    ecdh: f64,
    pubkey: f64,
    sign: f64,
    recover: f64,
}

impl Ec {
    fn measure() -> Self {
        let a = NodeKey::from_bytes(&[0x11; 32]).unwrap();
        let b: PublicKey = NodeKey::from_bytes(&[0x22; 32]).unwrap().public();
        let digest = Message::from_digest([7; 32]);
        let sig = SECP256K1.sign_ecdsa_recoverable(&digest, a.secret());
        Self {
            ecdh: rate(|| {
                black_box(shared_secret_point(black_box(&b), a.secret()));
            }),
            pubkey: rate(|| {
                black_box(a.secret().public_key(SECP256K1));
            }),
            sign: rate(|| {
                black_box(SECP256K1.sign_ecdsa_recoverable(black_box(&digest), a.secret()));
            }),
            recover: rate(|| {
                black_box(SECP256K1.recover_ecdsa(black_box(&digest), &sig).unwrap());
            }),
        }
    }

    /// Seconds of raw EC work in [`TARGET`] full handshakes (both sides), on one core.
    fn bound(&self) -> f64 {
        let one = HANDSHAKE_ECDH / self.ecdh
            + HANDSHAKE_PUBKEY / self.pubkey
            + 1.0 / self.sign
            + 1.0 / self.recover;
        TARGET as f64 * one
    }
}

/// Rate of `op` over ~100 ms.
fn rate(op: impl Fn()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_millis(100) {
        for _ in 0..8 {
            op();
        }
        n += 8;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Criterion times the cold starts; every sample is also kept for the phase report.
fn bench_cold_start(c: &mut Criterion, rt: &Runtime, net: &Network) -> Vec<(Start, Vec<ColdStart>)> {
    let mut g = c.benchmark_group("pool cold start");
    // One fresh node per iteration, each a second or more: few samples, no extrapolation.
    g.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_millis(1));
    g.measurement_time(Duration::from_secs(1));
    let mut report = Vec::new();
    let mut run = 0;
    for (how, name) in [
        (Start::Discovery, format!("{TARGET} peers from one bootnode of {NETWORK} (discovery)")),
        (Start::KnownPeers, format!("{TARGET} peers from {KNOWN} known enodes")),
    ] {
        let mut samples = Vec::new();
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    run += 1;
                    let s = rt.block_on(cold_start(net, how, run));
                    samples.push(s);
                    total += s.target;
                }
                total
            })
        });
        report.push((how, samples));
    }
    g.finish();
    report
}

fn cold_start_report(report: &[(Start, Vec<ColdStart>)], ec: &Ec) {
    let bound = ec.bound();
    println!("\npool cold start ({NETWORK}-node loopback network, medians over each run's samples):");
    println!(
        "  raw secp256k1: ECDH {:.0}/s, pubkey {:.0}/s, sign {:.0}/s, recover {:.0}/s",
        ec.ecdh, ec.pubkey, ec.sign, ec.recover
    );
    println!(
        "  limit: {TARGET} full handshakes × ({HANDSHAKE_ECDH} ECDH + {HANDSHAKE_PUBKEY} pubkey + sign + recover) \
         = {:.1} ms on one core",
        bound * 1e3
    );
    for (how, samples) in report {
        let label = match how {
            Start::Discovery => "one bootnode (discovery)".to_owned(),
            Start::KnownPeers => format!("{KNOWN} known enodes"),
        };
        let ms = |f: fn(&ColdStart) -> Duration| median(samples.iter().map(f).collect()).as_secs_f64() * 1e3;
        let target = ms(|s| s.target);
        println!(
            "  {label:<26} n={:<3} first peer {:>7.1} ms, 10 peers {:>7.1} ms, {TARGET} peers {:>7.1} ms \
             → {:.1}× the limit",
            samples.len(),
            ms(|s| s.first_peer),
            ms(|s| s.ten),
            target,
            target / 1e3 / bound,
        );
        let mut all: Vec<Duration> = samples.iter().map(|s| s.target).collect();
        all.sort_unstable();
        let all: Vec<String> = all.iter().map(|d| format!("{:.0}", d.as_secs_f64() * 1e3)).collect();
        println!("  {:<26} every sample to {TARGET} peers (ms): {}", "", all.join(" "));
        let stuck: Vec<String> = samples
            .iter()
            .filter_map(|s| s.stuck)
            .map(|(peers, candidates)| format!("{peers} peers of {candidates} candidates"))
            .collect();
        if !stuck.is_empty() {
            println!(
                "  {:<26} {} runs not at {TARGET} peers after {GIVE_UP:?} (counted as {GIVE_UP:?}): {}",
                "",
                stuck.len(),
                stuck.join(", ")
            );
        }
    }
}

/// The measured node, in a process of its own. Prints its enode, then reads commands on
/// stdin: an enode (dial it), `report N` (wait for N peers, then print `N rss hwm`), `exit`.
fn child() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let chain = Arc::new(MemoryChain::builder().blocks(2).build());
        let pool = PoolConfig::builder().max_peers(50).min_peers(50).build().unwrap();
        let node = NodeBuilder::new(eth_config(&chain), chain)
            .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
            .pool(pool)
            .start()
            .await
            .unwrap();
        println!("{}", Enode::new(node.peer_id(), node.local_addr()));
        let (tx, mut lines) = tokio::sync::mpsc::channel::<String>(64);
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                if tx.blocking_send(line).is_err() {
                    return;
                }
            }
        });
        while let Some(line) = lines.recv().await {
            if let Some(n) = line.strip_prefix("report ") {
                let n: usize = n.parse().unwrap();
                let end = Instant::now() + GIVE_UP;
                while node.peers().await.unwrap().len() < n {
                    assert!(Instant::now() < end, "child: {n} sessions not reached");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                // Let the sessions' first exchanges (Status, first p2p Ping) finish.
                tokio::time::sleep(Duration::from_secs(2)).await;
                let (rss, hwm) = (memory_kib("VmRSS"), memory_kib("VmHWM"));
                println!("{} {rss} {hwm}", node.peers().await.unwrap().len());
            } else if line == "exit" {
                break;
            } else {
                node.add_peer(line.parse().unwrap()).await.unwrap();
            }
        }
        node.shutdown().await;
    });
}

/// Starts the child, serves it 50 peers from this process and prints its memory at each step.
fn memory_report(rt: &Runtime) {
    let chain = Arc::new(MemoryChain::builder().blocks(2).build());
    let eth = eth_config(&chain);
    let peers: Vec<Node> = rt.block_on(async {
        let mut peers = Vec::new();
        for i in 0..*MEMORY_STEPS.last().unwrap() {
            let node = NodeBuilder::new(eth.clone(), chain.clone())
                .key(key_from_seed(300_000 + i as u64))
                .listen(SocketAddr::from(([127, 4, i as u8 + 1, 1], 0)))
                .start()
                .await
                .unwrap();
            peers.push(node);
        }
        peers
    });
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the measured node");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let _enode: Enode = line.trim().parse().expect("child prints its enode");
    let mut report = |stdin: &mut std::process::ChildStdin, n: usize| -> (u64, u64) {
        writeln!(stdin, "report {n}").unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let v: Vec<u64> = line.split_whitespace().map(|x| x.parse().unwrap()).collect();
        assert_eq!(v.len(), 3, "child report {line:?}");
        (v[1], v[2])
    };
    let base = report(&mut stdin, 0);
    let mut steps = Vec::new();
    let mut dialed = 0;
    for n in MEMORY_STEPS {
        while dialed < n {
            let p = &peers[dialed];
            writeln!(stdin, "{}", Enode::new(p.peer_id(), p.local_addr())).unwrap();
            dialed += 1;
        }
        steps.push((n, report(&mut stdin, n)));
    }
    writeln!(stdin, "exit").unwrap();
    let _ = child.wait();
    rt.block_on(async {
        for p in &peers {
            p.shutdown().await;
        }
    });

    println!("\npool memory (one node in its own process, 2 runtime workers, idle sessions):");
    println!(
        "  no session: VmRSS {:.1} MiB, VmHWM {:.1} MiB",
        base.0 as f64 / 1024.0,
        base.1 as f64 / 1024.0
    );
    for (n, (rss, hwm)) in &steps {
        println!(
            "  {n:>2} sessions: VmRSS {:.1} MiB, VmHWM {:.1} MiB, {:.0} KiB per session over the baseline",
            *rss as f64 / 1024.0,
            *hwm as f64 / 1024.0,
            (*rss as f64 - base.0 as f64) / *n as f64,
        );
    }
    let (n0, (r0, _)) = steps[0];
    let (n1, (r1, _)) = *steps.last().unwrap();
    println!(
        "  slope {}→{} sessions: {:.0} KiB per session",
        n0,
        n1,
        (r1 as f64 - r0 as f64) / (n1 - n0) as f64
    );
}

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
        return;
    }
    // `cargo bench --bench pool -- cold` or `-- memory` runs one part (the network takes a
    // minute or two to build and settle).
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run_cold = filter.as_deref().is_none_or(|f| f.contains("cold") || "pool cold start".contains(f));
    let run_memory = filter.as_deref().is_none_or(|f| f.contains("memory"));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if run_cold {
        let mut criterion = Criterion::default().configure_from_args();
        let net = rt.block_on(Network::start());
        let report = bench_cold_start(&mut criterion, &rt, &net);
        criterion.final_summary();
        let ec = Ec::measure();
        cold_start_report(&report, &ec);
        rt.block_on(async {
            for node in &net.nodes {
                node.shutdown().await;
            }
        });
    }
    if run_memory {
        memory_report(&rt);
    }
}
