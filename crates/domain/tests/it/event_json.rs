//! The stored JSON form of every event is a contract: `schema/events.json`
//! holds one example of each, and this test fails when the code drifts.
//! Run with `UPDATE_SNAPSHOTS=1` to rewrite the file after a deliberate change
//! (and bump the event's schema version with an upcaster if old data changes shape).

use std::path::PathBuf;

use domain::{
    AnomalyAcknowledged, ChargebackOpened, ChargebackResolution, ChargebackResolved, DisputeId, EVENT_TYPES,
    EventDecodeError, OutcomeSource, PaymentCaptured, PaymentEvent, RECONCILIATION_EVENT_TYPES, ReconciledFile,
    ReconciliationEvent, ReconciliationFindingAcknowledged, ReconciliationFindingsRecorded, ReconciliationRecorded,
    RecordedFee, RecordedFinding, RecordedQuote, RecordedSettlement, RefundFailed, RefundId, RefundOutcomeAnomaly,
    RefundProcessing, RefundRejected, RefundRequested, RefundStatus, RefundSucceeded, ReportedAmount, ReportedOutcome,
    ResultCode, Upcaster,
};
use time::Duration;

use crate::scenario::*;

fn examples() -> Vec<PaymentEvent> {
    let at = T0 + Duration::hours(1);
    vec![
        card_payment(),
        PaymentEvent::PaymentCaptured(PaymentCaptured {
            payment_id: payment_id(),
            capture_id: Some(domain::CaptureId::parse("CAP-1").unwrap()),
            capture_amount: usd("10000"),
            capture_time: at,
        }),
        PaymentEvent::ChargebackOpened(ChargebackOpened {
            payment_id: payment_id(),
            dispute_id: DisputeId::parse("D-1").unwrap(),
            dispute_amount: usd("500"),
            opened_at: at,
        }),
        PaymentEvent::ChargebackResolved(ChargebackResolved {
            payment_id: payment_id(),
            dispute_id: DisputeId::parse("D-1").unwrap(),
            resolution: ChargebackResolution::MerchantWon,
            resolved_at: at,
        }),
        PaymentEvent::RefundRequested(RefundRequested {
            refund_request_id: refund_id("R-1"),
            payment_id: payment_id(),
            refund_amount: usd("2500"),
            refund_reason: Some("customer request".into()),
            requested_at: at,
        }),
        PaymentEvent::RefundRejected(RefundRejected {
            refund_request_id: refund_id("R-2"),
            payment_id: payment_id(),
            refund_amount: usd("99999"),
            refund_reason: None,
            result_code: ResultCode::RefundAmountExceed,
            result_message: "refundAmount.value: exceeds the refundable amount 75.00 USD".into(),
            rejected_at: at,
        }),
        PaymentEvent::RefundProcessing(RefundProcessing {
            refund_request_id: refund_id("R-1"),
            reason: "resultStatus U: UNKNOWN_EXCEPTION".into(),
            recorded_at: at,
        }),
        PaymentEvent::RefundSucceeded(RefundSucceeded {
            refund_request_id: refund_id("R-1"),
            refund_id: RefundId::parse("202601011234").unwrap(),
            refund_time: at,
            source: OutcomeSource::Inquiry,
        }),
        PaymentEvent::RefundFailed(RefundFailed {
            refund_request_id: refund_id("R-3"),
            result_code: ResultCode::Other("SOME_NEW_CODE".into()),
            result_message: "failed".into(),
            failed_at: at,
            source: OutcomeSource::RefundResponse,
        }),
        PaymentEvent::RefundOutcomeAnomaly(RefundOutcomeAnomaly {
            refund_request_id: refund_id("R-3"),
            recorded_status: RefundStatus::Failed,
            reported: ReportedOutcome::Success {
                refund_id: RefundId::parse("202601019999").unwrap(),
            },
            source: OutcomeSource::Notification,
            reported_at: at,
        }),
        PaymentEvent::AnomalyAcknowledged(AnomalyAcknowledged {
            refund_request_id: refund_id("R-3"),
            anomaly: 1,
            note: "Antom confirmed the failure by phone; their notification was wrong".into(),
            acknowledged_at: at + Duration::hours(2),
        }),
    ]
}

fn reconciliation_examples() -> Vec<ReconciliationEvent> {
    let at = T0 + Duration::days(3);
    let run_id = "3f2c8a6e-1b7d-4c1e-9a55-0d6b2f1e4c77".to_owned();
    vec![
        ReconciliationEvent::ReconciliationRecorded(ReconciliationRecorded {
            run_id: run_id.clone(),
            report_kind: "TRANSACTION_DETAILS".into(),
            files: vec![ReconciledFile {
                name: "transactionItems_20260304_000.csv".into(),
                report_kind: "TRANSACTION_DETAILS".into(),
                generation: "G3".into(),
                sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
                bytes: 1024,
                rows: 2,
                end_line: 4,
                warnings: vec!["unknown column storeId (first at line 1)".into()],
            }],
            period: Some("2026-03-04".into()),
            settlement_batch_id: None,
            ledger_position: 42,
            counts: [("MATCHED".to_owned(), 1), ("UNKNOWN_TO_LEDGER".to_owned(), 1)].into(),
            other_rows: [("PAYMENT".to_owned(), 3)].into(),
            findings_count: 2,
            reconciled_at: at,
        }),
        ReconciliationEvent::ReconciliationFindingsRecorded(ReconciliationFindingsRecorded {
            run_id: run_id.clone(),
            chunk: 0,
            findings: vec![
                RecordedFinding {
                    seq: 1,
                    kind: "MATCHED".into(),
                    file: Some("transactionItems_20260304_000.csv".into()),
                    line: Some(2),
                    refund_request_id: Some("R-1".into()),
                    refund_id: Some("202601011234".into()),
                    report_amount: Some(ReportedAmount {
                        currency: "USD".into(),
                        value: "-2500".into(),
                    }),
                    ledger_position: Some(7),
                    ledger_status: Some(RefundStatus::Succeeded),
                    ledger_amount: Some(usd("2500")),
                    report_status: Some("SUCCESS".into()),
                    settlement: None,
                    message: String::new(),
                },
                RecordedFinding {
                    seq: 2,
                    kind: "UNKNOWN_TO_LEDGER".into(),
                    file: Some("transactionItems_20260304_000.csv".into()),
                    line: Some(3),
                    refund_request_id: Some("R-DASHBOARD".into()),
                    refund_id: None,
                    report_amount: Some(ReportedAmount {
                        currency: "USD".into(),
                        value: "-100".into(),
                    }),
                    ledger_position: None,
                    ledger_status: None,
                    ledger_amount: None,
                    report_status: None,
                    settlement: None,
                    message: "a refund the ledger never asked for".into(),
                },
                // A settled row of a settlement batch: its settlement side, for the journal.
                RecordedFinding {
                    seq: 3,
                    kind: "MATCHED".into(),
                    file: Some("settlementItems_USD_2026030611000000001_000.csv".into()),
                    line: Some(3),
                    refund_request_id: Some("R-2".into()),
                    refund_id: Some("202601011235".into()),
                    report_amount: Some(ReportedAmount {
                        currency: "JPY".into(),
                        value: "-1200".into(),
                    }),
                    ledger_position: Some(9),
                    ledger_status: Some(RefundStatus::Succeeded),
                    ledger_amount: Some(domain::Money::parse("refundAmount", "JPY", "1200").unwrap()),
                    report_status: None,
                    settlement: Some(RecordedSettlement {
                        amount: ReportedAmount {
                            currency: "USD".into(),
                            value: "-802".into(),
                        },
                        converted: Some(ReportedAmount {
                            currency: "USD".into(),
                            value: "-792".into(),
                        }),
                        fees: vec![RecordedFee {
                            kind: "paymentMethodFee".into(),
                            amount: ReportedAmount {
                                currency: "USD".into(),
                                value: "-10".into(),
                            },
                        }],
                        quote: Some(RecordedQuote {
                            base: "JPY".into(),
                            quote: "USD".into(),
                            price: "0.0066".into(),
                        }),
                        date: Some("2026-03-06".into()),
                    }),
                    message: String::new(),
                },
            ],
        }),
        ReconciliationEvent::ReconciliationFindingAcknowledged(ReconciliationFindingAcknowledged {
            run_id,
            seq: 2,
            note: "made by hand in Antom Dashboard, ticket FIN-12".into(),
            acknowledged_at: at + Duration::hours(2),
        }),
    ]
}

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schema/events.json")
}

#[test]
fn stored_json_matches_the_checked_in_contract() {
    let events = examples();
    assert_eq!(events.len(), EVENT_TYPES.len(), "one example per event type");
    let documented: Vec<serde_json::Value> = events
        .iter()
        .map(|event| {
            let mut value = serde_json::to_value(event).unwrap();
            value["schemaVersion"] = event.schema_version().into();
            value
        })
        .chain(reconciliation_examples().iter().map(|event| {
            let mut value = serde_json::to_value(event).unwrap();
            value["schemaVersion"] = event.schema_version().into();
            value
        }))
        .collect();
    let text = serde_json::to_string_pretty(&serde_json::json!({
        "description": "The stored JSON form of every refund-ledger event (type, schemaVersion, data). Generated by crates/domain/tests/it/event_json.rs; UPDATE_SNAPSHOTS=1 rewrites it.",
        "events": documented,
    }))
    .unwrap()
        + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(snapshot_path(), &text).unwrap();
    }
    let checked_in =
        std::fs::read_to_string(snapshot_path()).expect("schema/events.json is missing: run with UPDATE_SNAPSHOTS=1");
    assert_eq!(
        checked_in, text,
        "the event JSON form changed: review, then UPDATE_SNAPSHOTS=1"
    );
    let reconciliation = reconciliation_examples();
    assert_eq!(
        reconciliation.len(),
        RECONCILIATION_EVENT_TYPES.len(),
        "one example per event type"
    );
    for event in &reconciliation {
        let stored = event.to_stored();
        assert_eq!(
            &ReconciliationEvent::from_stored(stored.event_type, stored.schema_version, &stored.data).unwrap(),
            event
        );
    }
    for event in &events {
        let stored = event.to_stored();
        assert_eq!(
            &PaymentEvent::from_stored(stored.event_type, stored.schema_version, &stored.data, &[]).unwrap(),
            event
        );
    }
}

/// A finding recorded before `reportStatus` and `settlement` existed decodes with neither.
#[test]
fn findings_recorded_before_the_settlement_fields_still_decode() {
    let old = br#"{"runId":"r","chunk":0,"findings":[{"seq":1,"kind":"MATCHED","file":"f.csv","line":2,
        "refundRequestId":"R-1","reportAmount":{"currency":"USD","value":"-2500"},"ledgerPosition":7,
        "ledgerStatus":"SUCCEEDED","ledgerAmount":{"currency":"USD","value":"2500"}}]}"#;
    let event = ReconciliationEvent::from_stored("ReconciliationFindingsRecorded", 1, old).unwrap();
    let ReconciliationEvent::ReconciliationFindingsRecorded(chunk) = event else {
        panic!("wrong type")
    };
    assert_eq!(chunk.findings[0].report_status, None);
    assert_eq!(chunk.findings[0].settlement, None);
    assert_eq!(chunk.findings[0].line, Some(2));
}

/// A pre-release form of RefundRequested held the amount as `amount` in major units.
struct RefundRequestedV0;

impl Upcaster for RefundRequestedV0 {
    fn event_type(&self) -> &str {
        "RefundRequested"
    }
    fn source_version(&self) -> u32 {
        0
    }
    fn upcast(&self, mut data: serde_json::Value) -> Result<serde_json::Value, String> {
        let amount = data
            .as_object_mut()
            .and_then(|o| o.remove("amount"))
            .ok_or("amount is missing")?;
        let value = amount["value"].as_str().ok_or("amount.value is missing")?;
        let minor = value.replace('.', "");
        data["refundAmount"] =
            serde_json::json!({ "currency": amount["currency"], "value": minor.trim_start_matches('0') });
        Ok(data)
    }
}

#[test]
fn old_versions_load_through_upcasters() {
    let v0 = br#"{"refundRequestId":"R-1","paymentId":"PAY-1","amount":{"currency":"USD","value":"25.00"},"requestedAt":"2026-01-01T01:00:00Z"}"#;
    let event = PaymentEvent::from_stored("RefundRequested", 0, v0, &[&RefundRequestedV0]).unwrap();
    let PaymentEvent::RefundRequested(requested) = event else {
        panic!("wrong type")
    };
    assert_eq!(requested.refund_amount, usd("2500"));
    assert_eq!(
        PaymentEvent::from_stored("RefundRequested", 0, v0, &[]),
        Err(EventDecodeError::MissingUpcaster {
            event_type: "RefundRequested".into(),
            version: 0
        })
    );
    assert!(matches!(
        PaymentEvent::from_stored("RefundRequested", 2, b"{}", &[]),
        Err(EventDecodeError::FutureVersion {
            version: 2,
            current: 1,
            ..
        })
    ));
    assert!(matches!(
        PaymentEvent::from_stored("Nope", 1, b"{}", &[]),
        Err(EventDecodeError::UnknownType { .. })
    ));
    assert!(matches!(
        PaymentEvent::from_stored("RefundRequested", 1, b"{\"refundRequestId\":\"R\"}", &[]),
        Err(EventDecodeError::Malformed { .. })
    ));
}
