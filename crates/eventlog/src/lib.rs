//! eventlog: the refund ledger's append-only, hash-chained event log.
//!
//! Every fact the ledger learns is an event appended to a stream (`payment-{paymentId}`) with an expected
//! revision. Three guarantees live here and nowhere else: the revision check that lets an aggregate decide
//! against the state it loaded even with many server instances; one global order, visible in order (dense on
//! SQLite and PostgreSQL), that projections and subscriptions can tail by position without missing a late
//! commit; and the hash chain that lets an auditor prove nothing was changed. Payloads are opaque bytes; this crate knows no domain type.
//!
//! - [`EventStore`] states the guarantees; [`SqliteStore`] (embedded, one file) and [`PostgresStore`]
//!   (production, several server instances on one database) implement them, and so does `KurrentDbStore`
//!   (feature `kurrentdb`: the log in KurrentDB, sparse positions, stream chains and seals; see [`kurrentdb`]
//!   and [`LogLayout`]).
//! - Positions become visible in order (docs/adr/001-gap-free-ordering.md): on SQLite and PostgreSQL every
//!   append transaction holds the log's one write lock from reading the head to commit, and a per-handle
//!   writer commits concurrent appends in groups to pay one fsync for many; KurrentDB orders appends itself.
//! - [`EventSubscription`] tails the log and refuses to skip a gap; on a handle that offers
//!   [`EventStore::local_commits`] it takes that handle's own commits from memory instead of reading them back.
//!   [`scan()`] reads a range of the log once, in order, as compact batches (one read transaction on SQLite,
//!   read ahead on a thread of its own).
//! - [`chain`] defines the canonical encoding and hash (docs/adr/002-hash-chain.md); [`seal`] chains a sparse
//!   log's global order after the fact (docs/adr/008-kurrentdb-tamper-evidence.md).
//!
//! Architecture invariants: only this crate reads or writes the `eventlog_*` tables and the KurrentDB
//! namespace's streams; no caller ever holds the write lock; the store never interprets a payload.

#![warn(missing_docs)]

mod error;
mod event;
mod group_commit;
pub mod kurrentdb;
mod local_commits;
#[cfg(feature = "test-support")]
mod memory;
mod notify;
mod postgres;
mod scan;
mod scan_batch;
#[cfg(any(feature = "kurrentdb", feature = "test-support"))]
mod sparse;
mod sqlite;
mod store;
mod stream;
mod subscription;

pub mod chain;
pub mod seal;

pub use error::StoreError;
pub use event::{
    ACTOR_BYTES_MAX, AppendOutcome, BATCH_EVENTS_MAX, BATCH_PAYLOAD_BYTES_MAX, EVENT_TYPE_BYTES_MAX, Head, NewEvent,
    PAYLOAD_BYTES_MAX, READ_EVENTS_MAX, RecordedEvent,
};
#[cfg(feature = "kurrentdb")]
pub use kurrentdb::KurrentDbStore;
pub use local_commits::{LOCAL_COMMITS_KEPT, LocalCommit};
#[cfg(feature = "test-support")]
pub use memory::SparseMemoryStore;
pub use notify::HEAD_POLL_INTERVAL_MS;
pub use postgres::{PIPELINED_GROUPS_DEFAULT, PostgresOptions, PostgresStore};
pub use scan::{EventScan, scan};
pub use scan_batch::{
    EventBatch, EventView, SCAN_BATCH_BYTES_MAX, SCAN_BATCH_EVENTS_MAX, SCAN_BATCHES_AHEAD, ScanItem, ScanReceiver,
};
pub use sqlite::SqliteStore;
pub use store::{EventStore, LogLayout};
pub use stream::{ExpectedRevision, InvalidStreamName, STREAM_NAME_BYTES_MAX, StreamName};
pub use subscription::{EventSubscription, SUBSCRIPTION_BATCH_EVENTS_MAX, SUBSCRIPTION_BUFFER_EVENTS_MAX, catch_up};
