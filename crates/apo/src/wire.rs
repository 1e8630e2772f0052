//! Antom's JSON, field for field, and nothing else.
//!
//! These structs mirror the wire exactly (camelCase names, strings where
//! Antom sends strings) so that parsing never fails on a value we would
//! merely reject later: every field Antom may omit is an `Option`, unknown
//! fields are ignored (Antom adds fields over time), and the conversion into
//! domain types, which names the offending field, happens in
//! [`crate::refund`], [`crate::inquiry`] and [`crate::notification`].
//! Nothing outside `apo` should need these types; they are public so the
//! simulator and tests can speak the same JSON.

use serde::{Deserialize, Serialize};

/// An amount: `{"currency":"USD","value":"1000"}`, value in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmountWire {
    /// ISO 4217 alphabetic code.
    pub currency: String,
    /// Whole minor units as a string of digits.
    pub value: String,
}

/// The `result` object of every response and notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultWire {
    /// E.g. `SUCCESS`, `REFUND_AMOUNT_EXCEED`.
    pub result_code: String,
    /// `S`, `F` or `U`.
    pub result_status: String,
    /// Free text for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_message: Option<String>,
}

/// Body of `POST /ams/api/v1/payments/refund`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundRequestWire {
    /// The merchant's idempotency key (at most 64 characters).
    pub refund_request_id: String,
    /// Antom's id of the payment to refund.
    pub payment_id: String,
    /// The amount to refund.
    pub refund_amount: AmountWire,
    /// Why (at most 256 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_reason: Option<String>,
    /// The merchant's own refund reference (at most 64 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_refund_id: Option<String>,
    /// Where Antom sends notifyRefund (at most 1024 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_notify_url: Option<String>,
    /// The capture to refund, for payments captured more than once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_id: Option<String>,
    /// Ask Antom to process the refund asynchronously.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_async_refund: Option<bool>,
    /// Extra information as a JSON string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Merchant metadata as a JSON string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
}

/// Antom's settlement FX quote, passed through as Antom writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettlementQuoteWire {
    /// Whether the rate is guaranteed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guaranteed: Option<bool>,
    /// Antom's quote id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_id: Option<String>,
    /// E.g. `USD/SGD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_currency_pair: Option<String>,
    /// The rate; Antom documents a decimal, sent as a number or a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_price: Option<serde_json::Value>,
    /// ISO-8601 start of validity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_start_time: Option<String>,
    /// ISO-8601 end of validity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_expiry_time: Option<String>,
}

/// Response of the refund API. Only `result` is always present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundResponseWire {
    /// Outcome of the refund: S succeeded, F failed, U unknown.
    pub result: ResultWire,
    /// Echo of the request's idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_request_id: Option<String>,
    /// Antom's id of the refund (on S).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    /// Echo of the payment id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The refunded amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_amount: Option<AmountWire>,
    /// ISO-8601 time of the refund (on S).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_time: Option<String>,
    /// The amount in the settlement currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gross_settlement_amount: Option<AmountWire>,
    /// The FX quote used for settlement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement_quote: Option<SettlementQuoteWire>,
    /// The amount actually returned to the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_refund_amount: Option<AmountWire>,
    /// The acquirer's reference of the refund.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquirer_reference_no: Option<String>,
}

/// Body of `POST /ams/api/v1/payments/inquiryRefund`: at least one id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryRefundRequestWire {
    /// The merchant's idempotency key of the refund.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_request_id: Option<String>,
    /// Antom's refund id; wins over `refundRequestId` when both are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    /// The merchant account, for merchants with several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_account_id: Option<String>,
}

/// Response of inquiryRefund. `result` says whether the *inquiry* worked;
/// `refundStatus` says where the refund stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryRefundResponseWire {
    /// Outcome of the inquiry call itself.
    pub result: ResultWire,
    /// Antom's id of the refund.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    /// The merchant's idempotency key of the refund.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_request_id: Option<String>,
    /// The refund's amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_amount: Option<AmountWire>,
    /// `SUCCESS`, `PROCESSING` or `FAIL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_status: Option<String>,
    /// ISO-8601 time of the refund (on SUCCESS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_time: Option<String>,
    /// The amount in the settlement currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gross_settlement_amount: Option<AmountWire>,
}

/// Body of notifyRefund (`notifyType` `REFUND_RESULT`), sent when a refund is final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyRefundWire {
    /// `REFUND_RESULT`.
    pub notify_type: String,
    /// Result of the refund.
    pub result: ResultWire,
    /// `SUCCESS` or `FAIL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_status: Option<String>,
    /// The merchant's idempotency key of the refund.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_request_id: Option<String>,
    /// Antom's id of the refund.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    /// The refund's amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_amount: Option<AmountWire>,
    /// ISO-8601 time of the refund.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_time: Option<String>,
    /// The amount in the settlement currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gross_settlement_amount: Option<AmountWire>,
}

/// Body of notifyPayment (`notifyType` `PAYMENT_RESULT`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyPaymentWire {
    /// `PAYMENT_RESULT`.
    pub notify_type: String,
    /// Result of the payment.
    pub result: ResultWire,
    /// The merchant's id of the payment request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_request_id: Option<String>,
    /// Antom's id of the payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The paid amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_amount: Option<AmountWire>,
    /// ISO-8601 time of the payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_time: Option<String>,
    /// The payment method (`CARD`, `ALIPAY_CN`, ...), when Antom includes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method_type: Option<String>,
}

/// Body of notifyCapture (`notifyType` `CAPTURE_RESULT`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyCaptureWire {
    /// `CAPTURE_RESULT`.
    pub notify_type: String,
    /// Result of the capture.
    pub result: ResultWire,
    /// The merchant's id of the capture request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_request_id: Option<String>,
    /// Antom's id of the payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// Antom's id of the capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_id: Option<String>,
    /// The captured amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_amount: Option<AmountWire>,
    /// ISO-8601 time of the capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_time: Option<String>,
}

/// Body of notifyDispute. It has no `notifyType`; `disputeNotificationType` says what happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyDisputeWire {
    /// `DISPUTE_CREATED`, `DISPUTE_JUDGED`, `DISPUTE_CANCELLED`, ...
    pub dispute_notification_type: String,
    /// Antom's id of the dispute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispute_id: Option<String>,
    /// Antom's id of the disputed payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The merchant's id of the disputed payment request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_request_id: Option<String>,
    /// The disputed amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispute_amount: Option<AmountWire>,
    /// `ACCEPT_BY_CUSTOMER`, `ACCEPT_BY_MERCHANT`, ... (on `DISPUTE_JUDGED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispute_judged_result: Option<String>,
    /// ISO-8601 time the dispute was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispute_time: Option<String>,
}

/// The exact body the merchant answers a notification with (HTTP 200,
/// unsigned); Antom resends until it gets it.
pub const NOTIFICATION_ACK_BODY: &str =
    r#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#;
