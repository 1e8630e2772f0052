//! What the audit tests share: a server with an admin key, logs on both stores that can be copied and
//! edited behind the ledger's back, and running the audit commands of the binary.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{OPERATOR_KEY, VIEWER_KEY, binary};

pub(crate) const ADMIN_KEY: &str = "admin-secret-1";

/// A `serve --demo` with operator, viewer and admin keys; killed on drop.
pub(crate) struct AuditServer {
    child: Child,
    port: u16,
    client: reqwest::blocking::Client,
}

impl AuditServer {
    pub(crate) fn start(store: &str, folder: &Path) -> Self {
        let mut child = Command::new(binary())
            .args(["serve", "--demo"])
            .current_dir(folder)
            .env("REFUND_LEDGER_STORE", store)
            .env("REFUND_LEDGER_LISTEN", "127.0.0.1:0")
            .env(
                "REFUND_LEDGER_API_KEYS",
                format!("ops:operator:{OPERATOR_KEY},fin:viewer:{VIEWER_KEY},aud:admin:{ADMIN_KEY}"),
            )
            .env("REFUND_LEDGER_SETTLE_AFTER_SECONDS", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let mut reader = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut first_line = String::new();
        reader.read_line(&mut first_line).expect("the binary prints its port");
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let port = first_line
            .split_whitespace()
            .skip_while(|word| *word != "port")
            .nth(1)
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {first_line:?}"));
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Self { child, port, client }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Posts a GraphQL document with `key` and returns the JSON body.
    pub(crate) fn graphql_as(&self, key: &str, query: &str, variables: Value) -> Value {
        self.client
            .post(self.url("/graphql"))
            .bearer_auth(key)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .expect("the server answers")
            .json()
            .expect("a JSON body")
    }

    /// Posts with the operator key and expects no errors.
    pub(crate) fn graphql(&self, query: &str, variables: Value) -> Value {
        let body = self.graphql_as(OPERATOR_KEY, query, variables);
        assert!(body.get("errors").is_none(), "{body}");
        body["data"].clone()
    }

    /// GETs `path` with `key` (none: unauthenticated): status and body bytes.
    pub(crate) fn get(&self, path: &str, key: Option<&str>) -> (u16, Vec<u8>) {
        let mut request = self.client.get(self.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().expect("the server answers");
        let status = response.status().as_u16();
        (status, response.bytes().unwrap().to_vec())
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
    pub(crate) fn stop(mut self) {
        let _signalled = Command::new("kill").arg(self.child.id().to_string()).status();
        for _ in 0..400 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server did not stop on SIGTERM");
    }
}

impl Drop for AuditServer {
    fn drop(&mut self) {
        let _killed = self.child.kill();
        let _reaped = self.child.wait();
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
        Log::Postgres(ScratchDatabase::create(None))
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
            Log::Postgres(database) => Log::Postgres(ScratchDatabase::create(Some(&database.name))),
        }
    }

    /// Runs SQL statements on the log's database, behind the ledger's back.
    pub(crate) fn execute(&self, statements: &str) {
        match self {
            Log::Sqlite { folder, .. } => {
                let connection = rusqlite::Connection::open(folder.join("ledger.db")).unwrap();
                connection.execute_batch(statements).unwrap();
            }
            Log::Postgres(database) => {
                let output = Command::new("psql")
                    .args([database.url.as_str(), "-v", "ON_ERROR_STOP=1", "-q", "-c", statements])
                    .output()
                    .unwrap();
                assert!(output.status.success(), "{output:?}");
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
            Log::Postgres(database) => {
                let output = Command::new("psql")
                    .args([database.url.as_str(), "-At", "-F", "|", "-c", sql])
                    .output()
                    .unwrap();
                assert!(output.status.success(), "{output:?}");
                String::from_utf8(output.stdout)
                    .unwrap()
                    .lines()
                    .map(|line| {
                        let (position, stream) = line.split_once('|').unwrap();
                        (position.parse().unwrap(), stream.to_owned())
                    })
                    .collect()
            }
        }
    }
}

/// A database of its own on the test server (`DATABASE_URL` or the local default), optionally a copy of
/// another; dropped on drop.
pub(crate) struct ScratchDatabase {
    admin_url: String,
    pub(crate) name: String,
    pub(crate) url: String,
}

impl ScratchDatabase {
    pub(crate) fn create(template: Option<&str>) -> Self {
        let admin_url =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let name = format!("audit_{}", uuid::Uuid::new_v4().simple());
        let statement = match template {
            Some(template) => format!("CREATE DATABASE {name} TEMPLATE {template}"),
            None => format!("CREATE DATABASE {name}"),
        };
        let status = Command::new("psql")
            .args([admin_url.as_str(), "-q", "-c", &statement])
            .status()
            .expect("psql runs; set DATABASE_URL to a PostgreSQL server (trust auth)");
        assert!(status.success(), "cannot create a database on {admin_url}");
        let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Self { admin_url, name, url }
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let _dropped = Command::new("psql")
            .args([
                self.admin_url.as_str(),
                "-q",
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .status();
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
