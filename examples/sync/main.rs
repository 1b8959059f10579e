//! Downloads a whole chain from many peers into a crash-safe store on disk, and serves it.
//!
//! Headers come as a skeleton from one peer filled in parallel by the others (see
//! `syncer.rs`), then bodies and receipts for every block, each checked against its header;
//! complete blocks are appended to `<datadir>/blocks.dat` (see `store.rs`), which a restart
//! resumes from, even after `kill -9`. What is stored is served to other peers, so a second
//! `sync` given this one as `--static` syncs from it.
//!
//! The first line of stdout is our enode URL; with `--exit-synced`, the last one is
//! `synced <number> <hash>`. Progress goes to stderr: a bar on a terminal, a line every
//! `--log-every` seconds otherwise.
//!
//! ```text
//! cargo run --release --example sync -- --network mainnet --datadir ./mainnet-blocks
//! cargo run --release --example sync -- --network ./genesis.json --no-discovery \
//!     --static enode://…@127.0.0.1:30303 --netrestrict 127.0.0.0/8 --listen 127.0.0.1:0 \
//!     --datadir /tmp/sync --exit-synced
//! ```

mod store;
mod syncer;
mod writer;

use std::{
    io::IsTerminal,
    net::SocketAddr,
    path::PathBuf,
    str::FromStr,
    sync::{atomic::Ordering::Relaxed, Arc, OnceLock},
    time::{Duration, Instant},
};

use alloy_consensus::{BlockBody, Header, ReceiptEnvelope, TxEnvelope};
use alloy_primitives::B256;
use clap::Parser;
use ethp2p::discovery::Discv5Config;
use ethp2p::{
    discovery::{dns::DnsConfig, v4::Discv4Config, DiscoveryConfig},
    eth::{mainnet_genesis_header, EthConfig, GetBlockHeaders, StatusInfo},
    node::{Node, NodeBuilder},
    pool::PoolConfig,
    record::{bootnodes, parse_bootnode_list, Bootnode, GethGenesis},
    ChainReader, ChainSpec, Enode, NetRestrict,
};

use crate::{
    store::{Store, StoreError},
    syncer::{Progress, SyncConfig},
};

#[path = "../common/mod.rs"]
mod common;

#[derive(Debug, Parser)]
#[command(about = "Download a chain from many peers into a crash-safe store, and serve it")]
struct Args {
    /// mainnet, sepolia, holesky, hoodi, bsc, or a go-ethereum genesis.json.
    #[arg(long, default_value = "mainnet")]
    network: String,
    /// Where the block store lives (`blocks.dat`).
    #[arg(long, default_value = "./sync-data")]
    datadir: PathBuf,
    /// Comma-separated enode:// or enr: bootnodes; replaces the network's list.
    #[arg(long)]
    bootnodes: Option<String>,
    /// A peer to keep connected (repeatable).
    #[arg(long = "static", value_name = "ENODE")]
    static_peers: Vec<String>,
    /// An EIP-1459 DNS tree to take peers from (`enrtree://KEY@domain`, repeatable).
    #[arg(long, value_name = "URL")]
    dns: Vec<String>,
    /// No discovery: only static peers and DNS trees.
    #[arg(long)]
    no_discovery: bool,
    /// RLPx listen address; discovery (discv4 and discv5) uses the same port on UDP.
    #[arg(long, default_value = "0.0.0.0:30303")]
    listen: SocketAddr,
    /// Only dial and accept these networks (comma-separated CIDRs, e.g. 127.0.0.0/8).
    #[arg(long, default_value = "")]
    netrestrict: NetRestrict,
    /// Requests in flight at most, across the pool.
    #[arg(long, default_value_t = 96)]
    max_in_flight: usize,
    /// Requests in flight per connected peer.
    #[arg(long, default_value_t = 2)]
    per_peer: usize,
    /// Wait for this many peers before the first request.
    #[arg(long, default_value_t = 1)]
    min_peers: usize,
    /// Exit once no peer has blocks past ours (else keep following the head and serving).
    #[arg(long)]
    exit_synced: bool,
    /// Seconds between progress lines when stderr is not a terminal (fractions allowed,
    /// at least 0.1).
    #[arg(long, default_value_t = 5.0)]
    log_every: f64,
}

#[tokio::main]
async fn main() {
    let args: Args = common::init();
    if let Err(e) = run(args).await {
        eprintln!("sync: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // The genesis header is known for mainnet and for a genesis.json; for the other built-in
    // networks it is fetched once from a peer and checked against the network's hash.
    let (spec, genesis) = if args.network.ends_with(".json") || std::path::Path::new(&args.network).is_file()
    {
        let (spec, header) = GethGenesis::from_file(&args.network)?.into_parts();
        (spec, Some(header))
    } else {
        let spec = ChainSpec::from_name_or_path(&args.network)?;
        let header = (spec.network_id == 1).then(mainnet_genesis_header);
        (spec, header)
    };
    // Opened before any networking, so an unwritable store fails at once, naming its path.
    let store = match Store::open(&args.datadir, spec.genesis_hash, genesis.as_ref()) {
        Ok(s) => Some(Arc::new(s)),
        Err(StoreError::NoGenesis { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(s) = &store {
        if s.truncated() > 0 {
            eprintln!("{}: cut {} bytes of a torn last record", s.path().display(), s.truncated());
        }
        eprintln!("{}: resuming at block {}", s.path().display(), s.head().number);
    }

    let status = match &store {
        Some(s) => s.status_info(&spec),
        None => StatusInfo {
            network_id: spec.network_id,
            genesis: spec.genesis_hash,
            fork_id: spec.fork_id(0, spec.genesis_timestamp),
            total_difficulty: spec.genesis_difficulty,
            earliest: 0,
            latest: 0,
            latest_hash: spec.genesis_hash,
        },
    };
    let head = store.as_ref().map(|s| s.head());
    let filter = match &head {
        Some(h) => spec.fork_filter(h.number, h.timestamp),
        None => spec.fork_filter(0, spec.genesis_timestamp),
    };
    let eth = EthConfig::builder(status, filter).build()?;
    let serving = Arc::new(Serving::default());
    if let Some(s) = &store {
        let _ = serving.0.set(s.clone());
    }

    let statics: Vec<Enode> =
        args.static_peers.iter().map(|s| Enode::from_str(s)).collect::<Result<_, _>>()?;
    let pool = PoolConfig::builder().net_restrict(args.netrestrict.clone()).build()?;
    let mut builder =
        NodeBuilder::new(eth, serving.clone()).listen(args.listen).pool(pool).bootnodes(statics);
    if !args.no_discovery {
        let boot = match &args.bootnodes {
            Some(list) => parse_bootnode_list(list)?,
            None => bootnodes(&spec.name)?,
        };
        let mut v5 = Discv5Config::builder();
        v5.listen(args.listen).bootnodes(boot.iter().filter_map(Bootnode::enr).cloned());
        let enodes = boot.iter().filter_map(|b| b.to_candidate().ok()?.enode()).collect();
        let v4 = Discv4Config::builder().listen_addr(args.listen).bootnodes(enodes).build()?;
        builder = builder.discovery(DiscoveryConfig::new(Some(v4), Some(v5.build()?)));
    }
    if !args.dns.is_empty() {
        builder = builder.dns(args.dns.clone(), DnsConfig::default());
    }
    let node = builder.start().await?;
    println!("{}", node.enode());

    let store = match store {
        Some(s) => s,
        None => {
            let genesis = fetch_genesis(&node, spec.genesis_hash).await?;
            let s = Arc::new(Store::open(&args.datadir, spec.genesis_hash, Some(&genesis))?);
            let _ = serving.0.set(s.clone());
            s
        }
    };

    let progress = Arc::new(Progress::default());
    let display = tokio::spawn(show_progress(progress.clone(), args.log_every.max(0.1)));
    let config = SyncConfig {
        max_in_flight: args.max_in_flight.max(1),
        per_peer: args.per_peer.max(1),
        exit_when_synced: args.exit_synced,
        min_peers: args.min_peers,
        ..SyncConfig::default()
    };
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let result = syncer::run(node.clone(), store.clone(), config, progress.clone(), stop).await;
    display.abort();
    // How the pool judged each peer: liars and empty answerers end low or banned.
    if let (Ok(peers), Ok(stats)) = (node.peers().await, node.stats().await) {
        for p in peers {
            eprintln!("peer {} score {}", p.addr, p.score());
        }
        eprintln!("peers banned: {}", stats.pool.bans);
    }
    node.shutdown().await;
    let head = result?;
    eprintln!(
        "stored {} blocks this run; {} retries, {} hedged, {} disputed answers",
        progress.blocks.load(Relaxed),
        progress.retries.load(Relaxed),
        progress.hedged.load(Relaxed),
        progress.disputes.load(Relaxed)
    );
    println!("synced {} {}", head.number, head.hash());
    Ok(())
}

/// Asks peers for block 0 until one returns the network's genesis.
async fn fetch_genesis(node: &Node, hash: B256) -> Result<Header, Box<dyn std::error::Error>> {
    loop {
        let request = GetBlockHeaders { origin: 0u64.into(), count: 1, skip: 0, reverse: false };
        match node.get_block_headers(request).await {
            Ok((_, h)) if h.first().is_some_and(|h| h.hash() == hash) => return Ok(h[0].inner().clone()),
            Err(ethp2p::NodeError::Shutdown) => return Err("the node shut down".into()),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// What the node serves: the store, once it is open (nothing before, when the genesis
/// header must first be fetched).
#[derive(Debug, Default)]
struct Serving(OnceLock<Arc<Store>>);

impl ChainReader for Serving {
    fn header_by_number(&self, number: u64) -> Option<Header> {
        self.0.get()?.header_by_number(number)
    }
    fn header_by_hash(&self, hash: &B256) -> Option<Header> {
        self.0.get()?.header_by_hash(hash)
    }
    fn body(&self, hash: &B256) -> Option<BlockBody<TxEnvelope>> {
        self.0.get()?.body(hash)
    }
    fn receipts(&self, hash: &B256) -> Option<Vec<ReceiptEnvelope>> {
        self.0.get()?.receipts(hash)
    }
}

/// A progress bar on a terminal; a plain line every `every` seconds otherwise.
async fn show_progress(p: Arc<Progress>, every: f64) {
    let tty = std::io::stderr().is_terminal();
    let bar = tty.then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{elapsed_precise} {wide_bar} {pos}/{len} blocks {msg}")
                .expect("a valid template"),
        );
        bar
    });
    let period = if tty { Duration::from_millis(250) } else { Duration::from_secs_f64(every) };
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    // Rates over the last few seconds: (when, headers, bytes) samples.
    let mut samples = std::collections::VecDeque::from([(Instant::now(), 0u64, 0u64)]);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let (headers, bytes) = (p.headers.load(Relaxed), p.bytes.load(Relaxed));
        samples.push_back((now, headers, bytes));
        while samples.len() > 2 && now.duration_since(samples[0].0) > Duration::from_secs(5) {
            samples.pop_front();
        }
        let (t0, h0, b0) = samples[0];
        let secs = now.duration_since(t0).as_secs_f64().max(1e-3);
        let (stored, target) = (p.stored.load(Relaxed), p.target.load(Relaxed));
        let msg = format!(
            "{:.0} headers/s, {:.2} MB/s, {} peers ({} in use), {} in flight, {} retries",
            (headers - h0) as f64 / secs,
            (bytes - b0) as f64 / secs / 1e6,
            p.peers.load(Relaxed),
            p.in_use.load(Relaxed),
            p.in_flight.load(Relaxed),
            p.retries.load(Relaxed),
        );
        match &bar {
            Some(bar) => {
                bar.set_length(target.max(stored));
                bar.set_position(stored);
                bar.set_message(msg);
            }
            None => eprintln!("block {stored}/{} {msg}", target.max(stored)),
        }
    }
}
