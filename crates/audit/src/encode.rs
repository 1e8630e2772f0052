//! Row encoding for exports: CSV per RFC 4180 (a header line, CRLF line ends, fields quoted only when they
//! hold a comma, a quote, CR or LF, quotes doubled) and JSON Lines (one object per line, LF). Pure: rows are
//! appended to a caller's buffer.
//!
//! Amounts are written as exact decimal strings in both formats (JSON strings, never JSON numbers, so no
//! reader turns them into floats); positions and counts are plain numbers.

use std::fmt::Write as _;
use std::str::FromStr;

use crate::error::AuditError;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 4180 CSV with a header line.
    Csv,
    /// JSON Lines: one JSON object per line.
    JsonLines,
}

impl Format {
    /// The file extension: `csv` or `jsonl`.
    pub fn extension(&self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
        }
    }

    /// The HTTP content type.
    pub fn content_type(&self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8; header=present",
            Format::JsonLines => "application/jsonl; charset=utf-8",
        }
    }
}

impl FromStr for Format {
    type Err = AuditError;

    /// `csv` or `jsonl`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "csv" => Ok(Format::Csv),
            "jsonl" => Ok(Format::JsonLines),
            other => Err(AuditError::BadInput {
                field: "format",
                reason: format!("expected csv or jsonl, got {other:?}"),
            }),
        }
    }
}

/// One field of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell<'a> {
    /// Text (a JSON string).
    Text(&'a str),
    /// A whole number (a JSON number).
    Number(u64),
    /// No value (an empty CSV field, JSON `null`).
    Missing,
}

impl<'a> From<&'a str> for Cell<'a> {
    fn from(text: &'a str) -> Self {
        Cell::Text(text)
    }
}

impl<'a> From<Option<&'a str>> for Cell<'a> {
    fn from(text: Option<&'a str>) -> Self {
        text.map_or(Cell::Missing, Cell::Text)
    }
}

/// Writes rows of fixed columns in one format.
#[derive(Debug, Clone, Copy)]
pub struct Encoder {
    format: Format,
    columns: &'static [&'static str],
}

impl Encoder {
    /// An encoder of rows with `columns` (names as they appear in the CSV header and as JSON keys).
    pub fn new(format: Format, columns: &'static [&'static str]) -> Encoder {
        Encoder { format, columns }
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Appends the header line (CSV only; JSON Lines has none).
    pub fn header(&self, out: &mut Vec<u8>) {
        if self.format == Format::Csv {
            let cells: Vec<Cell<'_>> = self.columns.iter().map(|name| Cell::Text(name)).collect();
            self.csv_row(out, &cells);
        }
    }

    /// Appends one row; `cells` are in column order, one per column.
    pub fn row(&self, out: &mut Vec<u8>, cells: &[Cell<'_>]) {
        debug_assert_eq!(cells.len(), self.columns.len(), "one cell per column");
        match self.format {
            Format::Csv => self.csv_row(out, cells),
            Format::JsonLines => self.json_row(out, cells),
        }
    }

    fn csv_row(&self, out: &mut Vec<u8>, cells: &[Cell<'_>]) {
        for (index, cell) in cells.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            match cell {
                Cell::Text(text) => csv_field(out, text),
                Cell::Number(number) => push_number(out, *number),
                Cell::Missing => {}
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    fn json_row(&self, out: &mut Vec<u8>, cells: &[Cell<'_>]) {
        out.push(b'{');
        for (index, (name, cell)) in self.columns.iter().zip(cells).enumerate() {
            if index > 0 {
                out.push(b',');
            }
            json_string(out, name);
            out.push(b':');
            match cell {
                Cell::Text(text) => json_string(out, text),
                Cell::Number(number) => push_number(out, *number),
                Cell::Missing => out.extend_from_slice(b"null"),
            }
        }
        out.extend_from_slice(b"}\n");
    }
}

fn push_number(out: &mut Vec<u8>, number: u64) {
    let mut text = String::with_capacity(20);
    // Writing to a String cannot fail.
    let _infallible = write!(text, "{number}");
    out.extend_from_slice(text.as_bytes());
}

/// A CSV field, quoted when it holds a separator, a quote or a line break.
fn csv_field(out: &mut Vec<u8>, text: &str) {
    if !text.bytes().any(|byte| matches!(byte, b',' | b'"' | b'\r' | b'\n')) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    out.push(b'"');
    for byte in text.bytes() {
        if byte == b'"' {
            out.push(b'"');
        }
        out.push(byte);
    }
    out.push(b'"');
}

/// A JSON string with every character JSON requires escaped.
fn json_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    for character in text.chars() {
        match character {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            control if u32::from(control) < 0x20 => {
                let mut escaped = String::with_capacity(6);
                let _infallible = write!(escaped, "\\u{:04x}", u32::from(control));
                out.extend_from_slice(escaped.as_bytes());
            }
            other => {
                let mut buffer = [0_u8; 4];
                out.extend_from_slice(other.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// `minor_units` as a decimal with `exponent` fraction digits: `1250` with exponent 2 is `12.50`, with 0 is
/// `1250`. Exact: integer arithmetic only.
pub fn decimal_text(minor_units: u64, exponent: u32) -> String {
    if exponent == 0 {
        return minor_units.to_string();
    }
    let digits = minor_units.to_string();
    // The exponent of an ISO 4217 currency is at most 4, so it always fits in usize.
    let exponent = exponent as usize;
    let padded = if digits.len() <= exponent {
        format!("{}{digits}", "0".repeat(exponent + 1 - digits.len()))
    } else {
        digits
    };
    let (whole, fraction) = padded.split_at(padded.len() - exponent);
    format!("{whole}.{fraction}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: &[&str] = &["id", "note", "count"];

    fn encode(format: Format, rows: &[[Cell<'_>; 3]]) -> String {
        let encoder = Encoder::new(format, COLUMNS);
        let mut out = Vec::new();
        encoder.header(&mut out);
        for row in rows {
            encoder.row(&mut out, row);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_follows_rfc_4180() {
        let text = encode(
            Format::Csv,
            &[
                [Cell::Text("a"), Cell::Text("plain"), Cell::Number(1)],
                [Cell::Text("b"), Cell::Text("say \"hi\", twice\r\nok"), Cell::Missing],
            ],
        );
        assert_eq!(
            text,
            "id,note,count\r\na,plain,1\r\nb,\"say \"\"hi\"\", twice\r\nok\",\r\n"
        );
    }

    #[test]
    fn json_lines_escape_and_parse_back() {
        let text = encode(
            Format::JsonLines,
            &[[Cell::Text("q\"\\\u{1}é"), Cell::Missing, Cell::Number(7)]],
        );
        assert_eq!(text.lines().count(), 1);
        let value: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(value["id"], "q\"\\\u{1}é");
        assert!(value["note"].is_null());
        assert_eq!(value["count"], 7);
    }

    #[test]
    fn decimals_have_the_currency_exponent() {
        assert_eq!(decimal_text(1250, 2), "12.50");
        assert_eq!(decimal_text(5, 2), "0.05");
        assert_eq!(decimal_text(0, 2), "0.00");
        assert_eq!(decimal_text(1250, 0), "1250");
        assert_eq!(decimal_text(1, 3), "0.001");
        for (minor, exponent) in [(123_456_u64, 2_u32), (7, 3), (99, 0), (100, 2)] {
            let decimal = domain::Money::from_minor_units(
                "x",
                match exponent {
                    0 => domain::Currency::parse("x", "JPY").unwrap(),
                    3 => domain::Currency::parse("x", "KWD").unwrap(),
                    _ => domain::Currency::parse("x", "USD").unwrap(),
                },
                minor,
            )
            .unwrap()
            .to_decimal();
            assert_eq!(decimal_text(minor, exponent), decimal.to_string());
        }
    }

    #[test]
    fn formats_parse() {
        assert_eq!("csv".parse::<Format>().unwrap(), Format::Csv);
        assert_eq!("jsonl".parse::<Format>().unwrap(), Format::JsonLines);
        assert!("xml".parse::<Format>().is_err());
    }
}
