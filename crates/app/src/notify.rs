//! Antom's notifications, verified by `apo` (signature, client id, clock skew) before they reach the ledger,
//! become commands here (the server only wires HTTP to [`Ledger::apply_notification`]):
//!
//! - a refund notification is step 4 of the saga, applied like any other outcome: idempotently, and a report
//!   contradicting a final state becomes a `RefundOutcomeAnomaly` (the domain decides), never a flip;
//! - payment, capture and dispute notifications record the payment, its capture and its chargebacks, so a
//!   payment reaches the ledger without anyone typing it in.
//!
//! The answer decides whether Antom sends again: [`NotificationAnswer::Acknowledge`] when applied (and for
//! notifications that need nothing), [`NotificationAnswer::RetryLater`] when the ledger cannot apply it *yet*
//! (an unknown refund, a capture of a payment whose own notification has not arrived): Antom retries on its
//! schedule, and for refunds the settle worker is the backstop.

use apo::Notification;
use apo::notification::{
    CaptureNotification, DisputeJudgedResult, DisputeNotification, DisputeNotificationType, PaymentNotification,
    RefundNotification, RefundNotificationOutcome,
};
use domain::{ChargebackResolution, OutcomeSource, PaymentCommand, ResultCode, ResultStatus};

use crate::actor::NOTIFY_ACTOR;
use crate::answer::CommandResult;
use crate::error::AppError;
use crate::input::{CapturePaymentInput, OpenChargebackInput, RecordPaymentInput, ResolveChargebackInput};
use crate::ledger::Ledger;

/// What to tell Antom about a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationAnswer {
    /// Applied, or nothing to apply: acknowledge so Antom stops sending.
    Acknowledge,
    /// Not applicable yet (the reason): Antom should send it again later.
    RetryLater(String),
}

impl Ledger {
    /// Applies a verified notification as [`NOTIFY_ACTOR`] and says what to answer Antom. An error is a
    /// failure to apply it (store trouble): answer non-200, Antom sends it again.
    pub async fn apply_notification(&self, notification: Notification) -> Result<NotificationAnswer, AppError> {
        match notification {
            Notification::Refund(refund) => match self.apply_refund_notification(NOTIFY_ACTOR, &refund).await {
                Ok(_) => Ok(NotificationAnswer::Acknowledge),
                Err(AppError::UnknownRefund { refund_request_id }) => Ok(NotificationAnswer::RetryLater(format!(
                    "refund {refund_request_id} is not known yet"
                ))),
                Err(other) => Err(other),
            },
            Notification::Payment(payment) => self.payment_notified(payment).await,
            Notification::Capture(capture) => self.capture_notified(capture).await,
            Notification::Dispute(dispute) => self.dispute_notified(dispute).await,
        }
    }

    async fn payment_notified(&self, payment: PaymentNotification) -> Result<NotificationAnswer, AppError> {
        if payment.result.status != ResultStatus::S {
            return Ok(NotificationAnswer::Acknowledge);
        }
        let Some(payment_method_type) = payment.payment_method_type else {
            // The refund policy depends on the method; guessing it could allow a refund of an uncaptured card.
            tracing::error!(payment_id = %payment.payment_id, "payment notification without paymentMethodType; record it with recordPayment");
            return Ok(NotificationAnswer::Acknowledge);
        };
        let input = RecordPaymentInput {
            payment_id: payment.payment_id,
            payment_amount: payment.payment_amount,
            payment_method_type,
            payment_time: payment.payment_time.unwrap_or_else(|| self.clock().now()),
            capture_required: None,
        };
        Ok(outcome(
            self.record_payment(NOTIFY_ACTOR, input).await?,
            "payment notification",
        ))
    }

    async fn capture_notified(&self, capture: CaptureNotification) -> Result<NotificationAnswer, AppError> {
        if capture.result.status != ResultStatus::S {
            return Ok(NotificationAnswer::Acknowledge);
        }
        let input = CapturePaymentInput {
            payment_id: capture.payment_id,
            capture_id: capture.capture_id,
            capture_amount: capture.capture_amount,
            capture_time: capture.capture_time.unwrap_or_else(|| self.clock().now()),
        };
        Ok(outcome(
            self.capture_payment(NOTIFY_ACTOR, input).await?,
            "capture notification",
        ))
    }

    async fn dispute_notified(&self, dispute: DisputeNotification) -> Result<NotificationAnswer, AppError> {
        let resolution = match (&dispute.notification_type, &dispute.judged_result) {
            (DisputeNotificationType::Created, _) => {
                let Some(dispute_amount) = dispute.dispute_amount else {
                    tracing::error!(dispute_id = %dispute.dispute_id, "DISPUTE_CREATED without disputeAmount");
                    return Ok(NotificationAnswer::Acknowledge);
                };
                let input = OpenChargebackInput {
                    payment_id: dispute.payment_id,
                    dispute_id: dispute.dispute_id,
                    dispute_amount,
                };
                return Ok(outcome(
                    self.open_chargeback(NOTIFY_ACTOR, input).await?,
                    "dispute notification",
                ));
            }
            // Antom: ACCEPT_BY_CUSTOMER = the customer bears the dispute, the merchant keeps the money;
            // ACCEPT_BY_MERCHANT = the merchant bears it, the money goes back to the buyer.
            (DisputeNotificationType::Judged, Some(DisputeJudgedResult::AcceptByCustomer)) => {
                ChargebackResolution::MerchantWon
            }
            (DisputeNotificationType::Judged, Some(DisputeJudgedResult::AcceptByMerchant)) => {
                ChargebackResolution::CustomerWon
            }
            (DisputeNotificationType::Cancelled, _) => ChargebackResolution::Cancelled,
            // Defense alerts, document validations and the like change no balance.
            _ => return Ok(NotificationAnswer::Acknowledge),
        };
        let input = ResolveChargebackInput {
            payment_id: dispute.payment_id,
            dispute_id: dispute.dispute_id,
            resolution,
        };
        Ok(outcome(
            self.resolve_chargeback(NOTIFY_ACTOR, input).await?,
            "dispute notification",
        ))
    }

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

/// Acknowledges what applied or was already applied; asks for a resend when the payment is not known yet.
fn outcome(result: CommandResult, what: &str) -> NotificationAnswer {
    match (result.result.status, &result.result.code) {
        (ResultStatus::F, ResultCode::OrderNotExist) => {
            NotificationAnswer::RetryLater(format!("{what}: payment not recorded yet"))
        }
        (ResultStatus::F, code) => {
            // A refusal (e.g. inconsistent content) will not change on resend: keep it in the log for operators.
            tracing::error!(%code, message = %result.result.message, "{what} refused by the ledger");
            NotificationAnswer::Acknowledge
        }
        _ => NotificationAnswer::Acknowledge,
    }
}
