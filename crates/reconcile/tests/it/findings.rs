//! Every finding kind through whole runs: reports read from bytes, matched against a ledger, with the report
//! line and the ledger position on each finding.

use std::collections::BTreeMap;

use domain::RefundStatus;
use reconcile::{
    Finding, FindingKind, LedgerRefund, REPORT_DAY_OFFSET_DEFAULT, ReportDay, reconcile_settlement_batch,
    reconcile_transaction_details,
};
use time::macros::{date, datetime};

use crate::fixtures::ledger_refund;

const HEADER: &str = "customerId,PSP,transactionId,transactionRequestId,transactionType,status,\
    transactionCreationTime,transactionAmountValue,transactionCurrency";

fn refund(id: &str, status: RefundStatus, position: u64) -> LedgerRefund {
    LedgerRefund {
        status,
        ..ledger_refund(id, "PAY1", "USD", 1000, &format!("REF{position}"), position)
    }
}

fn ledger() -> Vec<LedgerRefund> {
    let mut early_next_day = refund("R-next-day", RefundStatus::Succeeded, 80);
    early_next_day.refund_time = Some(datetime!(2026-03-05 00:00:01 +08:00));
    vec![
        refund("R-match", RefundStatus::Succeeded, 10),
        refund("R-amount", RefundStatus::Succeeded, 20),
        refund("R-pending", RefundStatus::Processing, 30),
        refund("R-failed", RefundStatus::Failed, 40),
        refund("R-missing", RefundStatus::Succeeded, 50),
        refund("R-reversed", RefundStatus::Succeeded, 60),
        refund("R-status", RefundStatus::Succeeded, 70),
        early_next_day,
    ]
}

/// (refundRequestId, report line, ledger position) of a finding.
type Seen = (Option<String>, Option<u64>, Option<u64>);

fn by_kind(findings: &[Finding]) -> BTreeMap<FindingKind, Vec<Seen>> {
    let mut map: BTreeMap<FindingKind, Vec<_>> = BTreeMap::new();
    for finding in findings {
        map.entry(finding.kind).or_default().push((
            finding.refund_request_id.clone(),
            finding.report.as_ref().map(|line| line.line),
            finding.ledger.map(|ledger| ledger.position),
        ));
    }
    map
}

#[test]
fn every_transaction_details_finding_kind_with_its_line_and_ledger_position() {
    let first = format!(
        "{HEADER}\n\
         2188,Antom,PAY1,R-match,REFUND,SUCCESS,2026-03-04T10:00:00+08:00,-10.00,USD\n\
         2188,Antom,PAY1,R-amount,REFUND,SUCCESS,2026-03-04T10:00:00+08:00,-11.00,USD\n\
         2188,Antom,PAY1,R-pending,REFUND,SUCCESS,2026-03-04T10:00:00+08:00,-10.00,USD\n\
         2188,Antom,PAY1,R-failed,REFUND,SUCCESS,2026-03-04T10:00:00+08:00,-10.00,USD\n\
         <END>\n"
    );
    let second = format!(
        "{HEADER}\n\
         2188,Antom,PAY1,R-reversed,REFUND,SUCCESS,2026-03-04T10:00:00+08:00,-10.00,USD\n\
         2188,Antom,PAY1,R-reversed,REFUND_REVERSAL,SUCCESS,2026-03-04T11:00:00+08:00,10.00,USD\n\
         2188,Antom,PAY1,R-status,REFUND,FAIL,2026-03-04T10:00:00+08:00,-10.00,USD\n\
         2188,Antom,PAY9,DASH-1,REFUND,SUCCESS,2026-03-04T12:00:00+08:00,-4.00,USD\n\
         2188,Antom,PAY1,R-match,REFUND,SUCCESS,2026-03-04T10:00:00+08:00,-10.00,USD\n\
         2188,Antom,,,REFUND,SUCCESS,2026-03-04T13:00:00+08:00,-1.00,USD\n\
         2188,Antom,PAY1,pay-1,PAYMENT,SUCCESS,2026-03-04T09:00:00+08:00,100.00,USD\n\
         <END>\n"
    );
    let files = vec![
        ("transactionItems_20260304_000.csv".to_owned(), first.as_bytes()),
        ("transactionItems_20260304_001.csv".to_owned(), second.as_bytes()),
    ];
    let day = ReportDay::new(date!(2026 - 03 - 04), REPORT_DAY_OFFSET_DEFAULT);
    let run = reconcile_transaction_details(files, &ledger(), Some(&day)).unwrap();
    let found = by_kind(&run.findings);
    let id = |id: &str| Some(id.to_owned());
    let expected = BTreeMap::from([
        (
            FindingKind::Matched,
            vec![
                (id("R-match"), Some(2), Some(10)),
                (id("R-reversed"), Some(2), Some(60)),
            ],
        ),
        (FindingKind::Differs, vec![(id("R-amount"), Some(3), Some(20))]),
        (FindingKind::LedgerPending, vec![(id("R-pending"), Some(4), Some(30))]),
        (
            FindingKind::LedgerNotSucceeded,
            vec![(id("R-failed"), Some(5), Some(40))],
        ),
        (FindingKind::RefundReversal, vec![(id("R-reversed"), Some(3), Some(60))]),
        (FindingKind::StatusDiffers, vec![(id("R-status"), Some(4), Some(70))]),
        (FindingKind::UnknownToLedger, vec![(id("DASH-1"), Some(5), None)]),
        (FindingKind::Duplicate, vec![(id("R-match"), Some(6), Some(10))]),
        (FindingKind::NotUnderstood, vec![(None, Some(7), None)]),
        (FindingKind::MissingFromReport, vec![(id("R-missing"), None, Some(50))]),
    ]);
    assert_eq!(found, expected);
    let duplicate = run
        .findings
        .iter()
        .find(|finding| finding.kind == FindingKind::Duplicate)
        .unwrap();
    assert!(
        duplicate.message.contains("transactionItems_20260304_000.csv line 2"),
        "{}",
        duplicate.message
    );
    assert_eq!(run.counts.discrepancies(), 9);
    assert_eq!(run.other_rows.get("PAYMENT"), Some(&1));
    assert_eq!(run.files.len(), 2);
}

const SETTLEMENT_HEADER: &str = "settlementBatchId,transactionId,transactionRequestId,transactionType,\
    settlementInitiatedDate,transactionAmountValue,transactionCurrency,settlementAmountValue,settlementCurrency,\
    quoteCurrencyPair,quotePrice,paymentMethodFeeAmountValue,paymentMethodFeeCurrency";
const SUMMARY_HEADER: &str = "settlementBatchId,summaryType,settlementInitiatedDate,count,settlementAmountValue,\
    settlementCurrency,paymentMethodFeeAmountValue,paymentMethodFeeCurrency";

#[test]
fn a_settlement_batch_checks_rows_fees_and_the_summary() {
    let details = format!(
        "{SETTLEMENT_HEADER}\n\
         B1,PAY1,R-match,REFUND,2026-03-06,-10.00,USD,-10.00,USD,,,0.00,USD\n\
         B1,PAY1,R-amount,REFUND,2026-03-06,-10.00,USD,-10.50,USD,,,0.00,USD\n\
         B1,PAY2,pay-2,PAYMENT,2026-03-06,100.00,USD,96.80,USD,,,-3.20,USD\n\
         <END>\n"
    );
    let summary = format!(
        "{SUMMARY_HEADER}\n\
         B1,PAYMENT,2026-03-06,1,96.80,USD,-3.20,USD\n\
         B1,REFUND,2026-03-06,2,-20.00,USD,0.00,USD\n\
         B1,TOTAL,2026-03-06,3,76.80,USD,-3.20,USD\n\
         <END>\n"
    );
    let run = reconcile_settlement_batch(
        vec![("settlementItems_USD_B1_000.csv".to_owned(), details.as_bytes())],
        ("settlementSummary_USD_B1_000.csv".to_owned(), summary.as_bytes()),
        &ledger(),
    )
    .unwrap();
    let found = by_kind(&run.findings);
    assert_eq!(found[&FindingKind::Matched].len(), 2);
    assert_eq!(
        found[&FindingKind::SettlementMismatch],
        vec![(Some("R-amount".to_owned()), Some(3), None)]
    );
    // The REFUND summary row and the TOTAL row both disagree with the details (-20.50).
    assert_eq!(
        found[&FindingKind::SummaryMismatch],
        vec![(None, Some(3), None), (None, Some(4), None)]
    );
    assert_eq!(run.counts.discrepancies(), 3);
}
