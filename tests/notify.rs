//! Antom's payment, capture and dispute notifications reach the ledger
//! through `POST /apo/notify`, signed as Antom signs them; forged ones
//! change nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apo::PrivateKey;
use serde_json::{Value, json};
use testkit::antom::{CLIENT_ID, demo_key};
use testkit::server::{Server, sqlite_store, temp_folder};

use crate::support::binary;

fn key(file: &str) -> PrivateKey {
    PrivateKey::from_file(&demo_key(file)).unwrap()
}

/// Posts `body` to `/apo/notify` signed with `signer`; returns the HTTP status.
fn notify(server: &Server, signer: &PrivateKey, body: &Value) -> u16 {
    let body = serde_json::to_vec(body).unwrap();
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let signature = apo::sign(signer, "POST", "/apo/notify", CLIENT_ID, &time, &body).unwrap();
    let response = reqwest::blocking::Client::new()
        .post(server.url("/apo/notify"))
        .header("Content-Type", "application/json; charset=UTF-8")
        .header("Client-Id", CLIENT_ID)
        .header("Request-Time", time)
        .header("Signature", signature)
        .body(body)
        .timeout(Duration::from_secs(30))
        .send()
        .unwrap();
    response.status().as_u16()
}

fn payment(server: &Server, id: &str) -> Value {
    let position = server.graphql("{ ledgerHead { position } }", json!({}))["ledgerHead"]["position"].clone();
    server.graphql(
        "query($id: ID!, $at: Int) { payment(paymentId: $id, atLeastPosition: $at) {
           capturedAmount { value } refundableAmount { value } chargedBackAmount { value } status openChargeback } }",
        json!({ "id": id, "at": position }),
    )["payment"]
        .clone()
}

fn success() -> Value {
    json!({ "resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "success" })
}

#[test]
fn payment_capture_and_dispute_notifications_become_ledger_events() {
    let (_guard, folder) = temp_folder();
    let server = Server::start(binary(), &sqlite_store(&folder), &folder);
    let antom = key("antom_private_pkcs8.pem");

    let capture = json!({
        "notifyType": "CAPTURE_RESULT", "result": success(), "captureRequestId": "CR-1", "paymentId": "CARD-1",
        "captureId": "CAP-1", "captureAmount": { "currency": "USD", "value": "10000" },
        "captureTime": "2026-11-28T01:00:00Z"
    });
    // The capture arrives before its payment: not applicable yet, so Antom is asked to send it again.
    assert_eq!(notify(&server, &antom, &capture), 503);

    let paid = json!({
        "notifyType": "PAYMENT_RESULT", "result": success(), "paymentRequestId": "PR-1", "paymentId": "CARD-1",
        "paymentAmount": { "currency": "USD", "value": "10000" }, "paymentTime": "2026-11-28T00:00:00Z",
        "paymentMethodType": "CARD"
    });
    assert_eq!(notify(&server, &antom, &paid), 200);
    assert_eq!(
        notify(&server, &antom, &paid),
        200,
        "a resent notification is acknowledged again"
    );
    assert_eq!(payment(&server, "CARD-1")["status"], "AWAITING_CAPTURE");

    assert_eq!(notify(&server, &antom, &capture), 200);
    assert_eq!(payment(&server, "CARD-1")["capturedAmount"]["value"], "10000");

    let opened = json!({
        "disputeNotificationType": "DISPUTE_CREATED", "disputeId": "D-1", "paymentId": "CARD-1",
        "paymentRequestId": "PR-1", "disputeAmount": { "currency": "USD", "value": "3000" }
    });
    assert_eq!(notify(&server, &antom, &opened), 200);
    assert_eq!(payment(&server, "CARD-1")["status"], "IN_DISPUTE");

    // ACCEPT_BY_MERCHANT: the merchant bears the dispute, the money went back to the buyer.
    let judged = json!({
        "disputeNotificationType": "DISPUTE_JUDGED", "disputeId": "D-1", "paymentId": "CARD-1",
        "paymentRequestId": "PR-1", "disputeJudgedResult": "ACCEPT_BY_MERCHANT"
    });
    assert_eq!(notify(&server, &antom, &judged), 200);
    let after = payment(&server, "CARD-1");
    assert_eq!(after["openChargeback"], false, "{after}");
    assert_eq!(after["chargedBackAmount"]["value"], "3000", "{after}");
    assert_eq!(after["refundableAmount"]["value"], "7000", "{after}");
}

#[test]
fn a_notification_signed_with_another_key_changes_nothing() {
    let (_guard, folder) = temp_folder();
    let server = Server::start(binary(), &sqlite_store(&folder), &folder);
    let forged = json!({
        "notifyType": "PAYMENT_RESULT", "result": success(), "paymentRequestId": "PR-X", "paymentId": "FORGED-1",
        "paymentAmount": { "currency": "USD", "value": "10000" }, "paymentMethodType": "ALIPAY_CN"
    });
    let before = server.graphql("{ ledgerHead { position } }", json!({}))["ledgerHead"]["position"].clone();
    assert_eq!(notify(&server, &key("merchant_private_pkcs8.pem"), &forged), 401);
    let after = server.graphql("{ ledgerHead { position } }", json!({}))["ledgerHead"]["position"].clone();
    assert_eq!(before, after);
    let found = server.graphql("{ payment(paymentId: \"FORGED-1\") { status } }", json!({}));
    assert_eq!(found["payment"], Value::Null);
}
