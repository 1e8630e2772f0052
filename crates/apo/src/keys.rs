//! RSA keys for Antom signatures: the merchant's private key (signs requests)
//! and Antom's public key (verifies responses and notifications).
//!
//! Antom hands keys out as base64 DER without PEM markers, operators often
//! store them as PEM files or environment variables, so every loader accepts
//! both. `aws-lc-rs` (like `ring`) wants the bare PKCS#1 `RSAPublicKey` for verification while
//! Antom ships an X.509 `SubjectPublicKeyInfo`; the small DER walk below
//! removes that wrapper and checks the algorithm is RSA, instead of pulling
//! in a full ASN.1 stack for two fixed structures.
//!
//! Why the manual `Debug`s: a key must never reach a log line, so `Debug`
//! shows only the algorithm and the modulus size.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use secrecy::{ExposeSecret as _, SecretSlice, SecretString};

use crate::error::KeyError;

/// PEM labels accepted for a private key: PKCS#8 (what Antom issues) and PKCS#1.
const PRIVATE_KEY_LABELS: &[&str] = &["PRIVATE KEY", "RSA PRIVATE KEY"];
/// PEM labels accepted for a public key: X.509 SubjectPublicKeyInfo (what Antom issues) and PKCS#1.
const PUBLIC_KEY_LABELS: &[&str] = &["PUBLIC KEY", "RSA PUBLIC KEY"];
/// Smallest RSA modulus accepted, in bits (the verifier takes 2048..=8192).
pub const RSA_MODULUS_BITS_MIN: usize = 2048;
/// Largest RSA modulus accepted, in bits.
pub const RSA_MODULUS_BITS_MAX: usize = 8192;

/// The merchant's RSA private key, used to sign requests to Antom.
///
/// Cloning is cheap (shared). `Debug` prints no key material.
#[derive(Clone)]
pub struct PrivateKey {
    key_pair: Arc<RsaKeyPair>,
}

impl PrivateKey {
    /// Loads a PKCS#8 RSA private key from PEM text or from bare base64 DER
    /// (Antom's format: the PEM body without markers, line breaks allowed).
    /// A PKCS#1 `RSA PRIVATE KEY` is accepted as well.
    pub fn from_pem_or_base64(text: &str) -> Result<Self, KeyError> {
        let der = decode_pem_or_base64(text, PRIVATE_KEY_LABELS)?;
        let key_pair = RsaKeyPair::from_pkcs8(der.expose_secret())
            .or_else(|pkcs8_error| RsaKeyPair::from_der(der.expose_secret()).map_err(|_| pkcs8_error))
            .map_err(|rejected| KeyError::Rejected {
                reason: rejected.to_string(),
            })?;
        let bits = key_pair.public_modulus_len() * 8;
        if !(RSA_MODULUS_BITS_MIN..=RSA_MODULUS_BITS_MAX).contains(&bits) {
            return Err(KeyError::UnsupportedKeySize { bits });
        }
        Ok(Self {
            key_pair: Arc::new(key_pair),
        })
    }

    /// Loads the key from a file holding PEM or base64 text.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        Self::from_pem_or_base64(read_file(path)?.expose_secret())
    }

    /// Loads the key from an environment variable holding PEM or base64 text
    /// (literal `\n` sequences, as some deploy tools write them, count as line breaks).
    pub fn from_env(var: &str) -> Result<Self, KeyError> {
        Self::from_pem_or_base64(read_env(var)?.expose_secret())
    }

    /// The matching public key (what Antom holds to verify our requests).
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_rsa_public_key(self.key_pair.public_key().as_ref(), self.modulus_bits())
    }

    /// Size of the RSA modulus in bits.
    pub fn modulus_bits(&self) -> usize {
        self.key_pair.public_modulus_len() * 8
    }

    pub(crate) fn key_pair(&self) -> &RsaKeyPair {
        &self.key_pair
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &"RSA")
            .field("modulus_bits", &self.modulus_bits())
            .finish_non_exhaustive()
    }
}

/// Antom's RSA public key, used to verify responses and notifications.
///
/// Holds the PKCS#1 `RSAPublicKey` DER that the verifier takes. Cloning is
/// cheap (shared). `Debug` prints only the modulus size.
#[derive(Clone)]
pub struct PublicKey {
    rsa_public_key_der: Arc<[u8]>,
    modulus_bits: usize,
}

impl PublicKey {
    /// Loads an RSA public key from PEM text or from bare base64 DER of an
    /// X.509 `SubjectPublicKeyInfo` (Antom's format). A PKCS#1
    /// `RSA PUBLIC KEY` is accepted as well.
    pub fn from_pem_or_base64(text: &str) -> Result<Self, KeyError> {
        let der = decode_pem_or_base64(text, PUBLIC_KEY_LABELS)?;
        let der = der.expose_secret();
        let rsa_public_key = if starts_with_integer(der) {
            der
        } else {
            spki_rsa_public_key(der)?
        };
        let modulus_bits = rsa_modulus_bits(rsa_public_key)?;
        if !(RSA_MODULUS_BITS_MIN..=RSA_MODULUS_BITS_MAX).contains(&modulus_bits) {
            return Err(KeyError::UnsupportedKeySize { bits: modulus_bits });
        }
        Ok(Self::from_rsa_public_key(rsa_public_key, modulus_bits))
    }

    /// Loads the key from a file holding PEM or base64 text.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        Self::from_pem_or_base64(read_file(path)?.expose_secret())
    }

    /// Loads the key from an environment variable holding PEM or base64 text
    /// (literal `\n` sequences count as line breaks).
    pub fn from_env(var: &str) -> Result<Self, KeyError> {
        Self::from_pem_or_base64(read_env(var)?.expose_secret())
    }

    /// Size of the RSA modulus in bits.
    pub fn modulus_bits(&self) -> usize {
        self.modulus_bits
    }

    fn from_rsa_public_key(der: &[u8], modulus_bits: usize) -> Self {
        Self {
            rsa_public_key_der: Arc::from(der),
            modulus_bits,
        }
    }

    pub(crate) fn rsa_public_key_der(&self) -> &[u8] {
        &self.rsa_public_key_der
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &"RSA")
            .field("modulus_bits", &self.modulus_bits)
            .finish_non_exhaustive()
    }
}

fn read_file(path: &Path) -> Result<SecretString, KeyError> {
    std::fs::read_to_string(path)
        .map(SecretString::from)
        .map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })
}

fn read_env(var: &str) -> Result<SecretString, KeyError> {
    match std::env::var(var) {
        Ok(text) => Ok(SecretString::from(text)),
        Err(std::env::VarError::NotPresent) => Err(KeyError::EnvMissing { var: var.to_owned() }),
        Err(std::env::VarError::NotUnicode(_)) => Err(KeyError::EnvNotUnicode { var: var.to_owned() }),
    }
}

/// Base64 as keys are written: standard alphabet, padding optional.
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes PEM (checking the label is one of `labels`) or bare base64 into DER.
fn decode_pem_or_base64(text: &str, labels: &'static [&'static str]) -> Result<SecretSlice<u8>, KeyError> {
    let text = SecretString::from(text.replace("\\n", "\n"));
    let body = pem_body(text.expose_secret().trim(), labels)?;
    let base64: SecretString = body
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect::<String>()
        .into();
    if base64.expose_secret().is_empty() {
        return Err(KeyError::Empty);
    }
    KEY_BASE64
        .decode(base64.expose_secret())
        .map(SecretSlice::from)
        .map_err(|error| KeyError::Base64 {
            reason: error.to_string(),
        })
}

/// The text between the BEGIN and END lines, or the whole text without armour.
fn pem_body<'a>(text: &'a str, labels: &'static [&'static str]) -> Result<&'a str, KeyError> {
    const BEGIN: &str = "-----BEGIN ";
    const END: &str = "-----END ";
    const DASHES: &str = "-----";
    let Some(after_begin) = text.strip_prefix(BEGIN) else {
        if text.contains(DASHES) {
            return Err(KeyError::Pem {
                reason: "text before the BEGIN line",
            });
        }
        return Ok(text);
    };
    let (label, rest) = after_begin.split_once(DASHES).ok_or(KeyError::Pem {
        reason: "BEGIN line is not closed with -----",
    })?;
    if !labels.contains(&label) {
        return Err(KeyError::WrongPemLabel {
            expected: labels,
            found: label.to_owned(),
        });
    }
    let (body, end) = rest.split_once(END).ok_or(KeyError::Pem { reason: "no END line" })?;
    let end_label = end.trim_end().strip_suffix(DASHES).ok_or(KeyError::Pem {
        reason: "END line is not closed with -----",
    })?;
    if end_label != label {
        return Err(KeyError::Pem {
            reason: "END label differs from BEGIN label",
        });
    }
    Ok(body)
}

// DER tags used by the two structures we read.
const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
/// OID 1.2.840.113549.1.1.1 (rsaEncryption), content bytes.
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// Longest DER length field we accept (4 bytes: far beyond any RSA key).
const DER_LENGTH_BYTES_MAX: usize = 4;

/// Reads one DER element with the expected tag: `(content, rest)`.
fn der_element<'a>(input: &'a [u8], tag: u8, what: &'static str) -> Result<(&'a [u8], &'a [u8]), KeyError> {
    let malformed = || KeyError::Der { reason: what };
    let (&found_tag, after_tag) = input.split_first().ok_or_else(malformed)?;
    if found_tag != tag {
        return Err(malformed());
    }
    let (&first_length_byte, after_length_byte) = after_tag.split_first().ok_or_else(malformed)?;
    let (length, after_length) = if first_length_byte < 0x80 {
        (usize::from(first_length_byte), after_length_byte)
    } else {
        let length_bytes = usize::from(first_length_byte & 0x7f);
        if length_bytes == 0 || length_bytes > DER_LENGTH_BYTES_MAX || after_length_byte.len() < length_bytes {
            return Err(malformed());
        }
        let (length_field, rest) = after_length_byte.split_at(length_bytes);
        let length = length_field
            .iter()
            .fold(0usize, |length, &byte| (length << 8) | usize::from(byte));
        (length, rest)
    };
    if after_length.len() < length {
        return Err(malformed());
    }
    Ok(after_length.split_at(length))
}

fn starts_with_integer(der: &[u8]) -> bool {
    der_element(der, TAG_SEQUENCE, "")
        .map(|(content, _)| content.first() == Some(&TAG_INTEGER))
        .unwrap_or(false)
}

/// Strips the X.509 `SubjectPublicKeyInfo` wrapper:
/// `SEQUENCE { SEQUENCE { OID rsaEncryption, NULL }, BIT STRING { RSAPublicKey } }`.
fn spki_rsa_public_key(der: &[u8]) -> Result<&[u8], KeyError> {
    let (spki, trailing) = der_element(der, TAG_SEQUENCE, "SubjectPublicKeyInfo is not a SEQUENCE")?;
    if !trailing.is_empty() {
        return Err(KeyError::Der {
            reason: "bytes after the SubjectPublicKeyInfo",
        });
    }
    let (algorithm, rest) = der_element(spki, TAG_SEQUENCE, "AlgorithmIdentifier is not a SEQUENCE")?;
    let (oid, parameters) = der_element(algorithm, TAG_OID, "AlgorithmIdentifier has no OID")?;
    if oid != OID_RSA_ENCRYPTION {
        return Err(KeyError::NotRsa);
    }
    if !parameters.is_empty() {
        let (null, after_null) = der_element(parameters, TAG_NULL, "rsaEncryption parameters are not NULL")?;
        if !null.is_empty() || !after_null.is_empty() {
            return Err(KeyError::Der {
                reason: "rsaEncryption parameters are not NULL",
            });
        }
    }
    let (bits, after_bits) = der_element(rest, TAG_BIT_STRING, "subjectPublicKey is not a BIT STRING")?;
    if !after_bits.is_empty() {
        return Err(KeyError::Der {
            reason: "bytes after the subjectPublicKey",
        });
    }
    match bits.split_first() {
        Some((0, rsa_public_key)) => Ok(rsa_public_key),
        _ => Err(KeyError::Der {
            reason: "subjectPublicKey BIT STRING has unused bits",
        }),
    }
}

/// Checks `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`
/// and returns the modulus size in bits.
fn rsa_modulus_bits(der: &[u8]) -> Result<usize, KeyError> {
    let (sequence, trailing) = der_element(der, TAG_SEQUENCE, "RSAPublicKey is not a SEQUENCE")?;
    if !trailing.is_empty() {
        return Err(KeyError::Der {
            reason: "bytes after the RSAPublicKey",
        });
    }
    let (modulus, rest) = der_element(sequence, TAG_INTEGER, "RSAPublicKey modulus is not an INTEGER")?;
    let (exponent, after_exponent) = der_element(rest, TAG_INTEGER, "RSAPublicKey exponent is not an INTEGER")?;
    if exponent.is_empty() || !after_exponent.is_empty() {
        return Err(KeyError::Der {
            reason: "RSAPublicKey exponent is malformed",
        });
    }
    let significant: &[u8] = match modulus.iter().position(|&byte| byte != 0) {
        Some(first) => &modulus[first..],
        None => &[],
    };
    Ok(match significant.first() {
        Some(&top) => significant.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DER length in long form must be read, including two-byte lengths.
    #[test]
    fn der_lengths_short_and_long() {
        assert_eq!(
            der_element(&[0x02, 0x01, 0x05], TAG_INTEGER, "x").unwrap(),
            (&[5u8][..], &[][..])
        );
        let mut long = vec![0x04, 0x82, 0x01, 0x00];
        long.extend(std::iter::repeat_n(7u8, 256));
        long.push(9);
        let (content, rest) = der_element(&long, 0x04, "x").unwrap();
        assert_eq!(content.len(), 256);
        assert_eq!(rest, &[9]);
        // Truncated content, indefinite length, too long a length field, wrong tag.
        assert!(der_element(&[0x02, 0x05, 0x01], TAG_INTEGER, "x").is_err());
        assert!(der_element(&[0x30, 0x80, 0x00, 0x00], TAG_SEQUENCE, "x").is_err());
        assert!(der_element(&[0x30, 0x85, 1, 1, 1, 1, 1], TAG_SEQUENCE, "x").is_err());
        assert!(der_element(&[0x02, 0x01, 0x05], TAG_SEQUENCE, "x").is_err());
        assert!(der_element(&[], TAG_SEQUENCE, "x").is_err());
    }

    /// The SPKI walk rejects other algorithms and trailing garbage.
    #[test]
    fn spki_walk_checks_algorithm_and_shape() {
        let rsa_public_key = [0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03];
        let spki = |oid: &[u8], trailing: &[u8]| {
            let mut algorithm = vec![TAG_OID, oid.len() as u8];
            algorithm.extend_from_slice(oid);
            algorithm.extend_from_slice(&[TAG_NULL, 0]);
            let mut inner = vec![TAG_SEQUENCE, algorithm.len() as u8];
            inner.extend(algorithm);
            inner.extend([TAG_BIT_STRING, rsa_public_key.len() as u8 + 1, 0]);
            inner.extend(rsa_public_key);
            let mut outer = vec![TAG_SEQUENCE, inner.len() as u8];
            outer.extend(inner);
            outer.extend_from_slice(trailing);
            outer
        };
        assert_eq!(
            spki_rsa_public_key(&spki(OID_RSA_ENCRYPTION, &[])).unwrap(),
            &rsa_public_key
        );
        // 1.2.840.10045.2.1 (id-ecPublicKey)
        let ec = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        assert!(matches!(spki_rsa_public_key(&spki(&ec, &[])), Err(KeyError::NotRsa)));
        assert!(matches!(
            spki_rsa_public_key(&spki(OID_RSA_ENCRYPTION, &[0])),
            Err(KeyError::Der { .. })
        ));
        assert_eq!(rsa_modulus_bits(&rsa_public_key).unwrap(), 3);
    }

    #[test]
    fn pem_armour_is_checked() {
        assert_eq!(pem_body("QUJD", PUBLIC_KEY_LABELS).unwrap(), "QUJD");
        assert_eq!(
            pem_body(
                "-----BEGIN PUBLIC KEY-----\nQUJD\n-----END PUBLIC KEY-----\n",
                PUBLIC_KEY_LABELS
            )
            .unwrap(),
            "\nQUJD\n"
        );
        assert!(matches!(
            pem_body(
                "-----BEGIN PUBLIC KEY-----\nQUJD\n-----END PUBLIC KEY-----",
                PRIVATE_KEY_LABELS
            ),
            Err(KeyError::WrongPemLabel { .. })
        ));
        assert!(matches!(
            pem_body("-----BEGIN PUBLIC KEY-----\nQUJD\n", PUBLIC_KEY_LABELS),
            Err(KeyError::Pem { .. })
        ));
        assert!(matches!(
            pem_body(
                "-----BEGIN PUBLIC KEY-----\nQUJD\n-----END RSA PUBLIC KEY-----",
                PUBLIC_KEY_LABELS
            ),
            Err(KeyError::Pem { .. })
        ));
        assert!(matches!(
            pem_body("junk -----BEGIN PUBLIC KEY-----", PUBLIC_KEY_LABELS),
            Err(KeyError::Pem { .. })
        ));
    }
}
