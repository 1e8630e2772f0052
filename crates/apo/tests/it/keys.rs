//! Loading keys from PEM, bare base64, files and environment variables.

use std::io::Write as _;
use std::process::Command;

use apo::signature::{sign, verify};
use apo::{KeyError, PrivateKey, PublicKey};

use crate::support::{cases, keys, vector_file, vectors_dir};

/// The PEM body without armour or line breaks: Antom's own key format.
fn bare_base64(pem: &str) -> String {
    pem.lines().filter(|line| !line.starts_with("-----")).collect()
}

/// Signs vector 0 with `private` and checks it reproduces the vector, then
/// verifies with `public`: proves both keys are the vector keys.
fn assert_merchant_pair(private: &PrivateKey, public: &PublicKey) {
    let case = &cases()[0];
    assert_eq!(case.signed_with, "merchant");
    let header = sign(
        private,
        &case.method,
        &case.path,
        &case.client_id,
        &case.time,
        case.body.as_bytes(),
    )
    .expect("signs");
    assert_eq!(header, case.signature_header);
    assert_eq!(
        verify(
            public,
            &case.method,
            &case.path,
            &case.client_id,
            &case.time,
            case.body.as_bytes(),
            &header
        ),
        Ok(())
    );
}

#[test]
fn keys_load_from_pem() {
    let keys = keys();
    assert_merchant_pair(&keys.merchant_private, &keys.merchant_public);
    assert_eq!(keys.merchant_private.modulus_bits(), 2048);
    assert_eq!(keys.antom_public.modulus_bits(), 2048);
}

#[test]
fn keys_load_from_bare_base64_single_line_and_wrapped() {
    let private_pem = vector_file("merchant_private_pkcs8.pem");
    let public_pem = vector_file("merchant_public.pem");
    let private = PrivateKey::from_pem_or_base64(&bare_base64(&private_pem)).expect("bare private");
    let public = PublicKey::from_pem_or_base64(&bare_base64(&public_pem)).expect("bare public");
    assert_merchant_pair(&private, &public);
    let wrapped_private: String = private_pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .map(|line| format!("  {line}\r\n"))
        .collect();
    let private = PrivateKey::from_pem_or_base64(&wrapped_private).expect("wrapped private");
    assert_merchant_pair(&private, &public);
    let escaped_newlines = public_pem.replace('\n', "\\n");
    let public = PublicKey::from_pem_or_base64(&escaped_newlines).expect("PEM with literal \\n");
    assert_merchant_pair(&private, &public);
}

#[test]
fn keys_load_from_files() {
    let mut private_file = tempfile::NamedTempFile::new().expect("temp file");
    private_file
        .write_all(vector_file("merchant_private_pkcs8.pem").as_bytes())
        .expect("write");
    let mut public_file = tempfile::NamedTempFile::new().expect("temp file");
    public_file
        .write_all(bare_base64(&vector_file("merchant_public.pem")).as_bytes())
        .expect("write");
    let private = PrivateKey::from_file(private_file.path()).expect("private from file");
    let public = PublicKey::from_file(public_file.path()).expect("public from file");
    assert_merchant_pair(&private, &public);
    // The vector files themselves.
    let public = PublicKey::from_file(&vectors_dir().join("merchant_public.pem")).expect("vector file");
    assert_merchant_pair(&private, &public);

    let missing = vectors_dir().join("no-such-key.pem");
    match PrivateKey::from_file(&missing) {
        Err(KeyError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected Io error, got {other:?}"),
    }
    assert!(matches!(PublicKey::from_file(&missing), Err(KeyError::Io { .. })));
}

const ENV_PRIVATE: &str = "APO_IT_MERCHANT_PRIVATE_KEY";
const ENV_PUBLIC: &str = "APO_IT_MERCHANT_PUBLIC_KEY";
const ENV_CHILD_MARKER: &str = "APO_IT_ENV_CHILD";

/// Setting variables in-process needs `unsafe` (forbidden here), so the test
/// runs itself again as a child process with the keys in its environment.
#[test]
fn keys_load_from_env() {
    if std::env::var_os(ENV_CHILD_MARKER).is_some() {
        let private = PrivateKey::from_env(ENV_PRIVATE).expect("private from env");
        let public = PublicKey::from_env(ENV_PUBLIC).expect("public from env");
        assert_merchant_pair(&private, &public);
        return;
    }
    assert!(matches!(
        PrivateKey::from_env("APO_IT_SURELY_UNSET_VARIABLE"),
        Err(KeyError::EnvMissing { var }) if var == "APO_IT_SURELY_UNSET_VARIABLE"
    ));
    assert!(matches!(
        PublicKey::from_env("APO_IT_SURELY_UNSET_VARIABLE"),
        Err(KeyError::EnvMissing { .. })
    ));
    let output = Command::new(std::env::current_exe().expect("test binary path"))
        .args(["keys::keys_load_from_env", "--exact", "--test-threads=1"])
        .env(ENV_CHILD_MARKER, "1")
        .env(ENV_PRIVATE, vector_file("merchant_private_pkcs8.pem"))
        .env(ENV_PUBLIC, bare_base64(&vector_file("merchant_public.pem")))
        .output()
        .expect("runs the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("1 passed"), "child ran no test: {stdout}");
}

#[test]
fn wrong_kinds_of_key_are_typed_errors() {
    let private_pem = vector_file("merchant_private_pkcs8.pem");
    let public_pem = vector_file("merchant_public.pem");
    assert!(matches!(
        PrivateKey::from_pem_or_base64(&public_pem),
        Err(KeyError::WrongPemLabel { .. })
    ));
    assert!(matches!(
        PublicKey::from_pem_or_base64(&private_pem),
        Err(KeyError::WrongPemLabel { .. })
    ));
    assert!(matches!(
        PrivateKey::from_pem_or_base64(&bare_base64(&public_pem)),
        Err(KeyError::Rejected { .. })
    ));
    assert!(matches!(
        PublicKey::from_pem_or_base64(&bare_base64(&private_pem)),
        Err(KeyError::Der { .. })
    ));
    assert!(matches!(PrivateKey::from_pem_or_base64("  \n"), Err(KeyError::Empty)));
    assert!(matches!(PublicKey::from_pem_or_base64(""), Err(KeyError::Empty)));
    assert!(matches!(
        PublicKey::from_pem_or_base64("not base64!"),
        Err(KeyError::Base64 { .. })
    ));
    assert!(matches!(
        PublicKey::from_pem_or_base64(&public_pem.replace("-----END PUBLIC KEY-----", "")),
        Err(KeyError::Pem { .. })
    ));
    // A truncated key body.
    let truncated: String = bare_base64(&public_pem).chars().take(200).collect();
    assert!(PublicKey::from_pem_or_base64(&truncated).is_err());
}

#[test]
fn debug_of_keys_shows_no_key_material() {
    let keys = keys();
    let private_debug = format!("{:?} {:#?}", keys.merchant_private, keys.merchant_private);
    let public_debug = format!("{:?}", keys.antom_public);
    assert!(
        private_debug.contains("PrivateKey") && private_debug.contains("2048"),
        "{private_debug}"
    );
    assert!(public_debug.contains("PublicKey"), "{public_debug}");
    for (pem, debug) in [
        (vector_file("merchant_private_pkcs8.pem"), &private_debug),
        (vector_file("antom_public.pem"), &public_debug),
    ] {
        for line in pem.lines().filter(|line| !line.starts_with("-----")) {
            for chunk in line.as_bytes().chunks(8) {
                let chunk = std::str::from_utf8(chunk).expect("ascii");
                assert!(!debug.contains(chunk), "Debug leaks key text {chunk:?}: {debug}");
            }
        }
    }
    // No long runs of hex or base64 either.
    for debug in [&private_debug, &public_debug] {
        let longest_alphanumeric_run = debug
            .split(|c: char| !c.is_ascii_alphanumeric())
            .map(str::len)
            .max()
            .unwrap_or(0);
        assert!(longest_alphanumeric_run < 16, "{debug}");
    }
}

/// Every truncation of a real key's DER is refused (never a panic, never a
/// half-read key), and so is every single-byte corruption of its header.
#[test]
fn truncated_or_corrupted_public_key_der_is_refused() {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    let der = STANDARD
        .decode(bare_base64(&vector_file("antom_public.pem")))
        .expect("vector key is base64");
    for length in 0..der.len() {
        assert!(
            PublicKey::from_pem_or_base64(&STANDARD.encode(&der[..length])).is_err(),
            "length {length}"
        );
    }
    // The first 32 bytes hold the SPKI structure and algorithm OID.
    for position in 0..32 {
        let mut corrupted = der.clone();
        corrupted[position] ^= 0x40;
        assert!(
            PublicKey::from_pem_or_base64(&STANDARD.encode(&corrupted)).is_err(),
            "byte {position}"
        );
    }
}

proptest::proptest! {
    /// Arbitrary input never panics the key loaders or the verifier.
    #[test]
    fn arbitrary_input_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600), text in ".{0,200}") {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        proptest::prop_assert!(PublicKey::from_pem_or_base64(&encoded).is_err());
        proptest::prop_assert!(PrivateKey::from_pem_or_base64(&encoded).is_err());
        proptest::prop_assert!(PublicKey::from_pem_or_base64(&text).is_err());
        let keys = crate::support::keys();
        proptest::prop_assert!(verify(&keys.antom_public, "POST", "/p", "c", "1", &bytes, &text).is_err());
        let header = format!("algorithm=RSA256,keyVersion=1,signature={encoded}");
        proptest::prop_assert!(verify(&keys.antom_public, "POST", "/p", "c", "1", &bytes, &header).is_err());
    }
}
