//! Signing and verification against the official SDK's vectors.

use apo::SignatureError;
use apo::signature::{content_to_sign, sign, signed_path, verify};

use crate::support::{cases, keys, sha256_hex};

#[test]
fn every_vector_content_to_sign_matches_its_sha256() {
    for case in cases() {
        let content = content_to_sign(
            &case.method,
            &case.path,
            &case.client_id,
            &case.time,
            case.body.as_bytes(),
        );
        assert_eq!(sha256_hex(&content), case.content_to_sign_sha256, "case {}", case.name);
    }
}

#[test]
fn every_vector_signature_header_is_reproduced_byte_for_byte() {
    let keys = keys();
    for case in cases() {
        let (private, _) = case.key_pair(&keys);
        let header = sign(
            private,
            &case.method,
            &case.path,
            &case.client_id,
            &case.time,
            case.body.as_bytes(),
        )
        .expect("signs");
        assert_eq!(header, case.signature_header, "case {}", case.name);
    }
}

#[test]
fn every_vector_verifies_with_the_signers_public_key() {
    let keys = keys();
    for case in cases() {
        let (_, public) = case.key_pair(&keys);
        let verified = verify(
            public,
            &case.method,
            &case.path,
            &case.client_id,
            &case.time,
            case.body.as_bytes(),
            &case.signature_header,
        );
        assert_eq!(verified, Ok(()), "case {}", case.name);
    }
}

#[test]
fn every_vector_is_rejected_with_any_one_body_byte_changed() {
    let keys = keys();
    for case in cases() {
        let (_, public) = case.key_pair(&keys);
        let body = case.body.as_bytes();
        for position in 0..body.len() {
            let mut changed = body.to_vec();
            changed[position] ^= 0x01;
            let verified = verify(
                public,
                &case.method,
                &case.path,
                &case.client_id,
                &case.time,
                &changed,
                &case.signature_header,
            );
            assert_eq!(
                verified,
                Err(SignatureError::Mismatch),
                "case {} byte {position}",
                case.name
            );
        }
        let mut longer = body.to_vec();
        longer.push(b' ');
        assert_eq!(
            verify(
                public,
                &case.method,
                &case.path,
                &case.client_id,
                &case.time,
                &longer,
                &case.signature_header
            ),
            Err(SignatureError::Mismatch),
            "case {} with a trailing space",
            case.name
        );
    }
}

#[test]
fn every_vector_is_rejected_with_the_wrong_key() {
    let keys = keys();
    for case in cases() {
        let wrong = case.wrong_public(&keys);
        let verified = verify(
            wrong,
            &case.method,
            &case.path,
            &case.client_id,
            &case.time,
            case.body.as_bytes(),
            &case.signature_header,
        );
        assert_eq!(verified, Err(SignatureError::Mismatch), "case {}", case.name);
    }
}

#[test]
fn every_vector_is_rejected_with_a_wrong_path_time_method_or_client_id() {
    let keys = keys();
    for case in cases() {
        let (_, public) = case.key_pair(&keys);
        let body = case.body.as_bytes();
        let header = &case.signature_header;
        let other_path = if case.path.contains("/sandbox/") {
            case.path.replace("/sandbox/", "/")
        } else {
            signed_path("SANDBOX_X", &case.path).replace("/refund", "/inquiryRefund")
        };
        assert_ne!(other_path, case.path);
        let wrong_time = format!("{}1", case.time);
        let wrong_client = format!("{}X", case.client_id);
        let attempts: [(&str, &str, &str, &str); 4] = [
            ("path", &case.method, &other_path, &case.time),
            ("time", &case.method, &case.path, &wrong_time),
            ("method", "GET", &case.path, &case.time),
            ("client id", &case.method, &case.path, &case.time),
        ];
        for (what, method, path, time) in attempts {
            let client_id = if what == "client id" {
                &wrong_client
            } else {
                &case.client_id
            };
            assert_eq!(
                verify(public, method, path, client_id, time, body, header),
                Err(SignatureError::Mismatch),
                "case {} with a wrong {what}",
                case.name
            );
        }
    }
}

/// One SDK emits lower-case escapes (`%2b`, `%2f`, `%3d`): they must decode the same.
#[test]
fn lowercase_percent_escapes_verify() {
    let keys = keys();
    for case in cases() {
        let (_, public) = case.key_pair(&keys);
        let lowercase = case
            .signature_header
            .replace("%2B", "%2b")
            .replace("%2F", "%2f")
            .replace("%3D", "%3d");
        assert!(
            lowercase.contains("%2b") || lowercase.contains("%2f"),
            "case {}",
            case.name
        );
        assert_ne!(lowercase, case.signature_header);
        let verified = verify(
            public,
            &case.method,
            &case.path,
            &case.client_id,
            &case.time,
            case.body.as_bytes(),
            &lowercase,
        );
        assert_eq!(verified, Ok(()), "case {}", case.name);
    }
}

/// A header whose signature is not url-encoded at all (raw base64 with `+`,
/// `/`, `=`) is still the same signature: `+` is never read as a space.
#[test]
fn unescaped_base64_signature_verifies() {
    let keys = keys();
    let case = cases()
        .into_iter()
        .find(|case| case.signature_header.contains("%2B"))
        .expect("a case with +");
    let (_, public) = case.key_pair(&keys);
    let raw = case
        .signature_header
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    assert_eq!(
        verify(
            public,
            &case.method,
            &case.path,
            &case.client_id,
            &case.time,
            case.body.as_bytes(),
            &raw
        ),
        Ok(())
    );
}

#[test]
fn a_tampered_or_truncated_signature_is_rejected() {
    let keys = keys();
    let case = &cases()[0];
    let (_, public) = case.key_pair(&keys);
    let body = case.body.as_bytes();
    let truncated = &case.signature_header[..case.signature_header.len() - 10];
    assert!(
        verify(
            public,
            &case.method,
            &case.path,
            &case.client_id,
            &case.time,
            body,
            truncated
        )
        .is_err()
    );
    // Swap the first base64 character of the signature for another one.
    let (prefix, signature) = case.signature_header.split_once("signature=").expect("has signature");
    let mut chars: Vec<char> = signature.chars().collect();
    chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
    let tampered = format!("{prefix}signature={}", chars.into_iter().collect::<String>());
    assert_eq!(
        verify(
            public,
            &case.method,
            &case.path,
            &case.client_id,
            &case.time,
            body,
            &tampered
        ),
        Err(SignatureError::Mismatch)
    );
    let other_algorithm = case.signature_header.replace("RSA256", "RSA2048");
    assert!(matches!(
        verify(
            public,
            &case.method,
            &case.path,
            &case.client_id,
            &case.time,
            body,
            &other_algorithm
        ),
        Err(SignatureError::UnsupportedAlgorithm { .. })
    ));
}

/// A fresh signature over new content (what the simulator and client do) round-trips.
#[test]
fn sign_then_verify_round_trips_for_new_content() {
    let keys = keys();
    let path = signed_path("SANDBOX_CLIENT", "/ams/api/v1/payments/inquiryRefund");
    assert_eq!(path, "/ams/sandbox/api/v1/payments/inquiryRefund");
    let body = br#"{"refundRequestId":"R-9"}"#;
    let header = sign(
        &keys.merchant_private,
        "POST",
        &path,
        "SANDBOX_CLIENT",
        "1767225600000",
        body,
    )
    .expect("signs");
    assert!(header.starts_with("algorithm=RSA256,keyVersion=1,signature="));
    assert_eq!(
        verify(
            &keys.merchant_public,
            "POST",
            &path,
            "SANDBOX_CLIENT",
            "1767225600000",
            body,
            &header
        ),
        Ok(())
    );
    assert_eq!(
        verify(
            &keys.merchant_private.public_key(),
            "POST",
            &path,
            "SANDBOX_CLIENT",
            "1767225600000",
            body,
            &header
        ),
        Ok(())
    );
    assert_eq!(
        verify(
            &keys.antom_public,
            "POST",
            &path,
            "SANDBOX_CLIENT",
            "1767225600000",
            body,
            &header
        ),
        Err(SignatureError::Mismatch)
    );
}
