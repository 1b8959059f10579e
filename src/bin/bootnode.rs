//! `bootnode`: a discovery-only node (discv4 and discv5 on one UDP port) that helps other
//! nodes find each other.
//!
//! Thin by design: parse the flags, set up logging, build the configs, run until ctrl-c or
//! SIGTERM, shut down cleanly. Every error is one line on stderr and a non-zero exit.

use std::{
    io::Write,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use clap::Parser;
use ethp2p::{
    discovery::{v4::Discv4Config, Discovery, DiscoveryConfig, Discv5Config, IngressLimits},
    metrics::MetricsServer,
    nat::{local_ip_towards, NatConfig},
    record::{default_key_path, parse_bootnode_list, Bootnode},
    ChainSpec, Enode, LocalEnr, NetRestrict, NodeKey,
};
use tracing::info;

/// Our last signed record, in the data directory: the next start continues it.
const ENR_FILE: &str = "enr";
/// How often the metrics are refreshed from the discovery stats.
const METRICS_REFRESH: Duration = Duration::from_secs(5);

/// A discv4 + discv5 bootnode on one UDP port.
///
/// At start it prints its enode URL and its ENR on stdout, one per line; logs go to stderr,
/// filtered by RUST_LOG (default `info`).
#[derive(Debug, Parser)]
#[command(name = "bootnode", version)]
struct Args {
    /// Data directory; holds the node key unless --nodekey or --nodekeyhex is given.
    #[arg(long, value_name = "DIR", default_value = "./bootnode-data")]
    datadir: PathBuf,

    /// Node key file (64 hex characters, mode 0600); created if missing.
    /// [default: DATADIR/nodekey]
    #[arg(long, value_name = "FILE", conflicts_with = "nodekeyhex")]
    nodekey: Option<PathBuf>,

    /// Node key as 64 hex characters (prefer a key file: command lines are visible to
    /// other users).
    #[arg(long, value_name = "HEX")]
    nodekeyhex: Option<String>,

    /// Write a new node key to FILE (mode 0600) and exit. Never overwrites an existing file.
    #[arg(long, value_name = "FILE")]
    genkey: Option<PathBuf>,

    /// Print the node's public key (the 128 hex characters of its enode URL, as geth's
    /// bootnode did) and exit.
    #[arg(long)]
    writeaddress: bool,

    /// UDP listen address for discovery (port 0 picks a free port). Give it twice, once
    /// per IP family, to run dual stack: `--addr 0.0.0.0:30301 --addr [::]:30301` serves
    /// IPv4 and IPv6 nodes at once and puts both addresses in the ENR (`ip`/`udp`,
    /// `ip6`/`udp6`); the enode URL printed is the first address's.
    #[arg(long, value_name = "IP:PORT", default_value = "0.0.0.0:30301", action = clap::ArgAction::Append)]
    addr: Vec<SocketAddr>,

    /// Advertised address: `none` (the listen IP, or the IP of the default route when
    /// listening on all interfaces) or `extip:<IP>` (dual stack: for that IP's family; the
    /// other family advertises its listen IP).
    #[arg(long, value_name = "MODE", default_value = "none")]
    nat: String,

    /// Talk only to these networks: comma-separated CIDRs, e.g. `10.0.0.0/8,192.168.0.0/16`.
    /// [default: no restriction]
    #[arg(long, value_name = "CIDR,...")]
    netrestrict: Option<String>,

    /// Chain whose fork id goes in the ENR (`eth` entry): mainnet, sepolia, holesky, hoodi,
    /// bsc, or the path of a chain spec file (JSON).
    #[arg(long, value_name = "NAME|PATH", default_value = "mainnet")]
    network: String,

    /// Comma-separated ENRs or enode URLs to join an existing set of bootnodes.
    /// [default: none — a bootnode contacts no one and only answers]
    #[arg(long, value_name = "LIST")]
    bootnodes: Option<String>,

    /// Run discv4. Without --v4 or --v5, both run on the same port.
    #[arg(long)]
    v4: bool,

    /// Run discv5. Without --v4 or --v5, both run on the same port.
    #[arg(long)]
    v5: bool,

    /// Seconds between the info lines with table size, sessions and packet rates.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    stats_interval: u64,

    /// Kernel receive and send buffer of the UDP socket, in bytes (Linux caps it at
    /// net.core.rmem_max / wmem_max; raise those for a busy public bootnode).
    #[arg(long, value_name = "BYTES", default_value_t = ethp2p::discovery::DEFAULT_SOCKET_BUFFER,
          value_parser = clap::value_parser!(usize))]
    socket_buffer: usize,

    /// Threads that recover discv4 signatures and sign replies beside the discv4 task
    /// (0: all on the task). Default: the available parallelism.
    #[arg(long, value_name = "N", default_value_t = ethp2p::discovery::v4::default_crypto_workers())]
    crypto_workers: usize,

    /// Datagrams per second taken from one IP before shedding (`off`: no limit).
    #[arg(long, value_name = "N|off", default_value_t = ethp2p::discovery::DEFAULT_PACKETS_PER_IP.to_string())]
    packets_per_ip: String,

    /// Datagrams per second taken from one /24 (IPv4) or /48 (IPv6), so that a flood from
    /// one subnet cannot use up the global budget (`off`: no limit).
    #[arg(long, value_name = "N|off", default_value_t = ethp2p::discovery::DEFAULT_PACKETS_PER_SUBNET.to_string())]
    packets_per_subnet: String,

    /// Datagrams per second the port takes in total before shedding (`off`: no limit).
    #[arg(long, value_name = "N|off", default_value_t = ethp2p::discovery::DEFAULT_INGEST_BUDGET.to_string())]
    ingest_budget: String,

    /// New discv5 sessions (completed handshakes) per IP per minute; an IP over it is
    /// banned from the port for 10 minutes (`off`: no cap).
    #[arg(long, value_name = "N|off", default_value_t = ethp2p::discovery::DEFAULT_V5_SESSIONS_PER_IP.to_string())]
    v5_sessions_per_ip: String,

    /// Apply the ingest budgets to loopback and private-network sources too (by default
    /// they are exempt: a LAN's nodes are the operator's own).
    #[arg(long)]
    limit_lan: bool,

    /// Serve Prometheus metrics (table size, sessions, packets, candidates) at
    /// http://IP:PORT/metrics; the URL (with the bound port) is the third line on stdout.
    /// [default: off]
    #[arg(long, value_name = "IP:PORT")]
    metrics: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bootnode: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bootnode: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Which protocols run.
#[derive(Debug, Clone, Copy)]
struct Protocols {
    v4: bool,
    v5: bool,
}

/// Everything validated from the flags before anything is bound or written.
#[derive(Debug)]
struct Setup {
    key: NodeKey,
    chain: ChainSpec,
    /// The first listen address, and the other family's when dual stack.
    addr: SocketAddr,
    dual_stack: Option<SocketAddr>,
    /// The IP the record advertises for `addr`.
    advertised_ip: IpAddr,
    /// The IP the record advertises for `dual_stack`; `None` when it would be unspecified
    /// (`[::]` on a host without a route of that family).
    advertised_dual: Option<IpAddr>,
    /// `--nat extip:`: the advertised address is the operator's, never moved by votes.
    fixed_ip: bool,
    netrestrict: NetRestrict,
    bootnodes: Vec<Bootnode>,
    protocols: Protocols,
    limits: IngressLimits,
}

async fn run(args: Args) -> Result<(), String> {
    if let Some(path) = &args.genkey {
        let key = NodeKey::generate();
        key.save(path).map_err(|e| e.to_string())?;
        println!("{}", hex::encode(key.peer_id()));
        return Ok(());
    }
    let setup = setup(&args)?;
    if args.writeaddress {
        println!("{}", hex::encode(setup.key.peer_id()));
        return Ok(());
    }

    let unix_now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let fork_id = setup.chain.fork_id_at_time(unix_now);
    let mut builder = LocalEnr::builder(&setup.key);
    let families = std::iter::once((setup.advertised_ip, setup.addr))
        .chain(setup.dual_stack.and_then(|addr| Some((setup.advertised_dual?, addr))));
    for (ip, addr) in families {
        match ip {
            IpAddr::V4(ip) => builder.ip4(ip),
            IpAddr::V6(ip) => builder.ip6(ip),
        };
        if addr.port() != 0 {
            // The port is known now: the record continued from the last run can be identical.
            match ip {
                IpAddr::V4(_) => builder.udp4(addr.port()),
                IpAddr::V6(_) => builder.udp6(addr.port()),
            };
        }
    }
    // The record continues the last run's (same record, or seq + 1 if anything changed),
    // so nodes that cached it take the new one.
    let record_path = args.datadir.join(ENR_FILE);
    let local = builder.fork_id(fork_id).build_continuing(&record_path).map_err(|e| e.to_string())?;

    let enodes: Vec<Enode> = setup
        .bootnodes
        .iter()
        .filter_map(|b| match b {
            Bootnode::Enode(enode) => Some(*enode),
            Bootnode::Enr(_) => None,
        })
        .collect();
    let enrs: Vec<_> = setup.bootnodes.iter().filter_map(|b| b.enr().cloned()).collect();

    let mut v4_config = Discv4Config::builder();
    v4_config
        .listen_addr(setup.addr)
        .netrestrict(setup.netrestrict.clone())
        .bootnodes(enodes.clone())
        .update_enr_ip(!setup.fixed_ip)
        .crypto_workers(args.crypto_workers);
    let v4_config = v4_config.build().map_err(|e| e.to_string())?;
    let mut v5_config = Discv5Config::builder();
    v5_config
        .listen(setup.addr)
        .netrestrict(setup.netrestrict.clone())
        .fork_filter(setup.chain.fork_filter(u64::MAX, unix_now))
        .bootnodes(enrs);
    for enode in &enodes {
        v5_config.bootnode_enode(*enode);
    }
    if setup.fixed_ip {
        v5_config.disable_enr_update();
    }
    let v5_config = v5_config.build().map_err(|e| e.to_string())?;

    let mut config = DiscoveryConfig::new(
        setup.protocols.v4.then_some(v4_config),
        setup.protocols.v5.then_some(v5_config),
    );
    config.socket_buffer = Some(args.socket_buffer);
    config.limits = setup.limits;
    config.dual_stack = setup.dual_stack;
    let (discovery, mut candidates) =
        Discovery::start(local.clone(), config).await.map_err(|e| format!("cannot start discovery: {e}"))?;
    let save_record = |local: &LocalEnr| {
        if let Err(e) = local.save(&record_path) {
            tracing::warn!(target: "ethp2p::bootnode", path = %record_path.display(), error = %e, "cannot save our record");
        }
    };
    save_record(&local);
    let mut saved_seq = local.seq();
    let metrics = match args.metrics {
        Some(addr) => match MetricsServer::bind(addr).await {
            Ok(server) => Some(Arc::new(server)),
            Err(e) => {
                discovery.shutdown().await;
                return Err(format!("--metrics {addr}: {e}"));
            }
        },
        None => None,
    };
    let bound = discovery.local_addr();
    // The record now carries the bound UDP port (port 0 resolved).
    let enode =
        Enode { peer_id: setup.key.peer_id(), ip: setup.advertised_ip, tcp_port: 0, udp_port: bound.port() };
    {
        // stdout first, before any log line, so scripts can read the two lines (three with
        // --metrics: the metrics URL with the bound port).
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{enode}");
        let _ = writeln!(out, "{}", local.record().to_base64());
        if let Some(m) = &metrics {
            let _ = writeln!(out, "http://{}/metrics", m.local_addr());
        }
        let _ = out.flush();
    }
    init_tracing();
    info!(
        target: "ethp2p::bootnode",
        %bound, dual_stack = ?discovery.dual_stack_addr(), chain = %setup.chain.name, %fork_id, v4 = setup.protocols.v4, v5 = setup.protocols.v5,
        "bootnode running"
    );

    // A bootnode dials nobody: the candidates are only counted.
    let counter = metrics.clone();
    let drain = tokio::spawn(async move {
        while let Some(c) = candidates.recv().await {
            if let Some(m) = &counter {
                m.record(|| ethp2p::metrics::record_candidate(&c));
            }
        }
    });
    // Metrics want fresher numbers than the log lines.
    let mut refresh = tokio::time::interval(METRICS_REFRESH);
    let mut ticker = tokio::time::interval(Duration::from_secs(args.stats_interval));
    ticker.tick().await;
    let mut last = (Instant::now(), discovery.stats().await.unwrap_or_default());
    let mut last_drops = ethp2p::discovery::udp_receive_buffer_drops();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = refresh.tick(), if metrics.is_some() => {
                if let (Some(m), Ok(stats)) = (&metrics, discovery.stats().await) {
                    m.record(|| ethp2p::metrics::record_discovery(&stats));
                }
            }
            _ = ticker.tick() => {
                let now = Instant::now();
                let stats = discovery.stats().await.unwrap_or_default();
                let secs = now.duration_since(last.0).as_secs_f64().max(1e-3);
                // Host-wide: datagrams the kernel dropped because a receive buffer was full.
                let drops = ethp2p::discovery::udp_receive_buffer_drops();
                let kernel_drops = drops.zip(last_drops).map(|(now, before)| now.saturating_sub(before));
                last_drops = drops;
                info!(
                    target: "ethp2p::bootnode",
                    table = stats.table_size,
                    table_ipv4 = stats.table_by_family[0],
                    table_ipv6 = stats.table_by_family[1],
                    sessions = stats.sessions,
                    packets_in_per_s = format!("{:.1}", (stats.packets_in - last.1.packets_in) as f64 / secs),
                    packets_out_per_s = format!("{:.1}", (stats.packets_out - last.1.packets_out) as f64 / secs),
                    udp_buffer_drops = kernel_drops.map_or("n/a".to_owned(), |d| d.to_string()),
                    socket_drops = stats.socket_drops.map_or("n/a".to_owned(), |d| d.to_string()),
                    shed_per_ip = stats.v4.map_or(0, |v| v.shed_ip),
                    shed_per_subnet = stats.v4.map_or(0, |v| v.shed_subnet),
                    shed_global = stats.v4.map_or(0, |v| v.shed_global),
                    oversize = stats.v4.map_or(0, |v| v.oversize),
                    shed_workers_busy = stats.v4.map_or(0, |v| v.crypto_busy),
                    quiet_lane = stats.v4.map_or(0, |v| v.quiet_lane),
                    v5_banned_ips = stats.v5.as_ref().map_or(0, |v| v.banned_ips),
                    "stats"
                );
                last = (now, stats);
                // Votes or a new fork id changed the record: keep it for the next start.
                if local.seq() != saved_seq {
                    save_record(&local);
                    saved_seq = local.seq();
                }
            }
        }
    }
    info!(target: "ethp2p::bootnode", "shutting down");
    if local.seq() != saved_seq {
        save_record(&local);
    }
    discovery.shutdown().await;
    drain.abort();
    Ok(())
}

/// Validates every flag; nothing is written except a missing key file.
fn setup(args: &Args) -> Result<Setup, String> {
    let nat: NatConfig = args.nat.parse().map_err(|e| format!("--nat: {e}"))?;
    let (addr, dual_stack) = match args.addr[..] {
        [addr] => (addr, None),
        [first, second] if first.is_ipv6() != second.is_ipv6() => (first, Some(second)),
        [first, second] => {
            return Err(format!(
                "--addr {first} --addr {second}: dual stack needs one IPv4 and one IPv6 address"
            ))
        }
        _ => return Err("--addr: at most two, one IPv4 and one IPv6".to_owned()),
    };
    // `extip:` names the address of its own family; any other family advertises its listen IP.
    let advertised = |listen: SocketAddr| match nat {
        NatConfig::None => listen_ip(listen.ip()),
        NatConfig::ExtIp(ip) if ip.is_ipv6() == listen.is_ipv6() => Ok(ip),
        NatConfig::ExtIp(_) if dual_stack.is_some() => listen_ip(listen.ip()),
        NatConfig::ExtIp(ip) => Ok(ip),
        other => Err(format!("--nat {other}: a bootnode supports `none` and `extip:<IP>`")),
    };
    let advertised_ip = advertised(addr)?;
    let advertised_dual = match dual_stack {
        Some(second) => Some(advertised(second)?).filter(|ip| !ip.is_unspecified()),
        None => None,
    };
    let netrestrict: NetRestrict = match &args.netrestrict {
        Some(list) => list.parse().map_err(|e| format!("--netrestrict: {e}"))?,
        None => NetRestrict::none(),
    };
    let chain = ChainSpec::from_name_or_path(&args.network).map_err(|e| format!("--network: {e}"))?;
    let bootnodes = match &args.bootnodes {
        Some(list) => parse_bootnode_list(list).map_err(|e| format!("--bootnodes: {e}"))?,
        None => Vec::new(),
    };
    let protocols = match (args.v4, args.v5) {
        (false, false) => Protocols { v4: true, v5: true },
        (v4, v5) => Protocols { v4, v5 },
    };
    let key = if let Some(hex) = &args.nodekeyhex {
        NodeKey::from_hex(hex).map_err(|e| format!("--nodekeyhex: {e}"))?
    } else {
        let path = args.nodekey.clone().unwrap_or_else(|| default_key_path(&args.datadir));
        let (key, created) = NodeKey::load_or_create(&path).map_err(|e| e.to_string())?;
        if created {
            eprintln!("bootnode: created a new node key in {}", path.display());
        }
        key
    };
    let fixed_ip = matches!(nat, NatConfig::ExtIp(_));
    let mut limits = IngressLimits::default();
    limits.packets_per_ip = budget("--packets-per-ip", &args.packets_per_ip)?;
    limits.packets_per_subnet = budget("--packets-per-subnet", &args.packets_per_subnet)?;
    limits.ingest_budget = budget("--ingest-budget", &args.ingest_budget)?;
    limits.v5_sessions_per_ip = budget("--v5-sessions-per-ip", &args.v5_sessions_per_ip)?;
    limits.limit_lan = args.limit_lan;
    Ok(Setup {
        key,
        chain,
        addr,
        dual_stack,
        advertised_ip,
        advertised_dual,
        fixed_ip,
        netrestrict,
        bootnodes,
        protocols,
        limits,
    })
}

/// A budget flag: a positive count, or `off`.
fn budget(flag: &str, value: &str) -> Result<Option<u32>, String> {
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match value.parse::<u32>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => {
            Err(format!("{flag} {value:?}: expected a positive whole number (at most {}) or `off`", u32::MAX))
        }
    }
}

/// The IP to advertise when none is given: the listen IP, or, when listening on all
/// interfaces, the source IP of the default route (found with a UDP `connect`, which sends
/// nothing).
fn listen_ip(ip: IpAddr) -> Result<IpAddr, String> {
    if !ip.is_unspecified() {
        return Ok(ip);
    }
    let probe: IpAddr =
        if ip.is_ipv4() { [192, 0, 2, 1].into() } else { "2001:db8::1".parse().expect("valid") };
    local_ip_towards(probe).or_else(|_| Ok(if ip.is_ipv4() { [127, 0, 0, 1].into() } else { ip }))
}

fn init_tracing() {
    let directives = ethp2p::discovery::log_filter(std::env::var("RUST_LOG").ok().as_deref(), "info");
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Resolves on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
