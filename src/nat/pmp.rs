//! A NAT-PMP client (RFC 6886): external address and port mappings over UDP port 5351.
//!
//! The codec is pure ([`encode_map_request`], [`decode_response`]); [`PmpGateway`] adds
//! the socket and RFC 6886's retransmission (250 ms, doubling).

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use tokio::net::UdpSocket;

use super::{NatError, PortMapper, Protocol};

/// RFC 6886 §3.1: the gateway listens on UDP port 5351.
pub const NAT_PMP_PORT: u16 = 5351;
/// RFC 6886 §3.1: the first retransmission comes after 250 ms, then the wait doubles.
const INITIAL_RETRANSMIT: Duration = Duration::from_millis(250);
/// RFC 6886 §3.1 allows 9 tries (~64 s); 4 (~3.75 s) keeps a node without a NAT-PMP
/// gateway from waiting a minute at start-up.
const DEFAULT_TRIES: u32 = 4;

const VERSION: u8 = 0;
const OP_EXTERNAL_ADDRESS: u8 = 0;
const OP_MAP_UDP: u8 = 1;
const OP_MAP_TCP: u8 = 2;
/// RFC 6886 §3.5: responses have opcode = 128 + request opcode.
const RESPONSE_BIT: u8 = 128;

/// A decoded NAT-PMP gateway response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PmpResponse {
    /// RFC 6886 §3.2: the gateway's external IPv4 address.
    ExternalAddress {
        /// The address.
        ip: Ipv4Addr,
    },
    /// RFC 6886 §3.3: a granted (or deleted) mapping.
    Mapping {
        /// UDP or TCP.
        protocol: Protocol,
        /// The internal port.
        internal_port: u16,
        /// The external port granted.
        external_port: u16,
        /// The lease granted, in seconds.
        lifetime: u32,
    },
}

use PmpResponse as Response;

fn opcode(protocol: Protocol) -> u8 {
    match protocol {
        Protocol::Udp => OP_MAP_UDP,
        Protocol::Tcp => OP_MAP_TCP,
    }
}

/// RFC 6886 §3.2: version 0, opcode 0.
pub(crate) fn encode_external_address_request() -> [u8; 2] {
    [VERSION, OP_EXTERNAL_ADDRESS]
}

/// RFC 6886 §3.3: version, opcode, 2 reserved bytes, internal port, suggested external
/// port, lifetime in seconds (0 deletes the mapping).
pub(crate) fn encode_map_request(
    protocol: Protocol,
    internal: u16,
    external: u16,
    lifetime: u32,
) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[0] = VERSION;
    out[1] = opcode(protocol);
    out[4..6].copy_from_slice(&internal.to_be_bytes());
    out[6..8].copy_from_slice(&external.to_be_bytes());
    out[8..12].copy_from_slice(&lifetime.to_be_bytes());
    out
}

/// RFC 6886 §3.2, §3.3, §3.5: decodes a response, turning a non-zero result code into
/// an error.
pub fn decode_response(bytes: &[u8]) -> Result<Response, NatError> {
    if bytes.len() < 8 {
        return Err(NatError::Malformed("response shorter than 8 bytes"));
    }
    if bytes[0] != VERSION {
        return Err(NatError::Malformed("unsupported version"));
    }
    if bytes[1] & RESPONSE_BIT == 0 {
        return Err(NatError::Malformed("not a response"));
    }
    let result = u16::from_be_bytes([bytes[2], bytes[3]]);
    if result != 0 {
        let reason = match result {
            1 => "unsupported version",
            2 => "not authorized/refused",
            3 => "network failure",
            4 => "out of resources",
            5 => "unsupported opcode",
            _ => "unknown result code",
        };
        return Err(NatError::Gateway(format!("NAT-PMP result {result}: {reason}")));
    }
    let u16_at = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
    match bytes[1] - RESPONSE_BIT {
        OP_EXTERNAL_ADDRESS => {
            let ip: [u8; 4] = bytes
                .get(8..12)
                .ok_or(NatError::Malformed("short address response"))?
                .try_into()
                .map_err(|_| NatError::Malformed("short address response"))?;
            Ok(Response::ExternalAddress { ip: ip.into() })
        }
        op @ (OP_MAP_UDP | OP_MAP_TCP) => {
            if bytes.len() < 16 {
                return Err(NatError::Malformed("short mapping response"));
            }
            let protocol = if op == OP_MAP_UDP { Protocol::Udp } else { Protocol::Tcp };
            let lifetime = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
            Ok(Response::Mapping { protocol, internal_port: u16_at(8), external_port: u16_at(10), lifetime })
        }
        _ => Err(NatError::Malformed("unknown opcode")),
    }
}

/// A NAT-PMP gateway at a known address (RFC 6886: the default router, port 5351).
#[derive(Debug, Clone)]
pub struct PmpGateway {
    addr: SocketAddr,
    tries: u32,
}

impl PmpGateway {
    /// The gateway at `addr` (normally `<default router>:5351`).
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, tries: DEFAULT_TRIES }
    }

    /// Sends each request at most `tries` times (RFC 6886 retransmission). Default: 4.
    pub fn with_tries(mut self, tries: u32) -> Self {
        self.tries = tries.max(1);
        self
    }

    /// The gateway's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `request` and waits for the matching response, retransmitting with a doubling
    /// wait. Responses from other addresses or for other opcodes are ignored.
    async fn request(&self, request: &[u8]) -> Result<Response, NatError> {
        let io = |e: std::io::Error| NatError::Io(e.to_string());
        let bind: SocketAddr =
            if self.addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        let socket = UdpSocket::bind(bind).await.map_err(io)?;
        socket.connect(self.addr).await.map_err(io)?;
        let want_op = request[1] | RESPONSE_BIT;
        let mut wait = INITIAL_RETRANSMIT;
        let mut buf = [0u8; 64];
        for _ in 0..self.tries {
            socket.send(request).await.map_err(io)?;
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                    Err(_) => break,
                    // A connected UDP socket reports ICMP port-unreachable as an error: no
                    // NAT-PMP here, give up at once.
                    Ok(Err(e)) => return Err(io(e)),
                    Ok(Ok(n)) if n >= 2 && buf[1] == want_op => return decode_response(&buf[..n]),
                    Ok(Ok(_)) => {}
                }
            }
            wait *= 2;
        }
        Err(NatError::Timeout)
    }
}

impl PortMapper for PmpGateway {
    async fn external_ip(&self) -> Result<IpAddr, NatError> {
        match self.request(&encode_external_address_request()).await? {
            Response::ExternalAddress { ip } => Ok(ip.into()),
            Response::Mapping { .. } => Err(NatError::Malformed("mapping response to an address request")),
        }
    }

    async fn add_mapping(
        &self,
        protocol: Protocol,
        internal: SocketAddr,
        external_port: u16,
        lease: Duration,
    ) -> Result<u16, NatError> {
        let lifetime = u32::try_from(lease.as_secs()).unwrap_or(u32::MAX).max(1);
        let request = encode_map_request(protocol, internal.port(), external_port, lifetime);
        match self.request(&request).await? {
            Response::Mapping { internal_port, external_port, .. } if internal_port == internal.port() => {
                Ok(external_port)
            }
            _ => Err(NatError::Malformed("mapping response for another port")),
        }
    }

    async fn remove_mapping(
        &self,
        protocol: Protocol,
        internal: SocketAddr,
        _external: u16,
    ) -> Result<(), NatError> {
        // RFC 6886 §3.4: lifetime 0 and suggested external port 0 delete the mapping.
        self.request(&encode_map_request(protocol, internal.port(), 0, 0)).await.map(|_| ())
    }
}

/// The IPv4 default gateway, from the kernel's routing table (`/proc/net/route`).
pub(crate) fn default_gateway() -> Result<IpAddr, NatError> {
    let table = std::fs::read_to_string("/proc/net/route").map_err(|_| NatError::NoDefaultGateway)?;
    parse_route_table(&table).ok_or(NatError::NoDefaultGateway)
}

/// `/proc/net/route`: columns Iface, Destination, Gateway (hex, little-endian), …; the
/// default route has destination 00000000.
fn parse_route_table(table: &str) -> Option<IpAddr> {
    table.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_iface, dest, gateway) = (fields.next()?, fields.next()?, fields.next()?);
        if dest != "00000000" {
            return None;
        }
        let raw = u32::from_str_radix(gateway, 16).ok()?;
        (raw != 0).then(|| IpAddr::V4(Ipv4Addr::from(raw.to_le_bytes())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_request_layout() {
        // RFC 6886 §3.3 field layout.
        let req = encode_map_request(Protocol::Tcp, 30303, 30304, 600);
        assert_eq!(req, [0, 2, 0, 0, 0x76, 0x5f, 0x76, 0x60, 0, 0, 0x02, 0x58]);
        assert_eq!(encode_map_request(Protocol::Udp, 1, 0, 0)[1], 1);
        assert_eq!(encode_external_address_request(), [0, 0]);
    }

    #[test]
    fn decode_responses() {
        let addr = [0, 128, 0, 0, 0, 0, 0, 9, 203, 0, 113, 9];
        assert_eq!(
            decode_response(&addr).unwrap(),
            Response::ExternalAddress { ip: [203, 0, 113, 9].into() }
        );
        let map = [0, 129, 0, 0, 0, 0, 0, 9, 0x76, 0x5f, 0x9c, 0x40, 0, 0, 0x02, 0x58];
        assert_eq!(
            decode_response(&map).unwrap(),
            Response::Mapping {
                protocol: Protocol::Udp,
                internal_port: 30303,
                external_port: 40000,
                lifetime: 600
            }
        );
        assert!(matches!(decode_response(&[0, 128, 0, 2, 0, 0, 0, 0]), Err(NatError::Gateway(_))));
        assert!(matches!(decode_response(&[0, 128, 0, 0]), Err(NatError::Malformed(_))));
        assert!(matches!(
            decode_response(&[1, 128, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]),
            Err(NatError::Malformed(_))
        ));
        assert!(matches!(
            decode_response(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]),
            Err(NatError::Malformed(_))
        ));
        assert!(matches!(decode_response(&map[..12]), Err(NatError::Malformed(_))));
        assert!(matches!(decode_response(&[0, 128, 0, 0, 0, 0, 0, 0, 1]), Err(NatError::Malformed(_))));
        assert!(matches!(decode_response(&[0, 200, 0, 0, 0, 0, 0, 0]), Err(NatError::Malformed(_))));
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..32)) {
            let _ = decode_response(&bytes);
        }
    }

    #[test]
    fn route_table() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n\
                     eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n\
                     eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\n";
        assert_eq!(parse_route_table(table), Some(IpAddr::V4([192, 168, 1, 1].into())));
        assert_eq!(parse_route_table("Iface\n"), None);
    }
}
