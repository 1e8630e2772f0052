//! The matcher: pure decisions about REFUND and REFUND_REVERSAL rows against the ledger's refunds.
//!
//! Nothing here reads a file or a database. The caller streams the report in batches, looks up the ledger's
//! refunds the batch names ([`LookupKeys`] says which, [`LedgerBatch`] holds the answer), asks its report index
//! whether each row's key occurred before (duplicates), and gets the batch's findings from [`match_row`]. After
//! `<END>` it streams the ledger's refunds that succeeded on day T, asks the index which of them the report
//! contained, and gets the missing ones from [`missing_from_report`]. The index may be a database table, so
//! memory stays flat however long the report (docs/adr/003-reconciliation.md).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use domain::{Money, PaymentId, RefundId, RefundRequestId, RefundStatus};
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::amount::SignedAmount;
use crate::kind::ReportKind;
use crate::row::{AntomIds, Fee, Quote, ReportStatus, Row, RowType};

/// The offset of "day T" when nothing else is known. Antom's current pages do not state the zone of the
/// report day; the older cashier pages put the cut-off at 23:59:59 GMT+8.
pub const REPORT_DAY_OFFSET_DEFAULT: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

/// The ledger's view of one refund, loaded by the caller for the rows of a batch (or streamed, for day T).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRefund {
    /// The merchant's idempotency key.
    pub refund_request_id: RefundRequestId,
    /// The refunded payment.
    pub payment_id: PaymentId,
    /// Where the refund stands in the ledger.
    pub status: RefundStatus,
    /// The refund amount.
    pub refund_amount: Money,
    /// Antom's refundId, once Antom answered.
    pub refund_id: Option<RefundId>,
    /// Antom's refund time (from its answer), once succeeded.
    pub refund_time: Option<OffsetDateTime>,
    /// Global position of the event that settled the refund (its latest event while it is not final).
    pub position: u64,
}

/// What a finding is about. The codes (`as_str`) are stable: they are stored and exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingKind {
    /// The row and the ledger agree.
    Matched,
    /// Amount, currency, paymentId or refundId differ.
    Differs,
    /// A refund the ledger never asked for (made in Antom Dashboard, or by another system).
    UnknownToLedger,
    /// Antom has a final answer, the ledger holds the refund REQUESTED or PROCESSING: settle it through the
    /// normal inquiry path.
    LedgerPending,
    /// Antom reports the refund refunded, the ledger holds it FAILED or REJECTED: an anomaly.
    LedgerNotSucceeded,
    /// Antom reports the refund failed or processing, the ledger disagrees otherwise.
    StatusDiffers,
    /// The ledger's refund succeeded on day T but the day's report does not list it.
    MissingFromReport,
    /// Antom took a refund back (REFUND_REVERSAL): an anomaly for operators; the ledger's state is unchanged.
    RefundReversal,
    /// A row with the same type and refund key as an earlier row.
    Duplicate,
    /// Settlement details do not add up to the summary (per type or TOTAL).
    SummaryMismatch,
    /// A row's settlement amount is not its transaction amount plus its fees, within the report's rounding.
    SettlementMismatch,
    /// A row the matcher could not interpret (no ids, an unknown status, an unconvertible currency).
    NotUnderstood,
    /// A settled REFUND row whose settlement the journal cannot book (a fee in a third currency, no quote or one
    /// that does not relate the currencies, a converted amount in another currency): its settlement lines are
    /// left out of the journal. Made by the run from the recorded finding (`domain::settlement_legs`).
    SettlementNotBooked,
}

impl FindingKind {
    /// Every kind, in code order.
    pub const ALL: [FindingKind; 13] = [
        Self::Matched,
        Self::Differs,
        Self::UnknownToLedger,
        Self::LedgerPending,
        Self::LedgerNotSucceeded,
        Self::StatusDiffers,
        Self::MissingFromReport,
        Self::RefundReversal,
        Self::Duplicate,
        Self::SummaryMismatch,
        Self::SettlementMismatch,
        Self::NotUnderstood,
        Self::SettlementNotBooked,
    ];

    /// The stable code.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Matched => "MATCHED",
            Self::Differs => "DIFFERS",
            Self::UnknownToLedger => "UNKNOWN_TO_LEDGER",
            Self::LedgerPending => "LEDGER_PENDING",
            Self::LedgerNotSucceeded => "LEDGER_NOT_SUCCEEDED",
            Self::StatusDiffers => "STATUS_DIFFERS",
            Self::MissingFromReport => "MISSING_FROM_REPORT",
            Self::RefundReversal => "REFUND_REVERSAL",
            Self::Duplicate => "DUPLICATE",
            Self::SummaryMismatch => "SUMMARY_MISMATCH",
            Self::SettlementMismatch => "SETTLEMENT_MISMATCH",
            Self::NotUnderstood => "NOT_UNDERSTOOD",
            Self::SettlementNotBooked => "SETTLEMENT_NOT_BOOKED",
        }
    }

    fn index(&self) -> usize {
        Self::ALL.iter().position(|kind| kind == self).unwrap_or_default()
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A line of a report file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReportLine {
    /// The file name.
    pub file: Arc<str>,
    /// The 1-based line.
    pub line: u64,
}

impl fmt::Display for ReportLine {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} line {}", self.file, self.line)
    }
}

/// Where the ledger stands on the refund a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerPosition {
    /// The settling event's global position (latest event while not final).
    pub position: u64,
    /// The ledger's status.
    pub status: RefundStatus,
    /// The ledger's amount.
    pub refund_amount: Money,
}

/// One result of a reconciliation, with the report line and the ledger position it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What it is.
    pub kind: FindingKind,
    /// The report line (none for [`FindingKind::MissingFromReport`]).
    pub report: Option<ReportLine>,
    /// The merchant's refundRequestId, from the row or the ledger.
    pub refund_request_id: Option<String>,
    /// Antom's refundId, where known.
    pub refund_id: Option<String>,
    /// The row's transaction amount (settlement amount for summary and settlement findings).
    pub report_amount: Option<SignedAmount>,
    /// The ledger's side (none when the ledger does not know the refund).
    pub ledger: Option<LedgerPosition>,
    /// The row's `status` (G3 transaction details), as the report states it.
    pub report_status: Option<ReportStatus>,
    /// The settlement side of a settled REFUND row (settlement details only), on the row's first finding and
    /// never on a duplicate's, so each settled row is carried once: what the journal's settlement lines are made
    /// of.
    pub settlement: Option<RowSettlement>,
    /// A sentence for people: what differs, what to do.
    pub message: String,
}

/// The settlement side of one settlement details row, exactly as the report states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowSettlement {
    /// `settlementAmountValue` in `settlementCurrency`: what moved in the settlement account (net of fees).
    pub amount: SignedAmount,
    /// `convertedTransactionAmountValue` (G3): the gross after FX, already rounded by Antom.
    pub converted: Option<SignedAmount>,
    /// Every non-empty fee cell.
    pub fees: Vec<Fee>,
    /// The FX quote, when the row has one.
    pub quote: Option<Quote>,
    /// The row's settlement date as the report prints it (see [`Row::settlement_date`]), `None` when it has none
    /// the parser can read (the reader warns).
    pub date: Option<time::Date>,
}

impl RowSettlement {
    /// The settlement side of a settlement details row; `None` for other reports and rows without a settlement
    /// amount.
    pub fn of(row: &Row) -> Option<Self> {
        if row.schema().kind() != ReportKind::SettlementDetails {
            return None;
        }
        Some(Self {
            amount: row.settlement_amount()?,
            converted: row.converted_amount(),
            fees: row.fees().to_vec(),
            quote: row.quote(),
            date: row.settlement_date(),
        })
    }
}

/// Findings counted per kind (what a reconciliation run records).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FindingCounts([u64; FindingKind::ALL.len()]);

impl FindingCounts {
    /// Counts one finding.
    pub fn add(&mut self, kind: FindingKind) {
        self.0[kind.index()] += 1;
    }

    /// The count of one kind.
    pub fn get(&self, kind: FindingKind) -> u64 {
        self.0[kind.index()]
    }

    /// Findings other than [`FindingKind::Matched`].
    pub fn discrepancies(&self) -> u64 {
        FindingKind::ALL
            .iter()
            .filter(|kind| **kind != FindingKind::Matched)
            .map(|kind| self.get(*kind))
            .sum()
    }

    /// `(kind, count)` for every kind with a count above zero.
    pub fn iter(&self) -> impl Iterator<Item = (FindingKind, u64)> + '_ {
        FindingKind::ALL
            .into_iter()
            .map(|kind| (kind, self.get(kind)))
            .filter(|(_, count)| *count > 0)
    }
}

/// The key a refund row is deduplicated by and looked up with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RefundKey {
    /// `transactionRequestId`: the merchant's refundRequestId (every generation; the primary key).
    RequestId(String),
    /// Antom's refundId, used where a row has no `transactionRequestId` (G1/G2 `transactionId`; in G3 the
    /// `transactionId`, which may be the refundId or the paymentId).
    RefundId(String),
}

/// A row's identity within a report: Antom's row key is (`transactionType`, `transactionRequestId`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey {
    /// REFUND or REFUND_REVERSAL.
    pub row_type: RowType,
    /// The refund it names.
    pub refund: RefundKey,
}

/// Whether the matcher reconciles rows of this type against the ledger (other types are counted, not matched).
pub fn is_refund_row(row: &Row) -> bool {
    matches!(row.row_type(), RowType::Refund | RowType::RefundReversal)
}

/// The key of a REFUND or REFUND_REVERSAL row; `None` for other rows and for refund rows with no id at all.
pub fn row_key(row: &Row) -> Option<RowKey> {
    if !is_refund_row(row) {
        return None;
    }
    let refund = match (row.transaction_request_id(), row.antom_ids()) {
        (Some(request_id), _) => RefundKey::RequestId(request_id.to_owned()),
        (
            None,
            AntomIds::Split {
                refund_id: Some(id), ..
            }
            | AntomIds::Shared {
                transaction_id: Some(id),
            },
        ) => RefundKey::RefundId(id.to_owned()),
        (None, _) => return None,
    };
    Some(RowKey {
        row_type: row.row_type().clone(),
        refund,
    })
}

/// The ids a batch of rows needs from the ledger: one query by refundRequestId, one by refundId.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LookupKeys {
    /// refundRequestIds named by the rows, each once.
    pub refund_request_ids: Vec<String>,
    /// refundIds of rows without a refundRequestId, each once.
    pub refund_ids: Vec<String>,
}

impl LookupKeys {
    /// The keys of the refund rows in `rows`.
    pub fn of(rows: &[Row]) -> Self {
        let mut keys = Self::default();
        for key in rows.iter().filter_map(row_key) {
            let list = match key.refund {
                RefundKey::RequestId(id) => (&mut keys.refund_request_ids, id),
                RefundKey::RefundId(id) => (&mut keys.refund_ids, id),
            };
            list.0.push(list.1);
        }
        for list in [&mut keys.refund_request_ids, &mut keys.refund_ids] {
            list.sort_unstable();
            list.dedup();
        }
        keys
    }
}

/// The ledger's refunds loaded for one batch, indexed for the rows.
#[derive(Debug, Clone, Default)]
pub struct LedgerBatch {
    refunds: Vec<LedgerRefund>,
    by_request_id: HashMap<String, usize>,
    by_refund_id: HashMap<String, usize>,
}

impl LedgerBatch {
    /// Indexes `refunds` (the answer to a [`LookupKeys`] query).
    pub fn new(refunds: Vec<LedgerRefund>) -> Self {
        let mut by_request_id = HashMap::with_capacity(refunds.len());
        let mut by_refund_id = HashMap::new();
        for (index, refund) in refunds.iter().enumerate() {
            by_request_id.insert(refund.refund_request_id.as_str().to_owned(), index);
            if let Some(refund_id) = &refund.refund_id {
                by_refund_id.insert(refund_id.as_str().to_owned(), index);
            }
        }
        Self {
            refunds,
            by_request_id,
            by_refund_id,
        }
    }

    /// The ledger's refund a row names, if the ledger has it.
    pub fn for_key(&self, key: &RefundKey) -> Option<&LedgerRefund> {
        let index = match key {
            RefundKey::RequestId(id) => self.by_request_id.get(id),
            RefundKey::RefundId(id) => self.by_refund_id.get(id),
        };
        index.and_then(|&index| self.refunds.get(index))
    }
}

/// What the report says about a refund, from the row's `status` (rows without one are settled or successful).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportOutcome {
    /// Refunded: `SUCCESS`, or no status (settlement details hold settled rows only; G2 transaction details
    /// only successful ones).
    Refunded,
    /// `FAIL`.
    Failed,
    /// Not final at Antom.
    Processing,
}

/// The status decision table: which finding a report outcome and a ledger status make, `None` when they agree.
pub fn status_finding(report: ReportOutcome, ledger: RefundStatus) -> Option<FindingKind> {
    use RefundStatus::{Failed, Processing, Rejected, Requested, Succeeded};
    match (report, ledger) {
        (ReportOutcome::Refunded, Succeeded)
        | (ReportOutcome::Failed, Failed | Rejected)
        | (ReportOutcome::Processing, Requested | Processing) => None,
        (ReportOutcome::Refunded | ReportOutcome::Failed, Requested | Processing) => Some(FindingKind::LedgerPending),
        (ReportOutcome::Refunded, Failed | Rejected) => Some(FindingKind::LedgerNotSucceeded),
        (ReportOutcome::Failed, Succeeded) | (ReportOutcome::Processing, Succeeded | Failed | Rejected) => {
            Some(FindingKind::StatusDiffers)
        }
    }
}

/// The findings of one REFUND or REFUND_REVERSAL row (none for other rows).
///
/// `ledger` is the ledger's refund the row names (from [`LedgerBatch::for_key`] with [`row_key`]);
/// `earlier` the line of an earlier row with the same key, if the report index saw one. A duplicate is only
/// reported as such, so a ledger refund is never matched twice. Otherwise a row gives [`FindingKind::Matched`]
/// or every disagreement it shows (amount and status are independent).
pub fn match_row(
    row: &Row,
    file: &Arc<str>,
    ledger: Option<&LedgerRefund>,
    earlier: Option<&ReportLine>,
) -> Vec<Finding> {
    let mut findings = row_findings(row, file, ledger, earlier);
    if *row.row_type() == RowType::Refund && earlier.is_none() {
        if let Some(first) = findings.first_mut() {
            first.settlement = RowSettlement::of(row);
        }
    }
    findings
}

fn row_findings(
    row: &Row,
    file: &Arc<str>,
    ledger: Option<&LedgerRefund>,
    earlier: Option<&ReportLine>,
) -> Vec<Finding> {
    if !is_refund_row(row) {
        return Vec::new();
    }
    let finding = |kind: FindingKind, message: String| Finding {
        kind,
        report: Some(ReportLine {
            file: Arc::clone(file),
            line: row.line(),
        }),
        refund_request_id: row
            .transaction_request_id()
            .map(str::to_owned)
            .or_else(|| ledger.map(|refund| refund.refund_request_id.to_string())),
        refund_id: row_refund_id(row).or_else(|| {
            ledger
                .and_then(|refund| refund.refund_id.as_ref())
                .map(|id| id.to_string())
        }),
        report_amount: row.transaction_amount(),
        ledger: ledger.map(|refund| LedgerPosition {
            position: refund.position,
            status: refund.status,
            refund_amount: refund.refund_amount,
        }),
        report_status: row.status().cloned(),
        settlement: None,
        message,
    };
    let row_type = row.row_type().as_str();
    if let Some(earlier) = earlier {
        return vec![finding(
            FindingKind::Duplicate,
            format!("the same {row_type} as {earlier}; counted once"),
        )];
    }
    if row_key(row).is_none() {
        return vec![finding(
            FindingKind::NotUnderstood,
            format!("{row_type} row without transactionRequestId or transactionId: cannot tell which refund it is"),
        )];
    }
    let differences = ledger.map(|refund| differences(row, refund)).unwrap_or_default();
    let mut findings = Vec::new();
    if !differences.is_empty() {
        findings.push(finding(FindingKind::Differs, differences.join("; ")));
    }
    if *row.row_type() == RowType::RefundReversal {
        let message = match ledger {
            Some(refund) => format!(
                "Antom reversed this refund (the acquirer rejected it; money returned to the merchant); the ledger \
                 holds it {:?}: an anomaly for operators, the ledger's state is not changed",
                refund.status
            ),
            None => "Antom reversed a refund the ledger does not know".to_owned(),
        };
        findings.insert(0, finding(FindingKind::RefundReversal, message));
        return findings;
    }
    let Some(refund) = ledger else {
        return vec![finding(
            FindingKind::UnknownToLedger,
            "a refund the ledger never asked for (made in Antom Dashboard or by another system)".to_owned(),
        )];
    };
    let outcome = match row.status() {
        None | Some(ReportStatus::Success) => ReportOutcome::Refunded,
        Some(ReportStatus::Failed) => ReportOutcome::Failed,
        Some(ReportStatus::Processing) => ReportOutcome::Processing,
        Some(ReportStatus::Other(text)) => {
            findings.push(finding(
                FindingKind::NotUnderstood,
                format!("status {text:?} is not one we know; the row is not matched"),
            ));
            return findings;
        }
    };
    if let Some(kind) = status_finding(outcome, refund.status) {
        findings.push(finding(kind, status_message(kind, outcome, refund.status)));
    }
    if findings.is_empty() {
        findings.push(finding(FindingKind::Matched, String::new()));
    }
    findings
}

fn status_message(kind: FindingKind, outcome: ReportOutcome, ledger: RefundStatus) -> String {
    let report = match outcome {
        ReportOutcome::Refunded => "refunded",
        ReportOutcome::Failed => "failed",
        ReportOutcome::Processing => "still processing",
    };
    let action = match kind {
        FindingKind::LedgerPending => "settle it through inquiryRefund (the settle worker)",
        FindingKind::LedgerNotSucceeded => "an anomaly for operators; the ledger's terminal state is not changed",
        _ => "check with Antom; the ledger's state is not changed",
    };
    format!("Antom reports the refund {report}, the ledger holds it {ledger:?}: {action}")
}

/// Antom's refundId as far as the row's generation tells it.
fn row_refund_id(row: &Row) -> Option<String> {
    match row.antom_ids() {
        AntomIds::Split { refund_id, .. } => refund_id.map(str::to_owned),
        AntomIds::Shared { .. } => None,
    }
}

/// What differs between a row and the ledger's refund, one phrase each.
fn differences(row: &Row, refund: &LedgerRefund) -> Vec<String> {
    let mut differences = Vec::new();
    let ledger_amount = refund.refund_amount;
    match row.transaction_amount() {
        None => differences.push(format!("no transactionAmountValue; the ledger has {ledger_amount}")),
        Some(amount) if amount.currency() != ledger_amount.currency() => differences.push(format!(
            "currency {} in the report, {} in the ledger",
            amount.currency(),
            ledger_amount.currency()
        )),
        Some(amount) if amount.minor_units().unsigned_abs() != ledger_amount.minor_units() => {
            differences.push(format!("amount {amount} in the report, {ledger_amount} in the ledger"))
        }
        Some(_) => {}
    }
    match row.antom_ids() {
        AntomIds::Split { refund_id, payment_id } => {
            if let (Some(report), Some(ledger)) = (refund_id, &refund.refund_id) {
                if report != ledger.as_str() {
                    differences.push(format!("refundId {report} in the report, {ledger} in the ledger"));
                }
            }
            if let Some(report) = payment_id.filter(|id| *id != refund.payment_id.as_str()) {
                differences.push(format!(
                    "paymentId {report} in the report, {} in the ledger",
                    refund.payment_id
                ));
            }
        }
        AntomIds::Shared {
            transaction_id: Some(id),
        } => {
            let is_payment = id == refund.payment_id.as_str();
            let is_refund = refund
                .refund_id
                .as_ref()
                .is_some_and(|refund_id| refund_id.as_str() == id);
            if !is_payment && !is_refund {
                differences.push(format!(
                    "transactionId {id} is neither the ledger's paymentId {} nor its refundId",
                    refund.payment_id
                ));
            }
        }
        AntomIds::Shared { transaction_id: None } => {}
    }
    differences
}

/// Day T of a transaction details report: `[start, end)` at the report's offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportDay {
    date: Date,
    start: OffsetDateTime,
    end: OffsetDateTime,
}

impl ReportDay {
    /// The day `date` at `offset` (Antom's zone for the merchant; [`REPORT_DAY_OFFSET_DEFAULT`] when unknown).
    pub fn new(date: Date, offset: UtcOffset) -> Self {
        let start = PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_offset(offset);
        Self {
            date,
            start,
            end: start + time::Duration::DAY,
        }
    }

    /// The date.
    pub fn date(&self) -> Date {
        self.date
    }

    /// The first instant of the day.
    pub fn start(&self) -> OffsetDateTime {
        self.start
    }

    /// The first instant after the day.
    pub fn end(&self) -> OffsetDateTime {
        self.end
    }

    /// Whether `instant` falls on the day.
    pub fn contains(&self, instant: OffsetDateTime) -> bool {
        self.start <= instant && instant < self.end
    }
}

/// The finding for a ledger refund that succeeded on `day` (by Antom's refund time) but that the report does
/// not contain. `in_report` is the report index's answer for the refund's refundRequestId or refundId.
/// `None` when the refund is in the report or is not a succeeded refund of that day.
pub fn missing_from_report(refund: &LedgerRefund, day: &ReportDay, in_report: bool) -> Option<Finding> {
    let succeeded_on_day =
        refund.status == RefundStatus::Succeeded && refund.refund_time.is_some_and(|time| day.contains(time));
    if in_report || !succeeded_on_day {
        return None;
    }
    Some(Finding {
        kind: FindingKind::MissingFromReport,
        report: None,
        refund_request_id: Some(refund.refund_request_id.to_string()),
        refund_id: refund.refund_id.as_ref().map(ToString::to_string),
        report_amount: None,
        ledger: Some(LedgerPosition {
            position: refund.position,
            status: refund.status,
            refund_amount: refund.refund_amount,
        }),
        report_status: None,
        settlement: None,
        message: format!(
            "the ledger's refund succeeded on {} but the day's report does not list it",
            day.date()
        ),
    })
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;
    use crate::reader::ReportReader;

    const G3_HEADER: &str =
        "transactionId,transactionRequestId,transactionType,status,transactionAmountValue,transactionCurrency";
    const G2_HEADER: &str = "transactionId,originalTransactionId,transactionRequestId,transactionType,transactionAmountValue,transactionCurrency";

    fn rows(header: &str, lines: &[&str]) -> Vec<Row> {
        let text = format!("{header}\n{}\n<END>\n", lines.join("\n"));
        let mut reader = ReportReader::open("transactionItems_20260304_000.csv", text.as_bytes()).unwrap();
        let mut rows = Vec::new();
        while let Some(row) = reader.next_row().unwrap() {
            rows.push(row);
        }
        rows
    }

    fn row(header: &str, line: &str) -> Row {
        rows(header, &[line]).remove(0)
    }

    fn ledger(request_id: &str, status: RefundStatus, minor_units: u64) -> LedgerRefund {
        LedgerRefund {
            refund_request_id: RefundRequestId::parse(request_id).unwrap(),
            payment_id: PaymentId::parse("PAY1").unwrap(),
            status,
            refund_amount: Money::parse("refundAmount", "USD", &minor_units.to_string()).unwrap(),
            refund_id: Some(RefundId::parse("REF1").unwrap()),
            refund_time: Some(datetime!(2026-03-04 10:00 +08:00)),
            position: 42,
        }
    }

    fn file() -> Arc<str> {
        Arc::from("transactionItems_20260304_000.csv")
    }

    fn kinds(findings: &[Finding]) -> Vec<FindingKind> {
        findings.iter().map(|finding| finding.kind).collect()
    }

    #[test]
    fn a_refund_that_agrees_is_matched_with_its_line_and_ledger_position() {
        let refund = ledger("R1", RefundStatus::Succeeded, 3000);
        let findings = match_row(
            &row(G3_HEADER, "PAY1,R1,REFUND,SUCCESS,-30.00,USD"),
            &file(),
            Some(&refund),
            None,
        );
        assert_eq!(kinds(&findings), vec![FindingKind::Matched]);
        let finding = &findings[0];
        assert_eq!(finding.report.as_ref().map(|line| line.line), Some(2));
        assert_eq!(finding.ledger.map(|ledger| ledger.position), Some(42));
        assert_eq!(finding.refund_request_id.as_deref(), Some("R1"));
    }

    #[test]
    fn amount_currency_and_ids_that_differ_are_one_differs_finding() {
        let refund = ledger("R1", RefundStatus::Succeeded, 3000);
        let amount = match_row(
            &row(G3_HEADER, "PAY1,R1,REFUND,SUCCESS,-30.01,USD"),
            &file(),
            Some(&refund),
            None,
        );
        assert_eq!(kinds(&amount), vec![FindingKind::Differs]);
        assert!(
            amount[0]
                .message
                .contains("amount -30.01 USD in the report, 30.00 USD in the ledger")
        );
        let currency = match_row(
            &row(G3_HEADER, "PAY1,R1,REFUND,SUCCESS,-30.00,EUR"),
            &file(),
            Some(&refund),
            None,
        );
        assert!(
            currency[0]
                .message
                .contains("currency EUR in the report, USD in the ledger")
        );
        let ids = match_row(
            &row(G2_HEADER, "REF9,PAY9,R1,REFUND,-30.00,USD"),
            &file(),
            Some(&refund),
            None,
        );
        assert_eq!(kinds(&ids), vec![FindingKind::Differs]);
        assert!(
            ids[0]
                .message
                .contains("refundId REF9 in the report, REF1 in the ledger"),
            "{}",
            ids[0].message
        );
        assert!(ids[0].message.contains("paymentId PAY9"), "{}", ids[0].message);
        let g3_transaction_id = match_row(
            &row(G3_HEADER, "OTHER,R1,REFUND,SUCCESS,-30.00,USD"),
            &file(),
            Some(&refund),
            None,
        );
        assert!(g3_transaction_id[0].message.contains("neither the ledger's paymentId"));
        // G3's transactionId may be the refundId (the G2 meaning): accepted either way.
        let as_refund_id = match_row(
            &row(G3_HEADER, "REF1,R1,REFUND,SUCCESS,-30.00,USD"),
            &file(),
            Some(&refund),
            None,
        );
        assert_eq!(kinds(&as_refund_id), vec![FindingKind::Matched]);
    }

    #[test]
    fn a_refund_the_ledger_never_asked_for_is_unknown_to_it() {
        let findings = match_row(
            &row(G3_HEADER, "PAY1,DASH-1,REFUND,SUCCESS,-5.00,USD"),
            &file(),
            None,
            None,
        );
        assert_eq!(kinds(&findings), vec![FindingKind::UnknownToLedger]);
        assert_eq!(findings[0].ledger, None);
    }

    #[test]
    fn status_decision_table() {
        use FindingKind::{LedgerNotSucceeded, LedgerPending, StatusDiffers};
        use RefundStatus::{Failed, Processing, Rejected, Requested, Succeeded};
        let cases = [
            (ReportOutcome::Refunded, Succeeded, None),
            (ReportOutcome::Refunded, Requested, Some(LedgerPending)),
            (ReportOutcome::Refunded, Processing, Some(LedgerPending)),
            (ReportOutcome::Refunded, Failed, Some(LedgerNotSucceeded)),
            (ReportOutcome::Refunded, Rejected, Some(LedgerNotSucceeded)),
            (ReportOutcome::Failed, Failed, None),
            (ReportOutcome::Failed, Rejected, None),
            (ReportOutcome::Failed, Processing, Some(LedgerPending)),
            (ReportOutcome::Failed, Succeeded, Some(StatusDiffers)),
            (ReportOutcome::Processing, Processing, None),
            (ReportOutcome::Processing, Requested, None),
            (ReportOutcome::Processing, Succeeded, Some(StatusDiffers)),
            (ReportOutcome::Processing, Failed, Some(StatusDiffers)),
        ];
        for (report, ledger, expected) in cases {
            assert_eq!(status_finding(report, ledger), expected, "{report:?} / {ledger:?}");
        }
    }

    #[test]
    fn a_refunded_row_the_ledger_holds_open_or_failed_says_what_to_do() {
        let line = "PAY1,R1,REFUND,SUCCESS,-30.00,USD";
        let processing = ledger("R1", RefundStatus::Processing, 3000);
        let pending = match_row(&row(G3_HEADER, line), &file(), Some(&processing), None);
        assert_eq!(kinds(&pending), vec![FindingKind::LedgerPending]);
        assert!(pending[0].message.contains("inquiryRefund"));
        let failed = ledger("R1", RefundStatus::Failed, 3000);
        let anomaly = match_row(&row(G3_HEADER, line), &file(), Some(&failed), None);
        assert_eq!(kinds(&anomaly), vec![FindingKind::LedgerNotSucceeded]);
        // A difference and a status disagreement are both reported.
        let both = match_row(
            &row(G3_HEADER, "PAY1,R1,REFUND,SUCCESS,-31.00,USD"),
            &file(),
            Some(&failed),
            None,
        );
        assert_eq!(
            kinds(&both),
            vec![FindingKind::Differs, FindingKind::LedgerNotSucceeded]
        );
        let failed_at_antom = match_row(
            &row(G3_HEADER, "PAY1,R1,REFUND,FAIL,-30.00,USD"),
            &file(),
            Some(&ledger("R1", RefundStatus::Succeeded, 3000)),
            None,
        );
        assert_eq!(kinds(&failed_at_antom), vec![FindingKind::StatusDiffers]);
    }

    #[test]
    fn a_reversal_is_an_anomaly_whatever_the_ledger_holds() {
        let refund = ledger("R1", RefundStatus::Succeeded, 3000);
        let reversal = row(G3_HEADER, "PAY1,R1,REFUND_REVERSAL,SUCCESS,30.00,USD");
        let findings = match_row(&reversal, &file(), Some(&refund), None);
        assert_eq!(kinds(&findings), vec![FindingKind::RefundReversal]);
        assert!(findings[0].message.contains("not changed"));
        assert_eq!(
            findings[0].ledger.map(|ledger| ledger.status),
            Some(RefundStatus::Succeeded)
        );
        let unknown = match_row(&reversal, &file(), None, None);
        assert_eq!(kinds(&unknown), vec![FindingKind::RefundReversal]);
        assert_eq!(
            row_key(&reversal).map(|key| key.row_type),
            Some(RowType::RefundReversal)
        );
    }

    #[test]
    fn a_duplicate_names_the_earlier_line_and_is_not_matched_again() {
        let refund = ledger("R1", RefundStatus::Succeeded, 3000);
        let earlier = ReportLine { file: file(), line: 2 };
        let findings = match_row(
            &row(G3_HEADER, "PAY1,R1,REFUND,SUCCESS,-30.00,USD"),
            &file(),
            Some(&refund),
            Some(&earlier),
        );
        assert_eq!(kinds(&findings), vec![FindingKind::Duplicate]);
        assert!(findings[0].message.contains("line 2"));
    }

    #[test]
    fn rows_without_ids_or_with_an_unknown_status_are_not_understood() {
        let no_ids = row(G3_HEADER, ",,REFUND,SUCCESS,-30.00,USD");
        assert_eq!(row_key(&no_ids), None);
        assert_eq!(
            kinds(&match_row(&no_ids, &file(), None, None)),
            vec![FindingKind::NotUnderstood]
        );
        let refund = ledger("R1", RefundStatus::Succeeded, 3000);
        let odd_status = match_row(
            &row(G3_HEADER, "PAY1,R1,REFUND,CLOSED,-30.00,USD"),
            &file(),
            Some(&refund),
            None,
        );
        assert_eq!(kinds(&odd_status), vec![FindingKind::NotUnderstood]);
        assert!(odd_status[0].message.contains("CLOSED"));
    }

    #[test]
    fn payments_and_other_rows_are_not_matched() {
        let payment = row(G3_HEADER, "PAY1,P-REQ,PAYMENT,SUCCESS,100.00,USD");
        assert!(match_row(&payment, &file(), None, None).is_empty());
        assert_eq!(row_key(&payment), None);
    }

    #[test]
    fn lookups_fall_back_to_the_refund_id_where_a_generation_carries_it() {
        let batch = rows(
            G2_HEADER,
            &[
                "REF1,PAY1,,REFUND,-30.00,USD",
                "REF2,PAY1,R2,REFUND,-1.00,USD",
                "REF3,PAY1,R2,REFUND,-1.00,USD",
            ],
        );
        let keys = LookupKeys::of(&batch);
        assert_eq!(keys.refund_request_ids, vec!["R2".to_owned()]);
        assert_eq!(keys.refund_ids, vec!["REF1".to_owned()]);
        let ledger_batch = LedgerBatch::new(vec![ledger("R1", RefundStatus::Succeeded, 3000)]);
        let key = row_key(&batch[0]).unwrap();
        assert_eq!(key.refund, RefundKey::RefundId("REF1".into()));
        let found = ledger_batch
            .for_key(&key.refund)
            .map(|refund| refund.refund_request_id.to_string());
        assert_eq!(found.as_deref(), Some("R1"));
        assert_eq!(
            kinds(&match_row(&batch[0], &file(), ledger_batch.for_key(&key.refund), None)),
            vec![FindingKind::Matched]
        );
    }

    #[test]
    fn a_succeeded_refund_of_day_t_that_the_report_lacks_is_missing() {
        let day = ReportDay::new(date!(2026 - 03 - 04), REPORT_DAY_OFFSET_DEFAULT);
        let refund = ledger("R1", RefundStatus::Succeeded, 3000);
        let finding = missing_from_report(&refund, &day, false).unwrap();
        assert_eq!(finding.kind, FindingKind::MissingFromReport);
        assert_eq!(
            (finding.report.clone(), finding.ledger.map(|ledger| ledger.position)),
            (None, Some(42))
        );
        assert_eq!(missing_from_report(&refund, &day, true), None);
        let next_day = LedgerRefund {
            refund_time: Some(datetime!(2026-03-05 00:00 +08:00)),
            ..refund.clone()
        };
        assert_eq!(missing_from_report(&next_day, &day, false), None);
        // 23:59 UTC on the 3rd is 07:59 on the 4th in GMT+8.
        let early = LedgerRefund {
            refund_time: Some(datetime!(2026-03-03 23:59 UTC)),
            ..refund.clone()
        };
        assert!(missing_from_report(&early, &day, false).is_some());
        let processing = LedgerRefund {
            status: RefundStatus::Processing,
            ..refund
        };
        assert_eq!(missing_from_report(&processing, &day, false), None);
    }

    #[test]
    fn counts_per_kind() {
        let mut counts = FindingCounts::default();
        counts.add(FindingKind::Matched);
        counts.add(FindingKind::Duplicate);
        counts.add(FindingKind::Duplicate);
        assert_eq!(counts.get(FindingKind::Duplicate), 2);
        assert_eq!(counts.discrepancies(), 2);
        assert_eq!(
            counts.iter().collect::<Vec<_>>(),
            vec![(FindingKind::Matched, 1), (FindingKind::Duplicate, 2)]
        );
    }
}
