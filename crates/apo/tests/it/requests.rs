//! The request bodies the client sends, byte for byte.

use apo::{InquiryRefundRequest, RefundRequest};
use domain::{CaptureId, InputError, Money, PaymentId, RefundId, RefundRequestId};

fn refund() -> RefundRequest {
    RefundRequest::new(
        RefundRequestId::parse("R-0001").expect("id"),
        PaymentId::parse("20240101194010800100188000000001").expect("id"),
        Money::parse("refundAmount", "USD", "1000").expect("money"),
    )
}

#[test]
fn refund_body_has_antoms_field_names_and_omits_absent_options() {
    let mut request = refund();
    request.refund_reason = Some("customer request".into());
    let json = serde_json::to_string(&request.to_wire().expect("valid")).expect("json");
    assert_eq!(
        json,
        r#"{"refundRequestId":"R-0001","paymentId":"20240101194010800100188000000001","refundAmount":{"currency":"USD","value":"1000"},"refundReason":"customer request"}"#
    );
    // That is exactly the body of the first signing vector.
    assert_eq!(json, crate::support::case("refund-request-epoch-ms").body);
}

#[test]
fn refund_body_carries_every_optional_field() {
    let mut request = refund();
    request.reference_refund_id = Some("REF-1".into());
    request.refund_notify_url = Some("https://merchant.example/apo/notify/refund".into());
    request.capture_id = Some(CaptureId::parse("CAP-1").expect("id"));
    request.is_async_refund = Some(true);
    request.extend_info = Some(r#"{"k":"v"}"#.into());
    request.metadata = Some("{}".into());
    let value = serde_json::to_value(request.to_wire().expect("valid")).expect("json");
    assert_eq!(value["referenceRefundId"], "REF-1");
    assert_eq!(value["refundNotifyUrl"], "https://merchant.example/apo/notify/refund");
    assert_eq!(value["captureId"], "CAP-1");
    assert_eq!(value["isAsyncRefund"], true);
    assert_eq!(value["extendInfo"], r#"{"k":"v"}"#);
    assert_eq!(value["metadata"], "{}");
}

#[test]
fn refund_length_limits_name_the_field() {
    let mut request = refund();
    request.refund_reason = Some("é".repeat(256));
    assert!(request.to_wire().is_ok(), "256 characters, not bytes");
    request.refund_reason = Some("x".repeat(257));
    assert_eq!(
        request.to_wire(),
        Err(InputError::TooLong {
            field: "refundReason".into(),
            len: 257,
            max: 256
        })
    );
    let mut request = refund();
    request.reference_refund_id = Some("x".repeat(65));
    assert!(matches!(request.to_wire(), Err(InputError::TooLong { field, .. }) if field == "referenceRefundId"));
    let mut request = refund();
    request.refund_notify_url = Some("x".repeat(1025));
    assert!(matches!(request.to_wire(), Err(InputError::TooLong { field, .. }) if field == "refundNotifyUrl"));
}

#[test]
fn inquiry_body_needs_one_id() {
    let by_request = InquiryRefundRequest::by_refund_request_id(RefundRequestId::parse("R-0001").expect("id"));
    assert_eq!(
        serde_json::to_string(&by_request.to_wire().expect("valid")).expect("json"),
        r#"{"refundRequestId":"R-0001"}"#
    );
    let by_refund = InquiryRefundRequest::by_refund_id(RefundId::parse("RF-1").expect("id"));
    assert_eq!(
        serde_json::to_string(&by_refund.to_wire().expect("valid")).expect("json"),
        r#"{"refundId":"RF-1"}"#
    );
    let neither = InquiryRefundRequest {
        refund_request_id: None,
        refund_id: None,
        merchant_account_id: Some("M1".into()),
    };
    assert!(matches!(neither.to_wire(), Err(InputError::Empty { .. })));
}
