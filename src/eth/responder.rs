//! Serving a peer's requests off its session task: the [`Responder`] a session owns.
//!
//! ```text
//!  EthPeerService ──request──▶ Responder ──spawn_blocking──▶ respond() + encode
//!        ▲                        │ (at most `concurrency` at once, `queue` waiting)
//!        └──encoded answer────────┘
//! ```
//!
//! A [`ChainReader`] may read a disk, and encoding a 2 MiB answer takes milliseconds: done
//! on the session task, that work stops the session from reading (our own responses wait
//! behind it) and holds a runtime worker, of which a node may have only two. So each
//! request is answered on tokio's blocking pool, several at once, and the session sends the
//! answers as they are ready, in any order (eth/66 request ids match them up, and neither
//! geth nor reth expects answers in order). Requests past the queue are dropped, as reth's
//! `ActiveSession` drops them when its request channel is full: the peer's request times
//! out and it asks someone else.

use std::{collections::VecDeque, sync::Arc};

use tokio::task::JoinSet;
use tracing::debug;

use crate::eth::message::{EthMessage, MAX_MESSAGE_SIZE};
use crate::eth::serve::{respond, ChainReader};
use crate::eth::txpool::TxPool;
use crate::eth::version::EthVersion;

/// An answer ready to send: its message id, name (for traces) and RLP payload.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) id: u8,
    pub(crate) name: &'static str,
    pub(crate) data: Vec<u8>,
}

/// The requests of one peer being answered, and those waiting for a slot.
pub(crate) struct Responder {
    chain: Arc<dyn ChainReader>,
    pool: Arc<dyn TxPool>,
    version: EthVersion,
    concurrency: usize,
    queue: usize,
    running: JoinSet<Option<Answer>>,
    waiting: VecDeque<EthMessage>,
    dropped: u64,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("running", &self.running.len())
            .field("waiting", &self.waiting.len())
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

impl Responder {
    /// Answers from `chain` and `pool` on `version`, `concurrency` requests at once (at least
    /// one) and `queue` more waiting.
    pub(crate) fn new(
        chain: Arc<dyn ChainReader>,
        pool: Arc<dyn TxPool>,
        version: EthVersion,
        concurrency: usize,
        queue: usize,
    ) -> Self {
        Self {
            chain,
            pool,
            version,
            concurrency: concurrency.max(1),
            queue,
            running: JoinSet::new(),
            waiting: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Serves the pooled transactions from `pool` from now on.
    pub(crate) fn set_tx_pool(&mut self, pool: Arc<dyn TxPool>) {
        self.pool = pool;
    }

    /// Starts answering `request`, or queues it, or drops it when the queue is full.
    pub(crate) fn on_request(&mut self, request: EthMessage) {
        if self.running.len() < self.concurrency {
            self.start(request);
        } else if self.waiting.len() < self.queue {
            self.waiting.push_back(request);
        } else {
            self.dropped += 1;
            debug!(target: "ethp2p::eth", request = request.name(), dropped = self.dropped,
                   "request queue full; request dropped");
        }
    }

    fn start(&mut self, request: EthMessage) {
        let (chain, pool, version) = (self.chain.clone(), self.pool.clone(), self.version);
        self.running.spawn_blocking(move || {
            let answer = respond(&*chain, &*pool, version, &request)?;
            let data = answer.encoded();
            if data.len() > MAX_MESSAGE_SIZE {
                // Our own fault (the serving limits should prevent it); never send it.
                tracing::warn!(target: "ethp2p::eth", size = data.len(), message = answer.name(),
                               "outgoing message too large");
                return None;
            }
            Some(Answer { id: answer.id(), name: answer.name(), data })
        });
    }

    /// The next answer ready (`None` for a request that has none); pending while nothing
    /// is being answered, so it can sit in a `select!` arm.
    pub(crate) async fn next(&mut self) -> Option<Answer> {
        let done = match self.running.join_next().await {
            Some(done) => done,
            None => std::future::pending().await,
        };
        if let Some(request) = self.waiting.pop_front() {
            self.start(request);
        }
        match done {
            Ok(answer) => answer,
            Err(e) => {
                // A panicking ChainReader is the caller's bug; the session goes on.
                tracing::warn!(target: "ethp2p::eth", error = %e, "serving a request failed");
                None
            }
        }
    }

    /// Requests being answered and waiting, and how many were dropped so far.
    #[cfg(test)]
    fn load(&self) -> (usize, usize, u64) {
        (self.running.len(), self.waiting.len(), self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{channel, Receiver, Sender};
    use std::sync::Mutex;
    use std::time::Duration;

    use alloy_consensus::{BlockBody, Header, ReceiptEnvelope, TxEnvelope};
    use alloy_primitives::B256;

    use super::*;
    use crate::eth::message::{id, RequestPair};
    use crate::eth::{MemoryChain, NoTxPool};

    /// A chain whose body lookups each announce themselves and then wait to be released:
    /// it shows how many requests are inside the chain at once.
    struct Gate {
        inner: MemoryChain,
        entered: Mutex<Sender<()>>,
        release: Mutex<Receiver<()>>,
    }

    impl ChainReader for Gate {
        fn header_by_number(&self, number: u64) -> Option<Header> {
            self.inner.header_by_number(number)
        }
        fn header_by_hash(&self, hash: &B256) -> Option<Header> {
            self.inner.header_by_hash(hash)
        }
        fn body(&self, hash: &B256) -> Option<BlockBody<TxEnvelope>> {
            self.entered.lock().unwrap().send(()).unwrap();
            // The lock is held while waiting: released lookups leave one at a time, which
            // does not matter to the tests (they count entries, never order them).
            self.release.lock().unwrap().recv().ok()?;
            self.inner.body(hash)
        }
        fn receipts(&self, hash: &B256) -> Option<Vec<ReceiptEnvelope>> {
            self.inner.receipts(hash)
        }
    }

    fn gate() -> (Arc<Gate>, Receiver<()>, Sender<()>) {
        let (entered, entries) = channel();
        let (release, released) = channel();
        let chain = MemoryChain::builder().blocks(4).build();
        let gate = Gate { inner: chain, entered: Mutex::new(entered), release: Mutex::new(released) };
        (Arc::new(gate), entries, release)
    }

    /// One body (one lookup, so one release per request).
    fn one_body(chain: &Gate, request_id: u64) -> EthMessage {
        EthMessage::GetBlockBodies(RequestPair::new(request_id, vec![chain.inner.hash(1).unwrap()]))
    }

    /// Waits for `n` lookups to have entered the chain; a generous guard against a hang,
    /// never a timing assertion.
    fn entered(entries: &Receiver<()>, n: usize) {
        for i in 0..n {
            entries
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("lookup {i} never started"));
        }
    }

    #[tokio::test]
    async fn answers_concurrently_up_to_the_limit_then_queues_then_drops() {
        let (chain, entries, release) = gate();
        let mut r = Responder::new(chain.clone(), Arc::new(NoTxPool), EthVersion::Eth69, 2, 1);
        for request_id in 0..4 {
            r.on_request(one_body(&chain, request_id));
        }
        // Two requests are inside the chain at the same time: served concurrently (one at
        // a time would never get the second lookup in while the first waits).
        entered(&entries, 2);
        assert_eq!(r.load(), (2, 1, 1), "two running, one queued, one dropped");
        let mut ids = Vec::new();
        for _ in 0..3 {
            release.send(()).unwrap();
            let answer = r.next().await.expect("an answer");
            assert_eq!(answer.id, id::BLOCK_BODIES);
            let Ok(EthMessage::BlockBodies(pair)) =
                EthMessage::decode(EthVersion::Eth69, answer.id, &answer.data)
            else {
                panic!("not bodies")
            };
            assert_eq!(pair.message.len(), 1);
            ids.push(pair.request_id);
        }
        ids.sort_unstable();
        assert_eq!(ids, [0, 1, 2], "the queued request was answered, the dropped one not");
        assert_eq!(r.load(), (0, 0, 1));
    }

    #[tokio::test]
    async fn announcements_get_no_answer() {
        let chain = Arc::new(MemoryChain::builder().blocks(1).build());
        let mut r = Responder::new(chain, Arc::new(NoTxPool), EthVersion::Eth69, 1, 0);
        r.on_request(EthMessage::Transactions(vec![]));
        assert!(r.next().await.is_none());
        assert_eq!(r.load(), (0, 0, 0));
    }
}
