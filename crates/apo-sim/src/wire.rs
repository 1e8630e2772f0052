//! Antom's JSON, as the provider reads and writes it.
//!
//! Deliberately separate from the `apo` client's structs: the simulator is
//! the other side of the wire, so a field the adapter misspells shows up as a
//! `PARAM_ILLEGAL` in tests instead of matching itself. Required fields are
//! `Option` here so that a missing one is answered with a message naming it,
//! the way Antom does, rather than a generic parse error.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `Amount`: currency code and minor units as a string of digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmountJson {
    /// ISO 4217 code.
    pub currency: String,
    /// Minor units, ASCII digits.
    pub value: String,
}

impl From<domain::Money> for AmountJson {
    fn from(money: domain::Money) -> Self {
        Self {
            currency: money.currency().code().to_owned(),
            value: money.value_string(),
        }
    }
}

/// `result` of every answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultJson {
    /// e.g. `SUCCESS`, `REFUND_AMOUNT_EXCEED`.
    pub result_code: String,
    /// `S`, `F` or `U`.
    pub result_status: String,
    /// Human-readable explanation.
    pub result_message: String,
}

impl ResultJson {
    /// A result with the given code, status and message.
    pub fn new(code: &str, status: domain::ResultStatus, message: impl Into<String>) -> Self {
        Self {
            result_code: code.to_owned(),
            result_status: status.as_str().to_owned(),
            result_message: message.into(),
        }
    }
}

/// Body of `POST /ams/api/v1/payments/refund`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundRequestJson {
    /// Required, at most 64 characters.
    pub refund_request_id: Option<String>,
    /// Required, at most 64 characters.
    pub payment_id: Option<String>,
    /// Required.
    pub refund_amount: Option<AmountJson>,
    /// At most 256 characters.
    pub refund_reason: Option<String>,
    /// At most 64 characters.
    pub reference_refund_id: Option<String>,
    /// At most 1024 characters; overrides the configured notification URL.
    pub refund_notify_url: Option<String>,
    /// Optional capture to refund from.
    pub capture_id: Option<String>,
    /// Accepted and ignored.
    pub is_async_refund: Option<Value>,
    /// Accepted and ignored.
    pub extend_info: Option<Value>,
    /// Accepted and ignored.
    pub metadata: Option<Value>,
}

/// Answer of `refund`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundResponseJson {
    /// The outcome.
    pub result: ResultJson,
    /// Echoed on S and U.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_request_id: Option<String>,
    /// Antom's refund id, on S and U.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    /// Echoed on S and U.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// Echoed on S and U.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_amount: Option<AmountJson>,
    /// ISO-8601, on S.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_time: Option<String>,
}

/// Body of `POST /ams/api/v1/payments/inquiryRefund`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryRequestJson {
    /// The merchant's id of the refund.
    pub refund_request_id: Option<String>,
    /// Antom's id of the refund; wins over `refund_request_id`.
    pub refund_id: Option<String>,
    /// Accepted and ignored.
    pub merchant_account_id: Option<String>,
}

/// Answer of `inquiryRefund`. `result` says whether the inquiry worked, `refundStatus` where the refund is.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryResponseJson {
    /// Outcome of the inquiry itself.
    pub result: ResultJson,
    /// Present when found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    /// Present when found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_request_id: Option<String>,
    /// Present when found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_amount: Option<AmountJson>,
    /// `SUCCESS`, `PROCESSING` or `FAIL`, when found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_status: Option<String>,
    /// On SUCCESS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_time: Option<String>,
}

/// Body of notifyRefund, POSTed to the merchant.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyRefundJson {
    /// Always `REFUND_RESULT`.
    pub notify_type: String,
    /// S with SUCCESS, F with the failure code.
    pub result: ResultJson,
    /// `SUCCESS` or `FAIL`.
    pub refund_status: String,
    /// The merchant's id.
    pub refund_request_id: String,
    /// Antom's id.
    pub refund_id: String,
    /// The amount.
    pub refund_amount: AmountJson,
    /// When the refund became final.
    pub refund_time: String,
}

/// The merchant's acknowledgement of a notification; only `result.resultStatus` matters.
#[derive(Debug, Clone, Deserialize)]
pub struct NotifyAckJson {
    /// Must be `S` for the notification to count as delivered.
    pub result: NotifyAckResultJson,
}

/// `result` of an acknowledgement.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyAckResultJson {
    /// `S` acknowledges.
    pub result_status: String,
}

/// Formats a time as Antom does: ISO-8601 with a numeric offset (`2026-01-01T08:00:01+00:00`).
pub fn antom_time(time: time::OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
    );
    // Formatting a valid OffsetDateTime with a fixed description only fails on IO, and a String never fails.
    time.format(FORMAT)
        .unwrap_or_else(|_| time.unix_timestamp().to_string())
}
