//! The refund ledger's pure domain: money, identifiers, Antom result codes,
//! the stored events, the `Payment` aggregate and the refund policy.
//!
//! Architecture invariant: this crate does no IO. It reads no clock (the
//! current time is passed in), opens no file or socket and knows nothing of
//! GraphQL, SQL or Antom's HTTP.

mod error;
mod id;
mod money;
mod result_code;

pub use error::InputError;
pub use id::{CaptureId, DisputeId, ID_LEN_MAX, PaymentId, PaymentMethodType, RefundId, RefundRequestId};
pub use money::{AMOUNT_DIGITS_MAX, Currency, MINOR_UNITS_MAX, Money};
pub use result_code::{ResultCode, ResultStatus};
