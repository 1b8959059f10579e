//! The RLPx probe: dial a node, record its Hello (client id, capabilities) and, when it
//! speaks eth, its Status; or why it refused.

use std::time::{Duration, Instant};

use alloy_primitives::B256;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};

use super::unix_now;
use crate::{
    eth::{id, EthMessage, EthVersion, Status, StatusHead},
    record::{Enode, ForkId, NodeKey},
    rlpx::{self, CapMessage, DisconnectReason, Hello, Protocol, RlpxConfig, RlpxError, Session},
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

/// What the peer's eth `Status` said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StatusReport {
    /// The negotiated eth version.
    pub version: u32,
    /// The network id.
    pub network_id: u64,
    /// The genesis hash.
    pub genesis: B256,
    /// The fork id (EIP-2124).
    pub fork_id: ForkId,
    /// The best block's hash (eth/66-68) or the latest block's hash (eth/69).
    pub head: B256,
    /// The total difficulty, in decimal (eth/66-68).
    pub total_difficulty: Option<String>,
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
    pub status: Option<StatusReport>,
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
    /// every eth version we speak (72 down to 66, [`EthVersion::ALL`]) and snap/1 under
    /// [`PROBE_CLIENT_ID`].
    pub fn default_rlpx(timeout: Duration) -> RlpxConfig {
        Self::rlpx_for(timeout, &EthVersion::ALL)
    }

    /// Like [`Self::default_rlpx`], offering only these eth versions.
    pub fn rlpx_for(timeout: Duration, versions: &[EthVersion]) -> RlpxConfig {
        let mut builder = RlpxConfig::builder();
        builder.client_id(PROBE_CLIENT_ID).connect_timeout(timeout).handshake_timeout(timeout);
        for version in versions {
            builder.protocol(Protocol::eth(version.as_u8().into()));
        }
        builder.protocol(Protocol::snap());
        builder.build().unwrap_or_default()
    }

    /// Probe settings with `timeout` for the connect and for the handshake.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self { rlpx: Self::default_rlpx(timeout) }
    }

    /// Probe settings with `timeout`, offering only these eth versions (a crawl that asks
    /// which nodes speak eth/71, say).
    pub fn with_versions(timeout: Duration, versions: &[EthVersion]) -> Self {
        Self { rlpx: Self::rlpx_for(timeout, versions) }
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
            match read_status(&mut session, config.rlpx.handshake_timeout).await {
                Ok(Some(status)) => result.status = Some(status),
                Ok(None) => {}
                Err(RlpxError::Disconnected(reason)) => result.disconnect = Some(reason_text(reason)),
                Err(e) => result.error = Some(format!("status: {e}")),
            }
            // We only wanted to know who it is; leave before it spends a slot on us.
            let _ = session.disconnect(DisconnectReason::DisconnectRequested).await;
        }
        Err(RlpxError::Disconnected(reason)) => result.disconnect = Some(reason_text(reason)),
        Err(e) => result.error = Some(e.to_string()),
    }
    result.millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    result
}

/// Records a session a node opened to us: its Hello and, when it speaks eth, its Status; then
/// leaves politely. The result's `enode` is the address it came from.
pub(crate) async fn record_inbound(mut session: Session, timeout: Duration) -> ProbeResult {
    let started = Instant::now();
    let enode = match session.remote_addr() {
        Some(addr) => Enode::new(session.remote_id(), addr).to_string(),
        None => String::new(),
    };
    let mut result = ProbeResult {
        at: unix_now(),
        enode,
        hello: Some(HelloInfo::of(session.remote_hello())),
        status: None,
        disconnect: None,
        error: None,
        millis: 0,
    };
    match read_status(&mut session, timeout).await {
        Ok(status) => result.status = status,
        Err(RlpxError::Disconnected(reason)) => result.disconnect = Some(reason_text(reason)),
        Err(e) => result.error = Some(format!("status: {e}")),
    }
    let _ = session.disconnect(DisconnectReason::DisconnectRequested).await;
    result.millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    result
}

impl StatusReport {
    /// From a decoded `Status`.
    pub fn of(status: &Status) -> Self {
        let mut report = Self {
            version: u32::from(status.version),
            network_id: status.network_id,
            genesis: status.genesis,
            fork_id: status.fork_id,
            head: B256::ZERO,
            total_difficulty: None,
            earliest_block: None,
            latest_block: None,
        };
        match status.head {
            StatusHead::TotalDifficulty { total_difficulty, best_hash } => {
                report.head = best_hash;
                report.total_difficulty = Some(total_difficulty.to_string());
            }
            StatusHead::Range(range) => {
                report.head = range.latest_hash;
                report.earliest_block = Some(range.earliest);
                report.latest_block = Some(range.latest);
            }
        }
        report
    }
}

/// Reads the peer's `Status` (every client sends it right after the Hello) and echoes it,
/// so the peer sees a well-formed handshake from a node on its own chain rather than a
/// protocol breach; the crawler records any network, so it never validates. `Ok(None)` if
/// the peer shares no eth version with us.
async fn read_status(session: &mut Session, timeout: Duration) -> Result<Option<StatusReport>, RlpxError> {
    let Some(cap) = session.capability_index("eth") else { return Ok(None) };
    let Ok(version) = EthVersion::try_from(session.shared_capabilities()[cap].cap.version as u8) else {
        return Ok(None);
    };
    let status = tokio::time::timeout(timeout, async {
        loop {
            let msg = session.next().await.ok_or(RlpxError::ClosedDuringHandshake)??;
            if msg.cap == cap && msg.id == id::STATUS {
                return match EthMessage::decode(version, msg.id, &msg.data) {
                    Ok(EthMessage::Status(status)) => Ok(status),
                    _ => Err(RlpxError::from(alloy_rlp::Error::Custom("malformed Status"))),
                };
            }
        }
    })
    .await
    .map_err(|_| RlpxError::HandshakeTimeout)??;
    let echo = EthMessage::Status(status).encoded();
    let _ = session.send(CapMessage::new(cap, id::STATUS, echo)).await;
    Ok(Some(StatusReport::of(&status)))
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
