//! The `apo` adapter against the simulator: every outcome and every fault
//! mode, end to end over loopback HTTP. The two sides share only the signing
//! code; their JSON structs are separate, so a field one of them gets wrong
//! fails here.

use apo::{
    ApoClient, ApoConfig, InquiryOutcome, InquiryRefundRequest, NotificationCheck, RefundOutcome, RefundRequest,
    RequestTimeStyle, RetryPolicy, UnknownReason,
};
use apo_sim::{Fault, FaultConfig, MethodPolicy, Policies, RefundState};
use domain::{RefundRequestId, ResultCode};

use crate::helpers::{CLIENT_ID, Receiver, TestSim, captured_payment, config, eventually, payment_id, usd};

pub(crate) fn client(sim: &TestSim, retry: RetryPolicy) -> ApoClient {
    let mut config = ApoConfig::new(
        sim.server.base_url(),
        CLIENT_ID,
        sim.keys.merchant_private.clone(),
        sim.keys.antom_public.clone(),
    );
    config.retry = retry;
    config.request_timeout_ms = 400;
    ApoClient::new(config).unwrap()
}

pub(crate) fn fast_retries(attempts_max: u32) -> RetryPolicy {
    RetryPolicy {
        attempts_max,
        backoff_initial_ms: 10,
        backoff_max_ms: 20,
    }
}

pub(crate) fn request(id: &str, payment: &str, amount: u64) -> RefundRequest {
    let mut request = RefundRequest::new(RefundRequestId::parse(id).unwrap(), payment_id(payment), usd(amount));
    request.refund_reason = Some("customer request".to_owned());
    request
}

fn inquiry(id: &str) -> InquiryRefundRequest {
    InquiryRefundRequest::by_refund_request_id(RefundRequestId::parse(id).unwrap())
}

async fn seeded() -> TestSim {
    let sim = TestSim::start().await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    sim
}

/// Runs one refund of 100 with the given scripted faults and no retries.
async fn refund_with(sim: &TestSim, id: &str, faults: Vec<Fault>) -> RefundOutcome {
    sim.sim().script_faults(id, vec![faults]).unwrap();
    client(sim, RetryPolicy::none())
        .refund(&request(id, "P1", 100))
        .await
        .unwrap()
}

fn unknown(outcome: &RefundOutcome) -> &UnknownReason {
    outcome
        .unknown_reason()
        .unwrap_or_else(|| panic!("expected Unknown, got {outcome:?}"))
}

#[tokio::test]
async fn s_is_succeeded_with_the_refund_id() {
    let sim = seeded().await;
    let outcome = client(&sim, RetryPolicy::none())
        .refund(&request("R1", "P1", 400))
        .await
        .unwrap();
    let RefundOutcome::Succeeded {
        refund_id,
        refund_amount,
        ..
    } = outcome
    else {
        panic!("expected Succeeded, got {outcome:?}");
    };
    let recorded = sim.sim().refund(&RefundRequestId::parse("R1").unwrap()).unwrap();
    assert_eq!(refund_id, recorded.refund_id);
    assert_eq!(refund_amount, usd(400));
}

#[tokio::test]
async fn iso_request_times_are_accepted_too() {
    let sim = seeded().await;
    let mut config = client(&sim, RetryPolicy::none()).config().clone();
    config.request_time_style = RequestTimeStyle::Iso8601;
    let outcome = ApoClient::new(config)
        .unwrap()
        .refund(&request("R1", "P1", 1))
        .await
        .unwrap();
    assert!(matches!(outcome, RefundOutcome::Succeeded { .. }), "{outcome:?}");
}

#[tokio::test]
async fn f_is_failed_with_antoms_code() {
    let mut config = config();
    config.policies = Policies::default().with_method(
        "CARD",
        MethodPolicy {
            multiple_refunds: false,
            ..MethodPolicy::default()
        },
    );
    let sim = TestSim::start_with(config).await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    let apo = client(&sim, RetryPolicy::none());
    let failed_with = |outcome: RefundOutcome| match outcome {
        RefundOutcome::Failed { code, .. } => code,
        other => panic!("expected Failed, got {other:?}"),
    };
    let over = failed_with(apo.refund(&request("R1", "P1", 1001)).await.unwrap());
    assert_eq!(over, ResultCode::RefundAmountExceed);
    let unknown_payment = failed_with(apo.refund(&request("R2", "NOPE", 1)).await.unwrap());
    assert_eq!(unknown_payment, ResultCode::OrderNotExist);
    let eur = RefundRequest::new(
        RefundRequestId::parse("R3").unwrap(),
        payment_id("P1"),
        domain::Money::parse("a", "EUR", "1").unwrap(),
    );
    assert_eq!(
        failed_with(apo.refund(&eur).await.unwrap()),
        ResultCode::CurrencyNotSupport
    );
    assert!(matches!(
        apo.refund(&request("R4", "P1", 10)).await.unwrap(),
        RefundOutcome::Succeeded { .. }
    ));
    let second = failed_with(apo.refund(&request("R5", "P1", 10)).await.unwrap());
    assert_eq!(second, ResultCode::MultipleRefundsNotSupported);
    let changed = failed_with(apo.refund(&request("R4", "P1", 11)).await.unwrap());
    assert_eq!(changed, ResultCode::RepeatReqInconsistent);
}

#[tokio::test]
async fn u_is_unknown_and_inquiry_settles_it() {
    let sim = seeded().await;
    let outcome = refund_with(&sim, "R1", vec![Fault::Processing]).await;
    assert!(
        matches!(unknown(&outcome), UnknownReason::ResultUnknown { .. }),
        "{outcome:?}"
    );
    let apo = client(&sim, RetryPolicy::none());
    assert_eq!(
        apo.inquiry_refund(&inquiry("R1")).await.unwrap(),
        InquiryOutcome::Processing
    );
    eventually("the refund to settle", || {
        sim.sim()
            .refund(&RefundRequestId::parse("R1").unwrap())
            .is_some_and(|refund| refund.state.is_final())
    })
    .await;
    let settled = apo.inquiry_refund(&inquiry("R1")).await.unwrap();
    assert!(matches!(settled, InquiryOutcome::Succeeded { .. }), "{settled:?}");

    let failing = refund_with(&sim, "R2", vec![Fault::ProcessingThenFail]).await;
    assert!(failing.unknown_reason().is_some());
    eventually("the refund to fail", || {
        sim.sim()
            .refund(&RefundRequestId::parse("R2").unwrap())
            .is_some_and(|refund| matches!(refund.state, RefundState::Failed { .. }))
    })
    .await;
    let failed = apo.inquiry_refund(&inquiry("R2")).await.unwrap();
    assert!(matches!(failed, InquiryOutcome::Failed { .. }), "{failed:?}");
}

#[tokio::test]
async fn a_refund_antom_never_received_is_not_found() {
    let sim = seeded().await;
    let outcome = refund_with(&sim, "R1", vec![Fault::Timeout]).await;
    assert_eq!(unknown(&outcome), &UnknownReason::Timeout);
    let apo = client(&sim, RetryPolicy::none());
    let not_found = apo.inquiry_refund(&inquiry("R1")).await.unwrap();
    assert!(
        matches!(&not_found, InquiryOutcome::NotFound { code, .. } if *code == ResultCode::OrderNotExist),
        "{not_found:?}"
    );
    // Safe to resend with the same refundRequestId.
    let resent = apo.refund(&request("R1", "P1", 100)).await.unwrap();
    assert!(matches!(resent, RefundOutcome::Succeeded { .. }), "{resent:?}");
}

#[tokio::test]
async fn accepted_but_timed_out_is_unknown_and_inquiry_finds_the_refund() {
    let sim = seeded().await;
    let outcome = refund_with(&sim, "R1", vec![Fault::AcceptedTimeout]).await;
    assert_eq!(unknown(&outcome), &UnknownReason::Timeout);
    let found = client(&sim, RetryPolicy::none())
        .inquiry_refund(&inquiry("R1"))
        .await
        .unwrap();
    assert!(matches!(found, InquiryOutcome::Succeeded { .. }), "{found:?}");
    assert_eq!(sim.sim().totals(&payment_id("P1")).unwrap().succeeded_minor_units, 100);
}

#[tokio::test]
async fn transport_and_trust_faults_are_unknown() {
    let sim = seeded().await;
    let outcome = refund_with(&sim, "R1", vec![Fault::ServerError]).await;
    assert_eq!(unknown(&outcome), &UnknownReason::HttpStatus { status: 500 });
    let outcome = refund_with(&sim, "R2", vec![Fault::RateLimited]).await;
    assert_eq!(unknown(&outcome), &UnknownReason::HttpStatus { status: 429 });
    let outcome = refund_with(&sim, "R3", vec![Fault::Garbage]).await;
    assert!(
        matches!(unknown(&outcome), UnknownReason::Unsigned { .. }),
        "{outcome:?}"
    );
    let outcome = refund_with(&sim, "R4", vec![Fault::Unsigned]).await;
    assert!(
        matches!(unknown(&outcome), UnknownReason::Unsigned { .. }),
        "{outcome:?}"
    );
    let outcome = refund_with(&sim, "R5", vec![Fault::BadSignature]).await;
    assert!(
        matches!(unknown(&outcome), UnknownReason::BadSignature { .. }),
        "{outcome:?}"
    );
    // 5xx and 429 applied nothing; garbage, unsigned and bad signature did refund.
    let refunded: Vec<String> = sim
        .sim()
        .refunds_of(&payment_id("P1"))
        .iter()
        .map(|refund| refund.refund_request_id.to_string())
        .collect();
    assert_eq!(refunded, vec!["R3", "R4", "R5"]);
}

#[tokio::test]
async fn a_wrong_merchant_key_is_refused_unsigned_and_stays_unknown() {
    let sim = seeded().await;
    let mut config = client(&sim, RetryPolicy::none()).config().clone();
    config.merchant_private_key = sim.keys.antom_private.clone();
    let outcome = ApoClient::new(config)
        .unwrap()
        .refund(&request("R1", "P1", 100))
        .await
        .unwrap();
    assert_eq!(
        unknown(&outcome),
        &UnknownReason::Unsigned {
            untrusted_result_code: Some("INVALID_SIGNATURE".to_owned())
        }
    );
    assert_eq!(sim.sim().totals(&payment_id("P1")).unwrap().refund_count, 0);
}

#[tokio::test]
async fn the_adapter_retries_transient_faults_with_the_same_request_id() {
    let sim = seeded().await;
    sim.sim()
        .script_faults(
            "R1",
            vec![
                vec![Fault::ServerError],
                vec![Fault::RateLimited],
                vec![Fault::Timeout],
                vec![],
            ],
        )
        .unwrap();
    let outcome = client(&sim, fast_retries(4))
        .refund(&request("R1", "P1", 100))
        .await
        .unwrap();
    assert!(matches!(outcome, RefundOutcome::Succeeded { .. }), "{outcome:?}");
    let totals = sim.sim().totals(&payment_id("P1")).unwrap();
    assert_eq!((totals.refund_count, totals.succeeded_minor_units), (1, 100));
}

#[tokio::test]
async fn inquiry_faults_are_unknown() {
    let sim = seeded().await;
    let apo = client(&sim, RetryPolicy::none());
    assert!(matches!(
        apo.refund(&request("R1", "P1", 100)).await.unwrap(),
        RefundOutcome::Succeeded { .. }
    ));
    for (faults, expected) in [
        (
            FaultConfig {
                server_error_share: 1.0,
                ..FaultConfig::default()
            },
            "HttpStatus",
        ),
        (
            FaultConfig {
                unsigned_share: 1.0,
                ..FaultConfig::default()
            },
            "Unsigned",
        ),
        (
            FaultConfig {
                bad_signature_share: 1.0,
                ..FaultConfig::default()
            },
            "BadSignature",
        ),
        (
            FaultConfig {
                timeout_share: 1.0,
                timeout_hold_ms: 1_000,
                ..FaultConfig::default()
            },
            "Timeout",
        ),
    ] {
        sim.sim().set_faults(faults).unwrap();
        let outcome = apo.inquiry_refund(&inquiry("R1")).await.unwrap();
        let reason = outcome
            .unknown_reason()
            .unwrap_or_else(|| panic!("expected Unknown, got {outcome:?}"));
        assert!(
            format!("{reason:?}").starts_with(expected),
            "{reason:?} should be {expected}"
        );
    }
}

#[tokio::test]
async fn the_adapter_accepts_the_simulators_notifications() {
    let receiver = Receiver::start(0).await;
    let mut config = config();
    config.notify_url = Some(receiver.url.clone());
    let sim = TestSim::start_with(config).await;
    sim.sim().seed_payment(captured_payment("P1", 1000)).unwrap();
    let outcome = client(&sim, RetryPolicy::none())
        .refund(&request("R1", "P1", 100))
        .await
        .unwrap();
    let RefundOutcome::Succeeded { refund_id, .. } = outcome else {
        panic!("expected Succeeded, got {outcome:?}");
    };
    eventually("the notification", || receiver.received().len() == 1).await;
    let received = &receiver.received()[0];
    let check = NotificationCheck {
        antom_public_key: &sim.keys.antom_public,
        client_id: CLIENT_ID,
        clock_skew_max_ms: 60_000,
    };
    let notification = apo::verify_notification(
        &check,
        "POST",
        &received.path,
        &received.headers,
        &received.body,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let apo::Notification::Refund(refund) = notification else {
        panic!("expected a refund notification, got {notification:?}");
    };
    assert_eq!(refund.refund_request_id.as_str(), "R1");
    assert_eq!(refund.refund_amount, Some(usd(100)));
    assert!(
        matches!(&refund.outcome, apo::notification::RefundNotificationOutcome::Succeeded { refund_id: id, .. } if *id == refund_id),
        "{:?}",
        refund.outcome
    );
}
