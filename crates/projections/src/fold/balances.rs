//! Payment balances: the row of one payment (captured, refunded, pending, charged back, its disputes) and the
//! events that change it without naming a refund (recorded, captured, chargebacks), plus the checked money
//! arithmetic every balance change goes through.

use std::collections::BTreeMap;

use domain::{
    ChargebackOpened, ChargebackResolution, ChargebackResolved, DisputeId, Money, PaymentCaptured, PaymentId,
    PaymentMethodType, PaymentRecorded,
};
use time::OffsetDateTime;

use super::envelope::{Envelope, inconsistent};
use crate::error::ProjectionError;
use crate::model::{PaymentStatus, PaymentView};

/// A dispute on a payment, as the balance fold needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispute {
    /// The amount disputed.
    pub dispute_amount: Money,
    /// `None` while the liability is undetermined.
    pub resolution: Option<ChargebackResolution>,
}

/// The stored balance row of one payment: [`PaymentView`] plus the disputes the fold needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRow {
    /// Antom's id of the payment.
    pub payment_id: PaymentId,
    /// The amount paid.
    pub payment_amount: Money,
    /// Antom's payment method type.
    pub payment_method_type: PaymentMethodType,
    /// When the payment was made.
    pub payment_time: OffsetDateTime,
    /// Whether it must be captured before a refund.
    pub capture_required: bool,
    /// Money captured.
    pub captured: Money,
    /// Sum of succeeded refunds.
    pub refunded: Money,
    /// Sum of requested and processing refunds.
    pub pending: Money,
    /// Sum of disputes the customer won.
    pub charged_back: Money,
    /// Every dispute by id.
    pub disputes: BTreeMap<DisputeId, Dispute>,
    /// Refunds of the payment in any status.
    pub refund_count: u32,
    /// Position of the last event of the stream applied.
    pub last_position: u64,
    /// When that event was recorded.
    pub updated_at: OffsetDateTime,
}

impl PaymentRow {
    /// The row a `PaymentRecorded` event creates: nothing refunded yet, and captured in full unless the
    /// payment must be captured first.
    pub(super) fn recorded(recorded: &PaymentRecorded, envelope: &Envelope) -> PaymentRow {
        let currency = recorded.payment_amount.currency();
        PaymentRow {
            payment_id: recorded.payment_id.clone(),
            payment_amount: recorded.payment_amount,
            payment_method_type: recorded.payment_method_type.clone(),
            payment_time: recorded.payment_time,
            capture_required: recorded.capture_required,
            captured: if recorded.capture_required {
                Money::zero(currency)
            } else {
                recorded.payment_amount
            },
            refunded: Money::zero(currency),
            pending: Money::zero(currency),
            charged_back: Money::zero(currency),
            disputes: BTreeMap::new(),
            refund_count: 0,
            last_position: envelope.position,
            updated_at: envelope.recorded_at,
        }
    }

    /// What can still be refunded: captured less refunded, pending and charged back, floored at zero.
    pub fn refundable(&self) -> Money {
        domain::refundable_amount(self.captured, self.refunded, self.pending, self.charged_back)
    }

    /// Whether a dispute with undetermined liability is open.
    pub fn open_chargeback(&self) -> bool {
        self.disputes.values().any(|dispute| dispute.resolution.is_none())
    }

    /// The derived status.
    pub fn status(&self) -> PaymentStatus {
        PaymentStatus::derive(
            self.open_chargeback(),
            self.capture_required,
            self.captured,
            self.refunded,
            self.pending,
            self.refundable(),
        )
    }

    /// The balance invariant of docs/domain.md: `refunded + pending <= captured`.
    pub fn invariant_holds(&self) -> bool {
        self.refunded
            .minor_units()
            .checked_add(self.pending.minor_units())
            .is_some_and(|used| used <= self.captured.minor_units())
    }

    /// The row as callers see it.
    pub fn view(&self) -> PaymentView {
        PaymentView {
            payment_id: self.payment_id.clone(),
            payment_amount: self.payment_amount,
            payment_method_type: self.payment_method_type.clone(),
            payment_time: self.payment_time,
            capture_required: self.capture_required,
            captured: self.captured,
            refunded: self.refunded,
            pending: self.pending,
            charged_back: self.charged_back,
            refundable: self.refundable(),
            status: self.status(),
            open_chargeback: self.open_chargeback(),
            refund_count: self.refund_count,
            last_position: self.last_position,
            updated_at: self.updated_at,
        }
    }
}

/// A capture sets the money captured.
pub(super) fn capture(
    payment: &mut PaymentRow,
    captured: &PaymentCaptured,
    envelope: &Envelope,
) -> Result<(), ProjectionError> {
    require_currency(envelope, payment, captured.capture_amount)?;
    payment.captured = captured.capture_amount;
    Ok(())
}

/// A dispute opens with its liability undetermined.
pub(super) fn open_dispute(payment: &mut PaymentRow, opened: &ChargebackOpened) {
    let dispute = Dispute {
        dispute_amount: opened.dispute_amount,
        resolution: None,
    };
    payment.disputes.insert(opened.dispute_id.clone(), dispute);
}

/// A dispute is decided: money the customer won is charged back.
pub(super) fn resolve_dispute(
    payment: &mut PaymentRow,
    resolved: &ChargebackResolved,
    envelope: &Envelope,
) -> Result<(), ProjectionError> {
    let Some(dispute) = payment.disputes.get_mut(&resolved.dispute_id) else {
        return Ok(());
    };
    dispute.resolution = Some(resolved.resolution);
    if resolved.resolution == ChargebackResolution::CustomerWon {
        let amount = dispute.dispute_amount;
        payment.charged_back = add(envelope, payment.charged_back, amount)?;
    }
    Ok(())
}

pub(super) fn require_currency(
    envelope: &Envelope,
    payment: &PaymentRow,
    amount: Money,
) -> Result<(), ProjectionError> {
    if amount.currency() == payment.payment_amount.currency() {
        return Ok(());
    }
    Err(inconsistent(
        envelope,
        format!(
            "{} amount in {} on payment {} in {}",
            envelope.event.event_type(),
            amount.currency(),
            payment.payment_id,
            payment.payment_amount.currency()
        ),
    ))
}

pub(super) fn add(envelope: &Envelope, total: Money, amount: Money) -> Result<Money, ProjectionError> {
    total
        .checked_add(amount)
        .ok_or_else(|| inconsistent(envelope, format!("{total} + {amount} is out of range")))
}

pub(super) fn subtract(envelope: &Envelope, total: Money, amount: Money) -> Result<Money, ProjectionError> {
    total
        .checked_sub(amount)
        .ok_or_else(|| inconsistent(envelope, format!("{total} - {amount} is below zero")))
}
