//! The service over HTTP: refunds through GraphQL against the built-in
//! simulator, on SQLite and on PostgreSQL.

use serde_json::{Value, json};
use testkit::postgres::ScratchDatabase;
use testkit::server::{OPERATOR_KEY, Server, VIEWER_KEY, sqlite_store, temp_folder};

use crate::support::binary;

const RECORD: &str = "mutation($id: ID!, $value: String!) {
  recordPayment(input: { paymentId: $id, paymentAmount: { currency: \"USD\", value: $value },
                         paymentMethodType: \"ALIPAY_CN\", paymentTime: \"2026-11-01T00:00:00Z\" }) {
    result { resultCode resultStatus } position } }";

const REFUND: &str = "mutation($rid: ID!, $pid: ID!, $currency: String!, $value: String!) {
  refund(input: { refundRequestId: $rid, paymentId: $pid, refundAmount: { currency: $currency, value: $value } }) {
    result { resultCode resultStatus resultMessage } refund { status ledgerStatus refundAmount { value } } position } }";

const PAYMENT: &str = "query($id: ID!, $at: Int) { payment(paymentId: $id, atLeastPosition: $at) {
  refundedAmount { value decimal } pendingRefundAmount { value } refundableAmount { value } status
  refunds { refundRequestId status } } }";

fn refund(server: &Server, rid: &str, pid: &str, value: &str) -> Value {
    server.graphql(
        REFUND,
        json!({ "rid": rid, "pid": pid, "currency": "USD", "value": value }),
    )["refund"]
        .clone()
}

fn head(server: &Server) -> i64 {
    server.graphql("{ ledgerHead { position } }", json!({}))["ledgerHead"]["position"]
        .as_i64()
        .unwrap()
}

fn scenario(server: &Server) {
    let recorded = server.graphql(RECORD, json!({ "id": "PAY-1", "value": "10000" }));
    assert_eq!(recorded["recordPayment"]["result"]["resultStatus"], "S");

    // Partial refunds down to zero.
    let mut position = 0;
    for (index, value) in ["2500", "2500", "5000"].iter().enumerate() {
        let answer = refund(server, &format!("R-{index}"), "PAY-1", value);
        assert_eq!(answer["result"]["resultCode"], "SUCCESS", "{answer}");
        position = answer["position"].as_i64().unwrap();
    }
    let payment = server.graphql(PAYMENT, json!({ "id": "PAY-1", "at": position }))["payment"].clone();
    assert_eq!(payment["refundedAmount"]["decimal"], "100.00", "{payment}");
    assert_eq!(payment["refundableAmount"]["value"], "0");
    assert_eq!(payment["status"], "FULLY_REFUNDED");

    // A rule refusal is a result with Antom's code, not an error.
    let over = refund(server, "R-over", "PAY-1", "1");
    assert_eq!(over["result"]["resultCode"], "REFUND_AMOUNT_EXCEED", "{over}");
    assert_eq!(over["result"]["resultStatus"], "F");
    let unknown = refund(server, "R-none", "NO-SUCH-PAYMENT", "100");
    assert_eq!(unknown["result"]["resultCode"], "ORDER_NOT_EXIST", "{unknown}");
    let currency = server.graphql(
        REFUND,
        json!({ "rid": "R-eur", "pid": "PAY-1", "currency": "EUR", "value": "1" }),
    );
    assert_eq!(currency["refund"]["result"]["resultCode"], "CURRENCY_NOT_SUPPORT");

    // Idempotent retry and REPEAT_REQ_INCONSISTENT.
    let again = refund(server, "R-0", "PAY-1", "2500");
    assert_eq!(again["result"]["resultCode"], "SUCCESS", "{again}");
    let inconsistent = refund(server, "R-0", "PAY-1", "2600");
    assert_eq!(
        inconsistent["result"]["resultCode"], "REPEAT_REQ_INCONSISTENT",
        "{inconsistent}"
    );
}

fn malformed_inputs_write_nothing(server: &Server) {
    server.graphql(RECORD, json!({ "id": "PAY-M", "value": "10000" }));
    let before = head(server);
    let long_id = "x".repeat(70);
    let cases = [
        (
            json!({ "rid": "M1", "pid": "PAY-M", "currency": "USD", "value": "-5" }),
            "input.refundAmount.value",
        ),
        (
            json!({ "rid": "M2", "pid": "PAY-M", "currency": "USD", "value": "1.5" }),
            "input.refundAmount.value",
        ),
        (
            json!({ "rid": "M3", "pid": "PAY-M", "currency": "USD", "value": "abc" }),
            "input.refundAmount.value",
        ),
        (
            json!({ "rid": "M4", "pid": "PAY-M", "currency": "XX", "value": "5" }),
            "input.refundAmount.currency",
        ),
        (
            json!({ "rid": long_id, "pid": "PAY-M", "currency": "USD", "value": "5" }),
            "input.refundRequestId",
        ),
    ];
    for (variables, field) in cases {
        let (status, body) = server.graphql_with(Some(OPERATOR_KEY), REFUND, variables.clone());
        assert_eq!(status, 200);
        let error = &body["errors"][0];
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{variables}: {body}");
        assert_eq!(error["extensions"]["field"], field, "{variables}: {body}");
    }
    // A missing field is refused by the schema itself.
    let (_, body) = server.graphql_with(
        Some(OPERATOR_KEY),
        "mutation { refund(input: { refundRequestId: \"M5\", paymentId: \"PAY-M\" }) { position } }",
        json!({}),
    );
    assert!(
        body["errors"][0]["message"].as_str().unwrap().contains("refundAmount"),
        "{body}"
    );
    assert_eq!(head(server), before, "bad input wrote an event");
}

fn access_control(server: &Server) {
    let (status, body) = server.graphql_with(None, "{ ledgerHead { position } }", json!({}));
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let (status, _) = server.graphql_with(Some("wrong-key-123"), "{ ledgerHead { position } }", json!({}));
    assert_eq!(status, 401);
    let (status, body) = server.graphql_with(
        Some(VIEWER_KEY),
        REFUND,
        json!({ "rid": "V1", "pid": "PAY-1", "currency": "USD", "value": "1" }),
    );
    assert_eq!(status, 200);
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body}");
    let (_, body) = server.graphql_with(Some(VIEWER_KEY), "{ ledgerHead { position } }", json!({}));
    assert!(body.get("errors").is_none(), "{body}");
}

/// Relay paging and filters of `payments` and `refunds`, and their bad arguments.
fn paging_and_filters(server: &Server) {
    for index in 0..5 {
        server.graphql(RECORD, json!({ "id": format!("PAGE-{index}"), "value": "1000" }));
    }
    refund(server, "PAGE-R1", "PAGE-1", "100");
    let position = head(server);
    let query = "query($after: String, $at: Int) {
      refund(refundRequestId: \"PAGE-R1\", atLeastPosition: $at) { refundRequestId }
      payments(first: 2, after: $after, filter: { currency: \"USD\" }) {
        edges { cursor node { paymentId } } pageInfo { hasNextPage hasPreviousPage } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = server.graphql(query, json!({ "after": after, "at": position }))["payments"].clone();
        for edge in page["edges"].as_array().unwrap() {
            seen.push(edge["node"]["paymentId"].as_str().unwrap().to_owned());
            after = edge["cursor"].clone();
        }
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        assert!(seen.len() < 100, "paging does not end");
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a payment came twice: {seen:?}");
    for index in 0..5 {
        assert!(seen.contains(&format!("PAGE-{index}")), "{seen:?}");
    }
    let succeeded = server.graphql(
        "{ refunds(first: 500, filter: { paymentId: \"PAGE-1\" }) { edges { node { refundRequestId ledgerStatus } } } }",
        json!({}),
    );
    let edges = succeeded["refunds"]["edges"].as_array().unwrap().clone();
    assert_eq!(edges.len(), 1, "{succeeded}");
    assert_eq!(edges[0]["node"]["refundRequestId"], "PAGE-R1");
    for (query, field) in [
        ("{ payments(after: \"not-a-cursor\") { edges { cursor } } }", "after"),
        ("{ payments(first: 501) { edges { cursor } } }", "first"),
        (
            "{ refunds(filter: { currency: \"XX\" }) { edges { cursor } } }",
            "filter.currency",
        ),
    ] {
        let (_, body) = server.graphql_with(Some(OPERATOR_KEY), query, json!({}));
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{query}: {body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{query}: {body}");
    }
}

#[test]
fn refunds_rules_and_access_on_sqlite() {
    let (_guard, folder) = temp_folder();
    let server = Server::start(binary(), &sqlite_store(&folder), &folder);
    scenario(&server);
    paging_and_filters(&server);
    malformed_inputs_write_nothing(&server);
    access_control(&server);
    let (status, text) = server.get("/metrics");
    assert_eq!(status, 200);
    assert!(text.contains("refund_ledger_graphql_requests_total"), "{text}");
    assert_eq!(server.get("/healthz").0, 200);
    assert_eq!(server.get("/readyz").0, 200);
    assert!(server.get("/graphql").1.contains("GraphiQL"));
}

#[test]
fn refunds_rules_and_access_on_postgres() {
    let (_guard, folder) = temp_folder();
    let database = ScratchDatabase::create("e2e");
    let server = Server::start(binary(), &database.url, &folder);
    scenario(&server);
    malformed_inputs_write_nothing(&server);
    access_control(&server);
    server.stop();
}

#[test]
fn fifty_concurrent_refunds_of_five_on_a_hundred_refund_exactly_twenty() {
    let (_guard, folder) = temp_folder();
    let server = Server::start(binary(), &sqlite_store(&folder), &folder);
    server.graphql(RECORD, json!({ "id": "PAY-C", "value": "10000" }));
    let codes: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|index| {
                let server = &server;
                scope.spawn(move || {
                    let answer = refund(server, &format!("C-{index}"), "PAY-C", "500");
                    answer["result"]["resultCode"].as_str().unwrap().to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    let accepted = codes
        .iter()
        .filter(|code| *code == "SUCCESS" || *code == "REFUND_IN_PROCESS")
        .count();
    let exceeded = codes.iter().filter(|code| *code == "REFUND_AMOUNT_EXCEED").count();
    assert_eq!((accepted, exceeded), (20, 30), "{codes:?}");
    let position = head(&server);
    let payment = server.graphql(PAYMENT, json!({ "id": "PAY-C", "at": position }))["payment"].clone();
    let refunded: u64 = payment["refundedAmount"]["value"].as_str().unwrap().parse().unwrap();
    let pending: u64 = payment["pendingRefundAmount"]["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(refunded + pending, 10000, "{payment}");
}
