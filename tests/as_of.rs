//! As-of reads over HTTP on both stores: `payment(asOf:)` and `payment(atPosition:)` fold the payment's
//! stream up to that point, and `events(paymentId:)` shows every event with its position, time, actor,
//! hash and previous hash, chained.

use serde_json::{Value, json};

use crate::audit_support::{AuditServer, Log, RECORD, REFUND};

const AS_OF: &str = "query($id: ID!, $asOf: DateTime, $at: Int) {
  payment(paymentId: $id, asOf: $asOf, atPosition: $at) {
    refundedAmount { value } pendingRefundAmount { value } refundableAmount { value } position
    refunds { refundRequestId } } }";

const EVENTS: &str = "query($id: ID!) { events(paymentId: $id, first: 100) {
  position stream streamRevision type recordedAt actor hash prevHash } }";

/// Refunded plus pending, in minor units: a refund Antom answered U is pending, either way it is counted.
fn used(payment: &Value) -> u64 {
    let value = |field: &str| payment[field]["value"].as_str().unwrap().parse::<u64>().unwrap();
    value("refundedAmount") + value("pendingRefundAmount")
}

fn as_of_tests(log: &Log) {
    let server = AuditServer::start(&log.url(), &log.folder());
    server.graphql(RECORD, json!({ "id": "PAY-A", "currency": "USD", "value": "10000" }));
    let first = server.graphql(
        REFUND,
        json!({ "rid": "A-1", "pid": "PAY-A", "currency": "USD", "value": "2500" }),
    )["refund"]["position"]
        .as_i64()
        .unwrap();
    let events = server.graphql(EVENTS, json!({ "id": "PAY-A" }))["events"].clone();
    let first_refund_time = events
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["position"] == first)
        .unwrap()["recordedAt"]
        .clone();
    server.graphql(
        REFUND,
        json!({ "rid": "A-2", "pid": "PAY-A", "currency": "USD", "value": "2500" }),
    );

    let at = |variables: Value| server.graphql(AS_OF, variables)["payment"].clone();
    let then = at(json!({ "id": "PAY-A", "at": first }));
    assert_eq!(used(&then), 2_500, "{then}");
    assert_eq!(then["refunds"].as_array().unwrap().len(), 1, "{then}");
    assert_eq!(then["position"], first);
    let by_time = at(json!({ "id": "PAY-A", "asOf": first_refund_time }));
    assert_eq!(used(&by_time), 2_500, "{by_time}");
    let now = at(json!({ "id": "PAY-A", "at": 1_000_000 }));
    assert_eq!(used(&now), 5_000, "{now}");
    assert!(at(json!({ "id": "PAY-A", "asOf": "2000-01-01T00:00:00Z" })).is_null());
    assert!(at(json!({ "id": "PAY-A", "at": 0 })).is_null());
    let both = server.graphql_as(
        testkit::server::VIEWER_KEY,
        AS_OF,
        json!({ "id": "PAY-A", "at": 1, "asOf": "2000-01-01T00:00:00Z" }),
    );
    assert_eq!(both["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{both}");

    let events = server.graphql(EVENTS, json!({ "id": "PAY-A" }))["events"].clone();
    let events = events.as_array().unwrap();
    assert!(events.len() >= 4, "{events:?}");
    assert_eq!(events[0]["prevHash"], "0".repeat(64));
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event["streamRevision"], index, "{event}");
        assert_eq!(event["stream"], "payment-PAY-A");
        assert_eq!(event["hash"].as_str().unwrap().len(), 64);
        assert!(event["recordedAt"].is_string() && event["actor"].is_string(), "{event}");
        if index > 0 {
            assert_eq!(
                event["prevHash"],
                events[index - 1]["hash"],
                "one stream holds the whole log"
            );
        }
    }
    assert_eq!(events[1]["actor"], "ops");
    assert_eq!(events[1]["type"], "RefundRequested");
    server.stop();
}

#[test]
fn as_of_reads_and_event_history_on_sqlite() {
    as_of_tests(&Log::sqlite());
}

#[test]
fn as_of_reads_and_event_history_on_postgres() {
    as_of_tests(&Log::postgres());
}
