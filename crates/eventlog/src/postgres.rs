//! The production backend: PostgreSQL, shared by any number of server instances.
//!
//! The global write lock is the one row of `eventlog_head`: every append transaction starts with
//! `SELECT .. FROM eventlog_head WHERE id = 1 FOR UPDATE`, reads the head, assigns positions after it, inserts,
//! moves the head and commits. PostgreSQL releases the row lock only after the commit is visible, so the next
//! writer (in this process or another instance) assigns later positions and commits later: commit order is
//! position order, positions have no gaps (no sequence, nothing to roll back), and readers simply read
//! `position >= from ORDER BY position` (docs/adr/001-gap-free-ordering.md).
//!
//! Each handle runs one writer task and commits queued appends in groups (see `group_commit`): a group planned
//! on the head the writer knows costs one round trip (`eventlog_append_group`, docs/adr/004 and 011) and one
//! fsync whatever its size, which is where throughput under concurrency comes from. When its assumptions fail
//! (another instance wrote) it is decided on the state read under the lock, in two pipelined round trips: the
//! group's revisions are read with one query over `UNNEST($1)` (one backward index probe per stream), its stored
//! event ids with one `= ANY($1)` query, and its rows are inserted with one `INSERT .. SELECT * FROM UNNEST(..)`.
//!
//! The head lock must be taken by a statement *before* the statements that read revisions and ids: under READ
//! COMMITTED each statement takes its snapshot when it starts, so reads folded into the locking statement (a
//! CTE) would see the state from before the previous writer's commit.

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use futures_core::Stream;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row, Statement};
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{
    AppendOutcome, Head, NewEvent, READ_EVENTS_MAX, RecordedEvent, check_positions_dense, check_revisions_dense,
};
use crate::group_commit::{
    APPEND_QUEUE_REQUESTS_MAX, GroupBuilder, GroupFailure, GroupPlan, PendingAppend, StoredState, assumed_state,
    deliver, fail_group, group_event_ids, group_streams, plan_group,
};
use crate::notify;
use crate::store::EventStore;
use crate::stream::ExpectedRevision;
use crate::stream::StreamName;

/// Key of the transaction-scoped advisory lock that serializes schema migrations across instances.
const MIGRATION_LOCK_KEY: i64 = 0x6576_656e_746c_6f67; // "eventlog"

/// Schema migrations, applied in order on connect; the version is the index plus one. Never edit a shipped one.
const MIGRATIONS: &[&str] = &[
    r"
    CREATE TABLE eventlog_events (
        position       BIGINT      PRIMARY KEY CHECK (position >= 1),
        stream         TEXT        NOT NULL,
        revision       BIGINT      NOT NULL CHECK (revision >= 0),
        event_id       UUID        NOT NULL,
        event_type     TEXT        NOT NULL,
        schema_version BIGINT      NOT NULL CHECK (schema_version BETWEEN 0 AND 4294967295),
        payload        BYTEA       NOT NULL,
        actor          TEXT        NOT NULL,
        recorded_at    TIMESTAMPTZ NOT NULL,
        prev_hash      BYTEA       NOT NULL CHECK (octet_length(prev_hash) = 32),
        hash           BYTEA       NOT NULL CHECK (octet_length(hash) = 32),
        CONSTRAINT eventlog_events_event_id_key UNIQUE (event_id),
        CONSTRAINT eventlog_events_stream_revision_key UNIQUE (stream, revision)
    );
    CREATE TABLE eventlog_head (
        id          SMALLINT    PRIMARY KEY CHECK (id = 1),
        position    BIGINT      NOT NULL,
        hash        BYTEA       NOT NULL CHECK (octet_length(hash) = 32),
        recorded_at TIMESTAMPTZ
    );
    INSERT INTO eventlog_head (id, position, hash, recorded_at) VALUES (1, 0, decode(repeat('00', 32), 'hex'), NULL);
",
    r"
    -- One round trip per group: lock the head, check that the head and the group's streams are where the writer
    -- planned them, insert the planned rows, move the head. Called as a single statement, so it commits (and
    -- releases the lock) when it returns. Answers 'committed', or what moved ('head moved', 'stream moved'),
    -- having written nothing; a stored event id fails the insert with unique_violation.
    CREATE FUNCTION eventlog_append_group(
        expected_position BIGINT, expected_hash BYTEA, commit_delay_us BIGINT,
        checked_streams TEXT[], checked_revisions BIGINT[],
        positions BIGINT[], streams TEXT[], revisions BIGINT[], event_ids UUID[], event_types TEXT[],
        schema_versions BIGINT[], payloads BYTEA[], actors TEXT[], recorded_ats TIMESTAMPTZ[],
        prev_hashes BYTEA[], hashes BYTEA[]
    ) RETURNS TEXT LANGUAGE plpgsql
    -- The statements below touch the head row or insert; their plans do not depend on the event table's size,
    -- so they are planned once per connection instead of on every call (the pool's sessions force custom plans).
    SET plan_cache_mode = auto
    AS $$
    DECLARE
        head_position BIGINT;
        head_hash BYTEA;
        moved BOOLEAN;
        last_index INTEGER := array_length(positions, 1);
    BEGIN
        SELECT position, hash INTO head_position, head_hash FROM eventlog_head WHERE id = 1 FOR UPDATE;
        IF head_position <> expected_position OR head_hash <> expected_hash THEN
            RETURN 'head moved';
        END IF;
        -- One backward index probe per stream (-1 stands for a stream that must not exist). This one reads the
        -- event table, so it is planned on every call (EXECUTE) for the table as it is now: a plan cached while
        -- the table was empty would scan it.
        EXECUTE 'SELECT EXISTS (
                     SELECT 1 FROM UNNEST($1::TEXT[], $2::BIGINT[]) AS checked(stream, revision)
                     LEFT JOIN LATERAL (
                         SELECT stored.revision FROM eventlog_events AS stored
                         WHERE stored.stream = checked.stream ORDER BY stored.revision DESC LIMIT 1
                     ) AS last ON TRUE
                     WHERE coalesce(last.revision, -1) <> checked.revision)'
            INTO moved USING checked_streams, checked_revisions;
        IF moved THEN
            RETURN 'stream moved';
        END IF;
        INSERT INTO eventlog_events (position, stream, revision, event_id, event_type, schema_version, payload,
                                     actor, recorded_at, prev_hash, hash)
        SELECT * FROM UNNEST(positions, streams, revisions, event_ids, event_types, schema_versions, payloads,
                             actors, recorded_ats, prev_hashes, hashes);
        UPDATE eventlog_head SET position = positions[last_index], hash = hashes[last_index],
                                 recorded_at = recorded_ats[last_index]
        WHERE id = 1;
        IF commit_delay_us > 0 THEN
            PERFORM pg_sleep(commit_delay_us / 1000000.0);
        END IF;
        RETURN 'committed';
    END
    $$;
",
    r"
    -- The same group append, cheaper and safe to race: every statement is planned once per connection (no
    -- EXECUTE planned on every call) and can only be planned as index probes, whatever the statistics say
    -- (enable_seqscan off; jit off so a disabled path's cost can never trigger compilation). A head still
    -- behind the expected one answers 'head behind': the group was planned after a group of the same writer
    -- that has not taken the lock yet, which is no sign of another writer.
    CREATE OR REPLACE FUNCTION eventlog_append_group(
        expected_position BIGINT, expected_hash BYTEA, commit_delay_us BIGINT,
        checked_streams TEXT[], checked_revisions BIGINT[],
        positions BIGINT[], streams TEXT[], revisions BIGINT[], event_ids UUID[], event_types TEXT[],
        schema_versions BIGINT[], payloads BYTEA[], actors TEXT[], recorded_ats TIMESTAMPTZ[],
        prev_hashes BYTEA[], hashes BYTEA[]
    ) RETURNS TEXT LANGUAGE plpgsql
    SET enable_seqscan = off
    SET jit = off
    SET plan_cache_mode = force_generic_plan
    AS $$
    DECLARE
        head_position BIGINT;
        head_hash BYTEA;
        last_index INTEGER := array_length(positions, 1);
    BEGIN
        SELECT position, hash INTO head_position, head_hash FROM eventlog_head WHERE id = 1 FOR UPDATE;
        IF head_position < expected_position THEN
            RETURN 'head behind';
        END IF;
        IF head_position <> expected_position OR head_hash <> expected_hash THEN
            RETURN 'head moved';
        END IF;
        -- One backward index probe per stream (-1 stands for a stream that must not exist).
        IF EXISTS (
            SELECT 1 FROM UNNEST(checked_streams, checked_revisions) AS checked(stream, revision)
            LEFT JOIN LATERAL (
                SELECT stored.revision FROM eventlog_events AS stored
                WHERE stored.stream = checked.stream ORDER BY stored.revision DESC LIMIT 1
            ) AS last ON TRUE
            WHERE coalesce(last.revision, -1) <> checked.revision
        ) THEN
            RETURN 'stream moved';
        END IF;
        INSERT INTO eventlog_events (position, stream, revision, event_id, event_type, schema_version, payload,
                                     actor, recorded_at, prev_hash, hash)
        SELECT * FROM UNNEST(positions, streams, revisions, event_ids, event_types, schema_versions, payloads,
                             actors, recorded_ats, prev_hashes, hashes);
        UPDATE eventlog_head SET position = positions[last_index], hash = hashes[last_index],
                                 recorded_at = recorded_ats[last_index]
        WHERE id = 1;
        IF commit_delay_us > 0 THEN
            PERFORM pg_sleep(commit_delay_us / 1000000.0);
        END IF;
        RETURN 'committed';
    END
    $$;
",
    r"
    -- Payloads over TOAST's threshold (~2 KiB: a reconciliation run's findings chunks, ~300 KiB each) compressed
    -- with lz4 instead of pglz: several times less CPU to write and read back for about as much saved. Only new
    -- values; a server built without lz4 keeps pglz.
    DO $$
    BEGIN
        EXECUTE 'ALTER TABLE eventlog_events ALTER COLUMN payload SET COMPRESSION lz4';
    EXCEPTION WHEN feature_not_supported THEN
        RAISE NOTICE 'lz4 is not available; event payloads stay compressed with pglz';
    END
    $$;
",
];

/// The columns of [`RecordedEvent`], in the order `decode_event` reads them.
macro_rules! select_events {
    ($condition:literal) => {
        concat!(
            "SELECT position, stream, revision, event_id, event_type, schema_version, payload, actor, recorded_at, \
             prev_hash, hash FROM eventlog_events ",
            $condition
        )
    };
}

const READ_RANGE_SQL: &str = select_events!("WHERE position >= $1 AND position < $2 ORDER BY position LIMIT $3");

/// From this many events on, `read_all` reads its page as two concurrent halves on two connections.
const READ_SPLIT_EVENTS_MIN: usize = 2_000;
const READ_STREAM_SQL: &str = select_events!("WHERE stream = $1 AND revision >= $2 ORDER BY revision LIMIT $3");

/// Tuning for a [`PostgresStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Connections the handle's pool opens at most, the writer's included (at least 2).
    pub pool_connections_max: usize,
    /// Fault injection for tests; keep it zero (the default) in production.
    ///
    /// When non-zero, the writer sleeps a pseudo-random time up to this long after inserting a group and before
    /// committing it, holding the head lock with its rows written but invisible. Tests use it to widen the window
    /// in which other handles' writers queue on the lock and readers poll, and show that positions still become
    /// visible in order.
    pub commit_delay_max: Duration,
    /// Group commits the writer has on the wire at once, each on its own connection (at least 1; default
    /// [`PIPELINED_GROUPS_DEFAULT`]).
    ///
    /// Commits on the log are serial (each group holds the head lock until its commit is durable), so a second
    /// group on the wire does not share the first one's fsync: it only saves the round trip between them, and
    /// it splits the waiting appends into two groups that each pay a commit. With 2, the second group is
    /// planned on the head the first will leave and waits on the lock while the first commits; with 1, appends
    /// that arrive while a group commits wait and go together in the next one (docs/adr/011).
    pub pipelined_groups_max: usize,
}

/// Group commits on the wire at once by default: one, so that appends arriving during a commit share the next.
pub const PIPELINED_GROUPS_DEFAULT: usize = 1;

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_connections_max: 8,
            commit_delay_max: Duration::ZERO,
            pipelined_groups_max: PIPELINED_GROUPS_DEFAULT,
        }
    }
}

/// An [`EventStore`] in a PostgreSQL database; any number of handles and instances may share the database.
///
/// Dropping the handle stops its writer once the queued appends are committed.
#[derive(Debug)]
pub struct PostgresStore {
    queue: mpsc::Sender<PendingAppend>,
    published: Arc<watch::Sender<Head>>,
    pool: Pool,
    fallback_groups: Arc<AtomicU64>,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`, no TLS) with default options.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let config =
            tokio_postgres::Config::from_str(url).map_err(|error| StoreError::backend("parse postgres url", error))?;
        Self::connect_with(config, PostgresOptions::default()).await
    }

    /// Connects with `config`, applies missing migrations (serialized across instances by an advisory lock),
    /// and starts the writer task. Must be called inside a Tokio runtime.
    #[tracing::instrument(skip_all, fields(dbname = config.get_dbname().unwrap_or("")))]
    pub async fn connect_with(
        mut config: tokio_postgres::Config,
        options: PostgresOptions,
    ) -> Result<Self, StoreError> {
        plan_every_statement_for_the_table_as_it_is(&mut config);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_connections_max.max(2))
            .build()
            .map_err(|error| StoreError::backend("build postgres pool", error))?;
        let mut client = pool
            .get()
            .await
            .map_err(|error| StoreError::backend("connect postgres", error))?;
        migrate(&mut client).await?;
        let head = read_head(&client).await?;
        drop(client);
        let published = Arc::new(watch::Sender::new(head));
        let (queue, receiver) = mpsc::channel(APPEND_QUEUE_REQUESTS_MAX);
        let commit_delay = CommitDelay::new(options.commit_delay_max);
        let fallback_groups = Arc::new(AtomicU64::new(0));
        tokio::spawn(run_writer(
            pool.clone(),
            receiver,
            Arc::clone(&published),
            commit_delay,
            head,
            Arc::clone(&fallback_groups),
            options.pipelined_groups_max,
        ));
        Ok(Self {
            queue,
            published,
            pool,
            fallback_groups,
        })
    }

    /// Group commits this handle's writer decided on the state read under the head lock since it connected, each
    /// costing a second round trip with the lock held, instead of committing them in one round trip as planned.
    /// It grows while other handles or instances write the same database, when a caller's expected revision is
    /// stale, and for groups holding an append that expects [`ExpectedRevision::Any`] (no revision to plan on).
    pub fn fallback_groups(&self) -> u64 {
        self.fallback_groups.load(Ordering::Relaxed)
    }

    async fn client(&self, operation: &'static str) -> Result<Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|error| StoreError::backend(operation, error))
    }
}

#[async_trait]
impl EventStore for PostgresStore {
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
        let client = self.client("read stream").await?;
        let limit = bound_usize(limit.min(READ_EVENTS_MAX));
        let params: [&(dyn ToSql + Sync); 3] = [&stream.as_str(), &bound(from_revision), &limit];
        let events = query_events(&client, "read stream", READ_STREAM_SQL, &params).await?;
        check_revisions_dense(from_revision, &events)?;
        Ok(events)
    }

    #[tracing::instrument(skip(self), fields(stream = "$all"))]
    async fn read_all(&self, from_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let from_position = from_position.max(1);
        let limit = limit.min(READ_EVENTS_MAX);
        let events = if limit < READ_SPLIT_EVENTS_MIN {
            self.read_range(from_position, u64::MAX, limit).await?
        } else {
            self.read_halves(from_position, limit).await?
        };
        check_positions_dense(from_position, &events)?;
        Ok(events)
    }

    #[tracing::instrument(skip(self), fields(stream = "$all"))]
    async fn head(&self) -> Result<Head, StoreError> {
        let client = self.client("read head").await?;
        read_head(&client).await
    }

    #[tracing::instrument(skip(self), fields(stream = "$all"))]
    async fn wait_for_position_after(&self, position: u64, timeout: Duration) -> Result<Head, StoreError> {
        notify::wait_for_position_after(&self.published, position, timeout, || self.head()).await
    }
}

impl PostgresStore {
    /// Reads up to `limit` events with `from_position <= position < until_position`.
    async fn read_range(
        &self,
        from_position: u64,
        until_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let client = self.client("read all").await?;
        let limit = bound_usize(limit);
        let params: [&(dyn ToSql + Sync); 3] = [&bound(from_position), &bound(until_position), &limit];
        query_events(&client, "read all", READ_RANGE_SQL, &params).await
    }

    /// Reads a large page as two halves at once, so that two server backends produce rows while this process
    /// decodes them. Positions are dense, so the first half is `[from, from + limit/2)`. The halves run in
    /// different snapshots: if the first comes back short, the head was inside it when it ran, and the second
    /// (taken later) may have seen events past a point the first did not; only the first is returned then.
    async fn read_halves(&self, from_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let first_limit = limit / 2;
        // usize -> u64 is lossless (usize is at most 64 bits).
        let middle = from_position.saturating_add(first_limit as u64);
        let (mut first, second) = tokio::try_join!(
            self.read_range(from_position, middle, first_limit),
            self.read_range(middle, u64::MAX, limit - first_limit),
        )?;
        if first.len() == first_limit {
            first.extend(second);
        }
        Ok(first)
    }
}

/// Makes every connection of the pool plan each execution of a prepared statement with the table's size at that
/// moment (`plan_cache_mode = force_custom_plan`), instead of caching a generic plan after five executions.
///
/// A generic plan is costed once, on whatever the statistics said then: on a fresh database the event table is
/// empty, a sequential scan looks cheapest, and that plan stays while the table grows to millions of rows (until
/// an ANALYZE, whenever autovacuum gets to it). The group commit's lookups run under the global write lock, so a
/// plan that scans the table stalls every writer. A custom plan reads the table's current size from its file
/// every time, so it finds the indexes however fresh the statistics are; planning these short statements costs a
/// few microseconds of server time.
fn plan_every_statement_for_the_table_as_it_is(config: &mut tokio_postgres::Config) {
    let setting = "-c plan_cache_mode=force_custom_plan";
    let options = match config.get_options() {
        Some(existing) if !existing.is_empty() => format!("{existing} {setting}"),
        _ => setting.to_owned(),
    };
    config.options(&options);
}

async fn migrate(client: &mut Object) -> Result<(), StoreError> {
    let failed = |error| StoreError::backend("migrate postgres schema", error);
    let transaction = client.transaction().await.map_err(failed)?;
    // Transaction-scoped, so the lock cannot outlive a failed migration on a pooled connection.
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(failed)?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS eventlog_migrations (
                 version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .map_err(failed)?;
    let applied: i32 = transaction
        .query_one("SELECT coalesce(max(version), 0) FROM eventlog_migrations", &[])
        .await
        .map_err(failed)?
        .try_get(0)
        .map_err(failed)?;
    let known = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
    if applied > known {
        return Err(StoreError::SchemaTooNew {
            found: i64::from(applied),
            known: i64::from(known),
        });
    }
    for (version, migration) in (1_i32..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(applied).unwrap_or(usize::MAX))
    {
        transaction.batch_execute(migration).await.map_err(failed)?;
        transaction
            .execute("INSERT INTO eventlog_migrations (version) VALUES ($1)", &[&version])
            .await
            .map_err(failed)?;
        tracing::info!(version, "applied postgres eventlog migration");
    }
    transaction.commit().await.map_err(failed)
}

/// Groups a writer commits the slow way after its head turned out to have moved, before it plans on its own
/// head again: another instance is writing, and most optimistic attempts would only cost a wasted round trip.
const PESSIMISTIC_GROUPS_AFTER_HEAD_MOVED: usize = 16;

/// The writer task: commits queued appends in groups until every handle's queue sender is gone.
///
/// In the common case (one instance, or a quiet other one) each group is planned on the head this writer
/// knows and committed in one round trip by `eventlog_append_group`, up to
/// [`PostgresOptions::pipelined_groups_max`] groups in flight, each on its own connection. A later group is
/// planned on the head the one before will leave; two connections give no order, so its call may reach the head
/// lock first: it then finds the head behind its plan, waits until the earlier call has ended, and calls again
/// (see `fly`). Only a head that moved elsewhere is taken as another writer. A group whose assumptions did not hold is committed the slow way inside its flight (the function
/// checked and wrote nothing), and the pipeline drains before the writer trusts its view of the head again.
async fn run_writer(
    pool: Pool,
    mut queue: mpsc::Receiver<PendingAppend>,
    published: Arc<watch::Sender<Head>>,
    commit_delay: CommitDelay,
    head: Head,
    fallback_groups: Arc<AtomicU64>,
    pipelined_groups_max: usize,
) {
    let mut writer = Writer {
        pipelined_groups_max: pipelined_groups_max.max(1),
        pool,
        spare: Vec::new(),
        commit_delay,
        known_head: Some(head),
        pessimistic_groups: 0,
        flights: VecDeque::new(),
        last_call: None,
        published,
        fallback_groups,
    };
    let mut previous_appends = 1;
    loop {
        let first = match writer.flights.front_mut() {
            Some(oldest) => tokio::select! {
                biased;
                landed = &mut oldest.handle => {
                    writer.land_oldest(landed).await;
                    continue;
                }
                next = queue.recv() => next,
            },
            None => queue.recv().await,
        };
        let Some(first) = first else {
            break;
        };
        let mut builder = GroupBuilder::start(first, previous_appends);
        while !builder.drain(&mut queue) {
            tokio::task::yield_now().await;
        }
        let group = builder.finish();
        if group.is_empty() {
            continue;
        }
        previous_appends = group.len();
        writer.write(group).await;
    }
    writer.land_all().await;
    tracing::debug!("postgres writer stopped");
}

/// A handle's writer: its connections, the groups it has on the wire, and the head it believes the log has.
struct Writer {
    pool: Pool,
    /// Groups on the wire at most.
    pipelined_groups_max: usize,
    /// Connections not carrying a flight.
    spare: Vec<Object>,
    commit_delay: CommitDelay,
    /// The head the log will have once every flight landed, as planned; `None` when unknown (after a group
    /// committed the slow way or failed), until a slow group reads it.
    known_head: Option<Head>,
    /// Groups still to commit the slow way before planning on `known_head` again.
    pessimistic_groups: usize,
    /// Groups on the wire, oldest first; they commit in this order (each checks the head the one before leaves).
    flights: VecDeque<Flight>,
    /// Told when the newest flight's call of `eventlog_append_group` has ended (true: committed as planned); the
    /// next flight waits on it if it reaches the head lock first.
    last_call: Option<oneshot::Receiver<bool>>,
    published: Arc<watch::Sender<Head>>,
    /// Groups decided on the state read under the lock (see [`PostgresStore::fallback_groups`]).
    fallback_groups: Arc<AtomicU64>,
}

/// A group on the wire: its own task on its own connection.
struct Flight {
    handle: tokio::task::JoinHandle<Landed>,
}

/// What a flight brings back.
struct Landed {
    client: Option<Object>,
    group: Vec<PendingAppend>,
    outcome: FlightOutcome,
}

enum FlightOutcome {
    /// Committed as planned: the head is what the writer predicted.
    AsPlanned(GroupPlan),
    /// The plan's assumptions did not hold; the group was then decided on the state read under the lock.
    Replanned {
        result: Result<GroupPlan, GroupFailure>,
        head_moved: bool,
    },
}

impl Writer {
    /// Commits `group`: sent as a flight when the writer can plan it on its own view of the head, otherwise (after
    /// the pipeline has landed) the slow way, deciding on the state read under the lock.
    async fn write(&mut self, group: Vec<PendingAppend>) {
        if self.flights.len() >= self.pipelined_groups_max
            && let Some(oldest) = self.flights.pop_front()
        {
            let landed = oldest.handle.await;
            self.land(landed).await;
        }
        let planned = match (self.pessimistic_groups, self.known_head, assumed_state(&group)) {
            (0, Some(head), Some(assumed)) => Some(plan_group(&head, OffsetDateTime::now_utc(), &assumed, &group)),
            _ => None,
        };
        self.pessimistic_groups = self.pessimistic_groups.saturating_sub(1);
        match planned {
            Some(plan) if !plan.rows.is_empty() => self.send(group, plan).await,
            _ => self.write_slowly(group).await,
        }
    }

    /// Sends a planned group as a flight (or, with one group on the wire at most, commits it right here).
    async fn send(&mut self, group: Vec<PendingAppend>, plan: GroupPlan) {
        let client = match self.client().await {
            Ok(client) => client,
            Err(GroupFailure::UniqueViolation(error) | GroupFailure::Other(error)) => {
                fail_group(group, &error);
                return;
            }
        };
        self.known_head = Some(plan.head);
        let delay = self.commit_delay.next();
        let (call_ended, last_call) = oneshot::channel();
        // Only a flight still on the wire can hold the head back.
        let predecessor = self.last_call.replace(last_call).filter(|_| !self.flights.is_empty());
        let call = PlannedCall {
            plan,
            commit_delay: delay,
            predecessor,
            call_ended,
            fallback_groups: Arc::clone(&self.fallback_groups),
        };
        if self.pipelined_groups_max == 1 {
            // Nothing else goes on the wire until it lands: commit it here, saving a task and its wake-ups.
            let landed = fly(client, group, call).await;
            self.land(Ok(landed)).await;
            return;
        }
        let handle = tokio::spawn(fly(client, group, call));
        self.flights.push_back(Flight { handle });
    }

    /// Lands every flight, then commits `group` deciding on the state read under the lock (two round trips).
    async fn write_slowly(&mut self, group: Vec<PendingAppend>) {
        self.land_all().await;
        let delay = self.commit_delay.next();
        let client = match self.client().await {
            Ok(client) => client,
            Err(GroupFailure::UniqueViolation(error) | GroupFailure::Other(error)) => {
                fail_group(group, &error);
                return;
            }
        };
        self.fallback_groups.fetch_add(1, Ordering::Relaxed);
        let result = write_group_on(&client, &group, delay).await;
        let client = release(client, result.is_ok()).await;
        self.spare.extend(client);
        self.known_head = result.as_ref().ok().map(|plan| plan.head);
        self.finish(group, result).await;
    }

    /// Lands the oldest flight, already awaited by the caller.
    async fn land_oldest(&mut self, landed: Result<Landed, tokio::task::JoinError>) {
        self.flights.pop_front();
        self.land(landed).await;
    }

    async fn land_all(&mut self) {
        while let Some(flight) = self.flights.pop_front() {
            let landed = flight.handle.await;
            self.land(landed).await;
        }
    }

    /// Answers a landed flight's appends. A flight that did not commit as planned leaves the writer's view of the
    /// head unknown: the flights behind it were planned on it (they find that out themselves, under the lock),
    /// so they land first and the last one's head is the writer's view again.
    async fn land(&mut self, landed: Result<Landed, tokio::task::JoinError>) {
        let landed = match landed {
            Ok(landed) => landed,
            Err(error) => {
                // A flight task panicked; its callers' replies were dropped with it (they see the store closed).
                tracing::error!(%error, "a group commit task failed");
                self.known_head = None;
                return;
            }
        };
        self.spare.extend(landed.client);
        match landed.outcome {
            FlightOutcome::AsPlanned(plan) => {
                if self.flights.is_empty() {
                    self.known_head = Some(plan.head);
                }
                deliver(landed.group, plan, &self.published);
            }
            FlightOutcome::Replanned { result, head_moved } => {
                if head_moved {
                    // Another instance writes too: stop guessing for a while.
                    self.pessimistic_groups = PESSIMISTIC_GROUPS_AFTER_HEAD_MOVED;
                }
                self.known_head = result.as_ref().ok().map(|plan| plan.head);
                self.finish(landed.group, result).await;
                Box::pin(self.land_all()).await;
            }
        }
    }

    /// Answers a group decided the slow way; a group a unique index refused as a whole is retried one append at
    /// a time (unreachable while every writer takes the global lock).
    async fn finish(&mut self, group: Vec<PendingAppend>, result: Result<GroupPlan, GroupFailure>) {
        match result {
            Ok(plan) => deliver(group, plan, &self.published),
            Err(GroupFailure::UniqueViolation(error)) if group.len() > 1 => {
                tracing::warn!(%error, "unique index refused a planned group; retrying its appends one by one");
                for pending in group {
                    let single = vec![pending];
                    let client = match self.client().await {
                        Ok(client) => client,
                        Err(GroupFailure::UniqueViolation(error) | GroupFailure::Other(error)) => {
                            fail_group(single, &error);
                            continue;
                        }
                    };
                    let result = write_group_on(&client, &single, self.commit_delay.next()).await;
                    self.spare.extend(release(client, result.is_ok()).await);
                    self.known_head = result.as_ref().ok().map(|plan| plan.head);
                    match result {
                        Ok(plan) => deliver(single, plan, &self.published),
                        Err(GroupFailure::UniqueViolation(error) | GroupFailure::Other(error)) => {
                            fail_group(single, &error);
                        }
                    }
                }
            }
            Err(GroupFailure::UniqueViolation(error) | GroupFailure::Other(error)) => fail_group(group, &error),
        }
    }

    async fn client(&mut self) -> Result<Object, GroupFailure> {
        match self.spare.pop() {
            Some(client) => Ok(client),
            None => self
                .pool
                .get()
                .await
                .map_err(|error| GroupFailure::Other(StoreError::backend("connect writer", error))),
        }
    }
}

/// A planned group's call of `eventlog_append_group`, and what it waits on and reports to.
struct PlannedCall {
    plan: GroupPlan,
    commit_delay: Duration,
    /// Told when the previous flight's call has ended (true: it committed as planned); `None` when no flight was
    /// on the wire as this one was sent.
    predecessor: Option<oneshot::Receiver<bool>>,
    /// Tells the next flight when this call has ended.
    call_ended: oneshot::Sender<bool>,
    fallback_groups: Arc<AtomicU64>,
}

/// One flight: the planned group committed in one round trip by `eventlog_append_group`, or, when its
/// assumptions did not hold, decided again on the state read under the lock.
///
/// A call that finds the head behind its plan overtook the previous flight on the way to the lock (each has its
/// own connection): it waits until that flight's call has ended and, if it committed as planned, calls again.
#[tracing::instrument(skip_all, fields(backend = "postgres", appends = group.len()))]
async fn fly(client: Object, group: Vec<PendingAppend>, call: PlannedCall) -> Landed {
    let PlannedCall {
        plan,
        commit_delay,
        predecessor,
        call_ended,
        fallback_groups,
    } = call;
    let mut called = call_append_group(&client, &group, &plan, commit_delay).await;
    if matches!(called, Ok(Called::HeadBehind)) {
        let predecessor_committed = match predecessor {
            Some(predecessor) => predecessor.await.unwrap_or(false),
            None => false,
        };
        called = if predecessor_committed {
            call_append_group(&client, &group, &plan, commit_delay).await
        } else {
            // The head this group was planned on never came: decide it again on the head as it is.
            Ok(Called::Replan)
        };
    }
    // The next flight may be waiting for this answer; it must not wait for a slow commit as well.
    if call_ended.send(matches!(called, Ok(Called::Committed))).is_err() {
        tracing::trace!("no flight waits on this one");
    }
    let outcome = match called {
        Ok(Called::Committed) => FlightOutcome::AsPlanned(plan),
        Ok(called) => {
            fallback_groups.fetch_add(1, Ordering::Relaxed);
            FlightOutcome::Replanned {
                result: write_group_on(&client, &group, commit_delay).await,
                // Still behind after the previous flight committed: someone else holds the head back.
                head_moved: matches!(called, Called::HeadMoved | Called::HeadBehind),
            }
        }
        Err(error) => FlightOutcome::Replanned {
            result: Err(error),
            head_moved: false,
        },
    };
    let succeeded = !matches!(&outcome, FlightOutcome::Replanned { result: Err(_), .. });
    let client = release(client, succeeded).await;
    Landed { client, group, outcome }
}

/// Keeps a connection for the next group, or closes it. After a failure the transaction is rolled back
/// explicitly; if even that fails, the connection is taken out of the pool and closed, so no half-done
/// transaction can reach another user of the pool.
async fn release(client: Object, succeeded: bool) -> Option<Object> {
    if succeeded {
        return Some(client);
    }
    match client.batch_execute("ROLLBACK").await {
        Ok(()) => Some(client),
        Err(error) => {
            tracing::warn!(%error, "discarding a writer connection after a failed rollback");
            drop(Object::take(client));
            None
        }
    }
}

/// What `eventlog_append_group` answered.
enum Called {
    Committed,
    /// The head is before the position the group was planned after: a group planned before it has not committed.
    HeadBehind,
    HeadMoved,
    /// A stream was not at the assumed revision, or an event id was already stored: nothing was written.
    Replan,
}

/// Calls `eventlog_append_group` with a group planned on `plan`'s assumptions (the head it was planned after and
/// the revision each stream's first append expects).
async fn call_append_group(
    client: &Object,
    group: &[PendingAppend],
    plan: &GroupPlan,
    commit_delay: Duration,
) -> Result<Called, GroupFailure> {
    let failed = |error| GroupFailure::Other(StoreError::backend("append group", error));
    let Some(first) = plan.rows.first() else {
        return Ok(Called::Replan);
    };
    let statement = client.prepare_cached(APPEND_GROUP_SQL).await.map_err(failed)?;
    let streams = group_streams(group);
    let checked_streams: Vec<&str> = streams.iter().map(|stream| stream.as_str()).collect();
    // Every stream's first append expects Exact or NoStream (the plan was made on `assumed_state`).
    let checked_revisions: Vec<i64> = streams
        .iter()
        .map(|stream| {
            let first_append = group.iter().find(|pending| &&pending.stream == stream);
            match first_append.map(|pending| pending.expected) {
                Some(ExpectedRevision::Exact(revision)) => bound(revision),
                _ => -1,
            }
        })
        .collect();
    let columns = Columns::of(&plan.rows);
    let head_hash: &[u8] = &first.prev_hash;
    let head_position = bound(first.position - 1);
    let delay_us = i64::try_from(commit_delay.as_micros()).unwrap_or(i64::MAX);
    let params: [&(dyn ToSql + Sync); 16] = [
        &head_position,
        &head_hash,
        &delay_us,
        &checked_streams,
        &checked_revisions,
        &columns.positions,
        &columns.streams,
        &columns.revisions,
        &columns.event_ids,
        &columns.event_types,
        &columns.schema_versions,
        &columns.payloads,
        &columns.actors,
        &columns.recorded_ats,
        &columns.prev_hashes,
        &columns.hashes,
    ];
    let row = match client.query_one(&statement, &params).await {
        Ok(row) => row,
        // A stored event id (the plan assumed none): decide again with the ids read under the lock.
        Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => return Ok(Called::Replan),
        Err(error) => return Err(failed(error)),
    };
    let answer: &str = row.try_get(0).map_err(failed)?;
    Ok(match answer {
        "committed" => Called::Committed,
        "head behind" => Called::HeadBehind,
        "head moved" => Called::HeadMoved,
        _ => Called::Replan,
    })
}

/// The call of the group append function (migration 2).
const APPEND_GROUP_SQL: &str = "SELECT eventlog_append_group($1, $2, $3, $4::TEXT[], $5::BIGINT[], $6::BIGINT[], \
     $7::TEXT[], $8::BIGINT[], $9::UUID[], $10::TEXT[], $11::BIGINT[], $12::BYTEA[], $13::TEXT[], \
     $14::TIMESTAMPTZ[], $15::BYTEA[], $16::BYTEA[])";

/// The statements of a group commit, prepared once per connection.
struct GroupStatements {
    begin: Statement,
    commit: Statement,
    lock_head: Statement,
    select_revisions: Statement,
    select_ids: Statement,
    insert: Statement,
    move_head: Statement,
}

impl GroupStatements {
    async fn prepare(client: &Object) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            begin: client.prepare_cached("BEGIN").await?,
            commit: client.prepare_cached("COMMIT").await?,
            lock_head: client
                .prepare_cached("SELECT position, hash, recorded_at FROM eventlog_head WHERE id = 1 FOR UPDATE")
                .await?,
            select_revisions: client
                // One backward index probe per stream: max(revision) .. GROUP BY would scan whole streams.
                .prepare_cached(
                    "SELECT requested.stream, last.revision FROM UNNEST($1::TEXT[]) AS requested(stream) \
                     CROSS JOIN LATERAL (SELECT revision FROM eventlog_events AS stored \
                     WHERE stored.stream = requested.stream ORDER BY revision DESC LIMIT 1) AS last",
                )
                .await?,
            select_ids: client
                .prepare_cached("SELECT event_id FROM eventlog_events WHERE event_id = ANY($1)")
                .await?,
            insert: client
                .prepare_cached(
                    "INSERT INTO eventlog_events (position, stream, revision, event_id, event_type, schema_version, \
                     payload, actor, recorded_at, prev_hash, hash) \
                     SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::UUID[], $5::TEXT[], \
                     $6::BIGINT[], $7::BYTEA[], $8::TEXT[], $9::TIMESTAMPTZ[], $10::BYTEA[], $11::BYTEA[])",
                )
                .await?,
            move_head: client
                .prepare_cached("UPDATE eventlog_head SET position = $1, hash = $2, recorded_at = $3 WHERE id = 1")
                .await?,
        })
    }
}

/// Two pipelined round trips: (BEGIN, lock the head, read the group's revisions and stored ids), then (insert,
/// move the head, COMMIT). The server runs a pipeline in order, so the reads see the state under the lock.
/// A failed statement aborts the transaction, and the pipelined COMMIT then only rolls back.
async fn write_group_on(
    client: &Object,
    group: &[PendingAppend],
    commit_delay: Duration,
) -> Result<GroupPlan, GroupFailure> {
    let statements = GroupStatements::prepare(client)
        .await
        .map_err(|error| GroupFailure::Other(StoreError::backend("prepare group statements", error)))?;
    let plan = lock_and_plan(client, &statements, group).await?;
    if plan.rows.is_empty() {
        client
            .execute(&statements.commit, &[])
            .await
            .map_err(|error| GroupFailure::Other(StoreError::backend("commit empty group", error)))?;
        return Ok(plan);
    }
    insert_and_commit(client, &statements, &plan.rows, commit_delay).await?;
    Ok(plan)
}

/// First round trip: begin, take the head lock, read the group's revisions and stored ids; then plan.
async fn lock_and_plan(
    client: &Object,
    statements: &GroupStatements,
    group: &[PendingAppend],
) -> Result<GroupPlan, GroupFailure> {
    let streams: Vec<&str> = group_streams(group).into_iter().map(StreamName::as_str).collect();
    let event_ids = group_event_ids(group);
    let revision_params: [&(dyn ToSql + Sync); 1] = [&streams];
    let id_params: [&(dyn ToSql + Sync); 1] = [&event_ids];
    // tokio-postgres sends each request when its future is first polled, and try_join! polls in order.
    let (_, head_row, revision_rows, id_rows) = tokio::try_join!(
        client.execute(&statements.begin, &[]),
        client.query_one(&statements.lock_head, &[]),
        client.query(&statements.select_revisions, &revision_params),
        client.query(&statements.select_ids, &id_params),
    )
    .map_err(|error| GroupFailure::Other(StoreError::backend("lock head and read group state", error)))?;
    let head = decode_head(&head_row).map_err(GroupFailure::Other)?;
    let stored = decode_stored_state(&revision_rows, &id_rows).map_err(GroupFailure::Other)?;
    Ok(plan_group(&head, OffsetDateTime::now_utc(), &stored, group))
}

/// Second round trip: insert the planned rows, move the head to the last of them, commit.
async fn insert_and_commit(
    client: &Object,
    statements: &GroupStatements,
    rows: &[RecordedEvent],
    commit_delay: Duration,
) -> Result<(), GroupFailure> {
    let Some(last) = rows.last() else {
        return Ok(());
    };
    let columns = Columns::of(rows);
    let hash: &[u8] = &last.hash;
    let head_position = bound(last.position);
    let head_params: [&(dyn ToSql + Sync); 3] = [&head_position, &hash, &last.recorded_at];
    let params: [&(dyn ToSql + Sync); 11] = [
        &columns.positions,
        &columns.streams,
        &columns.revisions,
        &columns.event_ids,
        &columns.event_types,
        &columns.schema_versions,
        &columns.payloads,
        &columns.actors,
        &columns.recorded_ats,
        &columns.prev_hashes,
        &columns.hashes,
    ];
    let inserted = if commit_delay.is_zero() {
        let (inserted, _, _) = tokio::try_join!(
            client.execute(&statements.insert, &params),
            client.execute(&statements.move_head, &head_params),
            client.execute(&statements.commit, &[]),
        )
        .map_err(classify_write_error)?;
        inserted
    } else {
        let (inserted, _) = tokio::try_join!(
            client.execute(&statements.insert, &params),
            client.execute(&statements.move_head, &head_params),
        )
        .map_err(classify_write_error)?;
        tokio::time::sleep(commit_delay).await;
        client
            .execute(&statements.commit, &[])
            .await
            .map_err(classify_write_error)?;
        inserted
    };
    if inserted != rows.len() as u64 {
        // Unreachable while the statement is an INSERT of exactly these rows; checked because the commit already
        // happened and a short insert would break the chain.
        return Err(GroupFailure::Other(StoreError::corrupt(
            last.position,
            format!("inserted {inserted} rows of {}", rows.len()),
        )));
    }
    Ok(())
}

/// The pseudo-random delays of [`PostgresOptions::commit_delay_max`]; a xorshift generator is plenty for
/// spreading test timings and needs no dependency.
#[derive(Debug)]
struct CommitDelay {
    max: Duration,
    state: u64,
}

impl CommitDelay {
    fn new(max: Duration) -> Self {
        // Any non-zero seed works; a fresh one per handle keeps two delayed handles out of lockstep.
        let state = (Uuid::new_v4().as_u128() as u64) | 1;
        Self { max, state }
    }

    fn next(&mut self) -> Duration {
        if self.max.is_zero() {
            return Duration::ZERO;
        }
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let max_us = u64::try_from(self.max.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(self.state % (max_us.saturating_add(1)))
    }
}

/// The planned rows as one array per column, for `UNNEST`.
struct Columns<'a> {
    positions: Vec<i64>,
    streams: Vec<&'a str>,
    revisions: Vec<i64>,
    event_ids: Vec<Uuid>,
    event_types: Vec<&'a str>,
    schema_versions: Vec<i64>,
    payloads: Vec<&'a [u8]>,
    actors: Vec<&'a str>,
    recorded_ats: Vec<OffsetDateTime>,
    prev_hashes: Vec<&'a [u8]>,
    hashes: Vec<&'a [u8]>,
}

impl<'a> Columns<'a> {
    fn of(rows: &'a [RecordedEvent]) -> Self {
        Self {
            positions: rows.iter().map(|row| bound(row.position)).collect(),
            streams: rows.iter().map(|row| row.stream.as_str()).collect(),
            revisions: rows.iter().map(|row| bound(row.revision)).collect(),
            event_ids: rows.iter().map(|row| row.event_id).collect(),
            event_types: rows.iter().map(|row| row.event_type.as_str()).collect(),
            schema_versions: rows.iter().map(|row| i64::from(row.schema_version)).collect(),
            payloads: rows.iter().map(|row| row.payload.as_slice()).collect(),
            actors: rows.iter().map(|row| row.actor.as_str()).collect(),
            recorded_ats: rows.iter().map(|row| row.recorded_at).collect(),
            prev_hashes: rows.iter().map(|row| row.prev_hash.as_slice()).collect(),
            hashes: rows.iter().map(|row| row.hash.as_slice()).collect(),
        }
    }
}

fn classify_write_error(error: tokio_postgres::Error) -> GroupFailure {
    let unique = error.code() == Some(&SqlState::UNIQUE_VIOLATION);
    let error = StoreError::backend("insert and commit group", error);
    if unique {
        GroupFailure::UniqueViolation(error)
    } else {
        GroupFailure::Other(error)
    }
}

fn decode_stored_state(revision_rows: &[Row], id_rows: &[Row]) -> Result<StoredState, StoreError> {
    let failed = |error| StoreError::backend("decode group state", error);
    let mut state = StoredState::default();
    for row in revision_rows {
        let stream: String = row.try_get(0).map_err(failed)?;
        let last: i64 = row.try_get(1).map_err(failed)?;
        let last =
            u64::try_from(last).map_err(|_| StoreError::corrupt(0, format!("stream {stream}: negative revision")))?;
        let stream = StreamName::parse(stream).map_err(|_| StoreError::corrupt(0, "stored stream name is invalid"))?;
        state.last_revisions.insert(stream, last);
    }
    for row in id_rows {
        state.stored_event_ids.insert(row.try_get(0).map_err(failed)?);
    }
    Ok(state)
}

/// Runs a read and decodes rows as they arrive, so decoding overlaps with the server still sending.
async fn query_events(
    client: &Object,
    operation: &'static str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<RecordedEvent>, StoreError> {
    let failed = |error| StoreError::backend(operation, error);
    let statement = client.prepare_cached(sql).await.map_err(failed)?;
    let rows = client
        .query_raw(&statement, params.iter().copied())
        .await
        .map_err(failed)?;
    let mut rows = std::pin::pin!(rows);
    let mut events = Vec::new();
    while let Some(row) = std::future::poll_fn(|context| rows.as_mut().poll_next(context)).await {
        events.push(decode_event(&row.map_err(failed)?)?);
    }
    Ok(events)
}

async fn read_head(client: &Object) -> Result<Head, StoreError> {
    let failed = |error| StoreError::backend("read head", error);
    let statement = client
        .prepare_cached("SELECT position, hash, recorded_at FROM eventlog_head WHERE id = 1")
        .await
        .map_err(failed)?;
    let row = client.query_one(&statement, &[]).await.map_err(failed)?;
    decode_head(&row)
}

fn decode_head(row: &Row) -> Result<Head, StoreError> {
    let failed = |error| StoreError::backend("decode head", error);
    let position = u64::try_from(row.try_get::<_, i64>(0).map_err(failed)?)
        .map_err(|_| StoreError::corrupt(0, "negative head position"))?;
    Ok(Head {
        position,
        hash: hash_from(position, "head hash", row.try_get(1).map_err(failed)?)?,
        recorded_at: row.try_get(2).map_err(failed)?,
    })
}

fn decode_event(row: &Row) -> Result<RecordedEvent, StoreError> {
    let failed = |error| StoreError::backend("decode event", error);
    let position = row.try_get::<_, i64>(0).map_err(failed)?;
    let position =
        u64::try_from(position).map_err(|_| StoreError::corrupt(0, format!("negative position {position}")))?;
    let corrupt = |reason: &str| StoreError::corrupt(position, reason);
    let stream =
        StreamName::parse(row.try_get::<_, String>(1).map_err(failed)?).map_err(|_| corrupt("invalid stream name"))?;
    let revision =
        u64::try_from(row.try_get::<_, i64>(2).map_err(failed)?).map_err(|_| corrupt("negative revision"))?;
    let schema_version =
        u32::try_from(row.try_get::<_, i64>(5).map_err(failed)?).map_err(|_| corrupt("schema_version out of range"))?;
    Ok(RecordedEvent {
        position,
        stream,
        revision,
        event_id: row.try_get(3).map_err(failed)?,
        event_type: row.try_get(4).map_err(failed)?,
        schema_version,
        payload: row.try_get(6).map_err(failed)?,
        actor: row.try_get(7).map_err(failed)?,
        recorded_at: row.try_get(8).map_err(failed)?,
        prev_hash: hash_from(position, "prev_hash", row.try_get(9).map_err(failed)?)?,
        hash: hash_from(position, "hash", row.try_get(10).map_err(failed)?)?,
    })
}

fn hash_from(position: u64, field: &str, bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::corrupt(position, format!("{field} is {} bytes, not 32", bytes.len())))
}

/// A u64 position, revision or bound as PostgreSQL's BIGINT; nothing stored exceeds `i64::MAX`, so saturating
/// keeps every comparison's meaning.
fn bound(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn bound_usize(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
