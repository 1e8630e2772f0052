//! apo-sim: a faithful simulator of Antom's refund API, in the spirit of
//! stripe-mock: it holds payments, applies Antom's refund rules itself
//! (docs/refund-rules.md and the protocol's result codes), verifies the
//! merchant's signatures, signs its answers and notifications with an
//! "Antom" key, and injects the faults a real network and a real provider
//! produce (latency, U answers, timeouts, 5xx, 429, garbage, unsigned or
//! badly signed answers, lost, duplicated and reordered notifications).
//!
//! It also writes Antom's reconciliation reports (transaction details of a day, settlement details and
//! summary of a batch) for what it processed, with discrepancies on request ([`ReportKind`]).
//!
//! It runs in-process in tests ([`SimServer::start`] on port 0) and in the
//! ledger's `serve --demo`, and as the `apo-sim` binary.
//!
//! Architecture invariants:
//! - the simulator is the *provider*: it has its own JSON structs
//!   ([`wire`]) and shares only signing code with the `apo` client, so a
//!   field the client gets wrong is caught by tests instead of agreeing with itself;
//! - all state and all randomness sit behind one mutex and are drawn in
//!   request order, so a seeded run is reproducible;
//! - per payment, succeeded + processing refunds never exceed the captured
//!   amount, and a refundRequestId refunds at most once (asserted on every change).

mod admin;
mod config;
mod error;
mod fault;
mod http;
mod ledger;
mod notify;
mod report;
mod report_settings;
mod server;
mod simulator;
pub mod wire;

pub use admin::SEED_PAYMENTS_MAX;
pub use config::{
    FaultConfig, LATENCY_MS_MAX, MethodPolicy, NOTIFICATION_LOG_MAX, NOTIFY_DELAY_MS_MAX, NOTIFY_SCHEDULE_MS,
    NOTIFY_TIMEOUT_MS_MAX, Policies, REFUNDS_MAX, REQUEST_BODY_BYTES_MAX, SCRIPT_LEN_MAX, SETTLE_MS_MAX, SimConfig,
    TIMEOUT_HOLD_MS_MAX,
};
pub use error::SimError;
pub use fault::{
    FAULT_HEADER, FAULTS_PER_REQUEST_MAX, Fault, FaultPlan, NotifyFault, Processing, Transport, parse_fault_list,
};
pub use http::{INQUIRY_REFUND_PATH, REFUND_PATH, SANDBOX_INQUIRY_REFUND_PATH, SANDBOX_REFUND_PATH};
pub use ledger::{
    Chargeback, Disposition, Ledger, PaymentSeed, PaymentTotals, PaymentUpdate, RefundCommand, RefundDecision,
    RefundRecord, RefundState,
};
pub use report::{DISCREPANCIES_MAX, Discrepancies, ReportFile, ReportKind};
pub use report_settings::{FEE_BPS_MAX, QUOTES_MAX, QuoteSpec, ReportGeneration, ReportSettings};
pub use server::SimServer;
pub use simulator::{NotificationAttempt, NotifyOutcome, REFUND_IN_PROCESS, Simulator};
