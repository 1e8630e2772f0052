//! The ledger as a reconciliation run reads it (docs/adr/003-reconciliation.md, "Flat memory"): the refunds read
//! model at one pinned position, plus the run's report keys in a table of the same database, so neither the
//! ledger nor the report's key index is held in memory.
//!
//! A [`LedgerView`] is one dedicated connection in one read transaction (SQLite: a deferred transaction on a
//! WAL file, whose snapshot is taken by its first read; PostgreSQL: `REPEATABLE READ`). Every answer is as of
//! [`LedgerView::position`], however far the runner moves meanwhile. The report's keys live in a temporary
//! table of that connection (SQLite: in its temporary file; PostgreSQL: `ON COMMIT DROP`): a crash or a dropped
//! view leaves nothing behind, and the view writes nothing the other readers or the runner see. This file holds
//! the trait and what both backends share; `SqliteLedgerView` and `PostgresLedgerView` live in `sqlite.rs` and
//! `postgres.rs`.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::ProjectionError;
use crate::model::RefundView;
use crate::storage::{REFUND_COLUMNS, bound_to_ns};

/// Keys a single statement binds at most per list (SQLite binds up to 32,766 variables).
pub const LEDGER_VIEW_KEYS_PER_STATEMENT: usize = 8_192;

/// How a report row names its refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// The merchant's refundRequestId (`transactionRequestId`).
    RefundRequestId,
    /// Antom's refundId, for rows without a refundRequestId.
    RefundId,
}

impl KeyKind {
    pub(crate) fn code(self) -> i16 {
        match self {
            Self::RefundRequestId => 0,
            Self::RefundId => 1,
        }
    }
}

/// A report row's key, recorded for the duplicate check and the missing-from-report check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportKey {
    /// The row's type code (`REFUND`, `REFUND_REVERSAL`).
    pub row_type: String,
    /// Which id `key` is.
    pub kind: KeyKind,
    /// The id.
    pub key: String,
    /// The row's file.
    pub file: String,
    /// The row's line.
    pub line: u64,
}

/// Where a key was recorded first: the earlier row a duplicate repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstSeen {
    /// Its file.
    pub file: String,
    /// Its line.
    pub line: u64,
}

/// The day whose succeeded refunds the report must list: `[start, end)` by Antom's refund time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SucceededWindow {
    /// The first instant of the day.
    pub start: OffsetDateTime,
    /// The first instant after it.
    pub end: OffsetDateTime,
}

/// The read models as one reconciliation run sees them. Dropping it ends its transaction and removes its keys.
#[async_trait]
pub trait LedgerView: Send {
    /// The checkpoint the view reads at: every answer holds the events up to it and none after.
    fn position(&self) -> u64;

    /// The refunds named by any of `refund_request_ids` or (Antom's) `refund_ids`, in one query per
    /// [`LEDGER_VIEW_KEYS_PER_STATEMENT`] keys; a refund named both ways may come twice.
    async fn refunds(
        &mut self,
        refund_request_ids: &[String],
        refund_ids: &[String],
    ) -> Result<Vec<RefundView>, ProjectionError>;

    /// Records `keys` in order; answers, per key, `None` when it is the first row with its (row type, kind, key)
    /// or where the first such row was.
    async fn record_keys(&mut self, keys: &[ReportKey]) -> Result<Vec<Option<FirstSeen>>, ProjectionError>;

    /// The next `first` refunds that succeeded in `window` (by Antom's refund time) that no recorded key of row
    /// type `row_type` names (neither by refundRequestId nor by refundId), ordered by refund time and
    /// refundRequestId, after `after` (the last refund of the previous page).
    async fn unreported_refunds(
        &mut self,
        row_type: &str,
        window: SucceededWindow,
        after: Option<&RefundView>,
        first: usize,
    ) -> Result<Vec<RefundView>, ProjectionError>;
}

/// The keyset cursor of [`LedgerView::unreported_refunds`].
pub(crate) fn unreported_cursor(window: SucceededWindow, after: Option<&RefundView>) -> (i64, String) {
    match after {
        Some(refund) => (
            refund.settled_at.map_or(i64::MIN, bound_to_ns),
            refund.refund_request_id.as_str().to_owned(),
        ),
        None => (bound_to_ns(window.start).saturating_sub(1), String::new()),
    }
}

/// The anti-join of the missing check, with the dialect's placeholders for (row type, start, end, cursor time,
/// cursor id, limit) and the keys table's name.
pub(crate) fn unreported_sql(keys_table: &str, placeholders: [&str; 6]) -> String {
    let [row_type, start, end, after_ns, after_id, limit] = placeholders;
    format!(
        "SELECT {REFUND_COLUMNS} FROM projection_refunds AS r
         WHERE r.status = 'SUCCEEDED' AND r.settled_at_ns >= {start} AND r.settled_at_ns < {end}
           AND (r.settled_at_ns, r.refund_request_id) > ({after_ns}, {after_id})
           AND NOT EXISTS (SELECT 1 FROM {keys_table} AS k
                           WHERE k.row_type = {row_type} AND k.key_kind = 0 AND k.key = r.refund_request_id)
           AND NOT EXISTS (SELECT 1 FROM {keys_table} AS k
                           WHERE k.row_type = {row_type} AND k.key_kind = 1 AND k.key = r.refund_id)
         ORDER BY r.settled_at_ns, r.refund_request_id
         LIMIT {limit}"
    )
}

pub(crate) fn limit_i64(first: usize) -> i64 {
    i64::try_from(first).unwrap_or(i64::MAX)
}

/// Where each of a batch's `keys` was first seen, for a batch whose keys at `maybe_seen` (indexes, ascending)
/// may repeat an earlier one and the others certainly do not: `stored` holds the first rows the earlier batches
/// recorded of those keys; a key not stored that an earlier row of the batch has repeats that row; every other
/// key answers `None` (it is the first).
pub(crate) fn first_seen(
    keys: &[ReportKey],
    maybe_seen: &[usize],
    stored: &HashMap<(String, i16, String), (String, u64)>,
) -> Vec<Option<FirstSeen>> {
    fn identity(key: &ReportKey) -> (&str, i16, &str) {
        (key.row_type.as_str(), key.kind.code(), key.key.as_str())
    }
    let repeated: HashSet<(&str, i16, &str)> = maybe_seen.iter().map(|&index| identity(&keys[index])).collect();
    let mut first_in_batch: HashMap<(&str, i16, &str), usize> = HashMap::new();
    for (index, key) in keys.iter().enumerate() {
        let key = identity(key);
        if repeated.contains(&key) {
            first_in_batch.entry(key).or_insert(index);
        }
    }
    let mut answers = vec![None; keys.len()];
    for &index in maybe_seen {
        let key = &keys[index];
        let owned = (key.row_type.clone(), key.kind.code(), key.key.clone());
        answers[index] = match stored.get(&owned) {
            Some((file, line)) => Some(FirstSeen {
                file: file.clone(),
                line: *line,
            }),
            None => first_in_batch
                .get(&identity(key))
                .filter(|&&first| first < index)
                .map(|&first| FirstSeen {
                    file: keys[first].file.clone(),
                    line: keys[first].line,
                }),
        };
    }
    answers
}

/// The migration that serves the views' queries, the same in both databases: refunds by Antom's refundId (rows
/// without a refundRequestId) and the succeeded refunds by refund time (the missing check's keyset).
pub(crate) const LEDGER_VIEW_INDEXES_SQL: &str = "
    CREATE INDEX projection_refunds_by_refund_id ON projection_refunds (refund_id);
    CREATE INDEX projection_refunds_succeeded_by_time ON projection_refunds (settled_at_ns, refund_request_id)
        WHERE status = 'SUCCEEDED';
";

/// Runs that have findings rows but no run row, at most `LIMIT` of them (placeholder `limit`): one index probe
/// per run (a loose scan of the findings' primary key), however many findings each has.
pub(crate) fn unrecorded_runs_sql(limit: &str) -> String {
    format!(
        "WITH RECURSIVE runs(run_id) AS (
             SELECT min(run_id) FROM projection_reconciliation_findings
             UNION ALL
             SELECT (SELECT min(f.run_id) FROM projection_reconciliation_findings AS f WHERE f.run_id > runs.run_id)
             FROM runs WHERE runs.run_id IS NOT NULL
         )
         SELECT run_id FROM runs
         WHERE run_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM projection_reconciliations AS r WHERE r.run_id = runs.run_id)
         LIMIT {limit}"
    )
}

/// Removes the findings of run `run_id` (placeholder `run`) unless the run is recorded.
pub(crate) fn remove_unrecorded_sql(run: &str) -> String {
    format!(
        "DELETE FROM projection_reconciliation_findings WHERE run_id = {run}
           AND NOT EXISTS (SELECT 1 FROM projection_reconciliations WHERE run_id = {run})"
    )
}
