//! How the ledger's events, names, revisions, positions and errors map onto KurrentDB's (docs/adr/006).
//!
//! - A stream `S` is `{namespace}.S` on the server; the store's own streams are `{namespace}.$..` (seals) and
//!   `{namespace}$claim-{eventId}` (claims). `read_all` filters `$all` on the server with
//!   `^{namespace}\.[^$]`, so it returns the ledger's events and nothing else.
//! - The payload is the event's data, stored verbatim (content type JSON when it parses as JSON); the type is
//!   KurrentDB's event type; the rest of the envelope (event id, schema version, actor, `recorded_at`, the
//!   stream chain) is the event's custom metadata, one JSON object.
//! - KurrentDB's own event id is fresh for every attempt: the server treats a repeated id at the same expected
//!   revision as an idempotent retry and answers success, which would let two racing appends of one event
//!   both succeed. Uniqueness of the ledger's ids is the claims' business (docs/adr/007).
//! - A position is the event's commit position in `$all`, which for an append (an implicit transaction)
//!   equals its prepare position, the record's offset in the log: increasing, not dense.

use kurrentdb::{EventData, Position, StreamPosition, SubscriptionFilter};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::RecordedEvent;
use crate::stream::StreamName;

/// The event type of a claim event.
pub(crate) const CLAIM_EVENT_TYPE: &str = "EventIdClaimed";

/// Names the ledger's streams on the server, and reads them back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Namespace(String);

impl Namespace {
    /// A validated namespace (see the URL's rules).
    pub(crate) fn new(namespace: &str) -> Namespace {
        Namespace(namespace.to_owned())
    }

    /// `{namespace}.{stream}`.
    pub(crate) fn server_stream(&self, stream: &StreamName) -> String {
        format!("{}.{}", self.0, stream.as_str())
    }

    /// The ledger's stream of a server stream name, `None` for anything outside the namespace.
    pub(crate) fn ledger_stream(&self, server_stream: &str) -> Option<StreamName> {
        let name = server_stream.strip_prefix(&self.0)?.strip_prefix('.')?;
        StreamName::parse(name).ok()
    }

    /// The claim stream of a ledger event id: `{namespace}$claim-{eventId}`.
    pub(crate) fn claim_stream(&self, event_id: Uuid) -> String {
        format!("{}$claim-{}", self.0, event_id.as_hyphenated())
    }

    /// The server-side filter of `read_all`: the namespace's streams except the store's own `$` streams.
    pub(crate) fn read_all_regex(&self) -> String {
        format!("^{}\\.[^$]", self.0)
    }

    /// The filter of `read_all` and `head`.
    pub(crate) fn read_all_filter(&self) -> SubscriptionFilter {
        SubscriptionFilter::on_stream_name().regex(self.read_all_regex())
    }
}

/// The custom metadata of every ledger event on the server.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EventMetadata {
    event_id: Uuid,
    schema_version: u32,
    actor: String,
    /// RFC 3339 with microseconds, UTC.
    recorded_at: String,
    prev_hash: String,
    hash: String,
}

/// The event as the server stores it, under a fresh server-side id (`attempt_id`).
pub(crate) fn to_event_data(event: &RecordedEvent, attempt_id: Uuid) -> EventData {
    let data = match raw_json(&event.payload) {
        // Serializing a raw value writes its bytes as they are.
        Some(raw) => EventData::json(&event.event_type, &raw).unwrap_or_else(|_| binary(event)),
        None => binary(event),
    };
    data.id(attempt_id).metadata(envelope_metadata(event).into())
}

/// The custom metadata that carries the rest of the envelope.
pub(crate) fn envelope_metadata(event: &RecordedEvent) -> Vec<u8> {
    let metadata = EventMetadata {
        event_id: event.event_id,
        schema_version: event.schema_version,
        actor: event.actor.clone(),
        recorded_at: format_time(event.recorded_at),
        prev_hash: hex::encode(event.prev_hash),
        hash: hex::encode(event.hash),
    };
    // A struct of strings and integers always serializes.
    serde_json::to_vec(&metadata).unwrap_or_default()
}

fn binary(event: &RecordedEvent) -> EventData {
    EventData::binary(&event.event_type, bytes::Bytes::copy_from_slice(&event.payload))
}

/// The payload as a raw JSON value when it is JSON (so the server labels it `application/json`), `None`
/// otherwise. `EventData::json` serializes what it is given, and a raw value serializes to exactly its own
/// bytes: the payload is stored verbatim either way, as the hash requires.
pub(crate) fn raw_json(payload: &[u8]) -> Option<&serde_json::value::RawValue> {
    let raw = serde_json::from_slice::<&serde_json::value::RawValue>(payload).ok()?;
    // A raw value leaves out whitespace around it; such a payload is stored as binary to keep its bytes.
    (raw.get().len() == payload.len()).then_some(raw)
}

/// The parts of a server event the mapping reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerEvent<'a> {
    /// The server stream name.
    pub(crate) stream: &'a str,
    /// The stream revision.
    pub(crate) revision: u64,
    /// The event type.
    pub(crate) event_type: &'a str,
    /// The data, as stored.
    pub(crate) data: &'a [u8],
    /// The custom metadata.
    pub(crate) metadata: &'a [u8],
    /// The `$all` position.
    pub(crate) position: Position,
}

impl<'a> ServerEvent<'a> {
    /// The parts of an event the client read.
    pub(crate) fn of(event: &'a kurrentdb::RecordedEvent) -> ServerEvent<'a> {
        ServerEvent {
            stream: event.stream_id(),
            revision: event.revision,
            event_type: &event.event_type,
            data: &event.data,
            metadata: &event.custom_metadata,
            position: event.position,
        }
    }
}

/// A ledger event read from the server.
pub(crate) fn from_server(
    namespace: &Namespace,
    event: &kurrentdb::RecordedEvent,
) -> Result<RecordedEvent, StoreError> {
    from_parts(namespace, ServerEvent::of(event))
}

/// A ledger event from the parts of a server event.
///
/// Anything that is not one of the ledger's events (no or foreign metadata, a stream outside the namespace,
/// an event of an explicit transaction) is [`StoreError::Corrupt`] at its position: the namespace holds only
/// what this store wrote.
pub(crate) fn from_parts(namespace: &Namespace, event: ServerEvent<'_>) -> Result<RecordedEvent, StoreError> {
    let position = position_of(event.position)?;
    let corrupt = |reason: String| StoreError::corrupt(position, reason);
    let stream = namespace
        .ledger_stream(event.stream)
        .ok_or_else(|| corrupt(format!("stream {:?} is not in the namespace", event.stream)))?;
    let metadata: EventMetadata = serde_json::from_slice(event.metadata)
        .map_err(|error| corrupt(format!("metadata is not the ledger's: {error}")))?;
    let recorded_at = OffsetDateTime::parse(&metadata.recorded_at, &Rfc3339)
        .map_err(|_| corrupt("metadata recordedAt is not RFC 3339".to_owned()))?;
    let hash = |text: &str, field: &str| -> Result<[u8; 32], StoreError> {
        hex::decode(text)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| corrupt(format!("metadata {field} is not 64 hex digits")))
    };
    Ok(RecordedEvent {
        position,
        stream,
        revision: event.revision,
        event_id: metadata.event_id,
        event_type: event.event_type.to_owned(),
        schema_version: metadata.schema_version,
        payload: event.data.to_vec(),
        actor: metadata.actor,
        recorded_at,
        prev_hash: hash(&metadata.prev_hash, "prevHash")?,
        hash: hash(&metadata.hash, "hash")?,
    })
}

/// Our position of a server position: its commit position, which an append's events share with their prepare
/// position. A position the server did not fill (a stream read on a server older than 22.10 reports none) or
/// one of an explicit transaction is refused.
pub(crate) fn position_of(position: Position) -> Result<u64, StoreError> {
    if position.commit == u64::MAX || position.commit == 0 {
        return Err(StoreError::backend(
            "map a kurrentdb position",
            MappingError("the server reported no $all position; KurrentDB 22.10 or later reports it"),
        ));
    }
    if position.commit != position.prepare {
        return Err(StoreError::corrupt(
            position.commit,
            format!(
                "commit position {} differs from prepare position {}: written in an explicit transaction, not by \
                 this store",
                position.commit, position.prepare
            ),
        ));
    }
    Ok(position.commit)
}

/// Where a forward `read_all` from `from_position` starts on the server, and the positions to drop.
///
/// The server can only start at a record's first byte. 0 and 1 are the start. A caller reading on passes the
/// last position it read plus one, so `from - 1` is a record (the event it read, dropped again); a caller
/// passing an event's own position gets [`read_all_retry_start`] when the first start is refused.
pub(crate) fn read_all_start(from_position: u64) -> StreamPosition<Position> {
    if from_position <= 1 {
        return StreamPosition::Start;
    }
    let record = from_position - 1;
    StreamPosition::Position(Position {
        commit: record,
        prepare: record,
    })
}

/// The second start of a forward `read_all`: `from_position` itself, for a caller that passed an event's own
/// position.
pub(crate) fn read_all_retry_start(from_position: u64) -> StreamPosition<Position> {
    StreamPosition::Position(Position {
        commit: from_position,
        prepare: from_position,
    })
}

/// Formats a `recorded_at` for the metadata: RFC 3339, which keeps every digit of the microseconds.
fn format_time(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).unwrap_or_default()
}

/// A mapping failure that is not the driver's.
#[derive(Debug)]
pub(crate) struct MappingError(pub(crate) &'static str);

impl std::fmt::Display for MappingError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.0)
    }
}

impl std::error::Error for MappingError {}

/// The driver's error as a [`StoreError::Backend`] of `operation` (a wrong expected version is the caller's
/// business and never reaches here).
pub(crate) fn backend_error(operation: &'static str, error: kurrentdb::Error) -> StoreError {
    StoreError::backend(operation, error)
}

/// The actual revision a wrong-expected-version answer reports, as the trait's `Conflict` carries it.
pub(crate) fn actual_revision(current: kurrentdb::CurrentRevision) -> Option<u64> {
    match current {
        kurrentdb::CurrentRevision::Current(revision) => Some(revision),
        kurrentdb::CurrentRevision::NoStream => None,
    }
}

/// The server's idea of an expected revision.
pub(crate) fn stream_state(last_revision: Option<u64>) -> kurrentdb::StreamState {
    match last_revision {
        Some(revision) => kurrentdb::StreamState::StreamRevision(revision),
        None => kurrentdb::StreamState::NoStream,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::chain::GENESIS_HASH;
    use crate::event::NewEvent;
    use crate::sparse::chain_append;

    fn namespace() -> Namespace {
        Namespace::new("ledger")
    }

    fn recorded(payload: &[u8]) -> RecordedEvent {
        let stream = StreamName::parse("payment-P1").unwrap();
        let now = OffsetDateTime::from_unix_timestamp_nanos(1_767_225_600_123_456_789).unwrap();
        let event = NewEvent {
            event_id: Uuid::from_u128(42),
            event_type: "RefundRequested".to_owned(),
            schema_version: 2,
            payload: payload.to_vec(),
            actor: "ops".to_owned(),
        };
        let mut events = chain_append(&stream, None, now, vec![event]);
        let mut event = events.remove(0);
        event.position = 7_340;
        event
    }

    fn as_server<'a>(event: &'a RecordedEvent, stream: &'a str, metadata: &'a [u8]) -> ServerEvent<'a> {
        ServerEvent {
            stream,
            revision: event.revision,
            event_type: &event.event_type,
            data: &event.payload,
            metadata,
            position: Position {
                commit: event.position,
                prepare: event.position,
            },
        }
    }

    #[test]
    fn names_map_into_the_namespace_and_back() {
        let namespace = namespace();
        let stream = StreamName::parse("payment-P1").unwrap();
        assert_eq!(namespace.server_stream(&stream), "ledger.payment-P1");
        assert_eq!(namespace.ledger_stream("ledger.payment-P1"), Some(stream));
        assert_eq!(namespace.ledger_stream("ledgerx.payment-P1"), None);
        assert_eq!(namespace.ledger_stream("other.payment-P1"), None);
        assert_eq!(
            namespace.claim_stream(Uuid::from_u128(1)),
            "ledger$claim-00000000-0000-0000-0000-000000000001"
        );
        assert_eq!(namespace.read_all_regex(), "^ledger\\.[^$]");
    }

    #[test]
    fn the_envelope_round_trips_exactly() {
        let event = recorded(br#"{"refundRequestId":"R1","refundAmount":{"currency":"USD","value":"1000"}}"#);
        let metadata = envelope_metadata(&event);
        let back = from_parts(&namespace(), as_server(&event, "ledger.payment-P1", &metadata)).unwrap();
        assert_eq!(back, event, "every field, the microseconds of recorded_at included");
        assert_eq!(back.prev_hash, GENESIS_HASH);
        let metadata: serde_json::Value = serde_json::from_slice(&metadata).unwrap();
        assert_eq!(metadata["recordedAt"], "2026-01-01T00:00:00.123456Z");
        assert_eq!(metadata["eventId"], "00000000-0000-0000-0000-00000000002a");
    }

    #[test]
    fn foreign_events_are_corrupt_at_their_position() {
        let event = recorded(b"{}");
        let metadata = envelope_metadata(&event);
        for (stream, metadata, expected) in [
            ("other.payment-P1", metadata.as_slice(), "not in the namespace"),
            ("ledger.payment-P1", b"".as_slice(), "metadata is not the ledger's"),
            (
                "ledger.payment-P1",
                br#"{"eventId":"x"}"#.as_slice(),
                "metadata is not the ledger's",
            ),
        ] {
            match from_parts(&namespace(), as_server(&event, stream, metadata)) {
                Err(StoreError::Corrupt {
                    position: 7_340,
                    reason,
                }) => assert!(reason.contains(expected), "{reason}"),
                other => panic!("{stream}: {other:?}"),
            }
        }
        let mut bad_hash: serde_json::Value = serde_json::from_slice(&metadata).unwrap();
        bad_hash["hash"] = "abc".into();
        let bad_hash = serde_json::to_vec(&bad_hash).unwrap();
        assert!(matches!(
            from_parts(&namespace(), as_server(&event, "ledger.payment-P1", &bad_hash)),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn positions_are_commit_positions_of_implicit_transactions() {
        let at = |commit, prepare| Position { commit, prepare };
        assert_eq!(position_of(at(7_340, 7_340)).unwrap(), 7_340);
        assert!(matches!(
            position_of(at(9_000, 7_340)),
            Err(StoreError::Corrupt { position: 9_000, .. })
        ));
        assert!(matches!(
            position_of(at(u64::MAX, u64::MAX)),
            Err(StoreError::Backend { .. })
        ));
        assert!(matches!(position_of(at(0, 0)), Err(StoreError::Backend { .. })));
        assert_eq!(read_all_start(0), StreamPosition::Start);
        assert_eq!(read_all_start(1), StreamPosition::Start);
        assert_eq!(read_all_start(7_341), StreamPosition::Position(at(7_340, 7_340)));
        assert_eq!(read_all_retry_start(7_340), StreamPosition::Position(at(7_340, 7_340)));
    }

    #[test]
    fn revisions_and_conflicts_map_both_ways() {
        assert_eq!(stream_state(None), kurrentdb::StreamState::NoStream);
        assert_eq!(stream_state(Some(4)), kurrentdb::StreamState::StreamRevision(4));
        assert_eq!(actual_revision(kurrentdb::CurrentRevision::Current(4)), Some(4));
        assert_eq!(actual_revision(kurrentdb::CurrentRevision::NoStream), None);
        let error = backend_error("append", kurrentdb::Error::ConnectionClosed);
        assert!(
            matches!(
                error,
                StoreError::Backend {
                    operation: "append",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn payloads_that_are_not_exactly_json_stay_binary() {
        assert!(raw_json(br#"{"a":1}"#).is_some());
        assert!(raw_json(br#" {"a":1}"#).is_none(), "outer whitespace would be lost");
        assert!(raw_json(b"not json").is_none());
        assert!(raw_json(&[0xff, 0x00]).is_none());
    }

    proptest! {
        /// A JSON payload is written back exactly as it came: the hash covers these bytes.
        #[test]
        fn json_payloads_serialize_to_their_own_bytes(
            keys in proptest::collection::vec("[a-z]{1,6}", 0..5),
            spaced in any::<bool>(),
        ) {
            let separator = if spaced { ", " } else { "," };
            let body: Vec<String> = keys.iter().map(|key| format!("\"{key}\" : [1, 2.50, \"x\"]")).collect();
            let payload = format!("{{{}}}", body.join(separator));
            let raw = raw_json(payload.as_bytes()).expect("json");
            prop_assert_eq!(serde_json::to_vec(&raw).unwrap(), payload.as_bytes().to_vec());
        }
    }
}
