//! Waking readers when the head moves.
//!
//! Each store handle publishes its own commits on a `tokio::sync::watch`, which wakes local waiters at once.
//! Other handles (other server instances on one PostgreSQL database, other processes on one SQLite file) do
//! not reach that channel, so a waiter also re-reads the head from the database at least every
//! [`HEAD_POLL_INTERVAL_MS`]: local appends are seen immediately, remote ones within one interval.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::StoreError;
use crate::event::Head;

/// Longest a waiter goes without re-reading the head from the database, in milliseconds.
pub const HEAD_POLL_INTERVAL_MS: u64 = 50;

/// Waits until the head passes `position` or `timeout` elapses; `read_head` reads the database's head.
pub(crate) async fn wait_for_position_after<F, Fut>(
    published: &watch::Sender<Head>,
    position: u64,
    timeout: Duration,
    read_head: F,
) -> Result<Head, StoreError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Head, StoreError>>,
{
    let deadline = Instant::now() + timeout;
    // Subscribe before the first read so that a commit between the read and the wait still wakes us.
    let mut local = published.subscribe();
    loop {
        let local_head = *local.borrow_and_update();
        if local_head.position > position {
            return Ok(local_head);
        }
        let head = read_head().await?;
        let now = Instant::now();
        if head.position > position || now >= deadline {
            return Ok(head);
        }
        let poll_deadline = deadline.min(now + Duration::from_millis(HEAD_POLL_INTERVAL_MS));
        tokio::select! {
            changed = local.changed() => changed.map_err(|_| StoreError::Closed)?,
            () = tokio::time::sleep_until(poll_deadline) => {}
        }
    }
}
