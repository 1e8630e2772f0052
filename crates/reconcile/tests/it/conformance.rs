//! One set of cases, every generation: each case runs against the G1, G2 and G3 fixtures (and transformed
//! copies of them), like the event log's conformance suite runs against every backend.

use reconcile::{
    AntomIds, Field, FindingKind, REPORT_DAY_OFFSET_DEFAULT, ReconcileError, ReportDay, ReportKind, ReportReader,
    RowType, WarningKind, reconcile_settlement_batch, reconcile_transaction_details,
};
use time::macros::date;

use crate::fixtures::{
    DETAILS_NAME, EVERY_GENERATION, Fixture, SETTLEMENT_NAME, SUMMARY_NAME, agreeing_ledger, parse, quoted_crlf_bom,
    reversed_columns, with_unknown_column, without_end,
};

/// What every generation's details files must read as: (line, type, refundRequestId, amount, settlement).
fn expected_details() -> Vec<(u64, RowType, &'static str, &'static str, &'static str)> {
    vec![
        (2, RowType::Payment, "pay-req-7001", "100.00 USD", "96.80 USD"),
        (3, RowType::Refund, "rf-req-9001", "-30.00 USD", "-30.00 USD"),
        (4, RowType::Refund, "rf-req-9002", "-1200 JPY", "-7.92 USD"),
    ]
}

fn assert_details(fixture: Fixture, name: &str, text: &str) {
    let rows = parse(name, text).unwrap_or_else(|error| panic!("{fixture:?} {name}: {error}"));
    let read: Vec<(u64, RowType, &str, String, String)> = rows
        .iter()
        .map(|row| {
            (
                row.line(),
                row.row_type().clone(),
                row.transaction_request_id().unwrap_or_default(),
                row.transaction_amount()
                    .map(|amount| amount.to_string())
                    .unwrap_or_default(),
                row.settlement_amount()
                    .map(|amount| amount.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let expected: Vec<(u64, RowType, &str, String, String)> = expected_details()
        .into_iter()
        .map(|(line, row_type, id, amount, settlement)| (line, row_type, id, amount.to_owned(), settlement.to_owned()))
        .collect();
    assert_eq!(read, expected, "{fixture:?} {name}");
    let refund = &rows[1];
    assert_eq!(refund.transaction_amount().unwrap().minor_units(), -3000, "{fixture:?}");
    // G1/G2 carry the refundId in transactionId; G3 the paymentId (Antom's Chinese G3 pages).
    match (fixture, refund.antom_ids()) {
        (Fixture::G1 | Fixture::G2, AntomIds::Split { refund_id, payment_id }) => {
            assert_eq!(refund_id, Some("20260304194010800100188000000101"));
            assert_eq!(payment_id, Some("20260304194010800100188000000001"));
        }
        (Fixture::G3, AntomIds::Shared { transaction_id }) => {
            assert_eq!(transaction_id, Some("20260304194010800100188000000001"));
        }
        (fixture, ids) => panic!("{fixture:?}: unexpected ids {ids:?}"),
    }
}

#[test]
fn every_generation_reads_kind_generation_rows_lines_and_exact_amounts() {
    for fixture in EVERY_GENERATION {
        for (name, text, kind) in [
            (
                DETAILS_NAME,
                fixture.transaction_details(),
                ReportKind::TransactionDetails,
            ),
            (
                SETTLEMENT_NAME,
                fixture.settlement_details(),
                ReportKind::SettlementDetails,
            ),
            (
                SUMMARY_NAME,
                fixture.settlement_summary(),
                ReportKind::SettlementSummary,
            ),
        ] {
            let reader = ReportReader::open(name, text.as_bytes()).unwrap();
            assert_eq!(reader.schema().kind(), kind, "{fixture:?} {name}");
            assert_eq!(reader.schema().generation(), fixture.generation(), "{fixture:?} {name}");
            let end = reader.finish().unwrap();
            assert_eq!((end.rows(), end.end_line()), (3, 5), "{fixture:?} {name}");
            let unexpected: Vec<_> = end
                .warnings()
                .iter()
                .filter(|warning| warning.kind != WarningKind::TrailingEmptyCell)
                .collect();
            assert!(unexpected.is_empty(), "{fixture:?} {name}: {unexpected:?}");
        }
        assert_details(fixture, DETAILS_NAME, fixture.transaction_details());
        assert_details(fixture, SETTLEMENT_NAME, fixture.settlement_details());
    }
}

#[test]
fn every_generation_reads_the_summary_per_type() {
    for fixture in EVERY_GENERATION {
        let rows = parse(SUMMARY_NAME, fixture.settlement_summary()).unwrap();
        let read: Vec<(RowType, Option<u64>, String, Vec<String>)> = rows
            .iter()
            .map(|row| {
                (
                    row.row_type().clone(),
                    row.count(),
                    row.settlement_amount().unwrap().to_string(),
                    row.fees()
                        .iter()
                        .map(|fee| format!("{} {}", fee.kind.as_str(), fee.amount))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            read,
            vec![
                (
                    RowType::Payment,
                    Some(1),
                    "96.80 USD".into(),
                    vec!["paymentMethodFee -3.20 USD".into()]
                ),
                (
                    RowType::Refund,
                    Some(2),
                    "-37.92 USD".into(),
                    vec!["paymentMethodFee 0.00 USD".into()]
                ),
                (
                    RowType::Total,
                    Some(3),
                    "58.88 USD".into(),
                    vec!["paymentMethodFee -3.20 USD".into()]
                ),
            ],
            "{fixture:?}"
        );
    }
}

#[test]
fn every_generation_reconciles_cleanly_against_an_agreeing_ledger() {
    let day = ReportDay::new(date!(2026 - 03 - 04), REPORT_DAY_OFFSET_DEFAULT);
    for fixture in EVERY_GENERATION {
        let details = vec![(DETAILS_NAME.to_owned(), fixture.transaction_details().as_bytes())];
        let run = reconcile_transaction_details(details, &agreeing_ledger(), Some(&day)).unwrap();
        assert_eq!(
            run.counts.get(FindingKind::Matched),
            2,
            "{fixture:?}: {:?}",
            run.findings
        );
        assert_eq!(run.counts.discrepancies(), 0, "{fixture:?}: {:?}", run.findings);
        assert_eq!(run.other_rows.get("PAYMENT"), Some(&1));
        let batch = reconcile_settlement_batch(
            vec![(SETTLEMENT_NAME.to_owned(), fixture.settlement_details().as_bytes())],
            (SUMMARY_NAME.to_owned(), fixture.settlement_summary().as_bytes()),
            &agreeing_ledger(),
        )
        .unwrap();
        assert_eq!(batch.counts.discrepancies(), 0, "{fixture:?}: {:?}", batch.findings);
        assert_eq!(batch.files.len(), 2);
    }
}

#[test]
fn column_order_quoting_line_ends_and_unknown_columns_change_nothing() {
    for fixture in EVERY_GENERATION {
        assert_details(fixture, DETAILS_NAME, &reversed_columns(fixture.transaction_details()));
        assert_details(
            fixture,
            SETTLEMENT_NAME,
            &reversed_columns(fixture.settlement_details()),
        );
        assert_details(fixture, DETAILS_NAME, &quoted_crlf_bom(fixture.transaction_details()));
        assert_details(fixture, SETTLEMENT_NAME, &quoted_crlf_bom(fixture.settlement_details()));
        let with_note = with_unknown_column(fixture.transaction_details());
        assert_details(fixture, DETAILS_NAME, &with_note);
        let rows = parse(DETAILS_NAME, &with_note).unwrap();
        assert_eq!(rows[2].cell_named("merchantNote"), Some("note 3"));
        assert_eq!(
            rows[2].unknown_cells().collect::<Vec<_>>(),
            vec![("merchantNote", "note 3")]
        );
        let end = ReportReader::open(DETAILS_NAME, with_note.as_bytes())
            .unwrap()
            .finish()
            .unwrap();
        let warning = end
            .warnings()
            .iter()
            .find(|warning| warning.kind == WarningKind::UnknownColumn)
            .unwrap();
        assert_eq!((warning.subject.as_str(), warning.first_line), ("merchantNote", 1));
    }
}

#[test]
fn a_file_cut_before_end_names_the_file_and_imports_nothing() {
    for fixture in EVERY_GENERATION {
        for (name, text) in fixture.all() {
            let cut = without_end(text);
            let error = parse(name, &cut).unwrap_err();
            assert!(
                matches!(error, ReconcileError::Truncated { line: 4, .. }),
                "{fixture:?} {name}: {error:?}"
            );
            let message = error.to_string();
            assert!(
                message.starts_with(name) && message.contains("nothing was imported"),
                "{message}"
            );
            // Cut in the middle of the last row: still "truncated", not a confusing cell count.
            let mid_row = &text[..text.find("<END>").unwrap() - 20];
            assert!(
                matches!(parse(name, mid_row), Err(ReconcileError::Truncated { .. })),
                "{fixture:?} {name}: {:?}",
                parse(name, mid_row)
            );
        }
        let cut = without_end(fixture.transaction_details());
        let details = vec![(DETAILS_NAME.to_owned(), cut.as_bytes())];
        assert!(matches!(
            reconcile_transaction_details(details, &agreeing_ledger(), None),
            Err(ReconcileError::Truncated { .. })
        ));
    }
}

#[test]
fn more_decimals_than_the_currency_has_is_an_error_naming_line_and_column() {
    for fixture in EVERY_GENERATION {
        for (name, text) in [
            (DETAILS_NAME, fixture.transaction_details()),
            (SETTLEMENT_NAME, fixture.settlement_details()),
        ] {
            let bad = text.replacen(",-1200,JPY,", ",-1200.5,JPY,", 1);
            let error = parse(name, &bad).unwrap_err();
            match &error {
                ReconcileError::Amount {
                    line, column, value, ..
                } => {
                    assert_eq!(
                        (*line, column.as_str(), value.as_str()),
                        (4, "transactionAmountValue", "-1200.5")
                    );
                }
                other => panic!("{fixture:?} {name}: {other:?}"),
            }
            assert!(error.to_string().contains("JPY has 0 decimal places"), "{error}");
        }
    }
}

#[test]
fn an_empty_batch_is_a_header_and_end() {
    for fixture in EVERY_GENERATION {
        for (name, text) in fixture.all() {
            let header = text.lines().next().unwrap();
            let empty = format!("{header}\n<END>\n");
            assert_eq!(parse(name, &empty).unwrap().len(), 0, "{fixture:?} {name}");
        }
    }
}

#[test]
fn a_summary_without_total_is_read_with_a_warning() {
    for fixture in EVERY_GENERATION {
        let text = fixture.settlement_summary();
        let without_total: String = text
            .lines()
            .filter(|line| !line.contains(",TOTAL,"))
            .map(|line| format!("{line}\n"))
            .collect();
        let end = ReportReader::open(SUMMARY_NAME, without_total.as_bytes())
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(end.rows(), 2);
        assert!(
            end.warnings()
                .iter()
                .any(|warning| warning.kind == WarningKind::NoTotalRow),
            "{fixture:?}"
        );
    }
}

#[test]
fn the_header_decides_field_positions() {
    for fixture in EVERY_GENERATION {
        let reader = ReportReader::open(DETAILS_NAME, fixture.transaction_details().as_bytes()).unwrap();
        let schema = reader.schema();
        let position = schema.field(Field::TransactionRequestId).unwrap();
        assert_eq!(schema.columns()[position], "transactionRequestId");
        let reversed = reversed_columns(fixture.transaction_details());
        let reader = ReportReader::open(DETAILS_NAME, reversed.as_bytes()).unwrap();
        assert_ne!(
            reader.schema().field(Field::TransactionRequestId),
            Some(position),
            "{fixture:?}"
        );
    }
}
