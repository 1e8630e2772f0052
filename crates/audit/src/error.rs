//! The one error type of the audit crate.

use eventlog::StoreError;
use projections::ProjectionError;

/// What can go wrong while verifying, replaying or exporting.
///
/// A *finding* (a tampered event, a read model that differs) is not an error: it is part of the report the
/// caller asked for. These errors mean the audit could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The event store could not be read; retry when it is reachable again.
    #[error("reading the event log: {0}")]
    Store(#[from] StoreError),
    /// The read models could not be read; retry when they are reachable again.
    #[error("reading the read models: {0}")]
    ReadModels(#[from] ProjectionError),
    /// A stored event of a payment stream does not decode or contradicts the folds; the log needs an
    /// operator (run `verify` first).
    #[error("event at position {position} cannot be replayed: {reason}")]
    Replay {
        /// The event's global position.
        position: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A caller's argument is malformed (a digest, a filter); fix the input.
    #[error("{field}: {reason}")]
    BadInput {
        /// The argument, as the caller named it.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// An invalid stream name is the store's refusal ([`eventlog::StoreError::InvalidStreamName`]).
impl From<eventlog::InvalidStreamName> for AuditError {
    fn from(invalid: eventlog::InvalidStreamName) -> Self {
        Self::Store(eventlog::StoreError::from(invalid))
    }
}
