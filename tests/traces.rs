//! Spans exported over OTLP/HTTP (JSON) to a receiver the test runs: a refund's trace runs from the GraphQL
//! request through the saga and the payment queue's append to the Antom call, its settlement by the worker
//! later is on the same trace, the spans carry the refund's ids, and no amount or key appears in anything
//! exported.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use serde_json::{Value, json};
use testkit::server::{OPERATOR_KEY, Server, VIEWER_KEY, sqlite_store, temp_folder};

use crate::e2e_support::{
    Antom, Worker, eventually, free_loopback_port, ledger_command, record_payment, refund, wait_for_status,
};
use crate::support::binary;

/// Amounts no id, count or attribute could contain by chance (seven digits, in minor units and as decimals).
const PAYMENT_VALUE: &str = "9876543";
const REFUND_VALUE: &str = "1234567";

/// An OTLP/HTTP receiver on a port of its own: keeps every JSON body posted to `/v1/traces`.
struct Receiver {
    port: u16,
    bodies: Arc<Mutex<Vec<Value>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(Arc::clone(&bodies));
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self {
            port,
            bodies,
            _runtime: runtime,
        }
    }

    /// Every span received, with its resource's attributes beside it.
    fn spans(&self) -> Vec<Value> {
        let bodies = self.bodies.lock().unwrap();
        let mut spans = Vec::new();
        for body in bodies.iter() {
            for resource_spans in body["resourceSpans"].as_array().into_iter().flatten() {
                for scope_spans in resource_spans["scopeSpans"].as_array().into_iter().flatten() {
                    for span in scope_spans["spans"].as_array().into_iter().flatten() {
                        let mut span = span.clone();
                        span["resource"] = resource_spans["resource"].clone();
                        spans.push(span);
                    }
                }
            }
        }
        spans
    }

    /// The bodies as received, as text.
    fn text(&self) -> String {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

async fn receive(
    State(bodies): State<Arc<Mutex<Vec<Value>>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
    if content_type != Some("application/json") {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "");
    }
    match serde_json::from_slice(&body) {
        Ok(value) => {
            bodies.lock().unwrap().push(value);
            (StatusCode::OK, "{}")
        }
        Err(_) => (StatusCode::BAD_REQUEST, ""),
    }
}

/// A span attribute's value as text (OTLP JSON wraps it in `stringValue`, `intValue`, ...).
fn attribute(span: &Value, key: &str) -> Option<String> {
    let found = span["attributes"]
        .as_array()?
        .iter()
        .find(|attribute| attribute["key"] == key)?;
    found["value"].as_object()?.values().next().map(|value| match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    })
}

#[test]
fn a_refund_is_one_trace_from_the_request_to_the_antom_call_without_amounts_or_keys() {
    let receiver = Receiver::start();
    let (_guard, folder) = temp_folder();
    let mut command = Server::serve_command(binary(), &sqlite_store(&folder), &folder);
    command.env(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        format!("http://127.0.0.1:{}", receiver.port),
    );
    let server = Server::spawn(command);
    record_payment(&server, "P-TRACE", PAYMENT_VALUE);
    let answer = refund(&server, "R-TRACE", "P-TRACE", REFUND_VALUE);
    assert!(answer["refund"]["status"].is_string(), "{answer}");
    // SIGTERM: the server stops gracefully and exports the spans still waiting in its batch.
    server.stop();

    let spans = receiver.spans();
    let named = |name: &str| -> Vec<&Value> { spans.iter().filter(|span| span["name"] == name).collect() };
    let saga = named("saga.refund")
        .into_iter()
        .find(|span| attribute(span, "refund_request_id").as_deref() == Some("R-TRACE"))
        .unwrap_or_else(|| panic!("no saga.refund span for R-TRACE among {} spans", spans.len()));
    assert_eq!(attribute(saga, "payment_id").as_deref(), Some("P-TRACE"));
    let trace_id = saga["traceId"].as_str().unwrap();
    assert_eq!(trace_id.len(), 32, "a W3C trace id: {trace_id}");
    let in_trace: HashMap<&str, &Value> = spans
        .iter()
        .filter(|span| span["traceId"] == trace_id)
        .map(|span| (span["spanId"].as_str().unwrap(), span))
        .collect();
    let names_in_trace: Vec<&str> = in_trace.values().filter_map(|span| span["name"].as_str()).collect();
    for expected in [
        "POST /graphql",
        "saga.refund",
        "payment_queue.batch",
        "saga.send_refund",
        "apo.refund",
    ] {
        assert!(
            names_in_trace.contains(&expected),
            "{expected} is not in the trace: {names_in_trace:?}"
        );
    }

    // The Antom call descends from the saga, which descends from the HTTP request, the trace's root.
    let antom_call = in_trace.values().find(|span| span["name"] == "apo.refund").unwrap();
    assert_eq!(attribute(antom_call, "refund_request_id").as_deref(), Some("R-TRACE"));
    assert_eq!(attribute(antom_call, "payment_id").as_deref(), Some("P-TRACE"));
    let mut ancestors = Vec::new();
    let mut current = *antom_call;
    while let Some(parent) = current["parentSpanId"]
        .as_str()
        .filter(|parent| !parent.is_empty())
        .and_then(|parent| in_trace.get(parent))
    {
        ancestors.push(parent["name"].as_str().unwrap_or_default());
        current = parent;
    }
    assert_eq!(ancestors.first().copied(), Some("saga.send_refund"), "{ancestors:?}");
    assert!(ancestors.contains(&"saga.refund"), "{ancestors:?}");
    assert_eq!(ancestors.last().copied(), Some("POST /graphql"), "{ancestors:?}");
    assert_eq!(
        current["parentSpanId"].as_str().unwrap_or_default(),
        "",
        "the request span is the root"
    );
    let service = current["resource"]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|attribute| attribute["key"] == "service.name")
        .map(|attribute| attribute["value"]["stringValue"].clone());
    assert_eq!(service, Some(json!("refund-ledger")));

    // Every trace starts at a request or at the worker settling a refund: background loops export nothing.
    for root in spans
        .iter()
        .filter(|span| span["parentSpanId"].as_str().unwrap_or_default().is_empty())
    {
        let name = root["name"].as_str().unwrap_or_default();
        assert!(
            name.starts_with("POST /") || name.starts_with("GET /") || name == "saga.settle",
            "a trace starts at {name}"
        );
    }

    // Nothing exported names an amount or a key: no attribute about amounts, no amount's digits, no secret.
    for span in &spans {
        let events = span["events"].as_array().into_iter().flatten();
        for attributes in std::iter::once(span)
            .chain(events)
            .filter_map(|item| item["attributes"].as_array())
        {
            for attribute in attributes {
                let key = attribute["key"].as_str().unwrap_or_default();
                assert!(!key.to_lowercase().contains("amount"), "{key} in {}", span["name"]);
            }
        }
    }
    let exported = receiver.text();
    for secret in [
        PAYMENT_VALUE,
        "98765.43",
        REFUND_VALUE,
        "12345.67",
        OPERATOR_KEY,
        VIEWER_KEY,
        "Bearer",
    ] {
        assert!(!exported.contains(secret), "{secret} was exported");
    }
}

#[test]
fn a_refund_left_open_is_settled_by_the_worker_on_the_trace_of_its_request() {
    let receiver = Receiver::start();
    let (_guard, folder) = temp_folder();
    let port = free_loopback_port();
    let antom = Antom::start(port);
    let mut command = ledger_command(&sqlite_store(&folder), &folder, &antom, port, Worker::Eager);
    command.env(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        format!("http://127.0.0.1:{}", receiver.port),
    );
    let server = Server::spawn(command);
    record_payment(&server, "P-OPEN", "10000");
    antom.script("R-OPEN", &["u,notify-drop"]);
    antom.script("R-OTHER", &["u,notify-drop"]);
    // Antom notifies about this one (the worker may settle it first; the notification comes all the same).
    antom.script("R-NOTIFIED", &["u"]);
    for refund_request_id in ["R-OPEN", "R-OTHER", "R-NOTIFIED"] {
        let answer = refund(&server, refund_request_id, "P-OPEN", "2500");
        assert_eq!(answer["result"]["resultStatus"], "U", "{answer}");
    }
    for refund_request_id in ["R-OPEN", "R-OTHER", "R-NOTIFIED"] {
        wait_for_status(&server, refund_request_id, "SUCCEEDED");
    }
    eventually("Antom's notification of R-NOTIFIED to be acknowledged", || {
        let log = antom.notifications();
        log.as_array()?
            .iter()
            .find(|line| line["refundRequestId"] == "R-NOTIFIED" && line["outcome"]["kind"] == "acknowledged")
            .cloned()
    });
    server.stop();

    let spans = receiver.spans();
    let trace_of = |name: &str, refund_request_id: &str| -> String {
        let span = spans
            .iter()
            .find(|span| {
                span["name"] == name && attribute(span, "refund_request_id").as_deref() == Some(refund_request_id)
            })
            .unwrap_or_else(|| panic!("no {name} span for {refund_request_id} among {} spans", spans.len()));
        span["traceId"].as_str().unwrap().to_owned()
    };
    for refund_request_id in ["R-OPEN", "R-OTHER"] {
        let requested = trace_of("saga.refund", refund_request_id);
        let settled = trace_of("saga.settle", refund_request_id);
        assert_eq!(
            requested, settled,
            "{refund_request_id}: the settlement is on the request's trace"
        );
        let in_trace: Vec<&str> = spans
            .iter()
            .filter(|span| span["traceId"] == requested.as_str())
            .filter_map(|span| span["name"].as_str())
            .collect();
        for expected in [
            "POST /graphql",
            "saga.refund",
            "apo.refund",
            "saga.settle",
            "apo.inquiry_refund",
        ] {
            assert!(
                in_trace.contains(&expected),
                "{refund_request_id}: no {expected} in {in_trace:?}"
            );
        }
    }
    let notified = trace_of("saga.refund", "R-NOTIFIED");
    let notification = trace_of("apply_refund_notification", "R-NOTIFIED");
    assert_eq!(notified, notification, "Antom's notification is on the refund's trace");
    let notification_roots: Vec<&Value> = spans
        .iter()
        .filter(|span| span["traceId"] == notified.as_str() && span["name"] == "POST /apo/notify/refund")
        .collect();
    assert!(
        !notification_roots.is_empty(),
        "the notification's request is on the trace"
    );
    assert_ne!(
        trace_of("saga.refund", "R-OPEN"),
        trace_of("saga.refund", "R-OTHER"),
        "each refund has a trace of its own"
    );
}
