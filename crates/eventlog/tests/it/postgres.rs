//! The conformance suite on PostgreSQL: each case creates its own database `eventlog_test_<uuid>` on the server
//! named by `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`) and drops it when the case ends.

use std::sync::Arc;

use eventlog::{PostgresOptions, PostgresStore};
use testkit::postgres::ScratchDatabase;
use tokio_postgres::{Config, NoTls};
use uuid::Uuid;

use crate::conformance::Harness;

struct PostgresHarness {
    database: ScratchDatabase,
}

async fn fresh() -> PostgresHarness {
    PostgresHarness {
        database: ScratchDatabase::create("eventlog_test"),
    }
}

impl PostgresHarness {
    fn config(&self) -> Config {
        self.database.config()
    }
}

impl Harness for PostgresHarness {
    type Store = PostgresStore;

    async fn open(&self) -> Arc<PostgresStore> {
        let store = PostgresStore::connect_with(self.config(), PostgresOptions::default()).await;
        Arc::new(store.expect("connect postgres store"))
    }

    async fn finish(self) {
        // Dropping it drops the database (FORCE ends the stores' pooled connections, which outlive the test
        // body until the runtime stops).
        drop(self.database);
    }
}

conformance_suite!(fresh());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_connects_migrate_once() {
    let harness = fresh().await;
    let (left, right, third) = tokio::join!(harness.open(), harness.open(), harness.open());
    drop((left, right, third));
    let client = {
        let (client, connection) = harness.config().connect(NoTls).await.expect("connect");
        tokio::spawn(connection);
        client
    };
    let versions: Vec<i32> = client
        .query("SELECT version FROM eventlog_migrations ORDER BY version", &[])
        .await
        .expect("query")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, vec![1, 2, 3, 4], "each migration applied once");
    // Migration 4: large payloads (a reconciliation's findings chunks) are compressed with lz4 (the test
    // server is built with it, as Debian's and the official images are).
    let compression: i8 = client
        .query_one(
            "SELECT attcompression FROM pg_attribute WHERE attrelid = 'eventlog_events'::regclass AND attname = 'payload'",
            &[],
        )
        .await
        .expect("query")
        .get(0);
    assert_eq!(compression as u8, b'l');
    drop(client);
    harness.finish().await;
}

/// One handle dawdles up to 3 ms between inserting a group and committing it, holding the head lock with its
/// rows written but invisible, while a fast handle appends too and a third handle's subscriber polls: the
/// subscriber must still see positions 1..=N, each once, in order. Appends that expect no revision are decided
/// under the lock; those that expect exact revisions are planned on each writer's own view of the head, two
/// groups on the wire at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_commits_on_one_handle_still_become_visible_in_order() {
    slow_commits_become_visible_in_order(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_planned_commits_on_one_handle_still_become_visible_in_order() {
    slow_commits_become_visible_in_order(true).await;
}

async fn slow_commits_become_visible_in_order(exact: bool) {
    use std::collections::HashSet;
    use std::time::Duration;

    use eventlog::{EventStore, ExpectedRevision, NewEvent, StreamName};

    const TASKS_PER_HANDLE: usize = 3;
    const APPENDS_PER_TASK: usize = 30;
    let harness = fresh().await;
    let pipelined_groups_max = if exact {
        2
    } else {
        PostgresOptions::default().pipelined_groups_max
    };
    let options = PostgresOptions {
        commit_delay_max: Duration::from_millis(3),
        pipelined_groups_max,
        ..PostgresOptions::default()
    };
    let slow = PostgresStore::connect_with(harness.config(), options)
        .await
        .expect("connect the slow handle");
    let fast_options = PostgresOptions {
        pipelined_groups_max,
        ..PostgresOptions::default()
    };
    let fast = PostgresStore::connect_with(harness.config(), fast_options)
        .await
        .expect("connect the fast handle");
    let handles = [Arc::new(slow), Arc::new(fast)];
    let reader = harness.open().await;
    let mut subscription = eventlog::catch_up(Arc::clone(&reader), 0);

    let mut writers = Vec::new();
    for (handle_index, handle) in handles.iter().enumerate() {
        for task in 0..TASKS_PER_HANDLE {
            let store = Arc::clone(handle);
            writers.push(tokio::spawn(async move {
                let stream = StreamName::parse(format!("payment-{handle_index}-{task}")).expect("valid");
                let mut ids = Vec::new();
                for append in 0..APPENDS_PER_TASK {
                    let expected = match (exact, append) {
                        (false, _) => ExpectedRevision::Any,
                        (true, 0) => ExpectedRevision::NoStream,
                        (true, _) => ExpectedRevision::Exact(append as u64 - 1),
                    };
                    let event = NewEvent {
                        event_id: Uuid::new_v4(),
                        event_type: "TestHappened".to_owned(),
                        schema_version: 1,
                        payload: b"{}".to_vec(),
                        actor: "test".to_owned(),
                    };
                    ids.push(event.event_id);
                    store.append(&stream, expected, vec![event]).await.expect("append");
                }
                ids
            }));
        }
    }
    let mut written = HashSet::new();
    for writer in writers {
        written.extend(writer.await.expect("writer"));
    }
    let mut seen = HashSet::new();
    for expected_position in 1..=written.len() as u64 {
        let next = tokio::time::timeout(Duration::from_secs(30), subscription.next()).await;
        let event = next
            .expect("subscriber keeps up")
            .expect("open")
            .expect("no gap, no error");
        assert_eq!(event.position, expected_position);
        assert!(seen.insert(event.event_id), "delivered once");
    }
    assert_eq!(seen, written);
    drop(subscription);
    harness.finish().await;
}

fn test_event(number: usize) -> eventlog::NewEvent {
    eventlog::NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "TestHappened".to_owned(),
        schema_version: 1,
        payload: format!("{{\"n\":{number}}}").into_bytes(),
        actor: "test".to_owned(),
    }
}

/// Many tasks on one handle, each appending to its own stream with exact expected revisions: every group commits
/// as planned, in one round trip, and the log is dense and chained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_handle_writing_alone_commits_every_group_as_planned() {
    one_handle_commits_every_group_as_planned(PostgresOptions::default()).await;
}

/// The same with two groups on the wire at once: the later one may reach the head lock first (each has its own
/// connection). That is no sign of another writer: it waits for the earlier one and still commits as planned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_handle_with_pipelined_groups_commits_every_group_as_planned() {
    let options = PostgresOptions {
        pipelined_groups_max: 2,
        ..PostgresOptions::default()
    };
    one_handle_commits_every_group_as_planned(options).await;
}

async fn one_handle_commits_every_group_as_planned(options: PostgresOptions) {
    use eventlog::{EventStore, ExpectedRevision, StreamName};

    const TASKS: usize = 24;
    const APPENDS_PER_TASK: usize = 25;
    let harness = fresh().await;
    let store = Arc::new(
        PostgresStore::connect_with(harness.config(), options)
            .await
            .expect("connect"),
    );
    let mut writers = Vec::new();
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        writers.push(tokio::spawn(async move {
            let stream = StreamName::parse(format!("payment-{task}")).expect("valid");
            let mut largest_group = 0;
            for append in 0..APPENDS_PER_TASK {
                let expected = match append {
                    0 => ExpectedRevision::NoStream,
                    _ => ExpectedRevision::Exact(append as u64 - 1),
                };
                let outcome = store.append(&stream, expected, vec![test_event(append)]).await;
                let outcome = outcome.expect("append");
                assert_eq!(outcome.last_revision, append as u64);
                largest_group = largest_group.max(outcome.group_appends);
            }
            largest_group
        }));
    }
    let mut largest_group = 0;
    for writer in writers {
        largest_group = largest_group.max(writer.await.expect("writer"));
    }
    assert!(largest_group > 1, "concurrent appends shared group commits");
    assert_eq!(store.fallback_groups(), 0, "no group was decided again under the lock");
    let events = store.read_all(1, TASKS * APPENDS_PER_TASK + 1).await.expect("read all");
    assert_eq!(events.len(), TASKS * APPENDS_PER_TASK);
    let mut verifier = eventlog::chain::ChainVerifier::default();
    for event in &events {
        verifier.check(event).expect("chained");
    }
    harness.finish().await;
}

/// `eventlog_append_group` writes nothing unless the head and every checked stream are where the writer planned
/// them, and says which assumption failed: a head before the planned one ('head behind': a group planned
/// earlier has not committed), any other head ('head moved'), a stream elsewhere ('stream moved').
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_function_writes_nothing_when_its_assumptions_fail() {
    use eventlog::{EventStore, ExpectedRevision, StreamName};
    use time::OffsetDateTime;

    let harness = fresh().await;
    let store = harness.open().await;
    let stream = StreamName::parse("payment-1").expect("valid");
    store
        .append(&stream, ExpectedRevision::NoStream, vec![test_event(0)])
        .await
        .expect("append");
    let head = store.head().await.expect("head");
    let (client, connection) = harness.config().connect(NoTls).await.expect("connect");
    tokio::spawn(connection);
    let call = |position: i64, hash: Vec<u8>, checked_revision: i64| {
        let client = &client;
        async move {
            let row = client
                .query_one(
                    "SELECT eventlog_append_group($1::BIGINT, $2::BYTEA, 0, ARRAY['payment-1'], ARRAY[$3::BIGINT], \
                     ARRAY[$1 + 1], ARRAY['payment-1'], ARRAY[$3 + 1], ARRAY[gen_random_uuid()], ARRAY['T'], \
                     ARRAY[1::BIGINT], ARRAY['{}'::BYTEA], ARRAY['test'], ARRAY[$4::TIMESTAMPTZ], ARRAY[$2], \
                     ARRAY[$2])",
                    &[&position, &hash, &checked_revision, &OffsetDateTime::now_utc()],
                )
                .await
                .expect("call");
            row.get::<_, String>(0)
        }
    };
    let position = i64::try_from(head.position).expect("small");
    assert_eq!(call(position + 2, head.hash.to_vec(), 0).await, "head behind");
    assert_eq!(call(position - 1, head.hash.to_vec(), 0).await, "head moved");
    assert_eq!(call(position, vec![7; 32], 0).await, "head moved");
    assert_eq!(call(position, head.hash.to_vec(), 1).await, "stream moved");
    assert_eq!(call(position, head.hash.to_vec(), -1).await, "stream moved");
    assert_eq!(store.head().await.expect("head"), head, "nothing written");
    let count: i64 = client
        .query_one("SELECT count(*) FROM eventlog_events", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, 1);
    drop(client);
    harness.finish().await;
}
