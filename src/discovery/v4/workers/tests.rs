use std::time::Duration;

use tokio::net::UdpSocket;

use super::*;
use crate::{
    discovery::v4::proto::{Endpoint, Ping, Pong},
    NodeKey,
};

fn ping(expiration: u64, tcp_port: u16) -> Message {
    let ep = Endpoint { ip: [127, 0, 0, 1].into(), udp_port: 1, tcp_port };
    Message::Ping(Ping { from: ep, to: ep, expiration, enr_seq: Some(1) })
}

#[test]
fn a_source_is_quiet_at_a_few_datagrams_a_second_and_not_in_a_flood() {
    let mut quiet = QuietSources::new();
    let start = Instant::now();
    let (prober, flooder) = (IpAddr::from([127, 0, 0, 2]), IpAddr::from([127, 1, 0, 1]));
    for second in 0..20u64 {
        let now = start + Duration::from_secs(second);
        assert!(quiet.is_quiet(now, prober), "one datagram a second is quiet (second {second})");
        let quiet_floods =
            (0..100).filter(|i| quiet.is_quiet(now + Duration::from_millis(*i), flooder)).count();
        // The burst of the first second, then the refill: never more than the rate allows.
        assert!(quiet_floods <= 2 * QUIET_RATE as usize + 1, "{quiet_floods} of 100 passed as quiet");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_decode_sign_and_keep_each_addresss_order() {
    let local = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let key = NodeKey::from_bytes(&[5; 32]).unwrap();
    let (tx, mut verified) = mpsc::channel(VERIFIED_CHANNEL_CAPACITY);
    let mut pool =
        CryptoPool::spawn(NonZeroUsize::new(4).unwrap(), Sockets::one(socket), *key.secret(), tx).unwrap();

    // Ingress: a signed PING decodes to its sender; junk is reported as not discv4.
    let remote = NodeKey::from_bytes(&[6; 32]).unwrap();
    let from: SocketAddr = "127.0.0.9:30303".parse().unwrap();
    pool.verify(Instant::now(), from, &proto::encode(&ping(u64::MAX >> 1, 0), remote.secret()).0);
    let got = verified.recv().await.unwrap();
    assert_eq!((got.from, got.decoded.unwrap().peer_id), (from, remote.peer_id()));
    pool.verify(Instant::now(), from, &[7; 200]);
    assert!(matches!(verified.recv().await.unwrap().decoded, Err(PacketError::HashMismatch)));

    // Egress: signed and unsigned packets to one address leave in the order given, the
    // unsigned ones signed with our key.
    let to = local.local_addr().unwrap();
    for i in 0..40u16 {
        let message = ping(1_000 + u64::from(i), i);
        let payload = if i % 2 == 0 {
            Payload::Signed(proto::encode(&message, remote.secret()).0)
        } else {
            Payload::Unsigned(message)
        };
        pool.send(Outgoing { addr: to, payload }).await;
    }
    let mut buf = [0u8; 1500];
    for i in 0..40u16 {
        let (len, _) =
            tokio::time::timeout(Duration::from_secs(10), local.recv_from(&mut buf)).await.unwrap().unwrap();
        let packet = proto::decode(&buf[..len]).unwrap();
        assert_eq!(packet.message, ping(1_000 + u64::from(i), i), "packet {i} out of order");
        let signer = if i % 2 == 0 { remote.peer_id() } else { key.peer_id() };
        assert_eq!(packet.peer_id, signer);
    }
    let pong = Message::Pong(Pong {
        to: Endpoint { ip: to.ip(), udp_port: 1, tcp_port: 0 },
        ping_hash: Default::default(),
        expiration: 1,
        enr_seq: None,
    });
    pool.send(Outgoing { addr: to, payload: Payload::Unsigned(pong) }).await;
    assert_eq!(pool.counts().busy, 0);
    // Dropping the queues ends every worker.
    tokio::task::spawn_blocking(move || pool.join()).await.unwrap();
}
