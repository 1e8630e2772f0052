//! `decide`: a command against the folded payment, the policy and the current time gives the events to
//! append, nothing (already applied), or a refusal. Pure: the caller passes the time in.
//!
//! The log makes it safe under concurrency: a caller decides against the stream it folded and appends with
//! that stream's revision; on a conflict it folds the new events and decides again. So every decision sees
//! every earlier event of its payment.

use time::{Duration, OffsetDateTime};

use crate::command::{PaymentCommand, Rejection};
use crate::error::InputError;
use crate::event::{
    ANOMALY_NOTE_CHARS_MAX, AnomalyAcknowledged, ChargebackOpened, ChargebackResolution, ChargebackResolved,
    OutcomeSource, PaymentCaptured, PaymentEvent, PaymentRecorded, RefundFailed, RefundOutcomeAnomaly,
    RefundProcessing, RefundRejected, RefundRequested, RefundSucceeded, ReportedOutcome,
};
use crate::evolve::anomaly_index;
use crate::id::{CaptureId, DisputeId, PaymentId, RefundId, RefundRequestId};
use crate::money::Money;
use crate::policy::Policy;
use crate::result_code::ResultCode;
use crate::state::{Payment, PaymentState, Refund};
use crate::status::RefundStatus;

/// How far in the future a payment time may lie (clock skew between Antom and us).
pub const PAYMENT_TIME_SKEW_MAX: Duration = Duration::minutes(5);
/// Longest refund reason Antom accepts.
pub const REFUND_REASON_LEN_MAX: usize = 256;
/// Result code of an acknowledgement that names no recorded anomaly (a ledger code, not one of Antom's).
pub const ANOMALY_NOT_FOUND: &str = "ANOMALY_NOT_FOUND";
/// Result code of an acknowledgement of an anomaly already acknowledged (a ledger code, not one of Antom's).
pub const ANOMALY_ALREADY_ACKNOWLEDGED: &str = "ANOMALY_ALREADY_ACKNOWLEDGED";

/// Checks an operator's note on an anomaly: trimmed, not empty, at most [`ANOMALY_NOTE_CHARS_MAX`] characters.
pub fn anomaly_note(field: &str, note: &str) -> Result<String, InputError> {
    let note = note.trim();
    if note.is_empty() {
        return Err(InputError::Empty {
            field: field.to_owned(),
        });
    }
    let len = note.chars().count();
    if len > ANOMALY_NOTE_CHARS_MAX {
        return Err(InputError::TooLong {
            field: field.to_owned(),
            len,
            max: ANOMALY_NOTE_CHARS_MAX,
        });
    }
    Ok(note.to_owned())
}

/// Decides what `command` does to `payment` under `policy` at `now`.
///
/// `Ok(vec![])` means the command is already applied (an idempotent retry) or
/// changes nothing; `Err` refuses it with no event.
pub fn decide(
    payment: &Payment,
    command: &PaymentCommand,
    policy: &Policy,
    now: OffsetDateTime,
) -> Result<Vec<PaymentEvent>, Rejection> {
    if let PaymentCommand::RecordPayment { .. } = command {
        return decide_record(payment.state(), command, policy, now);
    }
    let Some(state) = payment.state() else {
        return Err(Rejection::new(ResultCode::OrderNotExist, "payment does not exist"));
    };
    match command {
        PaymentCommand::RecordPayment { .. } => decide_record(Some(state), command, policy, now),
        PaymentCommand::CapturePayment {
            payment_id,
            capture_id,
            capture_amount,
            capture_time,
        } => decide_capture(state, payment_id, capture_id, *capture_amount, *capture_time),
        PaymentCommand::OpenChargeback {
            payment_id,
            dispute_id,
            dispute_amount,
        } => decide_open_chargeback(state, payment_id, dispute_id, *dispute_amount, now),
        PaymentCommand::ResolveChargeback {
            payment_id,
            dispute_id,
            resolution,
        } => decide_resolve_chargeback(state, payment_id, dispute_id, *resolution, now),
        PaymentCommand::RequestRefund {
            refund_request_id,
            payment_id,
            refund_amount,
            refund_reason,
        } => {
            let request = RefundRequest {
                refund_request_id,
                payment_id,
                refund_amount: *refund_amount,
                refund_reason,
            };
            decide_refund(state, &request, policy, now)
        }
        PaymentCommand::MarkRefundProcessing {
            refund_request_id,
            reason,
        } => {
            let refund = existing_refund(state, refund_request_id)?;
            if refund.status != RefundStatus::Requested {
                return Ok(vec![]);
            }
            Ok(vec![PaymentEvent::RefundProcessing(RefundProcessing {
                refund_request_id: refund_request_id.clone(),
                reason: reason.clone(),
                recorded_at: now,
            })])
        }
        PaymentCommand::ConfirmRefundSucceeded {
            refund_request_id,
            refund_id,
            refund_time,
            source,
        } => {
            let refund = existing_refund(state, refund_request_id)?;
            decide_succeeded(refund, refund_id, *refund_time, *source, now)
        }
        PaymentCommand::ConfirmRefundFailed {
            refund_request_id,
            result_code,
            result_message,
            source,
        } => {
            let refund = existing_refund(state, refund_request_id)?;
            decide_failed(refund, result_code, result_message, *source, now)
        }
        PaymentCommand::AcknowledgeAnomaly {
            refund_request_id,
            anomaly,
            note,
        } => decide_acknowledge(state, refund_request_id, *anomaly, note, now),
        PaymentCommand::ReportRefundReversed {
            refund_request_id,
            source,
        } => {
            // Whatever the refund's state, a reversal is for operators to look at; terminal states never change.
            let refund = existing_refund(state, refund_request_id)?;
            Ok(anomaly(refund, ReportedOutcome::Reversed, *source, now))
        }
        PaymentCommand::ReportRefunded {
            refund_request_id,
            source,
        } => {
            let refund = existing_refund(state, refund_request_id)?;
            Ok(match refund.status {
                RefundStatus::Failed | RefundStatus::Rejected => {
                    anomaly(refund, ReportedOutcome::Refunded, *source, now)
                }
                RefundStatus::Requested | RefundStatus::Processing | RefundStatus::Succeeded => vec![],
            })
        }
    }
}

fn decide_acknowledge(
    state: &PaymentState,
    refund_request_id: &RefundRequestId,
    anomaly: u32,
    note: &str,
    now: OffsetDateTime,
) -> Result<Vec<PaymentEvent>, Rejection> {
    let note =
        anomaly_note("note", note).map_err(|error| Rejection::new(ResultCode::ParamIllegal, error.to_string()))?;
    let not_found = || {
        Rejection::new(
            ResultCode::parse(ANOMALY_NOT_FOUND),
            format!("refund {refund_request_id} has no anomaly {anomaly}"),
        )
    };
    let refund = state.refunds.get(refund_request_id).ok_or_else(not_found)?;
    anomaly_index(refund, anomaly).ok_or_else(not_found)?;
    if refund.anomalies_acknowledged.contains(&anomaly) {
        return Err(Rejection::new(
            ResultCode::parse(ANOMALY_ALREADY_ACKNOWLEDGED),
            format!("anomaly {anomaly} of refund {refund_request_id} is already acknowledged"),
        ));
    }
    Ok(vec![PaymentEvent::AnomalyAcknowledged(AnomalyAcknowledged {
        refund_request_id: refund_request_id.clone(),
        anomaly,
        note,
        acknowledged_at: now,
    })])
}

fn decide_record(
    state: Option<&PaymentState>,
    command: &PaymentCommand,
    policy: &Policy,
    now: OffsetDateTime,
) -> Result<Vec<PaymentEvent>, Rejection> {
    let PaymentCommand::RecordPayment {
        payment_id,
        payment_amount,
        payment_method_type,
        payment_time,
        capture_required,
    } = command
    else {
        return Ok(vec![]);
    };
    let capture_required = capture_required.unwrap_or_else(|| policy.for_method(payment_method_type).capture_required);
    if let Some(state) = state {
        let same = state.payment_id == *payment_id
            && state.payment_amount == *payment_amount
            && state.payment_method_type == *payment_method_type
            && state.payment_time == *payment_time
            && state.capture_required == capture_required;
        return if same {
            Ok(vec![])
        } else {
            Err(Rejection::new(
                ResultCode::RepeatReqInconsistent,
                format!("payment {payment_id} is already recorded with other content"),
            ))
        };
    }
    if payment_amount.is_zero() {
        return Err(Rejection::new(
            ResultCode::ParamIllegal,
            "paymentAmount.value: must be greater than zero",
        ));
    }
    if *payment_time > now + PAYMENT_TIME_SKEW_MAX {
        return Err(Rejection::new(
            ResultCode::ParamIllegal,
            "paymentTime: lies in the future",
        ));
    }
    Ok(vec![PaymentEvent::PaymentRecorded(PaymentRecorded {
        payment_id: payment_id.clone(),
        payment_amount: *payment_amount,
        payment_method_type: payment_method_type.clone(),
        payment_time: *payment_time,
        capture_required,
    })])
}

fn check_payment_id(state: &PaymentState, payment_id: &PaymentId) -> Result<(), Rejection> {
    if state.payment_id == *payment_id {
        Ok(())
    } else {
        Err(Rejection::new(
            ResultCode::OrderNotExist,
            format!("paymentId: {payment_id} is not this stream's payment"),
        ))
    }
}

fn decide_capture(
    state: &PaymentState,
    payment_id: &PaymentId,
    capture_id: &Option<CaptureId>,
    capture_amount: Money,
    capture_time: OffsetDateTime,
) -> Result<Vec<PaymentEvent>, Rejection> {
    check_payment_id(state, payment_id)?;
    if capture_amount.currency() != state.payment_amount.currency() {
        return Err(Rejection::new(
            ResultCode::CurrencyNotSupport,
            "captureAmount.currency: differs from the payment's",
        ));
    }
    if !state.capture_required {
        return Err(Rejection::new(
            ResultCode::OrderStatusInvalid,
            "payment needs no capture",
        ));
    }
    if state.capture_time.is_some() {
        let same = state.capture_id == *capture_id && state.captured == capture_amount;
        return if same {
            Ok(vec![])
        } else {
            Err(Rejection::new(
                ResultCode::OrderStatusInvalid,
                "payment is already captured",
            ))
        };
    }
    if capture_amount.is_zero() || capture_amount.minor_units() > state.payment_amount.minor_units() {
        return Err(Rejection::new(
            ResultCode::ParamIllegal,
            "captureAmount.value: must be greater than zero and at most the payment amount",
        ));
    }
    Ok(vec![PaymentEvent::PaymentCaptured(PaymentCaptured {
        payment_id: payment_id.clone(),
        capture_id: capture_id.clone(),
        capture_amount,
        capture_time,
    })])
}

fn decide_open_chargeback(
    state: &PaymentState,
    payment_id: &PaymentId,
    dispute_id: &DisputeId,
    dispute_amount: Money,
    now: OffsetDateTime,
) -> Result<Vec<PaymentEvent>, Rejection> {
    check_payment_id(state, payment_id)?;
    if let Some(existing) = state.chargebacks.get(dispute_id) {
        return if existing.dispute_amount == dispute_amount {
            Ok(vec![])
        } else {
            Err(Rejection::new(
                ResultCode::RepeatReqInconsistent,
                format!("disputeId: {dispute_id} has another amount"),
            ))
        };
    }
    if dispute_amount.currency() != state.payment_amount.currency() {
        return Err(Rejection::new(
            ResultCode::CurrencyNotSupport,
            "disputeAmount.currency: differs from the payment's",
        ));
    }
    if dispute_amount.is_zero() || dispute_amount.minor_units() > state.payment_amount.minor_units() {
        return Err(Rejection::new(
            ResultCode::ParamIllegal,
            "disputeAmount.value: must be greater than zero and at most the payment amount",
        ));
    }
    Ok(vec![PaymentEvent::ChargebackOpened(ChargebackOpened {
        payment_id: payment_id.clone(),
        dispute_id: dispute_id.clone(),
        dispute_amount,
        opened_at: now,
    })])
}

fn decide_resolve_chargeback(
    state: &PaymentState,
    payment_id: &PaymentId,
    dispute_id: &DisputeId,
    resolution: ChargebackResolution,
    now: OffsetDateTime,
) -> Result<Vec<PaymentEvent>, Rejection> {
    check_payment_id(state, payment_id)?;
    let Some(existing) = state.chargebacks.get(dispute_id) else {
        return Err(Rejection::new(
            ResultCode::OrderNotExist,
            format!("disputeId: {dispute_id} is not open"),
        ));
    };
    match existing.resolution {
        Some(known) if known == resolution => Ok(vec![]),
        Some(_) => Err(Rejection::new(
            ResultCode::RepeatReqInconsistent,
            format!("disputeId: {dispute_id} is already resolved otherwise"),
        )),
        None => Ok(vec![PaymentEvent::ChargebackResolved(ChargebackResolved {
            payment_id: payment_id.clone(),
            dispute_id: dispute_id.clone(),
            resolution,
            resolved_at: now,
        })]),
    }
}

struct RefundRequest<'a> {
    refund_request_id: &'a RefundRequestId,
    payment_id: &'a PaymentId,
    refund_amount: Money,
    refund_reason: &'a Option<String>,
}

fn decide_refund(
    state: &PaymentState,
    request: &RefundRequest<'_>,
    policy: &Policy,
    now: OffsetDateTime,
) -> Result<Vec<PaymentEvent>, Rejection> {
    check_payment_id(state, request.payment_id)?;
    if let Some(existing) = state.refunds.get(request.refund_request_id) {
        let same = existing.refund_amount == request.refund_amount && existing.refund_reason == *request.refund_reason;
        return if same {
            Ok(vec![])
        } else {
            Err(Rejection::new(
                ResultCode::RepeatReqInconsistent,
                format!(
                    "refundRequestId: {} was used with other content",
                    request.refund_request_id
                ),
            ))
        };
    }
    if let Some(reason) = request.refund_reason
        && reason.chars().count() > REFUND_REASON_LEN_MAX
    {
        return Err(Rejection::new(
            ResultCode::ParamIllegal,
            format!("refundReason: at most {REFUND_REASON_LEN_MAX} characters"),
        ));
    }
    match refund_rule_violation(state, request, policy, now) {
        None => Ok(vec![PaymentEvent::RefundRequested(RefundRequested {
            refund_request_id: request.refund_request_id.clone(),
            payment_id: request.payment_id.clone(),
            refund_amount: request.refund_amount,
            refund_reason: request.refund_reason.clone(),
            requested_at: now,
        })]),
        Some(rejection) => Ok(vec![PaymentEvent::RefundRejected(RefundRejected {
            refund_request_id: request.refund_request_id.clone(),
            payment_id: request.payment_id.clone(),
            refund_amount: request.refund_amount,
            refund_reason: request.refund_reason.clone(),
            result_code: rejection.code,
            result_message: rejection.message,
            rejected_at: now,
        })]),
    }
}

/// Antom's refund rules (docs/refund-rules.md, and the method rules), in
/// the order Antom reports them.
fn refund_rule_violation(
    state: &PaymentState,
    request: &RefundRequest<'_>,
    policy: &Policy,
    now: OffsetDateTime,
) -> Option<Rejection> {
    let amount = request.refund_amount;
    let method = policy.for_method(&state.payment_method_type);
    if amount.currency() != state.payment_amount.currency() {
        return Some(Rejection::new(
            ResultCode::CurrencyNotSupport,
            format!(
                "refundAmount.currency: {} differs from the payment's {}",
                amount.currency(),
                state.payment_amount.currency()
            ),
        ));
    }
    if !method.refund_supported {
        return Some(Rejection::new(
            ResultCode::RefundNotSupported,
            format!("payment method {} cannot be refunded", state.payment_method_type),
        ));
    }
    if state.capture_required && state.capture_time.is_none() {
        return Some(Rejection::new(
            ResultCode::OrderStatusInvalid,
            "payment is not captured",
        ));
    }
    if state.has_open_chargeback() {
        return Some(Rejection::new(
            ResultCode::OrderStatusInvalid,
            "a chargeback with undetermined liability is open",
        ));
    }
    if now > state.payment_time + Duration::days(i64::from(method.refund_window_days)) {
        return Some(Rejection::new(
            ResultCode::RefundWindowExceed,
            format!("refund window of {} days is over", method.refund_window_days),
        ));
    }
    // Only a one-refund method needs the walk over the refunds; keep it off the path of every other refund.
    if !method.multiple_refunds_allowed && state.has_live_refund() {
        return Some(Rejection::new(
            ResultCode::MultipleRefundsNotSupported,
            "payment method allows one refund only",
        ));
    }
    if !method.partial_refund_allowed && amount.minor_units() != state.captured.minor_units() {
        return Some(Rejection::new(
            ResultCode::PartialRefundNotSupported,
            "refundAmount.value: payment method allows full refunds only",
        ));
    }
    let minimum = method.minimum_refund(amount.currency());
    if amount.minor_units() < minimum {
        return Some(Rejection::new(
            ResultCode::RefundAmountExceed,
            format!("refundAmount.value: below the minimum refund of {minimum} minor units"),
        ));
    }
    let refundable = state.refundable();
    if amount.minor_units() > refundable.minor_units() {
        return Some(Rejection::new(
            ResultCode::RefundAmountExceed,
            format!("refundAmount.value: exceeds the refundable amount {refundable}"),
        ));
    }
    None
}

fn existing_refund<'a>(state: &'a PaymentState, refund_request_id: &RefundRequestId) -> Result<&'a Refund, Rejection> {
    state.refunds.get(refund_request_id).ok_or_else(|| {
        Rejection::new(
            ResultCode::OrderNotExist,
            format!("refundRequestId: {refund_request_id} is not a refund of this payment"),
        )
    })
}

fn anomaly(
    refund: &Refund,
    reported: ReportedOutcome,
    source: OutcomeSource,
    now: OffsetDateTime,
) -> Vec<PaymentEvent> {
    if refund.anomalies.contains(&reported) {
        return vec![];
    }
    vec![PaymentEvent::RefundOutcomeAnomaly(RefundOutcomeAnomaly {
        refund_request_id: refund.refund_request_id.clone(),
        recorded_status: refund.status,
        reported,
        source,
        reported_at: now,
    })]
}

fn decide_succeeded(
    refund: &Refund,
    refund_id: &RefundId,
    refund_time: OffsetDateTime,
    source: OutcomeSource,
    now: OffsetDateTime,
) -> Result<Vec<PaymentEvent>, Rejection> {
    let reported = ReportedOutcome::Success {
        refund_id: refund_id.clone(),
    };
    Ok(match refund.status {
        RefundStatus::Requested | RefundStatus::Processing => vec![PaymentEvent::RefundSucceeded(RefundSucceeded {
            refund_request_id: refund.refund_request_id.clone(),
            refund_id: refund_id.clone(),
            refund_time,
            source,
        })],
        RefundStatus::Succeeded if refund.refund_id.as_ref() == Some(refund_id) => vec![],
        RefundStatus::Succeeded | RefundStatus::Failed | RefundStatus::Rejected => {
            anomaly(refund, reported, source, now)
        }
    })
}

fn decide_failed(
    refund: &Refund,
    result_code: &ResultCode,
    result_message: &str,
    source: OutcomeSource,
    now: OffsetDateTime,
) -> Result<Vec<PaymentEvent>, Rejection> {
    let reported = ReportedOutcome::Fail {
        result_code: result_code.clone(),
    };
    Ok(match refund.status {
        RefundStatus::Requested | RefundStatus::Processing => vec![PaymentEvent::RefundFailed(RefundFailed {
            refund_request_id: refund.refund_request_id.clone(),
            result_code: result_code.clone(),
            result_message: result_message.to_owned(),
            failed_at: now,
            source,
        })],
        // A refund we never sent, reported failed, is consistent with what we hold.
        RefundStatus::Failed | RefundStatus::Rejected => vec![],
        RefundStatus::Succeeded => anomaly(refund, reported, source, now),
    })
}
