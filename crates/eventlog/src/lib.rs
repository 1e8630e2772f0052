//! eventlog: the refund ledger's append-only, hash-chained event log.
//!
//! Every fact the ledger learns is an event appended to a stream (`payment-{paymentId}`) with an expected
//! revision; the aggregate that decided it relies on the [`StreamName`]'s revision check for its invariants
//! under concurrency, projections rely on the one global order to fold the whole log, and auditors rely on the
//! hash chain to prove nothing was changed. This crate owns those three guarantees and nothing else: payloads
//! are opaque bytes, and it knows no domain type.
//!
//! - [`EventStore`] states the guarantees; [`SqliteStore`] (embedded, one file) and [`PostgresStore`]
//!   (production, several server instances on one database) implement them.
//! - Global positions are dense and become visible in order (docs/adr/001-gap-free-ordering.md), so a
//!   [`EventSubscription`] can tail the log by position without ever missing a late commit.
//! - [`chain`] defines the canonical encoding and hash (docs/adr/002-hash-chain.md).
//!
//! Architecture invariants: only this crate writes the event tables; every append runs in one transaction that
//! holds the log's single write lock from reading the head to commit.

#![warn(missing_docs)]

mod error;
mod event;
mod group_commit;
mod notify;
mod postgres;
mod sqlite;
mod store;
mod stream;
mod subscription;

pub mod chain;

pub use error::StoreError;
pub use event::{
    ACTOR_BYTES_MAX, AppendOutcome, BATCH_EVENTS_MAX, BATCH_PAYLOAD_BYTES_MAX, EVENT_TYPE_BYTES_MAX, ExpectedRevision,
    Head, NewEvent, PAYLOAD_BYTES_MAX, READ_EVENTS_MAX, RecordedEvent,
};
pub use notify::HEAD_POLL_INTERVAL_MS;
pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::SqliteStore;
pub use store::EventStore;
pub use stream::{STREAM_NAME_BYTES_MAX, StreamName};
pub use subscription::{EventSubscription, SUBSCRIPTION_BATCH_EVENTS_MAX, SUBSCRIPTION_BUFFER_EVENTS_MAX, catch_up};
