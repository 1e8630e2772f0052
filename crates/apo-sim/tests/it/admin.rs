//! The `/sim/` admin API, driven over HTTP as a demo or an external test would.

use serde_json::{Value, json};

use crate::helpers::{TestSim, payment_id};

async fn admin(sim: &TestSim, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", sim.server.base_url());
    let request = match method {
        "GET" => sim.http.get(url),
        _ => sim.http.post(url),
    };
    let request = match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(body.to_string()),
        None => request,
    };
    let response = request.send().await.expect("admin answered");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("admin body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn payments_are_seeded_updated_and_shown_over_http() {
    let sim = TestSim::start().await;
    let seed = json!({
        "paymentId": "P1",
        "paymentAmount": {"currency": "JPY", "value": "5000"},
        "paymentMethodType": "CARD",
        "paymentTime": "2026-01-01T08:00:00+08:00",
        "captureNeeded": true,
    });
    assert_eq!(admin(&sim, "POST", "/sim/payments", Some(seed.clone())).await.0, 201);
    assert_eq!(admin(&sim, "POST", "/sim/payments", Some(seed)).await.0, 409);
    let payment = sim.sim().payment(&payment_id("P1")).unwrap();
    assert_eq!(payment.captured_amount, None);
    assert_eq!(payment.payment_amount.currency().code(), "JPY");

    let body = crate::helpers::refund_body("R1", "P1", "JPY", 1000);
    let refused = sim
        .post_signed(&crate::helpers::refund_path(), &body, None)
        .await
        .unwrap();
    refused.assert_signed(&sim.keys, "F", "ORDER_STATUS_INVALID");

    let (status, view) = admin(
        &sim,
        "POST",
        "/sim/payments/P1",
        Some(json!({"capturedAmount": {"currency": "JPY", "value": "5000"}})),
    )
    .await;
    assert_eq!((status, view["capturedMinorUnits"].as_u64()), (200, Some(5000)));
    let accepted = sim
        .post_signed(&crate::helpers::refund_path(), &body, None)
        .await
        .unwrap();
    accepted.assert_signed(&sim.keys, "S", "SUCCESS");

    let (status, view) = admin(&sim, "GET", "/sim/payments/P1", None).await;
    assert_eq!(status, 200);
    assert_eq!(view["refundableMinorUnits"], 4000);
    assert_eq!(view["refunds"][0]["refundRequestId"], "R1");
    assert_eq!(view["refunds"][0]["refundStatus"], "SUCCESS");

    assert_eq!(admin(&sim, "GET", "/sim/payments/NOPE", None).await.0, 404);
    let bad =
        json!({"paymentId": "P2", "paymentAmount": {"currency": "USD", "value": "-1"}, "paymentMethodType": "CARD"});
    let (status, error) = admin(&sim, "POST", "/sim/payments", Some(bad)).await;
    assert_eq!(status, 400);
    assert!(
        error["error"]
            .as_str()
            .unwrap_or_default()
            .contains("paymentAmount.value")
    );
}

#[tokio::test]
async fn faults_scripts_and_settling_over_http() {
    let sim = TestSim::start().await;
    let seed = json!({"paymentId": "P1", "paymentAmount": {"currency": "USD", "value": "1000"}, "paymentMethodType": "ALIPAY_CN"});
    assert_eq!(admin(&sim, "POST", "/sim/payments", Some(seed)).await.0, 201);

    let (status, faults) = admin(
        &sim,
        "POST",
        "/sim/faults",
        Some(json!({"uShare": 1.0, "timeoutHoldMs": 500})),
    )
    .await;
    assert_eq!((status, faults["uShare"].as_f64()), (200, Some(1.0)));
    assert_eq!(admin(&sim, "GET", "/sim/faults", None).await.1["timeoutHoldMs"], 500);
    assert_eq!(
        admin(&sim, "POST", "/sim/faults", Some(json!({"uShare": 2.0}))).await.0,
        400
    );
    sim.refund("R1", "P1", 100)
        .await
        .assert_signed(&sim.keys, "U", "REFUND_IN_PROCESS");

    let script = json!({"refundRequestId": "R2", "calls": ["5xx", "none"]});
    assert_eq!(admin(&sim, "POST", "/sim/scripts", Some(script)).await.0, 204);
    assert_eq!(sim.refund_with("R2", "P1", 100, None).await.unwrap().status, 500);
    // "none" overrides the run's U share for this one call.
    sim.refund("R2", "P1", 100)
        .await
        .assert_signed(&sim.keys, "S", "SUCCESS");
    let bad_script = json!({"refundRequestId": "R3", "calls": ["explode"]});
    assert_eq!(admin(&sim, "POST", "/sim/scripts", Some(bad_script)).await.0, 400);

    let (_, view) = admin(&sim, "GET", "/sim/payments/P1", None).await;
    assert_eq!(
        (
            view["succeededMinorUnits"].as_u64(),
            view["processingMinorUnits"].as_u64()
        ),
        (Some(100), Some(100))
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(crate::helpers::WAIT_MS_MAX);
    loop {
        assert_eq!(admin(&sim, "POST", "/sim/settle", None).await.0, 204);
        let (_, view) = admin(&sim, "GET", "/sim/payments/P1", None).await;
        if view["succeededMinorUnits"] == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "R1 never settled: {view}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (status, log) = admin(&sim, "GET", "/sim/notifications", None).await;
    assert_eq!(
        (status, log.as_array().map(Vec::len)),
        (200, Some(0)),
        "no notification URL configured"
    );
}

#[tokio::test]
async fn payments_seed_from_a_json_array_and_bad_entries_are_named() {
    let sim = TestSim::start().await;
    let payments = json!([
        {"paymentId": "P1", "paymentAmount": {"currency": "USD", "value": "1000"}, "paymentMethodType": "CARD"},
        {"paymentId": "P2", "paymentAmount": {"currency": "USD", "value": "1000"}, "paymentMethodType": "CARD",
         "captureNeeded": true, "chargeback": "UNDETERMINED"},
    ]);
    assert_eq!(sim.sim().seed_payments_json(&payments.to_string()).unwrap(), 2);
    let p2 = sim.sim().payment(&payment_id("P2")).unwrap();
    assert_eq!(
        (p2.captured_amount, p2.chargeback),
        (None, apo_sim::Chargeback::Undetermined)
    );

    let bad = json!([
        {"paymentId": "P3", "paymentAmount": {"currency": "USD", "value": "1"}, "paymentMethodType": "CARD"},
        {"paymentId": "P4", "paymentAmount": {"currency": "USD", "value": "x"}, "paymentMethodType": "CARD"},
    ]);
    let error = sim.sim().seed_payments_json(&bad.to_string()).unwrap_err().to_string();
    assert!(
        error.contains("payments[1]") && error.contains("paymentAmount.value"),
        "{error}"
    );
    assert!(sim.sim().seed_payments_json("{}").is_err());
}

#[tokio::test]
async fn the_api_router_alone_has_no_admin_routes() {
    let sim = TestSim::start().await;
    let api_only = sim.sim().api_router();
    let listener = tokio::net::TcpListener::bind(crate::helpers::LOOPBACK).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, api_only).await });
    let seed =
        json!({"paymentId": "P1", "paymentAmount": {"currency": "USD", "value": "1"}, "paymentMethodType": "CARD"});
    let response = sim
        .http
        .post(format!("http://{addr}/sim/payments"))
        .header("content-type", "application/json")
        .body(seed.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let refund = sim
        .http
        .post(format!("http://{addr}{}", crate::helpers::refund_path()))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        refund.status().as_u16(),
        200,
        "the Antom API is there (answering INVALID_CLIENT)"
    );
    server.abort();
}
