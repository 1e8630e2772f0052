//! Exports, streamed in constant memory: each `next_chunk` call reads one bounded batch (events of the log
//! for the journal, a page of the read models for the refunds report) and returns it encoded. The caller
//! writes the chunk wherever it goes (stdout, a file, an HTTP body) and asks for the next one, so nothing
//! holds more than a batch however long the export is.
//!
//! Both exports are deterministic for the same range: the journal walks the log in position order up to the
//! head it saw when it started (lines of a closed time range never change, because `recorded_at` never goes
//! back along the log), and the refunds report pages the read models in `(requested_at, refundRequestId)`
//! order.
//!
//! On a sparse log (KurrentDB) `recorded_at` never goes back along a stream but may along the log, as each
//! instance stamps its own appends: there the journal reads the log from its start to the head and keeps the
//! lines whose success was recorded inside the range, instead of finding the range's ends by position.

use std::sync::Arc;

use domain::{Currency, PaymentId, ReconciliationEvent, RefundRequestId};
use eventlog::{EventStore, LogLayout, READ_EVENTS_MAX, RecordedEvent, StreamName};
use projections::{
    Cursor, FoldedStream, PAGE_SIZE_MAX, ReadModels, RefundFilter, RefundView, StreamFoldError,
    fold::refund_status_code, fold_payment_stream,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::encode::{Cell, Encoder, Format, decimal_text};
use crate::error::AuditError;
use crate::journal::{Accounts, JOURNAL_COLUMNS, JournalBuilder, JournalEntry, Observation, SettlementRun};

/// Events read per batch of a journal export.
pub const EXPORT_BATCH_EVENTS_MAX: usize = READ_EVENTS_MAX;

/// Findings chunks read at a time from a reconciled batch's stream (each up to 1,000 findings, a few hundred
/// KiB).
const FINDINGS_CHUNKS_PER_READ: usize = 4;

/// Which rows an export includes; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportFilter {
    /// At or after this time (journal: when the success was recorded; refunds: when requested).
    pub from: Option<OffsetDateTime>,
    /// Before this time (exclusive).
    pub to: Option<OffsetDateTime>,
    /// Only this currency.
    pub currency: Option<Currency>,
}

/// The journal, streamed from the log.
pub struct JournalExport {
    store: Arc<dyn EventStore>,
    encoder: Encoder,
    accounts: Accounts,
    filter: ExportFilter,
    layout: LogLayout,
    builder: JournalBuilder,
    next_position: u64,
    end_position: u64,
    /// The batch read while the previous one was encoded.
    prefetched: Option<Vec<RecordedEvent>>,
    started: bool,
    finished: bool,
}

impl std::fmt::Debug for JournalExport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("JournalExport")
            .field("next_position", &self.next_position)
            .field("end_position", &self.end_position)
            .finish_non_exhaustive()
    }
}

impl JournalExport {
    /// An export of the journal lines of `store` that `filter` selects.
    pub fn new(store: Arc<dyn EventStore>, format: Format, accounts: Accounts, filter: ExportFilter) -> JournalExport {
        JournalExport {
            layout: store.layout(),
            store,
            encoder: Encoder::new(format, JOURNAL_COLUMNS),
            accounts,
            filter,
            builder: JournalBuilder::default(),
            next_position: 1,
            end_position: 0,
            prefetched: None,
            started: false,
            finished: false,
        }
    }

    /// The next encoded chunk (the first holds the CSV header), or `None` when the export is complete.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, AuditError> {
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            self.end_position = self.store.head().await?.position;
            if let Some(from) = self.filter.from.filter(|_| self.layout.positions_dense()) {
                self.next_position = first_position_at(self.store.as_ref(), from, self.end_position).await?;
            }
            self.encoder.header(&mut out);
        }
        if self.finished || self.next_position > self.end_position {
            self.finished = true;
            return Ok((!out.is_empty()).then_some(out));
        }
        let batch = match self.prefetched.take() {
            Some(batch) => batch,
            None => read_batch(Arc::clone(&self.store), self.next_position, self.end_position).await?,
        };
        let Some(last) = batch.last() else {
            return Err(AuditError::Replay {
                position: self.next_position,
                reason: format!("the log ends before its head {}", self.end_position),
            });
        };
        self.next_position = last.position + 1;
        // Read the next batch while this one is encoded: the store decodes rows on its own threads.
        let next = (self.next_position <= self.end_position)
            .then(|| read_batch(Arc::clone(&self.store), self.next_position, self.end_position));
        let read_next = async move {
            match next {
                Some(read) => read.await.map(Some),
                None => Ok(None),
            }
        };
        let (next_batch, encoded) = futures_util::future::join(read_next, self.encode_batch(&batch, &mut out)).await;
        encoded?;
        self.prefetched = next_batch?;
        Ok(Some(out))
    }

    async fn encode_batch(&mut self, batch: &[RecordedEvent], out: &mut Vec<u8>) -> Result<(), AuditError> {
        for event in batch {
            let in_range = self.filter.from.is_none_or(|from| event.recorded_at >= from)
                && self.filter.to.is_none_or(|to| event.recorded_at < to);
            if !in_range && self.layout.positions_dense() && self.filter.to.is_some() {
                // A dense log starts at `from` and its times never go back: past `to` nothing more is in range.
                self.finished = true;
                return Ok(());
            }
            let entry = match self.builder.observe(event)? {
                Observation::Nothing => continue,
                // A sparse log is read whole: what it learns outside the range serves later lines.
                _ if !in_range => continue,
                Observation::Settlement(run) => {
                    self.encode_settlement(&run, out).await?;
                    continue;
                }
                Observation::Entry(entry) => entry,
                Observation::NeedsAmount(pending) => {
                    let amount = lookup_amount(
                        self.store.as_ref(),
                        pending.payment_id(),
                        pending.refund_request_id(),
                        event,
                    )
                    .await?;
                    pending.complete(amount)
                }
            };
            if self.wanted(&entry) {
                entry.encode(&self.encoder, &self.accounts, out);
            }
        }
        Ok(())
    }

    /// The settlement lines of a reconciled batch: its findings read from the run's stream, a few chunks at a
    /// time, each settled row's lines written as it is read.
    async fn encode_settlement(&self, run: &SettlementRun, out: &mut Vec<u8>) -> Result<(), AuditError> {
        let replay_error = |reason: String| AuditError::Replay {
            position: run.position,
            reason,
        };
        let stream = StreamName::parse(domain::reconciliation_stream_name(&run.run_id))
            .map_err(|error| replay_error(error.to_string()))?;
        // The run's findings chunks are its stream's events before its `ReconciliationRecorded` (whatever their
        // sizes); the chunks' findings add up to the run's count.
        let mut revision = 0;
        let mut findings = 0;
        'stream: loop {
            let page = self
                .store
                .read_stream(&stream, revision, FINDINGS_CHUNKS_PER_READ)
                .await?;
            if page.is_empty() {
                return Err(replay_error(format!(
                    "the stream of run {} ends at revision {revision} before the run's event",
                    run.run_id
                )));
            }
            for recorded in &page {
                if recorded.position >= run.position {
                    break 'stream;
                }
                let event =
                    ReconciliationEvent::from_stored(&recorded.event_type, recorded.schema_version, &recorded.payload)
                        .map_err(|error| replay_error(format!("position {}: {error}", recorded.position)))?;
                let ReconciliationEvent::ReconciliationFindingsRecorded(chunk) = event else {
                    return Err(replay_error(format!(
                        "position {}: {} where the run's findings were expected",
                        recorded.position, recorded.event_type
                    )));
                };
                findings += chunk.findings.len() as u64;
                for finding in &chunk.findings {
                    run.encode(
                        &self.encoder,
                        &self.accounts,
                        finding,
                        |currency| self.wanted_currency(currency),
                        out,
                    );
                }
                revision = recorded.revision + 1;
            }
        }
        if findings != run.findings_count {
            return Err(replay_error(format!(
                "run {} records {} findings, its chunks hold {findings}",
                run.run_id, run.findings_count
            )));
        }
        Ok(())
    }

    fn wanted_currency(&self, currency: Currency) -> bool {
        self.filter.currency.is_none_or(|wanted| wanted == currency)
    }

    fn wanted(&self, entry: &JournalEntry) -> bool {
        self.filter
            .currency
            .is_none_or(|currency| entry.amount.currency() == currency)
    }
}

/// The events at positions `from..=end`, at most [`EXPORT_BATCH_EVENTS_MAX`] of them.
async fn read_batch(store: Arc<dyn EventStore>, from: u64, end: u64) -> Result<Vec<RecordedEvent>, AuditError> {
    let remaining = end.saturating_sub(from) + 1;
    let limit = usize::try_from(remaining).map_or(EXPORT_BATCH_EVENTS_MAX, |remaining| {
        remaining.min(EXPORT_BATCH_EVENTS_MAX)
    });
    let mut batch = store.read_all(from, limit).await?;
    // On a sparse log the count of positions up to `end` says nothing of the count of events.
    batch.retain(|event| event.position <= end);
    Ok(batch)
}

/// The first position recorded at or after `time` (`end + 1` when none): by binary search on a dense log,
/// where `recorded_at` never decreases along the log; on a sparse one, the first such event in log order,
/// by reading from the start (positions there cannot be bisected, and times only increase per stream).
pub(crate) async fn first_position_at(
    store: &dyn EventStore,
    time: OffsetDateTime,
    end: u64,
) -> Result<u64, AuditError> {
    if !store.layout().positions_dense() {
        return first_position_at_by_scan(store, time, end).await;
    }
    let (mut low, mut high) = (1_u64, end + 1);
    while low < high {
        let middle = low + (high - low) / 2;
        let event = store.read_all(middle, 1).await?;
        match event.first() {
            Some(event) if event.recorded_at < time => low = middle + 1,
            _ => high = middle,
        }
    }
    Ok(low)
}

async fn first_position_at_by_scan(store: &dyn EventStore, time: OffsetDateTime, end: u64) -> Result<u64, AuditError> {
    Ok(scan_to_time(store, time, end).await?.1)
}

/// The position of the last event before the first one recorded at or after `time` (0 when there is none):
/// on a dense log the first position at `time` less one, on a sparse one the event found by reading.
pub(crate) async fn last_position_before(
    store: &dyn EventStore,
    time: OffsetDateTime,
    end: u64,
) -> Result<u64, AuditError> {
    if store.layout().positions_dense() {
        return Ok(first_position_at(store, time, end).await? - 1);
    }
    Ok(scan_to_time(store, time, end).await?.0)
}

/// Reads a sparse log from its start up to `end` until an event recorded at or after `time`: the position of
/// the event before it (0: none) and its own (`end + 1`: none).
async fn scan_to_time(store: &dyn EventStore, time: OffsetDateTime, end: u64) -> Result<(u64, u64), AuditError> {
    let mut next = 1;
    let mut before = 0;
    while next <= end {
        let batch = store.read_all(next, EXPORT_BATCH_EVENTS_MAX).await?;
        let Some(last) = batch.last() else { break };
        for event in batch.iter().take_while(|event| event.position <= end) {
            if event.recorded_at >= time {
                return Ok((before, event.position));
            }
            before = event.position;
        }
        next = last.position + 1;
    }
    Ok((before, end + 1))
}

/// The amount of a refund requested before the export's first event: its payment's stream folded up to the
/// success (the same fold the ledger decides with).
async fn lookup_amount(
    store: &dyn EventStore,
    payment_id: &PaymentId,
    refund_request_id: &RefundRequestId,
    succeeded: &RecordedEvent,
) -> Result<domain::Money, AuditError> {
    let replay_error = |reason: String| AuditError::Replay {
        position: succeeded.position,
        reason,
    };
    let stream =
        StreamName::parse(domain::payment_stream_name(payment_id)).map_err(|error| replay_error(error.to_string()))?;
    let before_success = |recorded: &RecordedEvent| recorded.position >= succeeded.position;
    let fold = fold_payment_stream(store, &stream, FoldedStream::default(), READ_EVENTS_MAX, before_success);
    let (folded, _) = fold.await.map_err(|error| match error {
        StreamFoldError::Store(error) => AuditError::Store(error),
        other => replay_error(other.to_string()),
    })?;
    folded
        .payment
        .refund(refund_request_id)
        .map(|refund| refund.refund_amount)
        .ok_or_else(|| replay_error(format!("refund {refund_request_id} succeeded but was never requested")))
}

/// The refunds report's columns, in order.
pub const REFUNDS_COLUMNS: &[&str] = &[
    "refundRequestId",
    "paymentId",
    "status",
    "currency",
    "refundAmount",
    "refundId",
    "resultCode",
    "resultMessage",
    "refundReason",
    "requestedAt",
    "settledAt",
    "requestedBy",
    "anomalyCount",
    "lastPosition",
];

/// The refunds report, streamed page by page from the read models.
pub struct RefundsExport {
    read_models: Arc<dyn ReadModels>,
    encoder: Encoder,
    filter: RefundFilter,
    after: Option<Cursor>,
    started: bool,
    finished: bool,
}

impl std::fmt::Debug for RefundsExport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RefundsExport")
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

impl RefundsExport {
    /// An export of the refunds `filter` selects (by request time and currency).
    pub fn new(read_models: Arc<dyn ReadModels>, format: Format, filter: ExportFilter) -> RefundsExport {
        RefundsExport {
            read_models,
            encoder: Encoder::new(format, REFUNDS_COLUMNS),
            filter: RefundFilter {
                currency: filter.currency,
                requested_from: filter.from,
                requested_to: filter.to,
                ..RefundFilter::default()
            },
            after: None,
            started: false,
            finished: false,
        }
    }

    /// The next encoded chunk (the first holds the CSV header), or `None` when the export is complete.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, AuditError> {
        if self.finished {
            return Ok(None);
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            self.encoder.header(&mut out);
        }
        let page = self
            .read_models
            .refunds(&self.filter, self.after.as_ref(), PAGE_SIZE_MAX)
            .await?;
        self.finished = !page.has_next_page;
        for (cursor, refund) in page.items {
            encode_refund(&self.encoder, &refund, &mut out);
            self.after = Some(cursor);
        }
        Ok(Some(out))
    }
}

/// Appends one row of the refunds report.
pub fn encode_refund(encoder: &Encoder, refund: &RefundView, out: &mut Vec<u8>) {
    let time = |time: OffsetDateTime| time.format(&Rfc3339).unwrap_or_else(|_| time.to_string());
    let currency = refund.refund_amount.currency();
    let amount = decimal_text(refund.refund_amount.minor_units(), currency.exponent());
    let requested_at = time(refund.requested_at);
    let settled_at = refund.settled_at.map(time);
    let result_code = refund.result_code.as_ref().map(ToString::to_string);
    encoder.row(
        out,
        &[
            Cell::Text(refund.refund_request_id.as_str()),
            Cell::Text(refund.payment_id.as_str()),
            Cell::Text(refund_status_code(refund.status)),
            Cell::Text(currency.code()),
            Cell::Text(&amount),
            refund.refund_id.as_ref().map(|id| id.as_str()).into(),
            result_code.as_deref().into(),
            refund.result_message.as_deref().into(),
            refund.refund_reason.as_deref().into(),
            Cell::Text(&requested_at),
            settled_at.as_deref().into(),
            Cell::Text(&refund.requested_by),
            Cell::Number(u64::from(refund.anomaly_count)),
            Cell::Number(refund.last_position),
        ],
    );
}
