//! `replay`: rebuild every projection (payment balances, refunds, daily totals) from position 1 with the
//! very folds the projection runner uses ([`projections::fold`]), in memory, then compare it row by row
//! with the live read models.
//!
//! In memory rather than in scratch tables: the folds are pure, so a [`BatchFold`] holding every row *is*
//! the rebuilt read model, without a second schema to keep in step. The rebuilt state is rendered in key
//! order ([`Rebuilt::canonical_bytes`], a compact length-prefixed encoding) and hashed into a state digest:
//! the same log gives byte-identical bytes and the same digest, whatever the batch sizes.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use domain::{PaymentId, RefundRequestId, ReportedOutcome};
use eventlog::{EventBatch, EventStore, EventView};
use projections::fold::{BatchFold, refund_status_code};
use projections::{
    AnomalyView, Envelope, PAGE_SIZE_MAX, PaymentFilter, PaymentView, ReadModels, RefundFilter, RefundView,
    outcome_source_code,
};
use sha2::{Digest as _, Sha256};
use time::{Date, Month, OffsetDateTime};
use tokio::sync::mpsc;

use crate::error::AuditError;

/// Where a replay stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayEnd {
    /// At this position (or the head, if it is earlier).
    Position(u64),
    /// After the last event recorded at or before this time (on a sparse log, whose times only increase per
    /// stream: before the first event, in log order, recorded after it).
    AsOf(OffsetDateTime),
}

/// Daily totals keyed by (UTC date, currency code, status code): (count, amount in minor units).
pub type DailyTotals = BTreeMap<(Date, &'static str, &'static str), (i64, i64)>;

/// Every projection rebuilt from the log.
#[derive(Debug, Clone, Default)]
pub struct Rebuilt {
    fold: BatchFold,
    /// Reconciliation runs and findings (docs/adr/003-reconciliation.md).
    reconciliations: projections::ReconciliationFold,
    /// The last position folded.
    pub last_position: u64,
    /// Payment events folded.
    pub events: u64,
}

impl Rebuilt {
    /// The daily totals, rows with a zero count left out (as the read models leave them out).
    pub fn daily_totals(&self) -> DailyTotals {
        self.fold
            .daily_deltas()
            .filter(|(_, delta)| delta.count != 0)
            .map(|(key, delta)| {
                (
                    (key.date, key.currency.code(), refund_status_code(key.status.0)),
                    (delta.count, delta.amount_minor_units),
                )
            })
            .collect()
    }

    /// The rebuilt rows in key order (payments, refunds, daily totals) in their canonical encoding (see
    /// [`Canonical`]): equal logs give equal bytes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.encode(&mut |part: &[u8]| bytes.extend_from_slice(part));
        bytes
    }

    /// SHA-256 of [`Rebuilt::canonical_bytes`], hex; the bytes are hashed as they are made, a buffer of
    /// [`DIGEST_BUFFER_BYTES`] at a time (one hasher call per field would cost more than the hashing), never
    /// held whole, on a thread of its own while this one encodes the next buffers.
    pub fn state_digest(&self) -> String {
        let (full, to_hash) = std::sync::mpsc::sync_channel::<Vec<u8>>(DIGEST_BUFFERS_AHEAD);
        let (hashed, emptied) = std::sync::mpsc::channel::<Vec<u8>>();
        std::thread::scope(|scope| {
            let hashing = scope.spawn(move || {
                let mut hasher = Sha256::new();
                for buffer in to_hash {
                    hasher.update(&buffer);
                    // The encoder may be done; then the buffer is simply freed.
                    let _ = hashed.send(buffer);
                }
                hex::encode(hasher.finalize())
            });
            let mut buffer = Vec::with_capacity(DIGEST_BUFFER_BYTES);
            self.encode(&mut |part: &[u8]| {
                buffer.extend_from_slice(part);
                if buffer.len() >= DIGEST_BUFFER_BYTES {
                    let next = match emptied.try_recv() {
                        Ok(mut used) => {
                            used.clear();
                            used
                        }
                        Err(_) => Vec::with_capacity(DIGEST_BUFFER_BYTES),
                    };
                    // A send fails only if the hashing thread panicked; joining it below raises that panic.
                    let _ = full.send(std::mem::replace(&mut buffer, next));
                }
            });
            let _ = full.send(buffer);
            drop(full);
            match hashing.join() {
                Ok(digest) => digest,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    fn encode(&self, sink: &mut dyn FnMut(&[u8])) {
        let mut out = Canonical { sink };
        out.raw(STATE_FORMAT_TAG);
        out.number(self.last_position);
        for payment in self.fold.payments() {
            let view = payment.view();
            out.raw(b"P");
            out.text(view.payment_id.as_str());
            out.money(view.payment_amount);
            out.text(view.payment_method_type.as_str());
            out.time(view.payment_time);
            out.flag(view.capture_required);
            for amount in [
                view.captured,
                view.refunded,
                view.pending,
                view.charged_back,
                view.refundable,
            ] {
                out.money(amount);
            }
            out.text(view.status.as_str());
            out.flag(view.open_chargeback);
            out.number(u64::from(view.refund_count));
            out.number(view.last_position);
            out.time(view.updated_at);
        }
        for refund in self.fold.refunds() {
            out.raw(b"R");
            out.text(refund.refund_request_id.as_str());
            out.text(refund.payment_id.as_str());
            out.money(refund.refund_amount);
            out.optional_text(refund.refund_reason.as_deref());
            out.text(refund_status_code(refund.status));
            out.optional_text(refund.result_code.as_ref().map(|code| code.as_str()));
            out.optional_text(refund.result_message.as_deref());
            out.optional_text(refund.refund_id.as_ref().map(|id| id.as_str()));
            out.time(refund.requested_at);
            match refund.settled_at {
                Some(settled_at) => {
                    out.flag(true);
                    out.time(settled_at);
                }
                None => out.flag(false),
            }
            out.text(&refund.requested_by);
            out.number(u64::from(refund.anomaly_count));
            out.number(refund.last_position);
            out.time(refund.updated_at);
        }
        for ((date, currency, status), (count, amount)) in self.daily_totals() {
            out.raw(b"D");
            out.time(date.midnight().assume_utc());
            out.text(currency);
            out.text(status);
            out.signed(count);
            out.signed(amount);
        }
        for (_, anomaly) in self.anomalies_by_position() {
            out.raw(b"A");
            for (_, value) in anomaly_fields(anomaly) {
                out.text(&value);
            }
        }
    }

    /// The rebuilt anomalies in position order.
    fn anomalies_by_position(&self) -> BTreeMap<u64, &AnomalyView> {
        self.fold
            .anomalies()
            .map(|anomaly| (anomaly.position, anomaly))
            .collect()
    }

    /// Rebuilt anomalies.
    pub fn anomaly_count(&self) -> usize {
        self.fold.anomalies().count()
    }

    /// Rebuilt payments.
    pub fn payment_count(&self) -> usize {
        self.fold.payments_held()
    }

    /// Rebuilt refunds.
    pub fn refund_count(&self) -> usize {
        self.fold.refunds_held()
    }
}

/// Bytes of the canonical encoding gathered before each call to the hasher in [`Rebuilt::state_digest`].
const DIGEST_BUFFER_BYTES: usize = 64 * 1024;

/// Full buffers waiting for the hasher at most in [`Rebuilt::state_digest`].
const DIGEST_BUFFERS_AHEAD: usize = 4;

/// Tags the state encoding; a change to it gets a new tag.
const STATE_FORMAT_TAG: &[u8] = b"refund-ledger/replay/state/v3";

/// The canonical encoding of rebuilt rows: a row kind byte (`P`, `R`, `D`, `A`), then its fields in declaration
/// order (an anomaly's as the texts of [`anomaly_fields`]); text as a big-endian u64 byte count and the UTF-8 bytes, numbers big-endian, amounts as the currency
/// code and the minor units, times as i128 nanoseconds since the Unix epoch, optional fields after a 0/1 byte.
/// Fixed-width and length-prefixed like the event hash (docs/adr/002), so no two states encode alike.
struct Canonical<'a> {
    sink: &'a mut dyn FnMut(&[u8]),
}

impl Canonical<'_> {
    fn raw(&mut self, bytes: &[u8]) {
        (self.sink)(bytes);
    }

    fn number(&mut self, value: u64) {
        self.raw(&value.to_be_bytes());
    }

    fn signed(&mut self, value: i64) {
        self.raw(&value.to_be_bytes());
    }

    fn flag(&mut self, value: bool) {
        self.raw(&[u8::from(value)]);
    }

    fn text(&mut self, text: &str) {
        // usize -> u64 is lossless on every supported platform.
        self.number(text.len() as u64);
        self.raw(text.as_bytes());
    }

    fn optional_text(&mut self, text: Option<&str>) {
        match text {
            Some(text) => {
                self.flag(true);
                self.text(text);
            }
            None => self.flag(false),
        }
    }

    fn money(&mut self, amount: domain::Money) {
        self.text(amount.currency().code());
        self.number(amount.minor_units());
    }

    fn time(&mut self, time: OffsetDateTime) {
        self.raw(&time.unix_timestamp_nanos().to_be_bytes());
    }
}

/// The position a replay to `end` stops at, on a log whose head is `head`.
pub async fn end_position(store: &dyn EventStore, end: ReplayEnd, head: u64) -> Result<u64, AuditError> {
    match end {
        ReplayEnd::Position(position) => Ok(position.min(head)),
        ReplayEnd::AsOf(time) => {
            let after = time + time::Duration::nanoseconds(1);
            crate::export::last_position_before(store, after, head).await
        }
    }
}

/// Folds positions `1..=end` of `store`, calling `progress(position)` with the position folded so far after
/// each batch read, and once more at the end.
///
/// Three stages, each on its own thread, so a rebuild costs about its slowest stage rather than their sum:
/// the log is scanned once ([`eventlog::scan()`]: on SQLite one read transaction, read ahead on the store's own
/// thread), this task decodes each batch's payloads into envelopes, and a blocking thread folds them in order.
/// The fold stops at the first event it cannot fold; a decode or read error is reported after every event
/// before it was folded, as the fold would have met it.
#[tracing::instrument(skip(store, progress))]
pub async fn rebuild(
    store: &dyn EventStore,
    end: u64,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<Rebuilt, AuditError> {
    if end == 0 {
        return Ok(Rebuilt::default());
    }
    let mut scan = eventlog::scan(store, 1, end).await?;
    let (sender, receiver) = mpsc::channel(DECODED_BATCHES_AHEAD);
    // Folded envelopes come back to be freed here, where they were allocated (the allocator's cheap path),
    // not on the fold's thread; their vectors are used again.
    let (spent_sender, mut spent) = mpsc::unbounded_channel::<Vec<DecodedEvent>>();
    let folded = Arc::new(AtomicU64::new(0));
    let fold = tokio::task::spawn_blocking({
        let folded = Arc::clone(&folded);
        move || fold_decoded(receiver, &spent_sender, &folded)
    });
    let mut next = scan.next().await;
    loop {
        let batch = match next {
            None => break,
            Some(Err(error)) => {
                // A closed channel means the fold stopped on an error of its own, the one reported.
                let _ = sender.send(Err(error.into())).await;
                break;
            }
            Some(Ok(batch)) => batch,
        };
        // The next read is polled first, so it is under way while this batch is decoded and handed over.
        let hand_over = async {
            let mut events = Vec::new();
            while let Ok(mut folded_events) = spent.try_recv() {
                folded_events.clear();
                events = folded_events;
            }
            let decoded = decode_batch(&batch, events);
            let failed = decoded.error.is_some();
            sender.send(Ok(decoded)).await.is_ok() && !failed
        };
        let (prefetched, handed_over) = futures_util::future::join(scan.next(), hand_over).await;
        if !handed_over {
            break;
        }
        progress(folded.load(Ordering::Relaxed));
        next = prefetched;
    }
    drop(sender);
    let rebuilt = match fold.await {
        Ok(rebuilt) => rebuilt?,
        // A panic of the fold is this task's, as it was when the fold ran here.
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => {
            return Err(AuditError::Replay {
                position: folded.load(Ordering::Relaxed) + 1,
                reason: format!("the fold was cancelled: {error}"),
            });
        }
    };
    progress(rebuilt.last_position);
    if rebuilt.last_position < end {
        // Every event up to `end` was folded only if the next one lies past it (on a sparse log) or the log
        // does not end before `end`.
        let next = store.read_all(rebuilt.last_position + 1, 1).await?;
        if next.first().is_none_or(|event| event.position <= end) {
            return Err(AuditError::Replay {
                position: rebuilt.last_position + 1,
                reason: format!("the log ends before position {end}"),
            });
        }
    }
    Ok(rebuilt)
}

/// Decoded batches waiting for the fold at most.
const DECODED_BATCHES_AHEAD: usize = 4;

/// A scan's batch decoded for the fold.
#[derive(Debug)]
struct DecodedBatch {
    /// The events of payment and reconciliation streams, in position order (up to `error`, if any).
    events: Vec<DecodedEvent>,
    /// The position of the last event read before `error` (or of the batch): events of other streams count.
    last_position: u64,
    /// Why the event after `last_position` does not decode; the replay stops there.
    error: Option<AuditError>,
}

#[derive(Debug)]
enum DecodedEvent {
    Payment(Envelope),
    Reconciliation(projections::ReconciliationEnvelope),
}

/// Decodes `batch` into `events` (empty, its capacity used again).
fn decode_batch(batch: &EventBatch, mut events: Vec<DecodedEvent>) -> DecodedBatch {
    events.reserve(batch.len());
    let mut decoded = DecodedBatch {
        events,
        last_position: 0,
        error: None,
    };
    for recorded in batch.iter() {
        match decode_event(&recorded) {
            Ok(Some(event)) => decoded.events.push(event),
            Ok(None) => {}
            Err(error) => {
                decoded.error = Some(error);
                return decoded;
            }
        }
        decoded.last_position = recorded.position;
    }
    decoded
}

fn decode_event(recorded: &EventView<'_>) -> Result<Option<DecodedEvent>, AuditError> {
    if let Some(envelope) = Envelope::decode_view(recorded).map_err(|error| replay_error(recorded.position, &error))? {
        return Ok(Some(DecodedEvent::Payment(envelope)));
    }
    Ok(projections::ReconciliationEnvelope::decode_view(recorded)
        .map_err(|error| replay_error(recorded.position, &error))?
        .map(DecodedEvent::Reconciliation))
}

fn replay_error(position: u64, error: &projections::ProjectionError) -> AuditError {
    AuditError::Replay {
        position,
        reason: error.to_string(),
    }
}

/// Folds the decoded batches in order until the channel closes or an event cannot be folded; stores the
/// position folded so far in `folded` and sends the folded events to `spent` after each batch.
fn fold_decoded(
    mut receiver: mpsc::Receiver<Result<DecodedBatch, AuditError>>,
    spent: &mpsc::UnboundedSender<Vec<DecodedEvent>>,
    folded: &AtomicU64,
) -> Result<Rebuilt, AuditError> {
    let mut rebuilt = Rebuilt::default();
    while let Some(batch) = receiver.blocking_recv() {
        let batch = batch?;
        for event in &batch.events {
            match event {
                DecodedEvent::Payment(envelope) => {
                    rebuilt
                        .fold
                        .apply(envelope)
                        .map_err(|error| replay_error(envelope.position, &error))?;
                    rebuilt.events += 1;
                }
                DecodedEvent::Reconciliation(envelope) => rebuilt.reconciliations.apply(envelope),
            }
        }
        if batch.last_position > rebuilt.last_position {
            rebuilt.last_position = batch.last_position;
        }
        folded.store(rebuilt.last_position, Ordering::Relaxed);
        if let Some(error) = batch.error {
            return Err(error);
        }
        // Once the decoding side is gone nobody takes them back: they are freed here.
        let _ = spent.send(batch.events);
    }
    Ok(rebuilt)
}

/// One row that differs between the live read models and the rebuilt ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// `payment`, `refund` or `daily total`.
    pub table: &'static str,
    /// The row's key.
    pub key: String,
    /// The live row (`None`: missing there).
    pub live: Option<String>,
    /// The rebuilt row (`None`: missing there).
    pub rebuilt: Option<String>,
}

/// Compares every live row with the rebuilt one (and finds rows only one side has).
pub async fn compare(rebuilt: &Rebuilt, live: &dyn ReadModels) -> Result<Vec<Difference>, AuditError> {
    let mut differences = Vec::new();
    compare_payments(rebuilt, live, &mut differences).await?;
    compare_refunds(rebuilt, live, &mut differences).await?;
    compare_daily_totals(rebuilt, live, &mut differences).await?;
    compare_anomalies(rebuilt, live, &mut differences).await?;
    compare_reconciliations(rebuilt, live, &mut differences).await?;
    Ok(differences)
}

/// The named fields of an anomaly row, for a field-by-field comparison and the canonical encoding.
fn anomaly_fields(view: &AnomalyView) -> Vec<(&'static str, String)> {
    let acknowledgement = view.acknowledgement.as_ref();
    let optional = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
    let (reported_status, reported_value) = match &view.reported {
        ReportedOutcome::Success { refund_id } => ("SUCCESS", refund_id.to_string()),
        ReportedOutcome::Fail { result_code } => ("FAIL", result_code.to_string()),
        ReportedOutcome::Reversed => ("REVERSED", String::new()),
        ReportedOutcome::Refunded => ("REFUNDED", String::new()),
    };
    vec![
        ("position", view.position.to_string()),
        ("refundRequestId", view.refund_request_id.to_string()),
        ("paymentId", view.payment_id.to_string()),
        ("anomaly", view.anomaly.to_string()),
        ("recordedStatus", refund_status_code(view.recorded_status).to_owned()),
        ("reportedStatus", reported_status.to_owned()),
        ("reported", reported_value),
        ("source", outcome_source_code(view.source).to_owned()),
        ("reportedAt", view.reported_at.to_string()),
        ("recordedAt", view.recorded_at.to_string()),
        (
            "acknowledgedPosition",
            optional(acknowledgement.map(|ack| ack.position.to_string())),
        ),
        (
            "acknowledgedBy",
            optional(acknowledgement.map(|ack| ack.acknowledged_by.clone())),
        ),
        (
            "acknowledgedNote",
            optional(acknowledgement.map(|ack| ack.note.clone())),
        ),
        (
            "acknowledgedAt",
            optional(acknowledgement.map(|ack| ack.acknowledged_at.to_string())),
        ),
    ]
}

/// The named fields of a payment row, for a field-by-field comparison.
fn payment_fields(view: &PaymentView) -> Vec<(&'static str, String)> {
    vec![
        ("paymentAmount", view.payment_amount.to_string()),
        ("paymentMethodType", view.payment_method_type.to_string()),
        ("paymentTime", view.payment_time.to_string()),
        ("captureRequired", view.capture_required.to_string()),
        ("captured", view.captured.to_string()),
        ("refunded", view.refunded.to_string()),
        ("pending", view.pending.to_string()),
        ("chargedBack", view.charged_back.to_string()),
        ("refundable", view.refundable.to_string()),
        ("status", view.status.to_string()),
        ("openChargeback", view.open_chargeback.to_string()),
        ("refundCount", view.refund_count.to_string()),
        ("lastPosition", view.last_position.to_string()),
        ("updatedAt", view.updated_at.to_string()),
    ]
}

/// The named fields of a refund row, for a field-by-field comparison.
fn refund_fields(view: &RefundView) -> Vec<(&'static str, String)> {
    let optional = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
    vec![
        ("paymentId", view.payment_id.to_string()),
        ("refundAmount", view.refund_amount.to_string()),
        ("refundReason", optional(view.refund_reason.clone())),
        ("status", refund_status_code(view.status).to_owned()),
        (
            "resultCode",
            optional(view.result_code.as_ref().map(ToString::to_string)),
        ),
        ("resultMessage", optional(view.result_message.clone())),
        ("refundId", optional(view.refund_id.as_ref().map(ToString::to_string))),
        ("requestedAt", view.requested_at.to_string()),
        ("settledAt", optional(view.settled_at.map(|time| time.to_string()))),
        ("requestedBy", view.requested_by.clone()),
        ("anomalyCount", view.anomaly_count.to_string()),
        ("lastPosition", view.last_position.to_string()),
        ("updatedAt", view.updated_at.to_string()),
    ]
}

/// `field=value` lists of the fields that differ (every field when one side is missing).
fn field_difference(
    live: Option<Vec<(&'static str, String)>>,
    rebuilt: Option<Vec<(&'static str, String)>>,
) -> (Option<String>, Option<String>) {
    let render = |fields: &[&(&'static str, String)]| {
        fields
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (live, rebuilt) {
        (Some(live), Some(rebuilt)) => {
            let differing: Vec<usize> = (0..live.len())
                .filter(|index| live[*index] != rebuilt[*index])
                .collect();
            let pick = |fields: &[(&'static str, String)]| {
                render(&differing.iter().map(|index| &fields[*index]).collect::<Vec<_>>())
            };
            (Some(pick(&live)), Some(pick(&rebuilt)))
        }
        (live, rebuilt) => (
            live.map(|fields| render(&fields.iter().collect::<Vec<_>>())),
            rebuilt.map(|fields| render(&fields.iter().collect::<Vec<_>>())),
        ),
    }
}

fn difference(table: &'static str, key: String, live: Option<String>, rebuilt: Option<String>) -> Difference {
    Difference {
        table,
        key,
        live,
        rebuilt,
    }
}

async fn compare_payments(
    rebuilt: &Rebuilt,
    live: &dyn ReadModels,
    differences: &mut Vec<Difference>,
) -> Result<(), AuditError> {
    let mut seen: HashSet<PaymentId> = HashSet::new();
    let mut after = None;
    loop {
        let page = live
            .payments(&PaymentFilter::default(), after.as_ref(), PAGE_SIZE_MAX)
            .await?;
        for (cursor, view) in page.items {
            let expected = rebuilt.fold.payment(&view.payment_id).map(|row| row.view());
            if expected.as_ref() != Some(&view) {
                let (live_text, rebuilt_text) =
                    field_difference(Some(payment_fields(&view)), expected.as_ref().map(payment_fields));
                differences.push(difference(
                    "payment",
                    view.payment_id.to_string(),
                    live_text,
                    rebuilt_text,
                ));
            }
            seen.insert(view.payment_id);
            after = Some(cursor);
        }
        if !page.has_next_page {
            break;
        }
    }
    for row in rebuilt.fold.payments().filter(|row| !seen.contains(&row.payment_id)) {
        let (_, rebuilt_text) = field_difference(None, Some(payment_fields(&row.view())));
        differences.push(difference("payment", row.payment_id.to_string(), None, rebuilt_text));
    }
    Ok(())
}

async fn compare_refunds(
    rebuilt: &Rebuilt,
    live: &dyn ReadModels,
    differences: &mut Vec<Difference>,
) -> Result<(), AuditError> {
    let mut seen: HashSet<RefundRequestId> = HashSet::new();
    let mut after = None;
    loop {
        let page = live
            .refunds(&RefundFilter::default(), after.as_ref(), PAGE_SIZE_MAX)
            .await?;
        for (cursor, view) in page.items {
            let expected = rebuilt.fold.refund(&view.refund_request_id);
            if expected != Some(&view) {
                let (live_text, rebuilt_text) =
                    field_difference(Some(refund_fields(&view)), expected.map(refund_fields));
                differences.push(difference(
                    "refund",
                    view.refund_request_id.to_string(),
                    live_text,
                    rebuilt_text,
                ));
            }
            seen.insert(view.refund_request_id);
            after = Some(cursor);
        }
        if !page.has_next_page {
            break;
        }
    }
    for row in rebuilt
        .fold
        .refunds()
        .filter(|row| !seen.contains(&row.refund_request_id))
    {
        let (_, rebuilt_text) = field_difference(None, Some(refund_fields(row)));
        differences.push(difference(
            "refund",
            row.refund_request_id.to_string(),
            None,
            rebuilt_text,
        ));
    }
    Ok(())
}

async fn compare_daily_totals(
    rebuilt: &Rebuilt,
    live: &dyn ReadModels,
    differences: &mut Vec<Difference>,
) -> Result<(), AuditError> {
    let bounds = (
        Date::from_calendar_date(1970, Month::January, 1),
        Date::from_calendar_date(9999, Month::December, 31),
    );
    let (Ok(first), Ok(last)) = bounds else {
        return Ok(());
    };
    let mut expected = rebuilt.daily_totals();
    for total in live.daily_totals(first, last, None).await? {
        let key = (total.date, total.currency.code(), refund_status_code(total.status));
        let live_value = (
            i64::try_from(total.count).unwrap_or(i64::MAX),
            i64::try_from(total.amount.minor_units()).unwrap_or(i64::MAX),
        );
        let rebuilt_value = expected.remove(&key);
        if rebuilt_value != Some(live_value) {
            differences.push(difference(
                "daily total",
                format!("{} {} {}", key.0, key.1, key.2),
                Some(format!("count {} amount {}", live_value.0, live_value.1)),
                rebuilt_value.map(|(count, amount)| format!("count {count} amount {amount}")),
            ));
        }
    }
    for ((date, currency, status), (count, amount)) in expected {
        differences.push(difference(
            "daily total",
            format!("{date} {currency} {status}"),
            None,
            Some(format!("count {count} amount {amount}")),
        ));
    }
    Ok(())
}

async fn compare_anomalies(
    rebuilt: &Rebuilt,
    live: &dyn ReadModels,
    differences: &mut Vec<Difference>,
) -> Result<(), AuditError> {
    let mut expected = rebuilt.anomalies_by_position();
    let mut after = None;
    loop {
        let page = live.anomalies(after.as_ref(), PAGE_SIZE_MAX).await?;
        for (cursor, view) in page.items {
            let rebuilt_view = expected.remove(&view.position);
            if rebuilt_view != Some(&view) {
                let (live_text, rebuilt_text) =
                    field_difference(Some(anomaly_fields(&view)), rebuilt_view.map(anomaly_fields));
                differences.push(difference(
                    "anomaly",
                    view.position.to_string(),
                    live_text,
                    rebuilt_text,
                ));
            }
            after = Some(cursor);
        }
        if !page.has_next_page {
            break;
        }
    }
    for (position, view) in expected {
        let (_, rebuilt_text) = field_difference(None, Some(anomaly_fields(view)));
        differences.push(difference("anomaly", position.to_string(), None, rebuilt_text));
    }
    Ok(())
}

/// Runs and findings of reconciliations, live against rebuilt, as their stored JSON (a run's whole event, a
/// finding with its acknowledgement).
async fn compare_reconciliations(
    rebuilt: &Rebuilt,
    live: &dyn ReadModels,
    differences: &mut Vec<Difference>,
) -> Result<(), AuditError> {
    let text = |value: &dyn std::fmt::Debug| format!("{value:?}");
    let mut expected_runs: BTreeMap<&str, &projections::ReconciliationView> = rebuilt
        .reconciliations
        .runs
        .iter()
        .map(|(id, view)| (id.as_str(), view))
        .collect();
    let mut expected_findings: BTreeMap<(String, u64), &projections::FindingView> = rebuilt
        .reconciliations
        .findings
        .iter()
        .map(|(key, view)| (key.clone(), view))
        .collect();
    let mut before = None;
    loop {
        let runs = live.reconciliations(before, PAGE_SIZE_MAX).await?;
        let Some(last) = runs.last() else { break };
        before = Some(last.position);
        for run in &runs {
            let rebuilt_run = expected_runs.remove(run.run.run_id.as_str());
            if rebuilt_run != Some(run) {
                differences.push(difference(
                    "reconciliation",
                    run.run.run_id.clone(),
                    Some(text(run)),
                    rebuilt_run.map(|view| text(view)),
                ));
            }
            let mut after_seq = None;
            loop {
                let filter = projections::FindingFilter { kind: None, after_seq };
                let page = live
                    .reconciliation_findings(&run.run.run_id, &filter, projections::FINDINGS_PAGE_MAX)
                    .await?;
                let Some(last) = page.last() else { break };
                after_seq = Some(last.finding.seq);
                for finding in &page {
                    let key = (run.run.run_id.clone(), finding.finding.seq);
                    let rebuilt_finding = expected_findings.remove(&key);
                    if rebuilt_finding != Some(finding) {
                        differences.push(difference(
                            "reconciliation finding",
                            format!("{}#{}", key.0, key.1),
                            Some(text(finding)),
                            rebuilt_finding.map(|view| text(view)),
                        ));
                    }
                }
            }
        }
    }
    for (run_id, view) in expected_runs {
        differences.push(difference("reconciliation", run_id.to_owned(), None, Some(text(view))));
    }
    // Findings of a run that has no `ReconciliationRecorded` (cut between its appends) belong to no run: no
    // query reaches them, and the sweeper removes their rows after a day, so they are not compared.
    for ((run_id, seq), view) in expected_findings
        .into_iter()
        .filter(|((run_id, _), _)| rebuilt.reconciliations.runs.contains_key(run_id))
    {
        differences.push(difference(
            "reconciliation finding",
            format!("{run_id}#{seq}"),
            None,
            Some(text(view)),
        ));
    }
    Ok(())
}
