//! Crawls a devp2p network over discv4 and discv5, probes every node over RLPx, and writes a
//! SQLite database, go-ethereum's nodes.json and a summary.
//!
//! ```text
//! cargo run --release --example crawler -- --network mainnet --db mainnet.db --nodes-json nodes.json
//! cargo run --release --example crawler -- --probe enode://<id>@1.2.3.4:30303
//! ```

use std::{net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use clap::Parser;
use ethp2p::discovery::CandidateSource;
use ethp2p::discovery::Discv5;
use ethp2p::discovery::Discv5Config;
use ethp2p::discovery::{Discovery, DiscoveryConfig, IngressLimits};
use ethp2p::{
    crawl::{
        probe, unix_now, write_nodes_json, ApiConfig, ApiServer, CheckConfig, Checker, CrawlConfig,
        CrawlState, CrawledNode, Crawler, ProbeConfig, SqliteStore, Summary,
    },
    discovery::v4::{Discv4, Discv4Config},
    eth::EthVersion,
    record::{bootnodes, parse_bootnode_list, Bootnode},
    rlpx::RlpxListener,
    ChainSpec, Enode, LocalEnr, NetRestrict, NodeKey,
};
use indicatif::{ProgressBar, ProgressStyle};

mod common;

#[derive(Debug, Parser)]
#[command(about = "Crawl an Ethereum devp2p network (discv4 + discv5) and probe its nodes")]
struct Args {
    /// Network whose built-in bootnodes start the crawl (mainnet, sepolia, holesky, hoodi, bsc,
    /// or a chain file). When given, outputs keep only nodes whose fork id it accepts.
    #[arg(long)]
    network: Option<String>,
    /// Comma-separated enode:// or enr: bootnodes; replaces the network's list.
    #[arg(long)]
    bootnodes: Option<String>,
    /// Crawl discv4 (default: both discv4 and discv5).
    #[arg(long)]
    v4: bool,
    /// Crawl discv5 (default: both discv4 and discv5).
    #[arg(long)]
    v5: bool,
    /// Concurrent requests and probes.
    #[arg(long, default_value_t = ethp2p::crawl::DEFAULT_WORKERS)]
    workers: usize,
    /// Longest crawl, e.g. 90s, 30m, 2h.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    timeout: Duration,
    /// Stop once nothing is in flight and nothing new appeared for this long.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    idle: Duration,
    /// SQLite database; a rerun updates it and continues from the nodes it holds.
    #[arg(long, default_value = "crawl.db")]
    db: PathBuf,
    /// Also write go-ethereum's nodes.json here.
    #[arg(long)]
    nodes_json: Option<PathBuf>,
    /// Do not dial nodes over RLPx.
    #[arg(long)]
    no_probe: bool,
    /// Probe this one enode:// URL, print the result as JSON and exit.
    #[arg(long, value_name = "ENODE")]
    probe: Option<String>,
    /// Local UDP address for discv5; discv4 uses the next port (0: any free ports).
    #[arg(long, default_value = "0.0.0.0:0")]
    listen: SocketAddr,
    /// Crawl IPv6 nodes too: discv5's and discv4's address of the other family (e.g.
    /// `[::]:0`; discv4 again on the next port). Default: one family, --listen's.
    #[arg(long, value_name = "IP:PORT")]
    listen6: Option<SocketAddr>,
    /// Per-probe connect and handshake timeout.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    probe_timeout: Duration,
    /// The eth versions probes offer, comma-separated (e.g. `69,70`). Default: all, 72 to 66.
    #[arg(long, value_delimiter = ',')]
    eth: Vec<EthVersion>,
    /// Keep crawling: start a round this often (e.g. 30m), each a row in `crawls`, until
    /// ctrl-c. Without it, one round and exit.
    #[arg(long, value_parser = parse_duration)]
    every: Option<Duration>,
    /// Mark a node gone (not deleted) after this many rounds in a row without seeing it up.
    #[arg(long, default_value_t = ethp2p::crawl::DEFAULT_GONE_AFTER)]
    gone_after: u32,
    /// Serve the HTTP API and page here (e.g. 127.0.0.1:8080): /, /api/summary, /api/nodes,
    /// /api/nodes/{id}, /api/enodes, POST /api/check, /metrics.
    #[arg(long, value_name = "IP:PORT")]
    http: Option<SocketAddr>,
    /// Only contact addresses in these CIDR networks (comma-separated), in the crawl and in
    /// /api/check. Default: no restriction.
    #[arg(long, default_value = "")]
    netrestrict: NetRestrict,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("bad duration {text:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "ms" => return Ok(Duration::from_millis(n)),
        _ => return Err(format!("bad duration unit in {text:?} (use ms, s, m or h)")),
    };
    Ok(Duration::from_secs(secs))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Args = common::init();
    let key = NodeKey::generate();
    let probe_rlpx = ProbeConfig::default_rlpx(args.probe_timeout);
    let probe_config = if args.eth.is_empty() {
        ProbeConfig::with_timeout(args.probe_timeout)
    } else {
        ProbeConfig::with_versions(args.probe_timeout, &args.eth)
    };

    if let Some(url) = &args.probe {
        let enode = Enode::from_str(url)?;
        let result = probe(&enode, &key, &probe_config).await;
        println!("{}", serde_json::to_string(&result)?);
        return Ok(());
    }

    let network = args.network.as_deref().unwrap_or("mainnet");
    let boot = match &args.bootnodes {
        Some(list) => parse_bootnode_list(list)?,
        None => bootnodes(network)?,
    };
    let spec = args.network.as_deref().map(ChainSpec::from_name_or_path).transpose()?;
    let (use_v4, use_v5) = if args.v4 || args.v5 { (args.v4, args.v5) } else { (true, true) };

    let store = SqliteStore::open(&args.db)?;
    let restored = store.load()?;
    eprintln!("{} nodes from {}; {} bootnodes", restored.len(), args.db.display(), boot.len());

    let config = CrawlConfig::builder()
        .workers(args.workers)
        .duration(args.timeout)
        .idle(args.idle)
        .probe((!args.no_probe).then_some(probe_config))
        .gone_after(args.gone_after)
        .build()?;
    let mut crawler = Crawler::new(config, key.clone()).sink(store).restore(restored);
    // Each bootnode is a seed for every protocol that can ask it: discv4 for all, discv5 for
    // those given as ENRs.
    let mut seeds = Vec::new();
    for candidate in boot.iter().filter_map(|b| b.to_candidate().ok()) {
        if use_v4 {
            seeds.push(ethp2p::Candidate { source: CandidateSource::Discv4, ..candidate.clone() });
        }
        if use_v5 && candidate.enr.is_some() {
            seeds.push(ethp2p::Candidate { source: CandidateSource::Discv5, ..candidate });
        }
    }
    crawler = crawler.seeds(seeds);

    // Nodes may dial us too (NAT'd ones can only do that): RLPx on the discovery port's
    // number over TCP (any free port with --listen :0), advertised in our records.
    let rlpx_listener = RlpxListener::bind(args.listen, key.clone(), probe_rlpx.clone()).await?;
    let rlpx_port = rlpx_listener.local_addr().port();
    eprintln!("RLPx on {}", rlpx_listener.local_addr());
    crawler = crawler.rlpx_listener(rlpx_listener);
    let local_record = || LocalEnr::builder(&key).tcp4(rlpx_port).build();

    let mut services = Vec::new();
    if use_v5 {
        let enrs: Vec<_> = boot.iter().filter_map(Bootnode::enr).cloned().collect();
        let mut builder = Discv5Config::builder();
        builder.listen(args.listen).bootnodes(enrs).netrestrict(args.netrestrict.clone());
        let local = local_record()?;
        let (discv5, candidates) = match args.listen6 {
            None => Discv5::start(local, builder.build()?).await?,
            Some(listen6) => {
                // Dual stack: one socket per family, through `Discovery` (discv5 alone).
                let mut config = DiscoveryConfig::new(None, Some(builder.build()?));
                config.dual_stack = Some(listen6);
                let (discovery, candidates) = Discovery::start(local, config).await?;
                (
                    discovery.v5().expect("discv5 runs").clone(),
                    candidates.into_parts().1.expect("discv5 runs"),
                )
            }
        };
        eprintln!("discv5 on {}", discv5.local_addr());
        services.push(Service::V5(discv5.clone()));
        crawler = crawler.discv5(discv5, candidates);
    }
    if use_v4 {
        let enodes: Vec<Enode> = boot
            .iter()
            .filter_map(|b| match b {
                Bootnode::Enode(e) => Some(*e),
                other => other.to_candidate().ok()?.enode(),
            })
            .collect();
        let mut listen = args.listen;
        if listen.port() != 0 {
            listen.set_port(listen.port() + 1);
        }
        let config = Discv4Config::builder()
            .listen_addr(listen)
            .bootnodes(enodes)
            .netrestrict(args.netrestrict.clone())
            .build()?;
        let mut config = config;
        config.tcp_port = Some(rlpx_port);
        let local = local_record()?;
        let (discv4, candidates) = match args.listen6 {
            None => Discv4::spawn(config, local).await?,
            Some(mut listen6) => {
                if listen6.port() != 0 {
                    listen6.set_port(listen6.port() + 1);
                }
                // As `Discv4::spawn`: no ingest budget (the crawler asks; answers come back).
                let mut dual = DiscoveryConfig::new(Some(config), None);
                dual.dual_stack = Some(listen6);
                dual.limits = IngressLimits::unlimited();
                let (discovery, candidates) = Discovery::start(local, dual).await?;
                (
                    discovery.v4().expect("discv4 runs").clone(),
                    candidates.into_parts().0.expect("discv4 runs"),
                )
            }
        };
        eprintln!("discv4 on {}", discv4.local_addr());
        services.push(Service::V4(discv4.clone()));
        crawler = crawler.discv4(discv4, candidates);
    }

    // The API reads the database through its own connections; checks go through the
    // crawler's discovery services.
    let api = match args.http {
        Some(listen) => {
            let (mut v4, mut v5) = (None, None);
            for service in &services {
                match service {
                    Service::V4(s) => v4 = Some(s.clone()),
                    Service::V5(s) => v5 = Some(s.clone()),
                }
            }
            let check = CheckConfig::new(args.netrestrict.clone());
            let checker = Checker::spawn(check, key.clone(), v4, v5);
            let mut api = ApiConfig::new(listen, &args.db, Some(checker));
            // Fork readiness: the chosen network's fork id at today's head (its `next` is
            // the next scheduled fork).
            if let Some(spec) = &spec {
                api = api.expected_fork(spec.fork_id(u64::from(u32::MAX), unix_now()));
            }
            let server = ApiServer::start(api).await?;
            eprintln!("HTTP API on http://{}/", server.local_addr());
            Some(server)
        }
        None => None,
    };

    let progress = crawler.progress();
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")?);
    let started = std::time::Instant::now();
    let ticker = {
        let bar = bar.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            loop {
                let secs = started.elapsed().as_secs_f64().max(0.001);
                bar.set_message(format!(
                    "found {}  answered {}  failed {}  probed {} (dialable {})  in flight {}  {:.0} answers/s",
                    progress.found(),
                    progress.answered(),
                    progress.failed(),
                    progress.probed(),
                    progress.dialable(),
                    progress.in_flight(),
                    progress.answered() as f64 / secs
                ));
                bar.tick();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    // ctrl-c ends the current round (its results are saved) and the loop.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop_tx.send(true);
    });
    let stopped = || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let mut round = 0u64;
    loop {
        round += 1;
        let round_started = std::time::Instant::now();
        let report = crawler.round(stopped()).await?;
        bar.suspend(|| {
            eprintln!(
                "round {round}: {} nodes known, {} up, took {:.1}s",
                report.counts.found,
                report.up.len(),
                round_started.elapsed().as_secs_f64()
            )
        });
        write_outputs(&args, spec.as_ref(), crawler.state(), args.every.is_none())?;
        let Some(every) = args.every else { break };
        if *stop_rx.borrow() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(every.saturating_sub(round_started.elapsed())) => {}
            _ = stopped() => break,
        }
    }
    ticker.abort();
    if let Some(api) = api {
        api.shutdown().await;
    }
    bar.finish_and_clear();
    for service in services {
        match service {
            Service::V4(s) => s.shutdown().await,
            Service::V5(s) => s.shutdown().await,
        }
    }
    println!("crawl took {:.1}s; database: {}", started.elapsed().as_secs_f64(), args.db.display());
    Ok(())
}

/// Writes nodes.json and, when `print`, the summary; `--network` keeps the nodes whose fork id
/// (from Status, else from the record) its filter accepts at today's head.
fn write_outputs(
    args: &Args,
    spec: Option<&ChainSpec>,
    state: &CrawlState,
    print: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let filter = spec.map(|spec| spec.fork_filter(u64::from(u32::MAX), unix_now()));
    let keep = |node: &&CrawledNode| match &filter {
        None => true,
        Some(filter) => node
            .probe
            .as_ref()
            .and_then(|p| p.status.as_ref())
            .map(|s| s.fork_id)
            .or(node.fork_id)
            .is_some_and(|id| filter.validate(id).is_ok()),
    };
    let nodes: Vec<&CrawledNode> = state.nodes().filter(keep).collect();
    if let Some(path) = &args.nodes_json {
        write_nodes_json(path, nodes.iter().copied())?;
        eprintln!("wrote {} nodes to {}", nodes.len(), path.display());
    }
    if print {
        println!("{}", Summary::of(nodes.iter().copied()));
    }
    Ok(())
}

enum Service {
    V4(Discv4),
    V5(Discv5),
}
