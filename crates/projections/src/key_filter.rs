//! A Bloom filter over a reconciliation run's report keys (docs/adr/003-reconciliation.md, "Flat memory"): a
//! fixed [`KEY_FILTER_BYTES`] whatever the report's length, so a key it has not seen is certainly a first
//! occurrence and needs no lookup in the run's key table; only the keys it may have seen (real duplicates, and
//! about one false alarm per million keys at a million) are looked up.

use std::hash::{Hash as _, Hasher as _};

use crate::ledger_view::ReportKey;

/// log2 of the filter's bits: 2^26 bits, 8 MiB.
const KEY_FILTER_BITS_LOG2: u32 = 26;

/// The filter's size in bytes.
pub(crate) const KEY_FILTER_BYTES: usize = 1 << (KEY_FILTER_BITS_LOG2 - 3);

/// Bits set per key. With 2^26 bits, six make a false alarm about 4 in 10^7 at a million keys and 2 in 10^5 at
/// two million.
const KEY_FILTER_HASHES: u64 = 6;

/// The keys recorded so far, approximately: never a false "not seen".
pub(crate) struct KeyFilter {
    words: Vec<u64>,
}

impl KeyFilter {
    /// An empty filter. Its pages are only touched (resident) once keys set their bits.
    pub(crate) fn new() -> Self {
        Self {
            words: vec![0; KEY_FILTER_BYTES / 8],
        }
    }

    /// Adds `key`; answers whether it may have been added before (`false`: certainly not).
    pub(crate) fn insert(&mut self, key: &ReportKey) -> bool {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (key.row_type.as_str(), key.kind.code(), key.key.as_str()).hash(&mut hasher);
        let hash = hasher.finish();
        // Two halves of one 64-bit hash, combined (Kirsch and Mitzenmacher) into the filter's probes.
        let (first, step) = (hash & 0xFFFF_FFFF, (hash >> 32) | 1);
        let mask = (1_u64 << KEY_FILTER_BITS_LOG2) - 1;
        let mut seen = true;
        for probe in 0..KEY_FILTER_HASHES {
            let bit = first.wrapping_add(probe.wrapping_mul(step)) & mask;
            // `bit` is under 2^26, so the word index is under the vector's 2^20 words.
            let word = &mut self.words[(bit >> 6) as usize];
            let flag = 1_u64 << (bit & 63);
            if *word & flag == 0 {
                seen = false;
                *word |= flag;
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger_view::KeyKind;

    fn key(row_type: &str, kind: KeyKind, id: &str) -> ReportKey {
        ReportKey {
            row_type: row_type.to_owned(),
            kind,
            key: id.to_owned(),
            file: "f.csv".to_owned(),
            line: 1,
        }
    }

    #[test]
    fn a_key_added_before_is_always_seen_and_row_type_and_kind_are_part_of_the_key() {
        let mut filter = KeyFilter::new();
        assert!(!filter.insert(&key("REFUND", KeyKind::RefundRequestId, "r-1")));
        assert!(filter.insert(&key("REFUND", KeyKind::RefundRequestId, "r-1")));
        assert!(!filter.insert(&key("REFUND_REVERSAL", KeyKind::RefundRequestId, "r-1")));
        assert!(!filter.insert(&key("REFUND", KeyKind::RefundId, "r-1")));
        assert!(filter.insert(&key("REFUND", KeyKind::RefundId, "r-1")));
    }

    #[test]
    fn a_million_distinct_keys_raise_few_false_alarms() {
        let mut filter = KeyFilter::new();
        let alarms = (0..1_000_000)
            .filter(|index| filter.insert(&key("REFUND", KeyKind::RefundRequestId, &format!("BIG-{index}"))))
            .count();
        assert!(alarms <= 10, "{alarms} false alarms");
        for index in (0..1_000_000).step_by(997) {
            assert!(filter.insert(&key("REFUND", KeyKind::RefundRequestId, &format!("BIG-{index}"))));
        }
    }
}
