//! A bounded loopback load test of a discv4 service: another process floods signed PINGs
//! from many keys for a fixed time; this one serves them and reports PONGs served per
//! second, loss and memory, next to what one core can do for the cryptography of a
//! PING→PONG (one recover plus one sign), measured in the same run.
//!
//! ```text
//! cargo run --release --example discv4_load -- [SECONDS] [KEYS] [RATE]
//! ```
//! Defaults: 10 s, 200 keys, 12,000 PINGs/s offered. Loopback only.
//!
//! The flooder has one UDP socket per key and answers our PINGs with PONGs, as a real
//! node would, so after the first round every key is bonded and each PING costs the
//! service exactly one signature recovery (the PING) and one signature (the PONG).

use std::{
    net::SocketAddr,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use alloy_primitives::B256;
use ethp2p::{
    discovery::v4::{
        proto::{self, Endpoint, Message, Ping, Pong},
        Discv4, Discv4Config,
    },
    record::LocalEnr,
    test_utils::procfs::{cpu_seconds, memory_kib, thread_cpu_seconds},
    NetRestrict, NodeKey,
};
use secp256k1::{Message as SecpMessage, SECP256K1};
use tokio::net::UdpSocket;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("flood") {
        let target: SocketAddr = args[2].parse().expect("target address");
        let seconds: u64 = args[3].parse().expect("seconds");
        let keys: usize = args[4].parse().expect("keys");
        let rate: u64 = args[5].parse().expect("rate");
        flood(target, seconds, keys, rate);
        return;
    }
    let seconds: u64 = args.get(1).map_or(10, |s| s.parse().expect("seconds"));
    let keys: usize = args.get(2).map_or(200, |s| s.parse().expect("keys"));
    let rate: u64 = args.get(3).map_or(12_000, |s| s.parse().expect("rate"));
    serve(seconds, keys, rate);
}

/// One core's rate of (recover + sign), the cryptographic floor of a PING→PONG: per second
/// of wall time and per second of CPU time (the median of 5 runs each).
fn crypto_rate() -> (f64, f64) {
    let key = NodeKey::from_bytes(&[7; 32]).unwrap();
    let digest = SecpMessage::from_digest(B256::repeat_byte(3).0);
    let signature = SECP256K1.sign_ecdsa_recoverable(&digest, key.secret());
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let (start, cpu_start) = (Instant::now(), thread_cpu_seconds());
        let mut n = 0u64;
        while start.elapsed() < Duration::from_millis(400) {
            std::hint::black_box(SECP256K1.recover_ecdsa(&digest, &signature).unwrap());
            std::hint::black_box(SECP256K1.sign_ecdsa_recoverable(&digest, key.secret()));
            n += 1;
        }
        wall.push(n as f64 / start.elapsed().as_secs_f64());
        cpu.push(n as f64 / (thread_cpu_seconds() - cpu_start).max(0.01));
    }
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    (wall[2], cpu[2])
}

fn serve(seconds: u64, keys: usize, rate: u64) {
    let (limit, limit_cpu) = crypto_rate();
    // One core for the service, the other for the flooder.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let key = NodeKey::generate();
        let local = LocalEnr::builder(&key).udp_socket(addr).build().unwrap();
        let config = Discv4Config::builder()
            .netrestrict(NetRestrict::loopback())
            // Every flooding key sits on 127.0.0.1: the per-IP limit would measure itself.
            .reply_rate_per_ip(None)
            .build()
            .unwrap();
        let (discv4, _candidates) = Discv4::spawn_on_socket(Arc::new(socket), config, local).unwrap();
        let flooder = Command::new(std::env::current_exe().unwrap())
            .args(["flood", &addr.to_string(), &seconds.to_string(), &keys.to_string(), &rate.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the flooder");
        // Let the keys bond (first round of PINGs), then measure a window.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = discv4.stats().await.unwrap();
        let rss_start = memory_kib("VmRSS");
        let (start, cpu_start) = (Instant::now(), cpu_seconds());
        let mut rss_samples = Vec::new();
        let window = Duration::from_secs(seconds.saturating_sub(3).max(1));
        while start.elapsed() < window {
            tokio::time::sleep(Duration::from_millis(500)).await;
            rss_samples.push(memory_kib("VmRSS"));
        }
        let after = discv4.stats().await.unwrap();
        let elapsed = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu_start;
        let output = tokio::task::spawn_blocking(move || flooder.wait_with_output()).await.unwrap().unwrap();
        let flood_report = String::from_utf8_lossy(&output.stdout).to_string();
        let served = (after.packets_out - before.packets_out) as f64 / elapsed;
        let received = (after.packets_in - before.packets_in) as f64 / elapsed;
        println!("discv4 load test: {seconds} s flood from {keys} keys at {rate} PINGs/s offered");
        println!("  flooder: {}", flood_report.trim());
        println!("  valid packets handled by the service: {received:.0}/s");
        println!("  packets sent by the service (PONGs + bonding PINGs): {served:.0}/s");
        println!("  one core recover+sign (PING→PONG crypto) in this run: {limit:.0}/s");
        println!("  ratio served / one-core crypto limit: {:.3}", served / limit);
        // Under contention (the flooder, other processes) the service may not get a whole
        // core; per CPU-second, both sides are measured on the same clock.
        let per_cpu = (after.packets_out - before.packets_out) as f64 / cpu.max(0.01);
        println!(
            "  per CPU-second: service {:.2} cores busy, {per_cpu:.0} packets per CPU-second; \
             crypto {limit_cpu:.0} per CPU-second; ratio {:.3}",
            cpu / elapsed,
            per_cpu / limit_cpu
        );
        println!(
            "  RSS: {} KiB at window start, {} KiB at end, max {} KiB; peak (VmHWM) {} KiB",
            rss_start,
            rss_samples.last().copied().unwrap_or(0),
            rss_samples.iter().max().copied().unwrap_or(0),
            memory_kib("VmHWM")
        );
        println!(
            "  dropped: malformed {} expired {} rate-limited {} (over the whole run)",
            after.malformed, after.expired, after.rate_limited
        );
        discv4.shutdown().await;
    });
}

/// The flooding process: `keys` sockets, each with its own key, PINGs paced at `rate`, and
/// a PONG for every PING the service sends us.
fn flood(target: SocketAddr, seconds: u64, keys: usize, rate: u64) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let expiration = unix + seconds + 60;
        let mut nodes = Vec::new();
        for i in 0..keys {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            seed[31] = 9;
            let key = NodeKey::from_bytes(&seed).unwrap();
            let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
            let from = socket.local_addr().unwrap();
            let ping = Message::Ping(Ping {
                from: Endpoint { ip: from.ip(), udp_port: from.port(), tcp_port: 0 },
                to: Endpoint { ip: target.ip(), udp_port: target.port(), tcp_port: 0 },
                expiration,
                enr_seq: Some(1),
            });
            let packet = proto::encode(&ping, key.secret()).0;
            nodes.push((key, socket, packet));
        }
        let pongs = Arc::new(AtomicU64::new(0));
        for (key, socket, _) in &nodes {
            let (key, socket, pongs) = (key.clone(), socket.clone(), pongs.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 1500];
                while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                    // Trust our own service's packets: the flooder's cores are not measured.
                    match proto::packet_type(&buf[..len]) {
                        Some(0x02) => {
                            pongs.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(0x01) => {
                            let pong = Message::Pong(Pong {
                                to: Endpoint { ip: from.ip(), udp_port: from.port(), tcp_port: 0 },
                                ping_hash: B256::from_slice(&buf[..32]),
                                expiration,
                                enr_seq: Some(1),
                            });
                            let _ = socket.send_to(&proto::encode(&pong, key.secret()).0, from).await;
                        }
                        _ => {}
                    }
                }
            });
        }
        let start = Instant::now();
        let mut sent = 0u64;
        let batch = 50u64;
        while start.elapsed() < Duration::from_secs(seconds) {
            for _ in 0..batch {
                let (_, socket, packet) = &nodes[(sent as usize) % nodes.len()];
                let _ = socket.try_send_to(packet, target);
                sent += 1;
            }
            // Pace: where we should be at this rate.
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                tokio::time::sleep(wait).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got = pongs.load(Ordering::Relaxed);
        println!(
            "sent {sent} PINGs ({:.0}/s), got {got} PONGs ({:.0}/s), loss {:.1}%",
            sent as f64 / elapsed,
            got as f64 / elapsed,
            100.0 * (1.0 - got as f64 / sent as f64)
        );
    });
}
