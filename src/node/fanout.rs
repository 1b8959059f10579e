//! Broadcasts out: which peer gets a transaction or block in full and which only hears
//! its hash, by go-ethereum's rule (full copies to √n of the peers, hashes to the rest;
//! blob and large transactions are only announced; blocks travel only on eth/66–68).
//! Pure: the service sends each planned message with a non-blocking `try_announce`, and
//! each peer's session cuts out what that peer already has (see `eth::known`), so nothing
//! is echoed to the peer it came from.

use alloy_consensus::{transaction::PooledTransaction, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Encodable2718, Typed2718};
use alloy_primitives::Bytes;
use rand::seq::SliceRandom;

use crate::{
    eth::{BlockHashNumber, EthMessage, EthVersion, NewBlock, NewPooledTransactionHashes68},
    record::PeerId,
};

/// Transactions larger than this are only announced (go-ethereum `txMaxBroadcastSize`).
pub const MAX_BROADCAST_TX_SIZE: usize = 4096;

/// What a broadcast did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BroadcastSummary {
    /// Peers sent the full transactions or block.
    pub direct: usize,
    /// Peers sent only the hashes.
    pub announced: usize,
    /// Peers whose send queue was full (or whose session was closing): their copy was
    /// dropped, nothing else was held up.
    pub dropped: usize,
}

/// One message for one peer, and whether it is a full copy.
pub(crate) type Planned = (PeerId, EthMessage, bool);

/// How many of `n` peers get full copies: ⌈√n⌉ (the peers are shuffled first, so no peer
/// learns to expect them).
fn direct_share(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n as f64).sqrt().ceil() as usize
    }
}

/// Plans a transaction broadcast to `peers`.
pub(crate) fn plan_transactions(
    mut peers: Vec<(PeerId, EthVersion)>,
    txs: &[PooledTransaction],
    rng: &mut impl rand::Rng,
) -> Vec<Planned> {
    peers.shuffle(rng);
    // Only small non-blob transactions travel in full; blob ones need their sidecar,
    // fetched on demand.
    let full: Vec<TxEnvelope> = txs
        .iter()
        .filter(|t| !t.is_eip4844() && t.encode_2718_len() <= MAX_BROADCAST_TX_SIZE)
        .filter_map(|t| TxEnvelope::decode_2718(&mut t.encoded_2718().as_slice()).ok())
        .collect();
    let in_full: std::collections::HashSet<_> = full.iter().map(|t| *t.tx_hash()).collect();
    let direct = direct_share(peers.len());
    let mut plan = Vec::with_capacity(peers.len() * 2);
    for (i, (peer, version)) in peers.into_iter().enumerate() {
        let announced: Vec<&PooledTransaction> = if i < direct && !full.is_empty() {
            plan.push((peer, EthMessage::Transactions(full.clone()), true));
            txs.iter().filter(|t| !in_full.contains(t.hash())).collect()
        } else {
            txs.iter().collect()
        };
        if announced.is_empty() {
            continue;
        }
        let message = if version >= EthVersion::Eth68 {
            let types: Vec<u8> = announced.iter().map(|t| t.ty()).collect();
            EthMessage::NewPooledTransactionHashes68(NewPooledTransactionHashes68 {
                types: Bytes::from(types),
                sizes: announced.iter().map(|t| t.encode_2718_len() as u32).collect(),
                hashes: announced.iter().map(|t| *t.hash()).collect(),
            })
        } else {
            EthMessage::NewPooledTransactionHashes66(announced.iter().map(|t| *t.hash()).collect())
        };
        plan.push((peer, message, false));
    }
    plan
}

/// Plans a block broadcast: the block in full to √n of the eth/66–68 peers, its hash to
/// the others (eth/69 removed both messages; those peers learn of it from
/// `BlockRangeUpdate`).
pub(crate) fn plan_block(
    peers: Vec<(PeerId, EthVersion)>,
    block: &NewBlock,
    rng: &mut impl rand::Rng,
) -> Vec<Planned> {
    let mut peers: Vec<PeerId> =
        peers.into_iter().filter(|(_, v)| *v < EthVersion::Eth69).map(|(p, _)| p).collect();
    peers.shuffle(rng);
    let direct = direct_share(peers.len());
    let hash = BlockHashNumber { hash: block.block.header.hash_slow(), number: block.block.header.number };
    peers
        .into_iter()
        .enumerate()
        .map(|(i, peer)| {
            if i < direct {
                (peer, EthMessage::NewBlock(Box::new(block.clone())), true)
            } else {
                (peer, EthMessage::NewBlockHashes(vec![hash]), false)
            }
        })
        .collect()
}

/// Plans a hash announcement to every eth/66–68 peer.
pub(crate) fn plan_block_hashes(
    peers: Vec<(PeerId, EthVersion)>,
    hashes: &[BlockHashNumber],
) -> Vec<Planned> {
    peers
        .into_iter()
        .filter(|(_, v)| *v < EthVersion::Eth69)
        .map(|(p, _)| (p, EthMessage::NewBlockHashes(hashes.to_vec()), false))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eth::MemoryChain;
    use rand::SeedableRng;

    fn peers(versions: &[EthVersion]) -> Vec<(PeerId, EthVersion)> {
        versions.iter().enumerate().map(|(i, v)| (PeerId::from([i as u8 + 1; 64]), *v)).collect()
    }

    #[test]
    fn transactions_go_in_full_to_the_square_root_and_as_hashes_to_the_rest() {
        let chain = MemoryChain::builder().blocks(0).pooled_transactions(3).build();
        let pool = chain.tx_pool();
        let txs: Vec<_> = pool.hashes().iter().map(|h| crate::eth::TxPool::get(&pool, h).unwrap()).collect();
        let mut versions = vec![EthVersion::Eth69; 12];
        versions[11] = EthVersion::Eth66;
        let plan = plan_transactions(peers(&versions), &txs, &mut rand::rngs::StdRng::seed_from_u64(7));
        let direct: Vec<_> = plan.iter().filter(|(_, _, full)| *full).collect();
        assert_eq!(direct.len(), 4, "⌈√12⌉ peers get the transactions");
        assert!(direct.iter().all(|(_, m, _)| matches!(m, EthMessage::Transactions(t) if t.len() == 3)));
        let announced: Vec<_> = plan.iter().filter(|(_, _, full)| !*full).collect();
        assert_eq!(announced.len(), 8, "the others get hashes, and nobody gets both");
        for (peer, message, _) in announced {
            let version = versions[peer.as_slice()[0] as usize - 1];
            match message {
                EthMessage::NewPooledTransactionHashes68(a) => {
                    assert!(version >= EthVersion::Eth68);
                    assert_eq!(a.hashes.len(), 3);
                    assert_eq!(
                        a.sizes[0] as usize,
                        txs.iter().find(|t| *t.hash() == a.hashes[0]).unwrap().encode_2718_len()
                    );
                }
                EthMessage::NewPooledTransactionHashes66(h) => {
                    assert_eq!(version, EthVersion::Eth66);
                    assert_eq!(h.len(), 3);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(plan_transactions(vec![], &txs, &mut rand::thread_rng()).is_empty());
    }

    #[test]
    fn blocks_reach_only_peers_whose_version_has_them() {
        let chain = MemoryChain::builder().blocks(1).build();
        let header = chain.header(1).unwrap().clone();
        let block = NewBlock {
            block: alloy_consensus::Block { header, body: chain.body_by_number(1).unwrap().clone() },
            total_difficulty: chain.total_difficulty(),
        };
        let versions =
            [EthVersion::Eth68, EthVersion::Eth68, EthVersion::Eth68, EthVersion::Eth68, EthVersion::Eth69];
        let plan = plan_block(peers(&versions), &block, &mut rand::thread_rng());
        assert_eq!(plan.len(), 4, "the eth/69 peer gets neither");
        assert_eq!(plan.iter().filter(|(_, m, _)| matches!(m, EthMessage::NewBlock(_))).count(), 2);
        assert_eq!(plan.iter().filter(|(_, m, _)| matches!(m, EthMessage::NewBlockHashes(_))).count(), 2);
        assert_eq!(plan_block_hashes(peers(&versions), &[]).len(), 4);
    }
}
