//! Batches: a run of the log folded at once over the rows it touches, yielding the changed rows and the daily
//! deltas. Each event goes to the concern it changes (balances, refunds), and the daily totals follow the refund
//! rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;

use ahash::RandomState;

use domain::{DisputeId, Money, PaymentEvent, PaymentId, RefundRequestId};
use time::OffsetDateTime;

use super::balances::{self, Dispute, PaymentRow};
use super::daily::{DailyDelta, DailyEntry, DailyKey, daily_change};
use super::envelope::{Envelope, check_payment_id, inconsistent};
use super::refunds;
use crate::anomaly::AnomalyView;
use crate::error::ProjectionError;
use crate::model::RefundView;

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
    /// The decoded events of reconciliation streams, in position order (docs/adr/003-reconciliation.md).
    pub reconciliations: Vec<crate::reconciliation::ReconciliationEnvelope>,
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
        self.fold_with_anomalies(payments, refunds, Vec::new())
    }

    /// Folds the batch over the stored rows it touches, anomalies of the acknowledged refunds included (see
    /// [`BatchKeys::of`]).
    pub fn fold_with_anomalies(
        &self,
        payments: Vec<PaymentRow>,
        refunds: Vec<RefundView>,
        anomalies: Vec<AnomalyView>,
    ) -> Result<BatchFold, ProjectionError> {
        let mut fold = BatchFold::new(payments, refunds).with_anomalies(anomalies);
        for envelope in &self.events {
            fold.apply(envelope)?;
        }
        Ok(fold)
    }
}

/// The rows a batch reads: every payment and refund its events name, as stored before the batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchKeys {
    /// Payments of the batch's streams.
    pub payment_ids: BTreeSet<PaymentId>,
    /// Refunds the batch's events name.
    pub refund_request_ids: BTreeSet<RefundRequestId>,
    /// Refunds whose anomalies the batch acknowledges: their stored anomaly rows are loaded too.
    pub acknowledged_refunds: BTreeSet<RefundRequestId>,
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
            if let PaymentEvent::AnomalyAcknowledged(acknowledged) = &envelope.event {
                keys.acknowledged_refunds.insert(acknowledged.refund_request_id.clone());
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
///
/// Rows are held in hash maps, each with whether an applied event created or changed it, so following a
/// refund costs one hash lookup to read its row and one to store it back, however many rows the fold holds
/// (audit replay holds them all); the accessors hand rows out in key order.
#[derive(Debug, Clone, Default)]
pub struct BatchFold {
    payments: Rows<PaymentId, PaymentRow>,
    refunds: Rows<RefundRequestId, RefundView>,
    daily: BTreeMap<DailyKey, DailyDelta>,
    anomalies: BTreeMap<(RefundRequestId, u32), AnomalyView>,
    changed_anomalies: BTreeSet<(RefundRequestId, u32)>,
    last_position: Option<u64>,
}

/// Rows by key. Hashed with aHash, keyed at random per process (a crafted set of ids cannot collide), several
/// times cheaper on short ids than the standard library's SipHash.
type Rows<K, R> = HashMap<K, Box<Held<R>>, RandomState>;

/// A row the fold holds, and whether an applied event created or changed it. Boxed in the maps, so a map
/// that grows moves pointers, not rows.
#[derive(Debug, Clone)]
struct Held<R> {
    row: R,
    changed: bool,
}

impl<R> Held<R> {
    fn loaded(row: R) -> Box<Held<R>> {
        Box::new(Held { row, changed: false })
    }
}

impl BatchFold {
    /// Starts a fold on the stored rows (rows not stored yet are simply absent).
    pub fn new(payments: Vec<PaymentRow>, refunds: Vec<RefundView>) -> BatchFold {
        BatchFold {
            payments: payments
                .into_iter()
                .map(|row| (row.payment_id.clone(), Held::loaded(row)))
                .collect(),
            refunds: refunds
                .into_iter()
                .map(|row| (row.refund_request_id.clone(), Held::loaded(row)))
                .collect(),
            ..BatchFold::default()
        }
    }

    /// Adds the stored anomaly rows the batch may acknowledge (see [`BatchKeys::acknowledged_refunds`]).
    pub fn with_anomalies(mut self, anomalies: Vec<AnomalyView>) -> BatchFold {
        self.anomalies
            .extend(anomalies.into_iter().map(|anomaly| (anomaly.key(), anomaly)));
        self
    }

    /// Every anomaly row held (loaded or created), by refund and number.
    pub fn anomalies(&self) -> impl Iterator<Item = &AnomalyView> {
        self.anomalies.values()
    }

    /// The anomaly rows the applied events created or acknowledged.
    pub fn changed_anomalies(&self) -> impl Iterator<Item = &AnomalyView> {
        self.changed_anomalies.iter().filter_map(|key| self.anomalies.get(key))
    }

    /// The position of the last event applied.
    pub fn last_position(&self) -> Option<u64> {
        self.last_position
    }

    /// A payment row as folded so far.
    pub fn payment(&self, payment_id: &PaymentId) -> Option<&PaymentRow> {
        self.payments.get(payment_id).map(|held| &held.row)
    }

    /// A refund row as folded so far.
    pub fn refund(&self, refund_request_id: &RefundRequestId) -> Option<&RefundView> {
        self.refunds.get(refund_request_id).map(|held| &held.row)
    }

    /// Every payment row held (loaded or created), by id.
    pub fn payments(&self) -> impl Iterator<Item = &PaymentRow> {
        in_key_order(&self.payments, |_| true, |row| row.payment_id.as_str())
    }

    /// Every refund row held (loaded or created), by id.
    pub fn refunds(&self) -> impl Iterator<Item = &RefundView> {
        in_key_order(&self.refunds, |_| true, |row| row.refund_request_id.as_str())
    }

    /// How many payment rows the fold holds.
    pub fn payments_held(&self) -> usize {
        self.payments.len()
    }

    /// How many refund rows the fold holds.
    pub fn refunds_held(&self) -> usize {
        self.refunds.len()
    }

    /// The payment rows the applied events created or changed, by id.
    pub fn changed_payments(&self) -> impl Iterator<Item = &PaymentRow> {
        in_key_order(&self.payments, |held| held.changed, |row| row.payment_id.as_str())
    }

    /// The refund rows the applied events created or changed, by id.
    pub fn changed_refunds(&self) -> impl Iterator<Item = &RefundView> {
        in_key_order(&self.refunds, |held| held.changed, |row| row.refund_request_id.as_str())
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
        let new_refund = matches!(
            &envelope.event,
            PaymentEvent::RefundRequested(_) | PaymentEvent::RefundRejected(_)
        );
        if new_refund {
            self.check_new_refund(envelope)?;
        }
        // The payment row and an outcome's refund row are folded in place (no copy of either): every check
        // that can refuse the event runs before the refund changes, and a refused event puts the payment back.
        let Some(held) = self.payments.get_mut(&envelope.payment_id) else {
            self.apply_to_unknown_payment(envelope);
            self.last_position = Some(envelope.position);
            return Ok(());
        };
        // A new refund has no stored row (checked above).
        let mut refund = if new_refund {
            None
        } else {
            outcome_target(&mut self.refunds, envelope)
        };
        let before = refund.as_deref().map(|held| DailyEntry::of(&held.row));
        let payment = &mut held.row;
        let saved = Saved::of(payment, &envelope.event);
        let change = match fold_event(payment, refund.as_deref_mut().map(|held| &mut held.row), envelope) {
            Ok(change) => change,
            Err(error) => {
                saved.restore(payment);
                return Err(error);
            }
        };
        debug_assert!(
            payment.invariant_holds(),
            "refunded + pending exceeds captured for {} at position {}",
            payment.payment_id,
            envelope.position
        );
        held.changed = true;
        let anomaly = match change {
            RefundChange::Unchanged => anomaly_change(&self.anomalies, envelope, None),
            // `fold_event` reports a change only of the refund it was given, so `refund` is there.
            RefundChange::Changed => refund.and_then(|held| {
                held.changed = true;
                add_daily(&mut self.daily, before, &held.row);
                anomaly_change(&self.anomalies, envelope, Some(&held.row))
            }),
            RefundChange::New(row) => {
                add_daily(&mut self.daily, None, &row);
                let anomaly = anomaly_change(&self.anomalies, envelope, Some(&row));
                self.refunds
                    .insert(row.refund_request_id.clone(), Box::new(Held { row, changed: true }));
                anomaly
            }
        };
        if let Some(anomaly) = anomaly {
            let key = anomaly.key();
            self.changed_anomalies.insert(key.clone());
            self.anomalies.insert(key, anomaly);
        }
        self.last_position = Some(envelope.position);
        Ok(())
    }

    fn check_new_refund(&self, envelope: &Envelope) -> Result<(), ProjectionError> {
        let Some(refund_request_id) = envelope.event.refund_request_id() else {
            return Ok(());
        };
        match self.refund(refund_request_id) {
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
        let row = PaymentRow::recorded(recorded, envelope);
        put(&mut self.payments, row, |row| &row.payment_id);
    }
}

/// The refund an outcome event is about, if it belongs to the event's payment (the aggregate looks it up
/// among its own refunds only).
fn outcome_target<'a>(
    refunds: &'a mut Rows<RefundRequestId, RefundView>,
    envelope: &Envelope,
) -> Option<&'a mut Box<Held<RefundView>>> {
    let refund_request_id = envelope.event.refund_request_id()?;
    refunds
        .get_mut(refund_request_id)
        .filter(|held| held.row.payment_id == envelope.payment_id)
}

/// The anomaly row an event records or acknowledges: a `RefundOutcomeAnomaly` on a refund of the payment is
/// the refund's next anomaly (`refund` is the refund as the event left it); an `AnomalyAcknowledged`
/// acknowledges a stored, unacknowledged one (as the aggregate records only those).
fn anomaly_change(
    anomalies: &BTreeMap<(RefundRequestId, u32), AnomalyView>,
    envelope: &Envelope,
    refund: Option<&RefundView>,
) -> Option<AnomalyView> {
    match &envelope.event {
        PaymentEvent::RefundOutcomeAnomaly(anomaly) => {
            refund.map(|refund| AnomalyView::recorded(envelope, anomaly, refund.anomaly_count))
        }
        PaymentEvent::AnomalyAcknowledged(acknowledged) => anomalies
            .get(&(acknowledged.refund_request_id.clone(), acknowledged.anomaly))
            .filter(|stored| stored.payment_id == envelope.payment_id && stored.acknowledgement.is_none())
            .map(|stored| stored.clone().acknowledged(envelope, acknowledged)),
        _ => None,
    }
}

/// Adds to the daily totals the move of a refund from where it counted `before` (absent: new) to `refund`.
fn add_daily(daily: &mut BTreeMap<DailyKey, DailyDelta>, before: Option<DailyEntry>, refund: &RefundView) {
    for (key, delta) in daily_change(before, refund) {
        let total = daily.entry(key).or_default();
        total.count += delta.count;
        total.amount_minor_units += delta.amount_minor_units;
    }
}

/// Stores `row` under its key as changed, replacing the held row in place (no key cloned) when there is one.
fn put<K: Hash + Eq + Clone, V>(map: &mut Rows<K, V>, row: V, key_of: impl Fn(&V) -> &K) {
    if let Some(held) = map.get_mut(key_of(&row)) {
        held.row = row;
        held.changed = true;
        return;
    }
    map.insert(key_of(&row).clone(), Box::new(Held { row, changed: true }));
}

/// The rows of `map` that `pick` keeps, sorted by their key (an id's text, which orders as the id does).
///
/// Sorted on the keys' first [`KEY_PREFIX_BYTES`] bytes held beside each row, so most comparisons read no row:
/// a fold of every row (audit replay) sorts hundreds of thousands, scattered over the heap. Prefixes are
/// zero-padded, so two that differ order as their keys do; equal prefixes fall back to the whole keys.
fn in_key_order<K, V>(
    map: &Rows<K, V>,
    pick: impl Fn(&Held<V>) -> bool,
    key_of: impl Fn(&V) -> &str,
) -> impl Iterator<Item = &V> {
    let mut rows: Vec<([u8; KEY_PREFIX_BYTES], &V)> = map
        .values()
        .filter(|held| pick(held))
        .map(|held| (key_prefix(key_of(&held.row)), &held.row))
        .collect();
    rows.sort_unstable_by(|(left_prefix, left), (right_prefix, right)| {
        left_prefix
            .cmp(right_prefix)
            .then_with(|| key_of(left).cmp(key_of(right)))
    });
    rows.into_iter().map(|(_, row)| row)
}

/// Bytes of a key compared before the whole key in [`in_key_order`].
const KEY_PREFIX_BYTES: usize = 16;

fn key_prefix(key: &str) -> [u8; KEY_PREFIX_BYTES] {
    let mut prefix = [0; KEY_PREFIX_BYTES];
    let bytes = key.as_bytes();
    let length = bytes.len().min(KEY_PREFIX_BYTES);
    prefix[..length].copy_from_slice(&bytes[..length]);
    prefix
}

/// What a refused event may have changed of a payment row before it was refused, to put back.
#[derive(Debug)]
struct Saved {
    captured: Money,
    refunded: Money,
    pending: Money,
    charged_back: Money,
    refund_count: u32,
    last_position: u64,
    updated_at: OffsetDateTime,
    /// Only a chargeback's events change the disputes.
    disputes: Option<BTreeMap<DisputeId, Dispute>>,
}

impl Saved {
    fn of(payment: &PaymentRow, event: &PaymentEvent) -> Saved {
        let touches_disputes = matches!(
            event,
            PaymentEvent::ChargebackOpened(_) | PaymentEvent::ChargebackResolved(_)
        );
        Saved {
            captured: payment.captured,
            refunded: payment.refunded,
            pending: payment.pending,
            charged_back: payment.charged_back,
            refund_count: payment.refund_count,
            last_position: payment.last_position,
            updated_at: payment.updated_at,
            disputes: touches_disputes.then(|| payment.disputes.clone()),
        }
    }

    fn restore(self, payment: &mut PaymentRow) {
        payment.captured = self.captured;
        payment.refunded = self.refunded;
        payment.pending = self.pending;
        payment.charged_back = self.charged_back;
        payment.refund_count = self.refund_count;
        payment.last_position = self.last_position;
        payment.updated_at = self.updated_at;
        if let Some(disputes) = self.disputes {
            payment.disputes = disputes;
        }
    }
}

/// What one event did to a refund row.
#[derive(Debug)]
// A new row is returned once per event and moved straight into the map's box: boxing it here would only add
// an allocation.
#[allow(clippy::large_enum_variant)]
enum RefundChange {
    /// Nothing.
    Unchanged,
    /// Changed the refund row it is about, in place.
    Changed,
    /// Created this row.
    New(RefundView),
}

/// Folds one event of a recorded payment: updates `payment` and the refund the event is about (`refund`, the
/// stored row if any) in place, after every check that can refuse it, and says what it did to a refund.
fn fold_event(
    payment: &mut PaymentRow,
    refund: Option<&mut RefundView>,
    envelope: &Envelope,
) -> Result<RefundChange, ProjectionError> {
    payment.last_position = envelope.position;
    payment.updated_at = envelope.recorded_at;
    Ok(match &envelope.event {
        PaymentEvent::PaymentRecorded(_) => RefundChange::Unchanged,
        PaymentEvent::PaymentCaptured(captured) => {
            balances::capture(payment, captured, envelope)?;
            RefundChange::Unchanged
        }
        PaymentEvent::ChargebackOpened(opened) => {
            balances::open_dispute(payment, opened);
            RefundChange::Unchanged
        }
        PaymentEvent::ChargebackResolved(resolved) => {
            balances::resolve_dispute(payment, resolved, envelope)?;
            RefundChange::Unchanged
        }
        PaymentEvent::RefundRequested(requested) => {
            RefundChange::New(refunds::request_refund(payment, requested, envelope)?)
        }
        PaymentEvent::RefundRejected(rejected) => {
            RefundChange::New(refunds::reject_refund(payment, rejected, envelope))
        }
        PaymentEvent::RefundProcessing(_) => {
            changed(refund.is_some_and(|refund| refunds::mark_processing(refund, envelope)))
        }
        PaymentEvent::RefundSucceeded(succeeded) => match pending(refund) {
            None => RefundChange::Unchanged,
            Some(refund) => {
                refunds::settle_succeeded(payment, refund, succeeded, envelope)?;
                RefundChange::Changed
            }
        },
        PaymentEvent::RefundFailed(failed) => match pending(refund) {
            None => RefundChange::Unchanged,
            Some(refund) => {
                refunds::settle_failed(payment, refund, failed, envelope)?;
                RefundChange::Changed
            }
        },
        PaymentEvent::RefundOutcomeAnomaly(_) => {
            changed(refund.map(|refund| refunds::count_anomaly(refund, envelope)).is_some())
        }
        // An acknowledgement changes no refund: only its anomaly row (see `anomaly_change`).
        PaymentEvent::AnomalyAcknowledged(_) => RefundChange::Unchanged,
    })
}

/// The refund, if it is still pending (only a pending refund settles).
fn pending(refund: Option<&mut RefundView>) -> Option<&mut RefundView> {
    refund.filter(|refund| refund.status.is_pending())
}

fn changed(changed: bool) -> RefundChange {
    if changed {
        RefundChange::Changed
    } else {
        RefundChange::Unchanged
    }
}
