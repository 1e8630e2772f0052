//! The refund bench: `Ledger::refund` on SQLite and PostgreSQL, for the shapes a merchant's traffic takes, and
//! (when given one) the cqrs-es peer on the same database in the same run.
//!
//! Run with `cargo bench -p app --bench refunds`; options after `--`:
//! - `--peer DIR` (or `REFUND_BENCH_PEER_DIR=DIR`): a peer benchmark's Cargo project. It is built in release mode
//!   with its own target directory (`REFUND_BENCH_PEER_TARGET_DIR`, default `<temp>/refund-ledger-peer-target`,
//!   never inside DIR, which may be read-only), run on the same PostgreSQL (a scratch database per case) and the
//!   same disk, and its refunds/s is printed beside ours with the ratio. Without it the ledger runs alone.
//! - `--cases TEXT`: run only the cases whose label contains TEXT (e.g. `--cases postgres`).
//! - `--quick`: a tenth of the refunds per case, to try the bench out.
//!
//! Every refund is a `Ledger::refund` of 1.00 USD through a gateway that answers S at once (no network, no RSA),
//! so a refund is its two durable appends (`RefundRequested`, then `RefundSucceeded`) plus the decisions. The
//! projection runner is not running (neither does the peer project anything). Refunds pick their payment as the
//! peer does (`i * 7919 mod payments`). Each case gets a fresh store (a scratch PostgreSQL database or a new
//! SQLite file) except the "grown log" case, which first writes `GROWN_LOG_EVENTS` payment events.
//!
//! Columns: refunds/s, latency percentiles per refund, conflict retries, the peer's refunds/s and conflicts with
//! our ratio to it, and the CPU time per refund of this process (`cpu us`: the ledger and the bench's clients) and of
//! the PostgreSQL backends serving the case (`pg us`), read from /proc.
//!
//! Environment: `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`; without a server the
//! PostgreSQL cases are skipped), `REFUND_BENCH_DIR` (where the SQLite files go; default the temp directory),
//! `KURRENTDB_URL` (e.g. `kurrentdb://127.0.0.1:2113?tls=false`: the KurrentDB cases, each in a namespace of
//! its own with SQLite read models, run with `cargo bench -p app --features kurrentdb --bench refunds`; without
//! the URL or the feature they are skipped with the reason).
#![allow(clippy::print_stdout, reason = "a benchmark reports its table on stdout")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark aborts on the first failure"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use apo::{InquiryOutcome, RefundOutcome, RefundRequest};
use app::{Ledger, RecordPaymentInput, RefundGateway, RefundInput, SystemClock};
use async_trait::async_trait;
use domain::{
    Money, OutcomeSource, PaymentEvent, PaymentId, PaymentMethodType, PaymentRecorded, Policy, RefundId,
    RefundRequestId, RefundRequested, RefundSucceeded, ResultStatus,
};
use eventlog::{EventStore, ExpectedRevision, NewEvent, PostgresOptions, PostgresStore, SqliteStore, StreamName};
use projections::{PostgresReadModels, ReadModels, SqliteReadModels};
use time::OffsetDateTime;
use tokio_postgres::{Config, NoTls};
use uuid::Uuid;

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Each refund's amount, in USD minor units.
const REFUND_MINOR_UNITS: u64 = 100;
/// Events written before the "grown log" case runs.
const GROWN_LOG_EVENTS: u64 = 400_000;
/// Refunds per payment in the events that grow the log.
const GROWN_LOG_REFUNDS_PER_PAYMENT: u64 = 100;
/// Clients that record the payments before a case starts.
const SETUP_CLIENTS: usize = 16;
/// The peer's database connections top out below PostgreSQL's default `max_connections` (100).
const PEER_CLIENTS_MAX: usize = 96;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
    KurrentDb,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::KurrentDb => "kurrentdb",
        }
    }
}

/// Which payments the refunds go to.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `payments` payments, each with room for every refund.
    Spread { payments: u64 },
    /// One payment takes every refund.
    Hot,
}

#[derive(Debug, Clone)]
struct Case {
    backend: Backend,
    label: String,
    shape: Shape,
    clients: usize,
    /// Ledger instances (store handles) the clients are spread over.
    instances: usize,
    refunds: u64,
    /// Events written before the case starts (the log's size, not this case's payments).
    grown_events: u64,
    /// Refunds the peer runs for this case; `None`: the peer has no counterpart.
    peer_refunds: Option<u64>,
}

impl Case {
    fn new(backend: Backend, shape: Shape, clients: usize, refunds: u64) -> Self {
        let label = match shape {
            Shape::Spread { payments } => format!("{payments} payments, {clients} clients"),
            Shape::Hot => format!("one hot payment, {clients} clients"),
        };
        Self {
            backend,
            label,
            shape,
            clients,
            instances: 1,
            refunds,
            grown_events: 0,
            peer_refunds: None,
        }
    }

    fn with_peer(mut self, refunds: u64) -> Self {
        self.peer_refunds = Some(refunds);
        self
    }

    fn payments(&self) -> u64 {
        match self.shape {
            Shape::Spread { payments } => payments,
            Shape::Hot => 1,
        }
    }
}

fn cases() -> Vec<Case> {
    use Backend::{KurrentDb, Postgres, Sqlite};
    let spread = Shape::Spread { payments: 1_000 };
    let mut grown = Case::new(Postgres, spread, 16, 20_000);
    grown.grown_events = GROWN_LOG_EVENTS;
    grown.label = format!("{}, grown log ({GROWN_LOG_EVENTS} events)", grown.label);
    let mut two_instances = Case::new(Postgres, Shape::Hot, 16, 10_000);
    two_instances.instances = 2;
    two_instances.label = "one hot payment, 16 clients, two instances".to_owned();
    let mut sqlite_two_instances = two_instances.clone();
    sqlite_two_instances.backend = Sqlite;
    let mut deep = Case::new(Sqlite, Shape::Spread { payments: 1_000 }, 16, 200_000);
    deep.label = "1000 payments x 200 refunds each, 16 clients".to_owned();
    let mut wide = Case::new(Sqlite, Shape::Spread { payments: 10_000 }, 16, 200_000);
    wide.label = "10000 payments x 20 refunds each, 16 clients".to_owned();
    let mut kurrentdb_two_instances = two_instances.clone();
    kurrentdb_two_instances.backend = KurrentDb;
    kurrentdb_two_instances.refunds = 3_000;
    vec![
        Case::new(Postgres, spread, 1, 3_000).with_peer(3_000),
        Case::new(Postgres, spread, 16, 20_000).with_peer(20_000),
        Case::new(Postgres, spread, 64, 20_000).with_peer(20_000),
        Case::new(Postgres, spread, 128, 20_000),
        grown,
        Case::new(Postgres, Shape::Hot, 16, 10_000).with_peer(2_000),
        two_instances,
        Case::new(Sqlite, spread, 1, 3_000).with_peer(3_000),
        Case::new(Sqlite, spread, 16, 20_000).with_peer(20_000),
        Case::new(Sqlite, Shape::Hot, 16, 10_000).with_peer(300),
        sqlite_two_instances,
        deep,
        wide,
        Case::new(KurrentDb, spread, 1, 1_000),
        Case::new(KurrentDb, spread, 16, 10_000),
        Case::new(KurrentDb, Shape::Hot, 16, 3_000),
        kurrentdb_two_instances,
    ]
}

/// Antom as an in-process stub: every refund succeeds at once.
#[derive(Debug, Default)]
struct InstantGateway {
    refunds: AtomicU64,
}

#[async_trait]
impl RefundGateway for InstantGateway {
    async fn refund(&self, request: &RefundRequest) -> RefundOutcome {
        let number = self.refunds.fetch_add(1, Ordering::Relaxed);
        RefundOutcome::Succeeded {
            refund_id: RefundId::parse(&format!("BENCH{number:020}")).unwrap(),
            refund_time: OffsetDateTime::now_utc(),
            refund_amount: request.refund_amount,
            gross_settlement_amount: None,
            actual_refund_amount: None,
            acquirer_reference_no: None,
        }
    }

    async fn inquiry(&self, _refund_request_id: &RefundRequestId) -> InquiryOutcome {
        InquiryOutcome::Processing
    }
}

#[derive(Debug)]
struct Options {
    peer_dir: Option<PathBuf>,
    filter: Option<String>,
    quick: bool,
}

fn options() -> Options {
    let mut options = Options {
        peer_dir: std::env::var_os("REFUND_BENCH_PEER_DIR").map(PathBuf::from),
        filter: None,
        quick: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--peer" => options.peer_dir = args.next().map(PathBuf::from),
            "--cases" => options.filter = args.next(),
            "--quick" => options.quick = true,
            // `cargo bench` passes `--bench`; anything else is a mistake worth saying.
            "--bench" => {}
            other => panic!("unknown option {other}; use --peer DIR, --cases TEXT, --quick"),
        }
    }
    options
}

fn main() {
    let options = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(options));
}

async fn run(options: Options) {
    let peer = options.peer_dir.as_deref().map(Peer::build);
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    let server = Config::from_str(&url).unwrap();
    let postgres_up = server.connect(NoTls).await.is_ok();
    let directory = match std::env::var_os("REFUND_BENCH_DIR") {
        Some(path) => tempfile::tempdir_in(path).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    println!(
        "machine: {} cores; peer: {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        peer.as_ref().map_or_else(
            || "none (pass --peer DIR)".to_owned(),
            |peer| peer.binary.display().to_string()
        )
    );
    println!(
        "{:<9} {:<58} {:>8} {:>9} {:>8} {:>8} {:>9} {:>9} {:>7} {:>9} {:>8} {:>8}",
        "backend",
        "case",
        "refunds",
        "per sec",
        "p50 ms",
        "p99 ms",
        "conflicts",
        "peer/s",
        "ratio",
        "peer cfl",
        "cpu us",
        "pg us"
    );
    for (index, mut case) in cases().into_iter().enumerate() {
        let label = format!("{} {}", case.backend.name(), case.label);
        if options
            .filter
            .as_ref()
            .is_some_and(|filter| !label.contains(filter.as_str()))
        {
            continue;
        }
        if case.backend == Backend::Postgres && !postgres_up {
            println!("{:<9} {:<58} skipped: no PostgreSQL at {url}", "postgres", case.label);
            continue;
        }
        if case.backend == Backend::KurrentDb
            && let Some(reason) = kurrentdb_missing()
        {
            println!("{:<9} {:<58} skipped: {reason}", "kurrentdb", case.label);
            continue;
        }
        if options.quick {
            case.refunds = (case.refunds / 10).max(100);
            case.peer_refunds = case.peer_refunds.map(|refunds| (refunds / 10).max(100));
            case.grown_events /= 10;
        }
        let sqlite_path = directory.path().join(format!("case-{index}.db"));
        let result = run_case(&case, &server, &sqlite_path).await;
        let peer_result = match (&peer, case.peer_refunds) {
            (Some(peer), Some(refunds)) => {
                let peer_path = directory.path().join(format!("peer-{index}.db"));
                Some(peer.run(&case, refunds, &server, &peer_path).await)
            }
            _ => None,
        };
        print_row(&case, &result, peer_result.as_ref());
    }
}

fn print_row(case: &Case, result: &CaseResult, peer: Option<&PeerResult>) {
    let (peer_rate, ratio, peer_conflicts) = match peer {
        Some(peer) => (
            format!("{:.0}", peer.refunds_per_second),
            format!("{:.2}x", result.refunds_per_second / peer.refunds_per_second),
            peer.conflicts.to_string(),
        ),
        None => (String::new(), String::new(), String::new()),
    };
    let server_cpu = result
        .server_cpu_per_refund
        .map_or_else(String::new, |server| server.as_micros().to_string());
    println!(
        "{:<9} {:<58} {:>8} {:>9.0} {:>8.2} {:>8.2} {:>9} {:>9} {:>7} {:>9} {:>8} {:>8}",
        case.backend.name(),
        case.label,
        case.refunds,
        result.refunds_per_second,
        result.p50.as_secs_f64() * 1_000.0,
        result.p99.as_secs_f64() * 1_000.0,
        result.conflicts,
        peer_rate,
        ratio,
        peer_conflicts,
        result.ledger_cpu_per_refund.as_micros(),
        server_cpu
    );
}

#[derive(Debug)]
struct CaseResult {
    refunds_per_second: f64,
    p50: Duration,
    p99: Duration,
    conflicts: u64,
    /// CPU of this process (the ledger and the bench's clients) per refund.
    ledger_cpu_per_refund: Duration,
    /// CPU of the PostgreSQL backends per refund.
    server_cpu_per_refund: Option<Duration>,
}

/// Why the KurrentDB cases cannot run, if they cannot.
fn kurrentdb_missing() -> Option<&'static str> {
    if std::env::var("KURRENTDB_URL").map_or(true, |url| url.is_empty()) {
        return Some("KURRENTDB_URL not set");
    }
    if !cfg!(feature = "kurrentdb") {
        return Some("built without the kurrentdb feature (cargo bench -p app --features kurrentdb)");
    }
    None
}

/// The stores of one case and what cleans them up.
struct Stores {
    handles: Vec<Arc<dyn EventStore>>,
    read_models: Arc<dyn ReadModels>,
    database: Option<(Config, String)>,
}

async fn open_stores(case: &Case, server: &Config, sqlite_path: &Path) -> Stores {
    match case.backend {
        Backend::Sqlite => {
            let mut handles: Vec<Arc<dyn EventStore>> = Vec::new();
            for _ in 0..case.instances {
                handles.push(Arc::new(SqliteStore::open(sqlite_path).await.unwrap()));
            }
            with_sqlite_read_models(handles, sqlite_path).await
        }
        Backend::Postgres => {
            let database = format!("refund_bench_{}", Uuid::new_v4().simple());
            admin(server)
                .await
                .batch_execute(&format!("CREATE DATABASE {database}"))
                .await
                .unwrap();
            let mut config = server.clone();
            config.dbname(&database);
            let mut handles: Vec<Arc<dyn EventStore>> = Vec::new();
            for _ in 0..case.instances {
                let options = PostgresOptions {
                    pool_connections_max: case.clients.clamp(8, 64),
                    ..PostgresOptions::default()
                };
                handles.push(Arc::new(
                    PostgresStore::connect_with(config.clone(), options).await.unwrap(),
                ));
            }
            let read_models = PostgresReadModels::connect_with(config).await.unwrap();
            Stores {
                handles,
                read_models: Arc::new(read_models),
                database: Some((server.clone(), database)),
            }
        }
        Backend::KurrentDb => open_kurrentdb(case, sqlite_path).await,
    }
}

/// Handles on a fresh namespace of the server `KURRENTDB_URL` names, and SQLite read models.
#[cfg(feature = "kurrentdb")]
async fn open_kurrentdb(case: &Case, sqlite_path: &Path) -> Stores {
    let server = std::env::var("KURRENTDB_URL").unwrap();
    let separator = if server.contains('?') { '&' } else { '?' };
    let url = format!("{server}{separator}namespace=bench{}", Uuid::new_v4().simple());
    let mut handles: Vec<Arc<dyn EventStore>> = Vec::new();
    for _ in 0..case.instances {
        handles.push(Arc::new(eventlog::KurrentDbStore::connect(&url).await.unwrap()));
    }
    with_sqlite_read_models(handles, sqlite_path).await
}

/// `handles` with read models in a SQLite file beside `sqlite_path`.
async fn with_sqlite_read_models(handles: Vec<Arc<dyn EventStore>>, sqlite_path: &Path) -> Stores {
    let read_models = SqliteReadModels::open(projections::read_model_path(sqlite_path))
        .await
        .unwrap();
    Stores {
        handles,
        read_models: Arc::new(read_models),
        database: None,
    }
}

#[cfg(not(feature = "kurrentdb"))]
async fn open_kurrentdb(_case: &Case, _sqlite_path: &Path) -> Stores {
    unreachable!("kurrentdb_missing() skips the KurrentDB cases in a build without the feature")
}

async fn admin(server: &Config) -> tokio_postgres::Client {
    let (client, connection) = server.connect(NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

async fn drop_database(database: Option<(Config, String)>) {
    if let Some((server, database)) = database {
        admin(&server)
            .await
            .batch_execute(&format!("DROP DATABASE {database} WITH (FORCE)"))
            .await
            .unwrap();
    }
}

fn usd(minor_units: u64) -> Money {
    Money::parse("amount", "USD", &minor_units.to_string()).unwrap()
}

fn payment_id(case_payment: u64) -> PaymentId {
    PaymentId::parse(&format!("P{case_payment}")).unwrap()
}

async fn run_case(case: &Case, server: &Config, sqlite_path: &Path) -> CaseResult {
    let stores = open_stores(case, server, sqlite_path).await;
    if case.grown_events > 0 {
        grow_log(stores.handles[0].as_ref(), case.grown_events).await;
    }
    let gateway: Arc<dyn RefundGateway> = Arc::new(InstantGateway::default());
    let ledgers: Vec<Ledger> = stores
        .handles
        .iter()
        .map(|store| {
            Ledger::new(
                Arc::clone(store),
                Arc::clone(&stores.read_models),
                Arc::clone(&gateway),
                Policy::default(),
                Arc::new(SystemClock),
            )
        })
        .collect();
    let payments = case.payments();
    // Room for every refund of the case on each payment.
    let amount = usd(case.refunds.max(1) * REFUND_MINOR_UNITS);
    record_payments(&ledgers[0], payments, amount).await;

    let cpu_before = CpuSample::take(stores.database.as_ref()).await;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for client in 0..case.clients {
        let ledger = ledgers[client % ledgers.len()].clone();
        let next = Arc::clone(&next);
        let refunds = case.refunds;
        clients.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= refunds {
                    return latencies;
                }
                let input = RefundInput {
                    refund_request_id: RefundRequestId::parse(&format!("R{index}")).unwrap(),
                    payment_id: payment_id(index * 7_919 % payments),
                    refund_amount: usd(REFUND_MINOR_UNITS),
                    refund_reason: None,
                };
                let asked = Instant::now();
                let answer = ledger.refund("bench", input).await.unwrap();
                latencies.push(asked.elapsed());
                assert_eq!(answer.result.status, ResultStatus::S, "{:?}", answer.result);
            }
        }));
    }
    let mut latencies = Vec::new();
    for client in clients {
        latencies.extend(client.await.unwrap());
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = CpuSample::take(stores.database.as_ref()).await.since(&cpu_before);
    latencies.sort_unstable();
    let conflicts = ledgers.iter().map(Ledger::conflict_retries).sum();
    check_balance(&ledgers[0], case).await;
    drop(ledgers);
    drop_database(stores.database).await;
    CaseResult {
        refunds_per_second: case.refunds as f64 / seconds,
        p50: percentile(&latencies, 50),
        p99: percentile(&latencies, 99),
        conflicts,
        ledger_cpu_per_refund: cpu.ledger / u32::try_from(case.refunds).unwrap_or(u32::MAX),
        server_cpu_per_refund: cpu
            .server
            .map(|server| server / u32::try_from(case.refunds).unwrap_or(u32::MAX)),
    }
}

/// CPU time (user + system) of this process and of the PostgreSQL backends connected to the case's database, read
/// from /proc: on a machine shared with other work, time spent per refund says more than wall-clock rates.
#[derive(Debug, Default)]
struct CpuSample {
    ledger: Duration,
    /// Per backend process id; `None` for SQLite.
    server: Option<std::collections::HashMap<i32, Duration>>,
}

/// The CPU time spent between two samples.
#[derive(Debug)]
struct CpuSpent {
    ledger: Duration,
    server: Option<Duration>,
}

impl CpuSample {
    async fn take(database: Option<&(Config, String)>) -> Self {
        let ledger = process_cpu("self");
        let server = match database {
            None => None,
            Some((server, database)) => {
                let rows = admin(server)
                    .await
                    .query(
                        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                        &[database],
                    )
                    .await
                    .unwrap();
                let pids = rows.iter().map(|row| row.get::<_, i32>(0));
                Some(pids.map(|pid| (pid, process_cpu(&pid.to_string()))).collect())
            }
        };
        Self { ledger, server }
    }

    fn since(&self, before: &Self) -> CpuSpent {
        let server = self.server.as_ref().map(|after| {
            after
                .iter()
                .map(|(pid, spent)| {
                    let earlier = before.server.as_ref().and_then(|before| before.get(pid)).copied();
                    spent.saturating_sub(earlier.unwrap_or_default())
                })
                .sum()
        });
        CpuSpent {
            ledger: self.ledger.saturating_sub(before.ledger),
            server,
        }
    }
}

/// User + system CPU time of a process from `/proc/<pid>/stat` (fields 14 and 15, in clock ticks of 10 ms);
/// zero when the process is gone or the file is not there (not Linux).
fn process_cpu(pid: &str) -> Duration {
    const TICK: Duration = Duration::from_millis(10);
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis are plain.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u32 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|field| field.parse::<u32>().ok())
        .sum();
    TICK * ticks
}

fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * percent / 100).min(sorted.len() - 1)]
}

/// Every refund succeeded and nothing was refunded twice: the payments' refunded totals add up to the case.
async fn check_balance(ledger: &Ledger, case: &Case) {
    let mut refunded = 0;
    for payment in 0..case.payments() {
        let state = ledger.payment(&payment_id(payment)).await.unwrap().unwrap();
        assert!(state.invariant_holds());
        refunded += state.refunded.minor_units();
    }
    assert_eq!(refunded, case.refunds * REFUND_MINOR_UNITS, "refunded total");
}

async fn record_payments(ledger: &Ledger, payments: u64, amount: Money) {
    let next = Arc::new(AtomicU64::new(0));
    let paid_at = OffsetDateTime::now_utc() - time::Duration::hours(1);
    let mut tasks = Vec::new();
    for _ in 0..SETUP_CLIENTS {
        let ledger = ledger.clone();
        let next = Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            loop {
                let payment = next.fetch_add(1, Ordering::Relaxed);
                if payment >= payments {
                    return;
                }
                let input = RecordPaymentInput {
                    payment_id: payment_id(payment),
                    payment_amount: amount,
                    payment_method_type: PaymentMethodType::parse("ALIPAY_CN").unwrap(),
                    payment_time: paid_at,
                    capture_required: None,
                };
                let answer = ledger.record_payment("bench", input).await.unwrap();
                assert_eq!(answer.result.status, ResultStatus::S, "{:?}", answer.result);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// Writes about `events` events of settled refunds on payments of their own, straight to the store.
async fn grow_log(store: &dyn EventStore, events: u64) {
    let per_payment = 1 + 2 * GROWN_LOG_REFUNDS_PER_PAYMENT;
    let now = OffsetDateTime::now_utc();
    for payment in 0..events.div_ceil(per_payment) {
        let payment_id = PaymentId::parse(&format!("GROWN{payment}")).unwrap();
        let mut stream_events = vec![PaymentEvent::PaymentRecorded(PaymentRecorded {
            payment_id: payment_id.clone(),
            payment_amount: usd(GROWN_LOG_REFUNDS_PER_PAYMENT * REFUND_MINOR_UNITS),
            payment_method_type: PaymentMethodType::parse("ALIPAY_CN").unwrap(),
            payment_time: now,
            capture_required: false,
        })];
        for refund in 0..GROWN_LOG_REFUNDS_PER_PAYMENT {
            let refund_request_id = RefundRequestId::parse(&format!("GROWN{payment}-{refund}")).unwrap();
            stream_events.push(PaymentEvent::RefundRequested(RefundRequested {
                refund_request_id: refund_request_id.clone(),
                payment_id: payment_id.clone(),
                refund_amount: usd(REFUND_MINOR_UNITS),
                refund_reason: None,
                requested_at: now,
            }));
            stream_events.push(PaymentEvent::RefundSucceeded(RefundSucceeded {
                refund_request_id,
                refund_id: RefundId::parse(&format!("GROWNREF{payment}-{refund}")).unwrap(),
                refund_time: now,
                source: OutcomeSource::RefundResponse,
            }));
        }
        let new_events = stream_events
            .iter()
            .map(|event| {
                let stored = event.to_stored();
                NewEvent {
                    event_id: match event {
                        PaymentEvent::RefundRequested(requested) => {
                            app::refund_request_event_id(&requested.refund_request_id)
                        }
                        _ => Uuid::new_v4(),
                    },
                    event_type: stored.event_type.to_owned(),
                    schema_version: stored.schema_version,
                    payload: stored.data,
                    actor: "bench".to_owned(),
                }
            })
            .collect();
        let stream = StreamName::parse(domain::payment_stream_name(&payment_id)).unwrap();
        store
            .append(&stream, ExpectedRevision::NoStream, new_events)
            .await
            .unwrap();
    }
}

/// A peer benchmark built from its Cargo project.
#[derive(Debug)]
struct Peer {
    binary: PathBuf,
}

#[derive(Debug)]
struct PeerResult {
    refunds_per_second: f64,
    conflicts: u64,
}

impl Peer {
    /// Builds the peer in release mode into a target directory outside its project; panics with cargo's
    /// output when that fails.
    fn build(directory: &Path) -> Self {
        let target = std::env::var_os("REFUND_BENCH_PEER_TARGET_DIR")
            .map_or_else(|| std::env::temp_dir().join("refund-ledger-peer-target"), PathBuf::from);
        let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .arg("build")
            .arg("--release")
            .arg("--message-format=json-render-diagnostics")
            .arg("--manifest-path")
            .arg(directory.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "building the peer in {} failed:\n{}",
            directory.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let binary = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|message| message.get("executable")?.as_str().map(PathBuf::from))
            .next_back()
            .expect("the peer project builds an executable");
        Self { binary }
    }

    /// Runs the peer for `case` on a scratch database (or SQLite file) and reads its one-line result.
    async fn run(&self, case: &Case, refunds: u64, server: &Config, sqlite_path: &Path) -> PeerResult {
        let (url, database) = match case.backend {
            Backend::Sqlite => (format!("sqlite://{}", sqlite_path.display()), None),
            Backend::Postgres => {
                let database = format!("refund_bench_peer_{}", Uuid::new_v4().simple());
                admin(server)
                    .await
                    .batch_execute(&format!("CREATE DATABASE {database}"))
                    .await
                    .unwrap();
                (postgres_url(server, &database), Some((server.clone(), database)))
            }
            Backend::KurrentDb => unreachable!("no KurrentDB case has a peer counterpart"),
        };
        let binary = self.binary.clone();
        let args = [
            url,
            case.payments().to_string(),
            refunds.to_string(),
            case.clients.min(PEER_CLIENTS_MAX).to_string(),
        ];
        let output = tokio::task::spawn_blocking(move || Command::new(binary).args(args).output())
            .await
            .unwrap()
            .unwrap();
        drop_database(database).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "the peer failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        parse_peer_line(&stdout).unwrap_or_else(|| panic!("cannot read the peer's result from {stdout:?}"))
    }
}

fn postgres_url(server: &Config, database: &str) -> String {
    let host = match server.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = server.get_ports().first().copied().unwrap_or(5432);
    let user = server.get_user().unwrap_or("postgres");
    format!("postgres://{user}@{host}:{port}/{database}")
}

/// Reads `... refunds N at X/s with C clients, K conflicts retried` from the peer's output.
fn parse_peer_line(output: &str) -> Option<PeerResult> {
    let refunds = output.split("refunds ").nth(1)?;
    let rate = refunds.split(" at ").nth(1)?.split("/s").next()?;
    let conflicts = refunds.split("clients, ").nth(1)?.split(' ').next()?;
    Some(PeerResult {
        refunds_per_second: rate.trim().parse().ok()?,
        conflicts: conflicts.trim().parse().ok()?,
    })
}
