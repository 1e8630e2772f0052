//! What the client tells an observer (the server's metrics) about each attempt of a call to Antom: which API,
//! how it ended (a closed set of classes) and how long it took. No id, amount or key ever reaches it.

use std::fmt;
use std::time::Duration;

use crate::response::UnknownReason;

/// Antom's API an attempt called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// `refund`.
    Refund,
    /// `inquiryRefund`.
    InquiryRefund,
}

impl Api {
    /// The label value: `refund` or `inquiryRefund`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refund => "refund",
            Self::InquiryRefund => "inquiryRefund",
        }
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallClass {
    /// A verified S (for an inquiry: a verified answer saying the refund succeeded).
    S,
    /// A verified F (for an inquiry: the refund failed, or Antom does not know it).
    F,
    /// A verified U, an inquiry saying processing, or an answer that is not usable (non-2xx, malformed,
    /// about another refund).
    U,
    /// No complete answer within the request timeout.
    Timeout,
    /// The connection could not be made or broke, or the body was too large.
    Transport,
    /// The answer was unsigned, or its signature, signed headers or client id did not verify.
    BadSignature,
}

impl CallClass {
    /// The label value: `S`, `F`, `U`, `timeout`, `transport`, `bad_signature`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::S => "S",
            Self::F => "F",
            Self::U => "U",
            Self::Timeout => "timeout",
            Self::Transport => "transport",
            Self::BadSignature => "bad_signature",
        }
    }

    /// The class of an attempt whose outcome is unknown for `reason`.
    pub fn of_unknown(reason: &UnknownReason) -> Self {
        match reason {
            UnknownReason::Timeout => Self::Timeout,
            UnknownReason::Connection { .. } | UnknownReason::Transport { .. } | UnknownReason::BodyTooLarge { .. } => {
                Self::Transport
            }
            UnknownReason::Unsigned { .. }
            | UnknownReason::MissingHeader { .. }
            | UnknownReason::WrongClientId { .. }
            | UnknownReason::BadSignature { .. } => Self::BadSignature,
            UnknownReason::HttpStatus { .. }
            | UnknownReason::MalformedBody { .. }
            | UnknownReason::Mismatch { .. }
            | UnknownReason::ResultUnknown { .. }
            | UnknownReason::InquiryFailed { .. } => Self::U,
        }
    }
}

/// Receives one report per attempt (a call retried twice reports three attempts). Must be cheap and must not
/// block: it runs on the call's task.
pub trait CallObserver: Send + Sync + fmt::Debug {
    /// An attempt of `api` ended as `class` after `elapsed` (signing excluded, reading the body included).
    fn antom_call(&self, api: Api, class: CallClass, elapsed: Duration);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_reasons_map_to_their_class() {
        assert_eq!(CallClass::of_unknown(&UnknownReason::Timeout), CallClass::Timeout);
        assert_eq!(
            CallClass::of_unknown(&UnknownReason::Connection {
                message: "refused".to_owned()
            }),
            CallClass::Transport
        );
        assert_eq!(
            CallClass::of_unknown(&UnknownReason::Unsigned {
                untrusted_result_code: None
            }),
            CallClass::BadSignature
        );
        assert_eq!(
            CallClass::of_unknown(&UnknownReason::BadSignature {
                error: crate::SignatureError::Mismatch
            }),
            CallClass::BadSignature
        );
        assert_eq!(
            CallClass::of_unknown(&UnknownReason::HttpStatus { status: 503 }),
            CallClass::U
        );
        assert_eq!(Api::InquiryRefund.as_str(), "inquiryRefund");
        assert_eq!(CallClass::BadSignature.as_str(), "bad_signature");
    }
}
