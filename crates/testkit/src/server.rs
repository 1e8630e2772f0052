//! The `refund-ledger` binary started on a loopback port (`serve --demo` on a given store) and driven over
//! HTTP with GraphQL. The binary's path comes from the caller: Cargo names it (`CARGO_BIN_EXE_refund-ledger`)
//! only to the tests and benches of the server's own package.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use rustix::process::Signal;
use serde_json::{Value, json};

/// The operator key of the servers started here.
pub const OPERATOR_KEY: &str = "operator-secret-1";
/// The viewer key of the servers started here.
pub const VIEWER_KEY: &str = "viewer-secret-1";

/// A running `refund-ledger serve --demo`; killed on drop.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// The loopback port it listens on.
    pub port: u16,
    client: reqwest::blocking::Client,
}

/// A fresh SQLite store URL in `folder`.
pub fn sqlite_store(folder: &Path) -> String {
    format!("sqlite://{}", folder.join("ledger.db").display())
}

impl Server {
    /// Starts `binary` (the `refund-ledger` executable) on `store` in `folder`, with an operator key
    /// ([`OPERATOR_KEY`]) and a viewer key ([`VIEWER_KEY`]).
    pub fn start(binary: &Path, store: &str, folder: &Path) -> Self {
        Self::spawn(Self::serve_command(binary, store, folder))
    }

    /// Starts the binary like [`Server::start`], with `config` (TOML) as its config file.
    pub fn start_with_config(binary: &Path, store: &str, folder: &Path, config: &str) -> Self {
        let path = folder.join("refund-ledger.toml");
        std::fs::write(&path, config).expect("the config file is written");
        let mut command = Self::serve_command(binary, store, folder);
        command.env("REFUND_LEDGER_CONFIG", path);
        Self::spawn(command)
    }

    /// The `serve --demo` command [`Server::start`] runs, for a test to add to before [`Server::spawn`].
    pub fn serve_command(binary: &Path, store: &str, folder: &Path) -> Command {
        let mut command = Command::new(binary);
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
    pub fn spawn(mut command: Command) -> Self {
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
            .expect("an HTTP client");
        Self { child, port, client }
    }

    /// The URL of `path` on the server.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Posts a GraphQL document with `key`; returns the HTTP status and the JSON body.
    pub fn graphql_with(&self, key: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
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
    pub fn graphql(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self.graphql_with(Some(OPERATOR_KEY), query, variables);
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        body["data"].clone()
    }

    /// GETs `path` without a key: status and body text.
    pub fn get(&self, path: &str) -> (u16, String) {
        let (status, body) = self.get_with(path, None);
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// GETs `path` with `key` (none: unauthenticated): status and body bytes.
    pub fn get_with(&self, path: &str, key: Option<&str>) -> (u16, Vec<u8>) {
        let fetched = self.fetch(path, key);
        (fetched.status, fetched.body)
    }

    /// GETs `path` with `key` (none: unauthenticated): status, headers and body.
    pub fn fetch(&self, path: &str, key: Option<&str>) -> Fetched {
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

    /// Kills the server with SIGKILL (a crash) and reaps it.
    pub fn kill_hard(mut self) {
        self.child.kill().expect("SIGKILL is delivered");
        self.child.wait().expect("the killed server is reaped");
    }

    /// Stops the server with SIGTERM and waits for it.
    pub fn stop(mut self) {
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
#[derive(Debug)]
pub struct Fetched {
    /// The HTTP status.
    pub status: u16,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Fetched {
    /// A header's value ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Runs `binary check` on `store`.
pub fn check(binary: &Path, store: &str) -> Output {
    Command::new(binary)
        .arg("check")
        .env("REFUND_LEDGER_STORE", store)
        .output()
        .expect("check runs")
}

/// A temporary folder (removed when the guard drops) and its path.
pub fn temp_folder() -> (tempfile::TempDir, PathBuf) {
    let folder = tempfile::tempdir().expect("a temp folder");
    let path = folder.path().to_path_buf();
    (folder, path)
}

/// How often [`wait_with_peak_rss`] reads the child's memory high-water mark.
const PEAK_SAMPLE_INTERVAL_MS: u64 = 2;

/// Waits for `child` to exit and answers its exit status, its peak resident memory in KiB and how many
/// readings that peak rests on.
///
/// The peak is the kernel's high-water mark of the child's resident set (`VmHWM` in `/proc/<pid>/status`, what
/// GNU time reports as maximum resident size), read every `PEAK_SAMPLE_INTERVAL_MS` until the child exits. It
/// only ever grows, so the last reading is the peak up to a few milliseconds before the end; the reading stops
/// there because an exited process has no memory left to report. Only the child's own pid is read, and only
/// before it is reaped, so it cannot be another process's.
pub fn wait_with_peak_rss(child: &mut Child) -> (std::process::ExitStatus, u64, usize) {
    let status_file = format!("/proc/{}/status", child.id());
    let (mut peak, mut samples) = (0, 0);
    loop {
        if let Some(high_water_mark) = std::fs::read_to_string(&status_file)
            .ok()
            .as_deref()
            .and_then(high_water_mark_kib)
        {
            peak = peak.max(high_water_mark);
            samples += 1;
        }
        if let Some(exit) = child.try_wait().expect("the child can be waited for") {
            return (exit, peak, samples);
        }
        std::thread::sleep(Duration::from_millis(PEAK_SAMPLE_INTERVAL_MS));
    }
}

/// `VmHWM` (peak resident set, KiB) of a `/proc/<pid>/status` text; `None` once the process has exited.
pub fn high_water_mark_kib(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|line| line.strip_prefix("VmHWM:"))?;
    line.trim().strip_suffix("kB")?.trim().parse().ok()
}
