//! Antom's report file names, read for what they tell: the report kind, day T or the batch, the settlement
//! currency and the part number. Names can be customised per merchant, so a name that matches no pattern is a
//! warning, never an error.
//!
//! - `transactionItems_<yyyyMMdd>_<seq>.csv`
//! - `settlementItems_[<prefix>_]<currency>_<settlementBatchId>_<seq>.csv`
//! - `settlementSummary_[<prefix>_]<currency>_<settlementBatchId>_<seq>.csv`
//!
//! where `<prefix>` is a `paymentMethodType`, `CONNECTWALLET` or a wallet's `pspName` when settlement is per
//! payment method, and `<seq>` is `000` to `999` (a day or batch may be split into several files).

use time::Date;
use time::macros::format_description;

use crate::kind::ReportKind;

/// What a report file's name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFileName {
    kind: ReportKind,
    transaction_date: Option<Date>,
    settlement_currency: Option<String>,
    settlement_batch_id: Option<String>,
    prefix: Option<String>,
    part: u16,
}

impl ReportFileName {
    /// Reads the last path segment of `name`; `None` when it follows none of Antom's patterns.
    pub fn parse(name: &str) -> Option<Self> {
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        let stem = base.strip_suffix(".csv").or_else(|| base.strip_suffix(".CSV"))?;
        let mut parts: Vec<&str> = stem.split('_').collect();
        let part = parts.pop().filter(|seq| seq.len() == 3)?.parse::<u16>().ok()?;
        let (head, rest) = parts.split_first()?;
        match *head {
            "transactionItems" => {
                let [date] = rest else { return None };
                let date = Date::parse(date, format_description!("[year][month][day]")).ok()?;
                Some(Self {
                    kind: ReportKind::TransactionDetails,
                    transaction_date: Some(date),
                    settlement_currency: None,
                    settlement_batch_id: None,
                    prefix: None,
                    part,
                })
            }
            "settlementItems" | "settlementSummary" => {
                let (prefix, currency, batch) = match rest {
                    [currency, batch] => (None, *currency, *batch),
                    [prefix, currency, batch] => (Some((*prefix).to_owned()), *currency, *batch),
                    _ => return None,
                };
                let plausible_currency = currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase());
                if !plausible_currency || batch.is_empty() {
                    return None;
                }
                Some(Self {
                    kind: if *head == "settlementItems" {
                        ReportKind::SettlementDetails
                    } else {
                        ReportKind::SettlementSummary
                    },
                    transaction_date: None,
                    settlement_currency: Some(currency.to_owned()),
                    settlement_batch_id: Some(batch.to_owned()),
                    prefix,
                    part,
                })
            }
            _ => None,
        }
    }

    /// The report kind the name announces.
    pub fn kind(&self) -> ReportKind {
        self.kind
    }

    /// Day T of a transaction details report.
    pub fn transaction_date(&self) -> Option<Date> {
        self.transaction_date
    }

    /// The settlement currency of a settlement report.
    pub fn settlement_currency(&self) -> Option<&str> {
        self.settlement_currency.as_deref()
    }

    /// The batch of a settlement report.
    pub fn settlement_batch_id(&self) -> Option<&str> {
        self.settlement_batch_id.as_deref()
    }

    /// The per-payment-method prefix (`CARD`, `CONNECTWALLET`, a wallet), if any.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// The part number (`000` is 0).
    pub fn part(&self) -> u16 {
        self.part
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn antoms_patterns_are_read() {
        let details = ReportFileName::parse("/v1/settlements/2188/20260304/transactionItems_20260304_000.csv").unwrap();
        assert_eq!(details.kind(), ReportKind::TransactionDetails);
        assert_eq!(details.transaction_date(), Some(time::macros::date!(2026 - 03 - 04)));
        let items = ReportFileName::parse("settlementItems_USD_2026030611000000001_002.csv").unwrap();
        assert_eq!(
            (
                items.kind(),
                items.settlement_currency(),
                items.settlement_batch_id(),
                items.part()
            ),
            (
                ReportKind::SettlementDetails,
                Some("USD"),
                Some("2026030611000000001"),
                2
            )
        );
        let summary = ReportFileName::parse("settlementSummary_CONNECTWALLET_SGD_77_000.csv").unwrap();
        assert_eq!(
            (summary.kind(), summary.prefix()),
            (ReportKind::SettlementSummary, Some("CONNECTWALLET"))
        );
    }

    #[test]
    fn other_names_are_not_guessed() {
        for name in [
            "SETTLEMENT_DETAIL_123_20260304.xlsx",
            "transactionItems_2026-03-04_000.csv",
            "transactionItems_20260304_0.csv",
            "settlementItems_usd_1_000.csv",
            "report.csv",
            "",
        ] {
            assert_eq!(ReportFileName::parse(name), None, "{name}");
        }
    }
}
