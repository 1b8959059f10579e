//! The DNS discovery task and its handle.
//!
//! `DnsService` owns a [`DnsWalker`], the in-flight lookups (a `JoinSet`, so dropping the
//! service cancels them) and a token bucket. It hands the walker's queries to the
//! [`Resolver`] as fast as the rate limit and the concurrency cap allow, each under the
//! lookup timeout, and forwards the node records it gets back as [`Candidate`]s.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use tokio::{
    sync::{mpsc, oneshot},
    task::JoinSet,
    time::Instant,
};

use super::{
    DnsConfig, DnsError, DnsWalker, LinkEntry, QueryId, ResolveError, Resolver, TreeStatus, WalkEvent,
};
use crate::discovery::{Candidate, CandidateSource};

/// Commands queued for the task before a sender waits.
const COMMAND_CAPACITY: usize = 16;

enum Command {
    AddTree(LinkEntry, oneshot::Sender<bool>),
    Status(oneshot::Sender<Vec<TreeStatus>>),
    Shutdown(oneshot::Sender<()>),
}

/// Handle to the DNS discovery task. Cheap to clone; the task stops when
/// [`Self::shutdown`] is called or every handle is dropped.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use ethp2p::discovery::dns::{DnsConfig, DnsDiscovery, HickoryResolver};
/// let (tx, mut candidates) = tokio::sync::mpsc::channel(64);
/// let dns = DnsDiscovery::spawn(DnsConfig::default(), HickoryResolver::from_system_conf()?, tx);
/// dns.add_tree("enrtree://AKPYQIUQIL7PSIACI32J7FGZW56E5FKHEFCCOFHILBIMW3M6LWXS2@nodes.example.org").await?;
/// while let Some(candidate) = candidates.recv().await {
///     println!("{:?} at {}", candidate.peer_id, candidate.ip);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DnsDiscovery {
    commands: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::AddTree(..) => "AddTree",
            Self::Status(_) => "Status",
            Self::Shutdown(_) => "Shutdown",
        })
    }
}

impl DnsDiscovery {
    /// Starts the task on the current tokio runtime. Nodes found are sent on `candidates`;
    /// when that channel is full the walk pauses (it is lazy), and when it is closed the
    /// task stops.
    pub fn spawn<R: Resolver>(config: DnsConfig, resolver: R, candidates: mpsc::Sender<Candidate>) -> Self {
        let (commands, command_rx) = mpsc::channel(COMMAND_CAPACITY);
        let service = DnsService {
            bucket: TokenBucket::new(config.rate_limit, config.rate_burst, Instant::now()),
            walker: DnsWalker::new(config.clone()),
            config,
            resolver: Arc::new(resolver),
            lookups: JoinSet::new(),
            candidates,
            queue: VecDeque::new(),
            commands: command_rx,
        };
        tokio::spawn(service.run());
        Self { commands }
    }

    /// Adds a tree by its `enrtree://KEY@domain` URL. Returns whether it was new.
    pub async fn add_tree(&self, url: &str) -> Result<bool, DnsError> {
        let link: LinkEntry = url.trim().parse().map_err(DnsError::InvalidUrl)?;
        self.add_link(link).await
    }

    /// Adds a tree by its parsed URL. Returns whether it was new.
    pub async fn add_link(&self, link: LinkEntry) -> Result<bool, DnsError> {
        self.request(|tx| Command::AddTree(link, tx)).await
    }

    /// What each tree's walk has reached: roots, node counts, errors.
    pub async fn status(&self) -> Result<Vec<TreeStatus>, DnsError> {
        self.request(Command::Status).await
    }

    /// Stops the task and cancels its lookups; returns once it has stopped.
    pub async fn shutdown(&self) {
        let _ = self.request(Command::Shutdown).await;
    }

    async fn request<T>(&self, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, DnsError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(command(tx)).await.map_err(|_| DnsError::ServiceStopped)?;
        rx.await.map_err(|_| DnsError::ServiceStopped)
    }
}

struct DnsService<R> {
    config: DnsConfig,
    walker: DnsWalker,
    resolver: Arc<R>,
    lookups: JoinSet<(QueryId, Result<Vec<String>, ResolveError>)>,
    bucket: TokenBucket,
    candidates: mpsc::Sender<Candidate>,
    /// Candidates found but not yet taken by the consumer.
    queue: VecDeque<Candidate>,
    commands: mpsc::Receiver<Command>,
}

impl<R: Resolver> DnsService<R> {
    async fn run(mut self) {
        loop {
            let wake = self.start_lookups();
            let sleep = tokio::time::sleep_until(wake.unwrap_or_else(far_future));
            // A clone, so that the pending `reserve` does not borrow `self`.
            let candidates = self.candidates.clone();
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::AddTree(link, tx)) => {
                        let _ = tx.send(self.walker.add_tree(link, Instant::now().into_std()));
                    }
                    Some(Command::Status(tx)) => {
                        let _ = tx.send(self.walker.status());
                    }
                    Some(Command::Shutdown(tx)) => {
                        let _ = tx.send(());
                        break;
                    }
                    None => break,
                },
                Some(done) = self.lookups.join_next(), if !self.lookups.is_empty() => {
                    // A lookup task only panics if the resolver does; treat it as a failure.
                    if let Ok((id, answer)) = done {
                        let events = self.walker.on_response(id, answer, Instant::now().into_std());
                        self.on_events(events);
                    }
                }
                permit = candidates.reserve(), if !self.queue.is_empty() => match permit {
                    Ok(permit) => permit.send(self.queue.pop_front().expect("queue is not empty")),
                    Err(_) => break,
                },
                () = sleep, if wake.is_some() => {}
            }
        }
        tracing::debug!(target: "ethp2p::dns", "DNS discovery stopped");
    }

    /// Starts every lookup the walker, the rate limit, the concurrency cap and the
    /// consumer allow. Returns when to wake up next if nothing else happens.
    fn start_lookups(&mut self) -> Option<Instant> {
        // Lazy: while the consumer has not taken what we found, fetch nothing more.
        if self.queue.len() >= self.config.candidate_buffer {
            return None;
        }
        loop {
            if self.lookups.len() >= self.config.max_concurrent_lookups {
                return None;
            }
            let now = Instant::now();
            if let Some(at) = self.bucket.ready_at(now) {
                // Out of tokens: wake when one is back, if there is anything to do then.
                return self.walker.next_wakeup().map(|w| Instant::from_std(w).max(at));
            }
            let Some(query) = self.walker.poll(now.into_std()) else {
                // Guard against a wake-up time in the past spinning the loop.
                return self
                    .walker
                    .next_wakeup()
                    .map(|w| Instant::from_std(w).max(now + Duration::from_millis(10)));
            };
            self.bucket.take(now);
            tracing::trace!(target: "ethp2p::dns", name = %query.name, "TXT lookup");
            let resolver = Arc::clone(&self.resolver);
            let timeout = self.config.lookup_timeout;
            self.lookups.spawn(async move {
                let answer = tokio::time::timeout(timeout, resolver.lookup_txt(&query.name))
                    .await
                    .unwrap_or(Err(ResolveError::Timeout));
                (query.id, answer)
            });
        }
    }

    fn on_events(&mut self, events: Vec<WalkEvent>) {
        for event in events {
            match event {
                WalkEvent::Node { enr, tree } => match Candidate::from_enr(&enr, CandidateSource::Dns) {
                    Ok(candidate) => self.queue.push_back(candidate),
                    Err(_) => {
                        tracing::trace!(target: "ethp2p::dns", %tree, "record without IP or secp256k1 key")
                    }
                },
                WalkEvent::RootUpdated { domain, seq } => {
                    tracing::debug!(target: "ethp2p::dns", %domain, seq, "tree root updated")
                }
                WalkEvent::TreeAdded { link, via } => {
                    tracing::debug!(target: "ethp2p::dns", domain = %link.domain, %via, "following link")
                }
                WalkEvent::TreeRemoved { link } => {
                    tracing::debug!(target: "ethp2p::dns", domain = %link.domain, "link removed, tree dropped")
                }
                // The walker has logged it and recorded it in the tree's status.
                WalkEvent::Error(_) => {}
            }
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

/// A token bucket: `rate` tokens per second, at most `burst` stored.
#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    fn new(rate: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self { rate, burst, tokens: burst, updated: now }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.updated = now;
    }

    /// `None` if a token is available now, else when one will be.
    fn ready_at(&mut self, now: Instant) -> Option<Instant> {
        self.refill(now);
        if self.tokens >= 1.0 {
            return None;
        }
        Some(now + Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
    }

    fn take(&mut self, now: Instant) {
        self.refill(now);
        self.tokens -= 1.0;
    }
}

#[cfg(test)]
mod tests {
    use std::{
        collections::HashSet,
        net::Ipv4Addr,
        sync::atomic::{AtomicUsize, Ordering},
    };

    use super::*;
    use crate::{
        discovery::dns::{sign_tree, MemoryResolver},
        record::Enr,
        NodeKey,
    };

    /// A zone that counts the lookups made against it.
    #[derive(Debug, Clone, Default)]
    struct Counting {
        zone: MemoryResolver,
        lookups: Arc<AtomicUsize>,
    }

    impl Resolver for Counting {
        async fn lookup_txt(&self, name: &str) -> Result<Vec<String>, ResolveError> {
            self.lookups.fetch_add(1, Ordering::Relaxed);
            self.zone.lookup_txt(name).await
        }
    }

    fn records(n: u32) -> Vec<Enr> {
        (0..n)
            .map(|i| {
                let mut secret = [3u8; 32];
                secret[..4].copy_from_slice(&i.to_be_bytes());
                let key = NodeKey::from_bytes(&secret).unwrap();
                Enr::builder().ip4(Ipv4Addr::LOCALHOST).tcp4(30303).build(&key.to_combined_key()).unwrap()
            })
            .collect()
    }

    /// The walk is lazy: with nobody reading, it stops after filling its buffer, however
    /// long it is left alone; once read, every node comes out exactly once.
    #[tokio::test(start_paused = true)]
    async fn lazy_walk_yields_every_node_once() {
        let tree = sign_tree(&NodeKey::from_bytes(&[1; 32]).unwrap(), "n.test", 1, records(300), Vec::new())
            .unwrap();
        let resolver = Counting::default();
        for (name, text) in tree.records() {
            resolver.zone.insert(&name, text);
        }
        let config = DnsConfig::builder().rate_limit(100.0, 100).candidate_buffer(8).build().unwrap();
        let (tx, mut rx) = mpsc::channel(1);
        let dns = DnsDiscovery::spawn(config, resolver.clone(), tx);
        dns.add_link(tree.link.clone()).await.unwrap();

        // An hour of (paused, auto-advancing) time with no reader.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        let idle = resolver.lookups.load(Ordering::Relaxed);
        // Roots (one per 30 min), the branches on the way, and about the buffer's worth of
        // leaves; far from the 300-odd entries of the tree.
        assert!(idle < 60, "{idle} lookups with no reader");
        assert!(idle > 8);

        let mut seen = HashSet::new();
        while seen.len() < 300 {
            let candidate = rx.recv().await.unwrap();
            assert_eq!(candidate.source, CandidateSource::Dns);
            assert!(seen.insert(candidate.peer_id), "duplicate {}", candidate.peer_id);
        }
        let status = dns.status().await.unwrap();
        assert!(status[0].complete && status[0].nodes == 300 && status[0].errors == 0, "{status:?}");
        dns.shutdown().await;
    }

    #[test]
    fn token_bucket_bursts_then_limits() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(3.0, 10, start);
        for _ in 0..10 {
            assert_eq!(bucket.ready_at(start), None);
            bucket.take(start);
        }
        let next = bucket.ready_at(start).expect("burst spent");
        assert!(next > start && next <= start + Duration::from_millis(334));
        // After one second, three more.
        let later = start + Duration::from_secs(1);
        for _ in 0..3 {
            assert_eq!(bucket.ready_at(later), None);
            bucket.take(later);
        }
        assert!(bucket.ready_at(later).is_some());
    }
}
