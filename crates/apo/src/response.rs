//! Trusting a response from Antom. A response only counts when it is a 2xx,
//! carries a `Signature` and `Response-Time`, and verifies with Antom's
//! public key over the exact bytes received; everything else is an unknown
//! outcome for the ledger to settle by inquiry, never a success or failure.

use std::fmt;

use domain::ResultCode;
use reqwest::header::HeaderMap;

use crate::convert::parse_json;
use crate::error::{MalformedField, SignatureError};
use crate::keys::PublicKey;
use crate::signature::verify;
use crate::wire::ResultWire;

/// Header carrying the signature, on requests, responses and notifications.
pub const HEADER_SIGNATURE: &str = "Signature";
/// Header carrying the client id.
pub const HEADER_CLIENT_ID: &str = "Client-Id";
/// Header carrying the signed time of a request or notification.
pub const HEADER_REQUEST_TIME: &str = "Request-Time";
/// Header carrying the signed time of a response.
pub const HEADER_RESPONSE_TIME: &str = "Response-Time";

/// Why the outcome of a call is unknown. The refund may or may not have
/// happened: keep it pending and settle it with the same refundRequestId
/// (resend or inquire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnknownReason {
    /// No complete response within the request timeout.
    Timeout,
    /// The connection could not be made or broke (refused, reset, DNS, TLS).
    Connection {
        /// The transport's description.
        message: String,
    },
    /// Another transport failure while sending or receiving.
    Transport {
        /// The transport's description.
        message: String,
    },
    /// A non-2xx HTTP status (5xx and 429 are transient).
    HttpStatus {
        /// The status code.
        status: u16,
    },
    /// The response body was longer than the adapter reads.
    BodyTooLarge {
        /// The limit in bytes.
        max: usize,
    },
    /// The response has no `Signature` (Antom does this on some
    /// authentication failures); its content is untrusted.
    Unsigned {
        /// The `resultCode` the unsigned body claims, for operators only.
        untrusted_result_code: Option<String>,
    },
    /// A signed response lacks a header needed to verify it.
    MissingHeader {
        /// The header's name.
        header: &'static str,
    },
    /// The response's `Client-Id` is not ours.
    WrongClientId {
        /// The client id received.
        found: String,
    },
    /// The signature is malformed or does not verify.
    BadSignature {
        /// Why it was rejected.
        error: SignatureError,
    },
    /// A verified body that does not parse or lacks a required field.
    MalformedBody {
        /// The field at fault.
        error: MalformedField,
    },
    /// A verified body about another refund than the one asked for.
    Mismatch {
        /// The field that differs (`refundRequestId`, `refundAmount`, ...).
        field: &'static str,
    },
    /// Antom answered `resultStatus` U (processing, `UNKNOWN_EXCEPTION`, rate limited).
    ResultUnknown {
        /// The code Antom gave.
        code: ResultCode,
        /// Antom's message.
        message: String,
    },
    /// The inquiry itself failed (F other than "not found"); the refund's state is unknown.
    InquiryFailed {
        /// The code Antom gave.
        code: ResultCode,
        /// Antom's message.
        message: String,
    },
}

impl UnknownReason {
    /// Whether asking again soon (same refundRequestId) may give an answer:
    /// timeouts, transport errors, 5xx, 429 and Antom's U.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout | Self::Connection { .. } | Self::Transport { .. } | Self::ResultUnknown { .. } => true,
            Self::HttpStatus { status } => *status >= 500 || *status == 429,
            Self::BodyTooLarge { .. }
            | Self::Unsigned { .. }
            | Self::MissingHeader { .. }
            | Self::WrongClientId { .. }
            | Self::BadSignature { .. }
            | Self::MalformedBody { .. }
            | Self::Mismatch { .. }
            | Self::InquiryFailed { .. } => false,
        }
    }

    /// Maps a transport failure of `reqwest` into a reason.
    pub fn from_transport(error: &reqwest::Error) -> Self {
        if error.is_timeout() {
            Self::Timeout
        } else if error.is_connect() {
            Self::Connection {
                message: error.to_string(),
            }
        } else {
            Self::Transport {
                message: error.to_string(),
            }
        }
    }
}

impl fmt::Display for UnknownReason {
    /// A short lowercase description for the ledger's `RefundProcessing` reason and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => write!(f, "timed out waiting for antom"),
            Self::Connection { message } => write!(f, "connection to antom failed: {message}"),
            Self::Transport { message } => write!(f, "transport error: {message}"),
            Self::HttpStatus { status } => write!(f, "antom answered http {status}"),
            Self::BodyTooLarge { max } => write!(f, "antom's answer is larger than {max} bytes"),
            Self::Unsigned {
                untrusted_result_code: Some(code),
            } => write!(f, "unsigned answer (claims {code})"),
            Self::Unsigned {
                untrusted_result_code: None,
            } => write!(f, "unsigned answer"),
            Self::MissingHeader { header } => write!(f, "answer has no {header} header"),
            Self::WrongClientId { found } => write!(f, "answer is for client id {found:?}"),
            Self::BadSignature { error } => write!(f, "answer signature rejected: {error}"),
            Self::MalformedBody { error } => write!(f, "answer body malformed: {error}"),
            Self::Mismatch { field } => write!(f, "answer is about another refund ({field} differs)"),
            Self::ResultUnknown { code, message } => write!(f, "antom answered U {code}: {message}"),
            Self::InquiryFailed { code, message } => write!(f, "inquiry failed F {code}: {message}"),
        }
    }
}

/// What a response must be checked against: Antom's key, our client id and
/// the request it answers (method and the path that was called and signed).
#[derive(Debug, Clone, Copy)]
pub struct ResponseCheck<'a> {
    /// Antom's public key.
    pub antom_public_key: &'a PublicKey,
    /// Our client id (the one the request carried).
    pub client_id: &'a str,
    /// The request's method, `POST`.
    pub method: &'a str,
    /// The request's path as called (sandbox rule applied).
    pub request_path: &'a str,
}

/// Checks status, headers and signature of a raw response. `Ok` means the
/// body is Antom's, byte for byte.
pub fn verify_response(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    check: &ResponseCheck<'_>,
) -> Result<(), UnknownReason> {
    if !(200..300).contains(&status) {
        return Err(UnknownReason::HttpStatus { status });
    }
    let Some(signature) = header_text(headers, HEADER_SIGNATURE) else {
        return Err(UnknownReason::Unsigned {
            untrusted_result_code: untrusted_result_code(body),
        });
    };
    let response_time = header_text(headers, HEADER_RESPONSE_TIME).ok_or(UnknownReason::MissingHeader {
        header: HEADER_RESPONSE_TIME,
    })?;
    match header_text(headers, HEADER_CLIENT_ID) {
        Some(found) if found != check.client_id => {
            return Err(UnknownReason::WrongClientId {
                found: found.to_owned(),
            });
        }
        _ => {}
    }
    verify(
        check.antom_public_key,
        check.method,
        check.request_path,
        check.client_id,
        response_time,
        body,
        signature,
    )
    .map_err(|error| UnknownReason::BadSignature { error })
}

/// A header's value as text; absent, empty or non-ASCII counts as absent.
pub(crate) fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

fn untrusted_result_code(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct WithResult {
        result: ResultWire,
    }
    parse_json::<WithResult>(body)
        .ok()
        .map(|parsed| parsed.result.result_code)
}
