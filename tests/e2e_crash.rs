//! `kill -9` of the server between `RefundRequested` and Antom's answer:
//! after a restart on the same store every refund settles exactly once, at
//! the ledger and at Antom. Two cases per store: Antom took the refund but
//! its answer never arrived (`latency`), and Antom never took it (`timeout`).

use std::path::Path;

use serde_json::json;
use testkit::postgres::ScratchDatabase;
use testkit::server::{OPERATOR_KEY, check, sqlite_store, temp_folder};

use crate::e2e_support::{
    Antom, REFUND, Worker, balance, events, events_of, eventually, free_loopback_port, record_payment, refund,
    start_ledger, wait_for_status,
};
use crate::support::binary;

/// Antom applies the refund at once and holds its answer this long: past the kill.
const ANSWER_HELD_MS: u64 = 20_000;

/// (refundRequestId, paymentId, what Antom does with each call). Notifications are dropped, so only
/// the restarted ledger's worker can settle.
fn cases() -> [(&'static str, &'static str, Vec<String>); 2] {
    [
        (
            "K-TAKEN",
            "PAY-K1",
            vec![format!("latency={ANSWER_HELD_MS},notify-drop")],
        ),
        ("K-LOST", "PAY-K2", vec!["timeout".to_owned(), "notify-drop".to_owned()]),
    ]
}

fn killed_and_restarted(store: &str, folder: &Path) {
    let port = free_loopback_port();
    let antom = Antom::start(port);
    // The worker idles in the first life, so nothing but the crash decides what happens.
    let server = start_ledger(store, folder, &antom, port, Worker::Idle);
    for (refund_request_id, payment_id, calls) in cases() {
        record_payment(&server, payment_id, "10000");
        let calls: Vec<&str> = calls.iter().map(String::as_str).collect();
        antom.script(refund_request_id, &calls);
    }
    let graphql_url = server.url("/graphql");
    let callers: Vec<_> = cases()
        .into_iter()
        .map(|(refund_request_id, payment_id, _)| {
            let graphql_url = graphql_url.clone();
            std::thread::spawn(move || {
                // The answer never comes: the server dies while this call waits for Antom.
                let _lost = reqwest::blocking::Client::new()
                    .post(graphql_url)
                    .bearer_auth(OPERATOR_KEY)
                    .json(&json!({
                        "query": REFUND,
                        "variables": { "rid": refund_request_id, "pid": payment_id, "value": "2500" },
                    }))
                    .send();
            })
        })
        .collect();
    for (refund_request_id, payment_id, _) in cases() {
        eventually(&format!("{refund_request_id} to be requested"), || {
            (events_of(&events(&server, payment_id), refund_request_id, "RefundRequested").len() == 1).then_some(())
        });
        // Antom's answer is still out, so the refund stays REQUESTED; the read models may show it a
        // moment after the log (this read does not wait for a position), so wait for them.
        wait_for_status(&server, refund_request_id, "REQUESTED");
    }
    server.kill_hard();
    for caller in callers {
        caller.join().unwrap();
    }

    let server = start_ledger(store, folder, &antom, port, Worker::Eager);
    for (refund_request_id, payment_id, _) in cases() {
        wait_for_status(&server, refund_request_id, "SUCCEEDED");
        let stream = events(&server, payment_id);
        assert_eq!(
            events_of(&stream, refund_request_id, "RefundRequested").len(),
            1,
            "{stream:?}"
        );
        let succeeded = events_of(&stream, refund_request_id, "RefundSucceeded");
        assert_eq!(succeeded.len(), 1, "{stream:?}");
        assert_eq!(succeeded[0]["actor"], "worker");
        assert_eq!(balance(&server, payment_id), (2500, 0, 7500));

        // A merchant retrying the lost call gets the settled refund, not a second one.
        let again = refund(&server, refund_request_id, payment_id, "2500");
        assert_eq!(again["result"]["resultCode"], "SUCCESS", "{again}");
        let at_antom = antom.payment(payment_id);
        assert_eq!(at_antom["succeededMinorUnits"], 2500, "{at_antom}");
        assert_eq!(at_antom["refunds"].as_array().unwrap().len(), 1, "{at_antom}");
    }
    let taken = events(&server, "PAY-K1");
    assert_eq!(
        events_of(&taken, "K-TAKEN", "RefundSucceeded")[0]["data"]["source"],
        "INQUIRY",
        "Antom had it: the inquiry found it"
    );
    server.stop();
    let verified = check(binary(), store);
    assert!(
        verified.status.success(),
        "the log is intact after kill -9: {}",
        String::from_utf8_lossy(&verified.stdout)
    );
}

#[test]
fn kill_9_between_request_and_answer_settles_exactly_once_on_sqlite() {
    let (_guard, folder) = temp_folder();
    killed_and_restarted(&sqlite_store(&folder), &folder);
}

#[test]
fn kill_9_between_request_and_answer_settles_exactly_once_on_postgres() {
    let (_guard, folder) = temp_folder();
    let database = ScratchDatabase::create("e2e");
    killed_and_restarted(&database.url, &folder);
}
