//! Parser speed and memory on a generated G3 transaction details report.
//!
//! Run with `cargo bench -p reconcile`. The report is generated on the fly by a `Read` implementation (never held
//! in memory), so the process's peak resident set is the parser's. Cases, at 100,000 and 1,000,000 rows:
//! - reference: splitting the same bytes into lines with `BufRead::read_until`, the floor of any line parser;
//! - `ReportReader`: every row parsed (cells, type, status, amounts, fees, quote) and `finish` (the flat case);
//! - `reconcile_transaction_details`: a whole in-memory run whose duplicate index grows with the file (the case
//!   the service avoids by keeping the index in its database; docs/adr/003-reconciliation.md).
//!
//! Each case runs in a child process of its own (the bench binary re-executed), and its peak memory is the
//! kernel's `VmHWM` for that process (Linux). The flat cases must show the same peak at 100,000 and 1,000,000
//! rows.
#![allow(clippy::print_stdout, reason = "a benchmark reports its table on stdout")]
#![allow(clippy::unwrap_used, reason = "a benchmark aborts on the first failure")]

use std::io::{BufRead, BufReader, Read};
use std::time::Instant;

use reconcile::{ReportReader, reconcile_transaction_details};

const HEADER: &str = "customerId,PSP,ARN,transactionId,transactionRequestId,originalTransactionRequestId,\
referenceTransactionId,orderDescription,paymentMethodType,wallet,transactionType,status,transactionCreationTime,\
transactionAmountValue,transactionCurrency,convertedTransactionAmountValue,convertedCurrency,settlementAmountValue,\
settlementCurrency,quoteCurrencyPair,quotePrice,paymentMethodFeeAmountValue,paymentMethodFeeCurrency,settlementBatchId\n";
/// Row counts measured.
const ROWS_CASES: [u64; 2] = [100_000, 1_000_000];
/// Bytes the reader buffers per read (a file's `BufReader` default).
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// A transaction details report of `rows` rows, produced as it is read: one payment per ten rows, the rest
/// refunds (every third one in JPY, settled in USD), then `<END>`.
struct GeneratedReport {
    rows: u64,
    next_row: u64,
    pending: Vec<u8>,
    offset: usize,
    ended: bool,
}

impl GeneratedReport {
    fn new(rows: u64) -> Self {
        Self {
            rows,
            next_row: 0,
            pending: HEADER.as_bytes().to_vec(),
            offset: 0,
            ended: false,
        }
    }

    fn refill(&mut self) {
        self.pending.clear();
        self.offset = 0;
        if self.next_row == self.rows {
            if !self.ended {
                self.pending.extend_from_slice(b"<END>\n");
                self.ended = true;
            }
            return;
        }
        let n = self.next_row;
        self.next_row += 1;
        let cents = 100 + n % 9_900;
        let line = if n % 10 == 0 {
            format!(
                "2188120000000001,Antom,,2026030419401080010018{n:010},pay-{n:09},,order-{n:09},Shoes,CARD,,PAYMENT,\
                 SUCCESS,2026-03-04T10:15:02+08:00,{}.{:02},USD,,,{}.{:02},USD,,,-0.{:02},USD,2026030611000000001\n",
                cents / 100,
                cents % 100,
                (cents - cents % 100) / 100,
                cents % 100,
                cents % 100
            )
        } else if n % 3 == 0 {
            let usd = cents * 66 / 10_000;
            format!(
                "2188120000000001,Antom,,2026030419401080010018{n:010},rf-{n:09},pay-{n:09},order-{n:09},,PAYPAY,\
                 PayPay,REFUND,SUCCESS,2026-03-04T16:40:11+08:00,-{cents},JPY,-0.{usd:02},USD,-0.{usd:02},USD,\
                 JPY/USD,0.0066,0.00,USD,2026030611000000001\n"
            )
        } else {
            format!(
                "2188120000000001,Antom,,2026030419401080010018{n:010},rf-{n:09},pay-{n:09},order-{n:09},,CARD,,\
                 REFUND,SUCCESS,2026-03-04T16:40:11+08:00,-{}.{:02},USD,,,-{}.{:02},USD,,,0.00,USD,\
                 2026030611000000001\n",
                cents / 100,
                cents % 100,
                cents / 100,
                cents % 100
            )
        };
        self.pending.extend_from_slice(line.as_bytes());
    }
}

impl Read for GeneratedReport {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.offset == self.pending.len() {
            self.refill();
        }
        let available = &self.pending[self.offset..];
        let count = available.len().min(buffer.len());
        buffer[..count].copy_from_slice(&available[..count]);
        self.offset += count;
        Ok(count)
    }
}

fn report(rows: u64) -> BufReader<GeneratedReport> {
    BufReader::with_capacity(READ_BUFFER_BYTES, GeneratedReport::new(rows))
}

/// `VmHWM` (peak resident set) of this process in KiB.
fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The cases, by name: each returns the rows it read.
const CASES: [(&str, &str); 3] = [
    ("reference", "reference: lines split with read_until"),
    ("parser", "ReportReader: every row parsed, then finish"),
    ("in-memory", "in-memory run (its duplicate index grows with the file)"),
];

fn run_case(case: &str, rows: u64) -> u64 {
    match case {
        "reference" => {
            let mut reader = report(rows);
            let mut line = Vec::new();
            let mut lines = 0u64;
            while reader.read_until(b'\n', &mut line).unwrap() > 0 {
                lines += 1;
                line.clear();
            }
            lines - 2
        }
        "parser" => {
            let mut reader = ReportReader::open("transactionItems_20260304_000.csv", report(rows)).unwrap();
            let mut read = 0u64;
            while let Some(row) = reader.next_row().unwrap() {
                read += u64::from(row.transaction_amount().is_some());
            }
            reader.finish().unwrap().rows().min(read)
        }
        _ => {
            let files = vec![("transactionItems_20260304_000.csv".to_owned(), report(rows))];
            let run = reconcile_transaction_details(files, &[], None).unwrap();
            run.files[0].rows()
        }
    }
}

/// Runs one case in this process and prints `seconds peak_kib` (the child side).
fn child(case: &str, rows: u64) {
    let start = Instant::now();
    let read = run_case(case, rows);
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(read, rows, "{case}: rows read");
    println!("{seconds} {}", peak_kib());
}

fn main() {
    if let (Ok(case), Ok(rows)) = (
        std::env::var("RECONCILE_BENCH_CASE"),
        std::env::var("RECONCILE_BENCH_ROWS"),
    ) {
        child(&case, rows.parse().unwrap());
        return;
    }
    // Each case runs in a fresh process so its peak resident set is its own.
    println!(
        "{:<58} {:>9} {:>8} {:>12} {:>12}",
        "case", "rows", "seconds", "rows/s", "peak KiB"
    );
    for (case, title) in CASES {
        for rows in ROWS_CASES {
            let output = std::process::Command::new(std::env::current_exe().unwrap())
                .env("RECONCILE_BENCH_CASE", case)
                .env("RECONCILE_BENCH_ROWS", rows.to_string())
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{case}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let stdout = String::from_utf8(output.stdout).unwrap();
            let mut fields = stdout.split_whitespace();
            let seconds: f64 = fields.next().unwrap().parse().unwrap();
            let peak: u64 = fields.next().unwrap().parse().unwrap();
            println!(
                "{title:<58} {rows:>9} {seconds:>8.3} {:>12.0} {peak:>12}",
                rows as f64 / seconds
            );
        }
    }
}
