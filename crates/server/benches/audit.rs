//! `verify` and `replay` throughput on a large SQLite log: `cargo bench -p refund-ledger --bench audit`.
//!
//! Writes a log of `REFUND_LEDGER_BENCH_AUDIT_EVENTS` events (default 1,000,000: succeeded refunds of 499 per
//! payment) straight to a SQLite EventStore, then runs the real binary's `refund-ledger verify` and
//! `refund-ledger replay --to-position HEAD` on it and prints events/s and peak RSS for each, beside reference
//! rows measured in the same run: reading the whole log through `EventStore::read_all` in pages of 10,000, and
//! through `eventlog::scan`, doing nothing with it (the floors the store sets). Targets: verify and replay at
//! least 1,000,000 events/s.
//!
//! `REFUND_LEDGER_BENCH_AUDIT_DIR` keeps the log between runs (written once, when the folder has none).
//! `REFUND_LEDGER_BENCH_AUDIT_REFERENCE_BIN` names another build of `refund-ledger` (an older commit's) to run
//! the same commands with, alternating with this one, as the reference row of each; its output must match
//! (the same digests). `REFUND_LEDGER_BENCH_AUDIT_RUNS` (default 1) repeats each command.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eventlog::EventStore;

/// Events per `read_all` page in the reference row.
const READ_PAGE_EVENTS: usize = 10_000;

/// How often the peak RSS of a running command is sampled.
const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(5);

fn main() {
    let events: u64 = env_number("REFUND_LEDGER_BENCH_AUDIT_EVENTS").unwrap_or(1_000_000);
    let runs = env_number("REFUND_LEDGER_BENCH_AUDIT_RUNS").unwrap_or(1).max(1);
    let reference = std::env::var_os("REFUND_LEDGER_BENCH_AUDIT_REFERENCE_BIN").map(std::path::PathBuf::from);
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

    for _ in 0..runs {
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
        report("reference: read_all, pages of 10,000", read, started.elapsed(), None);
        let started = Instant::now();
        let scanned = runtime.block_on(async {
            let mut scan = eventlog::scan(&store, 1, u64::MAX).await.unwrap();
            let mut scanned = 0;
            while let Some(batch) = scan.next().await {
                scanned += batch.unwrap().len() as u64;
            }
            scanned
        });
        report("reference: eventlog::scan", scanned, started.elapsed(), None);
    }
    drop(store);

    let store_url = format!("sqlite://{}", path.display());
    let this = Path::new(env!("CARGO_BIN_EXE_refund-ledger"));
    let head_text = head.to_string();
    let commands: [(&str, &[&str]); 2] = [
        ("verify", &["verify"]),
        ("replay --to-position HEAD", &["replay", "--to-position", &head_text]),
    ];
    for (name, args) in commands {
        for _ in 0..runs {
            let mut outputs = Vec::new();
            if let Some(reference) = &reference {
                outputs.push(measure(
                    &format!("reference build: {name}"),
                    reference,
                    &store_url,
                    args,
                    head,
                ));
            }
            outputs.push(measure(&format!("refund-ledger {name}"), this, &store_url, args, head));
            assert!(
                outputs.windows(2).all(|pair| pair[0] == pair[1]),
                "the builds disagree on {name}: {outputs:#?}"
            );
        }
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|value| value.parse().ok())
}

/// Runs `binary args` on the log, reports its rate and peak RSS, and answers its stdout.
fn measure(case: &str, binary: &Path, store_url: &str, args: &[&str], events: u64) -> String {
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(args)
        .env("REFUND_LEDGER_STORE", store_url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    while child.try_wait().unwrap().is_none() {
        // VmHWM only grows; the last sample before the exit is the peak (within the sampling interval).
        if let Some(kib) = std::fs::read_to_string(&status_path)
            .ok()
            .and_then(|status| vm_hwm_kib(&status))
        {
            peak_kib = peak_kib.max(kib);
        }
        std::thread::sleep(RSS_SAMPLE_INTERVAL);
    }
    let output = child.wait_with_output().unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{} {args:?} failed: {stdout}{}",
        binary.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    report(case, events, elapsed, Some(peak_kib));
    stdout
}

fn vm_hwm_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn report(case: &str, events: u64, elapsed: Duration, peak_kib: Option<u64>) {
    let seconds = elapsed.as_secs_f64();
    let peak = peak_kib.map_or_else(String::new, |kib| format!("  peak RSS {:>5} MiB", kib / 1024));
    println!(
        "{case:<50} {events:>9} events in {seconds:>6.2} s = {:>9.0} events/s{peak}",
        events as f64 / seconds
    );
}
