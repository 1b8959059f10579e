//! A bounded loopback load test of a discv4 service: another process floods signed PINGs
//! from many keys for a fixed time; this one serves them and reports PONGs served per
//! second, loss, memory and whether an honest prober is still answered, next to what one
//! core can do for the cryptography of a PING→PONG (one recover plus one sign), measured in
//! the same run. The service runs three times in a row: its crypto on its own task (0
//! workers), on 1 worker thread, on 2 (`Discv4Config::crypto_workers`).
//!
//! ```text
//! cargo run --release --features test-utils --example discv4_load -- [SECONDS] [KEYS] [RATE] [IPS]
//! ```
//! Defaults: 10 s per run, 5,000 keys on 50 IPs (127.1.0.1-50), 40,000 PINGs/s offered.
//! Loopback only.
//!
//! The flooder answers our PINGs with PONGs, as a real node would, so after the first round
//! every key is bonded and each PING costs the service exactly one signature recovery (the
//! PING) and one signature (the PONG). The service is started with `Discv4::spawn`, which
//! applies no ingest budgets, and with the per-IP reply limit off: 100 keys share each
//! flooding IP, and the limits would measure themselves rather than the service.
//!
//! The prober is a thread of this process with its own key on 127.0.0.2: one PING a second
//! during each measurement window, each waiting up to a second for its PONG.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
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
    test_utils::procfs::{cpu_seconds, memory_kib, process_cpu_seconds, thread_cpu_seconds},
    NetRestrict, NodeKey,
};
use secp256k1::{Message as SecpMessage, SECP256K1};
use tokio::net::UdpSocket;

/// Seconds of flood before each measurement window: every key bonds in the first round.
const WARM_UP: u64 = 3;
/// The worker counts measured, in this order.
const WORKERS: [usize; 3] = [0, 1, 2];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("flood") {
        let target: SocketAddr = args[2].parse().expect("target address");
        let numbers: Vec<u64> = args[3..7].iter().map(|a| a.parse().expect("number")).collect();
        flood(target, numbers[0], numbers[1] as usize, numbers[2], numbers[3] as usize);
        return;
    }
    let arg = |i: usize, default: u64| args.get(i).map_or(default, |s| s.parse().expect("a number"));
    let load = Load {
        seconds: arg(1, 10),
        keys: arg(2, 5_000) as usize,
        rate: arg(3, 40_000),
        ips: arg(4, 50) as usize,
    };
    assert!((1..=250).contains(&load.ips), "IPS must be 1 to 250");
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let (limit, limit_cpu) = crypto_rate();
    println!("one core recover+sign (PING→PONG crypto): {limit:.0}/s wall, {limit_cpu:.0} per CPU-second");
    let rows: Vec<Row> = WORKERS.iter().map(|&workers| serve(workers, &load)).collect();

    println!();
    println!(
        "SUMMARY discv4_load: {} s windows, {} keys on {} IPs, {} PINGs/s offered; load average before: {}",
        load.seconds,
        load.keys,
        load.ips,
        load.rate,
        loadavg.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!("no ingest budgets (Discv4::spawn) and no per-IP reply limit: 100 keys share each flooding IP");
    println!("one core recover+sign, same run: {limit:.0}/s wall, {limit_cpu:.0} per CPU-second");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    println!(
        "ceiling: the PONGs/s of pure recover+sign on what the flooder leaves of the {cores} cores \
         ((cores - flooder CPU) x {limit_cpu:.0} per CPU-second, capped at workers or one core)"
    );
    println!(
        "| workers | PONGs served/s | ratio to one core | service CPU (cores) | flooder CPU (cores) | ceiling | ratio to ceiling | per CPU-second ratio | loss | RSS start → end (max), KiB | prober answered |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|");
    for r in &rows {
        let ceiling = (cores - r.flooder_cores).min(r.workers.max(1) as f64).max(0.0) * limit_cpu;
        println!(
            "| {} | {:.0} | {:.2}× | {:.2} | {:.2} | {:.0} | {:.2}× | {:.2}× | {:.1}% | {} → {} ({}) | {}/{} |",
            if r.workers == 0 { "0 (on the task)".to_string() } else { r.workers.to_string() },
            r.served,
            r.served / limit,
            r.cores,
            r.flooder_cores,
            ceiling,
            r.served / ceiling,
            r.per_cpu / limit_cpu,
            r.loss,
            r.rss.0,
            r.rss.1,
            r.rss.2,
            r.prober.0,
            r.prober.1
        );
    }
}

struct Load {
    seconds: u64,
    keys: usize,
    rate: u64,
    ips: usize,
}

struct Row {
    workers: usize,
    served: f64,
    cores: f64,
    /// CPU the flooding process took over the window, in cores.
    flooder_cores: f64,
    per_cpu: f64,
    loss: f64,
    rss: (u64, u64, u64),
    prober: (u64, u64),
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

fn serve(workers: usize, load: &Load) -> Row {
    // One runtime thread: the service is one task, and the cores are for its workers (an
    // idle second runtime thread would spin looking for work to steal).
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(async move {
        let key = NodeKey::generate();
        let config = Discv4Config::builder()
            .listen_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
            .netrestrict(NetRestrict::loopback())
            .reply_rate_per_ip(None)
            .crypto_workers(workers)
            .build()
            .unwrap();
        let local = LocalEnr::builder(&key).udp_socket(config.listen_addr).build().unwrap();
        let (discv4, _candidates) = Discv4::spawn(config, local).await.unwrap();
        let addr = discv4.local_addr();
        let flood_seconds = WARM_UP + load.seconds + 1;
        let flooder = Command::new(std::env::current_exe().unwrap())
            .args(["flood", &addr.to_string(), &flood_seconds.to_string()])
            .args([load.keys.to_string(), load.rate.to_string(), load.ips.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the flooder");
        tokio::time::sleep(Duration::from_secs(WARM_UP)).await;

        let before = discv4.stats().await.unwrap();
        let rss_start = memory_kib("VmRSS");
        let stop = Arc::new(AtomicBool::new(false));
        let prober = {
            let stop = stop.clone();
            std::thread::spawn(move || probe(addr, &stop))
        };
        let flooder_pid = flooder.id();
        let (start, cpu_start, flooder_start) = (Instant::now(), cpu_seconds(), process_cpu_seconds(flooder_pid));
        let mut rss_samples = Vec::new();
        while start.elapsed() < Duration::from_secs(load.seconds) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            rss_samples.push(memory_kib("VmRSS"));
        }
        let after = discv4.stats().await.unwrap();
        let elapsed = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu_start;
        let flooder_cores = (process_cpu_seconds(flooder_pid) - flooder_start) / elapsed;
        stop.store(true, Ordering::Relaxed);
        let (probes, answered, worst) = tokio::task::spawn_blocking(move || prober.join().unwrap()).await.unwrap();
        let output = tokio::task::spawn_blocking(move || flooder.wait_with_output()).await.unwrap().unwrap();
        let flood_report = String::from_utf8_lossy(&output.stdout).to_string();
        discv4.shutdown().await;

        let out = (after.packets_out - before.packets_out) as f64;
        let served = out / elapsed;
        let received = (after.packets_in - before.packets_in) as f64 / elapsed;
        let loss = flood_report
            .split("loss ")
            .nth(1)
            .and_then(|s| s.trim().trim_end_matches('%').parse().ok())
            .unwrap_or(f64::NAN);
        let rss_end = rss_samples.last().copied().unwrap_or(0);
        let rss_max = rss_samples.iter().copied().max().unwrap_or(0);
        println!("workers {workers}:");
        println!("  flooder (whole run, warm-up included): {}", flood_report.trim());
        println!("  valid packets handled {received:.0}/s; packets sent (PONGs, a few revalidation PINGs) {served:.0}/s");
        println!("  service process CPU {:.2} cores; {:.0} packets per CPU-second", cpu / elapsed, out / cpu.max(0.01));
        println!("  flooder process CPU {flooder_cores:.2} cores (the load generator shares the machine's cores)");
        println!("  RSS {rss_start} KiB at window start, {rss_end} at end, max {rss_max}; peak (VmHWM) {} KiB", memory_kib("VmHWM"));
        println!(
            "  dropped: workers busy {} (quiet lane took {}), decoded but task behind {}, malformed {}, expired {}",
            after.crypto_busy - before.crypto_busy,
            after.quiet_lane - before.quiet_lane,
            after.verified_dropped - before.verified_dropped,
            after.malformed,
            after.expired
        );
        println!("  prober: {answered}/{probes} PINGs answered within 1 s, slowest {worst:?}");
        Row {
            workers,
            served,
            cores: cpu / elapsed,
            flooder_cores,
            per_cpu: out / cpu.max(0.01),
            loss,
            rss: (rss_start, rss_end, rss_max),
            prober: (answered, probes),
        }
    })
}

/// An honest node on 127.0.0.2: a PING a second until `stop`, each waiting up to a second for
/// the PONG that quotes it (checked like any packet); the service's own PINGs answered.
/// Returns (PINGs sent, answered, slowest answer).
fn probe(target: SocketAddr, stop: &AtomicBool) -> (u64, u64, Duration) {
    let key = NodeKey::from_bytes(&[0x42; 32]).unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let me = socket.local_addr().unwrap();
    let endpoint = |a: SocketAddr| Endpoint { ip: a.ip(), udp_port: a.port(), tcp_port: 0 };
    let (mut sent, mut answered, mut worst) = (0, 0, Duration::ZERO);
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        let expiration = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 20;
        let ping = Ping { from: endpoint(me), to: endpoint(target), expiration, enr_seq: Some(1) };
        let (packet, hash) = proto::encode(&Message::Ping(ping), key.secret());
        let at = Instant::now();
        socket.send_to(&packet, target).unwrap();
        sent += 1;
        let mut got = false;
        while at.elapsed() < Duration::from_secs(1) {
            let Ok((len, from)) = socket.recv_from(&mut buf) else { continue };
            match proto::decode(&buf[..len]).map(|p| (p.message, p.hash)) {
                Ok((Message::Pong(pong), _)) if pong.ping_hash == hash && !got => {
                    got = true;
                    answered += 1;
                    worst = worst.max(at.elapsed());
                }
                Ok((Message::Ping(_), their)) => {
                    let pong = Pong { to: endpoint(from), ping_hash: their, expiration, enr_seq: Some(1) };
                    socket.send_to(&proto::encode(&Message::Pong(pong), key.secret()).0, from).unwrap();
                }
                _ => {}
            }
        }
    }
    (sent, answered, worst)
}

/// The flooding process: `keys` keys on `ips` sockets (127.1.0.1 upwards), PINGs paced at
/// `rate`, and a PONG for every PING the service sends us. Key `k` puts `k + 1` in its PING's
/// `from` TCP port, which the service's PING back carries in its `to`: that says which key
/// of a shared socket is asked.
fn flood(target: SocketAddr, seconds: u64, keys: usize, rate: u64, ips: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let expiration = unix + seconds + 60;
        let mut sockets = Vec::new();
        for i in 0..ips {
            let ip = IpAddr::V4(Ipv4Addr::new(127, 1, 0, i as u8 + 1));
            sockets.push(Arc::new(UdpSocket::bind(SocketAddr::new(ip, 0)).await.unwrap()));
        }
        let mut keyring = Vec::new();
        let mut packets = Vec::new();
        for k in 0..keys {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(k as u64 + 1).to_be_bytes());
            seed[31] = 9;
            let key = NodeKey::from_bytes(&seed).unwrap();
            let from = sockets[k % ips].local_addr().unwrap();
            let ping = Message::Ping(Ping {
                from: Endpoint { ip: from.ip(), udp_port: from.port(), tcp_port: k as u16 + 1 },
                to: Endpoint { ip: target.ip(), udp_port: target.port(), tcp_port: 0 },
                expiration,
                enr_seq: Some(1),
            });
            packets.push(proto::encode(&ping, key.secret()).0);
            keyring.push(key);
        }
        let keyring = Arc::new(keyring);
        let pongs = Arc::new(AtomicU64::new(0));
        for socket in &sockets {
            let (keyring, socket, pongs) = (keyring.clone(), socket.clone(), pongs.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 1500];
                while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                    match proto::packet_type(&buf[..len]) {
                        // Counted unchecked: the flooder's cores are not what is measured.
                        Some(0x02) => {
                            pongs.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(0x01) => {
                            let Ok(packet) = proto::decode(&buf[..len]) else { continue };
                            let Message::Ping(ping) = packet.message else { continue };
                            let Some(key) = keyring.get(usize::from(ping.to.tcp_port).wrapping_sub(1)) else {
                                continue;
                            };
                            let pong = Message::Pong(Pong {
                                to: Endpoint { ip: from.ip(), udp_port: from.port(), tcp_port: 0 },
                                ping_hash: packet.hash,
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
                let k = (sent as usize) % keys;
                let _ = sockets[k % ips].try_send_to(&packets[k], target);
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
