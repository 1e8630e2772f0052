//! Read models in the event log's PostgreSQL database, in tables of their own (`projection_*`).
//!
//! Same database as the log, so one connection string configures both and a backup holds both consistently;
//! separate tables, so only this crate writes them. Several server instances share the database: every
//! instance reads, and exactly one writes. The writer is whoever holds the session advisory lock
//! [`WRITER_LOCK_KEY`] on a dedicated connection; it runs its batches on that same connection, so losing the
//! connection loses the lock and the right to write at the same moment. Each batch still re-reads the
//! checkpoint `FOR UPDATE` inside its transaction, so even a writer that lost its lock unnoticed cannot apply
//! an event twice.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use domain::{Currency, PaymentId, RefundRequestId};
use futures_util::future::try_join_all;
use time::{Date, OffsetDateTime};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient, NoTls, Row};

use crate::anomaly::{self, ANOMALY_COLUMNS, ANOMALY_TABLE_SQL, AnomalyRecord, AnomalyView};
use crate::checkpoint::{raise, wait_for_checkpoint};
use crate::error::ProjectionError;
use crate::fold::{Batch, BatchFold, BatchKeys};
use crate::key_filter::KeyFilter;
use crate::ledger_view::{
    FirstSeen, LEDGER_VIEW_INDEXES_SQL, LEDGER_VIEW_KEYS_PER_STATEMENT, LedgerView, ReportKey, SucceededWindow,
    first_seen, limit_i64, unreported_cursor, unreported_sql,
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

/// Key of the session advisory lock held by the one writer of the read models ("projwrit").
pub const WRITER_LOCK_KEY: i64 = 0x7072_6f6a_7772_6974;

/// Key of the transaction advisory lock that serializes schema migrations across instances ("projmigr").
const MIGRATION_LOCK_KEY: i64 = 0x7072_6f6a_6d69_6772;

/// Connections a handle's read pool opens at most (the writer's dedicated connection is extra).
pub const READ_POOL_CONNECTIONS_MAX: usize = 4;

/// How long opening a connection may take when the URL does not say, in seconds.
const CONNECT_TIMEOUT_SECONDS: u64 = 10;

/// The schema, one entry per version. Text keys use the "C" collation so that keyset order is byte order,
/// as in SQLite.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE projection_checkpoint (
        id       SMALLINT PRIMARY KEY CHECK (id = 1),
        position BIGINT   NOT NULL CHECK (position >= 0)
    );
    INSERT INTO projection_checkpoint (id, position) VALUES (1, 0);
    CREATE TABLE projection_payments (
        payment_id          TEXT COLLATE "C" PRIMARY KEY,
        currency            TEXT    NOT NULL,
        payment_amount      BIGINT  NOT NULL CHECK (payment_amount >= 0),
        payment_method_type TEXT    NOT NULL,
        payment_time_ns     BIGINT  NOT NULL,
        capture_required    BOOLEAN NOT NULL,
        captured            BIGINT  NOT NULL CHECK (captured >= 0),
        refunded            BIGINT  NOT NULL CHECK (refunded >= 0),
        pending             BIGINT  NOT NULL CHECK (pending >= 0),
        charged_back        BIGINT  NOT NULL CHECK (charged_back >= 0),
        refundable          BIGINT  NOT NULL CHECK (refundable >= 0),
        status              TEXT    NOT NULL,
        open_chargeback     BOOLEAN NOT NULL,
        disputes            TEXT    NOT NULL,
        refund_count        BIGINT  NOT NULL,
        last_position       BIGINT  NOT NULL,
        updated_at_ns       BIGINT  NOT NULL
    );
    CREATE INDEX projection_payments_by_time ON projection_payments (payment_time_ns, payment_id);
    CREATE TABLE projection_refunds (
        refund_request_id TEXT COLLATE "C" PRIMARY KEY,
        payment_id        TEXT COLLATE "C" NOT NULL,
        currency          TEXT   NOT NULL,
        refund_amount     BIGINT NOT NULL CHECK (refund_amount >= 0),
        refund_reason     TEXT,
        status            TEXT   NOT NULL,
        result_code       TEXT,
        result_message    TEXT,
        refund_id         TEXT,
        requested_at_ns   BIGINT NOT NULL,
        settled_at_ns     BIGINT,
        requested_by      TEXT   NOT NULL,
        anomaly_count     BIGINT NOT NULL,
        last_position     BIGINT NOT NULL,
        updated_at_ns     BIGINT NOT NULL
    );
    CREATE INDEX projection_refunds_by_time ON projection_refunds (requested_at_ns, refund_request_id);
    CREATE INDEX projection_refunds_by_payment ON projection_refunds (payment_id, requested_at_ns, refund_request_id);
    CREATE INDEX projection_refunds_by_status ON projection_refunds (status, requested_at_ns, refund_request_id);
    CREATE TABLE projection_daily_totals (
        date     TEXT COLLATE "C" NOT NULL,
        currency TEXT COLLATE "C" NOT NULL,
        status   TEXT COLLATE "C" NOT NULL,
        count    BIGINT NOT NULL,
        amount   BIGINT NOT NULL,
        PRIMARY KEY (date, currency, status)
    );
"#,
    r#"
    CREATE TABLE projection_reconciliations (
        run_id      TEXT COLLATE "C" PRIMARY KEY,
        position    BIGINT NOT NULL UNIQUE,
        recorded_at TEXT NOT NULL,
        actor       TEXT NOT NULL,
        data        TEXT NOT NULL
    );
    CREATE TABLE projection_reconciliation_findings (
        run_id       TEXT COLLATE "C" NOT NULL,
        seq          BIGINT NOT NULL,
        kind         TEXT COLLATE "C" NOT NULL,
        data         TEXT NOT NULL,
        ack_by       TEXT,
        ack_at       TEXT,
        ack_note     TEXT,
        ack_position BIGINT,
        PRIMARY KEY (run_id, seq)
    );
    CREATE INDEX projection_reconciliation_findings_by_kind ON projection_reconciliation_findings (run_id, kind, seq);
"#,
    ANOMALY_TABLE_SQL,
    // The open-refunds gauge of every /metrics scrape reads `projection_refunds_by_status` alone (an index-only
    // scan) only where the visibility map is fresh; with the default thresholds autovacuum leaves a table that
    // grew by 100,000 refunds unvisited, and each scrape then reads the heap page of every open refund (measured
    // by the scrape bench: ~5 ms against ~0.7 ms for 4,000 open refunds among 100,000). Refunds are inserted
    // and updated all day, so let autovacuum visit the table after 1% of it changed.
    r#"
    ALTER TABLE projection_refunds SET (
        autovacuum_vacuum_scale_factor = 0.01,
        autovacuum_vacuum_insert_scale_factor = 0.01,
        autovacuum_analyze_scale_factor = 0.01
    );
"#,
    LEDGER_VIEW_INDEXES_SQL,
];

/// Read models in a PostgreSQL database; any number of handles and instances may share it.
#[derive(Debug)]
pub struct PostgresReadModels {
    pool: Pool,
    config: tokio_postgres::Config,
    published: Arc<watch::Sender<u64>>,
}

pub(crate) fn failed(operation: &'static str) -> impl Fn(tokio_postgres::Error) -> ProjectionError {
    move |error| ProjectionError::backend(operation, error)
}

impl PostgresReadModels {
    /// Connects to the database at `url` (`postgres://user@host:port/db`, no TLS) and migrates the schema.
    pub async fn connect(url: &str) -> Result<Self, ProjectionError> {
        // The URL may hold a password: the error names only what is wrong.
        let config = tokio_postgres::Config::from_str(url).map_err(|_| ProjectionError::InvalidStoreUrl {
            reason: "the postgres URL does not parse".to_owned(),
        })?;
        Self::connect_with(config).await
    }

    /// Connects with `config`, applies missing migrations (serialized across instances by an advisory lock)
    /// and reads the checkpoint. Must be called inside a Tokio runtime.
    #[tracing::instrument(skip_all, fields(dbname = config.get_dbname().unwrap_or("")))]
    pub async fn connect_with(mut config: tokio_postgres::Config) -> Result<Self, ProjectionError> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(CONNECT_TIMEOUT_SECONDS));
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(READ_POOL_CONNECTIONS_MAX)
            .build()
            .map_err(|error| ProjectionError::backend("build postgres pool", error))?;
        let mut client = pool
            .get()
            .await
            .map_err(|error| ProjectionError::backend("connect postgres", error))?;
        migrate(&mut client).await?;
        let checkpoint = read_checkpoint(&**client, false).await?;
        drop(client);
        Ok(Self {
            pool,
            config,
            published: Arc::new(watch::Sender::new(checkpoint)),
        })
    }

    async fn client(&self) -> Result<Object, ProjectionError> {
        self.pool
            .get()
            .await
            .map_err(|error| ProjectionError::backend("connect postgres", error))
    }

    async fn query(&self, query: &Query) -> Result<Vec<Row>, ProjectionError> {
        let client = self.client().await?;
        let params = sql_params(&query.params);
        client
            .query(query.sql.as_str(), &params)
            .await
            .map_err(failed("query postgres read models"))
    }

    async fn stored_checkpoint(&self) -> Result<u64, ProjectionError> {
        let client = self.client().await?;
        let stored = read_checkpoint(&**client, false).await?;
        self.published.send_if_modified(|known| raise(known, stored));
        Ok(stored)
    }
}

async fn migrate(client: &mut Object) -> Result<(), ProjectionError> {
    let failed = failed("migrate postgres read models");
    let transaction = client.transaction().await.map_err(&failed)?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(&failed)?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS projection_migrations (
                 version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .map_err(&failed)?;
    let applied: i32 = transaction
        .query_one("SELECT coalesce(max(version), 0) FROM projection_migrations", &[])
        .await
        .map_err(&failed)?
        .get(0);
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
        transaction.batch_execute(migration).await.map_err(&failed)?;
        let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
        transaction
            .execute("INSERT INTO projection_migrations (version) VALUES ($1)", &[&version])
            .await
            .map_err(&failed)?;
    }
    transaction.commit().await.map_err(&failed)
}

pub(crate) async fn read_checkpoint(client: &impl GenericClient, for_update: bool) -> Result<u64, ProjectionError> {
    let sql = if for_update {
        "SELECT position FROM projection_checkpoint WHERE id = 1 FOR UPDATE"
    } else {
        "SELECT position FROM projection_checkpoint WHERE id = 1"
    };
    let position: i64 = client
        .query_one(sql, &[])
        .await
        .map_err(failed("read checkpoint"))?
        .get(0);
    u64::try_from(position).map_err(|_| ProjectionError::CorruptRow {
        table: "projection_checkpoint",
        key: "1".to_owned(),
        reason: "position is negative".to_owned(),
    })
}

fn sql_params(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|param| match param {
            Param::Text(text) => text as &(dyn ToSql + Sync),
            Param::Integer(integer) => integer as &(dyn ToSql + Sync),
        })
        .collect()
}

fn row_failed(error: tokio_postgres::Error) -> ProjectionError {
    ProjectionError::backend("read postgres row", error)
}

fn payment_record(row: &Row) -> Result<PaymentRecord, ProjectionError> {
    Ok(PaymentRecord {
        payment_id: row.try_get(0).map_err(row_failed)?,
        currency: row.try_get(1).map_err(row_failed)?,
        payment_amount: row.try_get(2).map_err(row_failed)?,
        payment_method_type: row.try_get(3).map_err(row_failed)?,
        payment_time_ns: row.try_get(4).map_err(row_failed)?,
        capture_required: row.try_get(5).map_err(row_failed)?,
        captured: row.try_get(6).map_err(row_failed)?,
        refunded: row.try_get(7).map_err(row_failed)?,
        pending: row.try_get(8).map_err(row_failed)?,
        charged_back: row.try_get(9).map_err(row_failed)?,
        refundable: row.try_get(10).map_err(row_failed)?,
        status: row.try_get(11).map_err(row_failed)?,
        open_chargeback: row.try_get(12).map_err(row_failed)?,
        disputes: row.try_get(13).map_err(row_failed)?,
        refund_count: row.try_get(14).map_err(row_failed)?,
        last_position: row.try_get(15).map_err(row_failed)?,
        updated_at_ns: row.try_get(16).map_err(row_failed)?,
    })
}

pub(crate) fn refund_record(row: &Row) -> Result<RefundRecord, ProjectionError> {
    Ok(RefundRecord {
        refund_request_id: row.try_get(0).map_err(row_failed)?,
        payment_id: row.try_get(1).map_err(row_failed)?,
        currency: row.try_get(2).map_err(row_failed)?,
        refund_amount: row.try_get(3).map_err(row_failed)?,
        refund_reason: row.try_get(4).map_err(row_failed)?,
        status: row.try_get(5).map_err(row_failed)?,
        result_code: row.try_get(6).map_err(row_failed)?,
        result_message: row.try_get(7).map_err(row_failed)?,
        refund_id: row.try_get(8).map_err(row_failed)?,
        requested_at_ns: row.try_get(9).map_err(row_failed)?,
        settled_at_ns: row.try_get(10).map_err(row_failed)?,
        requested_by: row.try_get(11).map_err(row_failed)?,
        anomaly_count: row.try_get(12).map_err(row_failed)?,
        last_position: row.try_get(13).map_err(row_failed)?,
        updated_at_ns: row.try_get(14).map_err(row_failed)?,
    })
}

fn open_refund_row(row: &Row) -> Result<OpenRefundRow, ProjectionError> {
    let mut younger_than = [0_i64; OPEN_REFUND_AGE_BOUNDS_SECONDS.len()];
    for (index, count) in younger_than.iter_mut().enumerate() {
        *count = row.try_get(3 + index).map_err(row_failed)?;
    }
    Ok(OpenRefundRow {
        status: row.try_get(0).map_err(row_failed)?,
        count: row.try_get(1).map_err(row_failed)?,
        oldest_requested_at_ns: row.try_get(2).map_err(row_failed)?,
        younger_than,
    })
}

fn daily_record(row: &Row) -> Result<DailyRecord, ProjectionError> {
    Ok(DailyRecord {
        date: row.try_get(0).map_err(row_failed)?,
        currency: row.try_get(1).map_err(row_failed)?,
        status: row.try_get(2).map_err(row_failed)?,
        count: row.try_get(3).map_err(row_failed)?,
        amount: row.try_get(4).map_err(row_failed)?,
    })
}

fn anomaly_record(row: &Row) -> Result<AnomalyRecord, ProjectionError> {
    Ok(AnomalyRecord {
        position: row.try_get(0).map_err(row_failed)?,
        refund_request_id: row.try_get(1).map_err(row_failed)?,
        anomaly: row.try_get(2).map_err(row_failed)?,
        payment_id: row.try_get(3).map_err(row_failed)?,
        recorded_status: row.try_get(4).map_err(row_failed)?,
        reported: row.try_get(5).map_err(row_failed)?,
        source: row.try_get(6).map_err(row_failed)?,
        reported_at_ns: row.try_get(7).map_err(row_failed)?,
        recorded_at_ns: row.try_get(8).map_err(row_failed)?,
        acknowledged_position: row.try_get(9).map_err(row_failed)?,
        acknowledged_by: row.try_get(10).map_err(row_failed)?,
        acknowledged_note: row.try_get(11).map_err(row_failed)?,
        acknowledged_at_ns: row.try_get(12).map_err(row_failed)?,
    })
}

fn anomaly_views(rows: &[Row]) -> Result<Vec<AnomalyView>, ProjectionError> {
    rows.iter().map(|row| anomaly_record(row)?.into_view()).collect()
}

fn payment_views(rows: &[Row]) -> Result<Vec<PaymentView>, ProjectionError> {
    rows.iter()
        .map(|row| Ok(payment_record(row)?.into_row()?.view()))
        .collect()
}

fn refund_views(rows: &[Row]) -> Result<Vec<RefundView>, ProjectionError> {
    rows.iter().map(|row| refund_record(row)?.into_view()).collect()
}

#[async_trait]
impl ReadModels for PostgresReadModels {
    #[tracing::instrument(skip(self), fields(backend = "postgres"))]
    async fn reconciliations(
        &self,
        before: Option<u64>,
        first: usize,
    ) -> Result<Vec<crate::ReconciliationView>, ProjectionError> {
        storage::check_page_size(first)?;
        let before = before.map_or(i64::MAX, |position| i64::try_from(position).unwrap_or(i64::MAX));
        let limit = i64::try_from(first).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT position, recorded_at, actor, data FROM projection_reconciliations
                 WHERE position < $1 ORDER BY position DESC LIMIT $2",
                &[&before, &limit],
            )
            .await
            .map_err(failed("query reconciliations"))?;
        rows.iter().map(reconciliation_view).collect()
    }

    #[tracing::instrument(skip(self), fields(backend = "postgres"))]
    async fn reconciliation(&self, run_id: &str) -> Result<Option<crate::ReconciliationView>, ProjectionError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT position, recorded_at, actor, data FROM projection_reconciliations WHERE run_id = $1",
                &[&run_id],
            )
            .await
            .map_err(failed("query reconciliation"))?;
        row.as_ref().map(reconciliation_view).transpose()
    }

    #[tracing::instrument(skip(self, filter), fields(backend = "postgres"))]
    async fn reconciliation_findings(
        &self,
        run_id: &str,
        filter: &crate::FindingFilter,
        first: usize,
    ) -> Result<Vec<crate::FindingView>, ProjectionError> {
        crate::reconciliation::check_findings_page(first)?;
        let after = filter.after_seq.map_or(0, |seq| i64::try_from(seq).unwrap_or(i64::MAX));
        let limit = i64::try_from(first).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT run_id, data, ack_by, ack_at, ack_note, ack_position FROM projection_reconciliation_findings
                 WHERE run_id = $1 AND ($2::text IS NULL OR kind = $2) AND seq > $3 ORDER BY seq LIMIT $4",
                &[&run_id, &filter.kind, &after, &limit],
            )
            .await
            .map_err(failed("query reconciliation findings"))?;
        rows.iter()
            .map(|row| {
                let read =
                    |error: tokio_postgres::Error| ProjectionError::backend("read reconciliation finding", error);
                crate::reconciliation::finding_view(
                    row.try_get(0).map_err(read)?,
                    row.try_get::<_, String>(1).map_err(read)?.as_str(),
                    row.try_get(2).map_err(read)?,
                    row.try_get(3).map_err(read)?,
                    row.try_get(4).map_err(read)?,
                    row.try_get(5).map_err(read)?,
                )
            })
            .collect()
    }

    async fn ledger_view(&self) -> Result<Box<dyn LedgerView>, ProjectionError> {
        Ok(Box::new(PostgresLedgerView::open(&self.config).await?))
    }

    async fn unrecorded_finding_runs(&self, first: usize) -> Result<Vec<String>, ProjectionError> {
        let client = self.client().await?;
        let limit = i64::try_from(first).unwrap_or(i64::MAX);
        let rows = client
            .query(&crate::ledger_view::unrecorded_runs_sql("$1"), &[&limit])
            .await
            .map_err(failed("query unrecorded reconciliation runs"))?;
        rows.iter().map(|row| row.try_get(0).map_err(row_failed)).collect()
    }

    async fn remove_unrecorded_findings(&self, run_id: &str) -> Result<u64, ProjectionError> {
        let client = self.client().await?;
        client
            .execute(&crate::ledger_view::remove_unrecorded_sql("$1"), &[&run_id])
            .await
            .map_err(failed("remove unrecorded reconciliation findings"))
    }

    async fn checkpoint(&self) -> Result<u64, ProjectionError> {
        self.stored_checkpoint().await
    }

    async fn wait_for_position(&self, position: u64, timeout: Duration) -> Result<bool, ProjectionError> {
        wait_for_checkpoint(&self.published, position, timeout, || async {
            let client = self.client().await?;
            read_checkpoint(&**client, false).await
        })
        .await
    }

    #[tracing::instrument(skip(self), fields(backend = "postgres", payment_id = %payment_id))]
    async fn payment(&self, payment_id: &PaymentId) -> Result<Option<PaymentView>, ProjectionError> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM projection_payments WHERE payment_id = $1");
        let client = self.client().await?;
        let row = client
            .query_opt(sql.as_str(), &[&payment_id.as_str()])
            .await
            .map_err(failed("read payment"))?;
        row.map(|row| Ok(payment_record(&row)?.into_row()?.view())).transpose()
    }

    #[tracing::instrument(skip(self, after), fields(backend = "postgres"))]
    async fn payments(
        &self,
        filter: &PaymentFilter,
        after: Option<&Cursor>,
        first: usize,
    ) -> Result<Page<PaymentView>, ProjectionError> {
        storage::check_page_size(first)?;
        let keyset = storage::keyset(after, CursorKind::Payment)?;
        let rows = self
            .query(&storage::payments_page(Dialect::Postgres, filter, keyset, first))
            .await?;
        Ok(storage::into_page(
            payment_views(&rows)?,
            first,
            CursorKind::Payment,
            |view| (view.payment_time, view.payment_id.to_string()),
        ))
    }

    #[tracing::instrument(skip(self), fields(backend = "postgres", refund_request_id = %refund_request_id))]
    async fn refund(&self, refund_request_id: &RefundRequestId) -> Result<Option<RefundView>, ProjectionError> {
        let sql = format!("SELECT {REFUND_COLUMNS} FROM projection_refunds WHERE refund_request_id = $1");
        let client = self.client().await?;
        let row = client
            .query_opt(sql.as_str(), &[&refund_request_id.as_str()])
            .await
            .map_err(failed("read refund"))?;
        row.map(|row| refund_record(&row)?.into_view()).transpose()
    }

    #[tracing::instrument(skip(self, after), fields(backend = "postgres"))]
    async fn refunds(
        &self,
        filter: &RefundFilter,
        after: Option<&Cursor>,
        first: usize,
    ) -> Result<Page<RefundView>, ProjectionError> {
        storage::check_page_size(first)?;
        let keyset = storage::keyset(after, CursorKind::Refund)?;
        let rows = self
            .query(&storage::refunds_page(Dialect::Postgres, filter, keyset, first))
            .await?;
        let records = rows.iter().map(refund_record).collect::<Result<Vec<_>, _>>()?;
        storage::refund_page(records, first)
    }

    #[tracing::instrument(skip(self), fields(backend = "postgres"))]
    async fn open_refunds(
        &self,
        requested_before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<RefundView>, ProjectionError> {
        storage::check_page_size(limit)?;
        let rows = self
            .query(&storage::open_refunds(Dialect::Postgres, requested_before, limit))
            .await?;
        refund_views(&rows)
    }

    #[tracing::instrument(skip(self, after), fields(backend = "postgres"))]
    async fn open_refunds_page(
        &self,
        requested_before: OffsetDateTime,
        after: Option<&Cursor>,
        first: usize,
    ) -> Result<Page<RefundView>, ProjectionError> {
        storage::check_page_size(first)?;
        let keyset = storage::keyset(after, CursorKind::Refund)?;
        let rows = self
            .query(&storage::open_refunds_after(
                Dialect::Postgres,
                requested_before,
                keyset,
                first + 1,
            ))
            .await?;
        let records = rows.iter().map(refund_record).collect::<Result<Vec<_>, _>>()?;
        storage::refund_page(records, first)
    }

    #[tracing::instrument(skip(self, after), fields(backend = "postgres"))]
    async fn anomalies(&self, after: Option<&Cursor>, first: usize) -> Result<Page<AnomalyView>, ProjectionError> {
        storage::check_page_size(first)?;
        let keyset = storage::keyset(after, CursorKind::Anomaly)?;
        let rows = self
            .query(&anomaly::anomalies_page(Dialect::Postgres, keyset, first))
            .await?;
        Ok(anomaly::into_anomaly_page(anomaly_views(&rows)?, first))
    }

    #[tracing::instrument(skip(self), fields(backend = "postgres"))]
    async fn anomaly(&self, position: u64) -> Result<Option<AnomalyView>, ProjectionError> {
        let rows = self.query(&anomaly::anomaly_at(Dialect::Postgres, position)).await?;
        Ok(anomaly_views(&rows)?.pop())
    }

    #[tracing::instrument(skip(self), fields(backend = "postgres"))]
    async fn open_refund_stats(&self, now: OffsetDateTime) -> Result<OpenRefundStats, ProjectionError> {
        let rows = self.query(&storage::open_refund_stats(Dialect::Postgres, now)).await?;
        let rows = rows.iter().map(open_refund_row).collect::<Result<Vec<_>, _>>()?;
        storage::open_refund_stats_of(&rows)
    }

    #[tracing::instrument(skip(self), fields(backend = "postgres"))]
    async fn daily_totals(
        &self,
        from: Date,
        to: Date,
        currency: Option<Currency>,
    ) -> Result<Vec<DailyTotal>, ProjectionError> {
        let rows = self
            .query(&storage::daily_totals(Dialect::Postgres, from, to, currency))
            .await?;
        rows.iter().map(|row| daily_record(row)?.into_total()).collect()
    }
}

#[async_trait]
impl ProjectionStore for PostgresReadModels {
    #[tracing::instrument(skip_all, fields(backend = "postgres"))]
    async fn try_writer(&self) -> Result<Option<Box<dyn ProjectionWriter>>, ProjectionError> {
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(failed("connect postgres writer"))?;
        let connection = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "projection writer connection ended");
            }
        });
        let locked: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&WRITER_LOCK_KEY])
            .await
            .map_err(failed("take projection writer lock"))?
            .get(0);
        if !locked {
            // Dropping the client closes the connection.
            return Ok(None);
        }
        Ok(Some(Box::new(PostgresWriter {
            client,
            connection,
            published: Arc::clone(&self.published),
        })))
    }

    fn into_read_models(self: Arc<Self>) -> Arc<dyn ReadModels> {
        self
    }

    #[tracing::instrument(skip_all, fields(backend = "postgres"))]
    async fn rebuild(
        &self,
        mut steps: mpsc::Receiver<RebuildStep>,
        locked: oneshot::Sender<u64>,
    ) -> Result<u64, ProjectionError> {
        let mut pooled = self.client().await?;
        // The plain client, whose transactions are the ones the batch folds take.
        let client: &mut Client = &mut pooled;
        let transaction = client.transaction().await.map_err(failed("begin rebuild"))?;
        // The row lock fences the running writer: its next batch waits here, then finds the checkpoint moved.
        let previous = read_checkpoint(&transaction, true).await?;
        if locked.send(previous).is_err() {
            return Err(reader_gone());
        }
        for table in REBUILT_TABLES {
            transaction
                .execute(format!("DELETE FROM {table}").as_str(), &[])
                .await
                .map_err(failed("empty read model"))?;
        }
        let mut position = 0;
        loop {
            match steps.recv().await {
                Some(RebuildStep::Batch(batch)) => {
                    batch.check(position)?;
                    let fold = fold_on(&transaction, &batch).await?;
                    write_fold(&transaction, &fold).await?;
                    write_reconciliations(&transaction, &batch.reconciliations).await?;
                    position = batch.last_position;
                }
                Some(RebuildStep::Done) => break,
                None => return Err(reader_gone()),
            }
        }
        transaction
            .execute(
                "UPDATE projection_checkpoint SET position = $1 WHERE id = 1",
                &[&position_i64(position)],
            )
            .await
            .map_err(failed("move checkpoint"))?;
        transaction.commit().await.map_err(failed("commit rebuild"))?;
        self.published.send_if_modified(|known| raise(known, position));
        Ok(position)
    }
}

/// The writer lease: a dedicated connection holding [`WRITER_LOCK_KEY`]; closing it releases the lock.
#[derive(Debug)]
struct PostgresWriter {
    client: Client,
    connection: JoinHandle<()>,
    published: Arc<watch::Sender<u64>>,
}

impl Drop for PostgresWriter {
    fn drop(&mut self) {
        // The client is dropped right after; aborting the connection task closes the socket at once, which
        // releases the session lock without waiting for the server to notice.
        self.connection.abort();
    }
}

#[async_trait]
impl ProjectionWriter for PostgresWriter {
    async fn checkpoint(&mut self) -> Result<u64, ProjectionError> {
        read_checkpoint(&self.client, false).await
    }

    #[tracing::instrument(skip_all, fields(backend = "postgres", after = batch.after_position, last = batch.last_position, events = batch.events.len()))]
    async fn apply(&mut self, batch: Batch) -> Result<u64, ProjectionError> {
        let transaction = self.client.transaction().await.map_err(failed("begin batch"))?;
        batch.check(read_checkpoint(&transaction, true).await?)?;
        let fold = fold_on(&transaction, &batch).await?;
        write_fold(&transaction, &fold).await?;
        write_reconciliations(&transaction, &batch.reconciliations).await?;
        let position = i64::try_from(batch.last_position).unwrap_or(i64::MAX);
        transaction
            .execute(
                "UPDATE projection_checkpoint SET position = $1 WHERE id = 1",
                &[&position],
            )
            .await
            .map_err(failed("move checkpoint"))?;
        transaction.commit().await.map_err(failed("commit batch"))?;
        self.published
            .send_if_modified(|known| raise(known, batch.last_position));
        Ok(batch.last_position)
    }
}

async fn fold_on(transaction: &tokio_postgres::Transaction<'_>, batch: &Batch) -> Result<BatchFold, ProjectionError> {
    let keys = BatchKeys::of(&batch.events);
    let payment_ids: Vec<&str> = keys.payment_ids.iter().map(PaymentId::as_str).collect();
    let refund_request_ids: Vec<&str> = keys.refund_request_ids.iter().map(RefundRequestId::as_str).collect();
    let payments_sql = format!("SELECT {PAYMENT_COLUMNS} FROM projection_payments WHERE payment_id = ANY($1)");
    let refunds_sql = format!("SELECT {REFUND_COLUMNS} FROM projection_refunds WHERE refund_request_id = ANY($1)");
    let acknowledged: Vec<&str> = keys.acknowledged_refunds.iter().map(RefundRequestId::as_str).collect();
    let anomalies_sql = format!("SELECT {ANOMALY_COLUMNS} FROM projection_anomalies WHERE refund_request_id = ANY($1)");
    let payment_params: [&(dyn ToSql + Sync); 1] = [&payment_ids];
    let refund_params: [&(dyn ToSql + Sync); 1] = [&refund_request_ids];
    let anomaly_params: [&(dyn ToSql + Sync); 1] = [&acknowledged];
    let load_anomalies = async {
        if acknowledged.is_empty() {
            return Ok(Vec::new());
        }
        transaction.query(anomalies_sql.as_str(), &anomaly_params).await
    };
    let (payment_rows, refund_rows, anomaly_rows) = tokio::try_join!(
        transaction.query(payments_sql.as_str(), &payment_params),
        transaction.query(refunds_sql.as_str(), &refund_params),
        load_anomalies,
    )
    .map_err(failed("load batch rows"))?;
    let payments = payment_rows
        .iter()
        .map(|row| payment_record(row)?.into_row())
        .collect::<Result<Vec<_>, _>>()?;
    batch.fold_with_anomalies(payments, refund_views(&refund_rows)?, anomaly_views(&anomaly_rows)?)
}

async fn write_fold(transaction: &tokio_postgres::Transaction<'_>, fold: &BatchFold) -> Result<(), ProjectionError> {
    let payments = fold
        .changed_payments()
        .map(PaymentRecord::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let refunds = fold
        .changed_refunds()
        .map(RefundRecord::from_view)
        .collect::<Result<Vec<_>, _>>()?;
    let daily: Vec<DailyRecord> = fold
        .daily_deltas()
        .map(|(key, delta)| DailyRecord::from_delta(key, delta))
        .collect();
    let anomalies = fold
        .changed_anomalies()
        .map(AnomalyRecord::from_view)
        .collect::<Result<Vec<_>, _>>()?;
    // The statements of one batch are sent pipelined on the writer's connection: one round trip, not one per
    // row. Every key appears once per table, so their order does not matter.
    tokio::try_join!(
        write_payments(transaction, &payments),
        write_refunds(transaction, &refunds),
        write_daily_totals(transaction, &daily),
        write_anomalies(transaction, &anomalies),
    )?;
    Ok(())
}

async fn write_payments(
    transaction: &tokio_postgres::Transaction<'_>,
    payments: &[PaymentRecord],
) -> Result<(), ProjectionError> {
    let failed = failed("write payments");
    let upsert = &transaction
        .prepare(&storage::upsert_payment_sql(Dialect::Postgres))
        .await
        .map_err(&failed)?;
    try_join_all(payments.iter().map(|r| async move {
        let params: [&(dyn ToSql + Sync); 17] = [
            &r.payment_id,
            &r.currency,
            &r.payment_amount,
            &r.payment_method_type,
            &r.payment_time_ns,
            &r.capture_required,
            &r.captured,
            &r.refunded,
            &r.pending,
            &r.charged_back,
            &r.refundable,
            &r.status,
            &r.open_chargeback,
            &r.disputes,
            &r.refund_count,
            &r.last_position,
            &r.updated_at_ns,
        ];
        transaction.execute(upsert, &params).await
    }))
    .await
    .map_err(&failed)?;
    Ok(())
}

async fn write_refunds(
    transaction: &tokio_postgres::Transaction<'_>,
    refunds: &[RefundRecord],
) -> Result<(), ProjectionError> {
    let failed = failed("write refunds");
    let upsert = &transaction
        .prepare(&storage::upsert_refund_sql(Dialect::Postgres))
        .await
        .map_err(&failed)?;
    try_join_all(refunds.iter().map(|r| async move {
        let params: [&(dyn ToSql + Sync); 15] = [
            &r.refund_request_id,
            &r.payment_id,
            &r.currency,
            &r.refund_amount,
            &r.refund_reason,
            &r.status,
            &r.result_code,
            &r.result_message,
            &r.refund_id,
            &r.requested_at_ns,
            &r.settled_at_ns,
            &r.requested_by,
            &r.anomaly_count,
            &r.last_position,
            &r.updated_at_ns,
        ];
        transaction.execute(upsert, &params).await
    }))
    .await
    .map_err(&failed)?;
    Ok(())
}

async fn write_daily_totals(
    transaction: &tokio_postgres::Transaction<'_>,
    daily: &[DailyRecord],
) -> Result<(), ProjectionError> {
    let failed = failed("write daily totals");
    let add = &transaction
        .prepare(&storage::add_daily_sql(Dialect::Postgres))
        .await
        .map_err(&failed)?;
    try_join_all(daily.iter().map(|r| async move {
        let params: [&(dyn ToSql + Sync); 5] = [&r.date, &r.currency, &r.status, &r.count, &r.amount];
        transaction.execute(add, &params).await
    }))
    .await
    .map_err(&failed)?;
    Ok(())
}

async fn write_reconciliations(
    transaction: &tokio_postgres::Transaction<'_>,
    envelopes: &[crate::reconciliation::ReconciliationEnvelope],
) -> Result<(), ProjectionError> {
    use crate::reconciliation::ReconciliationChange;
    let int = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    let mut finding_runs: Vec<String> = Vec::new();
    let mut finding_seqs: Vec<i64> = Vec::new();
    let mut finding_kinds: Vec<String> = Vec::new();
    let mut finding_data: Vec<String> = Vec::new();
    for change in crate::reconciliation::changes(envelopes)? {
        if !matches!(change, ReconciliationChange::Finding { .. }) && !finding_runs.is_empty() {
            insert_findings(transaction, &finding_runs, &finding_seqs, &finding_kinds, &finding_data).await?;
            finding_runs.clear();
            finding_seqs.clear();
            finding_kinds.clear();
            finding_data.clear();
        }
        match change {
            ReconciliationChange::Run {
                run_id,
                position,
                recorded_at,
                actor,
                data,
            } => {
                transaction
                    .execute(
                        "INSERT INTO projection_reconciliations (run_id, position, recorded_at, actor, data)
                         VALUES ($1, $2, $3, $4, $5)",
                        &[&run_id, &int(position), &recorded_at, &actor, &data],
                    )
                    .await
                    .map_err(failed("write reconciliation"))?;
            }
            ReconciliationChange::Finding {
                run_id,
                seq,
                kind,
                data,
            } => {
                finding_runs.push(run_id);
                finding_seqs.push(int(seq));
                finding_kinds.push(kind);
                finding_data.push(data);
            }
            ReconciliationChange::Acknowledged {
                run_id,
                seq,
                by,
                at,
                note,
                position,
            } => {
                transaction
                    .execute(
                        "UPDATE projection_reconciliation_findings
                         SET ack_by = $3, ack_at = $4, ack_note = $5, ack_position = $6
                         WHERE run_id = $1 AND seq = $2 AND ack_by IS NULL",
                        &[&run_id, &int(seq), &by, &at, &note, &int(position)],
                    )
                    .await
                    .map_err(failed("write reconciliation acknowledgement"))?;
            }
        }
    }
    if !finding_runs.is_empty() {
        insert_findings(transaction, &finding_runs, &finding_seqs, &finding_kinds, &finding_data).await?;
    }
    Ok(())
}

/// Inserts findings in one statement (`UNNEST` of one array per column).
async fn insert_findings(
    transaction: &tokio_postgres::Transaction<'_>,
    runs: &[String],
    seqs: &[i64],
    kinds: &[String],
    data: &[String],
) -> Result<(), ProjectionError> {
    transaction
        .execute(
            "INSERT INTO projection_reconciliation_findings (run_id, seq, kind, data)
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[])",
            &[&runs, &seqs, &kinds, &data],
        )
        .await
        .map_err(failed("write reconciliation findings"))?;
    Ok(())
}

fn reconciliation_view(row: &Row) -> Result<crate::ReconciliationView, ProjectionError> {
    let corrupt = |error: tokio_postgres::Error| ProjectionError::backend("read reconciliation", error);
    let position: i64 = row.try_get(0).map_err(corrupt)?;
    let recorded_at: String = row.try_get(1).map_err(corrupt)?;
    let actor: String = row.try_get(2).map_err(corrupt)?;
    let data: String = row.try_get(3).map_err(corrupt)?;
    crate::reconciliation::run_view(position, &recorded_at, actor, &data)
}
async fn write_anomalies(
    transaction: &tokio_postgres::Transaction<'_>,
    anomalies: &[AnomalyRecord],
) -> Result<(), ProjectionError> {
    if anomalies.is_empty() {
        return Ok(());
    }
    let failed = failed("write anomalies");
    let upsert = &transaction
        .prepare(&anomaly::upsert_anomaly_sql(Dialect::Postgres))
        .await
        .map_err(&failed)?;
    try_join_all(anomalies.iter().map(|r| async move {
        let params: [&(dyn ToSql + Sync); 13] = [
            &r.position,
            &r.refund_request_id,
            &r.anomaly,
            &r.payment_id,
            &r.recorded_status,
            &r.reported,
            &r.source,
            &r.reported_at_ns,
            &r.recorded_at_ns,
            &r.acknowledged_position,
            &r.acknowledged_by,
            &r.acknowledged_note,
            &r.acknowledged_at_ns,
        ];
        transaction.execute(upsert, &params).await
    }))
    .await
    .map_err(&failed)?;
    Ok(())
}

/// The PostgreSQL view: its own connection (not the pool's: dropping it must end the transaction with it).
///
/// Its key table has no index while no key repeats: a key the [`KeyFilter`] has not seen is inserted as is (an
/// append, no index probe), and only the keys it may have seen are looked up, after the table's first such key
/// indexed it. Its statements are prepared once.
pub(crate) struct PostgresLedgerView {
    client: tokio_postgres::Client,
    position: u64,
    /// Whether the keys table was analyzed (before the first missing-check page).
    analyzed: bool,
    /// The keys recorded so far, approximately.
    seen: KeyFilter,
    /// Whether the keys table has its index (built when the filter first answered "maybe seen").
    indexed: bool,
    statements: LedgerViewStatements,
}

/// The view's prepared statements.
struct LedgerViewStatements {
    by_refund_request_id: tokio_postgres::Statement,
    by_refund_id: tokio_postgres::Statement,
    insert_keys: tokio_postgres::Statement,
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
                     file TEXT NOT NULL, line BIGINT NOT NULL
                 ) ON COMMIT DROP;",
            )
            .await
            .map_err(&failed)?;
        let position = crate::postgres::read_checkpoint(&client, false).await?;
        let by =
            |column: &str| format!("SELECT {REFUND_COLUMNS} FROM projection_refunds WHERE {column} = ANY($1::text[])");
        let statements = LedgerViewStatements {
            by_refund_request_id: client.prepare(&by("refund_request_id")).await.map_err(&failed)?,
            by_refund_id: client.prepare(&by("refund_id")).await.map_err(&failed)?,
            insert_keys: client
                .prepare(
                    "INSERT INTO reconciliation_keys (row_type, key_kind, key, file, line)
                     SELECT * FROM UNNEST($1::text[], $2::int2[], $3::text[], $4::text[], $5::int8[])",
                )
                .await
                .map_err(&failed)?,
        };
        Ok(Self {
            client,
            position,
            analyzed: false,
            seen: KeyFilter::new(),
            indexed: false,
            statements,
        })
    }

    /// Where the earlier batches first recorded each of `keys` (which the filter may have seen).
    async fn stored_keys(
        &mut self,
        keys: &[&ReportKey],
    ) -> Result<HashMap<(String, i16, String), (String, u64)>, ProjectionError> {
        let failed = crate::postgres::failed("look up repeated report keys");
        if !self.indexed {
            self.client
                .batch_execute(
                    "CREATE INDEX reconciliation_keys_by_key ON reconciliation_keys (row_type, key_kind, key)",
                )
                .await
                .map_err(&failed)?;
            self.indexed = true;
        }
        let mut stored = HashMap::new();
        for chunk in keys.chunks(LEDGER_VIEW_KEYS_PER_STATEMENT) {
            let row_types: Vec<&str> = chunk.iter().map(|key| key.row_type.as_str()).collect();
            let kinds: Vec<i16> = chunk.iter().map(|key| key.kind.code()).collect();
            let ids: Vec<&str> = chunk.iter().map(|key| key.key.as_str()).collect();
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
        Ok(stored)
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
            .map(|chunk| (&self.statements.by_refund_request_id, chunk))
            .chain(
                refund_ids
                    .chunks(LEDGER_VIEW_KEYS_PER_STATEMENT)
                    .map(|chunk| (&self.statements.by_refund_id, chunk)),
            );
        for (statement, ids) in lists {
            let rows = self.client.query(statement, &[&ids]).await.map_err(&failed)?;
            refunds.extend(postgres_refunds(&rows)?);
        }
        Ok(refunds)
    }

    async fn record_keys(&mut self, keys: &[ReportKey]) -> Result<Vec<Option<FirstSeen>>, ProjectionError> {
        let failed = crate::postgres::failed("record report keys");
        let maybe_seen: Vec<usize> = (0..keys.len())
            .filter(|&index| self.seen.insert(&keys[index]))
            .collect();
        let mut answers: Vec<Option<FirstSeen>> = vec![None; keys.len()];
        if !maybe_seen.is_empty() {
            let repeated: Vec<&ReportKey> = maybe_seen.iter().map(|&index| &keys[index]).collect();
            let stored = self.stored_keys(&repeated).await?;
            answers = first_seen(keys, &maybe_seen, &stored);
        }
        let new: Vec<&ReportKey> = keys
            .iter()
            .zip(&answers)
            .filter_map(|(key, answer)| answer.is_none().then_some(key))
            .collect();
        for chunk in new.chunks(LEDGER_VIEW_KEYS_PER_STATEMENT) {
            let row_types: Vec<&str> = chunk.iter().map(|key| key.row_type.as_str()).collect();
            let kinds: Vec<i16> = chunk.iter().map(|key| key.kind.code()).collect();
            let ids: Vec<&str> = chunk.iter().map(|key| key.key.as_str()).collect();
            let files: Vec<&str> = chunk.iter().map(|key| key.file.as_str()).collect();
            let lines: Vec<i64> = chunk
                .iter()
                .map(|key| i64::try_from(key.line).unwrap_or(i64::MAX))
                .collect();
            self.client
                .execute(
                    &self.statements.insert_keys,
                    &[&row_types, &kinds, &ids, &files, &lines],
                )
                .await
                .map_err(&failed)?;
        }
        Ok(answers)
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
