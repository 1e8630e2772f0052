//! The query API every read-model backend offers, and the writer side the runner drives.
//!
//! Readers (GraphQL, the refund saga's settle worker) hold an `Arc<dyn ReadModels>`; they never write. The
//! [`ProjectionStore`] adds the one writer: the [`crate::ProjectionRunner`] takes a [`ProjectionWriter`] lease,
//! and applies each batch of events together with the checkpoint in one transaction. Both traits are object
//! safe (hence `async_trait`) so the server can pick the backend from its store URL at runtime.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::{Currency, PaymentId, RefundRequestId};
use time::{Date, OffsetDateTime};
use tokio::sync::{mpsc, oneshot};

use crate::anomaly::AnomalyView;
use crate::error::ProjectionError;
use crate::fold::Batch;
use crate::model::{Cursor, DailyTotal, OpenRefundStats, Page, PaymentFilter, PaymentView, RefundFilter, RefundView};

/// What the log reader hands the rebuilding transaction.
#[derive(Debug)]
pub enum RebuildStep {
    /// The next events, after the previous step's last position.
    Batch(Batch),
    /// The log has been read to its end: commit.
    Done,
}

/// Read access to the projected read models, consistent as of [`ReadModels::checkpoint`].
///
/// Every answer reflects all events up to some checkpoint and none after it. To read your own write, pass the
/// position a mutation returned to [`ReadModels::wait_for_position`] first.
#[async_trait]
pub trait ReadModels: Send + Sync + 'static {
    /// The global position of the last event applied (0: none yet).
    async fn checkpoint(&self) -> Result<u64, ProjectionError>;

    /// Waits until the checkpoint reaches `position` (read-your-writes): `true` once `checkpoint >= position`,
    /// `false` when `timeout` passed first. A runner in this process wakes the waiter at once; one in another
    /// instance is noticed within [`CHECKPOINT_POLL_INTERVAL_MS`](crate::CHECKPOINT_POLL_INTERVAL_MS).
    async fn wait_for_position(&self, position: u64, timeout: Duration) -> Result<bool, ProjectionError>;

    /// One payment, or `None` when no `PaymentRecorded` of it has been applied.
    async fn payment(&self, payment_id: &PaymentId) -> Result<Option<PaymentView>, ProjectionError>;

    /// Payments matching `filter`, ordered by `(payment_time, payment_id)`, the `first` after `after`.
    ///
    /// `first` above [`PAGE_SIZE_MAX`](crate::PAGE_SIZE_MAX) is [`ProjectionError::PageSizeTooLarge`]; a cursor
    /// not issued by this method is [`ProjectionError::InvalidCursor`].
    async fn payments(
        &self,
        filter: &PaymentFilter,
        after: Option<&Cursor>,
        first: usize,
    ) -> Result<Page<PaymentView>, ProjectionError>;

    /// One refund by its idempotency key (unique across payments; its `payment_id` says which payment).
    async fn refund(&self, refund_request_id: &RefundRequestId) -> Result<Option<RefundView>, ProjectionError>;

    /// Refunds matching `filter`, ordered by `(requested_at, refund_request_id)`, the `first` after `after`.
    /// Limits and errors as for [`ReadModels::payments`].
    async fn refunds(
        &self,
        filter: &RefundFilter,
        after: Option<&Cursor>,
        first: usize,
    ) -> Result<Page<RefundView>, ProjectionError>;

    /// The settle worker's work list: refunds `REQUESTED` or `PROCESSING` that were requested before
    /// `requested_before`, oldest first (ties by `refund_request_id`), at most `limit`
    /// (at most [`PAGE_SIZE_MAX`](crate::PAGE_SIZE_MAX)).
    async fn open_refunds(
        &self,
        requested_before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<RefundView>, ProjectionError>;

    /// The same list as [`ReadModels::open_refunds`], paged: the `first` open refunds after `after` (a cursor of
    /// this list or of [`ReadModels::refunds`], which orders the same way). Limits and errors as for
    /// [`ReadModels::payments`].
    async fn open_refunds_page(
        &self,
        requested_before: OffsetDateTime,
        after: Option<&Cursor>,
        first: usize,
    ) -> Result<Page<RefundView>, ProjectionError>;

    /// Every contradicting outcome report recorded, by position (oldest first), the `first` after `after`.
    /// Limits and errors as for [`ReadModels::payments`].
    async fn anomalies(&self, after: Option<&Cursor>, first: usize) -> Result<Page<AnomalyView>, ProjectionError>;

    /// One anomaly by the global position of its `RefundOutcomeAnomaly` event.
    async fn anomaly(&self, position: u64) -> Result<Option<AnomalyView>, ProjectionError>;

    /// Open refunds (`REQUESTED`, `PROCESSING`) counted by state and age as of `now`, with the oldest of each
    /// state (the metrics' gauges). Reads only the open refunds' index entries.
    async fn open_refund_stats(&self, now: OffsetDateTime) -> Result<OpenRefundStats, ProjectionError>;

    /// Daily totals for the UTC dates `from..=to` (both inclusive), optionally of one currency, ordered by
    /// date, currency code and status code. Rows whose count dropped to zero (every refund moved to another
    /// status) are left out.
    async fn daily_totals(
        &self,
        from: Date,
        to: Date,
        currency: Option<Currency>,
    ) -> Result<Vec<DailyTotal>, ProjectionError>;

    /// Reconciliation runs, newest first, before position `before` (all when `None`).
    async fn reconciliations(
        &self,
        before: Option<u64>,
        first: usize,
    ) -> Result<Vec<crate::ReconciliationView>, ProjectionError>;

    /// One reconciliation run.
    async fn reconciliation(&self, run_id: &str) -> Result<Option<crate::ReconciliationView>, ProjectionError>;

    /// A run's findings in `seq` order (at most [`crate::FINDINGS_PAGE_MAX`]).
    async fn reconciliation_findings(
        &self,
        run_id: &str,
        filter: &crate::FindingFilter,
        first: usize,
    ) -> Result<Vec<crate::FindingView>, ProjectionError>;

    /// Opens a reconciliation run's view of the ledger: the read models pinned at their checkpoint, with a
    /// table for the run's report keys (see [`crate::LedgerView`]).
    async fn ledger_view(&self) -> Result<Box<dyn crate::LedgerView>, ProjectionError>;

    /// Runs that have findings but no `ReconciliationRecorded` in the read models (a run cut between its
    /// appends, or one still appending), at most `first`.
    async fn unrecorded_finding_runs(&self, first: usize) -> Result<Vec<String>, ProjectionError>;

    /// Removes the findings of run `run_id` if the run is not recorded; answers how many were removed. The
    /// one write a reader makes: the sweeper's (it touches no row the runner's fold of another run reads).
    async fn remove_unrecorded_findings(&self, run_id: &str) -> Result<u64, ProjectionError>;
}

/// Read models that can also be written: what the [`crate::ProjectionRunner`] drives.
#[async_trait]
pub trait ProjectionStore: ReadModels {
    /// Tries to become the single writer of these read models: `Some` lease when this caller may write, `None`
    /// while another runner (in this process or, for PostgreSQL, in another instance) holds it. The lease is
    /// given up when dropped.
    async fn try_writer(&self) -> Result<Option<Box<dyn ProjectionWriter>>, ProjectionError>;

    /// The same read models as a read-only handle, for the query layer.
    fn into_read_models(self: Arc<Self>) -> Arc<dyn ReadModels>;

    /// Rebuilds every read model in ONE transaction: locks the checkpoint (fencing the running writer, whose
    /// batches wait and then find the checkpoint moved), sends the stored checkpoint on `locked`, empties the
    /// read-model tables, applies every step of `steps` from position 1 and, on [`RebuildStep::Done`], moves
    /// the checkpoint to the last position and commits. Readers see the old rows until that commit.
    ///
    /// Use [`crate::rebuild_read_models`], which feeds it from the log.
    async fn rebuild(
        &self,
        steps: mpsc::Receiver<RebuildStep>,
        locked: oneshot::Sender<u64>,
    ) -> Result<u64, ProjectionError>;
}

/// The writer lease: applies batches of events, each in one transaction with the checkpoint.
#[async_trait]
pub trait ProjectionWriter: Send {
    /// The checkpoint as stored (the position to resume after).
    async fn checkpoint(&mut self) -> Result<u64, ProjectionError>;

    /// Folds `batch` into the read models and moves the checkpoint to `batch.last_position`, all in one
    /// transaction, publishes the new checkpoint to local waiters and returns it.
    ///
    /// The stored checkpoint must be `batch.after_position`; otherwise nothing is written and the error is
    /// [`ProjectionError::CheckpointMoved`] (another writer went ahead). Any error leaves the read models as
    /// they were.
    async fn apply(&mut self, batch: Batch) -> Result<u64, ProjectionError>;
}
