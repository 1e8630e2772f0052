//! Notifications Antom POSTs to the merchant: refund, payment and capture
//! results and disputes.
//!
//! Verification is a pure function of the request, Antom's key, the
//! allowed clock skew and the current time (passed in), so the HTTP route in
//! `server` stays a thin shell: call [`verify_notification`], record the
//! typed [`Notification`], answer [`NOTIFICATION_ACK_BODY`]. Nothing is
//! parsed before the signature has verified, and any error means "answer
//! non-200, record nothing": Antom then resends, and the inquiry worker is
//! the backstop if it never does.

use domain::{
    CaptureId, DisputeId, Money, PaymentId, PaymentMethodType, RefundId, RefundRequestId, ResultCode, ResultStatus,
};
use reqwest::header::HeaderMap;
use serde::Deserialize;
use time::OffsetDateTime;

pub use crate::wire::NOTIFICATION_ACK_BODY;

use crate::convert::{
    ApoResult, parse_id, parse_json, parse_money, parse_optional_id, parse_optional_money, parse_optional_time,
    parse_result, parse_time, required,
};
use crate::error::{MalformedField, NotificationError};
use crate::keys::PublicKey;
use crate::request_time::parse_request_time;
use crate::response::{HEADER_CLIENT_ID, HEADER_REQUEST_TIME, HEADER_SIGNATURE, header_text};
use crate::signature::verify;
use crate::wire::{NotifyCaptureWire, NotifyDisputeWire, NotifyPaymentWire, NotifyRefundWire};

/// Largest notification body accepted; Antom's are well under 4 KiB.
pub const NOTIFICATION_BODY_BYTES_MAX: usize = 64 * 1024;
/// Default allowed distance between `Request-Time` and now (5 minutes).
pub const CLOCK_SKEW_MS_DEFAULT: u64 = 5 * 60 * 1000;
/// `notifyType` of notifyRefund.
pub const NOTIFY_TYPE_REFUND: &str = "REFUND_RESULT";
/// `notifyType` of notifyPayment.
pub const NOTIFY_TYPE_PAYMENT: &str = "PAYMENT_RESULT";
/// `notifyType` of notifyCapture.
pub const NOTIFY_TYPE_CAPTURE: &str = "CAPTURE_RESULT";

/// The acknowledgement body as bytes (answer with HTTP 200, unsigned).
pub fn notification_ack_body() -> &'static [u8] {
    NOTIFICATION_ACK_BODY.as_bytes()
}

/// What a notification must be checked against.
#[derive(Debug, Clone, Copy)]
pub struct NotificationCheck<'a> {
    /// Antom's public key.
    pub antom_public_key: &'a PublicKey,
    /// Our client id: notifications for another client are refused.
    pub client_id: &'a str,
    /// Allowed distance between `Request-Time` and now, in milliseconds.
    pub clock_skew_max_ms: u64,
}

/// A verified notification in domain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// notifyRefund: a refund reached its final state.
    Refund(RefundNotification),
    /// notifyPayment: a payment's result.
    Payment(PaymentNotification),
    /// notifyCapture: a capture's result.
    Capture(CaptureNotification),
    /// notifyDispute: a chargeback event.
    Dispute(DisputeNotification),
}

/// notifyRefund (`REFUND_RESULT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundNotification {
    /// The merchant's idempotency key of the refund.
    pub refund_request_id: RefundRequestId,
    /// The final state.
    pub outcome: RefundNotificationOutcome,
    /// The refund's amount, when given.
    pub refund_amount: Option<Money>,
    /// The amount in the settlement currency, when given.
    pub gross_settlement_amount: Option<Money>,
    /// The notification's `result`.
    pub result: ApoResult,
}

/// The final state a notifyRefund reports (`refundStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundNotificationOutcome {
    /// `SUCCESS`.
    Succeeded {
        /// Antom's id of the refund.
        refund_id: RefundId,
        /// When Antom refunded.
        refund_time: OffsetDateTime,
    },
    /// `FAIL`.
    Failed {
        /// Antom's id of the refund, when given.
        refund_id: Option<RefundId>,
        /// The failure's result code.
        code: ResultCode,
        /// Antom's message.
        message: String,
    },
}

/// notifyPayment (`PAYMENT_RESULT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentNotification {
    /// The merchant's id of the payment request.
    pub payment_request_id: String,
    /// Antom's id of the payment.
    pub payment_id: PaymentId,
    /// The payment's amount.
    pub payment_amount: Money,
    /// When it was paid, when given.
    pub payment_time: Option<OffsetDateTime>,
    /// The payment method, when Antom includes it (not every notification does).
    pub payment_method_type: Option<PaymentMethodType>,
    /// The payment's result: S paid, F failed.
    pub result: ApoResult,
}

/// notifyCapture (`CAPTURE_RESULT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureNotification {
    /// The merchant's id of the capture request.
    pub capture_request_id: String,
    /// Antom's id of the payment.
    pub payment_id: PaymentId,
    /// Antom's id of the capture, when given.
    pub capture_id: Option<CaptureId>,
    /// The captured amount.
    pub capture_amount: Money,
    /// When it was captured, when given.
    pub capture_time: Option<OffsetDateTime>,
    /// The capture's result: S captured, F failed.
    pub result: ApoResult,
}

/// notifyDispute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeNotification {
    /// Antom's id of the dispute.
    pub dispute_id: DisputeId,
    /// Antom's id of the disputed payment.
    pub payment_id: PaymentId,
    /// What happened.
    pub notification_type: DisputeNotificationType,
    /// Who bears the liability, on `DISPUTE_JUDGED`.
    pub judged_result: Option<DisputeJudgedResult>,
    /// The disputed amount, when given.
    pub dispute_amount: Option<Money>,
    /// When the dispute was created, when given.
    pub dispute_time: Option<OffsetDateTime>,
}

/// `disputeNotificationType`; an open set, unknown values kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisputeNotificationType {
    /// `DISPUTE_CREATED`: a chargeback was opened; refunds are blocked.
    Created,
    /// `DISPUTE_JUDGED`: liability decided, see the judged result.
    Judged,
    /// `DISPUTE_CANCELLED`: the customer withdrew the dispute.
    Cancelled,
    /// Any other value (`DEFENSE_SUPPLIED`, `DEFENSE_DUE_ALERT`, ...).
    Other(String),
}

impl DisputeNotificationType {
    /// Reads the wire value.
    pub fn parse(value: &str) -> Self {
        match value {
            "DISPUTE_CREATED" => Self::Created,
            "DISPUTE_JUDGED" => Self::Judged,
            "DISPUTE_CANCELLED" => Self::Cancelled,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// `disputeJudgedResult`; an open set, unknown values kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisputeJudgedResult {
    /// `ACCEPT_BY_CUSTOMER`: the customer bears the liability.
    AcceptByCustomer,
    /// `ACCEPT_BY_MERCHANT`: the merchant bears it.
    AcceptByMerchant,
    /// Any other value.
    Other(String),
}

impl DisputeJudgedResult {
    /// Reads the wire value.
    pub fn parse(value: &str) -> Self {
        match value {
            "ACCEPT_BY_CUSTOMER" => Self::AcceptByCustomer,
            "ACCEPT_BY_MERCHANT" => Self::AcceptByMerchant,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// Verifies and parses a notification. `path` is the path the request was
/// sent to (the merchant endpoint's path as Antom sees it); `now` is the
/// current time.
pub fn verify_notification(
    check: &NotificationCheck<'_>,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<Notification, NotificationError> {
    if body.len() > NOTIFICATION_BODY_BYTES_MAX {
        return Err(NotificationError::BodyTooLarge {
            bytes: body.len(),
            max: NOTIFICATION_BODY_BYTES_MAX,
        });
    }
    let header =
        |name: &'static str| header_text(headers, name).ok_or(NotificationError::MissingHeader { header: name });
    let signature = header(HEADER_SIGNATURE)?;
    let client_id = header(HEADER_CLIENT_ID)?;
    let request_time = header(HEADER_REQUEST_TIME)?;
    if client_id != check.client_id {
        return Err(NotificationError::WrongClientId {
            found: client_id.to_owned(),
        });
    }
    check_fresh(request_time, check.clock_skew_max_ms, now)?;
    verify(
        check.antom_public_key,
        method,
        path,
        client_id,
        request_time,
        body,
        signature,
    )?;
    parse_notification(body)
}

fn check_fresh(request_time: &str, clock_skew_max_ms: u64, now: OffsetDateTime) -> Result<(), NotificationError> {
    let sent = parse_request_time(request_time).ok_or_else(|| NotificationError::BadRequestTime {
        value: request_time.to_owned(),
    })?;
    let skew_ms = (now - sent).whole_milliseconds().unsigned_abs();
    if skew_ms > u128::from(clock_skew_max_ms) {
        return Err(NotificationError::StaleRequestTime {
            value: request_time.to_owned(),
            skew_ms: u64::try_from(skew_ms).unwrap_or(u64::MAX),
            allowed_ms: clock_skew_max_ms,
        });
    }
    Ok(())
}

/// The two fields that tell the notifications apart.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotificationKindWire {
    #[serde(default)]
    notify_type: Option<String>,
    #[serde(default)]
    dispute_notification_type: Option<String>,
}

/// Parses a verified body into its typed notification.
fn parse_notification(body: &[u8]) -> Result<Notification, NotificationError> {
    let kind: NotificationKindWire = parse_json(body)?;
    let notification = match (kind.notify_type.as_deref(), kind.dispute_notification_type.is_some()) {
        (Some(NOTIFY_TYPE_REFUND), _) => Notification::Refund(refund(&parse_json(body)?)?),
        (Some(NOTIFY_TYPE_PAYMENT), _) => Notification::Payment(payment(&parse_json(body)?)?),
        (Some(NOTIFY_TYPE_CAPTURE), _) => Notification::Capture(capture(&parse_json(body)?)?),
        (None, true) => Notification::Dispute(dispute(&parse_json(body)?)?),
        (other, _) => {
            return Err(NotificationError::UnknownNotifyType {
                notify_type: other.unwrap_or_default().to_owned(),
            });
        }
    };
    Ok(notification)
}

fn refund(wire: &NotifyRefundWire) -> Result<RefundNotification, MalformedField> {
    let result = parse_result("result", &wire.result)?;
    let refund_request_id = parse_id(
        "refundRequestId",
        wire.refund_request_id.as_deref(),
        RefundRequestId::parse_field,
    )?;
    let outcome = match required("refundStatus", wire.refund_status.as_deref())? {
        "SUCCESS" if result.status == ResultStatus::F => {
            return Err(MalformedField::new(
                "refundStatus",
                "SUCCESS contradicts result.resultStatus F",
            ));
        }
        "SUCCESS" => RefundNotificationOutcome::Succeeded {
            refund_id: parse_id("refundId", wire.refund_id.as_deref(), RefundId::parse_field)?,
            refund_time: parse_time("refundTime", required("refundTime", wire.refund_time.as_deref())?)?,
        },
        "FAIL" => RefundNotificationOutcome::Failed {
            refund_id: parse_optional_id("refundId", wire.refund_id.as_deref(), RefundId::parse_field)?,
            code: result.code.clone(),
            message: result.message.clone(),
        },
        other => {
            return Err(MalformedField::new(
                "refundStatus",
                format!("{other:?} is not SUCCESS or FAIL"),
            ));
        }
    };
    Ok(RefundNotification {
        refund_request_id,
        outcome,
        refund_amount: parse_optional_money("refundAmount", wire.refund_amount.as_ref())?,
        gross_settlement_amount: parse_optional_money("grossSettlementAmount", wire.gross_settlement_amount.as_ref())?,
        result,
    })
}

fn payment(wire: &NotifyPaymentWire) -> Result<PaymentNotification, MalformedField> {
    Ok(PaymentNotification {
        payment_request_id: non_empty("paymentRequestId", wire.payment_request_id.as_deref())?,
        payment_id: parse_id("paymentId", wire.payment_id.as_deref(), PaymentId::parse_field)?,
        payment_amount: parse_money(
            "paymentAmount",
            required("paymentAmount", wire.payment_amount.as_ref())?,
        )?,
        payment_time: parse_optional_time("paymentTime", wire.payment_time.as_deref())?,
        payment_method_type: parse_optional_id(
            "paymentMethodType",
            wire.payment_method_type.as_deref(),
            PaymentMethodType::parse_field,
        )?,
        result: parse_result("result", &wire.result)?,
    })
}

fn capture(wire: &NotifyCaptureWire) -> Result<CaptureNotification, MalformedField> {
    Ok(CaptureNotification {
        capture_request_id: non_empty("captureRequestId", wire.capture_request_id.as_deref())?,
        payment_id: parse_id("paymentId", wire.payment_id.as_deref(), PaymentId::parse_field)?,
        capture_id: parse_optional_id("captureId", wire.capture_id.as_deref(), CaptureId::parse_field)?,
        capture_amount: parse_money(
            "captureAmount",
            required("captureAmount", wire.capture_amount.as_ref())?,
        )?,
        capture_time: parse_optional_time("captureTime", wire.capture_time.as_deref())?,
        result: parse_result("result", &wire.result)?,
    })
}

fn dispute(wire: &NotifyDisputeWire) -> Result<DisputeNotification, MalformedField> {
    Ok(DisputeNotification {
        dispute_id: parse_id("disputeId", wire.dispute_id.as_deref(), DisputeId::parse_field)?,
        payment_id: parse_id("paymentId", wire.payment_id.as_deref(), PaymentId::parse_field)?,
        notification_type: DisputeNotificationType::parse(&wire.dispute_notification_type),
        judged_result: wire.dispute_judged_result.as_deref().map(DisputeJudgedResult::parse),
        dispute_amount: parse_optional_money("disputeAmount", wire.dispute_amount.as_ref())?,
        dispute_time: parse_optional_time("disputeTime", wire.dispute_time.as_deref())?,
    })
}

fn non_empty(field: &str, value: Option<&str>) -> Result<String, MalformedField> {
    match value {
        Some(value) if !value.is_empty() => Ok(value.to_owned()),
        Some(_) => Err(MalformedField::new(field, "is empty")),
        None => Err(MalformedField::missing(field)),
    }
}
