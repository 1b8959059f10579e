//! "Check my node": probe one node now over discv4, discv5 and RLPx, for the HTTP API.
//!
//! [`Checker`] is a cheap handle to one task that owns the per-IP rate limit and the checks
//! in flight (a `JoinSet`, at most [`CheckConfig::max_in_flight`]). The parsing, the address
//! rule and the rate limit are decided in that task before anything is sent, so a refused or
//! malformed request never makes a packet leave the machine.

use std::{
    collections::HashMap,
    net::IpAddr,
    str::FromStr,
    time::{Duration, Instant},
};

use serde::Serialize;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinSet,
};

use super::probe::{probe, ProbeConfig, ProbeResult};
use crate::{
    discovery::{v4::Discv4, Discv5},
    record::{node_id, parse_enr, Enode, Enr, NetRestrict, NodeKey},
};

const TARGET: &str = "ethp2p::crawl";

/// One check per client IP per this long: a check costs three handshakes towards a node the
/// client names, so an open API must not become a way to make us flood someone.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(30);
/// Checks running at once, across all clients.
pub const DEFAULT_CHECKS_IN_FLIGHT: usize = 16;
/// Longest wait for each protocol's answer.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests queued for the checker task.
const COMMAND_QUEUE: usize = 64;
/// Above this many remembered client IPs, expired entries are swept.
const SWEEP_ABOVE: usize = 4096;

/// How the checker works. Every field says its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CheckConfig {
    /// Addresses that may be checked; others are refused with the reason. Default: none
    /// (no restriction); the crawler passes its own `--netrestrict`.
    pub netrestrict: NetRestrict,
    /// One check per client IP per this long. Default: [`DEFAULT_CHECK_INTERVAL`].
    pub per_ip_interval: Duration,
    /// Checks at once. Default: [`DEFAULT_CHECKS_IN_FLIGHT`].
    pub max_in_flight: usize,
    /// Per-protocol timeout. Default: [`DEFAULT_CHECK_TIMEOUT`].
    pub timeout: Duration,
    /// The RLPx probe. Default: [`ProbeConfig::with_timeout`] of `timeout`.
    pub probe: ProbeConfig,
}

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            netrestrict: NetRestrict::none(),
            per_ip_interval: DEFAULT_CHECK_INTERVAL,
            max_in_flight: DEFAULT_CHECKS_IN_FLIGHT,
            timeout: DEFAULT_CHECK_TIMEOUT,
            probe: ProbeConfig::with_timeout(DEFAULT_CHECK_TIMEOUT),
        }
    }
}

impl CheckConfig {
    /// The defaults, restricted to `netrestrict`.
    pub fn new(netrestrict: NetRestrict) -> Self {
        Self { netrestrict, ..Self::default() }
    }
}

/// Why a check was not run. Each maps to an HTTP status in the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The request is not an `enode://` URL or `enr:` record we can use (400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The address is outside what this crawler may contact (403).
    #[error("refused: {0}")]
    Refused(String),
    /// This client checked too recently (429).
    #[error("rate limited: one check per {interval_secs} s per client; retry in {retry_after_secs} s")]
    RateLimited {
        /// The per-client interval.
        interval_secs: u64,
        /// Seconds until the next check is allowed.
        retry_after_secs: u64,
    },
    /// Too many checks are running (503).
    #[error("busy: too many checks running, retry shortly")]
    Busy,
    /// The checker stopped (503).
    #[error("the checker is not running")]
    Stopped,
}

/// What a check saw, protocol by protocol.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct CheckReport {
    /// The node id, hex.
    pub node_id: String,
    /// The URL checked.
    pub enode: String,
    /// discv4: PING answered, the record sequence its PONG announced, the record fetched.
    pub discv4: ProtocolReport,
    /// discv5: FINDNODE at distance 0 (its own record) answered.
    pub discv5: ProtocolReport,
    /// RLPx: the probe (Hello, Status, or why not).
    pub rlpx: ProbeResult,
}

/// One discovery protocol's answer.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct ProtocolReport {
    /// Whether it answered.
    pub answered: bool,
    /// The record it gave, `enr:` text.
    pub enr: Option<String>,
    /// The record's sequence number.
    pub seq: Option<u64>,
    /// Why it did not answer (or why it was not asked).
    pub error: Option<String>,
    /// Round trip, milliseconds.
    pub millis: Option<u64>,
}

struct Command {
    client: IpAddr,
    target: String,
    reply: oneshot::Sender<Result<CheckReport, CheckError>>,
}

/// Handle to the checker task; cheap to clone. The task stops when every handle is dropped.
#[derive(Debug, Clone)]
pub struct Checker {
    tx: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Command").field("client", &self.client).field("target", &self.target).finish()
    }
}

impl Checker {
    /// Starts the checker task; it asks through these services (either may be absent) and
    /// dials with `key`.
    pub fn spawn(config: CheckConfig, key: NodeKey, discv4: Option<Discv4>, discv5: Option<Discv5>) -> Self {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let service =
            CheckService { config, key, discv4, discv5, last: HashMap::new(), checks: JoinSet::new() };
        tokio::spawn(service.run(rx));
        Self { tx }
    }

    /// Checks `target` (an `enode://` URL or an `enr:` record) for `client`.
    pub async fn check(&self, client: IpAddr, target: String) -> Result<CheckReport, CheckError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command { client, target, reply }).await.map_err(|_| CheckError::Stopped)?;
        rx.await.map_err(|_| CheckError::Stopped)?
    }
}

/// The task's state: the rate limit and the checks running.
struct CheckService {
    config: CheckConfig,
    key: NodeKey,
    discv4: Option<Discv4>,
    discv5: Option<Discv5>,
    /// When each client last started a check.
    last: HashMap<IpAddr, Instant>,
    checks: JoinSet<()>,
}

impl CheckService {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        loop {
            tokio::select! {
                command = rx.recv() => {
                    let Some(command) = command else { break };
                    self.on_command(command, Instant::now());
                }
                Some(_) = self.checks.join_next(), if !self.checks.is_empty() => {}
            }
        }
        self.checks.shutdown().await;
    }

    fn on_command(&mut self, Command { client, target, reply }: Command, now: Instant) {
        let target = match self.admit(client, &target, now) {
            Ok(target) => target,
            Err(e) => {
                tracing::debug!(target: TARGET, %client, error = %e, "check refused");
                let _ = reply.send(Err(e));
                return;
            }
        };
        let (key, probe_config, timeout) = (self.key.clone(), self.config.probe.clone(), self.config.timeout);
        let (discv4, discv5) = (self.discv4.clone(), self.discv5.clone());
        self.checks.spawn(async move {
            let report = run_check(target, key, probe_config, timeout, discv4, discv5).await;
            let _ = reply.send(Ok(report));
        });
    }

    /// Parses the target and applies the address rule and the rate limit, in that order: a
    /// malformed or refused request does not use up the client's check.
    fn admit(&mut self, client: IpAddr, target: &str, now: Instant) -> Result<Target, CheckError> {
        let target = Target::parse(target)?;
        if !self.config.netrestrict.allows(&target.enode.ip) {
            return Err(CheckError::Refused(format!(
                "{} is outside this crawler's --netrestrict ({})",
                target.enode.ip, self.config.netrestrict
            )));
        }
        if target.enode.ip.is_unspecified() || target.enode.ip.is_multicast() {
            return Err(CheckError::Refused(format!("{} is not a node's address", target.enode.ip)));
        }
        let interval = self.config.per_ip_interval;
        if let Some(last) = self.last.get(&client) {
            let since = now.saturating_duration_since(*last);
            if since < interval {
                return Err(CheckError::RateLimited {
                    interval_secs: interval.as_secs(),
                    retry_after_secs: (interval - since).as_secs().max(1),
                });
            }
        }
        if self.checks.len() >= self.config.max_in_flight {
            return Err(CheckError::Busy);
        }
        if self.last.len() >= SWEEP_ABOVE {
            self.last.retain(|_, at| now.saturating_duration_since(*at) < interval);
        }
        self.last.insert(client, now);
        Ok(target)
    }
}

/// A parsed check target.
#[derive(Debug, Clone)]
struct Target {
    enode: Enode,
    enr: Option<Enr>,
}

impl Target {
    fn parse(text: &str) -> Result<Self, CheckError> {
        let text = text.trim();
        if text.starts_with("enr:") {
            let enr = parse_enr(text).map_err(|e| CheckError::BadRequest(format!("invalid enr: {e}")))?;
            let candidate =
                crate::discovery::Candidate::from_enr(&enr, crate::discovery::CandidateSource::Static)
                    .map_err(|e| CheckError::BadRequest(format!("record has no usable address: {e}")))?;
            let enode = Enode {
                peer_id: candidate.peer_id,
                ip: candidate.ip,
                tcp_port: candidate.tcp_port.unwrap_or(0),
                udp_port: candidate.udp_port.or(candidate.tcp_port).unwrap_or(0),
            };
            return Ok(Self { enode, enr: Some(enr) });
        }
        if !text.starts_with("enode://") {
            return Err(CheckError::BadRequest("expected an enode:// URL or an enr: record".into()));
        }
        let enode =
            Enode::from_str(text).map_err(|e| CheckError::BadRequest(format!("invalid enode: {e}")))?;
        if enode.tcp_port == 0 && enode.udp_port == 0 {
            return Err(CheckError::BadRequest("the enode has no port".into()));
        }
        Ok(Self { enode, enr: None })
    }
}

async fn run_check(
    target: Target,
    key: NodeKey,
    probe_config: ProbeConfig,
    timeout: Duration,
    discv4: Option<Discv4>,
    discv5: Option<Discv5>,
) -> CheckReport {
    let enode = target.enode;
    let v4 = async {
        let Some(discv4) = discv4.filter(|_| enode.udp_port != 0) else {
            return ProtocolReport {
                error: Some("not asked (no discv4 or no UDP port)".into()),
                ..Default::default()
            };
        };
        let started = Instant::now();
        match tokio::time::timeout(timeout, discv4.ping(enode)).await {
            Ok(Ok(seq)) => {
                let mut report = ProtocolReport {
                    answered: true,
                    seq,
                    millis: Some(millis(started)),
                    ..Default::default()
                };
                if seq.is_some() {
                    if let Ok(Ok(enr)) = tokio::time::timeout(timeout, discv4.request_enr(enode)).await {
                        report.enr = Some(enr.to_base64());
                    }
                }
                report
            }
            Ok(Err(e)) => ProtocolReport { error: Some(e.to_string()), ..Default::default() },
            Err(_) => ProtocolReport { error: Some("no answer in time".into()), ..Default::default() },
        }
    };
    let rlpx = probe(&enode, &key, &probe_config);
    let (v4, rlpx) = tokio::join!(v4, rlpx);
    // discv5 needs the node's record: the one given, else the one discv4 fetched.
    let record = target.enr.or_else(|| v4.enr.as_deref().and_then(|text| parse_enr(text).ok()));
    let v5 = match (discv5, record) {
        (None, _) => ProtocolReport { error: Some("not asked (no discv5)".into()), ..Default::default() },
        (Some(_), None) => ProtocolReport {
            error: Some("not asked (no record to contact it by)".into()),
            ..Default::default()
        },
        (Some(discv5), Some(enr)) => {
            let started = Instant::now();
            match tokio::time::timeout(timeout, discv5.find_node(enr, vec![0])).await {
                Ok(Ok(records)) => {
                    let own = records.into_iter().next();
                    ProtocolReport {
                        answered: true,
                        seq: own.as_ref().map(|r| r.seq()),
                        enr: own.map(|r| r.to_base64()),
                        millis: Some(millis(started)),
                        error: None,
                    }
                }
                Ok(Err(e)) => ProtocolReport { error: Some(e.to_string()), ..Default::default() },
                Err(_) => ProtocolReport { error: Some("no answer in time".into()), ..Default::default() },
            }
        }
    };
    CheckReport {
        node_id: hex::encode(node_id(&enode.peer_id)),
        enode: enode.to_string(),
        discv4: v4,
        discv5: v5,
        rlpx,
    }
}

fn millis(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
