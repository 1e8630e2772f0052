//! An in-memory [`EventStore`] with the [`LogLayout::SparseSealed`] shape, for tests of the code that reads a
//! log (subscriptions, the projection runner, `verify`, replay, exports) without a KurrentDB server.
//!
//! It maps appends exactly as the KurrentDB backend does (the same [`crate::sparse`] planning: revisions,
//! `recorded_at`, per-stream chain; `$` streams reserved; seals through [`crate::seal`]), and numbers
//! positions like log offsets: increasing, with holes that grow with the payload. Only the parts that need a
//! server differ: one mutex orders the appends, and event-id uniqueness is a set instead of claim streams.
//! Tests may also tamper with the stored events, as someone with access to the database could.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{
    AppendOutcome, Head, NewEvent, READ_EVENTS_MAX, RecordedEvent, check_positions_increasing, check_revisions_dense,
    validate_append,
};
use crate::notify;
use crate::seal::{SEAL_EVENT_TYPE, SEAL_STREAM, Seal, next_seal};
use crate::sparse::{StreamTip, chain_append, is_reserved};
use crate::store::{EventStore, LogLayout};
use crate::stream::ExpectedRevision;
use crate::stream::StreamName;

/// The position of the first event, as if the log held other records before it.
const FIRST_POSITION: u64 = 4_096;

/// Bytes a log record takes beyond its payload, so positions grow like KurrentDB's offsets.
const RECORD_OVERHEAD_BYTES: u64 = 97;

/// A sparse, sealed log in memory (see the module docs). Cloning shares the log.
#[derive(Debug, Clone)]
pub struct SparseMemoryStore {
    log: Arc<Mutex<Vec<RecordedEvent>>>,
    published: Arc<watch::Sender<Head>>,
}

impl Default for SparseMemoryStore {
    fn default() -> Self {
        Self {
            log: Arc::new(Mutex::new(Vec::new())),
            published: Arc::new(watch::Sender::new(Head::EMPTY)),
        }
    }
}

impl SparseMemoryStore {
    /// An empty log.
    pub fn new() -> SparseMemoryStore {
        SparseMemoryStore::default()
    }

    /// Seals every event not sealed yet, in seals of at most [`crate::seal::SEAL_EVENTS_MAX`]; returns how many
    /// seals it appended. The KurrentDB backend's sealer does the same against the server.
    pub fn seal_now(&self) -> Result<u64, StoreError> {
        let mut sealed = 0;
        loop {
            let mut log = self.lock();
            let seals: Vec<&RecordedEvent> = log
                .iter()
                .filter(|event| event.stream.as_str() == SEAL_STREAM)
                .collect();
            let previous = match seals.last() {
                Some(event) => Some(Seal::from_payload(event.position, &event.payload)?),
                None => None,
            };
            let after = previous.as_ref().map_or(0, Seal::last_position);
            let unsealed: Vec<RecordedEvent> = log
                .iter()
                .filter(|event| event.position > after && !is_reserved(&event.stream))
                .cloned()
                .collect();
            let Some(seal) = next_seal(previous.as_ref(), &unsealed)? else {
                return Ok(sealed);
            };
            let event = NewEvent {
                event_id: Uuid::new_v4(),
                event_type: SEAL_EVENT_TYPE.to_owned(),
                schema_version: 1,
                payload: seal.to_payload(),
                actor: "sealer".to_owned(),
            };
            let stream = StreamName::parse(SEAL_STREAM)?;
            Self::append_locked(&mut log, &stream, vec![event]);
            sealed += 1;
        }
    }

    /// Lets a test change the stored events behind the store's back (remove, edit, reorder), as someone with
    /// write access to the database could.
    pub fn tamper(&self, change: impl FnOnce(&mut Vec<RecordedEvent>)) {
        change(&mut self.lock());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RecordedEvent>> {
        // A test that panicked while holding the log leaves it whole: every change is one push or one closure.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn append_locked(log: &mut Vec<RecordedEvent>, stream: &StreamName, events: Vec<NewEvent>) -> AppendOutcome {
        let tip = log
            .iter()
            .rev()
            .find(|event| &event.stream == stream)
            .map(StreamTip::of);
        let mut position = log.last().map_or(FIRST_POSITION, |last| {
            last.position + RECORD_OVERHEAD_BYTES + last.payload.len() as u64
        });
        let mut recorded = chain_append(stream, tip.as_ref(), OffsetDateTime::now_utc(), events);
        for event in &mut recorded {
            event.position = position;
            position += RECORD_OVERHEAD_BYTES + event.payload.len() as u64;
        }
        let outcome = AppendOutcome {
            last_revision: recorded.last().map_or(0, |event| event.revision),
            first_position: recorded.first().map_or(0, |event| event.position),
            last_position: recorded.last().map_or(0, |event| event.position),
            group_appends: 1,
        };
        log.extend(recorded);
        outcome
    }

    fn head_of(log: &[RecordedEvent]) -> Head {
        log.iter()
            .rev()
            .find(|event| !is_reserved(&event.stream))
            .map_or(Head::EMPTY, |event| Head {
                position: event.position,
                hash: event.hash,
                recorded_at: Some(event.recorded_at),
            })
    }
}

#[async_trait]
impl EventStore for SparseMemoryStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        validate_append(stream, &events)?;
        if is_reserved(stream) {
            return Err(StoreError::InvalidStreamName {
                name: stream.as_str().to_owned(),
                reason: "names starting with $ are reserved for the store",
            });
        }
        let (outcome, head) = {
            let mut log = self.lock();
            let actual = log
                .iter()
                .rev()
                .find(|event| &event.stream == stream)
                .map(|event| event.revision);
            if !expected.is_satisfied_by(actual) {
                return Err(StoreError::Conflict {
                    stream: stream.clone(),
                    expected,
                    actual,
                });
            }
            let stored: HashSet<Uuid> = log.iter().map(|event| event.event_id).collect();
            if let Some(duplicate) = events.iter().find(|event| stored.contains(&event.event_id)) {
                return Err(StoreError::DuplicateEventId {
                    event_id: duplicate.event_id,
                });
            }
            let outcome = Self::append_locked(&mut log, stream, events);
            (outcome, Self::head_of(&log))
        };
        self.published.send_replace(head);
        Ok(outcome)
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from_revision: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let events: Vec<RecordedEvent> = self
            .lock()
            .iter()
            .filter(|event| &event.stream == stream && event.revision >= from_revision)
            .take(limit.min(READ_EVENTS_MAX))
            .cloned()
            .collect();
        check_revisions_dense(from_revision, &events)?;
        Ok(events)
    }

    async fn read_all(&self, from_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let events: Vec<RecordedEvent> = self
            .lock()
            .iter()
            .filter(|event| event.position >= from_position && !is_reserved(&event.stream))
            .take(limit.min(READ_EVENTS_MAX))
            .cloned()
            .collect();
        check_positions_increasing(from_position, &events)?;
        Ok(events)
    }

    async fn head(&self) -> Result<Head, StoreError> {
        Ok(Self::head_of(&self.lock()))
    }

    async fn wait_for_position_after(&self, position: u64, timeout: Duration) -> Result<Head, StoreError> {
        notify::wait_for_position_after(&self.published, position, timeout, || self.head()).await
    }

    fn layout(&self) -> LogLayout {
        LogLayout::SparseSealed
    }
}
