//! Read models in their own SQLite file, beside the event log's (`ledger.db` -> `ledger.read.db`).
//!
//! A separate file because SQLite has one writer per file: the runner's batches must not queue behind the
//! log's appends (nor the other way round). WAL lets queries run beside the runner's transaction.
//!
//! `synchronous = NORMAL`: a batch commits without an fsync of its own (the WAL is synced at checkpoints).
//! Power loss may then take the last batches back, but only whole: the checkpoint sits in the same
//! transaction as its rows, so the file always holds the read models exactly as of its checkpoint, and the
//! runner resumes after it and applies the lost events again from the log, which is durable on its own
//! (`synchronous = FULL` there). Everything here is derived from the log (a rebuild makes it anew), so this
//! costs nothing but the replay of a few events after a crash, and saves an fsync per batch.
//!
//! One writer at a time: a handle hands out at most one [`ProjectionWriter`] lease. A runner in another
//! process on the same file is not excluded by the lease, but every batch re-reads the checkpoint inside an
//! `IMMEDIATE` transaction (SQLite's file lock), so the slower of two writers gets
//! [`ProjectionError::CheckpointMoved`] and nothing is applied twice.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use domain::{Currency, PaymentId, RefundRequestId};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params_from_iter};
use time::{Date, OffsetDateTime};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use crate::anomaly::{self, ANOMALY_COLUMNS, ANOMALY_TABLE_SQL, AnomalyRecord, AnomalyView};
use crate::checkpoint::{raise, wait_for_checkpoint};
use crate::error::ProjectionError;
use crate::fold::{Batch, BatchFold, BatchKeys};
use crate::ledger_view::{
    FirstSeen, LEDGER_VIEW_INDEXES_SQL, LEDGER_VIEW_KEYS_PER_STATEMENT, LedgerView, ReportKey, SucceededWindow,
    limit_i64, unreported_cursor, unreported_sql,
};
use crate::model::{
    Cursor, CursorKind, DailyTotal, OPEN_REFUND_AGE_BOUNDS_SECONDS, OpenRefundStats, Page, PaymentFilter, PaymentView,
    RefundFilter, RefundView,
};
use crate::read_models::RebuildStep;
use crate::read_models::{ProjectionStore, ProjectionWriter, ReadModels};
use crate::rebuild::{REBUILT_TABLES, reader_gone};
use crate::storage::{
    self, DailyRecord, Dialect, OpenRefundRow, PAYMENT_COLUMNS, Param, PaymentRecord, Query, REFUND_COLUMNS,
    RefundRecord, bound_to_ns, position_i64,
};

/// Read connections a handle keeps open at most.
const READ_CONNECTIONS_MAX: usize = 4;

/// How long a statement waits for SQLite's file lock before failing, in milliseconds.
const BUSY_TIMEOUT_MS: u64 = 5_000;

/// The schema, one entry per version; applied in order, each once.
///
/// `projection_daily_totals` has no `CHECK (count >= 0)`: an upsert adding a negative delta would fail the
/// check on the proposed row before the conflict turns it into an update. Rows are checked when read.
const MIGRATIONS: &[&str] = &[
    r"
    CREATE TABLE projection_checkpoint (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        position INTEGER NOT NULL CHECK (position >= 0)
    ) STRICT;
    INSERT INTO projection_checkpoint (id, position) VALUES (1, 0);
    CREATE TABLE projection_payments (
        payment_id          TEXT    PRIMARY KEY,
        currency            TEXT    NOT NULL,
        payment_amount      INTEGER NOT NULL CHECK (payment_amount >= 0),
        payment_method_type TEXT    NOT NULL,
        payment_time_ns     INTEGER NOT NULL,
        capture_required    INTEGER NOT NULL,
        captured            INTEGER NOT NULL CHECK (captured >= 0),
        refunded            INTEGER NOT NULL CHECK (refunded >= 0),
        pending             INTEGER NOT NULL CHECK (pending >= 0),
        charged_back        INTEGER NOT NULL CHECK (charged_back >= 0),
        refundable          INTEGER NOT NULL CHECK (refundable >= 0),
        status              TEXT    NOT NULL,
        open_chargeback     INTEGER NOT NULL,
        disputes            TEXT    NOT NULL,
        refund_count        INTEGER NOT NULL,
        last_position       INTEGER NOT NULL,
        updated_at_ns       INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX projection_payments_by_time ON projection_payments (payment_time_ns, payment_id);
    CREATE TABLE projection_refunds (
        refund_request_id TEXT    PRIMARY KEY,
        payment_id        TEXT    NOT NULL,
        currency          TEXT    NOT NULL,
        refund_amount     INTEGER NOT NULL CHECK (refund_amount >= 0),
        refund_reason     TEXT,
        status            TEXT    NOT NULL,
        result_code       TEXT,
        result_message    TEXT,
        refund_id         TEXT,
        requested_at_ns   INTEGER NOT NULL,
        settled_at_ns     INTEGER,
        requested_by      TEXT    NOT NULL,
        anomaly_count     INTEGER NOT NULL,
        last_position     INTEGER NOT NULL,
        updated_at_ns     INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX projection_refunds_by_time ON projection_refunds (requested_at_ns, refund_request_id);
    CREATE INDEX projection_refunds_by_payment ON projection_refunds (payment_id, requested_at_ns, refund_request_id);
    CREATE INDEX projection_refunds_by_status ON projection_refunds (status, requested_at_ns, refund_request_id);
    CREATE TABLE projection_daily_totals (
        date     TEXT    NOT NULL,
        currency TEXT    NOT NULL,
        status   TEXT    NOT NULL,
        count    INTEGER NOT NULL,
        amount   INTEGER NOT NULL,
        PRIMARY KEY (date, currency, status)
    ) STRICT;
",
    r"
    CREATE TABLE projection_reconciliations (
        run_id      TEXT    PRIMARY KEY,
        position    INTEGER NOT NULL UNIQUE,
        recorded_at TEXT    NOT NULL,
        actor       TEXT    NOT NULL,
        data        TEXT    NOT NULL
    ) STRICT;
    CREATE TABLE projection_reconciliation_findings (
        run_id      TEXT    NOT NULL,
        seq         INTEGER NOT NULL,
        kind        TEXT    NOT NULL,
        data        TEXT    NOT NULL,
        ack_by      TEXT,
        ack_at      TEXT,
        ack_note    TEXT,
        ack_position INTEGER,
        PRIMARY KEY (run_id, seq)
    ) STRICT;
    CREATE INDEX projection_reconciliation_findings_by_kind ON projection_reconciliation_findings (run_id, kind, seq);
",
    ANOMALY_TABLE_SQL,
    LEDGER_VIEW_INDEXES_SQL,
];

/// The read-model file that belongs beside the event log at `log_path`: `ledger.db` -> `ledger.read.db`,
/// `ledger` -> `ledger.read`.
pub fn read_model_path(log_path: &Path) -> PathBuf {
    let stem = log_path.file_stem().map(|stem| stem.to_string_lossy().into_owned());
    let name = match (stem, log_path.extension()) {
        (Some(stem), Some(extension)) => format!("{stem}.read.{}", extension.to_string_lossy()),
        (Some(stem), None) => format!("{stem}.read"),
        (None, _) => "ledger.read.db".to_owned(),
    };
    log_path.with_file_name(name)
}

/// Read models in one SQLite file.
#[derive(Debug)]
pub struct SqliteReadModels {
    path: PathBuf,
    readers: Arc<ReadPool>,
    published: Arc<watch::Sender<u64>>,
    writer_held: Arc<AtomicBool>,
}

#[derive(Debug)]
struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl ReadPool {
    fn take(&self) -> Result<Connection, ProjectionError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(connection) => Ok(connection),
            None => open_connection(&self.path, true),
        }
    }

    fn give_back(&self, connection: Connection) {
        // A poisoned lock only loses the connection for reuse.
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(connection);
        }
    }
}

impl SqliteReadModels {
    /// Opens (creating if needed) the read models in the SQLite file at `path` and migrates its schema.
    /// Use [`read_model_path`] to place it beside the event log.
    #[tracing::instrument(skip_all, fields(path = %path.as_ref().display()))]
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, ProjectionError> {
        let path = path.as_ref().to_path_buf();
        let migrate_path = path.clone();
        let checkpoint = blocking("open sqlite read models", move || {
            let mut connection = open_connection(&migrate_path, false)?;
            migrate(&mut connection)?;
            read_checkpoint(&connection)
        })
        .await?;
        Ok(Self {
            readers: Arc::new(ReadPool {
                path: path.clone(),
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(READ_CONNECTIONS_MAX)),
            }),
            path,
            published: Arc::new(watch::Sender::new(checkpoint)),
            writer_held: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The file holding the read models.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn read<T, F>(&self, work: F) -> Result<T, ProjectionError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ProjectionError> + Send + 'static,
    {
        let permit = Arc::clone(&self.readers.permits)
            .acquire_owned()
            .await
            .map_err(|error| ProjectionError::backend("acquire sqlite reader", error))?;
        let readers = Arc::clone(&self.readers);
        blocking("sqlite query", move || {
            let connection = readers.take()?;
            let result = work(&connection);
            readers.give_back(connection);
            drop(permit);
            result
        })
        .await
    }

    async fn stored_checkpoint(&self) -> Result<u64, ProjectionError> {
        let stored = self.read(read_checkpoint).await?;
        self.published.send_if_modified(|known| raise(known, stored));
        Ok(stored)
    }
}

pub(crate) async fn blocking<T, F>(operation: &'static str, work: F) -> Result<T, ProjectionError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ProjectionError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ProjectionError::backend(operation, error))?
}

pub(crate) fn failed(operation: &'static str) -> impl Fn(rusqlite::Error) -> ProjectionError {
    move |error| ProjectionError::backend(operation, error)
}

pub(crate) fn open_connection(path: &Path, query_only: bool) -> Result<Connection, ProjectionError> {
    let connection = Connection::open(path).map_err(failed("open sqlite read models"))?;
    connection
        .busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
        .map_err(failed("configure sqlite read models"))?;
    connection
        .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .map_err(failed("configure sqlite read models"))?;
    if query_only {
        connection
            .execute_batch("PRAGMA query_only = ON;")
            .map_err(failed("configure sqlite read models"))?;
    }
    Ok(connection)
}

fn migrate(connection: &mut Connection) -> Result<(), ProjectionError> {
    let failed = failed("migrate sqlite read models");
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&failed)?;
    transaction
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS projection_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)
             STRICT;",
        )
        .map_err(&failed)?;
    let applied: i64 = transaction
        .query_row(
            "SELECT coalesce(max(version), 0) FROM projection_migrations",
            [],
            |row| row.get(0),
        )
        .map_err(&failed)?;
    let applied = usize::try_from(applied).unwrap_or(usize::MAX);
    if applied > MIGRATIONS.len() {
        return Err(ProjectionError::CorruptRow {
            table: "projection_migrations",
            key: applied.to_string(),
            reason: format!(
                "schema version {applied} is newer than this build ({})",
                MIGRATIONS.len()
            ),
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        transaction.execute_batch(migration).map_err(&failed)?;
        transaction
            .execute(
                "INSERT INTO projection_migrations (version, applied_at) VALUES (?1, datetime('now'))",
                [i64::try_from(index + 1).unwrap_or(i64::MAX)],
            )
            .map_err(&failed)?;
    }
    transaction.commit().map_err(&failed)
}

pub(crate) fn read_checkpoint(connection: &Connection) -> Result<u64, ProjectionError> {
    let position: i64 = connection
        .prepare_cached("SELECT position FROM projection_checkpoint WHERE id = 1")
        .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
        .map_err(failed("read checkpoint"))?;
    u64::try_from(position).map_err(|_| ProjectionError::CorruptRow {
        table: "projection_checkpoint",
        key: "1".to_owned(),
        reason: "position is negative".to_owned(),
    })
}

fn to_value(param: &Param) -> Value {
    match param {
        Param::Text(text) => Value::Text(text.clone()),
        Param::Integer(integer) => Value::Integer(*integer),
    }
}

fn payment_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<PaymentRecord> {
    Ok(PaymentRecord {
        payment_id: row.get(0)?,
        currency: row.get(1)?,
        payment_amount: row.get(2)?,
        payment_method_type: row.get(3)?,
        payment_time_ns: row.get(4)?,
        capture_required: row.get(5)?,
        captured: row.get(6)?,
        refunded: row.get(7)?,
        pending: row.get(8)?,
        charged_back: row.get(9)?,
        refundable: row.get(10)?,
        status: row.get(11)?,
        open_chargeback: row.get(12)?,
        disputes: row.get(13)?,
        refund_count: row.get(14)?,
        last_position: row.get(15)?,
        updated_at_ns: row.get(16)?,
    })
}

pub(crate) fn refund_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<RefundRecord> {
    Ok(RefundRecord {
        refund_request_id: row.get(0)?,
        payment_id: row.get(1)?,
        currency: row.get(2)?,
        refund_amount: row.get(3)?,
        refund_reason: row.get(4)?,
        status: row.get(5)?,
        result_code: row.get(6)?,
        result_message: row.get(7)?,
        refund_id: row.get(8)?,
        requested_at_ns: row.get(9)?,
        settled_at_ns: row.get(10)?,
        requested_by: row.get(11)?,
        anomaly_count: row.get(12)?,
        last_position: row.get(13)?,
        updated_at_ns: row.get(14)?,
    })
}

fn open_refund_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<OpenRefundRow> {
    let mut younger_than = [0_i64; OPEN_REFUND_AGE_BOUNDS_SECONDS.len()];
    for (index, count) in younger_than.iter_mut().enumerate() {
        *count = row.get(3 + index)?;
    }
    Ok(OpenRefundRow {
        status: row.get(0)?,
        count: row.get(1)?,
        oldest_requested_at_ns: row.get(2)?,
        younger_than,
    })
}

fn daily_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<DailyRecord> {
    Ok(DailyRecord {
        date: row.get(0)?,
        currency: row.get(1)?,
        status: row.get(2)?,
        count: row.get(3)?,
        amount: row.get(4)?,
    })
}

fn anomaly_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<AnomalyRecord> {
    Ok(AnomalyRecord {
        position: row.get(0)?,
        refund_request_id: row.get(1)?,
        anomaly: row.get(2)?,
        payment_id: row.get(3)?,
        recorded_status: row.get(4)?,
        reported: row.get(5)?,
        source: row.get(6)?,
        reported_at_ns: row.get(7)?,
        recorded_at_ns: row.get(8)?,
        acknowledged_position: row.get(9)?,
        acknowledged_by: row.get(10)?,
        acknowledged_note: row.get(11)?,
        acknowledged_at_ns: row.get(12)?,
    })
}

fn query_records<T>(
    connection: &Connection,
    query: &Query,
    read: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, ProjectionError> {
    let failed = failed("query sqlite read models");
    let mut statement = connection.prepare_cached(&query.sql).map_err(&failed)?;
    let rows = statement
        .query_map(params_from_iter(query.params.iter().map(to_value)), read)
        .map_err(&failed)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(&failed)
}

fn load_payment(connection: &Connection, payment_id: &str) -> Result<Option<PaymentRecord>, ProjectionError> {
    connection
        .prepare_cached(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM projection_payments WHERE payment_id = ?1"
        ))
        .and_then(|mut statement| statement.query_row([payment_id], payment_record).optional())
        .map_err(failed("read payment"))
}

fn load_refund(connection: &Connection, refund_request_id: &str) -> Result<Option<RefundRecord>, ProjectionError> {
    connection
        .prepare_cached(&format!(
            "SELECT {REFUND_COLUMNS} FROM projection_refunds WHERE refund_request_id = ?1"
        ))
        .and_then(|mut statement| statement.query_row([refund_request_id], refund_record).optional())
        .map_err(failed("read refund"))
}

#[async_trait]
impl ReadModels for SqliteReadModels {
    #[tracing::instrument(skip(self), fields(backend = "sqlite"))]
    async fn reconciliations(
        &self,
        before: Option<u64>,
        first: usize,
    ) -> Result<Vec<crate::ReconciliationView>, ProjectionError> {
        storage::check_page_size(first)?;
        let before = before.map_or(i64::MAX, |position| i64::try_from(position).unwrap_or(i64::MAX));
        let limit = i64::try_from(first).unwrap_or(i64::MAX);
        let rows = self
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached(
                        "SELECT position, recorded_at, actor, data FROM projection_reconciliations
                         WHERE position < ?1 ORDER BY position DESC LIMIT ?2",
                    )
                    .map_err(failed("query reconciliations"))?;
                let rows = statement
                    .query_map(rusqlite::params![before, limit], reconciliation_row)
                    .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                    .map_err(failed("query reconciliations"))?;
                Ok(rows)
            })
            .await?;
        rows.into_iter()
            .map(|(position, recorded_at, actor, data)| {
                crate::reconciliation::run_view(position, &recorded_at, actor, &data)
            })
            .collect()
    }

    #[tracing::instrument(skip(self), fields(backend = "sqlite"))]
    async fn reconciliation(&self, run_id: &str) -> Result<Option<crate::ReconciliationView>, ProjectionError> {
        let run_id = run_id.to_owned();
        let row = self
            .read(move |connection| {
                connection
                    .query_row(
                        "SELECT position, recorded_at, actor, data FROM projection_reconciliations WHERE run_id = ?1",
                        [run_id],
                        reconciliation_row,
                    )
                    .optional()
                    .map_err(failed("query reconciliation"))
            })
            .await?;
        row.map(|(position, recorded_at, actor, data)| {
            crate::reconciliation::run_view(position, &recorded_at, actor, &data)
        })
        .transpose()
    }

    #[tracing::instrument(skip(self, filter), fields(backend = "sqlite"))]
    async fn reconciliation_findings(
        &self,
        run_id: &str,
        filter: &crate::FindingFilter,
        first: usize,
    ) -> Result<Vec<crate::FindingView>, ProjectionError> {
        crate::reconciliation::check_findings_page(first)?;
        let run_id = run_id.to_owned();
        let kind = filter.kind.clone();
        let after = filter.after_seq.map_or(0, |seq| i64::try_from(seq).unwrap_or(i64::MAX));
        let limit = i64::try_from(first).unwrap_or(i64::MAX);
        let rows = self
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached(
                        "SELECT run_id, data, ack_by, ack_at, ack_note, ack_position
                         FROM projection_reconciliation_findings
                         WHERE run_id = ?1 AND (?2 IS NULL OR kind = ?2) AND seq > ?3 ORDER BY seq LIMIT ?4",
                    )
                    .map_err(failed("query reconciliation findings"))?;
                let rows = statement
                    .query_map(rusqlite::params![run_id, kind, after, limit], finding_row)
                    .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                    .map_err(failed("query reconciliation findings"))?;
                Ok(rows)
            })
            .await?;
        rows.into_iter()
            .map(|(run_id, data, by, at, note, position)| {
                crate::reconciliation::finding_view(run_id, &data, by, at, note, position)
            })
            .collect()
    }

    async fn ledger_view(&self) -> Result<Box<dyn LedgerView>, ProjectionError> {
        Ok(Box::new(SqliteLedgerView::open(&self.path).await?))
    }

    async fn unrecorded_finding_runs(&self, first: usize) -> Result<Vec<String>, ProjectionError> {
        let limit = i64::try_from(first).unwrap_or(i64::MAX);
        self.read(move |connection| {
            let failed = failed("query unrecorded reconciliation runs");
            let mut statement = connection
                .prepare_cached(&crate::ledger_view::unrecorded_runs_sql("?1"))
                .map_err(&failed)?;
            statement
                .query_map([limit], |row| row.get(0))
                .and_then(Iterator::collect::<Result<Vec<String>, _>>)
                .map_err(&failed)
        })
        .await
    }

    async fn remove_unrecorded_findings(&self, run_id: &str) -> Result<u64, ProjectionError> {
        let path = self.path.clone();
        let run_id = run_id.to_owned();
        blocking("remove unrecorded reconciliation findings", move || {
            let connection = open_connection(&path, false)?;
            let removed = connection
                .execute(&crate::ledger_view::remove_unrecorded_sql("?1"), [&run_id])
                .map_err(failed("remove unrecorded reconciliation findings"))?;
            Ok(removed as u64)
        })
        .await
    }

    async fn checkpoint(&self) -> Result<u64, ProjectionError> {
        self.stored_checkpoint().await
    }

    async fn wait_for_position(&self, position: u64, timeout: Duration) -> Result<bool, ProjectionError> {
        wait_for_checkpoint(&self.published, position, timeout, || self.read(read_checkpoint)).await
    }

    #[tracing::instrument(skip(self), fields(backend = "sqlite", payment_id = %payment_id))]
    async fn payment(&self, payment_id: &PaymentId) -> Result<Option<PaymentView>, ProjectionError> {
        let payment_id = payment_id.to_string();
        let record = self
            .read(move |connection| load_payment(connection, &payment_id))
            .await?;
        record.map(|record| Ok(record.into_row()?.view())).transpose()
    }

    #[tracing::instrument(skip(self, after), fields(backend = "sqlite"))]
    async fn payments(
        &self,
        filter: &PaymentFilter,
        after: Option<&Cursor>,
        first: usize,
    ) -> Result<Page<PaymentView>, ProjectionError> {
        storage::check_page_size(first)?;
        let keyset = storage::keyset(after, CursorKind::Payment)?;
        let query = storage::payments_page(Dialect::Sqlite, filter, keyset, first);
        let records = self
            .read(move |connection| query_records(connection, &query, payment_record))
            .await?;
        let views = records
            .into_iter()
            .map(|record| Ok(record.into_row()?.view()))
            .collect::<Result<Vec<_>, ProjectionError>>()?;
        Ok(storage::into_page(views, first, CursorKind::Payment, |view| {
            (view.payment_time, view.payment_id.to_string())
        }))
    }

    #[tracing::instrument(skip(self), fields(backend = "sqlite", refund_request_id = %refund_request_id))]
    async fn refund(&self, refund_request_id: &RefundRequestId) -> Result<Option<RefundView>, ProjectionError> {
        let refund_request_id = refund_request_id.to_string();
        let record = self
            .read(move |connection| load_refund(connection, &refund_request_id))
            .await?;
        record.map(RefundRecord::into_view).transpose()
    }

    #[tracing::instrument(skip(self, after), fields(backend = "sqlite"))]
    async fn refunds(
        &self,
        filter: &RefundFilter,
        after: Option<&Cursor>,
        first: usize,
    ) -> Result<Page<RefundView>, ProjectionError> {
        storage::check_page_size(first)?;
        let keyset = storage::keyset(after, CursorKind::Refund)?;
        let query = storage::refunds_page(Dialect::Sqlite, filter, keyset, first);
        let records = self
            .read(move |connection| query_records(connection, &query, refund_record))
            .await?;
        storage::refund_page(records, first)
    }

    #[tracing::instrument(skip(self), fields(backend = "sqlite"))]
    async fn open_refunds(
        &self,
        requested_before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<RefundView>, ProjectionError> {
        storage::check_page_size(limit)?;
        let query = storage::open_refunds(Dialect::Sqlite, requested_before, limit);
        let records = self
            .read(move |connection| query_records(connection, &query, refund_record))
            .await?;
        records.into_iter().map(RefundRecord::into_view).collect()
    }

    #[tracing::instrument(skip(self, after), fields(backend = "sqlite"))]
    async fn open_refunds_page(
        &self,
        requested_before: OffsetDateTime,
        after: Option<&Cursor>,
        first: usize,
    ) -> Result<Page<RefundView>, ProjectionError> {
        storage::check_page_size(first)?;
        let keyset = storage::keyset(after, CursorKind::Refund)?;
        let query = storage::open_refunds_after(Dialect::Sqlite, requested_before, keyset, first + 1);
        let records = self
            .read(move |connection| query_records(connection, &query, refund_record))
            .await?;
        storage::refund_page(records, first)
    }

    #[tracing::instrument(skip(self, after), fields(backend = "sqlite"))]
    async fn anomalies(&self, after: Option<&Cursor>, first: usize) -> Result<Page<AnomalyView>, ProjectionError> {
        storage::check_page_size(first)?;
        let keyset = storage::keyset(after, CursorKind::Anomaly)?;
        let query = anomaly::anomalies_page(Dialect::Sqlite, keyset, first);
        let records = self
            .read(move |connection| query_records(connection, &query, anomaly_record))
            .await?;
        let views = records
            .into_iter()
            .map(AnomalyRecord::into_view)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(anomaly::into_anomaly_page(views, first))
    }

    #[tracing::instrument(skip(self), fields(backend = "sqlite"))]
    async fn anomaly(&self, position: u64) -> Result<Option<AnomalyView>, ProjectionError> {
        let query = anomaly::anomaly_at(Dialect::Sqlite, position);
        let records = self
            .read(move |connection| query_records(connection, &query, anomaly_record))
            .await?;
        records.into_iter().next().map(AnomalyRecord::into_view).transpose()
    }

    #[tracing::instrument(skip(self), fields(backend = "sqlite"))]
    async fn open_refund_stats(&self, now: OffsetDateTime) -> Result<OpenRefundStats, ProjectionError> {
        let query = storage::open_refund_stats(Dialect::Sqlite, now);
        let rows = self
            .read(move |connection| query_records(connection, &query, open_refund_row))
            .await?;
        storage::open_refund_stats_of(&rows)
    }

    #[tracing::instrument(skip(self), fields(backend = "sqlite"))]
    async fn daily_totals(
        &self,
        from: Date,
        to: Date,
        currency: Option<Currency>,
    ) -> Result<Vec<DailyTotal>, ProjectionError> {
        let query = storage::daily_totals(Dialect::Sqlite, from, to, currency);
        let records = self
            .read(move |connection| query_records(connection, &query, daily_record))
            .await?;
        records.into_iter().map(DailyRecord::into_total).collect()
    }
}

#[async_trait]
impl ProjectionStore for SqliteReadModels {
    async fn try_writer(&self) -> Result<Option<Box<dyn ProjectionWriter>>, ProjectionError> {
        if self.writer_held.swap(true, Ordering::AcqRel) {
            return Ok(None);
        }
        let lease = WriterLease(Arc::clone(&self.writer_held));
        let path = self.path.clone();
        let connection = blocking("open sqlite writer", move || open_connection(&path, false)).await?;
        Ok(Some(Box::new(SqliteWriter {
            connection: Arc::new(Mutex::new(connection)),
            published: Arc::clone(&self.published),
            _lease: lease,
        })))
    }

    fn into_read_models(self: Arc<Self>) -> Arc<dyn ReadModels> {
        self
    }

    #[tracing::instrument(skip_all, fields(backend = "sqlite"))]
    async fn rebuild(
        &self,
        mut steps: mpsc::Receiver<RebuildStep>,
        locked: oneshot::Sender<u64>,
    ) -> Result<u64, ProjectionError> {
        let path = self.path.clone();
        let checkpoint = blocking("rebuild read models", move || {
            let mut connection = open_connection(&path, false)?;
            // IMMEDIATE takes the write lock now: every other writer waits (or retries) until the commit.
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(failed("begin rebuild"))?;
            let previous = read_checkpoint(&transaction)?;
            if locked.send(previous).is_err() {
                return Err(reader_gone());
            }
            for table in REBUILT_TABLES {
                transaction
                    .execute(&format!("DELETE FROM {table}"), [])
                    .map_err(failed("empty read model"))?;
            }
            let mut position = 0;
            loop {
                match steps.blocking_recv() {
                    Some(RebuildStep::Batch(batch)) => {
                        batch.check(position)?;
                        let fold = fold_on(&transaction, &batch)?;
                        write_fold(&transaction, &fold)?;
                        write_reconciliations(&transaction, &batch.reconciliations)?;
                        position = batch.last_position;
                    }
                    Some(RebuildStep::Done) => break,
                    None => return Err(reader_gone()),
                }
            }
            transaction
                .execute(
                    "UPDATE projection_checkpoint SET position = ?1 WHERE id = 1",
                    [position_i64(position)],
                )
                .map_err(failed("move checkpoint"))?;
            transaction.commit().map_err(failed("commit rebuild"))?;
            Ok(position)
        })
        .await?;
        self.published.send_if_modified(|known| raise(known, checkpoint));
        Ok(checkpoint)
    }
}

/// Gives the handle's single writer slot back when the writer is dropped.
#[derive(Debug)]
struct WriterLease(Arc<AtomicBool>);

impl Drop for WriterLease {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The writer lease of a [`SqliteReadModels`] handle: its own connection.
#[derive(Debug)]
struct SqliteWriter {
    connection: Arc<Mutex<Connection>>,
    published: Arc<watch::Sender<u64>>,
    _lease: WriterLease,
}

#[async_trait]
impl ProjectionWriter for SqliteWriter {
    async fn checkpoint(&mut self) -> Result<u64, ProjectionError> {
        let connection = Arc::clone(&self.connection);
        blocking("read checkpoint", move || {
            let connection = connection
                .lock()
                .map_err(|_| ProjectionError::backend("lock sqlite writer", PoisonedWriter))?;
            read_checkpoint(&connection)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(backend = "sqlite", after = batch.after_position, last = batch.last_position, events = batch.events.len()))]
    async fn apply(&mut self, batch: Batch) -> Result<u64, ProjectionError> {
        let connection = Arc::clone(&self.connection);
        let checkpoint = blocking("apply batch", move || {
            let mut connection = connection
                .lock()
                .map_err(|_| ProjectionError::backend("lock sqlite writer", PoisonedWriter))?;
            apply_batch(&mut connection, &batch)
        })
        .await?;
        self.published.send_if_modified(|known| raise(known, checkpoint));
        Ok(checkpoint)
    }
}

/// A panic while the writer's connection was in use; the lease must be given up and taken anew.
#[derive(Debug, thiserror::Error)]
#[error("the writer connection was poisoned by a panic")]
struct PoisonedWriter;

fn apply_batch(connection: &mut Connection, batch: &Batch) -> Result<u64, ProjectionError> {
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed("begin batch"))?;
    batch.check(read_checkpoint(&transaction)?)?;
    let fold = fold_on(&transaction, batch)?;
    write_fold(&transaction, &fold)?;
    write_reconciliations(&transaction, &batch.reconciliations)?;
    let position = i64::try_from(batch.last_position).unwrap_or(i64::MAX);
    transaction
        .prepare_cached("UPDATE projection_checkpoint SET position = ?1 WHERE id = 1")
        .and_then(|mut statement| statement.execute([position]))
        .map_err(failed("move checkpoint"))?;
    transaction.commit().map_err(failed("commit batch"))?;
    Ok(batch.last_position)
}

fn fold_on(transaction: &Transaction<'_>, batch: &Batch) -> Result<BatchFold, ProjectionError> {
    let keys = BatchKeys::of(&batch.events);
    let mut payments = Vec::with_capacity(keys.payment_ids.len());
    for payment_id in &keys.payment_ids {
        if let Some(record) = load_payment(transaction, payment_id.as_str())? {
            payments.push(record.into_row()?);
        }
    }
    let mut refunds = Vec::with_capacity(keys.refund_request_ids.len());
    for refund_request_id in &keys.refund_request_ids {
        if let Some(record) = load_refund(transaction, refund_request_id.as_str())? {
            refunds.push(record.into_view()?);
        }
    }
    let mut anomalies = Vec::new();
    if !keys.acknowledged_refunds.is_empty() {
        let failed = failed("read anomalies");
        let mut statement = transaction
            .prepare_cached(&format!(
                "SELECT {ANOMALY_COLUMNS} FROM projection_anomalies WHERE refund_request_id = ?1"
            ))
            .map_err(&failed)?;
        for refund_request_id in &keys.acknowledged_refunds {
            let rows = statement
                .query_map([refund_request_id.as_str()], anomaly_record)
                .map_err(&failed)?;
            for record in rows {
                anomalies.push(record.map_err(&failed)?.into_view()?);
            }
        }
    }
    batch.fold_with_anomalies(payments, refunds, anomalies)
}

fn write_fold(transaction: &Transaction<'_>, fold: &BatchFold) -> Result<(), ProjectionError> {
    write_payments(transaction, fold)?;
    write_refunds(transaction, fold)?;
    write_daily_totals(transaction, fold)?;
    write_anomalies(transaction, fold)
}

fn write_anomalies(transaction: &Transaction<'_>, fold: &BatchFold) -> Result<(), ProjectionError> {
    let failed = failed("write anomalies");
    let mut changed = fold.changed_anomalies().peekable();
    if changed.peek().is_none() {
        return Ok(());
    }
    let mut upsert = transaction
        .prepare_cached(&anomaly::upsert_anomaly_sql(Dialect::Sqlite))
        .map_err(&failed)?;
    for view in changed {
        let record = AnomalyRecord::from_view(view)?;
        upsert
            .execute(rusqlite::params![
                record.position,
                record.refund_request_id,
                record.anomaly,
                record.payment_id,
                record.recorded_status,
                record.reported,
                record.source,
                record.reported_at_ns,
                record.recorded_at_ns,
                record.acknowledged_position,
                record.acknowledged_by,
                record.acknowledged_note,
                record.acknowledged_at_ns,
            ])
            .map_err(&failed)?;
    }
    Ok(())
}

fn write_payments(transaction: &Transaction<'_>, fold: &BatchFold) -> Result<(), ProjectionError> {
    let failed = failed("write payments");
    let mut upsert = transaction
        .prepare_cached(&storage::upsert_payment_sql(Dialect::Sqlite))
        .map_err(&failed)?;
    for row in fold.changed_payments() {
        let record = PaymentRecord::from_row(row)?;
        upsert
            .execute(rusqlite::params![
                record.payment_id,
                record.currency,
                record.payment_amount,
                record.payment_method_type,
                record.payment_time_ns,
                record.capture_required,
                record.captured,
                record.refunded,
                record.pending,
                record.charged_back,
                record.refundable,
                record.status,
                record.open_chargeback,
                record.disputes,
                record.refund_count,
                record.last_position,
                record.updated_at_ns,
            ])
            .map_err(&failed)?;
    }
    Ok(())
}

fn write_refunds(transaction: &Transaction<'_>, fold: &BatchFold) -> Result<(), ProjectionError> {
    let failed = failed("write refunds");
    let mut upsert = transaction
        .prepare_cached(&storage::upsert_refund_sql(Dialect::Sqlite))
        .map_err(&failed)?;
    for view in fold.changed_refunds() {
        let record = RefundRecord::from_view(view)?;
        upsert
            .execute(rusqlite::params![
                record.refund_request_id,
                record.payment_id,
                record.currency,
                record.refund_amount,
                record.refund_reason,
                record.status,
                record.result_code,
                record.result_message,
                record.refund_id,
                record.requested_at_ns,
                record.settled_at_ns,
                record.requested_by,
                record.anomaly_count,
                record.last_position,
                record.updated_at_ns,
            ])
            .map_err(&failed)?;
    }
    Ok(())
}

fn write_daily_totals(transaction: &Transaction<'_>, fold: &BatchFold) -> Result<(), ProjectionError> {
    let failed = failed("write daily totals");
    let mut add = transaction
        .prepare_cached(&storage::add_daily_sql(Dialect::Sqlite))
        .map_err(&failed)?;
    for (key, delta) in fold.daily_deltas() {
        let record = DailyRecord::from_delta(key, delta);
        add.execute(rusqlite::params![
            record.date,
            record.currency,
            record.status,
            record.count,
            record.amount
        ])
        .map_err(&failed)?;
    }
    Ok(())
}

fn write_reconciliations(
    transaction: &Transaction<'_>,
    envelopes: &[crate::reconciliation::ReconciliationEnvelope],
) -> Result<(), ProjectionError> {
    use crate::reconciliation::ReconciliationChange;
    let int = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    for change in crate::reconciliation::changes(envelopes)? {
        match change {
            ReconciliationChange::Run {
                run_id,
                position,
                recorded_at,
                actor,
                data,
            } => transaction
                .execute(
                    "INSERT INTO projection_reconciliations (run_id, position, recorded_at, actor, data)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    rusqlite::params![run_id, int(position), recorded_at, actor, data],
                )
                .map_err(failed("write reconciliation"))?,
            ReconciliationChange::Finding {
                run_id,
                seq,
                kind,
                data,
            } => transaction
                .prepare_cached(
                    "INSERT INTO projection_reconciliation_findings (run_id, seq, kind, data) VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut statement| statement.execute(rusqlite::params![run_id, int(seq), kind, data]))
                .map_err(failed("write reconciliation finding"))?,
            ReconciliationChange::Acknowledged {
                run_id,
                seq,
                by,
                at,
                note,
                position,
            } => transaction
                .execute(
                    "UPDATE projection_reconciliation_findings
                     SET ack_by = ?3, ack_at = ?4, ack_note = ?5, ack_position = ?6
                     WHERE run_id = ?1 AND seq = ?2 AND ack_by IS NULL",
                    rusqlite::params![run_id, int(seq), by, at, note, int(position)],
                )
                .map_err(failed("write reconciliation acknowledgement"))?,
        };
    }
    Ok(())
}

fn reconciliation_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, String, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

type FindingRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn finding_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<FindingRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_model_file_sits_beside_the_log() {
        assert_eq!(
            read_model_path(Path::new("data/ledger.db")),
            PathBuf::from("data/ledger.read.db")
        );
        assert_eq!(read_model_path(Path::new("ledger")), PathBuf::from("ledger.read"));
        assert_eq!(
            read_model_path(Path::new("/tmp/x.sqlite")),
            PathBuf::from("/tmp/x.read.sqlite")
        );
    }
}
