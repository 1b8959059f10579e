//! Prometheus metrics: the names the node records and a small `/metrics` endpoint.
//!
//! Every counter and gauge goes through the [`metrics`] facade. Where it lands:
//!
//! - by default, in the application's **global** recorder if it installed one (for
//!   example with `metrics_exporter_prometheus::PrometheusBuilder::install`), or nowhere.
//!   The library never installs a global recorder itself: that is process-wide state only
//!   the application may choose (`metrics` allows one per process);
//! - with [`NodeBuilder::metrics`](crate::node::NodeBuilder::metrics) (or a
//!   [`MetricsServer`] of your own), in a registry that belongs to that server alone and is
//!   served over HTTP at `GET /metrics`. Two nodes in one process then have two endpoints
//!   that never mix, and the global recorder, if any, does not see them.
//!
//! All names start with `ethp2p_`; the constants below document their labels.

use std::{
    io,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use crate::discovery::{Candidate, DiscoveryStats};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinSet,
};

/// Gauge: connected peers, label `direction` = `inbound` | `outbound`.
pub const PEERS: &str = "ethp2p_peers";
/// Counter: dials started.
pub const DIALS: &str = "ethp2p_dials_total";
/// Counter: dials that did not end in a session, label `reason` (see
/// [`DialFailure::as_str`](crate::node::DialFailure::as_str)).
pub const DIAL_FAILURES: &str = "ethp2p_dial_failures_total";
/// Counter: inbound TCP connections, label `outcome` = `handshake` (let through to the
/// handshake) | `refused` (closed at once by the pool's throttle or caps).
pub const INBOUND_CONNECTIONS: &str = "ethp2p_inbound_connections_total";
/// Counter: sessions that ended, label `reason` = `local` | `error` | `closed` (socket
/// closed without a Disconnect) | the remote's Disconnect reason (`too_many_peers`, ...).
pub const SESSIONS_CLOSED: &str = "ethp2p_sessions_closed_total";
/// Counter: bans imposed by the pool.
pub const BANS: &str = "ethp2p_bans_total";
/// Counter: requests routed through the pool, labels `kind` = `block_headers` |
/// `block_bodies` | `receipts` | `pooled_transactions` and `outcome` = `valid` | `empty` |
/// `invalid` | `timeout` | `failed` (the session ended under it).
pub const REQUESTS: &str = "ethp2p_requests_total";
/// Histogram: seconds from request to answer (or timeout), label `kind`.
pub const REQUEST_DURATION: &str = "ethp2p_request_duration_seconds";
/// Counter: discovery candidates handed to the pool, label `source` = `discv4` | `discv5`
/// | `dns` | `bootnode` | `static` | `lan`.
pub const CANDIDATES: &str = "ethp2p_discovery_candidates_total";
// The discovery series below are published by the bootnode and by nodes with their own
// endpoint (`NodeBuilder::metrics`), from the discovery stats every few seconds.

/// Gauge: nodes in the discovery tables (discv4 plus discv5).
pub const DISCOVERY_TABLE_SIZE: &str = "ethp2p_discovery_table_size";
/// Gauge: discv5 nodes with a live session.
pub const DISCOVERY_SESSIONS: &str = "ethp2p_discovery_sessions";
/// Counter: datagrams received on the discovery socket.
pub const DISCOVERY_PACKETS_IN: &str = "ethp2p_discovery_packets_received_total";
/// Counter: discv4 datagrams sent.
pub const DISCOVERY_PACKETS_OUT: &str = "ethp2p_discovery_packets_sent_total";
/// Counter: datagrams dropped before any protocol work, by `reason`: `oversize` (over 1,280
/// bytes, seen by the discv4 reader), `kernel` (dropped by the kernel on our socket: over
/// 1,280 bytes or a full buffer), `per_ip`, `per_subnet`, `global` (the ingest budgets).
pub const DISCOVERY_SHED: &str = "ethp2p_discovery_packets_shed_total";
/// Gauge: discovery table entries by address `family` (`ipv4`, `ipv6`).
pub const DISCOVERY_TABLE_BY_FAMILY: &str = "ethp2p_discovery_table_nodes";
/// Gauge: the sequence number of our signed record (it grows when the record changes).
pub const DISCOVERY_ENR_SEQ: &str = "ethp2p_discovery_enr_seq";
/// Counter: IPs banned for opening more discv5 sessions a minute than the cap.
pub const DISCOVERY_V5_BANNED_IPS: &str = "ethp2p_discovery_v5_banned_ips_total";

/// Buckets of [`REQUEST_DURATION`]: from a loopback answer to the longest request timeout.
const REQUEST_DURATION_BUCKETS: [f64; 12] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Histogram samples are folded into their buckets at least this often even if nobody
/// scrapes, so memory stays bounded.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);
/// Connections held at once. Beyond it the oldest connection that has not sent its
/// request yet is closed for the newest, so idle connections cannot starve scrapes (a
/// scrape sends its request at once, and is never the one closed).
const MAX_CONNECTIONS: usize = 64;
/// A scrape's request head must arrive within this long (Prometheus sends it at once).
const HEAD_TIMEOUT: Duration = Duration::from_secs(1);
/// The whole exchange, head and answer, within this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request head we read (a Prometheus scrape is a few hundred bytes).
const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// Where the node's metrics go: its own registry, or the facade's global recorder.
#[derive(Clone, Default)]
pub(crate) struct Recorder(Option<Arc<PrometheusRecorder>>);

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Recorder(own)" } else { "Recorder(global)" })
    }
}

impl Recorder {
    /// Whether this is a registry of the node's own (not the global recorder).
    pub(crate) fn is_own(&self) -> bool {
        self.0.is_some()
    }

    /// Runs `f`, whose `metrics` macro calls record into this recorder.
    pub(crate) fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.0 {
            Some(r) => metrics::with_local_recorder(r.as_ref(), f),
            None => f(),
        }
    }
}

/// Serves a registry of its own at `GET /metrics` in the Prometheus text format.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// let server = ethp2p::metrics::MetricsServer::bind("127.0.0.1:9001".parse().unwrap()).await?;
/// server.record(|| metrics::counter!("my_app_started_total").increment(1));
/// println!("scrape http://{}/metrics", server.local_addr());
/// # Ok(()) }
/// ```
///
/// The server's task stops when it is dropped.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    recorder: Recorder,
    handle: PrometheusHandle,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free one; see [`Self::local_addr`]) and starts serving
    /// an empty registry.
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.to_owned()), &REQUEST_DURATION_BUCKETS)
            .map_err(io::Error::other)?
            .build_recorder();
        let handle = recorder.handle();
        let recorder = Recorder(Some(Arc::new(recorder)));
        recorder.with(describe);
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let task = tokio::spawn(serve(listener, handle.clone()));
        Ok(Self { local_addr, recorder, handle, task })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Runs `f`; the `metrics` macros it calls record into this server's registry.
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        self.recorder.with(f)
    }

    /// The registry in the Prometheus text format, as `GET /metrics` returns it.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    pub(crate) fn recorder(&self) -> Recorder {
        self.recorder.clone()
    }
}

/// Counts one discovery candidate under [`CANDIDATES`], by its source.
pub fn record_candidate(candidate: &Candidate) {
    metrics::counter!(CANDIDATES, "source" => candidate.source.as_str()).increment(1);
}

/// Publishes a discovery stats snapshot: the table and session gauges and the packet
/// counters (set to the snapshot's totals).
pub fn record_discovery(stats: &DiscoveryStats) {
    metrics::gauge!(DISCOVERY_TABLE_SIZE).set(stats.table_size as f64);
    metrics::gauge!(DISCOVERY_SESSIONS).set(stats.sessions as f64);
    metrics::counter!(DISCOVERY_PACKETS_IN).absolute(stats.packets_in);
    metrics::counter!(DISCOVERY_PACKETS_OUT).absolute(stats.packets_out);
    if let Some(v4) = &stats.v4 {
        for (reason, n) in [
            ("oversize", v4.oversize),
            ("per_ip", v4.shed_ip),
            ("per_subnet", v4.shed_subnet),
            ("global", v4.shed_global),
            // With signature workers: their queues were full, or the task was behind them.
            ("workers_busy", v4.crypto_busy),
            ("task_behind", v4.verified_dropped),
        ] {
            metrics::counter!(DISCOVERY_SHED, "reason" => reason).absolute(n);
        }
    }
    if let Some(drops) = stats.socket_drops {
        metrics::counter!(DISCOVERY_SHED, "reason" => "kernel").absolute(drops);
    }
    metrics::gauge!(DISCOVERY_ENR_SEQ).set(stats.enr_seq as f64);
    for (family, n) in [("ipv4", stats.table_by_family[0]), ("ipv6", stats.table_by_family[1])] {
        metrics::gauge!(DISCOVERY_TABLE_BY_FAMILY, "family" => family).set(n as f64);
    }
    if let Some(v5) = &stats.v5 {
        metrics::counter!(DISCOVERY_V5_BANNED_IPS).absolute(v5.banned_ips);
    }
}

/// HELP lines for the node's metrics.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(PEERS, "Connected peers by direction");
    describe_counter!(DIALS, "Dials started");
    describe_counter!(DIAL_FAILURES, "Dials that did not end in a session, by cause");
    describe_counter!(INBOUND_CONNECTIONS, "Inbound TCP connections, handshaken or refused at once");
    describe_counter!(SESSIONS_CLOSED, "Sessions ended, by reason");
    describe_counter!(BANS, "Peers banned");
    describe_counter!(REQUESTS, "Requests routed through the pool, by kind and outcome");
    describe_histogram!(REQUEST_DURATION, Unit::Seconds, "Request round trips, by kind");
    describe_counter!(CANDIDATES, "Discovery candidates handed to the pool, by source");
    describe_gauge!(DISCOVERY_TABLE_SIZE, "Nodes in the discovery tables");
    describe_gauge!(DISCOVERY_SESSIONS, "discv5 nodes with a live session");
    describe_counter!(DISCOVERY_PACKETS_IN, "Datagrams received on the discovery socket");
    describe_counter!(DISCOVERY_PACKETS_OUT, "discv4 datagrams sent");
    describe_counter!(DISCOVERY_SHED, "Datagrams dropped before the discv4 core saw them, by reason");
    describe_gauge!(DISCOVERY_TABLE_BY_FAMILY, "Discovery table entries by address family");
    describe_gauge!(DISCOVERY_ENR_SEQ, "Sequence number of our signed record");
    describe_counter!(DISCOVERY_V5_BANNED_IPS, "IPs banned for too many new discv5 sessions a minute");
}

async fn serve(listener: TcpListener, handle: PrometheusHandle) {
    let mut connections = JoinSet::new();
    // Oldest first: what to close when a new connection finds every slot taken.
    type Open = (tokio::task::AbortHandle, Arc<AtomicBool>);
    let mut open: std::collections::VecDeque<Open> = Default::default();
    let mut upkeep = tokio::time::interval(UPKEEP_INTERVAL);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                match accepted {
                    Ok((stream, _)) => {
                        open.retain(|(c, _)| !c.is_finished());
                        if open.len() >= MAX_CONNECTIONS {
                            let idle = open.iter().position(|(_, asked)| !asked.load(Ordering::Relaxed));
                            match idle.and_then(|i| open.remove(i)) {
                                Some((oldest_idle, _)) => oldest_idle.abort(),
                                None => continue, // every slot is answering: the newcomer goes
                            }
                        }
                        let (handle, asked) = (handle.clone(), Arc::new(AtomicBool::new(false)));
                        let flag = asked.clone();
                        let task = connections.spawn(async move {
                            let _ = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, &handle, &flag)).await;
                        });
                        open.push_back((task, asked));
                    }
                    Err(e) => {
                        tracing::warn!(target: "ethp2p::metrics", error = %e, "metrics accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = upkeep.tick() => handle.run_upkeep(),
        }
    }
}

/// Reads one HTTP/1.x request head and answers it, then closes the connection.
async fn answer(mut stream: TcpStream, handle: &PrometheusHandle, asked: &AtomicBool) -> io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + HEAD_TIMEOUT;
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let Ok(n) = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await else {
            return Ok(()); // idle: closed without an answer
        };
        let n = n?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_REQUEST_BYTES {
            return respond(&mut stream, "431 Request Header Fields Too Large", "").await;
        }
    }
    asked.store(true, Ordering::Relaxed);
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    // A query string (`/metrics?x=y`) is ignored, as Prometheus servers do.
    let path = path.split(|b| *b == b'?').next().unwrap_or_default();
    match (method, path) {
        (b"GET", b"/metrics") => respond(&mut stream, "200 OK", &handle.render()).await,
        (b"GET", _) => respond(&mut stream, "404 Not Found", "not found; try /metrics\n").await,
        _ => respond(&mut stream, "405 Method Not Allowed", "").await,
    }
}

async fn respond(stream: &mut TcpStream, status: &str, body: &str) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_its_own_registry() {
        let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        server.record(|| metrics::counter!(BANS).increment(2));
        server.record(|| metrics::histogram!(REQUEST_DURATION, "kind" => "receipts").record(0.02));
        // Recorded outside `record`: goes to the (absent) global recorder, not here.
        metrics::counter!(DIALS).increment(5);
        let addr = server.local_addr();
        let page = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
        assert!(page.contains("\nethp2p_bans_total 2\n"), "{page}");
        assert!(page.contains("# HELP ethp2p_bans_total Peers banned"), "{page}");
        assert!(
            page.contains("ethp2p_request_duration_seconds_bucket{kind=\"receipts\",le=\"0.025\"} 1"),
            "a histogram with our buckets: {page}"
        );
        assert!(!page.contains("ethp2p_dials_total"), "{page}");
        assert!(get(addr, "GET / HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 404"));
        assert!(get(addr, "POST /metrics HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 405"));
    }

    /// The attack of issue 16: idle connections that reconnect as soon as they are closed
    /// held every slot, and no scrape got through. Now the oldest is closed for the newest
    /// and idle ones time out: scrapes are answered during the flood.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_connections_cannot_starve_scrapes() {
        let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = server.local_addr();
        // The reported attack: 32 idle connections (twice the old limit of 16), each
        // reopened the moment the server closes it.
        let flood: Vec<_> = (0..32)
            .map(|_| {
                tokio::spawn(async move {
                    loop {
                        if let Ok(mut s) = TcpStream::connect(addr).await {
                            let _ = s.read(&mut [0u8; 16]).await;
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut answered = 0;
        for _ in 0..7 {
            let scrape =
                tokio::time::timeout(Duration::from_secs(3), get(addr, "GET /metrics HTTP/1.1\r\n\r\n"));
            if scrape.await.is_ok_and(|page| page.starts_with("HTTP/1.1 200 OK")) {
                answered += 1;
            }
        }
        flood.iter().for_each(|f| f.abort());
        assert_eq!(answered, 7, "every scrape answered during the flood");
    }
}
