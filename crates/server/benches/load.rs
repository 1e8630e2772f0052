//! Load benchmark of the whole service over loopback HTTP: the release `refund-ledger serve` binary with
//! the `apo-sim` binary as Antom in a process of its own (benchmark mode: every refund answered S at once, no
//! latency, no faults; requests, answers and refund notifications are still signed and verified), driven
//! through GraphQL from this process. Three processes, so the ledger's own CPU per refund is measured apart
//! from the simulator's signatures and from the load clients.
//!
//! Run with `cargo bench -p refund-ledger --bench load`. The simulator is the release `apo-sim` beside the
//! ledger binary (`cargo build --release -p apo-sim` puts it there); when it is missing the bench builds it
//! once into `target/bench-apo-sim` (Cargo holds the target directory's lock while a bench runs).
//!
//! Per store (SQLite in a temp directory under `LOAD_BENCH_DIR` or the system temp directory; PostgreSQL in a
//! fresh database on `DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`, skipped with the
//! reason when no server answers):
//! - refunds, saturated: `REFUND_CLIENTS_SATURATING` closed-loop clients, each on its own payments, until
//!   `REFUND_COUNT_MAX` answered or `REFUND_SECONDS_MAX` passed: throughput and p50/p99;
//! - refunds at `REFUND_RATE_PER_SECOND` offered (open loop: latency counts from the scheduled send time, so
//!   a stall is not hidden) for `REFUND_RATE_SECONDS`: p50/p99 and the CPU per refund of each process;
//! - payment queries at `QUERY_RATE_PER_SECOND` offered for `QUERY_SECONDS`.
//!
//! Columns: `ledger cpu ms/op` is the CPU time (user + system, from `/proc/PID/stat`) the ledger process used
//! during the case divided by the operations; `sim cpu ms/op` the same for the simulator. A reference row
//! first times one RSA-2048 signature with the demo merchant key, as the ledger signs every request to Antom;
//! `ledger w/o sign` subtracts one such signature per refund from the ledger's CPU (everything but the
//! ledger's own RSA signature: HTTP, GraphQL, the log, projections, verifying Antom's answer and
//! notification). Targets (issue 8): ledger CPU <= 1.0 ms per refund, <= 0.3 ms without its signature, p99 <=
//! 20 ms at 300 refunds/s offered; payment query p99 < 5 ms at 1,000/s. All processes share the machine's
//! cores; the load average is printed before each store.
//!
//! To compare two builds back to back under the same load, `LOAD_BENCH_LEDGER=PATH` runs another
//! `refund-ledger` binary (a reference build) instead of the one built with the bench, and
//! `LOAD_BENCH_STORES=sqlite` (or `postgres`, comma-separated) runs only the stores named.
#![allow(clippy::print_stdout, reason = "a benchmark reports its table on stdout")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark aborts on the first failure"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde_json::{Value, json};

use testkit::antom::{CLIENT_ID, demo_key};
use testkit::postgres::ScratchDatabase;

/// Concurrent refund clients that keep the server saturated (HTTP/1.1 keep-alive connections).
const REFUND_CLIENTS_SATURATING: usize = 32;
/// Payments per client; refunds rotate over them.
const PAYMENTS_PER_CLIENT: usize = 64;
/// Most refunds measured per saturated case.
const REFUND_COUNT_MAX: usize = 30_000;
/// Longest saturated case.
const REFUND_SECONDS_MAX: u64 = 15;
/// Offered rate of the open-loop refund case (issue 8: p99 <= 20 ms at 300/s).
const REFUND_RATE_PER_SECOND: u64 = 300;
/// Length of the open-loop refund case.
const REFUND_RATE_SECONDS: u64 = 20;
/// Signatures timed for the RSA reference row.
const SIGNATURES_TIMED: usize = 400;
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
/// Linux's USER_HZ: the unit of CPU times in `/proc/PID/stat`.
const CLOCK_TICKS_PER_SECOND: u64 = 100;
/// Longest wait for a process to answer after its start.
const START_DEADLINE: Duration = Duration::from_secs(60);

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
        "refund-ledger load benchmark: {} cores, release binaries, apo-sim in its own process (benchmark mode), loopback",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    println!("(the ledger, the simulator and the load clients share the same cores)");
    let signature = rsa_reference();
    println!(
        "{:<9} {:<30} {:>6} {:>7} {:>8} {:>7} {:>7} {:>7} {:>10} {:>10} {:>9}",
        "store",
        "case",
        "count",
        "seconds",
        "per sec",
        "p50 ms",
        "p99 ms",
        "max ms",
        "ledger cpu",
        "w/o sign",
        "sim cpu"
    );
    println!(
        "{:<9} {:<30} {:>6} {:>7} {:>8} {:>7} {:>7} {:>7} {:>10} {:>10} {:>9}",
        "", "", "", "", "", "", "", "", "ms/op", "ms/op", "ms/op"
    );
    let directory = match std::env::var_os("LOAD_BENCH_DIR") {
        Some(path) => tempfile::tempdir_in(path).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    println!("ledger binary: {}", ledger_binary().display());
    let stores = std::env::var("LOAD_BENCH_STORES").unwrap_or_else(|_| "sqlite,postgres".to_owned());
    let runs = |store: &str| stores.split(',').any(|name| name.trim() == store);
    if runs("sqlite") {
        let sqlite = format!("sqlite://{}", directory.path().join("ledger.db").display());
        bench_store("sqlite", &sqlite, directory.path(), signature).await;
    }
    if !runs("postgres") {
        return;
    }
    match ScratchDatabase::try_create("load", None) {
        Ok(database) => {
            let folder = directory.path().join("postgres");
            std::fs::create_dir_all(&folder).unwrap();
            bench_store("postgres", &database.url, &folder, signature).await;
        }
        Err(reason) => println!("{:<9} skipped: {reason}", "postgres"),
    }
}

/// Times RSA-2048 signatures of a refund-sized body with the demo merchant key; answers the median.
fn rsa_reference() -> Duration {
    let key = apo::PrivateKey::from_file(&demo_key("merchant_private_pkcs8.pem")).unwrap();
    let body =
        json!({ "refundRequestId": "R-1", "paymentId": "P-1", "refundAmount": { "currency": "USD", "value": "100" } })
            .to_string();
    let mut latencies = Vec::with_capacity(SIGNATURES_TIMED);
    for _ in 0..SIGNATURES_TIMED {
        let signed = Instant::now();
        let signature = apo::sign(
            &key,
            "POST",
            "/ams/api/v1/payments/refund",
            CLIENT_ID,
            "1",
            body.as_bytes(),
        )
        .unwrap();
        latencies.push(signed.elapsed());
        assert!(!signature.is_empty());
    }
    latencies.sort_unstable();
    let median = latencies[latencies.len() / 2];
    println!(
        "RSA-2048 sign with the merchant key (this process, 1 thread): median {:.3} ms, p99 {:.3} ms",
        median.as_secs_f64() * 1_000.0,
        latencies[latencies.len() * 99 / 100].as_secs_f64() * 1_000.0
    );
    median
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// CPU time of the ledger and the simulator at one moment.
#[derive(Clone, Copy)]
struct Cpu {
    ledger: Option<Duration>,
    simulator: Option<Duration>,
}

impl Cpu {
    fn now(ledger: &Process, simulator: &Process) -> Self {
        Self {
            ledger: ledger.cpu_time(),
            simulator: simulator.cpu_time(),
        }
    }

    fn since(self, earlier: Self) -> Self {
        Self {
            ledger: self
                .ledger
                .zip(earlier.ledger)
                .and_then(|(now, then)| now.checked_sub(then)),
            simulator: self
                .simulator
                .zip(earlier.simulator)
                .and_then(|(now, then)| now.checked_sub(then)),
        }
    }
}

async fn bench_store(name: &str, store: &str, folder: &Path, signature: Duration) {
    println!("{name:<9} load average before: {}", load_average());
    let ledger_port = free_loopback_port();
    let simulator = Process::simulator(ledger_port).await;
    let ledger = Process::ledger(store, folder, ledger_port, simulator.port).await;
    println!(
        "{name:<9} ledger pid {}, simulator pid {}",
        ledger.child.id(),
        simulator.child.id()
    );
    let client = Client::new(ledger.port);
    let payments = REFUND_CLIENTS_SATURATING * PAYMENTS_PER_CLIENT;
    let started = Instant::now();
    record_payments(&client, payments).await;
    println!(
        "{name:<9} recorded {payments} payments (mirrored into the simulator) in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let time_max = Duration::from_secs(REFUND_SECONDS_MAX);
    refund_load(&client, REFUND_CLIENTS_SATURATING, WARMUP_REFUNDS, time_max, "warm").await;

    let case = format!("refunds, {REFUND_CLIENTS_SATURATING} clients");
    let busy = refund_load(&client, REFUND_CLIENTS_SATURATING, REFUND_COUNT_MAX, time_max, "busy");
    measure(name, &case, (&ledger, &simulator), Some(signature), busy).await;
    let case = format!("refunds @ {REFUND_RATE_PER_SECOND}/s offered");
    measure(
        name,
        &case,
        (&ledger, &simulator),
        Some(signature),
        refund_rate(&client, payments),
    )
    .await;
    let case = format!("payment queries @ {QUERY_RATE_PER_SECOND}/s");
    measure(name, &case, (&ledger, &simulator), None, query_load(&client, payments)).await;
    ledger.stop();
    simulator.stop();
}

/// Runs one case (`load` answers its latencies) and reports it with the CPU the ledger and the simulator used.
async fn measure(
    name: &str,
    case: &str,
    (ledger, simulator): (&Process, &Process),
    signature: Option<Duration>,
    load: impl std::future::Future<Output = Vec<Duration>>,
) {
    let started = Instant::now();
    let before = Cpu::now(ledger, simulator);
    let mut latencies = load.await;
    let used = Cpu::now(ledger, simulator).since(before);
    report(name, case, &mut latencies, started.elapsed(), used, signature);
}

/// Records `payments` payments from `REFUND_CLIENTS_SATURATING` concurrent clients.
async fn record_payments(client: &Client, payments: usize) {
    let mut tasks = Vec::with_capacity(REFUND_CLIENTS_SATURATING);
    for first in 0..REFUND_CLIENTS_SATURATING {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for index in (first..payments).step_by(REFUND_CLIENTS_SATURATING) {
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

/// Balance queries at `QUERY_RATE_PER_SECOND` for `QUERY_SECONDS`, rotating over the payments.
async fn query_load(client: &Client, payments: usize) -> Vec<Duration> {
    open_loop(QUERY_RATE_PER_SECOND, QUERY_SECONDS, |index| {
        let client = client.clone();
        async move {
            let data = client
                .graphql(PAYMENT, json!({ "id": payment_id(index % payments) }))
                .await;
            assert!(data["payment"]["refundedAmount"]["value"].is_string(), "{data}");
        }
    })
    .await
}

/// Refunds at `REFUND_RATE_PER_SECOND` for `REFUND_RATE_SECONDS`, rotating over the payments; every answer
/// must be S.
async fn refund_rate(client: &Client, payments: usize) -> Vec<Duration> {
    open_loop(REFUND_RATE_PER_SECOND, REFUND_RATE_SECONDS, |index| {
        let client = client.clone();
        let variables = json!({
            "rid": format!("BENCH-rate-{index}"),
            "pid": payment_id(index % payments),
            "value": REFUND_MINOR_UNITS,
        });
        async move {
            let data = client.graphql(REFUND, variables).await;
            assert_eq!(data["refund"]["result"]["resultStatus"], "S", "{data}");
        }
    })
    .await
}

/// Sends request `index` of `rate * seconds` at its scheduled time, each on its own task, and answers each
/// one's latency from its scheduled time (open loop: a stall is not hidden).
async fn open_loop<Request, Answer>(rate: u64, seconds: u64, send: Request) -> Vec<Duration>
where
    Request: Fn(usize) -> Answer,
    Answer: std::future::Future<Output = ()> + Send + 'static,
{
    let total = usize::try_from(rate * seconds).unwrap();
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for index in 0..total {
        let scheduled = start + interval * u32::try_from(index).unwrap();
        tokio::time::sleep_until(scheduled).await;
        let request = send(index);
        tasks.push(tokio::spawn(async move {
            request.await;
            scheduled.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    for task in tasks {
        latencies.push(task.await.unwrap());
    }
    latencies
}

fn millis_per_operation(cpu: Option<Duration>, operations: usize) -> Option<f64> {
    #[allow(clippy::cast_precision_loss, reason = "a mean for display")]
    cpu.filter(|_| operations > 0)
        .map(|cpu| cpu.as_secs_f64() * 1_000.0 / operations as f64)
}

fn column(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| format!("{value:.3}"))
}

/// One row: count, rate, latency percentiles and CPU per operation; `signature` (refund cases) is the cost
/// of the ledger's own RSA signature, subtracted once per refund in the `w/o sign` column.
fn report(
    store: &str,
    case: &str,
    latencies: &mut [Duration],
    elapsed: Duration,
    cpu: Cpu,
    signature: Option<Duration>,
) {
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
    let ledger = millis_per_operation(cpu.ledger, latencies.len());
    let without_signature = signature.and_then(|signature| Some(ledger? - signature.as_secs_f64() * 1_000.0));
    let simulator = millis_per_operation(cpu.simulator, latencies.len());
    println!(
        "{store:<9} {case:<30} {:>6} {:>7.2} {per_second:>8.0} {:>7.2} {:>7.2} {:>7.2} {:>10} {:>10} {:>9}",
        latencies.len(),
        elapsed.as_secs_f64(),
        percentile(0.50),
        percentile(0.99),
        percentile(1.0),
        column(ledger),
        column(without_signature),
        column(simulator),
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
            .pool_max_idle_per_host(REFUND_CLIENTS_SATURATING * 2)
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

/// A loopback port free right now (the simulator needs the ledger's port for its notifications before the
/// ledger starts).
fn free_loopback_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The ledger binary the bench runs: `LOAD_BENCH_LEDGER` when set (a reference build), else the one built with
/// the bench.
fn ledger_binary() -> PathBuf {
    std::env::var_os("LOAD_BENCH_LEDGER")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_refund-ledger")), PathBuf::from)
}

/// The release `apo-sim` beside the ledger binary, or one built once into `target/bench-apo-sim`.
fn apo_sim_binary() -> PathBuf {
    let name = format!("apo-sim{}", std::env::consts::EXE_SUFFIX);
    let ledger = Path::new(env!("CARGO_BIN_EXE_refund-ledger"));
    let beside = ledger.with_file_name(&name);
    if beside.exists() {
        return beside;
    }
    let target_dir = ledger.parent().and_then(Path::parent).unwrap().join("bench-apo-sim");
    println!("building the release apo-sim into {} (once)", target_dir.display());
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "-p",
            "apo-sim",
            "--bin",
            "apo-sim",
            "--manifest-path",
        ])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .expect("cargo builds apo-sim");
    assert!(
        status.success(),
        "cannot build apo-sim; run `cargo build --release -p apo-sim`"
    );
    target_dir.join("release").join(name)
}

/// A child process (the ledger or the simulator) on a loopback port; killed on drop.
struct Process {
    child: Child,
    port: u16,
}

impl Process {
    /// `apo-sim` in benchmark mode; its refund notifications go to the ledger on `ledger_port`.
    async fn simulator(ledger_port: u16) -> Self {
        let port = free_loopback_port();
        let child = Command::new(apo_sim_binary())
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--client-id",
                CLIENT_ID,
                "--benchmark",
            ])
            .arg("--merchant-public-key")
            .arg(demo_key("merchant_public.pem"))
            .arg("--antom-private-key")
            .arg(demo_key("antom_private_pkcs8.pem"))
            .args([
                "--notify-url",
                &format!("http://127.0.0.1:{ledger_port}/apo/notify/refund"),
            ])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("apo-sim starts");
        let process = Self { child, port };
        process.wait_until_answering("/sim/faults").await;
        process
    }

    /// `refund-ledger serve` on `store` and `port`, with the simulator on `simulator_port` as Antom.
    async fn ledger(store: &str, folder: &Path, port: u16, simulator_port: u16) -> Self {
        let antom = format!("http://127.0.0.1:{simulator_port}");
        let mut child = Command::new(ledger_binary())
            .arg("serve")
            .current_dir(folder)
            .env("REFUND_LEDGER_STORE", store)
            .env("REFUND_LEDGER_LISTEN", format!("127.0.0.1:{port}"))
            .env("REFUND_LEDGER_API_KEYS", format!("bench:operator:{OPERATOR_KEY}"))
            .env("REFUND_LEDGER_ANTOM_BASE_URL", &antom)
            .env("REFUND_LEDGER_ANTOM_CLIENT_ID", CLIENT_ID)
            .env(
                "REFUND_LEDGER_ANTOM_MERCHANT_PRIVATE_KEY_FILE",
                demo_key("merchant_private_pkcs8.pem"),
            )
            .env("REFUND_LEDGER_ANTOM_PUBLIC_KEY_FILE", demo_key("antom_public.pem"))
            .env("REFUND_LEDGER_ANTOM_SIMULATOR_ADMIN_URL", &antom)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the release binary starts");
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|read| read > 0) {
                line.clear();
            }
        });
        let process = Self { child, port };
        process.wait_until_answering("/healthz").await;
        process
    }

    async fn wait_until_answering(&self, path: &str) {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if reqwest::get(&url)
                .await
                .is_ok_and(|response| response.status().is_success())
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{url} did not answer within {START_DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// User plus system CPU time of the process so far (Linux; `None` elsewhere).
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

impl Drop for Process {
    fn drop(&mut self) {
        let _killed = self.child.kill();
        let _reaped = self.child.wait();
    }
}
