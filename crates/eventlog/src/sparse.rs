//! What a [`LogLayout::SparseSealed`](crate::LogLayout) store decides before it appends: the events' revisions,
//! `recorded_at` and per-stream hash chain, from the stream's last event alone.
//!
//! Pure, and shared by the KurrentDB backend and the in-memory test store, so the mapping the tests exercise
//! is the one the backend runs.

use time::OffsetDateTime;

use crate::chain::{GENESIS_HASH, stream_event_hash};
use crate::event::{NewEvent, RecordedEvent};
use crate::stream::StreamName;

/// A `$` stream name is the store's own ([`crate::seal::SEAL_STREAM`]); callers may read such a stream but not
/// append to it, and `read_all` leaves it out.
pub(crate) const RESERVED_STREAM_PREFIX: char = '$';

/// The last event of a stream, as far as the next append needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamTip {
    /// Its revision.
    pub(crate) revision: u64,
    /// Its stream-chain hash.
    pub(crate) hash: [u8; 32],
    /// When it was recorded.
    pub(crate) recorded_at: OffsetDateTime,
}

impl StreamTip {
    /// The tip a stored event leaves.
    pub(crate) fn of(event: &RecordedEvent) -> StreamTip {
        StreamTip {
            revision: event.revision,
            hash: event.hash,
            recorded_at: event.recorded_at,
        }
    }
}

/// The events of an append to `stream` after `tip` (`None`: a new stream), recorded at `now`: revisions from
/// the tip's plus one, `recorded_at` = max(`now` truncated to microseconds, the tip's) so a stream's times
/// never go back, and each event chained to the one before it in the stream. Positions are left 0: the store
/// learns them from the append.
pub(crate) fn chain_append(
    stream: &StreamName,
    tip: Option<&StreamTip>,
    now: OffsetDateTime,
    events: Vec<NewEvent>,
) -> Vec<RecordedEvent> {
    let recorded_at = tip.map_or(truncate_to_micros(now), |tip| {
        truncate_to_micros(now).max(tip.recorded_at)
    });
    let mut revision = tip.map_or(0, |tip| tip.revision.saturating_add(1));
    let mut prev_hash = tip.map_or(GENESIS_HASH, |tip| tip.hash);
    events
        .into_iter()
        .map(|event| {
            let mut recorded = RecordedEvent {
                position: 0,
                stream: stream.clone(),
                revision,
                event_id: event.event_id,
                event_type: event.event_type,
                schema_version: event.schema_version,
                payload: event.payload,
                actor: event.actor,
                recorded_at,
                prev_hash,
                hash: [0; 32],
            };
            recorded.hash = stream_event_hash(&prev_hash, &recorded);
            prev_hash = recorded.hash;
            revision = revision.saturating_add(1);
            recorded
        })
        .collect()
}

/// `time` without its sub-microsecond part, as every backend stores it.
pub(crate) fn truncate_to_micros(time: OffsetDateTime) -> OffsetDateTime {
    let nanos = time.nanosecond();
    time.replace_nanosecond(nanos - nanos % 1_000).unwrap_or(time)
}

/// Whether callers may append to `stream` on a sparse store.
pub(crate) fn is_reserved(stream: &StreamName) -> bool {
    stream.as_str().starts_with(RESERVED_STREAM_PREFIX)
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::chain::StreamChainVerifier;

    fn new_event(label: &str) -> NewEvent {
        NewEvent {
            event_id: Uuid::new_v4(),
            event_type: "TestHappened".to_owned(),
            schema_version: 1,
            payload: label.as_bytes().to_vec(),
            actor: "test".to_owned(),
        }
    }

    #[test]
    fn appends_chain_on_from_the_tip_and_never_go_back_in_time() {
        let stream = StreamName::parse("payment-1").unwrap();
        let later = OffsetDateTime::from_unix_timestamp_nanos(2_000_000_123_456_789).unwrap();
        let first = chain_append(&stream, None, later, vec![new_event("a"), new_event("b")]);
        assert_eq!(first.iter().map(|event| event.revision).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(
            first[0].recorded_at.nanosecond() % 1_000,
            0,
            "truncated to microseconds"
        );
        let earlier = later - time::Duration::seconds(5);
        let tip = StreamTip::of(&first[1]);
        let second = chain_append(&stream, Some(&tip), earlier, vec![new_event("c")]);
        assert_eq!(second[0].revision, 2);
        assert_eq!(
            second[0].recorded_at, first[1].recorded_at,
            "a clock that stepped back is not followed"
        );
        let mut verifier = StreamChainVerifier::default();
        for (offset, mut event) in (1_u64..).zip(first.into_iter().chain(second)) {
            event.position = offset * 10;
            verifier.check(&event).expect("chained");
        }
    }

    #[test]
    fn dollar_streams_are_reserved() {
        assert!(is_reserved(&StreamName::parse(crate::seal::SEAL_STREAM).unwrap()));
        assert!(!is_reserved(&StreamName::parse("payment-$1").unwrap()));
    }
}
