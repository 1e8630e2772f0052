//! Refunds: the row of one refund through its statuses, the reservation it holds on its payment's balance while
//! pending, and the stored codes of the statuses.

use domain::{RefundFailed, RefundRejected, RefundRequested, RefundStatus, RefundSucceeded, ResultCode};

use super::balances::{PaymentRow, add, require_currency, subtract};
use super::envelope::Envelope;
use crate::error::ProjectionError;
use crate::model::RefundView;

/// The stored code of a refund status (`REQUESTED`, ...), as in the event JSON.
pub fn refund_status_code(status: RefundStatus) -> &'static str {
    match status {
        RefundStatus::Requested => "REQUESTED",
        RefundStatus::Processing => "PROCESSING",
        RefundStatus::Succeeded => "SUCCEEDED",
        RefundStatus::Failed => "FAILED",
        RefundStatus::Rejected => "REJECTED",
    }
}

/// Reads a code written by [`refund_status_code`].
pub fn parse_refund_status(code: &str) -> Option<RefundStatus> {
    [
        RefundStatus::Requested,
        RefundStatus::Processing,
        RefundStatus::Succeeded,
        RefundStatus::Failed,
        RefundStatus::Rejected,
    ]
    .into_iter()
    .find(|status| refund_status_code(*status) == code)
}

/// A new refund reserves its amount.
pub(super) fn request_refund(
    payment: &mut PaymentRow,
    requested: &RefundRequested,
    envelope: &Envelope,
) -> Result<RefundView, ProjectionError> {
    require_currency(envelope, payment, requested.refund_amount)?;
    payment.pending = add(envelope, payment.pending, requested.refund_amount)?;
    payment.refund_count = payment.refund_count.saturating_add(1);
    Ok(RefundView {
        refund_request_id: requested.refund_request_id.clone(),
        payment_id: payment.payment_id.clone(),
        refund_amount: requested.refund_amount,
        refund_reason: requested.refund_reason.clone(),
        status: RefundStatus::Requested,
        result_code: None,
        result_message: None,
        refund_id: None,
        requested_at: requested.requested_at,
        settled_at: None,
        requested_by: envelope.actor.clone(),
        anomaly_count: 0,
        last_position: envelope.position,
        updated_at: envelope.recorded_at,
    })
}

/// A refund the ledger refused reserves nothing; it is requested and settled at once.
pub(super) fn reject_refund(payment: &mut PaymentRow, rejected: &RefundRejected, envelope: &Envelope) -> RefundView {
    payment.refund_count = payment.refund_count.saturating_add(1);
    RefundView {
        refund_request_id: rejected.refund_request_id.clone(),
        payment_id: payment.payment_id.clone(),
        refund_amount: rejected.refund_amount,
        refund_reason: rejected.refund_reason.clone(),
        status: RefundStatus::Rejected,
        result_code: Some(rejected.result_code.clone()),
        result_message: Some(rejected.result_message.clone()),
        refund_id: None,
        requested_at: rejected.rejected_at,
        settled_at: Some(rejected.rejected_at),
        requested_by: envelope.actor.clone(),
        anomaly_count: 0,
        last_position: envelope.position,
        updated_at: envelope.recorded_at,
    }
}

/// A pending refund succeeded: its reservation becomes refunded money. The refund changes only once the
/// balances did (an error leaves it as it was).
pub(super) fn settle_succeeded(
    payment: &mut PaymentRow,
    refund: &mut RefundView,
    succeeded: &RefundSucceeded,
    envelope: &Envelope,
) -> Result<(), ProjectionError> {
    payment.pending = subtract(envelope, payment.pending, refund.refund_amount)?;
    payment.refunded = add(envelope, payment.refunded, refund.refund_amount)?;
    refund.status = RefundStatus::Succeeded;
    refund.refund_id = Some(succeeded.refund_id.clone());
    refund.settled_at = Some(succeeded.refund_time);
    refund.result_code = Some(ResultCode::Success);
    touch(refund, envelope);
    Ok(())
}

/// A pending refund failed: its reservation is released. The refund changes only once the balance did.
pub(super) fn settle_failed(
    payment: &mut PaymentRow,
    refund: &mut RefundView,
    failed: &RefundFailed,
    envelope: &Envelope,
) -> Result<(), ProjectionError> {
    payment.pending = subtract(envelope, payment.pending, refund.refund_amount)?;
    refund.status = RefundStatus::Failed;
    refund.settled_at = Some(failed.failed_at);
    refund.result_code = Some(failed.result_code.clone());
    refund.result_message = Some(failed.result_message.clone());
    touch(refund, envelope);
    Ok(())
}

/// Marks the refund row as changed by `envelope`.
fn touch(refund: &mut RefundView, envelope: &Envelope) {
    refund.last_position = envelope.position;
    refund.updated_at = envelope.recorded_at;
}

/// A requested refund was sent to Antom without a final answer (`true`: it changed); other statuses stay as
/// they are.
pub(super) fn mark_processing(refund: &mut RefundView, envelope: &Envelope) -> bool {
    if refund.status != RefundStatus::Requested {
        return false;
    }
    refund.status = RefundStatus::Processing;
    touch(refund, envelope);
    true
}

/// A contradicting outcome report is counted on the refund; nothing else changes.
pub(super) fn count_anomaly(refund: &mut RefundView, envelope: &Envelope) {
    refund.anomaly_count = refund.anomaly_count.saturating_add(1);
    touch(refund, envelope);
}
