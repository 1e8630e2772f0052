//! The state a payment stream folds into: the payment, its refunds and disputes, and the balances the
//! invariant is stated on.
//!
//! A folded [`Payment`] is cloned wherever a decision or an answer needs it (per-payment queues, caches,
//! answers), so the refunds live in a persistent map: a clone shares them and costs the same however many
//! refunds the payment has had.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use imbl::OrdMap;
use time::OffsetDateTime;

use crate::event::{ChargebackResolution, ReportedOutcome};
use crate::id::{CaptureId, DisputeId, PaymentId, PaymentMethodType, RefundId, RefundRequestId};
use crate::money::Money;
use crate::result_code::ResultCode;
use crate::status::RefundStatus;

/// One refund of a payment as the ledger knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub refund_request_id: RefundRequestId,
    pub refund_amount: Money,
    pub refund_reason: Option<String>,
    pub status: RefundStatus,
    pub requested_at: OffsetDateTime,
    pub refund_id: Option<RefundId>,
    /// When the refund reached a terminal state.
    pub settled_at: Option<OffsetDateTime>,
    pub result_code: Option<ResultCode>,
    pub result_message: Option<String>,
    /// Contradicting reports recorded for operators, in order: the first is anomaly 1.
    pub anomalies: Vec<ReportedOutcome>,
    /// The anomalies (by their number, 1-based) an operator acknowledged.
    pub anomalies_acknowledged: BTreeSet<u32>,
}

/// A dispute on the payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chargeback {
    pub dispute_amount: Money,
    /// `None` while the liability is undetermined.
    pub resolution: Option<ChargebackResolution>,
}

/// The state of a known payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentState {
    pub payment_id: PaymentId,
    pub payment_amount: Money,
    pub payment_method_type: PaymentMethodType,
    pub payment_time: OffsetDateTime,
    pub capture_required: bool,
    pub capture_id: Option<CaptureId>,
    pub capture_time: Option<OffsetDateTime>,
    /// Captured money; equal to the payment amount for payments that need no capture.
    pub captured: Money,
    /// Sum of succeeded refunds.
    pub refunded: Money,
    /// Sum of requested and processing refunds.
    pub pending: Money,
    /// Sum of disputes the customer won.
    pub charged_back: Money,
    pub chargebacks: BTreeMap<DisputeId, Chargeback>,
    /// Every refund the payment has had, by refundRequestId; a persistent map, so cloning the state shares it.
    pub refunds: OrdMap<RefundRequestId, Refund>,
}

impl PaymentState {
    /// What can still be refunded: captured less refunded, pending and charged back.
    pub fn refundable(&self) -> Money {
        refundable_amount(self.captured, self.refunded, self.pending, self.charged_back)
    }

    /// Whether a dispute with undetermined liability is open.
    pub fn has_open_chargeback(&self) -> bool {
        self.chargebacks
            .values()
            .any(|chargeback| chargeback.resolution.is_none())
    }

    /// Whether a refund is pending or succeeded: what a method that allows one refund only counts. Walks the
    /// refunds, so deciders ask it only for such methods.
    pub fn has_live_refund(&self) -> bool {
        self.refunds
            .values()
            .any(|refund| refund.status.is_pending() || refund.status == RefundStatus::Succeeded)
    }

    /// The balance invariant (docs/domain.md): `refunded + pending <= captured`.
    pub fn invariant_holds(&self) -> bool {
        self.refunded
            .minor_units()
            .checked_add(self.pending.minor_units())
            .is_some_and(|used| used <= self.captured.minor_units())
    }
}

/// What can still be refunded of a payment: `captured - refunded - pending - charged_back`, floored at zero,
/// in the captured amount's currency. The one definition the aggregate and the read models share.
pub fn refundable_amount(captured: Money, refunded: Money, pending: Money, charged_back: Money) -> Money {
    let minor_units = captured
        .minor_units()
        .saturating_sub(refunded.minor_units())
        .saturating_sub(pending.minor_units())
        .saturating_sub(charged_back.minor_units());
    // At most `captured` and in its currency, so always a valid amount.
    Money::from_minor_units("refundable", captured.currency(), minor_units)
        .unwrap_or_else(|_| Money::zero(captured.currency()))
}

/// A payment stream folded: unknown until `PaymentRecorded`.
///
/// Cloning is a reference count: the state is shared until a fold changes it (copy on write, see `evolve`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Payment {
    /// No event yet.
    #[default]
    Unknown,
    /// The payment and its refunds.
    Known(Arc<PaymentState>),
}

impl Payment {
    /// The state of a known payment.
    pub fn state(&self) -> Option<&PaymentState> {
        match self {
            Self::Unknown => None,
            Self::Known(state) => Some(state),
        }
    }

    /// A refund of this payment.
    pub fn refund(&self, refund_request_id: &RefundRequestId) -> Option<&Refund> {
        self.state()?.refunds.get(refund_request_id)
    }
}
