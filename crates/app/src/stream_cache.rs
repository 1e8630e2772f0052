//! Folded payment streams kept between commands, so a command reads and
//! folds only the events appended since the last time, not the whole stream.
//!
//! Events never change once stored, so a fold of a stream's first N events
//! stays right forever: a cached entry is a starting point, the rest is
//! always read from the store, and the append still carries the expected
//! revision, so the cache can make a decision faster but never wrong.
//! Several ledgers (instances) on one store each keep their own.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use domain::Payment;

/// Most payment streams kept; the oldest entry goes first.
pub const STREAM_CACHE_PAYMENTS_MAX: usize = 10_000;

/// A bounded map from stream name to its fold and last revision.
#[derive(Debug, Default)]
pub(crate) struct StreamCache {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    folds: HashMap<String, (Payment, u64)>,
    arrival: VecDeque<String>,
}

impl StreamCache {
    /// The cached fold of `stream` and the last revision it includes.
    pub(crate) fn get(&self, stream: &str) -> Option<(Payment, u64)> {
        // A poisoned lock only means another task panicked mid-insert; the map itself is still whole.
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.folds.get(stream).cloned()
    }

    /// Keeps `payment` as the fold of `stream` up to `revision`, unless a later one is kept already.
    pub(crate) fn put(&self, stream: &str, payment: Payment, revision: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, kept)) = entries.folds.get(stream)
            && *kept >= revision
        {
            return;
        }
        if entries.folds.insert(stream.to_owned(), (payment, revision)).is_none() {
            entries.arrival.push_back(stream.to_owned());
        }
        while entries.folds.len() > STREAM_CACHE_PAYMENTS_MAX {
            let Some(oldest) = entries.arrival.pop_front() else {
                break;
            };
            entries.folds.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_fold_and_stays_bounded() {
        let cache = StreamCache::default();
        cache.put("payment-1", Payment::Unknown, 3);
        cache.put("payment-1", Payment::Unknown, 2);
        assert_eq!(cache.get("payment-1").map(|(_, revision)| revision), Some(3));
        for index in 0..STREAM_CACHE_PAYMENTS_MAX + 10 {
            cache.put(&format!("payment-x{index}"), Payment::Unknown, 0);
        }
        assert!(cache.get("payment-1").is_none(), "the oldest entry was evicted");
        assert_eq!(cache.entries.lock().unwrap().folds.len(), STREAM_CACHE_PAYMENTS_MAX);
    }
}
