//! The refund call: building the request body from domain values and
//! turning Antom's answer into a [`RefundOutcome`].
//!
//! The interpretation is a pure function of status, headers and body so
//! every path (and every way Antom or the network can fail) is tested
//! without a network. The rule it encodes: only a *verified* answer decides;
//! S is success, F is failure, anything else is unknown and settled later
//! with the same refundRequestId.

use domain::{CaptureId, InputError, Money, PaymentId, RefundId, RefundRequestId, ResultCode, ResultStatus};
use reqwest::header::HeaderMap;
use time::OffsetDateTime;

use crate::convert::{parse_id, parse_json, parse_optional_money, parse_result, parse_time, required};
use crate::error::MalformedField;
use crate::response::{ResponseCheck, UnknownReason, verify_response};
use crate::wire::{AmountWire, RefundRequestWire, RefundResponseWire};

/// Longest `refundReason` Antom accepts, in characters.
pub const REFUND_REASON_CHARS_MAX: usize = 256;
/// Longest `referenceRefundId`, in characters.
pub const REFERENCE_REFUND_ID_CHARS_MAX: usize = 64;
/// Longest `refundNotifyUrl`, in characters.
pub const REFUND_NOTIFY_URL_CHARS_MAX: usize = 1024;

/// A refund to send to Antom, in domain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// The idempotency key: resending with the same id and content is safe.
    pub refund_request_id: RefundRequestId,
    /// The payment to refund.
    pub payment_id: PaymentId,
    /// How much to refund, in the payment's currency.
    pub refund_amount: Money,
    /// Why (at most [`REFUND_REASON_CHARS_MAX`] characters).
    pub refund_reason: Option<String>,
    /// The merchant's own reference (at most [`REFERENCE_REFUND_ID_CHARS_MAX`] characters).
    pub reference_refund_id: Option<String>,
    /// Where Antom should send notifyRefund (at most [`REFUND_NOTIFY_URL_CHARS_MAX`] characters).
    pub refund_notify_url: Option<String>,
    /// The capture to refund, when a payment was captured in parts.
    pub capture_id: Option<CaptureId>,
    /// Ask Antom to answer U at once and settle asynchronously.
    pub is_async_refund: Option<bool>,
    /// Extra information, a JSON string passed through.
    pub extend_info: Option<String>,
    /// Merchant metadata, a JSON string passed through.
    pub metadata: Option<String>,
}

impl RefundRequest {
    /// A refund with only the required fields set.
    pub fn new(refund_request_id: RefundRequestId, payment_id: PaymentId, refund_amount: Money) -> Self {
        Self {
            refund_request_id,
            payment_id,
            refund_amount,
            refund_reason: None,
            reference_refund_id: None,
            refund_notify_url: None,
            capture_id: None,
            is_async_refund: None,
            extend_info: None,
            metadata: None,
        }
    }

    /// The wire form, after checking Antom's length limits on the free-text fields.
    pub fn to_wire(&self) -> Result<RefundRequestWire, InputError> {
        check_length("refundReason", self.refund_reason.as_deref(), REFUND_REASON_CHARS_MAX)?;
        check_length(
            "referenceRefundId",
            self.reference_refund_id.as_deref(),
            REFERENCE_REFUND_ID_CHARS_MAX,
        )?;
        check_length(
            "refundNotifyUrl",
            self.refund_notify_url.as_deref(),
            REFUND_NOTIFY_URL_CHARS_MAX,
        )?;
        Ok(RefundRequestWire {
            refund_request_id: self.refund_request_id.as_str().to_owned(),
            payment_id: self.payment_id.as_str().to_owned(),
            refund_amount: amount_wire(&self.refund_amount),
            refund_reason: self.refund_reason.clone(),
            reference_refund_id: self.reference_refund_id.clone(),
            refund_notify_url: self.refund_notify_url.clone(),
            capture_id: self.capture_id.as_ref().map(|id| id.as_str().to_owned()),
            is_async_refund: self.is_async_refund,
            extend_info: self.extend_info.clone(),
            metadata: self.metadata.clone(),
        })
    }
}

pub(crate) fn amount_wire(money: &Money) -> AmountWire {
    AmountWire {
        currency: money.currency().code().to_owned(),
        value: money.value_string(),
    }
}

fn check_length(field: &str, value: Option<&str>, max: usize) -> Result<(), InputError> {
    let Some(value) = value else { return Ok(()) };
    let len = value.chars().count();
    if len > max {
        return Err(InputError::TooLong {
            field: field.to_owned(),
            len,
            max,
        });
    }
    Ok(())
}

/// What the refund call tells the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// Antom confirmed the refund (verified `resultStatus` S).
    Succeeded {
        /// Antom's id of the refund.
        refund_id: RefundId,
        /// When Antom refunded.
        refund_time: OffsetDateTime,
        /// The refunded amount (as echoed, checked equal to the request).
        refund_amount: Money,
        /// The amount in the settlement currency, when Antom gives it.
        gross_settlement_amount: Option<Money>,
        /// The amount returned to the customer, when Antom gives it.
        actual_refund_amount: Option<Money>,
        /// The acquirer's reference, when Antom gives it.
        acquirer_reference_no: Option<String>,
    },
    /// Antom refused the refund for good (verified `resultStatus` F): release the reservation.
    Failed {
        /// Why; the ledger records it.
        code: ResultCode,
        /// Antom's message.
        message: String,
    },
    /// Nobody knows yet: keep the refund pending, resend or inquire with the same refundRequestId.
    Unknown {
        /// Why the outcome is unknown.
        reason: UnknownReason,
    },
}

impl RefundOutcome {
    /// The reason, when the outcome is unknown.
    pub fn unknown_reason(&self) -> Option<&UnknownReason> {
        match self {
            Self::Unknown { reason } => Some(reason),
            Self::Succeeded { .. } | Self::Failed { .. } => None,
        }
    }
}

impl From<UnknownReason> for RefundOutcome {
    fn from(reason: UnknownReason) -> Self {
        Self::Unknown { reason }
    }
}

/// Interprets a raw refund response for `request`. Pure: no IO, no clock.
pub fn interpret_refund_response(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    check: &ResponseCheck<'_>,
    request: &RefundRequest,
) -> RefundOutcome {
    if let Err(reason) = verify_response(status, headers, body, check) {
        return reason.into();
    }
    match decide(body, request) {
        Ok(outcome) => outcome,
        Err(error) => UnknownReason::MalformedBody { error }.into(),
    }
}

fn decide(body: &[u8], request: &RefundRequest) -> Result<RefundOutcome, MalformedField> {
    let wire: RefundResponseWire = parse_json(body)?;
    let result = parse_result("result", &wire.result)?;
    if let Some(field) = echo_mismatch(&wire, request)? {
        return Ok(UnknownReason::Mismatch { field }.into());
    }
    match result.status {
        ResultStatus::S => succeeded(&wire, request),
        ResultStatus::F => Ok(RefundOutcome::Failed {
            code: result.code,
            message: result.message,
        }),
        ResultStatus::U => Ok(UnknownReason::ResultUnknown {
            code: result.code,
            message: result.message,
        }
        .into()),
    }
}

/// The first echoed field that differs from the request, if any.
fn echo_mismatch(wire: &RefundResponseWire, request: &RefundRequest) -> Result<Option<&'static str>, MalformedField> {
    if wire
        .refund_request_id
        .as_deref()
        .is_some_and(|id| id != request.refund_request_id.as_str())
    {
        return Ok(Some("refundRequestId"));
    }
    if wire
        .payment_id
        .as_deref()
        .is_some_and(|id| id != request.payment_id.as_str())
    {
        return Ok(Some("paymentId"));
    }
    let echoed_amount = parse_optional_money("refundAmount", wire.refund_amount.as_ref())?;
    if echoed_amount.is_some_and(|amount| amount != request.refund_amount) {
        return Ok(Some("refundAmount"));
    }
    Ok(None)
}

fn succeeded(wire: &RefundResponseWire, request: &RefundRequest) -> Result<RefundOutcome, MalformedField> {
    let refund_id = parse_id("refundId", wire.refund_id.as_deref(), RefundId::parse_field)?;
    let refund_time = parse_time("refundTime", required("refundTime", wire.refund_time.as_deref())?)?;
    Ok(RefundOutcome::Succeeded {
        refund_id,
        refund_time,
        refund_amount: request.refund_amount,
        gross_settlement_amount: parse_optional_money("grossSettlementAmount", wire.gross_settlement_amount.as_ref())?,
        actual_refund_amount: parse_optional_money("actualRefundAmount", wire.actual_refund_amount.as_ref())?,
        acquirer_reference_no: wire.acquirer_reference_no.clone(),
    })
}
