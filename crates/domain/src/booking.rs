//! How a settled row of a reconciled settlement batch books (docs/adr/003-reconciliation.md, "The journal's
//! settlement side"): the balanced legs of one [`RecordedFinding`] that carries a settlement, and the date they
//! are booked on. Pure, so that the reconciliation run can tell, as it records a row, whether the journal will be
//! able to book it (a row it cannot book becomes a `SETTLEMENT_NOT_BOOKED` finding), and the journal books
//! exactly what the run checked.

use std::str::FromStr;

use rust_decimal::prelude::ToPrimitive as _;
use rust_decimal::{Decimal, RoundingStrategy};
use time::Date;
use time::macros::format_description;

use crate::money::Currency;
use crate::reconciliation::{RecordedFinding, RecordedQuote, ReportedAmount};

/// Which account a leg books to; the journal names them (its `[exports]` configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegAccount {
    /// The Antom clearing account the refund was credited to when it succeeded.
    Clearing,
    /// Where an amount in the transaction currency becomes one in the settlement currency.
    FxConversion,
    /// A fee column, by its G3 stem (`paymentMethodFee`, `taxFee`, ...).
    Fee(String),
    /// The rounding of a conversion (the currencies differ).
    FxDifference,
    /// What a same-currency row's settlement differs from its amount plus its fees.
    SettlementDifference,
    /// The merchant's settlement account at Antom.
    Settlement,
}

/// One leg: `amount` minor units of `currency`, a debit when positive, a credit when negative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementLeg {
    /// The leg's currency.
    pub currency: Currency,
    /// The account.
    pub account: LegAccount,
    /// Signed minor units: debit positive, credit negative.
    pub amount: i128,
}

/// Why a settled row cannot be booked; the journal leaves its lines out and the run records it as a finding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnbookableSettlement {
    /// A currency code that is not ISO 4217.
    #[error("{field}: {code:?} is not an ISO 4217 currency")]
    Currency { field: &'static str, code: String },
    /// An amount that is not signed minor units.
    #[error("{field}: {value:?} is not signed minor units")]
    Amount { field: &'static str, value: String },
    /// An amount in another currency than the settlement's, and no quote to convert it.
    #[error("an amount in {from}, settlement in {settlement}, and no quote price")]
    NoQuote { from: Currency, settlement: Currency },
    /// The quote's price is not a positive decimal.
    #[error("quotePrice {price:?} is not a positive decimal")]
    QuotePrice { price: String },
    /// The quote's pair does not relate the two currencies.
    #[error("quote pair {base}/{quote} does not relate {from} and {settlement}")]
    QuotePair {
        base: String,
        quote: String,
        from: Currency,
        settlement: Currency,
    },
    /// A fee in neither the settlement nor the transaction currency.
    #[error("{kind} fee in {currency}, settlement in {settlement}: no quote relates them")]
    FeeCurrency {
        kind: String,
        currency: Currency,
        settlement: Currency,
    },
    /// G3's converted amount in another currency than the settlement's.
    #[error("convertedTransactionAmountValue in {currency}, settlement in {settlement}")]
    ConvertedCurrency { currency: Currency, settlement: Currency },
    /// An amount too large to convert.
    #[error("{units} minor units too large to convert")]
    TooLarge { units: i128 },
}

/// The legs of `finding`'s settlement, none when it carries no settlement (not a settled REFUND row's first
/// finding). Every currency's legs add up to zero:
///
/// - the transaction amount `t` (negative for a refund) in its currency `T`, the settlement amount `s` and the
///   fees `f` in the settlement currency `S` (a fee in `T` is converted like the gross);
/// - `T = S`: the clearing account is debited `-t`; otherwise it is debited `-t` in `T` against the FX
///   conversion account, which is debited in `S` with the gross `g`: `convertedTransactionAmountValue` where the
///   report has it (G3), else `t` converted by the row's quote price (multiplied when `T` is the pair's left
///   side, divided when it is the right), rounded half-even to `S`'s minor unit as the report rounds amounts;
/// - each non-zero fee: its own account debited `-f`;
/// - the difference `g + Σf - s`, when not zero, debited to the FX difference account (`T ≠ S`) or the
///   settlement difference account (`T = S`, a row that breaks the formula);
/// - the settlement account credited `-s` (debited `s`).
pub fn settlement_legs(finding: &RecordedFinding) -> Result<Vec<SettlementLeg>, UnbookableSettlement> {
    let Some(settlement) = &finding.settlement else {
        return Ok(Vec::new());
    };
    let (target, net) = minor("settlement.amount", &settlement.amount)?;
    let transaction = finding
        .report_amount
        .as_ref()
        .map(|amount| minor("reportAmount", amount))
        .transpose()?;
    let quote = settlement.quote.as_ref();
    let mut fees = Vec::new();
    for fee in &settlement.fees {
        let (currency, units) = minor("settlement.fees.amount", &fee.amount)?;
        let transaction_currency = transaction.map(|(currency, _)| currency);
        if currency != target && Some(currency) != transaction_currency {
            return Err(UnbookableSettlement::FeeCurrency {
                kind: fee.kind.clone(),
                currency,
                settlement: target,
            });
        }
        fees.push((fee.kind.clone(), convert(quote, currency, target, units)?));
    }
    let fee_total: i128 = fees.iter().map(|(_, units)| units).sum();
    let mut legs = Vec::new();
    let leg = |currency: Currency, account: LegAccount, amount: i128| SettlementLeg {
        currency,
        account,
        amount,
    };
    let (gross, difference_account) = match transaction {
        Some((currency, units)) if currency == target => {
            legs.push(leg(target, LegAccount::Clearing, -units));
            (units, LegAccount::SettlementDifference)
        }
        Some((currency, units)) => {
            legs.push(leg(currency, LegAccount::Clearing, -units));
            legs.push(leg(currency, LegAccount::FxConversion, units));
            let gross = match &settlement.converted {
                Some(converted) => match minor("settlement.converted", converted)? {
                    (currency, converted) if currency == target => converted,
                    (currency, _) => {
                        return Err(UnbookableSettlement::ConvertedCurrency {
                            currency,
                            settlement: target,
                        });
                    }
                },
                None => convert(quote, currency, target, units)?,
            };
            legs.push(leg(target, LegAccount::FxConversion, -gross));
            (gross, LegAccount::FxDifference)
        }
        // No transaction amount: the gross is what the settlement and the fees leave.
        None => {
            let gross = net - fee_total;
            legs.push(leg(target, LegAccount::Clearing, -gross));
            (gross, LegAccount::SettlementDifference)
        }
    };
    for (kind, units) in fees {
        legs.push(leg(target, LegAccount::Fee(kind), -units));
    }
    legs.push(leg(target, difference_account, gross + fee_total - net));
    legs.push(leg(target, LegAccount::Settlement, net));
    legs.retain(|leg| leg.amount != 0);
    Ok(legs)
}

/// The date `finding`'s settlement books on: the row's settlement date as the report printed it (see
/// [`settlement_date_of`]); `None` when it has none, and the caller says what it falls back to.
pub fn settlement_date(finding: &RecordedFinding) -> Option<Date> {
    finding
        .settlement
        .as_ref()?
        .date
        .as_deref()
        .and_then(settlement_date_of)
}

/// A settlement date cell as Antom prints it: G3's `settlementInitiatedDate` (`2026-03-06`) or G1/G2's
/// `settlementTime` (`2026-03-06T09:00:00+08:00`), whose date is taken as printed, in the report's own offset
/// (the batch's day where Antom settled it, not the UTC day); `2026/03/06` and `20260306` (with or without a
/// `HHmmss` time) are read too. `None` for anything else.
pub fn settlement_date_of(cell: &str) -> Option<Date> {
    let cell = cell.trim();
    let dashed = format_description!("[year]-[month]-[day]");
    let slashed = format_description!("[year]/[month]/[day]");
    let compact = format_description!("[year][month][day]");
    let prefix = cell
        .get(..10)
        .filter(|_| cell.len() == 10 || cell[10..].starts_with(['T', 't', ' ']));
    if let Some(prefix) = prefix {
        return Date::parse(prefix, dashed)
            .or_else(|_| Date::parse(prefix, slashed))
            .ok();
    }
    let digits = cell.bytes().all(|byte| byte.is_ascii_digit());
    match cell.len() {
        8 | 14 if digits => Date::parse(&cell[..8], compact).ok(),
        _ => None,
    }
}

fn minor(field: &'static str, amount: &ReportedAmount) -> Result<(Currency, i128), UnbookableSettlement> {
    let currency = Currency::parse(field, &amount.currency).map_err(|_| UnbookableSettlement::Currency {
        field,
        code: amount.currency.clone(),
    })?;
    let units = amount.value.parse::<i128>().map_err(|_| UnbookableSettlement::Amount {
        field,
        value: amount.value.clone(),
    })?;
    Ok((currency, units))
}

/// `units` of `from` in `target`, by the quote when they differ, rounded half-even to `target`'s minor unit.
fn convert(
    quote: Option<&RecordedQuote>,
    from: Currency,
    target: Currency,
    units: i128,
) -> Result<i128, UnbookableSettlement> {
    if from == target {
        return Ok(units);
    }
    let quote = quote.ok_or(UnbookableSettlement::NoQuote {
        from,
        settlement: target,
    })?;
    let price = Decimal::from_str(&quote.price)
        .ok()
        .filter(|price| price.is_sign_positive() && !price.is_zero())
        .ok_or_else(|| UnbookableSettlement::QuotePrice {
            price: quote.price.clone(),
        })?;
    let too_large = || UnbookableSettlement::TooLarge { units };
    let value = Decimal::try_from_i128_with_scale(units, from.exponent()).map_err(|_| too_large())?;
    let exact = if quote.base == from.code() && quote.quote == target.code() {
        value.checked_mul(price)
    } else if quote.base == target.code() && quote.quote == from.code() {
        value.checked_div(price)
    } else {
        return Err(UnbookableSettlement::QuotePair {
            base: quote.base.clone(),
            quote: quote.quote.clone(),
            from,
            settlement: target,
        });
    };
    let rounded = exact
        .ok_or_else(too_large)?
        .round_dp_with_strategy(target.exponent(), RoundingStrategy::MidpointNearestEven);
    let scaled = rounded
        .checked_mul(Decimal::from(10_i64.pow(target.exponent())))
        .ok_or_else(too_large)?;
    scaled.trunc().to_i128().ok_or_else(too_large)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settlement_date_is_read_as_antom_prints_it() {
        let date = |text: &str| settlement_date_of(text).map(|date| date.to_string());
        assert_eq!(date("2026-03-06").as_deref(), Some("2026-03-06"));
        // The report's own day, not the UTC one (01:00 at +08:00 is the previous day in UTC).
        assert_eq!(date("2026-03-06T01:00:00+08:00").as_deref(), Some("2026-03-06"));
        assert_eq!(date("2026-03-06 09:00:00").as_deref(), Some("2026-03-06"));
        assert_eq!(date("2026/03/06").as_deref(), Some("2026-03-06"));
        assert_eq!(date("20260306").as_deref(), Some("2026-03-06"));
        assert_eq!(date("20260306090000").as_deref(), Some("2026-03-06"));
        for unreadable in ["", "2026-13-06", "06/03/2026", "2026-03-06X", "202603", "next Tuesday"] {
            assert_eq!(date(unreadable), None, "{unreadable:?}");
        }
    }
}
