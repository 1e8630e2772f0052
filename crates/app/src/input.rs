//! What the ledger's command methods take: validated domain values only, so
//! parsing (and its field-naming errors) happens at the edge.

use domain::{CaptureId, ChargebackResolution, DisputeId, Money, PaymentId, PaymentMethodType, RefundRequestId};
use time::OffsetDateTime;

/// A payment known to the ledger (from Antom's payment notification, an import or a mutation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPaymentInput {
    /// Antom's id of the payment.
    pub payment_id: PaymentId,
    /// The amount paid.
    pub payment_amount: Money,
    /// Antom's `paymentMethodType` (`CARD`, `ALIPAY_CN`, ...): picks the refund policy.
    pub payment_method_type: PaymentMethodType,
    /// When it was paid: the refund window starts here.
    pub payment_time: OffsetDateTime,
    /// `None`: the policy of the payment method decides.
    pub capture_required: Option<bool>,
}

/// A capture of a payment that needs one; only captured money is refundable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturePaymentInput {
    /// The payment captured.
    pub payment_id: PaymentId,
    /// Antom's id of the capture, when known.
    pub capture_id: Option<CaptureId>,
    /// The captured amount (at most the payment amount).
    pub capture_amount: Money,
    /// When it was captured.
    pub capture_time: OffsetDateTime,
}

/// A dispute opened on a payment; refunds are refused until it is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenChargebackInput {
    /// The disputed payment.
    pub payment_id: PaymentId,
    /// Antom's id of the dispute.
    pub dispute_id: DisputeId,
    /// The disputed amount.
    pub dispute_amount: Money,
}

/// A dispute's liability determined (or the dispute withdrawn).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveChargebackInput {
    /// The disputed payment.
    pub payment_id: PaymentId,
    /// Antom's id of the dispute.
    pub dispute_id: DisputeId,
    /// Who carries the dispute.
    pub resolution: ChargebackResolution,
}

/// A merchant's refund request, named as Antom names its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundInput {
    /// The merchant's idempotency key, unique across all payments.
    pub refund_request_id: RefundRequestId,
    /// The payment refunded.
    pub payment_id: PaymentId,
    /// The amount to refund, in the payment's currency.
    pub refund_amount: Money,
    /// Why, at most 256 characters (sent to Antom).
    pub refund_reason: Option<String>,
}
