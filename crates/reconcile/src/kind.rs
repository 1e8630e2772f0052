//! Which of Antom's three reports a file is: told by its file name or its header row.

use std::fmt;

/// Which of Antom's three reports a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportKind {
    /// `transactionItems_*`: everything that happened on day T.
    TransactionDetails,
    /// `settlementItems_*`: the rows of one settlement batch.
    SettlementDetails,
    /// `settlementSummary_*`: one row per `summaryType` of a batch, plus TOTAL.
    SettlementSummary,
}

impl ReportKind {
    /// A stable name: `TRANSACTION_DETAILS`, `SETTLEMENT_DETAILS`, `SETTLEMENT_SUMMARY`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::TransactionDetails => "TRANSACTION_DETAILS",
            Self::SettlementDetails => "SETTLEMENT_DETAILS",
            Self::SettlementSummary => "SETTLEMENT_SUMMARY",
        }
    }
}

impl fmt::Display for ReportKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}
