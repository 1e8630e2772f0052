//! The projection runner: tails the global log from the checkpoint and applies it to the read models in
//! bounded batches, each in one transaction with its checkpoint.
//!
//! Exactly-once comes from that transaction, not from the subscription: the runner resumes at the stored
//! checkpoint + 1 after any restart, and a batch whose start does not match the stored checkpoint is refused
//! whole. Gap-freedom comes from the log (positions are visible in order, and dense on SQLite and PostgreSQL,
//! see eventlog's ADR 001 and 005), and is checked again here as the log's layout promises it. Only `payment-*` streams carry read-model facts; events of other streams are
//! passed over but still move the checkpoint.
//!
//! Failures split in two (see [`ProjectionError::is_transient`]): a lost connection or a moved checkpoint is
//! retried after [`RUNNER_RETRY_BACKOFF_MS`], resuming at the stored checkpoint; an event that does not
//! decode or contradicts the read models stops the runner with that error, after applying everything before
//! it, because skipping it would corrupt every balance that follows.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use eventlog::{EventStore, LogLayout, RecordedEvent, StoreError};
use futures_util::FutureExt as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::checkpoint::raise;
use crate::error::ProjectionError;
use crate::fold::{Batch, Envelope};
use crate::read_models::{ProjectionStore, ProjectionWriter, ReadModels};
use crate::reconciliation::ReconciliationEnvelope;

/// Most events the runner applies in one transaction.
pub const RUNNER_BATCH_EVENTS_MAX: usize = 500;

/// Payload bytes after which the runner closes a batch (a batch holds at least one event, so it may exceed this
/// by one event's payload, at most the log's payload limit). Payment events are a few hundred bytes, so their
/// batches end at [`RUNNER_BATCH_EVENTS_MAX`]; a reconciliation's findings chunks are up to ~400 KiB each, and 500
/// of them would hold some 200 MB in one batch, decoded besides.
pub const RUNNER_BATCH_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Pause before the runner retries after a transient failure, in milliseconds.
pub const RUNNER_RETRY_BACKOFF_MS: u64 = 1_000;

/// How often a standby runner tries to become the writer, in milliseconds.
pub const WRITER_RETRY_INTERVAL_MS: u64 = 1_000;

/// How often a standby runner re-reads the stored checkpoint to publish it, in milliseconds.
pub const STANDBY_POLL_INTERVAL_MS: u64 = 100;

/// What a runner is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunnerRole {
    /// Started, not yet holding or refused the writer lease.
    Starting,
    /// Another runner writes; this one follows the stored checkpoint and retries the lease.
    Standby,
    /// This runner applies events.
    Writer,
    /// Shut down or failed; see [`RunnerHandle::join`].
    Stopped,
}

/// Starts projection runners.
#[derive(Debug)]
pub struct ProjectionRunner;

/// A running [`ProjectionRunner`]: its checkpoint, its role, and its outcome.
#[derive(Debug)]
pub struct RunnerHandle {
    task: JoinHandle<Result<(), ProjectionError>>,
    checkpoint: watch::Receiver<u64>,
    role: watch::Receiver<RunnerRole>,
    batches_applied: Arc<AtomicU64>,
}

/// What the runner task shares with its handle.
#[derive(Debug, Clone)]
struct Published {
    checkpoint: Arc<watch::Sender<u64>>,
    role: Arc<watch::Sender<RunnerRole>>,
    batches_applied: Arc<AtomicU64>,
}

impl Published {
    fn checkpoint(&self, position: u64) {
        self.checkpoint.send_if_modified(|known| raise(known, position));
    }

    fn role(&self, role: RunnerRole) {
        self.role.send_if_modified(|known| {
            let changed = *known != role;
            *known = role;
            changed
        });
        if role != RunnerRole::Starting {
            tracing::info!(?role, "projection runner role");
        }
    }
}

impl ProjectionRunner {
    /// Spawns a runner that projects `store` into `projections` until `shutdown` completes (or a fatal error).
    ///
    /// Several runners may be started on the same read models (one per server instance): one becomes the
    /// writer, the others stand by, publish the stored checkpoint and take over when the writer goes away.
    /// Must be called inside a Tokio runtime.
    pub fn start(
        store: Arc<dyn EventStore>,
        projections: Arc<dyn ProjectionStore>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> RunnerHandle {
        let (stop_sender, stop) = watch::channel(false);
        let published = Published {
            checkpoint: Arc::new(watch::Sender::new(0)),
            role: Arc::new(watch::Sender::new(RunnerRole::Starting)),
            batches_applied: Arc::new(AtomicU64::new(0)),
        };
        let handle_published = published.clone();
        let task = tokio::spawn(async move {
            let runner = run(store, projections, stop, published.clone());
            tokio::pin!(runner);
            tokio::pin!(shutdown);
            let mut shutdown_seen = false;
            let result = loop {
                tokio::select! {
                    result = &mut runner => break result,
                    // The runner sees the flag at its next wait; a batch in flight still commits.
                    () = &mut shutdown, if !shutdown_seen => {
                        shutdown_seen = true;
                        stop_sender.send_replace(true);
                    }
                }
            };
            published.role(RunnerRole::Stopped);
            result
        });
        RunnerHandle {
            task,
            checkpoint: handle_published.checkpoint.subscribe(),
            role: handle_published.role.subscribe(),
            batches_applied: handle_published.batches_applied,
        }
    }
}

impl RunnerHandle {
    /// The checkpoint this runner last saw applied (by itself or, on standby, by the writer), as a watch.
    pub fn checkpoint(&self) -> watch::Receiver<u64> {
        self.checkpoint.clone()
    }

    /// What the runner is doing now.
    pub fn role(&self) -> RunnerRole {
        *self.role.borrow()
    }

    /// The role as a watch, to await changes.
    pub fn role_changes(&self) -> watch::Receiver<RunnerRole> {
        self.role.clone()
    }

    /// Batches this runner committed since it started.
    pub fn batches_applied(&self) -> u64 {
        self.batches_applied.load(Ordering::Relaxed)
    }

    /// Waits for the runner to end: `Ok` after a shutdown, the fatal error otherwise.
    pub async fn join(self) -> Result<(), ProjectionError> {
        match self.task.await {
            Ok(result) => result,
            Err(error) => Err(ProjectionError::RunnerAborted {
                reason: error.to_string(),
            }),
        }
    }
}

/// How far the read models trail the log: head position less checkpoint (the lag metric).
pub async fn projection_lag(store: &dyn EventStore, read_models: &dyn ReadModels) -> Result<u64, ProjectionError> {
    let head = store.head().await?;
    let checkpoint = read_models.checkpoint().await?;
    Ok(head.position.saturating_sub(checkpoint))
}

async fn run(
    store: Arc<dyn EventStore>,
    projections: Arc<dyn ProjectionStore>,
    mut stop: watch::Receiver<bool>,
    published: Published,
) -> Result<(), ProjectionError> {
    loop {
        match run_as_writer(&store, &*projections, &mut stop, &published).await {
            Ok(()) => return Ok(()),
            Err(error) if error.is_transient() => {
                tracing::warn!(%error, "projection runner retries after a transient failure");
                published.role(RunnerRole::Starting);
                if stopped_within(&mut stop, Duration::from_millis(RUNNER_RETRY_BACKOFF_MS)).await {
                    return Ok(());
                }
            }
            Err(error) => {
                tracing::error!(%error, "projection runner stopped");
                return Err(error);
            }
        }
    }
}

/// Waits `duration`; whether a shutdown came first.
async fn stopped_within(stop: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        // An error here means the stop flag's sender is gone, which happens only as the runner ends.
        _ = stop.wait_for(|stopped| *stopped) => true,
        () = tokio::time::sleep(duration) => false,
    }
}

/// Takes the writer lease (standing by until it is free) and applies events until shutdown or an error.
#[tracing::instrument(skip_all)]
async fn run_as_writer(
    store: &Arc<dyn EventStore>,
    projections: &dyn ProjectionStore,
    stop: &mut watch::Receiver<bool>,
    published: &Published,
) -> Result<(), ProjectionError> {
    let Some(mut writer) = acquire_writer(projections, stop, published).await? else {
        return Ok(());
    };
    published.role(RunnerRole::Writer);
    let mut checkpoint = writer.checkpoint().await?;
    published.checkpoint(checkpoint);
    tracing::info!(checkpoint, "projection runner resumes after the checkpoint");
    let mut subscription = eventlog::catch_up(Arc::clone(store), checkpoint + 1);
    loop {
        let first = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return Ok(()),
            next = subscription.next() => next,
        };
        let recorded = fill_batch(next_event(first)?, || {
            subscription.next().now_or_never().map(next_event).transpose()
        })?;
        let (batch, stop_error) = decode_batch(checkpoint, &recorded, store.layout());
        if batch.last_position > checkpoint {
            checkpoint = writer.apply(batch).await?;
            published.batches_applied.fetch_add(1, Ordering::Relaxed);
            published.checkpoint(checkpoint);
        }
        if let Some(error) = stop_error {
            return Err(error);
        }
    }
}

/// A batch of events: `first`, then those `ready` hands over without waiting (`Ok(None)` when none is), until
/// [`RUNNER_BATCH_EVENTS_MAX`] events or [`RUNNER_BATCH_BYTES_MAX`] payload bytes.
fn fill_batch(
    first: RecordedEvent,
    mut ready: impl FnMut() -> Result<Option<RecordedEvent>, ProjectionError>,
) -> Result<Vec<RecordedEvent>, ProjectionError> {
    let mut bytes = first.payload.len();
    let mut recorded = vec![first];
    while recorded.len() < RUNNER_BATCH_EVENTS_MAX && bytes < RUNNER_BATCH_BYTES_MAX {
        let Some(event) = ready()? else { break };
        bytes += event.payload.len();
        recorded.push(event);
    }
    Ok(recorded)
}

fn next_event(next: Option<Result<RecordedEvent, StoreError>>) -> Result<RecordedEvent, ProjectionError> {
    // A subscription ends without an error only when its reader task is gone.
    Ok(next.ok_or(StoreError::Closed)??)
}

/// Stands by until the lease is free (`Some`) or a shutdown comes (`None`), publishing the stored checkpoint.
async fn acquire_writer(
    projections: &dyn ProjectionStore,
    stop: &mut watch::Receiver<bool>,
    published: &Published,
) -> Result<Option<Box<dyn ProjectionWriter>>, ProjectionError> {
    let polls_per_retry = (WRITER_RETRY_INTERVAL_MS / STANDBY_POLL_INTERVAL_MS).max(1);
    loop {
        if *stop.borrow() {
            return Ok(None);
        }
        if let Some(writer) = projections.try_writer().await? {
            return Ok(Some(writer));
        }
        published.role(RunnerRole::Standby);
        for _ in 0..polls_per_retry {
            published.checkpoint(projections.checkpoint().await?);
            if stopped_within(stop, Duration::from_millis(STANDBY_POLL_INTERVAL_MS)).await {
                return Ok(None);
            }
        }
    }
}

/// Decodes the events that follow `checkpoint` into a batch. On the first event that cannot be applied the
/// batch ends before it, and the error is returned beside the batch so that everything before it still
/// commits.
///
/// On a dense log (SQLite, PostgreSQL) every position must be the one after the last; on a sparse one
/// (KurrentDB) it must be greater, holes being the log's own.
pub(crate) fn decode_batch(
    checkpoint: u64,
    recorded: &[RecordedEvent],
    layout: LogLayout,
) -> (Batch, Option<ProjectionError>) {
    let mut batch = Batch {
        after_position: checkpoint,
        last_position: checkpoint,
        events: Vec::with_capacity(recorded.len()),
        reconciliations: Vec::new(),
    };
    for event in recorded {
        let in_order = if layout.positions_dense() {
            event.position == batch.last_position + 1
        } else {
            event.position > batch.last_position
        };
        if !in_order {
            let error = ProjectionError::Inconsistent {
                position: event.position,
                reason: format!("the log skipped from {} to {}", batch.last_position, event.position),
            };
            return (batch, Some(error));
        }
        match Envelope::decode(event) {
            Ok(Some(envelope)) => batch.events.push(envelope),
            Ok(None) => match ReconciliationEnvelope::decode(event) {
                Ok(Some(envelope)) => batch.reconciliations.push(envelope),
                Ok(None) => {}
                Err(error) => return (batch, Some(error)),
            },
            Err(error) => return (batch, Some(error)),
        }
        batch.last_position = event.position;
    }
    (batch, None)
}

#[cfg(test)]
mod tests {
    use eventlog::StreamName;
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;

    /// Events of a stream the folds pass over, at `positions`.
    fn foreign(positions: &[u64]) -> Vec<RecordedEvent> {
        sized(positions, 2)
    }

    /// Events of a stream the folds pass over, at `positions`, each with a payload of `bytes`.
    fn sized(positions: &[u64], bytes: usize) -> Vec<RecordedEvent> {
        positions
            .iter()
            .map(|position| RecordedEvent {
                position: *position,
                stream: StreamName::parse("audit-notes").unwrap(),
                revision: 0,
                event_id: Uuid::from_u128(u128::from(*position)),
                event_type: "NoteTaken".to_owned(),
                schema_version: 1,
                payload: vec![b' '; bytes],
                actor: "test".to_owned(),
                recorded_at: OffsetDateTime::UNIX_EPOCH,
                prev_hash: [0; 32],
                hash: [0; 32],
            })
            .collect()
    }

    /// The batches `fill_batch` makes of `events`, all of them ready at once: their sizes.
    fn batch_sizes(events: Vec<RecordedEvent>) -> Vec<usize> {
        let mut events = events.into_iter();
        let mut sizes = Vec::new();
        while let Some(first) = events.next() {
            let batch = fill_batch(first, || Ok(events.next())).unwrap();
            sizes.push(batch.len());
        }
        sizes
    }

    #[test]
    fn a_batch_ends_at_its_event_count_or_its_payload_bytes() {
        // Small events: the count bounds the batch.
        let positions: Vec<u64> = (1..=1_200).collect();
        assert_eq!(batch_sizes(foreign(&positions)), [500, 500, 200]);
        // Findings chunks of ~300 KiB: the bytes do, 28 events (8 MiB reached with the 28th), not 500.
        let chunk = 300 * 1024;
        let per_batch = RUNNER_BATCH_BYTES_MAX.div_ceil(chunk);
        assert_eq!(per_batch, 28);
        let positions: Vec<u64> = (1..=60).collect();
        assert_eq!(batch_sizes(sized(&positions, chunk)), [28, 28, 4]);
        // One event over the bound is a batch of its own.
        let positions: Vec<u64> = (1..=3).collect();
        assert_eq!(batch_sizes(sized(&positions, RUNNER_BATCH_BYTES_MAX + 1)), [1, 1, 1]);
        // An error of the subscription ends the filling with that error.
        let first = foreign(&[1]).remove(0);
        let error = fill_batch(first, || Err(ProjectionError::from(StoreError::Closed))).unwrap_err();
        assert!(error.is_transient(), "{error:?}");
    }

    #[test]
    fn a_dense_log_must_not_skip_and_a_sparse_one_must_not_go_back() {
        let (batch, error) = decode_batch(10, &foreign(&[11, 12, 14]), LogLayout::DenseChained);
        assert_eq!(batch.last_position, 12, "applied up to the gap");
        assert!(
            matches!(error, Some(ProjectionError::Inconsistent { position: 14, .. })),
            "{error:?}"
        );

        let (batch, error) = decode_batch(10, &foreign(&[4_096, 4_300, 9_000]), LogLayout::SparseSealed);
        assert_eq!(
            (batch.last_position, error.is_none()),
            (9_000, true),
            "holes are the log's own"
        );

        let (batch, error) = decode_batch(4_300, &foreign(&[4_400, 4_400]), LogLayout::SparseSealed);
        assert_eq!(batch.last_position, 4_400);
        assert!(
            matches!(error, Some(ProjectionError::Inconsistent { position: 4_400, .. })),
            "{error:?}"
        );
    }
}
