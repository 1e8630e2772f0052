//! Request signature checks and response signing, both paths (live and sandbox).

use apo_sim::REFUND_PATH;
use time::OffsetDateTime;

use crate::helpers::{CLIENT_ID, TestSim, captured_payment, payment_id, refund_body, refund_path};

fn assert_unsigned_failure(answer: &crate::helpers::Answer, code: &str) {
    assert_eq!(answer.status, 200);
    assert_eq!(answer.result_status(), "F");
    assert_eq!(answer.result_code(), code);
    assert!(
        answer.header("signature").is_none(),
        "auth failures are answered unsigned"
    );
}

#[tokio::test]
async fn responses_are_signed_over_the_request_path_on_both_paths() {
    let sim = TestSim::start().await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    // The sandbox client signs the sandbox path ...
    assert!(refund_path().starts_with("/ams/sandbox/api/"));
    let sandbox = sim.refund("R1", "P1", 100).await;
    sandbox.assert_signed(&sim.keys, "S", "SUCCESS");
    assert_eq!(sandbox.header("client-id"), Some(CLIENT_ID));
    // ... and the live path works too, signed over itself.
    let body = refund_body("R2", "P1", "USD", 100);
    let live = sim.post_signed(REFUND_PATH, &body, None).await.unwrap();
    live.assert_signed(&sim.keys, "S", "SUCCESS");
    // A signature checked against the other path fails: the path is signed.
    let mut moved = live;
    moved.path = refund_path();
    assert!(moved.verify(&sim.keys.antom_public).is_err());
}

#[tokio::test]
async fn missing_or_bad_signatures_are_invalid_signature_and_change_nothing() {
    let sim = TestSim::start().await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    let path = refund_path();
    let url = format!("{}{path}", sim.server.base_url());
    let body = refund_body("R1", "P1", "USD", 100);
    let time = OffsetDateTime::now_utc().unix_timestamp().to_string();
    let good = apo::signature::sign(
        &sim.keys.merchant_private,
        "POST",
        &path,
        CLIENT_ID,
        &time,
        body.as_bytes(),
    )
    .unwrap();
    let wrong_key = apo::signature::sign(
        &sim.keys.antom_private,
        "POST",
        &path,
        CLIENT_ID,
        &time,
        body.as_bytes(),
    )
    .unwrap();
    let other_path = apo::signature::sign(
        &sim.keys.merchant_private,
        "POST",
        REFUND_PATH,
        CLIENT_ID,
        &time,
        body.as_bytes(),
    )
    .unwrap();

    let unsigned = sim
        .http
        .post(&url)
        .header("Client-Id", CLIENT_ID)
        .header("Request-Time", &time)
        .body(body.clone());
    assert_unsigned_failure(&sim.send(unsigned, &path).await.unwrap(), "INVALID_SIGNATURE");

    for (signature, time_header, sent_body) in [
        (wrong_key.as_str(), time.as_str(), body.clone()),
        (other_path.as_str(), time.as_str(), body.clone()),
        (good.as_str(), "1", body.clone()),
        (good.as_str(), time.as_str(), body.replace("100", "900")),
        (
            "algorithm=RSA256,keyVersion=1,signature=%%%",
            time.as_str(),
            body.clone(),
        ),
        ("garbage", time.as_str(), body.clone()),
    ] {
        let request = sim
            .http
            .post(&url)
            .header("Client-Id", CLIENT_ID)
            .header("Request-Time", time_header)
            .header("Signature", signature)
            .body(sent_body);
        assert_unsigned_failure(&sim.send(request, &path).await.unwrap(), "INVALID_SIGNATURE");
    }
    assert_eq!(sim.sim().totals(&payment_id("P1")).unwrap().refund_count, 0);

    let request = sim
        .http
        .post(&url)
        .header("Client-Id", CLIENT_ID)
        .header("Request-Time", &time)
        .header("Signature", good)
        .body(body);
    sim.send(request, &path)
        .await
        .unwrap()
        .assert_signed(&sim.keys, "S", "SUCCESS");
}

#[tokio::test]
async fn unknown_or_missing_client_ids_are_invalid_client() {
    let sim = TestSim::start().await;
    let path = refund_path();
    let url = format!("{}{path}", sim.server.base_url());
    let body = refund_body("R1", "P1", "USD", 100);
    let time = "1767225600123";
    let other = "SANDBOX_SOMEONE_ELSE";
    let signature =
        apo::signature::sign(&sim.keys.merchant_private, "POST", &path, other, time, body.as_bytes()).unwrap();
    let foreign = sim
        .http
        .post(&url)
        .header("Client-Id", other)
        .header("Request-Time", time)
        .header("Signature", signature)
        .body(body.clone());
    assert_unsigned_failure(&sim.send(foreign, &path).await.unwrap(), "INVALID_CLIENT");
    let anonymous = sim.http.post(&url).body(body);
    assert_unsigned_failure(&sim.send(anonymous, &path).await.unwrap(), "INVALID_CLIENT");
}

#[tokio::test]
async fn iso_request_times_and_utf8_bodies_verify() {
    let sim = TestSim::start().await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    let path = refund_path();
    let body = serde_json::json!({
        "refundRequestId": "R-utf8",
        "paymentId": "P1",
        "refundAmount": {"currency": "USD", "value": "100"},
        "refundReason": "退款: 顧客都合 – size",
    })
    .to_string();
    let time = "2026-01-01T08:00:00+08:00";
    let signature = apo::signature::sign(
        &sim.keys.merchant_private,
        "POST",
        &path,
        CLIENT_ID,
        time,
        body.as_bytes(),
    )
    .unwrap();
    let request = sim
        .http
        .post(format!("{}{path}", sim.server.base_url()))
        .header("Client-Id", CLIENT_ID)
        .header("Request-Time", time)
        .header("Signature", signature)
        .body(body);
    sim.send(request, &path)
        .await
        .unwrap()
        .assert_signed(&sim.keys, "S", "SUCCESS");
}
