//! Verifying and parsing Antom's notifications.

use apo::notification::{
    CLOCK_SKEW_MS_DEFAULT, DisputeJudgedResult, DisputeNotificationType, NOTIFICATION_BODY_BYTES_MAX,
    RefundNotificationOutcome, notification_ack_body,
};
use apo::{
    NOTIFICATION_ACK_BODY, Notification, NotificationCheck, NotificationError, SignatureError, verify_notification,
};
use domain::{Money, RefundId, RefundRequestId, ResultCode, ResultStatus};
use reqwest::header::HeaderMap;
use serde_json::json;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::support::{CLIENT_ID, case, keys};

const NOTIFY_PATH: &str = "/apo/notify/refund";
/// The vector notification's Request-Time.
const VECTOR_TIME: OffsetDateTime = datetime!(2026-01-01 00:00:05 UTC);

fn check_and_verify(
    headers: &HeaderMap,
    path: &str,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<Notification, NotificationError> {
    let keys = keys();
    let check = NotificationCheck {
        antom_public_key: &keys.antom_public,
        client_id: CLIENT_ID,
        clock_skew_max_ms: CLOCK_SKEW_MS_DEFAULT,
    };
    verify_notification(&check, "POST", path, headers, body, now)
}

fn headers(signature: &str, time: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Signature", signature.parse().expect("header"));
    headers.insert("Request-Time", time.parse().expect("header"));
    headers.insert("Client-Id", CLIENT_ID.parse().expect("header"));
    headers
}

/// A notification Antom signed now-ish, with an epoch-ms Request-Time.
fn antom_sent(body: &serde_json::Value, time: OffsetDateTime) -> (HeaderMap, Vec<u8>) {
    let bytes = serde_json::to_vec(body).expect("json");
    let millis = (time.unix_timestamp_nanos() / 1_000_000).to_string();
    let signature = apo::sign(&keys().antom_private, "POST", NOTIFY_PATH, CLIENT_ID, &millis, &bytes).expect("signs");
    (headers(&signature, &millis), bytes)
}

fn ok_result() -> serde_json::Value {
    json!({"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "success"})
}

#[test]
fn the_vector_notification_verifies_and_parses() {
    let case = case("notify-refund");
    let headers = headers(&case.signature_header, &case.time);
    let notification = check_and_verify(&headers, &case.path, case.body.as_bytes(), VECTOR_TIME).expect("verifies");
    let Notification::Refund(refund) = notification else {
        panic!("expected a refund notification, got {notification:?}");
    };
    assert_eq!(refund.refund_request_id, RefundRequestId::parse("R-0001").expect("id"));
    assert_eq!(
        refund.outcome,
        RefundNotificationOutcome::Succeeded {
            refund_id: RefundId::parse("20240101194010800100188000000001R1").expect("id"),
            refund_time: VECTOR_TIME,
        }
    );
    assert_eq!(
        refund.refund_amount,
        Some(Money::parse("a", "USD", "1000").expect("money"))
    );
    assert_eq!(refund.result.status, ResultStatus::S);
    assert_eq!(refund.result.code, ResultCode::Success);
}

#[test]
fn the_vector_notification_is_rejected_when_tampered_or_misrouted() {
    let case = case("notify-refund");
    let good = headers(&case.signature_header, &case.time);
    let body = case.body.as_bytes();
    let mut changed = body.to_vec();
    changed[40] ^= 0x01;
    assert_eq!(
        check_and_verify(&good, &case.path, &changed, VECTOR_TIME),
        Err(NotificationError::BadSignature(SignatureError::Mismatch))
    );
    assert_eq!(
        check_and_verify(&good, "/apo/notify/payment", body, VECTOR_TIME),
        Err(NotificationError::BadSignature(SignatureError::Mismatch))
    );
    // A Request-Time that is fresh but not the signed one.
    let other_time = headers(&case.signature_header, "2026-01-01T08:00:06+08:00");
    assert_eq!(
        check_and_verify(&other_time, &case.path, body, VECTOR_TIME),
        Err(NotificationError::BadSignature(SignatureError::Mismatch))
    );
    // Signed by the merchant key, not Antom's.
    let forged = apo::sign(
        &keys().merchant_private,
        "POST",
        &case.path,
        CLIENT_ID,
        &case.time,
        body,
    )
    .expect("signs");
    assert_eq!(
        check_and_verify(&headers(&forged, &case.time), &case.path, body, VECTOR_TIME),
        Err(NotificationError::BadSignature(SignatureError::Mismatch))
    );
}

#[test]
fn missing_headers_and_foreign_client_ids_are_refused() {
    let case = case("notify-refund");
    let body = case.body.as_bytes();
    for header in ["Signature", "Request-Time", "Client-Id"] {
        let mut headers = headers(&case.signature_header, &case.time);
        headers.remove(header);
        assert_eq!(
            check_and_verify(&headers, &case.path, body, VECTOR_TIME),
            Err(NotificationError::MissingHeader { header }),
            "{header}"
        );
    }
    let mut empty_signature = headers(&case.signature_header, &case.time);
    empty_signature.insert("Signature", "".parse().expect("header"));
    assert_eq!(
        check_and_verify(&empty_signature, &case.path, body, VECTOR_TIME),
        Err(NotificationError::MissingHeader { header: "Signature" })
    );
    let mut foreign = headers(&case.signature_header, &case.time);
    foreign.insert("Client-Id", "OTHER_CLIENT".parse().expect("header"));
    assert_eq!(
        check_and_verify(&foreign, &case.path, body, VECTOR_TIME),
        Err(NotificationError::WrongClientId {
            found: "OTHER_CLIENT".into()
        })
    );
}

#[test]
fn request_time_must_parse_and_be_within_the_skew() {
    let case = case("notify-refund");
    let headers_ok = headers(&case.signature_header, &case.time);
    let body = case.body.as_bytes();
    let skew = Duration::milliseconds(CLOCK_SKEW_MS_DEFAULT as i64);
    assert!(
        check_and_verify(&headers_ok, &case.path, body, VECTOR_TIME + skew).is_ok(),
        "exactly at the bound"
    );
    assert!(
        check_and_verify(&headers_ok, &case.path, body, VECTOR_TIME - skew).is_ok(),
        "clock behind"
    );
    for now in [
        VECTOR_TIME + skew + Duration::milliseconds(1),
        VECTOR_TIME - skew - Duration::milliseconds(1),
    ] {
        assert_eq!(
            check_and_verify(&headers_ok, &case.path, body, now),
            Err(NotificationError::StaleRequestTime {
                value: case.time.clone(),
                skew_ms: CLOCK_SKEW_MS_DEFAULT + 1,
                allowed_ms: CLOCK_SKEW_MS_DEFAULT,
            })
        );
    }
    assert_eq!(
        check_and_verify(
            &headers(&case.signature_header, "tomorrow"),
            &case.path,
            body,
            VECTOR_TIME
        ),
        Err(NotificationError::BadRequestTime {
            value: "tomorrow".into()
        })
    );
    // Epoch milliseconds are accepted too.
    let now = datetime!(2026-03-01 12:00:00.250 UTC);
    let (headers, bytes) = antom_sent(
        &json!({"notifyType": "REFUND_RESULT", "result": ok_result(), "refundStatus": "PROCESSING", "refundRequestId": "R-1"}),
        now,
    );
    assert_eq!(headers["Request-Time"], "1772366400250");
    assert!(matches!(
        check_and_verify(&headers, NOTIFY_PATH, &bytes, now + Duration::seconds(3)),
        Err(NotificationError::MalformedBody(error)) if error.field == "refundStatus"
    ));
}

#[test]
fn refund_failure_notification() {
    let now = OffsetDateTime::now_utc();
    let body = json!({
        "notifyType": "REFUND_RESULT",
        "result": {"resultCode": "PROCESS_FAIL", "resultStatus": "F", "resultMessage": "acquirer refused"},
        "refundStatus": "FAIL",
        "refundRequestId": "R-0003",
        "refundAmount": {"currency": "JPY", "value": "1500"}
    });
    let (headers, bytes) = antom_sent(&body, now);
    let Ok(Notification::Refund(refund)) = check_and_verify(&headers, NOTIFY_PATH, &bytes, now) else {
        panic!("expected a refund notification");
    };
    assert_eq!(
        refund.outcome,
        RefundNotificationOutcome::Failed {
            refund_id: None,
            code: ResultCode::ProcessFail,
            message: "acquirer refused".into()
        }
    );
    assert_eq!(
        refund.refund_amount,
        Some(Money::parse("a", "JPY", "1500").expect("money"))
    );
}

#[test]
fn payment_capture_and_dispute_notifications_parse() {
    let now = OffsetDateTime::now_utc();
    let payment = json!({
        "notifyType": "PAYMENT_RESULT", "result": ok_result(),
        "paymentRequestId": "PR-1", "paymentId": "P-1",
        "paymentAmount": {"currency": "USD", "value": "5000"}, "paymentTime": "2026-01-01T08:00:00+08:00",
        "paymentMethodType": "CARD"
    });
    let (headers, bytes) = antom_sent(&payment, now);
    match check_and_verify(&headers, NOTIFY_PATH, &bytes, now) {
        Ok(Notification::Payment(payment)) => {
            assert_eq!(payment.payment_request_id, "PR-1");
            assert_eq!(payment.payment_id.as_str(), "P-1");
            assert_eq!(payment.payment_amount.minor_units(), 5000);
            assert_eq!(payment.payment_time, Some(datetime!(2026-01-01 00:00:00 UTC)));
            assert_eq!(payment.result.status, ResultStatus::S);
            assert_eq!(
                payment
                    .payment_method_type
                    .map(|kind| kind.as_str().to_owned())
                    .as_deref(),
                Some("CARD")
            );
        }
        other => panic!("expected payment, got {other:?}"),
    }

    let capture = json!({
        "notifyType": "CAPTURE_RESULT", "result": ok_result(),
        "captureRequestId": "CR-1", "paymentId": "P-1", "captureId": "C-1",
        "captureAmount": {"currency": "USD", "value": "5000"}, "captureTime": "2026-01-01T09:00:00+08:00"
    });
    let (headers, bytes) = antom_sent(&capture, now);
    match check_and_verify(&headers, NOTIFY_PATH, &bytes, now) {
        Ok(Notification::Capture(capture)) => {
            assert_eq!(capture.capture_request_id, "CR-1");
            assert_eq!(
                capture.capture_id.map(|id| id.as_str().to_owned()).as_deref(),
                Some("C-1")
            );
            assert_eq!(capture.capture_amount.minor_units(), 5000);
            assert_eq!(capture.capture_time, Some(datetime!(2026-01-01 01:00:00 UTC)));
        }
        other => panic!("expected capture, got {other:?}"),
    }

    for (kind, judged, expected_kind, expected_judged) in [
        ("DISPUTE_CREATED", None, DisputeNotificationType::Created, None),
        (
            "DISPUTE_JUDGED",
            Some("ACCEPT_BY_CUSTOMER"),
            DisputeNotificationType::Judged,
            Some(DisputeJudgedResult::AcceptByCustomer),
        ),
        (
            "DISPUTE_JUDGED",
            Some("ACCEPT_BY_MERCHANT"),
            DisputeNotificationType::Judged,
            Some(DisputeJudgedResult::AcceptByMerchant),
        ),
        ("DISPUTE_CANCELLED", None, DisputeNotificationType::Cancelled, None),
        (
            "DEFENSE_DUE_ALERT",
            Some("SOMETHING_NEW"),
            DisputeNotificationType::Other("DEFENSE_DUE_ALERT".into()),
            Some(DisputeJudgedResult::Other("SOMETHING_NEW".into())),
        ),
    ] {
        let mut dispute = json!({
            "disputeNotificationType": kind, "disputeId": "D-1", "paymentId": "P-1", "paymentRequestId": "PR-1",
            "disputeAmount": {"currency": "EUR", "value": "1000"}, "disputeTime": "2022-09-20T23:41:32-07:00",
            "disputeReasonCode": "4853", "disputeSource": "Mastercard"
        });
        if let Some(judged) = judged {
            dispute["disputeJudgedResult"] = json!(judged);
        }
        let (headers, bytes) = antom_sent(&dispute, now);
        match check_and_verify(&headers, NOTIFY_PATH, &bytes, now) {
            Ok(Notification::Dispute(dispute)) => {
                assert_eq!(dispute.dispute_id.as_str(), "D-1");
                assert_eq!(dispute.payment_id.as_str(), "P-1");
                assert_eq!(dispute.notification_type, expected_kind);
                assert_eq!(dispute.judged_result, expected_judged);
                assert_eq!(
                    dispute.dispute_amount,
                    Some(Money::parse("a", "EUR", "1000").expect("money"))
                );
                assert_eq!(dispute.dispute_time, Some(datetime!(2022-09-21 06:41:32 UTC)));
            }
            other => panic!("expected dispute, got {other:?}"),
        }
    }
}

fn malformed_field(body: serde_json::Value) -> String {
    let now = OffsetDateTime::now_utc();
    let (headers, bytes) = antom_sent(&body, now);
    match check_and_verify(&headers, NOTIFY_PATH, &bytes, now) {
        Err(NotificationError::MalformedBody(error)) => error.field,
        other => panic!("expected MalformedBody, got {other:?}"),
    }
}

#[test]
fn malformed_notifications_name_the_field() {
    let refund = json!({
        "notifyType": "REFUND_RESULT", "result": ok_result(), "refundStatus": "SUCCESS",
        "refundRequestId": "R-1", "refundId": "RF-1", "refundAmount": {"currency": "USD", "value": "1000"},
        "refundTime": "2026-01-01T08:00:05+08:00"
    });
    let without = |field: &str| {
        let mut body = refund.clone();
        body.as_object_mut().expect("object").remove(field);
        body
    };
    let with = |field: &str, value: serde_json::Value| {
        let mut body = refund.clone();
        body[field] = value;
        body
    };
    assert_eq!(malformed_field(without("refundRequestId")), "refundRequestId");
    assert_eq!(malformed_field(without("refundStatus")), "refundStatus");
    assert_eq!(malformed_field(without("refundId")), "refundId");
    assert_eq!(malformed_field(without("refundTime")), "refundTime");
    assert_eq!(malformed_field(without("result")), ".");
    assert_eq!(
        malformed_field(with("refundAmount", json!({"currency": "USD", "value": 1000}))),
        "refundAmount.value"
    );
    assert_eq!(
        malformed_field(with("refundAmount", json!({"currency": "usd", "value": "1"}))),
        "refundAmount.currency"
    );
    assert_eq!(malformed_field(with("refundRequestId", json!(""))), "refundRequestId");
    assert_eq!(
        malformed_field(with("refundStatus", json!("PROCESSING"))),
        "refundStatus"
    );
    assert_eq!(
        malformed_field(with(
            "result",
            json!({"resultCode": "PROCESS_FAIL", "resultStatus": "F"})
        )),
        "refundStatus",
        "SUCCESS with an F result is contradictory"
    );
    assert_eq!(
        malformed_field(with(
            "result",
            json!({"resultCode": "SUCCESS", "resultStatus": "maybe"})
        )),
        "result.resultStatus"
    );
    assert_eq!(
        malformed_field(
            json!({"notifyType": "PAYMENT_RESULT", "result": ok_result(), "paymentRequestId": "PR", "paymentId": "P"})
        ),
        "paymentAmount"
    );
    assert_eq!(
        malformed_field(
            json!({"notifyType": "CAPTURE_RESULT", "result": ok_result(), "captureRequestId": "", "paymentId": "P", "captureAmount": {"currency": "USD", "value": "1"}})
        ),
        "captureRequestId"
    );
    assert_eq!(
        malformed_field(json!({"disputeNotificationType": "DISPUTE_CREATED", "paymentId": "P"})),
        "disputeId"
    );
    assert_eq!(malformed_field(json!(["not", "an", "object"])), ".");
}

#[test]
fn unknown_kinds_and_oversized_bodies_are_refused() {
    let now = OffsetDateTime::now_utc();
    let (headers, bytes) = antom_sent(&json!({"notifyType": "CANCEL_RESULT", "result": ok_result()}), now);
    assert_eq!(
        check_and_verify(&headers, NOTIFY_PATH, &bytes, now),
        Err(NotificationError::UnknownNotifyType {
            notify_type: "CANCEL_RESULT".into()
        })
    );
    let (headers, bytes) = antom_sent(&json!({"result": ok_result()}), now);
    assert_eq!(
        check_and_verify(&headers, NOTIFY_PATH, &bytes, now),
        Err(NotificationError::UnknownNotifyType {
            notify_type: String::new()
        })
    );
    let huge = vec![b' '; NOTIFICATION_BODY_BYTES_MAX + 1];
    let (headers, _) = antom_sent(&json!({}), now);
    assert_eq!(
        check_and_verify(&headers, NOTIFY_PATH, &huge, now),
        Err(NotificationError::BodyTooLarge {
            bytes: NOTIFICATION_BODY_BYTES_MAX + 1,
            max: NOTIFICATION_BODY_BYTES_MAX
        })
    );
}

#[test]
fn the_acknowledgement_is_antoms_exact_body() {
    assert_eq!(
        NOTIFICATION_ACK_BODY,
        r#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#
    );
    assert_eq!(notification_ack_body(), NOTIFICATION_ACK_BODY.as_bytes());
    let parsed: serde_json::Value = serde_json::from_slice(notification_ack_body()).expect("json");
    assert_eq!(
        parsed,
        json!({"result": {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "success"}})
    );
}
