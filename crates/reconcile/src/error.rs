//! The one error type of the reconcile crate.
//!
//! Every error means the file as a whole cannot be trusted: the caller imports nothing from it (the
//! `<END>`-or-nothing rule), tells the operator the message, and asks Antom for a new copy where the file is
//! damaged. Messages name the file, and the line and column where there is one. A discrepancy between a
//! readable report and the ledger is never an error: it is a [`crate::Finding`].

use crate::amount::AmountProblem;
use crate::record::{COLUMNS_MAX, RECORD_BYTES_MAX};

/// Why a report could not be read. Nothing from the file was imported.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Reading the bytes failed. Retry when the source is readable.
    #[error("{file}: read failed, nothing was imported: {source}")]
    Io {
        /// The file.
        file: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file has no header row. Get a new copy from Antom.
    #[error("{file}: empty file (no header row), nothing was imported")]
    Empty {
        /// The file.
        file: String,
    },
    /// The file ends before Antom's `<END>` marker: it was cut short in transit or is still being written.
    /// Download it again; nothing from it was imported.
    #[error("{file}: ends at line {line} without the <END> marker, so it is truncated; nothing was imported")]
    Truncated {
        /// The file.
        file: String,
        /// The last line read.
        line: u64,
    },
    /// Something other than blank lines follows `<END>` (two files glued together?).
    #[error("{file} line {line}: content after the <END> marker, nothing was imported")]
    ContentAfterEnd {
        /// The file.
        file: String,
        /// The first such line.
        line: u64,
    },
    /// A line is not UTF-8; Antom's reports are UTF-8 text (an `.xlsx` file must be exported to CSV first).
    #[error("{file} line {line}: not UTF-8 text, nothing was imported")]
    NotUtf8 {
        /// The file.
        file: String,
        /// The line.
        line: u64,
    },
    /// One record is longer than [`RECORD_BYTES_MAX`].
    #[error("{file} line {line}: record longer than {RECORD_BYTES_MAX} bytes, nothing was imported")]
    RecordTooLong {
        /// The file.
        file: String,
        /// The line the record starts on.
        line: u64,
    },
    /// A record has more than [`COLUMNS_MAX`] cells.
    #[error("{file} line {line}: more than {COLUMNS_MAX} cells, nothing was imported")]
    TooManyCells {
        /// The file.
        file: String,
        /// The line.
        line: u64,
    },
    /// A quoted cell is never closed.
    #[error("{file} line {line}: a quoted cell is never closed, nothing was imported")]
    UnterminatedQuote {
        /// The file.
        file: String,
        /// The line the record starts on.
        line: u64,
    },
    /// A quote inside an unquoted cell, or text after a closing quote (not RFC 4180).
    #[error("{file} line {line}, column {column}: misplaced quote character, nothing was imported")]
    StrayQuote {
        /// The file.
        file: String,
        /// The line.
        line: u64,
        /// The column's header name (or `#n` past the header).
        column: String,
    },
    /// Two header columns have the same name; which one to read is undecidable.
    #[error("{file}: header names column {column} twice, nothing was imported")]
    DuplicateColumn {
        /// The file.
        file: String,
        /// The column.
        column: String,
    },
    /// The header lacks a column without which no row can be understood.
    #[error("{file}: header has no {column} column, nothing was imported")]
    MissingColumn {
        /// The file.
        file: String,
        /// The column.
        column: String,
    },
    /// A row has a different number of cells than the header (one extra empty cell is tolerated).
    #[error("{file} line {line}: {found} cells, the header has {expected}; nothing was imported")]
    CellCount {
        /// The file.
        file: String,
        /// The line.
        line: u64,
        /// The header's cell count.
        expected: usize,
        /// The row's.
        found: usize,
    },
    /// A cell every row needs is empty (`transactionType`, `summaryType`).
    #[error("{file} line {line}, column {column}: empty, nothing was imported")]
    MissingValue {
        /// The file.
        file: String,
        /// The line.
        line: u64,
        /// The column.
        column: String,
    },
    /// An amount cell does not parse exactly with its currency's exponent, or has no currency beside it.
    #[error("{file} line {line}, column {column}: amount {value:?}: {problem}; nothing was imported")]
    Amount {
        /// The file.
        file: String,
        /// The line.
        line: u64,
        /// The column.
        column: String,
        /// The cell as written.
        value: String,
        /// What is wrong with it.
        problem: AmountProblem,
    },
    /// A currency cell is not an ISO 4217 code with a minor unit.
    #[error("{file} line {line}, column {column}: {code:?} is not an ISO 4217 currency; nothing was imported")]
    Currency {
        /// The file.
        file: String,
        /// The line.
        line: u64,
        /// The column.
        column: String,
        /// The cell as written.
        code: String,
    },
    /// `quoteCurrencyPair` / `quotePrice` do not parse, or one is given without the other.
    #[error("{file} line {line}, column {column}: {value:?}: {reason}; nothing was imported")]
    Quote {
        /// The file.
        file: String,
        /// The line.
        line: u64,
        /// The column.
        column: String,
        /// The cell as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A summary `count` is not a whole number.
    #[error("{file} line {line}, column count: {value:?} is not a whole number; nothing was imported")]
    Count {
        /// The file.
        file: String,
        /// The line.
        line: u64,
        /// The cell as written.
        value: String,
    },
    /// A settlement batch names more distinct row types than [`crate::ROW_TYPES_MAX`]; not an Antom report.
    #[error("{file}: more than {max} distinct row types, nothing was imported")]
    TooManyRowTypes {
        /// The file.
        file: String,
        /// The bound.
        max: usize,
    },
}
