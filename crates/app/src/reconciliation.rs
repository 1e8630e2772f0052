//! Reconciliation runs: Antom's reports read against the ledger and recorded in the log
//! (docs/adr/003-reconciliation.md).
//!
//! [`reconcile_reports`] classifies the files (transaction details of day T, or a settlement batch's details and
//! summary), hashes each one, reads the ledger's refunds from the log at its head, runs `reconcile`'s matcher
//! over every file (a file cut before `<END>` is an error and nothing is recorded), settles refunds Antom
//! reports final but the ledger holds open through the normal inquiry path ([`Ledger::inquiry_refund`]), and
//! only then appends the run to its own stream `reconciliation-{runId}` in one append: a
//! `ReconciliationRecorded` event and the findings in `ReconciliationFindingsRecorded` chunks.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::sync::Arc;

use domain::{
    FINDINGS_PER_CHUNK_MAX, Money, PaymentEvent, PaymentId, ReconciledFile, ReconciliationEvent,
    ReconciliationFindingAcknowledged, ReconciliationFindingsRecorded, ReconciliationRecorded, RecordedFee,
    RecordedFinding, RecordedQuote, RecordedSettlement, RefundRequestId, RefundStatus, ReportedAmount,
    reconciliation_stream_name,
};
use eventlog::{EventStore, ExpectedRevision, NewEvent, StreamName};
use reconcile::{
    Finding, FindingKind, LedgerRefund, REPORT_DAY_OFFSET_DEFAULT, ReconcileError, Reconciliation, ReportDay,
    ReportFileName, ReportKind, ReportReader,
};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ledger::Ledger;

/// Events read from the log per page while building the ledger's view.
const LEDGER_PAGE_EVENTS: usize = 4_096;

/// Payload bytes per append of a run's events, under the log's `BATCH_PAYLOAD_BYTES_MAX` (16 MiB).
const APPEND_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Bytes read at a time while hashing a file.
const HASH_BUFFER_BYTES: usize = 64 * 1024;

/// Why a run was not recorded. Nothing was appended in every case.
#[derive(Debug, thiserror::Error)]
pub enum ReconciliationError {
    /// A file is unreadable, truncated or malformed (the message names the file; nothing was imported).
    #[error(transparent)]
    Report(#[from] ReconcileError),
    /// The files do not make one run (no file, transaction details mixed with a settlement batch, a batch
    /// without its summary).
    #[error("{0}")]
    Files(String),
    /// The event store failed.
    #[error("event store: {0}")]
    Store(#[from] eventlog::StoreError),
    /// A payment event in the log does not decode.
    #[error("stored event at position {position} does not decode: {source}")]
    Decode {
        /// Its position.
        position: u64,
        /// Why.
        #[source]
        source: domain::EventDecodeError,
    },
    /// The blocking reader thread stopped.
    #[error("the report reader stopped: {0}")]
    Reader(String),
    /// An acknowledgement that cannot be recorded: no such run or finding, already acknowledged, or a bad
    /// note. The message names the field; nothing was written.
    #[error("{field}: {message}")]
    Acknowledgement {
        /// `runId`, `seq` or `note`.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The read models failed.
    #[error("read models: {0}")]
    ReadModels(#[from] projections::ProjectionError),
}

/// An invalid stream name is the store's refusal ([`eventlog::StoreError::InvalidStreamName`]).
impl From<eventlog::InvalidStreamName> for ReconciliationError {
    fn from(invalid: eventlog::InvalidStreamName) -> Self {
        Self::Store(eventlog::StoreError::from(invalid))
    }
}

/// Longest acknowledgement note, in characters.
pub const ACKNOWLEDGEMENT_NOTE_CHARS_MAX: usize = 1_000;

/// Appends attempts of an acknowledgement when another admin's lands in between.
const ACKNOWLEDGE_ATTEMPTS_MAX: usize = 3;

/// Records an admin's acknowledgement of finding `seq` of run `run_id` with `note`, as `actor`; answers the
/// event's position. The run and the finding must be in the read models; a finding already acknowledged is
/// refused. Acknowledgements of one run serialise through the stream's expected revision.
pub async fn acknowledge_finding(
    store: &dyn EventStore,
    read_models: &dyn projections::ReadModels,
    actor: &str,
    run_id: &str,
    seq: u64,
    note: &str,
    now: OffsetDateTime,
) -> Result<u64, ReconciliationError> {
    let refuse = |field: &'static str, message: String| ReconciliationError::Acknowledgement { field, message };
    let note = note.trim();
    let note_chars = note.chars().count();
    if note_chars == 0 || note_chars > ACKNOWLEDGEMENT_NOTE_CHARS_MAX {
        return Err(refuse(
            "note",
            format!("1 to {ACKNOWLEDGEMENT_NOTE_CHARS_MAX} characters, got {note_chars}"),
        ));
    }
    let Some(run) = read_models.reconciliation(run_id).await? else {
        return Err(refuse("runId", format!("no reconciliation run {run_id:?}")));
    };
    let filter = projections::FindingFilter {
        kind: None,
        after_seq: Some(seq.saturating_sub(1)),
    };
    let found = read_models.reconciliation_findings(run_id, &filter, 1).await?;
    if seq == 0 || found.first().map(|finding| finding.finding.seq) != Some(seq) {
        return Err(refuse("seq", format!("run {run_id} has no finding {seq}")));
    }
    let stream = StreamName::parse(reconciliation_stream_name(run_id))?;
    // The run's first revisions are its event and its findings' chunks; acknowledgements follow.
    let chunks = run.run.findings_count.div_ceil(FINDINGS_PER_CHUNK_MAX as u64);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut acknowledgements = Vec::new();
        loop {
            let from = chunks + 1 + acknowledgements.len() as u64;
            let page = store.read_stream(&stream, from, LEDGER_PAGE_EVENTS).await?;
            let done = page.len() < LEDGER_PAGE_EVENTS;
            acknowledgements.extend(page);
            if done {
                break;
            }
        }
        for recorded in &acknowledgements {
            let event =
                ReconciliationEvent::from_stored(&recorded.event_type, recorded.schema_version, &recorded.payload)
                    .map_err(|source| ReconciliationError::Decode {
                        position: recorded.position,
                        source,
                    })?;
            if let ReconciliationEvent::ReconciliationFindingAcknowledged(earlier) = event {
                if earlier.seq == seq {
                    return Err(refuse(
                        "seq",
                        format!(
                            "finding {seq} of run {run_id} was acknowledged already by {} at position {}",
                            recorded.actor, recorded.position
                        ),
                    ));
                }
            }
        }
        let last_revision = acknowledgements.last().map_or(chunks, |recorded| recorded.revision);
        let event = ReconciliationEvent::ReconciliationFindingAcknowledged(ReconciliationFindingAcknowledged {
            run_id: run_id.to_owned(),
            seq,
            note: note.to_owned(),
            acknowledged_at: now,
        });
        let stored = event.to_stored();
        let new_event = NewEvent {
            event_id: Uuid::new_v4(),
            event_type: stored.event_type.to_owned(),
            schema_version: stored.schema_version,
            payload: stored.data,
            actor: actor.to_owned(),
        };
        match store
            .append(&stream, ExpectedRevision::Exact(last_revision), vec![new_event])
            .await
        {
            Ok(appended) => return Ok(appended.last_position),
            Err(eventlog::StoreError::Conflict { .. }) if attempt < ACKNOWLEDGE_ATTEMPTS_MAX => continue,
            Err(error) => return Err(error.into()),
        }
    }
}

/// A report file to reconcile: a name (as Antom names it) and its bytes, readable more than once (once to hash,
/// once to match).
pub trait ReportSource: Send + Sync {
    /// The file name (used to classify the file, and named in findings and errors).
    fn name(&self) -> &str;
    /// The bytes, from the start.
    fn open(&self) -> std::io::Result<Box<dyn BufRead + Send>>;
}

/// A report on disk.
#[derive(Debug, Clone)]
pub struct FileSource {
    name: String,
    path: PathBuf,
}

impl FileSource {
    /// The file at `path`, named by its last component.
    pub fn new(path: PathBuf) -> Self {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        Self { name, path }
    }
}

impl ReportSource for FileSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn open(&self) -> std::io::Result<Box<dyn BufRead + Send>> {
        Ok(Box::new(std::io::BufReader::with_capacity(
            HASH_BUFFER_BYTES,
            std::fs::File::open(&self.path)?,
        )))
    }
}

/// A report held in memory (an upload).
#[derive(Debug, Clone)]
pub struct BytesSource {
    name: String,
    bytes: Arc<[u8]>,
}

impl BytesSource {
    /// `bytes` named `name`.
    pub fn new(name: String, bytes: Arc<[u8]>) -> Self {
        Self { name, bytes }
    }
}

impl ReportSource for BytesSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn open(&self) -> std::io::Result<Box<dyn BufRead + Send>> {
        Ok(Box::new(std::io::Cursor::new(Arc::clone(&self.bytes))))
    }
}

/// A recorded run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run's event, as appended.
    pub recorded: ReconciliationRecorded,
    /// Every finding, in order (`seq` 1, 2, ...).
    pub findings: Vec<RecordedFinding>,
    /// The global position of the run's last event.
    pub position: u64,
}

impl RunOutcome {
    /// Findings whose settlement or anomaly this run left to others, because it had no Antom gateway: LEDGER_PENDING
    /// refunds not settled, anomalies not recorded.
    pub fn left_undone(&self) -> (u64, u64) {
        let count = |note: &str| {
            self.findings
                .iter()
                .filter(|finding| finding.message.ends_with(note))
                .count() as u64
        };
        (count(NOT_SETTLED_WITHOUT_GATEWAY), count(NO_ANOMALY_WITHOUT_GATEWAY))
    }

    /// Findings other than MATCHED.
    pub fn discrepancies(&self) -> u64 {
        self.recorded
            .counts
            .iter()
            .filter(|(kind, _)| kind.as_str() != FindingKind::Matched.as_str())
            .map(|(_, count)| count)
            .sum()
    }
}

/// Reconciles `sources` against the ledger in `store` and records the run as `actor`; settles refunds the
/// report says are final but the ledger holds open through `ledger` (when given; otherwise the finding says
/// the settle worker will). Nothing is recorded unless every file reached `<END>`.
pub async fn reconcile_reports(
    store: Arc<dyn EventStore>,
    ledger: Option<&Ledger>,
    sources: Vec<Arc<dyn ReportSource>>,
    actor: &str,
    now: OffsetDateTime,
) -> Result<RunOutcome, ReconciliationError> {
    let plan = tokio::task::spawn_blocking(move || Plan::of(sources))
        .await
        .map_err(|error| ReconciliationError::Reader(error.to_string()))??;
    let (refunds, ledger_position) = ledger_refunds(store.as_ref()).await?;
    let refunds = Arc::new(refunds);
    let (plan, result) = {
        let refunds = Arc::clone(&refunds);
        tokio::task::spawn_blocking(move || plan.run(&refunds).map(|result| (plan, result)))
            .await
            .map_err(|error| ReconciliationError::Reader(error.to_string()))??
    };
    let mut findings = recorded_findings(&result.findings);
    match ledger {
        Some(ledger) => {
            settle_pending(ledger, actor, &mut findings).await;
            record_anomalies(ledger, actor, &refunds, &mut findings).await;
        }
        None => say_left_undone(&mut findings),
    }
    let mut counts = BTreeMap::new();
    for finding in &findings {
        *counts.entry(finding.kind.clone()).or_insert(0_u64) += 1;
    }
    let run_id = Uuid::new_v4().to_string();
    let recorded = ReconciliationRecorded {
        run_id: run_id.clone(),
        report_kind: plan.kind.as_str().to_owned(),
        files: plan.files(&result),
        period: plan.day.map(|day| day.date().to_string()),
        settlement_batch_id: plan.batch_id.clone(),
        ledger_position,
        counts,
        other_rows: result.other_rows.clone(),
        findings_count: findings.len() as u64,
        reconciled_at: now,
    };
    // The findings' chunks first, the run's event last: a run exists once its `ReconciliationRecorded` is in
    // the log (a crash between appends leaves chunks of no run, which no query reaches). Appends are cut to the
    // log's limits; every one happens only after every file reached `<END>`.
    let mut events = Vec::new();
    for (chunk, part) in findings.chunks(FINDINGS_PER_CHUNK_MAX).enumerate() {
        events.push(ReconciliationEvent::ReconciliationFindingsRecorded(
            ReconciliationFindingsRecorded {
                run_id: run_id.clone(),
                chunk: chunk as u64,
                findings: part.to_vec(),
            },
        ));
    }
    events.push(ReconciliationEvent::ReconciliationRecorded(recorded.clone()));
    let stream = StreamName::parse(reconciliation_stream_name(&run_id)).map_err(eventlog::StoreError::from)?;
    let mut expected = ExpectedRevision::NoStream;
    let mut group: Vec<NewEvent> = Vec::new();
    let mut group_bytes = 0;
    let mut appended = None;
    let count = events.len();
    for (index, event) in events.iter().enumerate() {
        let stored = event.to_stored();
        let new_event = NewEvent {
            event_id: Uuid::new_v4(),
            event_type: stored.event_type.to_owned(),
            schema_version: stored.schema_version,
            payload: stored.data,
            actor: actor.to_owned(),
        };
        let full =
            group_bytes + new_event.payload.len() > APPEND_BYTES_MAX || group.len() >= eventlog::BATCH_EVENTS_MAX;
        if full && !group.is_empty() {
            let outcome = store.append(&stream, expected, std::mem::take(&mut group)).await?;
            expected = ExpectedRevision::Exact(outcome.last_revision);
            group_bytes = 0;
        }
        group_bytes += new_event.payload.len();
        group.push(new_event);
        if index + 1 == count {
            appended = Some(store.append(&stream, expected, std::mem::take(&mut group)).await?);
        }
    }
    // The run's event is always there, so the last append happened.
    let appended = appended.ok_or_else(|| ReconciliationError::Files("nothing to record".to_owned()))?;
    tracing::info!(
        run_id = %run_id,
        findings = findings.len(),
        position = appended.last_position,
        "reconciliation recorded"
    );
    Ok(RunOutcome {
        recorded,
        findings,
        position: appended.last_position,
    })
}

/// What the files make: one day's transaction details or one settlement batch.
struct Plan {
    kind: RunKind,
    details: Vec<(Arc<dyn ReportSource>, Hashed)>,
    summary: Option<(Arc<dyn ReportSource>, Hashed)>,
    day: Option<ReportDay>,
    batch_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunKind {
    TransactionDetails,
    SettlementBatch,
}

impl RunKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::TransactionDetails => "TRANSACTION_DETAILS",
            Self::SettlementBatch => "SETTLEMENT_BATCH",
        }
    }
}

#[derive(Debug, Clone)]
struct Hashed {
    sha256: String,
    bytes: u64,
}

impl Plan {
    /// Classifies and hashes the files (blocking IO).
    fn of(sources: Vec<Arc<dyn ReportSource>>) -> Result<Self, ReconciliationError> {
        if sources.is_empty() {
            return Err(ReconciliationError::Files("no report file given".to_owned()));
        }
        let mut details = Vec::new();
        let mut summary = None;
        let mut kinds = Vec::new();
        let mut day = None;
        let mut batch_id = None;
        for source in sources {
            let io = |source_error: std::io::Error| ReconcileError::Io {
                file: source.name().to_owned(),
                source: source_error,
            };
            let parsed = ReportFileName::parse(source.name());
            let kind = match &parsed {
                Some(name) => name.kind(),
                None => ReportReader::open(source.name(), source.open().map_err(io)?)?
                    .schema()
                    .kind(),
            };
            if let Some(name) = &parsed {
                if let Some(date) = name.transaction_date() {
                    day = Some(ReportDay::new(date, REPORT_DAY_OFFSET_DEFAULT));
                }
                if let Some(id) = name.settlement_batch_id() {
                    batch_id = Some(id.to_owned());
                }
            }
            let hashed = hash(source.open().map_err(io)?).map_err(io)?;
            kinds.push(kind);
            match kind {
                ReportKind::SettlementSummary => {
                    if summary.is_some() {
                        return Err(ReconciliationError::Files(
                            "more than one settlement summary file: reconcile one batch at a time".to_owned(),
                        ));
                    }
                    summary = Some((source, hashed));
                }
                ReportKind::TransactionDetails | ReportKind::SettlementDetails => details.push((source, hashed)),
            }
        }
        let transaction = kinds.contains(&ReportKind::TransactionDetails);
        let settlement = kinds.iter().any(|kind| *kind != ReportKind::TransactionDetails);
        let kind = match (transaction, settlement) {
            (true, true) => {
                return Err(ReconciliationError::Files(
                    "transaction details and settlement files in one run: reconcile a day or a batch at a time"
                        .to_owned(),
                ));
            }
            (true, false) => RunKind::TransactionDetails,
            _ => RunKind::SettlementBatch,
        };
        if kind == RunKind::SettlementBatch && (summary.is_none() || details.is_empty()) {
            return Err(ReconciliationError::Files(
                "a settlement batch needs its settlementItems and its settlementSummary file".to_owned(),
            ));
        }
        Ok(Self {
            kind,
            details,
            summary,
            day: if kind == RunKind::TransactionDetails { day } else { None },
            batch_id: if kind == RunKind::SettlementBatch {
                batch_id
            } else {
                None
            },
        })
    }

    /// Matches every file against `refunds` (blocking IO); an error for any file that does not reach `<END>`.
    fn run(&self, refunds: &[LedgerRefund]) -> Result<Reconciliation, ReconciliationError> {
        let open = |source: &Arc<dyn ReportSource>| {
            source
                .open()
                .map(|reader| (source.name().to_owned(), reader))
                .map_err(|error| ReconcileError::Io {
                    file: source.name().to_owned(),
                    source: error,
                })
        };
        let details = self
            .details
            .iter()
            .map(|(source, _)| open(source))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(match &self.summary {
            Some((source, _)) => reconcile::reconcile_settlement_batch(details, open(source)?, refunds)?,
            None => reconcile::reconcile_transaction_details(details, refunds, self.day.as_ref())?,
        })
    }

    /// The files as recorded, from their hashes and the reader's proofs of completeness.
    fn files(&self, result: &Reconciliation) -> Vec<ReconciledFile> {
        let hashes: HashMap<&str, &Hashed> = self
            .details
            .iter()
            .chain(self.summary.iter())
            .map(|(source, hashed)| (source.name(), hashed))
            .collect();
        result
            .files
            .iter()
            .map(|end| {
                let hashed = hashes.get(end.file());
                ReconciledFile {
                    name: end.file().to_owned(),
                    report_kind: end.kind().as_str().to_owned(),
                    generation: end.generation().to_string(),
                    sha256: hashed.map(|hashed| hashed.sha256.clone()).unwrap_or_default(),
                    bytes: hashed.map_or(0, |hashed| hashed.bytes),
                    rows: end.rows(),
                    end_line: end.end_line(),
                    warnings: end
                        .warnings()
                        .iter()
                        .map(|warning| {
                            format!(
                                "{} (line {}, {} time(s))",
                                warning.message, warning.first_line, warning.count
                            )
                        })
                        .collect(),
                }
            })
            .collect()
    }
}

fn hash(mut reader: Box<dyn BufRead + Send>) -> std::io::Result<Hashed> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; HASH_BUFFER_BYTES];
    let mut bytes = 0_u64;
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        bytes += read as u64;
        hasher.update(&buffer[..read]);
    }
    Ok(Hashed {
        sha256: hex::encode(hasher.finalize()),
        bytes,
    })
}

/// The findings in their recorded form, numbered from 1.
fn recorded_findings(findings: &[Finding]) -> Vec<RecordedFinding> {
    findings
        .iter()
        .enumerate()
        .map(|(index, finding)| RecordedFinding {
            seq: index as u64 + 1,
            kind: finding.kind.as_str().to_owned(),
            file: finding.report.as_ref().map(|line| line.file.to_string()),
            line: finding.report.as_ref().map(|line| line.line),
            refund_request_id: finding.refund_request_id.clone(),
            refund_id: finding.refund_id.clone(),
            report_amount: finding.report_amount.map(reported),
            ledger_position: finding.ledger.map(|ledger| ledger.position),
            ledger_status: finding.ledger.map(|ledger| ledger.status),
            ledger_amount: finding.ledger.map(|ledger| ledger.refund_amount),
            report_status: finding.report_status.as_ref().map(|status| status.as_str().to_owned()),
            settlement: finding.settlement.as_ref().map(recorded_settlement),
            message: finding.message.clone(),
        })
        .collect()
}

fn reported(amount: reconcile::SignedAmount) -> ReportedAmount {
    ReportedAmount {
        currency: amount.currency().code().to_owned(),
        value: amount.minor_units().to_string(),
    }
}

fn recorded_settlement(settlement: &reconcile::RowSettlement) -> RecordedSettlement {
    RecordedSettlement {
        amount: reported(settlement.amount),
        converted: settlement.converted.map(reported),
        fees: settlement
            .fees
            .iter()
            .map(|fee| RecordedFee {
                kind: fee.kind.as_str().to_owned(),
                amount: reported(fee.amount),
            })
            .collect(),
        quote: settlement.quote.map(|quote| RecordedQuote {
            base: quote.base.code().to_owned(),
            quote: quote.quote.code().to_owned(),
            price: quote.price.to_string(),
        }),
    }
}

/// What [`reconcile_reports`] leaves undone without an Antom gateway (`ledger` is `None`, as for the CLI without
/// `REFUND_LEDGER_ANTOM_*`): no refund is settled by inquiry and no anomaly recorded. Each finding concerned says
/// so and who will do it; [`RunOutcome::left_undone`] counts them.
fn say_left_undone(findings: &mut [RecordedFinding]) {
    for finding in findings.iter_mut() {
        let note = if finding.kind == FindingKind::LedgerPending.as_str() {
            NOT_SETTLED_WITHOUT_GATEWAY
        } else if anomaly_command(finding).is_some() {
            NO_ANOMALY_WITHOUT_GATEWAY
        } else {
            continue;
        };
        finding.message = format!("{}; {note}", finding.message);
    }
}

/// The note on a LEDGER_PENDING finding of a run without an Antom gateway.
pub const NOT_SETTLED_WITHOUT_GATEWAY: &str = "not settled by this run (no Antom gateway configured): the settle \
     worker of a running service, or a later run with a gateway, will settle it";

/// The note on a finding that would record an anomaly, in a run without an Antom gateway.
pub const NO_ANOMALY_WITHOUT_GATEWAY: &str = "no anomaly recorded by this run (no Antom gateway configured): \
     upload the report to the service (POST /reconciliations) or run again with a gateway to record it";

/// LEDGER_PENDING findings: asks Antom through the normal inquiry path and says what came of it.
async fn settle_pending(ledger: &Ledger, actor: &str, findings: &mut [RecordedFinding]) {
    for finding in findings
        .iter_mut()
        .filter(|finding| finding.kind == FindingKind::LedgerPending.as_str())
    {
        let Some(id) = finding
            .refund_request_id
            .as_deref()
            .and_then(|id| RefundRequestId::parse(id).ok())
        else {
            continue;
        };
        let outcome = match ledger.inquiry_refund(actor, &id).await {
            Ok(result) => match &result.refund {
                Some(snapshot) => format!(
                    "settled through inquiryRefund: the ledger now holds it {} (position {})",
                    snapshot.refund.status.as_str(),
                    result.position
                ),
                None => format!("inquiryRefund answered {}", result.result.code),
            },
            Err(error) => format!("inquiryRefund failed ({error}); the settle worker will retry"),
        };
        finding.message = format!("{}; {outcome}", finding.message);
    }
}

/// What a finding asks of the payment's aggregate, when it contradicts a terminal state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AnomalyCommand {
    /// REFUND_REVERSAL: `ReportRefundReversed`.
    Reversed,
    /// LEDGER_NOT_SUCCEEDED (Antom refunded what the ledger holds FAILED or REJECTED): `ConfirmRefundSucceeded`.
    Succeeded,
    /// STATUS_DIFFERS where the report says FAIL and the ledger holds the refund SUCCEEDED: `ConfirmRefundFailed`.
    Failed,
}

/// The anomaly a finding records, if any. A STATUS_DIFFERS finding is one only when the report's status is a
/// final FAIL against the ledger's SUCCEEDED; a PROCESSING status against a terminal state is not: Antom has
/// not decided yet, so nothing contradicts the ledger's outcome (docs/adr/003-reconciliation.md).
fn anomaly_command(finding: &RecordedFinding) -> Option<AnomalyCommand> {
    match finding.kind.as_str() {
        kind if kind == FindingKind::RefundReversal.as_str() => Some(AnomalyCommand::Reversed),
        kind if kind == FindingKind::LedgerNotSucceeded.as_str() => Some(AnomalyCommand::Succeeded),
        kind if kind == FindingKind::StatusDiffers.as_str()
            && finding.report_status.as_deref() == Some(reconcile::ReportStatus::Failed.as_str())
            && finding.ledger_status == Some(RefundStatus::Succeeded) =>
        {
            Some(AnomalyCommand::Failed)
        }
        _ => None,
    }
}

/// Findings that contradict a terminal state (REFUND_REVERSAL, LEDGER_NOT_SUCCEEDED, and STATUS_DIFFERS with the
/// report's FAIL against SUCCEEDED): a `RefundOutcomeAnomaly` (source `RECONCILIATION`) on the payment's stream
/// through the payment's queue, as for any outcome report that contradicts a terminal state; the refund's state is
/// unchanged. A report seen again records no second anomaly (the aggregate keeps one per reported outcome). The
/// finding's message says what was recorded, or why nothing was.
async fn record_anomalies(ledger: &Ledger, actor: &str, refunds: &[LedgerRefund], findings: &mut [RecordedFinding]) {
    let payments: HashMap<&str, &LedgerRefund> = refunds
        .iter()
        .map(|refund| (refund.refund_request_id.as_str(), refund))
        .collect();
    for finding in findings.iter_mut() {
        if finding.kind == FindingKind::StatusDiffers.as_str() && anomaly_command(finding).is_none() {
            finding.message = format!(
                "{}; no anomaly recorded: the report's status is not final, so it contradicts no outcome (a later \
                 report settles it)",
                finding.message
            );
            continue;
        }
        let Some(wanted) = anomaly_command(finding) else {
            continue;
        };
        let Some(refund) = finding.refund_request_id.as_deref().and_then(|id| payments.get(id)) else {
            continue;
        };
        let id = refund.refund_request_id.clone();
        let command = match wanted {
            AnomalyCommand::Reversed => domain::PaymentCommand::ReportRefundReversed {
                refund_request_id: id.clone(),
                source: domain::OutcomeSource::Reconciliation,
            },
            AnomalyCommand::Failed => domain::PaymentCommand::ConfirmRefundFailed {
                refund_request_id: id.clone(),
                // Reports carry no result code: Antom's generic failure stands for the report's FAIL.
                result_code: domain::ResultCode::ProcessFail,
                result_message: format!(
                    "reported FAIL by {} line {}",
                    finding.file.as_deref().unwrap_or("the report"),
                    finding.line.unwrap_or_default()
                ),
                source: domain::OutcomeSource::Reconciliation,
            },
            AnomalyCommand::Succeeded => {
                let Some(refund_id) = finding
                    .refund_id
                    .as_deref()
                    .and_then(|refund_id| domain::RefundId::parse(refund_id).ok())
                else {
                    finding.message = format!(
                        "{}; no anomaly recorded: the report names no Antom refundId for it",
                        finding.message
                    );
                    continue;
                };
                domain::PaymentCommand::ConfirmRefundSucceeded {
                    refund_request_id: id.clone(),
                    refund_id,
                    // The refund is FAILED or REJECTED: the aggregate records the report as an anomaly and never
                    // uses this time (only a pending refund would take it).
                    refund_time: refund.refund_time.unwrap_or(OffsetDateTime::UNIX_EPOCH),
                    source: domain::OutcomeSource::Reconciliation,
                }
            }
        };
        let outcome = match ledger.record_outcome(actor, &refund.payment_id, &id, command).await {
            Ok(result) => format!(
                "recorded for operators as a RefundOutcomeAnomaly on the payment's stream (as of position {})",
                result.position
            ),
            Err(error) => format!("the anomaly could not be recorded ({error}); run the reconciliation again"),
        };
        finding.message = format!("{}; {outcome}", finding.message);
    }
}

/// The ledger's refunds as of the log's head, folded from the payment events: status, amount, Antom's id and
/// refund time, and the position of the event that settled each (its latest event while open).
pub async fn ledger_refunds(store: &dyn EventStore) -> Result<(Vec<LedgerRefund>, u64), ReconciliationError> {
    let mut refunds: Vec<LedgerRefund> = Vec::new();
    let mut index: HashMap<RefundRequestId, usize> = HashMap::new();
    let mut position = 0;
    loop {
        let page = store.read_all(position + 1, LEDGER_PAGE_EVENTS).await?;
        let Some(last) = page.last() else { break };
        position = last.position;
        for recorded in &page {
            let Some(payment_id) = recorded.stream.as_str().strip_prefix("payment-") else {
                continue;
            };
            let decode = |source| ReconciliationError::Decode {
                position: recorded.position,
                source,
            };
            let event =
                PaymentEvent::from_stored(&recorded.event_type, recorded.schema_version, &recorded.payload, &[])
                    .map_err(decode)?;
            apply(&mut refunds, &mut index, payment_id, recorded.position, event);
        }
    }
    Ok((refunds, position))
}

fn apply(
    refunds: &mut Vec<LedgerRefund>,
    index: &mut HashMap<RefundRequestId, usize>,
    payment_id: &str,
    position: u64,
    event: PaymentEvent,
) {
    let mut open = |id: RefundRequestId, amount: Money, status: RefundStatus| {
        let Ok(payment_id) = PaymentId::parse(payment_id) else {
            return;
        };
        if index.contains_key(&id) {
            return;
        }
        index.insert(id.clone(), refunds.len());
        refunds.push(LedgerRefund {
            refund_request_id: id,
            payment_id,
            status,
            refund_amount: amount,
            refund_id: None,
            refund_time: None,
            position,
        });
    };
    match event {
        PaymentEvent::RefundRequested(requested) => {
            open(
                requested.refund_request_id,
                requested.refund_amount,
                RefundStatus::Requested,
            );
        }
        PaymentEvent::RefundRejected(rejected) => {
            open(
                rejected.refund_request_id,
                rejected.refund_amount,
                RefundStatus::Rejected,
            );
        }
        PaymentEvent::RefundProcessing(processing) => {
            if let Some(refund) = pending(refunds, index, &processing.refund_request_id) {
                refund.status = RefundStatus::Processing;
                refund.position = position;
            }
        }
        PaymentEvent::RefundSucceeded(succeeded) => {
            if let Some(refund) = pending(refunds, index, &succeeded.refund_request_id) {
                refund.status = RefundStatus::Succeeded;
                refund.refund_id = Some(succeeded.refund_id);
                refund.refund_time = Some(succeeded.refund_time);
                refund.position = position;
            }
        }
        PaymentEvent::RefundFailed(failed) => {
            if let Some(refund) = pending(refunds, index, &failed.refund_request_id) {
                refund.status = RefundStatus::Failed;
                refund.position = position;
            }
        }
        PaymentEvent::PaymentRecorded(_)
        | PaymentEvent::PaymentCaptured(_)
        | PaymentEvent::ChargebackOpened(_)
        | PaymentEvent::ChargebackResolved(_)
        | PaymentEvent::RefundOutcomeAnomaly(_)
        | PaymentEvent::AnomalyAcknowledged(_) => {}
    }
}

/// The refund `id` while it is open (an outcome for a final refund changes nothing, as in the aggregate).
fn pending<'a>(
    refunds: &'a mut [LedgerRefund],
    index: &HashMap<RefundRequestId, usize>,
    id: &RefundRequestId,
) -> Option<&'a mut LedgerRefund> {
    index
        .get(id)
        .and_then(|&at| refunds.get_mut(at))
        .filter(|refund| refund.status.is_pending())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(kind: FindingKind, report_status: Option<&str>, ledger: RefundStatus) -> RecordedFinding {
        RecordedFinding {
            seq: 1,
            kind: kind.as_str().to_owned(),
            file: Some("transactionItems_20260304_000.csv".to_owned()),
            line: Some(2),
            refund_request_id: Some("R-1".to_owned()),
            refund_id: None,
            report_amount: None,
            ledger_position: Some(3),
            ledger_status: Some(ledger),
            ledger_amount: None,
            report_status: report_status.map(str::to_owned),
            settlement: None,
            message: "Antom reports ...".to_owned(),
        }
    }

    #[test]
    fn a_status_difference_is_an_anomaly_only_when_the_report_is_final_against_a_terminal_state() {
        use RefundStatus::{Failed, Rejected, Succeeded};
        let differs = |status, ledger| anomaly_command(&finding(FindingKind::StatusDiffers, Some(status), ledger));
        assert_eq!(differs("FAIL", Succeeded), Some(AnomalyCommand::Failed));
        for ledger in [Succeeded, Failed, Rejected] {
            assert_eq!(differs("PROCESSING", ledger), None, "{ledger:?}");
        }
        assert_eq!(
            anomaly_command(&finding(FindingKind::LedgerNotSucceeded, None, Failed)),
            Some(AnomalyCommand::Succeeded)
        );
        assert_eq!(
            anomaly_command(&finding(FindingKind::RefundReversal, None, Succeeded)),
            Some(AnomalyCommand::Reversed)
        );
        for kind in [FindingKind::Matched, FindingKind::Differs, FindingKind::LedgerPending] {
            assert_eq!(anomaly_command(&finding(kind, Some("FAIL"), Succeeded)), None, "{kind}");
        }
    }

    #[test]
    fn without_a_gateway_each_finding_left_undone_says_who_will_do_it() {
        let mut findings = vec![
            finding(FindingKind::LedgerPending, None, RefundStatus::Processing),
            finding(FindingKind::StatusDiffers, Some("FAIL"), RefundStatus::Succeeded),
            finding(FindingKind::StatusDiffers, Some("PROCESSING"), RefundStatus::Succeeded),
            finding(FindingKind::Matched, None, RefundStatus::Succeeded),
        ];
        say_left_undone(&mut findings);
        assert!(findings[0].message.ends_with(NOT_SETTLED_WITHOUT_GATEWAY));
        assert!(findings[1].message.ends_with(NO_ANOMALY_WITHOUT_GATEWAY));
        assert_eq!(findings[2].message, "Antom reports ...");
        assert_eq!(findings[3].message, "Antom reports ...");
    }
}
