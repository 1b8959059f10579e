//! The crawler benchmark: crawls a loopback network of our own nodes (a third discv4-only, a
//! third discv5-only, a third both on one port; one in four with a closed TCP port) and
//! reports how fast nodes are found and answer, the peak memory, and the cryptographic floor
//! of the same crawl measured in the same run.
//!
//! ```text
//! cargo run --release --features test-utils --example crawl_bench -- [NODES] [--no-probe] [--v5-in-flight N]
//! ```
//! Default: 1,000 nodes, with RLPx probes, 256 discv5 requests in flight. The network is built first (outside the timed
//! part); then one crawl runs, like `examples/crawler.rs` does against a real network.
//!
//! The floor: every discv5 node read costs one handshake (two ECDH, one signature, one
//! verification, both sides being in this process) and one signature check per record its
//! NODES answers carry; the sum of the discv5 tables is what the crawl reads. Those unit
//! costs are timed here on one core, and the floor is their total divided by the cores.
//! discv4 (libsecp256k1, one recovery per packet) and the probes come on top.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use enr::k256::{
    self,
    ecdsa::{
        signature::{Signer, Verifier},
        Signature, SigningKey,
    },
};
use ethp2p::discovery::CandidateSource;
use ethp2p::{
    crawl::{CrawlConfig, Crawler, ProbeConfig, Summary},
    discovery::{v4::Discv4, Discv5},
    record::NodeId,
    test_utils::{
        crawl::{crawl_net_discv4_config, crawl_net_discv5_config, time_to_99_percent, CrawlNet},
        key_from_seed,
        procfs::{cpu_seconds, memory_kib},
    },
    Candidate, LocalEnr,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut nodes = 1000usize;
    let mut probe = true;
    let mut in_flight = ethp2p::crawl::DEFAULT_DISCV5_IN_FLIGHT;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-probe" => probe = false,
            "--v5-in-flight" => in_flight = args.next().ok_or("--v5-in-flight N")?.parse()?,
            n => nodes = n.parse()?,
        }
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);

    let started = Instant::now();
    let net = CrawlNet::builder(nodes).start().await?;
    let built = started.elapsed();
    let hwm_net = memory_kib("VmHWM");
    let mut records = 0usize;
    let mut v5_nodes = 0usize;
    for node in net.nodes() {
        if let Some(discv5) = node.discv5() {
            v5_nodes += 1;
            records += discv5.table_entries().await?.len();
        }
    }
    eprintln!("network: {nodes} nodes up in {built:.1?}; {v5_nodes} speak discv5, {records} records in their tables");

    let key = key_from_seed(9_999);
    let (discv5, candidates) =
        Discv5::start(LocalEnr::builder(&key).build()?, crawl_net_discv5_config()).await?;
    let (discv4, candidates_v4) =
        Discv4::spawn(crawl_net_discv4_config(), LocalEnr::builder(&key).build()?).await?;
    let boot = Candidate::from_enr(&net.bootnode(), CandidateSource::Bootnode)?;
    let seeds = [
        Candidate { source: CandidateSource::Discv5, ..boot.clone() },
        Candidate { source: CandidateSource::Discv4, ..boot },
    ];
    let config = CrawlConfig::builder()
        .idle(Duration::from_secs(1))
        .discv5_in_flight(in_flight)
        .probe(probe.then(|| ProbeConfig::with_timeout(Duration::from_secs(5))))
        .build()?;
    let crawler = Crawler::new(config, key)
        .discv5(discv5.clone(), candidates)
        .discv4(discv4.clone(), candidates_v4)
        .seeds(seeds);
    let progress = crawler.progress();

    // When 99% of the network was first known, sampled every 10 ms beside the crawl.
    let watch = time_to_99_percent(progress.clone(), nodes);
    let cpu_before = cpu_seconds();
    let crawl_started = Instant::now();
    let state = crawler.run(std::future::pending()).await?;
    // The crawl ends after `idle` of quiet; that second is not crawling.
    let crawl_time = crawl_started.elapsed().saturating_sub(Duration::from_secs(1));
    let cpu = cpu_seconds() - cpu_before;
    let to_99 = if watch.is_finished() { Some(watch.await?) } else { None };
    discv5.shutdown().await;
    discv4.shutdown().await;
    let hwm = memory_kib("VmHWM");

    let ours: HashSet<NodeId> = net.nodes().iter().map(|n| n.node_id()).collect();
    let found = state.nodes().filter(|n| ours.contains(&n.node_id)).count();
    let answered = state.nodes().filter(|n| n.first_response.is_some()).count();
    let summary = Summary::of(state.nodes());
    println!("{summary}");
    println!(
        "nodes {nodes}, found {found} ({:.1}%), answered {answered}",
        found as f64 * 100.0 / nodes as f64
    );
    match to_99 {
        Some(t) => println!("99% found after {:.2} s", t.as_secs_f64()),
        None => println!("99% never found"),
    }
    println!(
        "crawl {:.2} s (without the final idle second): {:.0} nodes answered/s; CPU {:.2} s ({:.0}% of {cores} cores)",
        crawl_time.as_secs_f64(),
        answered as f64 / crawl_time.as_secs_f64(),
        cpu,
        cpu * 100.0 / crawl_time.as_secs_f64() / cores as f64
    );
    println!(
        "peak memory (VmHWM): {} MiB with the network built, {} MiB after the crawl (+{} MiB)",
        hwm_net / 1024,
        hwm / 1024,
        hwm.saturating_sub(hwm_net) / 1024
    );

    // The floor, timed now on one core.
    let (ecdh, sign, verify) = handshake_costs();
    let enr_verify = enr_verify_cost(&net);
    let floor = v5_nodes as f64 * (2.0 * ecdh + sign + verify) + records as f64 * enr_verify;
    println!(
        "one core: ECDH {:.1} µs, sign {:.1} µs, verify {:.1} µs, ENR check {:.1} µs",
        ecdh * 1e6,
        sign * 1e6,
        verify * 1e6,
        enr_verify * 1e6
    );
    println!(
        "discv5 floor: {v5_nodes} handshakes + {records} record checks = {:.2} CPU-s = {:.2} s on {cores} cores; \
         crawl/floor {:.1}x",
        floor,
        floor / cores as f64,
        crawl_time.as_secs_f64() / (floor / cores as f64)
    );
    net.shutdown().await;
    Ok(())
}

/// Median-free mean of many runs of each primitive discv5 uses in a handshake (k256, as
/// discv5 does).
fn handshake_costs() -> (f64, f64, f64) {
    const ROUNDS: u32 = 500;
    // Random keys from our own key type: k256 0.14 wants a rand_core 0.10 RNG.
    let random_key =
        || SigningKey::from_slice(&ethp2p::NodeKey::generate().secret().secret_bytes()).expect("valid");
    let ours = random_key();
    let theirs = random_key();
    let their_public =
        k256::PublicKey::from_sec1_bytes(&theirs.verifying_key().to_sec1_bytes()).expect("valid");
    let secret = k256::SecretKey::from_slice(&ours.to_bytes()).expect("valid");

    let t = Instant::now();
    for _ in 0..ROUNDS {
        let shared = (their_public.to_projective() * *secret.to_nonzero_scalar()).to_affine();
        std::hint::black_box(shared);
    }
    let ecdh = t.elapsed().as_secs_f64() / f64::from(ROUNDS);

    let message = [7u8; 32];
    let t = Instant::now();
    let mut signature: Option<Signature> = None;
    for _ in 0..ROUNDS {
        signature = Some(std::hint::black_box(ours.sign(&message)));
    }
    let sign = t.elapsed().as_secs_f64() / f64::from(ROUNDS);
    let signature = signature.expect("signed");

    let t = Instant::now();
    for _ in 0..ROUNDS {
        std::hint::black_box(ours.verifying_key().verify(&message, &signature)).expect("valid");
    }
    let verify = t.elapsed().as_secs_f64() / f64::from(ROUNDS);
    (ecdh, sign, verify)
}

/// One record signature check as NODES decoding does it (`Enr::verify`).
fn enr_verify_cost(net: &CrawlNet) -> f64 {
    let records: Vec<_> = net.nodes().iter().take(100).map(|n| n.record()).collect();
    let t = Instant::now();
    let mut checked = 0u32;
    for _ in 0..5 {
        for record in &records {
            assert!(std::hint::black_box(record.verify()));
            checked += 1;
        }
    }
    t.elapsed().as_secs_f64() / f64::from(checked)
}
