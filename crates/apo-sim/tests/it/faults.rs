//! Each fault mode over HTTP: what the merchant sees and whether Antom applied the refund.

use std::time::{Duration, Instant};

use apo_sim::{Fault, FaultConfig, SimConfig};

use crate::helpers::{TestSim, captured_payment, config, payment_id};

async fn refund_count(sim: &TestSim) -> usize {
    sim.sim().totals(&payment_id("P1")).unwrap().refund_count
}

async fn seeded() -> TestSim {
    let sim = TestSim::start().await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    sim
}

#[tokio::test]
async fn timeout_holds_the_connection_and_applies_nothing() {
    let sim = seeded().await;
    let started = Instant::now();
    let answer = sim.refund_with("R1", "P1", 100, Some("timeout")).await;
    assert!(answer.is_err_and(|error| error.is_timeout()));
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "held until the client gave up"
    );
    assert_eq!(refund_count(&sim).await, 0);
}

#[tokio::test]
async fn timeout_hold_is_bounded_with_a_bare_504() {
    let mut config = config();
    config.faults.timeout_hold_ms = 100;
    let sim = TestSim::start_with(config).await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    let answer = sim.refund_with("R1", "P1", 100, Some("timeout")).await.unwrap();
    assert_eq!(answer.status, 504);
    assert!(answer.body.is_empty() && answer.header("signature").is_none());
}

#[tokio::test]
async fn accepted_timeout_applies_the_refund_but_never_answers() {
    let sim = seeded().await;
    let answer = sim.refund_with("R1", "P1", 100, Some("accepted-timeout")).await;
    assert!(answer.is_err_and(|error| error.is_timeout()));
    assert_eq!(sim.sim().totals(&payment_id("P1")).unwrap().succeeded_minor_units, 100);
    // The merchant finds out by inquiry, or by retrying with the same id.
    assert_eq!(sim.inquiry("R1").await.json()["refundStatus"], "SUCCESS");
    sim.refund("R1", "P1", 100)
        .await
        .assert_signed(&sim.keys, "S", "SUCCESS");
    assert_eq!(refund_count(&sim).await, 1);
}

#[tokio::test]
async fn server_errors_and_rate_limits_apply_nothing() {
    let sim = seeded().await;
    let error = sim.refund_with("R1", "P1", 100, Some("5xx")).await.unwrap();
    assert_eq!(error.status, 500);
    assert!(error.header("signature").is_none());
    assert!(
        serde_json::from_slice::<serde_json::Value>(&error.body).is_err(),
        "an HTML error page"
    );

    let limited = sim.refund_with("R1", "P1", 100, Some("429")).await.unwrap();
    assert_eq!(limited.status, 429);
    limited.verify(&sim.keys.antom_public).expect("signed");
    assert_eq!(
        (limited.result_status().as_str(), limited.result_code().as_str()),
        ("U", "REQUEST_TRAFFIC_EXCEED_LIMIT")
    );
    assert_eq!(refund_count(&sim).await, 0);
}

#[tokio::test]
async fn garbage_unsigned_and_badly_signed_answers_still_apply_the_refund() {
    let sim = seeded().await;
    let garbage = sim.refund_with("R1", "P1", 100, Some("garbage")).await.unwrap();
    assert_eq!(garbage.status, 200);
    assert!(serde_json::from_slice::<serde_json::Value>(&garbage.body).is_err());

    let unsigned = sim.refund_with("R2", "P1", 100, Some("unsigned")).await.unwrap();
    assert_eq!((unsigned.status, unsigned.result_status().as_str()), (200, "S"));
    assert!(unsigned.header("signature").is_none());
    assert!(unsigned.verify(&sim.keys.antom_public).is_err());

    let badly_signed = sim.refund_with("R3", "P1", 100, Some("bad-signature")).await.unwrap();
    assert_eq!((badly_signed.status, badly_signed.result_status().as_str()), (200, "S"));
    assert!(badly_signed.header("signature").is_some());
    assert!(
        badly_signed.verify(&sim.keys.antom_public).is_err(),
        "the signature must not verify"
    );

    let totals = sim.sim().totals(&payment_id("P1")).unwrap();
    assert_eq!((totals.refund_count, totals.succeeded_minor_units), (3, 300));
}

#[tokio::test]
async fn latency_delays_the_answer() {
    let sim = seeded().await;
    let started = Instant::now();
    sim.refund_with("R1", "P1", 100, Some("latency=300"))
        .await
        .unwrap()
        .assert_signed(&sim.keys, "S", "SUCCESS");
    assert!(started.elapsed() >= Duration::from_millis(300));

    let mut config = config();
    config.faults.latency_ms = 250;
    let slow = TestSim::start_with(config).await;
    let started = Instant::now();
    slow.inquiry("R1")
        .await
        .assert_signed(&slow.keys, "F", "ORDER_NOT_EXIST");
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn unknown_fault_names_are_refused() {
    let sim = seeded().await;
    let answer = sim.refund_with("R1", "P1", 100, Some("explode")).await.unwrap();
    assert_eq!(answer.status, 400);
    assert_eq!(refund_count(&sim).await, 0);
}

#[tokio::test]
async fn scripted_faults_apply_per_refund_request_id_in_order() {
    let sim = seeded().await;
    sim.sim()
        .script_faults("R1", vec![vec![Fault::ServerError], vec![Fault::Unsigned], vec![]])
        .unwrap();
    assert_eq!(sim.refund_with("R1", "P1", 100, None).await.unwrap().status, 500);
    // Other ids are not affected.
    sim.refund("R2", "P1", 100)
        .await
        .assert_signed(&sim.keys, "S", "SUCCESS");
    let unsigned = sim.refund_with("R1", "P1", 100, None).await.unwrap();
    assert!(unsigned.header("signature").is_none());
    sim.refund("R1", "P1", 100)
        .await
        .assert_signed(&sim.keys, "S", "SUCCESS");
    assert_eq!(refund_count(&sim).await, 2);
}

/// What a run of refunds looked like to the merchant, one symbol per call.
async fn outcomes(config: SimConfig, calls: usize) -> Vec<String> {
    let sim = TestSim::start_with(config).await;
    sim.sim().seed_payment(captured_payment("P1", 1_000_000)).unwrap();
    let mut seen = Vec::new();
    for call in 0..calls {
        let answer = sim.refund_with(&format!("R{call}"), "P1", 1, None).await;
        seen.push(match answer {
            Err(_) => "timeout".to_owned(),
            Ok(answer) if answer.status != 200 => answer.status.to_string(),
            Ok(answer) => match serde_json::from_slice::<serde_json::Value>(&answer.body) {
                Err(_) => "garbage".to_owned(),
                Ok(json) => format!(
                    "{}{}",
                    json["result"]["resultStatus"].as_str().unwrap_or("?"),
                    if answer.verify(&sim.keys.antom_public).is_ok() {
                        ""
                    } else {
                        "-unverified"
                    }
                ),
            },
        });
    }
    seen
}

#[tokio::test]
async fn random_faults_follow_the_seed() {
    let mixed = |seed| {
        let mut config = config();
        config.seed = seed;
        config.faults = FaultConfig {
            u_share: 0.3,
            server_error_share: 0.15,
            rate_limit_share: 0.15,
            garbage_share: 0.1,
            unsigned_share: 0.1,
            bad_signature_share: 0.1,
            ..config.faults.clone()
        };
        config
    };
    let first = outcomes(mixed(7), 40).await;
    assert_eq!(first, outcomes(mixed(7), 40).await, "same seed, same faults");
    assert_ne!(first, outcomes(mixed(8), 40).await, "another seed, other faults");
    for kind in ["S", "U", "500", "429", "garbage", "S-unverified"] {
        assert!(first.iter().any(|seen| seen == kind), "{kind} drawn in {first:?}");
    }
}

#[tokio::test]
async fn benchmark_mode_has_no_faults_or_latency() {
    let mut config = config();
    config.faults = FaultConfig {
        latency_ms: 2_000,
        server_error_share: 1.0,
        ..FaultConfig::default()
    };
    let started = Instant::now();
    let seen = outcomes(config.benchmark(), 20).await;
    assert!(seen.iter().all(|seen| seen == "S"), "{seen:?}");
    assert!(started.elapsed() < Duration::from_millis(2_000));
}

#[tokio::test]
async fn shutdown_releases_held_connections() {
    let mut config = config();
    config.faults.timeout_hold_ms = 60_000;
    let sim = TestSim::start_with(config).await;
    let held = {
        let http = reqwest::Client::new();
        let url = format!("{}{}", sim.server.base_url(), crate::helpers::inquiry_path());
        let time = "1";
        let body = "{\"refundRequestId\":\"R1\"}";
        let path = crate::helpers::inquiry_path();
        let signature = apo::signature::sign(
            &sim.keys.merchant_private,
            "POST",
            &path,
            crate::helpers::CLIENT_ID,
            time,
            body.as_bytes(),
        )
        .unwrap();
        tokio::spawn(
            http.post(url)
                .header("Client-Id", crate::helpers::CLIENT_ID)
                .header("Request-Time", time)
                .header("Signature", signature)
                .header("X-Sim-Fault", "timeout")
                .body(body)
                .send(),
        )
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), sim.server.shutdown())
        .await
        .expect("shutdown does not wait for the hold")
        .expect("clean shutdown");
    assert!(started.elapsed() < Duration::from_secs(5));
    let response = held.await.unwrap().expect("released with an answer");
    assert_eq!(response.status().as_u16(), 504);
}
