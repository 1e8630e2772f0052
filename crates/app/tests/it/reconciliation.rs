//! A reconciliation run streamed against the read models: a report of several batches against a ledger
//! written in bulk, with a duplicate across batches and a refund the report lacks; a file that changes between
//! the two passes records no run; the findings of a run cut between its appends are swept after a day.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use app::reconciliation::{
    BytesSource, ROWS_PER_BATCH, ReconciliationError, ReportSource, RunOutcome, for_each_finding, reconcile_reports,
};
use domain::{ReconciliationEvent, ReconciliationFindingsRecorded, RecordedFinding};
use eventlog::{ExpectedRevision, NewEvent, StreamName};
use projections::FindingFilter;
use testkit::log::{BIG_LOG_REPORT_NAME, write_big_log, write_big_log_report};
use time::OffsetDateTime;

use crate::helpers::{Backend, Harness};

/// Refunds in the ledger and rows in the report: more than two batches.
const REFUNDS: u64 = 2 * ROWS_PER_BATCH as u64 + 1_000;

/// The big log's report with the row of `BIG-0-5` dropped and the first row repeated at the end.
fn report_with_discrepancies() -> Vec<u8> {
    let mut report = Vec::new();
    write_big_log_report(REFUNDS, &mut report).unwrap();
    let text = String::from_utf8(report).unwrap();
    let mut lines: Vec<&str> = text.lines().filter(|line| !line.contains(",BIG-0-5,")).collect();
    let end = lines.pop().unwrap();
    let first_row = lines[1];
    lines.push(first_row);
    lines.push(end);
    (lines.join("\n") + "\n").into_bytes()
}

/// [`report_with_discrepancies`] under Antom's name.
fn report_source() -> Arc<dyn ReportSource> {
    Arc::new(BytesSource::new(
        BIG_LOG_REPORT_NAME.to_owned(),
        Arc::from(report_with_discrepancies()),
    ))
}

/// Reconciles `source` as the auditor, settling through `ledger` when given.
async fn reconcile(
    harness: &Harness,
    ledger: Option<&app::Ledger>,
    source: Arc<dyn ReportSource>,
) -> Result<RunOutcome, ReconciliationError> {
    reconcile_reports(
        Arc::clone(&harness.store),
        harness.read_models.as_ref(),
        ledger,
        vec![source],
        "auditor",
        OffsetDateTime::now_utc(),
    )
    .await
}

async fn ledger_of_refunds(harness: &Harness) -> u64 {
    write_big_log(harness.store.as_ref(), REFUNDS).await;
    let head = harness.store.head().await.unwrap().position;
    harness.caught_up(head).await;
    head
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_of_several_batches_is_streamed_on_sqlite() {
    a_report_of_several_batches_is_streamed(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_of_several_batches_is_streamed_on_postgres() {
    a_report_of_several_batches_is_streamed(Backend::Postgres).await;
}

async fn a_report_of_several_batches_is_streamed(backend: Backend) {
    let harness = Harness::start(backend).await;
    let head = ledger_of_refunds(&harness).await;
    let outcome = reconcile(&harness, Some(&harness.ledger), report_source())
        .await
        .unwrap();
    let run = &outcome.recorded;
    assert_eq!(run.ledger_position, head, "the ledger as of the log's head");
    assert_eq!(run.period.as_deref(), Some("2026-11-01"));
    assert_eq!(run.files[0].rows, REFUNDS);
    let counts: Vec<(&str, u64)> = run.counts.iter().map(|(kind, count)| (kind.as_str(), *count)).collect();
    assert_eq!(
        counts,
        [("DUPLICATE", 1), ("MATCHED", REFUNDS - 1), ("MISSING_FROM_REPORT", 1)]
    );
    assert_eq!(run.findings_count, REFUNDS + 1);

    let mut findings: Vec<RecordedFinding> = Vec::new();
    let mut next_seq = 1;
    for_each_finding(harness.store.as_ref(), run, |finding| {
        assert_eq!(finding.seq, next_seq, "in seq order, none left out");
        next_seq += 1;
        if finding.kind != "MATCHED" || finding.seq == 1 {
            findings.push(finding.clone());
        }
    })
    .await
    .unwrap();
    assert_eq!(next_seq, REFUNDS + 2);
    let duplicate = findings.iter().find(|finding| finding.kind == "DUPLICATE").unwrap();
    assert_eq!(duplicate.refund_request_id.as_deref(), Some("BIG-0-0"));
    assert!(duplicate.message.contains("line 2"), "{duplicate:?}");
    let missing = findings
        .iter()
        .find(|finding| finding.kind == "MISSING_FROM_REPORT")
        .unwrap();
    assert_eq!(missing.refund_request_id.as_deref(), Some("BIG-0-5"));
    assert_eq!(
        missing.seq,
        REFUNDS + 1,
        "the missing refunds come after the report's rows"
    );
    let first = &findings[0];
    assert_eq!((first.kind.as_str(), first.line), ("MATCHED", Some(2)));
    assert!(first.ledger_position.unwrap() <= head);

    // The run's stream: its chunks in order, its event last.
    let stream = StreamName::parse(domain::reconciliation_stream_name(&run.run_id)).unwrap();
    let events = harness.store.read_stream(&stream, 0, 100).await.unwrap();
    let chunks = (REFUNDS + 1).div_ceil(domain::FINDINGS_PER_CHUNK_MAX as u64) as usize;
    assert_eq!(events.len(), chunks + 1);
    assert_eq!(events.last().unwrap().position, outcome.position);
    assert_eq!(events.last().unwrap().event_type, "ReconciliationRecorded");
    harness.finish().await;
}

/// A report that reads differently the second time it is opened (pass 2).
struct ChangingSource {
    opened: AtomicUsize,
    first: Arc<[u8]>,
    later: Arc<[u8]>,
}

impl ReportSource for ChangingSource {
    fn name(&self) -> &str {
        BIG_LOG_REPORT_NAME
    }

    fn open(&self) -> std::io::Result<Box<dyn std::io::BufRead + Send>> {
        let bytes = if self.opened.fetch_add(1, Ordering::SeqCst) == 0 {
            Arc::clone(&self.first)
        } else {
            Arc::clone(&self.later)
        };
        Ok(Box::new(std::io::Cursor::new(bytes)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_changed_between_the_passes_records_no_run() {
    let harness = Harness::start(Backend::Sqlite).await;
    let head = ledger_of_refunds(&harness).await;
    let mut first = Vec::new();
    write_big_log_report(REFUNDS, &mut first).unwrap();
    let later = report_with_discrepancies();
    let source = Arc::new(ChangingSource {
        opened: AtomicUsize::new(0),
        first: Arc::from(first),
        later: Arc::from(later),
    });
    let error = reconcile(&harness, None, source).await.unwrap_err();
    assert!(
        matches!(&error, ReconciliationError::Files(message) if message.contains("changed while it was reconciled")),
        "{error}"
    );
    assert_eq!(harness.store.head().await.unwrap().position, head, "nothing recorded");
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_of_a_cut_run_are_swept_after_a_day_on_sqlite() {
    findings_of_a_cut_run_are_swept_after_a_day(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_of_a_cut_run_are_swept_after_a_day_on_postgres() {
    findings_of_a_cut_run_are_swept_after_a_day(Backend::Postgres).await;
}

async fn findings_of_a_cut_run_are_swept_after_a_day(backend: Backend) {
    let harness = Harness::start(backend).await;
    let head = ledger_of_refunds(&harness).await;
    let recorded = reconcile(&harness, None, report_source()).await.unwrap();
    // A run cut after its first chunk: the chunk is in the log, its `ReconciliationRecorded` never came.
    let cut_run = uuid::Uuid::new_v4().to_string();
    let chunk = ReconciliationEvent::ReconciliationFindingsRecorded(ReconciliationFindingsRecorded {
        run_id: cut_run.clone(),
        chunk: 0,
        findings: (1..=3)
            .map(|seq| RecordedFinding {
                seq,
                kind: "MATCHED".to_owned(),
                file: Some(BIG_LOG_REPORT_NAME.to_owned()),
                line: Some(seq + 1),
                refund_request_id: Some(format!("BIG-0-{seq}")),
                refund_id: None,
                report_amount: None,
                ledger_position: Some(head),
                ledger_status: None,
                ledger_amount: None,
                report_status: None,
                settlement: None,
                message: String::new(),
            })
            .collect(),
    });
    let stored = chunk.to_stored();
    let stream = StreamName::parse(domain::reconciliation_stream_name(&cut_run)).unwrap();
    let appended = harness
        .store
        .append(
            &stream,
            ExpectedRevision::NoStream,
            vec![NewEvent {
                event_id: uuid::Uuid::new_v4(),
                event_type: stored.event_type.to_owned(),
                schema_version: stored.schema_version,
                payload: stored.data,
                actor: "auditor".to_owned(),
            }],
        )
        .await
        .unwrap();
    harness.caught_up(appended.last_position).await;
    let findings = |run: String| {
        let read_models = Arc::clone(&harness.read_models);
        async move {
            read_models
                .reconciliation_findings(&run, &FindingFilter::default(), 10)
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(findings(cut_run.clone()).await, 3);

    assert_eq!(
        harness.ledger.sweep_unrecorded_findings().await.unwrap(),
        Some(0),
        "younger than a day"
    );
    assert_eq!(findings(cut_run.clone()).await, 3);
    harness.clock.advance(time::Duration::hours(25));
    assert_eq!(harness.ledger.sweep_unrecorded_findings().await.unwrap(), Some(3));
    assert_eq!(findings(cut_run).await, 0);
    assert_eq!(
        findings(recorded.recorded.run_id.clone()).await,
        10,
        "a recorded run keeps its findings"
    );
    harness.finish().await;
}

/// A G3 settlement batch of four REFUND rows the ledger does not know: one the journal can book (settled
/// 2026-03-06), one whose converted amount is in a third currency (the settlement formula holds by the quote, so
/// nothing else flags it), one with a fee in a third currency, and one without a settlement date.
const UNBOOKABLE_ITEMS: &str = "settlementBatchId,customerId,PSP,ARN,transactionId,transactionRequestId,\
originalTransactionRequestId,referenceTransactionId,paymentMethodType,wallet,transactionType,transactionCreationTime,\
settlementInitiatedDate,transactionAmountValue,transactionCurrency,convertedTransactionAmountValue,convertedCurrency,\
settlementAmountValue,settlementCurrency,quoteCurrencyPair,quotePrice,paymentMethodFeeAmountValue,\
paymentMethodFeeCurrency,taxFeeAmountValue,taxFeeCurrency
2026030611000000001,2188120000000001,Antom,,PAY-A,NB-SAME,,,CARD,,REFUND,2026-03-04T16:40:11+08:00,2026-03-06,-10.00,USD,,,-10.20,USD,,,-0.20,USD,,
2026030611000000001,2188120000000001,Antom,,PAY-B,NB-CONVERTED,,,PAYPAY,PayPay,REFUND,2026-03-04T18:02:45+08:00,2026-03-06,-1200,JPY,-7.30,EUR,-7.92,USD,JPY/USD,0.0066,,,,
2026030611000000001,2188120000000001,Antom,,PAY-C,NB-FEE,,,CARD,,REFUND,2026-03-04T18:10:00+08:00,2026-03-06,-10.29,USD,,,-10.29,USD,,,-1,JPY,,
2026030611000000001,2188120000000001,Antom,,PAY-D,NB-NODATE,,,CARD,,REFUND,2026-03-04T19:00:00+08:00,,-5.00,USD,,,-5.00,USD,,,,,,
<END>
";

/// The summary of [`UNBOOKABLE_ITEMS`]: four REFUND rows, -33.41 USD.
const UNBOOKABLE_SUMMARY: &str = "settlementBatchId,customerId,PSP,summaryType,settlementInitiatedDate,count,\
settlementAmountValue,settlementCurrency
2026030611000000001,2188120000000001,Antom,REFUND,2026-03-06,4,-33.41,USD
2026030611000000001,2188120000000001,Antom,TOTAL,2026-03-06,4,-33.41,USD
<END>
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_row_the_journal_cannot_book_is_a_finding_on_sqlite() {
    a_settled_row_the_journal_cannot_book_is_a_finding(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_row_the_journal_cannot_book_is_a_finding_on_postgres() {
    a_settled_row_the_journal_cannot_book_is_a_finding(Backend::Postgres).await;
}

async fn a_settled_row_the_journal_cannot_book_is_a_finding(backend: Backend) {
    let harness = Harness::start(backend).await;
    let source = |name: &str, text: &str| -> Arc<dyn ReportSource> {
        Arc::new(BytesSource::new(name.to_owned(), Arc::from(text.as_bytes())))
    };
    let outcome = reconcile_reports(
        Arc::clone(&harness.store),
        harness.read_models.as_ref(),
        None,
        vec![
            source("settlementItems_USD_2026030611000000001_000.csv", UNBOOKABLE_ITEMS),
            source("settlementSummary_USD_2026030611000000001_000.csv", UNBOOKABLE_SUMMARY),
        ],
        "auditor",
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let run = &outcome.recorded;
    let counts: Vec<(&str, u64)> = run.counts.iter().map(|(kind, count)| (kind.as_str(), *count)).collect();
    assert_eq!(
        counts,
        [
            ("NOT_UNDERSTOOD", 1),
            ("SETTLEMENT_NOT_BOOKED", 2),
            ("UNKNOWN_TO_LEDGER", 4)
        ],
        "{run:#?}"
    );
    assert_eq!(run.findings_count, 7);
    assert_eq!(outcome.discrepancies(), 7);
    let mut findings: Vec<RecordedFinding> = Vec::new();
    for_each_finding(harness.store.as_ref(), run, |finding| findings.push(finding.clone()))
        .await
        .unwrap();
    let of = |id: &str| -> Vec<&RecordedFinding> {
        findings
            .iter()
            .filter(|finding| finding.refund_request_id.as_deref() == Some(id))
            .collect()
    };
    let kinds = |id: &str| -> Vec<&str> { of(id).iter().map(|finding| finding.kind.as_str()).collect() };
    assert_eq!(kinds("NB-SAME"), ["UNKNOWN_TO_LEDGER"]);
    assert_eq!(kinds("NB-NODATE"), ["UNKNOWN_TO_LEDGER"]);
    // The row follows its first finding, on the same line, with the settlement amount and the reason.
    assert_eq!(kinds("NB-CONVERTED"), ["UNKNOWN_TO_LEDGER", "SETTLEMENT_NOT_BOOKED"]);
    let [first, not_booked] = of("NB-CONVERTED")[..] else {
        panic!("{findings:#?}")
    };
    assert_eq!(not_booked.seq, first.seq + 1);
    assert_eq!(
        (not_booked.file.as_deref(), not_booked.line),
        (first.file.as_deref(), Some(3))
    );
    let amount = not_booked.report_amount.as_ref().unwrap();
    assert_eq!((amount.currency.as_str(), amount.value.as_str()), ("USD", "-792"));
    assert!(
        not_booked
            .message
            .contains("convertedTransactionAmountValue in EUR, settlement in USD")
            && not_booked.message.contains("left out of the journal"),
        "{not_booked:?}"
    );
    assert!(
        not_booked.settlement.is_none(),
        "the settlement stays on the row's first finding"
    );
    let fee = of("NB-FEE");
    let fee_kinds: Vec<&str> = fee.iter().map(|finding| finding.kind.as_str()).collect();
    assert_eq!(
        fee_kinds,
        ["UNKNOWN_TO_LEDGER", "SETTLEMENT_NOT_BOOKED", "NOT_UNDERSTOOD"]
    );
    assert!(fee[1].message.contains("paymentMethodFee fee in JPY"), "{:?}", fee[1]);
    // What the journal books on: the row's settlement date, none for the row without one (the file says so).
    let date = |id: &str| of(id)[0].settlement.as_ref().unwrap().date.clone();
    assert_eq!(date("NB-SAME").as_deref(), Some("2026-03-06"));
    assert_eq!(date("NB-NODATE"), None);
    let warnings = &run.files[0].warnings;
    assert!(
        warnings
            .iter()
            .any(|warning| warning.contains("settlementInitiatedDate") && warning.contains("day the run was recorded")),
        "{warnings:?}"
    );
    harness.finish().await;
}
