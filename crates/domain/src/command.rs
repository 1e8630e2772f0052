//! What the aggregate is asked to do, and how it says no.

use time::OffsetDateTime;

use crate::event::{ChargebackResolution, OutcomeSource};
use crate::id::{CaptureId, DisputeId, PaymentId, PaymentMethodType, RefundId, RefundRequestId};
use crate::money::Money;
use crate::result_code::ResultCode;

/// Commands the aggregate decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentCommand {
    RecordPayment {
        payment_id: PaymentId,
        payment_amount: Money,
        payment_method_type: PaymentMethodType,
        payment_time: OffsetDateTime,
        /// `None`: the policy of the payment method decides.
        capture_required: Option<bool>,
    },
    CapturePayment {
        payment_id: PaymentId,
        capture_id: Option<CaptureId>,
        capture_amount: Money,
        capture_time: OffsetDateTime,
    },
    OpenChargeback {
        payment_id: PaymentId,
        dispute_id: DisputeId,
        dispute_amount: Money,
    },
    ResolveChargeback {
        payment_id: PaymentId,
        dispute_id: DisputeId,
        resolution: ChargebackResolution,
    },
    RequestRefund {
        refund_request_id: RefundRequestId,
        payment_id: PaymentId,
        refund_amount: Money,
        refund_reason: Option<String>,
    },
    MarkRefundProcessing {
        refund_request_id: RefundRequestId,
        reason: String,
    },
    ConfirmRefundSucceeded {
        refund_request_id: RefundRequestId,
        refund_id: RefundId,
        refund_time: OffsetDateTime,
        source: OutcomeSource,
    },
    ConfirmRefundFailed {
        refund_request_id: RefundRequestId,
        result_code: ResultCode,
        result_message: String,
        source: OutcomeSource,
    },
    /// An operator acknowledges anomaly number `anomaly` (1-based) of a refund with a note.
    AcknowledgeAnomaly {
        refund_request_id: RefundRequestId,
        anomaly: u32,
        note: String,
    },
    /// Antom reports the refund reversed: recorded for operators as an anomaly, the refund's state unchanged.
    ReportRefundReversed {
        refund_request_id: RefundRequestId,
        source: OutcomeSource,
    },
    /// Antom's report lists the refund as refunded without its refundId: against FAILED or REJECTED an anomaly
    /// for operators; nothing otherwise (SUCCEEDED agrees, and an open refund is settled by inquiry, which
    /// answers the refundId).
    ReportRefunded {
        refund_request_id: RefundRequestId,
        source: OutcomeSource,
    },
}

/// A command refused without any event: the caller answers with the code and
/// changes nothing. (Refund requests refused by the rules are *recorded* as
/// `RefundRejected` instead, so a retry sees the same answer.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Rejection {
    /// Antom's result code for the refusal.
    pub code: ResultCode,
    /// A message for the caller naming the field or id.
    pub message: String,
}

impl Rejection {
    pub(crate) fn new(code: ResultCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}
