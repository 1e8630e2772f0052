//! Cost of a `/metrics` scrape with many refunds in the read models: `cargo bench -p refund-ledger --bench scrape`.
//!
//! Per store (SQLite in a temporary folder; PostgreSQL in a fresh database on `DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`, skipped with the reason when no server answers): writes a log of
//! `REFUND_LEDGER_BENCH_SCRAPE_REFUNDS` refunds (default 100,000) straight to the store, one in
//! `REFUND_LEDGER_BENCH_SCRAPE_OPEN_EVERY` (default 50) left requested and as many left processing, requested
//! over the last days so every age bucket has some; starts the binary (`serve --demo`, the settle worker held
//! off) on it, waits until the read models caught up, then times
//! - `ReadModels::open_refund_stats`, the scrape's one query that grows with the read models, in process;
//! - `GET /metrics` through the binary, the whole scrape (head, checkpoint, lag, open refunds, encoding, HTTP).
//!
//! On PostgreSQL both are timed twice: as the bulk load leaves the table, and after `VACUUM (ANALYZE)` of
//! `projection_refunds`, the state autovacuum keeps it in (migration 4 lets autovacuum visit it after 1% of
//! it changed): the open-refunds query reads the status index alone only where the visibility map is fresh.
//!
//! Target (issue 10): a scrape under 5 ms at 100,000 refunds. The load average is printed with each row: the
//! machine is shared, and a loaded machine shows.
#![allow(clippy::print_stdout, reason = "a benchmark reports its table on stdout")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark aborts on the first failure"
)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::{
    Currency, Money, OutcomeSource, PaymentEvent, PaymentId, PaymentMethodType, PaymentRecorded, RefundId,
    RefundProcessing, RefundRequestId, RefundRequested, RefundSucceeded,
};
use eventlog::{EventStore, ExpectedRevision};
use projections::ReadModels;
use time::OffsetDateTime;

use testkit::log::{new_event as log_event, payment_stream};
use testkit::postgres::ScratchDatabase;
use testkit::server::Server;

/// Refunds per payment (1 + up to 2 events each stay under the append limit of 1,000 events).
const REFUNDS_PER_PAYMENT: u64 = 400;
/// Scrapes timed per case (after `WARMUP_SCRAPES`).
const SCRAPES: usize = 300;
const WARMUP_SCRAPES: usize = 20;
/// Longest wait for the binary's projection runner to catch up with the log.
const CATCH_UP_SECONDS_MAX: u64 = 600;

fn main() {
    let refunds: u64 = env_number("REFUND_LEDGER_BENCH_SCRAPE_REFUNDS", 100_000);
    let open_every: u64 = env_number("REFUND_LEDGER_BENCH_SCRAPE_OPEN_EVERY", 50).max(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("refunds in the read models: {refunds}, open: 2 in every {open_every}");
    println!(
        "{:<12} {:<28} {:>9} {:>9} {:>9} {:>9}  load average",
        "store", "case", "mean ms", "p50 ms", "p99 ms", "max ms"
    );

    let folder = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", folder.path().join("ledger.db").display());
    runtime.block_on(async {
        let store = eventlog::SqliteStore::open(folder.path().join("ledger.db"))
            .await
            .unwrap();
        write_log(&store, refunds, open_every).await;
    });
    bench_store(
        &runtime,
        "sqlite",
        &sqlite_url,
        folder.path(),
        refunds / open_every,
        || {
            let path = projections::read_model_path(&folder.path().join("ledger.db"));
            Box::pin(async move {
                Arc::new(projections::SqliteReadModels::open(path).await.unwrap()) as Arc<dyn ReadModels>
            })
        },
        None,
    );

    match ScratchDatabase::try_create("scrape", None) {
        Err(error) => println!("postgres     skipped: {error}"),
        Ok(database) => {
            let url = database.url.clone();
            runtime.block_on(async {
                let store = eventlog::PostgresStore::connect(&url).await.unwrap();
                write_log(&store, refunds, open_every).await;
            });
            let read_models_url = url.clone();
            bench_store(
                &runtime,
                "postgres",
                &url,
                folder.path(),
                refunds / open_every,
                move || {
                    let url = read_models_url.clone();
                    Box::pin(async move {
                        Arc::new(projections::PostgresReadModels::connect(&url).await.unwrap()) as Arc<dyn ReadModels>
                    })
                },
                Some(&|| {
                    // What autovacuum leaves once it visited the table (migration 4 lets it after 1% changed).
                    testkit::postgres::simple_query(&url, "VACUUM (ANALYZE) projection_refunds").unwrap();
                }),
            );
        }
    }
}

/// Opens the read models of a store, in the bench's runtime.
type ReadModelsFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Arc<dyn ReadModels>>>>;

fn bench_store(
    runtime: &tokio::runtime::Runtime,
    name: &str,
    store_url: &str,
    folder: &std::path::Path,
    requested: u64,
    open_read_models: impl FnOnce() -> ReadModelsFuture,
    vacuum: Option<&dyn Fn()>,
) {
    let server = start_server(store_url, folder);
    let started = Instant::now();
    loop {
        let (_, text) = server.get("/metrics");
        let lag = sample(&text, "refund_ledger_projection_lag_events");
        let head = sample(&text, "refund_ledger_log_head_position");
        if head > 0.0 && lag == 0.0 {
            let open = sample(&text, "refund_ledger_open_refunds");
            let expected = 2 * requested;
            assert!(
                (open - expected as f64).abs() < 1.0,
                "{open} open refunds in the scrape, {expected} written"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(CATCH_UP_SECONDS_MAX),
            "the read models did not catch up: lag {lag}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "{name:<12} (read models caught up with the log in {:.1} s)",
        started.elapsed().as_secs_f64()
    );

    let read_models = runtime.block_on(open_read_models());
    measure(runtime, name, "", &server, read_models.as_ref(), requested);
    if let Some(vacuum) = vacuum {
        vacuum();
        measure(runtime, name, ", vacuumed", &server, read_models.as_ref(), requested);
    }
    drop(server);
}

/// Times `open_refund_stats` in process and the whole scrape through the binary; `suffix` tells the rows apart.
fn measure(
    runtime: &tokio::runtime::Runtime,
    name: &str,
    suffix: &str,
    server: &Server,
    read_models: &dyn ReadModels,
    requested: u64,
) {
    let mut query = Vec::with_capacity(SCRAPES);
    runtime.block_on(async {
        for round in 0..WARMUP_SCRAPES + SCRAPES {
            let started = Instant::now();
            let stats = read_models.open_refund_stats(OffsetDateTime::now_utc()).await.unwrap();
            if round >= WARMUP_SCRAPES {
                query.push(started.elapsed());
            }
            assert_eq!(stats.requested.total(), requested);
        }
    });
    report(name, &format!("open_refund_stats{suffix}"), &mut query);

    let mut scrapes = Vec::with_capacity(SCRAPES);
    for round in 0..WARMUP_SCRAPES + SCRAPES {
        let started = Instant::now();
        let (status, text) = server.get("/metrics");
        if round >= WARMUP_SCRAPES {
            scrapes.push(started.elapsed());
        }
        assert_eq!(status, 200, "{text}");
        assert!(text.contains("refund_ledger_open_refunds{"));
    }
    report(name, &format!("GET /metrics{suffix}"), &mut scrapes);
}

/// The sum of every sample of `family` (all label sets) in an exposition.
fn sample(text: &str, family: &str) -> f64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn report(store: &str, case: &str, latencies: &mut [Duration]) {
    latencies.sort();
    let millis = |duration: Duration| duration.as_secs_f64() * 1_000.0;
    let mean = latencies.iter().map(|duration| millis(*duration)).sum::<f64>() / latencies.len() as f64;
    let at = |quantile: f64| millis(latencies[((latencies.len() - 1) as f64 * quantile) as usize]);
    println!(
        "{store:<12} {case:<28} {mean:>9.3} {:>9.3} {:>9.3} {:>9.3}  {}",
        at(0.5),
        at(0.99),
        at(1.0),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn new_event(event: &PaymentEvent) -> eventlog::NewEvent {
    log_event(event, "bench")
}

/// Payments of `REFUNDS_PER_PAYMENT` refunds each; refund `i` is left requested when `i % open_every == 0`,
/// processing when it is 1, and succeeded otherwise. Requests are spread over the last two days.
async fn write_log(store: &dyn EventStore, refunds: u64, open_every: u64) {
    let now = OffsetDateTime::now_utc();
    let payment_time = now - time::Duration::days(3);
    let usd = Currency::parse("c", "USD").unwrap();
    let mut written = 0;
    let mut payment = 0;
    while written < refunds {
        let payment_id = PaymentId::parse(&format!("SCRAPE-{payment}")).unwrap();
        let count = REFUNDS_PER_PAYMENT.min(refunds - written);
        let mut events = vec![new_event(&PaymentEvent::PaymentRecorded(PaymentRecorded {
            payment_id: payment_id.clone(),
            payment_amount: Money::from_minor_units("p", usd, 100_000_000).unwrap(),
            payment_method_type: PaymentMethodType::parse("ALIPAY_CN").unwrap(),
            payment_time,
            capture_required: false,
        }))];
        for _ in 0..count {
            let index = written;
            written += 1;
            let refund_request_id = RefundRequestId::parse(&format!("SCRAPE-{index}")).unwrap();
            // Spread over two days: index * 1.7 s back, wrapping.
            let requested_at =
                now - time::Duration::milliseconds(i64::try_from((index * 1_700) % 172_800_000).unwrap());
            events.push(new_event(&PaymentEvent::RefundRequested(RefundRequested {
                refund_request_id: refund_request_id.clone(),
                payment_id: payment_id.clone(),
                refund_amount: Money::from_minor_units("r", usd, 100).unwrap(),
                refund_reason: None,
                requested_at,
            })));
            match index % open_every {
                0 => {}
                1 => events.push(new_event(&PaymentEvent::RefundProcessing(RefundProcessing {
                    refund_request_id,
                    reason: "timeout".to_owned(),
                    recorded_at: requested_at,
                }))),
                _ => events.push(new_event(&PaymentEvent::RefundSucceeded(RefundSucceeded {
                    refund_request_id,
                    refund_id: RefundId::parse(&format!("A-{index}")).unwrap(),
                    refund_time: requested_at,
                    source: OutcomeSource::RefundResponse,
                }))),
            }
        }
        store
            .append(&payment_stream(&payment_id), ExpectedRevision::NoStream, events)
            .await
            .unwrap();
        payment += 1;
    }
}

/// The binary in demo mode on `store`, its settle worker held off (the open refunds stay open).
fn start_server(store: &str, folder: &std::path::Path) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_refund-ledger"));
    command
        .args(["serve", "--demo"])
        .current_dir(folder)
        .env("REFUND_LEDGER_STORE", store)
        .env("REFUND_LEDGER_LISTEN", "127.0.0.1:0")
        .env("REFUND_LEDGER_SETTLE_AFTER_SECONDS", "100000000")
        .env("REFUND_LEDGER_DEMO_SIMULATOR", "benchmark")
        .env("RUST_LOG", "error");
    Server::spawn(command)
}
