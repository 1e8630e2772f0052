//! The journal of any time range balances per currency, adjacent ranges add up to the whole journal (so a
//! range starting after a refund's request still finds its amount), and the same range gives the same bytes;
//! replay of the same log gives the same state bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use audit::{Accounts, ExportFilter, Format, JournalExport, SettlementAccounts};
use eventlog::EventStore;
use time::OffsetDateTime;

use crate::support::{PAYMENTS, REFUNDS_PER_PAYMENT, interleaved_log, interleaved_sparse_log};

fn accounts() -> Accounts {
    Accounts {
        refunds: "6100 Refunds".to_owned(),
        clearing: "1130 Antom, clearing".to_owned(),
        settlement: SettlementAccounts::default(),
    }
}

async fn export(store: &Arc<dyn EventStore>, format: Format, filter: ExportFilter) -> String {
    let mut export = JournalExport::new(Arc::clone(store), format, accounts(), filter);
    let mut out = Vec::new();
    while let Some(chunk) = export.next_chunk().await.unwrap() {
        out.extend_from_slice(&chunk);
    }
    String::from_utf8(out).unwrap()
}

/// Debits minus credits per currency, in minor units (exact: the decimal point is dropped).
fn imbalance(jsonl: &str) -> BTreeMap<String, i128> {
    let mut sums = BTreeMap::new();
    for line in jsonl.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let minor = |field: &str| row[field].as_str().unwrap().replace('.', "").parse::<i128>().unwrap();
        *sums.entry(row["currency"].as_str().unwrap().to_owned()).or_default() += minor("debit") - minor("credit");
    }
    sums
}

#[tokio::test]
async fn any_range_balances_and_adjacent_ranges_make_the_whole_journal() {
    let folder = tempfile::tempdir().unwrap();
    check_ranges(&interleaved_log(folder.path()).await).await;
}

/// The same on a sparse log (KurrentDB's shape), where the journal reads the whole log and keeps the range.
#[tokio::test]
async fn any_range_of_a_sparse_log_balances_and_adjacent_ranges_make_the_whole_journal() {
    let (_, store) = interleaved_sparse_log().await;
    check_ranges(&store).await;
}

async fn check_ranges(store: &Arc<dyn EventStore>) {
    let store = Arc::clone(store);
    let whole = export(&store, Format::JsonLines, ExportFilter::default()).await;
    let succeeded = (0..PAYMENTS)
        .flat_map(|payment| (0..REFUNDS_PER_PAYMENT).map(move |refund| (payment + refund) % 3 != 0))
        .filter(|succeeded| *succeeded)
        .count();
    assert_eq!(whole.lines().count(), succeeded * 2);
    assert!(imbalance(&whole).values().all(|sum| *sum == 0), "{whole}");
    assert_eq!(imbalance(&whole).len(), 3, "USD, JPY and KWD");
    assert!(
        whole.contains("\"currency\":\"KWD\",\"account\":\"6100 Refunds\",\"debit\":\"1."),
        "{whole}"
    );

    let events = store.read_all(1, 1_000).await.unwrap();
    let times: Vec<OffsetDateTime> = events.iter().map(|event| event.recorded_at).collect();
    assert_eq!(
        events.last().map(|event| event.position),
        Some(store.head().await.unwrap().position)
    );
    for cut in (1..times.len()).step_by(5) {
        let at = times[cut];
        let before = export(
            &store,
            Format::JsonLines,
            ExportFilter {
                to: Some(at),
                ..ExportFilter::default()
            },
        )
        .await;
        let after = export(
            &store,
            Format::JsonLines,
            ExportFilter {
                from: Some(at),
                ..ExportFilter::default()
            },
        )
        .await;
        assert!(imbalance(&before).values().all(|sum| *sum == 0), "before {at}");
        assert!(imbalance(&after).values().all(|sum| *sum == 0), "after {at}");
        assert_eq!(
            format!("{before}{after}"),
            whole,
            "ranges cut at {at} add up to the whole"
        );
        let again = export(
            &store,
            Format::JsonLines,
            ExportFilter {
                from: Some(at),
                ..ExportFilter::default()
            },
        )
        .await;
        assert_eq!(again, after, "the same range gives the same bytes");
    }
}

#[tokio::test]
async fn csv_quotes_account_names_and_ends_lines_with_crlf() {
    let folder = tempfile::tempdir().unwrap();
    let store = interleaved_log(folder.path()).await;
    let usd = domain::Currency::parse("c", "USD").unwrap();
    let csv = export(
        &store,
        Format::Csv,
        ExportFilter {
            currency: Some(usd),
            ..ExportFilter::default()
        },
    )
    .await;
    let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(
        lines[0],
        "date,recordedAt,refundRequestId,refundId,paymentId,currency,account,debit,credit,position,hash,runId,file,line"
    );
    assert!(!csv.replace("\r\n", "").contains('\n'));
    for pair in lines[1..].chunks(2) {
        assert!(pair[0].contains(",USD,6100 Refunds,"), "{}", pair[0]);
        assert!(pair[1].contains(",USD,\"1130 Antom, clearing\",0.00,"), "{}", pair[1]);
    }
}

#[tokio::test]
async fn replay_of_the_same_log_gives_the_same_bytes() {
    let folder = tempfile::tempdir().unwrap();
    check_replay(interleaved_log(folder.path()).await).await;
}

#[tokio::test]
async fn replay_of_a_sparse_log_gives_the_same_bytes_and_stops_where_asked() {
    let (_, store) = interleaved_sparse_log().await;
    check_replay(store).await;
}

async fn check_replay(store: Arc<dyn EventStore>) {
    let head = store.head().await.unwrap().position;
    let mut positions = Vec::new();
    let first = audit::replay::rebuild(store.as_ref(), head, &mut |position| positions.push(position))
        .await
        .unwrap();
    assert_eq!(positions.last(), Some(&head));
    let second = audit::replay::rebuild(store.as_ref(), head, &mut |_| {}).await.unwrap();
    assert_eq!(first.canonical_bytes(), second.canonical_bytes());
    assert_eq!(first.state_digest(), second.state_digest());
    assert_eq!(first.payment_count() as u64, PAYMENTS);
    assert_eq!(first.refund_count() as u64, PAYMENTS * REFUNDS_PER_PAYMENT);
    let events = store.read_all(1, 1_000).await.unwrap();
    let middle = &events[events.len() / 2];
    let halfway = audit::replay::rebuild(store.as_ref(), middle.position, &mut |_| {})
        .await
        .unwrap();
    assert_ne!(halfway.state_digest(), first.state_digest());
    assert_eq!(halfway.last_position, middle.position);
    assert_eq!(
        halfway.events,
        (events.len() / 2 + 1) as u64,
        "exactly the events up to the middle one"
    );
    let as_of = audit::replay::end_position(store.as_ref(), audit::replay::ReplayEnd::AsOf(middle.recorded_at), head)
        .await
        .unwrap();
    let last_at_that_time = events
        .iter()
        .take_while(|event| event.recorded_at <= middle.recorded_at)
        .last()
        .unwrap();
    assert_eq!(
        as_of, last_at_that_time.position,
        "as-of ends after the last event recorded by then"
    );
}

/// A reconciliation run of `report_kind` over the interleaved log: the chunks of findings, then the run's event.
async fn append_run(store: &dyn EventStore, run_id: &str, report_kind: &str, findings: Vec<domain::RecordedFinding>) {
    use domain::{ReconciliationEvent, ReconciliationFindingsRecorded, ReconciliationRecorded};
    let stream = eventlog::StreamName::parse(domain::reconciliation_stream_name(run_id)).unwrap();
    let run = ReconciliationRecorded {
        run_id: run_id.to_owned(),
        report_kind: report_kind.to_owned(),
        files: Vec::new(),
        period: None,
        settlement_batch_id: Some("2026030611000000001".to_owned()),
        ledger_position: 1,
        counts: [("MATCHED".to_owned(), findings.len() as u64)].into(),
        other_rows: BTreeMap::new(),
        findings_count: findings.len() as u64,
        reconciled_at: OffsetDateTime::UNIX_EPOCH,
    };
    // Chunks of three findings: a streamed run's chunks need not be full.
    let mut events: Vec<ReconciliationEvent> = findings
        .chunks(3)
        .enumerate()
        .map(|(chunk, part)| {
            ReconciliationEvent::ReconciliationFindingsRecorded(ReconciliationFindingsRecorded {
                run_id: run_id.to_owned(),
                chunk: chunk as u64,
                findings: part.to_vec(),
            })
        })
        .collect();
    events.push(ReconciliationEvent::ReconciliationRecorded(run));
    let events = events
        .iter()
        .map(|event| {
            let stored = event.to_stored();
            eventlog::NewEvent {
                event_id: uuid::Uuid::new_v4(),
                event_type: stored.event_type.to_owned(),
                schema_version: stored.schema_version,
                payload: stored.data,
                actor: "cli:audit".to_owned(),
            }
        })
        .collect();
    store
        .append(&stream, eventlog::ExpectedRevision::NoStream, events)
        .await
        .unwrap();
}

fn amount(currency: &str, value: i64) -> domain::ReportedAmount {
    domain::ReportedAmount {
        currency: currency.to_owned(),
        value: value.to_string(),
    }
}

/// A settled REFUND row's finding: line `line` of the batch's details, the transaction amount `report`, and
/// its settlement side.
fn settled(
    seq: u64,
    line: u64,
    refund: &str,
    report: domain::ReportedAmount,
    settlement: domain::RecordedSettlement,
) -> domain::RecordedFinding {
    domain::RecordedFinding {
        seq,
        kind: "MATCHED".to_owned(),
        file: Some("settlementItems_USD_2026030611000000001_000.csv".to_owned()),
        line: Some(line),
        refund_request_id: Some(refund.to_owned()),
        refund_id: None,
        report_amount: Some(report),
        ledger_position: None,
        ledger_status: None,
        ledger_amount: None,
        report_status: None,
        settlement: Some(settlement),
        message: String::new(),
    }
}

fn fee(kind: &str, value: domain::ReportedAmount) -> domain::RecordedFee {
    domain::RecordedFee {
        kind: kind.to_owned(),
        amount: value,
    }
}

fn quote(base: &str, quote: &str, price: &str) -> Option<domain::RecordedQuote> {
    Some(domain::RecordedQuote {
        base: base.to_owned(),
        quote: quote.to_owned(),
        price: price.to_owned(),
    })
}

#[tokio::test]
async fn a_reconciled_settlement_batch_adds_balanced_lines_traced_to_the_report() {
    let folder = tempfile::tempdir().unwrap();
    let store = interleaved_log(folder.path()).await;
    let before = export(&store, Format::JsonLines, ExportFilter::default()).await;
    let findings = vec![
        // Same currency: 10.02 USD refunded, a 0.20 USD fee, 10.22 USD left the settlement account.
        settled(
            1,
            2,
            "R0-1",
            amount("USD", -1002),
            domain::RecordedSettlement {
                amount: amount("USD", -1022),
                converted: None,
                fees: vec![fee("paymentMethodFee", amount("USD", -20))],
                quote: None,
                date: Some("2026-03-06".to_owned()),
            },
        ),
        // 1008 JPY at JPY/USD 0.0066 is 6.6528, 6.65 USD rounded; the report settled 6.66 USD: 0.01 of FX
        // difference.
        settled(
            2,
            3,
            "R1-0",
            amount("JPY", -1008),
            domain::RecordedSettlement {
                amount: amount("USD", -666),
                converted: None,
                fees: Vec::new(),
                quote: quote("JPY", "USD", "0.0066"),
                // No settlement date: booked on the day the run was recorded.
                date: None,
            },
        ),
        // G3 states the converted gross (1.015 KWD at USD/KWD 0.3070): 3.31 USD, a 0.05 USD tax fee and a fee
        // of 0.000 KWD (no line), 3.36 USD settled.
        settled(
            3,
            4,
            "R2-0",
            amount("KWD", -1015),
            domain::RecordedSettlement {
                amount: amount("USD", -336),
                converted: Some(amount("USD", -331)),
                fees: vec![fee("taxFee", amount("USD", -5)), fee("fxFee", amount("KWD", 0))],
                quote: quote("USD", "KWD", "0.3070"),
                date: Some("2026-03-07".to_owned()),
            },
        ),
        // A fee in a third currency: the row cannot be booked and is left out (the run reported it).
        settled(
            4,
            5,
            "R4-0",
            amount("USD", -1029),
            domain::RecordedSettlement {
                amount: amount("USD", -1029),
                converted: None,
                fees: vec![fee("paymentMethodFee", amount("JPY", -1))],
                quote: None,
                date: Some("2026-03-06".to_owned()),
            },
        ),
    ];
    append_run(store.as_ref(), "run-1", "SETTLEMENT_BATCH", findings).await;
    let whole = export(&store, Format::JsonLines, ExportFilter::default()).await;
    assert!(whole.starts_with(&before), "the refund lines are unchanged");
    let settlement = &whole[before.len()..];
    let rows: Vec<serde_json::Value> = settlement
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let stream = eventlog::StreamName::parse("reconciliation-run-1").unwrap();
    // Two chunks (three findings and one), then the run at revision 2.
    let run = store.read_stream(&stream, 2, 1).await.unwrap().remove(0);
    assert_eq!(run.event_type, "ReconciliationRecorded");
    for row in &rows {
        assert_eq!(row["runId"], "run-1", "{row}");
        assert_eq!(row["file"], "settlementItems_USD_2026030611000000001_000.csv", "{row}");
        assert_eq!(row["position"], run.position, "{row}");
        assert_eq!(row["hash"], hex::encode(run.hash), "{row}");
        assert_eq!(row["paymentId"], serde_json::Value::Null, "{row}");
    }
    // Each line as "currency account debit/credit".
    let of_line = |line: u64| -> Vec<String> {
        rows.iter()
            .filter(|row| row["line"] == line)
            .map(|row| {
                let text = |field: &str| row[field].as_str().unwrap().to_owned();
                format!(
                    "{} {} {}/{}",
                    text("currency"),
                    text("account"),
                    text("debit"),
                    text("credit")
                )
            })
            .collect()
    };
    let expected: [(u64, &[&str]); 3] = [
        (
            2,
            &[
                "USD 1130 Antom, clearing 10.02/0.00",
                "USD antom-fees:paymentMethodFee 0.20/0.00",
                "USD antom-settlement 0.00/10.22",
            ],
        ),
        (
            3,
            &[
                "JPY 1130 Antom, clearing 1008/0",
                "JPY fx-conversion 0/1008",
                "USD fx-conversion 6.65/0.00",
                "USD fx-difference 0.01/0.00",
                "USD antom-settlement 0.00/6.66",
            ],
        ),
        (
            4,
            &[
                "KWD 1130 Antom, clearing 1.015/0.000",
                "KWD fx-conversion 0.000/1.015",
                "USD fx-conversion 3.31/0.00",
                "USD antom-fees:taxFee 0.05/0.00",
                "USD antom-settlement 0.00/3.36",
            ],
        ),
    ];
    for (line, lines) in expected {
        assert_eq!(of_line(line), lines, "line {line}");
    }
    // Dated on the batch's settlement date as the report printed it, the run's own day for a row without one;
    // `recordedAt` is the run's time either way.
    let run_time = run
        .recorded_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let run_day = run.recorded_at.date().to_string();
    for (line, date) in [(2, "2026-03-06"), (3, run_day.as_str()), (4, "2026-03-07")] {
        for row in rows.iter().filter(|row| row["line"] == line) {
            assert_eq!(
                (row["date"].as_str(), row["recordedAt"].as_str()),
                (Some(date), Some(run_time.as_str())),
                "{row}"
            );
        }
    }
    assert!(of_line(5).is_empty(), "{settlement}");
    // The batch's lines balance per currency, and so does the whole journal.
    assert!(imbalance(settlement).values().all(|sum| *sum == 0), "{settlement}");
    assert_eq!(imbalance(settlement).len(), 3, "{settlement}");
    assert!(imbalance(&whole).values().all(|sum| *sum == 0));
    // A refund booked and then settled leaves nothing on the clearing account, whatever the settlement currency.
    for refund in ["R0-1", "R1-0", "R2-0"] {
        let clearing = whole
            .lines()
            .filter(|line| line.contains(&format!("\"refundRequestId\":\"{refund}\"")))
            .filter(|line| line.contains("\"account\":\"1130 Antom, clearing\""))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(clearing.lines().count(), 2, "{refund}: {whole}");
        assert!(imbalance(&clearing).values().all(|sum| *sum == 0), "{clearing}");
    }
    // One currency's lines alone balance too.
    let usd = export(
        &store,
        Format::JsonLines,
        ExportFilter {
            currency: Some(domain::Currency::parse("c", "USD").unwrap()),
            ..ExportFilter::default()
        },
    )
    .await;
    assert_eq!(usd.matches("\"runId\":\"run-1\"").count(), 9, "{usd}");
    assert!(imbalance(&usd).values().all(|sum| *sum == 0), "{usd}");
    // A transaction details run books nothing.
    let mut day = settled(
        1,
        2,
        "R0-1",
        amount("USD", -1002),
        domain::RecordedSettlement {
            amount: amount("USD", -1002),
            converted: None,
            fees: Vec::new(),
            quote: None,
            date: None,
        },
    );
    day.file = Some("transactionItems_20260304_000.csv".to_owned());
    append_run(store.as_ref(), "run-2", "TRANSACTION_DETAILS", vec![day]).await;
    let again = export(&store, Format::JsonLines, ExportFilter::default()).await;
    assert_eq!(again, whole, "a day's transaction details settle nothing");
}
