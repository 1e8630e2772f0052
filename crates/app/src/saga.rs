//! The refund saga (docs/domain.md): 1) decide and append `RefundRequested` (or `RefundRejected`, answered F
//! without calling Antom); 2) call Antom's `refund` and record its answer: S `RefundSucceeded`, verified F
//! `RefundFailed`, anything else `RefundProcessing` (the refund stays pending, answered U). Step 3 (`settle.rs`:
//! the worker, or an inquiry by hand) and step 4 (`notify.rs`: Antom's notifications) settle what step 2 left
//! open. A crash between the steps loses nothing: the open refund is in the log and in the read models.

use apo::RefundOutcome;
use domain::{
    OutcomeSource, PaymentCommand, PaymentState, Refund, RefundRequestId, RefundStatus, Rejection, ResultCode,
};

use crate::answer::{RefundResult, answer, refused, snapshot};
use crate::batch::Verdict;
use crate::error::AppError;
use crate::input::RefundInput;
use crate::ledger::Ledger;

impl Ledger {
    /// Runs a refund request through the saga and answers as Antom would: S succeeded, F refused or
    /// failed (with Antom's code), U pending (settled later by the worker or a notification).
    ///
    /// Idempotent on `refund_request_id`: a retry with the same content returns the refund as it
    /// stands without a second event or a second call to Antom; other content, or the same id on
    /// another payment, is F `REPEAT_REQ_INCONSISTENT`. An unknown payment is F `ORDER_NOT_EXIST`.
    #[tracing::instrument(
        name = "saga.refund",
        skip(self, input),
        fields(payment_id = %input.payment_id, refund_request_id = %input.refund_request_id)
    )]
    pub async fn refund(&self, actor: &str, input: RefundInput) -> Result<RefundResult, AppError> {
        let refund_request_id = input.refund_request_id.clone();
        let command = PaymentCommand::RequestRefund {
            refund_request_id: input.refund_request_id,
            payment_id: input.payment_id.clone(),
            refund_amount: input.refund_amount,
            refund_reason: input.refund_reason,
        };
        let decided = self.decide(actor, &input.payment_id, command).await?;
        let position = decided.position;
        match decided.verdict {
            Verdict::Refused(rejection) => Ok(refused(rejection, position)),
            Verdict::DuplicateElsewhere(_) => {
                let rejection = Rejection {
                    code: ResultCode::RepeatReqInconsistent,
                    message: format!("refundRequestId: {refund_request_id} is already used on another payment"),
                };
                Ok(refused(rejection, position))
            }
            Verdict::Appended | Verdict::Unchanged => {
                let (Some(state), Some(found)) =
                    (decided.payment.state(), snapshot(&decided.payment, &refund_request_id))
                else {
                    // `decide` accepted or recognised the request, so the payment holds the refund; if not, the
                    // domain broke its contract and the caller gets an error instead of a made-up answer.
                    return Err(AppError::UnknownRefund { refund_request_id });
                };
                // The payment holds the refund, so the log does: the id belongs to this payment for good.
                self.inner.queues.remember_refund(&refund_request_id, &state.payment_id);
                if decided.verdict == Verdict::Appended && found.refund.status == RefundStatus::Requested {
                    return self.send_refund(actor, state, &found.refund, position).await;
                }
                Ok(answer(found, position))
            }
        }
    }

    /// Step 2 (and the settle step's resend): sends the refund to Antom with its refundRequestId and records
    /// the answer as `actor`. Antom deduplicates on the refundRequestId, so sending again is safe. The log holds
    /// the refund's request at or before `log_position` (see [`crate::RefundGateway::refund_after`]).
    #[tracing::instrument(
        name = "saga.send_refund",
        skip(self, payment, refund),
        fields(payment_id = %payment.payment_id, refund_request_id = %refund.refund_request_id)
    )]
    pub(crate) async fn send_refund(
        &self,
        actor: &str,
        payment: &PaymentState,
        refund: &Refund,
        log_position: u64,
    ) -> Result<RefundResult, AppError> {
        let mut request = apo::RefundRequest::new(
            refund.refund_request_id.clone(),
            payment.payment_id.clone(),
            refund.refund_amount,
        );
        request.refund_reason = refund.refund_reason.clone();
        request.capture_id = payment.capture_id.clone();
        request.refund_notify_url = self.inner.options.refund_notify_url.clone();
        let outcome = self.inner.gateway.refund_after(&request, log_position).await;
        if crate::health::antom_answered(&outcome) {
            self.note_antom_answer();
        }
        let command = refund_outcome_command(&refund.refund_request_id, outcome);
        self.record_outcome(actor, &payment.payment_id, &refund.refund_request_id, command)
            .await
    }

    /// Appends an outcome command for a refund (from Antom's answer, an inquiry or a notification) and answers
    /// with the refund as it then stands.
    pub(crate) async fn record_outcome(
        &self,
        actor: &str,
        payment_id: &domain::PaymentId,
        refund_request_id: &RefundRequestId,
        command: PaymentCommand,
    ) -> Result<RefundResult, AppError> {
        let decided = self.decide(actor, payment_id, command).await?;
        match snapshot(&decided.payment, refund_request_id) {
            Some(found) => Ok(answer(found, decided.position)),
            None => Err(AppError::UnknownRefund {
                refund_request_id: refund_request_id.clone(),
            }),
        }
    }
}

/// The command recording Antom's answer to a refund call.
fn refund_outcome_command(refund_request_id: &RefundRequestId, outcome: RefundOutcome) -> PaymentCommand {
    match outcome {
        RefundOutcome::Succeeded {
            refund_id, refund_time, ..
        } => PaymentCommand::ConfirmRefundSucceeded {
            refund_request_id: refund_request_id.clone(),
            refund_id,
            refund_time,
            source: OutcomeSource::RefundResponse,
        },
        RefundOutcome::Failed { code, message } => PaymentCommand::ConfirmRefundFailed {
            refund_request_id: refund_request_id.clone(),
            result_code: code,
            result_message: message,
            source: OutcomeSource::RefundResponse,
        },
        RefundOutcome::Unknown { reason } => {
            tracing::warn!(%reason, "refund outcome unknown; left processing for the worker");
            PaymentCommand::MarkRefundProcessing {
                refund_request_id: refund_request_id.clone(),
                reason: reason.to_string(),
            }
        }
    }
}
