//! The HTTP client for Antom's refund APIs.
//!
//! This is the only IO in the crate: it formats the `Request-Time`, signs
//! the exact bytes it sends, reads a bounded response and hands status,
//! headers and body to the pure interpreters in [`crate::refund`] and
//! [`crate::inquiry`]. A call returns `Err` only when nothing was sent;
//! once bytes may have left, every failure is an `Unknown` outcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Serialize;
use time::OffsetDateTime;
use tracing::Instrument as _;

use crate::error::ClientError;
use crate::inquiry::{InquiryOutcome, InquiryRefundRequest, interpret_inquiry_response};
use crate::keys::{PrivateKey, PublicKey};
use crate::observe::{Api, CallClass, CallObserver};
use crate::refund::{RefundOutcome, RefundRequest, interpret_refund_response};
use crate::request_time::{RequestTimeStyle, format_request_time};
use crate::response::{HEADER_CLIENT_ID, HEADER_REQUEST_TIME, HEADER_SIGNATURE, ResponseCheck, UnknownReason};
use crate::retry::RetryPolicy;
use crate::signature::{sign, signed_path};

/// Antom's refund API path (live form; the sandbox rule is applied per client id).
pub const REFUND_API_PATH: &str = "/ams/api/v1/payments/refund";
/// Antom's inquiryRefund API path (live form).
pub const INQUIRY_REFUND_API_PATH: &str = "/ams/api/v1/payments/inquiryRefund";
/// Default TCP+TLS connect timeout.
pub const CONNECT_TIMEOUT_MS_DEFAULT: u64 = 5_000;
/// Default timeout of one whole request, connect to last body byte.
pub const REQUEST_TIMEOUT_MS_DEFAULT: u64 = 20_000;
/// Largest response body read; Antom's refund answers are a few hundred bytes.
pub const RESPONSE_BODY_BYTES_MAX: usize = 1024 * 1024;
/// The `Content-Type` Antom's SDKs send.
pub const CONTENT_TYPE_JSON_UTF8: &str = "application/json; charset=UTF-8";
const METHOD_POST: &str = "POST";

/// Everything the client needs. `Debug` shows no key material.
#[derive(Debug, Clone)]
pub struct ApoConfig {
    /// Antom gateway, e.g. `https://open-sea-global.alipay.com` (no path).
    pub base_url: String,
    /// The merchant's client id; `SANDBOX_...` ids call the sandbox paths.
    pub client_id: String,
    /// Signs our requests.
    pub merchant_private_key: PrivateKey,
    /// Verifies Antom's responses.
    pub antom_public_key: PublicKey,
    /// How `Request-Time` is written.
    pub request_time_style: RequestTimeStyle,
    /// Connect timeout in milliseconds.
    pub connect_timeout_ms: u64,
    /// Whole-request timeout in milliseconds.
    pub request_timeout_ms: u64,
    /// Retries of transient unknown outcomes.
    pub retry: RetryPolicy,
}

impl ApoConfig {
    /// A configuration with default time style, timeouts and retries.
    pub fn new(
        base_url: impl Into<String>,
        client_id: impl Into<String>,
        merchant_private_key: PrivateKey,
        antom_public_key: PublicKey,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            client_id: client_id.into(),
            merchant_private_key,
            antom_public_key,
            request_time_style: RequestTimeStyle::default(),
            connect_timeout_ms: CONNECT_TIMEOUT_MS_DEFAULT,
            request_timeout_ms: REQUEST_TIMEOUT_MS_DEFAULT,
            retry: RetryPolicy::default(),
        }
    }
}

/// A client for Antom's refund and inquiryRefund APIs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ApoClient {
    http: reqwest::Client,
    base_url: String,
    config: ApoConfig,
    observer: Option<Arc<dyn CallObserver>>,
}

/// A raw HTTP answer, as the interpreters take it.
struct RawResponse {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl ApoClient {
    /// Checks the configuration and builds the HTTP client (rustls, no OpenSSL).
    pub fn new(config: ApoConfig) -> Result<Self, ClientError> {
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(ClientError::InvalidConfig {
                reason: format!("base_url {base_url:?} must start with https:// or http://"),
            });
        }
        if config.client_id.is_empty() || HeaderValue::from_str(&config.client_id).is_err() {
            return Err(ClientError::InvalidConfig {
                reason: "client_id must be non-empty header-safe text".to_owned(),
            });
        }
        if config.connect_timeout_ms == 0 || config.request_timeout_ms == 0 {
            return Err(ClientError::InvalidConfig {
                reason: "connect_timeout_ms and request_timeout_ms must be positive".to_owned(),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .timeout(Duration::from_millis(config.request_timeout_ms))
            .build()
            .map_err(|error| ClientError::InvalidConfig {
                reason: format!("building the HTTP client: {error}"),
            })?;
        Ok(Self {
            http,
            base_url,
            config,
            observer: None,
        })
    }

    /// The same client reporting every attempt (API, outcome class, duration) to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> &ApoConfig {
        &self.config
    }

    /// Sends a refund, retrying transient unknown outcomes with the same
    /// body (same refundRequestId). `Err` means nothing was sent.
    pub async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, ClientError> {
        let span = tracing::info_span!(
            "apo.refund",
            otel.kind = "client",
            refund_request_id = %request.refund_request_id,
            payment_id = %request.payment_id,
        );
        async {
            let body = encode(&request.to_wire()?)?;
            let path = signed_path(&self.config.client_id, REFUND_API_PATH);
            self.call(Api::Refund, &path, &body, |response, check| {
                interpret_refund_response(response.status, &response.headers, &response.body, check, request)
            })
            .await
        }
        .instrument(span)
        .await
    }

    /// Asks Antom where a refund stands, retrying transient unknown
    /// outcomes. `Err` means nothing was sent.
    pub async fn inquiry_refund(&self, request: &InquiryRefundRequest) -> Result<InquiryOutcome, ClientError> {
        let span = tracing::info_span!(
            "apo.inquiry_refund",
            otel.kind = "client",
            refund_request_id = request.refund_request_id.as_ref().map(|id| id.as_str()),
            refund_id = request.refund_id.as_ref().map(|id| id.as_str()),
        );
        async {
            let body = encode(&request.to_wire()?)?;
            let path = signed_path(&self.config.client_id, INQUIRY_REFUND_API_PATH);
            self.call(Api::InquiryRefund, &path, &body, |response, check| {
                interpret_inquiry_response(response.status, &response.headers, &response.body, check, request)
            })
            .await
        }
        .instrument(span)
        .await
    }

    /// The retry loop shared by both calls: same body every attempt, fresh
    /// `Request-Time` and signature each time.
    async fn call<O>(
        &self,
        api: Api,
        path: &str,
        body: &[u8],
        interpret: impl Fn(&RawResponse, &ResponseCheck<'_>) -> O,
    ) -> Result<O, ClientError>
    where
        O: Outcome,
    {
        let check = ResponseCheck {
            antom_public_key: &self.config.antom_public_key,
            client_id: &self.config.client_id,
            method: METHOD_POST,
            request_path: path,
        };
        let retry = self.config.retry;
        let mut previous: Option<O> = None;
        let mut attempt = 1;
        loop {
            let signed = match self.sign_request(path, body) {
                Ok(signed) => signed,
                // Signing cannot fail where it worked a moment ago (same key);
                // should it anyway, an earlier attempt may have reached Antom,
                // so its unknown outcome stands instead of "nothing was sent".
                Err(error) => {
                    tracing::error!(attempt, %error, "signing the request failed");
                    return previous.ok_or(error);
                }
            };
            let started = Instant::now();
            let outcome = match self.send(path, body, signed).await {
                Ok(response) => interpret(&response, &check),
                Err(reason) => O::unknown(reason),
            };
            if let Some(observer) = &self.observer {
                observer.antom_call(api, outcome.class(), started.elapsed());
            }
            let Some(reason) = outcome.unknown_reason() else {
                tracing::info!(attempt, "antom answered");
                return Ok(outcome);
            };
            if !retry.should_retry(attempt, reason) {
                tracing::warn!(attempt, %reason, "antom outcome unknown");
                return Ok(outcome);
            }
            let wait = retry.backoff(attempt);
            tracing::info!(
                attempt,
                %reason,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "retrying with the same body"
            );
            tokio::time::sleep(wait).await;
            previous = Some(outcome);
            attempt += 1;
        }
    }

    /// A fresh `Request-Time` and the signature over it and the exact body.
    fn sign_request(&self, path: &str, body: &[u8]) -> Result<SignedRequest, ClientError> {
        let request_time = format_request_time(self.config.request_time_style, OffsetDateTime::now_utc());
        let signature = sign(
            &self.config.merchant_private_key,
            METHOD_POST,
            path,
            &self.config.client_id,
            &request_time,
            body,
        )?;
        Ok(SignedRequest {
            request_time,
            signature,
        })
    }

    /// One POST; any failure once sending began is an unknown outcome.
    async fn send(&self, path: &str, body: &[u8], signed: SignedRequest) -> Result<RawResponse, UnknownReason> {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header(CONTENT_TYPE, CONTENT_TYPE_JSON_UTF8)
            .header(HEADER_CLIENT_ID, &self.config.client_id)
            .header(HEADER_REQUEST_TIME, signed.request_time)
            .header(HEADER_SIGNATURE, signed.signature)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|error| UnknownReason::from_transport(&error))?;
        read_bounded(response).await
    }
}

/// The two signed headers of one attempt.
struct SignedRequest {
    request_time: String,
    signature: String,
}

/// Reads status, headers and at most [`RESPONSE_BODY_BYTES_MAX`] body bytes.
async fn read_bounded(mut response: reqwest::Response) -> Result<RawResponse, UnknownReason> {
    let status = response.status().as_u16();
    let headers = std::mem::take(response.headers_mut());
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > RESPONSE_BODY_BYTES_MAX {
                    return Err(UnknownReason::BodyTooLarge {
                        max: RESPONSE_BODY_BYTES_MAX,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(RawResponse { status, headers, body }),
            Err(error) => return Err(UnknownReason::from_transport(&error)),
        }
    }
}

fn encode(wire: &impl Serialize) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec(wire).map_err(|error| ClientError::Encoding {
        reason: error.to_string(),
    })
}

/// The two outcome types, as the retry loop sees them.
trait Outcome {
    fn unknown(reason: UnknownReason) -> Self;
    fn unknown_reason(&self) -> Option<&UnknownReason>;
    fn class(&self) -> CallClass;
}

impl Outcome for RefundOutcome {
    fn unknown(reason: UnknownReason) -> Self {
        reason.into()
    }
    fn unknown_reason(&self) -> Option<&UnknownReason> {
        RefundOutcome::unknown_reason(self)
    }
    fn class(&self) -> CallClass {
        match self {
            RefundOutcome::Succeeded { .. } => CallClass::S,
            RefundOutcome::Failed { .. } => CallClass::F,
            RefundOutcome::Unknown { reason } => CallClass::of_unknown(reason),
        }
    }
}

impl Outcome for InquiryOutcome {
    fn unknown(reason: UnknownReason) -> Self {
        reason.into()
    }
    fn unknown_reason(&self) -> Option<&UnknownReason> {
        InquiryOutcome::unknown_reason(self)
    }
    fn class(&self) -> CallClass {
        match self {
            InquiryOutcome::Succeeded { .. } => CallClass::S,
            InquiryOutcome::Failed { .. } | InquiryOutcome::NotFound { .. } => CallClass::F,
            InquiryOutcome::Processing => CallClass::U,
            InquiryOutcome::Unknown { reason } => CallClass::of_unknown(reason),
        }
    }
}
