//! Catch-up subscriptions to the whole log, for any [`EventStore`].
//!
//! A subscriber reads from its checkpoint in bounded batches with `read_all`, then waits for the head to move
//! and reads again. This is correct only because the stores make positions visible in order (see
//! docs/adr/001-gap-free-ordering.md and, for KurrentDB, docs/adr/006-kurrentdb-positions.md): reading
//! `position >= next` can never skip an event that commits late. The subscription checks what the store's
//! [`LogLayout`] promises instead of trusting it: on a dense log a position out of sequence, on a sparse one a
//! position that does not increase, ends the subscription with [`StoreError::Corrupt`]; it is never skipped.
//!
//! A store handle that offers [`EventStore::local_commits`] hands the subscription the events it commits
//! itself: once caught up, the subscription forwards them without reading the log as long as each commit
//! continues exactly where it is, and reads the log for anything else (another handle's commit, a receiver
//! that fell behind, a large commit) and at least every [`HEAD_POLL_INTERVAL_MS`] (see `local_commits.rs`).
//!
//! The reading runs in a spawned task that feeds a bounded channel, so a slow consumer holds at most
//! [`SUBSCRIPTION_BUFFER_EVENTS_MAX`] events in memory and the reader simply waits for room.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::error::StoreError;
use crate::event::RecordedEvent;
use crate::local_commits::LocalCommit;
use crate::notify::HEAD_POLL_INTERVAL_MS;
use crate::store::{EventStore, LogLayout};

/// Events a subscription reads per `read_all` call.
pub const SUBSCRIPTION_BATCH_EVENTS_MAX: usize = 1_000;

/// Events a subscription buffers ahead of its consumer.
pub const SUBSCRIPTION_BUFFER_EVENTS_MAX: usize = 1_000;

/// How long one wait for new events lasts before the subscription re-checks, in milliseconds.
const SUBSCRIPTION_WAIT_MS: u64 = 1_000;

/// A live, ordered feed of the log's events; also a [`futures_core::Stream`].
///
/// Yields `Ok(event)` for every event from the starting position on, exactly once and in position order. After
/// an `Err` it ends: resubscribe from the last position handled plus one. Dropping it stops the reading task.
#[derive(Debug)]
pub struct EventSubscription {
    events: mpsc::Receiver<Result<RecordedEvent, StoreError>>,
    reader: JoinHandle<()>,
}

impl EventSubscription {
    /// The next event; `None` after an error has been yielded.
    pub async fn next(&mut self) -> Option<Result<RecordedEvent, StoreError>> {
        self.events.recv().await
    }
}

impl futures_core::Stream for EventSubscription {
    type Item = Result<RecordedEvent, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.poll_recv(context)
    }
}

impl Drop for EventSubscription {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A catch-up subscription to the whole log of `store` from `from_position` (inclusive; 0 means the start):
/// every event exactly once, in position order, then new events as they are committed. It reads through
/// [`EventStore::read_all`] and [`EventStore::wait_for_position_after`] and checks the positions as
/// [`EventStore::layout`] promises them. Must be called inside a Tokio runtime.
pub fn catch_up<S: EventStore + ?Sized>(store: Arc<S>, from_position: u64) -> EventSubscription {
    let (sender, events) = mpsc::channel(SUBSCRIPTION_BUFFER_EVENTS_MAX);
    let layout = store.layout();
    let reader = tokio::spawn(read_into(store, layout, from_position.max(1), sender));
    EventSubscription { events, reader }
}

async fn read_into<S: EventStore + ?Sized>(
    store: Arc<S>,
    layout: LogLayout,
    mut next_position: u64,
    sender: mpsc::Sender<Result<RecordedEvent, StoreError>>,
) {
    if let Err(error) = forward(&*store, layout, &mut next_position, &sender).await {
        tracing::warn!(%error, next_position, "subscription ended");
        if sender.send(Err(error)).await.is_err() {
            tracing::debug!("subscriber went away before reading the error");
        }
    }
}

/// Forwards events until the consumer goes away (`Ok`) or reading fails (`Err`).
async fn forward<S: EventStore + ?Sized>(
    store: &S,
    layout: LogLayout,
    next_position: &mut u64,
    sender: &mpsc::Sender<Result<RecordedEvent, StoreError>>,
) -> Result<(), StoreError> {
    // Taken before the first read, so every commit of this handle after that read comes through it.
    let mut commits = if layout.positions_dense() {
        store.local_commits()
    } else {
        None
    };
    loop {
        let batch = store.read_all(*next_position, SUBSCRIPTION_BATCH_EVENTS_MAX).await?;
        let caught_up = batch.len() < SUBSCRIPTION_BATCH_EVENTS_MAX;
        let read_nothing = batch.is_empty();
        for event in batch {
            check_next(layout, *next_position, &event)?;
            *next_position = event.position.saturating_add(1);
            if sender.send(Ok(event)).await.is_err() {
                return Ok(());
            }
        }
        if let Some(receiver) = commits.as_mut() {
            if caught_up {
                match follow(receiver, layout, next_position, sender).await? {
                    Followed::ConsumerGone => return Ok(()),
                    Followed::ReadTheLog => {}
                    Followed::FeedClosed => commits = None,
                }
            }
            continue;
        }
        if read_nothing {
            let wait = store.wait_for_position_after(*next_position - 1, Duration::from_millis(SUBSCRIPTION_WAIT_MS));
            tokio::select! {
                head = wait => { head?; }
                () = sender.closed() => return Ok(()),
            }
        }
    }
}

/// Why [`follow`] stopped.
enum Followed {
    /// The subscriber went away.
    ConsumerGone,
    /// The next events are not in the feed (another handle wrote, the receiver fell behind, a commit was too
    /// large to keep) or the poll interval passed: read the log.
    ReadTheLog,
    /// The store handle is gone; read the log from now on.
    FeedClosed,
}

/// Forwards this handle's commits from `receiver` while each one continues exactly at `next_position`, for at
/// most [`HEAD_POLL_INTERVAL_MS`], after which the log is read again so that commits of other handles or
/// processes are seen within that interval, as [`EventStore::wait_for_position_after`] promises.
async fn follow(
    receiver: &mut broadcast::Receiver<LocalCommit>,
    layout: LogLayout,
    next_position: &mut u64,
    sender: &mpsc::Sender<Result<RecordedEvent, StoreError>>,
) -> Result<Followed, StoreError> {
    let poll = tokio::time::sleep(Duration::from_millis(HEAD_POLL_INTERVAL_MS));
    tokio::pin!(poll);
    loop {
        let commit = tokio::select! {
            received = receiver.recv() => match received {
                Ok(commit) => commit,
                Err(broadcast::error::RecvError::Lagged(_)) => return Ok(Followed::ReadTheLog),
                Err(broadcast::error::RecvError::Closed) => return Ok(Followed::FeedClosed),
            },
            () = &mut poll => return Ok(Followed::ReadTheLog),
            () = sender.closed() => return Ok(Followed::ConsumerGone),
        };
        if commit.last_position < *next_position {
            // Already read from the log.
            continue;
        }
        let Some(events) = commit.events else {
            return Ok(Followed::ReadTheLog);
        };
        let from = *next_position;
        let Some(start) = events.iter().position(|event| event.position >= from) else {
            continue;
        };
        if events[start].position != from {
            // Something committed in between that this handle did not write.
            return Ok(Followed::ReadTheLog);
        }
        for event in &events[start..] {
            check_next(layout, *next_position, event)?;
            *next_position = event.position.saturating_add(1);
            if sender.send(Ok(event.clone())).await.is_err() {
                return Ok(Followed::ConsumerGone);
            }
        }
    }
}

/// Checks that `event` may follow when `next_position` is due: exactly it on a dense log, at least it on a
/// sparse one.
fn check_next(layout: LogLayout, next_position: u64, event: &RecordedEvent) -> Result<(), StoreError> {
    let in_sequence = if layout.positions_dense() {
        event.position == next_position
    } else {
        event.position >= next_position
    };
    if in_sequence {
        return Ok(());
    }
    Err(StoreError::corrupt(
        next_position,
        format!(
            "subscription expected position {}{next_position}, read {}",
            if layout.positions_dense() { "" } else { "at least " },
            event.position
        ),
    ))
}
