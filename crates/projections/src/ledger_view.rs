//! The ledger as a reconciliation run reads it (docs/adr/003-reconciliation.md, "Flat memory"): the refunds read
//! model at one pinned position, plus the run's report keys in a table of the same database, so neither the
//! ledger nor the report's key index is held in memory.
//!
//! A [`LedgerView`] is one dedicated connection in one read transaction (SQLite: a deferred transaction on a
//! WAL file, whose snapshot is taken by its first read; PostgreSQL: `REPEATABLE READ`). Every answer is as of
//! [`LedgerView::position`], however far the runner moves meanwhile. The report's keys live in a temporary
//! table of that connection (SQLite: in its temporary file; PostgreSQL: `ON COMMIT DROP`): a crash or a dropped
//! view leaves nothing behind, and the view writes nothing the other readers or the runner see.

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;
use rusqlite::Connection;
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
    fn code(self) -> i16 {
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
fn unreported_cursor(window: SucceededWindow, after: Option<&RefundView>) -> (i64, String) {
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
fn unreported_sql(keys_table: &str, placeholders: [&str; 6]) -> String {
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

fn limit_i64(first: usize) -> i64 {
    i64::try_from(first).unwrap_or(i64::MAX)
}

/// Where each key was first seen, from the stored first rows of the batch's keys: `None` for the row that is
/// itself the first.
fn first_seen(keys: &[ReportKey], stored: &HashMap<(String, i16, String), (String, u64)>) -> Vec<Option<FirstSeen>> {
    keys.iter()
        .map(|key| {
            let (file, line) = stored.get(&(key.row_type.clone(), key.kind.code(), key.key.clone()))?;
            (*file != key.file || *line != key.line).then(|| FirstSeen {
                file: file.clone(),
                line: *line,
            })
        })
        .collect()
}

/// The SQLite view: its own connection, which writes only its temporary table.
pub(crate) struct SqliteLedgerView {
    connection: Option<Connection>,
    position: u64,
}

impl SqliteLedgerView {
    pub(crate) async fn open(path: &Path) -> Result<Self, ProjectionError> {
        let path = path.to_path_buf();
        crate::sqlite::blocking("open sqlite ledger view", move || {
            let failed = crate::sqlite::failed("open sqlite ledger view");
            let connection = crate::sqlite::open_connection(&path, false)?;
            connection
                .execute_batch(
                    "PRAGMA temp_store = FILE;
                     CREATE TEMP TABLE reconciliation_keys (
                         row_type TEXT NOT NULL, key_kind INTEGER NOT NULL, key TEXT NOT NULL,
                         file TEXT NOT NULL, line INTEGER NOT NULL,
                         PRIMARY KEY (row_type, key_kind, key)
                     ) WITHOUT ROWID;
                     BEGIN DEFERRED;",
                )
                .map_err(&failed)?;
            // The first read takes the snapshot every later read of this transaction sees.
            let position = crate::sqlite::read_checkpoint(&connection)?;
            Ok(Self {
                connection: Some(connection),
                position,
            })
        })
        .await
    }

    async fn with<T, F>(&mut self, operation: &'static str, work: F) -> Result<T, ProjectionError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ProjectionError> + Send + 'static,
    {
        let connection = self.connection.take().ok_or_else(|| ProjectionError::Backend {
            operation,
            source: std::sync::Arc::new(std::io::Error::other("the ledger view's connection was lost")),
        })?;
        let (connection, result) = crate::sqlite::blocking(operation, move || {
            let result = work(&connection);
            Ok((connection, result))
        })
        .await?;
        self.connection = Some(connection);
        result
    }
}

fn sqlite_refunds(mut rows: rusqlite::Rows<'_>) -> Result<Vec<RefundView>, ProjectionError> {
    let failed = crate::sqlite::failed("read refund row");
    let mut refunds = Vec::new();
    while let Some(row) = rows.next().map_err(&failed)? {
        refunds.push(crate::sqlite::refund_record(row).map_err(&failed)?.into_view()?);
    }
    Ok(refunds)
}

#[async_trait]
impl LedgerView for SqliteLedgerView {
    fn position(&self) -> u64 {
        self.position
    }

    async fn refunds(
        &mut self,
        refund_request_ids: &[String],
        refund_ids: &[String],
    ) -> Result<Vec<RefundView>, ProjectionError> {
        let mut lists = Vec::new();
        for chunk in refund_request_ids.chunks(LEDGER_VIEW_KEYS_PER_STATEMENT) {
            lists.push(("refund_request_id", chunk.to_vec()));
        }
        for chunk in refund_ids.chunks(LEDGER_VIEW_KEYS_PER_STATEMENT) {
            lists.push(("refund_id", chunk.to_vec()));
        }
        self.with("query refunds of a report batch", move |connection| {
            let failed = crate::sqlite::failed("query refunds of a report batch");
            let mut refunds = Vec::new();
            for (column, ids) in lists {
                let marks = vec!["?"; ids.len()].join(", ");
                let sql = format!("SELECT {REFUND_COLUMNS} FROM projection_refunds WHERE {column} IN ({marks})");
                let mut statement = connection.prepare(&sql).map_err(&failed)?;
                let rows = statement
                    .query(rusqlite::params_from_iter(ids.iter()))
                    .map_err(&failed)?;
                refunds.extend(sqlite_refunds(rows)?);
            }
            Ok(refunds)
        })
        .await
    }

    async fn record_keys(&mut self, keys: &[ReportKey]) -> Result<Vec<Option<FirstSeen>>, ProjectionError> {
        let keys = keys.to_vec();
        self.with("record report keys", move |connection| {
            let failed = crate::sqlite::failed("record report keys");
            let mut insert = connection
                .prepare_cached(
                    "INSERT INTO temp.reconciliation_keys (row_type, key_kind, key, file, line)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                )
                .map_err(&failed)?;
            let mut earlier = connection
                .prepare_cached(
                    "SELECT file, line FROM temp.reconciliation_keys WHERE row_type = ?1 AND key_kind = ?2 AND key = ?3",
                )
                .map_err(&failed)?;
            let mut answers = Vec::with_capacity(keys.len());
            for key in &keys {
                let line = i64::try_from(key.line).unwrap_or(i64::MAX);
                let kind = key.kind.code();
                let inserted = insert
                    .execute(rusqlite::params![key.row_type, kind, key.key, key.file, line])
                    .map_err(&failed)?;
                if inserted == 1 {
                    answers.push(None);
                    continue;
                }
                let (file, line): (String, i64) = earlier
                    .query_row(rusqlite::params![key.row_type, kind, key.key], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .map_err(&failed)?;
                answers.push(Some(FirstSeen {
                    file,
                    line: u64::try_from(line).unwrap_or_default(),
                }));
            }
            Ok(answers)
        })
        .await
    }

    async fn unreported_refunds(
        &mut self,
        row_type: &str,
        window: SucceededWindow,
        after: Option<&RefundView>,
        first: usize,
    ) -> Result<Vec<RefundView>, ProjectionError> {
        let (after_ns, after_id) = unreported_cursor(window, after);
        let row_type = row_type.to_owned();
        self.with("query refunds missing from the report", move |connection| {
            let failed = crate::sqlite::failed("query refunds missing from the report");
            let sql = unreported_sql("temp.reconciliation_keys", ["?1", "?2", "?3", "?4", "?5", "?6"]);
            let mut statement = connection.prepare_cached(&sql).map_err(&failed)?;
            let rows = statement
                .query(rusqlite::params![
                    row_type,
                    bound_to_ns(window.start),
                    bound_to_ns(window.end),
                    after_ns,
                    after_id,
                    limit_i64(first)
                ])
                .map_err(&failed)?;
            sqlite_refunds(rows)
        })
        .await
    }
}

/// The PostgreSQL view: its own connection (not the pool's: dropping it must end the transaction with it).
pub(crate) struct PostgresLedgerView {
    client: tokio_postgres::Client,
    position: u64,
    /// Whether the keys table was analyzed (before the first missing-check page).
    analyzed: bool,
}

impl PostgresLedgerView {
    pub(crate) async fn open(config: &tokio_postgres::Config) -> Result<Self, ProjectionError> {
        let failed = crate::postgres::failed("open postgres ledger view");
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(&failed)?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "ledger view connection ended");
            }
        });
        client
            .batch_execute(
                "BEGIN ISOLATION LEVEL REPEATABLE READ;
                 CREATE TEMP TABLE reconciliation_keys (
                     row_type TEXT NOT NULL, key_kind SMALLINT NOT NULL, key TEXT NOT NULL,
                     file TEXT NOT NULL, line BIGINT NOT NULL,
                     PRIMARY KEY (row_type, key_kind, key)
                 ) ON COMMIT DROP;",
            )
            .await
            .map_err(&failed)?;
        let position = crate::postgres::read_checkpoint(&client, false).await?;
        Ok(Self {
            client,
            position,
            analyzed: false,
        })
    }
}

fn postgres_refunds(rows: &[tokio_postgres::Row]) -> Result<Vec<RefundView>, ProjectionError> {
    rows.iter()
        .map(|row| crate::postgres::refund_record(row)?.into_view())
        .collect()
}

#[async_trait]
impl LedgerView for PostgresLedgerView {
    fn position(&self) -> u64 {
        self.position
    }

    async fn refunds(
        &mut self,
        refund_request_ids: &[String],
        refund_ids: &[String],
    ) -> Result<Vec<RefundView>, ProjectionError> {
        let failed = crate::postgres::failed("query refunds of a report batch");
        let mut refunds = Vec::new();
        let lists = refund_request_ids
            .chunks(LEDGER_VIEW_KEYS_PER_STATEMENT)
            .map(|chunk| ("refund_request_id", chunk))
            .chain(
                refund_ids
                    .chunks(LEDGER_VIEW_KEYS_PER_STATEMENT)
                    .map(|chunk| ("refund_id", chunk)),
            );
        for (column, ids) in lists {
            let sql = format!("SELECT {REFUND_COLUMNS} FROM projection_refunds WHERE {column} = ANY($1::text[])");
            let ids = ids.to_vec();
            let rows = self.client.query(&sql, &[&ids]).await.map_err(&failed)?;
            refunds.extend(postgres_refunds(&rows)?);
        }
        Ok(refunds)
    }

    async fn record_keys(&mut self, keys: &[ReportKey]) -> Result<Vec<Option<FirstSeen>>, ProjectionError> {
        let failed = crate::postgres::failed("record report keys");
        let mut stored = HashMap::new();
        for chunk in keys.chunks(LEDGER_VIEW_KEYS_PER_STATEMENT) {
            let row_types: Vec<&str> = chunk.iter().map(|key| key.row_type.as_str()).collect();
            let kinds: Vec<i16> = chunk.iter().map(|key| key.kind.code()).collect();
            let ids: Vec<&str> = chunk.iter().map(|key| key.key.as_str()).collect();
            let files: Vec<&str> = chunk.iter().map(|key| key.file.as_str()).collect();
            let lines: Vec<i64> = chunk
                .iter()
                .map(|key| i64::try_from(key.line).unwrap_or(i64::MAX))
                .collect();
            // Rows of one statement are inserted in the array's order, so of two equal keys in a batch the
            // first is stored and the second conflicts with it.
            self.client
                .execute(
                    "INSERT INTO reconciliation_keys (row_type, key_kind, key, file, line)
                     SELECT row_type, key_kind, key, file, line
                     FROM UNNEST($1::text[], $2::int2[], $3::text[], $4::text[], $5::int8[])
                       WITH ORDINALITY AS u(row_type, key_kind, key, file, line, n)
                       ORDER BY n
                     ON CONFLICT DO NOTHING",
                    &[&row_types, &kinds, &ids, &files, &lines],
                )
                .await
                .map_err(&failed)?;
            let rows = self
                .client
                .query(
                    "SELECT k.row_type, k.key_kind, k.key, k.file, k.line FROM reconciliation_keys AS k
                     JOIN (SELECT DISTINCT * FROM UNNEST($1::text[], $2::int2[], $3::text[])) AS u(row_type, key_kind, key)
                       ON k.row_type = u.row_type AND k.key_kind = u.key_kind AND k.key = u.key",
                    &[&row_types, &kinds, &ids],
                )
                .await
                .map_err(&failed)?;
            for row in rows {
                let line: i64 = row.try_get(4).map_err(&failed)?;
                stored.insert(
                    (
                        row.try_get(0).map_err(&failed)?,
                        row.try_get(1).map_err(&failed)?,
                        row.try_get(2).map_err(&failed)?,
                    ),
                    (
                        row.try_get(3).map_err(&failed)?,
                        u64::try_from(line).unwrap_or_default(),
                    ),
                );
            }
        }
        Ok(first_seen(keys, &stored))
    }

    async fn unreported_refunds(
        &mut self,
        row_type: &str,
        window: SucceededWindow,
        after: Option<&RefundView>,
        first: usize,
    ) -> Result<Vec<RefundView>, ProjectionError> {
        let (after_ns, after_id) = unreported_cursor(window, after);
        if !self.analyzed {
            // A temporary table has no statistics (autovacuum never visits it), and a refunds table right after a
            // bulk load has stale ones: the planner then expects one refund and scans the keys once per refund
            // of the day (measured: over a minute for 100,000). Analyzed keys and no nested loop make it one hash
            // anti-join per page (96 ms for 100,000). Once, after the last key was recorded; `LOCAL` ends with
            // the view's transaction.
            self.client
                .batch_execute("ANALYZE reconciliation_keys; SET LOCAL enable_nestloop = off")
                .await
                .map_err(crate::postgres::failed("analyze the report keys"))?;
            self.analyzed = true;
        }
        let sql = unreported_sql(
            "reconciliation_keys",
            ["$1::text", "$2::int8", "$3::int8", "$4::int8", "$5::text", "$6::int8"],
        );
        let rows = self
            .client
            .query(
                &sql,
                &[
                    &row_type,
                    &bound_to_ns(window.start),
                    &bound_to_ns(window.end),
                    &after_ns,
                    &after_id,
                    &limit_i64(first),
                ],
            )
            .await
            .map_err(crate::postgres::failed("query refunds missing from the report"))?;
        postgres_refunds(&rows)
    }
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
