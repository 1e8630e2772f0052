//! The refund saga (DESIGN.md): 1) decide and append `RefundRequested` (or
//! `RefundRejected`, answered F without calling Antom); 2) call Antom's
//! `refund` and record its answer: S `RefundSucceeded`, verified F
//! `RefundFailed`, anything else `RefundProcessing` (the refund stays
//! pending, answered U). Step 3 (the worker) and step 4 (notifications)
//! settle what step 2 left open. A crash between the steps loses nothing:
//! the open refund is in the log and in the read models.

use apo::RefundOutcome;
use domain::{
    OutcomeSource, Payment, PaymentCommand, PaymentState, Refund, RefundRequestId, RefundStatus, Rejection, ResultCode,
};

use crate::answer::{RefundResult, RefundSnapshot, ResultInfo};
use crate::command::{Decided, stream_of};
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
        skip(self, input),
        fields(payment_id = %input.payment_id, refund_request_id = %input.refund_request_id)
    )]
    pub async fn refund(&self, actor: &str, input: RefundInput) -> Result<RefundResult, AppError> {
        let stream = stream_of(&input.payment_id)?;
        let command = PaymentCommand::RequestRefund {
            refund_request_id: input.refund_request_id.clone(),
            payment_id: input.payment_id.clone(),
            refund_amount: input.refund_amount,
            refund_reason: input.refund_reason.clone(),
        };
        let decided = self.execute(&stream, &command, actor).await?;
        let refund_request_id = &input.refund_request_id;
        match decided {
            Decided::Appended { payment, position, .. } => {
                match (payment.state(), snapshot(&payment, refund_request_id)) {
                    (Some(state), Some(snapshot)) if snapshot.refund.status == RefundStatus::Requested => {
                        self.send_refund(actor, state, &snapshot.refund).await
                    }
                    (_, Some(snapshot)) => Ok(answer(snapshot, position)),
                    (_, None) => Err(missing_after_decide(refund_request_id)),
                }
            }
            Decided::Unchanged { payment } => {
                let position = self.inner.store.head().await?.position;
                match snapshot(&payment, refund_request_id) {
                    Some(snapshot) => Ok(answer(snapshot, position)),
                    None => Err(missing_after_decide(refund_request_id)),
                }
            }
            Decided::Refused { rejection, .. } => self.refused(rejection).await,
            Decided::DuplicateElsewhere { .. } => {
                let rejection = Rejection {
                    code: ResultCode::RepeatReqInconsistent,
                    message: format!("refundRequestId: {refund_request_id} is already used on another payment"),
                };
                self.refused(rejection).await
            }
        }
    }

    /// Step 2 (and the worker's resend): sends the refund to Antom with its refundRequestId and records
    /// the answer as `actor`. Antom deduplicates on the refundRequestId, so sending again is safe.
    #[tracing::instrument(
        skip(self, payment, refund),
        fields(payment_id = %payment.payment_id, refund_request_id = %refund.refund_request_id)
    )]
    pub(crate) async fn send_refund(
        &self,
        actor: &str,
        payment: &PaymentState,
        refund: &Refund,
    ) -> Result<RefundResult, AppError> {
        let mut request = apo::RefundRequest::new(
            refund.refund_request_id.clone(),
            payment.payment_id.clone(),
            refund.refund_amount,
        );
        request.refund_reason = refund.refund_reason.clone();
        request.capture_id = payment.capture_id.clone();
        request.refund_notify_url = self.inner.options.refund_notify_url.clone();
        let outcome = self.inner.gateway.refund(&request).await;
        let command = refund_outcome_command(&refund.refund_request_id, outcome);
        self.record_outcome(actor, &payment.payment_id, &refund.refund_request_id, &command)
            .await
    }

    /// Appends an outcome command for a refund and answers with the refund as it then stands.
    pub(crate) async fn record_outcome(
        &self,
        actor: &str,
        payment_id: &domain::PaymentId,
        refund_request_id: &RefundRequestId,
        command: &PaymentCommand,
    ) -> Result<RefundResult, AppError> {
        let stream = stream_of(payment_id)?;
        let decided = self.execute(&stream, command, actor).await?;
        let position = self.position_of(&decided).await?;
        match snapshot(decided.payment(), refund_request_id) {
            Some(snapshot) => Ok(answer(snapshot, position)),
            None => Err(AppError::UnknownRefund {
                refund_request_id: refund_request_id.clone(),
            }),
        }
    }

    /// The refund as the log holds it, found through the read models: never calls Antom (the worker
    /// settles open refunds; see [`Ledger::settle_refund`] to settle one now). F `ORDER_NOT_EXIST`
    /// when the ledger does not know the refundRequestId.
    #[tracing::instrument(skip(self), fields(refund_request_id = %refund_request_id))]
    pub async fn inquiry_refund(&self, refund_request_id: &RefundRequestId) -> Result<RefundResult, AppError> {
        let Some(payment_id) = self.locate(refund_request_id).await? else {
            return self.refused(unknown_refund(refund_request_id)).await;
        };
        let loaded = self.load(&stream_of(&payment_id)?).await?;
        let position = self.inner.store.head().await?.position;
        match snapshot(&loaded.payment, refund_request_id) {
            Some(snapshot) => Ok(answer(snapshot, position)),
            None => self.refused(unknown_refund(refund_request_id)).await,
        }
    }

    async fn refused(&self, rejection: Rejection) -> Result<RefundResult, AppError> {
        Ok(RefundResult {
            result: ResultInfo::refused(rejection),
            refund: None,
            position: self.inner.store.head().await?.position,
        })
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

pub(crate) fn snapshot(payment: &Payment, refund_request_id: &RefundRequestId) -> Option<RefundSnapshot> {
    let state = payment.state()?;
    let refund = state.refunds.get(refund_request_id)?;
    Some(RefundSnapshot {
        payment_id: state.payment_id.clone(),
        refund: refund.clone(),
    })
}

pub(crate) fn answer(snapshot: RefundSnapshot, position: u64) -> RefundResult {
    RefundResult {
        result: ResultInfo::of_refund(&snapshot.refund),
        refund: Some(snapshot),
        position,
    }
}

fn unknown_refund(refund_request_id: &RefundRequestId) -> Rejection {
    Rejection {
        code: ResultCode::OrderNotExist,
        message: format!("refundRequestId: {refund_request_id} is not a refund known to the ledger"),
    }
}

/// `decide` accepted or recognised the request, so the folded payment holds the refund; if not, the
/// domain broke its contract and the caller gets an error instead of a made-up answer.
fn missing_after_decide(refund_request_id: &RefundRequestId) -> AppError {
    AppError::UnknownRefund {
        refund_request_id: refund_request_id.clone(),
    }
}
