//! What one peer is known to have: the transaction and block hashes it sent us or we sent
//! it (go-ethereum's `knownTxs` / `knownBlocks`). Broadcasts leave them out, so nothing is
//! echoed to the peer it came from and nothing is sent twice. Sans-IO: the session task
//! owns one per peer.

use std::num::NonZeroUsize;

use alloy_primitives::B256;
use lru::LruCache;

use super::{EthMessage, NewPooledTransactionHashes68};

/// Transaction hashes remembered per peer (go-ethereum `maxKnownTxs`).
pub const MAX_KNOWN_TXS: usize = 32_768;
/// Block hashes remembered per peer (go-ethereum `maxKnownBlocks`).
pub const MAX_KNOWN_BLOCKS: usize = 1_024;

/// The hashes one peer is known to have, bounded (least recently seen forgotten first).
#[derive(Debug)]
pub(crate) struct KnownHashes {
    txs: LruCache<B256, ()>,
    blocks: LruCache<B256, ()>,
}

impl Default for KnownHashes {
    fn default() -> Self {
        Self::new(MAX_KNOWN_TXS, MAX_KNOWN_BLOCKS)
    }
}

impl KnownHashes {
    pub(crate) fn new(txs: usize, blocks: usize) -> Self {
        let cap = |n: usize| NonZeroUsize::new(n.max(1)).expect("at least one");
        Self { txs: LruCache::new(cap(txs)), blocks: LruCache::new(cap(blocks)) }
    }

    /// Whether the peer is known to have this transaction.
    #[cfg(test)]
    pub(crate) fn knows_tx(&self, hash: &B256) -> bool {
        self.txs.contains(hash)
    }

    /// The peer sent `message`: whatever it names, it has.
    pub(crate) fn on_received(&mut self, message: &EthMessage) {
        match message {
            EthMessage::Transactions(txs) => txs.iter().for_each(|t| self.mark_tx(*t.tx_hash())),
            EthMessage::NewPooledTransactionHashes66(h) => h.iter().for_each(|h| self.mark_tx(*h)),
            EthMessage::NewPooledTransactionHashes68(a) => a.hashes.iter().for_each(|h| self.mark_tx(*h)),
            EthMessage::PooledTransactions(p) => p.message.iter().for_each(|t| self.mark_tx(*t.hash())),
            EthMessage::NewBlockHashes(b) => b.iter().for_each(|b| self.mark_block(b.hash)),
            EthMessage::NewBlock(b) => self.mark_block(b.block.header.hash_slow()),
            _ => {}
        }
    }

    /// `message` is about to be sent: the parts the peer already has are cut out (`None`
    /// when nothing is left), and what remains is marked as known.
    pub(crate) fn on_sending(&mut self, message: EthMessage) -> Option<EthMessage> {
        let message = match message {
            EthMessage::Transactions(mut txs) => {
                txs.retain(|t| self.fresh_tx(*t.tx_hash()));
                (!txs.is_empty()).then_some(EthMessage::Transactions(txs))?
            }
            EthMessage::NewPooledTransactionHashes66(mut hashes) => {
                hashes.retain(|h| self.fresh_tx(*h));
                (!hashes.is_empty()).then_some(EthMessage::NewPooledTransactionHashes66(hashes))?
            }
            EthMessage::NewPooledTransactionHashes68(a) => {
                let mut kept = NewPooledTransactionHashes68 {
                    types: Default::default(),
                    sizes: Vec::new(),
                    hashes: Vec::new(),
                };
                let mut types = Vec::new();
                for ((ty, size), hash) in a.types.iter().zip(a.sizes).zip(a.hashes) {
                    if self.fresh_tx(hash) {
                        types.push(*ty);
                        kept.sizes.push(size);
                        kept.hashes.push(hash);
                    }
                }
                kept.types = types.into();
                (!kept.hashes.is_empty()).then_some(EthMessage::NewPooledTransactionHashes68(kept))?
            }
            EthMessage::NewBlockHashes(mut blocks) => {
                blocks.retain(|b| self.fresh_block(b.hash));
                (!blocks.is_empty()).then_some(EthMessage::NewBlockHashes(blocks))?
            }
            EthMessage::NewBlock(b) => {
                let fresh = self.fresh_block(b.block.header.hash_slow());
                fresh.then_some(EthMessage::NewBlock(b))?
            }
            other => other,
        };
        Some(message)
    }

    fn mark_tx(&mut self, hash: B256) {
        self.txs.put(hash, ());
    }

    fn mark_block(&mut self, hash: B256) {
        self.blocks.put(hash, ());
    }

    /// Whether the peer lacks `hash`; it is marked known either way.
    fn fresh_tx(&mut self, hash: B256) -> bool {
        self.txs.put(hash, ()).is_none()
    }

    fn fresh_block(&mut self, hash: B256) -> bool {
        self.blocks.put(hash, ()).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eth::{BlockHashNumber, MemoryChain};

    #[test]
    fn what_a_peer_sent_is_never_sent_back_and_nothing_is_sent_twice() {
        let chain = MemoryChain::builder().blocks(1).transactions_per_block(4).build();
        let txs = chain.body_by_number(1).unwrap().transactions.clone();
        let mut known = KnownHashes::default();
        known.on_received(&EthMessage::Transactions(txs[..2].to_vec()));
        let out = known.on_sending(EthMessage::Transactions(txs.clone())).expect("two are new");
        let EthMessage::Transactions(sent) = out else { panic!("still a Transactions") };
        assert_eq!(sent, txs[2..].to_vec());
        assert!(known.on_sending(EthMessage::Transactions(txs.clone())).is_none(), "all known now");
        let a = NewPooledTransactionHashes68 {
            types: vec![2, 2].into(),
            sizes: vec![100, 200],
            hashes: vec![*txs[0].tx_hash(), B256::repeat_byte(9)],
        };
        let EthMessage::NewPooledTransactionHashes68(kept) =
            known.on_sending(EthMessage::NewPooledTransactionHashes68(a)).unwrap()
        else {
            panic!("still an announcement")
        };
        assert_eq!(
            (kept.types.to_vec(), kept.sizes, kept.hashes),
            (vec![2], vec![200], vec![B256::repeat_byte(9)])
        );
        assert!(known.knows_tx(&B256::repeat_byte(9)));
        let block = BlockHashNumber { hash: B256::repeat_byte(3), number: 7 };
        known.on_received(&EthMessage::NewBlockHashes(vec![block]));
        assert!(known.on_sending(EthMessage::NewBlockHashes(vec![block])).is_none());
        let status_like = EthMessage::NewPooledTransactionHashes66(vec![]);
        assert!(known.on_sending(status_like).is_none(), "an empty announcement is not sent");
    }

    #[test]
    fn memory_is_bounded() {
        let mut known = KnownHashes::new(3, 1);
        for i in 0..10u8 {
            known.on_received(&EthMessage::NewPooledTransactionHashes66(vec![B256::repeat_byte(i)]));
        }
        assert_eq!(known.txs.len(), 3);
        assert!(known.knows_tx(&B256::repeat_byte(9)) && !known.knows_tx(&B256::repeat_byte(0)));
    }
}
