//! Publishing and awaiting the checkpoint (read-your-writes).
//!
//! The writer in this process publishes every committed checkpoint on a `tokio::sync::watch`, which wakes
//! local waiters at once. A runner in another instance (PostgreSQL) or process (SQLite) does not reach that
//! channel, so a waiter also re-reads the stored checkpoint at least every [`CHECKPOINT_POLL_INTERVAL_MS`].

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::ProjectionError;

/// Longest a waiter goes without re-reading the stored checkpoint, in milliseconds.
pub const CHECKPOINT_POLL_INTERVAL_MS: u64 = 50;

/// Waits until the checkpoint reaches `position` or `timeout` passes; `read_stored` reads the stored one.
pub(crate) async fn wait_for_checkpoint<F, Fut>(
    published: &watch::Sender<u64>,
    position: u64,
    timeout: Duration,
    read_stored: F,
) -> Result<bool, ProjectionError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<u64, ProjectionError>>,
{
    let deadline = Instant::now() + timeout;
    // Subscribe before reading so that a commit between the read and the wait still wakes us.
    let mut local = published.subscribe();
    loop {
        if *local.borrow_and_update() >= position {
            return Ok(true);
        }
        let stored = read_stored().await?;
        if stored >= position {
            published.send_if_modified(|known| raise(known, stored));
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        let poll_deadline = deadline.min(now + Duration::from_millis(CHECKPOINT_POLL_INTERVAL_MS));
        tokio::select! {
            // The sender lives as long as the read models that own it, so `changed` fails only at teardown.
            changed = local.changed() => if changed.is_err() { return Ok(*local.borrow() >= position) },
            () = tokio::time::sleep_until(poll_deadline) => {}
        }
    }
}

/// Moves a published checkpoint forward (never back); whether it moved.
pub(crate) fn raise(known: &mut u64, stored: u64) -> bool {
    if stored > *known {
        *known = stored;
        true
    } else {
        false
    }
}
