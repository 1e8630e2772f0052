//! Pass 2 of a run, in flat memory (docs/adr/003-reconciliation.md, "Flat memory"): a blocking thread reads the
//! files again through SHA-256 and sends batches of [`ROWS_PER_BATCH`] rows through a channel of
//! [`BATCHES_IN_FLIGHT`]; a lookup task asks the pinned view, per batch, for the ledger's refunds it names and
//! records its keys in the view's key table (which answers the duplicates), and hands the batch on through a
//! channel of one, so the database answers batch N+1 while the matcher works on batch N; the matcher runs the
//! pure matcher per row and hands the findings to the [`Recorder`], which appends them in chunks as they fill.
//! After `<END>`, the day's succeeded refunds no row named come from the view page by page. Nothing here grows
//! with the file: three batches of rows, a chunk of findings, and at most [`APPEND_BYTES_MAX`] of events waiting
//! for their append.

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::sync::Arc;
use std::time::Duration;

use domain::{
    FINDINGS_PER_CHUNK_MAX, ReconciliationEvent, ReconciliationFindingsRecorded, ReconciliationRecorded,
    RecordedFinding, RefundStatus, reconciliation_stream_name,
};
use eventlog::{EventStore, ExpectedRevision, NewEvent, StreamName};
use projections::{FirstSeen, KeyKind, LedgerView, ReadModels, RefundView, ReportKey, SucceededWindow};
use reconcile::matcher::is_refund_row;
use reconcile::{
    BatchTotals, EndOfReport, Finding, LedgerBatch, LedgerRefund, LookupKeys, ReconcileError, RefundKey, ReportLine,
    ReportReader, Row, RowKey, RowType, check_settlement_row, compare_with_summary, match_row, missing_from_report,
    row_key,
};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::{
    HASH_BUFFER_BYTES, Hashed, NO_ANOMALY_WITHOUT_GATEWAY, NOT_SETTLED_WITHOUT_GATEWAY, Plan, ReconciliationError,
    ReportSource, RunKind, new_event, not_booked, record_anomalies, recorded_finding, say_left_undone, settle_pending,
};
use crate::ledger::Ledger;

/// Rows per batch: one refunds query and one key insert each.
pub const ROWS_PER_BATCH: usize = 4_096;

/// Batches the reader thread may be ahead of the matcher.
const BATCHES_IN_FLIGHT: usize = 2;

/// Refunds per page of the missing-from-report check.
const MISSING_PAGE: usize = 4_096;

/// Payload bytes per append of a run's events, under the log's `BATCH_PAYLOAD_BYTES_MAX` (16 MiB).
const APPEND_BYTES_MAX: usize = 8 * 1024 * 1024;

/// A reader that hashes every byte it hands on.
struct HashingRead<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingRead<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..read]);
        self.bytes += read as u64;
        Ok(read)
    }
}

/// Reads the file of `source` to `<END>` through SHA-256, handing each row to `each`; answers the reader's proof
/// of completeness and the hash of every byte (those after `<END>` too).
pub(super) fn read_file(
    source: &dyn ReportSource,
    mut each: impl FnMut(Row) -> Result<(), ReconciliationError>,
) -> Result<(EndOfReport, Hashed), ReconciliationError> {
    let io = |error: std::io::Error| ReconcileError::Io {
        file: source.name().to_owned(),
        source: error,
    };
    let hashing = HashingRead {
        inner: source.open().map_err(io)?,
        hasher: Sha256::new(),
        bytes: 0,
    };
    let mut buffered = BufReader::with_capacity(HASH_BUFFER_BYTES, hashing);
    let mut reader = ReportReader::open(source.name(), &mut buffered)?;
    while let Some(row) = reader.next_row()? {
        each(row)?;
    }
    let end = reader.finish()?;
    std::io::copy(&mut buffered, &mut std::io::sink()).map_err(io)?;
    let hashing = buffered.into_inner();
    Ok((
        end,
        Hashed {
            sha256: hex::encode(hashing.hasher.finalize()),
            bytes: hashing.bytes,
        },
    ))
}

/// What the reader thread sends.
enum Message {
    /// Rows of a details file (`summary: false`) or of the settlement summary.
    Rows {
        file: Arc<str>,
        summary: bool,
        rows: Vec<Row>,
    },
    /// A file read to `<END>` with the hash pass 1 saw.
    End(Box<EndOfReport>),
}

/// Starts the reader thread over the plan's files: details first, then the summary.
fn spawn_reader(plan: &Plan) -> mpsc::Receiver<Result<Message, ReconciliationError>> {
    let files: Vec<(Arc<dyn ReportSource>, Hashed, bool)> = plan
        .details
        .iter()
        .map(|(source, hashed)| (Arc::clone(source), hashed.clone(), false))
        .chain(
            plan.summary
                .iter()
                .map(|(source, hashed)| (Arc::clone(source), hashed.clone(), true)),
        )
        .collect();
    let (sender, receiver) = mpsc::channel(BATCHES_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let stopped = || ReconciliationError::Reader("the run stopped reading".to_owned());
        for (source, expected, summary) in files {
            let file: Arc<str> = Arc::from(source.name());
            let mut rows = Vec::with_capacity(ROWS_PER_BATCH);
            let read = read_file(source.as_ref(), |row| {
                rows.push(row);
                if rows.len() == ROWS_PER_BATCH {
                    let batch = std::mem::replace(&mut rows, Vec::with_capacity(ROWS_PER_BATCH));
                    sender
                        .blocking_send(Ok(Message::Rows {
                            file: Arc::clone(&file),
                            summary,
                            rows: batch,
                        }))
                        .map_err(|_| stopped())?;
                }
                Ok(())
            });
            let end = read.and_then(|(end, hashed)| {
                if hashed == expected {
                    Ok(end)
                } else {
                    Err(ReconciliationError::Files(format!(
                        "{file}: the file changed while it was reconciled (SHA-256 {} of {} bytes, then {} of {} \
                         bytes); the run was not recorded",
                        expected.sha256, expected.bytes, hashed.sha256, hashed.bytes
                    )))
                }
            });
            let messages = match end {
                Ok(end) => vec![
                    Ok(Message::Rows {
                        file: Arc::clone(&file),
                        summary,
                        rows,
                    }),
                    Ok(Message::End(Box::new(end))),
                ],
                Err(error) => vec![Err(error)],
            };
            for message in messages {
                let failed = message.is_err();
                if sender.blocking_send(message).is_err() || failed {
                    return;
                }
            }
        }
    });
    receiver
}

/// What pass 2 read besides the findings.
pub(super) struct Scan {
    /// Every file's proof of completeness, details first.
    pub(super) files: Vec<EndOfReport>,
    /// Rows not reconciled against the ledger, per type.
    pub(super) other_rows: BTreeMap<String, u64>,
}

/// What the lookup task hands the matcher, in the files' order.
enum Looked {
    /// A batch of details rows with the ledger's refunds they name and, per row with a key, where its key was
    /// first seen.
    Details {
        file: Arc<str>,
        rows: Vec<Row>,
        keys: Vec<Option<RowKey>>,
        refunds: LedgerBatch,
        first_seen: Vec<Option<FirstSeen>>,
    },
    /// Rows of the settlement summary.
    Summary { file: Arc<str>, rows: Vec<Row> },
    /// A file read to `<END>`.
    End(Box<EndOfReport>),
}

/// The lookup task's answers.
type Lookups = mpsc::Receiver<Result<Looked, ReconciliationError>>;

/// Starts the task that looks each batch of the reader's up in `view` (its refunds, its keys recorded), so the
/// database answers batch N+1 while the matcher records batch N; it hands the view back when the reader is
/// done, or when the matcher stopped listening.
fn spawn_lookups(
    mut view: Box<dyn LedgerView>,
    mut batches: mpsc::Receiver<Result<Message, ReconciliationError>>,
) -> (Lookups, tokio::task::JoinHandle<Box<dyn LedgerView>>) {
    let (sender, receiver) = mpsc::channel(1);
    let task = tokio::spawn(async move {
        while let Some(message) = batches.recv().await {
            let looked = match message {
                Ok(Message::Rows {
                    file,
                    summary: false,
                    rows,
                }) => look_up(view.as_mut(), file, rows).await,
                Ok(Message::Rows {
                    file,
                    summary: true,
                    rows,
                }) => Ok(Looked::Summary { file, rows }),
                Ok(Message::End(end)) => Ok(Looked::End(end)),
                Err(error) => Err(error),
            };
            let failed = looked.is_err();
            if sender.send(looked).await.is_err() || failed {
                break;
            }
        }
        view
    });
    (receiver, task)
}

/// One batch of details rows looked up: one refunds query, one key insert.
async fn look_up(view: &mut dyn LedgerView, file: Arc<str>, rows: Vec<Row>) -> Result<Looked, ReconciliationError> {
    let lookup = LookupKeys::of(&rows);
    let refunds = view
        .refunds(&lookup.refund_request_ids, &lookup.refund_ids)
        .await?
        .iter()
        .map(ledger_refund)
        .collect();
    let keys: Vec<Option<RowKey>> = rows.iter().map(row_key).collect();
    let report_keys: Vec<ReportKey> = rows
        .iter()
        .zip(&keys)
        .filter_map(|(row, key)| {
            let key = key.as_ref()?;
            let (kind, id) = match &key.refund {
                RefundKey::RequestId(id) => (KeyKind::RefundRequestId, id),
                RefundKey::RefundId(id) => (KeyKind::RefundId, id),
            };
            Some(ReportKey {
                row_type: key.row_type.as_str().to_owned(),
                kind,
                key: id.clone(),
                file: file.to_string(),
                line: row.line(),
            })
        })
        .collect();
    let first_seen = view.record_keys(&report_keys).await?;
    Ok(Looked::Details {
        file,
        rows,
        keys,
        refunds: LedgerBatch::new(refunds),
        first_seen,
    })
}

/// Pass 2: every row matched against `view`, the settlement checks of a batch, the missing refunds of day T;
/// each finding handed to `recorder` as it is made. Answers the view back for the run's position.
pub(super) async fn scan(
    plan: &Plan,
    view: Box<dyn LedgerView>,
    recorder: &mut Recorder<'_>,
) -> Result<(Scan, Box<dyn LedgerView>), ReconciliationError> {
    let settlement = plan.kind == RunKind::SettlementBatch;
    let mut detail_totals = BatchTotals::default();
    let mut summary_totals = BatchTotals::default();
    let mut summary_file = None;
    let mut result = Scan {
        files: Vec::new(),
        other_rows: BTreeMap::new(),
    };
    let (mut looked, lookups) = spawn_lookups(view, spawn_reader(plan));
    while let Some(message) = looked.recv().await {
        match message? {
            Looked::Details {
                file,
                rows,
                keys,
                refunds,
                first_seen,
            } => {
                let totals = settlement.then_some(&mut detail_totals);
                let batch = MatchBatch {
                    file: &file,
                    rows: &rows,
                    keys: &keys,
                    refunds: &refunds,
                    first_seen,
                };
                match_batch(batch, totals, &mut result.other_rows, recorder).await?;
            }
            Looked::Summary { file, rows } => {
                for row in &rows {
                    if let Some(finding) = summary_totals.add_summary(row, &file)? {
                        recorder.push(&finding, None).await?;
                    }
                }
                summary_file = Some(file);
            }
            Looked::End(end) => result.files.push(*end),
        }
    }
    let mut view = lookups
        .await
        .map_err(|error| ReconciliationError::Task(format!("the lookups: {error}")))?;
    let expected = plan.details.len() + usize::from(plan.summary.is_some());
    if result.files.len() != expected {
        return Err(ReconciliationError::Reader(format!(
            "the reader stopped after {} of {expected} files",
            result.files.len()
        )));
    }
    if let Some((source, _)) = &plan.summary {
        let file = summary_file.unwrap_or_else(|| Arc::from(source.name()));
        for finding in compare_with_summary(&detail_totals, &summary_totals, &file) {
            recorder.push(&finding, None).await?;
        }
    }
    if let (RunKind::TransactionDetails, Some(day)) = (plan.kind, plan.day) {
        let window = SucceededWindow {
            start: day.start(),
            end: day.end(),
        };
        let mut after: Option<RefundView> = None;
        loop {
            let page = view
                .unreported_refunds(RowType::Refund.as_str(), window, after.as_ref(), MISSING_PAGE)
                .await?;
            let done = page.len() < MISSING_PAGE;
            for refund in page {
                let ledger = ledger_refund(&refund);
                if let Some(finding) = missing_from_report(&ledger, &day, false) {
                    recorder.push(&finding, Some(&ledger)).await?;
                }
                after = Some(refund);
            }
            if done {
                break;
            }
        }
    }
    Ok((result, view))
}

/// A batch of details rows as the lookup task answered it.
struct MatchBatch<'a> {
    file: &'a Arc<str>,
    rows: &'a [Row],
    keys: &'a [Option<RowKey>],
    refunds: &'a LedgerBatch,
    first_seen: Vec<Option<FirstSeen>>,
}

/// The matcher per row of a looked-up batch, and the settlement checks of a batch's rows.
async fn match_batch(
    batch: MatchBatch<'_>,
    mut settlement: Option<&mut BatchTotals>,
    other_rows: &mut BTreeMap<String, u64>,
    recorder: &mut Recorder<'_>,
) -> Result<(), ReconciliationError> {
    let file = batch.file;
    let mut first_seen = batch.first_seen.into_iter();
    for (row, key) in batch.rows.iter().zip(batch.keys) {
        let (ledger, earlier) = match key {
            None => {
                if !is_refund_row(row) {
                    *other_rows.entry(row.row_type().as_str().to_owned()).or_default() += 1;
                }
                (None, None)
            }
            Some(key) => (
                batch.refunds.for_key(&key.refund),
                first_seen.next().flatten().map(|seen| ReportLine {
                    file: Arc::from(seen.file),
                    line: seen.line,
                }),
            ),
        };
        for finding in match_row(row, file, ledger, earlier.as_ref()) {
            recorder.push(&finding, ledger).await?;
        }
        if let Some(totals) = settlement.as_deref_mut() {
            if let Some(finding) = check_settlement_row(row, file) {
                recorder.push(&finding, None).await?;
            }
            totals.add_detail(row, file)?;
        }
    }
    Ok(())
}

/// The matcher's view of a refunds read-model row. Its position is the refund's latest event (the settling one
/// unless an anomaly was recorded on it since).
fn ledger_refund(refund: &RefundView) -> LedgerRefund {
    LedgerRefund {
        refund_request_id: refund.refund_request_id.clone(),
        payment_id: refund.payment_id.clone(),
        status: refund.status,
        refund_amount: refund.refund_amount,
        refund_id: refund.refund_id.clone(),
        // The read model's settled time of a succeeded refund is Antom's refund time.
        refund_time: refund.settled_at.filter(|_| refund.status == RefundStatus::Succeeded),
        position: refund.last_position,
    }
}

/// Numbers the findings, settles and records anomalies as they come, follows a settled row the journal cannot
/// book with its SETTLEMENT_NOT_BOOKED finding, and appends them in chunks.
pub(super) struct Recorder<'a> {
    store: Arc<dyn EventStore>,
    stream: StreamName,
    run_id: String,
    actor: &'a str,
    ledger: Option<&'a Ledger>,
    expected: ExpectedRevision,
    group: Vec<NewEvent>,
    group_bytes: usize,
    chunk: Vec<RecordedFinding>,
    chunks: u64,
    seq: u64,
    counts: BTreeMap<String, u64>,
    undone: (u64, u64),
}

impl<'a> Recorder<'a> {
    pub(super) fn new(
        store: Arc<dyn EventStore>,
        run_id: &str,
        actor: &'a str,
        ledger: Option<&'a Ledger>,
    ) -> Result<Self, ReconciliationError> {
        Ok(Self {
            store,
            stream: StreamName::parse(reconciliation_stream_name(run_id))?,
            run_id: run_id.to_owned(),
            actor,
            ledger,
            expected: ExpectedRevision::NoStream,
            group: Vec::new(),
            group_bytes: 0,
            chunk: Vec::with_capacity(FINDINGS_PER_CHUNK_MAX),
            chunks: 0,
            seq: 0,
            counts: BTreeMap::new(),
            undone: (0, 0),
        })
    }

    /// Findings so far per kind.
    pub(super) fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }

    /// Findings so far.
    pub(super) fn findings(&self) -> u64 {
        self.seq
    }

    /// Findings so far left to others for want of an Antom gateway: (refunds not settled, anomalies not recorded).
    pub(super) fn left_undone(&self) -> (u64, u64) {
        self.undone
    }

    /// Numbers `finding`; a LEDGER_PENDING one is settled through inquiry, a LEDGER_NOT_SUCCEEDED or
    /// REFUND_REVERSAL one of `refund` recorded as an anomaly (with a ledger); appends a chunk once full.
    pub(super) async fn push(
        &mut self,
        finding: &Finding,
        refund: Option<&LedgerRefund>,
    ) -> Result<(), ReconciliationError> {
        self.seq += 1;
        let mut recorded = [recorded_finding(self.seq, finding)];
        match self.ledger {
            Some(ledger) => {
                settle_pending(ledger, self.actor, &mut recorded).await;
                let refunds = refund.map(std::slice::from_ref).unwrap_or_default();
                record_anomalies(ledger, self.actor, refunds, &mut recorded).await;
            }
            None => say_left_undone(&mut recorded),
        }
        let [recorded] = recorded;
        if recorded.message.ends_with(NOT_SETTLED_WITHOUT_GATEWAY) {
            self.undone.0 += 1;
        } else if recorded.message.ends_with(NO_ANOMALY_WITHOUT_GATEWAY) {
            self.undone.1 += 1;
        }
        let not_booked = not_booked(self.seq + 1, &recorded);
        self.record(recorded).await?;
        if let Some(not_booked) = not_booked {
            self.seq += 1;
            self.record(not_booked).await?;
        }
        Ok(())
    }

    /// Counts a numbered finding and adds it to the chunk, appending the chunk once full.
    async fn record(&mut self, recorded: RecordedFinding) -> Result<(), ReconciliationError> {
        *self.counts.entry(recorded.kind.clone()).or_default() += 1;
        self.chunk.push(recorded);
        if self.chunk.len() == FINDINGS_PER_CHUNK_MAX {
            self.seal_chunk().await?;
        }
        Ok(())
    }

    async fn seal_chunk(&mut self) -> Result<(), ReconciliationError> {
        let findings = std::mem::replace(&mut self.chunk, Vec::with_capacity(FINDINGS_PER_CHUNK_MAX));
        let event = ReconciliationEvent::ReconciliationFindingsRecorded(ReconciliationFindingsRecorded {
            run_id: self.run_id.clone(),
            chunk: self.chunks,
            findings,
        });
        self.chunks += 1;
        self.add(&event).await
    }

    /// Queues `event`, first appending the queued ones if it would not fit their append.
    async fn add(&mut self, event: &ReconciliationEvent) -> Result<(), ReconciliationError> {
        let new_event = new_event(event, self.actor);
        let full = self.group_bytes + new_event.payload.len() > APPEND_BYTES_MAX
            || self.group.len() >= eventlog::BATCH_EVENTS_MAX;
        if full && !self.group.is_empty() {
            self.flush().await?;
        }
        self.group_bytes += new_event.payload.len();
        self.group.push(new_event);
        Ok(())
    }

    /// Appends the queued events; answers the last one's global position.
    async fn flush(&mut self) -> Result<u64, ReconciliationError> {
        let events = std::mem::take(&mut self.group);
        self.group_bytes = 0;
        let appended = self.store.append(&self.stream, self.expected, events).await?;
        self.expected = ExpectedRevision::Exact(appended.last_revision);
        Ok(appended.last_position)
    }

    /// Appends the last chunk and the run's event; answers the run event's position.
    pub(super) async fn finish(mut self, recorded: ReconciliationRecorded) -> Result<u64, ReconciliationError> {
        if !self.chunk.is_empty() {
            self.seal_chunk().await?;
        }
        self.add(&ReconciliationEvent::ReconciliationRecorded(recorded)).await?;
        self.flush().await
    }
}

/// Runs a sweep leaves alone: at most this many unrecorded runs are looked at per sweep.
const SWEEP_RUNS_MAX: usize = 100;

/// Removes the findings read-model rows of runs that never recorded their `ReconciliationRecorded` (a run cut
/// between its appends) once their first chunk is older than `grace`; answers the rows removed, or `None` when
/// it did not sweep: only once the read models have reached the log's head (within `wait`), so a run whose event
/// is in the log but not yet folded is never taken for a cut one. The log itself keeps the chunks (no query
/// reaches them).
pub async fn sweep_unrecorded_findings(
    store: &dyn EventStore,
    read_models: &dyn ReadModels,
    now: OffsetDateTime,
    grace: Duration,
    wait: Duration,
) -> Result<Option<u64>, ReconciliationError> {
    let head = store.head().await?.position;
    if !read_models.wait_for_position(head, wait).await? {
        return Ok(None);
    }
    let mut removed = 0;
    for run_id in read_models.unrecorded_finding_runs(SWEEP_RUNS_MAX).await? {
        let stream = StreamName::parse(reconciliation_stream_name(&run_id))?;
        let first = store.read_stream(&stream, 0, 1).await?;
        let Some(first) = first.first() else { continue };
        if first.position > head || now - first.recorded_at < grace {
            continue;
        }
        let rows = read_models.remove_unrecorded_findings(&run_id).await?;
        tracing::warn!(run_id = %run_id, rows, "removed the findings of a reconciliation run that was never recorded");
        removed += rows;
    }
    Ok(Some(removed))
}
