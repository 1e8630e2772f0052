//! Reconciliation runs: Antom's reports read against the ledger and recorded in the log
//! (docs/adr/003-reconciliation.md).
//!
//! [`reconcile_reports`] classifies the files (transaction details of day T, or a settlement batch's details and
//! summary), reads each one to `<END>` through SHA-256 (pass 1: a file cut before `<END>` is an error and
//! nothing is recorded), pins the read models at the log's head as the ledger's view, then streams the files
//! again in batches (pass 2, [`stream`]): each batch's refunds are looked up in the view with one query, its keys
//! recorded in the view's key table (duplicates), `reconcile`'s matcher decides each row, refunds Antom reports
//! final but the ledger holds open are settled through the normal inquiry path ([`Ledger::inquiry_refund`]), and
//! the findings are appended to the run's stream `reconciliation-{runId}` in `ReconciliationFindingsRecorded`
//! chunks as they fill. The ledger's succeeded refunds of day T that no row named follow (an anti-join in the
//! view), and the run's `ReconciliationRecorded` last: the run exists once that event does. Memory stays flat
//! however long the report.

mod stream;

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use domain::{
    FINDINGS_PER_CHUNK_MAX, ReconciledFile, ReconciliationEvent, ReconciliationFindingAcknowledged,
    ReconciliationRecorded, RecordedFee, RecordedFinding, RecordedQuote, RecordedSettlement, RefundRequestId,
    RefundStatus, ReportedAmount, reconciliation_stream_name,
};
use eventlog::{EventStore, ExpectedRevision, NewEvent, StreamName};
use reconcile::{
    EndOfReport, Finding, FindingKind, LedgerRefund, REPORT_DAY_OFFSET_DEFAULT, ReconcileError, ReportDay,
    ReportFileName, ReportKind, ReportReader,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ledger::Ledger;

pub use stream::{ROWS_PER_BATCH, sweep_unrecorded_findings};

/// Events read from the log per page (acknowledgements of a run).
const LEDGER_PAGE_EVENTS: usize = 4_096;

/// Chunk events read from the log at a time when a run's findings are listed.
const FINDING_CHUNKS_PER_READ: usize = 8;

/// How long a run waits for the read models to reach the log's head before it reads the ledger.
const READ_MODELS_WAIT: Duration = Duration::from_secs(30);

/// Bytes read at a time from a file.
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
    /// The run's lookup task panicked or was cancelled.
    #[error("a task of the run stopped: {0}")]
    Task(String),
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
    /// The read models did not reach the log's head in time, so the ledger could not be read as of the run.
    #[error(
        "the read models did not reach the log's head (position {head}) within {waited_seconds} s; is the projection runner running?"
    )]
    ReadModelsBehind {
        /// The log's head when the run started.
        head: u64,
        /// How long the run waited.
        waited_seconds: u64,
    },
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
            if let ReconciliationEvent::ReconciliationFindingAcknowledged(earlier) = decode(recorded)? {
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
        match store
            .append(
                &stream,
                ExpectedRevision::Exact(last_revision),
                vec![new_event(&event, actor)],
            )
            .await
        {
            Ok(appended) => return Ok(appended.last_position),
            Err(eventlog::StoreError::Conflict { .. }) if attempt < ACKNOWLEDGE_ATTEMPTS_MAX => continue,
            Err(error) => return Err(error.into()),
        }
    }
}

/// An event of a run's stream as read back.
fn decode(recorded: &eventlog::RecordedEvent) -> Result<ReconciliationEvent, ReconciliationError> {
    ReconciliationEvent::from_stored(&recorded.event_type, recorded.schema_version, &recorded.payload).map_err(
        |source| ReconciliationError::Decode {
            position: recorded.position,
            source,
        },
    )
}

/// The event to append for `event`, caused by `actor`, with a fresh id.
fn new_event(event: &ReconciliationEvent, actor: &str) -> NewEvent {
    crate::new_event::new_event(event.to_stored(), Uuid::new_v4(), actor)
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
    /// The global position of the run's last event (its `ReconciliationRecorded`).
    pub position: u64,
    /// What [`RunOutcome::left_undone`] answers, counted as the findings were recorded.
    undone: (u64, u64),
}

impl RunOutcome {
    /// Findings whose settlement or anomaly this run left to others, because it had no Antom gateway: LEDGER_PENDING
    /// refunds not settled, anomalies not recorded.
    pub fn left_undone(&self) -> (u64, u64) {
        self.undone
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

/// Reconciles `sources` against the ledger and records the run in `store` as `actor`, in flat memory
/// (docs/adr/003-reconciliation.md): pass 1 hashes and parses every file to `<END>` and records nothing; then
/// the run waits for `read_models` to reach the log's head and reads the ledger at that pinned position
/// ([`projections::LedgerView`]) while pass 2 streams the files again in batches, re-hashing them, and appends
/// the findings' chunks as they fill, the run's `ReconciliationRecorded` last. Refunds the report says are final
/// but the ledger holds open are settled through `ledger` (when given; otherwise the finding says the settle
/// worker will), and contradicted terminal states are recorded as anomalies, finding by finding.
pub async fn reconcile_reports(
    store: Arc<dyn EventStore>,
    read_models: &dyn projections::ReadModels,
    ledger: Option<&Ledger>,
    sources: Vec<Arc<dyn ReportSource>>,
    actor: &str,
    now: OffsetDateTime,
) -> Result<RunOutcome, ReconciliationError> {
    let plan = tokio::task::spawn_blocking(move || Plan::of(sources))
        .await
        .map_err(|error| ReconciliationError::Reader(error.to_string()))??;
    let head = store.head().await?.position;
    if !read_models.wait_for_position(head, READ_MODELS_WAIT).await? {
        return Err(ReconciliationError::ReadModelsBehind {
            head,
            waited_seconds: READ_MODELS_WAIT.as_secs(),
        });
    }
    let view = read_models.ledger_view().await?;
    let run_id = Uuid::new_v4().to_string();
    let mut recorder = stream::Recorder::new(store, &run_id, actor, ledger)?;
    let (scan, view) = stream::scan(&plan, view, &mut recorder).await?;
    let recorded = ReconciliationRecorded {
        run_id: run_id.clone(),
        report_kind: plan.kind.as_str().to_owned(),
        files: plan.files(&scan.files),
        period: plan.day.map(|day| day.date().to_string()),
        settlement_batch_id: plan.batch_id.clone(),
        ledger_position: view.position(),
        counts: recorder.counts().clone(),
        other_rows: scan.other_rows,
        findings_count: recorder.findings(),
        reconciled_at: now,
    };
    drop(view);
    let undone = recorder.left_undone();
    let position = recorder.finish(recorded.clone()).await?;
    tracing::info!(
        run_id = %run_id,
        findings = recorded.findings_count,
        position,
        "reconciliation recorded"
    );
    Ok(RunOutcome {
        recorded,
        position,
        undone,
    })
}

/// Calls `visit` with every finding of the recorded run `run` in `seq` order, reading its chunks from the log a
/// few at a time (a run of a million findings is never held at once).
pub async fn for_each_finding(
    store: &dyn EventStore,
    run: &ReconciliationRecorded,
    mut visit: impl FnMut(&RecordedFinding),
) -> Result<(), ReconciliationError> {
    let stream = StreamName::parse(reconciliation_stream_name(&run.run_id))?;
    let chunks = run.findings_count.div_ceil(FINDINGS_PER_CHUNK_MAX as u64);
    let mut revision = 0;
    while revision < chunks {
        let page = store
            .read_stream(
                &stream,
                revision,
                FINDING_CHUNKS_PER_READ.min((chunks - revision) as usize),
            )
            .await?;
        if page.is_empty() {
            break;
        }
        for recorded in &page {
            revision = recorded.revision + 1;
            if let ReconciliationEvent::ReconciliationFindingsRecorded(chunk) = decode(recorded)? {
                chunk.findings.iter().for_each(&mut visit);
            }
        }
    }
    Ok(())
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

#[derive(Debug, Clone, PartialEq, Eq)]
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
            // Pass 1: the whole file to `<END>` through the hash; nothing is recorded for a file that ends early.
            let (_, hashed) = stream::read_file(source.as_ref(), |_| Ok(()))?;
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

    /// The files as recorded, from their hashes and pass 2's proofs of completeness.
    fn files(&self, ends: &[EndOfReport]) -> Vec<ReconciledFile> {
        let hashes: HashMap<&str, &Hashed> = self
            .details
            .iter()
            .chain(self.summary.iter())
            .map(|(source, hashed)| (source.name(), hashed))
            .collect();
        ends.iter()
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

/// A finding in its recorded form, numbered `seq`.
fn recorded_finding(seq: u64, finding: &Finding) -> RecordedFinding {
    RecordedFinding {
        seq,
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
    }
}

/// The SETTLEMENT_NOT_BOOKED finding that follows `finding`, numbered `seq`, when it carries a settlement the
/// journal cannot book ([`domain::settlement_legs`], what the journal export books with): on the same report line
/// and refund, with the row's settlement amount and the reason, so finance sees the row the journal leaves out.
pub(crate) fn not_booked(seq: u64, finding: &RecordedFinding) -> Option<RecordedFinding> {
    let settlement = finding.settlement.as_ref()?;
    let reason = domain::settlement_legs(finding).err()?;
    Some(RecordedFinding {
        seq,
        kind: FindingKind::SettlementNotBooked.as_str().to_owned(),
        file: finding.file.clone(),
        line: finding.line,
        refund_request_id: finding.refund_request_id.clone(),
        refund_id: finding.refund_id.clone(),
        report_amount: Some(settlement.amount.clone()),
        ledger_position: finding.ledger_position,
        ledger_status: finding.ledger_status,
        ledger_amount: finding.ledger_amount,
        report_status: None,
        settlement: None,
        message: format!(
            "the journal cannot book this row's settlement ({reason}): its settlement lines are left out of the \
             journal export; book it by hand or ask Antom for a corrected report"
        ),
    })
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
        date: settlement.date.map(|date| date.to_string()),
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
            AnomalyCommand::Succeeded => match finding
                .refund_id
                .as_deref()
                .and_then(|refund_id| domain::RefundId::parse(refund_id).ok())
            {
                Some(refund_id) => domain::PaymentCommand::ConfirmRefundSucceeded {
                    refund_request_id: id.clone(),
                    refund_id,
                    // The refund is FAILED or REJECTED: the aggregate records the report as an anomaly and never
                    // uses this time (only a pending refund would take it).
                    refund_time: refund.refund_time.unwrap_or(OffsetDateTime::UNIX_EPOCH),
                    source: domain::OutcomeSource::Reconciliation,
                },
                // A current-format row names no refundId: the anomaly says "refunded" without one.
                None => domain::PaymentCommand::ReportRefunded {
                    refund_request_id: id.clone(),
                    source: domain::OutcomeSource::Reconciliation,
                },
            },
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
