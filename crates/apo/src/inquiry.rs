//! The inquiryRefund call: where does a refund stand?
//!
//! Two layers answer: `result` says whether the *inquiry* worked, and only
//! then does `refundStatus` say where the refund is. An F inquiry whose code
//! means "no such refund" is the one answer that lets the ledger resend the
//! refund (same refundRequestId); any other failure leaves it unknown.

use domain::{InputError, RefundId, RefundRequestId, ResultCode, ResultStatus};
use reqwest::header::HeaderMap;
use time::OffsetDateTime;

use crate::convert::{ApoResult, parse_id, parse_json, parse_optional_money, parse_result, parse_time, required};
use crate::error::MalformedField;
use crate::response::{ResponseCheck, UnknownReason, verify_response};
use crate::wire::{InquiryRefundRequestWire, InquiryRefundResponseWire};

/// Result codes of an F inquiry that mean Antom never registered the refund.
/// `ORDER_NOT_EXIST` is what Antom's refund docs name; `REFUND_NOT_EXIST` is
/// what the Alipay+ flavour of the same API returns.
pub const INQUIRY_NOT_FOUND_CODES: &[&str] = &["ORDER_NOT_EXIST", "REFUND_NOT_EXIST"];

/// Which refund to ask about: at least one id (Antom prefers `refundId`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InquiryRefundRequest {
    /// The merchant's idempotency key.
    pub refund_request_id: Option<RefundRequestId>,
    /// Antom's refund id.
    pub refund_id: Option<RefundId>,
    /// The merchant account, for merchants with several.
    pub merchant_account_id: Option<String>,
}

impl InquiryRefundRequest {
    /// Ask by the merchant's refundRequestId (works even when Antom never answered the refund).
    pub fn by_refund_request_id(refund_request_id: RefundRequestId) -> Self {
        Self {
            refund_request_id: Some(refund_request_id),
            refund_id: None,
            merchant_account_id: None,
        }
    }

    /// Ask by Antom's refundId.
    pub fn by_refund_id(refund_id: RefundId) -> Self {
        Self {
            refund_request_id: None,
            refund_id: Some(refund_id),
            merchant_account_id: None,
        }
    }

    /// The wire form; at least one id is required.
    pub fn to_wire(&self) -> Result<InquiryRefundRequestWire, InputError> {
        if self.refund_request_id.is_none() && self.refund_id.is_none() {
            return Err(InputError::Empty {
                field: "refundRequestId".to_owned(),
            });
        }
        Ok(InquiryRefundRequestWire {
            refund_request_id: self.refund_request_id.as_ref().map(|id| id.as_str().to_owned()),
            refund_id: self.refund_id.as_ref().map(|id| id.as_str().to_owned()),
            merchant_account_id: self.merchant_account_id.clone(),
        })
    }
}

/// Where a refund stands, according to a verified inquiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InquiryOutcome {
    /// The refund succeeded (`refundStatus` SUCCESS).
    Succeeded {
        /// Antom's id of the refund.
        refund_id: RefundId,
        /// When Antom refunded.
        refund_time: OffsetDateTime,
        /// The refunded amount, when Antom gives it.
        refund_amount: Option<domain::Money>,
        /// The amount in the settlement currency, when Antom gives it.
        gross_settlement_amount: Option<domain::Money>,
    },
    /// The refund failed for good (`refundStatus` FAIL): release the reservation.
    Failed {
        /// Antom's id of the refund, when it gives one.
        refund_id: Option<RefundId>,
    },
    /// Antom is still working on it (`refundStatus` PROCESSING): ask again later.
    Processing,
    /// Antom never saw this refund: it is safe to resend it with the same refundRequestId.
    NotFound {
        /// The code Antom gave (`ORDER_NOT_EXIST`, ...).
        code: ResultCode,
        /// Antom's message.
        message: String,
    },
    /// The inquiry gave no trustworthy answer: ask again later.
    Unknown {
        /// Why.
        reason: UnknownReason,
    },
}

impl InquiryOutcome {
    /// The reason, when the outcome is unknown.
    pub fn unknown_reason(&self) -> Option<&UnknownReason> {
        match self {
            Self::Unknown { reason } => Some(reason),
            Self::Succeeded { .. } | Self::Failed { .. } | Self::Processing | Self::NotFound { .. } => None,
        }
    }
}

impl From<UnknownReason> for InquiryOutcome {
    fn from(reason: UnknownReason) -> Self {
        Self::Unknown { reason }
    }
}

/// Interprets a raw inquiryRefund response for `request`. Pure: no IO, no clock.
pub fn interpret_inquiry_response(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    check: &ResponseCheck<'_>,
    request: &InquiryRefundRequest,
) -> InquiryOutcome {
    if let Err(reason) = verify_response(status, headers, body, check) {
        return reason.into();
    }
    match decide(body, request) {
        Ok(outcome) => outcome,
        Err(error) => UnknownReason::MalformedBody { error }.into(),
    }
}

fn decide(body: &[u8], request: &InquiryRefundRequest) -> Result<InquiryOutcome, MalformedField> {
    let wire: InquiryRefundResponseWire = parse_json(body)?;
    let ApoResult { code, status, message } = parse_result("result", &wire.result)?;
    match status {
        ResultStatus::S => {}
        ResultStatus::F if INQUIRY_NOT_FOUND_CODES.contains(&code.as_str()) => {
            return Ok(InquiryOutcome::NotFound { code, message });
        }
        ResultStatus::F => return Ok(UnknownReason::InquiryFailed { code, message }.into()),
        ResultStatus::U => return Ok(UnknownReason::ResultUnknown { code, message }.into()),
    }
    if let Some(field) = echo_mismatch(&wire, request) {
        return Ok(UnknownReason::Mismatch { field }.into());
    }
    let refund_status = required("refundStatus", wire.refund_status.as_deref())?;
    match refund_status {
        "SUCCESS" => succeeded(&wire),
        "FAIL" => Ok(InquiryOutcome::Failed {
            refund_id: wire
                .refund_id
                .as_deref()
                .map(|id| RefundId::parse_field("refundId", id))
                .transpose()
                .map_err(MalformedField::from)?,
        }),
        "PROCESSING" => Ok(InquiryOutcome::Processing),
        other => Err(MalformedField::new(
            "refundStatus",
            format!("{other:?} is not SUCCESS, PROCESSING or FAIL"),
        )),
    }
}

fn echo_mismatch(wire: &InquiryRefundResponseWire, request: &InquiryRefundRequest) -> Option<&'static str> {
    let differs = |echoed: Option<&str>, asked: Option<&str>| matches!((echoed, asked), (Some(echoed), Some(asked)) if echoed != asked);
    if differs(
        wire.refund_request_id.as_deref(),
        request.refund_request_id.as_ref().map(RefundRequestId::as_str),
    ) {
        return Some("refundRequestId");
    }
    if differs(
        wire.refund_id.as_deref(),
        request.refund_id.as_ref().map(RefundId::as_str),
    ) {
        return Some("refundId");
    }
    None
}

fn succeeded(wire: &InquiryRefundResponseWire) -> Result<InquiryOutcome, MalformedField> {
    Ok(InquiryOutcome::Succeeded {
        refund_id: parse_id("refundId", wire.refund_id.as_deref(), RefundId::parse_field)?,
        refund_time: parse_time("refundTime", required("refundTime", wire.refund_time.as_deref())?)?,
        refund_amount: parse_optional_money("refundAmount", wire.refund_amount.as_ref())?,
        gross_settlement_amount: parse_optional_money("grossSettlementAmount", wire.gross_settlement_amount.as_ref())?,
    })
}
