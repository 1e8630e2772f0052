//! The conformance suite on PostgreSQL, and what is PostgreSQL's own: one writer among the runners of several
//! instances, and migrations under concurrent starts. Each case creates its own database
//! `projections_test_<uuid>` on the server named by `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and drops it when the case ends.

use std::sync::Arc;
use std::time::Duration;

use eventlog::{EventStore, PostgresOptions, PostgresStore};
use projections::{PostgresReadModels, ProjectionStore, RunnerRole};
use testkit::postgres::ScratchDatabase;
use tokio_postgres::{Client, Config, NoTls};

use crate::conformance::{SCENARIO_PAYMENTS, assert_matches_domain, write_scenario};
use crate::support::{CATCH_UP_TIMEOUT, Harness, Ledger, Running, T0, caught_up, head, money};

pub(crate) struct PostgresHarness {
    database: ScratchDatabase,
}

/// Connects to the test's database.
async fn connect(config: &Config) -> Client {
    let (client, connection) = config.connect(NoTls).await.expect("connect to the test database");
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            eprintln!("test connection ended: {error}");
        }
    });
    client
}

pub(crate) async fn fresh() -> PostgresHarness {
    PostgresHarness {
        database: ScratchDatabase::create("projections_test"),
    }
}

impl PostgresHarness {
    fn config(&self) -> Config {
        self.database.config()
    }
}

impl Harness for PostgresHarness {
    async fn store(&self) -> Arc<dyn EventStore> {
        let store = PostgresStore::connect_with(self.config(), PostgresOptions::default()).await;
        Arc::new(store.expect("connect postgres store"))
    }

    async fn projections(&self) -> Arc<dyn ProjectionStore> {
        Arc::new(
            PostgresReadModels::connect_with(self.config())
                .await
                .expect("connect postgres read models"),
        )
    }

    async fn finish(self) {
        // Dropping it drops the database (FORCE ends the pooled connections, which outlive the test body until
        // the runtime stops).
        drop(self.database);
    }
}

conformance_suite!(fresh());

/// Waits until `role` is what the runner reports.
async fn role_becomes(runner: &Running, role: RunnerRole) {
    let mut changes = runner.handle.role_changes();
    tokio::time::timeout(CATCH_UP_TIMEOUT, changes.wait_for(|current| *current == role))
        .await
        .unwrap_or_else(|_| panic!("the runner did not become {role:?}"))
        .expect("role watch");
}

/// Waits until the runner's own checkpoint watch shows `position` (a standby learns it by polling; a writer
/// publishes it after counting the batch).
async fn handle_reaches(runner: &Running, position: u64) {
    let mut checkpoint = runner.handle.checkpoint();
    tokio::time::timeout(
        CATCH_UP_TIMEOUT,
        checkpoint.wait_for(|checkpoint| *checkpoint >= position),
    )
    .await
    .unwrap_or_else(|_| panic!("the runner's checkpoint did not reach {position}"))
    .expect("checkpoint watch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_one_writer_and_the_same_checkpoint() {
    let harness = fresh().await;
    let mut ledger = Ledger::new(harness.store().await);
    let (first, second) = (harness.projections().await, harness.projections().await);
    let first_runner = Running::start(Arc::clone(&ledger.store), Arc::clone(&first));
    role_becomes(&first_runner, RunnerRole::Writer).await;
    let second_runner = Running::start(harness.store().await, Arc::clone(&second));
    role_becomes(&second_runner, RunnerRole::Standby).await;

    write_scenario(&mut ledger).await;
    let last = head(&*ledger.store).await;
    caught_up(&*first, last).await;
    caught_up(&*second, last).await;
    handle_reaches(&first_runner, last).await;
    handle_reaches(&second_runner, last).await;
    assert!(first_runner.handle.batches_applied() > 0);
    assert_eq!(second_runner.handle.batches_applied(), 0, "only the writer writes");
    assert_eq!(second_runner.handle.role(), RunnerRole::Standby);
    for id in SCENARIO_PAYMENTS {
        assert_matches_domain(&*second, &ledger, id).await;
    }

    // When the writer goes away, the standby takes over and goes on from the checkpoint.
    first_runner.stop().await.expect("clean shutdown");
    role_becomes(&second_runner, RunnerRole::Writer).await;
    let next = ledger
        .record("p-after-failover", money("USD", 900), "ALIPAY_CN", T0)
        .await
        .expect("written");
    caught_up(&*second, next).await;
    handle_reaches(&second_runner, next).await;
    assert!(second_runner.handle.batches_applied() > 0);
    for id in SCENARIO_PAYMENTS {
        assert_matches_domain(&*first, &ledger, id).await;
    }
    second_runner.stop().await.expect("clean shutdown");
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_connects_migrate_once() {
    let harness = fresh().await;
    let (left, right, third) = tokio::join!(harness.projections(), harness.projections(), harness.projections());
    assert_eq!(left.checkpoint().await.expect("checkpoint"), 0);
    drop((left, right, third));
    let client = connect(&harness.config()).await;
    let versions: Vec<i32> = client
        .query("SELECT version FROM projection_migrations ORDER BY version", &[])
        .await
        .expect("query")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, vec![1, 2, 3, 4, 5], "every migration once");
    drop(client);
    // The URL form opens the same read models (the database name swapped into the server's URL).
    let read_models = projections::open_read_models(&harness.database.url)
        .await
        .expect("open by url");
    assert!(
        !read_models
            .wait_for_position(1, Duration::from_millis(60))
            .await
            .expect("wait")
    );
    drop(read_models);
    harness.finish().await;
}

/// The writer's connection dies (a failover, an operator's `pg_terminate_backend`): the runner takes the lease
/// again on a new connection and goes on from the checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_recovers_from_a_lost_connection() {
    let harness = fresh().await;
    let ledger = Ledger::new(harness.store().await);
    let projections = harness.projections().await;
    let runner = Running::start(Arc::clone(&ledger.store), Arc::clone(&projections));
    role_becomes(&runner, RunnerRole::Writer).await;
    let first = ledger
        .record("p-1", money("USD", 100), "ALIPAY_CN", T0)
        .await
        .expect("written");
    caught_up(&*projections, first).await;

    let admin = connect(&harness.config()).await;
    let terminated = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_locks \
             WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = $1)",
            &[&harness.database.name],
        )
        .await
        .expect("terminate the writer");
    assert_eq!(terminated.len(), 1, "exactly one session holds the writer lock");

    let second = ledger
        .record("p-2", money("USD", 200), "ALIPAY_CN", T0)
        .await
        .expect("written");
    caught_up(&*projections, second).await;
    assert!(
        projections
            .payment(&crate::support::payment_id("p-2"))
            .await
            .expect("read")
            .is_some()
    );
    role_becomes(&runner, RunnerRole::Writer).await;
    runner.stop().await.expect("clean shutdown");
    drop(admin);
    harness.finish().await;
}
