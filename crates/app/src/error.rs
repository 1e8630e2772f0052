//! The one error type of `app`.
//!
//! Refusals are not errors: a refund refused by Antom's rules, a request for
//! an unknown payment (`ORDER_NOT_EXIST`), an inconsistent repeat
//! (`REPEAT_REQ_INCONSISTENT`) come back as answers with Antom's result code
//! ([`crate::ResultInfo`]). An `AppError` means the ledger could not do its
//! job: bad input that never reached the domain, the event store or the read
//! models failing, or a stream too contended to decide on.

use domain::{EventDecodeError, FoldError, InputError, RefundRequestId};
use eventlog::StoreError;

/// What went wrong while running a command, the saga, the worker or a notification.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Input that does not make a valid request; the message names the field.
    ///
    /// Answer the client with the message; retrying the same input fails the same way.
    #[error(transparent)]
    Input(#[from] InputError),

    /// The event store failed. Nothing was decided on a failed read; for a failed append the
    /// outcome may be unknown.
    ///
    /// Retry the whole request: every command is idempotent (a repeated refundRequestId returns the
    /// refund as it stands), and an open refund is settled by the worker.
    #[error("event store: {0}")]
    Store(#[from] StoreError),

    /// A stored event of a payment stream does not decode (unknown type, newer version, bad data).
    ///
    /// Do not retry and do not skip it: stop, alert an operator, upgrade or run `verify`.
    #[error("stored event at position {position} does not decode: {source}")]
    Decode {
        /// The event's global position.
        position: u64,
        /// Why it does not decode.
        #[source]
        source: EventDecodeError,
    },

    /// A stored event of a payment stream decodes but does not fold: its arithmetic does not fit or it breaks
    /// the balance invariant (the log holds what the ledger never decides, or was changed behind its back).
    ///
    /// Do not retry and do not skip it: stop, alert an operator, run `verify`.
    #[error("stored event at position {position} does not fold: {source}")]
    Fold {
        /// The position of the last event folded before (or of) the one that failed.
        position: u64,
        /// What broke.
        #[source]
        source: FoldError,
    },
    /// Too many commands already wait on this payment in this instance.
    ///
    /// Retry after a moment (the same refundRequestId is safe to repeat); nothing was decided.
    #[error("stream {stream}: {waiting_max} commands are already waiting on it")]
    Busy {
        /// The payment's stream.
        stream: String,
        /// The bound that was reached.
        waiting_max: usize,
    },
    /// The payment's queue stopped before answering (a bug made its task end); the command may or may not
    /// have been recorded.
    ///
    /// Retry the request: every command is idempotent.
    #[error("stream {stream}: its command queue stopped before answering")]
    Interrupted {
        /// The payment's stream.
        stream: String,
    },
    /// The read models (projections) failed while the ledger looked a refund up or listed open refunds.
    ///
    /// Retry later; the log is unaffected.
    #[error("read models failed during {operation}: {source}")]
    ReadModels {
        /// What the ledger asked for, e.g. `"look up a refund"`.
        operation: &'static str,
        /// The projections' error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The payment's stream changed under every one of the ledger's attempts to decide on it.
    ///
    /// Nothing was written by this request; retry it (the same refundRequestId is safe to repeat).
    #[error("stream {stream}: still changing after {attempts} attempts to decide")]
    Contention {
        /// The stream decided on.
        stream: String,
        /// Attempts made.
        attempts: usize,
    },

    /// A notification or settle request names a refundRequestId the ledger does not hold.
    ///
    /// For a notification, answer non-200 so Antom resends it (the read models may have lagged);
    /// repeated failures mean Antom knows a refund the ledger never requested: alert an operator.
    #[error("refundRequestId: {refund_request_id} is not a refund known to the ledger")]
    UnknownRefund {
        /// The refund asked about.
        refund_request_id: RefundRequestId,
    },

    /// An acknowledgement names an anomaly the ledger never recorded (no such position, refund or number).
    ///
    /// Nothing was written; list the anomalies (`anomalies` query) and acknowledge one of them.
    #[error("{anomaly}: no such anomaly was recorded")]
    UnknownAnomaly {
        /// The anomaly as the caller named it.
        anomaly: String,
    },

    /// The anomaly is already acknowledged; an anomaly is acknowledged once.
    ///
    /// Nothing was written; the first acknowledgement and its note stand.
    #[error("{anomaly}: already acknowledged")]
    AnomalyAlreadyAcknowledged {
        /// The anomaly as the caller named it.
        anomaly: String,
    },
}

/// An invalid stream name is the store's refusal ([`eventlog::StoreError::InvalidStreamName`]).
impl From<eventlog::InvalidStreamName> for AppError {
    fn from(invalid: eventlog::InvalidStreamName) -> Self {
        Self::Store(eventlog::StoreError::from(invalid))
    }
}
