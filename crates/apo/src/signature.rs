//! Antom's message signature, the same in both directions: requests we send
//! are signed with the merchant key, responses and notifications Antom sends
//! are verified with Antom's public key.
//!
//! The signed content is `<METHOD> <path>\n<clientId>.<time>.<body>` over
//! the exact body bytes; the signature is RSA PKCS#1 v1.5 with SHA-256,
//! base64, then form-URL-encoded into the `Signature` header. Everything
//! here is pure (no clock, no IO) so the test vectors made with Antom's own
//! SDK can be replayed byte for byte.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, UnparsedPublicKey};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::error::SignatureError;
use crate::keys::{PrivateKey, PublicKey};

/// The `algorithm` value of the `Signature` header: RSA PKCS#1 v1.5 with SHA-256.
pub const SIGNATURE_ALGORITHM: &str = "RSA256";
/// The `keyVersion` we send; Antom issues version 1 keys.
pub const KEY_VERSION: &str = "1";
/// Client ids with this prefix belong to Antom's sandbox.
pub const SANDBOX_CLIENT_ID_PREFIX: &str = "SANDBOX_";
/// Path prefix of Antom's live API.
pub const LIVE_API_PATH_PREFIX: &str = "/ams/api/";
/// Path prefix of Antom's sandbox API (used, and signed, by sandbox client ids).
pub const SANDBOX_API_PATH_PREFIX: &str = "/ams/sandbox/api/";

/// `application/x-www-form-urlencoded` escaping as Java's `URLEncoder` and
/// Python's `quote_plus` do it: everything but `A-Za-z0-9-_.*` is escaped.
/// Of base64's alphabet that is `+`, `/` and `=`.
const FORM_URL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'*');

/// Base64 of a received signature: padding optional, since we did not make it.
const SIGNATURE_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The bytes Antom signs: `<METHOD> <path>\n<clientId>.<time>.<body>`.
///
/// `path` has no host; `time` is the `Request-Time` (or `Response-Time`)
/// header verbatim; `body` the exact bytes on the wire.
pub fn content_to_sign(method: &str, path: &str, client_id: &str, time: &str, body: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(method.len() + path.len() + client_id.len() + time.len() + body.len() + 4);
    content.extend_from_slice(method.as_bytes());
    content.push(b' ');
    content.extend_from_slice(path.as_bytes());
    content.push(b'\n');
    content.extend_from_slice(client_id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(time.as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

/// Signs a request and returns the whole `Signature` header value:
/// `algorithm=RSA256,keyVersion=1,signature=<form-url-encoded base64>`.
pub fn sign(
    key: &PrivateKey,
    method: &str,
    path: &str,
    client_id: &str,
    time: &str,
    body: &[u8],
) -> Result<String, SignatureError> {
    let content = content_to_sign(method, path, client_id, time, body);
    let key_pair = key.key_pair();
    let mut signature = vec![0u8; key_pair.public_modulus_len()];
    key_pair
        .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), &content, &mut signature)
        .map_err(|_| SignatureError::Signing)?;
    let encoded = STANDARD.encode(&signature);
    Ok(format!(
        "algorithm={SIGNATURE_ALGORITHM},keyVersion={KEY_VERSION},signature={}",
        utf8_percent_encode(&encoded, FORM_URL_ENCODE)
    ))
}

/// Verifies a `Signature` header value against the content it should sign.
///
/// Percent-escapes are decoded case-insensitively (`%2b` and `%2B`); a
/// literal `+` is kept as `+` (base64 has no spaces, so it cannot mean one).
/// Any error means: do not trust the message.
pub fn verify(
    key: &PublicKey,
    method: &str,
    path: &str,
    client_id: &str,
    time: &str,
    body: &[u8],
    signature_header: &str,
) -> Result<(), SignatureError> {
    let signature = parse_signature_header(signature_header)?;
    let content = content_to_sign(method, path, client_id, time, body);
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.rsa_public_key_der())
        .verify(&content, &signature)
        .map_err(|_| SignatureError::Mismatch)
}

/// The path to call and sign: for a sandbox client id (`SANDBOX_...`),
/// `/ams/api/...` becomes `/ams/sandbox/api/...`; any other path or client
/// id is returned unchanged.
pub fn signed_path(client_id: &str, api_path: &str) -> String {
    match api_path.strip_prefix(LIVE_API_PATH_PREFIX) {
        Some(rest) if client_id.starts_with(SANDBOX_CLIENT_ID_PREFIX) => format!("{SANDBOX_API_PATH_PREFIX}{rest}"),
        _ => api_path.to_owned(),
    }
}

/// Reads `algorithm=..,keyVersion=..,signature=..` and returns the raw
/// signature bytes. Unknown fields are ignored; `keyVersion` is not checked
/// because we hold one Antom key per client id.
fn parse_signature_header(header: &str) -> Result<Vec<u8>, SignatureError> {
    let mut algorithm = None;
    let mut signature = None;
    for pair in header.split(',') {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (name, value) = pair.split_once('=').ok_or(SignatureError::MalformedHeader {
            reason: "a field has no '='",
        })?;
        match name.trim() {
            "algorithm" => algorithm = Some(value.trim()),
            "signature" => signature = Some(value.trim()),
            _ => {}
        }
    }
    let algorithm = algorithm.ok_or(SignatureError::MissingField { field: "algorithm" })?;
    if !algorithm.eq_ignore_ascii_case(SIGNATURE_ALGORITHM) {
        return Err(SignatureError::UnsupportedAlgorithm {
            algorithm: algorithm.to_owned(),
        });
    }
    let signature = signature.ok_or(SignatureError::MissingField { field: "signature" })?;
    if signature.is_empty() {
        return Err(SignatureError::MissingField { field: "signature" });
    }
    let base64: Vec<u8> = percent_decode_str(signature).collect();
    SIGNATURE_BASE64.decode(base64).map_err(|_| SignatureError::Encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_layout_is_method_path_newline_client_time_body() {
        assert_eq!(
            content_to_sign("POST", "/p", "C", "1", b"{}"),
            b"POST /p\nC.1.{}".to_vec()
        );
        assert_eq!(content_to_sign("POST", "/p", "C", "1", b""), b"POST /p\nC.1.".to_vec());
    }

    #[test]
    fn sandbox_rule_rewrites_only_live_paths_of_sandbox_clients() {
        let refund = "/ams/api/v1/payments/refund";
        assert_eq!(
            signed_path("SANDBOX_5Y2J", refund),
            "/ams/sandbox/api/v1/payments/refund"
        );
        assert_eq!(signed_path("5Y2J", refund), refund);
        assert_eq!(signed_path("sandbox_5Y2J", refund), refund);
        assert_eq!(
            signed_path("SANDBOX_5Y2J", "/ams/sandbox/api/v1/payments/refund"),
            "/ams/sandbox/api/v1/payments/refund"
        );
        assert_eq!(signed_path("SANDBOX_5Y2J", "/apo/notify/refund"), "/apo/notify/refund");
    }

    #[test]
    fn header_parsing() {
        assert_eq!(
            parse_signature_header("algorithm=RSA256,keyVersion=1,signature=QUJD").unwrap(),
            b"ABC"
        );
        assert_eq!(
            parse_signature_header(" signature=QUI%3d , algorithm=RSA256 ").unwrap(),
            b"AB"
        );
        assert_eq!(
            parse_signature_header("algorithm=RSA256,signature=QUI"),
            Ok(b"AB".to_vec()),
            "missing padding is tolerated"
        );
        assert_eq!(
            parse_signature_header("algorithm=RSA256,keyVersion=1"),
            Err(SignatureError::MissingField { field: "signature" })
        );
        assert_eq!(
            parse_signature_header("algorithm=RSA256,signature="),
            Err(SignatureError::MissingField { field: "signature" })
        );
        assert_eq!(
            parse_signature_header("keyVersion=1,signature=QUJD"),
            Err(SignatureError::MissingField { field: "algorithm" })
        );
        assert_eq!(
            parse_signature_header("algorithm=RSA512,signature=QUJD"),
            Err(SignatureError::UnsupportedAlgorithm {
                algorithm: "RSA512".into()
            })
        );
        assert_eq!(
            parse_signature_header("algorithm=RSA256,signature=%%%"),
            Err(SignatureError::Encoding)
        );
        assert!(matches!(
            parse_signature_header("garbage"),
            Err(SignatureError::MalformedHeader { .. })
        ));
        assert_eq!(
            parse_signature_header(""),
            Err(SignatureError::MissingField { field: "algorithm" })
        );
    }

    #[test]
    fn form_encoding_escapes_base64_specials_only() {
        assert_eq!(
            utf8_percent_encode("aZ09+/=", FORM_URL_ENCODE).to_string(),
            "aZ09%2B%2F%3D"
        );
    }
}
