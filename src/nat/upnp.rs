//! UPnP IGD port mapping through igd-next.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use igd_next::{aio::tokio::Tokio, AddAnyPortError, AddPortError, PortMappingProtocol};

use super::{NatError, PortMapper, Protocol};

/// Shown in the router's mapping table.
const DESCRIPTION: &str = "ethp2p";

/// Where and how long to search for a gateway.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SearchOptions {
    /// Where the SSDP M-SEARCH goes. Default: `239.255.255.250:1900` (UPnP multicast);
    /// tests point it at a fake gateway on loopback.
    pub ssdp_addr: SocketAddr,
    /// The local socket the search is sent from. Default: `0.0.0.0:0`.
    pub bind_addr: SocketAddr,
    /// How long to wait for a gateway. Default: 3 s (routers answer in milliseconds; a
    /// node without a UPnP router should not wait long at start-up).
    pub timeout: Duration,
}

impl Default for SearchOptions {
    fn default() -> Self {
        Self {
            ssdp_addr: SocketAddr::from(([239, 255, 255, 250], 1900)),
            bind_addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            timeout: Duration::from_secs(3),
        }
    }
}

impl SearchOptions {
    /// Search at this SSDP address instead of the multicast group.
    pub fn with_ssdp_addr(mut self, ssdp_addr: SocketAddr, bind_addr: SocketAddr) -> Self {
        self.ssdp_addr = ssdp_addr;
        self.bind_addr = bind_addr;
        self
    }

    /// Sets the search timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A UPnP Internet Gateway Device's WANIPConnection (or WANPPPConnection) service.
#[derive(Debug, Clone)]
pub struct UpnpGateway {
    inner: igd_next::aio::Gateway<Tokio>,
}

impl UpnpGateway {
    /// Finds a gateway with SSDP and reads its device and service descriptions.
    pub async fn search(options: SearchOptions) -> Result<Self, NatError> {
        let options = igd_next::SearchOptions {
            bind_addr: options.bind_addr,
            broadcast_address: options.ssdp_addr,
            timeout: Some(options.timeout),
            single_search_timeout: Some(options.timeout),
        };
        igd_next::aio::tokio::search_gateway(options)
            .await
            .map(|inner| Self { inner })
            .map_err(|e| NatError::NoGateway(e.to_string()))
    }

    /// The gateway's HTTP address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }
}

fn igd_protocol(protocol: Protocol) -> PortMappingProtocol {
    match protocol {
        Protocol::Tcp => PortMappingProtocol::TCP,
        Protocol::Udp => PortMappingProtocol::UDP,
    }
}

impl PortMapper for UpnpGateway {
    async fn external_ip(&self) -> Result<IpAddr, NatError> {
        self.inner.get_external_ip().await.map_err(|e| NatError::Gateway(e.to_string()))
    }

    async fn add_mapping(
        &self,
        protocol: Protocol,
        internal: SocketAddr,
        external_port: u16,
        lease: Duration,
    ) -> Result<u16, NatError> {
        let proto = igd_protocol(protocol);
        let lease_secs = u32::try_from(lease.as_secs()).unwrap_or(u32::MAX);
        let gateway = &self.inner;
        match gateway.add_port(proto, external_port, internal, lease_secs, DESCRIPTION).await {
            Ok(()) => Ok(external_port),
            // Some routers only take permanent mappings (go-ethereum retries the same way);
            // renewal then just repeats the request.
            Err(AddPortError::OnlyPermanentLeasesSupported) => gateway
                .add_port(proto, external_port, internal, 0, DESCRIPTION)
                .await
                .map(|()| external_port)
                .map_err(|e| NatError::Gateway(e.to_string())),
            // Another host holds that port: let the gateway pick one.
            Err(AddPortError::PortInUse) => {
                gateway.add_any_port(proto, internal, lease_secs, DESCRIPTION).await.map_err(|e| match e {
                    AddAnyPortError::NoPortsAvailable => NatError::Gateway("no ports available".into()),
                    e => NatError::Gateway(e.to_string()),
                })
            }
            Err(e) => Err(NatError::Gateway(e.to_string())),
        }
    }

    async fn remove_mapping(
        &self,
        protocol: Protocol,
        _internal: SocketAddr,
        external_port: u16,
    ) -> Result<(), NatError> {
        self.inner
            .remove_port(igd_protocol(protocol), external_port)
            .await
            .map_err(|e| NatError::Gateway(e.to_string()))
    }
}
