//! The projection folds: pure functions from the rows a batch touches and the batch's events to the new rows
//! and the additive changes of the daily totals.
//!
//! No IO happens here, so the same code serves the runner (rows loaded from and written back to a database),
//! audit replay (rows rebuilt in memory from position 0) and the tests. The folds mirror
//! [`domain::evolve`] event by event: an event the aggregate ignores (an outcome for an unknown refund, a
//! second `PaymentRecorded`) changes no balance here either, so a payment's projected balances always equal
//! the aggregate's state at the same position.
//!
//! Daily totals are kept as *deltas* rather than recomputed rows: a batch yields
//! `(date, currency, status) -> (count_delta, amount_delta)`, and the storage adds them to what it holds. A
//! refund counts under the UTC date it was requested on and its current status, so a status change is a
//! `-1` under the old status and a `+1` under the new one, both under the requested date.

use std::collections::{BTreeMap, BTreeSet};

use domain::{
    ChargebackResolution, Currency, DisputeId, Money, PaymentEvent, PaymentId, PaymentMethodType, RefundRequestId,
    RefundStatus, ResultCode,
};
use eventlog::RecordedEvent;
use time::{Date, OffsetDateTime, UtcOffset};

use crate::error::ProjectionError;
use crate::model::{PaymentStatus, PaymentView, RefundView};

/// Prefix of the streams the projections read; every other stream is skipped (see [`Envelope::decode`]).
pub const PAYMENT_STREAM_PREFIX: &str = "payment-";

/// A decoded event of a payment stream with the envelope fields the folds use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Global position in the log.
    pub position: u64,
    /// The payment whose stream holds the event (from the stream name `payment-{paymentId}`; refund outcome
    /// events do not name their payment).
    pub payment_id: PaymentId,
    /// Revision in the payment's stream.
    pub revision: u64,
    /// When the log recorded it.
    pub recorded_at: OffsetDateTime,
    /// Who caused it (API key name, `apo-notify`, `worker`).
    pub actor: String,
    /// The event.
    pub event: PaymentEvent,
}

impl Envelope {
    /// Decodes a stored event: `Ok(None)` for an event of a stream that is not `payment-*` (other streams,
    /// such as a backend's `refund-request-{id}` uniqueness claims, carry no read-model facts and are passed
    /// over), [`ProjectionError::Decode`] for a payment event that does not decode.
    pub fn decode(recorded: &RecordedEvent) -> Result<Option<Envelope>, ProjectionError> {
        let Some(payment_id) = recorded.stream.as_str().strip_prefix(PAYMENT_STREAM_PREFIX) else {
            return Ok(None);
        };
        let payment_id = PaymentId::parse(payment_id).map_err(|error| ProjectionError::Inconsistent {
            position: recorded.position,
            reason: format!("stream {} does not name a payment: {error}", recorded.stream),
        })?;
        let event = PaymentEvent::from_stored(&recorded.event_type, recorded.schema_version, &recorded.payload, &[])
            .map_err(|source| ProjectionError::Decode {
                position: recorded.position,
                event_type: recorded.event_type.clone(),
                source,
            })?;
        Ok(Some(Envelope {
            position: recorded.position,
            payment_id,
            revision: recorded.revision,
            recorded_at: recorded.recorded_at,
            actor: recorded.actor.clone(),
            event,
        }))
    }
}

/// A run of the log to apply at once: the events of payment streams among the positions
/// `after_position + 1 ..= last_position` (events of other streams are not in `events` but are covered).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// The checkpoint the batch continues from: the stored checkpoint must be exactly this.
    pub after_position: u64,
    /// The last position the batch covers; the checkpoint after it.
    pub last_position: u64,
    /// The decoded payment events, in position order.
    pub events: Vec<Envelope>,
}

impl Batch {
    /// Checks the batch against the stored checkpoint: [`ProjectionError::CheckpointMoved`] when another
    /// writer went ahead, [`ProjectionError::Inconsistent`] when the batch's own positions are out of order.
    pub fn check(&self, stored_checkpoint: u64) -> Result<(), ProjectionError> {
        if stored_checkpoint != self.after_position {
            return Err(ProjectionError::CheckpointMoved {
                expected: self.after_position,
                actual: stored_checkpoint,
            });
        }
        let mut previous = self.after_position;
        for envelope in &self.events {
            if envelope.position <= previous || envelope.position > self.last_position {
                return Err(ProjectionError::Inconsistent {
                    position: envelope.position,
                    reason: format!(
                        "batch after {} through {} holds position {} after {previous}",
                        self.after_position, self.last_position, envelope.position
                    ),
                });
            }
            previous = envelope.position;
        }
        if self.last_position < self.after_position {
            return Err(ProjectionError::Inconsistent {
                position: self.last_position,
                reason: format!(
                    "batch ends at {} before it starts after {}",
                    self.last_position, self.after_position
                ),
            });
        }
        Ok(())
    }

    /// Folds the batch over the stored rows it touches (see [`BatchKeys::of`]).
    pub fn fold(&self, payments: Vec<PaymentRow>, refunds: Vec<RefundView>) -> Result<BatchFold, ProjectionError> {
        let mut fold = BatchFold::new(payments, refunds);
        for envelope in &self.events {
            fold.apply(envelope)?;
        }
        Ok(fold)
    }
}

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

/// The key of one daily total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DailyKey {
    /// UTC date the refunds were requested on.
    pub date: Date,
    /// Their currency.
    pub currency: Currency,
    /// Their status, by its stored code (so keys order as the stored rows do).
    pub status: StatusKey,
}

/// A [`RefundStatus`] that orders by its stored code, for [`DailyKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusKey(pub RefundStatus);

impl PartialOrd for StatusKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for StatusKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        refund_status_code(self.0).cmp(refund_status_code(other.0))
    }
}

/// How one daily total changes: added to the stored count and amount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DailyDelta {
    /// Change of the number of refunds.
    pub count: i64,
    /// Change of their summed amount, in minor units.
    pub amount_minor_units: i64,
}

/// The stored code of a refund status (`REQUESTED`, ...), as in the event JSON.
pub fn refund_status_code(status: RefundStatus) -> &'static str {
    match status {
        RefundStatus::Requested => "REQUESTED",
        RefundStatus::Processing => "PROCESSING",
        RefundStatus::Succeeded => "SUCCEEDED",
        RefundStatus::Failed => "FAILED",
        RefundStatus::Rejected => "REJECTED",
    }
}

/// Reads a code written by [`refund_status_code`].
pub fn parse_refund_status(code: &str) -> Option<RefundStatus> {
    [
        RefundStatus::Requested,
        RefundStatus::Processing,
        RefundStatus::Succeeded,
        RefundStatus::Failed,
        RefundStatus::Rejected,
    ]
    .into_iter()
    .find(|status| refund_status_code(*status) == code)
}

/// The rows a batch reads: every payment and refund its events name, as stored before the batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchKeys {
    /// Payments of the batch's streams.
    pub payment_ids: BTreeSet<PaymentId>,
    /// Refunds the batch's events name.
    pub refund_request_ids: BTreeSet<RefundRequestId>,
}

impl BatchKeys {
    /// The keys `batch` touches.
    pub fn of(batch: &[Envelope]) -> BatchKeys {
        let mut keys = BatchKeys::default();
        for envelope in batch {
            keys.payment_ids.insert(envelope.payment_id.clone());
            if let Some(refund_request_id) = envelope.event.refund_request_id() {
                keys.refund_request_ids.insert(refund_request_id.clone());
            }
        }
        keys
    }
}

/// Folds a batch of events over the rows it touches.
///
/// Load the rows named by [`BatchKeys::of`] into [`BatchFold::new`], [`BatchFold::apply`] every event in
/// position order, then write back [`BatchFold::changed_payments`], [`BatchFold::changed_refunds`] and add
/// [`BatchFold::daily_deltas`].
#[derive(Debug, Clone, Default)]
pub struct BatchFold {
    payments: BTreeMap<PaymentId, PaymentRow>,
    refunds: BTreeMap<RefundRequestId, RefundView>,
    daily: BTreeMap<DailyKey, DailyDelta>,
    changed_payments: BTreeSet<PaymentId>,
    changed_refunds: BTreeSet<RefundRequestId>,
    last_position: Option<u64>,
}

impl BatchFold {
    /// Starts a fold on the stored rows (rows not stored yet are simply absent).
    pub fn new(payments: Vec<PaymentRow>, refunds: Vec<RefundView>) -> BatchFold {
        BatchFold {
            payments: payments.into_iter().map(|row| (row.payment_id.clone(), row)).collect(),
            refunds: refunds
                .into_iter()
                .map(|row| (row.refund_request_id.clone(), row))
                .collect(),
            ..BatchFold::default()
        }
    }

    /// The position of the last event applied.
    pub fn last_position(&self) -> Option<u64> {
        self.last_position
    }

    /// A payment row as folded so far.
    pub fn payment(&self, payment_id: &PaymentId) -> Option<&PaymentRow> {
        self.payments.get(payment_id)
    }

    /// A refund row as folded so far.
    pub fn refund(&self, refund_request_id: &RefundRequestId) -> Option<&RefundView> {
        self.refunds.get(refund_request_id)
    }

    /// Every payment row held (loaded or created), by id.
    pub fn payments(&self) -> impl Iterator<Item = &PaymentRow> {
        self.payments.values()
    }

    /// Every refund row held (loaded or created), by id.
    pub fn refunds(&self) -> impl Iterator<Item = &RefundView> {
        self.refunds.values()
    }

    /// The payment rows the applied events created or changed.
    pub fn changed_payments(&self) -> impl Iterator<Item = &PaymentRow> {
        self.changed_payments.iter().filter_map(|id| self.payments.get(id))
    }

    /// The refund rows the applied events created or changed.
    pub fn changed_refunds(&self) -> impl Iterator<Item = &RefundView> {
        self.changed_refunds.iter().filter_map(|id| self.refunds.get(id))
    }

    /// The non-zero changes of the daily totals, in key order.
    pub fn daily_deltas(&self) -> impl Iterator<Item = (&DailyKey, &DailyDelta)> {
        self.daily.iter().filter(|(_, delta)| **delta != DailyDelta::default())
    }

    /// Folds one event. Positions must strictly increase; an event that contradicts the rows (see
    /// [`ProjectionError::Inconsistent`]) is refused and leaves the fold unchanged.
    pub fn apply(&mut self, envelope: &Envelope) -> Result<(), ProjectionError> {
        if self.last_position.is_some_and(|last| envelope.position <= last) {
            return Err(inconsistent(
                envelope,
                format!("position follows {}", self.last_position.unwrap_or_default()),
            ));
        }
        check_payment_id(envelope)?;
        if let PaymentEvent::RefundRequested(_) | PaymentEvent::RefundRejected(_) = &envelope.event {
            self.check_new_refund(envelope)?;
        }
        let Some(mut payment) = self.payments.get(&envelope.payment_id).cloned() else {
            self.apply_to_unknown_payment(envelope);
            self.last_position = Some(envelope.position);
            return Ok(());
        };
        let refund = self.outcome_target(envelope);
        let outcome = fold_event(&mut payment, refund, envelope)?;
        debug_assert!(
            payment.invariant_holds(),
            "refunded + pending exceeds captured for {} at position {}",
            payment.payment_id,
            envelope.position
        );
        self.commit(payment, outcome);
        self.last_position = Some(envelope.position);
        Ok(())
    }

    fn check_new_refund(&self, envelope: &Envelope) -> Result<(), ProjectionError> {
        let Some(refund_request_id) = envelope.event.refund_request_id() else {
            return Ok(());
        };
        match self.refunds.get(refund_request_id) {
            None => Ok(()),
            Some(existing) => Err(inconsistent(
                envelope,
                format!(
                    "refundRequestId {refund_request_id} is already a refund of payment {}",
                    existing.payment_id
                ),
            )),
        }
    }

    /// The refund an outcome event is about, if it belongs to the event's payment (the aggregate looks it up
    /// among its own refunds only).
    fn outcome_target(&self, envelope: &Envelope) -> Option<RefundView> {
        let refund_request_id = envelope.event.refund_request_id()?;
        self.refunds
            .get(refund_request_id)
            .filter(|refund| refund.payment_id == envelope.payment_id)
            .cloned()
    }

    fn apply_to_unknown_payment(&mut self, envelope: &Envelope) {
        let PaymentEvent::PaymentRecorded(recorded) = &envelope.event else {
            // The aggregate ignores events before PaymentRecorded; so do the read models.
            tracing::warn!(
                position = envelope.position,
                payment_id = %envelope.payment_id,
                event_type = envelope.event.event_type(),
                "event of an unrecorded payment has no effect"
            );
            return;
        };
        let currency = recorded.payment_amount.currency();
        let row = PaymentRow {
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
        };
        self.changed_payments.insert(row.payment_id.clone());
        self.payments.insert(row.payment_id.clone(), row);
    }

    fn commit(&mut self, payment: PaymentRow, outcome: EventOutcome) {
        if let Some(refund) = outcome.refund {
            let before = self.refunds.get(&refund.refund_request_id);
            for (key, delta) in daily_change(before, &refund) {
                let total = self.daily.entry(key).or_default();
                total.count += delta.count;
                total.amount_minor_units += delta.amount_minor_units;
            }
            mark(&mut self.changed_refunds, &refund.refund_request_id);
            put(&mut self.refunds, refund, |refund| &refund.refund_request_id);
        }
        mark(&mut self.changed_payments, &payment.payment_id);
        put(&mut self.payments, payment, |payment| &payment.payment_id);
    }
}

/// Adds `key` to `set` (cloning it only when it is new: a batch touches the same rows many times).
fn mark<K: Ord + Clone>(set: &mut BTreeSet<K>, key: &K) {
    if !set.contains(key) {
        set.insert(key.clone());
    }
}

/// Stores `row` under its key, replacing the stored row in place (no key cloned) when there is one.
fn put<K: Ord + Clone, V>(map: &mut BTreeMap<K, V>, row: V, key_of: impl Fn(&V) -> &K) {
    if let Some(stored) = map.get_mut(key_of(&row)) {
        *stored = row;
        return;
    }
    map.insert(key_of(&row).clone(), row);
}

/// What one event did besides changing its payment row.
#[derive(Debug)]
struct EventOutcome {
    /// The refund row created or changed.
    refund: Option<RefundView>,
}

fn inconsistent(envelope: &Envelope, reason: String) -> ProjectionError {
    ProjectionError::Inconsistent {
        position: envelope.position,
        reason,
    }
}

/// An event that names its payment must name the payment of its stream.
fn check_payment_id(envelope: &Envelope) -> Result<(), ProjectionError> {
    match envelope.event.payment_id() {
        Some(named) if *named != envelope.payment_id => Err(inconsistent(
            envelope,
            format!("event names payment {named} in the stream of {}", envelope.payment_id),
        )),
        _ => Ok(()),
    }
}

/// The daily-total changes of a refund moving from `before` (absent: new) to `after`.
fn daily_change(before: Option<&RefundView>, after: &RefundView) -> Vec<(DailyKey, DailyDelta)> {
    let key = |refund: &RefundView| DailyKey {
        date: refund.requested_at.to_offset(UtcOffset::UTC).date(),
        currency: refund.refund_amount.currency(),
        status: StatusKey(refund.status),
    };
    // Amounts are at most MINOR_UNITS_MAX (< 2^54), so they fit an i64.
    let amount = |refund: &RefundView| i64::try_from(refund.refund_amount.minor_units()).unwrap_or(i64::MAX);
    let mut changes = Vec::with_capacity(2);
    if let Some(before) = before {
        if key(before) == key(after) {
            return changes;
        }
        changes.push((
            key(before),
            DailyDelta {
                count: -1,
                amount_minor_units: -amount(before),
            },
        ));
    }
    changes.push((
        key(after),
        DailyDelta {
            count: 1,
            amount_minor_units: amount(after),
        },
    ));
    changes
}

/// Folds one event of a recorded payment: updates `payment` in place and returns the refund row it created
/// or changed. `refund` is the stored refund the event is about, if any.
fn fold_event(
    payment: &mut PaymentRow,
    refund: Option<RefundView>,
    envelope: &Envelope,
) -> Result<EventOutcome, ProjectionError> {
    payment.last_position = envelope.position;
    payment.updated_at = envelope.recorded_at;
    let refund = match &envelope.event {
        PaymentEvent::PaymentRecorded(_) => None,
        PaymentEvent::PaymentCaptured(captured) => {
            require_currency(envelope, payment, captured.capture_amount)?;
            payment.captured = captured.capture_amount;
            None
        }
        PaymentEvent::ChargebackOpened(opened) => {
            let dispute = Dispute {
                dispute_amount: opened.dispute_amount,
                resolution: None,
            };
            payment.disputes.insert(opened.dispute_id.clone(), dispute);
            None
        }
        PaymentEvent::ChargebackResolved(resolved) => {
            resolve_dispute(payment, resolved, envelope)?;
            None
        }
        PaymentEvent::RefundRequested(requested) => Some(request_refund(payment, requested, envelope)?),
        PaymentEvent::RefundRejected(rejected) => Some(reject_refund(payment, rejected, envelope)),
        PaymentEvent::RefundProcessing(_) => {
            refund
                .filter(|refund| refund.status == RefundStatus::Requested)
                .map(|mut refund| {
                    refund.status = RefundStatus::Processing;
                    touch(&mut refund, envelope);
                    refund
                })
        }
        PaymentEvent::RefundSucceeded(succeeded) => match refund.filter(|refund| refund.status.is_pending()) {
            None => None,
            Some(refund) => Some(settle_succeeded(payment, refund, succeeded, envelope)?),
        },
        PaymentEvent::RefundFailed(failed) => match refund.filter(|refund| refund.status.is_pending()) {
            None => None,
            Some(refund) => Some(settle_failed(payment, refund, failed, envelope)?),
        },
        PaymentEvent::RefundOutcomeAnomaly(_) => refund.map(|mut refund| {
            refund.anomaly_count = refund.anomaly_count.saturating_add(1);
            touch(&mut refund, envelope);
            refund
        }),
    };
    Ok(EventOutcome { refund })
}

fn resolve_dispute(
    payment: &mut PaymentRow,
    resolved: &domain::ChargebackResolved,
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

/// A new refund reserves its amount.
fn request_refund(
    payment: &mut PaymentRow,
    requested: &domain::RefundRequested,
    envelope: &Envelope,
) -> Result<RefundView, ProjectionError> {
    require_currency(envelope, payment, requested.refund_amount)?;
    payment.pending = add(envelope, payment.pending, requested.refund_amount)?;
    payment.refund_count = payment.refund_count.saturating_add(1);
    Ok(RefundView {
        refund_request_id: requested.refund_request_id.clone(),
        payment_id: payment.payment_id.clone(),
        refund_amount: requested.refund_amount,
        refund_reason: requested.refund_reason.clone(),
        status: RefundStatus::Requested,
        result_code: None,
        result_message: None,
        refund_id: None,
        requested_at: requested.requested_at,
        settled_at: None,
        requested_by: envelope.actor.clone(),
        anomaly_count: 0,
        last_position: envelope.position,
        updated_at: envelope.recorded_at,
    })
}

/// A refund the ledger refused reserves nothing; it is requested and settled at once.
fn reject_refund(payment: &mut PaymentRow, rejected: &domain::RefundRejected, envelope: &Envelope) -> RefundView {
    payment.refund_count = payment.refund_count.saturating_add(1);
    RefundView {
        refund_request_id: rejected.refund_request_id.clone(),
        payment_id: payment.payment_id.clone(),
        refund_amount: rejected.refund_amount,
        refund_reason: rejected.refund_reason.clone(),
        status: RefundStatus::Rejected,
        result_code: Some(rejected.result_code.clone()),
        result_message: Some(rejected.result_message.clone()),
        refund_id: None,
        requested_at: rejected.rejected_at,
        settled_at: Some(rejected.rejected_at),
        requested_by: envelope.actor.clone(),
        anomaly_count: 0,
        last_position: envelope.position,
        updated_at: envelope.recorded_at,
    }
}

/// A pending refund succeeded: its reservation becomes refunded money.
fn settle_succeeded(
    payment: &mut PaymentRow,
    mut refund: RefundView,
    succeeded: &domain::RefundSucceeded,
    envelope: &Envelope,
) -> Result<RefundView, ProjectionError> {
    payment.pending = subtract(envelope, payment.pending, refund.refund_amount)?;
    payment.refunded = add(envelope, payment.refunded, refund.refund_amount)?;
    refund.status = RefundStatus::Succeeded;
    refund.refund_id = Some(succeeded.refund_id.clone());
    refund.settled_at = Some(succeeded.refund_time);
    refund.result_code = Some(ResultCode::Success);
    touch(&mut refund, envelope);
    Ok(refund)
}

/// A pending refund failed: its reservation is released.
fn settle_failed(
    payment: &mut PaymentRow,
    mut refund: RefundView,
    failed: &domain::RefundFailed,
    envelope: &Envelope,
) -> Result<RefundView, ProjectionError> {
    payment.pending = subtract(envelope, payment.pending, refund.refund_amount)?;
    refund.status = RefundStatus::Failed;
    refund.settled_at = Some(failed.failed_at);
    refund.result_code = Some(failed.result_code.clone());
    refund.result_message = Some(failed.result_message.clone());
    touch(&mut refund, envelope);
    Ok(refund)
}

fn touch(refund: &mut RefundView, envelope: &Envelope) {
    refund.last_position = envelope.position;
    refund.updated_at = envelope.recorded_at;
}

fn require_currency(envelope: &Envelope, payment: &PaymentRow, amount: Money) -> Result<(), ProjectionError> {
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

fn add(envelope: &Envelope, total: Money, amount: Money) -> Result<Money, ProjectionError> {
    total
        .checked_add(amount)
        .ok_or_else(|| inconsistent(envelope, format!("{total} + {amount} is out of range")))
}

fn subtract(envelope: &Envelope, total: Money, amount: Money) -> Result<Money, ProjectionError> {
    total
        .checked_sub(amount)
        .ok_or_else(|| inconsistent(envelope, format!("{total} - {amount} is below zero")))
}

#[cfg(test)]
mod tests {
    use domain::{
        ChargebackOpened, PaymentCaptured, PaymentRecorded, RefundProcessing, RefundRequested, RefundSucceeded,
    };
    use eventlog::StreamName;
    use time::macros::{date, datetime};
    use uuid::Uuid;

    use super::*;

    const PAID_AT: OffsetDateTime = datetime!(2026-03-01 09:00 UTC);

    fn usd(minor_units: u64) -> Money {
        Money::from_minor_units("amount", Currency::parse("currency", "USD").unwrap(), minor_units).unwrap()
    }

    fn payment_id(id: &str) -> PaymentId {
        PaymentId::parse(id).unwrap()
    }

    fn refund_id(id: &str) -> RefundRequestId {
        RefundRequestId::parse(id).unwrap()
    }

    fn envelope(position: u64, payment: &str, event: PaymentEvent) -> Envelope {
        Envelope {
            position,
            payment_id: payment_id(payment),
            revision: position,
            recorded_at: PAID_AT + time::Duration::minutes(i64::try_from(position).unwrap()),
            actor: "tester".to_owned(),
            event,
        }
    }

    fn recorded(payment: &str, amount: u64, capture_required: bool) -> PaymentEvent {
        PaymentEvent::PaymentRecorded(PaymentRecorded {
            payment_id: payment_id(payment),
            payment_amount: usd(amount),
            payment_method_type: PaymentMethodType::parse("CARD").unwrap(),
            payment_time: PAID_AT,
            capture_required,
        })
    }

    fn requested(payment: &str, refund: &str, amount: u64, at: OffsetDateTime) -> PaymentEvent {
        PaymentEvent::RefundRequested(RefundRequested {
            refund_request_id: refund_id(refund),
            payment_id: payment_id(payment),
            refund_amount: usd(amount),
            refund_reason: None,
            requested_at: at,
        })
    }

    fn processing(refund: &str) -> PaymentEvent {
        PaymentEvent::RefundProcessing(RefundProcessing {
            refund_request_id: refund_id(refund),
            reason: "timeout".to_owned(),
            recorded_at: PAID_AT,
        })
    }

    fn succeeded(refund: &str, at: OffsetDateTime) -> PaymentEvent {
        PaymentEvent::RefundSucceeded(RefundSucceeded {
            refund_request_id: refund_id(refund),
            refund_id: domain::RefundId::parse("antom-1").unwrap(),
            refund_time: at,
            source: domain::OutcomeSource::Inquiry,
        })
    }

    fn deltas(fold: &BatchFold) -> Vec<(Date, RefundStatus, i64, i64)> {
        fold.daily_deltas()
            .map(|(key, delta)| (key.date, key.status.0, delta.count, delta.amount_minor_units))
            .collect()
    }

    #[test]
    fn balances_follow_requests_and_outcomes() {
        let late_evening = datetime!(2026-03-02 23:59 UTC);
        let mut fold = BatchFold::default();
        fold.apply(&envelope(1, "p1", recorded("p1", 1_000, true))).unwrap();
        assert_eq!(
            fold.payment(&payment_id("p1")).unwrap().status(),
            PaymentStatus::AwaitingCapture
        );
        let capture = PaymentEvent::PaymentCaptured(PaymentCaptured {
            payment_id: payment_id("p1"),
            capture_id: None,
            capture_amount: usd(800),
            capture_time: PAID_AT,
        });
        fold.apply(&envelope(2, "p1", capture)).unwrap();
        fold.apply(&envelope(3, "p1", requested("p1", "r1", 300, late_evening)))
            .unwrap();
        let row = fold.payment(&payment_id("p1")).unwrap();
        assert_eq!(
            (row.captured, row.pending, row.refundable()),
            (usd(800), usd(300), usd(500))
        );
        assert_eq!(
            (row.status(), row.refund_count, row.last_position),
            (PaymentStatus::PartiallyRefunded, 1, 3)
        );
        fold.apply(&envelope(4, "p1", processing("r1"))).unwrap();
        fold.apply(&envelope(5, "p1", succeeded("r1", datetime!(2026-03-03 08:00 UTC))))
            .unwrap();
        let row = fold.payment(&payment_id("p1")).unwrap();
        assert_eq!(
            (row.refunded, row.pending, row.refundable()),
            (usd(300), usd(0), usd(500))
        );
        let refund = fold.refund(&refund_id("r1")).unwrap();
        assert_eq!(
            (refund.status, refund.last_position, refund.requested_by.as_str()),
            (RefundStatus::Succeeded, 5, "tester")
        );
        // Requested, processing and succeeded in one batch: only the final status counts, under the
        // requested date (not the settled one).
        assert_eq!(
            deltas(&fold),
            vec![(date!(2026 - 03 - 02), RefundStatus::Succeeded, 1, 300)]
        );
        assert_eq!(fold.changed_refunds().count(), 1);
        assert_eq!(fold.last_position(), Some(5));
    }

    #[test]
    fn a_status_change_moves_the_daily_total_between_statuses() {
        let mut first = BatchFold::default();
        first.apply(&envelope(1, "p1", recorded("p1", 1_000, false))).unwrap();
        first
            .apply(&envelope(2, "p1", requested("p1", "r1", 400, PAID_AT)))
            .unwrap();
        first.apply(&envelope(3, "p1", processing("r1"))).unwrap();
        assert_eq!(
            deltas(&first),
            vec![(date!(2026 - 03 - 01), RefundStatus::Processing, 1, 400)]
        );

        let stored_payment = first.payment(&payment_id("p1")).unwrap().clone();
        let stored_refund = first.refund(&refund_id("r1")).unwrap().clone();
        let mut second = BatchFold::new(vec![stored_payment], vec![stored_refund]);
        second
            .apply(&envelope(4, "p1", succeeded("r1", datetime!(2026-03-05 08:00 UTC))))
            .unwrap();
        assert_eq!(
            deltas(&second),
            vec![
                (date!(2026 - 03 - 01), RefundStatus::Processing, -1, -400),
                (date!(2026 - 03 - 01), RefundStatus::Succeeded, 1, 400),
            ]
        );
        // A second success report changes nothing (the aggregate records it as an anomaly instead).
        second.apply(&envelope(5, "p1", succeeded("r1", PAID_AT))).unwrap();
        assert_eq!(second.payment(&payment_id("p1")).unwrap().refunded, usd(400));
        assert_eq!(second.refund(&refund_id("r1")).unwrap().last_position, 4);
    }

    #[test]
    fn a_chargeback_blocks_until_resolved_and_a_lost_one_is_not_refundable() {
        let mut fold = BatchFold::default();
        fold.apply(&envelope(1, "p1", recorded("p1", 1_000, false))).unwrap();
        let opened = PaymentEvent::ChargebackOpened(ChargebackOpened {
            payment_id: payment_id("p1"),
            dispute_id: DisputeId::parse("d1").unwrap(),
            dispute_amount: usd(600),
            opened_at: PAID_AT,
        });
        fold.apply(&envelope(2, "p1", opened)).unwrap();
        assert_eq!(
            fold.payment(&payment_id("p1")).unwrap().status(),
            PaymentStatus::InDispute
        );
        let resolved = PaymentEvent::ChargebackResolved(domain::ChargebackResolved {
            payment_id: payment_id("p1"),
            dispute_id: DisputeId::parse("d1").unwrap(),
            resolution: ChargebackResolution::CustomerWon,
            resolved_at: PAID_AT,
        });
        fold.apply(&envelope(3, "p1", resolved)).unwrap();
        let row = fold.payment(&payment_id("p1")).unwrap();
        assert_eq!(
            (row.status(), row.charged_back, row.refundable()),
            (PaymentStatus::Refundable, usd(600), usd(400))
        );
    }

    #[test]
    fn events_the_aggregate_ignores_change_no_balance() {
        let mut fold = BatchFold::default();
        // Before PaymentRecorded: nothing to apply it to.
        fold.apply(&envelope(1, "p1", requested("p1", "r0", 10, PAID_AT)))
            .unwrap();
        assert!(fold.payment(&payment_id("p1")).is_none() && fold.refund(&refund_id("r0")).is_none());
        fold.apply(&envelope(2, "p1", recorded("p1", 1_000, false))).unwrap();
        fold.apply(&envelope(3, "p2", recorded("p2", 1_000, false))).unwrap();
        fold.apply(&envelope(4, "p1", requested("p1", "r1", 100, PAID_AT)))
            .unwrap();
        // An outcome in p2's stream for p1's refund: the aggregate of p2 does not know r1.
        fold.apply(&envelope(5, "p2", succeeded("r1", PAID_AT))).unwrap();
        assert_eq!(fold.refund(&refund_id("r1")).unwrap().status, RefundStatus::Requested);
        assert_eq!(fold.payment(&payment_id("p2")).unwrap().refunded, usd(0));
        // A second PaymentRecorded is ignored too.
        fold.apply(&envelope(6, "p1", recorded("p1", 9_999, false))).unwrap();
        assert_eq!(fold.payment(&payment_id("p1")).unwrap().payment_amount, usd(1_000));
    }

    #[test]
    fn contradictions_are_refused_and_leave_the_fold_unchanged() {
        let mut fold = BatchFold::default();
        fold.apply(&envelope(1, "p1", recorded("p1", 1_000, false))).unwrap();
        fold.apply(&envelope(2, "p2", recorded("p2", 1_000, false))).unwrap();
        fold.apply(&envelope(3, "p1", requested("p1", "r1", 100, PAID_AT)))
            .unwrap();
        let before = (
            fold.payment(&payment_id("p2")).cloned(),
            fold.refund(&refund_id("r1")).cloned(),
        );
        let reused = fold.apply(&envelope(4, "p2", requested("p2", "r1", 100, PAID_AT)));
        assert!(
            matches!(reused, Err(ProjectionError::Inconsistent { position: 4, .. })),
            "{reused:?}"
        );
        let foreign = fold.apply(&envelope(5, "p2", requested("p1", "r2", 100, PAID_AT)));
        assert!(
            matches!(foreign, Err(ProjectionError::Inconsistent { position: 5, .. })),
            "{foreign:?}"
        );
        let backwards = fold.apply(&envelope(3, "p2", processing("r1")));
        assert!(
            matches!(backwards, Err(ProjectionError::Inconsistent { position: 3, .. })),
            "{backwards:?}"
        );
        assert_eq!(
            (
                fold.payment(&payment_id("p2")).cloned(),
                fold.refund(&refund_id("r1")).cloned()
            ),
            before
        );
        assert_eq!(fold.last_position(), Some(3));
    }

    #[test]
    fn batches_must_continue_from_the_stored_checkpoint() {
        let batch = Batch {
            after_position: 10,
            last_position: 12,
            events: vec![envelope(12, "p1", recorded("p1", 1, false))],
        };
        assert!(batch.check(10).is_ok());
        assert!(matches!(
            batch.check(11),
            Err(ProjectionError::CheckpointMoved {
                expected: 10,
                actual: 11
            })
        ));
        let outside = Batch {
            last_position: 11,
            ..batch.clone()
        };
        assert!(matches!(
            outside.check(10),
            Err(ProjectionError::Inconsistent { position: 12, .. })
        ));
    }

    fn stored(stream: &str, event_type: &str, payload: &[u8]) -> RecordedEvent {
        RecordedEvent {
            position: 7,
            stream: StreamName::parse(stream).unwrap(),
            revision: 0,
            event_id: Uuid::nil(),
            event_type: event_type.to_owned(),
            schema_version: 1,
            payload: payload.to_vec(),
            actor: "tester".to_owned(),
            recorded_at: PAID_AT,
            prev_hash: [0; 32],
            hash: [0; 32],
        }
    }

    #[test]
    fn only_payment_streams_are_decoded_and_a_bad_event_is_an_error() {
        assert_eq!(
            Envelope::decode(&stored("refund-request-r1", "Claimed", b"{}")).unwrap(),
            None
        );
        let stored_event = recorded("p1", 1_000, false).to_stored();
        let decoded = Envelope::decode(&stored("payment-p1", stored_event.event_type, &stored_event.data))
            .unwrap()
            .unwrap();
        assert_eq!((decoded.position, decoded.payment_id.as_str()), (7, "p1"));
        assert!(matches!(
            Envelope::decode(&stored("payment-p1", "PaymentTeleported", b"{}")),
            Err(ProjectionError::Decode { position: 7, .. })
        ));
        assert!(matches!(
            Envelope::decode(&stored("payment-p1", "PaymentRecorded", b"{\"paymentId\":1}")),
            Err(ProjectionError::Decode { position: 7, .. })
        ));
    }
}
