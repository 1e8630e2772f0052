//! Antom's result codes and statuses, as the ledger uses them.
//!
//! Codes grow over time on Antom's side, so the set is open:
//! [`ResultCode::Other`] keeps any code we have not named. Decisions key on
//! [`ResultStatus`], never on a closed list of codes.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `result.resultStatus`: S succeeded, F failed for good, U unknown/processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResultStatus {
    /// The operation succeeded.
    S,
    /// The operation failed for good.
    F,
    /// The outcome is not known yet (processing, or an error that may have been applied).
    U,
}

impl ResultStatus {
    /// The one-letter wire form.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::S => "S",
            Self::F => "F",
            Self::U => "U",
        }
    }
}

macro_rules! result_codes {
    ($($(#[$doc:meta])* $variant:ident = $code:literal,)*) => {
        /// An Antom result code (`result.resultCode`).
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum ResultCode {
            $($(#[$doc])* $variant,)*
            /// A code this version does not name; kept verbatim.
            Other(String),
        }

        impl ResultCode {
            /// The code as Antom writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $code,)*
                    Self::Other(code) => code,
                }
            }

            /// Reads a code; unknown codes become [`ResultCode::Other`].
            pub fn parse(code: &str) -> Self {
                match code {
                    $($code => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }
    };
}

result_codes! {
    /// The call succeeded (S).
    Success = "SUCCESS",
    /// Refund currency differs from the payment's.
    CurrencyNotSupport = "CURRENCY_NOT_SUPPORT",
    /// Amount below the minimum refund or above the refundable amount.
    RefundAmountExceed = "REFUND_AMOUNT_EXCEED",
    /// Payment not captured, or under a chargeback with undetermined liability.
    OrderStatusInvalid = "ORDER_STATUS_INVALID",
    /// Outside the payment method's refund window.
    RefundWindowExceed = "REFUND_WINDOW_EXCEED",
    /// The same request id was sent before with different content.
    RepeatReqInconsistent = "REPEAT_REQ_INCONSISTENT",
    /// Unknown payment (or refund).
    OrderNotExist = "ORDER_NOT_EXIST",
    /// The payment was cancelled.
    OrderIsCanceled = "ORDER_IS_CANCELED",
    /// The payment method allows one refund only.
    MultipleRefundsNotSupported = "MULTIPLE_REFUNDS_NOT_SUPPORTED",
    /// The payment method allows full refunds only.
    PartialRefundNotSupported = "PARTIAL_REFUND_NOT_SUPPORTED",
    /// The payment method cannot be refunded.
    RefundNotSupported = "REFUND_NOT_SUPPORTED",
    /// The merchant's balance cannot cover the refund.
    MerchantBalanceNotEnough = "MERCHANT_BALANCE_NOT_ENOUGH",
    /// A parameter is malformed.
    ParamIllegal = "PARAM_ILLEGAL",
    /// The caller may not do this.
    AccessDenied = "ACCESS_DENIED",
    /// The request signature did not verify.
    InvalidSignature = "INVALID_SIGNATURE",
    /// The client id is unknown.
    InvalidClient = "INVALID_CLIENT",
    /// No key for the client.
    KeyNotFound = "KEY_NOT_FOUND",
    /// Antom failed to process the request.
    ProcessFail = "PROCESS_FAIL",
    /// An unknown error on Antom's side (U).
    UnknownException = "UNKNOWN_EXCEPTION",
    /// Rate limited (U).
    RequestTrafficExceedLimit = "REQUEST_TRAFFIC_EXCEED_LIMIT",
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ResultCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ResultCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = crate::text::deserialize_text(deserializer)?;
        Ok(Self::parse(&code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_kept() {
        for code in ["SUCCESS", "REFUND_AMOUNT_EXCEED", "REQUEST_TRAFFIC_EXCEED_LIMIT"] {
            assert_eq!(ResultCode::parse(code).as_str(), code);
            assert!(!matches!(ResultCode::parse(code), ResultCode::Other(_)));
        }
        assert_eq!(
            ResultCode::parse("NEW_CODE_2027"),
            ResultCode::Other("NEW_CODE_2027".into())
        );
        assert_eq!(
            serde_json::to_string(&ResultCode::OrderNotExist).unwrap(),
            "\"ORDER_NOT_EXIST\""
        );
    }
}
