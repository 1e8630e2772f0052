//! The HTTP surface: routes, authentication, limits and request ids.
//!
//! `app(state)` builds the router, so tests can serve it on port 0.

use std::sync::Arc;
use std::time::Duration;

use apo::PublicKey;
use app::Ledger;
use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::extract::{DefaultBodyLimit, OriginalUri, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use eventlog::EventStore;
use graphql::{LedgerSchema, Principal};
use projections::ReadModels;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::KeyRing;
use crate::metrics::{Gauges, Metrics};
use crate::notify;

/// The header carrying the request id (set when absent, echoed back).
const REQUEST_ID_HEADER: &str = "x-request-id";
/// Where Antom sends payment, capture and dispute notifications (refund ones are welcome too).
const NOTIFY_PATH_ALL: &str = "/apo/notify";
/// Longest time /readyz waits for the store.
const READY_CHECK_TIMEOUT_MS: u64 = 2_000;

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
    /// The journal export's account names.
    pub(crate) accounts: audit::Accounts,
}

/// The router with every route and layer.
pub(crate) fn app(state: AppState, notify_path: &str, body_bytes_max: usize) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let mut router = Router::new();
    if notify_path != NOTIFY_PATH_ALL {
        router = router.route(NOTIFY_PATH_ALL, post(notify::handle));
    }
    router
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(graphql_ws))
        .route(notify_path, post(notify::handle))
        .route("/exports/{file}", get(crate::export::download))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(body_bytes_max))
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            let id = request
                .headers()
                .get(REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    state.metrics.http_request();
    next.run(request).await
}

pub(crate) fn unauthenticated(state: &AppState) -> Response {
    state.metrics.unauthorized();
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

pub(crate) fn principal_of(state: &AppState, headers: &HeaderMap) -> Option<Principal> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    state.keys.authenticate_header(value)
}

async fn execute(state: &AppState, principal: Principal, request: GraphQLRequest) -> Response {
    let response = state.schema.execute(request.into_inner().data(principal)).await;
    state.metrics.graphql_request(response.errors.len());
    GraphQLResponse::from(response).into_response()
}

async fn graphql_post(State(state): State<AppState>, headers: HeaderMap, request: GraphQLRequest) -> Response {
    match principal_of(&state, &headers) {
        Some(principal) => execute(&state, principal, request).await,
        None => unauthenticated(&state),
    }
}

/// GET with a `query` parameter runs it (queries only); a plain GET serves GraphiQL.
async fn graphql_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: OriginalUri,
    request: Request,
) -> Response {
    let has_query = uri
        .query()
        .is_some_and(|query| query.split('&').any(|pair| pair.starts_with("query=")));
    if !has_query {
        return Html(GRAPHIQL_HTML).into_response();
    }
    let Some(principal) = principal_of(&state, &headers) else {
        return unauthenticated(&state);
    };
    match <GraphQLRequest as axum::extract::FromRequest<()>>::from_request(request, &()).await {
        Ok(request) => execute(&state, principal, request).await,
        Err(rejection) => rejection.into_response(),
    }
}

/// graphql-ws / graphql-transport-ws. The key comes from the `Authorization` header of the upgrade or
/// from `connection_init`'s payload (`{"Authorization": "Bearer <key>"}`), as browsers cannot set headers.
async fn graphql_ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let from_header = principal_of(&state, &headers);
    let keys = state.keys.clone();
    let schema = state.schema.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |stream| {
            GraphQLWebSocket::new(stream, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let from_payload = payload
                        .get("Authorization")
                        .or_else(|| payload.get("authorization"))
                        .and_then(|value| value.as_str())
                        .and_then(|value| keys.authenticate_header(value));
                    match from_header.or(from_payload) {
                        Some(principal) => {
                            let mut data = Data::default();
                            data.insert(principal);
                            Ok(data)
                        }
                        None => Err("UNAUTHENTICATED: send Authorization: Bearer <key>".into()),
                    }
                })
                .serve()
        })
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Response {
    let check = async {
        let head = state.store.head().await.map_err(|error| error.to_string())?;
        let checkpoint = state
            .read_models
            .checkpoint()
            .await
            .map_err(|error| error.to_string())?;
        Ok::<_, String>((head.position, checkpoint))
    };
    match tokio::time::timeout(Duration::from_millis(READY_CHECK_TIMEOUT_MS), check).await {
        Ok(Ok((head, checkpoint))) => format!("ready: log at {head}, read models at {checkpoint}\n").into_response(),
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready: store unavailable\n").into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "not ready: store too slow\n").into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let log_head_position = state.store.head().await.map(|head| head.position).unwrap_or(0);
    let projection_checkpoint = state.read_models.checkpoint().await.unwrap_or(0);
    let text = state.metrics.render(Gauges {
        log_head_position,
        projection_checkpoint,
    });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// GraphiQL, loaded from a CDN; the key goes into its headers editor.
const GRAPHIQL_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>refund-ledger GraphiQL</title>
  <link rel="stylesheet" href="https://unpkg.com/graphiql@3/graphiql.min.css">
  <style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL&hellip; Put <code>{"Authorization": "Bearer &lt;key&gt;"}</code> in the Headers tab.</div>
  <script crossorigin src="https://unpkg.com/react@18/umd/react.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/react-dom@18/umd/react-dom.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/graphiql@3/graphiql.min.js"></script>
  <script>
    const url = new URL('/graphql', window.location.href).toString();
    const subscriptionUrl = url.replace(/^http/, 'ws') + '/ws';
    const fetcher = GraphiQL.createFetcher({ url, subscriptionUrl });
    ReactDOM.createRoot(document.getElementById('graphiql')).render(
      React.createElement(GraphiQL, {
        fetcher,
        defaultHeaders: '{"Authorization": "Bearer <your key>"}',
        defaultQuery: '{ payments(first: 10) { edges { node { paymentId refundableAmount { currency value decimal } } } } }',
      }),
    );
  </script>
</body>
</html>
"#;
