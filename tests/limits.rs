//! Limits that hold against the real binary, with a viewer key: bodies and
//! WebSocket messages over `body_bytes_max` are refused before they are
//! parsed, errors quote only a short slice of their input, a query that asks
//! for too much is refused before it runs, and expensive queries beyond the
//! bound get 429 with `Retry-After`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::server::{Server, VIEWER_KEY, sqlite_store, temp_folder};

use crate::subscription::{connect_as_viewer, receive, send};
use crate::support::binary;

/// The default `[limits] body_bytes_max`.
const BODY_BYTES_MAX: usize = 256 * 1024;
/// What a streamed body would be if the server read it all.
const HUGE_BODY_BYTES: usize = 1024 * 1024 * 1024;
/// More than socket buffers hold: a client that wrote this much was being read.
const READ_BYTES_BOUND: usize = 64 * 1024 * 1024;
/// The query of the issue: 100 payments with their events and refunds.
const PAYMENTS_WITH_HISTORY: &str =
    "payments(first: 100) { nodes { events { data hash prevHash } refunds { refundAmount { value } } } }";

const RECORD: &str = "mutation($id: ID!) {
  recordPayment(input: { paymentId: $id, paymentAmount: { currency: \"USD\", value: \"10000\" },
                         paymentMethodType: \"ALIPAY_CN\", paymentTime: \"2026-11-01T00:00:00Z\" }) { position } }";

/// What a raw HTTP exchange gave: the response text and the body bytes the client managed to write.
struct Exchange {
    response: String,
    body_bytes_written: usize,
}

impl Exchange {
    fn status(&self) -> u16 {
        self.response
            .split_whitespace()
            .nth(1)
            .and_then(|status| status.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {:?}", self.response))
    }
}

/// How a raw request frames its body.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// `Content-Length` with this many bytes (whatever is actually sent).
    Declared(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Sends a request with `body_bytes` bytes of `x` as its body, reading the answer on another thread while
/// writing, and stops writing when the server stops reading.
fn send_body(server: &Server, method_and_path: &str, framing: Framing, body_bytes: usize) -> Exchange {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut reader = stream.try_clone().unwrap();
    let answer = std::thread::spawn(move || {
        let mut response = Vec::new();
        // The server closes (or resets) the connection after its answer; either ends the read.
        let _ended = reader.read_to_end(&mut response);
        String::from_utf8_lossy(&response).into_owned()
    });
    let framing_header = match framing {
        Framing::Declared(length) => format!("Content-Length: {length}"),
        Framing::Chunked => "Transfer-Encoding: chunked".to_owned(),
    };
    let head = format!(
        "{method_and_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {VIEWER_KEY}\r\n\
         Content-Type: application/json\r\n{framing_header}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut written = 0;
    while written < body_bytes {
        let size = chunk.len().min(body_bytes - written);
        let sent = match framing {
            Framing::Declared(_) => stream.write_all(&chunk[..size]),
            Framing::Chunked => stream
                .write_all(format!("{size:x}\r\n").as_bytes())
                .and_then(|()| stream.write_all(&chunk[..size]))
                .and_then(|()| stream.write_all(b"\r\n")),
        };
        if sent.is_err() {
            break;
        }
        written += size;
    }
    Exchange {
        response: answer.join().unwrap(),
        body_bytes_written: written,
    }
}

/// The JSON body of a raw HTTP response.
fn json_body(exchange: &Exchange) -> Value {
    let (_, body) = exchange.response.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body:?}"))
}

fn post(server: &Server, body: Vec<u8>) -> (u16, String) {
    let response = reqwest::blocking::Client::new()
        .post(server.url("/graphql"))
        .bearer_auth(VIEWER_KEY)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

#[test]
fn a_body_over_the_limit_is_refused_before_it_is_read() {
    let (_guard, folder) = temp_folder();
    let server = Server::start(binary(), &sqlite_store(&folder), &folder);

    // Exactly the limit is a request like any other.
    let mut body = json!({ "query": "{ ledgerHead { position } }" })
        .to_string()
        .into_bytes();
    body.resize(BODY_BYTES_MAX, b' ');
    let (status, text) = post(&server, body);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"ledgerHead\""), "{text}");

    // One byte more, declared: refused on the headers, before a byte of the body is sent.
    for route in [
        "POST /graphql",
        "POST /apo/notify/refund",
        "POST /apo/notify",
        "GET /exports/journal.csv",
    ] {
        let exchange = send_body(&server, route, Framing::Declared(BODY_BYTES_MAX + 1), 0);
        assert_eq!(exchange.status(), 413, "{route}: {}", exchange.response);
        assert_eq!(
            code(&json_body(&exchange)),
            "PAYLOAD_TOO_LARGE",
            "{route}: {}",
            exchange.response
        );
    }

    // Streamed without a length, a body that would be 1 GiB is cut off just past the limit.
    for route in ["POST /graphql", "POST /apo/notify/refund"] {
        let exchange = send_body(&server, route, Framing::Chunked, HUGE_BODY_BYTES);
        assert_eq!(exchange.status(), 413, "{route}: {}", exchange.response);
        assert!(
            exchange.body_bytes_written < READ_BYTES_BOUND,
            "{route}: the server read {} bytes of a body over the limit",
            exchange.body_bytes_written
        );
    }
    assert_eq!(server.get("/healthz").0, 200);
}

#[test]
fn a_websocket_message_over_the_limit_closes_the_socket_unread() {
    let (_guard, folder) = temp_folder();
    let server = Server::start(binary(), &sqlite_store(&folder), &folder);
    let subscribe = |padding: usize| {
        json!({ "id": "1", "type": "subscribe", "payload": {
            "query": format!("{{ ledgerHead {{ position }} }}{}", " ".repeat(padding))
        } })
    };
    let overhead = subscribe(0).to_string().len();

    for (padding, admitted) in [
        (BODY_BYTES_MAX - overhead, true),
        (BODY_BYTES_MAX - overhead + 1, false),
    ] {
        let mut socket = connect_as_viewer(&server);
        let message = subscribe(padding);
        assert_eq!(message.to_string().len(), BODY_BYTES_MAX + usize::from(!admitted));
        send(&mut socket, message);
        let answer = receive(&mut socket, Instant::now() + Duration::from_secs(10));
        if admitted {
            let answer = answer.expect("a message of the limit is answered");
            assert_eq!(answer["type"], "next", "{answer}");
            assert!(
                answer["payload"]["data"]["ledgerHead"]["position"].is_number(),
                "{answer}"
            );
        } else {
            assert!(answer.is_none(), "a message over the limit was answered: {answer:?}");
        }
    }
    assert_eq!(server.get("/healthz").0, 200);
}

#[test]
fn errors_quote_only_a_short_slice_of_a_huge_input() {
    let (_guard, folder) = temp_folder();
    let server = Server::start(binary(), &sqlite_store(&folder), &folder);
    let huge = "x".repeat(200_000);

    // A malformed query: the parser would quote its whole line.
    let (status, text) = post(
        &server,
        json!({ "query": format!("{{ ledgerHead {{ position }} {huge}!! }}") })
            .to_string()
            .into_bytes(),
    );
    assert_eq!(status, 200, "{}", &text[..text.len().min(500)]);
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("1:"), "{body}");
    assert!(text.len() < 4 * 1024, "{} bytes answered", text.len());

    // A body that is JSON but not a GraphQL request: serde would quote the string.
    let (status, text) = post(
        &server,
        json!({ "query": "{ ledgerHead { position } }", "variables": huge })
            .to_string()
            .into_bytes(),
    );
    assert_eq!(status, 400, "{}", &text[..text.len().min(500)]);
    assert_eq!(code(&serde_json::from_str(&text).unwrap()), "BAD_REQUEST", "{text}");
    assert!(text.len() < 4 * 1024, "{} bytes answered", text.len());

    // A value refused by the domain, and an unknown field named by the query.
    let (_, body) = server.graphql_with(
        Some(VIEWER_KEY),
        "query($id: ID!) { payment(paymentId: $id) { status } }",
        json!({ "id": huge }),
    );
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        body.to_string().len() < 4 * 1024,
        "{} bytes answered",
        body.to_string().len()
    );
    let (_, body) = server.graphql_with(Some(VIEWER_KEY), &format!("{{ {huge} }}"), json!({}));
    assert!(!body["errors"].as_array().unwrap().is_empty(), "{body}");
    assert!(
        body.to_string().len() < 4 * 1024,
        "{} bytes answered",
        body.to_string().len()
    );

    // The same malformed query as a GET.
    let (status, bytes) = server.get_with(
        &format!("/graphql?query=%7B%20{}!!", "x".repeat(60_000)),
        Some(VIEWER_KEY),
    );
    assert_eq!(status, 200);
    assert!(bytes.len() < 4 * 1024, "{} bytes answered", bytes.len());
}

#[test]
fn a_query_that_asks_for_too_much_is_refused_before_it_runs() {
    let (_guard, folder) = temp_folder();
    let server = Server::start(binary(), &sqlite_store(&folder), &folder);
    for index in 0..100 {
        server.graphql(RECORD, json!({ "id": format!("PAY-{index}") }));
    }
    let position = server.graphql("{ ledgerHead { position } }", json!({}))["ledgerHead"]["position"]
        .as_i64()
        .unwrap();
    assert_eq!(position, 100);
    // The last query below reads every payment from the read models: wait until they show the whole log.
    let caught_up = server.graphql(
        "query($at: Int) { payment(paymentId: \"PAY-99\", atLeastPosition: $at) { paymentId } }",
        json!({ "at": position }),
    );
    assert_eq!(caught_up["payment"]["paymentId"], "PAY-99", "{caught_up}");

    // The query: 200 aliases of 100 payments with their history.
    let aliases: Vec<String> = (0..200)
        .map(|index| format!("a{index}: {PAYMENTS_WITH_HISTORY}"))
        .collect();
    let (status, text) = post(
        &server,
        json!({ "query": format!("{{ {} }}", aliases.join(" ")) })
            .to_string()
            .into_bytes(),
    );
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(code(&body), "QUERY_TOO_COMPLEX", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["limit"], "fields", "{body}");
    assert_eq!(body["data"], Value::Null, "{body}");
    assert!(text.len() < 1024, "the refusal is small: {text}");

    // One alias of it: its lists multiply past the complexity limit.
    let (_, body) = server.graphql_with(Some(VIEWER_KEY), &format!("{{ {PAYMENTS_WITH_HISTORY} }}"), json!({}));
    assert_eq!(code(&body), "QUERY_TOO_COMPLEX", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["limit"], "complexity", "{body}");
    assert!(body.to_string().len() < 1024, "{body}");

    // The same with smaller lists runs and answers every payment.
    let (_, body) = server.graphql_with(
        Some(VIEWER_KEY),
        "{ payments(first: 100) { nodes { paymentId events(first: 5) { hash } refunds(first: 5) { refundAmount { value } } } } }",
        json!({}),
    );
    assert!(body.get("errors").is_none(), "{body}");
    let nodes = body["data"]["payments"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 100);
    assert!(
        nodes.iter().all(|node| node["events"].as_array().unwrap().len() == 1),
        "{body}"
    );
}

#[test]
fn expensive_queries_beyond_the_bound_get_429_with_retry_after() {
    let (_guard, folder) = temp_folder();
    let config = "[limits]\nexpensive_query_complexity_min = 100\nexpensive_queries_max = 1\n\
                  wait_for_position_ms_max = 60000\n";
    let server = Server::start_with_config(binary(), &sqlite_store(&folder), &folder, config);
    // 10 + 100 × 1: expensive. The holder also waits for a position no one has written yet.
    let expensive = "{ events(first: 100) { position } }";
    let holder = "query($at: Int) { payment(paymentId: \"HOLD-1\", atLeastPosition: $at) { paymentId }
                    events(first: 100) { position } }";
    let next_position = server.graphql("{ ledgerHead { position } }", json!({}))["ledgerHead"]["position"]
        .as_i64()
        .unwrap()
        + 1;

    std::thread::scope(|scope| {
        let held = scope.spawn(|| server.graphql_with(Some(VIEWER_KEY), holder, json!({ "at": next_position })));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !server
            .get("/metrics")
            .1
            .contains("refund_ledger_graphql_expensive_queries_running 1\n")
        {
            assert!(Instant::now() < deadline, "the holder never started");
            std::thread::sleep(Duration::from_millis(20));
        }

        let refused = reqwest::blocking::Client::new()
            .post(server.url("/graphql"))
            .bearer_auth(VIEWER_KEY)
            .json(&json!({ "query": expensive }))
            .send()
            .unwrap();
        assert_eq!(refused.status().as_u16(), 429);
        assert_eq!(refused.headers()["retry-after"], "1");
        let body: Value = refused.json().unwrap();
        assert_eq!(code(&body), "TOO_MANY_EXPENSIVE_QUERIES", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["retryAfterSeconds"], 1, "{body}");

        // Cheap queries and mutations are not held up.
        let (status, body) = server.graphql_with(Some(VIEWER_KEY), "{ ledgerHead { position } }", json!({}));
        assert_eq!(status, 200);
        assert!(body.get("errors").is_none(), "{body}");
        server.graphql(RECORD, json!({ "id": "HOLD-1" }));

        let (status, body) = held.join().unwrap();
        assert_eq!(status, 200);
        assert!(body.get("errors").is_none(), "{body}");
        assert_eq!(body["data"]["payment"]["paymentId"], "HOLD-1", "{body}");
    });

    let (status, body) = server.graphql_with(Some(VIEWER_KEY), expensive, json!({}));
    assert_eq!(status, 200, "the bound is free again: {body}");
    assert!(body.get("errors").is_none(), "{body}");
    let metrics = server.get("/metrics").1;
    assert!(metrics.contains("refund_ledger_graphql_busy_total 1\n"), "{metrics}");
    assert!(
        metrics.contains("refund_ledger_graphql_expensive_queries_running 0\n"),
        "{metrics}"
    );
}
