//! RFC 4180 records read from a byte stream, one bounded record at a time.
//!
//! Antom's reports are unquoted in every published sample, but quoting and line endings are not documented, so
//! this reader accepts RFC 4180 quotes (a quoted cell may hold commas, `""` and line breaks), CRLF or LF, and a
//! UTF-8 byte order mark before the header. It is ours rather than a CSV crate's because the report needs three
//! things from it that a general reader does not give: the physical line number where each record starts (every
//! finding names its line), a hard bound on the bytes of one record (a file without line breaks must not grow
//! memory), and typed errors we can name a line and column in.

use std::io::{BufRead, Read};

/// Largest record (one row, with its quoted line breaks) the reader accepts, in bytes. Antom's widest rows are
/// about 60 columns of at most 256 characters.
pub const RECORD_BYTES_MAX: usize = 64 * 1024;
/// Most cells one record may have.
pub const COLUMNS_MAX: usize = 512;

const BYTE_ORDER_MARK: &str = "\u{feff}";

/// One record: its cells, decoded, and the line it starts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Record {
    line: u64,
    text: String,
    ends: Vec<usize>,
}

impl Record {
    /// The 1-based physical line the record starts on.
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// Number of cells.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Cell `index` (0-based), decoded.
    pub(crate) fn get(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)?;
        let start = match index {
            0 => 0,
            _ => self.ends[index - 1],
        };
        self.text.get(start..end)
    }

    /// The cells in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).filter_map(|index| self.get(index))
    }

    /// Whether the record is a blank line (one empty cell).
    pub(crate) fn is_blank(&self) -> bool {
        self.text.trim().is_empty() && self.len() <= 1
    }

    /// Drops a last cell that is empty (a stray trailing comma); answers whether it did.
    pub(crate) fn drop_trailing_empty(&mut self) -> bool {
        if self.len() > 1 && self.get(self.len() - 1) == Some("") {
            self.ends.pop();
            return true;
        }
        false
    }

    fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }
}

/// Why a record could not be read. The reader above turns these into `ReconcileError`s naming the file.
#[derive(Debug)]
pub(crate) enum RecordError {
    Io(std::io::Error),
    NotUtf8 { line: u64 },
    TooLong { line: u64 },
    UnterminatedQuote { line: u64 },
    StrayQuote { line: u64, cell: usize },
    TooManyCells { line: u64 },
}

/// Reads records from a `BufRead`, keeping the physical line count.
#[derive(Debug)]
pub(crate) struct RecordReader<R> {
    reader: R,
    /// Physical lines consumed so far.
    lines: u64,
    raw: Vec<u8>,
    at_start: bool,
}

impl<R: BufRead> RecordReader<R> {
    pub(crate) fn new(reader: R) -> Self {
        Self {
            reader,
            lines: 0,
            raw: Vec::new(),
            at_start: true,
        }
    }

    /// Physical lines consumed so far (the line number of the last one read).
    pub(crate) fn lines(&self) -> u64 {
        self.lines
    }

    /// Whether the stream has no more bytes (a failing last record then means a cut file).
    pub(crate) fn at_end(&mut self) -> bool {
        self.reader.fill_buf().is_ok_and(<[u8]>::is_empty)
    }

    /// Reads the next record into `record`; `Ok(false)` at the end of the stream.
    pub(crate) fn read(&mut self, record: &mut Record) -> Result<bool, RecordError> {
        record.clear();
        self.raw.clear();
        let first_line = self.lines + 1;
        if !self.read_physical_line(first_line)? {
            return Ok(false);
        }
        // An odd number of quote characters means a quoted cell continues on the next line (escaped quotes
        // come in pairs, so the parity is exact).
        while count_quotes(&self.raw) % 2 == 1 {
            if !self.read_physical_line(first_line)? {
                return Err(RecordError::UnterminatedQuote { line: first_line });
            }
        }
        let text = std::str::from_utf8(&self.raw).map_err(|_| RecordError::NotUtf8 { line: first_line })?;
        let mut text = text.strip_suffix('\n').unwrap_or(text);
        text = text.strip_suffix('\r').unwrap_or(text);
        if self.at_start {
            self.at_start = false;
            text = text.strip_prefix(BYTE_ORDER_MARK).unwrap_or(text);
        }
        record.line = first_line;
        record.text.reserve(text.len());
        split_cells(text, record)?;
        if record.len() > COLUMNS_MAX {
            return Err(RecordError::TooManyCells { line: first_line });
        }
        Ok(true)
    }

    /// Appends one physical line (with its `\n`, if any) to `raw`; `Ok(false)` when the stream had no more bytes.
    fn read_physical_line(&mut self, first_line: u64) -> Result<bool, RecordError> {
        let room = RECORD_BYTES_MAX.saturating_sub(self.raw.len());
        // One byte more than the room tells "exactly full" from "too long".
        let limit = u64::try_from(room).unwrap_or(u64::MAX).saturating_add(1);
        let read = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.raw)
            .map_err(RecordError::Io)?;
        if read == 0 {
            return Ok(false);
        }
        if self.raw.len() > RECORD_BYTES_MAX {
            return Err(RecordError::TooLong { line: first_line });
        }
        self.lines += 1;
        Ok(true)
    }
}

fn count_quotes(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&byte| byte == b'"').count()
}

/// Splits one record's text into cells. Quote handling per RFC 4180: a cell that starts with `"` runs to the
/// next lone `"`, `""` inside it is one quote, and the closing quote must be followed by a comma or the end.
fn split_cells(text: &str, record: &mut Record) -> Result<(), RecordError> {
    if !text.contains('"') {
        for cell in text.split(',') {
            record.text.push_str(cell);
            record.ends.push(record.text.len());
        }
        return Ok(());
    }
    let bytes = text.as_bytes();
    let mut position = 0;
    loop {
        let cell = record.ends.len() + 1;
        if bytes.get(position) == Some(&b'"') {
            position = quoted_cell(text, position + 1, record, cell)?;
        } else {
            let end = text[position..]
                .find(',')
                .map_or(text.len(), |offset| position + offset);
            let cell_text = &text[position..end];
            if cell_text.contains('"') {
                return Err(RecordError::StrayQuote {
                    line: record.line,
                    cell,
                });
            }
            record.text.push_str(cell_text);
            position = end;
        }
        record.ends.push(record.text.len());
        match bytes.get(position) {
            Some(b',') => position += 1,
            _ => return Ok(()),
        }
    }
}

/// Decodes a quoted cell whose content starts at `start`; returns the position after the closing quote.
fn quoted_cell(text: &str, start: usize, record: &mut Record, cell: usize) -> Result<usize, RecordError> {
    let bytes = text.as_bytes();
    let mut position = start;
    loop {
        let Some(offset) = text[position..].find('"') else {
            return Err(RecordError::UnterminatedQuote { line: record.line });
        };
        record.text.push_str(&text[position..position + offset]);
        position += offset + 1;
        match bytes.get(position) {
            Some(b'"') => {
                record.text.push('"');
                position += 1;
            }
            None | Some(b',') => return Ok(position),
            Some(_) => {
                return Err(RecordError::StrayQuote {
                    line: record.line,
                    cell,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(input: &[u8]) -> Result<Vec<(u64, Vec<String>)>, RecordError> {
        let mut reader = RecordReader::new(input);
        let mut record = Record::default();
        let mut out = Vec::new();
        while reader.read(&mut record)? {
            out.push((record.line(), record.iter().map(str::to_owned).collect()));
        }
        Ok(out)
    }

    #[test]
    fn plain_quoted_crlf_bom_and_line_numbers() {
        let input = "\u{feff}a,b,c\r\n1,\"x,y\",\"say \"\"hi\"\"\"\r\n2,\"two\nlines\",\r\n3,,\n".as_bytes();
        let parsed = records(input).unwrap();
        assert_eq!(
            parsed,
            vec![
                (1, vec!["a".into(), "b".into(), "c".into()]),
                (2, vec!["1".into(), "x,y".into(), "say \"hi\"".into()]),
                (3, vec!["2".into(), "two\nlines".into(), String::new()]),
                (5, vec!["3".into(), String::new(), String::new()]),
            ]
        );
    }

    #[test]
    fn a_last_line_without_a_line_break_is_read() {
        assert_eq!(records(b"a,b\n<END>").unwrap()[1], (2, vec!["<END>".to_owned()]));
    }

    #[test]
    fn malformed_records_are_typed_errors_with_their_line() {
        assert!(matches!(
            records(b"a\n\"open\nstill open"),
            Err(RecordError::UnterminatedQuote { line: 2 })
        ));
        assert!(matches!(
            records(b"a,b\n1,\"x\"y\n"),
            Err(RecordError::StrayQuote { line: 2, cell: 2 })
        ));
        assert!(matches!(
            records(b"a,b\n1,x\"\"y\n"),
            Err(RecordError::StrayQuote { line: 2, cell: 2 })
        ));
        assert!(matches!(
            records(b"a\n\xff\xfe\n"),
            Err(RecordError::NotUtf8 { line: 2 })
        ));
        let long = vec![b'x'; RECORD_BYTES_MAX + 1];
        assert!(matches!(records(&long), Err(RecordError::TooLong { line: 1 })));
        let wide = ",".repeat(COLUMNS_MAX);
        assert!(matches!(
            records(wide.as_bytes()),
            Err(RecordError::TooManyCells { line: 1 })
        ));
    }

    #[test]
    fn a_record_of_exactly_the_maximum_is_accepted() {
        let mut exact = vec![b'x'; RECORD_BYTES_MAX - 1];
        exact.push(b'\n');
        assert_eq!(records(&exact).unwrap().len(), 1);
    }
}
