//! reconcile: Antom's reconciliation reports, read as a stream, and the pure decisions that compare them with
//! the ledger's refunds.
//!
//! - [`ReportReader`]: the three reports (transaction details, settlement details, settlement summary) in all
//!   three generations of Antom's format, driven by the header row; amounts exact with the currency's exponent
//!   and signed; rows keep their line; `<END>` required. What it accepts but does not fully understand becomes a
//!   [`Warning`], never a silent drop. Format notes: docs/antom-reports.md.
//! - [`matcher`]: [`match_row`] (REFUND and REFUND_REVERSAL rows against the ledger's [`LedgerRefund`]s) and
//!   [`missing_from_report`] (the ledger's refunds of day T the report lacks), as pure functions on batches, so
//!   the caller can back lookups and the duplicate index with a database and stay in flat memory.
//! - [`settlement`]: the settlement formula of each details row and the details-against-summary totals.
//! - [`memory`]: whole runs with the ledger and the index in memory, for tests and small files.
//!
//! Architecture invariants: this crate does no IO beyond reading the `BufRead` it is handed: no file, socket,
//! database or clock. Nothing derived from a report can be committed without the [`EndOfReport`] that only a
//! complete file yields. No amount is ever a float.

#![warn(missing_docs)]

mod amount;
mod error;
mod file_name;
mod kind;
mod reader;
mod record;
mod row;
mod schema;
mod warning;

pub mod matcher;
pub mod memory;
pub mod settlement;

pub use amount::{AMOUNT_DIGITS_MAX, AmountProblem, SignedAmount};
pub use error::ReconcileError;
pub use file_name::ReportFileName;
pub use kind::ReportKind;
pub use matcher::{
    Finding, FindingCounts, FindingKind, LedgerBatch, LedgerPosition, LedgerRefund, LookupKeys,
    REPORT_DAY_OFFSET_DEFAULT, RefundKey, ReportDay, ReportLine, ReportOutcome, RowKey, RowSettlement, match_row,
    missing_from_report, row_key, status_finding,
};
pub use memory::{MemoryIndex, Reconciliation, reconcile_settlement_batch, reconcile_transaction_details};
pub use reader::{END_MARKER, EndOfReport, ReportReader};
pub use record::{COLUMNS_MAX, RECORD_BYTES_MAX};
pub use row::{AntomIds, Fee, Quote, ReportStatus, Row, RowType};
pub use schema::{AmountColumn, AmountRole, FeeKind, Field, Generation, Schema};
pub use settlement::{BatchTotals, ROW_TYPES_MAX, TypeTotals, check_settlement_row, compare_with_summary};
pub use warning::{WARNINGS_DISTINCT_MAX, Warning, WarningKind, Warnings};
