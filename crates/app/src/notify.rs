//! Step 4 of the saga: Antom's refund notification, verified by `apo`
//! (signature, client id, clock skew) before it reaches the ledger, applied
//! like any other outcome: idempotently, and a report contradicting a final
//! state becomes a `RefundOutcomeAnomaly` (the domain decides), never a flip.

use apo::notification::{RefundNotification, RefundNotificationOutcome};
use domain::{OutcomeSource, PaymentCommand};

use crate::error::AppError;
use crate::ledger::Ledger;

impl Ledger {
    /// Applies a verified notifyRefund as `actor` (usually [`crate::NOTIFY_ACTOR`]) and returns the
    /// position written, or the log's head when it changed nothing (a duplicate).
    ///
    /// [`AppError::UnknownRefund`] when the ledger does not hold the refund: answer Antom non-200 so it
    /// resends.
    #[tracing::instrument(
        skip(self, notification),
        fields(refund_request_id = %notification.refund_request_id, payment_id = tracing::field::Empty)
    )]
    pub async fn apply_refund_notification(
        &self,
        actor: &str,
        notification: &RefundNotification,
    ) -> Result<u64, AppError> {
        let refund_request_id = &notification.refund_request_id;
        let Some(payment_id) = self.locate(refund_request_id).await? else {
            return Err(AppError::UnknownRefund {
                refund_request_id: refund_request_id.clone(),
            });
        };
        tracing::Span::current().record("payment_id", tracing::field::display(&payment_id));
        let command = match &notification.outcome {
            RefundNotificationOutcome::Succeeded { refund_id, refund_time } => PaymentCommand::ConfirmRefundSucceeded {
                refund_request_id: refund_request_id.clone(),
                refund_id: refund_id.clone(),
                refund_time: *refund_time,
                source: OutcomeSource::Notification,
            },
            RefundNotificationOutcome::Failed { code, message, .. } => PaymentCommand::ConfirmRefundFailed {
                refund_request_id: refund_request_id.clone(),
                result_code: code.clone(),
                result_message: message.clone(),
                source: OutcomeSource::Notification,
            },
        };
        let settled = self
            .record_outcome(actor, &payment_id, refund_request_id, command)
            .await?;
        if let (Some(reported), Some(snapshot)) = (notification.refund_amount, &settled.refund)
            && reported != snapshot.refund.refund_amount
        {
            tracing::warn!(
                %reported,
                recorded = %snapshot.refund.refund_amount,
                "notification reports another refund amount than the ledger holds"
            );
        }
        Ok(settled.position)
    }
}
