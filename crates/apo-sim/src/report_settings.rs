//! How the simulator's reports are made (who the merchant is, the day's zone, the format's generation, fees
//! and FX, where files go): settings only, so the simulator's configuration can hold them without knowing how
//! a report is written (`report.rs` does that).

use std::path::PathBuf;
use std::str::FromStr;

use domain::Currency;
use rust_decimal::Decimal;
use serde::Deserialize;
use time::UtcOffset;

use crate::error::SimError;

/// Largest fee rate, in basis points (100 %).
pub const FEE_BPS_MAX: u32 = 10_000;
/// Most quotes a run may configure.
pub const QUOTES_MAX: usize = 32;

/// Which generation of Antom's report format to write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportGeneration {
    /// 2023-2024: `acquirer`, `transactionId` = refundId, `originalTransactionId`, `feeAmountValue`.
    G2,
    /// Current: `PSP`, `transactionId` = paymentId (Antom's Chinese G3 pages), `status`,
    /// `paymentMethodFeeAmountValue`.
    #[default]
    G3,
}

impl FromStr for ReportGeneration {
    type Err = SimError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "g2" => Ok(Self::G2),
            "g3" => Ok(Self::G3),
            _ => Err(report_error(format!("generation {text:?}: expected g2 or g3"))),
        }
    }
}

/// A fixed FX rate: one `base` is `price` `quote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteSpec {
    /// Left side of the pair.
    pub base: Currency,
    /// Right side of the pair.
    pub quote: Currency,
    /// The rate, written as given.
    pub price: Decimal,
}

impl QuoteSpec {
    /// Reads `JPY/USD=0.0066`.
    pub fn parse(spec: &str) -> Result<Self, SimError> {
        let bad = |reason: &str| report_error(format!("quote {spec:?}: {reason} (expected e.g. JPY/USD=0.0066)"));
        let (pair, price) = spec.split_once('=').ok_or_else(|| bad("no ="))?;
        let (base, quote) = pair.split_once('/').ok_or_else(|| bad("no / in the pair"))?;
        let base = Currency::parse("quote", base.trim()).map_err(|_| bad("unknown base currency"))?;
        let quote = Currency::parse("quote", quote.trim()).map_err(|_| bad("unknown quote currency"))?;
        let price = Decimal::from_str(price.trim()).map_err(|_| bad("price is not a decimal"))?;
        if price <= Decimal::ZERO || base == quote {
            return Err(bad("price must be positive and the currencies different"));
        }
        Ok(Self { base, quote, price })
    }
}

/// How reports are made: who the merchant is, the day's zone, fees and FX, where files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSettings {
    /// Antom's merchant id (`customerId`).
    pub customer_id: String,
    /// The zone of "day T".
    pub day_offset: UtcOffset,
    /// The generation written when a request does not say.
    pub generation: ReportGeneration,
    /// Fee on payments, basis points of the gross (320 = 3.20 %).
    pub payment_fee_bps: u32,
    /// Fee on refunds, basis points of the gross (0: refunds cost nothing).
    pub refund_fee_bps: u32,
    /// The currency everything settles in where a quote allows; `None`: every amount settles in its own.
    pub settlement_currency: Option<Currency>,
    /// Fixed FX rates.
    pub quotes: Vec<QuoteSpec>,
    /// Where `Simulator::write_reports` puts files (Antom's SFTP layout below it).
    pub reports_dir: Option<PathBuf>,
}

impl Default for ReportSettings {
    fn default() -> Self {
        Self {
            customer_id: "2188120000000001".to_owned(),
            day_offset: UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC),
            generation: ReportGeneration::G3,
            payment_fee_bps: 320,
            refund_fee_bps: 0,
            settlement_currency: None,
            quotes: Vec::new(),
            reports_dir: None,
        }
    }
}

impl ReportSettings {
    /// Checks the bounds; the error names the option.
    pub fn validate(&self) -> Result<(), SimError> {
        if self.customer_id.is_empty() || self.customer_id.contains([',', '"', '\n', '\r']) {
            return Err(report_error(
                "customerId: must be non-empty, without commas, quotes or line breaks".into(),
            ));
        }
        if self.payment_fee_bps > FEE_BPS_MAX || self.refund_fee_bps > FEE_BPS_MAX {
            return Err(report_error(format!("fee rates: at most {FEE_BPS_MAX} basis points")));
        }
        if self.quotes.len() > QUOTES_MAX {
            return Err(report_error(format!("quotes: at most {QUOTES_MAX}")));
        }
        Ok(())
    }
}

/// A report error with its reason (the reason names the option or the input).
pub(crate) fn report_error(reason: String) -> SimError {
    SimError::Report { reason }
}
