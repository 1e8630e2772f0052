//! `refund-ledger verify` and `verifyLedger` on both stores: an intact log verifies and prints its digest;
//! a changed byte, a deleted row, a forged row and two swapped rows, made directly in the SQLite file and
//! the PostgreSQL table, each fail with exit 1 naming the first bad position and its stream; `--digest`
//! proves the log extends an earlier digest and catches a cut tail.

use serde_json::json;
use testkit::server::VIEWER_KEY;

use crate::audit_support::{ADMIN_KEY, AuditServer, Log, payment_with_refunds, run, stdout};

const VERIFY: &str = "query($digest: String) { verifyLedger(digest: $digest) {
  intact events streams digest extendsDigest failure { position stream reason } } }";

/// A log written by the real service: two payments, three refunds.
fn written_log(log: &Log) -> String {
    let server = AuditServer::start(&log.url(), &log.folder());
    payment_with_refunds(&server, "PAY-1", "USD", &["2500", "2500"]);
    payment_with_refunds(&server, "PAY-2", "EUR", &["1000"]);
    server.wait_projected();
    let viewer = server.graphql_as(VIEWER_KEY, VERIFY, json!({}));
    assert_eq!(viewer["errors"][0]["extensions"]["code"], "FORBIDDEN", "{viewer}");
    let bad = server.graphql_as(ADMIN_KEY, VERIFY, json!({ "digest": "12:nothex" }));
    assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{bad}");
    let report = server.graphql_as(ADMIN_KEY, VERIFY, json!({}))["data"]["verifyLedger"].clone();
    assert_eq!(report["intact"], true, "{report}");
    assert!(report["failure"].is_null(), "{report}");
    let digest = report["digest"].as_str().unwrap().to_owned();
    let again = server.graphql_as(ADMIN_KEY, VERIFY, json!({ "digest": digest }))["data"]["verifyLedger"].clone();
    assert_eq!(again["extendsDigest"], digest.as_str(), "{again}");
    server.stop();
    digest
}

fn stream_at(log: &Log, position: u64) -> String {
    log.events()
        .into_iter()
        .find(|(at, _)| *at == position)
        .map(|(_, stream)| stream)
        .unwrap()
}

/// `verify` on `log` fails with exit 1 at `position` in `stream`.
fn assert_fails_at(log: &Log, args: &[&str], position: u64, stream: &str) {
    let output = run(log, args);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let expected = format!("verify: FAILED at position {position} (stream {stream})");
    assert!(text.contains(&expected), "expected {expected:?} in {text}");
}

fn tamper_tests(log: &Log) {
    let served_digest = written_log(log);
    let intact = run(log, &["verify"]);
    assert_eq!(intact.status.code(), Some(0), "{intact:?}");
    let text = stdout(&intact);
    assert!(text.starts_with("verify: OK, "), "{text}");
    let digest = text.trim().rsplit(' ').next().unwrap().to_owned();
    assert_eq!(digest.len(), digest.find(':').unwrap() + 65, "{text}");
    // The worker may have settled a refund after GraphQL's digest: the log then extends it.
    let extends = run(log, &["verify", "--digest", &served_digest]);
    assert_eq!(extends.status.code(), Some(0), "{extends:?}");
    assert!(stdout(&extends).contains(&format!("extends digest {served_digest}")));
    let alias = run(log, &["check"]);
    assert_eq!(alias.status.code(), Some(0), "check stays an alias: {alias:?}");
    let garbage = run(log, &["verify", "--digest", "not-a-digest"]);
    assert_eq!(garbage.status.code(), Some(2), "{garbage:?}");

    let events = log.events();
    assert!(events.len() >= 6, "{events:?}");
    assert_eq!(events[1].1, "payment-PAY-1");
    assert!(
        events[2..].iter().any(|(_, stream)| stream == "payment-PAY-1"),
        "position 2's stream goes on after it: {events:?}"
    );

    let changed = log.copy();
    changed.execute(if log.is_sqlite() {
        "UPDATE eventlog_events SET payload = CAST(replace(CAST(payload AS TEXT), '2500', '2600') AS BLOB)
         WHERE position = 2"
    } else {
        "UPDATE eventlog_events SET payload = convert_to(replace(convert_from(payload, 'UTF8'), '2500', '2600'), 'UTF8')
         WHERE position = 2"
    });
    assert_fails_at(&changed, &["verify"], 2, "payment-PAY-1");

    let deleted = log.copy();
    deleted.execute("DELETE FROM eventlog_events WHERE position = 2");
    assert_fails_at(&deleted, &["verify"], 2, "payment-PAY-1");

    let forged = log.copy();
    let forge = if log.is_sqlite() {
        "randomblob(16), event_type, schema_version, payload, actor, recorded_at_ns, hash, randomblob(32)"
    } else {
        "gen_random_uuid(), event_type, schema_version, payload, actor, recorded_at, hash, sha256(payload)"
    };
    forged.execute(&format!(
        "UPDATE eventlog_events SET position = position + 1000000 WHERE position >= 2;
         UPDATE eventlog_events SET position = position - 999999 WHERE position >= 1000000;
         INSERT INTO eventlog_events SELECT 2, 'payment-FORGED', 0, {forge} FROM eventlog_events WHERE position = 1;"
    ));
    assert_eq!(forged.events().len(), events.len() + 1);
    assert_fails_at(&forged, &["verify"], 2, "payment-FORGED");

    let swapped = log.copy();
    let third = stream_at(log, 3);
    swapped.execute(
        "UPDATE eventlog_events SET position = 1000000 WHERE position = 2;
         UPDATE eventlog_events SET position = 2 WHERE position = 3;
         UPDATE eventlog_events SET position = 3 WHERE position = 1000000;",
    );
    assert_fails_at(&swapped, &["verify"], 2, &third);

    let cut = log.copy();
    let last = events.last().unwrap().0;
    cut.execute(&format!("DELETE FROM eventlog_events WHERE position = {last}"));
    let output = run(&cut, &["verify", "--digest", &digest]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a cut tail no longer extends the digest: {output:?}"
    );
    assert!(
        stdout(&output).contains(&format!("FAILED at position {last}")),
        "{output:?}"
    );
}

#[test]
fn verify_detects_every_kind_of_tampering_in_the_sqlite_file() {
    tamper_tests(&Log::sqlite());
}

#[test]
fn verify_detects_every_kind_of_tampering_in_the_postgres_table() {
    tamper_tests(&Log::postgres());
}

#[test]
fn verify_ledger_over_graphql_names_the_first_bad_position() {
    let log = Log::sqlite();
    written_log(&log);
    let changed = log.copy();
    changed.execute("UPDATE eventlog_events SET actor = 'mallory' WHERE position = 3");
    let server = AuditServer::start(&changed.url(), &changed.folder());
    let report = server.graphql_as(ADMIN_KEY, VERIFY, json!({}))["data"]["verifyLedger"].clone();
    assert_eq!(report["intact"], false, "{report}");
    assert_eq!(report["failure"]["position"], 3, "{report}");
    assert_eq!(report["events"], 2, "{report}");
    assert!(
        report["failure"]["stream"].as_str().unwrap().starts_with("payment-"),
        "{report}"
    );
}
