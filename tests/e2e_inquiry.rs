//! `inquiryRefund` by hand against the `apo-sim` binary as Antom, with the settle worker idle: it asks Antom
//! now and records a final answer as the key that asked; an answer whose signature does not verify is not
//! taken; a refund Antom never received is sent again with the same refundRequestId; a viewer key may not
//! call it.

use serde_json::{Value, json};
use testkit::postgres::ScratchDatabase;
use testkit::server::{OPERATOR_KEY, Server, VIEWER_KEY, sqlite_store, temp_folder};

use crate::e2e_support::{
    Antom, Worker, balance, events, events_of, eventually, free_loopback_port, ledger_status, record_payment, refund,
    start_ledger, wait_for_status,
};

const INQUIRY: &str = "mutation($rid: ID!) { inquiryRefund(refundRequestId: $rid) {
  result { resultCode resultStatus resultMessage } refund { status ledgerStatus } position } }";

/// `apo-sim` as Antom and a ledger on `store` whose settle worker stays idle: only `inquiryRefund` settles.
fn idle_ledger(store: &str, folder: &std::path::Path) -> (Antom, Server) {
    let port = free_loopback_port();
    let antom = Antom::start(port);
    let server = start_ledger(store, folder, &antom, port, Worker::Idle);
    (antom, server)
}

/// Waits until the read models show `expected` (refunded, pending, refundable) for the payment.
fn balance_becomes(server: &Server, payment_id: &str, expected: (u64, u64, u64)) {
    eventually(&format!("{payment_id}'s balance to become {expected:?}"), || {
        (balance(server, payment_id) == expected).then_some(())
    });
}

/// `inquiryRefund` with `key`: the HTTP status and the JSON body.
fn inquiry_as(server: &Server, key: &str, refund_request_id: &str) -> (u16, Value) {
    server.graphql_with(Some(key), INQUIRY, json!({ "rid": refund_request_id }))
}

/// `inquiryRefund` with the operator key; answers `RefundResult`.
fn inquiry(server: &Server, refund_request_id: &str) -> Value {
    let (status, body) = inquiry_as(server, OPERATOR_KEY, refund_request_id);
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["inquiryRefund"].clone()
}

/// The refund as the simulator (Antom) holds it.
fn at_antom(antom: &Antom, payment_id: &str, refund_request_id: &str) -> Vec<Value> {
    antom.payment(payment_id)["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|refund| refund["refundRequestId"] == refund_request_id)
        .cloned()
        .collect()
}

/// Sets the simulator's random fault mix to answer every call with a signature that does not verify (`true`),
/// or to no faults (`false`).
fn bad_signatures(antom: &Antom, on: bool) {
    let share = if on { 1.0 } else { 0.0 };
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/sim/faults", antom.base_url()))
        .json(&json!({ "badSignatureShare": share }))
        .send()
        .unwrap();
    assert!(response.status().is_success(), "{}", response.text().unwrap());
}

/// A U refund that Antom settled (its notification dropped): a badly signed inquiry answer is not taken, a
/// good one settles the refund at once, as the operator who asked.
fn a_u_refund_is_settled_by_inquiry(store: &str, folder: &std::path::Path) {
    let (antom, server) = idle_ledger(store, folder);
    record_payment(&server, "PAY-I", "10000");
    antom.script("I-U", &["u,notify-drop"]);
    let answer = refund(&server, "I-U", "PAY-I", "3000");
    assert_eq!(answer["refund"]["ledgerStatus"], "PROCESSING", "{answer}");
    eventually("Antom to settle I-U", || {
        let refunds = at_antom(&antom, "PAY-I", "I-U");
        (refunds.len() == 1 && refunds[0]["refundStatus"] == "SUCCESS").then_some(())
    });
    let before = events(&server, "PAY-I");

    bad_signatures(&antom, true);
    let unverified = inquiry(&server, "I-U");
    assert_eq!(unverified["refund"]["ledgerStatus"], "PROCESSING", "{unverified}");
    assert_eq!(events(&server, "PAY-I"), before, "a badly signed answer wrote an event");
    assert_eq!(balance(&server, "PAY-I"), (0, 3000, 7000));

    bad_signatures(&antom, false);
    let settled = inquiry(&server, "I-U");
    assert_eq!(settled["refund"]["ledgerStatus"], "SUCCEEDED", "{settled}");
    assert_eq!(settled["refund"]["status"], "SUCCESS", "{settled}");
    assert_eq!(settled["result"]["resultStatus"], "S", "{settled}");
    // The read models follow the log.
    wait_for_status(&server, "I-U", "SUCCEEDED");
    balance_becomes(&server, "PAY-I", (3000, 0, 7000));
    let stream = events(&server, "PAY-I");
    let succeeded = events_of(&stream, "I-U", "RefundSucceeded");
    assert_eq!(succeeded.len(), 1, "{stream:?}");
    assert_eq!(succeeded[0]["actor"], "ops", "recorded as the key that asked");
    assert_eq!(succeeded[0]["data"]["source"], "INQUIRY");
    assert_eq!(
        succeeded[0]["data"]["refundId"],
        at_antom(&antom, "PAY-I", "I-U")[0]["refundId"]
    );

    // A final refund is answered from the log: nothing more is written.
    let again = inquiry(&server, "I-U");
    assert_eq!(again["refund"]["ledgerStatus"], "SUCCEEDED", "{again}");
    assert_eq!(events(&server, "PAY-I"), stream);
    server.stop();
}

#[test]
fn inquiry_refund_settles_a_u_refund_and_ignores_a_bad_signature_on_sqlite() {
    let (_guard, folder) = temp_folder();
    a_u_refund_is_settled_by_inquiry(&sqlite_store(&folder), &folder);
}

#[test]
fn inquiry_refund_settles_a_u_refund_and_ignores_a_bad_signature_on_postgres() {
    let (_guard, folder) = temp_folder();
    let database = ScratchDatabase::create("e2e");
    a_u_refund_is_settled_by_inquiry(&database.url, &folder);
}

/// Antom never received the refund (every attempt answered HTTP 500 before processing): the inquiry finds
/// ORDER_NOT_EXIST and the ledger sends the refund again with the same refundRequestId.
#[test]
fn inquiry_refund_resends_a_refund_antom_never_received() {
    let (_guard, folder) = temp_folder();
    let (antom, server) = idle_ledger(&sqlite_store(&folder), &folder);
    record_payment(&server, "PAY-O", "10000");
    // The resend (fourth call) is applied without a notification: otherwise the notification may record the
    // success before the inquiry does, and the event's actor would be the notification's.
    antom.script("O-1", &["5xx", "5xx", "5xx", "notify-drop"]);
    let answer = refund(&server, "O-1", "PAY-O", "2000");
    assert_eq!(answer["refund"]["ledgerStatus"], "PROCESSING", "{answer}");
    assert!(at_antom(&antom, "PAY-O", "O-1").is_empty(), "Antom holds no O-1 yet");

    let resent = inquiry(&server, "O-1");
    assert_eq!(resent["refund"]["ledgerStatus"], "SUCCEEDED", "{resent}");
    let refunds = at_antom(&antom, "PAY-O", "O-1");
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["refundStatus"], "SUCCESS", "{refunds:?}");
    assert_eq!(refunds[0]["refundAmount"]["value"], "2000", "{refunds:?}");
    let stream = events(&server, "PAY-O");
    assert_eq!(events_of(&stream, "O-1", "RefundRequested").len(), 1, "{stream:?}");
    let succeeded = events_of(&stream, "O-1", "RefundSucceeded");
    assert_eq!(succeeded.len(), 1, "{stream:?}");
    assert_eq!(succeeded[0]["actor"], "ops");
    assert_eq!(succeeded[0]["data"]["refundId"], refunds[0]["refundId"]);
    wait_for_status(&server, "O-1", "SUCCEEDED");
    balance_becomes(&server, "PAY-O", (2000, 0, 8000));
    server.stop();
}

/// A viewer key may read the refund but not call `inquiryRefund` (it writes): FORBIDDEN, nothing written.
#[test]
fn inquiry_refund_is_forbidden_to_a_viewer_and_writes_nothing() {
    let (_guard, folder) = temp_folder();
    let (antom, server) = idle_ledger(&sqlite_store(&folder), &folder);
    record_payment(&server, "PAY-V", "10000");
    antom.script("V-U", &["u,notify-drop"]);
    refund(&server, "V-U", "PAY-V", "1000");
    eventually("Antom to settle V-U", || {
        let refunds = at_antom(&antom, "PAY-V", "V-U");
        (refunds.len() == 1 && refunds[0]["refundStatus"] == "SUCCESS").then_some(())
    });
    let before = events(&server, "PAY-V");

    let (status, body) = inquiry_as(&server, VIEWER_KEY, "V-U");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body}");
    assert!(body["data"].is_null(), "{body}");
    assert_eq!(events(&server, "PAY-V"), before, "a viewer's inquiry wrote an event");
    assert_eq!(ledger_status(&server, "V-U").as_deref(), Some("PROCESSING"));
    server.stop();
}
