//! Joins a network, keeps a scored pool of peers and prints it every few seconds; optionally
//! fetches a range of headers through the pool, or serves an in-memory chain.
//!
//! The first line of stdout is our enode URL.
//!
//! A node meant to keep running gets a data directory: `--datadir DIR` keeps the node key
//! in `DIR/nodekey` (created on the first run, unless `--nodekey` names one) and the
//! address book in `DIR/peers.json` (saved periodically and on ctrl-c), so the node comes
//! back with the same identity and redials the peers it knew. `--dns enrtree://…` adds
//! EIP-1459 trees (resolved through `--dns-server IP:PORT` when given, the system's
//! resolver otherwise; each tree is reported on stdout as `dns tree resolved: …` once
//! walked), and `--nat none|extip:IP|upnp|pmp[:GATEWAY]|any` says how to learn and map the
//! public address. `--listen6 [::]:30303` adds the other IP family: RLPx and discovery then
//! take peers over IPv4 and IPv6 at once, and the record carries both addresses.
//!
//! ```text
//! cargo run --release --example node -- --network mainnet --fetch-headers 1..2048
//! cargo run --release --example node -- --no-discovery --static enode://...@127.0.0.1:30303 --listen 127.0.0.1:30304
//! cargo run --release --example node -- --serve-memory-chain 5000 --listen 127.0.0.1:30303 --no-discovery
//! cargo run --release --example node -- --network sepolia --metrics 127.0.0.1:9001
//! cargo run --release --example node -- --datadir ~/.ethp2p --nat upnp \
//!     --dns enrtree://AKA3AM6LPBYEUDMVNU3BSVQJ5AD45Y7YPOHJLEF6W26QOE4VTUDPE@all.mainnet.ethdisco.net
//! cargo run --release --example node -- --network ./genesis.json --import ./chain.rlp \
//!     --listen 127.0.0.1:0 --no-discovery --netrestrict 127.0.0.0/8 --static enode://…@127.0.0.1:30303
//! ```
//!
//! With `--import`, the node serves the blocks of a `geth export` chain file on top of the
//! genesis of `--network` (a go-ethereum `genesis.json`). The file has no receipts: the node
//! fetches them from its peers (name one that has them with `--static`), checks each block's
//! against its header, and prints `receipts imported: N blocks` once it has them all.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Parser;
use ethp2p::discovery::Discv5Config;
use ethp2p::{
    crawl::unix_now,
    discovery::{
        dns::{DnsConfig, HickoryResolver},
        v4::Discv4Config,
        DiscoveryConfig,
    },
    eth::RequestKind,
    eth::{ChainReader, EthConfig, EthVersion, FileChain, GetBlockHeaders, MemoryChain, StatusInfo},
    nat::NatConfig,
    node::{Node, NodeBuilder},
    pool::{Direction, PoolConfig, BOOK_FILE},
    record::{bootnodes, default_key_path, parse_bootnode_list, Bootnode, GethGenesis},
    ChainSpec, Enode, NetRestrict, NodeKey,
};

mod common;

#[derive(Debug, Parser)]
#[command(about = "Join an Ethereum devp2p network with ethp2p's scored pool")]
struct Args {
    /// mainnet, sepolia, holesky, hoodi, bsc, or a chain file.
    #[arg(long, default_value = "mainnet")]
    network: String,
    /// Comma-separated enode:// or enr: bootnodes; replaces the network's list.
    #[arg(long)]
    bootnodes: Option<String>,
    /// No discovery: only the static peers.
    #[arg(long)]
    no_discovery: bool,
    /// A peer to keep connected (repeatable).
    #[arg(long = "static", value_name = "ENODE")]
    static_peers: Vec<String>,
    /// RLPx listen address; discovery (discv4 and discv5) uses the same port on UDP.
    #[arg(long, default_value = "0.0.0.0:30303")]
    listen: SocketAddr,
    /// A second listen address of the other IP family (e.g. `[::]:30303`): RLPx and discovery
    /// then run on IPv4 and IPv6 at once, and the record carries both (`ip`/`ip6`).
    #[arg(long, value_name = "ADDR")]
    listen6: Option<SocketAddr>,
    /// Download and validate headers FROM..TO through the pool, report the rate, and exit.
    #[arg(long, value_name = "FROM..TO")]
    fetch_headers: Option<String>,
    /// Serve N synthetic blocks on top of mainnet's real genesis header.
    #[arg(long, value_name = "N")]
    serve_memory_chain: Option<u64>,
    /// Serve the blocks of this RLP chain file (`geth export`; `--network` must be the chain's
    /// go-ethereum genesis.json), with receipts fetched from peers.
    #[arg(long, value_name = "FILE", conflicts_with = "serve_memory_chain")]
    import: Option<String>,
    /// Only dial and accept these networks (comma-separated CIDRs, e.g. 127.0.0.0/8).
    #[arg(long, default_value = "")]
    netrestrict: NetRestrict,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9001).
    #[arg(long, value_name = "IP:PORT")]
    metrics: Option<SocketAddr>,
    /// Seconds between peer tables.
    #[arg(long, default_value_t = 5)]
    every: u64,
    /// The eth versions to offer, comma-separated (e.g. `69,70`). Default: all, 72 to 66.
    #[arg(long, value_delimiter = ',')]
    eth: Vec<EthVersion>,
    /// Data directory: the node key (`DIR/nodekey`, unless --nodekey is given) and the
    /// address book (`DIR/peers.json`) persist there across runs. Without it, each run has a
    /// fresh key and forgets its peers.
    #[arg(long, value_name = "DIR")]
    datadir: Option<PathBuf>,
    /// Milliseconds between address book saves (besides the one at ctrl-c).
    #[arg(long, value_name = "MS", default_value_t = 300_000)]
    book_save_ms: u64,
    /// The node key: 64 hex characters, or a file holding them (geth's `nodekey` format).
    #[arg(long, value_name = "HEX|FILE")]
    nodekey: Option<String>,
    /// An EIP-1459 DNS tree to take peers from (`enrtree://KEY@domain`; repeatable).
    #[arg(long = "dns", value_name = "URL")]
    dns_trees: Vec<String>,
    /// Resolve the DNS trees through this name server instead of the system's.
    #[arg(long, value_name = "IP:PORT", requires = "dns_trees")]
    dns_server: Option<SocketAddr>,
    /// How to learn and map the public address: none, extip:IP, upnp, pmp[:GATEWAY] or any.
    #[arg(long, default_value = "none")]
    nat: NatConfig,
}

/// The node key: `--nodekey` (hex, else a file), else `DIR/nodekey` (created on the first
/// run), else a fresh one.
fn node_key(args: &Args) -> Result<NodeKey, Box<dyn std::error::Error>> {
    if let Some(given) = &args.nodekey {
        return match NodeKey::from_hex(given) {
            Ok(key) => Ok(key),
            Err(_) => NodeKey::load(Path::new(given)).map_err(|e| format!("--nodekey {given}: {e}").into()),
        };
    }
    let Some(dir) = &args.datadir else { return Ok(NodeKey::generate()) };
    let path = default_key_path(dir);
    let (key, created) = NodeKey::load_or_create(&path)?;
    eprintln!("node key {} {}", if created { "created at" } else { "loaded from" }, path.display());
    Ok(key)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Args = common::init();
    let spec = ChainSpec::from_name_or_path(&args.network)?;
    let key = node_key(&args)?;

    let mut imported = None;
    let (chain, status): (Arc<dyn ChainReader>, StatusInfo) = match args.serve_memory_chain {
        _ if args.import.is_some() => {
            let (spec, genesis) = GethGenesis::from_file(&args.network)?.into_parts();
            let chain = Arc::new(FileChain::from_file(args.import.as_deref().unwrap_or_default(), genesis)?);
            eprintln!("imported blocks 0..={} of {spec}", chain.head_number());
            let status = chain.status_info_for(&spec);
            imported = Some(chain.clone());
            (chain, status)
        }
        Some(n) => {
            if spec.network_id != 1 {
                return Err("--serve-memory-chain builds on mainnet's genesis header".into());
            }
            let chain = Arc::new(MemoryChain::builder().blocks(n).build());
            let status = chain.status_info_for(&spec);
            (chain, status)
        }
        None => {
            // Nothing to serve but the genesis: announce the network's genesis at today's fork.
            let status = StatusInfo {
                network_id: spec.network_id,
                genesis: spec.genesis_hash,
                fork_id: spec.fork_id_at_time(unix_now()),
                total_difficulty: spec.genesis_difficulty,
                earliest: 0,
                latest: 0,
                latest_hash: spec.genesis_hash,
            };
            (Arc::new(MemoryChain::builder().blocks(0).build()), status)
        }
    };
    // A chain with real headers validates forks at its head's time; the others at today's.
    let filter = match &imported {
        Some(c) => spec.fork_filter(c.head().number, c.head().timestamp),
        None => spec.fork_filter(status.latest, unix_now()),
    };
    let mut eth = EthConfig::builder(status, filter);
    if !args.eth.is_empty() {
        eth.versions(&args.eth);
    }
    let eth = eth.build()?;

    let statics: Vec<Enode> =
        args.static_peers.iter().map(|s| Enode::from_str(s)).collect::<Result<_, _>>()?;
    let pool = PoolConfig::builder()
        .net_restrict(args.netrestrict.clone())
        .book_save_interval(std::time::Duration::from_millis(args.book_save_ms.max(1)))
        .build()?;
    let mut builder =
        NodeBuilder::new(eth, chain).key(key).listen(args.listen).pool(pool).bootnodes(statics).nat(args.nat);
    if let Some(addr) = args.listen6 {
        if addr.is_ipv4() == args.listen.is_ipv4() {
            return Err(format!(
                "--listen6 {addr} must be of the other IP family than --listen {}",
                args.listen
            )
            .into());
        }
        builder = builder.listen_dual_stack(addr);
    }
    if let Some(dir) = &args.datadir {
        eprintln!("address book at {}", dir.join(BOOK_FILE).display());
        builder = builder.data_dir(dir);
    }
    if !args.dns_trees.is_empty() {
        builder = builder.dns(args.dns_trees.iter().cloned(), DnsConfig::default());
        if let Some(server) = args.dns_server {
            builder = builder.dns_resolver(HickoryResolver::with_name_servers(&[server]));
        }
    }

    if !args.no_discovery {
        let boot = match &args.bootnodes {
            Some(list) => parse_bootnode_list(list)?,
            None => bootnodes(&spec.name)?,
        };
        // discv4 and discv5 share the RLPx port number on UDP; the node builds our record
        // (key, TCP port, fork id) and feeds what they find to the pool.
        let mut v5 = Discv5Config::builder();
        v5.listen(args.listen)
            .netrestrict(args.netrestrict.clone())
            .bootnodes(boot.iter().filter_map(Bootnode::enr).cloned());
        let enodes = boot.iter().filter_map(|b| b.to_candidate().ok()?.enode()).collect();
        let v4 = Discv4Config::builder()
            .listen_addr(args.listen)
            .netrestrict(args.netrestrict.clone())
            .bootnodes(enodes)
            .build()?;
        let mut discovery = DiscoveryConfig::new(Some(v4), Some(v5.build()?));
        discovery.dual_stack = args.listen6;
        builder = builder.discovery(discovery);
    }

    if let Some(addr) = args.metrics {
        builder = builder.metrics(addr);
    }

    let node = builder.start().await?;
    // `Node::enode` carries the discovery port, which differs from the TCP one with port 0.
    println!("{}", node.enode());
    if let Some(addr) = node.metrics_addr() {
        eprintln!("metrics at http://{addr}/metrics");
    }

    if node.dns().is_some() {
        tokio::spawn(report_dns_trees(node.clone()));
    }

    if let Some(chain) = &imported {
        // BALs first: the receipts report below is what says the chain is ready to serve.
        fetch_block_access_lists(&node, chain).await;
        fetch_receipts(&node, chain).await;
    }

    if let Some(range) = &args.fetch_headers {
        let (from, to) = range.split_once("..").ok_or("--fetch-headers wants FROM..TO")?;
        let (from, to): (u64, u64) = (from.parse()?, to.parse()?);
        while node.peers().await?.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let started = Instant::now();
        let mut next = from;
        while next <= to {
            let count = (to - next + 1).min(512);
            let request = GetBlockHeaders { origin: next.into(), count, skip: 0, reverse: false };
            match node.get_block_headers(request).await {
                Ok((_, headers)) if !headers.is_empty() => next += headers.len() as u64,
                Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(e) => {
                    eprintln!("headers from {next}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        let secs = started.elapsed().as_secs_f64();
        let n = to - from + 1;
        println!("fetched {n} validated headers in {secs:.2}s ({:.0} headers/s)", n as f64 / secs);
    } else {
        let mut tick = tokio::time::interval(Duration::from_secs(args.every.max(1)));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = tick.tick() => {
                    let peers = node.peers().await?;
                    let stats = node.stats().await?;
                    println!(
                        "{} peers ({} in, {} out), {} candidates, {} dials, failures {:?}",
                        peers.len(),
                        stats.inbound,
                        stats.outbound,
                        stats.candidates,
                        stats.pool.dials,
                        stats.dial_failures
                    );
                    println!(
                        "  {:<22} {:<40} {:<4} {:<6} {:>8} {:>6} {:>7}",
                        "address", "client", "dir", "eth", "headers", "score", "uptime"
                    );
                    for p in peers {
                        let rtt = p.latency.rtt(RequestKind::BlockHeaders);
                        // Remote text: cut on characters, not bytes.
                        let client: String = p.client_id.as_deref().unwrap_or("").chars().take(40).collect();
                        println!(
                            "  {:<22} {:<40} {:<4} {:<6} {:>8} {:>6} {:>6}s",
                            p.addr.to_string(),
                            client,
                            match p.direction {
                                Direction::Inbound => "in",
                                Direction::Outbound => "out",
                            },
                            p.eth_version.map_or("-".to_owned(), |v| format!("eth/{}", v.as_u8())),
                            rtt.map_or("-".to_owned(), |d| format!("{}ms", d.as_millis())),
                            p.score(),
                            p.connected_for.as_secs()
                        );
                    }
                }
            }
        }
    }
    node.shutdown().await;
    Ok(())
}

/// Blocks per `GetReceipts` request while filling an imported chain's receipts.
const RECEIPTS_BATCH: usize = 64;
/// Gas per `GetReceipts` request. A receipt byte costs at least ~7.5 gas (log data 8 gas a
/// byte, a 32-byte topic 375), so 40M gas of blocks answer in well under the 10 MiB eth
/// message limit.
const RECEIPTS_BATCH_GAS: u64 = 40_000_000;

/// Fetches the receipts an imported chain file lacks from the node's peers (each list checked
/// against its header's receipts root, by the node and again by the chain).
///
/// Blocks are asked for in batches bounded by gas, then each block that alone used more gas
/// than a batch may, on its own, last: its receipts may not fit in one eth/69 message (geth
/// refuses >10 MiB too, and eth/70's partial receipts are not spoken here), so if asking for
/// them fails the block is reported and served without receipts.
async fn fetch_receipts(node: &Node, chain: &FileChain) {
    let (mut small, big): (Vec<_>, Vec<_>) =
        chain.missing_receipts().into_iter().partition(|h| h.gas_used <= RECEIPTS_BATCH_GAS);
    while !small.is_empty() {
        if !wait_for_peer(node, Duration::from_secs(60)).await {
            eprintln!("receipts: no peer to fetch them from");
            return;
        }
        let mut gas = 0;
        let count = small
            .iter()
            .take(RECEIPTS_BATCH)
            .take_while(|h| {
                gas += h.gas_used;
                gas <= RECEIPTS_BATCH_GAS
            })
            .count()
            .max(1);
        let batch: Vec<_> = small[..count].to_vec();
        match node.get_receipts(batch.clone()).await {
            Ok((_, lists)) if !lists.is_empty() => {
                for (header, list) in batch.iter().zip(lists) {
                    if let Err(e) = chain.import_receipts(&header.hash(), list) {
                        eprintln!("receipts: {e}");
                    }
                }
                small.retain(|h| chain.receipts(&h.hash()).is_none());
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            Err(e) => {
                eprintln!("receipts from block {}: {e}; retrying", batch[0].number);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    for header in big {
        if !wait_for_peer(node, Duration::from_secs(10)).await {
            eprintln!("receipts of block {}: no peer left to ask", header.number);
            continue;
        }
        match node.get_receipts(vec![header.clone()]).await {
            Ok((_, mut lists)) if lists.len() == 1 => {
                if let Err(e) = chain.import_receipts(&header.hash(), lists.remove(0)) {
                    eprintln!("receipts: {e}");
                }
            }
            Ok(_) => eprintln!("receipts of block {}: not served", header.number),
            Err(e) => eprintln!("receipts of block {} (gas used {}): {e}", header.number, header.gas_used),
        }
    }
    let missing = chain.missing_receipts();
    let numbers: Vec<u64> = missing.iter().map(|h| h.number).collect();
    println!(
        "receipts imported: {} blocks; without receipts: {numbers:?}",
        chain.head_number() + 1 - missing.len() as u64
    );
}

/// Fetches the block access lists (eth/71, EIP-8159) of an imported chain's post-Amsterdam
/// blocks from peers that speak eth/71, each checked against its header's hash by the node
/// and again by the chain, so that the node serves them too. Gives up quietly when no peer
/// has them: a BAL may be pruned, and the node then answers with the empty string.
async fn fetch_block_access_lists(node: &Node, chain: &FileChain) {
    let mut missing = chain.missing_block_access_lists();
    let wanted = missing.len();
    let mut failures = 0;
    while !missing.is_empty() && failures < 3 {
        if !wait_for_peer(node, Duration::from_secs(60)).await {
            break;
        }
        let batch: Vec<_> = missing.iter().take(RECEIPTS_BATCH).cloned().collect();
        match node.get_block_access_lists(batch.clone()).await {
            Ok((_, lists)) if lists.iter().any(Option::is_some) => {
                for (header, list) in batch.iter().zip(lists) {
                    if let Some(bal) = list {
                        if let Err(e) = chain.import_block_access_list(&header.hash(), bal) {
                            eprintln!("block access lists: {e}");
                        }
                    }
                }
                let before = missing.len();
                missing.retain(|h| chain.block_access_list(&h.hash()).is_none());
                if missing.len() == before {
                    failures += 1;
                }
            }
            Ok(_) | Err(_) => {
                failures += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    eprintln!("block access lists imported: {} of {wanted}", wanted - missing.len());
}

/// Prints `dns tree resolved: URL seq N, M nodes` once for each tree (and linked tree) when
/// its walk first completes, until the node stops.
async fn report_dns_trees(node: Node) {
    let Some(dns) = node.dns() else { return };
    let mut reported = std::collections::HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let Ok(trees) = dns.status().await else { return };
        for tree in trees {
            if tree.complete && reported.insert(tree.link.to_string()) {
                let seq = tree.seq.map_or("-".to_owned(), |s| s.to_string());
                println!("dns tree resolved: {} seq {seq}, {} nodes", tree.link, tree.nodes);
            }
        }
    }
}

/// Whether the node has a peer within `wait`.
async fn wait_for_peer(node: &Node, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if node.peers().await.map(|p| !p.is_empty()).unwrap_or(false) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}
