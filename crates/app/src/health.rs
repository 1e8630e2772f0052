//! What an operator asks the ledger about its own running: when the settle worker last ran, when Antom last
//! gave a verified answer, and when the worker will next ask about an open refund.
//!
//! Kept in memory per instance (not in the log): it describes this process, and is reset by a restart.

use std::time::Duration;

use time::OffsetDateTime;

use crate::ledger::Ledger;
use crate::running::{get, set};

/// A snapshot of [`Observed`] with the worker's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// How often this instance's settle worker runs; `None` when it runs no worker.
    pub worker_interval: Option<Duration>,
    /// When this instance's worker last finished a pass (`None`: not yet, or no worker).
    pub worker_last_run: Option<OffsetDateTime>,
    /// When Antom last gave this instance a verified answer (S, F, PROCESSING or not found) to a refund or an
    /// inquiry; timeouts, transport errors and unverified answers do not count.
    pub antom_last_success: Option<OffsetDateTime>,
    /// How long a refund stays open before the worker asks Antom about it.
    pub settle_after: Duration,
}

impl Ledger {
    /// What this instance observed about its worker and Antom.
    pub fn health(&self) -> Health {
        let observed = &self.inner.observed;
        Health {
            worker_interval: get(&observed.worker_interval),
            worker_last_run: get(&observed.worker_last_run),
            antom_last_success: get(&observed.antom_last_success),
            settle_after: self.inner.options.settle_after,
        }
    }

    /// When this instance's worker will next ask Antom about an open refund requested at `requested_at`: its
    /// first pass after the refund is `settle_after` old (every pass asks about the oldest
    /// `settle_batch_refunds_max` open refunds, so a refund behind a longer queue waits for later passes).
    /// `None` when this instance runs no worker.
    pub fn next_worker_attempt(&self, requested_at: OffsetDateTime) -> Option<OffsetDateTime> {
        let health = self.health();
        let interval = time::Duration::try_from(health.worker_interval?).ok()?;
        let due = requested_at.checked_add(time::Duration::try_from(health.settle_after).ok()?)?;
        let next_pass = match health.worker_last_run {
            Some(last) => last.checked_add(interval)?,
            None => self.clock().now(),
        };
        first_pass_from(next_pass, interval, due)
    }

    pub(crate) fn note_worker_interval(&self, interval: Duration) {
        set(&self.inner.observed.worker_interval, interval);
    }

    pub(crate) fn note_worker_run(&self) {
        set(&self.inner.observed.worker_last_run, self.clock().now());
    }

    pub(crate) fn note_antom_answer(&self) {
        set(&self.inner.observed.antom_last_success, self.clock().now());
    }
}

/// The first pass at or after `due` of a worker whose next pass is at `next_pass`, then every `interval`
/// (whole nanoseconds, rounded up to a pass).
fn first_pass_from(next_pass: OffsetDateTime, interval: time::Duration, due: OffsetDateTime) -> Option<OffsetDateTime> {
    if next_pass >= due {
        return Some(next_pass);
    }
    let step = interval.whole_nanoseconds();
    if step <= 0 {
        return Some(due);
    }
    let wait = (due - next_pass).whole_nanoseconds();
    let passes = (wait + step - 1) / step;
    let offset = i64::try_from(passes.checked_mul(step)?).ok()?;
    next_pass.checked_add(time::Duration::nanoseconds(offset))
}

/// Whether a refund call got a verified answer from Antom (S, F, or a signed U), rather than none.
pub(crate) fn antom_answered(outcome: &apo::RefundOutcome) -> bool {
    match outcome {
        apo::RefundOutcome::Unknown { reason } => matches!(reason, apo::UnknownReason::ResultUnknown { .. }),
        _ => true,
    }
}

impl Ledger {
    /// The ledger's current time (its clock's), for ages and deadlines shown to operators.
    pub fn now(&self) -> OffsetDateTime {
        self.clock().now()
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn the_next_attempt_is_the_first_pass_once_the_refund_is_due() {
        let next_pass = datetime!(2026-12-01 10:00:00 UTC);
        let second = time::Duration::seconds(1);
        assert_eq!(
            first_pass_from(next_pass, second, datetime!(2026-12-01 09:00 UTC)),
            Some(next_pass),
            "already due: the next pass"
        );
        assert_eq!(
            first_pass_from(next_pass, second * 10, datetime!(2026-12-01 10:00:25 UTC)),
            Some(datetime!(2026-12-01 10:00:30 UTC)),
            "due between passes: the pass after"
        );
        assert_eq!(
            first_pass_from(next_pass, second * 10, datetime!(2026-12-01 10:00:30 UTC)),
            Some(datetime!(2026-12-01 10:00:30 UTC)),
            "due on a pass: that pass"
        );
    }
}
