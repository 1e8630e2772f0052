//! The `EventStore` trait: the guarantees every backend gives, stated without its mechanism.
//!
//! The trait is written so that an EventStoreDB/KurrentDB backend can implement it too: per-stream expected
//! revisions, one global position, catch-up subscriptions and no transaction across streams. It therefore
//! promises outcomes ("an event id already stored anywhere is refused") and never names an index, a lock or a
//! table. It is object safe and used as `Arc<dyn EventStore>`, hence `async_trait`.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::error::StoreError;
use crate::event::{AppendOutcome, Head, NewEvent, RecordedEvent};
use crate::local_commits::LocalCommit;
use crate::scan_batch::ScanReceiver;
use crate::stream::ExpectedRevision;
use crate::stream::StreamName;

/// An append-only log of events, grouped in streams, in one global order.
///
/// Guarantees every implementation gives:
/// - An append is atomic: all its events are stored, consecutively in their stream and in the global order,
///   or none is.
/// - An append is decided against the stream's revision at the moment it is written: if `expected` does not
///   hold, it is refused with [`StoreError::Conflict`] carrying the actual revision.
/// - An event id already stored anywhere in the log, or repeated in the batch, is refused with
///   [`StoreError::DuplicateEventId`], and nothing of the batch is written.
/// - Global positions strictly increase in commit order and become visible in order: once a reader has seen
///   position `n`, every event below `n` is visible too, and no new event ever gets a position `<= n`. The
///   SQLite and PostgreSQL backends also make them dense (1, 2, 3, ..); KurrentDB's are its log offsets, with
///   holes. [`EventStore::layout`] says which, and readers that check density (the default
///   [`crate::catch_up`], the projection runner, `verify`) check it only where it is promised.
/// - Every event is hash-chained (see [`crate::chain`]): to the previous event of the log on a
///   [`LogLayout::DenseChained`] store, to the previous event of its stream on a [`LogLayout::SparseSealed`]
///   one, whose global order is chained after the fact by seals (see [`crate::seal`]).
/// - A successful append is durable when it returns.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` if its revision satisfies `expected`, and returns where they landed.
    ///
    /// Invalid input (beyond [`BATCH_EVENTS_MAX`](crate::BATCH_EVENTS_MAX),
    /// [`PAYLOAD_BYTES_MAX`](crate::PAYLOAD_BYTES_MAX) and the other limits; see [`StoreError`]) is refused
    /// before anything is written.
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Reads `stream` from `from_revision` on, in revision order: at most `limit` events (and at most
    /// [`READ_EVENTS_MAX`](crate::READ_EVENTS_MAX)). An unknown stream reads as empty; so does the end.
    async fn read_stream(
        &self,
        stream: &StreamName,
        from_revision: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Reads the whole log from `from_position` on (inclusive; 0 and 1 both mean the start), in position order:
    /// at most `limit` events (and at most [`READ_EVENTS_MAX`](crate::READ_EVENTS_MAX)). An empty result means
    /// `from_position` is past the head; a shorter one does not mean the end.
    async fn read_all(&self, from_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError>;

    /// A streaming read of positions `from_position..=to_position`, in position order, for readers of the whole
    /// log: `None` when this store has none, and [`crate::scan()`] then pages through [`EventStore::read_all`]
    /// (the default). What it yields obeys `read_all`'s rules (dense positions where promised, a hole or an
    /// unreadable event as [`StoreError::Corrupt`] after every event before it).
    async fn open_scan(&self, from_position: u64, to_position: u64) -> Result<Option<ScanReceiver>, StoreError> {
        let _ = (from_position, to_position);
        Ok(None)
    }

    /// The last committed event's position and hash ([`Head::EMPTY`] for an empty log).
    async fn head(&self) -> Result<Head, StoreError>;

    /// Waits until the head has moved past `position` or `timeout` has passed, and returns the head then.
    ///
    /// Appends through this handle wake the waiter at once; appends by other handles or processes on the same
    /// database are noticed within a bounded poll interval. The caller checks `head.position > position`: a
    /// timeout is not an error.
    async fn wait_for_position_after(&self, position: u64, timeout: Duration) -> Result<Head, StoreError>;

    /// A feed of the events this handle commits, each commit as it is made (see [`LocalCommit`]); `None` (the
    /// default) where the backend offers none.
    ///
    /// A receiver taken before a read of the log gets every commit of this handle made after that read, in
    /// commit order, until it falls more than a few commits behind
    /// ([`broadcast::error::RecvError::Lagged`]). Commits of other handles and processes never come through
    /// it, and a large commit comes without its events, so a reader checks positions and reads the log for
    /// whatever the feed does not hold, as [`crate::catch_up`] does. Wrappers should pass it through.
    fn local_commits(&self) -> Option<broadcast::Receiver<LocalCommit>> {
        None
    }

    /// How this store numbers positions and what its hash chain covers. SQLite and PostgreSQL:
    /// [`LogLayout::DenseChained`] (the default); KurrentDB: [`LogLayout::SparseSealed`].
    fn layout(&self) -> LogLayout {
        LogLayout::DenseChained
    }
}

/// The two shapes a log can have; readers that check positions or the chain ask [`EventStore::layout`].
///
/// The shape follows from how a backend orders appends: a store that takes one global write lock for every
/// append (SQLite, PostgreSQL; docs/adr/001) can number positions densely and chain every event to the one
/// before it; a store that orders appends itself without such a lock (KurrentDB; docs/adr/006 and 008) has
/// positions with holes, chains each stream at append time, and chains the global order afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogLayout {
    /// Positions 1, 2, 3, .. without a hole; `prev_hash` is the hash of the previous event of the log, so
    /// [`crate::chain::ChainVerifier`] checks the whole log.
    DenseChained,
    /// Positions increase with holes; `prev_hash` is the hash of the previous event of the same stream
    /// ([`crate::chain::stream_event_hash`]), and a sealer chains the global order, in batches, into the
    /// stream [`crate::seal::SEAL_STREAM`] after the fact ([`crate::seal::SealVerifier`] checks both).
    SparseSealed,
}

impl LogLayout {
    /// Whether positions are promised dense (1, 2, 3, ..).
    pub fn positions_dense(self) -> bool {
        matches!(self, Self::DenseChained)
    }
}
