//! One data row of a report: its line, every cell as the file had it, and the values the parser understood
//! (type, status, amounts, quote, fees, count).

use std::fmt;
use std::sync::Arc;

use domain::Currency;
use rust_decimal::Decimal;

use crate::amount::SignedAmount;
use crate::record::Record;
use crate::schema::{FeeKind, Field, Schema};

/// `transactionType` of a details row or `summaryType` of a summary row. G2 and G3 spell the collateral and
/// reserve types differently; both spellings parse to one variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RowType {
    /// `PAYMENT`.
    Payment,
    /// `AUTHORIZATION`.
    Authorization,
    /// `CAPTURE`.
    Capture,
    /// `VOID`.
    Void,
    /// `CANCEL`.
    Cancel,
    /// `REFUND`: money back to the buyer (negative amounts).
    Refund,
    /// `REFUND_REVERSAL`: the acquirer rejected a refund Antom had reported successful; money returns.
    RefundReversal,
    /// `PAYMENT_REVERSAL`.
    PaymentReversal,
    /// `DISPUTE`.
    Dispute,
    /// `DISPUTE_REVERSAL`.
    DisputeReversal,
    /// `RAPID_DISPUTE_RESOLUTION`.
    RapidDisputeResolution,
    /// `CDRN`.
    Cdrn,
    /// `SETTLEMENT_FEE`: amount in `settlementAmountValue` only.
    SettlementFee,
    /// `ADJUSTMENT_FEE`: amount in `settlementAmountValue` only.
    AdjustmentFee,
    /// `COLLATERAL_WITHHELD` (G2 `COLLATERAL_WITHHOLDING`).
    CollateralWithheld,
    /// `COLLATERAL_RELEASED` (G2 `COLLATERAL_RELEASE`).
    CollateralReleased,
    /// `RESERVE` (G2 `RESERVE_WITHHOLDING`).
    Reserve,
    /// `RESERVE_RELEASED` (G2 `RESERVE_RELEASE`).
    ReserveReleased,
    /// `TOTAL` (summary only).
    Total,
    /// Anything else, as written.
    Other(String),
}

impl RowType {
    /// Reads a type; unknown values become [`RowType::Other`].
    pub fn parse(text: &str) -> Self {
        // The two types of nearly every row, without the case-insensitive scan below.
        match text {
            "REFUND" => return Self::Refund,
            "PAYMENT" => return Self::Payment,
            _ => {}
        }
        let known = [
            (Self::Payment, &["PAYMENT"][..]),
            (Self::Authorization, &["AUTHORIZATION"]),
            (Self::Capture, &["CAPTURE"]),
            (Self::Void, &["VOID"]),
            (Self::Cancel, &["CANCEL"]),
            (Self::Refund, &["REFUND"]),
            (Self::RefundReversal, &["REFUND_REVERSAL"]),
            (Self::PaymentReversal, &["PAYMENT_REVERSAL"]),
            (Self::Dispute, &["DISPUTE"]),
            (Self::DisputeReversal, &["DISPUTE_REVERSAL"]),
            (Self::RapidDisputeResolution, &["RAPID_DISPUTE_RESOLUTION"]),
            (Self::Cdrn, &["CDRN"]),
            (Self::SettlementFee, &["SETTLEMENT_FEE"]),
            (Self::AdjustmentFee, &["ADJUSTMENT_FEE"]),
            (
                Self::CollateralWithheld,
                &["COLLATERAL_WITHHELD", "COLLATERAL_WITHHOLDING"],
            ),
            (Self::CollateralReleased, &["COLLATERAL_RELEASED", "COLLATERAL_RELEASE"]),
            (Self::Reserve, &["RESERVE", "RESERVE_WITHHOLDING"]),
            (Self::ReserveReleased, &["RESERVE_RELEASED", "RESERVE_RELEASE"]),
            (Self::Total, &["TOTAL"]),
        ];
        let text = text.trim();
        known
            .into_iter()
            .find(|(_, names)| names.iter().any(|name| name.eq_ignore_ascii_case(text)))
            .map_or_else(|| Self::Other(text.to_owned()), |(row_type, _)| row_type)
    }

    /// The current generation's spelling (or the text of an unknown type).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Payment => "PAYMENT",
            Self::Authorization => "AUTHORIZATION",
            Self::Capture => "CAPTURE",
            Self::Void => "VOID",
            Self::Cancel => "CANCEL",
            Self::Refund => "REFUND",
            Self::RefundReversal => "REFUND_REVERSAL",
            Self::PaymentReversal => "PAYMENT_REVERSAL",
            Self::Dispute => "DISPUTE",
            Self::DisputeReversal => "DISPUTE_REVERSAL",
            Self::RapidDisputeResolution => "RAPID_DISPUTE_RESOLUTION",
            Self::Cdrn => "CDRN",
            Self::SettlementFee => "SETTLEMENT_FEE",
            Self::AdjustmentFee => "ADJUSTMENT_FEE",
            Self::CollateralWithheld => "COLLATERAL_WITHHELD",
            Self::CollateralReleased => "COLLATERAL_RELEASED",
            Self::Reserve => "RESERVE",
            Self::ReserveReleased => "RESERVE_RELEASED",
            Self::Total => "TOTAL",
            Self::Other(text) => text,
        }
    }

    /// The sign a transaction amount of this type should have: refunds take money from the merchant, a reversal
    /// of a refund gives it back. `None` where the documents do not say.
    pub fn expected_sign_negative(&self) -> Option<bool> {
        match self {
            Self::Payment | Self::Capture | Self::RefundReversal => Some(false),
            Self::Refund => Some(true),
            _ => None,
        }
    }
}

impl fmt::Display for RowType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The `status` of a G3 transaction details row (the transaction's latest status). The values are not
/// documented, so several spellings are accepted for each meaning.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReportStatus {
    /// `SUCCESS`, `SUCCEEDED`, `S`.
    Success,
    /// `FAIL`, `FAILED`, `F`.
    Failed,
    /// `PROCESSING`, `PENDING`, `INIT`, `U`.
    Processing,
    /// Anything else, as written (the row is reported as not understood).
    Other(String),
}

impl ReportStatus {
    /// Reads a status value.
    pub fn parse(text: &str) -> Self {
        if text == "SUCCESS" {
            return Self::Success;
        }
        let text = text.trim();
        let is = |names: &[&str]| names.iter().any(|name| name.eq_ignore_ascii_case(text));
        if is(&["SUCCESS", "SUCCEEDED", "S"]) {
            Self::Success
        } else if is(&["FAIL", "FAILED", "F"]) {
            Self::Failed
        } else if is(&["PROCESSING", "PENDING", "INIT", "U"]) {
            Self::Processing
        } else {
            Self::Other(text.to_owned())
        }
    }

    /// The status as one word: `SUCCESS`, `FAIL`, `PROCESSING`, or the text of a status not understood.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Success => "SUCCESS",
            Self::Failed => "FAIL",
            Self::Processing => "PROCESSING",
            Self::Other(text) => text,
        }
    }
}

/// `quoteCurrencyPair` and `quotePrice`: one unit of `base` is `price` units of `quote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    /// Left side of the pair.
    pub base: Currency,
    /// Right side of the pair.
    pub quote: Currency,
    /// The rate, exactly as the file wrote it (its scale is the precision the report shows).
    pub price: Decimal,
}

/// A fee cell of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fee {
    /// Which fee.
    pub kind: FeeKind,
    /// Its signed amount (charged fees are negative).
    pub amount: SignedAmount,
}

/// The Antom ids of a row, as far as its generation tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AntomIds<'a> {
    /// G1/G2: `transactionId` is the refundId of a REFUND row, `originalTransactionId` the paymentId.
    Split {
        /// `transactionId`.
        refund_id: Option<&'a str>,
        /// `originalTransactionId`.
        payment_id: Option<&'a str>,
    },
    /// G3: one `transactionId`, the paymentId per Antom's Chinese pages, possibly the refundId (unconfirmed).
    Shared {
        /// `transactionId`.
        transaction_id: Option<&'a str>,
    },
}

/// One data row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub(crate) schema: Arc<Schema>,
    pub(crate) record: Record,
    pub(crate) row_type: RowType,
    pub(crate) status: Option<ReportStatus>,
    pub(crate) transaction_amount: Option<SignedAmount>,
    pub(crate) settlement_amount: Option<SignedAmount>,
    pub(crate) converted_amount: Option<SignedAmount>,
    pub(crate) quote: Option<Quote>,
    pub(crate) fees: Vec<Fee>,
    pub(crate) count: Option<u64>,
}

impl Row {
    /// The 1-based line the row starts on (the header is line 1).
    pub fn line(&self) -> u64 {
        self.record.line()
    }

    /// The header the row belongs to.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// `transactionType` (details) or `summaryType` (summary).
    pub fn row_type(&self) -> &RowType {
        &self.row_type
    }

    /// The row's `status`, where the report has one and the cell is not empty.
    pub fn status(&self) -> Option<&ReportStatus> {
        self.status.as_ref()
    }

    /// `transactionAmountValue` in `transactionCurrency`.
    pub fn transaction_amount(&self) -> Option<SignedAmount> {
        self.transaction_amount
    }

    /// `settlementAmountValue` in `settlementCurrency`.
    pub fn settlement_amount(&self) -> Option<SignedAmount> {
        self.settlement_amount
    }

    /// `convertedTransactionAmountValue` in `convertedCurrency` (G3).
    pub fn converted_amount(&self) -> Option<SignedAmount> {
        self.converted_amount
    }

    /// The FX quote, when the row has one.
    pub fn quote(&self) -> Option<Quote> {
        self.quote
    }

    /// The non-empty fee cells.
    pub fn fees(&self) -> &[Fee] {
        &self.fees
    }

    /// The row's settlement date: G3's `settlementInitiatedDate` or the date part of G1/G2's `settlementTime`, as
    /// printed, in the report's own offset ([`domain::settlement_date_of`]); `None` when the cell is empty or not
    /// a date.
    pub fn settlement_date(&self) -> Option<time::Date> {
        self.get(Field::SettlementTime).and_then(domain::settlement_date_of)
    }

    /// `count` of a summary row.
    pub fn count(&self) -> Option<u64> {
        self.count
    }

    /// The cell of `field`, `None` when the header lacks the column or the cell is empty.
    pub fn get(&self, field: Field) -> Option<&str> {
        self.cell(self.schema.field(field)?)
    }

    /// The cell of column `index`, `None` when empty.
    pub fn cell(&self, index: usize) -> Option<&str> {
        self.record.get(index).filter(|cell| !cell.is_empty())
    }

    /// The cell under the header name `column` (any column, known or not), `None` when absent or empty.
    pub fn cell_named(&self, column: &str) -> Option<&str> {
        let index = self.schema.columns().iter().position(|name| name == column)?;
        self.cell(index)
    }

    /// The cells of columns the parser does not know, as `(column, value)`, empty ones left out.
    pub fn unknown_cells(&self) -> impl Iterator<Item = (&str, &str)> {
        self.schema
            .unknown_columns()
            .iter()
            .filter_map(|&index| Some((self.schema.columns()[index].as_str(), self.cell(index)?)))
    }

    /// Every cell as the file had it, in header order.
    pub fn cells(&self) -> impl Iterator<Item = &str> {
        self.record.iter()
    }

    /// `transactionRequestId`: the merchant's refundRequestId on REFUND and REFUND_REVERSAL rows.
    pub fn transaction_request_id(&self) -> Option<&str> {
        self.get(Field::TransactionRequestId)
    }

    /// The row's Antom ids, as its generation defines them.
    pub fn antom_ids(&self) -> AntomIds<'_> {
        if self.schema.transaction_id_is_refund_id() {
            AntomIds::Split {
                refund_id: self.get(Field::TransactionId),
                payment_id: self.get(Field::OriginalTransactionId),
            }
        } else {
            AntomIds::Shared {
                transaction_id: self.get(Field::TransactionId),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_of_a_type_are_one_type() {
        assert_eq!(RowType::parse("COLLATERAL_WITHHOLDING"), RowType::CollateralWithheld);
        assert_eq!(RowType::parse("COLLATERAL_WITHHELD"), RowType::CollateralWithheld);
        assert_eq!(RowType::parse("RESERVE_WITHHOLDING"), RowType::Reserve);
        assert_eq!(RowType::parse("reserve_release"), RowType::ReserveReleased);
        assert_eq!(RowType::parse("refund").as_str(), "REFUND");
        assert_eq!(RowType::parse("NEW_THING"), RowType::Other("NEW_THING".into()));
    }

    #[test]
    fn statuses_accept_every_spelling_we_expect() {
        assert_eq!(ReportStatus::parse("SUCCESS"), ReportStatus::Success);
        assert_eq!(ReportStatus::parse("s"), ReportStatus::Success);
        assert_eq!(ReportStatus::parse("FAILED"), ReportStatus::Failed);
        assert_eq!(ReportStatus::parse("PENDING"), ReportStatus::Processing);
        assert_eq!(ReportStatus::parse("CLOSED"), ReportStatus::Other("CLOSED".into()));
    }
}
