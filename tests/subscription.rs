//! `refundUpdated` over graphql-transport-ws: the key goes in
//! `connection_init`, and a refund made over HTTP arrives as a `next`.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::server::{Server, VIEWER_KEY, sqlite_store, temp_folder};
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::support::binary;

pub(crate) type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

pub(crate) fn connect(server: &Server) -> Socket {
    let mut request = format!("ws://127.0.0.1:{}/graphql/ws", server.port)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
    let (mut socket, _) = tungstenite::connect(request).unwrap();
    if let MaybeTlsStream::Plain(stream) = socket.get_mut() {
        stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    }
    socket
}

/// A socket whose `connection_init` carried the viewer key and was acknowledged.
pub(crate) fn connect_as_viewer(server: &Server) -> Socket {
    let mut socket = connect(server);
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {VIEWER_KEY}") } }),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    assert_eq!(receive(&mut socket, deadline).unwrap()["type"], "connection_ack");
    socket
}

pub(crate) fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).unwrap();
}

/// The next JSON text message, or `None` when the deadline passes or the socket closes.
pub(crate) fn receive(socket: &mut Socket, deadline: Instant) -> Option<Value> {
    while Instant::now() < deadline {
        match socket.read() {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(text.as_str()).unwrap()),
            Ok(Message::Close(_)) => return None,
            Ok(_) => continue,
            Err(tungstenite::Error::Io(error))
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return None,
        }
    }
    None
}

#[test]
fn refund_updates_reach_a_subscriber() {
    let (_guard, folder) = temp_folder();
    let server = Server::start(binary(), &sqlite_store(&folder), &folder);
    let mut socket = connect_as_viewer(&server);
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": {
            "query": "subscription { refundUpdated(paymentId: \"SUB-1\") { refundRequestId paymentId ledgerStatus refundAmount { value } } }"
        } }),
    );
    // Give the subscription a moment to start tailing the log before writing.
    std::thread::sleep(Duration::from_millis(300));
    server.graphql(
        "mutation { recordPayment(input: { paymentId: \"SUB-1\", paymentAmount: { currency: \"USD\", value: \"10000\" },
           paymentMethodType: \"ALIPAY_CN\", paymentTime: \"2026-11-01T00:00:00Z\" }) { position } }",
        json!({}),
    );
    server.graphql(
        "mutation { refund(input: { refundRequestId: \"SUB-R1\", paymentId: \"SUB-1\",
           refundAmount: { currency: \"USD\", value: \"700\" } }) { position } }",
        json!({}),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut updates = Vec::new();
    while let Some(message) = receive(&mut socket, deadline) {
        assert_eq!(message["type"], "next", "{message}");
        let refund = message["payload"]["data"]["refundUpdated"].clone();
        assert_eq!(refund["paymentId"], "SUB-1", "{refund}");
        assert_eq!(refund["refundAmount"]["value"], "700");
        let status = refund["ledgerStatus"].as_str().unwrap().to_owned();
        updates.push(status.clone());
        if status == "SUCCEEDED" || status == "FAILED" {
            break;
        }
    }
    assert!(
        updates.last().is_some_and(|status| status == "SUCCEEDED"),
        "{updates:?}"
    );
}

#[test]
fn a_subscriber_without_a_key_is_refused() {
    let (_guard, folder) = temp_folder();
    let server = Server::start(binary(), &sqlite_store(&folder), &folder);
    let mut socket = connect(&server);
    send(&mut socket, json!({ "type": "connection_init", "payload": {} }));
    let answer = receive(&mut socket, Instant::now() + Duration::from_secs(10));
    assert!(
        answer
            .as_ref()
            .is_none_or(|message| message["type"] != "connection_ack"),
        "{answer:?}"
    );
}
