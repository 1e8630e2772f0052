//! U answers, inquiryRefund and how a processing refund becomes final.

use crate::helpers::{TestSim, captured_payment, eventually, inquiry_path, payment_id};

#[tokio::test]
async fn a_u_refund_is_processing_then_success() {
    let sim = TestSim::start().await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    let answer = sim.refund_with("R1", "P1", 400, Some("u")).await.unwrap();
    answer.assert_signed(&sim.keys, "U", "REFUND_IN_PROCESS");
    let refund_id = answer.json()["refundId"].as_str().unwrap().to_owned();

    let inquiry = sim.inquiry("R1").await;
    inquiry.assert_signed(&sim.keys, "S", "SUCCESS");
    assert_eq!(inquiry.json()["refundStatus"], "PROCESSING");
    assert_eq!(inquiry.json()["refundId"], refund_id.as_str());
    assert!(inquiry.json().get("refundTime").is_none());
    // A retry while processing answers U again and refunds nothing more.
    sim.refund("R1", "P1", 400)
        .await
        .assert_signed(&sim.keys, "U", "REFUND_IN_PROCESS");

    eventually("the refund to settle", || {
        sim.sim()
            .refund(&domain::RefundRequestId::parse("R1").unwrap())
            .is_some_and(|refund| refund.state.is_final())
    })
    .await;
    let settled = sim.inquiry("R1").await;
    settled.assert_signed(&sim.keys, "S", "SUCCESS");
    assert_eq!(settled.json()["refundStatus"], "SUCCESS");
    assert_eq!(
        settled.json()["refundAmount"],
        serde_json::json!({"currency": "USD", "value": "400"})
    );
    assert!(settled.json()["refundTime"].as_str().is_some());
    sim.refund("R1", "P1", 400)
        .await
        .assert_signed(&sim.keys, "S", "SUCCESS");
    let totals = sim.sim().totals(&payment_id("P1")).unwrap();
    assert_eq!((totals.succeeded_minor_units, totals.refund_count), (400, 1));
}

#[tokio::test]
async fn a_u_fail_refund_ends_fail_and_frees_the_amount() {
    let sim = TestSim::start().await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    sim.refund_with("R1", "P1", 1000, Some("u-fail"))
        .await
        .unwrap()
        .assert_signed(&sim.keys, "U", "REFUND_IN_PROCESS");
    assert_eq!(sim.inquiry("R1").await.json()["refundStatus"], "PROCESSING");
    // The settle timer finalises it without any call.
    eventually("the refund to fail", || {
        sim.sim()
            .refunds_of(&payment_id("P1"))
            .first()
            .is_some_and(|refund| refund.state.refund_status() == "FAIL")
    })
    .await;
    assert_eq!(sim.inquiry("R1").await.json()["refundStatus"], "FAIL");
    // The same request id stays FAIL; a new one may refund the whole amount again.
    sim.refund("R1", "P1", 1000)
        .await
        .assert_signed(&sim.keys, "F", "PROCESS_FAIL");
    sim.refund("R2", "P1", 1000)
        .await
        .assert_signed(&sim.keys, "S", "SUCCESS");
}

#[tokio::test]
async fn inquiry_by_refund_id_wins_and_unknown_refunds_do_not_exist() {
    let sim = TestSim::start().await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    let refund_id = sim.refund("R1", "P1", 100).await.json()["refundId"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_refund_id = serde_json::json!({"refundId": refund_id, "refundRequestId": "OTHER"}).to_string();
    let answer = sim.post_signed(&inquiry_path(), &by_refund_id, None).await.unwrap();
    answer.assert_signed(&sim.keys, "S", "SUCCESS");
    assert_eq!(answer.json()["refundRequestId"], "R1");

    let never_received = sim.inquiry("NEVER-SENT").await;
    never_received.assert_signed(&sim.keys, "F", "ORDER_NOT_EXIST");
    assert!(never_received.json().get("refundStatus").is_none());

    let no_ids = sim.post_signed(&inquiry_path(), "{}", None).await.unwrap();
    no_ids.assert_signed(&sim.keys, "F", "PARAM_ILLEGAL");
}

#[tokio::test]
async fn a_refund_lost_in_a_timeout_is_unknown_to_inquiry_and_can_be_resent() {
    let sim = TestSim::start().await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    let lost = sim.refund_with("R1", "P1", 100, Some("timeout")).await;
    assert!(lost.is_err_and(|error| error.is_timeout()), "timeout fault: no answer");
    sim.inquiry("R1").await.assert_signed(&sim.keys, "F", "ORDER_NOT_EXIST");
    sim.refund("R1", "P1", 100)
        .await
        .assert_signed(&sim.keys, "S", "SUCCESS");
    assert_eq!(sim.sim().totals(&payment_id("P1")).unwrap().succeeded_minor_units, 100);
}
