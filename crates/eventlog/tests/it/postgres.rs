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
    assert_eq!(versions, vec![1, 2], "each migration applied once");
    drop(client);
    harness.finish().await;
}

/// One handle dawdles up to 3 ms between inserting a group and committing it, holding the head lock with its
/// rows written but invisible, while a fast handle appends too and a third handle's subscriber polls: the
/// subscriber must still see positions 1..=N, each once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_commits_on_one_handle_still_become_visible_in_order() {
    use std::collections::HashSet;
    use std::time::Duration;

    use eventlog::{EventStore, ExpectedRevision, NewEvent, StreamName};

    const TASKS_PER_HANDLE: usize = 3;
    const APPENDS_PER_TASK: usize = 30;
    let harness = fresh().await;
    let options = PostgresOptions {
        commit_delay_max: Duration::from_millis(3),
        ..PostgresOptions::default()
    };
    let slow = PostgresStore::connect_with(harness.config(), options)
        .await
        .expect("connect the slow handle");
    let handles = [Arc::new(slow), harness.open().await];
    let reader = harness.open().await;
    let mut subscription = eventlog::catch_up(Arc::clone(&reader), 0);

    let mut writers = Vec::new();
    for (handle_index, handle) in handles.iter().enumerate() {
        for task in 0..TASKS_PER_HANDLE {
            let store = Arc::clone(handle);
            writers.push(tokio::spawn(async move {
                let stream = StreamName::parse(format!("payment-{handle_index}-{task}")).expect("valid");
                let mut ids = Vec::new();
                for _ in 0..APPENDS_PER_TASK {
                    let event = NewEvent {
                        event_id: Uuid::new_v4(),
                        event_type: "TestHappened".to_owned(),
                        schema_version: 1,
                        payload: b"{}".to_vec(),
                        actor: "test".to_owned(),
                    };
                    ids.push(event.event_id);
                    store
                        .append(&stream, ExpectedRevision::Any, vec![event])
                        .await
                        .expect("append");
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
