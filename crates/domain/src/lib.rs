//! The refund ledger's pure domain: money, identifiers, Antom result codes,
//! the stored events, the `Payment` aggregate and the refund policy.
//!
//! Architecture invariant: this crate does no IO. It reads no clock (the
//! current time is passed in), opens no file or socket and knows nothing of
//! GraphQL, SQL or Antom's HTTP.

mod booking;
mod command;
mod decide;
mod error;
mod event;
mod evolve;
mod id;
mod money;
mod policy;
mod reconciliation;
mod result_code;
mod state;
mod status;
mod text;

pub use booking::{
    LegAccount, SettlementLeg, UnbookableSettlement, settlement_date, settlement_date_of, settlement_legs,
};
pub use command::{PaymentCommand, Rejection};
pub use decide::{
    ANOMALY_ALREADY_ACKNOWLEDGED, ANOMALY_NOT_FOUND, PAYMENT_TIME_SKEW_MAX, REFUND_REASON_LEN_MAX, anomaly_note, decide,
};
pub use error::InputError;
pub use event::{
    ANOMALY_NOTE_CHARS_MAX, AnomalyAcknowledged, ChargebackOpened, ChargebackResolution, ChargebackResolved,
    EVENT_TYPES, EventDecodeError, OutcomeSource, PaymentCaptured, PaymentEvent, PaymentRecorded, RefundFailed,
    RefundOutcomeAnomaly, RefundProcessing, RefundRejected, RefundRequested, RefundSucceeded, ReportedOutcome,
    StoredEventData, Upcaster,
};
pub use evolve::{FoldError, evolve};
pub use id::{CaptureId, DisputeId, ID_LEN_MAX, PaymentId, PaymentMethodType, RefundId, RefundRequestId};
pub use money::{AMOUNT_DIGITS_MAX, Currency, MINOR_UNITS_MAX, Money};
pub use policy::{MethodPolicy, Policy, REFUND_WINDOW_DAYS_DEFAULT};
pub use reconciliation::{
    FINDINGS_PER_CHUNK_MAX, RECONCILIATION_EVENT_TYPES, RECONCILIATION_STREAM_PREFIX, ReconciledFile,
    ReconciliationEvent, ReconciliationFindingAcknowledged, ReconciliationFindingsRecorded, ReconciliationRecorded,
    RecordedFee, RecordedFinding, RecordedQuote, RecordedSettlement, ReportedAmount, reconciliation_stream_name,
};
pub use result_code::{ResultCode, ResultStatus};
pub use state::{Chargeback, Payment, PaymentState, Refund, refundable_amount};
pub use status::RefundStatus;

/// The stream of a payment: `payment-{paymentId}`.
pub fn payment_stream_name(payment_id: &PaymentId) -> String {
    format!("payment-{payment_id}")
}
