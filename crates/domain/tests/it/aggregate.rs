//! One scenario per rule of docs/refund-rules.md and docs/domain.md.

use domain::{
    ANOMALY_ALREADY_ACKNOWLEDGED, ANOMALY_NOT_FOUND, ANOMALY_NOTE_CHARS_MAX, AnomalyAcknowledged, ChargebackOpened,
    ChargebackResolution, ChargebackResolved, DisputeId, MethodPolicy, OutcomeSource, PaymentCaptured, PaymentCommand,
    PaymentEvent, PaymentMethodType, Policy, RefundFailed, RefundId, RefundOutcomeAnomaly, RefundProcessing,
    RefundRequested, RefundStatus, RefundSucceeded, ReportedOutcome, ResultCode,
};
use time::Duration;

use crate::scenario::*;

fn requested(id: &str, minor_units: &str) -> PaymentEvent {
    PaymentEvent::RefundRequested(RefundRequested {
        refund_request_id: refund_id(id),
        payment_id: payment_id(),
        refund_amount: usd(minor_units),
        refund_reason: None,
        requested_at: T0 + Duration::hours(1),
    })
}

fn succeeded(id: &str) -> PaymentEvent {
    PaymentEvent::RefundSucceeded(RefundSucceeded {
        refund_request_id: refund_id(id),
        refund_id: RefundId::parse(&format!("ANTOM-{id}")).unwrap(),
        refund_time: T0 + Duration::hours(2),
        source: OutcomeSource::RefundResponse,
    })
}

fn failed(id: &str) -> PaymentEvent {
    PaymentEvent::RefundFailed(RefundFailed {
        refund_request_id: refund_id(id),
        result_code: ResultCode::MerchantBalanceNotEnough,
        result_message: "balance".into(),
        failed_at: T0 + Duration::hours(2),
        source: OutcomeSource::Inquiry,
    })
}

fn captured(minor_units: &str) -> PaymentEvent {
    PaymentEvent::PaymentCaptured(PaymentCaptured {
        payment_id: payment_id(),
        capture_id: None,
        capture_amount: usd(minor_units),
        capture_time: T0 + Duration::minutes(5),
    })
}

fn chargeback_opened() -> PaymentEvent {
    PaymentEvent::ChargebackOpened(ChargebackOpened {
        payment_id: payment_id(),
        dispute_id: DisputeId::parse("D-1").unwrap(),
        dispute_amount: usd("3000"),
        opened_at: T0 + Duration::hours(3),
    })
}

fn chargeback_resolved(resolution: ChargebackResolution) -> PaymentEvent {
    PaymentEvent::ChargebackResolved(ChargebackResolved {
        payment_id: payment_id(),
        dispute_id: DisputeId::parse("D-1").unwrap(),
        resolution,
        resolved_at: T0 + Duration::hours(4),
    })
}

fn confirm_succeeded(id: &str, antom_id: &str) -> PaymentCommand {
    PaymentCommand::ConfirmRefundSucceeded {
        refund_request_id: refund_id(id),
        refund_id: RefundId::parse(antom_id).unwrap(),
        refund_time: T0 + Duration::hours(2),
        source: OutcomeSource::Notification,
    }
}

fn confirm_failed(id: &str) -> PaymentCommand {
    PaymentCommand::ConfirmRefundFailed {
        refund_request_id: refund_id(id),
        result_code: ResultCode::ProcessFail,
        result_message: "failed".into(),
        source: OutcomeSource::Notification,
    }
}

#[test]
fn a_refund_within_the_rules_is_requested_and_reserved() {
    let then = given(vec![wallet_payment()]).when(request_refund("R1", "2500"));
    let now = then.now();
    then.then_expect(vec![PaymentEvent::RefundRequested(RefundRequested {
        refund_request_id: refund_id("R1"),
        payment_id: payment_id(),
        refund_amount: usd("2500"),
        refund_reason: None,
        requested_at: now,
    })]);
}

#[test]
fn unknown_payment_is_order_not_exist_and_records_nothing() {
    given(vec![])
        .when(request_refund("R1", "100"))
        .then_reject(ResultCode::OrderNotExist);
}

#[test]
fn other_currency_is_currency_not_support() {
    let command = PaymentCommand::RequestRefund {
        refund_request_id: refund_id("R1"),
        payment_id: payment_id(),
        refund_amount: domain::Money::parse("a", "EUR", "100").unwrap(),
        refund_reason: None,
    };
    given(vec![wallet_payment()])
        .when(command)
        .then_record_rejection(ResultCode::CurrencyNotSupport);
}

#[test]
fn above_refundable_is_refund_amount_exceed() {
    given(vec![wallet_payment()])
        .when(request_refund("R1", "10001"))
        .then_record_rejection(ResultCode::RefundAmountExceed);
    given(vec![wallet_payment(), requested("R1", "6000")])
        .when(request_refund("R2", "4001"))
        .then_record_rejection(ResultCode::RefundAmountExceed);
    given(vec![wallet_payment(), requested("R1", "6000")])
        .when(request_refund("R2", "4000"))
        .then_refund_requested();
}

#[test]
fn a_failed_refund_releases_its_reservation() {
    given(vec![wallet_payment(), requested("R1", "6000"), failed("R1")])
        .when(request_refund("R2", "10000"))
        .then_refund_requested();
}

#[test]
fn succeeded_refunds_stay_counted() {
    given(vec![wallet_payment(), requested("R1", "6000"), succeeded("R1")])
        .when(request_refund("R2", "4001"))
        .then_record_rejection(ResultCode::RefundAmountExceed);
}

#[test]
fn below_the_minimum_is_refund_amount_exceed() {
    given(vec![wallet_payment()])
        .when(request_refund("R1", "0"))
        .then_record_rejection(ResultCode::RefundAmountExceed);
    let mut policy = Policy::default();
    policy
        .default
        .minimum_refund_minor_units
        .insert("USD".parse().unwrap(), 100);
    given(vec![wallet_payment()])
        .with_policy(policy.clone())
        .when(request_refund("R1", "99"))
        .then_record_rejection(ResultCode::RefundAmountExceed);
    given(vec![wallet_payment()])
        .with_policy(policy)
        .when(request_refund("R1", "100"))
        .then_refund_requested();
}

#[test]
fn an_uncaptured_card_payment_is_order_status_invalid() {
    given(vec![card_payment()])
        .when(request_refund("R1", "100"))
        .then_record_rejection(ResultCode::OrderStatusInvalid);
}

#[test]
fn only_captured_money_is_refundable() {
    given(vec![card_payment(), captured("5000")])
        .when(request_refund("R1", "5001"))
        .then_record_rejection(ResultCode::RefundAmountExceed);
    given(vec![card_payment(), captured("5000")])
        .when(request_refund("R1", "5000"))
        .then_refund_requested();
}

#[test]
fn an_open_chargeback_is_order_status_invalid() {
    given(vec![wallet_payment(), chargeback_opened()])
        .when(request_refund("R1", "100"))
        .then_record_rejection(ResultCode::OrderStatusInvalid);
}

#[test]
fn a_chargeback_won_by_the_merchant_allows_refunds_again() {
    given(vec![
        wallet_payment(),
        chargeback_opened(),
        chargeback_resolved(ChargebackResolution::MerchantWon),
    ])
    .when(request_refund("R1", "10000"))
    .then_refund_requested();
}

#[test]
fn a_chargeback_won_by_the_customer_is_no_longer_refundable() {
    let events = vec![
        wallet_payment(),
        chargeback_opened(),
        chargeback_resolved(ChargebackResolution::CustomerWon),
    ];
    given(events.clone())
        .when(request_refund("R1", "7001"))
        .then_record_rejection(ResultCode::RefundAmountExceed);
    given(events).when(request_refund("R1", "7000")).then_refund_requested();
}

#[test]
fn outside_the_window_is_refund_window_exceed() {
    let late = T0 + Duration::days(i64::from(domain::REFUND_WINDOW_DAYS_DEFAULT)) + Duration::seconds(1);
    given(vec![wallet_payment()])
        .at(late)
        .when(request_refund("R1", "100"))
        .then_record_rejection(ResultCode::RefundWindowExceed);
    let last_moment = T0 + Duration::days(i64::from(domain::REFUND_WINDOW_DAYS_DEFAULT));
    given(vec![wallet_payment()])
        .at(last_moment)
        .when(request_refund("R1", "100"))
        .then_refund_requested();
}

#[test]
fn method_rules_partial_multiple_and_unsupported() {
    let strict = MethodPolicy {
        partial_refund_allowed: false,
        multiple_refunds_allowed: false,
        ..MethodPolicy::default()
    };
    let policy = Policy {
        default: strict,
        ..Policy::default()
    };
    given(vec![wallet_payment()])
        .with_policy(policy.clone())
        .when(request_refund("R1", "5000"))
        .then_record_rejection(ResultCode::PartialRefundNotSupported);
    given(vec![wallet_payment(), requested("R1", "10000")])
        .with_policy(policy.clone())
        .when(request_refund("R2", "10000"))
        .then_record_rejection(ResultCode::MultipleRefundsNotSupported);
    given(vec![wallet_payment(), requested("R1", "10000"), failed("R1")])
        .with_policy(policy)
        .when(request_refund("R2", "10000"))
        .then_refund_requested();
    let unsupported = Policy {
        default: MethodPolicy {
            refund_supported: false,
            ..MethodPolicy::default()
        },
        ..Policy::default()
    };
    given(vec![wallet_payment()])
        .with_policy(unsupported)
        .when(request_refund("R1", "100"))
        .then_record_rejection(ResultCode::RefundNotSupported);
}

#[test]
fn the_same_request_again_is_a_no_op() {
    given(vec![wallet_payment(), requested("R1", "2500")])
        .when(request_refund("R1", "2500"))
        .then_nothing();
    given(vec![wallet_payment(), requested("R1", "2500"), succeeded("R1")])
        .when(request_refund("R1", "2500"))
        .then_nothing();
}

#[test]
fn the_same_id_with_other_content_is_repeat_req_inconsistent() {
    given(vec![wallet_payment(), requested("R1", "2500")])
        .when(request_refund("R1", "2600"))
        .then_reject(ResultCode::RepeatReqInconsistent);
    let with_reason = PaymentCommand::RequestRefund {
        refund_request_id: refund_id("R1"),
        payment_id: payment_id(),
        refund_amount: usd("2500"),
        refund_reason: Some("other".into()),
    };
    given(vec![wallet_payment(), requested("R1", "2500")])
        .when(with_reason)
        .then_reject(ResultCode::RepeatReqInconsistent);
}

#[test]
fn a_rejected_request_is_answered_the_same_on_retry() {
    let then = given(vec![wallet_payment()]).when(request_refund("R1", "20000"));
    let rejection = then.result().unwrap();
    let mut history = vec![wallet_payment()];
    history.extend(rejection);
    given(history).when(request_refund("R1", "20000")).then_nothing();
}

#[test]
fn outcomes_move_a_refund_once() {
    let open = vec![wallet_payment(), requested("R1", "2500")];
    let processing = PaymentCommand::MarkRefundProcessing {
        refund_request_id: refund_id("R1"),
        reason: "timeout".into(),
    };
    let then = given(open.clone()).when(processing.clone());
    let now = then.now();
    then.then_expect(vec![PaymentEvent::RefundProcessing(RefundProcessing {
        refund_request_id: refund_id("R1"),
        reason: "timeout".into(),
        recorded_at: now,
    })]);
    let mut after_processing = open.clone();
    after_processing.push(PaymentEvent::RefundProcessing(RefundProcessing {
        refund_request_id: refund_id("R1"),
        reason: "timeout".into(),
        recorded_at: now,
    }));
    given(after_processing.clone()).when(processing).then_nothing();
    let then = given(after_processing).when(confirm_succeeded("R1", "ANTOM-R1"));
    assert!(matches!(
        then.result().unwrap().as_slice(),
        [PaymentEvent::RefundSucceeded(_)]
    ));
    let then = given(open).when(confirm_failed("R1"));
    assert!(matches!(
        then.result().unwrap().as_slice(),
        [PaymentEvent::RefundFailed(_)]
    ));
}

#[test]
fn the_same_final_outcome_twice_is_a_no_op() {
    given(vec![wallet_payment(), requested("R1", "2500"), succeeded("R1")])
        .when(confirm_succeeded("R1", "ANTOM-R1"))
        .then_nothing();
    given(vec![wallet_payment(), requested("R1", "2500"), failed("R1")])
        .when(confirm_failed("R1"))
        .then_nothing();
    let processing = PaymentCommand::MarkRefundProcessing {
        refund_request_id: refund_id("R1"),
        reason: "late U".into(),
    };
    given(vec![wallet_payment(), requested("R1", "2500"), succeeded("R1")])
        .when(processing)
        .then_nothing();
}

/// The anomaly of a notification saying SUCCESS (ANTOM-R1) for R1, which the ledger holds as FAILED.
fn success_reported_for_failed_r1(reported_at: time::OffsetDateTime) -> PaymentEvent {
    PaymentEvent::RefundOutcomeAnomaly(RefundOutcomeAnomaly {
        refund_request_id: refund_id("R1"),
        recorded_status: RefundStatus::Failed,
        reported: ReportedOutcome::Success {
            refund_id: RefundId::parse("ANTOM-R1").unwrap(),
        },
        source: OutcomeSource::Notification,
        reported_at,
    })
}

#[test]
fn a_contradicting_outcome_is_an_anomaly_not_a_flip() {
    let failed_history = vec![wallet_payment(), requested("R1", "2500"), failed("R1")];
    let then = given(failed_history.clone()).when(confirm_succeeded("R1", "ANTOM-R1"));
    let now = then.now();
    let anomaly = success_reported_for_failed_r1(now);
    then.then_expect(vec![anomaly.clone()]);
    let mut with_anomaly = failed_history;
    with_anomaly.push(anomaly);
    // The same contradiction again is recorded once only.
    given(with_anomaly.clone())
        .when(confirm_succeeded("R1", "ANTOM-R1"))
        .then_nothing();
    let state = crate::replay(&with_anomaly);
    let refund = state.refund(&refund_id("R1")).unwrap();
    assert_eq!(refund.status, RefundStatus::Failed);
    assert_eq!(state.state().unwrap().refunded.minor_units(), 0);

    let then = given(vec![wallet_payment(), requested("R1", "2500"), succeeded("R1")]).when(confirm_failed("R1"));
    assert!(matches!(
        then.result().unwrap().as_slice(),
        [PaymentEvent::RefundOutcomeAnomaly(_)]
    ));
    let then =
        given(vec![wallet_payment(), requested("R1", "2500"), succeeded("R1")]).when(confirm_succeeded("R1", "OTHER"));
    assert!(matches!(
        then.result().unwrap().as_slice(),
        [PaymentEvent::RefundOutcomeAnomaly(_)]
    ));
}

#[test]
fn an_anomaly_is_acknowledged_once_with_a_note() {
    let anomaly = success_reported_for_failed_r1(T0 + Duration::hours(3));
    let history = vec![wallet_payment(), requested("R1", "2500"), failed("R1"), anomaly];
    let acknowledge = |anomaly: u32, note: &str| PaymentCommand::AcknowledgeAnomaly {
        refund_request_id: refund_id("R1"),
        anomaly,
        note: note.into(),
    };
    let then = given(history.clone()).when(acknowledge(1, "  checked with Antom  "));
    let now = then.now();
    let acknowledged = PaymentEvent::AnomalyAcknowledged(AnomalyAcknowledged {
        refund_request_id: refund_id("R1"),
        anomaly: 1,
        note: "checked with Antom".into(),
        acknowledged_at: now,
    });
    then.then_expect(vec![acknowledged.clone()]);

    let not_found = ResultCode::parse(ANOMALY_NOT_FOUND);
    given(history.clone())
        .when(acknowledge(2, "no such anomaly"))
        .then_reject(not_found.clone());
    given(history.clone())
        .when(acknowledge(0, "anomalies count from 1"))
        .then_reject(not_found.clone());
    given(history.clone())
        .when(PaymentCommand::AcknowledgeAnomaly {
            refund_request_id: refund_id("R2"),
            anomaly: 1,
            note: "unknown refund".into(),
        })
        .then_reject(not_found);
    given(history.clone())
        .when(acknowledge(1, "   "))
        .then_reject(ResultCode::ParamIllegal);
    given(history.clone())
        .when(acknowledge(1, &"x".repeat(ANOMALY_NOTE_CHARS_MAX + 1)))
        .then_reject(ResultCode::ParamIllegal);

    let mut acknowledged_history = history;
    acknowledged_history.push(acknowledged);
    given(acknowledged_history.clone())
        .when(acknowledge(1, "again"))
        .then_reject(ResultCode::parse(ANOMALY_ALREADY_ACKNOWLEDGED));
    let state = crate::replay(&acknowledged_history);
    let refund = state.refund(&refund_id("R1")).unwrap();
    assert_eq!(
        refund.status,
        RefundStatus::Failed,
        "an acknowledgement changes no outcome"
    );
    assert!(refund.anomalies_acknowledged.contains(&1));
}

#[test]
fn an_outcome_for_an_unknown_refund_is_refused() {
    given(vec![wallet_payment()])
        .when(confirm_failed("NOPE"))
        .then_reject(ResultCode::OrderNotExist);
}

#[test]
fn recording_a_payment_is_idempotent() {
    let record = PaymentCommand::RecordPayment {
        payment_id: payment_id(),
        payment_amount: usd("10000"),
        payment_method_type: PaymentMethodType::parse("ALIPAY_CN").unwrap(),
        payment_time: T0,
        capture_required: None,
    };
    given(vec![]).when(record.clone()).then_expect(vec![wallet_payment()]);
    given(vec![wallet_payment()]).when(record).then_nothing();
    let other = PaymentCommand::RecordPayment {
        payment_id: payment_id(),
        payment_amount: usd("10001"),
        payment_method_type: PaymentMethodType::parse("ALIPAY_CN").unwrap(),
        payment_time: T0,
        capture_required: None,
    };
    given(vec![wallet_payment()])
        .when(other)
        .then_reject(ResultCode::RepeatReqInconsistent);
}

#[test]
fn card_payments_need_capture_by_policy() {
    let record = PaymentCommand::RecordPayment {
        payment_id: payment_id(),
        payment_amount: usd("10000"),
        payment_method_type: PaymentMethodType::parse("CARD").unwrap(),
        payment_time: T0,
        capture_required: None,
    };
    given(vec![]).when(record).then_expect(vec![card_payment()]);
}

#[test]
fn bad_payments_and_captures_are_refused() {
    let zero = PaymentCommand::RecordPayment {
        payment_id: payment_id(),
        payment_amount: usd("0"),
        payment_method_type: PaymentMethodType::parse("CARD").unwrap(),
        payment_time: T0,
        capture_required: None,
    };
    given(vec![]).when(zero).then_reject(ResultCode::ParamIllegal);
    let future = PaymentCommand::RecordPayment {
        payment_id: payment_id(),
        payment_amount: usd("100"),
        payment_method_type: PaymentMethodType::parse("CARD").unwrap(),
        payment_time: T0 + Duration::days(2),
        capture_required: None,
    };
    given(vec![]).when(future).then_reject(ResultCode::ParamIllegal);
    let capture = |minor: &str| PaymentCommand::CapturePayment {
        payment_id: payment_id(),
        capture_id: None,
        capture_amount: usd(minor),
        capture_time: T0 + Duration::minutes(5),
    };
    given(vec![card_payment()])
        .when(capture("10001"))
        .then_reject(ResultCode::ParamIllegal);
    given(vec![card_payment()])
        .when(capture("5000"))
        .then_expect(vec![captured("5000")]);
    given(vec![card_payment(), captured("5000")])
        .when(capture("5000"))
        .then_nothing();
    given(vec![card_payment(), captured("5000")])
        .when(capture("6000"))
        .then_reject(ResultCode::OrderStatusInvalid);
    given(vec![wallet_payment()])
        .when(capture("5000"))
        .then_reject(ResultCode::OrderStatusInvalid);
}

#[test]
fn chargebacks_are_idempotent() {
    let open = PaymentCommand::OpenChargeback {
        payment_id: payment_id(),
        dispute_id: DisputeId::parse("D-1").unwrap(),
        dispute_amount: usd("3000"),
    };
    given(vec![wallet_payment(), chargeback_opened()])
        .when(open)
        .then_nothing();
    let resolve = |resolution| PaymentCommand::ResolveChargeback {
        payment_id: payment_id(),
        dispute_id: DisputeId::parse("D-1").unwrap(),
        resolution,
    };
    let resolved = vec![
        wallet_payment(),
        chargeback_opened(),
        chargeback_resolved(ChargebackResolution::MerchantWon),
    ];
    given(resolved.clone())
        .when(resolve(ChargebackResolution::MerchantWon))
        .then_nothing();
    given(resolved)
        .when(resolve(ChargebackResolution::CustomerWon))
        .then_reject(ResultCode::RepeatReqInconsistent);
    given(vec![wallet_payment()])
        .when(resolve(ChargebackResolution::Cancelled))
        .then_reject(ResultCode::OrderNotExist);
}

#[test]
fn balances_follow_the_events() {
    let history = vec![
        wallet_payment(),
        requested("R1", "1000"),
        requested("R2", "2000"),
        requested("R3", "3000"),
        succeeded("R1"),
        failed("R2"),
    ];
    let payment = crate::replay(&history);
    let state = payment.state().unwrap();
    assert_eq!(state.refunded.minor_units(), 1000);
    assert_eq!(state.pending.minor_units(), 3000);
    assert_eq!(state.refundable().minor_units(), 6000);
    assert_eq!(payment.refund(&refund_id("R2")).unwrap().status, RefundStatus::Failed);
}

#[test]
fn a_reversal_reported_by_reconciliation_is_an_anomaly_once_and_the_refund_stays_succeeded() {
    let history = vec![wallet_payment(), requested("R1", "2500"), succeeded("R1")];
    let reverse = || PaymentCommand::ReportRefundReversed {
        refund_request_id: refund_id("R1"),
        source: OutcomeSource::Reconciliation,
    };
    let then = given(history.clone()).when(reverse());
    let anomaly = PaymentEvent::RefundOutcomeAnomaly(RefundOutcomeAnomaly {
        refund_request_id: refund_id("R1"),
        recorded_status: RefundStatus::Succeeded,
        reported: ReportedOutcome::Reversed,
        source: OutcomeSource::Reconciliation,
        reported_at: then.now(),
    });
    then.then_expect(vec![anomaly.clone()]);
    let mut with_anomaly = history;
    with_anomaly.push(anomaly);
    given(with_anomaly.clone()).when(reverse()).then_nothing();
    let state = crate::replay(&with_anomaly);
    assert_eq!(state.refund(&refund_id("R1")).unwrap().status, RefundStatus::Succeeded);
    assert_eq!(state.state().unwrap().refunded.minor_units(), 2500);
    let unknown = given(vec![wallet_payment()]).when(PaymentCommand::ReportRefundReversed {
        refund_request_id: refund_id("R9"),
        source: OutcomeSource::Reconciliation,
    });
    assert!(
        unknown.result().is_err(),
        "a reversal of a refund the payment does not have is refused"
    );
}

#[test]
fn a_refund_reported_refunded_without_its_id_is_an_anomaly_only_against_failed_or_rejected() {
    let refunded = || PaymentCommand::ReportRefunded {
        refund_request_id: refund_id("R1"),
        source: OutcomeSource::Reconciliation,
    };
    let history = vec![wallet_payment(), requested("R1", "2500"), failed("R1")];
    let then = given(history.clone()).when(refunded());
    let anomaly = PaymentEvent::RefundOutcomeAnomaly(RefundOutcomeAnomaly {
        refund_request_id: refund_id("R1"),
        recorded_status: RefundStatus::Failed,
        reported: ReportedOutcome::Refunded,
        source: OutcomeSource::Reconciliation,
        reported_at: then.now(),
    });
    then.then_expect(vec![anomaly.clone()]);
    let mut with_anomaly = history;
    with_anomaly.push(anomaly);
    given(with_anomaly.clone()).when(refunded()).then_nothing();
    assert_eq!(
        crate::replay(&with_anomaly).refund(&refund_id("R1")).unwrap().status,
        RefundStatus::Failed
    );
    given(vec![wallet_payment(), requested("R1", "2500"), succeeded("R1")])
        .when(refunded())
        .then_nothing();
    given(vec![wallet_payment(), requested("R1", "2500")])
        .when(refunded())
        .then_nothing();
}
