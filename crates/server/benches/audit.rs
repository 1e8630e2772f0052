//! `verify` and `replay` throughput on a large SQLite log: `cargo bench -p refund-ledger --bench audit`.
//!
//! Writes a log of `REFUND_LEDGER_BENCH_AUDIT_EVENTS` events (default 1,000,000: succeeded refunds of 499 per
//! payment) straight to a SQLite EventStore, then runs the real binary's `refund-ledger verify` and
//! `refund-ledger replay --to-position HEAD` on it and prints events/s for each, beside a reference row measured
//! in the same run: reading the whole log through `EventStore::read_all` in pages of 10,000 and doing nothing
//! with it (the floor the store sets). Targets: verify and replay at least 1,000,000 events/s.
//!
//! `REFUND_LEDGER_BENCH_AUDIT_DIR` keeps the log between runs (written once, when the folder has none).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::process::Command;
use std::time::Instant;

use eventlog::EventStore;

/// Events per `read_all` page in the reference row.
const READ_PAGE_EVENTS: usize = 10_000;

fn main() {
    let events: u64 = std::env::var("REFUND_LEDGER_BENCH_AUDIT_EVENTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1_000_000);
    let temporary = tempfile::tempdir().unwrap();
    let folder = std::env::var_os("REFUND_LEDGER_BENCH_AUDIT_DIR")
        .map_or_else(|| temporary.path().to_path_buf(), std::path::PathBuf::from);
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("ledger.db");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = runtime.block_on(async {
        let store = eventlog::SqliteStore::open(&path).await.unwrap();
        if store.head().await.unwrap().position == 0 {
            let started = Instant::now();
            // Two events per refund, plus each payment's PaymentRecorded.
            testkit::log::write_big_log(&store, events / 2).await;
            println!("wrote the log in {:.1} s", started.elapsed().as_secs_f64());
        }
        store
    });
    let head = runtime.block_on(store.head()).unwrap().position;
    println!(
        "machine: {} cores; log: {head} events in {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        path.display()
    );

    let started = Instant::now();
    let read = runtime.block_on(async {
        let mut next = 1;
        loop {
            let page = store.read_all(next, READ_PAGE_EVENTS).await.unwrap();
            let Some(last) = page.last() else {
                return next - 1;
            };
            next = last.position + 1;
        }
    });
    report("reference: read_all, pages of 10,000", read, started);
    drop(store);

    let store_url = format!("sqlite://{}", path.display());
    let started = Instant::now();
    run(&store_url, &["verify"]);
    report("refund-ledger verify", head, started);
    let started = Instant::now();
    run(&store_url, &["replay", "--to-position", &head.to_string()]);
    report("refund-ledger replay --to-position HEAD", head, started);
}

fn run(store_url: &str, args: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_refund-ledger"))
        .args(args)
        .env("REFUND_LEDGER_STORE", store_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "refund-ledger {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn report(case: &str, events: u64, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{case:<45} {events:>9} events in {seconds:>6.2} s = {:>9.0} events/s",
        events as f64 / seconds
    );
}
