//! What the HTTP handlers share: the [`AppState`] (schema, keys, ledger, store, read models, the notification
//! check, metrics, limits), authentication of a request against the key ring, and the 413 of a body over a limit.

use std::sync::Arc;

use apo::PublicKey;
use app::Ledger;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use eventlog::EventStore;
use graphql::{LedgerSchema, Principal};
use projections::ReadModels;

use crate::auth::KeyRing;
use crate::documents::ParsedDocuments;
use crate::metrics::Metrics;

/// What Antom's notifications are checked against.
#[derive(Clone)]
pub(crate) struct NotifyVerifier {
    /// Antom's public key.
    pub(crate) antom_public_key: PublicKey,
    /// Our client id.
    pub(crate) client_id: String,
    /// Allowed skew of `Request-Time`.
    pub(crate) clock_skew_max_ms: u64,
}

/// Everything the handlers share.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) schema: LedgerSchema,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) ledger: Ledger,
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) read_models: Arc<dyn ReadModels>,
    pub(crate) notify: NotifyVerifier,
    pub(crate) metrics: Metrics,
    /// The GraphQL documents parsed so far, by their text.
    pub(crate) documents: Arc<ParsedDocuments>,
    /// The journal export's account names.
    pub(crate) accounts: audit::Accounts,
    /// Largest request body (and WebSocket message) accepted.
    pub(crate) body_bytes_max: usize,
    /// Largest report `POST /reconciliations` accepts.
    pub(crate) report_bytes_max: usize,
}

impl AppState {
    /// Answers 401 (and counts it) for a request without a valid key.
    pub(crate) fn unauthenticated(&self) -> Response {
        self.metrics.unauthorized();
        let body = serde_json::json!({
            "errors": [{
                "message": "authentication required: send Authorization: Bearer <key>",
                "extensions": { "code": "UNAUTHENTICATED" }
            }]
        });
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(body),
        )
            .into_response()
    }

    /// The key holder a request's `Authorization: Bearer` header names, if the key is known.
    pub(crate) fn principal(&self, headers: &HeaderMap) -> Option<Principal> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        self.keys.authenticate_header(value)
    }
}

/// 413 with a GraphQL-shaped error; the connection is closed, as the rest of the body is never read.
pub(crate) fn payload_too_large(body_bytes_max: usize) -> Response {
    let body = serde_json::json!({
        "errors": [{
            "message": format!("the request body is over the limit of {body_bytes_max} bytes"),
            "extensions": { "code": "PAYLOAD_TOO_LARGE", "bytesMax": body_bytes_max }
        }]
    });
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        [(header::CONNECTION, "close")],
        axum::Json(body),
    )
        .into_response()
}
