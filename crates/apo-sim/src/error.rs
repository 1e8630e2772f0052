//! The one error type of the simulator library.
//!
//! Business refusals (a refund over the refundable amount, an unknown
//! payment, ...) are not errors here: they are Antom result codes in a normal
//! response, exactly as Antom answers them. `SimError` is for misuse of the
//! simulator itself: a bad configuration, a bad seed, a socket that will not bind.

use thiserror::Error;

/// What went wrong while configuring, seeding or starting the simulator.
#[derive(Debug, Error)]
pub enum SimError {
    /// A configuration value is out of range. Fix the option named in `field`.
    #[error("config {field}: {reason}")]
    Config { field: String, reason: String },
    /// A seeded payment is not valid (currency mismatch, captured more than paid, ...).
    /// Fix the seed; nothing was stored.
    #[error("payment {payment_id}: {reason}")]
    InvalidPayment { payment_id: String, reason: String },
    /// A payment with this id was seeded before. Seed another id or update this one.
    #[error("payment {payment_id}: already exists")]
    PaymentExists { payment_id: String },
    /// No payment with this id was seeded. Seed it first.
    #[error("payment {payment_id}: not found")]
    PaymentNotFound { payment_id: String },
    /// A domain value (id, amount) did not parse; the message names the field.
    #[error(transparent)]
    Input(#[from] domain::InputError),
    /// A fault name is not one the simulator knows; see the README's fault list.
    #[error("fault {name:?}: unknown fault (see the apo-sim README for the list)")]
    UnknownFault { name: String },
    /// A report could not be made as asked (bad date, generation, discrepancy, currency). Fix the request.
    #[error("report: {reason}")]
    Report { reason: String },
    /// A report file could not be written. Check the reports directory.
    #[error("report file {path}: {source}")]
    ReportFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A key could not be loaded. Check the path or environment variable.
    #[error("key {what}: {reason}")]
    Key { what: String, reason: String },
    /// The listener could not be bound or served. Check the address.
    #[error("listener {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}
