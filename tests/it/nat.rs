//! NAT port mapping against fake gateways on loopback: UPnP (SSDP + HTTP/SOAP through
//! igd-next) and NAT-PMP (our RFC 6886 client).

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use ethp2p::{
    nat::{
        apply_external_addr, ExternalAddr, PmpGateway, PortMapConfig, PortMapper, PortMapping, UpnpGateway,
        UpnpSearchOptions,
    },
    record::Enr,
    test_utils::nat::{FakePmpGateway, FakeUpnpGateway, PmpRequest, UpnpRequest},
    NodeKey,
};

const DEADLINE: Duration = Duration::from_secs(30);
/// A documentation address (RFC 5737): only ever text in a fake gateway's answer.
const WAN_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);
const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Short leases so that renewal shows within the test.
fn config() -> PortMapConfig {
    PortMapConfig::new(LOCAL, Some(30303), Some(30301))
        .with_lease(Duration::from_secs(2), Duration::from_millis(200))
        .with_retry(Duration::from_millis(200))
}

fn local_enr(key: &NodeKey) -> Enr {
    Enr::builder().ip4(Ipv4Addr::LOCALHOST).tcp4(30303).udp4(30301).build(&key.to_combined_key()).unwrap()
}

/// The ENR hook: the external address goes into the record with one seq bump.
fn check_enr_update(external: ExternalAddr) {
    let key = NodeKey::from_bytes(&[9; 32]).unwrap();
    let mut enr = local_enr(&key);
    let seq = enr.seq();
    assert!(apply_external_addr(&mut enr, &key.to_combined_key(), &external).unwrap());
    assert_eq!(enr.seq(), seq + 1);
    assert_eq!(enr.ip4(), Some(WAN_IP));
    assert_eq!((enr.tcp4(), enr.udp4()), (external.tcp_port, external.udp_port));
    assert!(enr.verify());
}

#[tokio::test]
async fn upnp_maps_renews_and_removes() {
    let fake = FakeUpnpGateway::start(WAN_IP.into()).await.unwrap();
    let options = UpnpSearchOptions::default()
        .with_ssdp_addr(fake.ssdp_addr(), SocketAddr::from((LOCAL, 0)))
        .with_timeout(Duration::from_secs(10));
    let gateway = UpnpGateway::search(options).await.unwrap();
    assert_eq!(gateway.addr(), fake.http_addr());
    assert_eq!(gateway.external_ip().await.unwrap(), IpAddr::V4(WAN_IP));

    let mapping = PortMapping::spawn(gateway, config());
    let mut updates = mapping.subscribe();
    let want = ExternalAddr { ip: WAN_IP.into(), tcp_port: Some(30303), udp_port: Some(30301) };
    tokio::time::timeout(DEADLINE, updates.wait_for(|a| *a == Some(want))).await.unwrap().unwrap();
    assert_eq!(mapping.external(), Some(want));

    // Renewal: each mapping is requested again before its 2 s lease ends.
    let adds = |r: &[UpnpRequest], proto: &str| {
        r.iter().filter(|r| r.action == "AddPortMapping" && r.args["NewProtocol"] == proto).count()
    };
    wait_until("renewals", || {
        let r = fake.requests();
        (adds(&r, "TCP") >= 2 && adds(&r, "UDP") >= 2).then_some(())
    })
    .await;
    for request in fake.requests().iter().filter(|r| r.action == "AddPortMapping") {
        let port = if request.args["NewProtocol"] == "TCP" { "30303" } else { "30301" };
        assert_eq!(request.args["NewExternalPort"], port, "{request:?}");
        assert_eq!(request.args["NewInternalPort"], port, "{request:?}");
        assert_eq!(request.args["NewInternalClient"], "127.0.0.1", "{request:?}");
        assert_eq!(request.args["NewLeaseDuration"], "2", "{request:?}");
        assert_eq!(request.args["NewEnabled"], "1", "{request:?}");
    }
    check_enr_update(want);

    mapping.shutdown().await;
    let deletes: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.action == "DeletePortMapping")
        .map(|r| (r.args["NewProtocol"].clone(), r.args["NewExternalPort"].clone()))
        .collect();
    assert_eq!(deletes, [("TCP".to_owned(), "30303".to_owned()), ("UDP".to_owned(), "30301".to_owned())]);
}

#[tokio::test]
async fn upnp_search_without_gateway_fails() {
    // A UDP socket that never answers stands in for a network without a UPnP router.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let options = UpnpSearchOptions::default()
        .with_ssdp_addr(silent.local_addr().unwrap(), SocketAddr::from((LOCAL, 0)))
        .with_timeout(Duration::from_millis(300));
    let error = UpnpGateway::search(options).await.unwrap_err();
    assert!(matches!(error, ethp2p::nat::NatError::NoGateway(_)), "{error:?}");
}

#[tokio::test]
async fn pmp_maps_renews_and_removes() {
    let fake = FakePmpGateway::start(WAN_IP).await.unwrap();
    let gateway = PmpGateway::new(fake.addr());
    assert_eq!(gateway.external_ip().await.unwrap(), IpAddr::V4(WAN_IP));

    let mapping = PortMapping::spawn(gateway, config());
    let mut updates = mapping.subscribe();
    let want = ExternalAddr { ip: WAN_IP.into(), tcp_port: Some(30303), udp_port: Some(30301) };
    tokio::time::timeout(DEADLINE, updates.wait_for(|a| *a == Some(want))).await.unwrap().unwrap();

    let maps = |r: &[PmpRequest], op: u8| {
        r.iter().filter(|r| matches!(r, PmpRequest::Map { opcode, lifetime: 2, .. } if *opcode == op)).count()
    };
    wait_until("renewals", || {
        let r = fake.requests();
        (maps(&r, 1) >= 2 && maps(&r, 2) >= 2).then_some(())
    })
    .await;
    for request in fake.requests() {
        if let PmpRequest::Map { opcode, internal_port, external_port, lifetime } = request {
            let port = if opcode == 2 { 30303 } else { 30301 };
            assert_eq!((internal_port, external_port, lifetime), (port, port, 2), "{request:?}");
        }
    }
    check_enr_update(want);

    mapping.shutdown().await;
    let deletes: Vec<_> =
        fake.requests().into_iter().filter(|r| matches!(r, PmpRequest::Map { lifetime: 0, .. })).collect();
    assert_eq!(
        deletes,
        [
            PmpRequest::Map { opcode: 2, internal_port: 30303, external_port: 0, lifetime: 0 },
            PmpRequest::Map { opcode: 1, internal_port: 30301, external_port: 0, lifetime: 0 },
        ]
    );
}

#[tokio::test]
async fn pmp_without_gateway_fails() {
    // A bound socket that never answers: the client retransmits, then times out.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let gateway = PmpGateway::new(silent.local_addr().unwrap()).with_tries(2);
    let error = gateway.external_ip().await.unwrap_err();
    assert_eq!(error, ethp2p::nat::NatError::Timeout);
}
