//! The hash chain: each event's hash covers its whole envelope, its payload and the previous event's hash.
//!
//! Changing, removing, inserting or reordering any stored event changes every later hash, so `verify` can
//! recompute the chain from position 1 and name the first position whose stored hash differs. The functions
//! here are pure and public so that a verifier outside the store (the `verify` command, an auditor's script)
//! computes exactly what the store computed. The format is fixed by docs/adr/002-hash-chain.md; changing it
//! means a new format tag, never a silent edit.
//!
//! Canonical bytes of an event, in order (integers big-endian, `len` an 8-byte big-endian byte count):
//!
//! | field | encoding |
//! | --- | --- |
//! | format tag | the 31 ASCII bytes `refund-ledger/eventlog/event/v1` |
//! | position | u64 |
//! | stream | len, UTF-8 bytes |
//! | revision | u64 |
//! | event_id | 16 bytes (RFC 4122 byte order) |
//! | event_type | len, UTF-8 bytes |
//! | schema_version | u32 |
//! | recorded_at | i128, nanoseconds since the Unix epoch (UTC) |
//! | actor | len, UTF-8 bytes |
//! | payload | len, bytes |
//!
//! and `hash = SHA-256(prev_hash || canonical_bytes)` with `prev_hash` of position 1 = 32 zero bytes.
//!
//! A store without one global write lock (KurrentDB, [`LogLayout::SparseSealed`](crate::LogLayout)) does not
//! know an event's position or the log's previous hash when it appends, so it chains each stream instead
//! (docs/adr/008-kurrentdb-tamper-evidence.md): [`stream_canonical_bytes`] are the bytes above with the tag
//! `refund-ledger/eventlog/stream-event/v1` and without the position, and [`stream_event_hash`] links an event
//! to the previous event of its stream (32 zero bytes for revision 0). [`StreamChainVerifier`] checks such a
//! log; [`crate::seal`] chains its global order after the fact.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::event::RecordedEvent;
use crate::scan_batch::EventView;
use crate::stream::StreamName;

/// The `prev_hash` of the first event of a log: 32 zero bytes.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// Identifies version 1 of the canonical encoding; the first bytes of every encoded event.
pub const CANONICAL_FORMAT_TAG: &[u8] = b"refund-ledger/eventlog/event/v1";

/// Identifies version 1 of the per-stream encoding (no position); the first bytes of every such event.
pub const STREAM_CANONICAL_FORMAT_TAG: &[u8] = b"refund-ledger/eventlog/stream-event/v1";

/// The canonical bytes of `event` (every field except `prev_hash` and `hash`), as documented in this module.
pub fn canonical_bytes(event: &RecordedEvent) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(160 + event.payload.len());
    encode(&event.view(), |part| bytes.extend_from_slice(part));
    bytes
}

/// `SHA-256(prev_hash || canonical_bytes(event))`; ignores the event's own `prev_hash` and `hash` fields.
pub fn event_hash(prev_hash: &[u8; 32], event: &RecordedEvent) -> [u8; 32] {
    view_hash(prev_hash, &event.view())
}

/// [`event_hash`] of an event read as an [`EventView`].
pub fn view_hash(prev_hash: &[u8; 32], event: &EventView<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    // Feeding the parts straight into the hasher avoids copying the payload into a buffer first.
    encode(event, |part| hasher.update(part));
    hasher.finalize().into()
}

/// The per-stream canonical bytes of `event`: [`canonical_bytes`] under [`STREAM_CANONICAL_FORMAT_TAG`] and
/// without the position, which a sparse store learns only after the append.
pub fn stream_canonical_bytes(event: &RecordedEvent) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(160 + event.payload.len());
    encode_stream(&event.view(), |part| bytes.extend_from_slice(part));
    bytes
}

/// `SHA-256(prev_hash || stream_canonical_bytes(event))`, where `prev_hash` is the hash of the previous event
/// of the same stream (32 zero bytes for revision 0); ignores the event's own `prev_hash` and `hash`.
pub fn stream_event_hash(prev_hash: &[u8; 32], event: &RecordedEvent) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    encode_stream(&event.view(), |part| hasher.update(part));
    hasher.finalize().into()
}

/// Feeds the canonical encoding of `event` to `sink`, part by part.
fn encode(event: &EventView<'_>, mut sink: impl FnMut(&[u8])) {
    sink(CANONICAL_FORMAT_TAG);
    sink(&event.position.to_be_bytes());
    encode_fields(event, sink);
}

/// Feeds the per-stream encoding of `event` to `sink`, part by part.
fn encode_stream(event: &EventView<'_>, mut sink: impl FnMut(&[u8])) {
    sink(STREAM_CANONICAL_FORMAT_TAG);
    encode_fields(event, sink);
}

/// The fields after the position, shared by both encodings.
fn encode_fields(event: &EventView<'_>, mut sink: impl FnMut(&[u8])) {
    sized(&mut sink, event.stream.as_bytes());
    sink(&event.revision.to_be_bytes());
    sink(event.event_id.as_bytes());
    sized(&mut sink, event.event_type.as_bytes());
    sink(&event.schema_version.to_be_bytes());
    sink(&event.recorded_at.unix_timestamp_nanos().to_be_bytes());
    sized(&mut sink, event.actor.as_bytes());
    sized(&mut sink, event.payload);
}

/// A variable-length field: its byte count as u64, then the bytes, so field boundaries cannot shift.
fn sized(sink: &mut impl FnMut(&[u8]), bytes: &[u8]) {
    // usize -> u64 is lossless: Rust supports no platform with pointers wider than 64 bits.
    sink(&(bytes.len() as u64).to_be_bytes());
    sink(bytes);
}

/// Checks events read in position order against the chain, one at a time; the core of `verify`.
///
/// Start it at the genesis (`ChainVerifier::default()`) or after a trusted event, feed it every following event
/// in order, and it reports the first event whose position, link or hash is wrong as [`StoreError::Corrupt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainVerifier {
    next_position: u64,
    prev_hash: [u8; 32],
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            next_position: 1,
            prev_hash: GENESIS_HASH,
        }
    }
}

impl ChainVerifier {
    /// A verifier that trusts the event at `position` with `hash` and checks from `position + 1` on.
    pub fn after(position: u64, hash: [u8; 32]) -> Self {
        Self {
            next_position: position.saturating_add(1),
            prev_hash: hash,
        }
    }

    /// Checks that `event` is the next position, links to the previous hash and carries its own correct hash.
    pub fn check(&mut self, event: &RecordedEvent) -> Result<(), StoreError> {
        self.check_view(&event.view())
    }

    /// [`ChainVerifier::check`] of an event read as an [`EventView`].
    pub fn check_view(&mut self, event: &EventView<'_>) -> Result<(), StoreError> {
        if event.position != self.next_position {
            return Err(StoreError::corrupt(
                self.next_position,
                format!("expected position {}, found {}", self.next_position, event.position),
            ));
        }
        if *event.prev_hash != self.prev_hash {
            return Err(StoreError::corrupt(
                event.position,
                "prev_hash does not match the previous event's hash",
            ));
        }
        if view_hash(event.prev_hash, event) != *event.hash {
            return Err(StoreError::corrupt(
                event.position,
                "hash does not match the event's content",
            ));
        }
        self.next_position += 1;
        self.prev_hash = *event.hash;
        Ok(())
    }

    /// The position the next checked event must have.
    pub fn next_position(&self) -> u64 {
        self.next_position
    }
}

/// Checks a [`LogLayout::SparseSealed`](crate::LogLayout) log read in position order: positions strictly
/// increase, and every stream's revisions are gapless and its events chained by [`stream_event_hash`].
///
/// It catches a changed event (its hash no longer recomputes) and a removed or inserted one inside a stream
/// (the next event's revision or `prev_hash` no longer links); what it cannot see, a stream's removed tail or a
/// whole removed stream, is what [`crate::seal::SealVerifier`] is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamChainVerifier {
    last_position: u64,
    streams: HashMap<StreamName, StreamTip>,
}

/// The last checked event of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StreamTip {
    revision: u64,
    hash: [u8; 32],
}

impl StreamChainVerifier {
    /// Checks that `event` comes after the previous one, is the next revision of its stream, links to that
    /// stream's previous hash (the genesis hash for revision 0) and carries its own correct hash.
    pub fn check(&mut self, event: &RecordedEvent) -> Result<(), StoreError> {
        if event.position <= self.last_position {
            return Err(StoreError::corrupt(
                event.position,
                format!("position {} does not follow {}", event.position, self.last_position),
            ));
        }
        let tip = self.streams.get(&event.stream).copied();
        let (expected_revision, expected_prev) =
            tip.map_or((0, GENESIS_HASH), |tip| (tip.revision.saturating_add(1), tip.hash));
        if event.revision != expected_revision {
            return Err(StoreError::corrupt(
                event.position,
                format!(
                    "stream {}: revision {} where {expected_revision} was due",
                    event.stream, event.revision
                ),
            ));
        }
        if event.prev_hash != expected_prev {
            return Err(StoreError::corrupt(
                event.position,
                format!(
                    "stream {}: prev_hash does not match the stream's previous event",
                    event.stream
                ),
            ));
        }
        if stream_event_hash(&event.prev_hash, event) != event.hash {
            return Err(StoreError::corrupt(
                event.position,
                "hash does not match the event's content",
            ));
        }
        self.last_position = event.position;
        self.streams.insert(
            event.stream.clone(),
            StreamTip {
                revision: event.revision,
                hash: event.hash,
            },
        );
        Ok(())
    }

    /// Distinct streams checked so far.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// The position of the last checked event (0 before the first).
    pub fn last_position(&self) -> u64 {
        self.last_position
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;
    use crate::stream::StreamName;

    #[test]
    fn an_empty_log_s_head_carries_the_genesis_hash() {
        assert_eq!(crate::event::Head::EMPTY.hash, GENESIS_HASH);
    }

    fn sample() -> RecordedEvent {
        RecordedEvent {
            position: 1,
            stream: StreamName::parse("payment-1").unwrap(),
            revision: 0,
            event_id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            event_type: "PaymentRecorded".to_owned(),
            schema_version: 1,
            payload: br#"{"a":1}"#.to_vec(),
            actor: "worker".to_owned(),
            recorded_at: OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_000).unwrap(),
            prev_hash: GENESIS_HASH,
            hash: [0; 32],
        }
    }

    #[test]
    fn canonical_bytes_follow_the_documented_layout() {
        let event = sample();
        let mut expected = Vec::new();
        expected.extend_from_slice(b"refund-ledger/eventlog/event/v1");
        expected.extend_from_slice(&1_u64.to_be_bytes());
        expected.extend_from_slice(&9_u64.to_be_bytes());
        expected.extend_from_slice(b"payment-1");
        expected.extend_from_slice(&0_u64.to_be_bytes());
        expected.extend_from_slice(&[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        expected.extend_from_slice(&[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        expected.extend_from_slice(&15_u64.to_be_bytes());
        expected.extend_from_slice(b"PaymentRecorded");
        expected.extend_from_slice(&1_u32.to_be_bytes());
        expected.extend_from_slice(&1_700_000_000_123_456_000_i128.to_be_bytes());
        expected.extend_from_slice(&6_u64.to_be_bytes());
        expected.extend_from_slice(b"worker");
        expected.extend_from_slice(&7_u64.to_be_bytes());
        expected.extend_from_slice(br#"{"a":1}"#);
        assert_eq!(canonical_bytes(&event), expected);
    }

    #[test]
    fn hash_is_sha256_of_prev_hash_then_canonical_bytes() {
        let event = sample();
        let prev = [7_u8; 32];
        let mut input = prev.to_vec();
        input.extend_from_slice(&canonical_bytes(&event));
        let expected: [u8; 32] = Sha256::digest(&input).into();
        assert_eq!(event_hash(&prev, &event), expected);
        assert_ne!(
            event_hash(&GENESIS_HASH, &event),
            expected,
            "the previous hash is part of the input"
        );
    }

    #[test]
    fn pinned_hash_of_the_sample_event() {
        // Pins format v1: if this changes, stored chains no longer verify. Change the format tag instead.
        let hash = event_hash(&GENESIS_HASH, &sample());
        let hex: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(hex, PINNED_SAMPLE_HASH_HEX);
    }

    // Computed independently from the documented layout (Python hashlib), not copied from this code's output.
    const PINNED_SAMPLE_HASH_HEX: &str = "ccb3ae04e8444e4b592044f33cc69a5b03d9ded8818143b96c9487ae576ae75c";

    #[test]
    fn verifier_accepts_a_chain_and_names_the_first_tampered_position() {
        let mut events = Vec::new();
        let mut prev = GENESIS_HASH;
        for position in 1..=3 {
            let mut event = sample();
            event.position = position;
            event.revision = position - 1;
            event.prev_hash = prev;
            event.hash = event_hash(&prev, &event);
            prev = event.hash;
            events.push(event);
        }
        let mut verifier = ChainVerifier::default();
        for event in &events {
            verifier.check(event).unwrap();
        }
        assert_eq!(verifier.next_position(), 4);

        events[1].payload = br#"{"a":2}"#.to_vec();
        let mut verifier = ChainVerifier::default();
        verifier.check(&events[0]).unwrap();
        assert!(matches!(
            verifier.check(&events[1]),
            Err(StoreError::Corrupt { position: 2, .. })
        ));

        let mut verifier = ChainVerifier::default();
        verifier.check(&events[0]).unwrap();
        assert!(
            matches!(verifier.check(&events[2]), Err(StoreError::Corrupt { position: 2, .. })),
            "a removed event"
        );
    }

    #[test]
    fn stream_encoding_is_the_v1_fields_without_the_position_under_its_own_tag() {
        let event = sample();
        let mut expected = STREAM_CANONICAL_FORMAT_TAG.to_vec();
        expected.extend_from_slice(&canonical_bytes(&event)[CANONICAL_FORMAT_TAG.len() + 8..]);
        assert_eq!(stream_canonical_bytes(&event), expected);
        let mut moved = event.clone();
        moved.position = 99;
        assert_eq!(
            stream_event_hash(&GENESIS_HASH, &moved),
            stream_event_hash(&GENESIS_HASH, &event),
            "the position is not hashed: a sparse store learns it only after the append"
        );
        assert_ne!(
            stream_event_hash(&GENESIS_HASH, &event),
            event_hash(&GENESIS_HASH, &event)
        );
    }

    #[test]
    fn pinned_stream_hashes_of_the_sample_event() {
        // Computed independently from the documented layout (Python hashlib), not copied from this code's output.
        let hex = |hash: [u8; 32]| hash.iter().map(|byte| format!("{byte:02x}")).collect::<String>();
        assert_eq!(
            hex(stream_event_hash(&GENESIS_HASH, &sample())),
            "ca5ce2f16cd423ac6b77ee9a351be09bc7b3bc5d063a50167a337d978a061d89"
        );
        assert_eq!(
            hex(stream_event_hash(&[7; 32], &sample())),
            "c021bc38ea50bd3891629c7b37ba6f1498659bc94240a585a46e625f11e3f313"
        );
    }

    /// Three streams interleaved at sparse positions, each chained on its own.
    fn stream_chained(streams: &[&str]) -> Vec<RecordedEvent> {
        let mut tips: std::collections::HashMap<&str, (u64, [u8; 32])> = std::collections::HashMap::new();
        let mut events = Vec::new();
        for (index, stream) in (0_u64..).zip(streams) {
            let (revision, prev) = tips
                .get(stream)
                .map_or((0, GENESIS_HASH), |(revision, hash)| (revision + 1, *hash));
            let mut event = sample();
            event.position = 1_000 + index * 137;
            event.stream = StreamName::parse(*stream).unwrap();
            event.revision = revision;
            event.event_id = Uuid::from_u128(u128::from(index));
            event.prev_hash = prev;
            event.hash = stream_event_hash(&prev, &event);
            tips.insert(stream, (revision, event.hash));
            events.push(event);
        }
        events
    }

    fn first_stream_chain_failure(events: &[RecordedEvent]) -> Option<u64> {
        let mut verifier = StreamChainVerifier::default();
        events.iter().find_map(|event| match verifier.check(event) {
            Err(StoreError::Corrupt { position, .. }) => Some(position),
            Err(other) => panic!("{other:?}"),
            Ok(()) => None,
        })
    }

    #[test]
    fn stream_chain_verifier_accepts_sparse_interleaved_streams() {
        let events = stream_chained(&["payment-a", "payment-b", "payment-a", "payment-c", "payment-b"]);
        let mut verifier = StreamChainVerifier::default();
        for event in &events {
            verifier.check(event).unwrap();
        }
        assert_eq!(
            (verifier.stream_count(), verifier.last_position()),
            (3, events[4].position)
        );
    }

    #[test]
    fn stream_chain_verifier_names_edits_removals_and_disorder() {
        let events = stream_chained(&["payment-a", "payment-b", "payment-a", "payment-a"]);
        let mut edited = events.clone();
        edited[2].payload = b"{}".to_vec();
        assert_eq!(first_stream_chain_failure(&edited), Some(events[2].position));

        let mut removed = events.clone();
        removed.remove(2);
        assert_eq!(
            first_stream_chain_failure(&removed),
            Some(events[3].position),
            "the next event of the stream tells"
        );

        let mut rechained = removed.clone();
        rechained[2].revision = 1;
        rechained[2].prev_hash = events[0].hash;
        rechained[2].hash = stream_event_hash(&events[0].hash, &rechained[2]);
        assert_eq!(
            first_stream_chain_failure(&rechained),
            None,
            "a recomputed stream tail verifies: only a seal or a digest shows it"
        );

        let mut swapped = events.clone();
        swapped.swap(0, 1);
        assert_eq!(first_stream_chain_failure(&swapped), Some(events[0].position));
        let mut truncated_head = events.clone();
        truncated_head.remove(0);
        assert_eq!(first_stream_chain_failure(&truncated_head), Some(events[2].position));
    }

    fn any_event() -> impl Strategy<Value = RecordedEvent> {
        (
            (1_u64..4, 0_u64..4, 0_u128..4, 0_u32..3, -2_i64..2),
            (
                "[a-c-]{1,3}",
                "[a-c]{1,3}",
                "[a-c]{1,3}",
                proptest::collection::vec(0_u8..3, 0..4),
            ),
        )
            .prop_map(
                |((position, revision, id, schema_version, nanos), (stream, event_type, actor, payload))| {
                    RecordedEvent {
                        position,
                        stream: StreamName::parse(stream).unwrap(),
                        revision,
                        event_id: Uuid::from_u128(id),
                        event_type,
                        schema_version,
                        payload,
                        actor,
                        recorded_at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).unwrap(),
                        prev_hash: GENESIS_HASH,
                        hash: [0; 32],
                    }
                },
            )
    }

    proptest! {
        // Small alphabets make distinct events that share prefixes and shifted boundaries likely, which is what
        // the length prefixes must keep apart.
        #[test]
        fn different_events_encode_differently(left in any_event(), right in any_event()) {
            prop_assert_eq!(left == right, canonical_bytes(&left) == canonical_bytes(&right));
        }
    }
}
