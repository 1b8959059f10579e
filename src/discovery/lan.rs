//! LAN discovery over mDNS (feature `lan`): for private networks that should need no
//! bootnodes.
//!
//! Each node announces a `_ethp2p._udp.local.` service whose TXT record carries its ENR,
//! and browses for the same service; every record it resolves (signature checked, its own
//! skipped) becomes a [`Candidate`] with source [`CandidateSource::Lan`]. The mdns-sd
//! daemon runs on its own thread; one tokio task turns its events into candidates.
//!
//! A record can be up to 400 base64 characters but a TXT property only 255 bytes, so the
//! ENR is split into properties `enr0`, `enr1`, … of at most 200 characters each.

use std::{collections::BTreeMap, time::Duration};

use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};
use tokio::{sync::mpsc, task::JoinHandle};

use crate::{
    discovery::{Candidate, CandidateSource},
    record::Enr,
};

/// The mDNS service type ethp2p nodes announce.
pub const SERVICE_TYPE: &str = "_ethp2p._udp.local.";
/// RFC 6762: the mDNS port.
pub const MDNS_PORT: u16 = 5353;
/// Characters of base64 ENR per TXT property (a property holds at most 255 bytes).
const ENR_CHUNK: usize = 200;

/// A LAN discovery failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LanError {
    /// The mDNS daemon refused (socket, interface, or name errors).
    #[error("mDNS: {0}")]
    Mdns(String),
    /// The local record has no secp256k1 key or no UDP port to announce.
    #[error("the local record cannot be announced: {0}")]
    BadLocalRecord(&'static str),
}

fn mdns(e: mdns_sd::Error) -> LanError {
    LanError::Mdns(e.to_string())
}

/// Which interfaces mDNS runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LanInterfaces {
    /// Every interface with an address (the default).
    All,
    /// Only loopback (tests, and several nodes on one host).
    LoopbackOnly,
    /// Only the interface with this name (`eth0`, `en0`).
    Named(String),
}

/// LAN discovery settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LanConfig {
    /// The mDNS UDP port. Default: [`MDNS_PORT`] (5353); every node of a network must
    /// use the same.
    pub port: u16,
    /// Interfaces to announce and browse on. Default: [`LanInterfaces::All`].
    pub interfaces: LanInterfaces,
}

impl Default for LanConfig {
    fn default() -> Self {
        Self { port: MDNS_PORT, interfaces: LanInterfaces::All }
    }
}

impl LanConfig {
    /// Sets the mDNS port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets the interfaces.
    pub fn with_interfaces(mut self, interfaces: LanInterfaces) -> Self {
        self.interfaces = interfaces;
        self
    }
}

/// A running announcement and browse. [`Self::shutdown`] withdraws the announcement.
pub struct LanDiscovery {
    daemon: ServiceDaemon,
    fullname: String,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for LanDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LanDiscovery").field("fullname", &self.fullname).finish_non_exhaustive()
    }
}

impl LanDiscovery {
    /// Announces `local` and sends every other node found on `candidates`.
    pub fn start(
        config: LanConfig,
        local: &Enr,
        candidates: mpsc::Sender<Candidate>,
    ) -> Result<Self, LanError> {
        let daemon = ServiceDaemon::new_with_port(config.port).map_err(mdns)?;
        match &config.interfaces {
            LanInterfaces::All => {}
            LanInterfaces::LoopbackOnly => {
                daemon.disable_interface(IfKind::All).map_err(mdns)?;
                daemon.enable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6]).map_err(mdns)?;
            }
            LanInterfaces::Named(name) => {
                daemon.disable_interface(IfKind::All).map_err(mdns)?;
                daemon.enable_interface(IfKind::Name(name.clone())).map_err(mdns)?;
            }
        }
        let info = service_info(local)?;
        let fullname = info.get_fullname().to_owned();
        daemon.register(info).map_err(mdns)?;
        let events = daemon.browse(SERVICE_TYPE).map_err(mdns)?;
        let own_id = local.node_id();
        let task = tokio::spawn(async move {
            while let Ok(event) = events.recv_async().await {
                let ServiceEvent::ServiceResolved(service) = event else { continue };
                let Some(enr) = enr_of(service.get_properties().iter().map(|p| (p.key(), p.val_str())))
                else {
                    tracing::trace!(target: "ethp2p::lan", name = %service.fullname, "service without a valid ENR");
                    continue;
                };
                if enr.node_id() == own_id {
                    continue;
                }
                match Candidate::from_enr(&enr, CandidateSource::Lan) {
                    Ok(candidate) => {
                        if candidates.send(candidate).await.is_err() {
                            return;
                        }
                    }
                    Err(error) => tracing::trace!(target: "ethp2p::lan", %error, "undialable LAN record"),
                }
            }
        });
        Ok(Self { daemon, fullname, task })
    }

    /// Announces a new version of the local record (after an address change).
    pub fn update_record(&mut self, local: &Enr) -> Result<(), LanError> {
        let info = service_info(local)?;
        self.fullname = info.get_fullname().to_owned();
        // Registering the same instance name again replaces its records.
        self.daemon.register(info).map_err(mdns)
    }

    /// Withdraws the announcement (a goodbye packet) and stops browsing.
    pub async fn shutdown(self) {
        if let Ok(done) = self.daemon.unregister(&self.fullname) {
            let _ = tokio::time::timeout(Duration::from_secs(2), done.recv_async()).await;
        }
        if let Ok(done) = self.daemon.shutdown() {
            let _ = tokio::time::timeout(Duration::from_secs(2), done.recv_async()).await;
        }
        self.task.abort();
    }
}

/// The service for `local`: instance and host named by the node id, port = discovery port,
/// TXT = the ENR in chunks.
fn service_info(local: &Enr) -> Result<ServiceInfo, LanError> {
    let udp = local.udp4().or(local.udp6()).ok_or(LanError::BadLocalRecord("no UDP port"))?;
    let id = hex::encode(&local.node_id().raw()[..8]);
    let properties = enr_properties(local);
    let host = format!("ethp2p-{id}.local.");
    ServiceInfo::new(SERVICE_TYPE, &format!("ethp2p-{id}"), &host, "", udp, properties.as_slice())
        .map(ServiceInfo::enable_addr_auto)
        .map_err(mdns)
}

/// `enr0`, `enr1`, …: the base64 record in chunks that fit TXT properties.
fn enr_properties(enr: &Enr) -> Vec<(String, String)> {
    let text = enr.to_base64();
    let body = text.strip_prefix("enr:").unwrap_or(&text);
    body.as_bytes()
        .chunks(ENR_CHUNK)
        .enumerate()
        .map(|(i, c)| (format!("enr{i}"), String::from_utf8_lossy(c).into_owned()))
        .collect()
}

/// Reassembles and verifies a record from its TXT properties. `None` if any part is
/// missing or the record does not verify.
fn enr_of<'a>(properties: impl Iterator<Item = (&'a str, &'a str)>) -> Option<Enr> {
    let parts: BTreeMap<usize, &str> =
        properties.filter_map(|(k, v)| Some((k.strip_prefix("enr")?.parse::<usize>().ok()?, v))).collect();
    // Contiguous from 0, and no more than a maximal record needs.
    if parts.is_empty() || parts.len() > 2 || parts.keys().enumerate().any(|(i, k)| i != *k) {
        return None;
    }
    let text: String = parts.values().copied().collect();
    format!("enr:{text}").parse().ok()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::NodeKey;

    #[test]
    fn enr_roundtrip_through_properties() {
        let key = NodeKey::from_bytes(&[5; 32]).unwrap();
        let enr = Enr::builder()
            .ip4(Ipv4Addr::LOCALHOST)
            .udp4(30303)
            .tcp4(30303)
            .add_value("padding", &vec![0u8; 100])
            .build(&key.to_combined_key())
            .unwrap();
        let props = enr_properties(&enr);
        assert!(props.len() == 2 && props.iter().all(|(_, v)| v.len() <= ENR_CHUNK));
        let back = enr_of(props.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
        assert_eq!(back, enr);
        // A missing chunk, a gap, or a tampered chunk: rejected.
        assert!(enr_of(props.iter().skip(1).map(|(k, v)| (k.as_str(), v.as_str()))).is_none());
        assert!(enr_of([("enr0", props[0].1.as_str()), ("enr2", props[1].1.as_str())].into_iter()).is_none());
        let tampered = props[1].1.replacen('A', "B", 1);
        assert!(enr_of([("enr0", props[0].1.as_str()), ("enr1", tampered.as_str())].into_iter()).is_none());
        assert!(enr_of(std::iter::empty()).is_none());
    }
}
