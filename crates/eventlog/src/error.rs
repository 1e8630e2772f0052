//! The one error type of the event log.
//!
//! Variants are grouped by what a caller can do about them: retry after reloading (`Conflict`), treat as
//! already done (`DuplicateEventId` on a retried batch), fix the input (the validation variants), or give up and
//! report (`Backend`, `Corrupt`, `Closed`). Errors are `Clone` because the group-commit writer answers every
//! request of a failed transaction with the same cause.

use std::sync::Arc;

use uuid::Uuid;

use crate::stream::{ExpectedRevision, InvalidStreamName, StreamName};

/// The error type of every [`EventStore`](crate::EventStore) call.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stream is not at the revision the append expected; nothing of the batch was written.
    ///
    /// Handle by reloading the stream, deciding again against the new state and appending with the new revision.
    #[error("stream {stream}: expected revision {expected}, actual revision {}", describe_actual(*.actual))]
    Conflict {
        /// The stream appended to.
        stream: StreamName,
        /// What the caller expected.
        expected: ExpectedRevision,
        /// The stream's last revision when the append was decided; `None` when the stream does not exist.
        actual: Option<u64>,
    },

    /// An event id of the batch is already stored (in any stream) or appears twice in the batch; nothing of the
    /// batch was written.
    ///
    /// When retrying a batch whose first outcome was unknown (`Backend`, `Closed`), this means the first attempt
    /// was stored: read it back. Otherwise it is a caller bug: event ids must be fresh.
    #[error("event_id {event_id} is already stored or repeated in the batch")]
    DuplicateEventId {
        /// The first offending event id.
        event_id: Uuid,
    },

    /// A stream name failed validation. Fix the input; retrying the same name fails the same way.
    #[error("stream name {name:?} is invalid: {reason}")]
    InvalidStreamName {
        /// The rejected name, cut to its first 64 bytes.
        name: String,
        /// Which rule it broke.
        reason: &'static str,
    },

    /// A store URL does not parse (unknown scheme, no host, a bad parameter). Fix the configuration; the
    /// reason never repeats the URL, which may hold a password.
    #[error("store url is invalid: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },

    /// An append carried no events. Fix the caller: there is nothing to append.
    #[error("append to stream {stream} has no events")]
    EmptyBatch {
        /// The stream appended to.
        stream: StreamName,
    },

    /// An append carried more than [`BATCH_EVENTS_MAX`](crate::BATCH_EVENTS_MAX) events. Split the batch only if
    /// the events need not be atomic; otherwise the design of the stream is wrong.
    #[error("append to stream {stream} has {count} events, max {max}")]
    BatchTooLarge {
        /// The stream appended to.
        stream: StreamName,
        /// Events in the batch.
        count: usize,
        /// The limit.
        max: usize,
    },

    /// The payloads of one append add up to more than
    /// [`BATCH_PAYLOAD_BYTES_MAX`](crate::BATCH_PAYLOAD_BYTES_MAX). Fix the caller as for `BatchTooLarge`.
    #[error("append to stream {stream} carries {bytes} payload bytes, max {max}")]
    BatchPayloadTooLarge {
        /// The stream appended to.
        stream: StreamName,
        /// Total payload bytes of the batch.
        bytes: usize,
        /// The limit.
        max: usize,
    },

    /// One event's payload exceeds [`PAYLOAD_BYTES_MAX`](crate::PAYLOAD_BYTES_MAX). Fix the input: events
    /// describe facts, large documents belong elsewhere.
    #[error("event {event_id}: payload is {size} bytes, max {max}")]
    PayloadTooLarge {
        /// The offending event.
        event_id: Uuid,
        /// Its payload size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },

    /// An event's `event_type` or `actor` is empty, too long or holds control characters. Fix the input.
    #[error("event {event_id}: field {field} is invalid: {reason}")]
    InvalidEventField {
        /// The offending event.
        event_id: Uuid,
        /// `event_type` or `actor`.
        field: &'static str,
        /// Which rule it broke.
        reason: &'static str,
    },

    /// The database or the connection to it failed.
    ///
    /// Reads may be retried. For an append the outcome is unknown when the failure hit the commit: retry the same
    /// batch with the same event ids, and read a `DuplicateEventId` on the retry as "the first attempt was stored".
    #[error("event store backend failed during {operation}")]
    Backend {
        /// What the store was doing, e.g. `"commit group"`.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },

    /// A stored event does not decode, or the log breaks its own invariants (a gap in positions or revisions).
    ///
    /// Do not retry and do not skip: stop processing, alert an operator and run `verify`.
    #[error("stored event at position {position} is corrupt: {reason}")]
    Corrupt {
        /// The position of the first bad event (or where a missing one should be).
        position: u64,
        /// What is wrong with it.
        reason: String,
    },

    /// The database's eventlog schema is newer than this build knows: a newer release migrated it.
    ///
    /// Do not write with this build; deploy the newer release (or restore a backup taken before the migration).
    #[error("eventlog schema version {found} is newer than this build's {known}")]
    SchemaTooNew {
        /// The version recorded in the database.
        found: i64,
        /// The newest version this build applies.
        known: i64,
    },

    /// The store has shut down (its writer stopped). An append in flight may or may not have been stored:
    /// handle like an unknown `Backend` outcome, on a freshly opened store.
    #[error("event store is closed")]
    Closed,
}

impl StoreError {
    /// Wraps a driver error raised while the store was doing `operation`.
    pub(crate) fn backend(operation: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend {
            operation,
            source: Arc::new(source),
        }
    }

    /// A `Corrupt` error for the event at `position`.
    pub(crate) fn corrupt(position: u64, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            position,
            reason: reason.into(),
        }
    }
}

fn describe_actual(actual: Option<u64>) -> String {
    match actual {
        Some(revision) => revision.to_string(),
        None => "none (no stream)".to_owned(),
    }
}

impl From<InvalidStreamName> for StoreError {
    fn from(invalid: InvalidStreamName) -> Self {
        StoreError::InvalidStreamName {
            name: invalid.name,
            reason: invalid.reason,
        }
    }
}
