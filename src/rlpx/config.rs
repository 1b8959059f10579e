//! [`RlpxConfig`]: the timeouts, limits and Hello contents of RLPx sessions.

use std::time::Duration;

use super::{p2p::Protocol, RlpxError};

/// geth `p2p/dial.go` `defaultDialTimeout`: how long a TCP connect may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// geth `p2p/transport.go` `handshakeTimeout`: ECIES plus Hello must finish within 5 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// geth `p2p/rlpx` `frameReadTimeout`: a session with no frame for 30 s is dead (with a Ping
/// every 15 s a live peer always sends a Pong well within it).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// geth `p2p/peer.go` `pingInterval`.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(15);
/// How long a Ping may go unanswered. ethereumjs allows 10 s; we allow 20 s so a peer under
/// load is not dropped for one slow Pong, while a dead one is found within 35 s.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// Accepted connections whose handshake is still running. A half-open connection costs a
/// socket and a task; 50 bounds that memory (geth's `maxPendingPeers` default is 50 too).
pub const DEFAULT_MAX_PENDING_HANDSHAKES: usize = 50;
/// The longest client id we send: it travels in Hello, which must fit the 2 KiB base protocol
/// message limit.
const MAX_CLIENT_ID_LEN: usize = 256;

/// Configuration of RLPx sessions and the listener.
///
/// ```
/// use std::time::Duration;
/// use ethp2p::rlpx::{Protocol, RlpxConfig};
/// let config = RlpxConfig::builder()
///     .handshake_timeout(Duration::from_secs(3))
///     .protocol(Protocol::eth(68))
///     .build()?;
/// assert_eq!(config.ping_interval, Duration::from_secs(15));
/// # Ok::<(), ethp2p::rlpx::RlpxError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RlpxConfig {
    /// How long a TCP connect may take when dialing. Default: 15 s.
    pub connect_timeout: Duration,
    /// How long the ECIES handshake plus the Hello exchange may take. Default: 5 s.
    pub handshake_timeout: Duration,
    /// A session with no incoming frame for this long fails with `IdleTimeout`. Default: 30 s.
    pub idle_timeout: Duration,
    /// How often we Ping the peer. Default: 15 s.
    pub ping_interval: Duration,
    /// How long a Ping may go unanswered before the session fails with `PingTimeout`.
    /// Default: 20 s.
    pub ping_timeout: Duration,
    /// How many accepted connections may be in their handshake at once; further connections
    /// are closed at once. Default: 50.
    pub max_pending_handshakes: usize,
    /// The client id sent in Hello. Default: `ethp2p/<crate version>`.
    pub client_id: String,
    /// The TCP port announced in Hello (0: we don't say). Default: 0.
    pub listen_port: u16,
    /// The capabilities we offer, with the number of message ids each uses. Default: none
    /// (the eth layer adds its own).
    pub protocols: Vec<Protocol>,
}

impl Default for RlpxConfig {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_timeout: DEFAULT_PING_TIMEOUT,
            max_pending_handshakes: DEFAULT_MAX_PENDING_HANDSHAKES,
            client_id: concat!("ethp2p/v", env!("CARGO_PKG_VERSION")).to_owned(),
            listen_port: 0,
            protocols: Vec::new(),
        }
    }
}

impl RlpxConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> RlpxConfigBuilder {
        RlpxConfigBuilder { config: Self::default() }
    }
}

/// Builds an [`RlpxConfig`], checking it in [`RlpxConfigBuilder::build`].
#[derive(Debug, Clone)]
pub struct RlpxConfigBuilder {
    config: RlpxConfig,
}

impl RlpxConfigBuilder {
    /// Sets [`RlpxConfig::connect_timeout`].
    pub fn connect_timeout(&mut self, t: Duration) -> &mut Self {
        self.config.connect_timeout = t;
        self
    }
    /// Sets [`RlpxConfig::handshake_timeout`].
    pub fn handshake_timeout(&mut self, t: Duration) -> &mut Self {
        self.config.handshake_timeout = t;
        self
    }
    /// Sets [`RlpxConfig::idle_timeout`].
    pub fn idle_timeout(&mut self, t: Duration) -> &mut Self {
        self.config.idle_timeout = t;
        self
    }
    /// Sets [`RlpxConfig::ping_interval`].
    pub fn ping_interval(&mut self, t: Duration) -> &mut Self {
        self.config.ping_interval = t;
        self
    }
    /// Sets [`RlpxConfig::ping_timeout`].
    pub fn ping_timeout(&mut self, t: Duration) -> &mut Self {
        self.config.ping_timeout = t;
        self
    }
    /// Sets [`RlpxConfig::max_pending_handshakes`].
    pub fn max_pending_handshakes(&mut self, n: usize) -> &mut Self {
        self.config.max_pending_handshakes = n;
        self
    }
    /// Sets [`RlpxConfig::client_id`].
    pub fn client_id(&mut self, id: impl Into<String>) -> &mut Self {
        self.config.client_id = id.into();
        self
    }
    /// Sets [`RlpxConfig::listen_port`].
    pub fn listen_port(&mut self, port: u16) -> &mut Self {
        self.config.listen_port = port;
        self
    }
    /// Adds a capability to [`RlpxConfig::protocols`].
    pub fn protocol(&mut self, protocol: Protocol) -> &mut Self {
        self.config.protocols.push(protocol);
        self
    }

    /// Checks the configuration: non-zero timeouts and cap, a client id that fits in Hello,
    /// and capability names Hello can carry.
    pub fn build(&self) -> Result<RlpxConfig, RlpxError> {
        let c = &self.config;
        let bad = |what: &str| Err(RlpxError::InvalidConfig(what.to_owned()));
        if [c.connect_timeout, c.handshake_timeout, c.idle_timeout, c.ping_interval, c.ping_timeout]
            .contains(&Duration::ZERO)
        {
            return bad("timeouts and intervals must be non-zero");
        }
        if c.max_pending_handshakes == 0 {
            return bad("max_pending_handshakes must be at least 1");
        }
        if c.client_id.len() > MAX_CLIENT_ID_LEN {
            return bad("client_id is longer than 256 bytes");
        }
        if c.protocols
            .iter()
            .any(|p| p.cap.name.is_empty() || p.cap.name.len() > super::p2p::MAX_CAPABILITY_NAME_LEN)
        {
            return bad("capability names must be 1 to 32 bytes");
        }
        Ok(c.clone())
    }
}
