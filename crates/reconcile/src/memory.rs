//! Whole reconciliations with everything in memory: the ledger's refunds in a [`LedgerBatch`], the report's keys
//! in a [`MemoryIndex`]. For tests, tools and reports of modest size; the service runs the same steps with the
//! ledger and the index in its database, batch by batch, so its memory stays flat
//! (docs/adr/003-reconciliation.md). Findings are collected and only handed out with the [`EndOfReport`] of
//! every file: a truncated file yields an error and no findings.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::sync::Arc;

use crate::error::ReconcileError;
use crate::matcher::{
    Finding, FindingCounts, LedgerBatch, LedgerRefund, RefundKey, ReportDay, ReportLine, RowKey, match_row,
    missing_from_report, row_key,
};
use crate::reader::{EndOfReport, ReportReader};
use crate::row::{Row, RowType};
use crate::settlement::{BatchTotals, check_settlement_row, compare_with_summary};

/// The report's row keys seen so far, for duplicates and the missing-from-report check.
#[derive(Debug, Clone, Default)]
pub struct MemoryIndex {
    seen: HashMap<RowKey, ReportLine>,
    refund_keys: HashSet<RefundKey>,
}

impl MemoryIndex {
    /// Records a row's key; answers the line of an earlier row with the same key, if any.
    pub fn record(&mut self, key: RowKey, line: ReportLine) -> Option<ReportLine> {
        if let Some(earlier) = self.seen.get(&key) {
            return Some(earlier.clone());
        }
        if key.row_type == RowType::Refund {
            self.refund_keys.insert(key.refund.clone());
        }
        self.seen.insert(key, line);
        None
    }

    /// Whether a REFUND row named this refund, by refundRequestId or refundId.
    pub fn contains_refund(&self, refund: &LedgerRefund) -> bool {
        self.refund_keys
            .contains(&RefundKey::RequestId(refund.refund_request_id.to_string()))
            || refund
                .refund_id
                .as_ref()
                .is_some_and(|id| self.refund_keys.contains(&RefundKey::RefundId(id.to_string())))
    }
}

/// The result of a reconciliation run.
#[derive(Debug, Clone)]
pub struct Reconciliation {
    /// One proof of completeness per file read.
    pub files: Vec<EndOfReport>,
    /// Every finding, in report order, then the missing ones.
    pub findings: Vec<Finding>,
    /// Findings per kind.
    pub counts: FindingCounts,
    /// Rows not reconciled against the ledger (payments, disputes, fees...), per type.
    pub other_rows: BTreeMap<String, u64>,
}

impl Reconciliation {
    fn new() -> Self {
        Self {
            files: Vec::new(),
            findings: Vec::new(),
            counts: FindingCounts::default(),
            other_rows: BTreeMap::new(),
        }
    }

    fn push(&mut self, finding: Finding) {
        self.counts.add(finding.kind);
        self.findings.push(finding);
    }
}

/// Reconciles transaction details reports of day T (all parts of the day) against `ledger`: every REFUND and
/// REFUND_REVERSAL row matched, and, when `day` is given, every ledger refund that succeeded on that day but
/// is in none of the files reported missing.
pub fn reconcile_transaction_details<R: BufRead>(
    files: Vec<(String, R)>,
    ledger: &[LedgerRefund],
    day: Option<&ReportDay>,
) -> Result<Reconciliation, ReconcileError> {
    let mut run = DetailsRun::new(ledger);
    for (name, reader) in files {
        run.read(&name, reader, |_, _, _| Ok(()))?;
    }
    let DetailsRun { index, mut result, .. } = run;
    if let Some(day) = day {
        for refund in ledger {
            if let Some(finding) = missing_from_report(refund, day, index.contains_refund(refund)) {
                result.push(finding);
            }
        }
    }
    Ok(result)
}

/// Reconciles a settlement batch: its details files (all parts) against `ledger` as
/// [`reconcile_transaction_details`] does (without the missing check: a batch is not a day), every details
/// row's settlement formula, and the details' totals against the summary file.
pub fn reconcile_settlement_batch<R: BufRead>(
    details: Vec<(String, R)>,
    summary: (String, R),
    ledger: &[LedgerRefund],
) -> Result<Reconciliation, ReconcileError> {
    let mut run = DetailsRun::new(ledger);
    let mut detail_totals = BatchTotals::default();
    for (name, reader) in details {
        run.read(&name, reader, |row, file, result| {
            if let Some(finding) = check_settlement_row(row, file) {
                result.push(finding);
            }
            detail_totals.add_detail(row, file)
        })?;
    }
    let mut result = run.result;
    let (name, reader) = summary;
    let mut reader = ReportReader::open(&name, reader)?;
    let file: Arc<str> = Arc::from(name.as_str());
    let mut summary_totals = BatchTotals::default();
    while let Some(row) = reader.next_row()? {
        if let Some(finding) = summary_totals.add_summary(&row, &file)? {
            result.push(finding);
        }
    }
    result.files.push(reader.finish()?);
    for finding in compare_with_summary(&detail_totals, &summary_totals, &file) {
        result.push(finding);
    }
    Ok(result)
}

/// The ledger, the index and the result of a run over details files.
struct DetailsRun {
    batch: LedgerBatch,
    index: MemoryIndex,
    result: Reconciliation,
}

impl DetailsRun {
    fn new(ledger: &[LedgerRefund]) -> Self {
        Self {
            batch: LedgerBatch::new(ledger.to_vec()),
            index: MemoryIndex::default(),
            result: Reconciliation::new(),
        }
    }

    /// Reads one details file to its end, matching every row and handing it to `also`.
    fn read<R: BufRead>(
        &mut self,
        name: &str,
        reader: R,
        mut also: impl FnMut(&Row, &Arc<str>, &mut Reconciliation) -> Result<(), ReconcileError>,
    ) -> Result<(), ReconcileError> {
        let mut reader = ReportReader::open(name, reader)?;
        let file: Arc<str> = Arc::from(name);
        while let Some(row) = reader.next_row()? {
            match_into(&row, &file, &self.batch, &mut self.index, &mut self.result);
            also(&row, &file, &mut self.result)?;
        }
        self.result.files.push(reader.finish()?);
        Ok(())
    }
}

fn match_into(row: &Row, file: &Arc<str>, batch: &LedgerBatch, index: &mut MemoryIndex, result: &mut Reconciliation) {
    let Some(key) = row_key(row) else {
        if !crate::matcher::is_refund_row(row) {
            *result.other_rows.entry(row.row_type().as_str().to_owned()).or_default() += 1;
        }
        for finding in match_row(row, file, None, None) {
            result.push(finding);
        }
        return;
    };
    let ledger = batch.for_key(&key.refund);
    let line = ReportLine {
        file: Arc::clone(file),
        line: row.line(),
    };
    let earlier = index.record(key, line);
    for finding in match_row(row, file, ledger, earlier.as_ref()) {
        result.push(finding);
    }
}
