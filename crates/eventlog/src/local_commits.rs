//! The events a store handle committed, handed to its own subscribers in memory.
//!
//! A subscription that tails the log through `read_all` pays a read for every commit it follows, and on
//! SQLite each read is a connection taken from the pool on a blocking thread. The handle that committed the
//! events already holds them, hashed and positioned: its writer sends each commit's rows on a
//! `tokio::sync::broadcast` right after the commit, and [`crate::catch_up`] forwards them without reading
//! when they are exactly the next positions it needs. Whatever does not fit (a commit by another handle or
//! process, a receiver that fell behind, a commit too large to keep) is read from the log as before, so the
//! feed is a shortcut and never the only way an event reaches a subscriber.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::event::RecordedEvent;

/// Commits a feed keeps for receivers that have not taken them yet; a receiver further behind reads the log.
pub const LOCAL_COMMITS_KEPT: usize = 64;

/// Largest sum of payload bytes of one commit whose events are handed over (256 KiB); a larger commit is
/// announced without its events, so the feed holds at most [`LOCAL_COMMITS_KEPT`] times this much.
pub(crate) const LOCAL_COMMIT_PAYLOAD_BYTES_MAX: usize = 256 * 1024;

/// One commit of a store handle, as its writer saw it.
#[derive(Debug, Clone)]
pub struct LocalCommit {
    /// The position of the commit's last event.
    pub last_position: u64,
    /// The committed events in position order (dense on a dense log), or `None` when the commit was too large
    /// to keep in memory: read it from the log.
    pub events: Option<Arc<[RecordedEvent]>>,
}

/// The sending side, owned by a store handle.
#[derive(Debug)]
pub(crate) struct LocalCommits {
    sender: broadcast::Sender<LocalCommit>,
}

impl LocalCommits {
    pub(crate) fn new() -> Self {
        Self {
            sender: broadcast::Sender::new(LOCAL_COMMITS_KEPT),
        }
    }

    /// A receiver of every commit sent from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<LocalCommit> {
        self.sender.subscribe()
    }

    /// Hands `rows`, just committed, to the receivers; takes them out of `rows` only when someone listens.
    pub(crate) fn send(&self, rows: &mut Vec<RecordedEvent>) {
        let Some(last) = rows.last() else {
            return;
        };
        if self.sender.receiver_count() == 0 {
            return;
        }
        let last_position = last.position;
        let payload_bytes: usize = rows.iter().map(|row| row.payload.len()).sum();
        let events = (payload_bytes <= LOCAL_COMMIT_PAYLOAD_BYTES_MAX).then(|| Arc::from(std::mem::take(rows)));
        // An error only means every receiver went away since the count above: nobody needs the commit.
        let _sent = self.sender.send(LocalCommit { last_position, events });
    }
}
