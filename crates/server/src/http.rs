//! The HTTP surface: routes, authentication, limits and request ids.
//!
//! `app(state)` builds the router, so tests can serve it on port 0.
//!
//! Limits at this edge: a request body (or a WebSocket message) over
//! `body_bytes_max` is refused with 413 before anything parses it (a
//! declared length at once, a streamed body as soon as it passes the limit,
//! a WebSocket message by closing the socket); a query refused because too
//! many expensive queries run answers 429 with `Retry-After`. The GraphQL
//! limits themselves live in the schema (`graphql::limits`), so they hold
//! over WebSocket too.

use std::time::Duration;

use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, OriginalUri, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use graphql::Principal;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::metrics;
use crate::notify;
use crate::state::{AppState, payload_too_large};

/// The header carrying the request id (set when absent, echoed back).
const REQUEST_ID_HEADER: &str = "x-request-id";
/// Where Antom sends payment, capture and dispute notifications (refund ones are welcome too).
const NOTIFY_PATH_ALL: &str = "/apo/notify";
/// Longest time /readyz waits for the store.
const READY_CHECK_TIMEOUT_MS: u64 = 2_000;

/// The router with every route and layer.
pub(crate) fn app(state: AppState, notify_path: &str) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let mut router = Router::new();
    if notify_path != NOTIFY_PATH_ALL {
        router = router.route(NOTIFY_PATH_ALL, post(notify::handle));
    }
    router
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(graphql_ws))
        .route("/graphql/assets/{file}", get(crate::graphiql::asset))
        .route(notify_path, post(notify::handle))
        .route("/exports/{file}", get(crate::export::download))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(state.body_bytes_max))
        .layer(middleware::from_fn_with_state(
            state.body_bytes_max,
            refuse_large_bodies,
        ))
        // Reports are larger than API requests: their own limit, `[limits] report_bytes_max`.
        .merge(
            Router::new()
                .route("/reconciliations", post(crate::reconcile::upload))
                .layer(DefaultBodyLimit::max(state.report_bytes_max))
                .layer(middleware::from_fn_with_state(
                    state.report_bytes_max,
                    refuse_large_bodies,
                )),
        )
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            let id = request
                .headers()
                .get(REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            let method = request.method();
            let path = request.uri().path();
            // `otel.name` and `otel.kind` name the span and its kind when it is exported (crate::telemetry).
            tracing::info_span!(
                "http",
                otel.name = %format_args!("{method} {path}"),
                otel.kind = "server",
                method = %method,
                path = %path,
                request_id = %id
            )
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    state.metrics.http_request();
    next.run(request).await
}

/// Refuses a request whose declared body is over `body_bytes_max` before anything reads it. A body of
/// undeclared length (chunked) is cut at the limit by whatever reads it ([`DefaultBodyLimit`]).
async fn refuse_large_bodies(State(body_bytes_max): State<usize>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > u64::try_from(body_bytes_max).unwrap_or(u64::MAX)) {
        return payload_too_large(body_bytes_max);
    }
    next.run(request).await
}

/// 400 for a request that is not GraphQL; the message quotes at most a short slice of the input.
fn bad_request(message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{
            "message": graphql::bound_message(message),
            "extensions": { "code": "BAD_REQUEST" }
        }]
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// The operation type a request runs (the `operation` label): `query`, `mutation`, `subscription`, or
/// `invalid` when the document did not parse (`None`) or names no such operation (the schema answers the
/// error).
fn operation_type(
    document: Option<&async_graphql::parser::types::ExecutableDocument>,
    operation_name: Option<&str>,
) -> &'static str {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let Some(document) = document else {
        return "invalid";
    };
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), _) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => operations.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    };
    match operation.map(|operation| operation.node.ty) {
        Some(OperationType::Query) => "query",
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
        None => "invalid",
    }
}

async fn execute(state: &AppState, principal: Principal, mut request: async_graphql::Request) -> Response {
    // Parsed once, here (from the instance's parsed documents): the label, then the schema, read it.
    let document = state.documents.parse(&request.query).ok();
    let operation = operation_type(document.as_ref(), request.operation_name.as_deref());
    if let Some(document) = document {
        request.set_parsed_query(document);
    }
    let started = std::time::Instant::now();
    let response = state.schema.execute(request.data(principal)).await;
    let codes = response.errors.iter().map(|error| {
        error
            .extensions
            .as_ref()
            .and_then(|extensions| extensions.get("code"))
            .and_then(|code| match code {
                async_graphql::Value::String(code) => Some(code.as_str()),
                async_graphql::Value::Enum(code) => Some(code.as_str()),
                _ => None,
            })
    });
    state.metrics.graphql_request(operation, started.elapsed(), codes);
    let retry_after_seconds = graphql::retry_after_seconds(&response);
    let mut http_response = GraphQLResponse::from(response).into_response();
    if let Some(seconds) = retry_after_seconds {
        state.metrics.expensive_query_refused();
        *http_response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        http_response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    http_response
}

/// POST: the key is checked before the body is read; the body is read up to `body_bytes_max` (413
/// past it) and only then parsed.
async fn graphql_post(State(state): State<AppState>, request: Request) -> Response {
    let Some(principal) = state.principal(request.headers()) else {
        return state.unauthenticated();
    };
    let body = match Bytes::from_request(request, &state).await {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return payload_too_large(state.body_bytes_max);
        }
        Err(rejection) => return bad_request(&format!("the request body could not be read: {rejection}")),
    };
    match serde_json::from_slice::<async_graphql::Request>(&body) {
        Ok(request) => {
            if crate::telemetry::exporting() {
                if let Some(refund_request_id) = refund_request_id_of(&request) {
                    crate::telemetry::join_refund_trace(&tracing::Span::current(), &refund_request_id);
                }
            }
            execute(&state, principal, request).await
        }
        Err(error) => bad_request(&format!("the request body is not a GraphQL request: {error}")),
    }
}

/// The refundRequestId of the first `refund` or `inquiryRefund` field of a mutation in `request` (from the
/// document or its variables), whose trace the request joins (`crate::telemetry`).
fn refund_request_id_of(request: &async_graphql::Request) -> Option<String> {
    use async_graphql::parser::types::{OperationType, Selection};
    if !request.query.contains("efund") {
        return None;
    }
    let document = async_graphql::parser::parse_query(&request.query).ok()?;
    let variable = |name: async_graphql::Name| request.variables.get(&name).cloned().ok_or(());
    document
        .operations
        .iter()
        .filter(|(_, operation)| operation.node.ty == OperationType::Mutation)
        .flat_map(|(_, operation)| operation.node.selection_set.node.items.iter())
        .find_map(|selection| {
            let Selection::Field(field) = &selection.node else {
                return None;
            };
            let field = &field.node;
            let id = match field.name.node.as_str() {
                "refund" => {
                    let input = field
                        .get_argument("input")?
                        .node
                        .clone()
                        .into_const_with(variable)
                        .ok()?;
                    match input {
                        async_graphql::Value::Object(input) => input.get("refundRequestId")?.clone(),
                        _ => return None,
                    }
                }
                "inquiryRefund" => field
                    .get_argument("refundRequestId")?
                    .node
                    .clone()
                    .into_const_with(variable)
                    .ok()?,
                _ => return None,
            };
            match id {
                async_graphql::Value::String(id) => Some(id),
                _ => None,
            }
        })
}

/// GET with a `query` parameter runs it (queries only); a plain GET serves GraphiQL.
async fn graphql_get(State(state): State<AppState>, headers: HeaderMap, uri: OriginalUri) -> Response {
    let query = uri.query().unwrap_or_default();
    let has_query = query.split('&').any(|pair| pair.starts_with("query="));
    if !has_query {
        return crate::graphiql::page();
    }
    let Some(principal) = state.principal(&headers) else {
        return state.unauthenticated();
    };
    if query.len() > state.body_bytes_max {
        return payload_too_large(state.body_bytes_max);
    }
    match async_graphql::http::parse_query_string(query) {
        Ok(request) => execute(&state, principal, request).await,
        Err(error) => bad_request(&format!("the query string is not a GraphQL request: {error}")),
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
    let from_header = state.principal(&headers);
    let keys = state.keys.clone();
    let schema = state.schema.clone();
    // A message over the limit fails the read before it is buffered, which ends the connection.
    upgrade
        .max_message_size(state.body_bytes_max)
        .max_frame_size(state.body_bytes_max)
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

/// `/readyz`: 200 when the store and the read models answer within [`READY_CHECK_TIMEOUT_MS`], 503 otherwise;
/// the body is the `health` query's answer as JSON (store reachable, projection lag, the settle worker's last
/// run, Antom's last verified answer).
async fn readyz(State(state): State<AppState>) -> Response {
    let check = graphql::operations::health(state.store.as_ref(), state.read_models.as_ref(), &state.ledger);
    match tokio::time::timeout(Duration::from_millis(READY_CHECK_TIMEOUT_MS), check).await {
        Ok(health) => {
            let ready = health.store_reachable && health.projected_position.is_some();
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (status, axum::Json(health)).into_response()
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "storeReachable": false, "reason": "store too slow" })),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let scraped = metrics::scrape_state(
        &*state.store,
        &*state.read_models,
        graphql::expensive_queries_running(&state.schema),
    )
    .await;
    let text = state.metrics.render(&scraped);
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::refund_request_id_of;

    fn id_of(query: &str, variables: serde_json::Value) -> Option<String> {
        let request = async_graphql::Request::new(query).variables(async_graphql::Variables::from_json(variables));
        refund_request_id_of(&request)
    }

    #[test]
    fn a_request_joins_the_trace_of_the_refund_its_mutation_names() {
        let literal = r#"mutation { refund(input: { refundRequestId: "R-1", paymentId: "P", refundAmount: { currency: "USD", value: "1" } }) { position } }"#;
        assert_eq!(id_of(literal, json!({})).as_deref(), Some("R-1"));
        let variable = "mutation($rid: ID!) { refund(input: { refundRequestId: $rid, paymentId: \"P\", refundAmount: { currency: \"USD\", value: \"1\" } }) { position } }";
        assert_eq!(id_of(variable, json!({ "rid": "R-2" })).as_deref(), Some("R-2"));
        let whole_input = "mutation($input: RefundInput!) { refund(input: $input) { position } }";
        assert_eq!(
            id_of(whole_input, json!({ "input": { "refundRequestId": "R-3" } })).as_deref(),
            Some("R-3")
        );
        let inquiry = "mutation { first: inquiryRefund(refundRequestId: \"R-4\") { position } }";
        assert_eq!(id_of(inquiry, json!({})).as_deref(), Some("R-4"));
        // Queries, other mutations, unknown variables and documents that do not parse join nothing.
        assert_eq!(
            id_of("{ refund(refundRequestId: \"R-5\") { status } }", json!({})),
            None
        );
        assert_eq!(
            id_of("mutation { recordPayment(input: {}) { position } }", json!({})),
            None
        );
        assert_eq!(id_of(variable, json!({})), None);
        assert_eq!(id_of("mutation { refund(", json!({})), None);
    }
}
