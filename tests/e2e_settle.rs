//! Refunds Antom left open (U) are settled: by the settle worker's inquiry
//! when no notification comes, and by Antom's signed notification when one
//! does; a forged notification is refused and changes nothing. The ledger
//! runs as `refund-ledger serve` against the `apo-sim` binary.

use apo::PrivateKey;
use serde_json::Value;
use testkit::antom::demo_key;
use testkit::postgres::ScratchDatabase;
use testkit::server::{sqlite_store, temp_folder};

use crate::e2e_support::{
    Antom, Worker, balance, events, events_of, free_loopback_port, ledger_status, notify_refund, record_payment,
    refund, start_ledger, wait_for_status,
};

fn assert_left_open(answer: &Value) {
    assert_eq!(answer["result"]["resultStatus"], "U", "{answer}");
    assert_eq!(answer["result"]["resultCode"], "REFUND_IN_PROCESS", "{answer}");
    assert_eq!(answer["refund"]["ledgerStatus"], "PROCESSING", "{answer}");
}

/// U answers whose notifications Antom drops: the worker's inquiry settles both outcomes.
fn the_worker_settles(store: &str, folder: &std::path::Path) {
    let port = free_loopback_port();
    let antom = Antom::start(port);
    let server = start_ledger(store, folder, &antom, port, Worker::Eager);
    record_payment(&server, "PAY-W", "10000");
    antom.script("W-OK", &["u,notify-drop"]);
    antom.script("W-FAIL", &["u-fail,notify-drop"]);

    assert_left_open(&refund(&server, "W-OK", "PAY-W", "3000"));
    assert_left_open(&refund(&server, "W-FAIL", "PAY-W", "2000"));
    assert_eq!(balance(&server, "PAY-W"), (0, 5000, 5000), "both reserved while open");

    wait_for_status(&server, "W-OK", "SUCCEEDED");
    wait_for_status(&server, "W-FAIL", "FAILED");
    assert_eq!(
        balance(&server, "PAY-W"),
        (3000, 0, 7000),
        "the failed refund is released"
    );
    let stream = events(&server, "PAY-W");
    let succeeded = events_of(&stream, "W-OK", "RefundSucceeded");
    assert_eq!(succeeded.len(), 1, "{stream:?}");
    assert_eq!(succeeded[0]["actor"], "worker");
    assert_eq!(succeeded[0]["data"]["source"], "INQUIRY");
    let failed = events_of(&stream, "W-FAIL", "RefundFailed");
    assert_eq!(failed.len(), 1, "{stream:?}");
    assert_eq!(failed[0]["actor"], "worker");

    let log = antom.notifications();
    let mut outcomes: Vec<(&str, &str)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            (
                line["refundRequestId"].as_str().unwrap(),
                line["outcome"]["kind"].as_str().unwrap(),
            )
        })
        .collect();
    outcomes.sort_unstable();
    assert_eq!(
        outcomes,
        [("W-FAIL", "dropped"), ("W-OK", "dropped")],
        "Antom never notified: {log}"
    );
    let at_antom = antom.payment("PAY-W");
    assert_eq!(at_antom["succeededMinorUnits"], 3000, "{at_antom}");
    assert_eq!(at_antom["processingMinorUnits"], 0, "{at_antom}");
    server.stop();
}

/// U answers that Antom settles with a notification (one of them sent twice); the worker is idle.
fn a_notification_settles(store: &str, folder: &std::path::Path) {
    let port = free_loopback_port();
    let antom = Antom::start(port);
    let server = start_ledger(store, folder, &antom, port, Worker::Idle);
    record_payment(&server, "PAY-N", "10000");
    antom.script("N-OK", &["u,notify-duplicate"]);
    antom.script("N-FAIL", &["u-fail"]);

    assert_left_open(&refund(&server, "N-OK", "PAY-N", "4000"));
    assert_left_open(&refund(&server, "N-FAIL", "PAY-N", "1000"));
    wait_for_status(&server, "N-OK", "SUCCEEDED");
    wait_for_status(&server, "N-FAIL", "FAILED");
    assert_eq!(balance(&server, "PAY-N"), (4000, 0, 6000));

    let stream = events(&server, "PAY-N");
    let succeeded = events_of(&stream, "N-OK", "RefundSucceeded");
    assert_eq!(
        succeeded.len(),
        1,
        "the duplicate notification added nothing: {stream:?}"
    );
    assert_eq!(succeeded[0]["actor"], "apo-notify");
    assert_eq!(succeeded[0]["data"]["source"], "NOTIFICATION");
    let failed = events_of(&stream, "N-FAIL", "RefundFailed");
    assert_eq!(failed.len(), 1, "{stream:?}");
    assert_eq!(failed[0]["data"]["resultCode"], "PROCESS_FAIL");
    assert_eq!(failed[0]["data"]["source"], "NOTIFICATION");
    assert!(
        events_of(&stream, "N-OK", "RefundOutcomeAnomaly").is_empty(),
        "{stream:?}"
    );
    server.stop();
}

#[test]
fn a_refund_left_u_is_settled_by_the_worker_on_sqlite() {
    let (_guard, folder) = temp_folder();
    the_worker_settles(&sqlite_store(&folder), &folder);
}

#[test]
fn a_refund_left_u_is_settled_by_the_worker_on_postgres() {
    let (_guard, folder) = temp_folder();
    let database = ScratchDatabase::create("e2e");
    the_worker_settles(&database.url, &folder);
}

#[test]
fn a_refund_left_u_is_settled_by_a_notification_on_sqlite() {
    let (_guard, folder) = temp_folder();
    a_notification_settles(&sqlite_store(&folder), &folder);
}

#[test]
fn a_refund_left_u_is_settled_by_a_notification_on_postgres() {
    let (_guard, folder) = temp_folder();
    let database = ScratchDatabase::create("e2e");
    a_notification_settles(&database.url, &folder);
}

#[test]
fn a_forged_notification_is_refused_and_changes_nothing() {
    let (_guard, folder) = temp_folder();
    let port = free_loopback_port();
    let antom = Antom::start(port);
    let server = start_ledger(&sqlite_store(&folder), &folder, &antom, port, Worker::Idle);
    record_payment(&server, "PAY-F", "10000");
    antom.script("F-1", &["u,notify-drop"]);
    assert_left_open(&refund(&server, "F-1", "PAY-F", "2500"));
    let before = events(&server, "PAY-F");

    // A well-formed RSA signature by the wrong key (the merchant's own), and no signature at all.
    let merchant_key = PrivateKey::from_file(&demo_key("merchant_private_pkcs8.pem")).unwrap();
    for key in [Some(&merchant_key), None] {
        let (status, body) = notify_refund(&server, "F-1", key);
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("\"resultStatus\":\"F\""), "{body}");
    }
    assert_eq!(events(&server, "PAY-F"), before, "a forged notification wrote an event");
    assert_eq!(ledger_status(&server, "F-1").as_deref(), Some("PROCESSING"));
    assert_eq!(balance(&server, "PAY-F"), (0, 2500, 7500));

    // The same notification signed with Antom's key is applied: the refusal was the signature's.
    let antom_key = PrivateKey::from_file(&demo_key("antom_private_pkcs8.pem")).unwrap();
    let (status, body) = notify_refund(&server, "F-1", Some(&antom_key));
    assert_eq!(status, 200, "{body}");
    wait_for_status(&server, "F-1", "SUCCEEDED");
    server.stop();
}
