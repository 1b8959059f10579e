//! Our chain head as the network sees it, moved by `Node::set_head`: the `Status` new
//! sessions send, the fork filter their `Status` and discovered nodes are checked with,
//! the `eth` entry of our record and the `BlockRangeUpdate`s eth/69+ peers get. Sans-IO:
//! the node's service owns one and acts on what [`LocalHead::set`] returns.

use alloy_primitives::B256;

use crate::{
    eth::{BlockRange, StatusInfo},
    record::{ForkFilter, ForkId},
};

/// How far the head moves forward before a `BlockRangeUpdate` is due (go-ethereum sends
/// one every 32 blocks, and at once when the head moves back).
pub const BLOCK_RANGE_UPDATE_INTERVAL: u64 = 32;

/// What a head move changes, for the service to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeadChange {
    /// The fork id changed (a fork passed, or a reorg went back before one): our record's
    /// `eth` entry and the candidate filter follow.
    pub(crate) fork_id: Option<ForkId>,
    /// A `BlockRangeUpdate` is due to every eth/69+ peer.
    pub(crate) range: Option<BlockRange>,
}

/// Our head: what we announce, and the last range we announced.
#[derive(Debug, Clone)]
pub(crate) struct LocalHead {
    status: StatusInfo,
    filter: ForkFilter,
    /// The `latest` of the last range peers heard from us (in `Status` or an update).
    announced: u64,
}

impl LocalHead {
    pub(crate) fn new(status: StatusInfo, filter: ForkFilter) -> Self {
        Self { announced: status.latest, status, filter }
    }

    /// What new sessions announce.
    pub(crate) fn status(&self) -> &StatusInfo {
        &self.status
    }

    /// What remote fork ids are checked against.
    pub(crate) fn fork_filter(&self) -> &ForkFilter {
        &self.filter
    }

    /// Moves the head to block `number` with `hash` and `timestamp`, forwards or
    /// backwards (a reorg is a move like any other).
    pub(crate) fn set(&mut self, number: u64, hash: B256, timestamp: u64) -> HeadChange {
        let fork_id = self.filter.set_head(number, timestamp);
        if let Some(id) = fork_id {
            self.status.fork_id = id;
        }
        self.status.latest = number;
        self.status.latest_hash = hash;
        let due = number < self.announced || number - self.announced >= BLOCK_RANGE_UPDATE_INTERVAL;
        let range = due.then(|| {
            self.announced = number;
            BlockRange { earliest: self.status.earliest.min(number), latest: number, latest_hash: hash }
        });
        HeadChange { fork_id, range }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eth::MemoryChain;
    use crate::record::ChainSpec;

    fn head_at(spec: &ChainSpec, number: u64, timestamp: u64) -> LocalHead {
        let chain = MemoryChain::builder().blocks(0).build();
        let mut status = chain.status_info(1, spec.fork_id(number, timestamp));
        status.latest = number;
        LocalHead::new(status, spec.fork_filter(number, timestamp))
    }

    #[test]
    fn a_range_update_is_due_every_32_blocks_and_at_once_on_a_move_back() {
        let spec = ChainSpec::mainnet();
        let mut head = head_at(&spec, 100, 0);
        let hash = B256::repeat_byte(1);
        assert_eq!(head.set(131, hash, 0).range, None, "31 blocks on: not yet");
        let range = head.set(132, hash, 0).range.expect("32 blocks on");
        assert_eq!((range.earliest, range.latest, range.latest_hash), (0, 132, hash));
        assert_eq!(head.status().latest, 132);
        assert_eq!(head.set(140, hash, 0).range, None);
        assert_eq!(head.set(120, hash, 0).range.map(|r| r.latest), Some(120), "a move back is sent at once");
    }

    #[test]
    fn crossing_a_fork_changes_the_fork_id_once() {
        let spec = ChainSpec::mainnet();
        // Mainnet: Cancun at 1710338135, Prague at 1746612311 (block numbers far past Paris).
        let (block, cancun) = (20_000_000, 1_710_338_135);
        let mut head = head_at(&spec, block, cancun);
        let before = head.status().fork_id;
        assert_eq!(head.set(block + 1, B256::ZERO, cancun + 12).fork_id, None);
        let change = head.set(block + 2, B256::ZERO, 1_746_612_311).fork_id.expect("Prague passed");
        assert_ne!(change, before);
        assert_eq!(head.status().fork_id, change);
        assert_eq!(head.fork_filter().current(), change);
        assert_eq!(head.set(block + 3, B256::ZERO, 1_746_612_323).fork_id, None, "once");
        assert_eq!(head.set(block, B256::ZERO, cancun).fork_id, Some(before), "a reorg back before the fork");
    }
}
