//! Exports on both stores, from the CLI and over HTTP: the journal balances per currency, CSV follows
//! RFC 4180, filters apply, the same range gives the same bytes, a viewer key is needed; and a journal of
//! many lines is exported in flat memory.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::Duration;

use serde_json::Value;
use testkit::server::{VIEWER_KEY, high_water_mark_kib, wait_with_peak_rss};

use crate::audit_support::{AuditServer, Log, payment_with_refunds, run};
use crate::support::binary;

/// Minor units of a decimal string such as `12.50` (exact, no float).
fn minor_units(decimal: &str) -> i128 {
    decimal.replace('.', "").parse().unwrap()
}

/// Checks every currency's debits equal its credits and returns the number of lines per currency.
fn assert_balanced(jsonl: &str) -> BTreeMap<String, usize> {
    let mut sums: BTreeMap<String, (i128, i128, usize)> = BTreeMap::new();
    for line in jsonl.lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        let sum = sums.entry(row["currency"].as_str().unwrap().to_owned()).or_default();
        sum.0 += minor_units(row["debit"].as_str().unwrap());
        sum.1 += minor_units(row["credit"].as_str().unwrap());
        sum.2 += 1;
        assert_eq!(row["hash"].as_str().unwrap().len(), 64, "{row}");
        assert!(row["position"].as_u64().unwrap() > 0, "{row}");
    }
    for (currency, (debit, credit, _)) in &sums {
        assert_eq!(debit, credit, "{currency} does not balance");
    }
    sums.into_iter()
        .map(|(currency, (_, _, lines))| (currency, lines))
        .collect()
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

fn export_tests(log: &Log) {
    let server = AuditServer::start(&log.url(), &log.folder());
    payment_with_refunds(&server, "PAY-U", "USD", &["2500", "1250"]);
    payment_with_refunds(&server, "PAY-J", "JPY", &["300"]);
    payment_with_refunds(&server, "PAY-E", "EUR", &["999"]);
    // Refunds the simulator answered U settle a few seconds later: wait for all four successes.
    let mut journal = String::new();
    for _ in 0..300 {
        let (status, body) = server.get("/exports/journal.jsonl", Some(VIEWER_KEY));
        assert_eq!(status, 200);
        journal = text(body);
        if journal.lines().count() == 8 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let lines = assert_balanced(&journal);
    assert_eq!(lines.values().sum::<usize>(), 8, "{journal}");
    assert!(
        journal.contains("\"currency\":\"JPY\",\"account\":\"refunds\",\"debit\":\"300\",\"credit\":\"0\""),
        "{journal}"
    );
    assert!(journal.contains("\"debit\":\"25.00\""), "{journal}");
    server.wait_projected();

    assert_eq!(server.get("/exports/journal.csv", None).0, 401);
    assert_eq!(server.get("/exports/journal.xml", Some(VIEWER_KEY)).0, 404);
    assert_eq!(
        server.get("/exports/journal.csv?from=yesterday", Some(VIEWER_KEY)).0,
        400
    );
    let (_, csv) = server.get("/exports/journal.csv", Some(VIEWER_KEY));
    let csv = text(csv);
    assert!(csv.starts_with(
        "date,recordedAt,refundRequestId,refundId,paymentId,currency,account,debit,credit,position,hash,runId,file,line\r\n"
    ));
    assert_eq!(csv.matches("\r\n").count(), 9, "{csv}");
    assert_eq!(csv.matches('\n').count(), 9, "every line ends CRLF: {csv}");
    let (_, jpy) = server.get("/exports/journal.jsonl?currency=JPY", Some(VIEWER_KEY));
    assert_eq!(
        assert_balanced(&text(jpy)).into_iter().collect::<Vec<_>>(),
        [("JPY".to_owned(), 2)]
    );
    let (_, empty) = server.get("/exports/journal.csv?from=2000-01-01&to=2000-01-02", Some(VIEWER_KEY));
    assert_eq!(text(empty).lines().count(), 1, "only the header");
    let (_, refunds) = server.get("/exports/refunds.jsonl", Some(VIEWER_KEY));
    let refunds = text(refunds);
    assert_eq!(refunds.lines().count(), 4, "{refunds}");
    for line in refunds.lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        assert_eq!(row["status"], "SUCCEEDED", "{row}");
        assert_eq!(row["requestedBy"], "ops", "{row}");
        assert!(row["settledAt"].is_string(), "{row}");
    }
    let (_, refunds_csv) = server.get("/exports/refunds.csv?currency=USD", Some(VIEWER_KEY));
    assert_eq!(text(refunds_csv).lines().count(), 3, "header and two USD refunds");
    server.stop();

    // The CLI reads the same store and gives the same bytes, every time.
    let cli = run(log, &["export", "journal", "--format", "csv"]);
    assert_eq!(cli.status.code(), Some(0), "{cli:?}");
    assert_eq!(text(cli.stdout.clone()), csv);
    assert_eq!(run(log, &["export", "journal", "--format", "csv"]).stdout, cli.stdout);
    let file = log.folder().join("journal.jsonl");
    let written = run(
        log,
        &[
            "export",
            "journal",
            "--format",
            "jsonl",
            "--output",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(written.status.code(), Some(0), "{written:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), journal);
    let refunds_cli = run(log, &["export", "refunds", "--format", "jsonl"]);
    assert_eq!(text(refunds_cli.stdout), refunds);
    assert_eq!(
        run(log, &["export", "journal", "--format", "xml"]).status.code(),
        Some(2)
    );
    assert_eq!(run(log, &["export", "ledger"]).status.code(), Some(2));
}

#[test]
fn exports_balance_and_agree_between_cli_and_http_on_sqlite() {
    export_tests(&Log::sqlite());
}

#[test]
fn exports_balance_and_agree_between_cli_and_http_on_postgres() {
    export_tests(&Log::postgres());
}

/// Fewest readings a measurement needs: an export over sooner is too short to tell anything.
const PEAK_SAMPLES_MIN: usize = 10;

/// Peak resident memory (KiB) of `refund-ledger export journal` on `log` ([`wait_with_peak_rss`]), and the
/// lines written.
fn export_peak_kib(log: &Log) -> (u64, usize) {
    let output_file = log.folder().join("big-journal.csv");
    let stderr_file = log.folder().join("export.stderr");
    let mut child = std::process::Command::new(binary())
        .args(["export", "journal", "--output"])
        .arg(&output_file)
        .env("REFUND_LEDGER_STORE", log.url())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .spawn()
        .expect("the export starts");
    let (exit, peak, samples) = wait_with_peak_rss(&mut child);
    let stderr = std::fs::read_to_string(&stderr_file).unwrap();
    assert!(exit.success(), "{exit}: {stderr}");
    assert!(
        samples >= PEAK_SAMPLES_MIN,
        "the export ended after {samples} readings of its memory, too soon to measure"
    );
    let lines = std::io::BufReader::new(std::fs::File::open(&output_file).unwrap())
        .lines()
        .count();
    std::fs::remove_file(&output_file).unwrap();
    (peak, lines)
}

#[test]
fn the_high_water_mark_is_read_from_proc_status() {
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib = high_water_mark_kib(&own).expect("a live process has VmHWM");
    assert!(kib > 1024, "a test binary uses more than 1 MiB: {kib} KiB");
    assert_eq!(
        high_water_mark_kib("Name:\tx\nVmHWM:\t   35884 kB\nVmRSS:\t 100 kB\n"),
        Some(35_884)
    );
    assert_eq!(high_water_mark_kib("Name:\tzombie\nState:\tZ (zombie)\n"), None);
}

/// Journal lines the flat-memory test exports: `REFUND_LEDGER_EXPORT_TEST_LINES` (the bench and a long
/// run set 1,000,000), 200,000 by default.
fn big_export_lines() -> u64 {
    std::env::var("REFUND_LEDGER_EXPORT_TEST_LINES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(200_000)
}

/// Refunds of the shorter export: 40,001 lines, already several read batches, so both exports hold the
/// same bounded batches and only growth with the length would show.
const SMALL_EXPORT_REFUNDS: u64 = 20_000;
/// Most the peak may grow from the shorter export to the long one (allocator and page-cache noise).
const PEAK_GROWTH_KIB_MAX: u64 = 8 * 1024;

#[test]
fn a_long_journal_exports_in_flat_memory() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let small = Log::sqlite();
    let big = Log::sqlite();
    let big_refunds = big_export_lines() / 2;
    runtime.block_on(async {
        for (log, refunds) in [(&small, SMALL_EXPORT_REFUNDS), (&big, big_refunds)] {
            let path = log.folder().join("ledger.db");
            let store = eventlog::SqliteStore::open(&path).await.unwrap();
            testkit::log::write_big_log(&store, refunds).await;
        }
    });
    let (small_peak, small_lines) = export_peak_kib(&small);
    let (big_peak, big_lines) = export_peak_kib(&big);
    assert_eq!(small_lines as u64, SMALL_EXPORT_REFUNDS * 2 + 1);
    assert_eq!(big_lines as u64, big_refunds * 2 + 1);
    eprintln!("peak memory: {small_peak} KiB for {small_lines} lines, {big_peak} KiB for {big_lines} lines");
    assert!(
        big_peak < small_peak + PEAK_GROWTH_KIB_MAX,
        "memory grows with the export: {small_peak} KiB for {small_lines} lines, {big_peak} KiB for {big_lines}"
    );
}
