#![allow(dead_code)] // Shared with examples/sync_bench.rs.

//! The store's append thread: the syncer hands it complete blocks in order and goes on
//! downloading while they are encoded, written and, every [`SYNC_INTERVAL`], `fdatasync`ed.
//!
//! On the syncer's task an append held the whole download: an `fdatasync` waits for the
//! disk, and behind another process's writeback (a build, a copy) that took seconds, during
//! which no answer was taken and no request sent (`examples/sync_bench.rs` saw 9-second
//! stalls right after a `cargo build`). Here only the thread waits; the queue between the
//! two is bounded ([`WRITER_QUEUE`] batches), so a disk slower than the network slows the
//! download instead of filling memory.
//!
//! [`SYNC_INTERVAL`]: crate::store::SYNC_INTERVAL

use std::{sync::Arc, thread::JoinHandle};

use alloy_consensus::{Header, Sealed};
use tokio::sync::mpsc;

use crate::store::{Store, StoreError, StoredBlock};

/// Batches of complete blocks queued to the writer at most (a batch is what one answer
/// completed: up to a few hundred blocks).
pub(crate) const WRITER_QUEUE: usize = 32;

/// The syncer's end of the append thread.
#[derive(Debug)]
pub(crate) struct Writer {
    tx: Option<mpsc::Sender<Vec<StoredBlock>>>,
    thread: Option<JoinHandle<Result<(), StoreError>>>,
}

impl Writer {
    /// Starts the thread. `on_stored` runs on it after each append, with the new head and
    /// the number of blocks appended.
    pub(crate) fn spawn(
        store: Arc<Store>,
        mut on_stored: impl FnMut(&Sealed<Header>, usize) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Vec<StoredBlock>>(WRITER_QUEUE);
        let thread = std::thread::Builder::new().name("sync-writer".into()).spawn(move || {
            while let Some(blocks) = rx.blocking_recv() {
                store.append(&blocks)?;
                if let Some(last) = blocks.last() {
                    on_stored(&last.header, blocks.len());
                }
            }
            Ok(())
        })?;
        Ok(Self { tx: Some(tx), thread: Some(thread) })
    }

    /// Queues `blocks` (complete, validated, following the last ones queued), waiting for room.
    /// An error is the writer's: the store failed and nothing after it is written.
    pub(crate) async fn append(&mut self, blocks: Vec<StoredBlock>) -> Result<(), StoreError> {
        let sent = match &self.tx {
            Some(tx) => tx.send(blocks).await.is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            // The thread ended, which it does only on an error: return it.
            self.finish().await
        }
    }

    /// Whether the thread has stopped on an error (checked now and then by the syncer, so a
    /// failed store ends the download even when no block is queued).
    pub(crate) fn failed(&self) -> bool {
        self.thread.as_ref().is_some_and(JoinHandle::is_finished)
    }

    /// Writes what is queued and stops the thread; the store's error, if it had one.
    pub(crate) async fn finish(&mut self) -> Result<(), StoreError> {
        self.tx = None;
        let Some(thread) = self.thread.take() else { return Ok(()) };
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .expect("the join task is not cancelled")
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}
