//! What goes into the log and what comes out of it, and the limits every append is checked against.
//!
//! The store treats a payload as opaque bytes and stores them verbatim (the hash covers the exact bytes), so
//! the only checks here are on sizes and on the envelope fields that end up in logs and indexes.

use std::collections::HashSet;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::StoreError;
use crate::stream::StreamName;

/// Most events one append may carry.
pub const BATCH_EVENTS_MAX: usize = 1_000;

/// Largest payload of one event, in bytes (1 MiB).
pub const PAYLOAD_BYTES_MAX: usize = 1024 * 1024;

/// Largest sum of payload sizes in one append, in bytes (16 MiB); bounds the memory a queued append holds.
pub const BATCH_PAYLOAD_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Longest `event_type`, in bytes.
pub const EVENT_TYPE_BYTES_MAX: usize = 200;

/// Longest `actor`, in bytes.
pub const ACTOR_BYTES_MAX: usize = 200;

/// Most events one `read_stream` or `read_all` call returns, whatever `limit` asks for.
pub const READ_EVENTS_MAX: usize = 10_000;

/// An event to append: the caller's part of the envelope plus the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Unique across the whole log; a retried append reuses its ids so the store can refuse the duplicate.
    pub event_id: Uuid,
    /// The event's type name, e.g. `RefundRequested` (1..=[`EVENT_TYPE_BYTES_MAX`] bytes, no control characters).
    pub event_type: String,
    /// Version of the payload's schema, for upcasting old events.
    pub schema_version: u32,
    /// The event body, JSON bytes by convention, stored and hashed verbatim (at most [`PAYLOAD_BYTES_MAX`]).
    pub payload: Vec<u8>,
    /// Who caused the event: an API key name, `apo-notify`, `worker` (1..=[`ACTOR_BYTES_MAX`] bytes).
    pub actor: String,
}

/// A stored event with the envelope the store stamped on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Global position: increasing in commit order; the first event is 1 and (SQLite, PostgreSQL) there are no gaps.
    pub position: u64,
    /// The stream the event belongs to.
    pub stream: StreamName,
    /// Revision in its stream: the stream's first event is 0, and revisions are dense.
    pub revision: u64,
    /// The caller-chosen unique id.
    pub event_id: Uuid,
    /// The event's type name.
    pub event_type: String,
    /// Version of the payload's schema.
    pub schema_version: u32,
    /// The payload bytes exactly as appended.
    pub payload: Vec<u8>,
    /// Who caused the event.
    pub actor: String,
    /// When the store committed it, in UTC, truncated to microseconds; never earlier than the previous event's.
    pub recorded_at: OffsetDateTime,
    /// The previous event's `hash` (32 zero bytes for position 1); on a
    /// [`LogLayout::SparseSealed`](crate::LogLayout) store, the previous event of this stream's (32 zero bytes for
    /// revision 0).
    pub prev_hash: [u8; 32],
    /// `chain::event_hash(prev_hash, self)`; on a sparse store `chain::stream_event_hash(prev_hash, self)`.
    pub hash: [u8; 32],
}

/// What a successful append produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The stream's revision after the append: pass it as `ExpectedRevision::Exact` to append next.
    pub last_revision: u64,
    /// Global position of the batch's first event.
    pub first_position: u64,
    /// Global position of the batch's last event.
    pub last_position: u64,
    /// How many appends (this one included) the store committed in the same transaction: the size of its group
    /// commit (ADR 001); 1 on a backend that commits each append alone.
    pub group_appends: usize,
}

/// The end of the log: its last committed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Position of the last event; 0 for an empty log.
    pub position: u64,
    /// Hash of the last event; the genesis hash (32 zero bytes) for an empty log.
    pub hash: [u8; 32],
    /// When the last event was recorded; `None` for an empty log.
    pub recorded_at: Option<OffsetDateTime>,
}

impl Head {
    /// The head of an empty log.
    pub const EMPTY: Head = Head {
        position: 0,
        // The genesis hash (`chain::GENESIS_HASH`, checked by its test): the chain starts from 32 zero bytes.
        hash: [0; 32],
        recorded_at: None,
    };
}

/// Checks an append before it is queued, so garbage never reaches a writer or a transaction.
pub(crate) fn validate_append(stream: &StreamName, events: &[NewEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Err(StoreError::EmptyBatch { stream: stream.clone() });
    }
    if events.len() > BATCH_EVENTS_MAX {
        return Err(StoreError::BatchTooLarge {
            stream: stream.clone(),
            count: events.len(),
            max: BATCH_EVENTS_MAX,
        });
    }
    let mut payload_bytes = 0_usize;
    let mut event_ids = HashSet::with_capacity(events.len());
    for event in events {
        validate_event(event)?;
        payload_bytes += event.payload.len();
        if !event_ids.insert(event.event_id) {
            return Err(StoreError::DuplicateEventId {
                event_id: event.event_id,
            });
        }
    }
    if payload_bytes > BATCH_PAYLOAD_BYTES_MAX {
        return Err(StoreError::BatchPayloadTooLarge {
            stream: stream.clone(),
            bytes: payload_bytes,
            max: BATCH_PAYLOAD_BYTES_MAX,
        });
    }
    Ok(())
}

fn validate_event(event: &NewEvent) -> Result<(), StoreError> {
    let invalid = |field, reason| StoreError::InvalidEventField {
        event_id: event.event_id,
        field,
        reason,
    };
    if let Some(reason) = text_field_problem(&event.event_type, EVENT_TYPE_BYTES_MAX) {
        return Err(invalid("event_type", reason));
    }
    if let Some(reason) = text_field_problem(&event.actor, ACTOR_BYTES_MAX) {
        return Err(invalid("actor", reason));
    }
    if event.payload.len() > PAYLOAD_BYTES_MAX {
        return Err(StoreError::PayloadTooLarge {
            event_id: event.event_id,
            size: event.payload.len(),
            max: PAYLOAD_BYTES_MAX,
        });
    }
    Ok(())
}

fn text_field_problem(value: &str, bytes_max: usize) -> Option<&'static str> {
    if value.is_empty() {
        Some("empty")
    } else if value.len() > bytes_max {
        Some("too long")
    } else if value.chars().any(char::is_control) {
        Some("contains control characters")
    } else {
        None
    }
}

/// Checks that a `read_all` page starts at `from_position` (0 reads as 1) and has no gap; a store that breaks
/// gap-free ordering is reported, never papered over.
pub(crate) fn check_positions_dense(from_position: u64, events: &[RecordedEvent]) -> Result<(), StoreError> {
    let first = from_position.max(1);
    for (offset, event) in (0_u64..).zip(events) {
        let expected = first.saturating_add(offset);
        if event.position != expected {
            return Err(StoreError::corrupt(
                expected,
                format!("read position {} where {expected} was due", event.position),
            ));
        }
    }
    Ok(())
}

/// Checks that a `read_all` page of a store with sparse positions starts at or after `from_position` and
/// strictly increases; holes are allowed, going back or standing still is corruption.
pub(crate) fn check_positions_increasing(from_position: u64, events: &[RecordedEvent]) -> Result<(), StoreError> {
    let mut floor = from_position.max(1);
    for event in events {
        if event.position < floor {
            return Err(StoreError::corrupt(
                event.position,
                format!("read position {} where at least {floor} was due", event.position),
            ));
        }
        floor = event.position.saturating_add(1);
    }
    Ok(())
}

/// Checks that a `read_stream` page starts at `from_revision` and has no gap in revisions.
pub(crate) fn check_revisions_dense(from_revision: u64, events: &[RecordedEvent]) -> Result<(), StoreError> {
    for (offset, event) in (0_u64..).zip(events) {
        let expected = from_revision.saturating_add(offset);
        if event.revision != expected {
            return Err(StoreError::corrupt(
                event.position,
                format!(
                    "stream {}: read revision {} where {expected} was due",
                    event.stream, event.revision
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, actor: &str, payload_bytes: usize) -> NewEvent {
        NewEvent {
            event_id: Uuid::new_v4(),
            event_type: event_type.to_owned(),
            schema_version: 1,
            payload: vec![b'x'; payload_bytes],
            actor: actor.to_owned(),
        }
    }

    fn stream() -> StreamName {
        StreamName::parse("payment-1").unwrap()
    }

    #[test]
    fn a_valid_batch_passes() {
        let events = vec![
            event("RefundRequested", "api-key-1", PAYLOAD_BYTES_MAX),
            event("A", "worker", 0),
        ];
        assert!(validate_append(&stream(), &events).is_ok());
    }

    #[test]
    fn refuses_bad_envelope_fields() {
        let cases = [
            (event("", "worker", 1), "event_type", "empty"),
            (
                event(&"t".repeat(EVENT_TYPE_BYTES_MAX + 1), "worker", 1),
                "event_type",
                "too long",
            ),
            (
                event("Refund\nRequested", "worker", 1),
                "event_type",
                "contains control characters",
            ),
            (event("RefundRequested", "", 1), "actor", "empty"),
            (
                event("RefundRequested", &"a".repeat(ACTOR_BYTES_MAX + 1), 1),
                "actor",
                "too long",
            ),
        ];
        for (bad, expected_field, expected_reason) in cases {
            match validate_append(&stream(), &[bad]) {
                Err(StoreError::InvalidEventField { field, reason, .. }) => {
                    assert_eq!((field, reason), (expected_field, expected_reason));
                }
                other => panic!("expected {expected_field} {expected_reason}, got {other:?}"),
            }
        }
    }

    #[test]
    fn refuses_bad_batches() {
        assert!(matches!(
            validate_append(&stream(), &[]),
            Err(StoreError::EmptyBatch { .. })
        ));
        let too_many: Vec<_> = (0..=BATCH_EVENTS_MAX).map(|_| event("A", "worker", 0)).collect();
        assert!(matches!(
            validate_append(&stream(), &too_many),
            Err(StoreError::BatchTooLarge { count, max: BATCH_EVENTS_MAX, .. }) if count == BATCH_EVENTS_MAX + 1
        ));
        let oversized = event("A", "worker", PAYLOAD_BYTES_MAX + 1);
        let oversized_id = oversized.event_id;
        assert!(matches!(
            validate_append(&stream(), &[oversized]),
            Err(StoreError::PayloadTooLarge { event_id, .. }) if event_id == oversized_id
        ));
        let heavy: Vec<_> = (0..17).map(|_| event("A", "worker", PAYLOAD_BYTES_MAX)).collect();
        assert!(matches!(
            validate_append(&stream(), &heavy),
            Err(StoreError::BatchPayloadTooLarge { .. })
        ));
        let first = event("A", "worker", 0);
        let twice = vec![first.clone(), first.clone()];
        assert!(matches!(
            validate_append(&stream(), &twice),
            Err(StoreError::DuplicateEventId { event_id }) if event_id == first.event_id
        ));
    }
}
