//! Antom's refund rules over real HTTP: one test per rule of
//! docs/refund-rules.md and per protocol code the simulator answers.

use apo_sim::{Chargeback, MethodPolicy, PaymentUpdate, Policies};
use domain::PaymentMethodType;
use time::OffsetDateTime;

use crate::helpers::{TestSim, captured_payment, config, payment_id, refund_body, refund_path, usd};

#[tokio::test]
async fn a_valid_refund_succeeds_signed_with_its_fields() {
    let sim = TestSim::start().await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    let answer = sim.refund("R1", "P1", 400).await;
    answer.assert_signed(&sim.keys, "S", "SUCCESS");
    let json = answer.json();
    assert_eq!(json["refundRequestId"], "R1");
    assert_eq!(json["paymentId"], "P1");
    assert_eq!(
        json["refundAmount"],
        serde_json::json!({"currency": "USD", "value": "400"})
    );
    assert!(json["refundId"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(json["refundTime"].as_str().is_some_and(|time| time.contains('T')));
    let totals = sim.sim().totals(&payment_id("P1")).unwrap();
    assert_eq!(
        (totals.succeeded_minor_units, totals.refundable_minor_units),
        (400, 600)
    );
}

#[tokio::test]
async fn currency_must_match_the_payment() {
    let sim = TestSim::start().await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    let body = refund_body("R1", "P1", "EUR", 100);
    let answer = sim.post_signed(&refund_path(), &body, None).await.unwrap();
    answer.assert_signed(&sim.keys, "F", "CURRENCY_NOT_SUPPORT");
}

#[tokio::test]
async fn amount_above_refundable_or_below_minimum_exceeds() {
    let mut config = config();
    config.policies = Policies::default().with_method(
        "CARD",
        MethodPolicy {
            minimum_refund_minor_units: 50,
            ..MethodPolicy::default()
        },
    );
    let sim = TestSim::start_with(config).await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    sim.refund("R0", "P1", 49)
        .await
        .assert_signed(&sim.keys, "F", "REFUND_AMOUNT_EXCEED");
    sim.refund("R1", "P1", 1001)
        .await
        .assert_signed(&sim.keys, "F", "REFUND_AMOUNT_EXCEED");
    sim.refund("R2", "P1", 700)
        .await
        .assert_signed(&sim.keys, "S", "SUCCESS");
    // refundable = captured - succeeded - processing = 300
    sim.refund("R3", "P1", 301)
        .await
        .assert_signed(&sim.keys, "F", "REFUND_AMOUNT_EXCEED");
    sim.refund("R4", "P1", 300)
        .await
        .assert_signed(&sim.keys, "S", "SUCCESS");
}

#[tokio::test]
async fn processing_refunds_count_against_the_refundable_amount() {
    let sim = TestSim::start().await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    let pending = sim.refund_with("R1", "P1", 800, Some("u")).await.unwrap();
    pending.assert_signed(&sim.keys, "U", "REFUND_IN_PROCESS");
    sim.refund("R2", "P1", 201)
        .await
        .assert_signed(&sim.keys, "F", "REFUND_AMOUNT_EXCEED");
    sim.refund("R3", "P1", 200)
        .await
        .assert_signed(&sim.keys, "S", "SUCCESS");
}

#[tokio::test]
async fn uncaptured_or_disputed_payments_are_invalid() {
    let sim = TestSim::start().await;
    let mut uncaptured = captured_payment("P1", 1000);
    uncaptured.captured_amount = None;
    sim.sim().seed_payment(uncaptured).unwrap();
    sim.refund("R1", "P1", 100)
        .await
        .assert_signed(&sim.keys, "F", "ORDER_STATUS_INVALID");
    // Capture part of it: only captured money is refundable.
    sim.sim()
        .update_payment(
            &payment_id("P1"),
            PaymentUpdate {
                captured_amount: Some(usd(500)),
                ..PaymentUpdate::default()
            },
        )
        .unwrap();
    sim.refund("R2", "P1", 501)
        .await
        .assert_signed(&sim.keys, "F", "REFUND_AMOUNT_EXCEED");
    sim.refund("R3", "P1", 500)
        .await
        .assert_signed(&sim.keys, "S", "SUCCESS");

    sim.sim().seed_payment(captured_payment("P2", 1000)).unwrap();
    let dispute = |chargeback| PaymentUpdate {
        chargeback: Some(chargeback),
        ..PaymentUpdate::default()
    };
    sim.sim()
        .update_payment(&payment_id("P2"), dispute(Chargeback::Undetermined))
        .unwrap();
    sim.refund("R4", "P2", 100)
        .await
        .assert_signed(&sim.keys, "F", "ORDER_STATUS_INVALID");
    sim.sim()
        .update_payment(&payment_id("P2"), dispute(Chargeback::Judged))
        .unwrap();
    sim.refund("R4", "P2", 100)
        .await
        .assert_signed(&sim.keys, "S", "SUCCESS");
}

#[tokio::test]
async fn refunds_outside_the_method_window_are_refused() {
    let mut config = config();
    config.policies = Policies::default().with_method(
        "GCASH",
        MethodPolicy {
            refund_window_days: 30,
            ..MethodPolicy::default()
        },
    );
    let sim = TestSim::start_with(config).await;
    let mut old = captured_payment("P1", 1000);
    old.payment_method_type = PaymentMethodType::parse("GCASH").unwrap();
    old.payment_time = OffsetDateTime::now_utc() - time::Duration::days(31);
    sim.sim().seed_payment(old).unwrap();
    sim.refund("R1", "P1", 100)
        .await
        .assert_signed(&sim.keys, "F", "REFUND_WINDOW_EXCEED");
    // The same age is fine for CARD, whose window is the default 365 days.
    let mut card = captured_payment("P2", 1000);
    card.payment_time = OffsetDateTime::now_utc() - time::Duration::days(31);
    sim.sim().seed_payment(card).unwrap();
    sim.refund("R2", "P2", 100)
        .await
        .assert_signed(&sim.keys, "S", "SUCCESS");
}

#[tokio::test]
async fn unknown_and_cancelled_payments() {
    let sim = TestSim::start().await;
    sim.refund("R1", "NOPE", 100)
        .await
        .assert_signed(&sim.keys, "F", "ORDER_NOT_EXIST");
    let mut cancelled = captured_payment("P1", 1000);
    cancelled.cancelled = true;
    sim.sim().seed_payment(cancelled).unwrap();
    sim.refund("R2", "P1", 100)
        .await
        .assert_signed(&sim.keys, "F", "ORDER_IS_CANCELED");
}

#[tokio::test]
async fn partial_and_multiple_refunds_follow_the_method_policy() {
    let mut config = config();
    config.policies = Policies::default().with_method(
        "CARD",
        MethodPolicy {
            partial_refunds: false,
            multiple_refunds: false,
            ..MethodPolicy::default()
        },
    );
    let sim = TestSim::start_with(config).await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    sim.refund("R1", "P1", 999)
        .await
        .assert_signed(&sim.keys, "F", "PARTIAL_REFUND_NOT_SUPPORTED");
    sim.refund("R2", "P1", 1000)
        .await
        .assert_signed(&sim.keys, "S", "SUCCESS");
    sim.refund("R3", "P1", 1000)
        .await
        .assert_signed(&sim.keys, "F", "MULTIPLE_REFUNDS_NOT_SUPPORTED");
}

#[tokio::test]
async fn malformed_bodies_and_fields_are_param_illegal() {
    let sim = TestSim::start().await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    let long_id = "x".repeat(65);
    let cases = [
        ("not json".to_owned(), "malformed"),
        (
            r#"{"paymentId":"P1","refundAmount":{"currency":"USD","value":"1"}}"#.to_owned(),
            "refundRequestId",
        ),
        (
            r#"{"refundRequestId":"R","refundAmount":{"currency":"USD","value":"1"}}"#.to_owned(),
            "paymentId",
        ),
        (r#"{"refundRequestId":"R","paymentId":"P1"}"#.to_owned(), "refundAmount"),
        (refund_body(&long_id, "P1", "USD", 1), "refundRequestId"),
        (
            r#"{"refundRequestId":"R","paymentId":"P1","refundAmount":{"currency":"USD","value":1}}"#.to_owned(),
            "malformed",
        ),
        (
            r#"{"refundRequestId":"R","paymentId":"P1","refundAmount":{"currency":"USD","value":"1.5"}}"#.to_owned(),
            "refundAmount.value",
        ),
        (
            r#"{"refundRequestId":"R","paymentId":"P1","refundAmount":{"currency":"XYZ","value":"1"}}"#.to_owned(),
            "refundAmount.currency",
        ),
        (
            r#"{"refund_request_id":"R","payment_id":"P1","refund_amount":{"currency":"USD","value":"1"}}"#.to_owned(),
            "refundRequestId",
        ),
        (
            serde_json::json!({
                "refundRequestId": "R", "paymentId": "P1",
                "refundAmount": {"currency": "USD", "value": "1"},
                "refundReason": "r".repeat(257),
            })
            .to_string(),
            "refundReason",
        ),
    ];
    for (body, field) in cases {
        let answer = sim.post_signed(&refund_path(), &body, None).await.unwrap();
        answer.assert_signed(&sim.keys, "F", "PARAM_ILLEGAL");
        let message = answer.json()["result"]["resultMessage"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            message.contains(field),
            "message {message:?} should name {field} for body {body}"
        );
    }
    assert_eq!(sim.sim().totals(&payment_id("P1")).unwrap().refund_count, 0);
}

#[tokio::test]
async fn same_request_id_same_content_returns_the_refund_as_it_stands() {
    let sim = TestSim::start().await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    let first = sim.refund("R1", "P1", 300).await;
    first.assert_signed(&sim.keys, "S", "SUCCESS");
    let again = sim.refund("R1", "P1", 300).await;
    again.assert_signed(&sim.keys, "S", "SUCCESS");
    assert_eq!(first.json()["refundId"], again.json()["refundId"]);
    assert_eq!(sim.sim().refunds_of(&payment_id("P1")).len(), 1);
    let totals = sim.sim().totals(&payment_id("P1")).unwrap();
    assert_eq!(totals.succeeded_minor_units, 300);
}

#[tokio::test]
async fn same_request_id_different_content_is_inconsistent() {
    let sim = TestSim::start().await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    sim.sim().seed_payment(captured_payment("P2", 1000)).unwrap();
    sim.refund("R1", "P1", 300)
        .await
        .assert_signed(&sim.keys, "S", "SUCCESS");
    sim.refund("R1", "P1", 301)
        .await
        .assert_signed(&sim.keys, "F", "REPEAT_REQ_INCONSISTENT");
    sim.refund("R1", "P2", 300)
        .await
        .assert_signed(&sim.keys, "F", "REPEAT_REQ_INCONSISTENT");
    assert_eq!(sim.sim().totals(&payment_id("P1")).unwrap().succeeded_minor_units, 300);
    assert_eq!(sim.sim().totals(&payment_id("P2")).unwrap().refund_count, 0);
}

#[tokio::test]
async fn a_rejected_request_id_can_be_used_again() {
    let sim = TestSim::start().await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    sim.refund("R1", "P1", 5000)
        .await
        .assert_signed(&sim.keys, "F", "REFUND_AMOUNT_EXCEED");
    sim.refund("R1", "P1", 500)
        .await
        .assert_signed(&sim.keys, "S", "SUCCESS");
}

#[tokio::test]
async fn concurrent_retries_of_one_request_id_refund_once() {
    let sim = std::sync::Arc::new(TestSim::start().await);
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let sim = sim.clone();
            tokio::spawn(async move { sim.refund("R1", "P1", 700).await })
        })
        .collect();
    let mut refund_ids = std::collections::HashSet::new();
    for task in tasks {
        let answer = task.await.unwrap();
        answer.assert_signed(&sim.keys, "S", "SUCCESS");
        refund_ids.insert(answer.json()["refundId"].as_str().unwrap().to_owned());
    }
    assert_eq!(refund_ids.len(), 1, "every retry sees the same refund");
    let totals = sim.sim().totals(&payment_id("P1")).unwrap();
    assert_eq!((totals.refund_count, totals.succeeded_minor_units), (1, 700));
}

#[tokio::test]
async fn concurrent_refunds_never_exceed_the_captured_amount() {
    let sim = std::sync::Arc::new(TestSim::start().await);
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|index| {
            let sim = sim.clone();
            tokio::spawn(async move { sim.refund(&format!("R{index}"), "P1", 300).await.result_code() })
        })
        .collect();
    let mut codes = Vec::new();
    for task in tasks {
        codes.push(task.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|code| *code == "SUCCESS").count(), 3, "{codes:?}");
    assert_eq!(codes.iter().filter(|code| *code == "REFUND_AMOUNT_EXCEED").count(), 13);
    assert_eq!(sim.sim().totals(&payment_id("P1")).unwrap().succeeded_minor_units, 900);
}
