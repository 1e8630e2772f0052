//! What this instance observed of its own running (the settle worker, Antom's answers), kept in memory and
//! read by [`crate::Health`]; reset by a restart.

use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;

/// What this instance observed; shared by every clone of a [`Ledger`].
#[derive(Debug, Default)]
pub(crate) struct Observed {
    pub(crate) worker_interval: Mutex<Option<Duration>>,
    pub(crate) worker_last_run: Mutex<Option<OffsetDateTime>>,
    pub(crate) antom_last_success: Mutex<Option<OffsetDateTime>>,
}

pub(crate) fn set<T>(slot: &Mutex<Option<T>>, value: T) {
    // A poisoned lock only loses this observation.
    if let Ok(mut slot) = slot.lock() {
        *slot = Some(value);
    }
}

pub(crate) fn get<T: Copy>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().ok().and_then(|slot| *slot)
}
