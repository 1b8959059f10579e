//! Node start-up: the listener, the address book, discovery, NAT, LAN and the metrics
//! pumps, started in that order, each stopped again if a later one fails. What it starts
//! is handed to the [`NodeService`], which from then on only turns events into pool calls.

use super::*;
use crate::nat::{start_port_mapping, PortMapConfig};
use std::net::IpAddr;
use std::time::SystemTime;

/// Accepted TCP connections waiting for the service's admission check; beyond it the
/// kernel's backlog holds them.
const INBOUND_CAPACITY: usize = 64;
/// A failing `accept` (out of file descriptors) is retried after this pause, not in a loop.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// LAN candidates buffered between the mDNS task and the service.
#[cfg(feature = "lan")]
const LAN_CAPACITY: usize = 64;
/// How often the discovery stats are copied into the node's own metrics registry.
const DISCOVERY_METRICS_INTERVAL: Duration = Duration::from_secs(5);

pub(in crate::node) struct Setup {
    pub(in crate::node) key: NodeKey,
    pub(in crate::node) listen: SocketAddr,
    /// The other family's listen address, dual stack.
    pub(in crate::node) listen_dual_stack: Option<SocketAddr>,
    pub(in crate::node) eth: EthConfig,
    pub(in crate::node) chain: Arc<dyn ChainReader>,
    pub(in crate::node) tx_pool: Arc<dyn TxPool>,
    pub(in crate::node) pool: PoolConfig,
    pub(in crate::node) rlpx: RlpxConfig,
    pub(in crate::node) data_dir: Option<PathBuf>,
    pub(in crate::node) bootnodes: Vec<Enode>,
    pub(in crate::node) sources: Vec<mpsc::Receiver<Candidate>>,
    pub(in crate::node) discovery: Option<DiscoveryConfig>,
    pub(in crate::node) tick: Duration,
    pub(in crate::node) seed: u64,
    pub(in crate::node) commands: mpsc::Receiver<Command>,
    pub(in crate::node) events: broadcast::Sender<PoolEvent>,
    pub(in crate::node) announcements: broadcast::Sender<Announcement>,
    pub(in crate::node) recorder: Recorder,
    pub(in crate::node) nat: NatConfig,
    pub(in crate::node) port_mapper: Option<MapperFactory>,
    #[cfg(feature = "lan")]
    pub(in crate::node) lan: Option<crate::discovery::lan::LanConfig>,
}

/// What [`NodeService::start`] hands the [`Node`](super::Node): the service, the bound
/// listener addresses (the second, dual stack), the running discovery and the external
/// address as it becomes known.
pub(in crate::node) type Started =
    (NodeService, (SocketAddr, Option<SocketAddr>), Option<Discovery>, watch::Receiver<Option<ExternalAddr>>);

/// Starts a [`PortMapping`] on a gateway of the caller's choice (tests use fake ones).
pub(in crate::node) struct MapperFactory(
    pub(in crate::node) Box<dyn FnOnce(PortMapConfig) -> PortMapping + Send>,
);

impl std::fmt::Debug for MapperFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MapperFactory")
    }
}

/// What the NAT setting asks for: a fixed external IP (`extip`), or port mappings on a
/// gateway (`upnp`, `pmp`, `any`, or the builder's own mapper), for the RLPx port and the
/// discovery port. Returns the mapping's handle and the external address as it changes.
async fn start_nat(
    nat: &NatConfig,
    port_mapper: Option<MapperFactory>,
    tcp: SocketAddr,
    discovery: Option<&Discovery>,
) -> Result<(Option<PortMapping>, watch::Receiver<Option<ExternalAddr>>), NodeError> {
    let udp = discovery.map(|d| d.local_addr().port());
    if let Some(ip) = nat.static_ip() {
        let (_, rx) = watch::channel(Some(ExternalAddr { ip, tcp_port: Some(tcp.port()), udp_port: udp }));
        return Ok((None, rx));
    }
    let mapping = match port_mapper {
        Some(factory) => {
            let internal = if tcp.ip().is_unspecified() {
                crate::nat::local_ip_towards(IpAddr::from([192, 0, 2, 1])).unwrap_or(tcp.ip())
            } else {
                tcp.ip()
            };
            Some((factory.0)(PortMapConfig::new(internal, Some(tcp.port()), udp)))
        }
        None => start_port_mapping(nat, Some(tcp.port()), udp).await.map_err(NodeError::Nat)?,
    };
    let rx = match &mapping {
        Some(m) => m.subscribe(),
        None => watch::channel(None).1,
    };
    Ok((mapping, rx))
}

/// Our record for discovery: the node key, the RLPx port and our chain's fork id (the
/// `eth` entry peers filter on). The IP is the configured external one (`extip`), else
/// the discovery socket's, else the RLPx
/// listener's; when both are unspecified (`0.0.0.0`) it stays absent until the discovery
/// protocols learn it from their peers' votes. The UDP port is written by
/// [`Discovery::start`] once bound. A second listener (dual stack, `tcp2`) adds its family's
/// TCP port, and its IP when specific and the record has none of that family.
fn local_record(
    key: &NodeKey,
    external: Option<IpAddr>,
    udp: Option<SocketAddr>,
    tcp: SocketAddr,
    tcp2: Option<SocketAddr>,
    fork_id: ForkId,
) -> Result<LocalEnr, NodeError> {
    let ip = external.or_else(|| udp.map(|a| a.ip()).filter(|ip| !ip.is_unspecified())).or_else(|| {
        let ip = tcp.ip();
        (!ip.is_unspecified()).then_some(ip)
    });
    let mut builder = LocalEnr::builder(key);
    builder.fork_id(fork_id);
    // The TCP port goes with the family we advertise (the listener's when no IP is known).
    match ip.unwrap_or(tcp.ip()) {
        IpAddr::V4(v4) => {
            builder.tcp4(tcp.port());
            if ip.is_some() {
                builder.ip4(v4);
            }
        }
        IpAddr::V6(v6) => {
            builder.tcp6(tcp.port());
            if ip.is_some() {
                builder.ip6(v6);
            }
        }
    }
    if let Some(second) = tcp2 {
        let specific = !second.ip().is_unspecified();
        match second.ip() {
            IpAddr::V4(v4) if ip.is_none_or(|ip| ip.is_ipv6()) => {
                builder.tcp4(second.port());
                if specific {
                    builder.ip4(v4);
                }
            }
            IpAddr::V6(v6) if ip.is_none_or(|ip| ip.is_ipv4()) => {
                builder.tcp6(second.port());
                if specific {
                    builder.ip6(v6);
                }
            }
            _ => {}
        }
    }
    builder.build().map_err(|e| NodeError::InvalidConfig(format!("local ENR: {e}")))
}

/// The record LAN peers see: our listen address (never the NAT's external one: they dial
/// us directly), or, when listening on every interface, the address of the interface
/// that carries mDNS multicast; the UDP port is the discovery port, else the RLPx port.
#[cfg(feature = "lan")]
fn lan_record(
    key: &NodeKey,
    udp: Option<SocketAddr>,
    tcp: SocketAddr,
    fork_id: ForkId,
) -> Result<crate::record::Enr, NodeError> {
    /// RFC 6762: the mDNS IPv4 multicast group.
    const MDNS_GROUP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(224, 0, 0, 251));
    let lan_ip = crate::nat::local_ip_towards(MDNS_GROUP).ok();
    let local = local_record(key, None, udp, tcp, None, fork_id)?;
    let udp_port = udp.map_or(tcp.port(), |a| a.port());
    local
        .update(|c| {
            if c.ip4.is_none() && c.ip6.is_none() {
                if let Some(IpAddr::V4(ip)) = lan_ip {
                    c.ip4 = Some(ip);
                    c.tcp4 = Some(tcp.port());
                }
            }
            if c.ip4.is_some() || c.ip6.is_none() {
                c.udp4 = Some(udp_port);
            } else {
                c.udp6 = Some(udp_port);
            }
        })
        .map(|_| local.record())
        .map_err(|e| NodeError::InvalidConfig(format!("LAN record: {e}")))
}

/// Binds the dual-stack listener at `addr`, which must be of the other family than the first
/// listener (bound at `first`); port 0 is offered `first`'s port before any other.
async fn bind_second_listener(
    first: SocketAddr,
    addr: SocketAddr,
) -> Result<(TcpListener, SocketAddr), NodeError> {
    if addr.is_ipv6() == first.is_ipv6() {
        return Err(NodeError::InvalidConfig(format!(
            "dual stack needs one IPv4 and one IPv6 listen address, got {first} and {addr}"
        )));
    }
    let io = |e| NodeError::Listen(RlpxError::Io(e));
    let listener = match addr.port() {
        0 => match bind_v6_only(SocketAddr::new(addr.ip(), first.port())) {
            Ok(listener) => listener,
            Err(_) => bind_v6_only(addr).map_err(io)?,
        },
        _ => bind_v6_only(addr).map_err(io)?,
    };
    let bound = listener.local_addr().map_err(io)?;
    Ok((listener, bound))
}

/// A TCP listener at `addr`; an IPv6 one takes IPv6 only, so that the IPv4 listener owns
/// IPv4 (a mapped-address IPv6 listener would also claim the IPv4 port on some hosts).
fn bind_v6_only(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Accepts TCP connections and hands them to the service, which decides before any
/// handshake work. Stops when the service is gone.
async fn accept_loop(listener: TcpListener, tx: mpsc::Sender<(TcpStream, SocketAddr)>) {
    loop {
        match listener.accept().await {
            Ok(connection) => {
                if tx.send(connection).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // A local fault (out of file descriptors and the like).
                tracing::warn!(target: "ethp2p::pool", error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// One candidate source as a stream, to be merged with the others.
fn candidate_stream(rx: mpsc::Receiver<Candidate>) -> CandidateStream {
    Box::pin(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) }))
}

impl NodeService {
    pub(in crate::node) async fn start(setup: Setup) -> Result<Started, NodeError> {
        let Setup {
            key,
            listen,
            listen_dual_stack,
            eth,
            chain,
            pool,
            mut rlpx,
            data_dir,
            bootnodes,
            sources,
            discovery,
            tick,
            seed,
            tx_pool,
            commands,
            events,
            announcements,
            recorder,
            nat,
            port_mapper,
            #[cfg(feature = "lan")]
            lan,
        } = setup;
        let listener = TcpListener::bind(listen).await.map_err(|e| NodeError::Listen(RlpxError::Io(e)))?;
        let local_addr = listener.local_addr().map_err(|e| NodeError::Listen(RlpxError::Io(e)))?;
        rlpx.listen_port = local_addr.port();
        let second = match listen_dual_stack {
            Some(addr) => Some(bind_second_listener(local_addr, addr).await?),
            None => None,
        };
        let dual_stack_addr = second.as_ref().map(|(_, addr)| *addr);
        let now = Instant::now();
        // Candidates on another chain are dropped before they take a dial slot.
        let filter = ForkIdFilter::from_fork_filter(eth.fork_filter.clone(), true);
        let mut state = PoolState::new(pool, key.peer_id(), filter, now, seed);
        let book_path = data_dir.map(|d| d.join(BOOK_FILE));
        if let Some(path) = &book_path {
            let path = path.clone();
            let (book, _) = tokio::task::spawn_blocking(move || AddressBook::load(&path))
                .await
                .map_err(|e| NodeError::InvalidConfig(format!("book loader panicked: {e}")))??;
            state.load_book(&book, now, SystemTime::now());
        }
        for b in &bootnodes {
            state.add_candidate(&Candidate::from_enode(b, CandidateSource::Bootnode), now);
        }
        let (internal_tx, internal_rx) = mpsc::channel(INTERNAL_CAPACITY);
        let mut source_tasks = JoinSet::new();
        // Every candidate source (discovery, LAN, the builder's) merged into one stream.
        let mut merged = CandidateStreams::new();
        let (inbound_tx, inbound) = mpsc::channel(INBOUND_CAPACITY);
        if let Some((second, _)) = second {
            // Both families' connections go through the one admission check.
            source_tasks.spawn(accept_loop(second, inbound_tx.clone()));
        }
        source_tasks.spawn(accept_loop(listener, inbound_tx));
        // Discovery, NAT and LAN start last, in this order; a failure stops the ones already
        // running, so a failed start leaves nothing behind.
        let discovery = match discovery {
            Some(mut config) => {
                // A configured external address is never overridden by what peers say.
                let fixed = nat.static_ip().is_some();
                if let Some(v4) = &mut config.v4 {
                    v4.tcp_port = v4.tcp_port.or(Some(local_addr.port()));
                    v4.update_enr_ip &= !fixed;
                }
                if let Some(v5) = &mut config.v5 {
                    v5.fork_filter = v5.fork_filter.take().or_else(|| Some(eth.fork_filter.clone()));
                    v5.enr_update &= !fixed;
                }
                let udp = config.v4.as_ref().map(|c| c.listen_addr).or(config.v5.as_ref().map(|c| c.listen));
                let local = local_record(
                    &key,
                    nat.static_ip(),
                    udp,
                    local_addr,
                    dual_stack_addr,
                    eth.status.fork_id,
                )?;
                let (discovery, candidates) = Discovery::start(local, config).await?;
                merged.push(Box::pin(candidates));
                if recorder.is_own() {
                    // The discovery gauges (table, sessions, packets) for the node's endpoint.
                    let (d, recorder) = (discovery.clone(), recorder.clone());
                    source_tasks.spawn(async move {
                        let mut every = tokio::time::interval(DISCOVERY_METRICS_INTERVAL);
                        loop {
                            every.tick().await;
                            let Ok(stats) = d.stats().await else { return };
                            recorder.with(|| metrics::record_discovery(&stats));
                        }
                    });
                }
                Some(discovery)
            }
            None => None,
        };
        let (mapping, external) = match start_nat(&nat, port_mapper, local_addr, discovery.as_ref()).await {
            Ok(started) => started,
            Err(e) => {
                if let Some(d) = &discovery {
                    d.shutdown().await;
                }
                return Err(e);
            }
        };
        #[cfg(feature = "lan")]
        let lan = match lan {
            Some(config) => {
                let (tx, rx) = mpsc::channel(LAN_CAPACITY);
                let udp = discovery.as_ref().map(|d| d.local_addr());
                let started = lan_record(&key, udp, local_addr, eth.status.fork_id).and_then(|record| {
                    crate::discovery::lan::LanDiscovery::start(config, &record, tx).map_err(NodeError::Lan)
                });
                let lan = match started {
                    Ok(lan) => lan,
                    Err(e) => {
                        if let Some(d) = &discovery {
                            d.shutdown().await;
                        }
                        if let Some(m) = mapping {
                            m.shutdown().await;
                        }
                        return Err(e);
                    }
                };
                merged.push(candidate_stream(rx));
                Some(lan)
            }
            None => None,
        };
        if let (Some(mapping), Some(d)) = (&mapping, &discovery) {
            // Each address the gateway grants goes into our record (one seq bump each).
            let (mut rx, local, bound_udp) =
                (mapping.subscribe(), d.local_enr().clone(), d.local_addr().port());
            source_tasks.spawn(async move {
                while rx.changed().await.is_ok() {
                    let Some(ext) = *rx.borrow_and_update() else { continue };
                    match local.set_endpoint(ext.ip, ext.udp_port.unwrap_or(bound_udp), ext.tcp_port) {
                        Ok(true) => tracing::debug!(target: "ethp2p::pool", ip = %ext.ip, "record updated with the external address"),
                        Ok(false) => {}
                        Err(e) => tracing::warn!(target: "ethp2p::pool", error = %e, "cannot put the external address in our record"),
                    }
                }
            });
        }
        merged.extend(sources.into_iter().map(candidate_stream));
        let (session_tx, manager_rx) = mpsc::channel(SESSION_COMMAND_CAPACITY);
        let (manager_tx, session_rx) = mpsc::channel(SESSION_EVENT_CAPACITY);
        let mut tasks = JoinSet::new();
        let head = LocalHead::new(eth.status, eth.fork_filter.clone());
        let manager = SessionManager::new(key, rlpx, eth, chain, tx_pool.clone(), manager_rx, manager_tx);
        tasks.spawn(manager.run());
        let service = Self {
            head,
            tx_pool,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            candidates: merged,
            pool: state,
            inbound,
            peers: HashMap::new(),
            ranges: HashMap::new(),
            session_tx,
            session_rx,
            commands,
            internal_tx,
            internal_rx,
            tasks,
            sources: source_tasks,
            events,
            announcements,
            book_path,
            book_save: None,
            tick,
            dial_failures: BTreeMap::new(),
            inbound_connections: 0,
            inbound_handshakes: 0,
            recorder,
            published_peers: [0; 2],
            mapping,
            #[cfg(feature = "lan")]
            lan,
            discovery: discovery.clone(),
            lookups: DemandLookups {
                running: false,
                not_before: Instant::now(),
                fruitless: 0,
                new_candidates: 0,
            },
        };
        Ok((service, (local_addr, dual_stack_addr), discovery, external))
    }
}
