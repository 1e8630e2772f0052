//! Bounded retries of a call whose outcome is unknown.
//!
//! Resending is safe only because every attempt carries the same body, hence
//! the same refundRequestId (Antom's idempotency key); an inquiry is
//! read-only. Only transient reasons are retried (timeouts, transport
//! errors, 5xx, 429, Antom's U): an unsigned or badly signed answer will not
//! get better by asking again at once, and is left to the inquiry worker.

use std::time::Duration;

use crate::response::UnknownReason;

/// Default number of attempts per call, the first one included.
pub const ATTEMPTS_MAX_DEFAULT: u32 = 3;
/// Hard bound on attempts per call, whatever the configuration says.
pub const ATTEMPTS_MAX_LIMIT: u32 = 10;
/// Default wait before the first retry.
pub const BACKOFF_INITIAL_MS_DEFAULT: u64 = 200;
/// Default longest wait between two attempts.
pub const BACKOFF_MAX_MS_DEFAULT: u64 = 5_000;

/// How many times to try a call and how long to wait in between
/// (exponential backoff: initial, 2x, 4x, ... capped at `backoff_max_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call including the first; 1 disables retries. Capped at [`ATTEMPTS_MAX_LIMIT`].
    pub attempts_max: u32,
    /// Wait before the first retry, in milliseconds.
    pub backoff_initial_ms: u64,
    /// Longest wait between attempts, in milliseconds.
    pub backoff_max_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts_max: ATTEMPTS_MAX_DEFAULT,
            backoff_initial_ms: BACKOFF_INITIAL_MS_DEFAULT,
            backoff_max_ms: BACKOFF_MAX_MS_DEFAULT,
        }
    }
}

impl RetryPolicy {
    /// No retries: one attempt per call.
    pub fn none() -> Self {
        Self {
            attempts_max: 1,
            ..Self::default()
        }
    }

    /// Attempts actually made: at least 1, at most [`ATTEMPTS_MAX_LIMIT`].
    pub fn attempts(&self) -> u32 {
        self.attempts_max.clamp(1, ATTEMPTS_MAX_LIMIT)
    }

    /// Whether attempt number `attempt` (1-based) that ended for `reason`
    /// should be followed by another.
    pub fn should_retry(&self, attempt: u32, reason: &UnknownReason) -> bool {
        attempt < self.attempts() && reason.is_transient()
    }

    /// The wait after attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(u64::BITS - 1);
        let wait_ms = self
            .backoff_initial_ms
            .saturating_mul(1u64 << doublings)
            .min(self.backoff_max_ms);
        Duration::from_millis(wait_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let policy = RetryPolicy {
            attempts_max: 5,
            backoff_initial_ms: 100,
            backoff_max_ms: 350,
        };
        let waits: Vec<u64> = (1..=5)
            .map(|attempt| policy.backoff(attempt).as_millis() as u64)
            .collect();
        assert_eq!(waits, [100, 200, 350, 350, 350]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_millis(350));
    }

    #[test]
    fn retries_only_transient_reasons_within_the_bound() {
        let policy = RetryPolicy::default();
        assert!(policy.should_retry(1, &UnknownReason::Timeout));
        assert!(policy.should_retry(2, &UnknownReason::HttpStatus { status: 503 }));
        assert!(
            !policy.should_retry(3, &UnknownReason::Timeout),
            "third attempt is the last"
        );
        assert!(!policy.should_retry(1, &UnknownReason::HttpStatus { status: 400 }));
        assert!(!policy.should_retry(
            1,
            &UnknownReason::Unsigned {
                untrusted_result_code: None
            }
        ));
        assert!(!RetryPolicy::none().should_retry(1, &UnknownReason::Timeout));
        let huge = RetryPolicy {
            attempts_max: 1_000,
            ..RetryPolicy::default()
        };
        assert_eq!(huge.attempts(), ATTEMPTS_MAX_LIMIT);
        let zero = RetryPolicy {
            attempts_max: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(zero.attempts(), 1);
    }
}
