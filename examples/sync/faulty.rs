#![allow(dead_code)] // Shared by examples/sync_bench.rs and tests/it/sync.rs, which use parts.

//! Test peers that misbehave, as [`ChainReader`] wrappers around a [`MemoryChain`]: one that
//! answers slowly, and ones that lie. `ChainReader` is synchronous and called from the peer's
//! session task, so a sleeping reader holds up only that peer: fine for a test peer.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use alloy_consensus::{BlockBody, Header, ReceiptEnvelope, TxEnvelope};
use alloy_primitives::B256;
use ethp2p::{eth::MemoryChain, ChainReader};
use parking_lot::Mutex;

/// Calls closer together than this belong to one answer: a session looks up a request's
/// items in one go, a few microseconds apart, while between two answers it encodes,
/// encrypts and writes one and reads and decodes the next (pipelined requests arrive back
/// to back, so a gap of milliseconds would merge them).
const SAME_ANSWER: Duration = Duration::from_micros(300);

/// Answers like `inner`, `delay` late: the first lookup of each answer sleeps (answers are
/// told apart by the gap between lookups, see [`SAME_ANSWER`]: close to one sleep per
/// answer, not exactly).
#[derive(Debug)]
pub(crate) struct Slow {
    inner: Arc<MemoryChain>,
    delay: Duration,
    last: Mutex<Option<Instant>>,
}

impl Slow {
    pub(crate) fn new(inner: Arc<MemoryChain>, delay: Duration) -> Self {
        Self { inner, delay, last: Mutex::new(None) }
    }

    fn wait(&self) {
        let new_answer = self.last.lock().is_none_or(|t| t.elapsed() > SAME_ANSWER);
        if new_answer {
            std::thread::sleep(self.delay);
        }
        *self.last.lock() = Some(Instant::now());
    }
}

impl ChainReader for Slow {
    fn header_by_number(&self, number: u64) -> Option<Header> {
        self.wait();
        self.inner.header_by_number(number)
    }
    fn header_by_hash(&self, hash: &B256) -> Option<Header> {
        self.wait();
        self.inner.header_by_hash(hash)
    }
    fn body(&self, hash: &B256) -> Option<BlockBody<TxEnvelope>> {
        self.wait();
        self.inner.body(hash)
    }
    fn receipts(&self, hash: &B256) -> Option<Vec<ReceiptEnvelope>> {
        self.wait();
        self.inner.receipts(hash)
    }
}

/// How a [`Liar`] lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lie {
    /// Now and then, the body of the next block instead of the one asked for.
    Bodies,
    /// Now and then, the receipts of the next block (their root fails).
    Receipts,
    /// Every header, body and receipt from another chain on the same genesis: the right
    /// count of well-linked, wrong headers.
    Fork,
    /// Nothing at all, to everything (while its `Status` claims the whole chain).
    Empty,
}

/// Serves `chain`, lying as told.
#[derive(Debug)]
pub(crate) struct Liar {
    chain: Arc<MemoryChain>,
    fork: Option<Arc<MemoryChain>>,
    lie: Lie,
    every: u64,
    calls: AtomicU64,
}

impl Liar {
    /// A liar that tampers one answer item in `every` (for `Bodies` and `Receipts`).
    pub(crate) fn new(chain: Arc<MemoryChain>, lie: Lie, every: u64) -> Self {
        let fork = (lie == Lie::Fork).then(|| {
            // Another chain id signs other transactions: other roots, other hashes.
            let n = chain.head_number();
            Arc::new(
                MemoryChain::builder()
                    .genesis(chain.header(0).expect("a genesis").clone())
                    .blocks(n)
                    .chain_id(7)
                    .build(),
            )
        });
        Self { chain, fork, lie, every: every.max(1), calls: AtomicU64::new(0) }
    }

    fn now_and_then(&self) -> bool {
        self.calls.fetch_add(1, Relaxed) % self.every == self.every - 1
    }

    fn source(&self) -> Option<&MemoryChain> {
        match self.lie {
            Lie::Empty => None,
            Lie::Fork => self.fork.as_deref(),
            _ => Some(&self.chain),
        }
    }

    /// The block after the one with `hash`, when this answer item is the one to tamper.
    fn swap(&self, hash: &B256, lie: Lie) -> Option<B256> {
        if self.lie != lie || !self.now_and_then() {
            return None;
        }
        let n = self.chain.header_by_hash(hash)?.number;
        self.chain.hash(n + 1).or_else(|| self.chain.hash(n.checked_sub(1)?))
    }
}

impl ChainReader for Liar {
    fn header_by_number(&self, number: u64) -> Option<Header> {
        self.source()?.header_by_number(number)
    }
    fn header_by_hash(&self, hash: &B256) -> Option<Header> {
        self.source()?.header_by_hash(hash)
    }
    fn body(&self, hash: &B256) -> Option<BlockBody<TxEnvelope>> {
        let hash = self.swap(hash, Lie::Bodies).unwrap_or(*hash);
        self.source()?.body(&hash)
    }
    fn receipts(&self, hash: &B256) -> Option<Vec<ReceiptEnvelope>> {
        let hash = self.swap(hash, Lie::Receipts).unwrap_or(*hash);
        self.source()?.receipts(&hash)
    }
}
