//! Load benchmark of the whole service over loopback HTTP: the release `refund-ledger serve --demo`
//! binary with its in-process Antom simulator in benchmark mode (`REFUND_LEDGER_DEMO_SIMULATOR=benchmark`:
//! every refund answered S at once, no latency, no faults; requests and answers are still signed and
//! verified), driven through GraphQL from this process.
//!
//! Run with `cargo bench -p refund-ledger --bench load`. Per store (SQLite in a temp directory under
//! `LOAD_BENCH_DIR` or the system temp directory; PostgreSQL in a fresh database on `DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`, skipped with the reason when no server answers):
//! - refunds: closed-loop clients (`REFUND_CLIENTS_SATURATING`, then `REFUND_CLIENTS_LIGHT` for latency
//!   under light load), each on its own payments, issue `refund` mutations until `REFUND_COUNT_MAX` answered
//!   or `REFUND_SECONDS_MAX` passed; throughput and p50/p99 latency;
//! - payment queries: `payment(paymentId)` balance queries at a fixed offered rate of `QUERY_RATE_PER_SECOND`
//!   for `QUERY_SECONDS` (open loop: latency counts from the scheduled send time, so a stall is not hidden).
//!
//! A reference row first: one RSA-2048 signature with the demo key, as the ledger signs every request to
//! Antom. In this setup every refund costs three (the ledger's request; the simulator's answer and its
//! notification, both in the same process), which bounds throughput whatever the ledger does.
//!
//! Targets on 2 cores (issue "The service"): >= 2,000 refunds/s with p99 < 20 ms; payment query p99 < 5 ms
//! at 1,000 req/s. The client shares the machine with the server, and the load average is printed before
//! each store, so a busy machine shows; the `cpu ms/op` column (CPU time the server process used during the
//! case, divided by the operations) does not depend on what else runs.
#![allow(clippy::print_stdout, reason = "a benchmark reports its table on stdout")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark aborts on the first failure"
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde_json::{Value, json};

#[path = "../tests/it/postgres_sql.rs"]
mod postgres_sql;
use postgres_sql::simple_query;

/// Concurrent refund clients that keep the server saturated (HTTP/1.1 keep-alive connections).
const REFUND_CLIENTS_SATURATING: usize = 32;
/// Concurrent refund clients for latency under light load.
const REFUND_CLIENTS_LIGHT: usize = 4;
/// Most clients of any case (payments are recorded for this many).
const REFUND_CLIENTS_MAX: usize = REFUND_CLIENTS_SATURATING;
/// Payments per client; refunds rotate over them. A refund replays its payment's stream (no snapshots), so
/// a few refunds per payment, as merchants issue them, keep the cost per refund flat through a run.
const PAYMENTS_PER_CLIENT: usize = 64;
/// Most refunds measured per store.
const REFUND_COUNT_MAX: usize = 30_000;
/// Longest refund case.
const REFUND_SECONDS_MAX: u64 = 15;
/// Signatures timed for the RSA reference row.
const SIGNATURES_TIMED: usize = 200;
/// Refunds before measuring (connections, caches, the page cache of the store).
const WARMUP_REFUNDS: usize = 1_000;
/// Offered rate of the payment-query phase.
const QUERY_RATE_PER_SECOND: u64 = 1_000;
/// Length of the payment-query phase.
const QUERY_SECONDS: u64 = 10;
/// Whole-request timeout of the load clients.
const REQUEST_TIMEOUT_MS: u64 = 30_000;
/// Each payment: 1,000,000.00 USD, far more than the refunds of a run.
const PAYMENT_MINOR_UNITS: &str = "100000000";
/// Each refund: 1.00 USD.
const REFUND_MINOR_UNITS: &str = "100";
const OPERATOR_KEY: &str = "bench-operator-secret";
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Linux's USER_HZ: the unit of CPU times in `/proc/PID/stat`.
const CLOCK_TICKS_PER_SECOND: u64 = 100;

const RECORD: &str = "mutation($id: ID!, $value: String!) {
  recordPayment(input: { paymentId: $id, paymentAmount: { currency: \"USD\", value: $value },
                         paymentMethodType: \"ALIPAY_CN\", paymentTime: \"2026-11-01T00:00:00Z\" }) {
    result { resultStatus } position } }";
const REFUND: &str = "mutation($rid: ID!, $pid: ID!, $value: String!) {
  refund(input: { refundRequestId: $rid, paymentId: $pid, refundAmount: { currency: \"USD\", value: $value } }) {
    result { resultCode resultStatus } position } }";
const PAYMENT: &str = "query($id: ID!) { payment(paymentId: $id) {
  capturedAmount { value } refundedAmount { value } pendingRefundAmount { value } refundableAmount { value } status } }";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    println!(
        "refund-ledger load benchmark: {} cores, release binary, in-process simulator in benchmark mode, loopback",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    println!("(the load clients run on the same cores as the server)");
    println!(
        "{:<10} {:<34} {:>7} {:>8} {:>11} {:>8} {:>8} {:>8} {:>11}",
        "store", "case", "count", "seconds", "per second", "p50 ms", "p99 ms", "max ms", "cpu ms/op"
    );
    rsa_reference();
    let directory = match std::env::var_os("LOAD_BENCH_DIR") {
        Some(path) => tempfile::tempdir_in(path).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let sqlite = format!("sqlite://{}", directory.path().join("ledger.db").display());
    bench_store("sqlite", &sqlite, directory.path()).await;
    match PostgresDatabase::create() {
        Ok(database) => bench_store("postgres", &database.url, directory.path()).await,
        Err(reason) => println!("{:<10} skipped: {reason}", "postgres"),
    }
}

/// Times RSA-2048 signatures of a refund-sized body with the demo merchant key.
fn rsa_reference() {
    let key_file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/demo-keys/merchant_private_pkcs8.pem");
    let key = apo::PrivateKey::from_file(&key_file).unwrap();
    let body =
        json!({ "refundRequestId": "R-1", "paymentId": "P-1", "refundAmount": { "currency": "USD", "value": "100" } })
            .to_string();
    let mut latencies = Vec::with_capacity(SIGNATURES_TIMED);
    let started = Instant::now();
    for _ in 0..SIGNATURES_TIMED {
        let signed = Instant::now();
        let signature = apo::sign(
            &key,
            "POST",
            "/ams/api/v1/payments/refund",
            "CLIENT",
            "1",
            body.as_bytes(),
        )
        .unwrap();
        latencies.push(signed.elapsed());
        assert!(!signature.is_empty());
    }
    report("-", "RSA-2048 sign (1 thread)", &mut latencies, started.elapsed(), None);
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

async fn bench_store(name: &str, store: &str, folder: &std::path::Path) {
    println!("{name:<10} load average before: {}", load_average());
    let server = Server::start(store, folder);
    let client = Client::new(server.port);
    let payments = REFUND_CLIENTS_MAX * PAYMENTS_PER_CLIENT;
    let started = Instant::now();
    record_payments(&client, payments).await;
    println!(
        "{name:<10} recorded {payments} payments in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let time_max = Duration::from_secs(REFUND_SECONDS_MAX);
    refund_load(&client, REFUND_CLIENTS_SATURATING, WARMUP_REFUNDS, time_max, "warm").await;
    for (clients, phase) in [(REFUND_CLIENTS_SATURATING, "busy"), (REFUND_CLIENTS_LIGHT, "light")] {
        let started = Instant::now();
        let cpu_before = server.cpu_time();
        let mut latencies = refund_load(&client, clients, REFUND_COUNT_MAX, time_max, phase).await;
        report(
            name,
            &format!("refund mutations, {clients} clients"),
            &mut latencies,
            started.elapsed(),
            cpu_used(cpu_before, server.cpu_time()),
        );
    }

    let started = Instant::now();
    let cpu_before = server.cpu_time();
    let mut latencies = query_load(&client, payments).await;
    report(
        name,
        &format!("payment queries @ {QUERY_RATE_PER_SECOND}/s offered"),
        &mut latencies,
        started.elapsed(),
        cpu_used(cpu_before, server.cpu_time()),
    );
    server.stop();
}

/// Records `payments` payments from `REFUND_CLIENTS_MAX` concurrent clients.
async fn record_payments(client: &Client, payments: usize) {
    let mut tasks = Vec::with_capacity(REFUND_CLIENTS_MAX);
    for first in 0..REFUND_CLIENTS_MAX {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for index in (first..payments).step_by(REFUND_CLIENTS_MAX) {
                let data = client
                    .graphql(RECORD, json!({ "id": payment_id(index), "value": PAYMENT_MINOR_UNITS }))
                    .await;
                assert_eq!(data["recordPayment"]["result"]["resultStatus"], "S", "{data}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

fn payment_id(index: usize) -> String {
    format!("BENCH-PAY-{index}")
}

/// `clients` clients refunding until `count` answered or `time_max` passed; every answer must be S.
async fn refund_load(
    client: &Client,
    clients: usize,
    count: usize,
    time_max: Duration,
    phase: &'static str,
) -> Vec<Duration> {
    let issued = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + time_max;
    let mut tasks = Vec::new();
    for client_index in 0..clients {
        let client = client.clone();
        let issued = issued.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut round = 0;
            while Instant::now() < deadline {
                let sequence = issued.fetch_add(1, Ordering::Relaxed);
                if sequence >= count {
                    break;
                }
                let payment = payment_id(client_index * PAYMENTS_PER_CLIENT + round % PAYMENTS_PER_CLIENT);
                round += 1;
                let variables =
                    json!({ "rid": format!("BENCH-{phase}-{sequence}"), "pid": payment, "value": REFUND_MINOR_UNITS });
                let sent = Instant::now();
                let data = client.graphql(REFUND, variables).await;
                latencies.push(sent.elapsed());
                assert_eq!(data["refund"]["result"]["resultStatus"], "S", "{data}");
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

/// Balance queries at `QUERY_RATE_PER_SECOND`, each sent at its scheduled time on its own task.
async fn query_load(client: &Client, payments: usize) -> Vec<Duration> {
    let total = QUERY_RATE_PER_SECOND * QUERY_SECONDS;
    let interval = Duration::from_nanos(1_000_000_000 / QUERY_RATE_PER_SECOND);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap());
    for index in 0..total {
        let scheduled = start + interval * u32::try_from(index).unwrap();
        tokio::time::sleep_until(scheduled).await;
        let client = client.clone();
        let payment = payment_id(usize::try_from(index).unwrap() % payments);
        tasks.push(tokio::spawn(async move {
            let data = client.graphql(PAYMENT, json!({ "id": payment })).await;
            assert!(data["payment"]["refundedAmount"]["value"].is_string(), "{data}");
            scheduled.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    for task in tasks {
        latencies.push(task.await.unwrap());
    }
    latencies
}

fn cpu_used(before: Option<Duration>, after: Option<Duration>) -> Option<Duration> {
    after?.checked_sub(before?)
}

fn report(store: &str, case: &str, latencies: &mut [Duration], elapsed: Duration, server_cpu: Option<Duration>) {
    latencies.sort_unstable();
    let percentile = |share: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "an index into a sorted sample"
        )]
        let index = ((latencies.len() as f64 * share).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index].as_secs_f64() * 1_000.0
    };
    #[allow(clippy::cast_precision_loss, reason = "a rate for display")]
    let per_second = latencies.len() as f64 / elapsed.as_secs_f64();
    #[allow(clippy::cast_precision_loss, reason = "a mean for display")]
    let cpu_per_operation = server_cpu.filter(|_| !latencies.is_empty()).map_or_else(
        || "-".to_owned(),
        |cpu| format!("{:.2}", cpu.as_secs_f64() * 1_000.0 / latencies.len() as f64),
    );
    println!(
        "{store:<10} {case:<34} {:>7} {:>8.2} {per_second:>11.0} {:>8.2} {:>8.2} {:>8.2} {cpu_per_operation:>11}",
        latencies.len(),
        elapsed.as_secs_f64(),
        percentile(0.50),
        percentile(0.99),
        percentile(1.0),
    );
}

/// A GraphQL client with the operator key and a keep-alive connection pool.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    fn new(port: u16) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
            .pool_max_idle_per_host(REFUND_CLIENTS_MAX * 2)
            .build()
            .unwrap();
        Self {
            http,
            url: format!("http://127.0.0.1:{port}/graphql"),
        }
    }

    async fn graphql(&self, query: &str, variables: Value) -> Value {
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(OPERATOR_KEY)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "HTTP {}", response.status());
        let body: Value = response.json().await.unwrap();
        assert!(body.get("errors").is_none(), "{body}");
        body["data"].clone()
    }
}

/// The release binary in benchmark demo mode; killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(store: &str, folder: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_refund-ledger"))
            .args(["serve", "--demo"])
            .current_dir(folder)
            .env("REFUND_LEDGER_STORE", store)
            .env("REFUND_LEDGER_LISTEN", "127.0.0.1:0")
            .env("REFUND_LEDGER_API_KEYS", format!("bench:operator:{OPERATOR_KEY}"))
            .env("REFUND_LEDGER_DEMO_SIMULATOR", "benchmark")
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the release binary starts");
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut first_line = String::new();
        reader.read_line(&mut first_line).unwrap();
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let port = first_line
            .split_whitespace()
            .skip_while(|word| *word != "port")
            .nth(1)
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {first_line:?}"));
        Self { child, port }
    }

    /// User plus system CPU time of the server process so far (Linux; `None` elsewhere).
    fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // Fields after the parenthesised command name start at field 3 (state); utime and stime are 14 and 15.
        let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
        let user: u64 = fields.next()?.parse().ok()?;
        let system: u64 = fields.next()?.parse().ok()?;
        Some(Duration::from_millis((user + system) * 1_000 / CLOCK_TICKS_PER_SECOND))
    }

    fn stop(mut self) {
        rustix::process::kill_process(rustix::process::Pid::from_child(&self.child), Signal::TERM).unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _killed = self.child.kill();
        let _reaped = self.child.wait();
    }
}

/// A fresh database on `DATABASE_URL`'s server, dropped at the end.
struct PostgresDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PostgresDatabase {
    fn create() -> Result<Self, String> {
        let admin_url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
        let name = format!("load_{}", uuid::Uuid::new_v4().simple());
        simple_query(&admin_url, &format!("CREATE DATABASE {name}"))
            .map_err(|error| format!("no PostgreSQL at {admin_url}: {error}"))?;
        let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Ok(Self { admin_url, name, url })
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(error) = simple_query(&self.admin_url, &statement) {
            eprintln!("could not drop {}: {error}", self.name);
        }
    }
}
