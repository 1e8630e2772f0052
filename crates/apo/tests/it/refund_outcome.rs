//! The refund response mapping: only a verified S succeeds, only a verified
//! F fails, everything else is unknown.

use apo::{RefundOutcome, RefundRequest, ResponseCheck, SignatureError, UnknownReason, interpret_refund_response};
use domain::{Money, PaymentId, RefundId, RefundRequestId, ResultCode};
use proptest::prelude::*;
use reqwest::header::HeaderMap;
use serde_json::json;
use time::macros::datetime;

use crate::support::{CLIENT_ID, REFUND_PATH, antom_signed_headers, case, keys};

fn request() -> RefundRequest {
    RefundRequest::new(
        RefundRequestId::parse("R-0001").expect("id"),
        PaymentId::parse("20240101194010800100188000000001").expect("id"),
        Money::parse("refundAmount", "USD", "1000").expect("money"),
    )
}

/// Interprets `body` signed by Antom, with HTTP `status`.
fn signed(status: u16, body: &serde_json::Value) -> RefundOutcome {
    let body = serde_json::to_vec(body).expect("json");
    raw(status, &antom_signed_headers(REFUND_PATH, &body), &body)
}

fn raw(status: u16, headers: &HeaderMap, body: &[u8]) -> RefundOutcome {
    let keys = keys();
    let check = ResponseCheck {
        antom_public_key: &keys.antom_public,
        client_id: CLIENT_ID,
        method: "POST",
        request_path: REFUND_PATH,
    };
    interpret_refund_response(status, headers, body, &check, &request())
}

fn result(code: &str, status: &str) -> serde_json::Value {
    json!({"resultCode": code, "resultStatus": status, "resultMessage": format!("{code} message")})
}

fn success_body() -> serde_json::Value {
    json!({
        "result": result("SUCCESS", "S"),
        "refundRequestId": "R-0001",
        "refundId": "20240101194010800100188000000001R1",
        "paymentId": "20240101194010800100188000000001",
        "refundAmount": {"currency": "USD", "value": "1000"},
        "refundTime": "2026-01-01T08:00:01+08:00"
    })
}

fn unknown(outcome: RefundOutcome) -> UnknownReason {
    match outcome {
        RefundOutcome::Unknown { reason } => reason,
        other => panic!("expected Unknown, got {other:?}"),
    }
}

#[test]
fn the_vector_response_is_a_verified_success() {
    let case = case("refund-response");
    let mut headers = HeaderMap::new();
    headers.insert("Signature", case.signature_header.parse().expect("header"));
    headers.insert("Response-Time", case.time.parse().expect("header"));
    let outcome = raw(200, &headers, case.body.as_bytes());
    assert_eq!(
        outcome,
        RefundOutcome::Succeeded {
            refund_id: RefundId::parse("20240101194010800100188000000001R1").expect("id"),
            refund_time: datetime!(2026-01-01 00:00:01 UTC),
            refund_amount: Money::parse("a", "USD", "1000").expect("money"),
            gross_settlement_amount: None,
            actual_refund_amount: None,
            acquirer_reference_no: None,
        }
    );
    // The same bytes with one byte changed are not trusted.
    let tampered = case.body.replace("\"1000\"", "\"1001\"");
    assert_eq!(
        unknown(raw(200, &headers, tampered.as_bytes())),
        UnknownReason::BadSignature {
            error: SignatureError::Mismatch
        }
    );
}

#[test]
fn optional_fields_are_read_and_unknown_fields_ignored() {
    let mut body = success_body();
    body["grossSettlementAmount"] = json!({"currency": "SGD", "value": "1350"});
    body["actualRefundAmount"] = json!({"currency": "USD", "value": "990"});
    body["acquirerReferenceNo"] = json!("ACQ-1");
    body["settlementQuote"] =
        json!({"quoteId": "Q1", "quoteCurrencyPair": "USD/SGD", "quotePrice": 1.35, "guaranteed": false});
    body["someFieldAntomAddsIn2027"] = json!({"nested": [1, 2, 3]});
    match signed(200, &body) {
        RefundOutcome::Succeeded {
            gross_settlement_amount,
            actual_refund_amount,
            acquirer_reference_no,
            ..
        } => {
            assert_eq!(
                gross_settlement_amount,
                Some(Money::parse("a", "SGD", "1350").expect("money"))
            );
            assert_eq!(
                actual_refund_amount,
                Some(Money::parse("a", "USD", "990").expect("money"))
            );
            assert_eq!(acquirer_reference_no.as_deref(), Some("ACQ-1"));
        }
        other => panic!("expected success, got {other:?}"),
    }
    // Echo fields are optional: a minimal S still succeeds with the requested amount.
    let minimal = json!({"result": result("SUCCESS", "S"), "refundId": "RF1", "refundTime": "2026-01-01T00:00:01Z"});
    assert!(
        matches!(signed(200, &minimal), RefundOutcome::Succeeded { refund_amount, .. } if refund_amount.minor_units() == 1000)
    );
}

/// Every F code the protocol notes list maps to Failed with that code, and
/// an F with a code nobody has seen yet is still a failure: the status decides.
#[test]
fn every_verified_f_is_failed_with_its_code() {
    let codes = [
        "CURRENCY_NOT_SUPPORT",
        "REFUND_AMOUNT_EXCEED",
        "ORDER_STATUS_INVALID",
        "REFUND_WINDOW_EXCEED",
        "REPEAT_REQ_INCONSISTENT",
        "ORDER_NOT_EXIST",
        "ORDER_IS_CANCELED",
        "MULTIPLE_REFUNDS_NOT_SUPPORTED",
        "PARTIAL_REFUND_NOT_SUPPORTED",
        "REFUND_NOT_SUPPORTED",
        "MERCHANT_BALANCE_NOT_ENOUGH",
        "PARAM_ILLEGAL",
        "ACCESS_DENIED",
        "INVALID_SIGNATURE",
        "INVALID_CLIENT",
        "KEY_NOT_FOUND",
        "PROCESS_FAIL",
    ];
    for code in codes {
        let body = json!({"result": result(code, "F"), "refundRequestId": "R-0001"});
        assert_eq!(
            signed(200, &body),
            RefundOutcome::Failed {
                code: ResultCode::parse(code),
                message: format!("{code} message"),
            },
            "{code}"
        );
        assert!(
            !matches!(ResultCode::parse(code), ResultCode::Other(_)),
            "{code} is a named code"
        );
    }
    let body = json!({"result": {"resultCode": "BRAND_NEW_CODE", "resultStatus": "F"}});
    assert_eq!(
        signed(200, &body),
        RefundOutcome::Failed {
            code: ResultCode::Other("BRAND_NEW_CODE".into()),
            message: String::new(),
        }
    );
}

#[test]
fn every_verified_u_is_unknown_and_transient() {
    for code in [
        "UNKNOWN_EXCEPTION",
        "REQUEST_TRAFFIC_EXCEED_LIMIT",
        "PROCESS_FAIL",
        "SUCCESS",
    ] {
        let reason = unknown(signed(200, &json!({"result": result(code, "U")})));
        assert_eq!(
            reason,
            UnknownReason::ResultUnknown {
                code: ResultCode::parse(code),
                message: format!("{code} message"),
            }
        );
        assert!(reason.is_transient());
    }
}

#[test]
fn http_errors_are_unknown_even_with_a_signed_answer() {
    for status in [500, 502, 503, 504, 429] {
        let reason = unknown(signed(status, &success_body()));
        assert_eq!(reason, UnknownReason::HttpStatus { status });
        assert!(reason.is_transient(), "{status}");
    }
    for status in [400, 401, 403, 404, 301, 100] {
        let reason = unknown(signed(status, &json!({"result": result("PARAM_ILLEGAL", "F")})));
        assert_eq!(reason, UnknownReason::HttpStatus { status });
        assert!(!reason.is_transient(), "{status}");
    }
    assert!(matches!(signed(201, &success_body()), RefundOutcome::Succeeded { .. }));
}

/// Antom sends no signature on some authentication failures; an unsigned
/// answer is never trusted, whatever it says.
#[test]
fn unsigned_answers_are_unknown_whatever_they_claim() {
    for (code, status) in [
        ("SUCCESS", "S"),
        ("INVALID_SIGNATURE", "F"),
        ("REFUND_AMOUNT_EXCEED", "F"),
    ] {
        let mut body = success_body();
        body["result"] = result(code, status);
        let body = serde_json::to_vec(&body).expect("json");
        let mut headers = HeaderMap::new();
        headers.insert("Response-Time", "2026-01-01T08:00:01+08:00".parse().expect("header"));
        assert_eq!(
            unknown(raw(200, &headers, &body)),
            UnknownReason::Unsigned {
                untrusted_result_code: Some(code.to_owned())
            }
        );
    }
    let reason = unknown(raw(200, &HeaderMap::new(), b"<html>bad gateway</html>"));
    assert_eq!(
        reason,
        UnknownReason::Unsigned {
            untrusted_result_code: None
        }
    );
    assert!(!reason.is_transient());
}

#[test]
fn badly_signed_answers_are_unknown() {
    let body = serde_json::to_vec(&success_body()).expect("json");
    let good = antom_signed_headers(REFUND_PATH, &body);

    let mut no_time = good.clone();
    no_time.remove("response-time");
    assert_eq!(
        unknown(raw(200, &no_time, &body)),
        UnknownReason::MissingHeader {
            header: "Response-Time"
        }
    );

    let mut other_time = good.clone();
    other_time.insert("response-time", "2026-01-01T08:00:02+08:00".parse().expect("header"));
    assert_eq!(
        unknown(raw(200, &other_time, &body)),
        UnknownReason::BadSignature {
            error: SignatureError::Mismatch
        }
    );

    let mut other_client = good.clone();
    other_client.insert("client-id", "SOMEONE_ELSE".parse().expect("header"));
    assert_eq!(
        unknown(raw(200, &other_client, &body)),
        UnknownReason::WrongClientId {
            found: "SOMEONE_ELSE".into()
        }
    );

    // Signed by the merchant key instead of Antom's.
    let keys = keys();
    let forged = apo::sign(
        &keys.merchant_private,
        "POST",
        REFUND_PATH,
        CLIENT_ID,
        "2026-01-01T08:00:01+08:00",
        &body,
    )
    .expect("signs");
    let mut forged_headers = good.clone();
    forged_headers.insert("signature", forged.parse().expect("header"));
    assert_eq!(
        unknown(raw(200, &forged_headers, &body)),
        UnknownReason::BadSignature {
            error: SignatureError::Mismatch
        }
    );

    // Signed over another path (an inquiry's answer replayed as a refund's).
    let replayed = antom_signed_headers("/ams/api/v1/payments/inquiryRefund", &body);
    assert!(matches!(
        unknown(raw(200, &replayed, &body)),
        UnknownReason::BadSignature { .. }
    ));

    let mut garbage = good;
    garbage.insert(
        "signature",
        "algorithm=RSA256,keyVersion=1,signature=%%%".parse().expect("header"),
    );
    assert_eq!(
        unknown(raw(200, &garbage, &body)),
        UnknownReason::BadSignature {
            error: SignatureError::Encoding
        }
    );
}

fn malformed_field(outcome: RefundOutcome) -> String {
    match unknown(outcome) {
        UnknownReason::MalformedBody { error } => error.field,
        other => panic!("expected MalformedBody, got {other:?}"),
    }
}

#[test]
fn verified_but_malformed_bodies_are_unknown_naming_the_field() {
    let body = b"{not json".to_vec();
    let headers = antom_signed_headers(REFUND_PATH, &body);
    assert_eq!(malformed_field(raw(200, &headers, &body)), ".");

    let mut without_refund_id = success_body();
    without_refund_id.as_object_mut().expect("object").remove("refundId");
    assert_eq!(malformed_field(signed(200, &without_refund_id)), "refundId");

    let mut without_time = success_body();
    without_time.as_object_mut().expect("object").remove("refundTime");
    assert_eq!(malformed_field(signed(200, &without_time)), "refundTime");

    let mut bad_time = success_body();
    bad_time["refundTime"] = json!("1st of January");
    assert_eq!(malformed_field(signed(200, &bad_time)), "refundTime");

    let mut bad_status = success_body();
    bad_status["result"]["resultStatus"] = json!("OK");
    assert_eq!(malformed_field(signed(200, &bad_status)), "result.resultStatus");

    let mut numeric_value = success_body();
    numeric_value["refundAmount"]["value"] = json!(1000);
    assert_eq!(malformed_field(signed(200, &numeric_value)), "refundAmount.value");

    let mut bad_currency = success_body();
    bad_currency["refundAmount"]["currency"] = json!("XYZ");
    assert_eq!(malformed_field(signed(200, &bad_currency)), "refundAmount.currency");

    let mut bad_refund_id = success_body();
    bad_refund_id["refundId"] = json!("has space");
    assert_eq!(malformed_field(signed(200, &bad_refund_id)), "refundId");

    let mut bad_settlement = success_body();
    bad_settlement["grossSettlementAmount"] = json!({"currency": "USD", "value": "-1"});
    assert_eq!(
        malformed_field(signed(200, &bad_settlement)),
        "grossSettlementAmount.value"
    );

    assert_eq!(malformed_field(signed(200, &json!({"refundId": "x"}))), ".");
}

#[test]
fn answers_about_another_refund_are_unknown() {
    for (field, value) in [
        ("refundRequestId", json!("R-0002")),
        ("paymentId", json!("20240101194010800100188000000002")),
        ("refundAmount", json!({"currency": "USD", "value": "999"})),
        ("refundAmount", json!({"currency": "EUR", "value": "1000"})),
    ] {
        let mut body = success_body();
        body[field] = value;
        assert_eq!(
            unknown(signed(200, &body)),
            UnknownReason::Mismatch { field },
            "{field}"
        );
    }
    // Also for an F: a failure of another refund must not fail ours.
    let body = json!({"result": result("REFUND_AMOUNT_EXCEED", "F"), "refundRequestId": "R-OTHER"});
    assert_eq!(
        unknown(signed(200, &body)),
        UnknownReason::Mismatch {
            field: "refundRequestId"
        }
    );
}

#[test]
fn transient_reasons_are_exactly_the_ones_worth_an_immediate_retry() {
    let transient = [
        UnknownReason::Timeout,
        UnknownReason::Connection {
            message: "refused".into(),
        },
        UnknownReason::Transport {
            message: "reset".into(),
        },
        UnknownReason::HttpStatus { status: 500 },
        UnknownReason::HttpStatus { status: 429 },
        UnknownReason::ResultUnknown {
            code: ResultCode::UnknownException,
            message: String::new(),
        },
    ];
    let not_transient = [
        UnknownReason::HttpStatus { status: 404 },
        UnknownReason::BodyTooLarge { max: 1 },
        UnknownReason::Unsigned {
            untrusted_result_code: None,
        },
        UnknownReason::MissingHeader {
            header: "Response-Time",
        },
        UnknownReason::WrongClientId { found: "x".into() },
        UnknownReason::BadSignature {
            error: SignatureError::Mismatch,
        },
        UnknownReason::Mismatch { field: "refundId" },
        UnknownReason::InquiryFailed {
            code: ResultCode::ParamIllegal,
            message: String::new(),
        },
    ];
    for reason in &transient {
        assert!(reason.is_transient(), "{reason:?}");
    }
    for reason in &not_transient {
        assert!(!reason.is_transient(), "{reason:?}");
    }
    // Display is the short text the ledger records as the processing reason.
    for reason in transient.iter().chain(&not_transient) {
        let text = reason.to_string();
        assert!(
            !text.is_empty() && text.chars().next().is_some_and(|c| !c.is_uppercase()),
            "{text}"
        );
    }
    assert_eq!(
        UnknownReason::HttpStatus { status: 503 }.to_string(),
        "antom answered http 503"
    );
    assert_eq!(
        UnknownReason::Unsigned {
            untrusted_result_code: Some("INVALID_SIGNATURE".into())
        }
        .to_string(),
        "unsigned answer (claims INVALID_SIGNATURE)"
    );
}

proptest! {
    /// Whatever Antom (or an impostor) answers, a decision comes only from a
    /// 2xx, correctly signed answer, and follows its resultStatus.
    #[test]
    fn decisions_only_come_from_verified_answers(
        http_status in prop_oneof![Just(200u16), Just(201), Just(400), Just(429), Just(500), Just(503), 100u16..600],
        result_status in prop_oneof![Just("S"), Just("F"), Just("U"), Just("X")],
        code in "[A-Z_]{1,24}",
        signing in 0u8..3,
    ) {
        let mut body = success_body();
        body["result"] = result(&code, result_status);
        let bytes = serde_json::to_vec(&body).expect("json");
        let headers = match signing {
            0 => antom_signed_headers(REFUND_PATH, &bytes),
            1 => HeaderMap::new(),
            _ => antom_signed_headers(REFUND_PATH, b"other bytes"),
        };
        let trusted = signing == 0 && (200..300).contains(&http_status);
        match raw(http_status, &headers, &bytes) {
            RefundOutcome::Succeeded { .. } => prop_assert!(trusted && result_status == "S"),
            RefundOutcome::Failed { code: failed_code, .. } => {
                prop_assert!(trusted && result_status == "F");
                prop_assert_eq!(failed_code.as_str(), code.as_str());
            }
            RefundOutcome::Unknown { .. } => prop_assert!(!trusted || result_status == "U" || result_status == "X"),
        }
    }
}
