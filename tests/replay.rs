//! `refund-ledger replay` on both stores: a log of thousands of payments with every outcome kind (written
//! straight to the store, then more through the running service) is projected by the server; replay
//! rebuilds it with the same folds, finds the read models equal, gives byte-identical output every run,
//! prints a point-in-time digest for `--to-position` / `--as-of`, and reports every row edited behind the
//! ledger's back.

use domain::{
    ChargebackOpened, ChargebackResolution, ChargebackResolved, Currency, Money, OutcomeSource, PaymentCaptured,
    PaymentEvent, PaymentId, PaymentMethodType, PaymentRecorded, RefundFailed, RefundId, RefundOutcomeAnomaly,
    RefundProcessing, RefundRejected, RefundRequestId, RefundRequested, RefundStatus, RefundSucceeded, ReportedOutcome,
    ResultCode,
};
use eventlog::{EventStore, ExpectedRevision, NewEvent};
use testkit::log::{new_event, payment_stream};
use time::OffsetDateTime;

use crate::audit_support::{AuditServer, Log, payment_with_refunds, run, stdout};

/// Payments written straight to the store.
pub(crate) const PAYMENTS: u64 = 2_000;

/// The events of payment `index`: one of seven outcome kinds, in turn.
fn payment_events(index: u64, time: OffsetDateTime) -> (PaymentId, Vec<NewEvent>) {
    let currency = Currency::parse("c", ["USD", "EUR", "JPY"][(index % 3) as usize]).unwrap();
    let money = |minor| Money::from_minor_units("m", currency, minor).unwrap();
    let payment_id = PaymentId::parse(&format!("MANY-{index}")).unwrap();
    let refund_request_id = RefundRequestId::parse(&format!("MANY-{index}-R")).unwrap();
    let kind = index % 7;
    let mut events = vec![PaymentEvent::PaymentRecorded(PaymentRecorded {
        payment_id: payment_id.clone(),
        payment_amount: money(10_000),
        payment_method_type: PaymentMethodType::parse(if kind == 5 { "CARD" } else { "ALIPAY_CN" }).unwrap(),
        payment_time: time,
        capture_required: kind == 5,
    })];
    let requested = PaymentEvent::RefundRequested(RefundRequested {
        refund_request_id: refund_request_id.clone(),
        payment_id: payment_id.clone(),
        refund_amount: money(1_000 + index),
        refund_reason: Some("customer, \"changed\" mind".to_owned()),
        requested_at: time,
    });
    let succeeded = PaymentEvent::RefundSucceeded(RefundSucceeded {
        refund_request_id: refund_request_id.clone(),
        refund_id: RefundId::parse(&format!("A-{index}")).unwrap(),
        refund_time: time,
        source: OutcomeSource::Notification,
    });
    match kind {
        0 => events.extend([requested, succeeded]),
        1 => events.extend([
            requested,
            PaymentEvent::RefundFailed(RefundFailed {
                refund_request_id,
                result_code: ResultCode::parse("REFUND_FAIL"),
                result_message: "declined".to_owned(),
                failed_at: time,
                source: OutcomeSource::Inquiry,
            }),
        ]),
        2 => events.extend([
            requested,
            PaymentEvent::RefundProcessing(RefundProcessing {
                refund_request_id,
                reason: "timeout".to_owned(),
                recorded_at: time,
            }),
        ]),
        3 => events.push(PaymentEvent::RefundRejected(RefundRejected {
            refund_request_id,
            payment_id: payment_id.clone(),
            refund_amount: money(20_000),
            refund_reason: None,
            result_code: ResultCode::parse("REFUND_AMOUNT_EXCEED"),
            result_message: "more than refundable".to_owned(),
            rejected_at: time,
        })),
        4 => events.extend([
            requested,
            succeeded,
            PaymentEvent::RefundOutcomeAnomaly(RefundOutcomeAnomaly {
                refund_request_id,
                recorded_status: RefundStatus::Succeeded,
                reported: ReportedOutcome::Fail {
                    result_code: ResultCode::parse("REFUND_FAIL"),
                },
                source: OutcomeSource::Notification,
                reported_at: time,
            }),
        ]),
        5 => events.extend([
            PaymentEvent::PaymentCaptured(PaymentCaptured {
                payment_id: payment_id.clone(),
                capture_id: None,
                capture_amount: money(10_000),
                capture_time: time,
            }),
            requested,
            succeeded,
        ]),
        _ => {
            let dispute_id = domain::DisputeId::parse(&format!("D-{index}")).unwrap();
            events.extend([
                PaymentEvent::ChargebackOpened(ChargebackOpened {
                    payment_id: payment_id.clone(),
                    dispute_id: dispute_id.clone(),
                    dispute_amount: money(3_000),
                    opened_at: time,
                }),
                PaymentEvent::ChargebackResolved(ChargebackResolved {
                    payment_id: payment_id.clone(),
                    dispute_id,
                    resolution: ChargebackResolution::CustomerWon,
                    resolved_at: time,
                }),
                requested,
            ]);
        }
    }
    (
        payment_id,
        events.iter().map(|event| new_event(event, "import")).collect(),
    )
}

pub(crate) async fn write_many(store: &dyn EventStore) {
    let time = OffsetDateTime::from_unix_timestamp(1_793_491_200).unwrap();
    for index in 0..PAYMENTS {
        let (payment_id, events) = payment_events(index, time);
        let stream = payment_stream(&payment_id);
        store.append(&stream, ExpectedRevision::NoStream, events).await.unwrap();
    }
}

fn replay_tests(log: &Log) {
    log.write_with(|store| async move { write_many(store.as_ref()).await });
    let server = AuditServer::start(&log.url(), &log.folder());
    payment_with_refunds(&server, "LIVE-1", "USD", &["100", "200", "300", "400"]);
    payment_with_refunds(&server, "LIVE-2", "EUR", &["999"]);
    server.wait_projected();
    server.stop();

    let replayed = run(log, &["replay"]);
    assert_eq!(replayed.status.code(), Some(0), "{replayed:?}");
    let text = stdout(&replayed);
    assert!(text.contains(&format!("rebuilt {} payments", PAYMENTS + 2)), "{text}");
    assert!(text.contains("replay: OK, the read models match the log"), "{text}");
    assert_eq!(
        run(log, &["replay"]).stdout,
        replayed.stdout,
        "byte-identical every run"
    );

    let early = run(log, &["replay", "--to-position", "10"]);
    assert_eq!(early.status.code(), Some(0), "{early:?}");
    assert!(stdout(&early).contains("from positions 1..=10 "), "{early:?}");
    assert_eq!(run(log, &["replay", "--to-position", "10"]).stdout, early.stdout);
    let digest = |output: &std::process::Output| {
        stdout(output)
            .lines()
            .find_map(|line| line.strip_prefix("replay: state digest ").map(str::to_owned))
            .unwrap()
    };
    assert_ne!(digest(&early), digest(&replayed));
    let before = run(log, &["replay", "--as-of", "2000-01-01"]);
    assert!(stdout(&before).contains("from positions 1..=0 "), "{before:?}");
    let now = run(log, &["replay", "--as-of", "2100-01-01"]);
    assert!(
        stdout(&now).contains(&format!("rebuilt {} payments", PAYMENTS + 2)),
        "{now:?}"
    );
    assert_eq!(
        run(log, &["replay", "--to-position", "3", "--as-of", "2100-01-01"])
            .status
            .code(),
        Some(2)
    );

    log.execute_on_read_models(
        "UPDATE projection_payments SET refunded = refunded + 1 WHERE payment_id = 'MANY-7';
         DELETE FROM projection_refunds WHERE refund_request_id = 'MANY-8-R';
         UPDATE projection_anomalies SET source = 'INQUIRY' WHERE refund_request_id = 'MANY-4-R';",
    );
    let broken = run(log, &["replay"]);
    assert_eq!(broken.status.code(), Some(1), "{broken:?}");
    let text = stdout(&broken);
    assert!(
        text.contains("difference: payment MANY-7\n  live:    refunded="),
        "{text}"
    );
    assert!(
        text.contains("difference: refund MANY-8-R\n  live:    (missing)"),
        "{text}"
    );
    assert!(
        text.contains("\n  live:    source=INQUIRY\n  rebuilt: source=NOTIFICATION\n"),
        "{text}"
    );
    assert!(text.contains("replay: FAILED, 3 differences"), "{text}");
}

#[test]
fn replay_matches_the_read_models_of_a_large_log_on_sqlite() {
    replay_tests(&Log::sqlite());
}

#[test]
fn replay_matches_the_read_models_of_a_large_log_on_postgres() {
    replay_tests(&Log::postgres());
}
