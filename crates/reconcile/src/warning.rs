//! What the parser accepted but did not fully understand, said once per kind and subject with a count and the
//! first line, so a million rows with the same oddity make one warning, not a million, and nothing is dropped
//! silently.

/// Most distinct warnings kept per file; past it only [`Warnings::suppressed`] grows.
pub const WARNINGS_DISTINCT_MAX: usize = 100;

/// What kind of oddity a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WarningKind {
    /// A header column Antom does not document; its cells are kept on every row.
    UnknownColumn,
    /// Two names of one field (e.g. `PSP` and `acquirer`); the current generation's name is used.
    ShadowedColumn,
    /// A column that looks like an amount but has no currency column; kept as text.
    AmountWithoutCurrency,
    /// An amount column that is not a fee we know; kept, and left out of the settlement formula.
    UnknownAmountColumn,
    /// The header has none of the tell-tale columns of a generation.
    UnknownGeneration,
    /// The file name matches none of Antom's patterns (names can be customised).
    FileNameNotRecognised,
    /// The file name and the header disagree on the report kind; the header wins.
    KindDiffersFromFileName,
    /// A `transactionType`/`summaryType` value we do not know; the row is kept, counted, not reconciled.
    UnknownRowType,
    /// A `status` value we do not know.
    UnknownStatus,
    /// An amount with more decimals than its currency has, all of them zero: exact, accepted.
    ExtraZeroDecimals,
    /// A sign that disagrees with the row type (a positive REFUND, a negative REFUND_REVERSAL).
    UnexpectedSign,
    /// A transaction details row without a settlement amount (fees not final yet: re-fetch on T+2).
    SettlementAmountEmpty,
    /// A row with one empty cell more than the header (a stray trailing comma), dropped.
    TrailingEmptyCell,
    /// An empty line before `<END>`, skipped.
    BlankLine,
    /// A settlement summary without a TOTAL row.
    NoTotalRow,
    /// Rows of one settlement file in more than one settlement currency.
    SeveralSettlementCurrencies,
    /// A settled REFUND row of a settlement details file without a settlement date the parser can read: the
    /// journal books its lines on the day the run was recorded.
    SettlementDateUnreadable,
}

/// One warning: what, about which subject, how often, and where first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The kind.
    pub kind: WarningKind,
    /// The column, value or type it is about (empty when the kind says it all).
    pub subject: String,
    /// A sentence for people.
    pub message: String,
    /// Line of the first occurrence (1 is the header).
    pub first_line: u64,
    /// How many times it occurred.
    pub count: u64,
}

/// The warnings of one file, bounded by [`WARNINGS_DISTINCT_MAX`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Warnings {
    entries: Vec<Warning>,
    suppressed: u64,
}

impl Warnings {
    /// Counts one occurrence; the message is kept from the first.
    pub(crate) fn add(&mut self, kind: WarningKind, subject: &str, line: u64, message: String) {
        self.add_with(kind, subject, line, || message);
    }

    /// Like [`Warnings::add`], building the message only for a new warning (rows call this per cell).
    pub(crate) fn add_with(&mut self, kind: WarningKind, subject: &str, line: u64, message: impl FnOnce() -> String) {
        if let Some(entry) = self
            .entries
            .iter_mut()
            .find(|entry| entry.kind == kind && entry.subject == subject)
        {
            entry.count += 1;
            return;
        }
        if self.entries.len() >= WARNINGS_DISTINCT_MAX {
            self.suppressed += 1;
            return;
        }
        self.entries.push(Warning {
            kind,
            subject: subject.to_owned(),
            message: message(),
            first_line: line,
            count: 1,
        });
    }

    /// The warnings, in the order they first occurred.
    pub fn iter(&self) -> impl Iterator<Item = &Warning> {
        self.entries.iter()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.suppressed == 0
    }

    /// Occurrences not kept because [`WARNINGS_DISTINCT_MAX`] distinct warnings were reached.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_count_and_distinct_ones_are_bounded() {
        let mut warnings = Warnings::default();
        for line in 2..10 {
            warnings.add(WarningKind::UnexpectedSign, "REFUND", line, "positive refund".into());
        }
        let first = warnings.iter().next().unwrap();
        assert_eq!((first.first_line, first.count), (2, 8));
        for index in 0..WARNINGS_DISTINCT_MAX + 5 {
            warnings.add(WarningKind::UnknownStatus, &index.to_string(), 3, "status".into());
        }
        assert_eq!(warnings.iter().count(), WARNINGS_DISTINCT_MAX);
        assert_eq!(warnings.suppressed(), 6);
    }
}
