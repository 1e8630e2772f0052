//! `apo`: the adapter between the refund ledger and Antom (Ant International's
//! payment platform, "APO" in its older docs).
//!
//! Architecture invariant: this is the only crate that knows Antom's JSON,
//! headers and signatures. Everything that leaves it is a `domain` type
//! (`Money`, ids, `ResultCode`) or an outcome enum of this crate.
//!
//! - [`keys`]: the merchant private key and Antom's public key.
//! - [`signature`]: the `Signature` header, signing and verification.

pub mod error;
pub mod keys;
pub mod signature;

pub use error::{KeyError, SignatureError};
pub use keys::{PrivateKey, PublicKey};
pub use signature::{content_to_sign, sign, signed_path, verify};
