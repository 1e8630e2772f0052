//! The client over loopback against a tiny stand-in for Antom that checks
//! our signature and signs its answers with the test Antom key. It proves
//! the HTTP plumbing: paths, headers, exact-bytes signing, timeouts, 5xx,
//! unsigned answers and the bounded retries with an unchanged body.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apo::retry::RetryPolicy;
use apo::{
    ApoClient, ApoConfig, ClientError, InquiryOutcome, InquiryRefundRequest, RefundOutcome, RefundRequest,
    RequestTimeStyle, UnknownReason,
};
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use domain::{Money, PaymentId, RefundRequestId, ResultCode};
use serde_json::json;

use crate::support::{CLIENT_ID, keys};

/// What the stand-in answers to one request.
#[derive(Clone)]
enum Answer {
    /// A body signed with Antom's key, with this HTTP status.
    Signed(u16, serde_json::Value),
    /// A body without any signature headers.
    Unsigned(u16, serde_json::Value),
    /// Sleep this long, then answer a signed success.
    Slow(Duration),
    /// A signed body of this many bytes.
    Huge(usize),
}

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    client_id: String,
    request_time: String,
    content_type: String,
    body: Vec<u8>,
    signature_valid: bool,
}

#[derive(Clone)]
struct FakeAntom {
    /// Answers in order; the last one repeats.
    answers: Arc<Vec<Answer>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn handle(fake: FakeAntom, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let keys = keys();
    let seen = Seen {
        path: uri.path().to_owned(),
        client_id: header(&headers, "client-id"),
        request_time: header(&headers, "request-time"),
        content_type: header(&headers, "content-type"),
        body: body.to_vec(),
        signature_valid: apo::verify(
            &keys.merchant_public,
            "POST",
            uri.path(),
            &header(&headers, "client-id"),
            &header(&headers, "request-time"),
            &body,
            &header(&headers, "signature"),
        )
        .is_ok(),
    };
    let client_id = seen.client_id.clone();
    let index = {
        let mut all = fake.seen.lock().expect("lock");
        all.push(seen);
        all.len() - 1
    };
    let answer = fake.answers[index.min(fake.answers.len() - 1)].clone();
    let (status, body, signed) = match answer {
        Answer::Signed(status, body) => (status, serde_json::to_vec(&body).expect("json"), true),
        Answer::Unsigned(status, body) => (status, serde_json::to_vec(&body).expect("json"), false),
        Answer::Slow(wait) => {
            tokio::time::sleep(wait).await;
            (200, serde_json::to_vec(&success_body()).expect("json"), true)
        }
        Answer::Huge(bytes) => (200, vec![b' '; bytes], true),
    };
    let status = StatusCode::from_u16(status).expect("status");
    if !signed {
        return (status, body).into_response();
    }
    let response_time = "2026-01-01T08:00:01+08:00";
    let signature = apo::sign(
        &keys.antom_private,
        "POST",
        uri.path(),
        &client_id,
        response_time,
        &body,
    )
    .expect("signs");
    (
        status,
        [
            ("signature", signature),
            ("response-time", response_time.to_owned()),
            ("client-id", client_id),
        ],
        body,
    )
        .into_response()
}

async fn spawn_antom(answers: Vec<Answer>) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let fake = FakeAntom {
        answers: Arc::new(answers),
        seen: Arc::new(Mutex::new(Vec::new())),
    };
    let seen = fake.seen.clone();
    let app = Router::new()
        .fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| handle(fake.clone(), uri, headers, body));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (address, seen)
}

fn config(address: SocketAddr, client_id: &str) -> ApoConfig {
    let keys = keys();
    let mut config = ApoConfig::new(
        format!("http://{address}/"),
        client_id,
        keys.merchant_private,
        keys.antom_public,
    );
    config.retry = RetryPolicy {
        attempts_max: 3,
        backoff_initial_ms: 5,
        backoff_max_ms: 20,
    };
    config.request_timeout_ms = 2_000;
    config
}

fn client(address: SocketAddr) -> ApoClient {
    ApoClient::new(config(address, CLIENT_ID)).expect("client")
}

fn refund_request() -> RefundRequest {
    let mut request = RefundRequest::new(
        RefundRequestId::parse("R-0001").expect("id"),
        PaymentId::parse("20240101194010800100188000000001").expect("id"),
        Money::parse("refundAmount", "USD", "1000").expect("money"),
    );
    request.refund_reason = Some("退款: 顧客都合".into());
    request
}

fn success_body() -> serde_json::Value {
    json!({
        "result": {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "success"},
        "refundRequestId": "R-0001",
        "refundId": "RF-1",
        "paymentId": "20240101194010800100188000000001",
        "refundAmount": {"currency": "USD", "value": "1000"},
        "refundTime": "2026-01-01T08:00:01+08:00"
    })
}

fn seen(log: &Arc<Mutex<Vec<Seen>>>) -> Vec<Seen> {
    log.lock().expect("lock").clone()
}

#[tokio::test]
async fn a_signed_success_over_http() {
    let (address, log) = spawn_antom(vec![Answer::Signed(200, success_body())]).await;
    let outcome = client(address).refund(&refund_request()).await.expect("sent");
    assert!(
        matches!(outcome, RefundOutcome::Succeeded { ref refund_id, .. } if refund_id.as_str() == "RF-1"),
        "{outcome:?}"
    );
    let seen = seen(&log);
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.path, "/ams/sandbox/api/v1/payments/refund", "sandbox rule");
    assert_eq!(request.client_id, CLIENT_ID);
    assert_eq!(request.content_type, "application/json; charset=UTF-8");
    assert!(
        request.request_time.bytes().all(|byte| byte.is_ascii_digit()),
        "epoch ms by default"
    );
    assert!(
        request.signature_valid,
        "our signature verifies over the exact bytes sent"
    );
    let sent: serde_json::Value = serde_json::from_slice(&request.body).expect("json");
    assert_eq!(sent["refundRequestId"], "R-0001");
    assert_eq!(sent["refundAmount"], json!({"currency": "USD", "value": "1000"}));
    assert_eq!(sent["refundReason"], "退款: 顧客都合");
}

#[tokio::test]
async fn live_client_ids_call_live_paths_and_iso_times_sign() {
    let (address, log) = spawn_antom(vec![Answer::Signed(200, success_body())]).await;
    let mut config = config(address, "2188120000000000");
    config.request_time_style = RequestTimeStyle::Iso8601;
    let client = ApoClient::new(config).expect("client");
    let outcome = client.refund(&refund_request()).await.expect("sent");
    assert!(matches!(outcome, RefundOutcome::Succeeded { .. }), "{outcome:?}");
    let seen = seen(&log);
    assert_eq!(seen[0].path, "/ams/api/v1/payments/refund");
    assert!(apo::request_time::parse_request_time(&seen[0].request_time).is_some());
    assert!(seen[0].request_time.ends_with("+00:00"), "{}", seen[0].request_time);
    assert!(seen[0].signature_valid);
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_body_then_unknown() {
    let (address, log) = spawn_antom(vec![Answer::Signed(503, json!({}))]).await;
    let outcome = client(address).refund(&refund_request()).await.expect("sent");
    assert_eq!(
        outcome,
        RefundOutcome::Unknown {
            reason: UnknownReason::HttpStatus { status: 503 }
        }
    );
    let seen = seen(&log);
    assert_eq!(seen.len(), 3, "bounded by attempts_max");
    assert!(
        seen.iter()
            .all(|request| request.body == seen[0].body && request.signature_valid)
    );
}

#[tokio::test]
async fn an_antom_u_is_retried_until_it_settles() {
    let processing = json!({"result": {"resultCode": "UNKNOWN_EXCEPTION", "resultStatus": "U"}});
    let (address, log) = spawn_antom(vec![
        Answer::Signed(200, processing),
        Answer::Signed(200, success_body()),
    ])
    .await;
    let outcome = client(address).refund(&refund_request()).await.expect("sent");
    assert!(matches!(outcome, RefundOutcome::Succeeded { .. }), "{outcome:?}");
    let seen = seen(&log);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, seen[1].body, "same refundRequestId, same bytes");
}

#[tokio::test]
async fn a_verified_failure_is_not_retried() {
    let failed =
        json!({"result": {"resultCode": "REFUND_AMOUNT_EXCEED", "resultStatus": "F", "resultMessage": "too much"}});
    let (address, log) = spawn_antom(vec![Answer::Signed(200, failed)]).await;
    let outcome = client(address).refund(&refund_request()).await.expect("sent");
    assert_eq!(
        outcome,
        RefundOutcome::Failed {
            code: ResultCode::RefundAmountExceed,
            message: "too much".into()
        }
    );
    assert_eq!(seen(&log).len(), 1);
}

#[tokio::test]
async fn an_unsigned_answer_is_unknown_and_not_retried() {
    let rejected = json!({"result": {"resultCode": "INVALID_SIGNATURE", "resultStatus": "F"}});
    let (address, log) = spawn_antom(vec![Answer::Unsigned(200, rejected)]).await;
    let outcome = client(address).refund(&refund_request()).await.expect("sent");
    assert_eq!(
        outcome,
        RefundOutcome::Unknown {
            reason: UnknownReason::Unsigned {
                untrusted_result_code: Some("INVALID_SIGNATURE".into())
            }
        }
    );
    assert_eq!(seen(&log).len(), 1);
}

#[tokio::test]
async fn a_slow_antom_times_out_into_unknown() {
    let (address, log) = spawn_antom(vec![Answer::Slow(Duration::from_millis(1_500))]).await;
    let mut config = config(address, CLIENT_ID);
    config.request_timeout_ms = 150;
    config.retry = RetryPolicy {
        attempts_max: 2,
        backoff_initial_ms: 1,
        backoff_max_ms: 1,
    };
    let outcome = ApoClient::new(config)
        .expect("client")
        .refund(&refund_request())
        .await
        .expect("sent");
    assert_eq!(
        outcome,
        RefundOutcome::Unknown {
            reason: UnknownReason::Timeout
        }
    );
    assert_eq!(seen(&log).len(), 2, "a timeout is transient: retried once");
}

#[tokio::test]
async fn a_refused_connection_is_unknown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let mut config = config(address, CLIENT_ID);
    config.retry = RetryPolicy::none();
    let outcome = ApoClient::new(config)
        .expect("client")
        .refund(&refund_request())
        .await
        .expect("sent");
    assert!(
        matches!(
            outcome,
            RefundOutcome::Unknown {
                reason: UnknownReason::Connection { .. }
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn an_oversized_answer_is_unknown() {
    let (address, _log) = spawn_antom(vec![Answer::Huge(apo::client::RESPONSE_BODY_BYTES_MAX + 1)]).await;
    let outcome = client(address).refund(&refund_request()).await.expect("sent");
    assert_eq!(
        outcome,
        RefundOutcome::Unknown {
            reason: UnknownReason::BodyTooLarge {
                max: apo::client::RESPONSE_BODY_BYTES_MAX
            }
        }
    );
}

#[tokio::test]
async fn inquiry_over_http() {
    let not_found = json!({"result": {"resultCode": "ORDER_NOT_EXIST", "resultStatus": "F", "resultMessage": "no"}});
    let (address, log) = spawn_antom(vec![Answer::Signed(200, not_found)]).await;
    let request = InquiryRefundRequest::by_refund_request_id(RefundRequestId::parse("R-0001").expect("id"));
    let outcome = client(address).inquiry_refund(&request).await.expect("sent");
    assert_eq!(
        outcome,
        InquiryOutcome::NotFound {
            code: ResultCode::OrderNotExist,
            message: "no".into()
        }
    );
    let seen = seen(&log);
    assert_eq!(seen[0].path, "/ams/sandbox/api/v1/payments/inquiryRefund");
    assert_eq!(seen[0].body, br#"{"refundRequestId":"R-0001"}"#);
    assert!(seen[0].signature_valid);
}

#[tokio::test]
async fn invalid_requests_are_errors_and_nothing_is_sent() {
    let (address, log) = spawn_antom(vec![Answer::Signed(200, success_body())]).await;
    let mut request = refund_request();
    request.refund_reason = Some("x".repeat(300));
    assert!(matches!(
        client(address).refund(&request).await,
        Err(ClientError::InvalidRequest(_))
    ));
    let empty = InquiryRefundRequest {
        refund_request_id: None,
        refund_id: None,
        merchant_account_id: None,
    };
    assert!(matches!(
        client(address).inquiry_refund(&empty).await,
        Err(ClientError::InvalidRequest(_))
    ));
    assert!(seen(&log).is_empty());
}

#[test]
fn invalid_configurations_are_refused() {
    let address: SocketAddr = "127.0.0.1:9".parse().expect("address");
    let mut bad_url = config(address, CLIENT_ID);
    bad_url.base_url = "open-sea-global.alipay.com".into();
    assert!(matches!(
        ApoClient::new(bad_url),
        Err(ClientError::InvalidConfig { .. })
    ));
    assert!(matches!(
        ApoClient::new(config(address, "")),
        Err(ClientError::InvalidConfig { .. })
    ));
    assert!(matches!(
        ApoClient::new(config(address, "bad\nid")),
        Err(ClientError::InvalidConfig { .. })
    ));
    let mut zero_timeout = config(address, CLIENT_ID);
    zero_timeout.connect_timeout_ms = 0;
    assert!(matches!(
        ApoClient::new(zero_timeout),
        Err(ClientError::InvalidConfig { .. })
    ));
}

#[test]
fn debug_of_config_and_client_shows_no_key_material() {
    let address: SocketAddr = "127.0.0.1:9".parse().expect("address");
    let config = config(address, CLIENT_ID);
    let client = ApoClient::new(config.clone()).expect("client");
    for debug in [format!("{config:?}"), format!("{client:?}")] {
        assert!(debug.contains(CLIENT_ID), "{debug}");
        for pem in [
            crate::support::vector_file("merchant_private_pkcs8.pem"),
            crate::support::vector_file("antom_public.pem"),
        ] {
            for line in pem.lines().filter(|line| !line.starts_with("-----")) {
                for chunk in line.as_bytes().chunks(8) {
                    let chunk = std::str::from_utf8(chunk).expect("ascii");
                    assert!(!debug.contains(chunk), "Debug leaks key text {chunk:?}");
                }
            }
        }
    }
}
