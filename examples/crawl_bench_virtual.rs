//! The crawler at scale: crawls a virtual discv4 network of light nodes
//! (`test_utils::virtual_net`: one UDP socket per node on its own loopback address, real
//! signed packets, precomputed tables, TCP closed) with the real crawler and its default
//! configuration, and reports when 99% of the nodes were known, the peak memory, and the
//! discv4 crypto floor of the packets exchanged, measured in the same run.
//!
//! ```text
//! cargo run --release --features test-utils --example crawl_bench_virtual -- [NODES]
//! ```
//! Default: 10,000 nodes. The crawl stops after 60 s at the latest.
//!
//! The floor: every discv4 packet is signed once (secp256k1 recoverable signature) by its
//! sender and its key recovered once by its receiver, both in this process; the floor is
//! (packets sent × sign + packets received × recover) / cores. The RLPx probes (refused at
//! once) and everything else come on top.

use std::{
    collections::HashSet,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use ethp2p::{
    crawl::{CrawlConfig, Crawler},
    discovery::{
        v4::{
            proto::{self, Endpoint, Message, Ping},
            Discv4,
        },
        CandidateSource,
    },
    test_utils::{
        crawl::{crawl_net_discv4_config, time_to_99_percent},
        key_from_seed,
        procfs::{cpu_seconds, memory_kib},
        virtual_net::VirtualNet,
    },
    Candidate, LocalEnr, PeerId,
};

/// The issue's bound for 10,000 nodes.
const LIMIT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let nodes: usize = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(10_000);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let hwm_start = memory_kib("VmHWM");
    let started = Instant::now();
    let net = VirtualNet::start(nodes, 1_000_000).await?;
    let hwm_net = memory_kib("VmHWM");
    eprintln!("virtual network: {nodes} nodes up in {:.1?}", started.elapsed());

    let key = key_from_seed(9_999);
    let (discv4, candidates) =
        Discv4::spawn(crawl_net_discv4_config(), LocalEnr::builder(&key).build()?).await?;
    let seed = Candidate::from_enode(&net.enodes()[0], CandidateSource::Discv4);
    let crawler = Crawler::new(CrawlConfig::default(), key).discv4(discv4.clone(), candidates).seeds([seed]);
    let progress = crawler.progress();
    let watch = time_to_99_percent(progress.clone(), nodes);
    // Every 5 s: what the crawl is waiting on (jobs running, jobs queued for a slot).
    let trace = {
        let progress = progress.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                eprintln!(
                    "{:>5.1} s: found {}, answered {}, failed {}, probed {}, jobs in flight {}, queued {}",
                    start.elapsed().as_secs_f64(),
                    progress.found(),
                    progress.answered(),
                    progress.failed(),
                    progress.probed(),
                    progress.in_flight(),
                    progress.queued()
                );
            }
        })
    };
    let cpu_before = cpu_seconds();
    let crawl_started = Instant::now();
    let state = crawler.run(tokio::time::sleep(LIMIT)).await?;
    let crawl_time = crawl_started.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    trace.abort();
    let to_99 = if watch.is_finished() { Some(watch.await?) } else { None };
    let stats = discv4.stats().await?;
    discv4.shutdown().await;
    let hwm = memory_kib("VmHWM");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let ours: HashSet<PeerId> = net.enodes().iter().map(|e| e.peer_id).collect();
    let found = state.nodes().filter(|n| ours.contains(&n.peer_id)).count();
    let answered = state.nodes().filter(|n| n.first_response.is_some()).count();
    let probed = state.nodes().filter(|n| n.probe.is_some()).count();
    println!(
        "nodes {nodes}: found {found} ({:.2}%), answered {answered}, probed {probed}",
        found as f64 * 100.0 / nodes as f64
    );
    match to_99 {
        Some(t) => println!("99% found after {:.2} s", t.as_secs_f64()),
        None => println!("99% not found within the crawl"),
    }
    println!(
        "crawl {:.2} s (ends {} s after the last news, or at {} s); CPU {:.2} s ({:.0}% of {cores} cores)",
        crawl_time.as_secs_f64(),
        CrawlConfig::default().idle.as_secs(),
        LIMIT.as_secs(),
        cpu,
        cpu * 100.0 / crawl_time.as_secs_f64() / cores as f64
    );
    println!(
        "peak memory (VmHWM): {} MiB at start, {} MiB with the network built, {} MiB after the crawl \
         (crawler's share about {} MiB)",
        hwm_start / 1024,
        hwm_net / 1024,
        hwm / 1024,
        hwm.saturating_sub(hwm_net) / 1024
    );
    println!("load average at the end: {}", load.trim());

    // The floor, timed now on one core.
    let (sign, recover) = discv4_costs();
    let virtual_counters = net.counters();
    let signed = stats.packets_out + virtual_counters.sent.load(Ordering::Relaxed);
    let recovered = stats.packets_in + virtual_counters.received.load(Ordering::Relaxed);
    let floor = signed as f64 * sign + recovered as f64 * recover;
    println!(
        "one core: sign {:.1} µs, recover {:.1} µs; {signed} packets signed, {recovered} recovered",
        sign * 1e6,
        recover * 1e6
    );
    let until = to_99.unwrap_or(crawl_time).as_secs_f64();
    println!(
        "discv4 floor: {:.2} CPU-s = {:.2} s on {cores} cores; time to 99% / floor {:.1}x",
        floor,
        floor / cores as f64,
        until / (floor / cores as f64)
    );
    net.shutdown().await;
    Ok(())
}

/// Mean cost of signing one PING and of decoding one (hash check and key recovery), on one
/// core.
fn discv4_costs() -> (f64, f64) {
    const ROUNDS: u32 = 2000;
    let key = key_from_seed(1);
    let at = Endpoint { ip: [127, 0, 0, 1].into(), udp_port: 30303, tcp_port: 30303 };
    let ping = Message::Ping(Ping { from: at, to: at, expiration: u64::MAX / 2, enr_seq: None });
    let t = Instant::now();
    let mut packet = Vec::new();
    for _ in 0..ROUNDS {
        packet = std::hint::black_box(proto::encode(&ping, key.secret())).0;
    }
    let sign = t.elapsed().as_secs_f64() / f64::from(ROUNDS);
    let t = Instant::now();
    for _ in 0..ROUNDS {
        std::hint::black_box(proto::decode(&packet)).expect("valid");
    }
    let recover = t.elapsed().as_secs_f64() / f64::from(ROUNDS);
    (sign, recover)
}
