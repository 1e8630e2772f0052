//! Antom's notification endpoint: verifies the signature, client id and clock skew (`apo`), hands the
//! notification to the ledger (`app` maps every kind to its commands) and answers Antom: the acknowledgement
//! body when applied, a non-200 when the ledger could not apply it yet, so Antom sends it again.

use apo::{Notification, NotificationCheck};
use app::NotificationAnswer;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use crate::metrics::NotificationRefusal;
use crate::state::AppState;

/// The `reason` label of a notification that failed verification.
fn unverified_reason(error: &apo::NotificationError) -> &'static str {
    use apo::NotificationError as E;
    match error {
        E::MissingHeader { .. } => "missing_header",
        E::WrongClientId { .. } => "wrong_client",
        E::BadSignature(_) => "bad_signature",
        E::BadRequestTime { .. } => "bad_request_time",
        E::StaleRequestTime { .. } => "stale",
        E::BodyTooLarge { .. } => "body_too_large",
        E::MalformedBody(_) => "malformed_body",
        E::UnknownNotifyType { .. } => "unknown_type",
    }
}

/// `POST` handler of the notification paths.
pub(crate) async fn handle(
    State(state): State<AppState>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let check = NotificationCheck {
        antom_public_key: &state.notify.antom_public_key,
        client_id: &state.notify.client_id,
        clock_skew_max_ms: state.notify.clock_skew_max_ms,
    };
    let now = OffsetDateTime::now_utc();
    let notification = match apo::verify_notification(&check, "POST", uri.path(), &headers, &body, now) {
        Ok(notification) => notification,
        Err(error) => {
            state
                .metrics
                .notification_refused(NotificationRefusal::Unverified(unverified_reason(&error)));
            tracing::warn!(error = %error, "refused an Antom notification");
            return answer(
                StatusCode::UNAUTHORIZED,
                "INVALID_SIGNATURE",
                "F",
                "notification refused",
            );
        }
    };
    if let Notification::Refund(refund) = &notification {
        crate::telemetry::join_refund_trace(&tracing::Span::current(), refund.refund_request_id.as_str());
    }
    match state.ledger.apply_notification(notification).await {
        Ok(NotificationAnswer::Acknowledge) => {
            state.metrics.notification_accepted();
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                apo::NOTIFICATION_ACK_BODY,
            )
                .into_response()
        }
        Ok(NotificationAnswer::RetryLater(why)) => {
            state
                .metrics
                .notification_refused(NotificationRefusal::NotApplicableYet);
            tracing::info!(reason = %why, "notification not applicable yet; Antom will send it again");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "PROCESS_FAIL",
                "U",
                "not applied yet; retry later",
            )
        }
        Err(error) => {
            state.metrics.notification_refused(NotificationRefusal::NotApplied);
            tracing::error!(error = %error, "notification not applied");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "PROCESS_FAIL",
                "U",
                "not applied; retry later",
            )
        }
    }
}

fn answer(status: StatusCode, code: &str, result_status: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "result": { "resultCode": code, "resultStatus": result_status, "resultMessage": message }
    });
    (status, axum::Json(body)).into_response()
}
