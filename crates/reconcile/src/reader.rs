//! The streaming report reader: header first, then one row at a time, and the `<END>` marker last.
//!
//! Memory does not grow with the file: one record is held at a time (bounded by `RECORD_BYTES_MAX`), plus the
//! bounded warnings. A report is only complete when `<END>` was seen, so the reader hands out an
//! [`EndOfReport`] only then, and the way to commit what was derived from the rows is to require one: code that
//! stages findings while streaming and commits them with the `EndOfReport` cannot import part of a cut file.

use std::io::BufRead;
use std::str::FromStr;
use std::sync::Arc;

use domain::Currency;
use rust_decimal::Decimal;

use crate::amount::{AmountProblem, SignedAmount};
use crate::error::ReconcileError;
use crate::file_name::ReportFileName;
use crate::kind::ReportKind;
use crate::record::{Record, RecordError, RecordReader};
use crate::row::{Fee, Quote, ReportStatus, Row, RowType};
use crate::schema::{AmountColumn, AmountRole, Field, Generation, Schema, SchemaProblem};
use crate::warning::{WarningKind, Warnings};

/// The marker Antom writes as the last line of every report.
pub const END_MARKER: &str = "<END>";

/// Proof that a report was read to its `<END>` marker, with what the reader noticed on the way. Only
/// [`ReportReader::finish`] makes one, so a commit that takes it cannot happen for a truncated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndOfReport {
    file: Arc<str>,
    kind: ReportKind,
    generation: Generation,
    rows: u64,
    end_line: u64,
    warnings: Warnings,
}

impl EndOfReport {
    /// The file name the reader was given.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The report kind.
    pub fn kind(&self) -> ReportKind {
        self.kind
    }

    /// The format generation.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// Data rows read (header, blank lines and `<END>` not counted).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The line of the `<END>` marker.
    pub fn end_line(&self) -> u64 {
        self.end_line
    }

    /// What was accepted but not fully understood.
    pub fn warnings(&self) -> &Warnings {
        &self.warnings
    }
}

/// Reads one report file as a stream of [`Row`]s.
#[derive(Debug)]
pub struct ReportReader<R> {
    file: Arc<str>,
    records: RecordReader<R>,
    schema: Arc<Schema>,
    warnings: Warnings,
    rows: u64,
    end_line: Option<u64>,
    settlement_currency: Option<Currency>,
    drops_trailing_empty_cell: bool,
    /// Currency codes already read: a report uses a handful, and looking one up costs more than the row's
    /// amounts together.
    currencies: Vec<(String, Currency)>,
    saw_total: bool,
}

/// Most currency codes [`ReportReader`] remembers; past it, codes are looked up every time.
const CURRENCY_CACHE_MAX: usize = 16;

impl<R: BufRead> ReportReader<R> {
    /// Reads the header of `reader`. `file` names the report in errors and findings; when it follows Antom's
    /// naming pattern it also helps tell the report kind (see [`ReportFileName`]).
    pub fn open(file: &str, reader: R) -> Result<Self, ReconcileError> {
        let file: Arc<str> = Arc::from(file);
        let mut records = RecordReader::new(reader);
        let mut header = Record::default();
        let mut warnings = Warnings::default();
        let has_header = records
            .read(&mut header)
            .map_err(|error| record_error(&file, None, error))?;
        if !has_header || header.is_blank() {
            return Err(ReconcileError::Empty { file: file.to_string() });
        }
        if header.get(0).is_some_and(|cell| cell.trim() == END_MARKER) {
            return Err(ReconcileError::Empty { file: file.to_string() });
        }
        let file_name = ReportFileName::parse(&file);
        if file_name.is_none() {
            warnings.add(
                WarningKind::FileNameNotRecognised,
                "",
                1,
                format!("file name {file:?} follows none of Antom's report name patterns"),
            );
        }
        let drops_trailing_empty_cell = header.drop_trailing_empty();
        if drops_trailing_empty_cell {
            warnings.add(
                WarningKind::TrailingEmptyCell,
                "",
                1,
                "the header ends with an empty cell (a trailing comma); ignored on every line".to_owned(),
            );
        }
        let schema =
            Schema::from_header(header.iter(), file_name.as_ref(), &mut warnings).map_err(|problem| match problem {
                SchemaProblem::DuplicateColumn(column) => ReconcileError::DuplicateColumn {
                    file: file.to_string(),
                    column,
                },
                SchemaProblem::MissingColumn(column) => ReconcileError::MissingColumn {
                    file: file.to_string(),
                    column: column.to_owned(),
                },
            })?;
        Ok(Self {
            file,
            records,
            schema: Arc::new(schema),
            warnings,
            rows: 0,
            end_line: None,
            settlement_currency: None,
            drops_trailing_empty_cell,
            currencies: Vec::new(),
            saw_total: false,
        })
    }

    /// The file name given to [`ReportReader::open`].
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The understood header.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The warnings so far.
    pub fn warnings(&self) -> &Warnings {
        &self.warnings
    }

    /// The next data row; `Ok(None)` once `<END>` was read (and nothing but blank lines follows it).
    pub fn next_row(&mut self) -> Result<Option<Row>, ReconcileError> {
        if self.end_line.is_some() {
            return Ok(None);
        }
        let mut record = Record::default();
        loop {
            let read = self.records.read(&mut record);
            let read = match read {
                Ok(read) => read,
                Err(error) => return Err(self.fail(record_error(&self.file, Some(&self.schema), error))),
            };
            if !read {
                return Err(ReconcileError::Truncated {
                    file: self.file.to_string(),
                    line: self.records.lines(),
                });
            }
            if record.is_blank() {
                self.warnings.add(
                    WarningKind::BlankLine,
                    "",
                    record.line(),
                    "blank line before <END>, skipped".to_owned(),
                );
                continue;
            }
            if is_end_marker(&record) {
                self.end_line = Some(record.line());
                self.expect_nothing_after_end(&mut record)?;
                return Ok(None);
            }
            return match self.parse_row(record) {
                Ok(row) => {
                    self.rows += 1;
                    self.saw_total |= *row.row_type() == RowType::Total;
                    Ok(Some(row))
                }
                Err(error) => Err(self.fail(error)),
            };
        }
    }

    /// Reads any rows left (checking them as [`ReportReader::next_row`] does) and the `<END>` marker, and
    /// gives the proof that the report is complete. Errors exactly when the file is not a whole, readable
    /// report, in which case nothing derived from it may be committed.
    pub fn finish(mut self) -> Result<EndOfReport, ReconcileError> {
        while self.next_row()?.is_some() {}
        let end_line = self.end_line.unwrap_or_default();
        if self.schema.kind() == ReportKind::SettlementSummary && self.rows > 0 && !self.saw_total {
            self.warnings.add(
                WarningKind::NoTotalRow,
                "",
                end_line,
                "the summary has no TOTAL row; its rows are compared per type only".to_owned(),
            );
        }
        Ok(EndOfReport {
            file: self.file,
            kind: self.schema.kind(),
            generation: self.schema.generation(),
            rows: self.rows,
            end_line,
            warnings: self.warnings,
        })
    }

    /// A bad record at the very end of the stream means the file was cut mid-row: say that, not the symptom.
    fn fail(&mut self, error: ReconcileError) -> ReconcileError {
        if self.records.at_end() {
            return ReconcileError::Truncated {
                file: self.file.to_string(),
                line: self.records.lines(),
            };
        }
        error
    }

    fn expect_nothing_after_end(&mut self, record: &mut Record) -> Result<(), ReconcileError> {
        loop {
            match self.records.read(record) {
                Ok(false) => return Ok(()),
                Ok(true) if record.is_blank() => {}
                Ok(true) => {
                    return Err(ReconcileError::ContentAfterEnd {
                        file: self.file.to_string(),
                        line: record.line(),
                    });
                }
                Err(error) => return Err(record_error(&self.file, Some(&self.schema), error)),
            }
        }
    }

    fn parse_row(&mut self, mut record: Record) -> Result<Row, ReconcileError> {
        let line = record.line();
        let expected = self.schema.columns().len();
        if record.len() == expected + 1 && record.get(expected) == Some("") {
            record.drop_trailing_empty();
            if !self.drops_trailing_empty_cell {
                self.warnings.add(
                    WarningKind::TrailingEmptyCell,
                    "",
                    line,
                    "rows end with an empty cell the header does not have (a trailing comma); ignored".to_owned(),
                );
            }
        }
        if record.len() != expected {
            return Err(ReconcileError::CellCount {
                file: self.file.to_string(),
                line,
                expected,
                found: record.len(),
            });
        }
        let schema = Arc::clone(&self.schema);
        let row_type_index = schema.field(Field::RowType).unwrap_or_default();
        let row_type = match record.get(row_type_index).map(str::trim) {
            None | Some("") => return Err(self.missing_value(line, row_type_index)),
            Some(text) => RowType::parse(text),
        };
        if let RowType::Other(text) = &row_type {
            self.warnings.add_with(WarningKind::UnknownRowType, text, line, || {
                format!("row type {text:?} is not one Antom documents; rows kept and counted, not reconciled")
            });
        }
        let mut row = Row {
            schema,
            record,
            row_type,
            status: None,
            transaction_amount: None,
            settlement_amount: None,
            converted_amount: None,
            quote: None,
            fees: Vec::new(),
            count: None,
        };
        row.status = self.status(&row);
        self.amounts(&mut row)?;
        row.quote = self.quote(&row)?;
        row.count = self.count(&row)?;
        self.check_signs(&row);
        self.check_settlement_date(&row);
        Ok(row)
    }

    /// Warns about a settled REFUND row of a settlement details file whose settlement date cannot be read: the
    /// journal books its settlement lines on the day the run was recorded instead.
    fn check_settlement_date(&mut self, row: &Row) {
        if self.schema.kind() != ReportKind::SettlementDetails
            || row.row_type != RowType::Refund
            || row.settlement_amount.is_none()
            || row.settlement_date().is_some()
        {
            return;
        }
        let column = self.schema.field(Field::SettlementTime).map_or_else(
            || "settlementInitiatedDate".to_owned(),
            |index| self.schema.column_name(index),
        );
        self.warnings
            .add_with(WarningKind::SettlementDateUnreadable, &column, row.line(), || {
                format!(
                    "settled REFUND rows without a {column} date we can read: the journal books their settlement \
                     lines on the day the run was recorded"
                )
            });
    }

    fn status(&mut self, row: &Row) -> Option<ReportStatus> {
        let status = ReportStatus::parse(row.get(Field::Status)?);
        if let ReportStatus::Other(text) = &status {
            self.warnings
                .add_with(WarningKind::UnknownStatus, text, row.line(), || {
                    format!("status {text:?} is not one we know; its rows are reported as not understood")
                });
        }
        Some(status)
    }

    fn amounts(&mut self, row: &mut Row) -> Result<(), ReconcileError> {
        let schema = Arc::clone(&row.schema);
        for column in schema.amounts() {
            let Some(amount) = self.amount(row, column)? else {
                if column.role == AmountRole::Settlement && schema.kind() == ReportKind::TransactionDetails {
                    self.warnings.add(
                        WarningKind::SettlementAmountEmpty,
                        "",
                        row.line(),
                        "rows without a settlement amount: fees not final yet (post-quoted FX); fetch the report \
                         again on T+2"
                            .to_owned(),
                    );
                }
                continue;
            };
            match &column.role {
                AmountRole::Transaction => row.transaction_amount = Some(amount),
                AmountRole::Settlement => {
                    self.check_settlement_currency(row.line(), amount.currency());
                    row.settlement_amount = Some(amount);
                }
                AmountRole::Converted => row.converted_amount = Some(amount),
                AmountRole::Fee(kind) => row.fees.push(Fee { kind: *kind, amount }),
                AmountRole::Other(_) => {}
            }
        }
        Ok(())
    }

    fn amount(&mut self, row: &Row, column: &AmountColumn) -> Result<Option<SignedAmount>, ReconcileError> {
        let Some(value) = row.cell(column.value) else {
            return Ok(None);
        };
        let line = row.line();
        let Some(code) = row.cell(column.currency) else {
            let currency_column = self.schema.column_name(column.currency);
            let problem = AmountProblem::MissingCurrency { currency_column };
            return Err(self.amount_error(line, column, value, problem));
        };
        let currency = self.currency(line, column.currency, code)?;
        let parsed = SignedAmount::parse_major(value, currency)
            .map_err(|problem| self.amount_error(line, column, value, problem))?;
        if parsed.extra_zero_decimals {
            let name = self.schema.column_name(column.value);
            self.warnings.add_with(WarningKind::ExtraZeroDecimals, &name, line, || {
                format!("{name} has more decimals than its currency allows, all zero; read exactly")
            });
        }
        Ok(Some(parsed.amount))
    }

    fn amount_error(&self, line: u64, column: &AmountColumn, value: &str, problem: AmountProblem) -> ReconcileError {
        ReconcileError::Amount {
            file: self.file.to_string(),
            line,
            column: self.schema.column_name(column.value),
            value: value.to_owned(),
            problem,
        }
    }

    fn currency(&mut self, line: u64, column: usize, code: &str) -> Result<Currency, ReconcileError> {
        let code = code.trim();
        if let Some((_, currency)) = self.currencies.iter().find(|(known, _)| known == code) {
            return Ok(*currency);
        }
        let currency = Currency::parse("currency", code).map_err(|_| ReconcileError::Currency {
            file: self.file.to_string(),
            line,
            column: self.schema.column_name(column),
            code: code.to_owned(),
        })?;
        if self.currencies.len() < CURRENCY_CACHE_MAX {
            self.currencies.push((code.to_owned(), currency));
        }
        Ok(currency)
    }

    fn check_settlement_currency(&mut self, line: u64, currency: Currency) {
        if self.schema.kind() == ReportKind::TransactionDetails {
            return;
        }
        match self.settlement_currency {
            None => self.settlement_currency = Some(currency),
            Some(first) if first != currency => {
                self.warnings
                    .add_with(WarningKind::SeveralSettlementCurrencies, currency.code(), line, || {
                        format!("settlement currency {currency} besides {first}: Antom writes one currency per file")
                    })
            }
            Some(_) => {}
        }
    }

    fn quote(&mut self, row: &Row) -> Result<Option<Quote>, ReconcileError> {
        let pair_index = self.schema.field(Field::QuoteCurrencyPair);
        let price_index = self.schema.field(Field::QuotePrice);
        let pair = pair_index.and_then(|index| row.cell(index));
        let price = price_index.and_then(|index| row.cell(index));
        let line = row.line();
        let (pair, price) = match (pair, price) {
            (None, None) => return Ok(None),
            (Some(pair), None) => {
                return Err(self.quote_error(line, pair_index, pair, "a currency pair without a quotePrice"));
            }
            (None, Some(price)) => {
                return Err(self.quote_error(line, price_index, price, "a quotePrice without a currency pair"));
            }
            (Some(pair), Some(price)) => (pair, price),
        };
        let Some((base, quote)) = pair.split_once('/') else {
            return Err(self.quote_error(line, pair_index, pair, "not a currency pair like USD/SGD"));
        };
        let column = pair_index.unwrap_or_default();
        let base = self.currency(line, column, base)?;
        let quote = self.currency(line, column, quote)?;
        let price = Decimal::from_str(price.trim())
            .ok()
            .filter(|price| price.is_sign_positive() && !price.is_zero())
            .ok_or_else(|| self.quote_error(line, price_index, price, "not a positive decimal rate"))?;
        Ok(Some(Quote { base, quote, price }))
    }

    fn quote_error(&self, line: u64, column: Option<usize>, value: &str, reason: &str) -> ReconcileError {
        ReconcileError::Quote {
            file: self.file.to_string(),
            line,
            column: self.schema.column_name(column.unwrap_or_default()),
            value: value.to_owned(),
            reason: reason.to_owned(),
        }
    }

    fn count(&self, row: &Row) -> Result<Option<u64>, ReconcileError> {
        let Some(text) = row.get(Field::Count) else {
            return Ok(None);
        };
        text.trim().parse::<u64>().map(Some).map_err(|_| ReconcileError::Count {
            file: self.file.to_string(),
            line: row.line(),
            value: text.to_owned(),
        })
    }

    fn check_signs(&mut self, row: &Row) {
        let (Some(expected_negative), Some(amount)) = (row.row_type.expected_sign_negative(), row.transaction_amount)
        else {
            return;
        };
        if amount.minor_units() != 0 && amount.is_negative() != expected_negative {
            let row_type = row.row_type.as_str();
            let sign = if amount.is_negative() { "negative" } else { "positive" };
            self.warnings
                .add_with(WarningKind::UnexpectedSign, row_type, row.line(), || {
                    format!("{row_type} rows with a {sign} transactionAmountValue; compared by magnitude")
                });
        }
    }

    fn missing_value(&self, line: u64, column: usize) -> ReconcileError {
        ReconcileError::MissingValue {
            file: self.file.to_string(),
            line,
            column: self.schema.column_name(column),
        }
    }
}

/// `<END>` alone, or followed only by empty cells (a spreadsheet export pads it with commas).
fn is_end_marker(record: &Record) -> bool {
    let mut cells = record.iter();
    cells.next().is_some_and(|first| first.trim() == END_MARKER) && cells.all(str::is_empty)
}

fn record_error(file: &str, schema: Option<&Schema>, error: RecordError) -> ReconcileError {
    let file = file.to_owned();
    match error {
        RecordError::Io(source) => ReconcileError::Io { file, source },
        RecordError::NotUtf8 { line } => ReconcileError::NotUtf8 { file, line },
        RecordError::TooLong { line } => ReconcileError::RecordTooLong { file, line },
        RecordError::UnterminatedQuote { line } => ReconcileError::UnterminatedQuote { file, line },
        RecordError::TooManyCells { line } => ReconcileError::TooManyCells { file, line },
        RecordError::StrayQuote { line, cell } => ReconcileError::StrayQuote {
            file,
            line,
            column: schema.map_or_else(|| format!("#{cell}"), |schema| schema.column_name(cell - 1)),
        },
    }
}
