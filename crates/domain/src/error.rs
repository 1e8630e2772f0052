//! The one error type of `domain`: input that does not parse into a domain value.
//!
//! Every variant names the field it is about (`refundAmount.value`,
//! `paymentId`, ...) so an edge (GraphQL, the Antom adapter) can show it to the
//! caller unchanged. Refusals of *valid* input by the refund rules are not
//! errors: they are [`crate::Rejection`]s carrying an Antom result code.

use thiserror::Error;

/// Input that cannot become a domain value. Nothing was changed.
///
/// Callers answer the client with the message (it names the field) and do not
/// retry: the same input fails the same way.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InputError {
    /// A required value is empty or missing.
    #[error("{field}: must not be empty")]
    Empty { field: String },
    /// The currency code is not an ISO 4217 code.
    #[error("{field}: unknown currency code {code:?} (expected an ISO 4217 code such as USD)")]
    UnknownCurrency { field: String, code: String },
    /// The currency exists but has no minor unit (e.g. XAU), so it cannot hold money here.
    #[error("{field}: currency {code} has no minor unit and cannot be used for payments")]
    CurrencyWithoutMinorUnit { field: String, code: String },
    /// A minor-unit amount starts with a minus sign.
    #[error("{field}: must not be negative, got {value:?}")]
    Negative { field: String, value: String },
    /// A minor-unit amount has a decimal point: Antom amounts are whole minor units.
    #[error("{field}: must be a whole number of minor units without a decimal point, got {value:?}")]
    Fractional { field: String, value: String },
    /// A minor-unit amount holds something other than ASCII digits.
    #[error("{field}: must contain only the digits 0-9, got {value:?}")]
    NotDigits { field: String, value: String },
    /// A minor-unit amount has more digits than Antom accepts.
    #[error("{field}: has {digits} digits, at most {max} are allowed")]
    TooManyDigits { field: String, digits: usize, max: usize },
    /// A decimal amount has more fraction digits than the currency's exponent allows.
    #[error("{field}: {currency} has {exponent} decimal places, got {value}")]
    TooPrecise {
        field: String,
        currency: String,
        exponent: u32,
        value: String,
    },
    /// The amount is out of the representable range.
    #[error("{field}: amount {value} is out of range")]
    OutOfRange { field: String, value: String },
    /// Antom's own rule for the currency (e.g. IDR in multiples of 100) is broken.
    #[error("{field}: {currency} amounts must be multiples of {multiple} minor units, got {value}")]
    NotMultiple {
        field: String,
        currency: String,
        multiple: u64,
        value: u64,
    },
    /// An identifier is longer than allowed.
    #[error("{field}: is {len} characters long, at most {max} are allowed")]
    TooLong { field: String, len: usize, max: usize },
    /// An identifier holds a character outside printable ASCII (space excluded).
    #[error("{field}: character {position} ({found:?}) is not printable ASCII")]
    InvalidCharacter {
        field: String,
        position: usize,
        found: char,
    },
    /// Two amounts that must share a currency do not.
    #[error("{field}: currency {found} does not match {expected}")]
    CurrencyMismatch {
        field: String,
        expected: String,
        found: String,
    },
    /// A value is outside what the field accepts (free-form reason in `reason`).
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl InputError {
    /// The field this error is about, as the client named it.
    pub fn field(&self) -> &str {
        match self {
            Self::Empty { field }
            | Self::UnknownCurrency { field, .. }
            | Self::CurrencyWithoutMinorUnit { field, .. }
            | Self::Negative { field, .. }
            | Self::Fractional { field, .. }
            | Self::NotDigits { field, .. }
            | Self::TooManyDigits { field, .. }
            | Self::TooPrecise { field, .. }
            | Self::OutOfRange { field, .. }
            | Self::NotMultiple { field, .. }
            | Self::TooLong { field, .. }
            | Self::InvalidCharacter { field, .. }
            | Self::CurrencyMismatch { field, .. }
            | Self::Invalid { field, .. } => field,
        }
    }
}
