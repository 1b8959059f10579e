//! The operator's ingest budgets: how many datagrams per second the discovery port takes
//! from one IP, from one subnet (/24, /48), and from everyone, before the work that costs.
//!
//! A public bootnode is attacked by design, so these are numbers an operator sets (the
//! `bootnode` flags `--packets-per-ip`, `--packets-per-subnet`, `--ingest-budget`,
//! `--v5-sessions-per-ip`) and sees (each shed datagram is counted by reason).
//! [`IngressBudget`] is a pure core: the discv4 task asks it about each datagram, with `now`,
//! before the signature recovery (the costly part of a discv4 packet).
//!
//! Why three buckets and not one: a global budget alone is first come, first served, so a
//! flood from one /24 would take all of it and crowd honest nodes out. The subnet bucket caps
//! what one /24 (or /48) can take, well below the global budget, so the global budget is only
//! ever exhausted by floods from many subnets at once. The per-IP bucket keeps one host from
//! taking its whole subnet's share from its neighbours.
//!
//! What the budgets cannot see: with discv5 on the port, the `discv5` crate reads the socket
//! and decodes its own packets before we see anything (`ListenConfig::FromSockets`; its packet
//! filter is off because it would throttle discv4 and bans through a process-wide list). The
//! budgets therefore apply to the datagrams discv5 hands on (discv4 and garbage); discv5's own
//! traffic is capped where its cost is, at handshakes: an IP that completes more than
//! [`IngressLimits::v5_sessions_per_ip`] new sessions a minute is banned from the port for
//! [`V5_SESSION_BAN`]. A completed handshake proves its source address, so a spoofer cannot
//! get someone else banned this way.

use std::{
    net::IpAddr,
    num::NonZeroUsize,
    time::{Duration, Instant},
};

use lru::LruCache;

use crate::record::net::{canonical, is_lan};

/// Default datagrams per second from one IP. A lookup from one node is a few packets per
/// second; 200 leaves room for a few dozen nodes behind one NAT (cloud providers, exchanges).
pub const DEFAULT_PACKETS_PER_IP: u32 = 200;
/// Default datagrams per second from one /24 (IPv4) or /48 (IPv6), the subnets the tables
/// and the pool limit already: 5 busy hosts' worth, and a twentieth of the global budget.
pub const DEFAULT_PACKETS_PER_SUBNET: u32 = 1_000;
/// Default datagrams per second the port takes in total before shedding. On the 2-core
/// machine of BENCHMARKS.md (`discv4_load`), the discv4 service serves about 17,000
/// PING→PONGs a second at saturation, with its signature work on the task or on 2 workers
/// alike: 20,000 is a little above what it can use, so the budget sheds what would be lost
/// in its queues anyway, before the signature work, rather than after. Raise it
/// (`--ingest-budget`) on a machine with more cores and `--crypto-workers` to match.
pub const DEFAULT_INGEST_BUDGET: u32 = 20_000;
/// Default new discv5 sessions (completed handshakes) per IP per minute. An honest node opens
/// one session and keeps it; a restarting one a few. 30 a minute is still many nodes behind
/// one NAT, and caps a handshake flood from one host at one ECDH + signature check every 2 s.
pub const DEFAULT_V5_SESSIONS_PER_IP: u32 = 30;
/// How long an IP over [`IngressLimits::v5_sessions_per_ip`] is banned from the port. The
/// `discv5` crate checks ban expiry every 5 minutes, so a ban lasts between 10 and 15.
pub const V5_SESSION_BAN: Duration = Duration::from_secs(10 * 60);
/// IPs and subnets whose buckets are remembered (LRU): bounds memory under a flood of
/// spoofed sources. A forgotten source starts again with a full bucket, as a new one would.
pub(crate) const TRACKED_SOURCES: usize = 16_384;

/// The ingest budgets of a discovery port. Each is a rate in datagrams per second (bursts up
/// to two seconds' worth are taken); `None` turns that budget off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngressLimits {
    /// Datagrams per second from one IP. Default: [`DEFAULT_PACKETS_PER_IP`] (200).
    pub packets_per_ip: Option<u32>,
    /// Datagrams per second from one /24 (IPv4) or /48 (IPv6). Default:
    /// [`DEFAULT_PACKETS_PER_SUBNET`] (1,000).
    pub packets_per_subnet: Option<u32>,
    /// Datagrams per second from everyone. Default: [`DEFAULT_INGEST_BUDGET`] (20,000).
    pub ingest_budget: Option<u32>,
    /// New discv5 sessions (completed handshakes) per IP per minute; an IP over it is banned
    /// from the port for [`V5_SESSION_BAN`]. Default: [`DEFAULT_V5_SESSIONS_PER_IP`] (30).
    pub v5_sessions_per_ip: Option<u32>,
    /// Apply the budgets to loopback and LAN sources too (loopback, private and link-local space). Default: false: a
    /// LAN's nodes are the operator's own, and test networks run hundreds of nodes on
    /// 127.0.0.1, as the pool's `limit_lan` exempts them from its per-IP rules.
    pub limit_lan: bool,
}

impl Default for IngressLimits {
    fn default() -> Self {
        Self {
            packets_per_ip: Some(DEFAULT_PACKETS_PER_IP),
            packets_per_subnet: Some(DEFAULT_PACKETS_PER_SUBNET),
            ingest_budget: Some(DEFAULT_INGEST_BUDGET),
            v5_sessions_per_ip: Some(DEFAULT_V5_SESSIONS_PER_IP),
            limit_lan: false,
        }
    }
}

impl IngressLimits {
    /// No budget at all (load tests and benchmarks).
    pub fn unlimited() -> Self {
        Self {
            packets_per_ip: None,
            packets_per_subnet: None,
            ingest_budget: None,
            v5_sessions_per_ip: None,
            limit_lan: false,
        }
    }

    /// Checks the budgets: a zero rate would shed everything, which no operator means.
    pub fn check(&self) -> Result<(), String> {
        let named = [
            ("packets_per_ip", self.packets_per_ip),
            ("packets_per_subnet", self.packets_per_subnet),
            ("ingest_budget", self.ingest_budget),
            ("v5_sessions_per_ip", self.v5_sessions_per_ip),
        ];
        for (name, value) in named {
            if value == Some(0) {
                return Err(format!("{name} must be at least 1 (or off)"));
            }
        }
        Ok(())
    }
}

/// Why a datagram was shed. Each is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shed {
    /// Its IP is over [`IngressLimits::packets_per_ip`].
    Ip,
    /// Its /24 or /48 is over [`IngressLimits::packets_per_subnet`].
    Subnet,
    /// The port is over [`IngressLimits::ingest_budget`].
    Global,
}

/// A token bucket: `rate` tokens a second, up to two seconds' worth.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(rate: u32, now: Instant) -> Self {
        Self { tokens: 2.0 * f64::from(rate), last: now }
    }

    /// Refills to `now`; whether a token is there (not spent).
    fn has_token(&mut self, rate: u32, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(2.0 * f64::from(rate));
        self.last = now;
        self.tokens >= 1.0
    }

    fn spend(&mut self) {
        self.tokens -= 1.0;
    }
}

/// The /24 (IPv4) or /48 (IPv6) a source belongs to, as a key.
fn subnet_of(ip: IpAddr) -> [u8; 6] {
    match canonical(ip) {
        IpAddr::V4(ip) => {
            let [a, b, c, _] = ip.octets();
            [4, a, b, c, 0, 0]
        }
        IpAddr::V6(ip) => {
            let o = ip.octets();
            [o[0], o[1], o[2], o[3], o[4], o[5]]
        }
    }
}

/// The ingest budgets of one port (a pure core: see the module docs).
#[derive(Debug)]
pub(crate) struct IngressBudget {
    limits: IngressLimits,
    ips: LruCache<IpAddr, Bucket>,
    subnets: LruCache<[u8; 6], Bucket>,
    global: Option<Bucket>,
}

impl IngressBudget {
    pub(crate) fn new(limits: IngressLimits, now: Instant) -> Self {
        let tracked = NonZeroUsize::new(TRACKED_SOURCES).unwrap_or(NonZeroUsize::MIN);
        Self {
            limits,
            ips: LruCache::new(tracked),
            subnets: LruCache::new(tracked),
            global: limits.ingest_budget.map(|rate| Bucket::full(rate, now)),
        }
    }

    /// Whether a datagram from `ip` is taken at `now`. A datagram is charged to its IP, its
    /// subnet and the port only when all three have room, so a shed datagram costs nobody's
    /// budget: a flood over its own IP's rate does not also eat its subnet's.
    pub(crate) fn admit(&mut self, now: Instant, ip: IpAddr) -> Result<(), Shed> {
        let ip = canonical(ip);
        if !self.limits.limit_lan && is_lan(ip) {
            return Ok(());
        }
        if let Some(rate) = self.limits.packets_per_ip {
            let bucket = self.ips.get_or_insert_mut(ip, || Bucket::full(rate, now));
            if !bucket.has_token(rate, now) {
                return Err(Shed::Ip);
            }
        }
        if let Some(rate) = self.limits.packets_per_subnet {
            let bucket = self.subnets.get_or_insert_mut(subnet_of(ip), || Bucket::full(rate, now));
            if !bucket.has_token(rate, now) {
                return Err(Shed::Subnet);
            }
        }
        if let (Some(rate), Some(bucket)) = (self.limits.ingest_budget, self.global.as_mut()) {
            if !bucket.has_token(rate, now) {
                return Err(Shed::Global);
            }
            bucket.spend();
        }
        if self.limits.packets_per_ip.is_some() {
            if let Some(bucket) = self.ips.peek_mut(&ip) {
                bucket.spend();
            }
        }
        if self.limits.packets_per_subnet.is_some() {
            if let Some(bucket) = self.subnets.peek_mut(&subnet_of(ip)) {
                bucket.spend();
            }
        }
        Ok(())
    }
}

/// Counts new discv5 sessions per IP over one-minute windows (a pure core for the discv5
/// service, which bans the IPs it reports).
#[derive(Debug)]
pub(crate) struct SessionCap {
    per_minute: Option<u32>,
    limit_lan: bool,
    windows: LruCache<IpAddr, (Instant, u32)>,
}

impl SessionCap {
    pub(crate) fn new(limits: &IngressLimits) -> Self {
        let tracked = NonZeroUsize::new(TRACKED_SOURCES).unwrap_or(NonZeroUsize::MIN);
        Self {
            per_minute: limits.v5_sessions_per_ip,
            limit_lan: limits.limit_lan,
            windows: LruCache::new(tracked),
        }
    }

    /// Records a new session from `ip`; `true` when that puts the IP over the cap (once per
    /// window: the caller bans it, and its later sessions are not reported again).
    pub(crate) fn on_session(&mut self, now: Instant, ip: IpAddr) -> bool {
        let Some(cap) = self.per_minute else { return false };
        let ip = canonical(ip);
        if !self.limit_lan && is_lan(ip) {
            return false;
        }
        let window = self.windows.get_or_insert_mut(ip, || (now, 0));
        if now.saturating_duration_since(window.0) >= Duration::from_secs(60) {
            *window = (now, 0);
        }
        window.1 = window.1.saturating_add(1);
        window.1 == cap.saturating_add(1)
    }
}

#[cfg(test)]
mod tests;
