//! Fake NAT gateways on loopback, recording what clients ask: a UPnP IGD (SSDP over UDP,
//! device and service descriptions and SOAP control over HTTP) and a NAT-PMP server.

use std::{
    collections::BTreeMap,
    io,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, UdpSocket},
    task::JoinHandle,
};

/// One SOAP action the fake UPnP gateway received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpnpRequest {
    /// `AddPortMapping`, `DeletePortMapping`, `GetExternalIPAddress`, …
    pub action: String,
    /// The `New…` arguments, by name.
    pub args: BTreeMap<String, String>,
}

/// The arguments of the actions the fake gateway describes in its SCPD.
const ACTIONS: &[(&str, &[&str])] = &[
    ("GetExternalIPAddress", &[]),
    (
        "AddPortMapping",
        &[
            "NewRemoteHost",
            "NewExternalPort",
            "NewProtocol",
            "NewInternalPort",
            "NewInternalClient",
            "NewEnabled",
            "NewPortMappingDescription",
            "NewLeaseDuration",
        ],
    ),
    ("DeletePortMapping", &["NewRemoteHost", "NewExternalPort", "NewProtocol"]),
];

/// A fake UPnP Internet Gateway Device. Stops when dropped.
#[derive(Debug)]
pub struct FakeUpnpGateway {
    ssdp_addr: SocketAddr,
    http_addr: SocketAddr,
    requests: Arc<Mutex<Vec<UpnpRequest>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for FakeUpnpGateway {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

impl FakeUpnpGateway {
    /// Starts the SSDP responder and the HTTP server on `127.0.0.1:0`; the gateway reports
    /// `external_ip` as its WAN address.
    pub async fn start(external_ip: IpAddr) -> io::Result<Self> {
        let ssdp = UdpSocket::bind("127.0.0.1:0").await?;
        let http = TcpListener::bind("127.0.0.1:0").await?;
        let (ssdp_addr, http_addr) = (ssdp.local_addr()?, http.local_addr()?);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let ssdp_task = tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = ssdp.recv_from(&mut buf).await {
                if !buf[..n].starts_with(b"M-SEARCH") {
                    continue;
                }
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\n\
                     ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\
                     USN: uuid:ethp2p-fake-igd\r\nLOCATION: http://{http_addr}/rootDesc.xml\r\n\r\n"
                );
                let _ = ssdp.send_to(reply.as_bytes(), from).await;
            }
        });
        let recorded = Arc::clone(&requests);
        let http_task = tokio::spawn(async move {
            while let Ok((stream, _)) = http.accept().await {
                let recorded = Arc::clone(&recorded);
                tokio::spawn(async move {
                    let _ = serve_http(stream, external_ip, &recorded).await;
                });
            }
        });
        Ok(Self { ssdp_addr, http_addr, requests, tasks: vec![ssdp_task, http_task] })
    }

    /// Where it answers SSDP searches.
    pub fn ssdp_addr(&self) -> SocketAddr {
        self.ssdp_addr
    }

    /// Its HTTP (description and control) address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Every SOAP action received so far, in order.
    pub fn requests(&self) -> Vec<UpnpRequest> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// One HTTP/1.1 exchange per connection (`Connection: close`).
async fn serve_http(
    mut stream: TcpStream,
    external_ip: IpAddr,
    requests: &Mutex<Vec<UpnpRequest>>,
) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default().to_owned();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0).min(64 * 1024);
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[header_end..]).into_owned();
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let reply = match (request_line.split_whitespace().next(), path) {
        (Some("GET"), "/rootDesc.xml") => ROOT_DESC.to_owned(),
        (Some("GET"), "/WANIPCn.xml") => scpd(),
        (Some("POST"), "/ctl/IPConn") => {
            let soap_action = header("soapaction").unwrap_or_default();
            let action = soap_action.trim_matches('"').rsplit('#').next().unwrap_or_default().to_owned();
            let names = ACTIONS.iter().find(|(a, _)| *a == action).map_or(&[][..], |(_, args)| *args);
            let args = names.iter().filter_map(|n| Some((n.to_string(), xml_value(&body, n)?))).collect();
            requests
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(UpnpRequest { action: action.clone(), args });
            let inner = if action == "GetExternalIPAddress" {
                format!("<NewExternalIPAddress>{external_ip}</NewExternalIPAddress>")
            } else {
                String::new()
            };
            format!(
                "<?xml version=\"1.0\"?>\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
                 s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>\
                 <u:{action}Response xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:1\">{inner}\
                 </u:{action}Response></s:Body></s:Envelope>"
            )
        }
        _ => {
            let reply = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            return stream.write_all(reply.as_bytes()).await;
        }
    };
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=\"utf-8\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn xml_value(body: &str, name: &str) -> Option<String> {
    let start = body.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + body[start..].find(&format!("</{name}>"))?;
    Some(body[start..end].to_owned())
}

const ROOT_DESC: &str = "<?xml version=\"1.0\"?>
<root xmlns=\"urn:schemas-upnp-org:device-1-0\"><specVersion><major>1</major><minor>0</minor></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><controlURL>/ctl/IPConn</controlURL>
<eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList>
</device></deviceList></device></deviceList></device></root>";

fn scpd() -> String {
    let actions: String = ACTIONS
        .iter()
        .map(|(name, args)| {
            let mut args: String = args
                .iter()
                .map(|a| format!("<argument><name>{a}</name><direction>in</direction></argument>"))
                .collect();
            if *name == "GetExternalIPAddress" {
                args.push_str(
                    "<argument><name>NewExternalIPAddress</name><direction>out</direction></argument>",
                );
            }
            format!("<action><name>{name}</name><argumentList>{args}</argumentList></action>")
        })
        .collect();
    format!("<?xml version=\"1.0\"?>\n<scpd xmlns=\"urn:schemas-upnp-org:service-1-0\"><actionList>{actions}</actionList></scpd>")
}

/// One request the fake NAT-PMP gateway received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PmpRequest {
    /// Opcode 0.
    ExternalAddress,
    /// Opcode 1 (UDP) or 2 (TCP).
    Map {
        /// 1 = UDP, 2 = TCP.
        opcode: u8,
        /// The internal port.
        internal_port: u16,
        /// The suggested external port.
        external_port: u16,
        /// Requested lifetime in seconds (0 = delete).
        lifetime: u32,
    },
}

/// A fake NAT-PMP gateway (RFC 6886) on `127.0.0.1:0`. It grants every mapping as asked
/// (the internal port when no external one is suggested). Stops when dropped.
#[derive(Debug)]
pub struct FakePmpGateway {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<PmpRequest>>>,
    task: JoinHandle<()>,
}

impl Drop for FakePmpGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakePmpGateway {
    /// Starts it; it reports `external_ip` as its public address.
    pub async fn start(external_ip: std::net::Ipv4Addr) -> io::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = socket.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            // Seconds since "start of epoch" (RFC 6886 §3.6); any steady value will do.
            let epoch = 1000u32;
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let req = &buf[..n];
                let mut reply = Vec::with_capacity(16);
                match req {
                    [0, 0] => {
                        recorded.lock().unwrap_or_else(|e| e.into_inner()).push(PmpRequest::ExternalAddress);
                        reply.extend_from_slice(&[0, 128, 0, 0]);
                        reply.extend_from_slice(&epoch.to_be_bytes());
                        reply.extend_from_slice(&external_ip.octets());
                    }
                    [0, op @ (1 | 2), _, _, i0, i1, e0, e1, l0, l1, l2, l3] => {
                        let internal_port = u16::from_be_bytes([*i0, *i1]);
                        let external_port = u16::from_be_bytes([*e0, *e1]);
                        let lifetime = u32::from_be_bytes([*l0, *l1, *l2, *l3]);
                        recorded.lock().unwrap_or_else(|e| e.into_inner()).push(PmpRequest::Map {
                            opcode: *op,
                            internal_port,
                            external_port,
                            lifetime,
                        });
                        let granted = if lifetime == 0 {
                            0
                        } else if external_port == 0 {
                            internal_port
                        } else {
                            external_port
                        };
                        reply.extend_from_slice(&[0, 128 + op, 0, 0]);
                        reply.extend_from_slice(&epoch.to_be_bytes());
                        reply.extend_from_slice(&internal_port.to_be_bytes());
                        reply.extend_from_slice(&granted.to_be_bytes());
                        reply.extend_from_slice(&lifetime.to_be_bytes());
                    }
                    _ => {
                        // RFC 6886 §3.5: unsupported opcode, result code 5.
                        reply.extend_from_slice(&[
                            0,
                            128 | req.get(1).copied().unwrap_or(0),
                            0,
                            5,
                            0,
                            0,
                            0,
                            0,
                        ]);
                    }
                }
                let _ = socket.send_to(&reply, from).await;
            }
        });
        Ok(Self { addr, requests, task })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<PmpRequest> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
