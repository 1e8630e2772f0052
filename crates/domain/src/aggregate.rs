//! The `Payment` aggregate: `decide` turns a command into events against the
//! current state, `evolve` folds an event into the state.
//!
//! Both are pure: the policy and the current time are passed in. The event
//! log makes them safe under concurrency: a caller loads the stream, decides,
//! and appends with the revision it loaded; on a conflict it reloads and
//! decides again. So every decision sees every earlier event of its payment,
//! and the balance invariant `refunded + pending <= captured` holds at every
//! position (checked after every fold).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::event::{
    ChargebackOpened, ChargebackResolution, ChargebackResolved, OutcomeSource, PaymentCaptured, PaymentEvent,
    PaymentRecorded, RefundFailed, RefundOutcomeAnomaly, RefundProcessing, RefundRejected, RefundRequested,
    RefundSucceeded, ReportedOutcome,
};
use crate::id::{CaptureId, DisputeId, PaymentId, PaymentMethodType, RefundId, RefundRequestId};
use crate::money::Money;
use crate::policy::Policy;
use crate::result_code::ResultCode;

/// How far in the future a payment time may lie (clock skew between Antom and us).
pub const PAYMENT_TIME_SKEW_MAX: Duration = Duration::minutes(5);
/// Longest refund reason Antom accepts.
pub const REFUND_REASON_LEN_MAX: usize = 256;

/// Where a refund stands in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    /// Accepted and reserved; Antom not yet (known to be) called.
    Requested,
    /// Sent; Antom's outcome is not final or not known.
    Processing,
    /// Antom confirmed it. Terminal.
    Succeeded,
    /// Antom refused it. Terminal; the reservation is released.
    Failed,
    /// The ledger refused it before sending. Terminal; nothing was reserved.
    Rejected,
}

impl RefundStatus {
    /// Whether the status can never change again.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Rejected)
    }

    /// Whether the refund's amount is reserved but not yet final.
    pub fn is_pending(&self) -> bool {
        matches!(self, Self::Requested | Self::Processing)
    }
}

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
    /// Contradicting reports recorded for operators.
    pub anomalies: Vec<ReportedOutcome>,
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
    pub refunds: BTreeMap<RefundRequestId, Refund>,
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

    /// The balance invariant of DESIGN.md.
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
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Payment {
    /// No event yet.
    #[default]
    Unknown,
    /// The payment and its refunds.
    Known(Box<PaymentState>),
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

    /// Folds a whole stream.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a PaymentEvent>) -> Self {
        events.into_iter().fold(Self::Unknown, evolve)
    }
}

/// Commands the aggregate decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentCommand {
    RecordPayment {
        payment_id: PaymentId,
        payment_amount: Money,
        payment_method_type: PaymentMethodType,
        payment_time: OffsetDateTime,
        /// `None`: the policy of the payment method decides.
        capture_required: Option<bool>,
    },
    CapturePayment {
        payment_id: PaymentId,
        capture_id: Option<CaptureId>,
        capture_amount: Money,
        capture_time: OffsetDateTime,
    },
    OpenChargeback {
        payment_id: PaymentId,
        dispute_id: DisputeId,
        dispute_amount: Money,
    },
    ResolveChargeback {
        payment_id: PaymentId,
        dispute_id: DisputeId,
        resolution: ChargebackResolution,
    },
    RequestRefund {
        refund_request_id: RefundRequestId,
        payment_id: PaymentId,
        refund_amount: Money,
        refund_reason: Option<String>,
    },
    MarkRefundProcessing {
        refund_request_id: RefundRequestId,
        reason: String,
    },
    ConfirmRefundSucceeded {
        refund_request_id: RefundRequestId,
        refund_id: RefundId,
        refund_time: OffsetDateTime,
        source: OutcomeSource,
    },
    ConfirmRefundFailed {
        refund_request_id: RefundRequestId,
        result_code: ResultCode,
        result_message: String,
        source: OutcomeSource,
    },
}

/// A command refused without any event: the caller answers with the code and
/// changes nothing. (Refund requests refused by the rules are *recorded* as
/// `RefundRejected` instead, so a retry sees the same answer.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Rejection {
    /// Antom's result code for the refusal.
    pub code: ResultCode,
    /// A message for the caller naming the field or id.
    pub message: String,
}

impl Rejection {
    fn new(code: ResultCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
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
    }
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

/// Antom's refund rules (antom-refund.md, Table 1, and the method rules), in
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
    let has_live_refund = state
        .refunds
        .values()
        .any(|r| matches!(r.status, s if s.is_pending() || s == RefundStatus::Succeeded));
    if !method.multiple_refunds_allowed && has_live_refund {
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

/// Folds one event into the payment. Events come from the log, which only
/// holds events `decide` produced, so an event that does not fit the state
/// (a refund outcome for an unknown refund) is ignored rather than invented.
pub fn evolve(payment: Payment, event: &PaymentEvent) -> Payment {
    let next = match (payment, event) {
        (Payment::Unknown, PaymentEvent::PaymentRecorded(recorded)) => record(recorded),
        (Payment::Unknown, _) => Payment::Unknown,
        (Payment::Known(mut state), event) => {
            apply(&mut state, event);
            Payment::Known(state)
        }
    };
    if let Payment::Known(state) = &next {
        debug_assert!(
            state.invariant_holds(),
            "refunded + pending exceeds captured for {}",
            state.payment_id
        );
    }
    next
}

fn record(recorded: &PaymentRecorded) -> Payment {
    let currency = recorded.payment_amount.currency();
    let captured = if recorded.capture_required {
        Money::zero(currency)
    } else {
        recorded.payment_amount
    };
    Payment::Known(Box::new(PaymentState {
        payment_id: recorded.payment_id.clone(),
        payment_amount: recorded.payment_amount,
        payment_method_type: recorded.payment_method_type.clone(),
        payment_time: recorded.payment_time,
        capture_required: recorded.capture_required,
        capture_id: None,
        capture_time: None,
        captured,
        refunded: Money::zero(currency),
        pending: Money::zero(currency),
        charged_back: Money::zero(currency),
        chargebacks: BTreeMap::new(),
        refunds: BTreeMap::new(),
    }))
}

fn add(total: Money, amount: Money) -> Money {
    // Amounts in one stream share the payment's currency and stay below
    // `captured`, so the sum is in range; keep the old total if not.
    total.checked_add(amount).unwrap_or(total)
}

fn sub(total: Money, amount: Money) -> Money {
    total.saturating_sub(amount).unwrap_or(total)
}

fn apply(state: &mut PaymentState, event: &PaymentEvent) {
    match event {
        PaymentEvent::PaymentRecorded(_) => {}
        PaymentEvent::PaymentCaptured(captured) => {
            state.captured = captured.capture_amount;
            state.capture_id = captured.capture_id.clone();
            state.capture_time = Some(captured.capture_time);
        }
        PaymentEvent::ChargebackOpened(opened) => {
            let chargeback = Chargeback {
                dispute_amount: opened.dispute_amount,
                resolution: None,
            };
            state.chargebacks.insert(opened.dispute_id.clone(), chargeback);
        }
        PaymentEvent::ChargebackResolved(resolved) => {
            if let Some(chargeback) = state.chargebacks.get_mut(&resolved.dispute_id) {
                chargeback.resolution = Some(resolved.resolution);
                if resolved.resolution == ChargebackResolution::CustomerWon {
                    state.charged_back = add(state.charged_back, chargeback.dispute_amount);
                }
            }
        }
        PaymentEvent::RefundRequested(requested) => {
            state.pending = add(state.pending, requested.refund_amount);
            state
                .refunds
                .insert(requested.refund_request_id.clone(), new_refund(requested));
        }
        PaymentEvent::RefundRejected(rejected) => {
            state
                .refunds
                .insert(rejected.refund_request_id.clone(), rejected_refund(rejected));
        }
        PaymentEvent::RefundProcessing(processing) => {
            if let Some(refund) = state.refunds.get_mut(&processing.refund_request_id)
                && refund.status == RefundStatus::Requested
            {
                refund.status = RefundStatus::Processing;
            }
        }
        PaymentEvent::RefundSucceeded(succeeded) => apply_succeeded(state, succeeded),
        PaymentEvent::RefundFailed(failed) => apply_failed(state, failed),
        PaymentEvent::RefundOutcomeAnomaly(anomaly) => {
            if let Some(refund) = state.refunds.get_mut(&anomaly.refund_request_id) {
                refund.anomalies.push(anomaly.reported.clone());
            }
        }
    }
}

fn new_refund(requested: &RefundRequested) -> Refund {
    Refund {
        refund_request_id: requested.refund_request_id.clone(),
        refund_amount: requested.refund_amount,
        refund_reason: requested.refund_reason.clone(),
        status: RefundStatus::Requested,
        requested_at: requested.requested_at,
        refund_id: None,
        settled_at: None,
        result_code: None,
        result_message: None,
        anomalies: Vec::new(),
    }
}

fn rejected_refund(rejected: &RefundRejected) -> Refund {
    Refund {
        refund_request_id: rejected.refund_request_id.clone(),
        refund_amount: rejected.refund_amount,
        refund_reason: rejected.refund_reason.clone(),
        status: RefundStatus::Rejected,
        requested_at: rejected.rejected_at,
        refund_id: None,
        settled_at: Some(rejected.rejected_at),
        result_code: Some(rejected.result_code.clone()),
        result_message: Some(rejected.result_message.clone()),
        anomalies: Vec::new(),
    }
}

fn apply_succeeded(state: &mut PaymentState, succeeded: &RefundSucceeded) {
    let Some(refund) = state.refunds.get_mut(&succeeded.refund_request_id) else {
        return;
    };
    if !refund.status.is_pending() {
        return;
    }
    refund.status = RefundStatus::Succeeded;
    refund.refund_id = Some(succeeded.refund_id.clone());
    refund.settled_at = Some(succeeded.refund_time);
    refund.result_code = Some(ResultCode::Success);
    let amount = refund.refund_amount;
    state.pending = sub(state.pending, amount);
    state.refunded = add(state.refunded, amount);
}

fn apply_failed(state: &mut PaymentState, failed: &RefundFailed) {
    let Some(refund) = state.refunds.get_mut(&failed.refund_request_id) else {
        return;
    };
    if !refund.status.is_pending() {
        return;
    }
    refund.status = RefundStatus::Failed;
    refund.settled_at = Some(failed.failed_at);
    refund.result_code = Some(failed.result_code.clone());
    refund.result_message = Some(failed.result_message.clone());
    let amount = refund.refund_amount;
    state.pending = sub(state.pending, amount);
}
