//! The [`EventStore`] on KurrentDB: the thin IO around the pure mapping, claims and seals.
//!
//! An append reads its stream's last event (revision, stream-chain hash, time), checks the expected revision,
//! chains the new events ([`crate::sparse`]), claims their ids ([`super::claim`]) and appends them with the
//! revision it read as the expected one; KurrentDB commits it, and groups concurrent appends into one write
//! on its own. `read_all` is a server-filtered forward read of `$all`; `head` the same read backwards, one
//! event long; waiters poll it like a second PostgreSQL handle would ([`crate::notify`]). A sealer task
//! chains the global order into [`SEAL_STREAM`] every `sealIntervalMs`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kurrentdb::{AppendToStreamOptions, ClientSettings, ReadAllOptions, ReadStreamOptions, StreamPosition};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::claim::{CLAIM_ATTEMPTS_MAX, ClaimDecision, ClaimEntry, Landing, decide};
use super::mapping::{
    CLAIM_EVENT_TYPE, MappingError, Namespace, actual_revision, backend_error, from_server, position_of,
    read_all_retry_start, read_all_start, stream_state, to_event_data,
};
use super::url::{self, KurrentDbUrl};
use crate::error::StoreError;
use crate::event::{
    AppendOutcome, Head, NewEvent, READ_EVENTS_MAX, RecordedEvent, check_positions_increasing, check_revisions_dense,
    validate_append,
};
use crate::notify;
use crate::seal::{SEAL_EVENT_TYPE, SEAL_EVENTS_MAX, SEAL_STREAM, Seal, next_seal};
use crate::sparse::{StreamTip, chain_append, is_reserved};
use crate::store::{EventStore, LogLayout};
use crate::stream::ExpectedRevision;
use crate::stream::StreamName;

/// Longest one server call may take before it fails, in milliseconds.
pub const OPERATION_DEADLINE_MS: u64 = 10_000;

/// Claims one append makes at once (a batch of many events claims their ids in this many parallel calls).
pub const CLAIMS_IN_FLIGHT_MAX: usize = 32;

/// Times an `ExpectedRevision::Any` append re-reads its stream after another writer moved it.
pub const APPEND_ANY_ATTEMPTS_MAX: usize = 16;

/// The actor recorded on seals.
const SEALER_ACTOR: &str = "sealer";

/// A name-based UUID namespace for seal event ids (a seal's id derives from its hash, so two sealers writing
/// the same seal write the same id).
const SEAL_ID_NAMESPACE: Uuid = Uuid::from_u128(0x5ea1_0000_7a11_4e55_8000_0000_0000_0001);

/// An [`EventStore`] on a KurrentDB server or cluster, holding the ledger's streams under one namespace.
///
/// Dropping the handle stops its sealer.
#[derive(Debug)]
pub struct KurrentDbStore {
    inner: Arc<Inner>,
    sealer: JoinHandle<()>,
}

struct Inner {
    client: kurrentdb::Client,
    namespace: Namespace,
    published: watch::Sender<Head>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client's settings may hold credentials.
        formatter
            .debug_struct("Inner")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Drop for KurrentDbStore {
    fn drop(&mut self) {
        self.sealer.abort();
    }
}

/// Whether an append may write a `$` stream (only the store's own sealer may).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Outside,
    Sealer,
}

impl KurrentDbStore {
    /// Connects to the server the URL names (see [`url`] for its form), reads the head once to fail fast, and
    /// starts the sealer. Must be called inside a Tokio runtime.
    #[tracing::instrument(skip_all)]
    pub async fn connect(store_url: &str) -> Result<Self, StoreError> {
        let url = url::parse(store_url)?;
        Self::connect_parsed(&url).await
    }

    /// [`KurrentDbStore::connect`] with an already parsed URL.
    pub async fn connect_parsed(url: &KurrentDbUrl) -> Result<Self, StoreError> {
        let settings = ClientSettings::from_str(&url.client).map_err(|_| StoreError::InvalidUrl {
            reason: "the KurrentDB client refuses the connection string".to_owned(),
        })?;
        let client = kurrentdb::Client::new(settings).map_err(|error| {
            StoreError::backend("start the kurrentdb client", std::io::Error::other(error.to_string()))
        })?;
        let inner = Arc::new(Inner {
            client,
            namespace: Namespace::new(url.namespace()),
            published: watch::Sender::new(Head::EMPTY),
        });
        let head = inner.head().await?;
        inner.published.send_replace(head);
        tracing::info!(
            namespace = url.namespace(),
            head = head.position,
            "connected to kurrentdb"
        );
        let sealer = tokio::spawn(run_sealer(
            Arc::clone(&inner),
            Duration::from_millis(url.seal_interval_ms()),
        ));
        Ok(Self { inner, sealer })
    }

    /// Seals every event not sealed yet (what the sealer does every interval); returns the seals appended. A
    /// seal another instance wrote first counts as done.
    pub async fn seal_now(&self) -> Result<u64, StoreError> {
        let mut sealed = 0;
        while self.inner.seal_once().await? {
            sealed += 1;
        }
        Ok(sealed)
    }
}

#[async_trait]
impl EventStore for KurrentDbStore {
    #[tracing::instrument(skip(self, events), fields(stream = %stream, events = events.len()))]
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.inner.append(stream, expected, events, Caller::Outside).await
    }

    #[tracing::instrument(skip(self), fields(stream = %stream))]
    async fn read_stream(
        &self,
        stream: &StreamName,
        from_revision: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let limit = limit.min(READ_EVENTS_MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Position(from_revision))
            .max_count(limit);
        let events = self.inner.read_server_stream(stream, &options).await?;
        check_revisions_dense(from_revision, &events)?;
        Ok(events)
    }

    #[tracing::instrument(skip(self), fields(stream = "$all"))]
    async fn read_all(&self, from_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(from_position, limit).await
    }

    #[tracing::instrument(skip(self), fields(stream = "$all"))]
    async fn head(&self) -> Result<Head, StoreError> {
        self.inner.head().await
    }

    #[tracing::instrument(skip(self), fields(stream = "$all"))]
    async fn wait_for_position_after(&self, position: u64, timeout: Duration) -> Result<Head, StoreError> {
        notify::wait_for_position_after(&self.inner.published, position, timeout, || self.inner.head()).await
    }

    fn layout(&self) -> LogLayout {
        LogLayout::SparseSealed
    }
}

impl Inner {
    fn deadline() -> Duration {
        Duration::from_millis(OPERATION_DEADLINE_MS)
    }

    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
        caller: Caller,
    ) -> Result<AppendOutcome, StoreError> {
        validate_append(stream, &events)?;
        if caller == Caller::Outside && is_reserved(stream) {
            return Err(StoreError::InvalidStreamName {
                name: stream.as_str().to_owned(),
                reason: "names starting with $ are reserved for the store on kurrentdb",
            });
        }
        for _ in 0..APPEND_ANY_ATTEMPTS_MAX {
            match self.append_once(stream, expected, events.clone()).await {
                // Any means "whatever the stream holds": a writer that moved it in between is no conflict.
                Err(StoreError::Conflict { .. }) if expected == ExpectedRevision::Any => continue,
                other => return other,
            }
        }
        Err(StoreError::backend(
            "append with any expected revision",
            MappingError("other writers kept moving the stream"),
        ))
    }

    /// One attempt: read the tip, check, chain, claim, append.
    async fn append_once(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let tip = self.last_event(stream).await?.map(|event| StreamTip::of(&event));
        let actual = tip.map(|tip| tip.revision);
        if !expected.is_satisfied_by(actual) {
            return Err(StoreError::Conflict {
                stream: stream.clone(),
                expected,
                actual,
            });
        }
        let recorded = chain_append(stream, tip.as_ref(), OffsetDateTime::now_utc(), events);
        self.claim_all(stream, &recorded).await?;
        let data: Vec<_> = recorded
            .iter()
            .map(|event| to_event_data(event, Uuid::new_v4()))
            .collect();
        let options = AppendToStreamOptions::default()
            .stream_state(stream_state(actual))
            .deadline(Self::deadline());
        let written = match self
            .client
            .append_to_stream(self.namespace.server_stream(stream), &options, data)
            .await
        {
            Ok(written) => written,
            Err(kurrentdb::Error::WrongExpectedVersion { current, .. }) => {
                return Err(StoreError::Conflict {
                    stream: stream.clone(),
                    expected,
                    actual: actual_revision(current),
                });
            }
            Err(error) => return Err(backend_error("append", error)),
        };
        let last_position = position_of(written.position)?;
        let (Some(first), Some(last)) = (recorded.first(), recorded.last()) else {
            return Err(StoreError::EmptyBatch { stream: stream.clone() });
        };
        let first_position = if recorded.len() == 1 {
            last_position
        } else {
            self.position_of_revision(stream, first.revision).await?
        };
        if !is_reserved(stream) {
            let head = Head {
                position: last_position,
                hash: last.hash,
                recorded_at: Some(last.recorded_at),
            };
            self.published.send_if_modified(|published| {
                let moved = head.position > published.position;
                if moved {
                    *published = head;
                }
                moved
            });
        }
        Ok(AppendOutcome {
            last_revision: last.revision,
            first_position,
            last_position,
            group_appends: 1,
        })
    }

    /// Claims every event id of the batch, a bounded number at once; the first refusal wins.
    async fn claim_all(&self, stream: &StreamName, recorded: &[RecordedEvent]) -> Result<(), StoreError> {
        for chunk in recorded.chunks(CLAIMS_IN_FLIGHT_MAX) {
            let claims: Vec<_> = chunk.iter().map(|event| Box::pin(self.claim(stream, event))).collect();
            futures_util::future::try_join_all(claims).await?;
        }
        Ok(())
    }

    /// Runs the claim protocol for one event (see [`super::claim`]).
    async fn claim(&self, stream: &StreamName, event: &RecordedEvent) -> Result<(), StoreError> {
        let claim_stream = self.namespace.claim_stream(event.event_id);
        let ours = ClaimEntry {
            stream: stream.as_str().to_owned(),
            revision: event.revision,
        };
        // The first try assumes the id was never claimed, as nearly every id is: one call instead of two.
        let mut earlier = Vec::new();
        for attempt in 0..CLAIM_ATTEMPTS_MAX {
            if attempt > 0 {
                earlier = self.read_claims(&claim_stream).await?;
            }
            if earlier.len() >= CLAIM_ATTEMPTS_MAX {
                break;
            }
            let mut seen = Vec::with_capacity(earlier.len());
            for entry in &earlier {
                seen.push((entry.clone(), self.landing(entry, event.event_id).await?));
            }
            if decide(stream, &seen) == ClaimDecision::Duplicate {
                return Err(StoreError::DuplicateEventId {
                    event_id: event.event_id,
                });
            }
            let expected = stream_state(earlier.len().checked_sub(1).map(|last| last as u64));
            let options = AppendToStreamOptions::default()
                .stream_state(expected)
                .deadline(Self::deadline());
            let claim = kurrentdb::EventData::binary(CLAIM_EVENT_TYPE, ours.to_payload().into()).id(Uuid::new_v4());
            match self
                .client
                .append_to_stream(claim_stream.as_str(), &options, claim)
                .await
            {
                Ok(_) => return Ok(()),
                Err(kurrentdb::Error::WrongExpectedVersion { .. }) => continue,
                Err(error) => return Err(backend_error("claim an event id", error)),
            }
        }
        Err(StoreError::backend(
            "claim an event id",
            MappingError("the event id's claim stream holds too many attempts"),
        ))
    }

    /// Every claim entry of a claim stream, in order.
    async fn read_claims(&self, claim_stream: &str) -> Result<Vec<ClaimEntry>, StoreError> {
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Start)
            .max_count(CLAIM_ATTEMPTS_MAX)
            .deadline(Self::deadline());
        let events = self.read_raw_stream(claim_stream, &options).await?;
        events
            .iter()
            .map(|event| ClaimEntry::from_payload(event.position.commit, &event.data))
            .collect()
    }

    /// What the place an earlier attempt recorded holds now.
    async fn landing(&self, entry: &ClaimEntry, event_id: Uuid) -> Result<Landing, StoreError> {
        let stream = StreamName::parse(entry.stream.as_str())
            .map_err(|error| StoreError::corrupt(0, format!("claim names a bad stream: {error}")))?;
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Position(entry.revision))
            .max_count(1);
        let events = self.read_server_stream(&stream, &options).await?;
        Ok(match events.first() {
            Some(event) if event.revision == entry.revision && event.event_id == event_id => Landing::Stored,
            Some(event) if event.revision == entry.revision => Landing::Other,
            _ => Landing::NotYet,
        })
    }

    /// The position of `revision` of `stream` (to report where a batch began).
    async fn position_of_revision(&self, stream: &StreamName, revision: u64) -> Result<u64, StoreError> {
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Position(revision))
            .max_count(1);
        match self.read_server_stream(stream, &options).await?.first() {
            Some(event) if event.revision == revision => Ok(event.position),
            _ => Err(StoreError::backend(
                "read back an appended event",
                MappingError("an event just appended is not readable"),
            )),
        }
    }

    /// The last event of `stream`, `None` for a stream that does not exist.
    async fn last_event(&self, stream: &StreamName) -> Result<Option<RecordedEvent>, StoreError> {
        let options = ReadStreamOptions::default().position(StreamPosition::End).max_count(1);
        Ok(self.read_server_stream(stream, &options).await?.into_iter().next())
    }

    /// Reads a ledger stream and maps its events.
    async fn read_server_stream(
        &self,
        stream: &StreamName,
        options: &ReadStreamOptions,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let options = options.clone().deadline(Self::deadline());
        let raw = self
            .read_raw_stream(&self.namespace.server_stream(stream), &options)
            .await?;
        raw.iter().map(|event| from_server(&self.namespace, event)).collect()
    }

    /// Reads a server stream as the server has it; a stream that does not exist reads as empty.
    async fn read_raw_stream(
        &self,
        server_stream: &str,
        options: &ReadStreamOptions,
    ) -> Result<Vec<kurrentdb::RecordedEvent>, StoreError> {
        let collected = async {
            let mut read = self.client.read_stream(server_stream, options).await?;
            let mut events = Vec::new();
            while let Some(resolved) = read.next().await? {
                if let Some(event) = resolved.event {
                    events.push(event);
                }
            }
            Ok::<_, kurrentdb::Error>(events)
        };
        match collected.await {
            Ok(events) => Ok(events),
            Err(kurrentdb::Error::ResourceNotFound) => Ok(Vec::new()),
            Err(error) => Err(backend_error("read stream", error)),
        }
    }

    async fn read_all(&self, from_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let limit = limit.min(READ_EVENTS_MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        // The first start is the event before `from_position` (dropped below), hence one more.
        let raw = match self.read_all_raw(read_all_start(from_position), limit + 1).await {
            Ok(raw) => raw,
            Err(first) if from_position > 1 => self
                .read_all_raw(read_all_retry_start(from_position), limit)
                .await
                .map_err(|_| backend_error("read all", first))?,
            Err(error) => return Err(backend_error("read all", error)),
        };
        let mut events = Vec::with_capacity(raw.len().min(limit));
        for event in &raw {
            let event = from_server(&self.namespace, event)?;
            if event.position >= from_position && events.len() < limit {
                events.push(event);
            }
        }
        check_positions_increasing(from_position, &events)?;
        Ok(events)
    }

    async fn read_all_raw(
        &self,
        start: StreamPosition<kurrentdb::Position>,
        count: usize,
    ) -> Result<Vec<kurrentdb::RecordedEvent>, kurrentdb::Error> {
        let options = ReadAllOptions::default()
            .forwards()
            .position(start)
            .filter(self.namespace.read_all_filter())
            .max_count(count)
            .deadline(Self::deadline());
        let mut read = self.client.read_all(&options).await?;
        let mut events = Vec::new();
        while let Some(resolved) = read.next().await? {
            if let Some(event) = resolved.event {
                events.push(event);
            }
        }
        Ok(events)
    }

    async fn head(&self) -> Result<Head, StoreError> {
        let options = ReadAllOptions::default()
            .position(StreamPosition::End)
            .filter(self.namespace.read_all_filter())
            .max_count(1)
            .deadline(Self::deadline());
        let last = async {
            let mut read = self.client.read_all(&options).await?;
            Ok::<_, kurrentdb::Error>(read.next().await?.and_then(|resolved| resolved.event))
        };
        match last.await.map_err(|error| backend_error("read head", error))? {
            None => Ok(Head::EMPTY),
            Some(event) => {
                let event = from_server(&self.namespace, &event)?;
                Ok(Head {
                    position: event.position,
                    hash: event.hash,
                    recorded_at: Some(event.recorded_at),
                })
            }
        }
    }

    /// Appends the next seal if there is anything to seal; `true` when a seal was written (by this or another
    /// instance), so the caller looks again.
    async fn seal_once(&self) -> Result<bool, StoreError> {
        let seal_stream = StreamName::parse(SEAL_STREAM)?;
        let last = self.last_event(&seal_stream).await?;
        let previous = last
            .as_ref()
            .map(|event| Seal::from_payload(event.position, &event.payload))
            .transpose()?;
        let from = previous
            .as_ref()
            .map_or(1, |seal| seal.last_position().saturating_add(1));
        let unsealed = self.read_all(from, SEAL_EVENTS_MAX).await?;
        let Some(seal) = next_seal(previous.as_ref(), &unsealed)? else {
            return Ok(false);
        };
        let event = NewEvent {
            event_id: Uuid::new_v5(&SEAL_ID_NAMESPACE, &seal.hash),
            event_type: SEAL_EVENT_TYPE.to_owned(),
            schema_version: 1,
            payload: seal.to_payload(),
            actor: SEALER_ACTOR.to_owned(),
        };
        let expected = last.map_or(ExpectedRevision::NoStream, |event| {
            ExpectedRevision::Exact(event.revision)
        });
        match self.append(&seal_stream, expected, vec![event], Caller::Sealer).await {
            Ok(_) | Err(StoreError::Conflict { .. }) | Err(StoreError::DuplicateEventId { .. }) => Ok(true),
            Err(error) => Err(error),
        }
    }
}

/// Every `interval`, seals what is unsealed; a failure is logged and retried at the next interval.
async fn run_sealer(inner: Arc<Inner>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        loop {
            match inner.seal_once().await {
                Ok(true) => continue,
                Ok(false) => break,
                Err(error) => {
                    tracing::warn!(%error, "sealing failed; retrying at the next interval");
                    break;
                }
            }
        }
    }
}
