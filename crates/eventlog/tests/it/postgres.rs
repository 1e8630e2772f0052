//! The conformance suite on PostgreSQL: each case creates its own database `eventlog_test_<uuid>` on the server
//! named by `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`) and drops it when it passes.

use std::str::FromStr;
use std::sync::Arc;

use eventlog::{PostgresOptions, PostgresStore};
use tokio_postgres::{Client, Config, NoTls};
use uuid::Uuid;

use crate::conformance::Harness;

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

struct PostgresHarness {
    server: Config,
    database: String,
}

/// Connects to the server's own database, where CREATE/DROP DATABASE run.
async fn connect_server(server: &Config) -> Client {
    let (client, connection) = server.connect(NoTls).await.unwrap_or_else(|error| {
        panic!(
            "cannot reach PostgreSQL ({error}); set DATABASE_URL to a server where this user may CREATE DATABASE, \
             e.g. DATABASE_URL={DEFAULT_DATABASE_URL}"
        )
    });
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            eprintln!("admin connection ended: {error}");
        }
    });
    client
}

async fn fresh() -> PostgresHarness {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    let server = Config::from_str(&url).unwrap_or_else(|error| panic!("DATABASE_URL {url:?} does not parse: {error}"));
    let database = format!("eventlog_test_{}", Uuid::new_v4().simple());
    let client = connect_server(&server).await;
    client
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .await
        .expect("create the test database");
    PostgresHarness { server, database }
}

impl PostgresHarness {
    fn config(&self) -> Config {
        let mut config = self.server.clone();
        config.dbname(&self.database);
        config
    }
}

impl Harness for PostgresHarness {
    type Store = PostgresStore;

    async fn open(&self) -> Arc<PostgresStore> {
        let store = PostgresStore::connect_with(self.config(), PostgresOptions::default()).await;
        Arc::new(store.expect("connect postgres store"))
    }

    async fn finish(self) {
        let client = connect_server(&self.server).await;
        // FORCE ends the stores' pooled connections, which outlive the test body until the runtime stops.
        client
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.database))
            .await
            .expect("drop the test database");
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
    assert_eq!(versions, vec![1]);
    drop(client);
    harness.finish().await;
}
