//! Signed amounts in major units, as the reports write them (`-30.00` USD, `1200` JPY), held exactly as integer
//! minor units of their ISO 4217 currency.
//!
//! Reports differ from Antom's API in two ways: values are decimal major units (the May 2023 release moved all
//! three reports to them) and they carry a sign (refunds and fees are negative). The ledger's
//! [`domain::Money`] is a non-negative amount, so a report amount is a type of its own here, converted with the
//! same currency exponents. No float is involved anywhere.

use std::fmt;

use domain::{Currency, MINOR_UNITS_MAX, Money};
use rust_decimal::Decimal;

/// Most digits (integer and fraction together) a report amount may have. Antom's amount columns are
/// `String(16)`; the bound keeps every value inside `i64` and [`MINOR_UNITS_MAX`].
pub const AMOUNT_DIGITS_MAX: usize = 16;

/// A signed amount of one currency in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignedAmount {
    currency: Currency,
    minor_units: i64,
}

/// Why a report amount did not parse. Shown inside `ReconcileError::Amount`, which names the file, line and
/// column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountProblem {
    /// Not a plain decimal number (`-1,200.00`, `1e3`, `12.`, spaces...).
    #[error("not a decimal number in major units")]
    NotANumber,
    /// More fraction digits than the currency has, and the extra ones are not all zero: the value would need
    /// rounding, which the ledger never does.
    #[error("{currency} has {exponent} decimal places, the value has {decimals}")]
    TooManyDecimals {
        /// The currency of the amount.
        currency: String,
        /// Its ISO 4217 exponent.
        exponent: u32,
        /// Fraction digits the value carries.
        decimals: usize,
    },
    /// More than [`AMOUNT_DIGITS_MAX`] digits.
    #[error("more than {AMOUNT_DIGITS_MAX} digits")]
    TooManyDigits,
    /// The value is there but its currency cell is empty.
    #[error("its currency column {currency_column} is empty")]
    MissingCurrency {
        /// The currency column.
        currency_column: String,
    },
}

/// A parsed amount, and whether it carried extra fraction digits that were all zero (`1200.00` JPY): exact,
/// accepted, but worth a warning because the file does not follow the currency's exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub(crate) amount: SignedAmount,
    pub(crate) extra_zero_decimals: bool,
}

impl SignedAmount {
    /// An amount from minor units. `None` beyond ±[`MINOR_UNITS_MAX`].
    pub fn from_minor_units(currency: Currency, minor_units: i64) -> Option<Self> {
        (minor_units.unsigned_abs() <= MINOR_UNITS_MAX).then_some(Self { currency, minor_units })
    }

    /// Parses a report value in major units with the currency's exponent: an optional sign, digits, and at
    /// most `exponent` fraction digits (more are accepted only when they are zeros).
    pub(crate) fn parse_major(text: &str, currency: Currency) -> Result<Parsed, AmountProblem> {
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (integer, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let digits_only = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        if integer.is_empty() || !digits_only(integer) || !digits_only(fraction) || unsigned.ends_with('.') {
            return Err(AmountProblem::NotANumber);
        }
        let exponent = currency.exponent();
        let kept = fraction.len().min(exponent as usize);
        let (fraction_kept, fraction_extra) = fraction.split_at(kept);
        if integer.len() + fraction_kept.len() > AMOUNT_DIGITS_MAX {
            return Err(AmountProblem::TooManyDigits);
        }
        if fraction_extra.bytes().any(|byte| byte != b'0') {
            return Err(AmountProblem::TooManyDecimals {
                currency: currency.code().to_owned(),
                exponent,
                decimals: fraction.len(),
            });
        }
        // At most 16 digits: every step below stays far inside i64.
        let mut minor_units: i64 = 0;
        for byte in integer.bytes().chain(fraction_kept.bytes()) {
            minor_units = minor_units * 10 + i64::from(byte - b'0');
        }
        for _ in kept..exponent as usize {
            minor_units = minor_units.checked_mul(10).ok_or(AmountProblem::TooManyDigits)?;
        }
        if minor_units.unsigned_abs() > MINOR_UNITS_MAX {
            return Err(AmountProblem::TooManyDigits);
        }
        Ok(Parsed {
            amount: Self {
                currency,
                minor_units: if negative { -minor_units } else { minor_units },
            },
            extra_zero_decimals: !fraction_extra.is_empty(),
        })
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Signed minor units (`-3000` is -30.00 USD).
    pub fn minor_units(&self) -> i64 {
        self.minor_units
    }

    /// Whether the amount is below zero.
    pub fn is_negative(&self) -> bool {
        self.minor_units < 0
    }

    /// The exact value in major units with the currency's exponent as scale.
    pub fn to_decimal(&self) -> Decimal {
        Decimal::from_i128_with_scale(i128::from(self.minor_units), self.currency.exponent())
    }

    /// The magnitude as the ledger's non-negative [`Money`]; `None` only if Antom's per-currency rule refuses it
    /// (IDR amounts not a multiple of 100), which the caller reports as a difference.
    pub fn magnitude(&self) -> Option<Money> {
        Money::from_minor_units("amount", self.currency, self.minor_units.unsigned_abs()).ok()
    }
}

impl fmt::Display for SignedAmount {
    /// `-30.00 USD`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.to_decimal(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn currency(code: &str) -> Currency {
        Currency::parse("c", code).unwrap()
    }

    fn parse(text: &str, code: &str) -> Result<Parsed, AmountProblem> {
        SignedAmount::parse_major(text, currency(code))
    }

    fn minor(text: &str, code: &str) -> i64 {
        parse(text, code).unwrap().amount.minor_units()
    }

    #[test]
    fn major_units_become_exact_signed_minor_units() {
        assert_eq!(minor("100.00", "USD"), 10_000);
        assert_eq!(minor("-30.00", "USD"), -3_000);
        assert_eq!(minor("-3.2", "USD"), -320);
        assert_eq!(minor("+5", "USD"), 500);
        assert_eq!(minor("-1200", "JPY"), -1_200);
        assert_eq!(minor("1.234", "KWD"), 1_234);
        assert_eq!(minor("-0.00", "USD"), 0);
        assert_eq!(parse("-30.00", "USD").unwrap().amount.to_string(), "-30.00 USD");
    }

    #[test]
    fn extra_zero_decimals_are_exact_and_flagged() {
        let parsed = parse("1200.00", "JPY").unwrap();
        assert_eq!((parsed.amount.minor_units(), parsed.extra_zero_decimals), (1_200, true));
        assert!(!parse("12.00", "USD").unwrap().extra_zero_decimals);
    }

    #[test]
    fn anything_that_would_need_rounding_or_is_not_a_number_is_refused() {
        assert_eq!(
            parse("10.505", "USD"),
            Err(AmountProblem::TooManyDecimals {
                currency: "USD".into(),
                exponent: 2,
                decimals: 3
            })
        );
        assert!(matches!(
            parse("1.5", "JPY"),
            Err(AmountProblem::TooManyDecimals { exponent: 0, .. })
        ));
        for bad in [
            "", "-", ".5", "5.", "1,200.00", "1e3", " 5", "5 ", "--5", "0x10", "1.2.3", "١٢",
        ] {
            assert_eq!(parse(bad, "USD"), Err(AmountProblem::NotANumber), "{bad:?}");
        }
        assert_eq!(parse("12345678901234567", "JPY"), Err(AmountProblem::TooManyDigits));
        assert_eq!(parse("99999999999999999.9", "USD"), Err(AmountProblem::TooManyDigits));
        assert_eq!(minor("9999999999999999", "JPY"), 9_999_999_999_999_999);
    }

    proptest::proptest! {
        #[test]
        fn any_amount_written_in_major_units_reads_back_exactly(
            minor_units in -(MINOR_UNITS_MAX as i64)..=(MINOR_UNITS_MAX as i64),
            code in proptest::sample::select(vec!["USD", "JPY", "KWD", "EUR", "CLF"]),
        ) {
            let currency = currency(code);
            let written = SignedAmount::from_minor_units(currency, minor_units).unwrap().to_decimal().to_string();
            let parsed = SignedAmount::parse_major(&written, currency);
            proptest::prop_assert_eq!(parsed.map(|parsed| parsed.amount.minor_units()), Ok(minor_units), "{}", written);
        }
    }

    #[test]
    fn magnitude_is_the_ledgers_money() {
        let amount = parse("-30.00", "USD").unwrap().amount;
        assert_eq!(amount.magnitude().unwrap(), Money::parse("a", "USD", "3000").unwrap());
    }
}
