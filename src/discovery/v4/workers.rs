//! The discv4 signature workers: a few OS threads that do the costly half of every packet,
//! so a node with N cores serves more than one core's worth of PING→PONGs.
//!
//! Owned by the [`Discv4Service`](super::Discv4Service) task, which keeps the core (and so
//! the table) to itself and hands the workers only what needs no state:
//!
//! ```text
//!  socket ─► task: oversize, ingest budget, core.precheck ─► Verify ─► worker i ─► proto::decode
//!                                                                          │ (hash, body, recovery)
//!  task: core.handle_decoded ◄──────────── verified channel (try_send) ◄──┘
//!  task: core.poll_outgoing ─► Send (signed requests) / Sign (replies) ─► worker j ─► socket
//! ```
//!
//! Worker `i` is chosen by hashing the address, so the packets to one address leave in the
//! order the core queued them (a PONG before the PING that follows it) and those from one
//! address are decoded in order. Every queue is bounded. A datagram that finds its worker's
//! queue full is dropped and counted (`Discv4Stats::crypto_busy`), as the kernel would drop
//! it from a full socket buffer, unless its IP is quiet (a few datagrams a second, like an
//! honest node's PING): then it takes its worker's small quiet lane, which the worker drains
//! first, so a flood from busy sources does not silence the quiet ones. A decoded packet the
//! task has no room for is dropped and counted (`Discv4Stats::verified_dropped`): workers
//! never wait on the task. The task waits on a worker only to hand it a packet to send, which
//! the worker always takes eventually, so neither can deadlock the other.
//!
//! Dropping the pool closes the queues; each worker finishes the job in hand and ends.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    net::{IpAddr, SocketAddr},
    num::NonZeroUsize,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Instant,
};

use lru::LruCache;
use secp256k1::SecretKey;
use tokio::{runtime::Handle, sync::mpsc};

use super::{
    event::{Outgoing, Payload},
    proto::{self, Message, Packet},
    PacketError,
};
use crate::discovery::socket::Sockets;

const TARGET: &str = "ethp2p::discv4";

/// Jobs queued to each worker: about 10 ms of recoveries at ~40 µs each, enough to ride out
/// a scheduling hiccup, few enough that a datagram is still fresh when it is decoded.
pub(crate) const WORKER_QUEUE_CAPACITY: usize = 256;
/// Datagrams from quiet sources queued to each worker past a full queue (see the module docs).
pub(crate) const QUIET_LANE_CAPACITY: usize = 32;
/// Decoded packets queued from the workers to the task: the task's work per packet is a few
/// microseconds, so this fills only when the task is starved of CPU.
pub(crate) const VERIFIED_CHANNEL_CAPACITY: usize = 1_024;
/// A source IP is quiet while it sends at most this many datagrams a second (bursts of twice
/// that are allowed): an honest node pings a few times a minute and looks up a few times a
/// second at most.
pub(crate) const QUIET_RATE: f64 = 4.0;
/// Source IPs whose rate the quiet-lane check remembers (LRU), which bounds its memory.
const QUIET_TRACKED: usize = 4_096;

/// A datagram the workers decoded: what the core's `handle_decoded` takes.
#[derive(Debug)]
pub(crate) struct Verified {
    pub(crate) from: SocketAddr,
    pub(crate) len: usize,
    pub(crate) decoded: Result<Packet, PacketError>,
}

#[derive(Debug)]
enum Job {
    /// Check the hash, parse, recover the signer.
    Verify(SocketAddr, Vec<u8>),
    /// Send a signed packet.
    Send(SocketAddr, Vec<u8>),
    /// Sign a reply with our key and send it.
    Sign(SocketAddr, Message),
}

#[derive(Debug)]
struct Worker {
    jobs: mpsc::Sender<Job>,
    quiet: mpsc::Sender<Job>,
    /// Joined by tests; the service only closes the queues and lets the thread end.
    #[cfg_attr(not(test), allow(dead_code))]
    thread: JoinHandle<()>,
}

/// Counters of the pool's drops (see the module docs).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PoolCounts {
    pub(crate) busy: u64,
    pub(crate) quiet_lane: u64,
    pub(crate) verified_dropped: u64,
}

/// The worker threads and the task's ends of their queues. See the module docs.
#[derive(Debug)]
pub(crate) struct CryptoPool {
    workers: Vec<Worker>,
    quiet: QuietSources,
    busy: u64,
    quiet_lane: u64,
    /// Incremented by the workers, read by the task.
    verified_dropped: Arc<AtomicU64>,
}

impl CryptoPool {
    /// Starts `n` workers that send on `sockets` (each datagram on its destination's family's),
    /// sign with `key` and hand what they decode
    /// to `verified`. Must be called inside a tokio runtime (a worker whose send would block
    /// waits for the socket through it).
    pub(crate) fn spawn(
        n: NonZeroUsize,
        sockets: Sockets,
        key: SecretKey,
        verified: mpsc::Sender<Verified>,
    ) -> std::io::Result<Self> {
        let handle = Handle::current();
        let dropped = Arc::new(AtomicU64::new(0));
        let mut workers = Vec::with_capacity(n.get());
        for i in 0..n.get() {
            let (jobs, jobs_rx) = mpsc::channel(WORKER_QUEUE_CAPACITY);
            let (quiet, quiet_rx) = mpsc::channel(QUIET_LANE_CAPACITY);
            let end = WorkerEnd {
                jobs: jobs_rx,
                quiet: quiet_rx,
                sockets: sockets.clone(),
                key,
                verified: verified.clone(),
                dropped: dropped.clone(),
                handle: handle.clone(),
            };
            let thread =
                std::thread::Builder::new().name(format!("discv4-crypto-{i}")).spawn(move || end.run())?;
            workers.push(Worker { jobs, quiet, thread });
        }
        Ok(Self { workers, quiet: QuietSources::new(), busy: 0, quiet_lane: 0, verified_dropped: dropped })
    }

    fn worker(&self, addr: SocketAddr) -> &Worker {
        let mut hasher = DefaultHasher::new();
        addr.hash(&mut hasher);
        &self.workers[(hasher.finish() % self.workers.len() as u64) as usize]
    }

    /// Queues a datagram for decoding, or drops it (counted) when its worker is full and its
    /// source is not quiet. Under a flood most datagrams are dropped here, so a full queue is
    /// seen before the datagram is copied.
    pub(crate) fn verify(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let worker = self.worker(from);
        if worker.jobs.capacity() > 0 && worker.jobs.try_send(Job::Verify(from, bytes.to_vec())).is_ok() {
            return;
        }
        if self.quiet.is_quiet(now, from.ip())
            && self.worker(from).quiet.try_send(Job::Verify(from, bytes.to_vec())).is_ok()
        {
            self.quiet_lane += 1;
        } else {
            self.busy += 1;
            tracing::trace!(target: TARGET, %from, "crypto workers busy: dropped");
        }
    }

    /// Hands a datagram to send to its worker, waiting for room: what we send is never dropped
    /// by us.
    pub(crate) async fn send(&self, Outgoing { addr, payload }: Outgoing) {
        let job = match payload {
            Payload::Signed(bytes) => Job::Send(addr, bytes),
            Payload::Unsigned(message) => Job::Sign(addr, message),
        };
        // Fails only if the worker has died, which a panic would already have reported.
        let _ = self.worker(addr).jobs.send(job).await;
    }

    pub(crate) fn counts(&self) -> PoolCounts {
        PoolCounts {
            busy: self.busy,
            quiet_lane: self.quiet_lane,
            verified_dropped: self.verified_dropped.load(Ordering::Relaxed),
        }
    }

    /// Closes the queues and waits for every worker to end (tests: the service itself only
    /// drops the pool, and the workers end on their own).
    #[cfg(test)]
    pub(crate) fn join(self) {
        for Worker { jobs, quiet, thread } in self.workers {
            drop((jobs, quiet));
            thread.join().expect("worker ended cleanly");
        }
    }
}

/// A worker's ends: its queues, the sockets, our key.
struct WorkerEnd {
    jobs: mpsc::Receiver<Job>,
    quiet: mpsc::Receiver<Job>,
    sockets: Sockets,
    key: SecretKey,
    verified: mpsc::Sender<Verified>,
    dropped: Arc<AtomicU64>,
    handle: Handle,
}

impl WorkerEnd {
    fn run(mut self) {
        loop {
            // The quiet lane first. It only fills while the main queue is full, so checking it
            // before each job of the main queue is enough: the worker never sleeps on a
            // non-empty quiet lane.
            let job = match self.quiet.try_recv() {
                Ok(job) => job,
                Err(_) => match self.jobs.blocking_recv() {
                    Some(job) => job,
                    None => return,
                },
            };
            match job {
                Job::Verify(from, bytes) => {
                    let verified = Verified { from, len: bytes.len(), decoded: proto::decode(&bytes) };
                    if self.verified.try_send(verified).is_err() {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Job::Send(addr, bytes) => self.send(addr, &bytes),
                Job::Sign(addr, message) => self.send(addr, &proto::encode(&message, &self.key).0),
            }
        }
    }

    fn send(&self, addr: SocketAddr, bytes: &[u8]) {
        let socket = self.sockets.for_dest(&addr);
        let sent = match socket.try_send_to(bytes, addr) {
            // The send buffer is full: wait for room through the runtime's reactor, as the
            // task did when it sent itself.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                self.handle.block_on(socket.send_to(bytes, addr))
            }
            other => other,
        };
        if let Err(e) = sent {
            tracing::trace!(target: TARGET, %addr, error = %e, "send failed");
        }
    }
}

/// Which source IPs are quiet: a token bucket per IP of [`QUIET_RATE`] a second, spent by every
/// datagram that finds a full queue (only then is the question asked).
#[derive(Debug)]
struct QuietSources {
    buckets: LruCache<IpAddr, (f64, Instant)>,
}

impl QuietSources {
    fn new() -> Self {
        Self { buckets: LruCache::new(NonZeroUsize::new(QUIET_TRACKED).unwrap_or(NonZeroUsize::MIN)) }
    }

    /// Whether `ip` is quiet at `now`; spends one of its tokens either way.
    fn is_quiet(&mut self, now: Instant, ip: IpAddr) -> bool {
        let burst = 2.0 * QUIET_RATE;
        let (tokens, last) = self.buckets.get_or_insert_mut(ip, || (burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*last).as_secs_f64() * QUIET_RATE).min(burst);
        *last = now;
        let quiet = *tokens >= 1.0;
        *tokens = (*tokens - 1.0).max(0.0);
        quiet
    }
}

#[cfg(test)]
mod tests;
