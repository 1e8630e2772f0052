//! What the ledger's command methods take: validated domain values only, so
//! parsing (and its field-naming errors) happens at the edge.

use domain::{CaptureId, ChargebackResolution, DisputeId, Money, PaymentId, PaymentMethodType, RefundRequestId};
use time::OffsetDateTime;

/// A payment known to the ledger (from Antom's payment notification, an import or a mutation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPaymentInput {
    pub payment_id: PaymentId,
    pub payment_amount: Money,
    pub payment_method_type: PaymentMethodType,
    pub payment_time: OffsetDateTime,
    /// `None`: the policy of the payment method decides.
    pub capture_required: Option<bool>,
}

/// A capture of a payment that needs one; only captured money is refundable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturePaymentInput {
    pub payment_id: PaymentId,
    pub capture_id: Option<CaptureId>,
    pub capture_amount: Money,
    pub capture_time: OffsetDateTime,
}

/// A dispute opened on a payment; refunds are refused until it is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenChargebackInput {
    pub payment_id: PaymentId,
    pub dispute_id: DisputeId,
    pub dispute_amount: Money,
}

/// A dispute's liability determined (or the dispute withdrawn).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveChargebackInput {
    pub payment_id: PaymentId,
    pub dispute_id: DisputeId,
    pub resolution: ChargebackResolution,
}

/// A merchant's refund request, named as Antom names its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundInput {
    /// The merchant's idempotency key, unique across all payments.
    pub refund_request_id: RefundRequestId,
    pub payment_id: PaymentId,
    pub refund_amount: Money,
    pub refund_reason: Option<String>,
}
