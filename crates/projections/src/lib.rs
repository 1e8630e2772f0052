//! projections: the refund ledger's read models, folded from the global event log.
//!
//! Queries (GraphQL, the refund saga's settle worker) never replay streams: they read rows that a single
//! runner keeps up to date by tailing the log in global order. This crate owns that path:
//!
//! - [`fold`]: pure folds from events to rows (payment balances, refunds, daily totals). No IO, so audit replay
//!   and tests run the very same code.
//! - [`fold_payment_stream`]: one payment's stream folded into the `domain` aggregate, page by page, for the
//!   command side, as-of reads and audit.
//! - [`ReadModels`]: the query API, with keyset [`Page`]s and read-your-writes through
//!   [`ReadModels::wait_for_position`].
//! - [`ProjectionStore`] / [`ProjectionWriter`]: the writer side, implemented by the SQLite and PostgreSQL
//!   backends; a batch of events and the checkpoint commit in one transaction, so a crash never applies an
//!   event twice or skips one.
//!
//! Wiring, as the server does it: open once, start the runner on it, hand the same value to the readers.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # async fn serve(store: Arc<dyn eventlog::EventStore>) -> Result<(), projections::ProjectionError> {
//! let projections = projections::open_projection_store("sqlite://./data/ledger.db").await?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let runner = projections::ProjectionRunner::start(store, Arc::clone(&projections), async move {
//!     // A dropped sender stops the runner as well.
//!     stopped.await.unwrap_or(());
//! });
//! let read_models: Arc<dyn projections::ReadModels> = projections.into_read_models();
//! // ... serve queries with `read_models`; on shutdown:
//! drop(stop);
//! runner.join().await
//! # }
//! ```
//!
//! Architecture invariants: the folds do no IO and read no clock (times come from the events); the only
//! tables this crate writes are its own (`projection_*`, or its own SQLite file beside the log); an event of
//! a payment stream that does not decode stops the runner, it is never skipped.

#![warn(missing_docs)]

mod anomaly;
mod checkpoint;
mod error;
mod key_filter;
mod ledger_view;
mod model;
mod postgres;
mod read_models;
mod rebuild;
pub mod reconciliation;
mod runner;
mod sqlite;
mod storage;
mod stream;

pub mod fold;

pub use anomaly::{AnomalyAcknowledgement, AnomalyView, outcome_source_code};
pub use checkpoint::CHECKPOINT_POLL_INTERVAL_MS;
pub use error::ProjectionError;
pub use fold::{Batch, Envelope, PAYMENT_STREAM_PREFIX};
pub use ledger_view::{FirstSeen, KeyKind, LEDGER_VIEW_KEYS_PER_STATEMENT, LedgerView, ReportKey, SucceededWindow};
pub use model::{
    Cursor, DailyTotal, OPEN_REFUND_AGE_BOUNDS_SECONDS, OpenRefundAges, OpenRefundStats, PAGE_SIZE_MAX, Page,
    PaymentFilter, PaymentStatus, PaymentView, RefundFilter, RefundView,
};
pub use postgres::{PostgresReadModels, READ_POOL_CONNECTIONS_MAX, WRITER_LOCK_KEY};
pub use read_models::{ProjectionStore, ProjectionWriter, ReadModels, RebuildStep};
pub use rebuild::rebuild_read_models;
pub use reconciliation::{
    Acknowledgement, FINDINGS_PAGE_MAX, FindingFilter, FindingView, ReconciliationEnvelope, ReconciliationFold,
    ReconciliationView,
};
pub use runner::{
    ProjectionRunner, RUNNER_BATCH_BYTES_MAX, RUNNER_BATCH_EVENTS_MAX, RUNNER_RETRY_BACKOFF_MS, RunnerHandle,
    RunnerRole, STANDBY_POLL_INTERVAL_MS, WRITER_RETRY_INTERVAL_MS, projection_lag,
};
pub use sqlite::{SqliteReadModels, read_model_path};
pub use stream::{FoldedStream, StreamFoldError, fold_payment_stream};

use std::path::Path;
use std::sync::Arc;

/// Opens the read models that belong to the event store at `store_url`, for reading and for a runner:
/// `sqlite://PATH` opens (creating) the file beside the log (see [`read_model_path`]), `postgres://...` (or
/// `postgresql://`) the `projection_*` tables in the log's database, migrating the schema either way.
///
/// Open it once per process and hand the same value to [`ProjectionRunner::start`] and (through
/// [`ProjectionStore::into_read_models`]) to the query layer: then a reader waiting for its own write is woken
/// the moment the local runner commits it, instead of at the next poll.
pub async fn open_projection_store(store_url: &str) -> Result<Arc<dyn ProjectionStore>, ProjectionError> {
    if let Some(log_path) = store_url.strip_prefix("sqlite://") {
        let path = read_model_path(Path::new(log_path));
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|error| ProjectionError::backend("create read model folder", error))?;
        }
        return Ok(Arc::new(SqliteReadModels::open(path).await?));
    }
    if store_url.starts_with("postgres://") || store_url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresReadModels::connect(store_url).await?));
    }
    Err(ProjectionError::InvalidStoreUrl {
        reason: "expected sqlite://PATH or postgres://...".to_owned(),
    })
}

/// Opens the read models of `store_url` for queries only; see [`open_projection_store`] for the URL forms.
pub async fn open_read_models(store_url: &str) -> Result<Arc<dyn ReadModels>, ProjectionError> {
    Ok(open_projection_store(store_url).await?.into_read_models())
}
