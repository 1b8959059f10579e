//! The crawl's settings: [`CrawlConfig`] and its builder, with the reason for each default.

use std::time::Duration;

use super::{probe::ProbeConfig, CrawlError};

/// go-ethereum's crawler and nebula both default to a few hundred concurrent requests: enough
/// to hide round trips, few enough not to look like a flood to any one network.
pub const DEFAULT_WORKERS: usize = 256;
/// How long to crawl at most. Default of go-ethereum's `devp2p discv4 crawl --timeout`.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(30 * 60);
/// A crawl ends when nothing is in flight and no new node appeared for this long.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(5);
/// How often changed nodes are written (one transaction each time).
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// A node probed more recently than this (by an earlier run) is not probed again.
pub const DEFAULT_REPROBE_AFTER: Duration = Duration::from_secs(3600);
/// discv5: FINDNODEs in flight at once, across all workers. discv5 decodes every answer in
/// one task and checks each record's signature there (up to 16 per answer, ~0.1 ms each), so
/// too many requests out would make answers queue past its 1 s request timeout. Measured on
/// the 1,000-node loopback network (`examples/crawl_bench`, release, 2 cores): 32 in flight
/// found 99% in 9.2 s and finished in 29.8 s, 256 in 6.2 s and 21.6 s, so the default is the
/// worker count: no limit beyond it. Lower it on a slow machine.
pub const DEFAULT_DISCV5_IN_FLIGHT: usize = DEFAULT_WORKERS;
/// Rounds in a row a node may go unseen before the store marks it gone. Three: one round
/// lost to packet loss or a restart is common, three in a row (90 minutes at `--every 30m`)
/// is a node that left; nebula's default of marking a node dead after missing its visits for
/// a while is of the same order.
pub const DEFAULT_GONE_AFTER: u32 = 3;

/// Crawl settings. Every field says its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CrawlConfig {
    /// Jobs (FINDNODE series, ENR requests, probes) in flight at once. Default:
    /// [`DEFAULT_WORKERS`].
    pub workers: usize,
    /// Longest crawl. Default: [`DEFAULT_DURATION`].
    pub duration: Duration,
    /// Quiet time after which the crawl is done. Default: [`DEFAULT_IDLE`].
    pub idle: Duration,
    /// How to probe; `None` skips probing. Default: `Some(ProbeConfig::default())`.
    pub probe: Option<ProbeConfig>,
    /// Time between saves. Default: [`DEFAULT_FLUSH_INTERVAL`].
    pub flush_interval: Duration,
    /// Nodes probed less than this long ago are not probed again. Default:
    /// [`DEFAULT_REPROBE_AFTER`].
    pub reprobe_after: Duration,
    /// discv5 FINDNODEs in flight at once (the other jobs are bounded by `workers` only).
    /// Default: [`DEFAULT_DISCV5_IN_FLIGHT`].
    pub discv5_in_flight: usize,
    /// A node not seen up for this many rounds in a row is marked gone (its row and its
    /// sessions stay). Default: [`DEFAULT_GONE_AFTER`].
    pub gone_after: u32,
}

impl Default for CrawlConfig {
    fn default() -> Self {
        Self {
            workers: DEFAULT_WORKERS,
            duration: DEFAULT_DURATION,
            idle: DEFAULT_IDLE,
            probe: Some(ProbeConfig::default()),
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            reprobe_after: DEFAULT_REPROBE_AFTER,
            discv5_in_flight: DEFAULT_DISCV5_IN_FLIGHT,
            gone_after: DEFAULT_GONE_AFTER,
        }
    }
}

impl CrawlConfig {
    /// Starts from the defaults.
    pub fn builder() -> CrawlConfigBuilder {
        CrawlConfigBuilder { config: Self::default() }
    }
}

/// Builder for [`CrawlConfig`].
#[derive(Debug, Clone)]
pub struct CrawlConfigBuilder {
    config: CrawlConfig,
}

impl CrawlConfigBuilder {
    /// See [`CrawlConfig::workers`].
    pub fn workers(&mut self, workers: usize) -> &mut Self {
        self.config.workers = workers;
        self
    }

    /// See [`CrawlConfig::duration`].
    pub fn duration(&mut self, duration: Duration) -> &mut Self {
        self.config.duration = duration;
        self
    }

    /// See [`CrawlConfig::idle`].
    pub fn idle(&mut self, idle: Duration) -> &mut Self {
        self.config.idle = idle;
        self
    }

    /// See [`CrawlConfig::probe`].
    pub fn probe(&mut self, probe: Option<ProbeConfig>) -> &mut Self {
        self.config.probe = probe;
        self
    }

    /// See [`CrawlConfig::flush_interval`].
    pub fn flush_interval(&mut self, interval: Duration) -> &mut Self {
        self.config.flush_interval = interval;
        self
    }

    /// See [`CrawlConfig::reprobe_after`].
    pub fn reprobe_after(&mut self, after: Duration) -> &mut Self {
        self.config.reprobe_after = after;
        self
    }

    /// See [`CrawlConfig::discv5_in_flight`].
    pub fn discv5_in_flight(&mut self, requests: usize) -> &mut Self {
        self.config.discv5_in_flight = requests;
        self
    }

    /// See [`CrawlConfig::gone_after`].
    pub fn gone_after(&mut self, rounds: u32) -> &mut Self {
        self.config.gone_after = rounds;
        self
    }

    /// Checks and returns the configuration.
    pub fn build(&self) -> Result<CrawlConfig, CrawlError> {
        if self.config.workers == 0 || self.config.discv5_in_flight == 0 {
            return Err(CrawlError::Config("workers and discv5 requests in flight must be at least 1"));
        }
        if self.config.gone_after == 0 {
            return Err(CrawlError::Config("gone_after must be at least 1 round"));
        }
        if self.config.flush_interval.is_zero() {
            return Err(CrawlError::Config("flush interval must be positive"));
        }
        Ok(self.config.clone())
    }
}
