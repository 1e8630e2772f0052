//! The embedded backend: one SQLite file in WAL mode.
//!
//! SQLite allows one writer at a time, and `BEGIN IMMEDIATE` takes that write lock before the transaction reads
//! the head: that lock is the log's global write lock, across threads and across processes sharing the file.
//! Positions are assigned under it and it is held until commit, so commit order is position order and readers
//! may simply read `position >= from ORDER BY position` (docs/adr/001-gap-free-ordering.md).
//!
//! Each handle runs one writer on a dedicated OS thread that owns the write connection and commits queued
//! appends in groups (see `group_commit`): with `synchronous=FULL` every commit is an fsync, and grouping turns
//! N concurrent appends into one. Reads run on a small bounded pool of read-only connections through
//! `spawn_blocking`; WAL lets them proceed while the writer commits. The writer hands each commit's rows to the
//! handle's own subscribers (`local_commits.rs`), so a subscription following this handle reads nothing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc, watch};
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{
    AppendOutcome, Head, NewEvent, READ_EVENTS_MAX, RecordedEvent, check_positions_dense, check_revisions_dense,
};
use crate::group_commit::{
    APPEND_QUEUE_REQUESTS_MAX, GroupBuilder, GroupFailure, GroupPlan, PendingAppend, StoredState, deliver_sharing,
    fail_group, group_event_ids, group_streams, plan_group,
};
use crate::local_commits::{LocalCommit, LocalCommits};
use crate::notify;
use crate::scan_batch::{PackedBatch, PackedFields, SCAN_BATCHES_AHEAD, ScanItem, ScanReceiver};
use crate::store::EventStore;
use crate::stream::ExpectedRevision;
use crate::stream::StreamName;

/// Read connections one handle keeps open at most.
const READ_CONNECTIONS_MAX: usize = 4;

/// How long a connection waits for another process's lock before failing, in milliseconds.
const BUSY_TIMEOUT_MS: u64 = 5_000;

/// Schema migrations, applied in order on open; the version is the index plus one. Never edit a shipped one.
const MIGRATIONS: &[&str] = &[r"
    CREATE TABLE eventlog_events (
        position       INTEGER PRIMARY KEY CHECK (position >= 1),
        stream         TEXT    NOT NULL,
        revision       INTEGER NOT NULL CHECK (revision >= 0),
        event_id       BLOB    NOT NULL CHECK (length(event_id) = 16),
        event_type     TEXT    NOT NULL,
        schema_version INTEGER NOT NULL,
        payload        BLOB    NOT NULL,
        actor          TEXT    NOT NULL,
        recorded_at_ns INTEGER NOT NULL,
        prev_hash      BLOB    NOT NULL CHECK (length(prev_hash) = 32),
        hash           BLOB    NOT NULL CHECK (length(hash) = 32),
        CONSTRAINT eventlog_events_event_id_key UNIQUE (event_id),
        CONSTRAINT eventlog_events_stream_revision_key UNIQUE (stream, revision)
    ) STRICT;
"];

const SELECT_COLUMNS: &str = "SELECT position, stream, revision, event_id, event_type, schema_version, payload, \
                              actor, recorded_at_ns, prev_hash, hash FROM eventlog_events";

/// An [`EventStore`] in one SQLite file.
///
/// Dropping the handle stops its writer once the queued appends are committed.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    queue: mpsc::Sender<PendingAppend>,
    published: Arc<watch::Sender<Head>>,
    commits: Arc<LocalCommits>,
    readers: Arc<ReadPool>,
}

impl SqliteStore {
    /// Opens (creating if needed) the log in the SQLite file at `path`, migrates its schema, and starts the
    /// writer thread. Several handles and processes may open the same file; they serialize on SQLite's lock.
    #[tracing::instrument(skip_all, fields(path = %path.as_ref().display()))]
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let writer_path = path.clone();
        let (connection, head) = tokio::task::spawn_blocking(move || {
            let mut connection = open_connection(&writer_path)?;
            migrate(&mut connection)?;
            let head = read_head(&connection)?;
            Ok::<_, StoreError>((connection, head))
        })
        .await
        .map_err(|error| StoreError::backend("open sqlite", error))??;
        let published = Arc::new(watch::Sender::new(head));
        let (queue, receiver) = mpsc::channel(APPEND_QUEUE_REQUESTS_MAX);
        let writer_published = Arc::clone(&published);
        let commits = Arc::new(LocalCommits::new());
        let writer_commits = Arc::clone(&commits);
        std::thread::Builder::new()
            .name("eventlog-sqlite-writer".to_owned())
            .spawn(move || run_writer(connection, receiver, &writer_published, &writer_commits))
            .map_err(|error| StoreError::backend("start sqlite writer", error))?;
        let readers = Arc::new(ReadPool {
            path: path.clone(),
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(READ_CONNECTIONS_MAX)),
        });
        Ok(Self {
            path,
            queue,
            published,
            commits,
            readers,
        })
    }

    /// The file this store writes.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    #[tracing::instrument(skip(self, events), fields(stream = %stream, events = events.len()))]
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        crate::group_commit::submit(&self.queue, stream, expected, events).await
    }

    #[tracing::instrument(skip(self), fields(stream = %stream))]
    async fn read_stream(
        &self,
        stream: &StreamName,
        from_revision: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let stream = stream.clone();
        let limit = limit.min(READ_EVENTS_MAX);
        let events = self
            .readers
            .run("read stream", move |connection| {
                let sql = format!("{SELECT_COLUMNS} WHERE stream = ?1 AND revision >= ?2 ORDER BY revision LIMIT ?3");
                query_events(
                    connection,
                    &sql,
                    params![stream.as_str(), bound(from_revision), bound_usize(limit)],
                )
            })
            .await?;
        check_revisions_dense(from_revision, &events)?;
        Ok(events)
    }

    #[tracing::instrument(skip(self), fields(stream = "$all"))]
    async fn read_all(&self, from_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let limit = limit.min(READ_EVENTS_MAX);
        let events = self
            .readers
            .run("read all", move |connection| {
                let sql = format!("{SELECT_COLUMNS} WHERE position >= ?1 ORDER BY position LIMIT ?2");
                query_events(connection, &sql, params![bound(from_position), bound_usize(limit)])
            })
            .await?;
        check_positions_dense(from_position, &events)?;
        Ok(events)
    }

    /// One read transaction (a consistent snapshot) and one statement stepped from `from_position` to
    /// `to_position` on a blocking thread, packing rows into batches as it goes, at most
    /// [`SCAN_BATCHES_AHEAD`] ahead of the caller; the connection counts against the read pool while it runs.
    #[tracing::instrument(skip(self), fields(stream = "$all"))]
    async fn open_scan(&self, from_position: u64, to_position: u64) -> Result<Option<ScanReceiver>, StoreError> {
        let permit = Arc::clone(&self.readers.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pool = Arc::clone(&self.readers);
        let (sender, receiver) = mpsc::channel(SCAN_BATCHES_AHEAD);
        // The task runs on its own once started: it stops at the end of the range, or when the scan is dropped.
        drop(tokio::task::spawn_blocking(move || {
            let _permit: OwnedSemaphorePermit = permit;
            let scanned = pool.with_connection(|connection| scan_rows(connection, from_position, to_position, &sender));
            if let Err(error) = scanned {
                // A dropped scan no longer listens; nobody is left to tell.
                let _ = sender.blocking_send(Err(error));
            }
        }));
        Ok(Some(receiver))
    }

    #[tracing::instrument(skip(self), fields(stream = "$all"))]
    async fn head(&self) -> Result<Head, StoreError> {
        self.readers.run("read head", read_head).await
    }

    #[tracing::instrument(skip(self), fields(stream = "$all"))]
    async fn wait_for_position_after(&self, position: u64, timeout: Duration) -> Result<Head, StoreError> {
        notify::wait_for_position_after(&self.published, position, timeout, || self.head()).await
    }

    fn local_commits(&self) -> Option<broadcast::Receiver<LocalCommit>> {
        Some(self.commits.subscribe())
    }
}

/// The bounded pool of read connections; a semaphore caps them, idle ones wait in a list.
#[derive(Debug)]
struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl ReadPool {
    /// Runs `read` on a pooled connection in the blocking thread pool.
    async fn run<T, F>(self: &Arc<Self>, operation: &'static str, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let _permit = self.permits.acquire().await.map_err(|_| StoreError::Closed)?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || pool.with_connection(read))
            .await
            .map_err(|error| StoreError::backend(operation, error))?
    }

    /// Runs `read` on an idle connection (or a new one), on the calling thread, and keeps the connection for
    /// the next read. The caller holds a permit.
    fn with_connection<T>(&self, read: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        // A poisoned list still holds valid connections: the panicking reader had taken its own out.
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => open_reader(&self.path)?,
        };
        let result = read(&connection);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // A cancelled caller releases its permit before its read ends; never keep more than the bound.
        if idle.len() < READ_CONNECTIONS_MAX {
            idle.push(connection);
        }
        drop(idle);
        result
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open(path).map_err(|error| StoreError::backend("open sqlite", error))?;
    connection
        .busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
        .map_err(|error| StoreError::backend("configure sqlite", error))?;
    // WAL lets readers run beside the writer; synchronous=FULL fsyncs the WAL on every commit, so an append
    // that returned survives power loss.
    connection
        .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
        .map_err(|error| StoreError::backend("configure sqlite", error))?;
    Ok(connection)
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let connection = open_connection(path)?;
    connection
        .execute_batch("PRAGMA query_only = ON;")
        .map_err(|error| StoreError::backend("configure sqlite reader", error))?;
    Ok(connection)
}

fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let failed = |error| StoreError::backend("migrate sqlite schema", error);
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    transaction
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS eventlog_migrations (
                 version INTEGER PRIMARY KEY, applied_at_ns INTEGER NOT NULL) STRICT;",
        )
        .map_err(failed)?;
    let applied: i64 = transaction
        .query_row("SELECT coalesce(max(version), 0) FROM eventlog_migrations", [], |row| {
            row.get(0)
        })
        .map_err(failed)?;
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if applied > known {
        return Err(StoreError::SchemaTooNew { found: applied, known });
    }
    for (version, migration) in (1_i64..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(applied).unwrap_or(usize::MAX))
    {
        transaction.execute_batch(migration).map_err(failed)?;
        let now_ns = i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(i64::MAX);
        transaction
            .execute(
                "INSERT INTO eventlog_migrations (version, applied_at_ns) VALUES (?1, ?2)",
                params![version, now_ns],
            )
            .map_err(failed)?;
        tracing::info!(version, "applied sqlite eventlog migration");
    }
    transaction.commit().map_err(failed)
}

/// Longest the writer polls its queue before parking its thread, in microseconds.
const WRITER_SPIN_US: u64 = 100;

/// The next queued append, or `None` once every sender is gone.
///
/// With `spin` set, polls (yielding the CPU between polls) for up to [`WRITER_SPIN_US`] before parking: a caller
/// answered a moment ago often sends its next append within that time (one client's refund appends its outcome
/// right after its request), and parking then waking an OS thread costs tens of microseconds on a virtual
/// machine, a large share of a ~150 µs durable commit. Where appends come further apart (a refund that waits for
/// Antom in between, a low rate) every poll is CPU spent for nothing, so `spin` follows what the last wait
/// showed: it stays set while appends come within the spin time, is cleared by a wait that outlasted it, and is
/// set again once a parked wait ends that soon.
fn next_append(queue: &mut mpsc::Receiver<PendingAppend>, spin: &mut bool) -> Option<PendingAppend> {
    let waiting = std::time::Instant::now();
    if *spin {
        let deadline = waiting + Duration::from_micros(WRITER_SPIN_US);
        while std::time::Instant::now() < deadline {
            match queue.try_recv() {
                Ok(pending) => return Some(pending),
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
                Err(mpsc::error::TryRecvError::Empty) => std::thread::yield_now(),
            }
        }
    }
    let pending = queue.blocking_recv();
    // A parked wait includes the wake-up itself, hence the allowance of twice the spin time.
    *spin = waiting.elapsed() < Duration::from_micros(2 * WRITER_SPIN_US);
    pending
}

/// The writer thread: commits queued appends in groups until every handle's queue sender is gone.
fn run_writer(
    mut connection: Connection,
    mut queue: mpsc::Receiver<PendingAppend>,
    published: &watch::Sender<Head>,
    commits: &LocalCommits,
) {
    let mut previous_appends = 1;
    let mut spin = true;
    while let Some(first) = next_append(&mut queue, &mut spin) {
        let mut builder = GroupBuilder::start(first, previous_appends);
        while !builder.drain(&mut queue) {
            std::thread::yield_now();
        }
        let group = builder.finish();
        if group.is_empty() {
            continue;
        }
        previous_appends = group.len();
        let span = tracing::debug_span!("group_commit", backend = "sqlite", appends = group.len());
        let _entered = span.enter();
        match write_group(&mut connection, &group) {
            Ok(plan) => deliver_sharing(group, plan, published, Some(commits)),
            Err(GroupFailure::UniqueViolation(error)) if group.len() > 1 => {
                tracing::warn!(%error, "unique index refused a planned group; retrying its appends one by one");
                for pending in group {
                    match write_group(&mut connection, std::slice::from_ref(&pending)) {
                        Ok(plan) => deliver_sharing(vec![pending], plan, published, Some(commits)),
                        Err(GroupFailure::UniqueViolation(error) | GroupFailure::Other(error)) => {
                            fail_group(vec![pending], &error);
                        }
                    }
                }
            }
            Err(GroupFailure::UniqueViolation(error) | GroupFailure::Other(error)) => fail_group(group, &error),
        }
    }
    tracing::debug!("sqlite writer stopped");
}

/// One group commit: lock, read the head and the group's state, plan, insert, commit.
fn write_group(connection: &mut Connection, group: &[PendingAppend]) -> Result<GroupPlan, GroupFailure> {
    let other = |operation| move |error| GroupFailure::Other(StoreError::backend(operation, error));
    // IMMEDIATE takes SQLite's write lock now, before the head is read: the global write lock.
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(other("begin group"))?;
    let head = read_head(&transaction).map_err(GroupFailure::Other)?;
    let stored = read_stored_state(&transaction, group).map_err(GroupFailure::Other)?;
    let plan = plan_group(&head, OffsetDateTime::now_utc(), &stored, group);
    insert_rows(&transaction, &plan.rows)?;
    transaction.commit().map_err(other("commit group"))?;
    Ok(plan)
}

fn read_stored_state(transaction: &Transaction<'_>, group: &[PendingAppend]) -> Result<StoredState, StoreError> {
    let failed = |error| StoreError::backend("read stream revisions", error);
    let mut state = StoredState::default();
    let mut revision_query = transaction
        .prepare_cached("SELECT revision FROM eventlog_events WHERE stream = ?1 ORDER BY revision DESC LIMIT 1")
        .map_err(failed)?;
    for stream in group_streams(group) {
        let last: Option<i64> = revision_query
            .query_row([stream.as_str()], |row| row.get(0))
            .optional()
            .map_err(failed)?;
        if let Some(last) = last {
            let last = u64::try_from(last)
                .map_err(|_| StoreError::corrupt(0, format!("stream {stream}: negative revision")))?;
            state.last_revisions.insert(stream.clone(), last);
        }
    }
    let failed = |error| StoreError::backend("read stored event ids", error);
    let mut id_query = transaction
        .prepare_cached("SELECT 1 FROM eventlog_events WHERE event_id = ?1")
        .map_err(failed)?;
    for event_id in group_event_ids(group) {
        let stored = id_query
            .query_row([event_id.as_bytes().as_slice()], |_| Ok(()))
            .optional()
            .map_err(failed)?;
        if stored.is_some() {
            state.stored_event_ids.insert(event_id);
        }
    }
    Ok(state)
}

fn insert_rows(transaction: &Transaction<'_>, rows: &[RecordedEvent]) -> Result<(), GroupFailure> {
    let mut insert = transaction
        .prepare_cached(
            "INSERT INTO eventlog_events (position, stream, revision, event_id, event_type, schema_version, payload, \
             actor, recorded_at_ns, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .map_err(|error| GroupFailure::Other(StoreError::backend("prepare insert", error)))?;
    for row in rows {
        let recorded_at_ns = i64::try_from(row.recorded_at.unix_timestamp_nanos())
            .map_err(|_| GroupFailure::Other(StoreError::corrupt(row.position, "recorded_at out of range")))?;
        insert
            .execute(params![
                bound(row.position),
                row.stream.as_str(),
                bound(row.revision),
                row.event_id.as_bytes().as_slice(),
                row.event_type,
                row.schema_version,
                row.payload,
                row.actor,
                recorded_at_ns,
                row.prev_hash.as_slice(),
                row.hash.as_slice(),
            ])
            .map_err(classify_insert_error)?;
    }
    Ok(())
}

fn classify_insert_error(error: rusqlite::Error) -> GroupFailure {
    let unique = matches!(
        &error,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    );
    let error = StoreError::backend("insert events", error);
    if unique {
        GroupFailure::UniqueViolation(error)
    } else {
        GroupFailure::Other(error)
    }
}

fn read_head(connection: &Connection) -> Result<Head, StoreError> {
    let row = connection
        .prepare_cached("SELECT position, hash, recorded_at_ns FROM eventlog_events ORDER BY position DESC LIMIT 1")
        .and_then(|mut statement| {
            statement
                .query_row([], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?, row.get::<_, i64>(2)?))
                })
                .optional()
        })
        .map_err(|error| StoreError::backend("read head", error))?;
    let Some((position, hash, recorded_at_ns)) = row else {
        return Ok(Head::EMPTY);
    };
    let position = u64::try_from(position).map_err(|_| StoreError::corrupt(0, "negative head position"))?;
    Ok(Head {
        position,
        hash: hash_from(position, "hash", &hash)?,
        recorded_at: Some(timestamp_from(position, recorded_at_ns)?),
    })
}

/// Steps positions `from..=to` in one read transaction and sends them in packed batches; stops early when the
/// scan was dropped. A hole or an undecodable row is an error after the batch of every event before it.
fn scan_rows(connection: &Connection, from: u64, to: u64, sender: &mpsc::Sender<ScanItem>) -> Result<(), StoreError> {
    let failed = |error| StoreError::backend("scan events", error);
    // A deferred transaction: its first read takes the snapshot every later step reads from.
    let transaction = connection.unchecked_transaction().map_err(failed)?;
    let mut statement = transaction
        .prepare_cached(&format!(
            "{SELECT_COLUMNS} WHERE position >= ?1 AND position <= ?2 ORDER BY position"
        ))
        .map_err(failed)?;
    let mut rows = statement.query(params![bound(from), bound(to)]).map_err(failed)?;
    let mut expected = from.max(1);
    let mut batch = PackedBatch::with_capacity();
    let send = |batch: PackedBatch| sender.blocking_send(Ok(batch.into_batch())).is_ok();
    loop {
        let row = match rows.next() {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(error) => {
                if !batch.is_empty() {
                    send(batch);
                }
                return Err(failed(error));
            }
        };
        if let Err(error) = pack_row(&mut batch, row, expected) {
            if !batch.is_empty() {
                send(batch);
            }
            return Err(error);
        }
        expected += 1;
        if batch.is_full() && !send(std::mem::replace(&mut batch, PackedBatch::with_capacity())) {
            return Ok(());
        }
    }
    if !batch.is_empty() {
        send(batch);
    }
    Ok(())
}

/// Packs one row, which must be at position `expected`; the same checks as [`decode_event`], without copies
/// beyond the batch's buffers.
fn pack_row(batch: &mut PackedBatch, row: &Row<'_>, expected: u64) -> Result<(), StoreError> {
    let failed = |error| StoreError::backend("decode event", error);
    let position = row.get::<_, i64>(0).map_err(failed)?;
    let position =
        u64::try_from(position).map_err(|_| StoreError::corrupt(0, format!("negative position {position}")))?;
    if position != expected {
        return Err(StoreError::corrupt(
            expected,
            format!("read position {position} where {expected} was due"),
        ));
    }
    let corrupt = |reason: &str| StoreError::corrupt(position, reason);
    let text = |index| {
        row.get_ref(index)
            .map_err(failed)?
            .as_str()
            .map_err(|error| StoreError::backend("decode event", rusqlite::Error::from(error)))
    };
    let blob = |index| {
        row.get_ref(index)
            .map_err(failed)?
            .as_blob()
            .map_err(|error| StoreError::backend("decode event", rusqlite::Error::from(error)))
    };
    let stream = text(1)?;
    if !StreamName::is_valid(stream) {
        return Err(corrupt("invalid stream name"));
    }
    let revision = u64::try_from(row.get::<_, i64>(2).map_err(failed)?).map_err(|_| corrupt("negative revision"))?;
    let event_id = Uuid::from_slice(blob(3)?).map_err(|_| corrupt("event_id is not 16 bytes"))?;
    let schema_version =
        u32::try_from(row.get::<_, i64>(5).map_err(failed)?).map_err(|_| corrupt("schema_version out of range"))?;
    batch.push(&PackedFields {
        position,
        stream,
        revision,
        event_id,
        event_type: text(4)?,
        schema_version,
        payload: blob(6)?,
        actor: text(7)?,
        recorded_at: timestamp_from(position, row.get(8).map_err(failed)?)?,
        prev_hash: hash_from(position, "prev_hash", blob(9)?)?,
        hash: hash_from(position, "hash", blob(10)?)?,
    });
    Ok(())
}

fn query_events(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let failed = |error| StoreError::backend("read events", error);
    let mut statement = connection.prepare_cached(sql).map_err(failed)?;
    let mut rows = statement.query(params).map_err(failed)?;
    let mut events = Vec::new();
    while let Some(row) = rows.next().map_err(failed)? {
        events.push(decode_event(row)?);
    }
    Ok(events)
}

fn decode_event(row: &Row<'_>) -> Result<RecordedEvent, StoreError> {
    let failed = |error| StoreError::backend("decode event", error);
    let position = row.get::<_, i64>(0).map_err(failed)?;
    let position =
        u64::try_from(position).map_err(|_| StoreError::corrupt(0, format!("negative position {position}")))?;
    let corrupt = |reason: &str| StoreError::corrupt(position, reason);
    let stream =
        StreamName::parse(row.get::<_, String>(1).map_err(failed)?).map_err(|_| corrupt("invalid stream name"))?;
    let revision = u64::try_from(row.get::<_, i64>(2).map_err(failed)?).map_err(|_| corrupt("negative revision"))?;
    let blob = |index| {
        row.get_ref(index)
            .map_err(failed)?
            .as_blob()
            .map_err(|error| StoreError::backend("decode event", rusqlite::Error::from(error)))
    };
    let event_id = Uuid::from_slice(blob(3)?).map_err(|_| corrupt("event_id is not 16 bytes"))?;
    let schema_version =
        u32::try_from(row.get::<_, i64>(5).map_err(failed)?).map_err(|_| corrupt("schema_version out of range"))?;
    Ok(RecordedEvent {
        position,
        stream,
        revision,
        event_id,
        event_type: row.get(4).map_err(failed)?,
        schema_version,
        payload: row.get(6).map_err(failed)?,
        actor: row.get(7).map_err(failed)?,
        recorded_at: timestamp_from(position, row.get(8).map_err(failed)?)?,
        prev_hash: hash_from(position, "prev_hash", blob(9)?)?,
        hash: hash_from(position, "hash", blob(10)?)?,
    })
}

fn hash_from(position: u64, field: &str, bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::corrupt(position, format!("{field} is {} bytes, not 32", bytes.len())))
}

fn timestamp_from(position: u64, unix_ns: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ns))
        .map_err(|_| StoreError::corrupt(position, "recorded_at out of range"))
}

/// A u64 position, revision or bound as SQLite's i64; nothing stored exceeds `i64::MAX`, so saturating keeps
/// every comparison's meaning.
fn bound(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn bound_usize(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
