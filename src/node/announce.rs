//! Announcements in: what peers announce (`NewBlockHashes`, `NewBlock`, `Transactions`,
//! `NewPooledTransactionHashes`, `BlockRangeUpdate`), validated by the peer's session task
//! and fanned out by the node's service to every [`Announcements`] stream.
//!
//! ```text
//!  EthPeerService ─EthEvent::Announcement─▶ sessions ─SessionEvent─▶ NodeService
//!                                                        └─ broadcast (bounded) ─▶ Announcements
//! ```
//!
//! The fan-out is a bounded `broadcast` channel: a consumer that reads slowly (or never)
//! loses the oldest announcements, counted in [`Announcements::dropped`]; it never makes
//! the node buffer more, and never slows a session.

use tokio::sync::broadcast;

use crate::{eth::EthMessage, record::PeerId};

/// Announcements buffered for each slow consumer before the oldest are dropped for it.
pub(crate) const ANNOUNCEMENT_CAPACITY: usize = 1024;

/// One announcement from one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Announcement {
    /// Who sent it.
    pub peer_id: PeerId,
    /// `NewBlockHashes`, `NewBlock`, `Transactions`, `NewPooledTransactionHashes66/68` or
    /// `BlockRangeUpdate` (whose range the session already checked).
    pub message: EthMessage,
}

/// A stream of announcements from every peer, from the moment it was made
/// ([`Node::announcements`](super::Node::announcements)).
#[derive(Debug)]
pub struct Announcements {
    rx: broadcast::Receiver<Announcement>,
    dropped: u64,
}

impl Announcements {
    pub(crate) fn new(rx: broadcast::Receiver<Announcement>) -> Self {
        Self { rx, dropped: 0 }
    }

    /// The next announcement; `None` once the node has shut down. Announcements this
    /// consumer was too slow for are skipped and counted in [`Self::dropped`].
    pub async fn recv(&mut self) -> Option<Announcement> {
        loop {
            match self.rx.recv().await {
                Ok(a) => return Some(a),
                Err(broadcast::error::RecvError::Lagged(n)) => self.dropped += n,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next announcement if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<Announcement> {
        loop {
            match self.rx.try_recv() {
                Ok(a) => return Some(a),
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.dropped += n,
                Err(_) => return None,
            }
        }
    }

    /// Announcements lost because this consumer read too slowly.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eth::BlockHashNumber;
    use alloy_primitives::B256;

    fn announcement(n: u64) -> Announcement {
        let hashes = vec![BlockHashNumber { hash: B256::repeat_byte(1), number: n }];
        Announcement { peer_id: PeerId::from([7; 64]), message: EthMessage::NewBlockHashes(hashes) }
    }

    #[tokio::test]
    async fn a_consumer_that_never_reads_costs_bounded_memory_and_counts_its_losses() {
        let (tx, rx) = broadcast::channel(4);
        let mut slow = Announcements::new(rx);
        for n in 0..10 {
            let _ = tx.send(announcement(n));
        }
        assert_eq!(tx.len(), 4, "the channel holds at most its capacity");
        let first = slow.recv().await.expect("the newest four are kept");
        assert_eq!(first, announcement(6));
        assert_eq!(slow.dropped(), 6);
        drop(tx);
        let rest: Vec<_> = std::iter::from_fn(|| slow.try_recv()).collect();
        assert_eq!(rest.len(), 3);
        assert_eq!(slow.recv().await, None, "ends with the node");
    }
}
