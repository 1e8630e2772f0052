//! Scans: a range of the log read once, in position order, as a stream of compact batches; what `verify`,
//! `replay` and other whole-log readers use instead of paging through [`EventStore::read_all`].
//!
//! A store that can do better than pages (SQLite: one read transaction and one statement stepped from the
//! first position to the last, on a thread of its own, so reading overlaps with what the caller does with the
//! previous batches) answers [`EventStore::open_scan`]; [`scan`] pages through `read_all` for the others. Either
//! way the caller sees the same [`EventBatch`]es and the same errors as from `read_all`: on a dense log a hole is
//! [`StoreError::Corrupt`] at the missing position, after every event before it.
//!
//! A batch holds at most [`SCAN_BATCH_EVENTS_MAX`](crate::SCAN_BATCH_EVENTS_MAX) events (and about [`SCAN_BATCH_BYTES_MAX`](crate::SCAN_BATCH_BYTES_MAX) bytes of text and
//! payloads, packed into one buffer), and a scan runs at most [`SCAN_BATCHES_AHEAD`](crate::SCAN_BATCHES_AHEAD) batches ahead of its
//! reader, so memory stays bounded whatever the length of the log. Events are read through [`EventView`](crate::EventView)s that
//! borrow from the batch: no allocation per event.

use crate::error::StoreError;
use crate::event::READ_EVENTS_MAX;
use crate::scan_batch::{EventBatch, ScanItem, ScanReceiver};
use crate::store::EventStore;

/// A scan of positions `from..=to` in progress; see the module docs. [`EventScan::next`] answers `None` at the
/// end of the range or of the log, and after an error.
#[derive(Debug)]
pub struct EventScan<'a>(Source<'a>);

enum Source<'a> {
    /// Batches read ahead by the store's own thread.
    Receiving(ScanReceiver),
    /// Pages of `read_all`, read when asked for.
    Paging {
        store: &'a dyn EventStore,
        next: u64,
        to: u64,
        done: bool,
    },
}

impl std::fmt::Debug for Source<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Receiving(_) => formatter.write_str("Receiving"),
            Source::Paging { next, to, done, .. } => formatter
                .debug_struct("Paging")
                .field("next", next)
                .field("to", to)
                .field("done", done)
                .finish_non_exhaustive(),
        }
    }
}

impl EventScan<'_> {
    /// The next batch; `None` once the range is read (or the scan stopped on an error, which came first).
    pub async fn next(&mut self) -> Option<ScanItem> {
        match &mut self.0 {
            Source::Receiving(receiver) => receiver.recv().await,
            Source::Paging { store, next, to, done } => {
                if *done || *next > *to {
                    return None;
                }
                let limit = usize::try_from(*to - *next + 1).map_or(READ_EVENTS_MAX, |left| left.min(READ_EVENTS_MAX));
                let mut page = match store.read_all(*next, limit).await {
                    Ok(page) => page,
                    Err(error) => {
                        *done = true;
                        return Some(Err(error));
                    }
                };
                // On a sparse log the count of positions up to `to` says nothing of the count of events.
                let before = page.len();
                page.retain(|event| event.position <= *to);
                match page.last() {
                    Some(last) if page.len() == before => *next = last.position.saturating_add(1),
                    _ => *done = true,
                }
                if page.is_empty() {
                    return None;
                }
                Some(Ok(EventBatch::from(page)))
            }
        }
    }
}

/// Scans positions `from..=to` of `store` (0 and 1 both mean the start; `u64::MAX` the end of the log): the
/// store's own streaming scan when it has one, pages of `read_all` otherwise.
pub async fn scan(store: &dyn EventStore, from: u64, to: u64) -> Result<EventScan<'_>, StoreError> {
    Ok(match store.open_scan(from, to).await? {
        Some(receiver) => EventScan(Source::Receiving(receiver)),
        None => EventScan(Source::Paging {
            store,
            next: from.max(1),
            to,
            done: false,
        }),
    })
}
