//! What the ledger answers: Antom's `result` triple, the refund or payment as
//! it stands, and the global position a reader can wait for
//! (`atLeastPosition`) to see the answer in the read models.

use domain::{
    Payment, PaymentId, PaymentState, Refund, RefundRequestId, RefundStatus, Rejection, ResultCode, ResultStatus,
};

/// The result code of a refund whose outcome is not final yet (resultStatus U), as Antom answers it.
pub const REFUND_IN_PROCESS: &str = "REFUND_IN_PROCESS";

/// Antom's `result`: code, status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultInfo {
    /// `SUCCESS`, a refusal's code, or [`REFUND_IN_PROCESS`] while the outcome is open.
    pub code: ResultCode,
    /// S succeeded, F failed for good, U not final yet.
    pub status: ResultStatus,
    /// A message for the caller naming the field or id.
    pub message: String,
}

impl ResultInfo {
    /// S `SUCCESS`.
    pub fn success(message: impl Into<String>) -> Self {
        Self {
            code: ResultCode::Success,
            status: ResultStatus::S,
            message: message.into(),
        }
    }

    /// F with `code`.
    pub fn failed(code: ResultCode, message: impl Into<String>) -> Self {
        Self {
            code,
            status: ResultStatus::F,
            message: message.into(),
        }
    }

    /// The answer for a refusal without an event.
    pub fn refused(rejection: Rejection) -> Self {
        Self::failed(rejection.code, rejection.message)
    }

    /// The answer for a refund as it stands: S when it succeeded, F with its code when it failed
    /// or was rejected, U [`REFUND_IN_PROCESS`] while its outcome is open.
    pub fn of_refund(refund: &Refund) -> Self {
        match refund.status {
            RefundStatus::Succeeded => Self::success("refund succeeded"),
            RefundStatus::Failed | RefundStatus::Rejected => Self::failed(
                refund.result_code.clone().unwrap_or(ResultCode::ProcessFail),
                refund
                    .result_message
                    .clone()
                    .unwrap_or_else(|| "refund failed".to_owned()),
            ),
            RefundStatus::Requested | RefundStatus::Processing => Self {
                code: ResultCode::parse(REFUND_IN_PROCESS),
                status: ResultStatus::U,
                message: "refund is being processed; its outcome is settled with Antom".to_owned(),
            },
        }
    }
}

/// A refund with the payment it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundSnapshot {
    /// The payment the refund belongs to.
    pub payment_id: PaymentId,
    /// The refund as the log holds it.
    pub refund: Refund,
}

/// The answer to a refund request (or an inquiry about one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundResult {
    /// Antom's result triple for the refund.
    pub result: ResultInfo,
    /// The refund as it stands; `None` when the request was refused without a record
    /// (`ORDER_NOT_EXIST`, `REPEAT_REQ_INCONSISTENT` across payments).
    pub refund: Option<RefundSnapshot>,
    /// The global position to wait for to see this answer in the read models: the last event written, or
    /// when nothing was written the payment's last event (0 for a payment the ledger does not know).
    pub position: u64,
}

/// The answer to a payment command (record, capture, chargeback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    /// S when applied (or already applied), F with Antom's code when refused.
    pub result: ResultInfo,
    /// The payment as it stands after the command; `None` for an unknown payment.
    pub payment: Option<PaymentState>,
    /// The global position to wait for to see this answer in the read models: the last event written, or
    /// when nothing was written the payment's last event (0 for a payment the ledger does not know).
    pub position: u64,
}

/// What one pass of the settle worker did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettleReport {
    /// Open refunds the pass looked at.
    pub examined: usize,
    /// Settled as succeeded.
    pub succeeded: usize,
    /// Settled as failed.
    pub failed: usize,
    /// Antom still processes them.
    pub processing: usize,
    /// Antom had never seen them: sent again with the same refundRequestId.
    pub resent: usize,
    /// Antom's answer was unknown (timeout, unsigned, ...): tried again on the next pass.
    pub unknown: usize,
    /// Already final in the log (the read models lagged).
    pub already_final: usize,
    /// Refunds the pass could not handle (store or read-model errors, logged).
    pub errors: usize,
    /// The highest global position the pass wrote (0 when it wrote nothing).
    pub position: u64,
}

/// The refund `refund_request_id` of `payment`, with its payment id.
pub(crate) fn snapshot(payment: &Payment, refund_request_id: &RefundRequestId) -> Option<RefundSnapshot> {
    let state = payment.state()?;
    let refund = state.refunds.get(refund_request_id)?;
    Some(RefundSnapshot {
        payment_id: state.payment_id.clone(),
        refund: refund.clone(),
    })
}

/// The answer for a refund as it stands at `position`.
pub(crate) fn answer(snapshot: RefundSnapshot, position: u64) -> RefundResult {
    RefundResult {
        result: ResultInfo::of_refund(&snapshot.refund),
        refund: Some(snapshot),
        position,
    }
}

/// The answer for a refund request refused without a record.
pub(crate) fn refused(rejection: Rejection, position: u64) -> RefundResult {
    RefundResult {
        result: ResultInfo::refused(rejection),
        refund: None,
        position,
    }
}

/// F `ORDER_NOT_EXIST` for a refundRequestId the ledger does not hold.
pub(crate) fn unknown_refund(refund_request_id: &RefundRequestId) -> Rejection {
    Rejection {
        code: ResultCode::OrderNotExist,
        message: format!("refundRequestId: {refund_request_id} is not a refund known to the ledger"),
    }
}
