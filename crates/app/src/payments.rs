//! The payment side of the ledger: recording a payment, its capture and its disputes. Each is one command
//! through the payment's queue, answered with the payment as it then stands.

use domain::{PaymentCommand, PaymentId};

use crate::answer::{CommandResult, ResultInfo};
use crate::batch::Verdict;
use crate::error::AppError;
use crate::input::{CapturePaymentInput, OpenChargebackInput, RecordPaymentInput, ResolveChargebackInput};
use crate::ledger::Ledger;

impl Ledger {
    /// Records a payment. Repeating it with the same content is a no-op (S); other content is
    /// `REPEAT_REQ_INCONSISTENT`.
    #[tracing::instrument(skip(self, input), fields(payment_id = %input.payment_id))]
    pub async fn record_payment(&self, actor: &str, input: RecordPaymentInput) -> Result<CommandResult, AppError> {
        let command = PaymentCommand::RecordPayment {
            payment_id: input.payment_id.clone(),
            payment_amount: input.payment_amount,
            payment_method_type: input.payment_method_type,
            payment_time: input.payment_time,
            capture_required: input.capture_required,
        };
        self.payment_command(actor, &input.payment_id, command).await
    }

    /// Records the capture of a payment that needs one.
    #[tracing::instrument(skip(self, input), fields(payment_id = %input.payment_id))]
    pub async fn capture_payment(&self, actor: &str, input: CapturePaymentInput) -> Result<CommandResult, AppError> {
        let command = PaymentCommand::CapturePayment {
            payment_id: input.payment_id.clone(),
            capture_id: input.capture_id,
            capture_amount: input.capture_amount,
            capture_time: input.capture_time,
        };
        self.payment_command(actor, &input.payment_id, command).await
    }

    /// Records a dispute; refunds are refused (`ORDER_STATUS_INVALID`) until it is resolved.
    #[tracing::instrument(skip(self, input), fields(payment_id = %input.payment_id, dispute_id = %input.dispute_id))]
    pub async fn open_chargeback(&self, actor: &str, input: OpenChargebackInput) -> Result<CommandResult, AppError> {
        let command = PaymentCommand::OpenChargeback {
            payment_id: input.payment_id.clone(),
            dispute_id: input.dispute_id,
            dispute_amount: input.dispute_amount,
        };
        self.payment_command(actor, &input.payment_id, command).await
    }

    /// Records a dispute's resolution.
    #[tracing::instrument(skip(self, input), fields(payment_id = %input.payment_id, dispute_id = %input.dispute_id))]
    pub async fn resolve_chargeback(
        &self,
        actor: &str,
        input: ResolveChargebackInput,
    ) -> Result<CommandResult, AppError> {
        let command = PaymentCommand::ResolveChargeback {
            payment_id: input.payment_id.clone(),
            dispute_id: input.dispute_id,
            resolution: input.resolution,
        };
        self.payment_command(actor, &input.payment_id, command).await
    }

    async fn payment_command(
        &self,
        actor: &str,
        payment_id: &PaymentId,
        command: PaymentCommand,
    ) -> Result<CommandResult, AppError> {
        let decided = self.decide(actor, payment_id, command).await?;
        let result = match decided.verdict {
            Verdict::Appended => ResultInfo::success("applied"),
            Verdict::Unchanged => ResultInfo::success("already applied"),
            Verdict::Refused(rejection) => ResultInfo::refused(rejection),
            Verdict::DuplicateElsewhere(event_id) => ResultInfo::failed(
                domain::ResultCode::RepeatReqInconsistent,
                format!("event {event_id} is already stored on another stream"),
            ),
        };
        Ok(CommandResult {
            result,
            payment: decided.payment.state().cloned(),
            position: decided.position,
        })
    }
}
