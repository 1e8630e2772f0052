//! notifyRefund: delivered when final, signed like a request from Antom,
//! retried on the (compressed) schedule until acknowledged, and the
//! drop / duplicate / reorder / delay faults.

use std::time::Duration;

use apo_sim::{FaultConfig, NOTIFY_SCHEDULE_MS, NotifyOutcome};

use crate::helpers::{CLIENT_ID, NOTIFY_PATH, Receiver, TestSim, captured_payment, config, eventually};

async fn sim_notifying(receiver: &Receiver) -> TestSim {
    let mut config = config();
    config.notify_url = Some(receiver.url.clone());
    TestSim::start_with(config).await
}

#[tokio::test]
async fn a_final_refund_is_notified_signed_by_antom() {
    let receiver = Receiver::start(0).await;
    let sim = sim_notifying(&receiver).await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    let refund_id = sim.refund("R1", "P1", 250).await.json()["refundId"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("one notification", || receiver.received().len() == 1).await;
    let notification = &receiver.received()[0];
    assert_eq!(notification.path, NOTIFY_PATH);
    notification
        .verify(&sim.keys.antom_public)
        .expect("signed by Antom over the merchant path");
    assert!(
        notification.verify(&sim.keys.merchant_public).is_err(),
        "not signed with another key"
    );
    assert_eq!(notification.headers["client-id"], CLIENT_ID);
    let json = notification.json();
    assert_eq!(json["notifyType"], "REFUND_RESULT");
    assert_eq!(json["refundStatus"], "SUCCESS");
    assert_eq!(json["result"]["resultStatus"], "S");
    assert_eq!(json["refundRequestId"], "R1");
    assert_eq!(json["refundId"], refund_id.as_str());
    assert_eq!(
        json["refundAmount"],
        serde_json::json!({"currency": "USD", "value": "250"})
    );
    assert!(json["refundTime"].as_str().is_some());
    eventually("the acknowledgement in the log", || {
        sim.sim()
            .notifications()
            .iter()
            .any(|line| line.outcome == NotifyOutcome::Acknowledged)
    })
    .await;
}

#[tokio::test]
async fn rejected_refunds_are_not_notified_and_u_refunds_only_when_final() {
    let receiver = Receiver::start(0).await;
    let sim = sim_notifying(&receiver).await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    sim.refund("R0", "P1", 5000)
        .await
        .assert_signed(&sim.keys, "F", "REFUND_AMOUNT_EXCEED");
    sim.refund_with("R1", "P1", 100, Some("u-fail")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(receiver.received().is_empty(), "nothing is final yet");
    eventually("the FAIL notification", || receiver.received().len() == 1).await;
    let json = receiver.received()[0].json();
    assert_eq!(
        (json["refundRequestId"].as_str(), json["refundStatus"].as_str()),
        (Some("R1"), Some("FAIL"))
    );
    assert_eq!(json["result"]["resultStatus"], "F");
    assert_eq!(json["result"]["resultCode"], "PROCESS_FAIL");
}

#[tokio::test]
async fn notifications_are_retried_until_acknowledged() {
    let receiver = Receiver::start(3).await;
    let sim = sim_notifying(&receiver).await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    sim.refund("R1", "P1", 100).await;
    eventually("the acknowledged fourth attempt", || {
        sim.sim()
            .notifications()
            .iter()
            .any(|line| line.outcome == NotifyOutcome::Acknowledged)
    })
    .await;
    let log = sim.sim().notifications();
    let attempts: Vec<u32> = log.iter().map(|line| line.attempt).collect();
    assert_eq!(attempts, vec![1, 2, 3, 4]);
    assert!(
        log[..3]
            .iter()
            .all(|line| line.outcome == NotifyOutcome::NotAcknowledged { status: 500 })
    );
    assert_eq!(receiver.received().len(), 4);
    let bodies: Vec<_> = receiver
        .received()
        .iter()
        .map(|received| received.body.clone())
        .collect();
    assert!(
        bodies.windows(2).all(|pair| pair[0] == pair[1]),
        "every attempt carries the same body"
    );
    for received in receiver.received() {
        received
            .verify(&sim.keys.antom_public)
            .expect("every attempt is signed");
    }
}

#[tokio::test]
async fn antom_gives_up_after_its_schedule() {
    let receiver = Receiver::start(usize::MAX).await;
    let sim = sim_notifying(&receiver).await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    sim.refund("R1", "P1", 100).await;
    eventually("giving up", || {
        sim.sim()
            .notifications()
            .iter()
            .any(|line| line.outcome == NotifyOutcome::GaveUp)
    })
    .await;
    assert_eq!(receiver.received().len(), NOTIFY_SCHEDULE_MS.len());
}

#[tokio::test]
async fn refund_notify_url_overrides_the_configured_url() {
    let configured = Receiver::start(0).await;
    let per_request = Receiver::start(0).await;
    let sim = sim_notifying(&configured).await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    let body = serde_json::json!({
        "refundRequestId": "R1", "paymentId": "P1",
        "refundAmount": {"currency": "USD", "value": "100"},
        "refundNotifyUrl": per_request.url,
    })
    .to_string();
    sim.post_signed(&crate::helpers::refund_path(), &body, None)
        .await
        .unwrap();
    eventually("the per-request notification", || per_request.received().len() == 1).await;
    assert!(configured.received().is_empty());
}

#[tokio::test]
async fn duplicated_notifications_arrive_twice() {
    let receiver = Receiver::start(0).await;
    let sim = sim_notifying(&receiver).await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    sim.refund_with("R1", "P1", 100, Some("notify-duplicate"))
        .await
        .unwrap();
    eventually("two copies", || receiver.received().len() == 2).await;
    let received = receiver.received();
    assert_eq!(received[0].body, received[1].body);
    // The simulator logs an attempt once the receiver has answered it, a moment after the receiver saw it.
    eventually("the duplicate in the simulator's log", || {
        sim.sim().notifications().iter().any(|line| line.duplicate)
    })
    .await;
}

#[tokio::test]
async fn dropped_notifications_never_arrive() {
    let receiver = Receiver::start(0).await;
    let sim = sim_notifying(&receiver).await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    sim.refund_with("R1", "P1", 100, Some("notify-drop")).await.unwrap();
    sim.refund("R2", "P1", 100).await;
    eventually("R2's notification", || receiver.received().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].json()["refundRequestId"], "R2");
    assert!(
        sim.sim()
            .notifications()
            .iter()
            .any(|line| line.outcome == NotifyOutcome::Dropped)
    );
}

#[tokio::test]
async fn reordered_notifications_are_overtaken() {
    let receiver = Receiver::start(0).await;
    let sim = sim_notifying(&receiver).await;
    sim.sim()
        .set_faults(FaultConfig {
            notify_reorder_ms: 800,
            ..sim.sim().faults()
        })
        .unwrap();
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    sim.refund_with("R1", "P1", 100, Some("notify-reorder")).await.unwrap();
    sim.refund("R2", "P1", 100).await;
    eventually("both notifications", || receiver.received().len() == 2).await;
    let order: Vec<String> = receiver
        .received()
        .iter()
        .map(|received| {
            received.json()["refundRequestId"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(order, vec!["R2", "R1"]);
}

#[tokio::test]
async fn delayed_notifications_wait() {
    let receiver = Receiver::start(0).await;
    let sim = sim_notifying(&receiver).await;
    sim.sim()
        .set_faults(FaultConfig {
            notify_delay_ms: 400,
            ..sim.sim().faults()
        })
        .unwrap();
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    sim.refund("R1", "P1", 100).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.received().is_empty(), "not yet");
    eventually("the delayed notification", || receiver.received().len() == 1).await;
}
