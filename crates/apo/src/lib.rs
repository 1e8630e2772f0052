//! `apo`: the adapter between the refund ledger and Antom (Ant International's
//! payment platform, "APO" in its older docs).
//!
//! Architecture invariant: this is the only crate that knows Antom's JSON,
//! headers and signatures. What leaves it is a `domain` type (`Money`, ids,
//! `ResultCode`) or an outcome enum of this crate; what enters it from
//! Antom is trusted only after its signature verified.
//!
//! - [`keys`]: the merchant private key and Antom's public key.
//! - [`signature`]: the `Signature` header, signing and verification.
//! - [`refund`] and [`inquiry`]: request bodies and the pure interpretation
//!   of Antom's answers into [`RefundOutcome`] and [`InquiryOutcome`].
//! - [`client`]: the HTTP client ([`ApoClient`]), the crate's only IO.
//! - [`notification`]: verifying and parsing Antom's notifications.
//! - [`wire`]: Antom's JSON, field for field.

pub mod client;
mod convert;
pub mod error;
pub mod inquiry;
pub mod keys;
pub mod notification;
pub mod observe;
pub mod refund;
pub mod request_time;
pub mod response;
pub mod retry;
pub mod signature;
pub mod wire;

pub use client::{ApoClient, ApoConfig};
pub use convert::ApoResult;
pub use error::{ClientError, KeyError, MalformedField, NotificationError, SignatureError};
pub use inquiry::{InquiryOutcome, InquiryRefundRequest, interpret_inquiry_response};
pub use keys::{PrivateKey, PublicKey};
pub use notification::{NOTIFICATION_ACK_BODY, Notification, NotificationCheck, verify_notification};
pub use observe::{Api, CallClass, CallObserver};
pub use refund::{RefundOutcome, RefundRequest, interpret_refund_response};
pub use request_time::RequestTimeStyle;
pub use response::{ResponseCheck, UnknownReason};
pub use retry::RetryPolicy;
pub use signature::{content_to_sign, sign, signed_path, verify};
