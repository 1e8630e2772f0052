//! Starting the real binary and talking GraphQL to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use rustix::process::Signal;
use serde_json::{Value, json};

use crate::postgres_sql::simple_query;

pub(crate) const OPERATOR_KEY: &str = "operator-secret-1";
pub(crate) const VIEWER_KEY: &str = "viewer-secret-1";

/// A running `refund-ledger serve --demo`; killed on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) port: u16,
    client: reqwest::blocking::Client,
}

pub(crate) fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_refund-ledger")
}

/// A fresh SQLite store URL in `folder`.
pub(crate) fn sqlite_store(folder: &Path) -> String {
    format!("sqlite://{}", folder.join("ledger.db").display())
}

impl Server {
    /// Starts the binary on `store` with an operator and a viewer key.
    pub(crate) fn start(store: &str, folder: &Path) -> Self {
        Self::spawn(Self::serve_command(store, folder))
    }

    /// Starts the binary like [`Server::start`], with `config` (TOML) as its config file.
    pub(crate) fn start_with_config(store: &str, folder: &Path, config: &str) -> Self {
        let path = folder.join("refund-ledger.toml");
        std::fs::write(&path, config).unwrap();
        let mut command = Self::serve_command(store, folder);
        command.env("REFUND_LEDGER_CONFIG", path);
        Self::spawn(command)
    }

    /// The `serve --demo` command [`Server::start`] runs, to be changed before [`Server::spawn`].
    pub(crate) fn serve_command(store: &str, folder: &Path) -> Command {
        let mut command = Command::new(binary());
        command
            .args(["serve", "--demo"])
            .current_dir(folder)
            .env("REFUND_LEDGER_STORE", store)
            .env("REFUND_LEDGER_LISTEN", "127.0.0.1:0")
            .env(
                "REFUND_LEDGER_API_KEYS",
                format!("ops:operator:{OPERATOR_KEY},fin:viewer:{VIEWER_KEY}"),
            )
            .env("REFUND_LEDGER_SETTLE_AFTER_SECONDS", "1")
            .env("RUST_LOG", "warn");
        command
    }

    /// Spawns a prepared `serve` command and waits for the port it prints.
    pub(crate) fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut reader = BufReader::new(stdout);
        let mut first_line = String::new();
        reader.read_line(&mut first_line).expect("the binary prints its port");
        // Keep draining stdout so the server never writes into a closed pipe.
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

    /// Posts a GraphQL document with `key`; returns the HTTP status and the JSON body.
    pub(crate) fn graphql_with(&self, key: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        let mut request = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().expect("the server answers");
        let status = response.status().as_u16();
        (status, response.json().expect("a JSON body"))
    }

    /// Posts with the operator key and expects no errors.
    pub(crate) fn graphql(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self.graphql_with(Some(OPERATOR_KEY), query, variables);
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        body["data"].clone()
    }

    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        let (status, body) = self.get_with(path, None);
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// GETs `path` with `key` (none: unauthenticated): status and body bytes.
    pub(crate) fn get_with(&self, path: &str, key: Option<&str>) -> (u16, Vec<u8>) {
        let fetched = self.fetch(path, key);
        (fetched.status, fetched.body)
    }

    /// GETs `path` with `key` (none: unauthenticated): status, headers and body.
    pub(crate) fn fetch(&self, path: &str, key: Option<&str>) -> Fetched {
        let mut request = self.client.get(self.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().expect("the server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().expect("a body").to_vec();
        Fetched { status, headers, body }
    }

    pub(crate) fn kill_hard(mut self) {
        self.child.kill().expect("SIGKILL is delivered");
        self.child.wait().expect("the killed server is reaped");
    }

    /// Stops the server with SIGTERM and waits for it.
    pub(crate) fn stop(mut self) {
        rustix::process::kill_process(rustix::process::Pid::from_child(&self.child), Signal::TERM)
            .expect("SIGTERM is delivered");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server did not stop on SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _killed = self.child.kill();
        let _reaped = self.child.wait();
    }
}

/// A GET's answer.
pub(crate) struct Fetched {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Fetched {
    /// A header's value ("" when absent).
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Set to 1 (CI does) to make a test whose tool is missing fail instead of skipping.
const REQUIRE_TOOLS: &str = "REFUND_LEDGER_REQUIRE_TOOLS";

/// The first of `names` found on `PATH`. Without any: prints a skip line for `test` and answers `None`,
/// or fails when `REFUND_LEDGER_REQUIRE_TOOLS=1`.
pub(crate) fn required_tool(test: &str, names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = names
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |folder| folder.join(name)))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        let message = format!("{test}: none of {names:?} on PATH");
        assert!(
            std::env::var(REQUIRE_TOOLS).as_deref() != Ok("1"),
            "{message}, and {REQUIRE_TOOLS}=1 requires it"
        );
        eprintln!("SKIPPED {message} (install it, e.g. Debian's package; {REQUIRE_TOOLS}=1 makes this a failure)");
    }
    found
}

/// Runs `refund-ledger check` on `store`.
pub(crate) fn check(store: &str) -> Output {
    Command::new(binary())
        .arg("check")
        .env("REFUND_LEDGER_STORE", store)
        .output()
        .expect("check runs")
}

pub(crate) fn temp_folder() -> (tempfile::TempDir, PathBuf) {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().to_path_buf();
    (folder, path)
}

/// A fresh PostgreSQL database on the test server (`DATABASE_URL` or the local default), optionally a
/// copy of another; dropped on drop.
pub(crate) struct PostgresDatabase {
    admin_url: String,
    pub(crate) name: String,
    pub(crate) url: String,
}

impl PostgresDatabase {
    pub(crate) fn create() -> Self {
        Self::create_from(None)
    }

    /// A fresh database, a copy of `template` when given.
    pub(crate) fn create_from(template: Option<&str>) -> Self {
        let admin_url =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let name = format!("e2e_{}", uuid::Uuid::new_v4().simple());
        let statement = match template {
            Some(template) => format!("CREATE DATABASE {name} TEMPLATE {template}"),
            None => format!("CREATE DATABASE {name}"),
        };
        if let Err(error) = simple_query(&admin_url, &statement) {
            panic!("cannot create a database ({error}); set DATABASE_URL to a PostgreSQL server (trust auth)");
        }
        let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Self { admin_url, name, url }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(error) = simple_query(&self.admin_url, &statement) {
            // A leftover scratch database wastes space but fails nothing; say so and go on.
            eprintln!("could not drop {}: {error}", self.name);
        }
    }
}
