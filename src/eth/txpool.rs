//! The transaction pool a node serves `GetPooledTransactions` from and tells about the
//! transactions its peers broadcast: a [`TxPool`] is what a syncer or an execution client
//! plugs in. [`MemoryTxPool`] is a bounded in-memory one for tests and examples.

use std::{
    num::NonZeroUsize,
    sync::{Mutex, PoisonError},
};

use alloy_consensus::{transaction::PooledTransaction, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::B256;
use lru::LruCache;

use crate::record::PeerId;

/// A transaction pool as the network layer sees it. Every method is called from a
/// session or node task and must return quickly (no blocking I/O).
pub trait TxPool: Send + Sync + 'static {
    /// A transaction in its network form (blob transactions with their sidecar), to serve a
    /// peer's `GetPooledTransactions`.
    fn get(&self, hash: &B256) -> Option<PooledTransaction>;

    /// A peer broadcast these full transactions (`Transactions`). They are decoded but not
    /// validated (signature, nonce, fees are the pool's business). Default: ignored.
    fn on_transactions(&self, _from: PeerId, _txs: &[TxEnvelope]) {}

    /// A peer announced these hashes (`NewPooledTransactionHashes`); the pool may fetch
    /// the ones it lacks with `Node::get_pooled_transactions`. Default: ignored.
    fn on_announced(&self, _from: PeerId, _hashes: &[B256]) {}
}

impl std::fmt::Debug for dyn TxPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TxPool")
    }
}

/// The pool of a node that keeps none: serves nothing, ignores broadcasts.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NoTxPool;

impl TxPool for NoTxPool {
    fn get(&self, _hash: &B256) -> Option<PooledTransaction> {
        None
    }
}

/// Transactions kept by default in a [`MemoryTxPool`].
pub const DEFAULT_MEMORY_POOL_CAPACITY: usize = 4096;

/// A bounded in-memory pool: the transactions inserted and those peers broadcast (the
/// non-blob ones, which convert to their network form), oldest evicted first. It keeps
/// the hashes peers announced apart, for a test or an example to fetch.
#[derive(Debug)]
pub struct MemoryTxPool {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    txs: LruCache<B256, PooledTransaction>,
    announced: LruCache<B256, PeerId>,
}

impl Default for MemoryTxPool {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_MEMORY_POOL_CAPACITY)
    }
}

impl MemoryTxPool {
    /// A pool holding at most `capacity` transactions (and as many announced hashes).
    pub fn with_capacity(capacity: usize) -> Self {
        let cap = NonZeroUsize::new(capacity.max(1)).expect("at least one");
        Self { inner: Mutex::new(Inner { txs: LruCache::new(cap), announced: LruCache::new(cap) }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a transaction; returns whether it was new.
    pub fn insert(&self, tx: PooledTransaction) -> bool {
        let mut inner = self.lock();
        let hash = *tx.hash();
        inner.announced.pop(&hash);
        inner.txs.put(hash, tx).is_none()
    }

    /// Whether the pool holds this transaction.
    pub fn contains(&self, hash: &B256) -> bool {
        self.lock().txs.contains(hash)
    }

    /// The transactions held.
    pub fn len(&self) -> usize {
        self.lock().txs.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The hashes held, newest first.
    pub fn hashes(&self) -> Vec<B256> {
        self.lock().txs.iter().map(|(h, _)| *h).collect()
    }

    /// Hashes peers announced that the pool does not hold, with the peer that announced
    /// each (newest first).
    pub fn announced(&self) -> Vec<(B256, PeerId)> {
        self.lock().announced.iter().map(|(h, p)| (*h, *p)).collect()
    }
}

impl TxPool for MemoryTxPool {
    fn get(&self, hash: &B256) -> Option<PooledTransaction> {
        self.lock().txs.get(hash).cloned()
    }

    fn on_transactions(&self, _from: PeerId, txs: &[TxEnvelope]) {
        for tx in txs {
            if let Some(tx) = to_pooled(tx) {
                self.insert(tx);
            }
        }
    }

    fn on_announced(&self, from: PeerId, hashes: &[B256]) {
        let mut inner = self.lock();
        for hash in hashes {
            if !inner.txs.contains(hash) {
                inner.announced.put(*hash, from);
            }
        }
    }
}

/// A broadcast transaction in its network form: the same bytes for every type but blob
/// transactions, which travel without their sidecar in `Transactions` and so have none.
pub(crate) fn to_pooled(tx: &TxEnvelope) -> Option<PooledTransaction> {
    if tx.is_eip4844() {
        return None;
    }
    PooledTransaction::decode_2718(&mut tx.encoded_2718().as_slice()).ok()
}

impl<T: TxPool> TxPool for std::sync::Arc<T> {
    fn get(&self, hash: &B256) -> Option<PooledTransaction> {
        (**self).get(hash)
    }

    fn on_transactions(&self, from: PeerId, txs: &[TxEnvelope]) {
        (**self).on_transactions(from, txs)
    }

    fn on_announced(&self, from: PeerId, hashes: &[B256]) {
        (**self).on_announced(from, hashes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eth::MemoryChain;

    #[test]
    fn memory_pool_is_bounded_and_serves_what_it_holds() {
        let chain = MemoryChain::builder().blocks(2).transactions_per_block(3).build();
        let txs: Vec<TxEnvelope> =
            (1..=2).flat_map(|n| chain.body_by_number(n).unwrap().transactions.clone()).collect();
        assert_eq!(txs.len(), 6);
        let pool = MemoryTxPool::with_capacity(4);
        let peer = PeerId::from([1; 64]);
        pool.on_announced(peer, &[*txs[0].hash(), *txs[5].hash()]);
        assert_eq!(pool.announced().len(), 2);
        pool.on_transactions(peer, &txs);
        assert_eq!(pool.len(), 4, "the oldest two were evicted");
        assert!(pool.get(txs[0].hash()).is_none());
        assert_eq!(pool.get(txs[5].hash()).map(|t| *t.hash()), Some(*txs[5].hash()));
        assert!(pool.announced().is_empty(), "a hash that arrived is no longer wanted");
        assert!(!pool.insert(pool.get(txs[5].hash()).unwrap()), "a second insert is not new");
    }
}
