//! The operators' GraphQL on both stores: `anomalies` lists every contradicting outcome the ledger recorded,
//! and `acknowledgeAnomaly` (admin only) records an audited acknowledgement once, with typed errors for an
//! unknown anomaly, a second acknowledgement and a bad note; `replay` still finds the read models equal.
//! `openRefunds` lists the refunds not final, oldest first, with the last Antom contact and the worker's next
//! attempt; `health` and `/readyz` say whether the store answers, the projection lag, the worker's last run
//! and Antom's last verified answer.

use domain::{
    Currency, Money, OutcomeSource, PaymentEvent, PaymentId, PaymentMethodType, PaymentRecorded, RefundFailed,
    RefundId, RefundOutcomeAnomaly, RefundProcessing, RefundRequestId, RefundRequested, RefundStatus, ReportedOutcome,
    ResultCode,
};
use eventlog::{EventStore, ExpectedRevision};
use serde_json::{Value, json};
use testkit::log::{new_event, payment_stream};
use testkit::server::{OPERATOR_KEY, VIEWER_KEY};
use time::OffsetDateTime;

use crate::audit_support::{ADMIN_KEY, AuditServer, Log, run, stdout};

/// A payment of 100.00 USD by Alipay, recorded at `time`.
fn recorded(payment_id: &PaymentId, time: OffsetDateTime) -> PaymentEvent {
    PaymentEvent::PaymentRecorded(PaymentRecorded {
        payment_id: payment_id.clone(),
        payment_amount: Money::from_minor_units("m", Currency::parse("c", "USD").unwrap(), 10_000).unwrap(),
        payment_method_type: PaymentMethodType::parse("ALIPAY_CN").unwrap(),
        payment_time: time,
        capture_required: false,
    })
}

/// Payment OPS-1 with refund OPS-1-R that failed, then two contradicting reports of success.
async fn write_anomalies(store: &dyn EventStore) {
    let time = OffsetDateTime::from_unix_timestamp(1_793_491_200).unwrap();
    let usd = Currency::parse("c", "USD").unwrap();
    let payment_id = PaymentId::parse("OPS-1").unwrap();
    let refund_request_id = RefundRequestId::parse("OPS-1-R").unwrap();
    let anomaly = |refund_id: &str| {
        PaymentEvent::RefundOutcomeAnomaly(RefundOutcomeAnomaly {
            refund_request_id: refund_request_id.clone(),
            recorded_status: RefundStatus::Failed,
            reported: ReportedOutcome::Success {
                refund_id: RefundId::parse(refund_id).unwrap(),
            },
            source: OutcomeSource::Notification,
            reported_at: time,
        })
    };
    let events = [
        recorded(&payment_id, time),
        PaymentEvent::RefundRequested(RefundRequested {
            refund_request_id: refund_request_id.clone(),
            payment_id: payment_id.clone(),
            refund_amount: Money::from_minor_units("m", usd, 2_500).unwrap(),
            refund_reason: None,
            requested_at: time,
        }),
        PaymentEvent::RefundFailed(RefundFailed {
            refund_request_id: refund_request_id.clone(),
            result_code: ResultCode::parse("REFUND_FAIL"),
            result_message: "declined".to_owned(),
            failed_at: time,
            source: OutcomeSource::RefundResponse,
        }),
        anomaly("A-1"),
        anomaly("A-2"),
    ];
    let events = events.iter().map(|event| new_event(event, "import")).collect();
    store
        .append(&payment_stream(&payment_id), ExpectedRevision::NoStream, events)
        .await
        .unwrap();
}

const ANOMALIES: &str = "query($after: String, $at: Int) { anomalies(first: 1, after: $after, atLeastPosition: $at) {
  edges { cursor node { id position refundRequestId paymentId number ledgerStatus reportedStatus reportedRefundId
                        source acknowledgement { position acknowledgedBy note } } }
  pageInfo { hasNextPage } } }";

const ACKNOWLEDGE: &str = "mutation($position: Int, $id: ID, $note: String!) {
  acknowledgeAnomaly(position: $position, id: $id, note: $note) { id refundRequestId number position } }";

/// Every anomaly, walking pages of one.
fn list(server: &AuditServer, at: Option<i64>) -> Vec<Value> {
    let mut nodes = Vec::new();
    let mut after = Value::Null;
    loop {
        let body = server.graphql_as(VIEWER_KEY, ANOMALIES, json!({ "after": after, "at": at }));
        assert!(body.get("errors").is_none(), "{body}");
        let page = &body["data"]["anomalies"];
        for edge in page["edges"].as_array().unwrap() {
            nodes.push(edge["node"].clone());
            after = edge["cursor"].clone();
        }
        if page["pageInfo"]["hasNextPage"] != json!(true) {
            return nodes;
        }
    }
}

fn error_code(body: &Value) -> (String, Option<String>) {
    let error = &body["errors"][0];
    (
        error["extensions"]["code"].as_str().unwrap_or_default().to_owned(),
        error["extensions"]["field"].as_str().map(str::to_owned),
    )
}

fn operations_tests(log: &Log) {
    log.write_with(|store| async move { write_anomalies(store.as_ref()).await });
    let server = AuditServer::start(&log.url(), &log.folder());
    server.wait_projected();

    let anomalies = list(&server, None);
    assert_eq!(anomalies.len(), 2, "{anomalies:?}");
    assert_eq!(anomalies[0]["id"], "OPS-1-R#1");
    assert_eq!(anomalies[1]["id"], "OPS-1-R#2");
    assert_eq!(anomalies[0]["position"], 4);
    assert_eq!(anomalies[1]["position"], 5);
    assert_eq!(anomalies[1]["paymentId"], "OPS-1");
    assert_eq!(anomalies[1]["ledgerStatus"], "FAILED");
    assert_eq!(anomalies[1]["reportedStatus"], "SUCCESS");
    assert_eq!(anomalies[1]["reportedRefundId"], "A-2");
    assert_eq!(anomalies[1]["source"], "NOTIFICATION");
    assert!(anomalies.iter().all(|anomaly| anomaly["acknowledgement"].is_null()));

    let acknowledge = |key: &str, variables: Value| server.graphql_as(key, ACKNOWLEDGE, variables);
    let forbidden = acknowledge(OPERATOR_KEY, json!({ "id": "OPS-1-R#1", "note": "looked" }));
    assert_eq!(error_code(&forbidden).0, "FORBIDDEN", "{forbidden}");
    for (variables, code, field) in [
        (
            json!({ "id": "OPS-1-R#1", "note": "  " }),
            "BAD_USER_INPUT",
            Some("note"),
        ),
        (
            json!({ "id": "OPS-1-R#1", "note": "x".repeat(1_001) }),
            "BAD_USER_INPUT",
            Some("note"),
        ),
        (json!({ "note": "which?" }), "BAD_USER_INPUT", Some("position")),
        (
            json!({ "id": "OPS-1-R#1", "position": 4, "note": "both" }),
            "BAD_USER_INPUT",
            Some("position"),
        ),
        (
            json!({ "id": "OPS-1-R", "note": "no number" }),
            "BAD_USER_INPUT",
            Some("id"),
        ),
        (
            json!({ "id": "OPS-1-R#3", "note": "no third" }),
            "ANOMALY_NOT_FOUND",
            None,
        ),
        (
            json!({ "id": "NOPE#1", "note": "no refund" }),
            "ANOMALY_NOT_FOUND",
            None,
        ),
        (
            json!({ "position": 3, "note": "a RefundFailed" }),
            "ANOMALY_NOT_FOUND",
            None,
        ),
        (
            json!({ "position": 999, "note": "past the head" }),
            "ANOMALY_NOT_FOUND",
            None,
        ),
    ] {
        let body = acknowledge(ADMIN_KEY, variables.clone());
        assert_eq!(
            error_code(&body),
            (code.to_owned(), field.map(str::to_owned)),
            "{variables}: {body}"
        );
    }
    let head = || server.graphql("{ ledgerHead { position } }", json!({}))["ledgerHead"]["position"].clone();
    assert_eq!(head(), 5, "refused acknowledgements write nothing");

    let by_id = acknowledge(
        ADMIN_KEY,
        json!({ "id": "OPS-1-R#2", "note": " Antom support: A-2 is a test id " }),
    );
    assert!(by_id.get("errors").is_none(), "{by_id}");
    assert_eq!(by_id["data"]["acknowledgeAnomaly"]["id"], "OPS-1-R#2");
    assert_eq!(by_id["data"]["acknowledgeAnomaly"]["position"], 6);
    let again = acknowledge(ADMIN_KEY, json!({ "position": 5, "note": "again" }));
    assert_eq!(error_code(&again).0, "ANOMALY_ALREADY_ACKNOWLEDGED", "{again}");
    let by_position = acknowledge(ADMIN_KEY, json!({ "position": 4, "note": "duplicate report" }));
    assert_eq!(
        by_position["data"]["acknowledgeAnomaly"]["id"], "OPS-1-R#1",
        "{by_position}"
    );
    assert_eq!(by_position["data"]["acknowledgeAnomaly"]["position"], 7);

    let anomalies = list(&server, Some(7));
    let acknowledgements: Vec<_> = anomalies
        .iter()
        .map(|anomaly| anomaly["acknowledgement"].clone())
        .collect();
    assert_eq!(
        acknowledgements,
        [
            json!({ "position": 7, "acknowledgedBy": "aud", "note": "duplicate report" }),
            json!({ "position": 6, "acknowledgedBy": "aud", "note": "Antom support: A-2 is a test id" }),
        ]
    );
    let events = server.graphql(
        "{ events(paymentId: \"OPS-1\", fromPosition: 6) { type actor } }",
        json!({}),
    )["events"]
        .clone();
    assert_eq!(
        events,
        json!([{ "type": "AnomalyAcknowledged", "actor": "aud" }, { "type": "AnomalyAcknowledged", "actor": "aud" }])
    );
    server.stop();

    let replayed = run(log, &["replay"]);
    assert_eq!(replayed.status.code(), Some(0), "{replayed:?}");
    assert!(
        stdout(&replayed).contains("replay: OK, the read models match the log"),
        "{replayed:?}"
    );
    let verified = run(log, &["verify"]);
    assert_eq!(verified.status.code(), Some(0), "{verified:?}");
}

#[test]
fn anomalies_are_listed_and_acknowledged_once_on_sqlite() {
    operations_tests(&Log::sqlite());
}

#[test]
fn anomalies_are_listed_and_acknowledged_once_on_postgres() {
    operations_tests(&Log::postgres());
}

/// Payment OPEN-1 with refund OPEN-1-A processing (Antom answered U) and OPEN-1-B requested, a day apart.
async fn write_open_refunds(store: &dyn EventStore) {
    let time = OffsetDateTime::from_unix_timestamp(1_793_491_200).unwrap();
    let usd = Currency::parse("c", "USD").unwrap();
    let payment_id = PaymentId::parse("OPEN-1").unwrap();
    let requested = |id: &str, at: OffsetDateTime| {
        PaymentEvent::RefundRequested(RefundRequested {
            refund_request_id: RefundRequestId::parse(id).unwrap(),
            payment_id: payment_id.clone(),
            refund_amount: Money::from_minor_units("m", usd, 1_000).unwrap(),
            refund_reason: None,
            requested_at: at,
        })
    };
    let events = [
        recorded(&payment_id, time),
        requested("OPEN-1-A", time),
        PaymentEvent::RefundProcessing(RefundProcessing {
            refund_request_id: RefundRequestId::parse("OPEN-1-A").unwrap(),
            reason: "resultStatus U: UNKNOWN_EXCEPTION".to_owned(),
            recorded_at: time,
        }),
        requested("OPEN-1-B", time + time::Duration::days(1)),
    ];
    let events = events.iter().map(|event| new_event(event, "import")).collect();
    store
        .append(&payment_stream(&payment_id), ExpectedRevision::NoStream, events)
        .await
        .unwrap();
}

const OPEN_REFUNDS: &str = "query($olderThan: Duration, $after: String) {
  openRefunds(olderThan: $olderThan, first: 1, after: $after) {
    edges { cursor node { refund { refundRequestId ledgerStatus } ageSeconds lastAntomContact nextWorkerAttempt } }
    pageInfo { hasNextPage } } }";

const HEALTH: &str = "{ health { storeReachable logPosition projectedPosition projectionLag workerLastRun
  workerIntervalMs antomLastSuccess } }";

#[test]
fn open_refunds_health_and_readiness_on_sqlite() {
    open_refunds_tests(&Log::sqlite());
}

#[test]
fn open_refunds_health_and_readiness_on_postgres() {
    open_refunds_tests(&Log::postgres());
}

fn open_refunds_tests(log: &Log) {
    log.write_with(|store| async move { write_open_refunds(store.as_ref()).await });
    // The worker runs every second but leaves refunds alone for ten years: the two stay open.
    let settle_after = (10 * 365 * 86_400).to_string();
    let server = AuditServer::start_with_env(
        &log.url(),
        &log.folder(),
        &[("REFUND_LEDGER_SETTLE_AFTER_SECONDS", settle_after.as_str())],
    );
    server.wait_projected();

    let page = |older_than: &str, after: &Value| {
        let body = server.graphql_as(
            VIEWER_KEY,
            OPEN_REFUNDS,
            json!({ "olderThan": older_than, "after": after }),
        );
        assert!(body.get("errors").is_none(), "{body}");
        body["data"]["openRefunds"].clone()
    };
    let first = page("PT1H", &Value::Null);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let oldest = &first["edges"][0];
    assert_eq!(oldest["node"]["refund"]["refundRequestId"], "OPEN-1-A");
    assert_eq!(oldest["node"]["refund"]["ledgerStatus"], "PROCESSING");
    assert!(oldest["node"]["lastAntomContact"].is_string(), "{oldest}");
    let age = oldest["node"]["ageSeconds"].as_i64().unwrap();
    assert!(age > 86_400, "requested at the end of October: {age}");
    let next_attempt = oldest["node"]["nextWorkerAttempt"].as_str().unwrap();
    assert!(
        next_attempt.starts_with("2036-"),
        "ten years after the request: {next_attempt}"
    );
    let second = page("PT1H", &oldest["cursor"]);
    assert_eq!(second["pageInfo"]["hasNextPage"], false);
    assert_eq!(second["edges"][0]["node"]["refund"]["refundRequestId"], "OPEN-1-B");
    assert!(
        second["edges"][0]["node"]["lastAntomContact"].is_null(),
        "requested, never answered"
    );
    assert_eq!(
        page("P36500D", &Value::Null)["edges"],
        json!([]),
        "none is a century old"
    );
    let bad = server.graphql_as(VIEWER_KEY, OPEN_REFUNDS, json!({ "olderThan": "15 minutes" }));
    assert!(
        bad["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("ISO 8601 duration"),
        "{bad}"
    );

    let health = server.graphql_as(VIEWER_KEY, HEALTH, json!({}))["data"]["health"].clone();
    assert_eq!(health["storeReachable"], true, "{health}");
    assert_eq!(health["logPosition"], 4);
    assert_eq!(health["projectionLag"], 0);
    assert_eq!(health["workerIntervalMs"], 1_000);
    assert!(health["antomLastSuccess"].is_null(), "Antom not called yet: {health}");
    // A refund through the demo simulator gets a verified answer; a worker pass finishes within seconds.
    server.graphql(
        crate::audit_support::RECORD,
        json!({ "id": "OPEN-2", "currency": "USD", "value": "500" }),
    );
    server.graphql(
        crate::audit_support::REFUND,
        json!({ "rid": "OPEN-2-R", "pid": "OPEN-2", "currency": "USD", "value": "100" }),
    );
    let mut health = Value::Null;
    for _ in 0..100 {
        health = server.graphql_as(VIEWER_KEY, HEALTH, json!({}))["data"]["health"].clone();
        if health["workerLastRun"].is_string() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(health["workerLastRun"].is_string(), "{health}");
    assert!(health["antomLastSuccess"].is_string(), "{health}");

    let (status, body) = server.get("/readyz", None);
    assert_eq!(status, 200);
    let ready: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(ready["storeReachable"], true, "{ready}");
    assert!(ready["projectionLag"].is_i64(), "{ready}");
    assert!(ready["workerLastRun"].is_string(), "{ready}");
    server.stop();
}
