//! Antom's notifications, after their signature verified: refunds settle
//! through the saga; payments, captures and disputes become ledger
//! commands, so a payment reaches the ledger without anyone typing it in.
//!
//! The answer decides whether Antom sends again: the acknowledgement body
//! on success (and for notifications that need nothing), a non-200 when the
//! ledger could not apply it *yet* (an unknown refund, a capture of a payment
//! whose own notification has not arrived): Antom retries on its schedule,
//! and for refunds the settle worker is the backstop.

use apo::notification::{
    CaptureNotification, DisputeJudgedResult, DisputeNotification, DisputeNotificationType, PaymentNotification,
};
use apo::{Notification, NotificationCheck};
use app::{
    AppError, CapturePaymentInput, CommandResult, Ledger, OpenChargebackInput, RecordPaymentInput,
    ResolveChargebackInput,
};
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::{ChargebackResolution, ResultCode, ResultStatus};
use time::OffsetDateTime;

use crate::http::AppState;

/// What to tell Antom.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// Applied, or nothing to apply: acknowledge so Antom stops sending.
    Acknowledge,
    /// Not applicable yet: Antom should send it again later.
    RetryLater(String),
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
            state.metrics.notification(false);
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
    match apply(&state.ledger, notification, now).await {
        Ok(Answer::Acknowledge) => {
            state.metrics.notification(true);
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                apo::NOTIFICATION_ACK_BODY,
            )
                .into_response()
        }
        Ok(Answer::RetryLater(why)) => {
            state.metrics.notification(false);
            tracing::info!(reason = %why, "notification not applicable yet; Antom will send it again");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "PROCESS_FAIL",
                "U",
                "not applied yet; retry later",
            )
        }
        Err(error) => {
            state.metrics.notification(false);
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

async fn apply(ledger: &Ledger, notification: Notification, now: OffsetDateTime) -> Result<Answer, AppError> {
    let actor = app::NOTIFY_ACTOR;
    match notification {
        Notification::Refund(refund) => match ledger.apply_refund_notification(actor, &refund).await {
            Ok(_) => Ok(Answer::Acknowledge),
            Err(AppError::UnknownRefund { refund_request_id }) => Ok(Answer::RetryLater(format!(
                "refund {refund_request_id} is not known yet"
            ))),
            Err(other) => Err(other),
        },
        Notification::Payment(payment) => record_payment(ledger, actor, payment, now).await,
        Notification::Capture(capture) => capture_payment(ledger, actor, capture, now).await,
        Notification::Dispute(dispute) => dispute_changed(ledger, actor, dispute).await,
    }
}

/// Acknowledges what applied or was already applied; asks for a resend when the payment is not known yet.
fn outcome(result: CommandResult, what: &str) -> Answer {
    match (result.result.status, &result.result.code) {
        (ResultStatus::F, ResultCode::OrderNotExist) => Answer::RetryLater(format!("{what}: payment not recorded yet")),
        (ResultStatus::F, code) => {
            // A refusal (e.g. inconsistent content) will not change on resend: keep it in the log for operators.
            tracing::error!(%code, message = %result.result.message, "{what} refused by the ledger");
            Answer::Acknowledge
        }
        _ => Answer::Acknowledge,
    }
}

async fn record_payment(
    ledger: &Ledger,
    actor: &str,
    payment: PaymentNotification,
    now: OffsetDateTime,
) -> Result<Answer, AppError> {
    if payment.result.status != ResultStatus::S {
        return Ok(Answer::Acknowledge);
    }
    let Some(payment_method_type) = payment.payment_method_type else {
        // The refund policy depends on the method; guessing it could allow a refund of an uncaptured card.
        tracing::error!(payment_id = %payment.payment_id, "payment notification without paymentMethodType; record it with recordPayment");
        return Ok(Answer::Acknowledge);
    };
    let input = RecordPaymentInput {
        payment_id: payment.payment_id,
        payment_amount: payment.payment_amount,
        payment_method_type,
        payment_time: payment.payment_time.unwrap_or(now),
        capture_required: None,
    };
    Ok(outcome(
        ledger.record_payment(actor, input).await?,
        "payment notification",
    ))
}

async fn capture_payment(
    ledger: &Ledger,
    actor: &str,
    capture: CaptureNotification,
    now: OffsetDateTime,
) -> Result<Answer, AppError> {
    if capture.result.status != ResultStatus::S {
        return Ok(Answer::Acknowledge);
    }
    let input = CapturePaymentInput {
        payment_id: capture.payment_id,
        capture_id: capture.capture_id,
        capture_amount: capture.capture_amount,
        capture_time: capture.capture_time.unwrap_or(now),
    };
    Ok(outcome(
        ledger.capture_payment(actor, input).await?,
        "capture notification",
    ))
}

async fn dispute_changed(ledger: &Ledger, actor: &str, dispute: DisputeNotification) -> Result<Answer, AppError> {
    let resolution = match (&dispute.notification_type, &dispute.judged_result) {
        (DisputeNotificationType::Created, _) => {
            let Some(dispute_amount) = dispute.dispute_amount else {
                tracing::error!(dispute_id = %dispute.dispute_id, "DISPUTE_CREATED without disputeAmount");
                return Ok(Answer::Acknowledge);
            };
            let input = OpenChargebackInput {
                payment_id: dispute.payment_id,
                dispute_id: dispute.dispute_id,
                dispute_amount,
            };
            return Ok(outcome(
                ledger.open_chargeback(actor, input).await?,
                "dispute notification",
            ));
        }
        // Antom: ACCEPT_BY_CUSTOMER = the customer bears the dispute, the merchant keeps the money;
        // ACCEPT_BY_MERCHANT = the merchant bears it, the money goes back to the buyer.
        (DisputeNotificationType::Judged, Some(DisputeJudgedResult::AcceptByCustomer)) => {
            ChargebackResolution::MerchantWon
        }
        (DisputeNotificationType::Judged, Some(DisputeJudgedResult::AcceptByMerchant)) => {
            ChargebackResolution::CustomerWon
        }
        (DisputeNotificationType::Cancelled, _) => ChargebackResolution::Cancelled,
        // Defense alerts, document validations and the like change no balance.
        _ => return Ok(Answer::Acknowledge),
    };
    let input = ResolveChargebackInput {
        payment_id: dispute.payment_id,
        dispute_id: dispute.dispute_id,
        resolution,
    };
    Ok(outcome(
        ledger.resolve_chargeback(actor, input).await?,
        "dispute notification",
    ))
}
