//! The simulator's reconciliation reports, read by the ledger's parser (the `reconcile` crate): an independent
//! writer for the parser, and the simulator's fee and FX model checked by the settlement formula. Refunds go
//! through the signed HTTP API; reports come from `GET /sim/reports/...` and `POST /sim/reports/{date}/files`.

use std::collections::BTreeMap;

use apo_sim::{PaymentSeed, QuoteSpec, RefundState, SimConfig};
use domain::{Currency, Money, PaymentMethodType, RefundRequestId, RefundStatus};
use reconcile::{
    FindingKind, LedgerRefund, ReconcileError, ReportDay, ReportFileName, ReportKind, ReportReader, Row, RowType,
    reconcile_settlement_batch, reconcile_transaction_details,
};
use time::{OffsetDateTime, UtcOffset};

use crate::helpers::{TestSim, config, payment_id, refund_body, refund_path};

const GMT8: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

fn report_config() -> SimConfig {
    let mut config = config();
    // U refunds stay PROCESSING for the whole test.
    config.settle_ms = 600_000;
    config.reports.settlement_currency = Some(Currency::parse("c", "USD").unwrap());
    config.reports.quotes = vec![QuoteSpec::parse("JPY/USD=0.0066").unwrap()];
    config
}

/// Two payments (USD card, JPY wallet) and three refunds: R1 30.00 USD and R2 1200 JPY succeed, R3 1.00 USD
/// stays PROCESSING.
async fn refunded_simulator(config: SimConfig) -> TestSim {
    let sim = TestSim::start_with(config).await;
    let now = OffsetDateTime::now_utc();
    for (id, currency, value, method) in [("P1", "USD", 10_000, "CARD"), ("P2", "JPY", 5_000, "PAYPAY")] {
        let amount = Money::parse("amount", currency, &value.to_string()).unwrap();
        let method = PaymentMethodType::parse(method).unwrap();
        sim.sim()
            .seed_payment(PaymentSeed::captured(payment_id(id), amount, method, now))
            .unwrap();
    }
    for (id, payment, currency, value, fault) in [
        ("R1", "P1", "USD", 3_000, None),
        ("R2", "P2", "JPY", 1_200, None),
        ("R3", "P1", "USD", 100, Some("u")),
    ] {
        let answer = sim
            .post_signed(&refund_path(), &refund_body(id, payment, currency, value), fault)
            .await
            .unwrap();
        assert_eq!(answer.status, 200, "{id}");
    }
    sim
}

/// The ledger agreeing with the simulator, as the reconciliation's ledger view.
fn ledger_view(sim: &TestSim) -> Vec<LedgerRefund> {
    ["R1", "R2", "R3"]
        .iter()
        .enumerate()
        .map(|(index, id)| {
            let record = sim.sim().refund(&RefundRequestId::parse(id).unwrap()).unwrap();
            let (status, refund_time) = match record.state {
                RefundState::Succeeded { refund_time } => (RefundStatus::Succeeded, Some(refund_time)),
                RefundState::Processing { .. } => (RefundStatus::Processing, None),
                RefundState::Failed { .. } => (RefundStatus::Failed, None),
            };
            LedgerRefund {
                refund_request_id: record.refund_request_id,
                payment_id: record.payment_id,
                status,
                refund_amount: record.refund_amount,
                refund_id: Some(record.refund_id),
                refund_time,
                position: index as u64 + 1,
            }
        })
        .collect()
}

fn today() -> (String, ReportDay) {
    let date = OffsetDateTime::now_utc().to_offset(GMT8).date();
    let compact = date
        .format(time::macros::format_description!("[year][month][day]"))
        .unwrap();
    (compact, ReportDay::new(date, GMT8))
}

/// GETs a report; returns (file name from Content-Disposition, text).
async fn fetch(sim: &TestSim, path_and_query: &str) -> (String, String) {
    let response = sim
        .http
        .get(format!("{}{path_and_query}", sim.server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path_and_query}");
    let disposition = response.headers()["content-disposition"].to_str().unwrap().to_owned();
    let name = disposition.split('"').nth(1).unwrap().to_owned();
    (name, response.text().await.unwrap())
}

fn rows(name: &str, text: &str) -> Vec<Row> {
    let mut reader = ReportReader::open(name, text.as_bytes()).unwrap();
    let mut rows = Vec::new();
    while let Some(row) = reader.next_row().unwrap() {
        rows.push(row);
    }
    let end = reader.finish().unwrap();
    assert!(end.warnings().is_empty(), "{name}: {:?}", end.warnings());
    rows
}

/// (type, refundRequestId, amount, settlement, status) of each row.
fn summarize(rows: &[Row]) -> Vec<(RowType, String, String, String, String)> {
    rows.iter()
        .map(|row| {
            (
                row.row_type().clone(),
                row.transaction_request_id().unwrap_or_default().to_owned(),
                row.transaction_amount()
                    .map(|amount| amount.to_string())
                    .unwrap_or_default(),
                row.settlement_amount()
                    .map(|amount| amount.to_string())
                    .unwrap_or_default(),
                row.status().map(|status| format!("{status:?}")).unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_parser_reads_every_report_of_both_generations_and_they_reconcile_cleanly() {
    let sim = refunded_simulator(report_config()).await;
    let (date, day) = today();
    let ledger = ledger_view(&sim);
    for generation in ["g3", "g2"] {
        let (details_name, details) = fetch(
            &sim,
            &format!("/sim/reports/transactions/{date}?generation={generation}"),
        )
        .await;
        assert_eq!(details_name, format!("transactionItems_{date}_000.csv"));
        let parsed = ReportFileName::parse(&details_name).unwrap();
        assert_eq!(
            (parsed.kind(), parsed.transaction_date()),
            (ReportKind::TransactionDetails, Some(day.date()))
        );
        let read = summarize(&rows(&details_name, &details));
        let refund = |id: &str, amount: &str, settlement: &str, status: &str| {
            (
                RowType::Refund,
                id.to_owned(),
                amount.to_owned(),
                settlement.to_owned(),
                status.to_owned(),
            )
        };
        let mut expected = vec![
            (
                RowType::Payment,
                "P1".into(),
                "100.00 USD".into(),
                "96.80 USD".into(),
                "Success".into(),
            ),
            (
                RowType::Payment,
                "P2".into(),
                "5000 JPY".into(),
                "31.94 USD".into(),
                "Success".into(),
            ),
            refund("R1", "-30.00 USD", "-30.00 USD", "Success"),
            refund("R2", "-1200 JPY", "-7.92 USD", "Success"),
            refund("R3", "-1.00 USD", "-1.00 USD", "Processing"),
        ];
        if generation == "g2" {
            // G2 lists successful transactions only, and has no status column.
            expected.pop();
            for row in &mut expected {
                row.4 = String::new();
            }
        }
        let mut read_sorted = read.clone();
        read_sorted.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(read_sorted, expected, "{generation}");

        let run = reconcile_transaction_details(vec![(details_name, details.as_bytes())], &ledger, Some(&day)).unwrap();
        assert_eq!(run.counts.discrepancies(), 0, "{generation}: {:#?}", run.findings);
        assert_eq!(
            run.counts.get(FindingKind::Matched),
            if generation == "g3" { 3 } else { 2 }
        );

        let (items_name, items) = fetch(
            &sim,
            &format!("/sim/reports/settlements/{date}/items?generation={generation}"),
        )
        .await;
        let (summary_name, summary) = fetch(
            &sim,
            &format!("/sim/reports/settlements/{date}/summary?generation={generation}"),
        )
        .await;
        let items_file = ReportFileName::parse(&items_name).unwrap();
        assert_eq!(
            (items_file.kind(), items_file.settlement_currency()),
            (ReportKind::SettlementDetails, Some("USD"))
        );
        assert_eq!(
            ReportFileName::parse(&summary_name).unwrap().settlement_batch_id(),
            items_file.settlement_batch_id()
        );
        assert_eq!(
            rows(&items_name, &items).len(),
            4,
            "{generation}: the PROCESSING refund is not settled"
        );
        // The formula (fees, FX) and the summary totals check the simulator's model independently.
        let batch = reconcile_settlement_batch(
            vec![(items_name, items.as_bytes())],
            (summary_name, summary.as_bytes()),
            &ledger,
        )
        .unwrap();
        assert_eq!(batch.counts.discrepancies(), 0, "{generation}: {:#?}", batch.findings);
        assert_eq!(batch.counts.get(FindingKind::Matched), 2);
    }
}

#[tokio::test]
async fn every_injected_discrepancy_is_found() {
    let sim = refunded_simulator(report_config()).await;
    let (date, day) = today();
    let ledger = ledger_view(&sim);
    let query = "drop=R1&changeAmount=R2&extraRefund=DASH-1&reverse=R2&duplicate=R3";
    let (name, text) = fetch(&sim, &format!("/sim/reports/transactions/{date}?{query}")).await;
    let run = reconcile_transaction_details(vec![(name.clone(), text.as_bytes())], &ledger, Some(&day)).unwrap();
    let mut found: BTreeMap<FindingKind, Vec<String>> = BTreeMap::new();
    for finding in &run.findings {
        found
            .entry(finding.kind)
            .or_default()
            .push(finding.refund_request_id.clone().unwrap_or_default());
    }
    let ids = |ids: &[&str]| ids.iter().map(|id| (*id).to_owned()).collect::<Vec<_>>();
    assert_eq!(found[&FindingKind::MissingFromReport], ids(&["R1"]));
    // The changed amount shows on R2's refund row and on its reversal (13.00 against 12.00).
    assert_eq!(found[&FindingKind::Differs], ids(&["R2", "R2"]));
    assert_eq!(found[&FindingKind::RefundReversal], ids(&["R2"]));
    assert_eq!(found[&FindingKind::UnknownToLedger], ids(&["DASH-1"]));
    assert_eq!(found[&FindingKind::Duplicate], ids(&["R3"]));
    assert_eq!(found[&FindingKind::Matched], ids(&["R3"]));
    let differs = run
        .findings
        .iter()
        .find(|finding| finding.kind == FindingKind::Differs)
        .unwrap();
    assert!(
        differs
            .message
            .contains("amount -1300 JPY in the report, 1200 JPY in the ledger"),
        "{}",
        differs.message
    );

    let (cut_name, cut) = fetch(&sim, &format!("/sim/reports/transactions/{date}?truncate=true")).await;
    let error =
        reconcile_transaction_details(vec![(cut_name.clone(), cut.as_bytes())], &ledger, Some(&day)).unwrap_err();
    assert!(matches!(error, ReconcileError::Truncated { .. }), "{error:?}");
    assert!(error.to_string().starts_with(&cut_name) && error.to_string().contains("nothing was imported"));
}

#[tokio::test]
async fn reports_are_written_as_files_in_antoms_layout() {
    let directory = tempfile::tempdir().unwrap();
    let mut config = report_config();
    config.reports.reports_dir = Some(directory.path().to_owned());
    let sim = refunded_simulator(config).await;
    let (date, _) = today();
    let response = sim
        .http
        .post(format!(
            "{}/sim/reports/{date}/files?generation=g2",
            sim.server.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let paths: Vec<String> = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(paths.len(), 3, "{paths:?}");
    for path in &paths {
        assert!(path.contains("/v1/settlements/2188120000000001/"), "{path}");
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.rsplit('/').next().unwrap();
        assert!(!rows(name, &text).is_empty(), "{path}");
    }
    let bad = sim
        .http
        .get(format!("{}/sim/reports/transactions/2026-13-01", sim.server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("expected yyyyMMdd"));
}
