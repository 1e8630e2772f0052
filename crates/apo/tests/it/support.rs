//! Finding and reading the Antom test vectors and keys (`testdata/antom`).

use apo::{PrivateKey, PublicKey};
use serde::Deserialize;
pub(crate) use testkit::antom::{CLIENT_ID, Keys, keys, vector_file, vectors_dir};

/// One signing case of vectors.json.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) signed_with: String,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) client_id: String,
    pub(crate) time: String,
    pub(crate) body: String,
    pub(crate) content_to_sign_sha256: String,
    pub(crate) signature_header: String,
}

#[derive(Debug, Deserialize)]
struct Vectors {
    cases: Vec<Case>,
}

/// All cases, checked to be the five the protocol notes describe.
pub(crate) fn cases() -> Vec<Case> {
    let vectors: Vectors = serde_json::from_str(&vector_file("vectors.json")).expect("vectors.json parses");
    assert_eq!(vectors.cases.len(), 5, "vectors.json changed: review the tests");
    vectors.cases
}

impl Case {
    /// The (signing, verifying) pair the case names in `signedWith`.
    pub(crate) fn key_pair<'k>(&self, keys: &'k Keys) -> (&'k PrivateKey, &'k PublicKey) {
        match self.signed_with.as_str() {
            "merchant" => (&keys.merchant_private, &keys.merchant_public),
            "antom" => (&keys.antom_private, &keys.antom_public),
            other => panic!("case {}: unknown signedWith {other:?}", self.name),
        }
    }

    /// The other party's public key: must not verify the case.
    pub(crate) fn wrong_public<'k>(&self, keys: &'k Keys) -> &'k PublicKey {
        match self.signed_with.as_str() {
            "merchant" => &keys.antom_public,
            _ => &keys.merchant_public,
        }
    }
}

/// Lower-case hex of SHA-256.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The path the vectors' refund response was signed over.
pub(crate) const REFUND_PATH: &str = "/ams/api/v1/payments/refund";
/// The path of the inquiry used in tests.
pub(crate) const INQUIRY_PATH: &str = "/ams/api/v1/payments/inquiryRefund";
/// A Response-Time in the vectors' style.
pub(crate) const RESPONSE_TIME: &str = "2026-01-01T08:00:01+08:00";

/// Headers of a response Antom signed over `path` and `body`.
pub(crate) fn antom_signed_headers(path: &str, body: &[u8]) -> reqwest::header::HeaderMap {
    let keys = keys();
    let signature = apo::sign(&keys.antom_private, "POST", path, CLIENT_ID, RESPONSE_TIME, body).expect("signs");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("signature", signature.parse().expect("header"));
    headers.insert("response-time", RESPONSE_TIME.parse().expect("header"));
    headers.insert("client-id", CLIENT_ID.parse().expect("header"));
    headers
}

/// Looks a case up by name.
pub(crate) fn case(name: &str) -> Case {
    cases()
        .into_iter()
        .find(|case| case.name == name)
        .unwrap_or_else(|| panic!("no vector case {name}"))
}
