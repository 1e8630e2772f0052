//! Rebuilding every read model from the log while the service keeps serving the old rows.
//!
//! The backend opens one transaction, locks the checkpoint row (PostgreSQL `FOR UPDATE`, SQLite `BEGIN
//! IMMEDIATE`), empties the read-model tables and applies the whole log with the runner's own batch fold, then
//! moves the checkpoint and commits: the swap is that commit. Until then readers see the old rows (MVCC on
//! PostgreSQL, WAL snapshots on SQLite). A running writer, in this process or another instance, waits on the
//! lock; its next batch then finds the checkpoint moved and it resumes from the rebuilt checkpoint, so no event
//! is applied twice or skipped.

use std::sync::Arc;

use eventlog::EventStore;
use tokio::sync::{mpsc, oneshot};

use crate::error::ProjectionError;
use crate::read_models::{ProjectionStore, RebuildStep};
use crate::runner::{RUNNER_BATCH_EVENTS_MAX, decode_batch};

/// Read-model tables a rebuild empties and refills (the checkpoint and the migrations are kept).
pub(crate) const REBUILT_TABLES: &[&str] = &[
    "projection_payments",
    "projection_refunds",
    "projection_daily_totals",
    "projection_reconciliation_findings",
    "projection_reconciliations",
    "projection_anomalies",
];

/// The error a backend returns when the steps end without [`RebuildStep::Done`].
pub(crate) fn reader_gone() -> ProjectionError {
    ProjectionError::RebuildAborted {
        reason: "the log reader stopped".to_owned(),
    }
}

/// Rebuilds every read model of `projections` from `store` in one transaction (see
/// [`ProjectionStore::rebuild`]) and returns the new checkpoint. `progress` is called with the position read
/// and the position the rebuild ends at.
pub async fn rebuild_read_models(
    store: Arc<dyn EventStore>,
    projections: &dyn ProjectionStore,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<u64, ProjectionError> {
    let (steps, received) = mpsc::channel(2);
    let (locked, locked_received) = oneshot::channel();
    let feed = async move {
        // A dropped sender means the rebuild failed before locking; its error is the one reported.
        let Ok(previous) = locked_received.await else {
            return Ok(());
        };
        // The stored checkpoint never passes the head; the rebuild must reach at least the checkpoint.
        let end = store.head().await?.position.max(previous);
        progress(0, end);
        let mut after = 0;
        while after < end {
            let mut events = store.read_all(after + 1, RUNNER_BATCH_EVENTS_MAX).await?;
            events.retain(|event| event.position <= end);
            if events.is_empty() {
                break;
            }
            let (batch, error) = decode_batch(after, &events, store.layout());
            if let Some(error) = error {
                return Err(error);
            }
            after = batch.last_position;
            if steps.send(RebuildStep::Batch(batch)).await.is_err() {
                // The transaction side failed; its error is the one reported.
                return Ok(());
            }
            progress(after, end);
        }
        if after < previous {
            return Err(ProjectionError::Inconsistent {
                position: after,
                reason: format!("the log ends before the stored checkpoint {previous}"),
            });
        }
        // An error means the transaction side failed; its error is the one reported.
        steps.send(RebuildStep::Done).await.ok();
        Ok(())
    };
    let (rebuilt, fed) = tokio::join!(projections.rebuild(received, locked), feed);
    fed?;
    let checkpoint = rebuilt?;
    tracing::info!(checkpoint, "read models rebuilt from the log");
    Ok(checkpoint)
}
