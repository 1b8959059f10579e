//! discv4 and discv5 together, on one UDP port, as one source of candidates.
//!
//! geth runs both protocols on one port (`sharedUDPConn`: discv5 reads the socket and passes
//! what it cannot decode to discv4), and records advertise one `udp` port for both, so a
//! node that wants to be found by either must answer both there. [`Discovery::start`] binds
//! one socket and decides who reads it:
//!
//! ```text
//!            datagrams in                                   datagrams out
//!   socket ──────────────► discv5 (the `discv5` crate) ─────► socket
//!                            │ Event::UnrecognizedFrame
//!                            ▼
//!                          Discv5Service ── try_send ──► bounded queue ──► Discv4Service ──► socket
//!                                          (full: drop, counted)           (reads nothing else)
//! ```
//!
//! - **Both run**: discv5 reads the socket (`ListenConfig::FromSockets`). Every datagram it
//!   cannot decode as discv5 — in practice every discv4 packet, whose first 32 bytes are a
//!   hash rather than discv5's masked header — comes out of its event stream as
//!   `Event::UnrecognizedFrame`. Our discv5 service passes each to the discv4 task over a
//!   queue of [`V4_INBOUND_CAPACITY`] datagrams; when discv4 is behind, the datagram is
//!   dropped and counted ([`Discv5Stats::unrecognized_dropped`]) rather than stalling discv5.
//!   discv4 sends on the same socket. Nothing is patched: this is discv5 0.12's public API.
//! - **discv4 alone** reads and sends on its socket itself, with no extra hop.
//! - **discv5 alone** binds its socket the same way (so port 0 is read back) and drops what
//!   it cannot decode, counted in [`Discv5Stats::unrecognized`].
//!
//! What discv5 does to a datagram before it is known not to be discv5 (discv5 0.12,
//! `socket/recv.rs`): its receive task checks the process-wide IP ban list and, only when
//! enabled, its packet filter (rate limits; we leave it off, so it never throttles discv4),
//! then decodes. Its receive task waits on a 30-slot channel to its handler (back-pressure
//! on the socket, as a slow reader would), the handler passes frames on unbounded to its
//! service, and the service `try_send`s events into the 100-slot event stream our service
//! drains: a datagram lost there is not counted by anyone, which is why our service only
//! ever `try_send`s onward and never waits.
//!
//! The candidates of both protocols come out of one [`DiscoveryCandidates`] stream.
//!
//! ## Dual stack
//! With [`DiscoveryConfig::dual_stack`], the port is two sockets, one per IP family, bound
//! to the same port number when it is free in both (port 0: the second family is offered the
//! first one's port before any other). Not one IPv6 socket taking IPv4-mapped addresses as
//! geth does: `discv5` 0.12 runs dual stack only on two sockets, and an IPv6-only socket
//! behaves the same on every host. Everything above stays one:
//!
//! ```text
//!   IPv4 socket ─┐                 ┌─► discv5 (ListenConfig::FromSockets { ipv4, ipv6 })
//!                ├─ both read by ──┤
//!   IPv6 socket ─┘                 └─► discv4 (itself, or via discv5's UnrecognizedFrame)
//!                                       sends each answer on the socket of its family
//! ```
//!
//! The record carries `ip`/`udp` and `ip6`/`udp6`; discv4's table and discv5's hold nodes of
//! both families, with the subnet limits of each (/24, /48); candidates of both families come
//! out of the one stream.

use std::{
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, Weak},
    task::{Context, Poll},
};

use tokio::{net::UdpSocket, sync::mpsc};

use super::socket::{bind_udp, Sockets, DEFAULT_SOCKET_BUFFER};
use super::{
    v4::{CandidateStream, Discv4, Discv4Config, Discv4Error, Discv4Stats},
    Candidate, Candidates, Discv5, Discv5Config, Discv5Error, Discv5Stats, IngressLimits,
};
use crate::record::LocalEnr;

/// Datagrams queued from discv5 (which reads the shared socket) to discv4 before new ones
/// are dropped: UDP semantics, a slow discv4 loses packets rather than stalling discv5. About
/// the default socket receive buffer's worth of discv4 packets (~200 KiB of ~200 bytes each).
pub const V4_INBOUND_CAPACITY: usize = 1024;

/// Which protocols run. Both, when both are given, share the discv4 listen address.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DiscoveryConfig {
    /// discv4, or `None` to not run it. Default: none.
    pub v4: Option<Discv4Config>,
    /// discv5, or `None` to not run it. Default: none.
    pub v5: Option<Discv5Config>,
    /// Kernel receive and send buffer of the UDP socket, in bytes; `None` keeps the
    /// kernel's default. Default: [`DEFAULT_SOCKET_BUFFER`] (4 MiB, capped by the kernel).
    pub socket_buffer: Option<usize>,
    /// The port's ingest budgets: packets per IP, per subnet and in total, and new discv5
    /// sessions per IP (see [`IngressLimits`]). Default: [`IngressLimits::default`].
    pub limits: IngressLimits,
    /// A second listen address, of the other IP family than the first (discv4's
    /// `listen_addr`, or discv5's `listen` when it runs alone): both protocols then run on
    /// both families at once (see the module docs). Port 0 takes the first address's port
    /// when it is free in this family too. Default: none (one family).
    pub dual_stack: Option<SocketAddr>,
}

impl DiscoveryConfig {
    /// A config running the given protocols.
    pub fn new(v4: Option<Discv4Config>, v5: Option<Discv5Config>) -> Self {
        Self {
            v4,
            v5,
            socket_buffer: Some(DEFAULT_SOCKET_BUFFER),
            limits: IngressLimits::default(),
            dual_stack: None,
        }
    }
}

/// Why discovery could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// Neither protocol was configured.
    #[error("no discovery protocol configured")]
    NothingToRun,
    /// Binding the shared socket failed (port in use, address not local, ...).
    #[error("cannot bind discovery socket {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The error from the OS.
        source: std::io::Error,
    },
    /// discv4 failed to start.
    #[error(transparent)]
    Discv4(#[from] Discv4Error),
    /// discv5 failed to start.
    #[error(transparent)]
    Discv5(#[from] Discv5Error),
    /// An ingest budget is invalid (a zero rate).
    #[error("invalid ingest budget: {0}")]
    Limits(String),
    /// The dual-stack address is of the same IP family as the first listen address.
    #[error("dual stack needs one IPv4 and one IPv6 address, got {first} and {second}")]
    SameFamily {
        /// The first listen address.
        first: SocketAddr,
        /// [`DiscoveryConfig::dual_stack`].
        second: SocketAddr,
    },
}

/// Totals over both protocols, for an operator's stats line.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DiscoveryStats {
    /// Nodes in the discv4 table plus nodes in the discv5 table.
    pub table_size: usize,
    /// discv5 nodes with a live session.
    pub sessions: usize,
    /// Datagrams received on the socket that discv4 saw (valid or not) or that were dropped
    /// on the way to it. Not counted: the datagrams discv5 decoded itself, as the `discv5`
    /// crate keeps only process-wide metrics.
    pub packets_in: u64,
    /// discv4 datagrams sent (discv5's are not counted, for the same reason).
    pub packets_out: u64,
    /// Datagrams the kernel dropped on our socket(s): over 1,280 bytes (dropped by the socket's
    /// filter before any reader) or arriving at a full receive buffer. `None` where the
    /// kernel does not say (not Linux).
    pub socket_drops: Option<u64>,
    /// The sequence number of our record now.
    pub enr_seq: u64,
    /// Table entries (discv4 and discv5 together) reachable over IPv4, and over IPv6 (a
    /// discv5 record with both counts in both).
    pub table_by_family: [usize; 2],
    /// Datagrams shed by the ingest budgets (per IP, per subnet, global; see
    /// [`Discv4Stats`] for each).
    pub shed: u64,
    /// discv4's own counters, when it runs.
    pub v4: Option<Discv4Stats>,
    /// discv5's own counters, when it runs.
    pub v5: Option<Discv5Stats>,
}

/// Handle to running discovery: discv4, discv5 or both on one port. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Discovery {
    v4: Option<Discv4>,
    v5: Option<Discv5>,
    local_addr: SocketAddr,
    /// The other family's bound address, dual stack.
    dual_stack_addr: Option<SocketAddr>,
    local: LocalEnr,
    /// The shared socket(s), for the kernel's drop counter. Weak: the protocol tasks own the
    /// sockets, so they close when they stop even while handles live on.
    sockets: Vec<Weak<UdpSocket>>,
}

impl Discovery {
    /// Starts the configured protocols. With both, they share discv4's listen address and
    /// discv5's own `listen` address is ignored (see the module docs for who reads the socket).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use ethp2p::discovery::{v4::Discv4Config, Discovery, DiscoveryConfig, Discv5Config};
    /// use ethp2p::{LocalEnr, NodeKey};
    /// let key = NodeKey::generate();
    /// let local = LocalEnr::builder(&key).ip4([127, 0, 0, 1].into()).build()?;
    /// let v4 = Discv4Config::builder().listen_addr("127.0.0.1:0".parse()?).build()?;
    /// let v5 = Discv5Config::builder().build()?;
    /// let (discovery, mut candidates) = Discovery::start(local, DiscoveryConfig::new(Some(v4), Some(v5))).await?;
    /// println!("listening on {}", discovery.local_addr());
    /// while let Some(candidate) = candidates.recv().await {
    ///     println!("{:?} from {}", candidate.enode(), candidate.source);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn start(
        local: LocalEnr,
        config: DiscoveryConfig,
    ) -> Result<(Self, DiscoveryCandidates), DiscoveryError> {
        let limits = config.limits;
        limits.check().map_err(DiscoveryError::Limits)?;
        let first = match (&config.v4, &config.v5) {
            (None, None) => return Err(DiscoveryError::NothingToRun),
            (Some(v4), _) => {
                v4.check()?;
                v4.listen_addr
            }
            (None, Some(v5)) => v5.listen,
        };
        let (sockets, local_addr, dual_stack_addr) =
            bind_sockets(first, config.dual_stack, config.socket_buffer).await?;
        if config.v4.is_some() {
            record_udp_port(&local, local_addr, false)?;
        }
        if let Some(second) = dual_stack_addr {
            // The second family gets its IP too when it is a specific one: the caller's
            // record names the first family's (as discv5 does for a socket it binds).
            record_udp_port(&local, second, true)?;
        }
        let weak = sockets.iter().map(Arc::downgrade).collect();
        let handle =
            |v4, v5| Self { v4, v5, local_addr, dual_stack_addr, local: local.clone(), sockets: weak };
        match (config.v4, config.v5) {
            (None, None) => Err(DiscoveryError::NothingToRun),
            (None, Some(v5)) => {
                let (discv5, candidates) =
                    Discv5::start_on_socket(local.clone(), v5, sockets, None, &limits).await?;
                Ok((handle(None, Some(discv5)), DiscoveryCandidates { v4: None, v5: Some(candidates) }))
            }
            (Some(v4), None) => {
                let (discv4, candidates) = Discv4::spawn_budgeted(sockets, v4, local.clone(), limits)?;
                Ok((handle(Some(discv4), None), DiscoveryCandidates { v4: Some(candidates), v5: None }))
            }
            (Some(v4), Some(v5)) => {
                let (to_v4, v4_inbound) = mpsc::channel(V4_INBOUND_CAPACITY);
                let (discv5, v5_candidates) =
                    Discv5::start_on_socket(local.clone(), v5, sockets.clone(), Some(to_v4), &limits).await?;
                let (discv4, v4_candidates) =
                    match Discv4::spawn_shared(sockets, v4, local.clone(), v4_inbound, limits) {
                        Ok(started) => started,
                        Err(e) => {
                            discv5.shutdown().await;
                            return Err(e.into());
                        }
                    };
                Ok((
                    handle(Some(discv4), Some(discv5)),
                    DiscoveryCandidates { v4: Some(v4_candidates), v5: Some(v5_candidates) },
                ))
            }
        }
    }

    /// The bound UDP address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The other family's bound address when running dual stack ([`DiscoveryConfig::dual_stack`]).
    pub fn dual_stack_addr(&self) -> Option<SocketAddr> {
        self.dual_stack_addr
    }

    /// Our record, as both protocols advertise it.
    pub fn local_enr(&self) -> &LocalEnr {
        &self.local
    }

    /// The discv4 handle, when discv4 runs.
    pub fn v4(&self) -> Option<&Discv4> {
        self.v4.as_ref()
    }

    /// The discv5 handle, when discv5 runs.
    pub fn v5(&self) -> Option<&Discv5> {
        self.v5.as_ref()
    }

    /// Counters of both protocols.
    pub async fn stats(&self) -> Result<DiscoveryStats, DiscoveryError> {
        let mut stats = DiscoveryStats {
            socket_drops: self
                .sockets
                .iter()
                .filter_map(|socket| socket.upgrade().and_then(|socket| super::socket::socket_drops(&socket)))
                .reduce(|a, b| a + b),
            enr_seq: self.local.seq(),
            ..Default::default()
        };
        if let Some(v4) = &self.v4 {
            let s = v4.stats().await?;
            stats.table_size += s.table_len as usize;
            stats.packets_in += s.datagrams_in();
            stats.packets_out += s.packets_out;
            stats.shed += s.shed();
            for node in v4.table().await? {
                stats.table_by_family[usize::from(node.endpoint.ip.is_ipv6())] += 1;
            }
            stats.v4 = Some(s);
        }
        if let Some(v5) = &self.v5 {
            let s = v5.stats().await?;
            stats.table_size += s.table_size;
            stats.sessions += s.connected;
            for enr in v5.table_entries().await? {
                stats.table_by_family[0] += usize::from(enr.ip4().is_some());
                stats.table_by_family[1] += usize::from(enr.ip6().is_some());
            }
            // Received, not decoded by discv5, and dropped before discv4 saw them.
            stats.packets_in += s.unrecognized_dropped;
            stats.v5 = Some(s);
        }
        Ok(stats)
    }

    /// Runs one random lookup on each protocol, at once, and waits for both. What they find
    /// goes to the candidate stream as usual; the return value is how many nodes the lookups
    /// ended with (errors count as none). A pool that wants peers calls this back to back,
    /// as go-ethereum's dialer pulls from its lookup iterator, instead of waiting for the
    /// periodic refresh.
    pub async fn random_lookup(&self) -> usize {
        use rand::Rng;
        let (mut peer, mut node) = ([0u8; 64], [0u8; 32]);
        rand::thread_rng().fill(&mut peer[..]);
        rand::thread_rng().fill(&mut node[..]);
        let v4 = async {
            match &self.v4 {
                Some(v4) => v4.lookup(crate::record::PeerId::from(peer)).await.map_or(0, |r| r.len()),
                None => 0,
            }
        };
        let v5 = async {
            match &self.v5 {
                Some(v5) => v5.lookup(crate::record::NodeId::from(node)).await.map_or(0, |r| r.len()),
                None => 0,
            }
        };
        let (a, b) = futures::join!(v4, v5);
        a + b
    }

    /// Stops both protocols and waits for their tasks.
    pub async fn shutdown(&self) {
        if let Some(v5) = &self.v5 {
            v5.shutdown().await;
        }
        if let Some(v4) = &self.v4 {
            v4.shutdown().await;
        }
    }
}

/// Binds the shared socket and reads back its address (the real port when 0 was asked for).
async fn bind(
    addr: SocketAddr,
    buffer: Option<usize>,
) -> Result<(Arc<UdpSocket>, SocketAddr), DiscoveryError> {
    let socket = bind_udp(addr, buffer).map_err(|source| DiscoveryError::Bind { addr, source })?;
    let local_addr = socket.local_addr().map_err(|source| DiscoveryError::Bind { addr, source })?;
    Ok((Arc::new(socket), local_addr))
}

/// Binds `first` and, dual stack, `second` (of the other family); returns the sockets and
/// both bound addresses. A second port 0 is first offered the first socket's port, so that
/// both families share one port number when they can.
async fn bind_sockets(
    first: SocketAddr,
    second: Option<SocketAddr>,
    buffer: Option<usize>,
) -> Result<(Sockets, SocketAddr, Option<SocketAddr>), DiscoveryError> {
    if let Some(second) = second {
        if second.is_ipv6() == first.is_ipv6() {
            return Err(DiscoveryError::SameFamily { first, second });
        }
    }
    let (primary, first_addr) = bind(first, buffer).await?;
    let Some(second) = second else { return Ok((Sockets::one(primary), first_addr, None)) };
    let same_port = SocketAddr::new(second.ip(), first_addr.port());
    let bound = match second.port() {
        0 => match bind(same_port, buffer).await {
            Ok(bound) => bound,
            Err(_) => bind(second, buffer).await?,
        },
        _ => bind(second, buffer).await?,
    };
    tracing::debug!(target: "ethp2p::discovery", first = %first_addr, second = %bound.1, "dual stack bound");
    Ok((Sockets::new(primary, Some(bound.0)), first_addr, Some(bound.1)))
}

/// Puts the bound UDP port into our record if it has none for that address family, and,
/// when `with_ip`, the bound IP if the record has none for the family and it is specific.
fn record_udp_port(local: &LocalEnr, addr: SocketAddr, with_ip: bool) -> Result<(), DiscoveryError> {
    let specific = with_ip && !addr.ip().is_unspecified();
    local
        .update(|c| match addr.ip() {
            IpAddr::V4(ip) => {
                if c.udp4.is_none() {
                    c.udp4 = Some(addr.port());
                }
                if specific && c.ip4.is_none() {
                    c.ip4 = Some(ip);
                }
            }
            IpAddr::V6(ip) => {
                if c.udp6.is_none() {
                    c.udp6 = Some(addr.port());
                }
                if specific && c.ip6.is_none() {
                    c.ip6 = Some(ip);
                }
            }
        })
        .map(|_| ())
        .map_err(|e| DiscoveryError::Discv5(Discv5Error::Enr(e)))
}

/// The candidates of every running protocol, as one stream.
#[derive(Debug)]
pub struct DiscoveryCandidates {
    v4: Option<CandidateStream>,
    v5: Option<Candidates>,
}

impl DiscoveryCandidates {
    /// The next candidate from either protocol; `None` once all have stopped.
    pub async fn recv(&mut self) -> Option<Candidate> {
        futures::StreamExt::next(self).await
    }

    /// The two protocols' streams apart, for a consumer that treats them differently (the
    /// crawler asks discv4 nodes over discv4 and discv5 nodes over discv5). Pair them with
    /// [`Discovery::v4`] and [`Discovery::v5`].
    pub fn into_parts(self) -> (Option<CandidateStream>, Option<Candidates>) {
        (self.v4, self.v5)
    }
}

impl futures::Stream for DiscoveryCandidates {
    type Item = Candidate;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Candidate>> {
        let this = &mut *self;
        let mut pending = false;
        // discv5 first: its records carry the fork id already, discv4's may need an ENR round trip.
        if let Some(v5) = &mut this.v5 {
            match Pin::new(v5).poll_next(cx) {
                Poll::Ready(Some(c)) => return Poll::Ready(Some(c)),
                Poll::Ready(None) => this.v5 = None,
                Poll::Pending => pending = true,
            }
        }
        if let Some(v4) = &mut this.v4 {
            match Pin::new(v4).poll_next(cx) {
                Poll::Ready(Some(c)) => return Poll::Ready(Some(c)),
                Poll::Ready(None) => this.v4 = None,
                Poll::Pending => pending = true,
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(None)
        }
    }
}
