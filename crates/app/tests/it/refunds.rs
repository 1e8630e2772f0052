//! The refund saga's synchronous path: partial refunds, every rule the ledger enforces before Antom
//! (answered with Antom's code, Antom never called), and idempotency on the refundRequestId.

use app::{OpenChargebackInput, RecordPaymentInput, ResolveChargebackInput};
use domain::{ChargebackResolution, DisputeId, Money, RefundStatus, ResultCode, ResultStatus};

use crate::helpers::{Backend, Harness, card, payment_id, refund_input, usd};

fn eur(minor_units: u64) -> Money {
    Money::parse("amount", "EUR", &minor_units.to_string()).expect("valid EUR amount")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_refunds_down_to_zero() {
    let harness = Harness::start(Backend::Sqlite).await;
    let payment = harness.payment("P-PARTIAL", 1000).await;
    for (id, amount) in [("R1", 300), ("R2", 500), ("R3", 200)] {
        let answer = harness
            .ledger
            .refund("op", refund_input(id, &payment, usd(amount)))
            .await
            .unwrap();
        assert_eq!(answer.result.status, ResultStatus::S, "{id}: {:?}", answer.result);
        let snapshot = answer.refund.expect("the refund");
        assert_eq!(snapshot.refund.status, RefundStatus::Succeeded);
        assert!(snapshot.refund.refund_id.is_some());
    }
    let state = harness.ledger.payment(&payment).await.unwrap().expect("payment");
    assert_eq!((state.refunded, state.pending), (usd(1000), usd(0)));
    assert!(state.refundable().is_zero());

    let answer = harness
        .ledger
        .refund("op", refund_input("R4", &payment, usd(1)))
        .await
        .unwrap();
    assert_eq!(
        (answer.result.status, answer.result.code),
        (ResultStatus::F, ResultCode::RefundAmountExceed)
    );
    let totals = harness.simulator().totals(&payment).unwrap();
    assert_eq!(
        (totals.succeeded_minor_units, totals.refund_count),
        (1000, 3),
        "R4 never reached Antom"
    );
    harness.finish().await;
}

/// Asserts F with `code`, recorded as a rejected refund (so a retry gets the same answer), with no
/// call to Antom.
async fn assert_rejected(harness: &Harness, answer: app::RefundResult, code: ResultCode) {
    assert_eq!(
        (answer.result.status, &answer.result.code),
        (ResultStatus::F, &code),
        "{:?}",
        answer.result
    );
    let snapshot = answer.refund.expect("a rejection is recorded");
    assert_eq!(snapshot.refund.status, RefundStatus::Rejected);
    assert!(
        harness.simulator().refund(&snapshot.refund.refund_request_id).is_none(),
        "Antom was called"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_answers_with_antoms_code_without_calling_antom() {
    let harness = Harness::start(Backend::Sqlite).await;
    let ledger = &harness.ledger;
    let payment = harness.payment("P-RULES", 1000).await;

    let answer = ledger
        .refund("op", refund_input("R-CUR", &payment, eur(100)))
        .await
        .unwrap();
    assert_rejected(&harness, answer, ResultCode::CurrencyNotSupport).await;
    let answer = ledger
        .refund("op", refund_input("R-EXCEED", &payment, usd(1001)))
        .await
        .unwrap();
    assert_rejected(&harness, answer, ResultCode::RefundAmountExceed).await;

    // A retry of a rejected request gets the same answer, from the log.
    let head = harness.store.head().await.unwrap().position;
    let again = ledger
        .refund("op", refund_input("R-EXCEED", &payment, usd(1001)))
        .await
        .unwrap();
    assert_eq!(again.result.code, ResultCode::RefundAmountExceed);
    assert_eq!(harness.store.head().await.unwrap().position, head, "no second event");

    // Not captured.
    let uncaptured = payment_id("P-UNCAPTURED");
    let recorded = ledger
        .record_payment(
            "op",
            RecordPaymentInput {
                payment_id: uncaptured.clone(),
                payment_amount: usd(1000),
                payment_method_type: card(),
                payment_time: app::Clock::now(&harness.clock) - time::Duration::hours(1),
                capture_required: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(recorded.result.status, ResultStatus::S);
    let answer = ledger
        .refund("op", refund_input("R-UNCAPTURED", &uncaptured, usd(100)))
        .await
        .unwrap();
    assert_rejected(&harness, answer, ResultCode::OrderStatusInvalid).await;

    // Out of the refund window (365 days by default).
    let old = payment_id("P-OLD");
    ledger
        .record_payment(
            "op",
            RecordPaymentInput {
                payment_id: old.clone(),
                payment_amount: usd(1000),
                payment_method_type: domain::PaymentMethodType::parse("ALIPAY_CN").unwrap(),
                payment_time: app::Clock::now(&harness.clock) - time::Duration::days(400),
                capture_required: None,
            },
        )
        .await
        .unwrap();
    let answer = ledger
        .refund("op", refund_input("R-OLD", &old, usd(100)))
        .await
        .unwrap();
    assert_rejected(&harness, answer, ResultCode::RefundWindowExceed).await;

    // Unknown payment: answered, nothing recorded.
    let head = harness.store.head().await.unwrap().position;
    let answer = ledger
        .refund("op", refund_input("R-NOWHERE", &payment_id("P-NOWHERE"), usd(100)))
        .await
        .unwrap();
    assert_eq!(
        (answer.result.status, answer.result.code),
        (ResultStatus::F, ResultCode::OrderNotExist)
    );
    assert!(answer.refund.is_none());
    // Nothing written and no payment to wait for: the answer points at no position.
    assert_eq!(answer.position, 0);
    assert_eq!(harness.store.head().await.unwrap().position, head, "nothing recorded");
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_chargeback_blocks_refunds_until_resolved() {
    let harness = Harness::start(Backend::Sqlite).await;
    let ledger = &harness.ledger;
    let payment = harness.payment("P-DISPUTE", 1000).await;
    let dispute = DisputeId::parse("D1").unwrap();
    let opened = ledger
        .open_chargeback(
            "op",
            OpenChargebackInput {
                payment_id: payment.clone(),
                dispute_id: dispute.clone(),
                dispute_amount: usd(400),
            },
        )
        .await
        .unwrap();
    assert_eq!(opened.result.status, ResultStatus::S);
    let answer = ledger
        .refund("op", refund_input("R-DISPUTED", &payment, usd(100)))
        .await
        .unwrap();
    assert_rejected(&harness, answer, ResultCode::OrderStatusInvalid).await;

    let resolved = ledger
        .resolve_chargeback(
            "op",
            ResolveChargebackInput {
                payment_id: payment.clone(),
                dispute_id: dispute,
                resolution: ChargebackResolution::CustomerWon,
            },
        )
        .await
        .unwrap();
    assert_eq!(resolved.result.status, ResultStatus::S);
    // 400 went back to the customer: 600 remain refundable.
    let answer = ledger
        .refund("op", refund_input("R-AFTER-1", &payment, usd(601)))
        .await
        .unwrap();
    assert_rejected(&harness, answer, ResultCode::RefundAmountExceed).await;
    let answer = ledger
        .refund("op", refund_input("R-AFTER-2", &payment, usd(600)))
        .await
        .unwrap();
    assert_eq!(answer.result.status, ResultStatus::S, "{:?}", answer.result);
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_returns_the_refund_as_it_stands_and_other_content_is_inconsistent() {
    let harness = Harness::start(Backend::Sqlite).await;
    let ledger = &harness.ledger;
    let payment = harness.payment("P-IDEM", 1000).await;
    let other = harness.payment("P-OTHER", 1000).await;

    let first = ledger
        .refund("op", refund_input("R1", &payment, usd(300)))
        .await
        .unwrap();
    assert_eq!(first.result.status, ResultStatus::S);
    let head = harness.store.head().await.unwrap().position;

    let retry = ledger
        .refund("op", refund_input("R1", &payment, usd(300)))
        .await
        .unwrap();
    assert_eq!(retry.result, first.result);
    assert_eq!(retry.refund, first.refund, "the refund as it stands");
    assert_eq!(harness.store.head().await.unwrap().position, head, "no second event");
    assert_eq!(retry.position, head);

    let changed = ledger
        .refund("op", refund_input("R1", &payment, usd(200)))
        .await
        .unwrap();
    assert_eq!(
        (changed.result.status, changed.result.code),
        (ResultStatus::F, ResultCode::RepeatReqInconsistent)
    );
    assert!(changed.refund.is_none());

    let elsewhere = ledger.refund("op", refund_input("R1", &other, usd(300))).await.unwrap();
    assert_eq!(
        (elsewhere.result.status, elsewhere.result.code),
        (ResultStatus::F, ResultCode::RepeatReqInconsistent)
    );
    assert!(elsewhere.refund.is_none());
    assert_eq!(harness.store.head().await.unwrap().position, head, "nothing recorded");
    let other_state = ledger.payment(&other).await.unwrap().unwrap();
    assert!(other_state.refunds.is_empty());
    assert_eq!(
        harness.simulator().totals(&payment).unwrap().refund_count,
        1,
        "Antom called once"
    );
    assert_eq!(harness.simulator().totals(&other).unwrap().refund_count, 0);

    // Asked by id alone, a final refund is answered from the log (Antom is not asked again).
    let inquiry = ledger
        .inquiry_refund("op", &crate::helpers::refund_id("R1"))
        .await
        .unwrap();
    assert_eq!(inquiry.refund, first.refund);
    let unknown = ledger
        .inquiry_refund("op", &crate::helpers::refund_id("R-UNKNOWN"))
        .await
        .unwrap();
    assert_eq!(unknown.result.code, ResultCode::OrderNotExist);
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_saga_runs_on_postgres() {
    let harness = Harness::start(Backend::Postgres).await;
    let payment = harness.payment("P-PG", 1000).await;
    let answer = harness
        .ledger
        .refund("op", refund_input("R1", &payment, usd(1000)))
        .await
        .unwrap();
    assert_eq!(answer.result.status, ResultStatus::S);
    let retry = harness
        .ledger
        .refund("op", refund_input("R1", &payment, usd(1000)))
        .await
        .unwrap();
    assert_eq!(retry.refund, answer.refund);
    let answer = harness
        .ledger
        .refund("op", refund_input("R2", &payment, usd(1)))
        .await
        .unwrap();
    assert_eq!(answer.result.code, ResultCode::RefundAmountExceed);
    harness.finish().await;
}

/// A captured payment of `method`, known to the ledger only (these requests never reach Antom).
async fn recorded(ledger: &app::Ledger, harness: &Harness, id: &str, method: &str) -> domain::PaymentId {
    let payment = payment_id(id);
    let answer = ledger
        .record_payment(
            "op",
            RecordPaymentInput {
                payment_id: payment.clone(),
                payment_amount: usd(1000),
                payment_method_type: domain::PaymentMethodType::parse(method).unwrap(),
                payment_time: app::Clock::now(&harness.clock) - time::Duration::hours(1),
                capture_required: Some(false),
            },
        )
        .await
        .unwrap();
    assert_eq!(answer.result.status, ResultStatus::S, "{:?}", answer.result);
    payment
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_method_policy_rules_answer_with_antoms_codes() {
    let harness = Harness::start(Backend::Sqlite).await;
    let mut policy = domain::Policy::default();
    let strict = domain::MethodPolicy {
        partial_refund_allowed: false,
        multiple_refunds_allowed: false,
        ..domain::MethodPolicy::default()
    };
    let closed = domain::MethodPolicy {
        refund_supported: false,
        ..domain::MethodPolicy::default()
    };
    let mut minimum = domain::MethodPolicy::default();
    minimum
        .minimum_refund_minor_units
        .insert(domain::Currency::parse("currency", "USD").unwrap(), 100);
    policy.methods.insert("STRICT".to_owned(), strict);
    policy.methods.insert("CLOSED".to_owned(), closed);
    policy.methods.insert("MINIMUM".to_owned(), minimum);
    let ledger = harness.ledger_with_policy(policy);

    let payment = recorded(&ledger, &harness, "P-STRICT", "STRICT").await;
    let answer = ledger
        .refund("op", refund_input("R-PART", &payment, usd(500)))
        .await
        .unwrap();
    assert_rejected(&harness, answer, ResultCode::PartialRefundNotSupported).await;
    let payment = recorded(&ledger, &harness, "P-CLOSED", "CLOSED").await;
    let answer = ledger
        .refund("op", refund_input("R-CLOSED", &payment, usd(500)))
        .await
        .unwrap();
    assert_rejected(&harness, answer, ResultCode::RefundNotSupported).await;
    let payment = recorded(&ledger, &harness, "P-MIN", "MINIMUM").await;
    let answer = ledger
        .refund("op", refund_input("R-MIN", &payment, usd(99)))
        .await
        .unwrap();
    assert_rejected(&harness, answer, ResultCode::RefundAmountExceed).await;
    let mut long_reason = refund_input("R-REASON", &payment, usd(100));
    long_reason.refund_reason = Some("x".repeat(257));
    let answer = ledger.refund("op", long_reason).await.unwrap();
    assert_eq!(
        (answer.result.status, answer.result.code),
        (ResultStatus::F, ResultCode::ParamIllegal)
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refund_only_methods_refuse_the_second() {
    let harness = Harness::start(Backend::Sqlite).await;
    let mut policy = domain::Policy::default();
    let once = domain::MethodPolicy {
        multiple_refunds_allowed: false,
        ..domain::MethodPolicy::default()
    };
    policy.methods.insert("ONCE".to_owned(), once);
    let ledger = harness.ledger_with_policy(policy);
    let payment = recorded(&ledger, &harness, "P-ONCE", "ONCE").await;
    harness
        .simulator()
        .seed_payment(apo_sim::PaymentSeed::captured(
            payment.clone(),
            usd(1000),
            domain::PaymentMethodType::parse("ONCE").unwrap(),
            app::Clock::now(&harness.clock) - time::Duration::hours(1),
        ))
        .unwrap();
    let first = ledger
        .refund("op", refund_input("R-1", &payment, usd(100)))
        .await
        .unwrap();
    assert_eq!(first.result.status, ResultStatus::S, "{:?}", first.result);
    let second = ledger
        .refund("op", refund_input("R-2", &payment, usd(100)))
        .await
        .unwrap();
    assert_rejected(&harness, second, ResultCode::MultipleRefundsNotSupported).await;
    harness.finish().await;
}
