//! Reconciliation throughput and memory: `cargo bench -p refund-ledger --bench reconcile`.
//!
//! For each store in `REFUND_LEDGER_BENCH_RECONCILE_STORES` (default `sqlite,postgres`; PostgreSQL at
//! `DATABASE_URL`, skipped when no server answers) and each size in
//! `REFUND_LEDGER_BENCH_RECONCILE_ROWS` (default `100000,1000000`): writes a ledger of that many succeeded
//! refunds straight to the log (`testkit::log::write_big_log`, the bulk path), folds its read models
//! (`projections::rebuild_read_models`), writes Antom's G3 transaction details report of the day listing every
//! refund (so every row is MATCHED and each one is a finding), then runs the real binary,
//! `refund-ledger reconcile REPORT --output /dev/null` (the run recorded in the log, its findings read back and
//! written), and prints its wall time and peak resident memory (`VmHWM` of the child) beside a reference
//! measured in the same run: the same file read and parsed to `<END>` by `reconcile::ReportReader` in this
//! process (the floor a streaming run cannot go below; the run reads the file twice). Target: 1,000,000 rows in
//! under 10 s, in memory that does not grow with the file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use testkit::log::{BIG_LOG_REPORT_NAME, write_big_log, write_big_log_report};
use testkit::postgres::ScratchDatabase;

fn main() {
    let sizes: Vec<u64> = std::env::var("REFUND_LEDGER_BENCH_RECONCILE_ROWS")
        .unwrap_or_else(|_| "100000,1000000".to_owned())
        .split(',')
        .map(|size| size.trim().parse().expect("row counts"))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "machine: {} cores; load average at start: {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        load_average()
    );
    let stores = std::env::var("REFUND_LEDGER_BENCH_RECONCILE_STORES").unwrap_or_else(|_| "sqlite,postgres".to_owned());
    for rows in sizes.iter().filter(|_| stores.contains("sqlite")) {
        let folder = tempfile::tempdir().unwrap();
        let store = format!("sqlite://{}", folder.path().join("ledger.db").display());
        measure(&runtime, "sqlite", &store, folder.path(), *rows);
    }
    for rows in sizes.iter().filter(|_| stores.contains("postgres")) {
        let database = match ScratchDatabase::try_create("bench_reconcile", None) {
            Ok(database) => database,
            Err(reason) => {
                println!("postgres: skipped ({reason})");
                break;
            }
        };
        let folder = tempfile::tempdir().unwrap();
        measure(&runtime, "postgres", &database.url, folder.path(), *rows);
    }
}

fn measure(runtime: &tokio::runtime::Runtime, backend: &str, store: &str, folder: &Path, rows: u64) {
    let started = Instant::now();
    runtime.block_on(async {
        let log: Arc<dyn eventlog::EventStore> = if let Some(path) = store.strip_prefix("sqlite://") {
            Arc::new(eventlog::SqliteStore::open(path).await.unwrap())
        } else {
            Arc::new(eventlog::PostgresStore::connect(store).await.unwrap())
        };
        write_big_log(log.as_ref(), rows).await;
        let projections = projections::open_projection_store(store).await.unwrap();
        projections::rebuild_read_models(log, projections.as_ref(), &mut |_, _| {})
            .await
            .unwrap();
    });
    let report = folder.join(BIG_LOG_REPORT_NAME);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&report).unwrap());
    write_big_log_report(rows, &mut file).unwrap();
    std::io::Write::flush(&mut file).unwrap();
    drop(file);
    let bytes = std::fs::metadata(&report).unwrap().len();
    println!(
        "{backend}: {rows} refunds written and folded in {:.1} s; report {} MB",
        started.elapsed().as_secs_f64(),
        bytes / 1_000_000
    );

    let started = Instant::now();
    let mut reader = reconcile::ReportReader::open(
        BIG_LOG_REPORT_NAME,
        std::io::BufReader::with_capacity(64 * 1024, std::fs::File::open(&report).unwrap()),
    )
    .unwrap();
    let mut parsed = 0_u64;
    while reader.next_row().unwrap().is_some() {
        parsed += 1;
    }
    reader.finish().unwrap();
    let parse_seconds = started.elapsed().as_secs_f64();
    assert_eq!(parsed, rows);

    let load = load_average();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_refund-ledger"))
        .arg("reconcile")
        .arg(&report)
        .args(["--output", "/dev/null"])
        .env("REFUND_LEDGER_STORE", store)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (exit, peak_kib, _) = testkit::server::wait_with_peak_rss(&mut child);
    let seconds = started.elapsed().as_secs_f64();
    let mut summary = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut summary).unwrap();
    assert_eq!(exit.code(), Some(0), "every row matches: {summary}");
    assert!(summary.contains(&format!("MATCHED: {rows}")), "{summary}");
    println!(
        "{backend}: {rows} rows: reference (parse to <END>) {parse_seconds:.2} s; refund-ledger reconcile \
         {seconds:.2} s = {:.1} x the reference, {:.0} rows/s; peak RSS {:.1} MiB (load average before: {load})",
        seconds / parse_seconds,
        rows as f64 / seconds,
        peak_kib as f64 / 1024.0
    );
}

/// The 1-minute load average.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}
