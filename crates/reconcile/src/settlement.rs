//! The settlement batch checks, as pure functions over parsed rows:
//!
//! - [`check_settlement_row`]: a row's `settlementAmountValue` is its transaction amount (converted by the
//!   quote price when the currencies differ) plus all its fee columns, within the rounding the report shows;
//! - [`BatchTotals`]: the detail rows of a batch, summed per type while streaming (one entry per type, so
//!   memory stays flat), compared with the settlement summary's per-type rows and its TOTAL row.

use std::collections::BTreeMap;
use std::sync::Arc;

use domain::Currency;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::amount::SignedAmount;
use crate::error::ReconcileError;
use crate::matcher::{Finding, FindingKind, ReportLine};
use crate::row::{Quote, Row, RowType};
use crate::schema::FeeKind;

/// Most distinct (row type, settlement currency) pairs one batch may have; Antom documents about 25 types.
pub const ROW_TYPES_MAX: usize = 64;

/// Checks Antom's settlement formula on one details row: `settlement = gross + Σ fees`, where gross is the
/// transaction amount in the settlement currency. `None` when the row satisfies it or has nothing to check
/// (no settlement amount yet; fee-only types without a transaction amount).
///
/// Same-currency rows must add up exactly. When the transaction currency differs, the gross is converted by
/// `quotePrice` (multiplied when the transaction currency is the pair's left side, divided when it is the right
/// side), and the tolerance is what the report's own precision allows: half a unit of the price's last printed
/// digit applied to the amount, plus half a minor unit of the settlement currency for the rounding of the
/// converted amount. (Antom's own validator uses a flat 0.02.)
pub fn check_settlement_row(row: &Row, file: &Arc<str>) -> Option<Finding> {
    let settlement = row.settlement_amount()?;
    let transaction = row.transaction_amount()?;
    let finding = |kind: FindingKind, message: String| Finding {
        kind,
        report: Some(ReportLine {
            file: Arc::clone(file),
            line: row.line(),
        }),
        refund_request_id: row.transaction_request_id().map(str::to_owned),
        refund_id: None,
        report_amount: Some(settlement),
        ledger: None,
        report_status: None,
        settlement: None,
        message,
    };
    let target = settlement.currency();
    let gross = match gross_in(row, transaction, target) {
        Ok(gross) => gross,
        Err(reason) => {
            return Some(finding(
                FindingKind::NotUnderstood,
                format!("settlement not checked: {reason}"),
            ));
        }
    };
    let mut expected = gross;
    for fee in row.fees() {
        let converted = match fee.amount.currency() {
            currency if currency == target => Ok(Converted::exact(fee.amount.to_decimal())),
            currency if currency == transaction.currency() => convert(fee.amount, target, row.quote()),
            currency => Err(format!(
                "{} fee in {currency}, settlement in {target}",
                fee.kind.as_str()
            )),
        };
        match converted.and_then(|converted| expected.plus(converted)) {
            Ok(sum) => expected = sum,
            Err(reason) => {
                return Some(finding(
                    FindingKind::NotUnderstood,
                    format!("settlement not checked: {reason}"),
                ));
            }
        }
    }
    let difference = (settlement.to_decimal() - expected.value).abs();
    if difference <= expected.tolerance {
        return None;
    }
    Some(finding(
        FindingKind::SettlementMismatch,
        format!(
            "settlementAmountValue {settlement} is not transactionAmountValue {transaction} plus fees ({} {target} \
             expected, tolerance {})",
            expected.value.normalize(),
            expected.tolerance.normalize()
        ),
    ))
}

/// An amount in the settlement currency with the error bound of its conversion.
#[derive(Debug, Clone, Copy)]
struct Converted {
    value: Decimal,
    tolerance: Decimal,
}

impl Converted {
    fn exact(value: Decimal) -> Self {
        Self {
            value,
            tolerance: Decimal::ZERO,
        }
    }

    fn plus(self, other: Converted) -> Result<Converted, String> {
        let too_large = || "amounts too large to add".to_owned();
        Ok(Self {
            value: self.value.checked_add(other.value).ok_or_else(too_large)?,
            tolerance: self.tolerance.checked_add(other.tolerance).ok_or_else(too_large)?,
        })
    }
}

fn gross_in(row: &Row, transaction: SignedAmount, target: Currency) -> Result<Converted, String> {
    if transaction.currency() == target {
        return Ok(Converted::exact(transaction.to_decimal()));
    }
    if let Some(converted) = row.converted_amount().filter(|amount| amount.currency() == target) {
        // G3's convertedTransactionAmountValue is the gross after FX, already rounded to `target`.
        return Ok(Converted::exact(converted.to_decimal()));
    }
    convert(transaction, target, row.quote())
}

/// Converts `amount` into `target` by the row's quote, with the tolerance the quote's printed precision gives.
fn convert(amount: SignedAmount, target: Currency, quote: Option<Quote>) -> Result<Converted, String> {
    let from = amount.currency();
    let Some(quote) = quote else {
        return Err(format!("amount in {from}, settlement in {target}, and no quote price"));
    };
    let value = amount.to_decimal();
    let half_digit = Decimal::new(5, quote.price.scale() + 1);
    let too_large = || format!("{amount} too large to convert");
    let (exact, price_error) = if quote.base == from && quote.quote == target {
        let exact = value.checked_mul(quote.price).ok_or_else(too_large)?;
        (exact, value.abs().checked_mul(half_digit).ok_or_else(too_large)?)
    } else if quote.base == target && quote.quote == from {
        let low_price = quote.price - half_digit;
        if low_price <= Decimal::ZERO {
            return Err(format!("quote price {} too small to divide by", quote.price));
        }
        let exact = value.checked_div(quote.price).ok_or_else(too_large)?;
        let at_low = value.checked_div(low_price).ok_or_else(too_large)?;
        (exact, (at_low - exact).abs())
    } else {
        return Err(format!(
            "quote pair {}/{} does not relate {from} and {target}",
            quote.base, quote.quote
        ));
    };
    let half_minor_unit = Decimal::new(5, target.exponent() + 1);
    Ok(Converted {
        value: exact.round_dp_with_strategy(target.exponent() + 6, RoundingStrategy::MidpointNearestEven),
        tolerance: price_error + half_minor_unit,
    })
}

/// Count and sums of one row type in one settlement currency, in minor units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeTotals {
    /// Rows.
    pub count: u64,
    /// Sum of `settlementAmountValue`.
    pub settlement_minor_units: i128,
    /// Sums of each fee column in the settlement currency (fees in other currencies are not summed).
    pub fees_minor_units: BTreeMap<FeeKind, i128>,
    /// The first line this type was seen on (summary rows: the row's line).
    pub first_line: u64,
}

impl TypeTotals {
    fn add_row(&mut self, row: &Row, settlement: SignedAmount) {
        if self.count == 0 {
            self.first_line = row.line();
        }
        self.count += 1;
        self.settlement_minor_units += i128::from(settlement.minor_units());
        for fee in row
            .fees()
            .iter()
            .filter(|fee| fee.amount.currency() == settlement.currency())
        {
            *self.fees_minor_units.entry(fee.kind).or_default() += i128::from(fee.amount.minor_units());
        }
    }

    fn add_totals(&mut self, other: &TypeTotals) {
        self.count += other.count;
        self.settlement_minor_units += other.settlement_minor_units;
        for (kind, sum) in &other.fees_minor_units {
            *self.fees_minor_units.entry(*kind).or_default() += sum;
        }
    }
}

/// Rows of a settlement batch summed per (type, settlement currency): fed one details row or summary row at
/// a time, bounded by [`ROW_TYPES_MAX`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchTotals {
    by_type: BTreeMap<(RowType, Currency), TypeTotals>,
}

impl BatchTotals {
    /// Adds one settlement details row (rows without a settlement amount count with zero in no currency and are
    /// left out: the formula check reports them).
    pub fn add_detail(&mut self, row: &Row, file: &str) -> Result<(), ReconcileError> {
        let Some(settlement) = row.settlement_amount() else {
            return Ok(());
        };
        self.entry(row.row_type().clone(), settlement.currency(), file)?
            .add_row(row, settlement);
        Ok(())
    }

    /// Adds one settlement summary row; a second row of the same type and currency is a
    /// [`FindingKind::Duplicate`] finding and is not added.
    pub fn add_summary(&mut self, row: &Row, file: &Arc<str>) -> Result<Option<Finding>, ReconcileError> {
        let Some(settlement) = row.settlement_amount() else {
            return Ok(Some(summary_finding(
                file,
                row.line(),
                FindingKind::NotUnderstood,
                None,
                format!("{} summary row without settlementAmountValue", row.row_type()),
            )));
        };
        let entry = self.entry(row.row_type().clone(), settlement.currency(), file)?;
        if entry.count > 0 || entry.first_line > 0 {
            let first = entry.first_line;
            return Ok(Some(summary_finding(
                file,
                row.line(),
                FindingKind::Duplicate,
                Some(settlement),
                format!(
                    "a second {} summary row (the first is line {first}); not used",
                    row.row_type()
                ),
            )));
        }
        entry.first_line = row.line();
        entry.count = row.count().unwrap_or_default();
        entry.settlement_minor_units = i128::from(settlement.minor_units());
        for fee in row
            .fees()
            .iter()
            .filter(|fee| fee.amount.currency() == settlement.currency())
        {
            entry
                .fees_minor_units
                .insert(fee.kind, i128::from(fee.amount.minor_units()));
        }
        Ok(None)
    }

    fn entry(&mut self, row_type: RowType, currency: Currency, file: &str) -> Result<&mut TypeTotals, ReconcileError> {
        let key = (row_type, currency);
        if !self.by_type.contains_key(&key) && self.by_type.len() >= ROW_TYPES_MAX {
            return Err(ReconcileError::TooManyRowTypes {
                file: file.to_owned(),
                max: ROW_TYPES_MAX,
            });
        }
        Ok(self.by_type.entry(key).or_default())
    }

    /// The totals of one type and currency.
    pub fn get(&self, row_type: &RowType, currency: Currency) -> Option<&TypeTotals> {
        self.by_type.get(&(row_type.clone(), currency))
    }

    /// Every (type, currency) with its totals.
    pub fn iter(&self) -> impl Iterator<Item = (&RowType, Currency, &TypeTotals)> {
        self.by_type
            .iter()
            .map(|((row_type, currency), totals)| (row_type, *currency, totals))
    }

    /// Sum over every type except TOTAL, per currency.
    fn grand_totals(&self) -> BTreeMap<Currency, TypeTotals> {
        let mut grand: BTreeMap<Currency, TypeTotals> = BTreeMap::new();
        for ((row_type, currency), totals) in &self.by_type {
            if *row_type != RowType::Total {
                grand.entry(*currency).or_default().add_totals(totals);
            }
        }
        grand
    }
}

/// Compares a batch's detail totals with its summary: every summary type row with the details of that type,
/// the TOTAL row with all details and with the sum of the summary's own rows, and every detail type that the
/// summary lacks. One finding per disagreement, on the summary's line. A summary without a TOTAL row (G3 may
/// omit it) is compared per type only.
pub fn compare_with_summary(details: &BatchTotals, summary: &BatchTotals, summary_file: &Arc<str>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let detail_grand = details.grand_totals();
    let summary_grand = summary.grand_totals();
    let empty = TypeTotals::default();
    for (row_type, currency, row) in summary.iter() {
        let (expected, what) = if *row_type == RowType::Total {
            (
                detail_grand.get(&currency).unwrap_or(&empty),
                "all detail rows".to_owned(),
            )
        } else {
            (
                details.get(row_type, currency).unwrap_or(&empty),
                format!("the {row_type} detail rows"),
            )
        };
        compare_totals(summary_file, row_type, currency, row, expected, &what, &mut findings);
        if *row_type == RowType::Total {
            let own = summary_grand.get(&currency).unwrap_or(&empty);
            compare_totals(
                summary_file,
                row_type,
                currency,
                row,
                own,
                "the summary's own rows",
                &mut findings,
            );
        }
    }
    for (row_type, currency, totals) in details.iter() {
        if totals.count > 0 && summary.get(row_type, currency).is_none() {
            findings.push(summary_finding(
                summary_file,
                0,
                FindingKind::SummaryMismatch,
                SignedAmount::from_minor_units(currency, clamp(totals.settlement_minor_units)),
                format!(
                    "{} {row_type} detail rows in {currency} (first at line {}), the summary has no {row_type} row",
                    totals.count, totals.first_line
                ),
            ));
        }
    }
    findings
}

fn compare_totals(
    file: &Arc<str>,
    row_type: &RowType,
    currency: Currency,
    row: &TypeTotals,
    expected: &TypeTotals,
    what: &str,
    findings: &mut Vec<Finding>,
) {
    let amount = |minor_units: i128| {
        SignedAmount::from_minor_units(currency, clamp(minor_units)).map_or_else(
            || format!("{minor_units} minor units of {currency}"),
            |amount| amount.to_string(),
        )
    };
    let mut differences = Vec::new();
    if row.count != expected.count {
        differences.push(format!("count {} against {} in {what}", row.count, expected.count));
    }
    if row.settlement_minor_units != expected.settlement_minor_units {
        differences.push(format!(
            "settlementAmountValue {} against {} in {what}",
            amount(row.settlement_minor_units),
            amount(expected.settlement_minor_units)
        ));
    }
    for (kind, sum) in &row.fees_minor_units {
        let detail = expected.fees_minor_units.get(kind).copied().unwrap_or_default();
        if *sum != detail {
            differences.push(format!(
                "{} {} against {} in {what}",
                kind.as_str(),
                amount(*sum),
                amount(detail)
            ));
        }
    }
    if differences.is_empty() {
        return;
    }
    findings.push(summary_finding(
        file,
        row.first_line,
        FindingKind::SummaryMismatch,
        SignedAmount::from_minor_units(currency, clamp(row.settlement_minor_units)),
        format!("{row_type} summary row: {}", differences.join("; ")),
    ));
}

fn clamp(minor_units: i128) -> i64 {
    i64::try_from(minor_units).unwrap_or(if minor_units < 0 { i64::MIN } else { i64::MAX })
}

fn summary_finding(
    file: &Arc<str>,
    line: u64,
    kind: FindingKind,
    amount: Option<SignedAmount>,
    message: String,
) -> Finding {
    Finding {
        kind,
        report: (line > 0).then(|| ReportLine {
            file: Arc::clone(file),
            line,
        }),
        refund_request_id: None,
        refund_id: None,
        report_amount: amount,
        ledger: None,
        report_status: None,
        settlement: None,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::ReportReader;

    const DETAILS: &str = "settlementBatchId,transactionRequestId,transactionType,settlementInitiatedDate,\
        transactionAmountValue,transactionCurrency,settlementAmountValue,settlementCurrency,quoteCurrencyPair,\
        quotePrice,paymentMethodFeeAmountValue,paymentMethodFeeCurrency";
    const SUMMARY: &str = "settlementBatchId,summaryType,settlementInitiatedDate,count,settlementAmountValue,settlementCurrency,\
         paymentMethodFeeAmountValue,paymentMethodFeeCurrency";

    fn rows(name: &str, header: &str, lines: &[&str]) -> Vec<Row> {
        let text = format!("{header}\n{}\n<END>\n", lines.join("\n"));
        let mut reader = ReportReader::open(name, text.as_bytes()).unwrap();
        let mut rows = Vec::new();
        while let Some(row) = reader.next_row().unwrap() {
            rows.push(row);
        }
        rows
    }

    fn details(lines: &[&str]) -> Vec<Row> {
        rows("settlementItems_USD_1_000.csv", DETAILS, lines)
    }

    fn check(line: &str) -> Option<Finding> {
        check_settlement_row(&details(&[line])[0], &Arc::from("settlementItems_USD_1_000.csv"))
    }

    #[test]
    fn a_settled_refund_row_carries_its_settlement_once() {
        let settled = details(&[
            "1,R2,REFUND,2026-03-06,-1200,JPY,-8.02,USD,JPY/USD,0.0066,-0.10,USD",
            "1,R2,REFUND,2026-03-06,-1200,JPY,-8.02,USD,JPY/USD,0.0066,-0.10,USD",
            "1,P1,PAYMENT,2026-03-06,100.00,USD,96.80,USD,,,-3.20,USD",
        ]);
        let file: Arc<str> = Arc::from("settlementItems_USD_1_000.csv");
        let findings = crate::matcher::match_row(&settled[0], &file, None, None);
        assert_eq!(findings[0].kind, FindingKind::UnknownToLedger);
        let settlement = findings[0].settlement.as_ref().unwrap();
        assert_eq!(
            (settlement.amount.minor_units(), settlement.amount.currency().code()),
            (-802, "USD")
        );
        assert_eq!(settlement.fees.len(), 1);
        assert_eq!(settlement.fees[0].kind, FeeKind::PaymentMethod);
        assert_eq!(settlement.fees[0].amount.minor_units(), -10);
        let quote = settlement.quote.unwrap();
        assert_eq!(
            (quote.base.code(), quote.quote.code(), quote.price.to_string()),
            ("JPY", "USD", "0.0066".to_owned())
        );
        let earlier = ReportLine {
            file: Arc::clone(&file),
            line: 2,
        };
        let duplicate = crate::matcher::match_row(&settled[1], &file, None, Some(&earlier));
        assert_eq!(duplicate[0].kind, FindingKind::Duplicate);
        assert_eq!(duplicate[0].settlement, None, "a duplicate row is not settled twice");
        assert!(crate::matcher::match_row(&settled[2], &file, None, None).is_empty());
        // Transaction details carry settlement columns too, but settle nothing.
        let day = rows(
            "transactionItems_20260306_000.csv",
            "transactionRequestId,transactionType,status,transactionAmountValue,transactionCurrency,\
             settlementAmountValue,settlementCurrency",
            &["R2,REFUND,FAIL,-12.00,USD,-12.00,USD"],
        );
        let findings = crate::matcher::match_row(&day[0], &file, None, None);
        assert_eq!(findings[0].settlement, None);
        assert_eq!(findings[0].report_status, Some(crate::row::ReportStatus::Failed));
    }

    #[test]
    fn same_currency_rows_must_add_up_exactly() {
        assert_eq!(check("1,P1,PAYMENT,2026-03-06,100.00,USD,96.80,USD,,,-3.20,USD"), None);
        let off = check("1,P1,PAYMENT,2026-03-06,100.00,USD,96.81,USD,,,-3.20,USD").unwrap();
        assert_eq!(off.kind, FindingKind::SettlementMismatch);
        assert_eq!(off.report.map(|line| line.line), Some(2));
        assert!(off.message.contains("96.81 USD"), "{}", off.message);
    }

    #[test]
    fn other_currencies_convert_by_the_quote_within_the_precision_it_shows() {
        // JPY/USD: multiply. 1200 * 0.0066 = 7.92; the price's half digit (0.00005) allows 0.06 + 0.005.
        assert_eq!(
            check("1,R2,REFUND,2026-03-06,-1200,JPY,-7.92,USD,JPY/USD,0.0066,0.00,USD"),
            None
        );
        assert_eq!(
            check("1,R2,REFUND,2026-03-06,-1200,JPY,-7.98,USD,JPY/USD,0.0066,0.00,USD"),
            None
        );
        let far = check("1,R2,REFUND,2026-03-06,-1200,JPY,-8.00,USD,JPY/USD,0.0066,0.00,USD").unwrap();
        assert_eq!(far.kind, FindingKind::SettlementMismatch);
        // USD/JPY: divide. 1200 / 151.52 = 7.9197..., rounds to 7.92.
        assert_eq!(
            check("1,R2,REFUND,2026-03-06,-1200,JPY,-7.92,USD,USD/JPY,151.52,,"),
            None
        );
        let divided_wrong = check("1,R2,REFUND,2026-03-06,-1200,JPY,-7.95,USD,USD/JPY,151.52,,").unwrap();
        assert_eq!(divided_wrong.kind, FindingKind::SettlementMismatch);
    }

    #[test]
    fn rows_that_cannot_be_converted_are_not_understood_and_fee_only_rows_are_skipped() {
        let no_quote = check("1,R2,REFUND,2026-03-06,-1200,JPY,-7.92,USD,,,0.00,USD").unwrap();
        assert_eq!(no_quote.kind, FindingKind::NotUnderstood);
        let wrong_pair = check("1,R2,REFUND,2026-03-06,-1200,JPY,-7.92,USD,EUR/USD,1.1,0.00,USD").unwrap();
        assert!(wrong_pair.message.contains("does not relate"), "{}", wrong_pair.message);
        let fee_in_third_currency =
            check("1,R2,REFUND,2026-03-06,-1200,JPY,-7.92,USD,JPY/USD,0.0066,1.00,EUR").unwrap();
        assert_eq!(fee_in_third_currency.kind, FindingKind::NotUnderstood);
        assert_eq!(check("1,,SETTLEMENT_FEE,2026-03-06,,,-1.00,USD,,,,"), None);
    }

    #[test]
    fn details_add_up_to_the_summary_per_type_and_total() {
        let file: Arc<str> = Arc::from("settlementSummary_USD_1_000.csv");
        let detail_rows = details(&[
            "1,P1,PAYMENT,d,100.00,USD,96.80,USD,,,-3.20,USD",
            "1,R1,REFUND,d,-30.00,USD,-30.00,USD,,,0.00,USD",
            "1,R2,REFUND,d,-1200,JPY,-7.92,USD,JPY/USD,0.0066,0.00,USD",
        ]);
        let mut detail_totals = BatchTotals::default();
        for row in &detail_rows {
            detail_totals.add_detail(row, "d").unwrap();
        }
        let summary = |lines: &[&str]| {
            let mut totals = BatchTotals::default();
            let mut findings = Vec::new();
            for row in rows("settlementSummary_USD_1_000.csv", SUMMARY, lines) {
                findings.extend(totals.add_summary(&row, &file).unwrap());
            }
            findings.extend(compare_with_summary(&detail_totals, &totals, &file));
            findings
        };
        let good = [
            "1,PAYMENT,d,1,96.80,USD,-3.20,USD",
            "1,REFUND,d,2,-37.92,USD,0.00,USD",
            "1,TOTAL,d,3,58.88,USD,-3.20,USD",
        ];
        assert_eq!(summary(&good), vec![]);
        // G3 may omit TOTAL: the types are still compared.
        assert_eq!(summary(&good[..2]), vec![]);
        let wrong_refund = summary(&[good[0], "1,REFUND,d,2,-37.93,USD,0.00,USD", good[2]]);
        let kinds: Vec<(FindingKind, Option<u64>)> = wrong_refund
            .iter()
            .map(|finding| (finding.kind, finding.report.as_ref().map(|line| line.line)))
            .collect();
        // The REFUND row differs from its details, and TOTAL from the summary's own rows.
        assert_eq!(
            kinds,
            vec![
                (FindingKind::SummaryMismatch, Some(3)),
                (FindingKind::SummaryMismatch, Some(4))
            ]
        );
        assert!(
            wrong_refund[0].message.contains("-37.93 USD against -37.92 USD"),
            "{}",
            wrong_refund[0].message
        );
        let missing_type = summary(&[good[0], "1,TOTAL,d,1,96.80,USD,-3.20,USD"]);
        assert!(
            missing_type
                .iter()
                .any(|finding| finding.message.contains("no REFUND row"))
        );
        assert!(
            missing_type
                .iter()
                .any(|finding| finding.message.contains("count 1 against 3"))
        );
        let duplicate = summary(&[good[0], good[0], good[1], good[2]]);
        assert_eq!(
            duplicate.iter().map(|finding| finding.kind).collect::<Vec<_>>(),
            vec![FindingKind::Duplicate]
        );
        let wrong_fee = summary(&[good[0], good[1], "1,TOTAL,d,3,58.88,USD,-3.21,USD"]);
        assert!(
            wrong_fee
                .iter()
                .any(|finding| finding.message.contains("paymentMethodFee -3.21 USD"))
        );
    }
}
