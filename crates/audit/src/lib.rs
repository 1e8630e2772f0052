//! audit: the tools auditors and accountants use on the refund ledger.
//!
//! - [`verify`]: recompute the hash chain of the whole log, check positions and stream revisions, and give
//!   the digest an auditor keeps (and prove a later log extends an earlier digest); [`verify_sealed`] does the
//!   same for a sparse log (KurrentDB) from its stream chains and seals.
//! - [`journal`] and [`export`]: the double-entry journal (from the log) and the refunds report (from the
//!   read models), encoded by [`encode`] as RFC 4180 CSV or JSON Lines and streamed batch by batch.
//! - [`replay`]: rebuild every projection from the log with the projection folds and compare it row by row
//!   with the live read models.
//!
//! Architecture invariants: this crate opens no file, socket or terminal and reads no clock; it reads the
//! log and the read models only through the [`eventlog::EventStore`] and [`projections::ReadModels`] traits
//! it is handed, and hands back reports, rows and encoded bytes. Where the bytes go (stdout, a file, an HTTP
//! body) and how progress is shown is the binary's business. No float touches an amount.

#![warn(missing_docs)]

mod error;
mod read;

pub mod encode;
pub mod export;
pub mod journal;
pub mod replay;
mod report;
pub mod verify;
pub mod verify_sealed;

pub use encode::{Cell, Encoder, Format};
pub use error::AuditError;
pub use export::{ExportFilter, JournalExport, RefundsExport};
pub use journal::{
    Accounts, JournalBuilder, JournalEntry, SettlementAccounts, SettlementLine, SettlementRun, settlement_lines,
};
pub use verify::{Digest, Finding, LogVerifier, VerifyReport, verify_log};
pub use verify_sealed::SealedLogVerifier;
