//! The inquiryRefund mapping: `result` says whether the inquiry worked,
//! `refundStatus` where the refund stands; "not found" only from a verified F.

use apo::{InquiryOutcome, InquiryRefundRequest, ResponseCheck, UnknownReason, interpret_inquiry_response};
use domain::{Money, RefundId, RefundRequestId, ResultCode};
use reqwest::header::HeaderMap;
use serde_json::json;
use time::macros::datetime;

use crate::support::{CLIENT_ID, INQUIRY_PATH, antom_signed_headers, keys};

fn request() -> InquiryRefundRequest {
    InquiryRefundRequest::by_refund_request_id(RefundRequestId::parse("R-0001").expect("id"))
}

fn raw(status: u16, headers: &HeaderMap, body: &[u8], request: &InquiryRefundRequest) -> InquiryOutcome {
    let keys = keys();
    let check = ResponseCheck {
        antom_public_key: &keys.antom_public,
        client_id: CLIENT_ID,
        method: "POST",
        request_path: INQUIRY_PATH,
    };
    interpret_inquiry_response(status, headers, body, &check, request)
}

fn signed(body: &serde_json::Value) -> InquiryOutcome {
    let bytes = serde_json::to_vec(body).expect("json");
    raw(200, &antom_signed_headers(INQUIRY_PATH, &bytes), &bytes, &request())
}

fn ok_result() -> serde_json::Value {
    json!({"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "success"})
}

fn with_status(refund_status: &str) -> serde_json::Value {
    json!({
        "result": ok_result(),
        "refundRequestId": "R-0001",
        "refundId": "RF-1",
        "refundAmount": {"currency": "USD", "value": "1000"},
        "refundStatus": refund_status,
        "refundTime": "2026-01-01T08:00:01+08:00",
        "grossSettlementAmount": {"currency": "SGD", "value": "1350"}
    })
}

fn unknown(outcome: InquiryOutcome) -> UnknownReason {
    match outcome {
        InquiryOutcome::Unknown { reason } => reason,
        other => panic!("expected Unknown, got {other:?}"),
    }
}

#[test]
fn refund_status_decides_once_the_inquiry_succeeded() {
    assert_eq!(
        signed(&with_status("SUCCESS")),
        InquiryOutcome::Succeeded {
            refund_id: RefundId::parse("RF-1").expect("id"),
            refund_time: datetime!(2026-01-01 00:00:01 UTC),
            refund_amount: Some(Money::parse("a", "USD", "1000").expect("money")),
            gross_settlement_amount: Some(Money::parse("a", "SGD", "1350").expect("money")),
        }
    );
    assert_eq!(
        signed(&with_status("FAIL")),
        InquiryOutcome::Failed {
            refund_id: Some(RefundId::parse("RF-1").expect("id"))
        }
    );
    assert_eq!(signed(&with_status("PROCESSING")), InquiryOutcome::Processing);
    let minimal_fail = json!({"result": ok_result(), "refundStatus": "FAIL"});
    assert_eq!(signed(&minimal_fail), InquiryOutcome::Failed { refund_id: None });
}

#[test]
fn a_verified_not_found_allows_a_resend() {
    for code in ["ORDER_NOT_EXIST", "REFUND_NOT_EXIST"] {
        let body = json!({"result": {"resultCode": code, "resultStatus": "F", "resultMessage": "not found"}});
        assert_eq!(
            signed(&body),
            InquiryOutcome::NotFound {
                code: ResultCode::parse(code),
                message: "not found".into()
            }
        );
    }
}

#[test]
fn an_unverified_not_found_is_unknown() {
    let body =
        serde_json::to_vec(&json!({"result": {"resultCode": "ORDER_NOT_EXIST", "resultStatus": "F"}})).expect("json");
    assert_eq!(
        unknown(raw(200, &HeaderMap::new(), &body, &request())),
        UnknownReason::Unsigned {
            untrusted_result_code: Some("ORDER_NOT_EXIST".into())
        }
    );
    let headers = antom_signed_headers(INQUIRY_PATH, b"something else");
    assert!(matches!(
        unknown(raw(200, &headers, &body, &request())),
        UnknownReason::BadSignature { .. }
    ));
    let headers = antom_signed_headers(INQUIRY_PATH, &body);
    assert_eq!(
        unknown(raw(503, &headers, &body, &request())),
        UnknownReason::HttpStatus { status: 503 }
    );
}

#[test]
fn a_failed_or_unknown_inquiry_says_nothing_about_the_refund() {
    for code in ["PARAM_ILLEGAL", "ACCESS_DENIED", "INVALID_SIGNATURE", "NEW_CODE"] {
        let body =
            json!({"result": {"resultCode": code, "resultStatus": "F", "resultMessage": "m"}, "refundStatus": "FAIL"});
        assert_eq!(
            unknown(signed(&body)),
            UnknownReason::InquiryFailed {
                code: ResultCode::parse(code),
                message: "m".into()
            },
            "{code}"
        );
    }
    let body = json!({"result": {"resultCode": "UNKNOWN_EXCEPTION", "resultStatus": "U"}, "refundStatus": "SUCCESS"});
    assert!(matches!(
        unknown(signed(&body)),
        UnknownReason::ResultUnknown {
            code: ResultCode::UnknownException,
            ..
        }
    ));
}

#[test]
fn malformed_verified_answers_name_the_field() {
    let field = |body: serde_json::Value| match unknown(signed(&body)) {
        UnknownReason::MalformedBody { error } => error.field,
        other => panic!("expected MalformedBody, got {other:?}"),
    };
    let mut no_status = with_status("SUCCESS");
    no_status.as_object_mut().expect("object").remove("refundStatus");
    assert_eq!(field(no_status), "refundStatus");
    assert_eq!(field(with_status("REFUNDED")), "refundStatus");
    let mut no_time = with_status("SUCCESS");
    no_time.as_object_mut().expect("object").remove("refundTime");
    assert_eq!(field(no_time), "refundTime");
    let mut no_id = with_status("SUCCESS");
    no_id.as_object_mut().expect("object").remove("refundId");
    assert_eq!(field(no_id), "refundId");
    let mut bad_amount = with_status("SUCCESS");
    bad_amount["refundAmount"] = json!({"currency": "USD", "value": "10.00"});
    assert_eq!(field(bad_amount), "refundAmount.value");
}

#[test]
fn answers_about_another_refund_are_unknown() {
    let mut body = with_status("SUCCESS");
    body["refundRequestId"] = json!("R-0002");
    assert_eq!(
        unknown(signed(&body)),
        UnknownReason::Mismatch {
            field: "refundRequestId"
        }
    );
    let by_refund_id = InquiryRefundRequest::by_refund_id(RefundId::parse("RF-2").expect("id"));
    let bytes = serde_json::to_vec(&with_status("SUCCESS")).expect("json");
    let headers = antom_signed_headers(INQUIRY_PATH, &bytes);
    assert_eq!(
        unknown(raw(200, &headers, &bytes, &by_refund_id)),
        UnknownReason::Mismatch { field: "refundId" }
    );
}
