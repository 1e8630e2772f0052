//! Journal export throughput: `cargo bench -p refund-ledger --bench export`.
//!
//! Writes a log of `REFUND_LEDGER_BENCH_EXPORT_LINES / 2` succeeded refunds (default 1,000,000 journal
//! lines) straight to a SQLite EventStore, then exports the journal as CSV twice: in process through
//! `audit::JournalExport` into a sink, and through the real binary (`refund-ledger export journal --output
//! /dev/null`), and prints rows/s for each. Target: 1,000,000 lines in under 3 s.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::Instant;

use audit::{Accounts, ExportFilter, Format, JournalExport};

fn main() {
    let lines: u64 = std::env::var("REFUND_LEDGER_BENCH_EXPORT_LINES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1_000_000);
    // REFUND_LEDGER_BENCH_EXPORT_DIR keeps the log between runs (written once, when the folder has none).
    let temporary = tempfile::tempdir().unwrap();
    let folder = std::env::var_os("REFUND_LEDGER_BENCH_EXPORT_DIR")
        .map_or_else(|| temporary.path().to_path_buf(), std::path::PathBuf::from);
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("ledger.db");
    let written_before = path.exists();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let store = runtime.block_on(async {
        let store = eventlog::SqliteStore::open(&path).await.unwrap();
        if !written_before {
            testkit::log::write_big_log(&store, lines / 2).await;
        }
        Arc::new(store)
    });
    if !written_before {
        println!(
            "wrote {} refunds in {:.1} s",
            lines / 2,
            started.elapsed().as_secs_f64()
        );
    }

    let accounts = Accounts {
        refunds: "refunds".to_owned(),
        clearing: "antom-clearing".to_owned(),
        settlement: audit::SettlementAccounts::default(),
    };
    let started = Instant::now();
    let (rows, bytes) = runtime.block_on(async {
        let mut export = JournalExport::new(store, Format::Csv, accounts, ExportFilter::default());
        let (mut rows, mut bytes) = (0_u64, 0_usize);
        while let Some(chunk) = export.next_chunk().await.unwrap() {
            rows += chunk.iter().filter(|byte| **byte == b'\n').count() as u64;
            bytes += chunk.len();
        }
        (rows - 1, bytes)
    });
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "in process: {rows} journal lines ({} MB) in {seconds:.2} s = {:.0} rows/s",
        bytes / 1_000_000,
        rows as f64 / seconds
    );

    let started = Instant::now();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_refund-ledger"))
        .args(["export", "journal", "--format", "csv", "--output", "/dev/null"])
        .env("REFUND_LEDGER_STORE", format!("sqlite://{}", path.display()))
        .env("RUST_LOG", "warn")
        .status()
        .unwrap();
    assert!(status.success());
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "binary: refund-ledger export journal: {lines} lines in {seconds:.2} s = {:.0} rows/s",
        lines as f64 / seconds
    );
}
