//! The batches of a scan ([`crate::scan()`]): what a store's streaming reader sends and a scan's caller reads,
//! packed so that a batch is one buffer and its events are [`EventView`]s borrowed from it (no allocation per
//! event). Knows no store: the stores produce these, `scan` hands them out.

use time::OffsetDateTime;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::RecordedEvent;

/// Most events in one [`EventBatch`] of a scan.
pub const SCAN_BATCH_EVENTS_MAX: usize = 1_024;

/// A packed batch is closed once its text and payloads reach this many bytes (so at most this plus one event).
pub const SCAN_BATCH_BYTES_MAX: usize = 512 * 1024;

/// Batches a streaming scan reads ahead of its caller at most.
pub const SCAN_BATCHES_AHEAD: usize = 4;

/// A stored event borrowed from an [`EventBatch`] (or a [`RecordedEvent`]): the same fields, no copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventView<'a> {
    /// Global position.
    pub position: u64,
    /// The stream's name (a valid [`crate::StreamName`]).
    pub stream: &'a str,
    /// Revision in its stream.
    pub revision: u64,
    /// The caller-chosen unique id.
    pub event_id: Uuid,
    /// The event's type name.
    pub event_type: &'a str,
    /// Version of the payload's schema.
    pub schema_version: u32,
    /// The payload bytes exactly as appended.
    pub payload: &'a [u8],
    /// Who caused the event.
    pub actor: &'a str,
    /// When the store committed it.
    pub recorded_at: OffsetDateTime,
    /// The previous event's hash (see [`RecordedEvent::prev_hash`]).
    pub prev_hash: &'a [u8; 32],
    /// The event's hash.
    pub hash: &'a [u8; 32],
}

impl RecordedEvent {
    /// The event as an [`EventView`].
    pub fn view(&self) -> EventView<'_> {
        EventView {
            position: self.position,
            stream: self.stream.as_str(),
            revision: self.revision,
            event_id: self.event_id,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            payload: &self.payload,
            actor: &self.actor,
            recorded_at: self.recorded_at,
            prev_hash: &self.prev_hash,
            hash: &self.hash,
        }
    }
}

/// Consecutive events of the log, in position order, as one scan step delivers them.
#[derive(Debug, Default)]
pub struct EventBatch(Batch);

#[derive(Debug)]
enum Batch {
    /// Packed by a streaming scan: the variable-length fields of every event in one buffer.
    Packed(PackedBatch),
    /// A page of `read_all`.
    Recorded(Vec<RecordedEvent>),
}

impl Default for Batch {
    fn default() -> Self {
        Batch::Recorded(Vec::new())
    }
}

impl EventBatch {
    /// How many events it holds.
    pub fn len(&self) -> usize {
        match &self.0 {
            Batch::Packed(packed) => packed.slots.len(),
            Batch::Recorded(events) => events.len(),
        }
    }

    /// Whether it holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The event at `index` (0 is the first).
    pub fn get(&self, index: usize) -> Option<EventView<'_>> {
        match &self.0 {
            Batch::Packed(packed) => packed.slots.get(index).map(|slot| packed.view(slot)),
            Batch::Recorded(events) => events.get(index).map(RecordedEvent::view),
        }
    }

    /// The last event.
    pub fn last(&self) -> Option<EventView<'_>> {
        self.len().checked_sub(1).and_then(|index| self.get(index))
    }

    /// The events in position order.
    pub fn iter(&self) -> impl Iterator<Item = EventView<'_>> + '_ {
        (0..self.len()).filter_map(|index| self.get(index))
    }

    /// Owned copies of the events (for callers that keep them).
    pub fn to_recorded(&self) -> Result<Vec<RecordedEvent>, StoreError> {
        self.iter().map(|view| view.to_recorded()).collect()
    }
}

impl From<Vec<RecordedEvent>> for EventBatch {
    fn from(events: Vec<RecordedEvent>) -> Self {
        EventBatch(Batch::Recorded(events))
    }
}

impl EventView<'_> {
    /// An owned copy of the event; [`StoreError::Corrupt`] if its stream name is not valid (a store checks
    /// names before it hands out views, so only a view made by hand can fail).
    pub fn to_recorded(&self) -> Result<RecordedEvent, StoreError> {
        Ok(RecordedEvent {
            position: self.position,
            stream: crate::StreamName::parse(self.stream)
                .map_err(|_| StoreError::corrupt(self.position, "invalid stream name"))?,
            revision: self.revision,
            event_id: self.event_id,
            event_type: self.event_type.to_owned(),
            schema_version: self.schema_version,
            payload: self.payload.to_vec(),
            actor: self.actor.to_owned(),
            recorded_at: self.recorded_at,
            prev_hash: *self.prev_hash,
            hash: *self.hash,
        })
    }
}

/// Events whose text fields (stream, type, actor) are packed into one string and payloads into one buffer.
#[derive(Debug, Default)]
pub(crate) struct PackedBatch {
    text: String,
    payloads: Vec<u8>,
    slots: Vec<Slot>,
}

/// One packed event: its fixed-size fields, and where its variable-length ones lie in the buffers.
#[derive(Debug)]
struct Slot {
    position: u64,
    revision: u64,
    event_id: Uuid,
    schema_version: u32,
    recorded_at: OffsetDateTime,
    prev_hash: [u8; 32],
    hash: [u8; 32],
    /// Where the stream's name starts in the text; the event type and the actor follow it.
    text_start: usize,
    /// Ends of the stream, event type and actor in the text.
    text_ends: [usize; 3],
    /// Where the payload starts in the payloads; it ends where the next one starts.
    payload: (usize, usize),
}

/// The fields of one event to pack, borrowed from wherever the store read them.
#[derive(Debug)]
pub(crate) struct PackedFields<'a> {
    pub(crate) position: u64,
    pub(crate) stream: &'a str,
    pub(crate) revision: u64,
    pub(crate) event_id: Uuid,
    pub(crate) event_type: &'a str,
    pub(crate) schema_version: u32,
    pub(crate) payload: &'a [u8],
    pub(crate) actor: &'a str,
    pub(crate) recorded_at: OffsetDateTime,
    pub(crate) prev_hash: [u8; 32],
    pub(crate) hash: [u8; 32],
}

impl PackedBatch {
    pub(crate) fn with_capacity() -> PackedBatch {
        PackedBatch {
            text: String::with_capacity(SCAN_BATCH_EVENTS_MAX * 64),
            payloads: Vec::with_capacity(SCAN_BATCH_BYTES_MAX + SCAN_BATCH_BYTES_MAX / 4),
            slots: Vec::with_capacity(SCAN_BATCH_EVENTS_MAX),
        }
    }

    pub(crate) fn push(&mut self, fields: &PackedFields<'_>) {
        let text_start = self.text.len();
        let mut text_ends = [0; 3];
        for (end, part) in text_ends
            .iter_mut()
            .zip([fields.stream, fields.event_type, fields.actor])
        {
            self.text.push_str(part);
            *end = self.text.len();
        }
        let payload_start = self.payloads.len();
        self.payloads.extend_from_slice(fields.payload);
        self.slots.push(Slot {
            position: fields.position,
            revision: fields.revision,
            event_id: fields.event_id,
            schema_version: fields.schema_version,
            recorded_at: fields.recorded_at,
            prev_hash: fields.prev_hash,
            hash: fields.hash,
            text_start,
            text_ends,
            payload: (payload_start, self.payloads.len()),
        });
    }

    pub(crate) fn is_full(&self) -> bool {
        self.slots.len() >= SCAN_BATCH_EVENTS_MAX || self.text.len() + self.payloads.len() >= SCAN_BATCH_BYTES_MAX
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub(crate) fn into_batch(self) -> EventBatch {
        EventBatch(Batch::Packed(self))
    }

    fn view<'a>(&'a self, slot: &'a Slot) -> EventView<'a> {
        let [stream_end, type_end, actor_end] = slot.text_ends;
        // Every part was pushed whole, so its range lies on char boundaries and the lookups cannot miss.
        let text = |from: usize, to: usize| self.text.get(from..to).unwrap_or_default();
        EventView {
            position: slot.position,
            stream: text(slot.text_start, stream_end),
            revision: slot.revision,
            event_id: slot.event_id,
            event_type: text(stream_end, type_end),
            schema_version: slot.schema_version,
            payload: self.payloads.get(slot.payload.0..slot.payload.1).unwrap_or_default(),
            actor: text(type_end, actor_end),
            recorded_at: slot.recorded_at,
            prev_hash: &slot.prev_hash,
            hash: &slot.hash,
        }
    }
}

/// What a scan step yields: the next batch, or why the scan stopped.
pub type ScanItem = Result<EventBatch, StoreError>;

/// The receiving end of a store's streaming scan ([`crate::EventStore::open_scan`]): batches (at most
/// [`SCAN_BATCHES_AHEAD`] wait), then an error if the reader stopped on one; closed at the end.
pub type ScanReceiver = mpsc::Receiver<ScanItem>;
