//! The address a `bootnode` advertises follows what its peers see, but only once a quorum of
//! distinct hosts agrees, never after one liar; the move is one seq bump, served to clients and
//! saved in `<datadir>/enr`. Loopback only: each reporter is its own host (`127.0.N.1`) and the
//! address they report, `127.0.0.9`, is loopback too (believable for a node on loopback).
//!
//! Each reporter bonds as a real discv4 node would (PING, then answers the bootnode's PING with
//! a PONG); its PONG's `to` field is its vote.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    process::{Child, Command, Stdio},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use std::io::{BufRead, BufReader};

use ethp2p::{
    discovery::v4::{
        proto::{self, Endpoint, EnrRequest, Message, Ping, Pong},
        MIN_IP_VOTES,
    },
    record::parse_enr,
    test_utils::key_from_seed,
    Enode, Enr, NodeKey,
};
use tokio::{net::UdpSocket, time::timeout};

const BIN: &str = env!("CARGO_BIN_EXE_bootnode");
const CLAIMED: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 9);

struct Bootnode {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Bootnode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_bootnode(datadir: &std::path::Path) -> Bootnode {
    let mut child = Command::new(BIN)
        // Stats (and the record's save when it changed) every second rather than every 30.
        .args(["--addr", "127.0.0.1:0", "--v4", "--netrestrict", "127.0.0.0/8", "--stats-interval", "1"])
        .arg("--datadir")
        .arg(datadir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("bootnode starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let enode: Enode = lines.next().expect("enode line").expect("read").parse().expect("an enode");
    Bootnode { child, addr: enode.udp_addr() }
}

fn expiration() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 20
}

fn endpoint(addr: SocketAddr) -> Endpoint {
    Endpoint { ip: addr.ip(), udp_port: addr.port(), tcp_port: 0 }
}

/// One reporter on its own host: bonds with the bootnode and answers its PING with a PONG
/// that says the bootnode is at `claim`. Returns the bonded socket and key, for a later
/// ENRRequest.
async fn report(boot: SocketAddr, seed: u64, host: Ipv4Addr, claim: SocketAddr) -> (UdpSocket, NodeKey) {
    let key = key_from_seed(seed);
    let socket = UdpSocket::bind((host, 0)).await.expect("bind a loopback host");
    let local = socket.local_addr().unwrap();
    let ping = Message::Ping(Ping {
        from: endpoint(local),
        to: endpoint(boot),
        expiration: expiration(),
        enr_seq: None,
    });
    socket.send_to(&proto::encode(&ping, key.secret()).0, boot).await.unwrap();
    let mut buf = vec![0u8; 1280];
    let answered = timeout(Duration::from_secs(10), async {
        loop {
            let (n, from) = socket.recv_from(&mut buf).await.unwrap();
            let Ok(packet) = proto::decode(&buf[..n]) else { continue };
            if let Message::Ping(_) = packet.message {
                let pong = Message::Pong(Pong {
                    to: endpoint(claim),
                    ping_hash: packet.hash,
                    expiration: expiration(),
                    enr_seq: None,
                });
                socket.send_to(&proto::encode(&pong, key.secret()).0, from).await.unwrap();
                return;
            }
        }
    })
    .await;
    assert!(answered.is_ok(), "reporter {host} was never pinged back by the bootnode");
    (socket, key)
}

/// The record the bootnode serves now, asked over discv4 (EIP-868) by a bonded reporter.
async fn served_record(socket: &UdpSocket, key: &NodeKey, boot: SocketAddr) -> Enr {
    let request = Message::EnrRequest(EnrRequest { expiration: expiration() });
    let (bytes, hash) = proto::encode(&request, key.secret());
    socket.send_to(&bytes, boot).await.unwrap();
    let mut buf = vec![0u8; 1280];
    timeout(Duration::from_secs(10), async {
        loop {
            let (n, _) = socket.recv_from(&mut buf).await.unwrap();
            if let Ok(proto::Packet { message: Message::EnrResponse(response), .. }) =
                proto::decode(&buf[..n])
            {
                if response.request_hash == hash {
                    return response.enr;
                }
            }
        }
    })
    .await
    .expect("an ENRResponse")
}

fn host(n: u8) -> Ipv4Addr {
    // A host per /24, so the quorum is one of distinct subnets too.
    Ipv4Addr::new(127, 0, 10 + n, 1)
}

#[tokio::test]
async fn the_advertised_address_moves_after_a_quorum_never_after_one_liar() {
    let dir = tempfile::tempdir().unwrap();
    let boot = start_bootnode(dir.path());
    let claim = SocketAddr::new(IpAddr::V4(CLAIMED), boot.addr.port());

    // One liar, however many keys it has on its host (more than a quorum here), is one vote.
    let (liar, liar_key) = report(boot.addr, 1, host(0), claim).await;
    for seed in 2..=MIN_IP_VOTES as u64 + 2 {
        report(boot.addr, seed, host(0), claim).await;
    }
    // The vote is counted when the PONG arrives; the ENRRequest that follows is read after it.
    let before = served_record(&liar, &liar_key, boot.addr).await;
    assert_eq!(before.ip4(), Some(Ipv4Addr::LOCALHOST), "one host's votes moved the address");
    let seq = before.seq();

    // Hosts up to one short of the quorum: still unmoved.
    for n in 1..MIN_IP_VOTES as u8 - 1 {
        report(boot.addr, 100 + u64::from(n), host(n), claim).await;
    }
    let short = served_record(&liar, &liar_key, boot.addr).await;
    assert_eq!(short.ip4(), Some(Ipv4Addr::LOCALHOST), "moved one host short of the quorum");
    assert_eq!(short.seq(), seq);

    // The quorum-th distinct host: the record moves, with exactly one seq bump.
    let (last, last_key) = report(boot.addr, 200, host(MIN_IP_VOTES as u8 - 1), claim).await;
    let mut moved = served_record(&last, &last_key, boot.addr).await;
    for _ in 0..50 {
        if moved.ip4() == Some(CLAIMED) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        moved = served_record(&last, &last_key, boot.addr).await;
    }
    assert_eq!(moved.ip4(), Some(CLAIMED), "a quorum of {MIN_IP_VOTES} hosts did not move the address");
    assert_eq!(moved.udp4(), Some(boot.addr.port()));
    assert_eq!(moved.seq(), seq + 1, "one move, one seq bump");

    // The operator's copy follows: `<datadir>/enr` holds the moved record.
    let path = dir.path().join("enr");
    let mut saved = None;
    for _ in 0..100 {
        if let Some(enr) = std::fs::read_to_string(&path).ok().and_then(|text| parse_enr(text.trim()).ok()) {
            if enr.seq() == seq + 1 {
                saved = Some(enr);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let saved = saved.expect("the moved record is saved in <datadir>/enr");
    assert_eq!(saved.ip4(), Some(CLAIMED));
}
