//! The HTTP face of the simulator: Antom's two refund endpoints (live and
//! sandbox paths), request signature checks, signed answers shaped by the
//! request's transport fault, and a small unsigned admin API under `/sim/`
//! for seeding payments and steering faults.
//!
//! The admin API has no authentication: the simulator is a test tool and
//! must only listen on loopback or a private network.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use domain::{ResultCode, ResultStatus};
use time::OffsetDateTime;

use crate::admin;
use crate::config::{LATENCY_MS_MAX, REQUEST_BODY_BYTES_MAX, TIMEOUT_HOLD_MS_MAX};
use crate::fault::{FAULT_HEADER, Fault, Transport, parse_fault_list};
use crate::simulator::{Answer, Simulator, parse_inquiry, parse_refund, to_json};
use crate::wire::{RefundResponseJson, ResultJson, antom_time};

/// Live refund path.
pub const REFUND_PATH: &str = "/ams/api/v1/payments/refund";
/// Live inquiryRefund path.
pub const INQUIRY_REFUND_PATH: &str = "/ams/api/v1/payments/inquiryRefund";
/// Sandbox refund path (sandbox client ids call and sign this one).
pub const SANDBOX_REFUND_PATH: &str = "/ams/sandbox/api/v1/payments/refund";
/// Sandbox inquiryRefund path.
pub const SANDBOX_INQUIRY_REFUND_PATH: &str = "/ams/sandbox/api/v1/payments/inquiryRefund";

const JSON_CONTENT_TYPE: &str = "application/json; charset=UTF-8";

impl Simulator {
    /// The simulator's routes (Antom's API, live and sandbox paths, and the
    /// `/sim/` admin API), to serve yourself or to nest in another axum app.
    ///
    /// Nested under a prefix (`Router::nest("/antom", sim.router())`), the
    /// signed path is the path *without* the prefix: exactly what an Antom
    /// client signs when the prefix is part of its base URL.
    pub fn router(&self) -> Router {
        self.api_router().merge(self.admin_router())
    }

    /// Antom's refund and inquiryRefund endpoints only, for embedding where
    /// the unauthenticated admin API must not be reachable.
    pub fn api_router(&self) -> Router {
        Router::new()
            .route(REFUND_PATH, post(refund))
            .route(SANDBOX_REFUND_PATH, post(refund))
            .route(INQUIRY_REFUND_PATH, post(inquiry_refund))
            .route(SANDBOX_INQUIRY_REFUND_PATH, post(inquiry_refund))
            .layer(DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
            .with_state(self.clone())
    }

    /// The `/sim/` admin API only (unauthenticated: loopback or private networks).
    pub fn admin_router(&self) -> Router {
        admin::routes()
            .layer(DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
            .with_state(self.clone())
    }
}

#[tracing::instrument(skip_all, fields(path = %uri.path()))]
async fn refund(State(simulator): State<Simulator>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    if let Err(refusal) = authenticate(&simulator, &path, &headers, &body) {
        return refusal.into_response();
    }
    let header_faults = match header_faults(&headers) {
        Ok(faults) => faults,
        Err(refusal) => return refusal.into_response(),
    };
    let answer = simulator.process_refund(parse_refund(&body), header_faults);
    respond(&simulator, &path, answer).await
}

#[tracing::instrument(skip_all, fields(path = %uri.path()))]
async fn inquiry_refund(State(simulator): State<Simulator>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    if let Err(refusal) = authenticate(&simulator, &path, &headers, &body) {
        return refusal.into_response();
    }
    let header_faults = match header_faults(&headers) {
        Ok(faults) => faults,
        Err(refusal) => return refusal.into_response(),
    };
    let answer = simulator.process_inquiry(parse_inquiry(&body), header_faults);
    respond(&simulator, &path, answer).await
}

/// A request refused before it reaches the simulator's state.
#[derive(Debug)]
enum Refusal {
    /// Client-Id or signature wrong: answered like Antom does, F, HTTP 200, and no signature.
    Unauthenticated { code: ResultCode, message: &'static str },
    /// The `X-Sim-Fault` header names an unknown fault: a test bug, HTTP 400.
    BadFaultHeader(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthenticated { code, message } => unsigned_failure(code, message),
            Self::BadFaultHeader(reason) => (StatusCode::BAD_REQUEST, reason).into_response(),
        }
    }
}

/// Checks Client-Id and the merchant's signature over the request path.
fn authenticate(simulator: &Simulator, path: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), Refusal> {
    let config = simulator.config();
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let client_id = header("client-id");
    if client_id != Some(config.client_id.as_str()) {
        tracing::info!(client_id = ?client_id, "refusing request: unknown Client-Id");
        return Err(Refusal::Unauthenticated {
            code: ResultCode::InvalidClient,
            message: "Client-Id is missing or unknown",
        });
    }
    let (Some(request_time), Some(signature)) = (header("request-time"), header("signature")) else {
        return Err(Refusal::Unauthenticated {
            code: ResultCode::InvalidSignature,
            message: "Request-Time or Signature header is missing",
        });
    };
    apo::signature::verify(
        &config.merchant_public_key,
        "POST",
        path,
        &config.client_id,
        request_time,
        body,
        signature,
    )
    .map_err(|error| {
        tracing::info!(%error, "refusing request: signature does not verify");
        Refusal::Unauthenticated {
            code: ResultCode::InvalidSignature,
            message: "signature does not verify",
        }
    })
}

fn header_faults(headers: &HeaderMap) -> Result<Option<Vec<Fault>>, Refusal> {
    let Some(value) = headers.get(FAULT_HEADER) else {
        return Ok(None);
    };
    let list = value
        .to_str()
        .map_err(|_| Refusal::BadFaultHeader("X-Sim-Fault: not ASCII".to_owned()))?;
    parse_fault_list(list)
        .map(Some)
        .map_err(|error| Refusal::BadFaultHeader(error.to_string()))
}

fn unsigned_failure(code: ResultCode, message: &str) -> Response {
    let body = to_json(&RefundResponseJson {
        result: ResultJson::new(code.as_str(), ResultStatus::F, message),
        refund_request_id: None,
        refund_id: None,
        payment_id: None,
        refund_amount: None,
        refund_time: None,
    });
    json_response(StatusCode::OK, body)
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static(JSON_CONTENT_TYPE));
    response
}

/// Turns an answer into the HTTP response its transport fault calls for.
async fn respond(simulator: &Simulator, path: &str, answer: Answer) -> Response {
    let Answer { plan, body, effects } = answer;
    simulator.run_effects(effects);
    if !hold(simulator, plan.latency_ms.min(LATENCY_MS_MAX)).await {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match plan.transport {
        Transport::Timeout | Transport::AcceptedTimeout => {
            let hold_ms = simulator.faults().timeout_hold_ms.min(TIMEOUT_HOLD_MS_MAX);
            // Held until the client gives up; past the bound (or at shutdown) a bare 504.
            let _held = hold(simulator, hold_ms).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Transport::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "text/html")],
            "<html><body><h1>500 Internal Server Error</h1></body></html>",
        )
            .into_response(),
        Transport::RateLimited => {
            let body = to_json(&RefundResponseJson {
                result: ResultJson::new(
                    ResultCode::RequestTrafficExceedLimit.as_str(),
                    ResultStatus::U,
                    "request traffic exceeds the limit",
                ),
                refund_request_id: None,
                refund_id: None,
                payment_id: None,
                refund_amount: None,
                refund_time: None,
            });
            signed(
                simulator,
                path,
                StatusCode::TOO_MANY_REQUESTS,
                body,
                SignatureMode::Good,
            )
        }
        Transport::Garbage => (
            StatusCode::OK,
            [("content-type", JSON_CONTENT_TYPE)],
            "{\"result\":{\"resultCo\u{0}<<garbage>>",
        )
            .into_response(),
        Transport::Normal | Transport::Unsigned | Transport::BadSignature => {
            let mode = match plan.transport {
                Transport::Unsigned => SignatureMode::None,
                Transport::BadSignature => SignatureMode::Bad,
                _ => SignatureMode::Good,
            };
            let body = body.unwrap_or_default();
            signed(simulator, path, StatusCode::OK, body, mode)
        }
    }
}

/// Waits `ms` unless the simulator stops first; false when it stopped.
async fn hold(simulator: &Simulator, ms: u64) -> bool {
    if ms == 0 {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(Duration::from_millis(ms)) => true,
        () = simulator.stopped() => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignatureMode {
    Good,
    Bad,
    None,
}

/// A JSON response with Antom's headers: `Client-Id`, `Response-Time` and
/// (unless `mode` is `None`) a `Signature` over `POST <path>\n<clientId>.<Response-Time>.<body>`.
fn signed(simulator: &Simulator, path: &str, status: StatusCode, body: Vec<u8>, mode: SignatureMode) -> Response {
    let config = simulator.config();
    let response_time = antom_time(OffsetDateTime::now_utc());
    let signature = match mode {
        SignatureMode::None => None,
        SignatureMode::Good => sign(simulator, path, &response_time, &body),
        SignatureMode::Bad => {
            // A real signature, but over other bytes: it parses and does not verify.
            let mut other = body.clone();
            other.extend_from_slice(b" ");
            sign(simulator, path, &response_time, &other)
        }
    };
    let mut response = json_response(status, body);
    let headers = response.headers_mut();
    for (name, value) in [
        ("client-id", Some(config.client_id.as_str())),
        ("response-time", Some(response_time.as_str())),
        ("signature", signature.as_deref()),
    ] {
        if let Some(value) = value.and_then(|value| HeaderValue::from_str(value).ok()) {
            headers.insert(name, value);
        }
    }
    response
}

fn sign(simulator: &Simulator, path: &str, response_time: &str, body: &[u8]) -> Option<String> {
    let config = simulator.config();
    apo::signature::sign(
        &config.antom_private_key,
        "POST",
        path,
        &config.client_id,
        response_time,
        body,
    )
    .inspect_err(|error| tracing::error!(%error, "signing the response failed; answering unsigned"))
    .ok()
}
