//! Finding and reading the Antom test vectors and keys (`testdata/antom`).

use std::path::PathBuf;

use apo::{PrivateKey, PublicKey};
use serde::Deserialize;

/// `testdata/antom` at the top of the repository: the test-only keys and the
/// vectors made with Antom's official SDK (`scripts/antom-vectors` makes them).
pub(crate) fn vectors_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/antom");
    assert!(
        dir.join("vectors.json").is_file(),
        "Antom test vectors not found at {}",
        dir.display()
    );
    dir
}

/// The text of a file in the vectors folder.
pub(crate) fn vector_file(name: &str) -> String {
    let path = vectors_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

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

/// The test-only key pairs of the vectors.
pub(crate) struct TestKeys {
    pub(crate) merchant_private: PrivateKey,
    pub(crate) merchant_public: PublicKey,
    pub(crate) antom_private: PrivateKey,
    pub(crate) antom_public: PublicKey,
}

pub(crate) fn keys() -> TestKeys {
    TestKeys {
        merchant_private: PrivateKey::from_pem_or_base64(&vector_file("merchant_private_pkcs8.pem"))
            .expect("merchant key"),
        merchant_public: PublicKey::from_pem_or_base64(&vector_file("merchant_public.pem")).expect("merchant public"),
        antom_private: PrivateKey::from_pem_or_base64(&vector_file("antom_private_pkcs8.pem")).expect("antom key"),
        antom_public: PublicKey::from_pem_or_base64(&vector_file("antom_public.pem")).expect("antom public"),
    }
}

impl TestKeys {
    /// The (signing, verifying) pair a case names in `signedWith`.
    pub(crate) fn for_case(&self, case: &Case) -> (&PrivateKey, &PublicKey) {
        match case.signed_with.as_str() {
            "merchant" => (&self.merchant_private, &self.merchant_public),
            "antom" => (&self.antom_private, &self.antom_public),
            other => panic!("case {}: unknown signedWith {other:?}", case.name),
        }
    }

    /// The other party's public key: must not verify the case.
    pub(crate) fn wrong_public_for_case(&self, case: &Case) -> &PublicKey {
        match case.signed_with.as_str() {
            "merchant" => &self.antom_public,
            _ => &self.merchant_public,
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

/// The sandbox client id of the vectors.
pub(crate) const CLIENT_ID: &str = "SANDBOX_5Y2J8K1Q0T00ABC";
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
