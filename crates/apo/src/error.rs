//! The error types of `apo`, one per concern, so a caller can match on what
//! it can act on: a key that does not load is a configuration problem, a
//! signature that does not verify is untrusted input, a failed call is an
//! unknown refund outcome, a bad notification is refused so Antom resends it.
//!
//! No error carries key material or signature bytes: messages name the
//! field, header, file or environment variable instead.

use std::path::PathBuf;

use thiserror::Error;

/// A merchant private key or Antom public key that cannot be loaded.
///
/// Always a configuration problem: fix the key and restart; retrying with the
/// same input fails the same way.
#[derive(Debug, Error)]
pub enum KeyError {
    /// The key file could not be read (missing, unreadable, not UTF-8).
    #[error("reading key file {path}: {source}")]
    Io {
        /// The file that was read.
        path: PathBuf,
        /// The underlying IO error.
        source: std::io::Error,
    },
    /// The environment variable that should hold the key is not set.
    #[error("environment variable {var} is not set")]
    EnvMissing {
        /// The variable's name.
        var: String,
    },
    /// The environment variable holds bytes that are not UTF-8.
    #[error("environment variable {var} is not valid UTF-8")]
    EnvNotUnicode {
        /// The variable's name.
        var: String,
    },
    /// The key text is empty or only whitespace.
    #[error("key text is empty")]
    Empty,
    /// PEM armour is present but broken (no END line, text outside the armour).
    #[error("malformed PEM: {reason}")]
    Pem {
        /// What is wrong with the armour.
        reason: &'static str,
    },
    /// The PEM label names another kind of key (e.g. a public key given as the private key).
    #[error("PEM label {found:?} is not one of {expected:?}")]
    WrongPemLabel {
        /// The labels accepted here.
        expected: &'static [&'static str],
        /// The label found in the text.
        found: String,
    },
    /// The key body is not valid base64.
    #[error("key is not valid base64: {reason}")]
    Base64 {
        /// The decoder's description (positions only, never key bytes).
        reason: String,
    },
    /// The DER structure is not an X.509 SubjectPublicKeyInfo / RSAPublicKey.
    #[error("key DER is malformed: {reason}")]
    Der {
        /// Which part of the structure is wrong.
        reason: &'static str,
    },
    /// The public key is not an RSA key (the SubjectPublicKeyInfo names another algorithm).
    #[error("key is not an RSA key (algorithm OID is not rsaEncryption)")]
    NotRsa,
    /// The RSA modulus is outside the sizes Antom and the verifier use (2048 to 8192 bits).
    #[error("RSA modulus of {bits} bits is outside the supported 2048..=8192 bits")]
    UnsupportedKeySize {
        /// The modulus size found.
        bits: usize,
    },
    /// The crypto library refused the private key (not PKCS#8/PKCS#1 RSA, inconsistent, too small).
    #[error("private key rejected: {reason}")]
    Rejected {
        /// The library's reason, a fixed description without key material.
        reason: String,
    },
}

/// A signature that could not be made or does not verify.
///
/// When verifying, every variant means the same thing to the caller: the
/// message is untrusted and must not be acted on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    /// The RSA signing operation failed (should not happen with a loaded key); retry is pointless.
    #[error("RSA signing failed")]
    Signing,
    /// The `Signature` header has no `name=value` pair of this name.
    #[error("signature header has no {field} field")]
    MissingField {
        /// The missing field (`signature` or `algorithm`).
        field: &'static str,
    },
    /// The `Signature` header is not a comma separated list of `name=value` pairs.
    #[error("signature header is malformed: {reason}")]
    MalformedHeader {
        /// What is wrong.
        reason: &'static str,
    },
    /// The header names an algorithm other than `RSA256`.
    #[error("signature algorithm {algorithm:?} is not supported (expected RSA256)")]
    UnsupportedAlgorithm {
        /// The algorithm named in the header.
        algorithm: String,
    },
    /// The signature value is not percent-encoded base64.
    #[error("signature value is not percent-encoded base64")]
    Encoding,
    /// The signature is well formed but does not match the key and content: reject the message.
    #[error("signature does not verify")]
    Mismatch,
}

/// A field of Antom's JSON that is missing or does not convert into its
/// domain type. `field` is the JSON path as Antom names it
/// (`refundAmount.value`, `result.resultStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {reason}")]
pub struct MalformedField {
    /// JSON path of the field (`.` for the body as a whole).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl MalformedField {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn missing(field: &str) -> Self {
        Self::new(field, "is missing")
    }
}

impl From<domain::InputError> for MalformedField {
    fn from(error: domain::InputError) -> Self {
        let field = error.field().to_owned();
        let text = error.to_string();
        // InputError's text starts with "<field>: "; keep only the reason.
        let reason = text
            .strip_prefix(&format!("{field}: "))
            .map(str::to_owned)
            .unwrap_or(text);
        Self { field, reason }
    }
}

/// A refund or inquiry that could not be sent. Nothing reached Antom, so the
/// ledger may correct the input (or the configuration) and try again.
///
/// Anything that goes wrong *after* the request may have left is not an
/// error but an unknown outcome ([`crate::UnknownReason`]).
#[derive(Debug, Error)]
pub enum ClientError {
    /// A request field breaks Antom's limits (length, empty); fix the input.
    #[error("invalid request: {0}")]
    InvalidRequest(#[from] domain::InputError),
    /// The configuration is unusable (base URL, timeouts, HTTP client setup); fix it and restart.
    #[error("invalid client configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// The request could not be signed; the key is broken, fix the configuration.
    #[error("signing the request: {0}")]
    Signing(#[from] SignatureError),
    /// The request body could not be serialized (a bug: report it).
    #[error("serializing the request body: {reason}")]
    Encoding {
        /// The serializer's message.
        reason: String,
    },
}

/// A notification the merchant endpoint must refuse (answer non-200 so
/// Antom resends, and log the error). Nothing must be recorded from it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NotificationError {
    /// A required header (`Signature`, `Request-Time`, `Client-Id`) is absent or not text.
    #[error("notification has no usable {header} header")]
    MissingHeader {
        /// The header's name.
        header: &'static str,
    },
    /// The `Client-Id` header is not our client id: someone else's or forged.
    #[error("notification Client-Id {found:?} is not ours")]
    WrongClientId {
        /// The client id received.
        found: String,
    },
    /// The signature is malformed or does not verify with Antom's key.
    #[error("notification signature rejected: {0}")]
    BadSignature(#[from] SignatureError),
    /// `Request-Time` is neither epoch milliseconds nor ISO-8601.
    #[error("notification Request-Time {value:?} is neither epoch milliseconds nor ISO-8601")]
    BadRequestTime {
        /// The header as received.
        value: String,
    },
    /// `Request-Time` is further from now than the allowed clock skew (a replay or a broken clock).
    #[error("notification Request-Time {value:?} is {skew_ms} ms from now, more than the allowed {allowed_ms} ms")]
    StaleRequestTime {
        /// The header as received.
        value: String,
        /// Distance from now, in milliseconds (saturated).
        skew_ms: u64,
        /// The allowed distance.
        allowed_ms: u64,
    },
    /// The body is larger than [`crate::notification::NOTIFICATION_BODY_BYTES_MAX`].
    #[error("notification body of {bytes} bytes is larger than {max} bytes")]
    BodyTooLarge {
        /// Body size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The body is signed but a field is missing or malformed.
    #[error("notification body is malformed: {0}")]
    MalformedBody(#[from] MalformedField),
    /// The body is signed JSON but of a kind this adapter does not know (`notifyType`).
    #[error("notification type {notify_type:?} is not handled")]
    UnknownNotifyType {
        /// The `notifyType` received (empty when absent).
        notify_type: String,
    },
}
