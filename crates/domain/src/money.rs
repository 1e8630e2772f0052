//! Money as Antom holds it: an ISO 4217 currency and a whole number of the
//! currency's minor units (`{"currency":"USD","value":"1000"}` is 10.00 USD).
//!
//! There is no float anywhere: display and decimal fields convert exactly to
//! [`rust_decimal::Decimal`] with the currency's ISO exponent.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::InputError;

/// Antom accepts at most this many digits in `Amount.value`.
pub const AMOUNT_DIGITS_MAX: usize = 16;
/// The largest amount in minor units: sixteen nines.
pub const MINOR_UNITS_MAX: u64 = 9_999_999_999_999_999;

/// An ISO 4217 currency that has a minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// Parses an ISO 4217 alphabetic code (upper case, as Antom sends it).
    pub fn parse(field: &str, code: &str) -> Result<Self, InputError> {
        if code.is_empty() {
            return Err(InputError::Empty {
                field: field.to_owned(),
            });
        }
        let currency = iso_currency::Currency::from_code(code).ok_or_else(|| InputError::UnknownCurrency {
            field: field.to_owned(),
            code: code.to_owned(),
        })?;
        if currency.exponent().is_none() {
            return Err(InputError::CurrencyWithoutMinorUnit {
                field: field.to_owned(),
                code: code.to_owned(),
            });
        }
        Ok(Self(currency))
    }

    /// The alphabetic code, e.g. `USD`.
    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// Number of decimal places of the minor unit (USD 2, JPY 0, KWD 3).
    pub fn exponent(&self) -> u32 {
        // Invariant: `parse` refuses currencies without a minor unit.
        u32::from(self.0.exponent().unwrap_or(0))
    }

    /// Antom's extra rule: amounts in this currency must be a multiple of this
    /// many minor units (IDR: 100, per Antom's Amount page). 1 otherwise.
    pub fn antom_multiple(&self) -> u64 {
        match self.0 {
            iso_currency::Currency::IDR => 100,
            _ => 1,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = crate::text::deserialize_text(deserializer)?;
        Currency::parse("currency", &code).map_err(serde::de::Error::custom)
    }
}

impl FromStr for Currency {
    type Err = InputError;
    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Self::parse("currency", code)
    }
}

/// A non-negative amount of money in minor units of one currency.
///
/// Construct it with [`Money::parse`] (Antom's string form),
/// [`Money::from_decimal`] or [`Money::from_minor_units`]; each checks the
/// range and Antom's per-currency rules, so a `Money` is always valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    currency: Currency,
    minor_units: u64,
}

impl Money {
    /// Parses Antom's `Amount` (`currency`, `value` as a string of minor
    /// units). `field` is the name of the amount as the client sent it (e.g.
    /// `refundAmount`); errors name `field.currency` or `field.value`.
    pub fn parse(field: &str, currency: &str, value: &str) -> Result<Self, InputError> {
        let currency = Currency::parse(&format!("{field}.currency"), currency)?;
        let value_field = format!("{field}.value");
        let minor_units = parse_minor_units(&value_field, value)?;
        Self::checked(&value_field, currency, minor_units)
    }

    /// Builds an amount from minor units, with the same checks as [`Money::parse`].
    pub fn from_minor_units(field: &str, currency: Currency, minor_units: u64) -> Result<Self, InputError> {
        Self::checked(field, currency, minor_units)
    }

    /// Converts a decimal in major units (`10.50` USD) exactly into minor units.
    /// More fraction digits than the currency has is an error, never rounded.
    pub fn from_decimal(field: &str, currency: Currency, amount: Decimal) -> Result<Self, InputError> {
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(InputError::Negative {
                field: field.to_owned(),
                value: amount.to_string(),
            });
        }
        let normalized = amount.normalize();
        let exponent = currency.exponent();
        if normalized.scale() > exponent {
            return Err(InputError::TooPrecise {
                field: field.to_owned(),
                currency: currency.code().to_owned(),
                exponent,
                value: amount.to_string(),
            });
        }
        let out_of_range = || InputError::OutOfRange {
            field: field.to_owned(),
            value: amount.to_string(),
        };
        let factor = 10i128
            .checked_pow(exponent - normalized.scale())
            .ok_or_else(out_of_range)?;
        let minor = normalized.mantissa().checked_mul(factor).ok_or_else(out_of_range)?;
        let minor_units = u64::try_from(minor.unsigned_abs()).map_err(|_| out_of_range())?;
        Self::checked(field, currency, minor_units)
    }

    /// A zero amount in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self {
            currency,
            minor_units: 0,
        }
    }

    fn checked(field: &str, currency: Currency, minor_units: u64) -> Result<Self, InputError> {
        if minor_units > MINOR_UNITS_MAX {
            return Err(InputError::OutOfRange {
                field: field.to_owned(),
                value: minor_units.to_string(),
            });
        }
        let multiple = currency.antom_multiple();
        if minor_units % multiple != 0 {
            return Err(InputError::NotMultiple {
                field: field.to_owned(),
                currency: currency.code().to_owned(),
                multiple,
                value: minor_units,
            });
        }
        Ok(Self { currency, minor_units })
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount in minor units (1000 = 10.00 USD).
    pub fn minor_units(&self) -> u64 {
        self.minor_units
    }

    /// Antom's `value`: the minor units as a string of digits.
    pub fn value_string(&self) -> String {
        self.minor_units.to_string()
    }

    /// The exact amount in major units with the currency's exponent as scale
    /// (`1000` USD minor units is `10.00`).
    pub fn to_decimal(&self) -> Decimal {
        Decimal::from_i128_with_scale(i128::from(self.minor_units), self.currency.exponent())
    }

    /// Whether the amount is zero.
    pub fn is_zero(&self) -> bool {
        self.minor_units == 0
    }

    /// `self + other`, or `None` on a currency mismatch or past [`MINOR_UNITS_MAX`].
    pub fn checked_add(&self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        let minor_units = self.minor_units.checked_add(other.minor_units)?;
        (minor_units <= MINOR_UNITS_MAX).then_some(Money {
            currency: self.currency,
            minor_units,
        })
    }

    /// `self - other`, or `None` on a currency mismatch or below zero.
    pub fn checked_sub(&self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        let minor_units = self.minor_units.checked_sub(other.minor_units)?;
        Some(Money {
            currency: self.currency,
            minor_units,
        })
    }

    /// `self - other` floored at zero; `None` on a currency mismatch.
    pub fn saturating_sub(&self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        Some(Money {
            currency: self.currency,
            minor_units: self.minor_units.saturating_sub(other.minor_units),
        })
    }
}

impl fmt::Display for Money {
    /// `10.00 USD`: the exact decimal and the code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal(), self.currency)
    }
}

fn parse_minor_units(field: &str, value: &str) -> Result<u64, InputError> {
    let error = |make: fn(String, String) -> InputError| make(field.to_owned(), value.to_owned());
    if value.is_empty() {
        return Err(InputError::Empty {
            field: field.to_owned(),
        });
    }
    if value.starts_with('-') {
        return Err(error(|field, value| InputError::Negative { field, value }));
    }
    if value.contains('.') || value.contains(',') {
        return Err(error(|field, value| InputError::Fractional { field, value }));
    }
    if !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(error(|field, value| InputError::NotDigits { field, value }));
    }
    if value.len() > AMOUNT_DIGITS_MAX {
        return Err(InputError::TooManyDigits {
            field: field.to_owned(),
            digits: value.len(),
            max: AMOUNT_DIGITS_MAX,
        });
    }
    // At most 16 ASCII digits always fit in a u64.
    value
        .parse::<u64>()
        .map_err(|_| error(|field, value| InputError::OutOfRange { field, value }))
}

/// Antom's wire shape of an amount; also the stored JSON form of [`Money`]. Read borrowed from the input
/// when it can be (no copy of either text).
#[derive(Serialize, Deserialize)]
struct AmountJson<'a> {
    #[serde(borrow)]
    currency: Cow<'a, str>,
    #[serde(borrow)]
    value: Cow<'a, str>,
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        AmountJson {
            currency: Cow::Borrowed(self.currency.code()),
            value: Cow::Owned(self.value_string()),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = AmountJson::deserialize(deserializer)?;
        Money::parse("amount", &json.currency, &json.value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("c", "USD").unwrap()
    }

    #[test]
    fn parses_antom_amounts_in_minor_units() {
        let money = Money::parse("refundAmount", "USD", "1000").unwrap();
        assert_eq!(money.minor_units(), 1000);
        assert_eq!(money.to_decimal().to_string(), "10.00");
        assert_eq!(
            Money::parse("a", "JPY", "1500").unwrap().to_decimal().to_string(),
            "1500"
        );
        assert_eq!(
            Money::parse("a", "KWD", "1234").unwrap().to_decimal().to_string(),
            "1.234"
        );
        assert_eq!(Money::parse("a", "USD", "0").unwrap().to_string(), "0.00 USD");
        assert_eq!(
            Money::parse("a", "USD", "9999999999999999").unwrap().minor_units(),
            MINOR_UNITS_MAX
        );
    }

    #[test]
    fn bad_amounts_are_typed_errors_naming_the_field() {
        let cases: &[(&str, &str, InputError)] = &[
            (
                "USD",
                "-5",
                InputError::Negative {
                    field: "refundAmount.value".into(),
                    value: "-5".into(),
                },
            ),
            (
                "USD",
                "1.5",
                InputError::Fractional {
                    field: "refundAmount.value".into(),
                    value: "1.5".into(),
                },
            ),
            (
                "USD",
                "abc",
                InputError::NotDigits {
                    field: "refundAmount.value".into(),
                    value: "abc".into(),
                },
            ),
            (
                "USD",
                "+5",
                InputError::NotDigits {
                    field: "refundAmount.value".into(),
                    value: "+5".into(),
                },
            ),
            (
                "USD",
                " 5",
                InputError::NotDigits {
                    field: "refundAmount.value".into(),
                    value: " 5".into(),
                },
            ),
            (
                "USD",
                "",
                InputError::Empty {
                    field: "refundAmount.value".into(),
                },
            ),
            (
                "USD",
                "12345678901234567",
                InputError::TooManyDigits {
                    field: "refundAmount.value".into(),
                    digits: 17,
                    max: 16,
                },
            ),
            (
                "XX",
                "5",
                InputError::UnknownCurrency {
                    field: "refundAmount.currency".into(),
                    code: "XX".into(),
                },
            ),
            (
                "usd",
                "5",
                InputError::UnknownCurrency {
                    field: "refundAmount.currency".into(),
                    code: "usd".into(),
                },
            ),
            (
                "",
                "5",
                InputError::Empty {
                    field: "refundAmount.currency".into(),
                },
            ),
            (
                "XAU",
                "5",
                InputError::CurrencyWithoutMinorUnit {
                    field: "refundAmount.currency".into(),
                    code: "XAU".into(),
                },
            ),
            (
                "IDR",
                "150",
                InputError::NotMultiple {
                    field: "refundAmount.value".into(),
                    currency: "IDR".into(),
                    multiple: 100,
                    value: 150,
                },
            ),
        ];
        for (currency, value, expected) in cases {
            let error = Money::parse("refundAmount", currency, value).unwrap_err();
            assert_eq!(&error, expected, "{currency} {value:?}");
            assert!(error.to_string().starts_with("refundAmount."), "{error}");
        }
        assert!(Money::parse("a", "IDR", "15000").is_ok());
    }

    #[test]
    fn decimal_conversion_is_exact_and_refuses_rounding() {
        let usd = usd();
        let money = Money::from_decimal("x", usd, "10.50".parse().unwrap()).unwrap();
        assert_eq!(money.minor_units(), 1050);
        assert_eq!(
            Money::from_decimal("x", usd, "10.5000".parse().unwrap())
                .unwrap()
                .minor_units(),
            1050
        );
        assert!(matches!(
            Money::from_decimal("x", usd, "10.505".parse().unwrap()),
            Err(InputError::TooPrecise { exponent: 2, .. })
        ));
        assert!(matches!(
            Money::from_decimal("x", usd, "-1".parse().unwrap()),
            Err(InputError::Negative { .. })
        ));
        let jpy = Currency::parse("c", "JPY").unwrap();
        assert!(matches!(
            Money::from_decimal("x", jpy, "1.5".parse().unwrap()),
            Err(InputError::TooPrecise { exponent: 0, .. })
        ));
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = Money::parse("a", "USD", "100").unwrap();
        let b = Money::parse("b", "EUR", "100").unwrap();
        assert_eq!(a.checked_add(b), None);
        assert_eq!(a.checked_sub(a.checked_add(a).unwrap()), None);
        assert_eq!(a.saturating_sub(a.checked_add(a).unwrap()).unwrap().minor_units(), 0);
        let max = Money::parse("m", "USD", "9999999999999999").unwrap();
        assert_eq!(max.checked_add(a), None);
    }

    #[test]
    fn json_form_is_antoms_amount() {
        let money = Money::parse("a", "USD", "1000").unwrap();
        let json = serde_json::to_string(&money).unwrap();
        assert_eq!(json, r#"{"currency":"USD","value":"1000"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
        assert!(serde_json::from_str::<Money>(r#"{"currency":"USD","value":"-1"}"#).is_err());
    }
}
