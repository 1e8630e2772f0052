//! Antom's side of the books: the payments it holds and the refunds it has
//! accepted, with Antom's refund rules (docs/refund-rules.md, and the result
//! codes of docs/antom-protocol.md) applied to them.
//!
//! Pure on purpose: no clock (the caller passes `now`), no randomness (the
//! caller decides whether an accepted refund is answered at once or left
//! PROCESSING), no IO. That keeps every rule testable in one line and lets the
//! HTTP layer hold the state lock only for a few microseconds.
//!
//! Invariants, asserted after every change:
//! - per payment, succeeded + processing refunds <= captured amount;
//! - a refundRequestId maps to at most one refund, ever.

use std::collections::{HashMap, HashSet};

use domain::{Money, PaymentId, PaymentMethodType, RefundId, RefundRequestId, ResultCode};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::{MethodPolicy, Policies, REFUNDS_MAX};
use crate::error::SimError;

/// Chargeback (dispute) state of a payment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Chargeback {
    /// No dispute.
    #[default]
    None,
    /// A dispute whose liability is not judged yet: refunds get `ORDER_STATUS_INVALID`.
    Undetermined,
    /// A dispute whose liability was judged: refunds are allowed again.
    Judged,
}

/// A payment as Antom holds it; seed it with [`crate::Simulator::seed_payment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentSeed {
    /// Antom's payment id.
    pub payment_id: PaymentId,
    /// What the customer paid.
    pub payment_amount: Money,
    /// The method (`CARD`, `ALIPAY_CN`, ...); selects the refund policy.
    pub payment_method_type: PaymentMethodType,
    /// When the payment succeeded; the refund window counts from here.
    pub payment_time: OffsetDateTime,
    /// The captured amount; `None` for a card payment not captured yet
    /// (refunds get `ORDER_STATUS_INVALID`). Methods without capture are
    /// captured in full at payment time.
    pub captured_amount: Option<Money>,
    /// Dispute state.
    pub chargeback: Chargeback,
    /// Whether the payment was cancelled (`ORDER_IS_CANCELED`).
    pub cancelled: bool,
}

impl PaymentSeed {
    /// A payment captured in full, no dispute, not cancelled.
    pub fn captured(
        payment_id: PaymentId,
        payment_amount: Money,
        payment_method_type: PaymentMethodType,
        payment_time: OffsetDateTime,
    ) -> Self {
        Self {
            payment_id,
            payment_amount,
            payment_method_type,
            payment_time,
            captured_amount: Some(payment_amount),
            chargeback: Chargeback::None,
            cancelled: false,
        }
    }

    fn validate(&self) -> Result<(), SimError> {
        let invalid = |reason: String| SimError::InvalidPayment {
            payment_id: self.payment_id.to_string(),
            reason,
        };
        if let Some(captured) = self.captured_amount {
            if captured.currency() != self.payment_amount.currency() {
                return Err(invalid(format!(
                    "captured currency {} differs from payment currency {}",
                    captured.currency(),
                    self.payment_amount.currency()
                )));
            }
            if captured.minor_units() > self.payment_amount.minor_units() {
                return Err(invalid(format!(
                    "captured {captured} exceeds the payment amount {}",
                    self.payment_amount
                )));
            }
        }
        Ok(())
    }
}

/// A change to a seeded payment (capture, dispute, cancellation); `None` keeps the field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentUpdate {
    /// New captured amount.
    pub captured_amount: Option<Money>,
    /// New dispute state.
    pub chargeback: Option<Chargeback>,
    /// New cancellation flag.
    pub cancelled: Option<bool>,
}

/// Where a refund stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundState {
    /// Accepted, not final: inquiry says PROCESSING. It becomes final at `settle_at`.
    Processing {
        /// When it becomes final.
        settle_at: OffsetDateTime,
        /// Whether it will end SUCCESS (true) or FAIL (false).
        will_succeed: bool,
    },
    /// Refunded.
    Succeeded {
        /// When it succeeded.
        refund_time: OffsetDateTime,
    },
    /// Failed for good; the amount is refundable again.
    Failed {
        /// Why (e.g. `PROCESS_FAIL`).
        code: ResultCode,
        /// When it failed.
        refund_time: OffsetDateTime,
    },
}

impl RefundState {
    /// Whether the refund reached SUCCESS or FAIL.
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Processing { .. })
    }

    /// inquiryRefund's `refundStatus`: `PROCESSING`, `SUCCESS` or `FAIL`.
    pub fn refund_status(&self) -> &'static str {
        match self {
            Self::Processing { .. } => "PROCESSING",
            Self::Succeeded { .. } => "SUCCESS",
            Self::Failed { .. } => "FAIL",
        }
    }
}

/// A refund Antom accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRecord {
    /// The merchant's idempotency key.
    pub refund_request_id: RefundRequestId,
    /// Antom's id of the refund.
    pub refund_id: RefundId,
    /// The refunded payment.
    pub payment_id: PaymentId,
    /// The amount.
    pub refund_amount: Money,
    /// When Antom accepted it (its creation time in the reports).
    pub accepted_at: OffsetDateTime,
    /// Where it stands.
    pub state: RefundState,
}

/// A validated refund request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundCommand {
    /// The merchant's idempotency key.
    pub refund_request_id: RefundRequestId,
    /// The payment to refund.
    pub payment_id: PaymentId,
    /// The amount to refund.
    pub refund_amount: Money,
}

/// How an accepted refund is answered; drawn by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Succeeds at once (S).
    Immediate,
    /// Answered U and left PROCESSING until `settle_at`, then SUCCESS or FAIL.
    Deferred {
        /// When it becomes final.
        settle_at: OffsetDateTime,
        /// Whether it ends SUCCESS.
        will_succeed: bool,
    },
}

/// What the refund rules decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundDecision {
    /// A new refund was recorded.
    Accepted(RefundRecord),
    /// The refundRequestId was seen before with the same content: the refund as it stands.
    Replayed(RefundRecord),
    /// Refused with an F code; nothing was stored, so the refundRequestId stays free.
    Rejected(ResultCode),
}

/// Amounts of one payment, for test assertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentTotals {
    /// Captured minor units (0 when not captured).
    pub captured_minor_units: u64,
    /// Sum of succeeded refunds.
    pub succeeded_minor_units: u64,
    /// Sum of processing refunds.
    pub processing_minor_units: u64,
    /// What may still be refunded: captured - succeeded - processing.
    pub refundable_minor_units: u64,
    /// Number of refunds ever accepted (any state).
    pub refund_count: usize,
}

#[derive(Debug)]
struct PaymentEntry {
    seed: PaymentSeed,
    refund_request_ids: Vec<RefundRequestId>,
}

/// Payments and refunds, keyed the way Antom looks them up.
#[derive(Debug, Default)]
pub struct Ledger {
    payments: HashMap<PaymentId, PaymentEntry>,
    refunds: HashMap<RefundRequestId, RefundRecord>,
    refund_ids: HashMap<RefundId, RefundRequestId>,
    /// The PROCESSING refunds, so settling does not scan every refund ever made.
    processing: HashSet<RefundRequestId>,
    next_refund_number: u64,
}

impl Ledger {
    /// Stores a new payment.
    pub fn seed_payment(&mut self, seed: PaymentSeed) -> Result<(), SimError> {
        seed.validate()?;
        if self.payments.contains_key(&seed.payment_id) {
            return Err(SimError::PaymentExists {
                payment_id: seed.payment_id.to_string(),
            });
        }
        self.payments.insert(
            seed.payment_id.clone(),
            PaymentEntry {
                seed,
                refund_request_ids: Vec::new(),
            },
        );
        Ok(())
    }

    /// Changes a payment's capture, dispute or cancellation state.
    ///
    /// A captured amount below what is already refunded or processing is
    /// refused: Antom cannot un-capture refunded money.
    pub fn update_payment(&mut self, payment_id: &PaymentId, update: PaymentUpdate) -> Result<(), SimError> {
        let totals = self.totals(payment_id)?;
        let entry = self
            .payments
            .get_mut(payment_id)
            .ok_or_else(|| SimError::PaymentNotFound {
                payment_id: payment_id.to_string(),
            })?;
        let mut seed = entry.seed.clone();
        if let Some(captured) = update.captured_amount {
            let committed = totals.succeeded_minor_units + totals.processing_minor_units;
            if captured.minor_units() < committed {
                return Err(SimError::InvalidPayment {
                    payment_id: payment_id.to_string(),
                    reason: format!("captured amount {captured} is below the {committed} minor units already refunded"),
                });
            }
            seed.captured_amount = Some(captured);
        }
        if let Some(chargeback) = update.chargeback {
            seed.chargeback = chargeback;
        }
        if let Some(cancelled) = update.cancelled {
            seed.cancelled = cancelled;
        }
        seed.validate()?;
        entry.seed = seed;
        self.assert_invariants(payment_id);
        Ok(())
    }

    /// Applies Antom's refund rules to `command` and records an accepted refund.
    pub fn refund(
        &mut self,
        command: &RefundCommand,
        policies: &Policies,
        disposition: Disposition,
        now: OffsetDateTime,
    ) -> RefundDecision {
        if let Some(existing) = self.refunds.get(&command.refund_request_id) {
            let same_content =
                existing.payment_id == command.payment_id && existing.refund_amount == command.refund_amount;
            return if same_content {
                RefundDecision::Replayed(existing.clone())
            } else {
                RefundDecision::Rejected(ResultCode::RepeatReqInconsistent)
            };
        }
        let Some(entry) = self.payments.get(&command.payment_id) else {
            return RefundDecision::Rejected(ResultCode::OrderNotExist);
        };
        let policy = policies.for_method(&entry.seed.payment_method_type);
        if let Err(code) = self.check_rules(entry, policy, command, now) {
            return RefundDecision::Rejected(code);
        }
        let record = self.record_refund(command, disposition, now);
        RefundDecision::Accepted(record)
    }

    fn check_rules(
        &self,
        entry: &PaymentEntry,
        policy: &MethodPolicy,
        command: &RefundCommand,
        now: OffsetDateTime,
    ) -> Result<(), ResultCode> {
        let payment = &entry.seed;
        if payment.cancelled {
            return Err(ResultCode::OrderIsCanceled);
        }
        if command.refund_amount.currency() != payment.payment_amount.currency() {
            return Err(ResultCode::CurrencyNotSupport);
        }
        let Some(captured) = payment.captured_amount else {
            return Err(ResultCode::OrderStatusInvalid);
        };
        if payment.chargeback == Chargeback::Undetermined {
            return Err(ResultCode::OrderStatusInvalid);
        }
        let window = time::Duration::days(i64::from(policy.refund_window_days));
        if now - payment.payment_time > window {
            return Err(ResultCode::RefundWindowExceed);
        }
        if self.refunds.len() >= REFUNDS_MAX {
            return Err(ResultCode::UnknownException);
        }
        let live_refunds = entry
            .refund_request_ids
            .iter()
            .filter_map(|id| self.refunds.get(id))
            .filter(|refund| !matches!(refund.state, RefundState::Failed { .. }))
            .count();
        if !policy.multiple_refunds && live_refunds > 0 {
            return Err(ResultCode::MultipleRefundsNotSupported);
        }
        let amount = command.refund_amount.minor_units();
        if !policy.partial_refunds && amount != captured.minor_units() {
            return Err(ResultCode::PartialRefundNotSupported);
        }
        let totals = self.totals_of(entry);
        if amount < policy.minimum_refund_minor_units.max(1) || amount > totals.refundable_minor_units {
            return Err(ResultCode::RefundAmountExceed);
        }
        Ok(())
    }

    fn record_refund(
        &mut self,
        command: &RefundCommand,
        disposition: Disposition,
        now: OffsetDateTime,
    ) -> RefundRecord {
        self.next_refund_number += 1;
        // Antom's refund ids are digits; ours are recognisable and at most 24 characters.
        let refund_id = RefundId::parse(&format!("SIMREF{:018}", self.next_refund_number))
            .unwrap_or_else(|_| unreachable!("a 24-character alphanumeric id is a valid RefundId"));
        let state = match disposition {
            Disposition::Immediate => RefundState::Succeeded { refund_time: now },
            Disposition::Deferred {
                settle_at,
                will_succeed,
            } => RefundState::Processing {
                settle_at,
                will_succeed,
            },
        };
        let record = RefundRecord {
            refund_request_id: command.refund_request_id.clone(),
            refund_id: refund_id.clone(),
            payment_id: command.payment_id.clone(),
            refund_amount: command.refund_amount,
            accepted_at: now,
            state,
        };
        self.refund_ids.insert(refund_id, command.refund_request_id.clone());
        if !record.state.is_final() {
            self.processing.insert(command.refund_request_id.clone());
        }
        self.refunds.insert(command.refund_request_id.clone(), record.clone());
        if let Some(entry) = self.payments.get_mut(&command.payment_id) {
            entry.refund_request_ids.push(command.refund_request_id.clone());
        }
        self.assert_invariants(&command.payment_id);
        record
    }

    /// Makes every PROCESSING refund whose time has come final; returns them.
    pub fn settle_due(&mut self, now: OffsetDateTime) -> Vec<RefundRecord> {
        let mut settled = Vec::new();
        for id in &self.processing {
            let Some(refund) = self.refunds.get_mut(id) else {
                continue;
            };
            let RefundState::Processing {
                settle_at,
                will_succeed,
            } = refund.state
            else {
                continue;
            };
            if settle_at > now {
                continue;
            }
            refund.state = if will_succeed {
                RefundState::Succeeded { refund_time: now }
            } else {
                RefundState::Failed {
                    code: ResultCode::ProcessFail,
                    refund_time: now,
                }
            };
            settled.push(refund.clone());
        }
        for refund in &settled {
            self.processing.remove(&refund.refund_request_id);
        }
        for refund in &settled {
            self.assert_invariants(&refund.payment_id);
        }
        settled
    }

    /// The refund with this refundRequestId, if Antom accepted one.
    pub fn refund_by_request_id(&self, id: &RefundRequestId) -> Option<&RefundRecord> {
        self.refunds.get(id)
    }

    /// The refund with this refundId.
    pub fn refund_by_refund_id(&self, id: &RefundId) -> Option<&RefundRecord> {
        self.refund_ids
            .get(id)
            .and_then(|request_id| self.refunds.get(request_id))
    }

    /// The refunds of a payment in the order they were accepted.
    pub fn refunds_of(&self, payment_id: &PaymentId) -> Vec<RefundRecord> {
        self.payments
            .get(payment_id)
            .map(|entry| {
                entry
                    .refund_request_ids
                    .iter()
                    .filter_map(|id| self.refunds.get(id).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A payment's amounts.
    pub fn totals(&self, payment_id: &PaymentId) -> Result<PaymentTotals, SimError> {
        self.payments
            .get(payment_id)
            .map(|entry| self.totals_of(entry))
            .ok_or_else(|| SimError::PaymentNotFound {
                payment_id: payment_id.to_string(),
            })
    }

    /// The seeded payment, as it stands.
    pub fn payment(&self, payment_id: &PaymentId) -> Option<&PaymentSeed> {
        self.payments.get(payment_id).map(|entry| &entry.seed)
    }

    /// Every seeded payment, in no particular order.
    pub fn payments(&self) -> impl Iterator<Item = &PaymentSeed> {
        self.payments.values().map(|entry| &entry.seed)
    }

    /// Every refund ever accepted, in no particular order.
    pub fn refunds(&self) -> impl Iterator<Item = &RefundRecord> {
        self.refunds.values()
    }

    fn totals_of(&self, entry: &PaymentEntry) -> PaymentTotals {
        let captured = entry.seed.captured_amount.map_or(0, |money| money.minor_units());
        let mut succeeded = 0u64;
        let mut processing = 0u64;
        for refund in entry.refund_request_ids.iter().filter_map(|id| self.refunds.get(id)) {
            let amount = refund.refund_amount.minor_units();
            match refund.state {
                RefundState::Succeeded { .. } => succeeded = succeeded.saturating_add(amount),
                RefundState::Processing { .. } => processing = processing.saturating_add(amount),
                RefundState::Failed { .. } => {}
            }
        }
        PaymentTotals {
            captured_minor_units: captured,
            succeeded_minor_units: succeeded,
            processing_minor_units: processing,
            refundable_minor_units: captured.saturating_sub(succeeded.saturating_add(processing)),
            refund_count: entry.refund_request_ids.len(),
        }
    }

    /// The simulator's invariants for one payment. Cheap (one pass over the
    /// payment's refunds), so they stay on in release builds.
    fn assert_invariants(&self, payment_id: &PaymentId) {
        let Some(entry) = self.payments.get(payment_id) else {
            return;
        };
        let totals = self.totals_of(entry);
        assert!(
            totals.succeeded_minor_units + totals.processing_minor_units <= totals.captured_minor_units,
            "invariant broken for payment {payment_id}: refunded {} + processing {} > captured {}",
            totals.succeeded_minor_units,
            totals.processing_minor_units,
            totals.captured_minor_units
        );
        for id in &entry.refund_request_ids {
            let refund = self.refunds.get(id);
            assert!(
                refund.is_some_and(|refund| &refund.payment_id == payment_id),
                "invariant broken: refundRequestId {id} listed on payment {payment_id} but not recorded for it"
            );
        }
        debug_assert_eq!(
            self.refunds.len(),
            self.refund_ids.len(),
            "every refund has exactly one refundId"
        );
        debug_assert!(
            self.processing
                .iter()
                .all(|id| self.refunds.get(id).is_some_and(|refund| !refund.state.is_final())),
            "the processing index holds only processing refunds"
        );
        debug_assert_eq!(
            self.payments
                .values()
                .map(|entry| entry.refund_request_ids.len())
                .sum::<usize>(),
            self.refunds.len(),
            "every refund is listed on exactly one payment"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-06-01 12:00 UTC)
    }

    fn usd(value: u64) -> Money {
        Money::parse("amount", "USD", &value.to_string()).unwrap()
    }

    fn given(seed: impl FnOnce(&mut PaymentSeed)) -> Ledger {
        let mut payment = PaymentSeed::captured(
            PaymentId::parse("P1").unwrap(),
            usd(1000),
            PaymentMethodType::parse("CARD").unwrap(),
            now() - time::Duration::days(1),
        );
        seed(&mut payment);
        let mut ledger = Ledger::default();
        ledger.seed_payment(payment).unwrap();
        ledger
    }

    fn command(id: &str, amount: Money) -> RefundCommand {
        RefundCommand {
            refund_request_id: RefundRequestId::parse(id).unwrap(),
            payment_id: PaymentId::parse("P1").unwrap(),
            refund_amount: amount,
        }
    }

    fn when(ledger: &mut Ledger, policies: &Policies, id: &str, amount: Money) -> RefundDecision {
        ledger.refund(&command(id, amount), policies, Disposition::Immediate, now())
    }

    fn rejected(decision: RefundDecision) -> ResultCode {
        match decision {
            RefundDecision::Rejected(code) => code,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn table_one_rules_give_antom_codes() {
        let policies = Policies::default();
        let jpy = Money::parse("a", "JPY", "1000").unwrap();
        assert_eq!(
            rejected(when(&mut given(|_| {}), &policies, "R", jpy)),
            ResultCode::CurrencyNotSupport
        );
        assert_eq!(
            rejected(when(&mut given(|_| {}), &policies, "R", usd(1001))),
            ResultCode::RefundAmountExceed
        );
        assert_eq!(
            rejected(when(&mut given(|p| p.captured_amount = None), &policies, "R", usd(1))),
            ResultCode::OrderStatusInvalid
        );
        assert_eq!(
            rejected(when(
                &mut given(|p| p.chargeback = Chargeback::Undetermined),
                &policies,
                "R",
                usd(1)
            )),
            ResultCode::OrderStatusInvalid
        );
        assert_eq!(
            rejected(when(
                &mut given(|p| p.payment_time = now() - time::Duration::days(366)),
                &policies,
                "R",
                usd(1)
            )),
            ResultCode::RefundWindowExceed
        );
        assert_eq!(
            rejected(when(&mut given(|p| p.cancelled = true), &policies, "R", usd(1))),
            ResultCode::OrderIsCanceled
        );
    }

    #[test]
    fn minimum_partial_and_multiple_follow_the_method_policy() {
        let strict = MethodPolicy {
            minimum_refund_minor_units: 100,
            partial_refunds: false,
            multiple_refunds: false,
            ..MethodPolicy::default()
        };
        let policies = Policies::default().with_method("CARD", strict.clone());
        assert_eq!(
            rejected(when(&mut given(|_| {}), &policies, "R", usd(500))),
            ResultCode::PartialRefundNotSupported
        );
        let mut ledger = given(|_| {});
        assert!(matches!(
            when(&mut ledger, &policies, "R1", usd(1000)),
            RefundDecision::Accepted(_)
        ));
        assert_eq!(
            rejected(when(&mut ledger, &policies, "R2", usd(1000))),
            ResultCode::MultipleRefundsNotSupported
        );
        let minimum_only = Policies::default().with_method(
            "CARD",
            MethodPolicy {
                partial_refunds: true,
                multiple_refunds: true,
                ..strict
            },
        );
        assert_eq!(
            rejected(when(&mut given(|_| {}), &minimum_only, "R", usd(99))),
            ResultCode::RefundAmountExceed
        );
    }

    #[test]
    fn refundable_counts_succeeded_and_processing_but_not_failed() {
        let policies = Policies::default();
        let mut ledger = given(|_| {});
        let deferred = |will_succeed| Disposition::Deferred {
            settle_at: now() + time::Duration::seconds(1),
            will_succeed,
        };
        assert!(matches!(
            ledger.refund(&command("A", usd(400)), &policies, deferred(false), now()),
            RefundDecision::Accepted(_)
        ));
        assert!(matches!(
            ledger.refund(&command("B", usd(600)), &policies, deferred(true), now()),
            RefundDecision::Accepted(_)
        ));
        assert_eq!(
            rejected(when(&mut ledger, &policies, "C", usd(1))),
            ResultCode::RefundAmountExceed
        );
        let settled = ledger.settle_due(now() + time::Duration::seconds(1));
        assert_eq!(settled.len(), 2);
        let totals = ledger.totals(&PaymentId::parse("P1").unwrap()).unwrap();
        assert_eq!(
            (totals.succeeded_minor_units, totals.refundable_minor_units),
            (600, 400)
        );
        assert!(matches!(
            when(&mut ledger, &policies, "C", usd(400)),
            RefundDecision::Accepted(_)
        ));
    }

    #[test]
    fn a_refund_request_id_refunds_once() {
        let policies = Policies::default();
        let mut ledger = given(|_| {});
        let RefundDecision::Accepted(first) = when(&mut ledger, &policies, "R", usd(300)) else {
            panic!("first refund must be accepted");
        };
        assert_eq!(
            when(&mut ledger, &policies, "R", usd(300)),
            RefundDecision::Replayed(first)
        );
        assert_eq!(
            rejected(when(&mut ledger, &policies, "R", usd(301))),
            ResultCode::RepeatReqInconsistent
        );
        let totals = ledger.totals(&PaymentId::parse("P1").unwrap()).unwrap();
        assert_eq!((totals.succeeded_minor_units, totals.refund_count), (300, 1));
    }

    #[test]
    fn unknown_payment_and_bad_seeds() {
        let mut ledger = Ledger::default();
        assert_eq!(
            rejected(ledger.refund(
                &command("R", usd(1)),
                &Policies::default(),
                Disposition::Immediate,
                now()
            )),
            ResultCode::OrderNotExist
        );
        let mut seed = PaymentSeed::captured(
            PaymentId::parse("P1").unwrap(),
            usd(10),
            PaymentMethodType::parse("CARD").unwrap(),
            now(),
        );
        seed.captured_amount = Some(usd(11));
        assert!(matches!(
            ledger.seed_payment(seed),
            Err(SimError::InvalidPayment { .. })
        ));
    }
}
