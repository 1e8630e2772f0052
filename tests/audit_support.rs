//! What the audit tests share: a server with an admin key, logs on both stores that can be copied and
//! edited behind the ledger's back, and running the audit commands of the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};
use testkit::postgres::{ScratchDatabase, simple_query};
use testkit::server::{OPERATOR_KEY, Server, VIEWER_KEY};

use crate::support::binary;

pub(crate) const ADMIN_KEY: &str = "admin-secret-1";

/// A `serve --demo` with operator, viewer and admin keys; killed on drop.
pub(crate) struct AuditServer(Server);

impl AuditServer {
    pub(crate) fn start(store: &str, folder: &Path) -> Self {
        Self::start_with_env(store, folder, &[])
    }

    /// Starts it like [`AuditServer::start`], with `env` over the environment it sets.
    pub(crate) fn start_with_env(store: &str, folder: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = Server::serve_command(binary(), store, folder);
        command.env(
            "REFUND_LEDGER_API_KEYS",
            format!("ops:operator:{OPERATOR_KEY},fin:viewer:{VIEWER_KEY},aud:admin:{ADMIN_KEY}"),
        );
        command.envs(env.iter().copied());
        Self(Server::spawn(command))
    }

    /// Posts a GraphQL document with `key` and returns the JSON body.
    pub(crate) fn graphql_as(&self, key: &str, query: &str, variables: Value) -> Value {
        self.0.graphql_with(Some(key), query, variables).1
    }

    /// Posts with the operator key and expects no errors.
    pub(crate) fn graphql(&self, query: &str, variables: Value) -> Value {
        self.0.graphql(query, variables)
    }

    /// GETs `path` with `key` (none: unauthenticated): status and body bytes.
    pub(crate) fn get(&self, path: &str, key: Option<&str>) -> (u16, Vec<u8>) {
        self.0.get_with(path, key)
    }

    /// Waits until the read models reflect the whole log.
    pub(crate) fn wait_projected(&self) {
        for _ in 0..200 {
            let head = self.graphql("{ ledgerHead { position projectedPosition } }", json!({}))["ledgerHead"].clone();
            if head["position"] == head["projectedPosition"] {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the read models did not catch up");
    }

    /// Stops the server with SIGTERM and waits for it.
    pub(crate) fn stop(self) {
        self.0.stop();
    }
}

pub(crate) const RECORD: &str = "mutation($id: ID!, $currency: String!, $value: String!) {
  recordPayment(input: { paymentId: $id, paymentAmount: { currency: $currency, value: $value },
                         paymentMethodType: \"ALIPAY_CN\", paymentTime: \"2026-11-01T00:00:00Z\" }) { position } }";

pub(crate) const REFUND: &str = "mutation($rid: ID!, $pid: ID!, $currency: String!, $value: String!) {
  refund(input: { refundRequestId: $rid, paymentId: $pid, refundAmount: { currency: $currency, value: $value } }) {
    result { resultCode } position } }";

/// Records a payment and refunds it in parts through GraphQL.
pub(crate) fn payment_with_refunds(server: &AuditServer, payment_id: &str, currency: &str, refunds: &[&str]) {
    let total: u64 = refunds.iter().map(|value| value.parse::<u64>().unwrap()).sum();
    server.graphql(
        RECORD,
        json!({ "id": payment_id, "currency": currency, "value": (total * 2).to_string() }),
    );
    for (index, value) in refunds.iter().enumerate() {
        server.graphql(
            REFUND,
            json!({ "rid": format!("{payment_id}-R{index}"), "pid": payment_id, "currency": currency, "value": value }),
        );
    }
}

/// A log on one of the two stores, that tests may edit directly.
pub(crate) enum Log {
    /// `ledger.db` (and its read models) in a temp folder.
    Sqlite { _guard: tempfile::TempDir, folder: PathBuf },
    /// A database of its own on the test server.
    Postgres(ScratchDatabase),
}

impl Log {
    pub(crate) fn sqlite() -> Log {
        let guard = tempfile::tempdir().unwrap();
        let folder = guard.path().to_path_buf();
        Log::Sqlite { _guard: guard, folder }
    }

    pub(crate) fn postgres() -> Log {
        Log::Postgres(ScratchDatabase::create("e2e"))
    }

    /// The store URL the binary takes.
    pub(crate) fn url(&self) -> String {
        match self {
            Log::Sqlite { folder, .. } => format!("sqlite://{}", folder.join("ledger.db").display()),
            Log::Postgres(database) => database.url.clone(),
        }
    }

    /// A folder to run the binary in.
    pub(crate) fn folder(&self) -> PathBuf {
        match self {
            Log::Sqlite { folder, .. } => folder.clone(),
            Log::Postgres(_) => std::env::temp_dir(),
        }
    }

    pub(crate) fn is_sqlite(&self) -> bool {
        matches!(self, Log::Sqlite { .. })
    }

    /// An independent copy of the log (and its read models), taken while no server runs.
    pub(crate) fn copy(&self) -> Log {
        match self {
            Log::Sqlite { folder, .. } => {
                let copy = Log::sqlite();
                let Log::Sqlite { folder: target, .. } = &copy else {
                    unreachable!()
                };
                for entry in std::fs::read_dir(folder).unwrap() {
                    let entry = entry.unwrap();
                    if entry.file_type().unwrap().is_file() {
                        std::fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
                    }
                }
                copy
            }
            Log::Postgres(database) => Log::Postgres(ScratchDatabase::copy_of("e2e", &database.name)),
        }
    }

    /// Runs `write` on the log's event store, opened for it while no server runs (to write a log of a given
    /// shape straight to the store).
    pub(crate) fn write_with<F, Fut>(&self, write: F)
    where
        F: FnOnce(std::sync::Arc<dyn eventlog::EventStore>) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store: std::sync::Arc<dyn eventlog::EventStore> = match self {
                Log::Sqlite { folder, .. } => {
                    std::sync::Arc::new(eventlog::SqliteStore::open(folder.join("ledger.db")).await.unwrap())
                }
                Log::Postgres(database) => {
                    std::sync::Arc::new(eventlog::PostgresStore::connect(&database.url).await.unwrap())
                }
            };
            write(store).await;
        });
    }

    /// Runs SQL statements on the log's database, behind the ledger's back.
    pub(crate) fn execute(&self, statements: &str) {
        match self {
            Log::Sqlite { folder, .. } => {
                let connection = rusqlite::Connection::open(folder.join("ledger.db")).unwrap();
                connection.execute_batch(statements).unwrap();
            }
            Log::Postgres(database) => {
                simple_query(&database.url, statements).unwrap();
            }
        }
    }

    /// Runs SQL statements on the read models' database (the log's own, or SQLite's file beside the log).
    pub(crate) fn execute_on_read_models(&self, statements: &str) {
        match self {
            Log::Sqlite { folder, .. } => {
                let connection = rusqlite::Connection::open(folder.join("ledger.read.db")).unwrap();
                connection.execute_batch(statements).unwrap();
            }
            Log::Postgres(_) => self.execute(statements),
        }
    }

    /// `(position, stream)` of every stored event, in position order.
    pub(crate) fn events(&self) -> Vec<(u64, String)> {
        let sql = "SELECT position, stream FROM eventlog_events ORDER BY position";
        match self {
            Log::Sqlite { folder, .. } => {
                let connection = rusqlite::Connection::open(folder.join("ledger.db")).unwrap();
                let mut statement = connection.prepare(sql).unwrap();
                statement
                    .query_map([], |row| Ok((row.get::<_, i64>(0)? as u64, row.get(1)?)))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
            Log::Postgres(database) => simple_query(&database.url, sql)
                .unwrap()
                .into_iter()
                .map(|row| match row.as_slice() {
                    [Some(position), Some(stream)] => (position.parse().unwrap(), stream.clone()),
                    other => panic!("unexpected row {other:?}"),
                })
                .collect(),
        }
    }
}

/// Runs `refund-ledger ARGS` on `log`'s store (through `REFUND_LEDGER_STORE`, as `serve` reads it).
pub(crate) fn run(log: &Log, args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .current_dir(log.folder())
        .env("REFUND_LEDGER_STORE", log.url())
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs")
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}
