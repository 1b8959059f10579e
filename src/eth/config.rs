//! [`EthConfig`]: what every eth session of a node shares (our `Status`, the fork filter,
//! timeouts, channel capacities, and the versions we speak), with its builder.

use std::time::Duration;

use crate::eth::error::EthError;
use crate::eth::status::StatusInfo;
use crate::eth::version::EthVersion;
use crate::record::ForkFilter;
use crate::rlpx::Protocol;

/// geth `eth/handshake.go` `handshakeTimeout`: the peer's `Status` must arrive within 5 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request may wait for its response. reth's downloader starts from 20 s
/// (`INITIAL_REQUEST_TIMEOUT`); a syncer with latency estimates will want less.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Commands queued from handles to one session task before callers wait.
pub const DEFAULT_COMMAND_CAPACITY: usize = 64;
/// Events queued for the owner; when full, further events are dropped (never the session's
/// progress: a caller awaiting a response must not deadlock on an unread event queue).
pub const DEFAULT_EVENT_CAPACITY: usize = 1024;
/// Requests of one peer answered at once, off its session task (on tokio's blocking pool). A
/// syncer keeps a few requests in flight per peer (go-ethereum's downloader one per kind,
/// three kinds; our `sync` example two), so four let a peer's pipelined requests be
/// answered side by side while a `ChainReader` waits on a disk.
pub const DEFAULT_SERVE_CONCURRENCY: usize = 4;
/// Requests of one peer waiting for a serving slot; more are dropped (the peer's request
/// times out), as reth drops requests when its handler's channel is full. A request is at
/// most a few kB to 32 kB of hashes, so a flooding peer costs at most about 0.5 MB here.
pub const DEFAULT_SERVE_QUEUE: usize = 16;

/// Configuration of eth sessions.
#[derive(Debug, Clone)]
pub struct EthConfig {
    /// What we announce in `Status`. No default: it describes the caller's chain.
    pub status: StatusInfo,
    /// Our EIP-2124 fork filter, to validate the peer's fork id. No default.
    pub fork_filter: ForkFilter,
    /// Time allowed for the peer's `Status`. Default: [`DEFAULT_HANDSHAKE_TIMEOUT`] (5 s).
    pub handshake_timeout: Duration,
    /// Time allowed for each response. Default: [`DEFAULT_REQUEST_TIMEOUT`] (20 s).
    pub request_timeout: Duration,
    /// Capacity of the handle → task command channel. Default: [`DEFAULT_COMMAND_CAPACITY`].
    pub command_capacity: usize,
    /// Capacity of the event channel. Default: [`DEFAULT_EVENT_CAPACITY`].
    pub event_capacity: usize,
    /// Requests of one peer answered at once, each on tokio's blocking pool, so a slow
    /// [`ChainReader`](crate::eth::ChainReader) never holds up the session or a runtime worker.
    /// Default: [`DEFAULT_SERVE_CONCURRENCY`] (4).
    pub serve_concurrency: usize,
    /// Requests of one peer waiting for a serving slot; past this they are dropped.
    /// Default: [`DEFAULT_SERVE_QUEUE`] (16).
    pub serve_queue: usize,
    /// The eth versions we speak, newest first: the capabilities a node offers in its Hello
    /// ([`Self::protocols`]), and a session negotiated on another one is refused.
    /// Default: [`EthVersion::ALL`] (72 down to 66).
    pub versions: Vec<EthVersion>,
}

impl EthConfig {
    /// A builder for a chain we describe with `status` and `fork_filter`.
    pub fn builder(status: StatusInfo, fork_filter: ForkFilter) -> EthConfigBuilder {
        EthConfigBuilder {
            config: EthConfig {
                status,
                fork_filter,
                handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
                request_timeout: DEFAULT_REQUEST_TIMEOUT,
                command_capacity: DEFAULT_COMMAND_CAPACITY,
                event_capacity: DEFAULT_EVENT_CAPACITY,
                serve_concurrency: DEFAULT_SERVE_CONCURRENCY,
                serve_queue: DEFAULT_SERVE_QUEUE,
                versions: EthVersion::ALL.to_vec(),
            },
        }
    }

    /// The RLPx capabilities for [`Self::versions`], each with its version's message-id
    /// count ([`Protocol::eth`]): what a Hello offers.
    pub fn protocols(&self) -> Vec<Protocol> {
        self.versions.iter().map(|v| Protocol::eth(v.as_u8().into())).collect()
    }
}

/// Builder of an [`EthConfig`].
#[derive(Debug, Clone)]
pub struct EthConfigBuilder {
    config: EthConfig,
}

impl EthConfigBuilder {
    /// See [`EthConfig::handshake_timeout`].
    pub fn handshake_timeout(&mut self, t: Duration) -> &mut Self {
        self.config.handshake_timeout = t;
        self
    }

    /// See [`EthConfig::request_timeout`].
    pub fn request_timeout(&mut self, t: Duration) -> &mut Self {
        self.config.request_timeout = t;
        self
    }

    /// See [`EthConfig::command_capacity`].
    pub fn command_capacity(&mut self, n: usize) -> &mut Self {
        self.config.command_capacity = n;
        self
    }

    /// See [`EthConfig::event_capacity`].
    pub fn event_capacity(&mut self, n: usize) -> &mut Self {
        self.config.event_capacity = n;
        self
    }

    /// See [`EthConfig::serve_concurrency`].
    pub fn serve_concurrency(&mut self, n: usize) -> &mut Self {
        self.config.serve_concurrency = n;
        self
    }

    /// See [`EthConfig::serve_queue`].
    pub fn serve_queue(&mut self, n: usize) -> &mut Self {
        self.config.serve_queue = n;
        self
    }

    /// See [`EthConfig::versions`]; the order given is kept (newest first is the habit, the
    /// highest shared version wins either way).
    pub fn versions(&mut self, versions: &[EthVersion]) -> &mut Self {
        self.config.versions = versions.to_vec();
        self
    }

    /// The configuration, if its timeouts, capacities and serving concurrency are non-zero
    /// (the serving queue may be empty) and it names at least
    /// one version, each once.
    pub fn build(&self) -> Result<EthConfig, EthError> {
        let c = &self.config;
        if c.handshake_timeout.is_zero() || c.request_timeout.is_zero() {
            return Err(EthError::Config("timeouts must be non-zero".into()));
        }
        if c.command_capacity == 0 || c.event_capacity == 0 || c.serve_concurrency == 0 {
            return Err(EthError::Config("channel capacities and serve_concurrency must be non-zero".into()));
        }
        if c.versions.is_empty() {
            return Err(EthError::Config("no eth version".into()));
        }
        if c.versions.iter().enumerate().any(|(i, v)| c.versions[..i].contains(v)) {
            return Err(EthError::Config("an eth version is listed twice".into()));
        }
        Ok(c.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eth::MemoryChain;
    use crate::record::ChainSpec;

    #[test]
    fn versions_default_to_all_and_give_the_hello_capabilities() {
        let chain = MemoryChain::builder().blocks(1).build();
        let config = chain.eth_config_for(&ChainSpec::mainnet()).build().unwrap();
        assert_eq!(config.versions, EthVersion::ALL);
        let caps: Vec<(u32, u8)> = config.protocols().iter().map(|p| (p.cap.version, p.messages)).collect();
        assert_eq!(caps, [(72, 22), (71, 20), (70, 18), (69, 18), (68, 17), (67, 17), (66, 17)]);
        let mut b = chain.eth_config_for(&ChainSpec::mainnet());
        assert!(b.versions(&[]).build().is_err());
        assert!(b.versions(&[EthVersion::Eth69, EthVersion::Eth69]).build().is_err());
        assert_eq!(b.versions(&[EthVersion::Eth70, EthVersion::Eth69]).build().unwrap().protocols().len(), 2);
    }
}
