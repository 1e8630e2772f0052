//! GraphQL inputs and their parsing into domain values. A bad value is a
//! `BAD_USER_INPUT` error naming the field as the client wrote it
//! (`input.refundAmount.value`); nothing reaches the ledger.

use async_graphql::{Enum, ID, InputObject};
use domain::{
    CaptureId, ChargebackResolution, Currency, DisputeId, Money, PaymentId, PaymentMethodType, RefundRequestId,
};
use time::OffsetDateTime;

use crate::error::ApiError;

/// An amount as Antom writes it: `value` in whole minor units.
#[derive(Debug, Clone, InputObject)]
pub struct AmountInput {
    /// ISO 4217 code, e.g. USD.
    pub currency: String,
    /// Whole minor units as digits: "1000" is 10.00 USD.
    pub value: String,
}

/// Records a payment the ledger should know.
#[derive(Debug, Clone, InputObject)]
pub struct RecordPaymentInput {
    /// Antom's payment id.
    pub payment_id: ID,
    /// The amount paid.
    pub payment_amount: AmountInput,
    /// Antom's payment method type (CARD, ALIPAY_CN, ...).
    pub payment_method_type: String,
    /// When the customer paid.
    pub payment_time: OffsetDateTime,
    /// Whether the payment is already captured. Omitted: the refund policy of the method decides
    /// whether it needs capture; `true`: no capture needed; `false`: must be captured first.
    pub captured: Option<bool>,
}

/// Records a capture.
#[derive(Debug, Clone, InputObject)]
pub struct CapturePaymentInput {
    /// The payment.
    pub payment_id: ID,
    /// Antom's capture id.
    pub capture_id: Option<ID>,
    /// The captured amount.
    pub capture_amount: AmountInput,
    /// When it was captured.
    pub capture_time: OffsetDateTime,
}

/// Opens a dispute.
#[derive(Debug, Clone, InputObject)]
pub struct ChargebackInput {
    /// The payment.
    pub payment_id: ID,
    /// Antom's dispute id.
    pub dispute_id: ID,
    /// The disputed amount.
    pub dispute_amount: AmountInput,
}

/// How a dispute ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ChargebackResolutionInput {
    /// The merchant won: the money stays refundable.
    MerchantWon,
    /// The customer won: the disputed amount is no longer refundable.
    CustomerWon,
    /// The dispute was withdrawn.
    Cancelled,
}

/// Resolves a dispute.
#[derive(Debug, Clone, InputObject)]
pub struct ResolveChargebackInput {
    /// The payment.
    pub payment_id: ID,
    /// Antom's dispute id.
    pub dispute_id: ID,
    /// The outcome.
    pub resolution: ChargebackResolutionInput,
}

/// Asks for a refund, as Antom's refund API does.
#[derive(Debug, Clone, InputObject)]
pub struct RefundInput {
    /// The merchant's idempotency key (at most 64 characters).
    pub refund_request_id: ID,
    /// Antom's payment id.
    pub payment_id: ID,
    /// The amount to refund.
    pub refund_amount: AmountInput,
    /// Why (at most 256 characters).
    pub refund_reason: Option<String>,
}

fn bad(error: &domain::InputError) -> ApiError {
    ApiError::from_input("input", error)
}

fn money(field: &str, amount: &AmountInput) -> Result<Money, ApiError> {
    Money::parse(field, &amount.currency, &amount.value).map_err(|error| bad(&error))
}

pub(crate) fn currency(field: &str, code: &str) -> Result<Currency, ApiError> {
    Currency::parse(field, code).map_err(|error| ApiError::from_input("", &error))
}

pub(crate) fn payment_id(field: &str, id: &str) -> Result<PaymentId, ApiError> {
    PaymentId::parse_field(field, id).map_err(|error| ApiError::from_input("", &error))
}

pub(crate) fn refund_request_id(field: &str, id: &str) -> Result<RefundRequestId, ApiError> {
    RefundRequestId::parse_field(field, id).map_err(|error| ApiError::from_input("", &error))
}

impl RecordPaymentInput {
    pub(crate) fn parse(&self) -> Result<app::RecordPaymentInput, ApiError> {
        Ok(app::RecordPaymentInput {
            payment_id: PaymentId::parse_field("paymentId", &self.payment_id).map_err(|e| bad(&e))?,
            payment_amount: money("paymentAmount", &self.payment_amount)?,
            payment_method_type: PaymentMethodType::parse(&self.payment_method_type).map_err(|e| bad(&e))?,
            payment_time: self.payment_time,
            capture_required: self.captured.map(|captured| !captured),
        })
    }
}

impl CapturePaymentInput {
    pub(crate) fn parse(&self) -> Result<app::CapturePaymentInput, ApiError> {
        Ok(app::CapturePaymentInput {
            payment_id: PaymentId::parse_field("paymentId", &self.payment_id).map_err(|e| bad(&e))?,
            capture_id: self
                .capture_id
                .as_ref()
                .map(|id| CaptureId::parse_field("captureId", id))
                .transpose()
                .map_err(|e| bad(&e))?,
            capture_amount: money("captureAmount", &self.capture_amount)?,
            capture_time: self.capture_time,
        })
    }
}

impl ChargebackInput {
    pub(crate) fn parse(&self) -> Result<app::OpenChargebackInput, ApiError> {
        Ok(app::OpenChargebackInput {
            payment_id: PaymentId::parse_field("paymentId", &self.payment_id).map_err(|e| bad(&e))?,
            dispute_id: DisputeId::parse_field("disputeId", &self.dispute_id).map_err(|e| bad(&e))?,
            dispute_amount: money("disputeAmount", &self.dispute_amount)?,
        })
    }
}

impl ResolveChargebackInput {
    pub(crate) fn parse(&self) -> Result<app::ResolveChargebackInput, ApiError> {
        Ok(app::ResolveChargebackInput {
            payment_id: PaymentId::parse_field("paymentId", &self.payment_id).map_err(|e| bad(&e))?,
            dispute_id: DisputeId::parse_field("disputeId", &self.dispute_id).map_err(|e| bad(&e))?,
            resolution: match self.resolution {
                ChargebackResolutionInput::MerchantWon => ChargebackResolution::MerchantWon,
                ChargebackResolutionInput::CustomerWon => ChargebackResolution::CustomerWon,
                ChargebackResolutionInput::Cancelled => ChargebackResolution::Cancelled,
            },
        })
    }
}

impl RefundInput {
    pub(crate) fn parse(&self) -> Result<app::RefundInput, ApiError> {
        if let Some(reason) = &self.refund_reason {
            let len = reason.chars().count();
            if len > domain::REFUND_REASON_LEN_MAX {
                return Err(bad(&domain::InputError::TooLong {
                    field: "refundReason".to_owned(),
                    len,
                    max: domain::REFUND_REASON_LEN_MAX,
                }));
            }
        }
        Ok(app::RefundInput {
            refund_request_id: RefundRequestId::parse_field("refundRequestId", &self.refund_request_id)
                .map_err(|e| bad(&e))?,
            payment_id: PaymentId::parse_field("paymentId", &self.payment_id).map_err(|e| bad(&e))?,
            refund_amount: money("refundAmount", &self.refund_amount)?,
            refund_reason: self.refund_reason.clone(),
        })
    }
}
