//! NAT traversal: how the node learns, opens and advertises its public address.
//!
//! - [`NatConfig`]: `--nat none|extip:IP|upnp|pmp[:GATEWAY]|any`, as in go-ethereum; the
//!   bootnode and node CLIs share it.
//! - [`PortMapper`]: one gateway protocol — [`UpnpGateway`] (UPnP IGD through igd-next) or
//!   [`PmpGateway`] (NAT-PMP, RFC 6886, our own client).
//! - [`PortMapping`]: the handle to a task that maps the TCP and UDP ports on a gateway,
//!   renews the mappings before their lease runs out, removes them on shutdown, and
//!   publishes the resulting [`ExternalAddr`] on a `watch` channel.
//! - [`apply_external_addr`]: the hook the node calls with an external address (from the
//!   gateway, from discv4 PONG votes or discv5's vote) to update its ENR with one seq bump.

mod pmp;
mod upnp;

use std::{
    fmt,
    future::Future,
    net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket},
    str::FromStr,
    time::Duration,
};

use tokio::sync::{oneshot, watch};

use crate::record::Enr;

pub use pmp::{decode_response as decode_pmp_response, PmpGateway, PmpResponse, NAT_PMP_PORT};
pub use upnp::{SearchOptions as UpnpSearchOptions, UpnpGateway};

/// How to find (and open) the node's public address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NatConfig {
    /// Advertise the listen address; learn nothing. For nodes with a public address.
    None,
    /// Advertise this address (the node sits behind a NAT whose ports are forwarded).
    ExtIp(IpAddr),
    /// Map the ports on the gateway with UPnP IGD and advertise its external address.
    Upnp,
    /// Map the ports with NAT-PMP (RFC 6886), on this gateway or the default route's.
    Pmp(Option<IpAddr>),
    /// Try UPnP, then NAT-PMP; the address votes of discv4/discv5 apply either way.
    /// Default, as in go-ethereum and reth.
    #[default]
    Any,
}

/// A `--nat` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NatConfigError {
    /// Not one of the known mechanisms.
    #[error("unknown NAT mechanism {0:?} (expected none, extip:<IP>, upnp, pmp[:<IP>] or any)")]
    Unknown(String),
    /// `extip:` without an address.
    #[error("extip needs an address, as in extip:203.0.113.7")]
    MissingIp,
    /// The address after `extip:` or `pmp:` is not an IP address.
    #[error("invalid IP address {0:?}")]
    InvalidIp(String),
}

impl FromStr for NatConfig {
    type Err = NatConfigError;

    /// ```
    /// use ethp2p::nat::NatConfig;
    /// assert_eq!("extip:203.0.113.7".parse::<NatConfig>()?, NatConfig::ExtIp([203, 0, 113, 7].into()));
    /// assert_eq!("any".parse::<NatConfig>()?, NatConfig::Any);
    /// assert!("stun".parse::<NatConfig>().is_err());
    /// # Ok::<(), ethp2p::nat::NatConfigError>(())
    /// ```
    fn from_str(text: &str) -> Result<Self, NatConfigError> {
        let text = text.trim();
        let (mechanism, arg) = match text.split_once(':') {
            Some((m, a)) => (m, Some(a)),
            None => (text, None),
        };
        let ip = |a: &str| a.parse::<IpAddr>().map_err(|_| NatConfigError::InvalidIp(a.to_owned()));
        match (mechanism.to_ascii_lowercase().as_str(), arg) {
            ("none" | "off", None) => Ok(Self::None),
            ("extip", Some("") | None) => Err(NatConfigError::MissingIp),
            ("extip", Some(a)) => Ok(Self::ExtIp(ip(a)?)),
            ("upnp", None) => Ok(Self::Upnp),
            ("pmp" | "natpmp", None) => Ok(Self::Pmp(None)),
            ("pmp" | "natpmp", Some(a)) => Ok(Self::Pmp(Some(ip(a)?))),
            ("any" | "", None) => Ok(Self::Any),
            _ => Err(NatConfigError::Unknown(text.to_owned())),
        }
    }
}

impl fmt::Display for NatConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::ExtIp(ip) => write!(f, "extip:{ip}"),
            Self::Upnp => f.write_str("upnp"),
            Self::Pmp(None) => f.write_str("pmp"),
            Self::Pmp(Some(ip)) => write!(f, "pmp:{ip}"),
            Self::Any => f.write_str("any"),
        }
    }
}

impl NatConfig {
    /// The address to advertise without asking any gateway, if the setting fixes one.
    pub fn static_ip(&self) -> Option<IpAddr> {
        match self {
            Self::ExtIp(ip) => Some(*ip),
            _ => None,
        }
    }
}

/// A NAT traversal failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NatError {
    /// No UPnP gateway answered the search.
    #[error("no UPnP gateway found: {0}")]
    NoGateway(String),
    /// The default gateway's address is unknown (no default route).
    #[error("no default gateway")]
    NoDefaultGateway,
    /// The gateway did not answer in time.
    #[error("gateway did not answer")]
    Timeout,
    /// The gateway refused or failed the request.
    #[error("gateway error: {0}")]
    Gateway(String),
    /// The gateway's answer does not parse.
    #[error("malformed gateway response: {0}")]
    Malformed(&'static str),
    /// A local socket error.
    #[error("io: {0}")]
    Io(String),
    /// Updating the local ENR failed.
    #[error("cannot update the ENR: {0}")]
    Enr(String),
}

/// The transport of a port mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// RLPx.
    Tcp,
    /// Discovery.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        })
    }
}

/// One gateway protocol: ask for the external address, add and remove port mappings.
pub trait PortMapper: Send + Sync + 'static {
    /// The gateway's external (public) address.
    fn external_ip(&self) -> impl Future<Output = Result<IpAddr, NatError>> + Send;

    /// Maps `external_port` (a wish; NAT-PMP may grant another) on the gateway to
    /// `internal` for `lease`. Returns the external port granted.
    fn add_mapping(
        &self,
        protocol: Protocol,
        internal: SocketAddr,
        external_port: u16,
        lease: Duration,
    ) -> impl Future<Output = Result<u16, NatError>> + Send;

    /// Removes a mapping made by [`Self::add_mapping`].
    fn remove_mapping(
        &self,
        protocol: Protocol,
        internal: SocketAddr,
        external_port: u16,
    ) -> impl Future<Output = Result<(), NatError>> + Send;
}

/// The node's address as seen from the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExternalAddr {
    /// The public IP.
    pub ip: IpAddr,
    /// The public RLPx port, if mapped (or known).
    pub tcp_port: Option<u16>,
    /// The public discovery port, if mapped (or known).
    pub udp_port: Option<u16>,
}

/// go-ethereum `p2p/server_nat.go`: mappings are requested for 10 minutes…
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10 * 60);
/// …and renewed after 8, well before they expire.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(8 * 60);
/// …and retried after 5 minutes when the gateway failed.
pub const DEFAULT_RETRY: Duration = Duration::from_secs(5 * 60);

/// What to map. Build with [`PortMapConfig::new`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PortMapConfig {
    /// The local RLPx port to map, if any. Default: none.
    pub tcp_port: Option<u16>,
    /// The local discovery port to map, if any. Default: none.
    pub udp_port: Option<u16>,
    /// This host's address on the gateway's network (where mapped traffic goes).
    /// Default: the local address of a route to the gateway ([`local_ip_towards`]).
    pub internal_ip: IpAddr,
    /// Lease requested for each mapping. Default: [`DEFAULT_LEASE`].
    pub lease: Duration,
    /// How long after a successful mapping it is renewed; must be below `lease`.
    /// Default: [`DEFAULT_REFRESH`].
    pub refresh: Duration,
    /// How long after a failure the gateway is tried again. Default: [`DEFAULT_RETRY`].
    pub retry: Duration,
}

impl PortMapConfig {
    /// Maps these local ports for `internal_ip`, with go-ethereum's timings.
    pub fn new(internal_ip: IpAddr, tcp_port: Option<u16>, udp_port: Option<u16>) -> Self {
        Self {
            tcp_port,
            udp_port,
            internal_ip,
            lease: DEFAULT_LEASE,
            refresh: DEFAULT_REFRESH,
            retry: DEFAULT_RETRY,
        }
    }

    /// Sets the lease and the renewal interval (clamped below the lease).
    pub fn with_lease(mut self, lease: Duration, refresh: Duration) -> Self {
        self.lease = lease;
        self.refresh = refresh.min(lease.mul_f64(0.9));
        self
    }

    /// Sets the retry interval after failures.
    pub fn with_retry(mut self, retry: Duration) -> Self {
        self.retry = retry;
        self
    }
}

/// The local address this host uses to reach `gateway`: what a gateway must forward to.
/// Sends nothing (a UDP `connect` only picks a route).
pub fn local_ip_towards(gateway: IpAddr) -> Result<IpAddr, NatError> {
    let bind: SocketAddr = if gateway.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = StdUdpSocket::bind(bind).map_err(|e| NatError::Io(e.to_string()))?;
    socket.connect((gateway, 9)).map_err(|e| NatError::Io(e.to_string()))?;
    Ok(socket.local_addr().map_err(|e| NatError::Io(e.to_string()))?.ip())
}

/// Handle to the port-mapping task. Dropping it stops the task without removing the
/// mappings (they expire with their lease); [`Self::shutdown`] removes them.
#[derive(Debug)]
pub struct PortMapping {
    external: watch::Receiver<Option<ExternalAddr>>,
    stop: Option<oneshot::Sender<oneshot::Sender<()>>>,
}

impl PortMapping {
    /// Starts mapping on `mapper`'s gateway. The first mapping is attempted at once.
    pub fn spawn<M: PortMapper>(mapper: M, config: PortMapConfig) -> Self {
        let (tx, external) = watch::channel(None);
        let (stop, stop_rx) = oneshot::channel();
        tokio::spawn(run_mapping(mapper, config, tx, stop_rx));
        Self { external, stop: Some(stop) }
    }

    /// The external address, once the gateway has granted the mappings.
    pub fn external(&self) -> Option<ExternalAddr> {
        *self.external.borrow()
    }

    /// A receiver that sees every change of the external address (the node feeds it
    /// to [`apply_external_addr`]).
    pub fn subscribe(&self) -> watch::Receiver<Option<ExternalAddr>> {
        self.external.clone()
    }

    /// Removes the mappings from the gateway and stops the task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let (done, wait) = oneshot::channel();
            if stop.send(done).is_ok() {
                let _ = wait.await;
            }
        }
    }
}

async fn run_mapping<M: PortMapper>(
    mapper: M,
    config: PortMapConfig,
    external: watch::Sender<Option<ExternalAddr>>,
    mut stop: oneshot::Receiver<oneshot::Sender<()>>,
) {
    let wanted: Vec<(Protocol, u16)> = [(Protocol::Tcp, config.tcp_port), (Protocol::Udp, config.udp_port)]
        .into_iter()
        .filter_map(|(p, port)| Some((p, port?)))
        .collect();
    // External ports granted so far, to ask for the same ones on renewal.
    let mut granted: Vec<(Protocol, u16, u16)> = Vec::new();
    loop {
        let result = map_once(&mapper, &config, &wanted, &granted).await;
        let wait = match result {
            Ok((addr, now_granted)) => {
                granted = now_granted;
                tracing::debug!(target: "ethp2p::nat", ip = %addr.ip, tcp = ?addr.tcp_port, udp = ?addr.udp_port, "ports mapped");
                external.send_if_modified(|current| {
                    let changed = *current != Some(addr);
                    *current = Some(addr);
                    changed
                });
                config.refresh
            }
            Err(error) => {
                tracing::debug!(target: "ethp2p::nat", %error, "port mapping failed");
                config.retry
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            done = &mut stop => {
                for (protocol, internal_port, external_port) in &granted {
                    let internal = SocketAddr::new(config.internal_ip, *internal_port);
                    if let Err(error) = mapper.remove_mapping(*protocol, internal, *external_port).await {
                        tracing::debug!(target: "ethp2p::nat", %error, %protocol, "removing mapping failed");
                    }
                }
                if let Ok(done) = done {
                    let _ = done.send(());
                }
                return;
            }
        }
    }
}

async fn map_once<M: PortMapper>(
    mapper: &M,
    config: &PortMapConfig,
    wanted: &[(Protocol, u16)],
    granted: &[(Protocol, u16, u16)],
) -> Result<(ExternalAddr, Vec<(Protocol, u16, u16)>), NatError> {
    let ip = mapper.external_ip().await?;
    let mut addr = ExternalAddr { ip, tcp_port: None, udp_port: None };
    let mut now_granted = Vec::new();
    for &(protocol, port) in wanted {
        let ask = granted.iter().find(|g| g.0 == protocol && g.1 == port).map_or(port, |g| g.2);
        let external_port = mapper
            .add_mapping(protocol, SocketAddr::new(config.internal_ip, port), ask, config.lease)
            .await?;
        now_granted.push((protocol, port, external_port));
        match protocol {
            Protocol::Tcp => addr.tcp_port = Some(external_port),
            Protocol::Udp => addr.udp_port = Some(external_port),
        }
    }
    Ok((addr, now_granted))
}

/// Puts `addr` into the local record (`ip`/`ip6`, `tcp`/`tcp6`, `udp`/`udp6`) with a single
/// sequence number increase. Returns false, and leaves the record alone, if it already says
/// exactly that.
pub fn apply_external_addr(
    enr: &mut Enr,
    key: &enr::CombinedKey,
    addr: &ExternalAddr,
) -> Result<bool, NatError> {
    let (ip_key, tcp_key, udp_key): (&[u8], &[u8], &[u8]) =
        if addr.ip.is_ipv4() { (b"ip", b"tcp", b"udp") } else { (b"ip6", b"tcp6", b"udp6") };
    // `remove_insert` takes each value's content and RLP-encodes it as a byte string: the
    // address octets, and ports as minimal big-endian bytes (what a u16 decodes from).
    let ip: Vec<u8> = match addr.ip {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    let port = |p: u16| p.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect::<Vec<u8>>();
    let mut inserts: Vec<(&[u8], Vec<u8>)> = vec![(ip_key, ip)];
    inserts.extend(addr.tcp_port.map(|p| (tcp_key, port(p))));
    inserts.extend(addr.udp_port.map(|p| (udp_key, port(p))));
    if inserts.iter().all(|(k, v)| enr.get_raw_rlp(k) == Some(alloy_rlp::encode(v.as_slice()).as_slice())) {
        return Ok(false);
    }
    enr.remove_insert(std::iter::empty::<&[u8]>(), inserts.iter().map(|(k, v)| (*k, v.as_slice())), key)
        .map_err(|e| NatError::Enr(e.to_string()))?;
    Ok(true)
}

/// Starts what `config` asks for: a [`PortMapping`] on a UPnP or NAT-PMP gateway for the
/// given local ports, or nothing for `none` and `extip` (whose address is
/// [`NatConfig::static_ip`]). `any` tries UPnP, then NAT-PMP on the default gateway.
pub async fn start_port_mapping(
    config: &NatConfig,
    tcp_port: Option<u16>,
    udp_port: Option<u16>,
) -> Result<Option<PortMapping>, NatError> {
    async fn pmp(
        gateway: Option<IpAddr>,
        tcp: Option<u16>,
        udp: Option<u16>,
    ) -> Result<PortMapping, NatError> {
        let gateway = match gateway {
            Some(ip) => ip,
            None => pmp::default_gateway()?,
        };
        let mapper = PmpGateway::new(SocketAddr::new(gateway, pmp::NAT_PMP_PORT));
        // Probe first, so `any` can fall through to an error instead of a silent retry loop.
        mapper.external_ip().await?;
        let internal = local_ip_towards(gateway)?;
        Ok(PortMapping::spawn(mapper, PortMapConfig::new(internal, tcp, udp)))
    }
    async fn upnp(tcp: Option<u16>, udp: Option<u16>) -> Result<PortMapping, NatError> {
        let mapper = UpnpGateway::search(upnp::SearchOptions::default()).await?;
        let internal = local_ip_towards(mapper.addr().ip())?;
        Ok(PortMapping::spawn(mapper, PortMapConfig::new(internal, tcp, udp)))
    }
    match config {
        NatConfig::None | NatConfig::ExtIp(_) => Ok(None),
        NatConfig::Upnp => upnp(tcp_port, udp_port).await.map(Some),
        NatConfig::Pmp(gateway) => pmp(*gateway, tcp_port, udp_port).await.map(Some),
        NatConfig::Any => match upnp(tcp_port, udp_port).await {
            Ok(mapping) => Ok(Some(mapping)),
            Err(upnp_error) => {
                tracing::debug!(target: "ethp2p::nat", error = %upnp_error, "no UPnP gateway, trying NAT-PMP");
                pmp(None, tcp_port, udp_port).await.map(Some)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let cases = [
            ("none", NatConfig::None),
            ("NONE", NatConfig::None),
            ("extip:1.2.3.4", NatConfig::ExtIp([1, 2, 3, 4].into())),
            ("extip:2001:db8::1", NatConfig::ExtIp("2001:db8::1".parse().unwrap())),
            ("upnp", NatConfig::Upnp),
            ("pmp", NatConfig::Pmp(None)),
            ("pmp:192.168.1.1", NatConfig::Pmp(Some([192, 168, 1, 1].into()))),
            ("any", NatConfig::Any),
        ];
        for (text, want) in cases {
            let got: NatConfig = text.parse().unwrap();
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string().parse::<NatConfig>().unwrap(), want);
        }
        assert_eq!(NatConfig::default(), NatConfig::Any);
        assert_eq!(NatConfig::ExtIp([1, 2, 3, 4].into()).static_ip(), Some([1, 2, 3, 4].into()));
    }

    #[test]
    fn apply_external_addr_bumps_seq_once() {
        let key = crate::NodeKey::from_bytes(&[3; 32]).unwrap().to_combined_key();
        let mut enr = Enr::builder().ip4([10, 0, 0, 2].into()).tcp4(30303).udp4(30303).build(&key).unwrap();
        let seq = enr.seq();
        let addr = ExternalAddr { ip: [203, 0, 113, 9].into(), tcp_port: Some(40000), udp_port: Some(40001) };
        assert!(apply_external_addr(&mut enr, &key, &addr).unwrap());
        assert_eq!(enr.seq(), seq + 1);
        assert_eq!(enr.ip4(), Some([203, 0, 113, 9].into()));
        assert_eq!((enr.tcp4(), enr.udp4()), (Some(40000), Some(40001)));
        assert!(enr.verify());
        // Same address again: no change, no bump.
        assert!(!apply_external_addr(&mut enr, &key, &addr).unwrap());
        assert_eq!(enr.seq(), seq + 1);
        // IPv6 goes into ip6/tcp6/udp6 and keeps the IPv4 entries.
        let v6 = ExternalAddr { ip: "2001:db8::9".parse().unwrap(), tcp_port: Some(1), udp_port: None };
        assert!(apply_external_addr(&mut enr, &key, &v6).unwrap());
        assert_eq!(enr.ip6(), Some("2001:db8::9".parse().unwrap()));
        assert_eq!(enr.ip4(), Some([203, 0, 113, 9].into()));
        assert_eq!(enr.seq(), seq + 2);
    }

    #[test]
    fn errors() {
        assert_eq!("extip".parse::<NatConfig>(), Err(NatConfigError::MissingIp));
        assert_eq!("extip:".parse::<NatConfig>(), Err(NatConfigError::MissingIp));
        assert_eq!("extip:1.2.3".parse::<NatConfig>(), Err(NatConfigError::InvalidIp("1.2.3".into())));
        assert_eq!("pmp:gw".parse::<NatConfig>(), Err(NatConfigError::InvalidIp("gw".into())));
        assert_eq!("stun".parse::<NatConfig>(), Err(NatConfigError::Unknown("stun".into())));
        assert_eq!("upnp:1.2.3.4".parse::<NatConfig>(), Err(NatConfigError::Unknown("upnp:1.2.3.4".into())));
    }
}
