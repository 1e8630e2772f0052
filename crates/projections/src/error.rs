//! The one error type of `projections`.
//!
//! Variants are grouped by what a caller can do about them: fix the request (`InvalidCursor`,
//! `PageSizeTooLarge`, `InvalidStoreUrl`), retry later (`Backend`, `Store` with a backend cause,
//! `CheckpointMoved`), or stop and call an operator (`Decode`, `Inconsistent`, `CorruptRow`). The runner
//! applies the same split: it retries the first kind of failure after a pause and stops on the second, because
//! skipping an event would silently corrupt every balance after it.

use std::sync::Arc;

use domain::EventDecodeError;

/// The error of every read-model query and of the projection runner.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// A paging cursor is not one this crate issued (bad base64, wrong shape, or a cursor of another list).
    ///
    /// Answer the client with a bad-request error naming the `after` argument; retrying the same cursor fails
    /// the same way.
    #[error("cursor: {reason}")]
    InvalidCursor {
        /// What is wrong with it.
        reason: String,
    },

    /// A page or work list asked for more rows than [`PAGE_SIZE_MAX`](crate::PAGE_SIZE_MAX).
    ///
    /// Answer the client with a bad-request error naming the `first` argument.
    #[error("first: {requested} rows asked, at most {max} per page")]
    PageSizeTooLarge {
        /// Rows asked for.
        requested: usize,
        /// The limit.
        max: usize,
    },

    /// The store URL names no backend this crate knows, or does not parse.
    ///
    /// A configuration error: fix the URL (`sqlite://PATH` or `postgres://...`) and restart.
    #[error("store url: {reason}")]
    InvalidStoreUrl {
        /// What is wrong with it (never the URL itself, which may hold a password).
        reason: String,
    },

    /// A stored event of a `payment-*` stream does not decode into a [`domain::PaymentEvent`].
    ///
    /// The runner stops here and never skips it: upgrade the binary (a newer event type or version) or register
    /// the missing upcaster, then restart; the runner resumes at this position.
    #[error("event at position {position} ({event_type}) does not decode")]
    Decode {
        /// Global position of the event.
        position: u64,
        /// Its stored type.
        event_type: String,
        /// Why it does not decode.
        #[source]
        source: EventDecodeError,
    },

    /// The log contradicts an invariant the folds rely on (a `refundRequestId` used by two payments, an event
    /// naming another payment than its stream, a position out of order). The ledger never writes such a log:
    /// the refund saga gives every `RefundRequested`/`RefundRejected` an event id derived from its
    /// `refundRequestId`, so the store itself refuses a second use of the id on any payment.
    ///
    /// The runner stops: alert an operator and run `verify`; applying the event anyway would corrupt the read
    /// models.
    #[error("event at position {position} contradicts the read models: {reason}")]
    Inconsistent {
        /// Global position of the offending event.
        position: u64,
        /// Which invariant it breaks.
        reason: String,
    },

    /// Another runner applied events since this one read the checkpoint; nothing of the batch was written.
    ///
    /// The runner handles it by resubscribing from the stored checkpoint; other callers never see it.
    #[error("projection checkpoint moved: expected {expected}, found {actual}")]
    CheckpointMoved {
        /// The checkpoint the batch was folded on.
        expected: u64,
        /// The checkpoint stored.
        actual: u64,
    },

    /// A stored read-model row does not parse back (an unknown currency code, a negative amount, a time out of
    /// range). Only a foreign writer or a bug can cause it.
    ///
    /// Rebuild the read models from position 0 (drop the `projection_*` tables or the read-model file).
    #[error("read model row {table}/{key} is corrupt: {reason}")]
    CorruptRow {
        /// The table.
        table: &'static str,
        /// The row's key.
        key: String,
        /// What does not parse.
        reason: String,
    },

    /// The read-model database or the connection to it failed.
    ///
    /// Queries may be retried. For the runner nothing of the batch was committed, or all of it with its
    /// checkpoint; it retries after a pause.
    #[error("read model backend failed during {operation}")]
    Backend {
        /// What the read models were doing, e.g. `"apply batch"`.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },

    /// Reading the event log failed.
    ///
    /// [`eventlog::StoreError::Corrupt`] stops the runner (alert an operator, run `verify`); other causes are
    /// retried after a pause.
    #[error("reading the event log failed")]
    Store(#[from] eventlog::StoreError),

    /// The runner's task panicked or was cancelled; the read models hold everything up to their checkpoint.
    ///
    /// Restart the runner; it resumes at the checkpoint.
    #[error("projection runner ended abnormally: {reason}")]
    RunnerAborted {
        /// The panic or cancellation.
        reason: String,
    },

    /// A rebuild stopped before the end of the log (its reader failed or went away); nothing was swapped in,
    /// the read models are as they were.
    ///
    /// Run the rebuild again.
    #[error("read-model rebuild stopped before the end of the log: {reason}")]
    RebuildAborted {
        /// Why it stopped.
        reason: String,
    },
}

impl ProjectionError {
    /// Wraps a driver error raised while the read models were doing `operation`.
    pub(crate) fn backend(operation: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend {
            operation,
            source: Arc::new(source),
        }
    }

    /// Whether retrying later may succeed: the runner pauses and retries these, and stops on all others.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Backend { .. } | Self::CheckpointMoved { .. } => true,
            Self::Store(store) => !matches!(store, eventlog::StoreError::Corrupt { .. }),
            Self::InvalidCursor { .. }
            | Self::PageSizeTooLarge { .. }
            | Self::InvalidStoreUrl { .. }
            | Self::Decode { .. }
            | Self::Inconsistent { .. }
            | Self::CorruptRow { .. }
            | Self::RunnerAborted { .. }
            | Self::RebuildAborted { .. } => false,
        }
    }
}
