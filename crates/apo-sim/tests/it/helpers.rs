//! Shared test plumbing: the test-only key pairs, a simulator on a random
//! loopback port, a merchant that signs raw requests, and a notification
//! receiver standing in for the merchant's webhook.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apo::keys::PublicKey;
use apo_sim::{PaymentSeed, SimConfig, SimServer, Simulator};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use domain::{Money, PaymentId, PaymentMethodType};
use serde_json::Value;
use time::OffsetDateTime;

pub(crate) use testkit::antom::{CLIENT_ID, Keys, keys, vectors_dir};
pub(crate) const LOOPBACK: &str = "127.0.0.1:0";
/// How long a test waits for something asynchronous (a notification, a settle).
pub(crate) const WAIT_MS_MAX: u64 = 10_000;

pub(crate) fn config() -> SimConfig {
    let keys = keys();
    let mut config = SimConfig::new(CLIENT_ID, keys.merchant_public, keys.antom_private);
    // Long enough to observe PROCESSING on a busy 2-core machine, short enough for fast tests.
    config.settle_ms = 300;
    // Antom's 24 h schedule in about 0.75 s.
    config.notify_compression = 120_000;
    config.notify_timeout_ms = 2_000;
    config.seed = 42;
    config.faults.timeout_hold_ms = 1_500;
    config
}

pub(crate) fn usd(value: u64) -> Money {
    Money::parse("amount", "USD", &value.to_string()).expect("valid USD amount")
}

pub(crate) fn payment_id(id: &str) -> PaymentId {
    PaymentId::parse(id).expect("valid payment id")
}

/// A payment of `amount` USD by CARD, captured in full, paid an hour ago.
pub(crate) fn captured_payment(id: &str, amount: u64) -> PaymentSeed {
    PaymentSeed::captured(
        payment_id(id),
        usd(amount),
        PaymentMethodType::parse("CARD").expect("valid method"),
        OffsetDateTime::now_utc() - time::Duration::hours(1),
    )
}

/// A raw HTTP answer, kept whole so tests can check status, headers and signature.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Vec<u8>,
    pub(crate) path: String,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub(crate) fn result_code(&self) -> String {
        self.json()["result"]["resultCode"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub(crate) fn result_status(&self) -> String {
        self.json()["result"]["resultStatus"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Verifies the answer as the merchant must: Antom's public key over
    /// `POST <request path>\n<clientId>.<Response-Time>.<body>`.
    pub(crate) fn verify(&self, antom_public: &PublicKey) -> Result<(), String> {
        let signature = self.header("signature").ok_or("no Signature header")?;
        let time = self.header("response-time").ok_or("no Response-Time header")?;
        let client_id = self.header("client-id").ok_or("no Client-Id header")?;
        apo::signature::verify(antom_public, "POST", &self.path, client_id, time, &self.body, signature)
            .map_err(|error| error.to_string())
    }

    /// Asserts a signed answer with this status and code.
    pub(crate) fn assert_signed(&self, keys: &Keys, status: &str, code: &str) {
        assert_eq!(
            self.status,
            200,
            "HTTP status of {}",
            String::from_utf8_lossy(&self.body)
        );
        self.verify(&keys.antom_public).expect("answer signed by Antom");
        assert_eq!(
            (self.result_status().as_str(), self.result_code().as_str()),
            (status, code),
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
    }
}

/// A simulator on a random loopback port and a merchant that talks to it.
pub(crate) struct TestSim {
    pub(crate) server: SimServer,
    pub(crate) keys: Keys,
    pub(crate) http: reqwest::Client,
}

impl TestSim {
    pub(crate) async fn start() -> Self {
        Self::start_with(config()).await
    }

    pub(crate) async fn start_with(config: SimConfig) -> Self {
        let server = SimServer::start(config, LOOPBACK.parse().expect("loopback address"))
            .await
            .expect("simulator starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(800))
            .build()
            .expect("http client");
        Self {
            server,
            keys: keys(),
            http,
        }
    }

    pub(crate) fn sim(&self) -> &Simulator {
        self.server.simulator()
    }

    /// POSTs `body` to `path` signed by the merchant, with optional `X-Sim-Fault`.
    pub(crate) async fn post_signed(
        &self,
        path: &str,
        body: &str,
        fault: Option<&str>,
    ) -> Result<Answer, reqwest::Error> {
        let time = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let time = time.to_string();
        let signature = apo::signature::sign(
            &self.keys.merchant_private,
            "POST",
            path,
            CLIENT_ID,
            &time,
            body.as_bytes(),
        )
        .expect("signing works");
        let mut request = self
            .http
            .post(format!("{}{path}", self.server.base_url()))
            .header("Content-Type", "application/json; charset=UTF-8")
            .header("Client-Id", CLIENT_ID)
            .header("Request-Time", &time)
            .header("Signature", signature)
            .body(body.to_owned());
        if let Some(fault) = fault {
            request = request.header("X-Sim-Fault", fault);
        }
        self.send(request, path).await
    }

    pub(crate) async fn send(&self, request: reqwest::RequestBuilder, path: &str) -> Result<Answer, reqwest::Error> {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await?.to_vec();
        Ok(Answer {
            status,
            headers,
            body,
            path: path.to_owned(),
        })
    }

    pub(crate) async fn refund(&self, refund_request_id: &str, payment_id: &str, amount: u64) -> Answer {
        self.refund_with(refund_request_id, payment_id, amount, None)
            .await
            .expect("refund answered")
    }

    pub(crate) async fn refund_with(
        &self,
        refund_request_id: &str,
        payment_id: &str,
        amount: u64,
        fault: Option<&str>,
    ) -> Result<Answer, reqwest::Error> {
        let body = refund_body(refund_request_id, payment_id, "USD", amount);
        self.post_signed(&refund_path(), &body, fault).await
    }

    pub(crate) async fn inquiry(&self, refund_request_id: &str) -> Answer {
        let body = serde_json::json!({ "refundRequestId": refund_request_id }).to_string();
        self.post_signed(&inquiry_path(), &body, None)
            .await
            .expect("inquiry answered")
    }
}

pub(crate) fn refund_path() -> String {
    apo::signature::signed_path(CLIENT_ID, apo_sim::REFUND_PATH)
}

pub(crate) fn inquiry_path() -> String {
    apo::signature::signed_path(CLIENT_ID, apo_sim::INQUIRY_REFUND_PATH)
}

pub(crate) fn refund_body(refund_request_id: &str, payment_id: &str, currency: &str, amount: u64) -> String {
    serde_json::json!({
        "refundRequestId": refund_request_id,
        "paymentId": payment_id,
        "refundAmount": { "currency": currency, "value": amount.to_string() },
        "refundReason": "customer request",
    })
    .to_string()
}

/// Polls `check` every 10 ms until it holds or `WAIT_MS_MAX` passes.
pub(crate) async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One notification the merchant's webhook received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Received {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("notification is JSON")
    }

    /// Verifies as the merchant must: Antom's key over `POST <our path>\n<clientId>.<Request-Time>.<body>`.
    pub(crate) fn verify(&self, antom_public: &PublicKey) -> Result<(), String> {
        let header = |name: &str| {
            self.headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .ok_or(format!("no {name} header"))
        };
        apo::signature::verify(
            antom_public,
            "POST",
            &self.path,
            header("client-id")?,
            header("request-time")?,
            &self.body,
            header("signature")?,
        )
        .map_err(|error| error.to_string())
    }
}

#[derive(Clone, Default)]
struct ReceiverState {
    received: Arc<Mutex<Vec<Received>>>,
    refuse_first: Arc<AtomicUsize>,
}

/// The merchant's notification endpoint: records every call; refuses the
/// first `refuse_first` with HTTP 500, then acknowledges.
pub(crate) struct Receiver {
    pub(crate) url: String,
    state: ReceiverState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

pub(crate) const NOTIFY_PATH: &str = "/apo/notify/refund";

impl Receiver {
    pub(crate) async fn start(refuse_first: usize) -> Self {
        let state = ReceiverState::default();
        state.refuse_first.store(refuse_first, Ordering::SeqCst);
        let app = Router::new()
            .route(NOTIFY_PATH, post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(LOOPBACK).await.expect("bind receiver");
        let addr: SocketAddr = listener.local_addr().expect("receiver address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _stop = stopped.await;
                })
                .await
                .expect("receiver serves");
        });
        Self {
            url: format!("http://{addr}{NOTIFY_PATH}"),
            state,
            stop: Some(stop),
        }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("receiver lock").clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _stopped = stop.send(());
        }
    }
}

async fn receive(
    State(state): State<ReceiverState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    state.received.lock().expect("receiver lock").push(Received {
        path: uri.path().to_owned(),
        headers,
        body,
    });
    let refuse = state
        .refuse_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1))
        .is_ok();
    if refuse {
        (StatusCode::INTERNAL_SERVER_ERROR, "busy".to_owned())
    } else {
        (
            StatusCode::OK,
            r#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#.to_owned(),
        )
    }
}
