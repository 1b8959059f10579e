//! The RLPx probe: dial a node, record its Hello (client id, capabilities) and, when it
//! speaks eth, its Status; or why it refused.

use std::time::{Duration, Instant};

use alloy_primitives::B256;
use serde::{Deserialize, Serialize};

use super::node::unix_now;
use crate::{
    record::{Enode, ForkId, NodeKey},
    rlpx::{self, DisconnectReason, Hello, Protocol, RlpxConfig, RlpxError},
};

/// The client id the crawler announces in its Hello.
pub const PROBE_CLIENT_ID: &str = concat!("ethp2p-crawler/v", env!("CARGO_PKG_VERSION"));

/// What the Hello said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HelloInfo {
    /// The client's self-description, e.g. `Geth/v1.14.0-stable/linux-amd64/go1.22.2`.
    pub client_id: String,
    /// Its capabilities as `name/version`, e.g. `eth/68`.
    pub capabilities: Vec<String>,
    /// The p2p base protocol version.
    pub protocol_version: u64,
}

impl HelloInfo {
    /// From a received Hello.
    pub fn of(hello: &Hello) -> Self {
        Self {
            client_id: hello.client_id.clone(),
            capabilities: hello.capabilities.iter().map(|c| format!("{}/{}", c.name, c.version)).collect(),
            protocol_version: hello.protocol_version,
        }
    }

    /// The highest `eth` version it offers.
    pub fn eth_version(&self) -> Option<u32> {
        self.capabilities.iter().filter_map(|cap| cap.strip_prefix("eth/")?.parse::<u32>().ok()).max()
    }
}

/// What the eth Status said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StatusInfo {
    /// The negotiated eth version.
    pub version: u32,
    /// The network id.
    pub network_id: u64,
    /// The genesis hash.
    pub genesis: B256,
    /// The fork id (EIP-2124).
    pub fork_id: ForkId,
    /// The head hash (eth/66-68).
    pub head: Option<B256>,
    /// The oldest block it serves (eth/69).
    pub earliest_block: Option<u64>,
    /// The newest block it has (eth/69).
    pub latest_block: Option<u64>,
}

/// The outcome of one probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProbeResult {
    /// When it ran (Unix seconds).
    pub at: u64,
    /// The URL dialed.
    pub enode: String,
    /// The Hello, if the handshake got that far.
    pub hello: Option<HelloInfo>,
    /// The eth Status, if it speaks eth and sent one.
    pub status: Option<StatusInfo>,
    /// The reason it gave for disconnecting, if it did (e.g. `too many peers`).
    pub disconnect: Option<String>,
    /// Why the probe failed, if it did (a timeout, a refused connection, ...).
    pub error: Option<String>,
    /// How long the probe took, in milliseconds.
    pub millis: u64,
}

/// How to probe.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProbeConfig {
    /// The RLPx settings: timeouts and the capabilities we offer (all eth versions and
    /// snap, so that any execution client shares at least one and completes the Hello).
    /// Default: [`ProbeConfig::default_rlpx`].
    pub rlpx: RlpxConfig,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self { rlpx: Self::default_rlpx(Duration::from_secs(5)) }
    }
}

impl ProbeConfig {
    /// RLPx settings for probing: connect and handshake within `timeout` each, offering
    /// eth/66-69 and snap/1 under [`PROBE_CLIENT_ID`].
    pub fn default_rlpx(timeout: Duration) -> RlpxConfig {
        let mut builder = RlpxConfig::builder();
        builder.client_id(PROBE_CLIENT_ID).connect_timeout(timeout).handshake_timeout(timeout);
        for version in [66, 67, 68, 69] {
            builder.protocol(Protocol::eth(version));
        }
        builder.protocol(Protocol::snap());
        builder.build().unwrap_or_default()
    }

    /// Probe settings with `timeout` for the connect and for the handshake.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self { rlpx: Self::default_rlpx(timeout) }
    }
}

/// Dials `enode`, runs the RLPx and Hello handshakes, and disconnects politely. Never
/// fails: every outcome is a [`ProbeResult`].
pub async fn probe(enode: &Enode, key: &NodeKey, config: &ProbeConfig) -> ProbeResult {
    let started = Instant::now();
    let mut result = ProbeResult {
        at: unix_now(),
        enode: enode.to_string(),
        hello: None,
        status: None,
        disconnect: None,
        error: None,
        millis: 0,
    };
    match rlpx::dial(enode, key, &config.rlpx).await {
        Ok(mut session) => {
            result.hello = Some(HelloInfo::of(session.remote_hello()));
            // We only wanted to know who it is; leave before it spends a slot on us.
            let _ = session.disconnect(DisconnectReason::DisconnectRequested).await;
        }
        Err(RlpxError::Disconnected(reason)) => result.disconnect = Some(reason_text(reason)),
        Err(e) => result.error = Some(e.to_string()),
    }
    result.millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    result
}

/// A disconnect reason as people write it (`too many peers`).
pub fn reason_text(reason: DisconnectReason) -> String {
    match reason {
        DisconnectReason::DisconnectRequested => "disconnect requested".into(),
        DisconnectReason::TcpSubsystemError => "network error".into(),
        DisconnectReason::ProtocolBreach => "breach of protocol".into(),
        DisconnectReason::UselessPeer => "useless peer".into(),
        DisconnectReason::TooManyPeers => "too many peers".into(),
        DisconnectReason::AlreadyConnected => "already connected".into(),
        DisconnectReason::IncompatibleP2PProtocolVersion => "incompatible p2p protocol version".into(),
        DisconnectReason::NullNodeIdentity => "invalid node identity".into(),
        DisconnectReason::ClientQuitting => "client quitting".into(),
        DisconnectReason::UnexpectedHandshakeIdentity => "unexpected identity".into(),
        DisconnectReason::ConnectedToSelf => "connected to self".into(),
        DisconnectReason::PingTimeout => "read timeout".into(),
        DisconnectReason::SubprotocolSpecific => "subprotocol error".into(),
        other => format!("code {:#04x}", other.code()),
    }
}
