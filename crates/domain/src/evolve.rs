//! `evolve`: one stored event folded into the payment. Pure, and loud: a fold whose arithmetic does not fit
//! (an overflow, another currency) or that breaks the balance invariant is an error the caller must handle,
//! in release builds too, because it means the log holds something `decide` never produced.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use imbl::OrdMap;

use crate::event::{
    ChargebackResolution, PaymentEvent, PaymentRecorded, RefundFailed, RefundRejected, RefundRequested, RefundSucceeded,
};
use crate::id::PaymentId;
use crate::money::Money;
use crate::result_code::ResultCode;
use crate::state::{Chargeback, Payment, PaymentState, Refund};
use crate::status::RefundStatus;

/// A stored event that does not fold: the log holds what `decide` never produces (or was changed behind the
/// ledger's back). Whoever folds stops at it and reports it; it is never skipped or papered over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FoldError {
    /// A balance sum left the range of amounts or met another currency than the payment's.
    #[error("payment {payment_id}: {field} {total} {operation} {amount} is not a valid amount")]
    Arithmetic {
        /// The payment whose stream holds the event.
        payment_id: PaymentId,
        /// The balance field being changed (`refunded`, `pending`, `charged_back`).
        field: &'static str,
        /// `+` or `-`.
        operation: &'static str,
        /// The field's value before the event.
        total: Money,
        /// The event's amount.
        amount: Money,
    },
    /// After the event, refunded + pending exceeds captured.
    #[error("payment {payment_id}: refunded {refunded} + pending {pending} exceeds captured {captured}")]
    BalanceInvariant {
        /// The payment whose stream holds the event.
        payment_id: PaymentId,
        /// Refunded after the event.
        refunded: Money,
        /// Pending after the event.
        pending: Money,
        /// Captured after the event.
        captured: Money,
    },
}

/// Folds one event into the payment.
///
/// Events come from the log, which only holds events `decide` produced, so an event that does not fit the
/// state (a refund outcome for an unknown refund) is ignored rather than invented. Arithmetic that does not
/// fit and a broken balance invariant are errors, checked after every event in release builds too: a ledger
/// that carried on would answer from balances it cannot trust.
pub fn evolve(payment: Payment, event: &PaymentEvent) -> Result<Payment, FoldError> {
    match (payment, event) {
        (Payment::Unknown, PaymentEvent::PaymentRecorded(recorded)) => Ok(record(recorded)),
        (Payment::Unknown, _) => Ok(Payment::Unknown),
        (Payment::Known(mut state), event) => {
            // Copy on write: a state shared with a cache or an answer is copied once (its refunds are a
            // persistent map, so the copy is cheap), an unshared one is changed in place.
            let changed = Arc::make_mut(&mut state);
            apply(changed, event)?;
            check_balance(changed)?;
            Ok(Payment::Known(state))
        }
    }
}

fn check_balance(state: &PaymentState) -> Result<(), FoldError> {
    if state.invariant_holds() {
        return Ok(());
    }
    Err(FoldError::BalanceInvariant {
        payment_id: state.payment_id.clone(),
        refunded: state.refunded,
        pending: state.pending,
        captured: state.captured,
    })
}

fn record(recorded: &PaymentRecorded) -> Payment {
    let currency = recorded.payment_amount.currency();
    let captured = if recorded.capture_required {
        Money::zero(currency)
    } else {
        recorded.payment_amount
    };
    Payment::Known(Arc::new(PaymentState {
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
        refunds: OrdMap::new(),
    }))
}

/// `state.<field> += amount`, or an error naming the field.
fn add(payment_id: &PaymentId, field: &'static str, total: &mut Money, amount: Money) -> Result<(), FoldError> {
    *total = total.checked_add(amount).ok_or_else(|| FoldError::Arithmetic {
        payment_id: payment_id.clone(),
        field,
        operation: "+",
        total: *total,
        amount,
    })?;
    Ok(())
}

/// `state.<field> -= amount`, or an error naming the field (below zero is an error, never floored).
fn sub(payment_id: &PaymentId, field: &'static str, total: &mut Money, amount: Money) -> Result<(), FoldError> {
    *total = total.checked_sub(amount).ok_or_else(|| FoldError::Arithmetic {
        payment_id: payment_id.clone(),
        field,
        operation: "-",
        total: *total,
        amount,
    })?;
    Ok(())
}

fn apply(state: &mut PaymentState, event: &PaymentEvent) -> Result<(), FoldError> {
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
                    let amount = chargeback.dispute_amount;
                    add(&state.payment_id, "charged_back", &mut state.charged_back, amount)?;
                }
            }
        }
        PaymentEvent::RefundRequested(requested) => {
            add(
                &state.payment_id,
                "pending",
                &mut state.pending,
                requested.refund_amount,
            )?;
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
        PaymentEvent::RefundSucceeded(succeeded) => return apply_succeeded(state, succeeded),
        PaymentEvent::RefundFailed(failed) => return apply_failed(state, failed),
        PaymentEvent::RefundOutcomeAnomaly(anomaly) => {
            if let Some(refund) = state.refunds.get_mut(&anomaly.refund_request_id) {
                refund.anomalies.push(anomaly.reported.clone());
            }
        }
        PaymentEvent::AnomalyAcknowledged(acknowledged) => {
            if let Some(refund) = state.refunds.get_mut(&acknowledged.refund_request_id)
                && anomaly_index(refund, acknowledged.anomaly).is_some()
            {
                refund.anomalies_acknowledged.insert(acknowledged.anomaly);
            }
        }
    }
    Ok(())
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
        anomalies_acknowledged: BTreeSet::new(),
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
        anomalies_acknowledged: BTreeSet::new(),
    }
}

fn apply_succeeded(state: &mut PaymentState, succeeded: &RefundSucceeded) -> Result<(), FoldError> {
    let Some(refund) = state.refunds.get_mut(&succeeded.refund_request_id) else {
        return Ok(());
    };
    if !refund.status.is_pending() {
        return Ok(());
    }
    refund.status = RefundStatus::Succeeded;
    refund.refund_id = Some(succeeded.refund_id.clone());
    refund.settled_at = Some(succeeded.refund_time);
    refund.result_code = Some(ResultCode::Success);
    let amount = refund.refund_amount;
    sub(&state.payment_id, "pending", &mut state.pending, amount)?;
    add(&state.payment_id, "refunded", &mut state.refunded, amount)
}

fn apply_failed(state: &mut PaymentState, failed: &RefundFailed) -> Result<(), FoldError> {
    let Some(refund) = state.refunds.get_mut(&failed.refund_request_id) else {
        return Ok(());
    };
    if !refund.status.is_pending() {
        return Ok(());
    }
    refund.status = RefundStatus::Failed;
    refund.settled_at = Some(failed.failed_at);
    refund.result_code = Some(failed.result_code.clone());
    refund.result_message = Some(failed.result_message.clone());
    let amount = refund.refund_amount;
    sub(&state.payment_id, "pending", &mut state.pending, amount)
}

/// The index in `refund.anomalies` of anomaly number `anomaly` (1-based), if the refund has it.
pub(crate) fn anomaly_index(refund: &Refund, anomaly: u32) -> Option<usize> {
    let index = usize::try_from(anomaly).ok()?.checked_sub(1)?;
    (index < refund.anomalies.len()).then_some(index)
}
