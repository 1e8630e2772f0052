//! Antom's reconciliation reports for what the simulator processed: the transaction details report of a day
//! and the settlement details and settlement summary of a batch, in Antom's current format (G3) or the
//! previous one (G2), with discrepancies injected on request.
//!
//! The simulator is the provider, so it writes these files with its own code (it does not use the ledger's
//! parser): tests read them with the parser and so check it against an independent writer.
//!
//! The model, deterministic on purpose:
//! - day T is a calendar day at `ReportSettings::day_offset` (GMT+8 by default, Antom's older cut-off);
//! - the transaction details of day T hold the payments paid on T and the refunds created on T (G3: every
//!   refund with its latest status; G2: the refunds that succeeded on T);
//! - the batch of day T settles on T+1 and holds the payments of T and the refunds that succeeded on T, one
//!   batch per settlement currency;
//! - each amount settles in `settlement_currency` when a quote relates the two currencies, else in its own;
//!   converted amounts are rounded half-even to the settlement currency;
//! - the fee is `-(gross × fee_bps / 10,000)`, rounded half-even, in the settlement currency
//!   (`payment_fee_bps` for payments, `refund_fee_bps` for refunds); settlement = gross + fee.
//!
//! Pure: the caller passes a snapshot of the simulator's payments and refunds.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use domain::{Currency, Money};
use rust_decimal::{Decimal, RoundingStrategy};
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::error::SimError;
use crate::ledger::{PaymentSeed, RefundRecord, RefundState};
use crate::report_settings::{QuoteSpec, ReportGeneration, ReportSettings, report_error};

/// Most entries one discrepancy list may name.
pub const DISCREPANCIES_MAX: usize = 100;
/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// `transactionItems_<yyyyMMdd>_000.csv`.
    TransactionDetails,
    /// `settlementItems_<currency>_<batch>_000.csv`.
    SettlementDetails,
    /// `settlementSummary_<currency>_<batch>_000.csv`.
    SettlementSummary,
}

/// Discrepancies to inject into a report, by refundRequestId.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discrepancies {
    /// Leave these refunds' rows out.
    pub drop: Vec<String>,
    /// Make these refunds larger by the given minor units (smaller when negative); the settlement follows, so
    /// only the amount differs from the merchant's records.
    pub change_amount: Vec<(String, i64)>,
    /// Add REFUND rows for these refundRequestIds, which the merchant never asked for (a refund made in Antom
    /// Dashboard): 1.00 in the settlement currency (USD when there is none), on a payment `SIMPAY-DASHBOARD`.
    pub extra_refund: Vec<String>,
    /// Add a REFUND_REVERSAL for these succeeded refunds (money back to the merchant).
    pub reverse: Vec<String>,
    /// Write these refunds' rows twice.
    pub duplicate: Vec<String>,
    /// Report these refunds with this status (`SUCCESS`, `FAIL` or `PROCESSING`) whatever the simulator holds;
    /// a refund the report would leave out (G2 lists succeeded refunds only, a batch settles succeeded ones) is
    /// added with that status. The G3 transaction details write the status; every report lists the row.
    pub status: Vec<(String, &'static str)>,
    /// Move these refunds' `settlementAmountValue` by the given minor units, leaving the transaction amount and
    /// the fees as they are (the row breaks Antom's settlement formula); the summary follows the rows.
    pub settlement_off: Vec<(String, i64)>,
    /// Move the settlement summary's row of this type (`REFUND`, `PAYMENT`, `TOTAL`) by the given minor units,
    /// so it no longer adds up with the details.
    pub summary_off: Vec<(String, i64)>,
    /// Leave out the `<END>` line, as a file cut in transit.
    pub truncate: bool,
}

impl Discrepancies {
    /// Checks the list sizes.
    pub fn validate(&self) -> Result<(), SimError> {
        let lengths = [
            self.drop.len(),
            self.change_amount.len(),
            self.extra_refund.len(),
            self.reverse.len(),
            self.duplicate.len(),
            self.status.len(),
            self.settlement_off.len(),
            self.summary_off.len(),
        ];
        if lengths.iter().any(|length| *length > DISCREPANCIES_MAX) {
            return Err(report_error(format!(
                "discrepancies: at most {DISCREPANCIES_MAX} per list"
            )));
        }
        Ok(())
    }

    /// Reads `changeAmount` entries: `R1` (+100 minor units) or `R1:-250`.
    pub fn parse_change(entry: &str) -> Result<(String, i64), SimError> {
        Self::parse_delta("changeAmount", "REFUND_REQUEST_ID", entry)
    }

    /// Reads `settlementOff` (`R1`, `R1:-3`) and `summaryOff` (`REFUND`, `TOTAL:250`) entries: a name and minor
    /// units (100 when not given), named `option` in the error.
    pub fn parse_delta(option: &str, subject: &str, entry: &str) -> Result<(String, i64), SimError> {
        match entry.split_once(':') {
            None => Ok((entry.to_owned(), 100)),
            Some((id, delta)) => delta
                .parse::<i64>()
                .ok()
                // Bounded like any amount, so a changed amount and its reversal stay far inside i64.
                .filter(|delta| delta.unsigned_abs() <= domain::MINOR_UNITS_MAX)
                .map(|delta| (id.to_owned(), delta))
                .ok_or_else(|| {
                    report_error(format!(
                        "{option} {entry:?}: expected {subject}[:MINOR_UNITS], at most 16 digits"
                    ))
                }),
        }
    }

    /// Reads a `status` entry: `R1:FAIL` (`SUCCESS`, `FAIL` or `PROCESSING`).
    pub fn parse_status(entry: &str) -> Result<(String, &'static str), SimError> {
        let status = match entry.split_once(':') {
            Some((id, status)) if !id.is_empty() => ["SUCCESS", "FAIL", "PROCESSING"]
                .into_iter()
                .find(|known| known.eq_ignore_ascii_case(status.trim()))
                .map(|status| (id.to_owned(), status)),
            _ => None,
        };
        status.ok_or_else(|| {
            report_error(format!(
                "status {entry:?}: expected REFUND_REQUEST_ID:SUCCESS, :FAIL or :PROCESSING"
            ))
        })
    }
}

/// A report file: Antom's path and name, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFile {
    /// `v1/settlements/<customerId>/<yyyyMMdd>/`.
    pub directory: String,
    /// Antom's file name.
    pub name: String,
    /// The CSV text.
    pub text: String,
}

/// What the simulator holds, copied out from under its lock.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    pub(crate) payments: Vec<PaymentSeed>,
    pub(crate) refunds: Vec<RefundRecord>,
}

/// One row to write.
#[derive(Debug, Clone)]
struct Entry {
    row_type: &'static str,
    status: &'static str,
    payment_id: String,
    refund_id: Option<String>,
    request_id: String,
    method: String,
    created: OffsetDateTime,
    amount_minor: i64,
    amount_currency: Currency,
    settlement: Settled,
}

/// The settlement side of an entry.
#[derive(Debug, Clone, Copy)]
struct Settled {
    currency: Currency,
    /// Gross in the settlement currency (the converted amount when currencies differ).
    gross_minor: i64,
    fee_minor: i64,
    quote: Option<QuoteSpec>,
    /// What `settlementOff` moved the settlement amount by (0: the formula holds).
    off_minor: i64,
}

impl Settled {
    fn net_minor(&self) -> i64 {
        self.gross_minor + self.fee_minor + self.off_minor
    }
}

/// Makes one report of `date`. `currency` picks the settlement currency of a settlement report (default:
/// the configured one, else the only one of the day).
pub(crate) fn build(
    snapshot: &Snapshot,
    settings: &ReportSettings,
    kind: ReportKind,
    date: Date,
    currency: Option<Currency>,
    generation: ReportGeneration,
    discrepancies: &Discrepancies,
) -> Result<ReportFile, SimError> {
    discrepancies.validate()?;
    let day = Day::new(date, settings.day_offset);
    let mut entries = match kind {
        ReportKind::TransactionDetails => transaction_entries(snapshot, settings, &day, generation),
        ReportKind::SettlementDetails | ReportKind::SettlementSummary => settled_entries(snapshot, settings, &day),
    };
    report_statuses(&mut entries, snapshot, settings, discrepancies)?;
    inject(&mut entries, discrepancies, settings, &day)?;
    let text_end = if discrepancies.truncate { "" } else { "<END>\n" };
    let settlement_date = date.next_day().unwrap_or(date);
    match kind {
        ReportKind::TransactionDetails => Ok(ReportFile {
            directory: directory(settings, date),
            name: format!("transactionItems_{}_000.csv", compact(date)),
            text: details_csv(&entries, settings, generation, kind, &day) + text_end,
        }),
        ReportKind::SettlementDetails | ReportKind::SettlementSummary => {
            let currencies: BTreeSet<Currency> = entries.iter().map(|entry| entry.settlement.currency).collect();
            let currency = pick_currency(currency, settings, &currencies)?;
            let batch = batch_id(settlement_date, &currencies, currency);
            entries.retain(|entry| entry.settlement.currency == currency);
            let (name, text) = if kind == ReportKind::SettlementDetails {
                (
                    format!("settlementItems_{currency}_{batch}_000.csv"),
                    details_csv(&entries, settings, generation, kind, &day),
                )
            } else {
                (
                    format!("settlementSummary_{currency}_{batch}_000.csv"),
                    summary_csv(
                        &entries,
                        settings,
                        generation,
                        (currency, &batch),
                        &day,
                        &discrepancies.summary_off,
                    )?,
                )
            };
            Ok(ReportFile {
                directory: directory(settings, settlement_date),
                name,
                text: text + text_end,
            })
        }
    }
}

/// The settlement currencies of a day's batch (one batch each).
pub(crate) fn settlement_currencies(snapshot: &Snapshot, settings: &ReportSettings, date: Date) -> Vec<Currency> {
    let day = Day::new(date, settings.day_offset);
    let currencies: BTreeSet<Currency> = settled_entries(snapshot, settings, &day)
        .iter()
        .map(|entry| entry.settlement.currency)
        .collect();
    currencies.into_iter().collect()
}

/// The days (at the report offset) on which anything was paid or refunded.
pub(crate) fn active_dates(snapshot: &Snapshot, settings: &ReportSettings) -> Vec<Date> {
    let mut dates = BTreeSet::new();
    for payment in &snapshot.payments {
        dates.insert(payment.payment_time.to_offset(settings.day_offset).date());
    }
    for refund in &snapshot.refunds {
        dates.insert(refund.accepted_at.to_offset(settings.day_offset).date());
    }
    dates.into_iter().collect()
}

struct Day {
    date: Date,
    start: OffsetDateTime,
    end: OffsetDateTime,
    offset: UtcOffset,
}

impl Day {
    fn new(date: Date, offset: UtcOffset) -> Self {
        let start = PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_offset(offset);
        Self {
            date,
            start,
            end: start + time::Duration::DAY,
            offset,
        }
    }

    fn contains(&self, instant: OffsetDateTime) -> bool {
        self.start <= instant && instant < self.end
    }
}

fn transaction_entries(
    snapshot: &Snapshot,
    settings: &ReportSettings,
    day: &Day,
    generation: ReportGeneration,
) -> Vec<Entry> {
    let mut entries: Vec<Entry> = payment_entries(snapshot, settings, day);
    for refund in &snapshot.refunds {
        let status = match (&refund.state, generation) {
            (RefundState::Succeeded { refund_time }, ReportGeneration::G2) if day.contains(*refund_time) => "SUCCESS",
            (_, ReportGeneration::G2) => continue,
            (_, ReportGeneration::G3) if !day.contains(refund.accepted_at) => continue,
            (RefundState::Succeeded { .. }, ReportGeneration::G3) => "SUCCESS",
            (RefundState::Processing { .. }, ReportGeneration::G3) => "PROCESSING",
            (RefundState::Failed { .. }, ReportGeneration::G3) => "FAIL",
        };
        entries.push(refund_entry(refund, status, settings));
    }
    sort(&mut entries);
    entries
}

fn settled_entries(snapshot: &Snapshot, settings: &ReportSettings, day: &Day) -> Vec<Entry> {
    let mut entries = payment_entries(snapshot, settings, day);
    for refund in &snapshot.refunds {
        if let RefundState::Succeeded { refund_time } = refund.state {
            if day.contains(refund_time) {
                entries.push(refund_entry(refund, "SUCCESS", settings));
            }
        }
    }
    sort(&mut entries);
    entries
}

fn sort(entries: &mut [Entry]) {
    entries.sort_by(|a, b| (a.created, &a.request_id).cmp(&(b.created, &b.request_id)));
}

fn payment_entries(snapshot: &Snapshot, settings: &ReportSettings, day: &Day) -> Vec<Entry> {
    snapshot
        .payments
        .iter()
        .filter(|payment| day.contains(payment.payment_time))
        .map(|payment| {
            let amount = signed(payment.payment_amount, false);
            Entry {
                row_type: "PAYMENT",
                status: "SUCCESS",
                payment_id: payment.payment_id.to_string(),
                refund_id: None,
                // The simulator does not know the merchant's paymentRequestId; the paymentId stands in.
                request_id: payment.payment_id.to_string(),
                method: payment.payment_method_type.to_string(),
                created: payment.payment_time,
                amount_minor: amount,
                amount_currency: payment.payment_amount.currency(),
                settlement: settle(
                    amount,
                    payment.payment_amount.currency(),
                    settings.payment_fee_bps,
                    settings,
                ),
            }
        })
        .collect()
}

fn refund_entry(refund: &RefundRecord, status: &'static str, settings: &ReportSettings) -> Entry {
    let amount = signed(refund.refund_amount, true);
    let currency = refund.refund_amount.currency();
    Entry {
        row_type: "REFUND",
        status,
        payment_id: refund.payment_id.to_string(),
        refund_id: Some(refund.refund_id.to_string()),
        request_id: refund.refund_request_id.to_string(),
        method: String::new(),
        created: refund.accepted_at,
        amount_minor: amount,
        amount_currency: currency,
        settlement: settle(amount, currency, settings.refund_fee_bps, settings),
    }
}

fn signed(money: Money, negative: bool) -> i64 {
    // Money holds at most sixteen digits, which always fit in i64.
    let minor = i64::try_from(money.minor_units()).unwrap_or(i64::MAX);
    if negative { -minor } else { minor }
}

/// The settlement side of an amount: converted where a quote relates it to the settlement currency, and the fee.
fn settle(amount_minor: i64, currency: Currency, fee_bps: u32, settings: &ReportSettings) -> Settled {
    let target = settings.settlement_currency.unwrap_or(currency);
    let amount = Decimal::from_i128_with_scale(i128::from(amount_minor), currency.exponent());
    let converted = (target != currency)
        .then(|| {
            settings.quotes.iter().find_map(|quote| {
                if quote.base == currency && quote.quote == target {
                    amount.checked_mul(quote.price).map(|value| (value, *quote))
                } else if quote.base == target && quote.quote == currency {
                    amount.checked_div(quote.price).map(|value| (value, *quote))
                } else {
                    None
                }
            })
        })
        .flatten();
    let (currency, gross, quote) = match converted {
        Some((value, quote)) => (target, to_minor(value, target), Some(quote)),
        None => (currency, amount_minor, None),
    };
    let fee = Decimal::from(gross.unsigned_abs()) * Decimal::from(fee_bps) / Decimal::from(10_000u32);
    let fee_minor = fee
        .round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven)
        .mantissa();
    Settled {
        currency,
        gross_minor: gross,
        fee_minor: -i64::try_from(fee_minor).unwrap_or(0),
        quote,
        off_minor: 0,
    }
}

/// A major-unit decimal rounded half-even to `currency`'s minor units.
fn to_minor(value: Decimal, currency: Currency) -> i64 {
    let rounded = value.round_dp_with_strategy(currency.exponent(), RoundingStrategy::MidpointNearestEven);
    // Scaled by the exponent the value is a whole number of minor units; sixteen digits fit in i64.
    let minor_units = (rounded * Decimal::from(10i64.pow(currency.exponent())))
        .trunc()
        .mantissa();
    i64::try_from(minor_units).unwrap_or(0)
}

/// The `status` discrepancies: the named refunds' rows get the status, and a refund the report leaves out is
/// added with it.
fn report_statuses(
    entries: &mut Vec<Entry>,
    snapshot: &Snapshot,
    settings: &ReportSettings,
    discrepancies: &Discrepancies,
) -> Result<(), SimError> {
    for (id, status) in &discrepancies.status {
        let mut found = false;
        for entry in entries
            .iter_mut()
            .filter(|entry| entry.row_type == "REFUND" && entry.request_id == *id)
        {
            entry.status = status;
            found = true;
        }
        if !found {
            let refund = snapshot
                .refunds
                .iter()
                .find(|refund| refund.refund_request_id.as_str() == id)
                .ok_or_else(|| report_error(format!("status {id:?}: the simulator has no refund with this id")))?;
            entries.push(refund_entry(refund, status, settings));
        }
    }
    sort(entries);
    Ok(())
}

fn inject(
    entries: &mut Vec<Entry>,
    discrepancies: &Discrepancies,
    settings: &ReportSettings,
    day: &Day,
) -> Result<(), SimError> {
    let named = |entry: &Entry, id: &str| entry.row_type == "REFUND" && entry.request_id == id;
    for id in &discrepancies.drop {
        entries.retain(|entry| !named(entry, id));
    }
    for (id, delta) in &discrepancies.change_amount {
        for entry in entries.iter_mut().filter(|entry| named(entry, id)) {
            entry.amount_minor = entry.amount_minor.saturating_sub(*delta);
            entry.settlement = settle(
                entry.amount_minor,
                entry.amount_currency,
                settings.refund_fee_bps,
                settings,
            );
        }
    }
    for (id, delta) in &discrepancies.settlement_off {
        for entry in entries.iter_mut().filter(|entry| named(entry, id)) {
            entry.settlement.off_minor = *delta;
        }
    }
    for id in &discrepancies.duplicate {
        let copies: Vec<Entry> = entries.iter().filter(|entry| named(entry, id)).cloned().collect();
        entries.extend(copies);
    }
    for id in &discrepancies.reverse {
        let reversals: Vec<Entry> = entries
            .iter()
            .filter(|entry| named(entry, id) && entry.status == "SUCCESS")
            .map(|entry| Entry {
                row_type: "REFUND_REVERSAL",
                amount_minor: -entry.amount_minor,
                settlement: Settled {
                    gross_minor: -entry.settlement.gross_minor,
                    fee_minor: 0,
                    off_minor: 0,
                    ..entry.settlement
                },
                created: entry.created + time::Duration::SECOND,
                ..entry.clone()
            })
            .collect();
        if reversals.is_empty() {
            return Err(report_error(format!(
                "reverse {id:?}: no succeeded refund with this id in the report"
            )));
        }
        entries.extend(reversals);
    }
    for (index, id) in discrepancies.extra_refund.iter().enumerate() {
        let currency = settings
            .settlement_currency
            .or_else(|| Currency::parse("currency", "USD").ok())
            .ok_or_else(|| report_error("no currency for the extra refund".into()))?;
        let amount_minor = -(10i64.pow(currency.exponent()));
        let index = i64::try_from(index).unwrap_or_default();
        entries.push(Entry {
            row_type: "REFUND",
            status: "SUCCESS",
            payment_id: "SIMPAY-DASHBOARD".to_owned(),
            refund_id: Some(format!("SIMDASH{:017}", index + 1)),
            request_id: id.clone(),
            method: String::new(),
            created: day.start + time::Duration::hours(12) + time::Duration::seconds(index),
            amount_minor,
            amount_currency: currency,
            settlement: settle(amount_minor, currency, settings.refund_fee_bps, settings),
        });
    }
    Ok(())
}

fn pick_currency(
    requested: Option<Currency>,
    settings: &ReportSettings,
    present: &BTreeSet<Currency>,
) -> Result<Currency, SimError> {
    if let Some(currency) = requested.or(settings.settlement_currency) {
        return Ok(currency);
    }
    match present.len() {
        0 => Currency::parse("currency", "USD").map_err(|error| report_error(error.to_string())),
        1 => Ok(*present.iter().next().unwrap_or_else(|| unreachable!("one element"))),
        _ => Err(report_error(format!(
            "the day settles in several currencies ({}): say which with currency=",
            present.iter().map(Currency::code).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// `<settlement yyyyMMdd><11-digit number>`: one batch per settlement currency of the day.
fn batch_id(settlement_date: Date, currencies: &BTreeSet<Currency>, currency: Currency) -> String {
    let number = currencies
        .iter()
        .position(|each| *each == currency)
        .unwrap_or(currencies.len())
        + 1;
    format!("{}{number:011}", compact(settlement_date))
}

fn directory(settings: &ReportSettings, date: Date) -> String {
    format!("v1/settlements/{}/{}", settings.customer_id, compact(date))
}

fn compact(date: Date) -> String {
    date.format(format_description!("[year][month][day]"))
        .unwrap_or_default()
}

fn major(minor_units: i64, currency: Currency) -> String {
    Decimal::from_i128_with_scale(i128::from(minor_units), currency.exponent()).to_string()
}

fn timestamp(instant: OffsetDateTime, offset: UtcOffset) -> String {
    instant
        .to_offset(offset)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
        ))
        .unwrap_or_default()
}

/// The columns each generation writes, in order.
fn details_header(generation: ReportGeneration, kind: ReportKind) -> &'static [&'static str] {
    match (generation, kind) {
        (ReportGeneration::G3, ReportKind::TransactionDetails) => &[
            "customerId",
            "PSP",
            "ARN",
            "referenceMerchantId",
            "referenceStoreId",
            "transactionId",
            "transactionRequestId",
            "originalTransactionRequestId",
            "referenceTransactionId",
            "orderDescription",
            "paymentMethodType",
            "wallet",
            "transactionType",
            "status",
            "transactionCreationTime",
            "transactionAmountValue",
            "transactionCurrency",
            "convertedTransactionAmountValue",
            "convertedCurrency",
            "settlementAmountValue",
            "settlementCurrency",
            "quoteCurrencyPair",
            "quotePrice",
            "paymentMethodFeeAmountValue",
            "paymentMethodFeeCurrency",
            "settlementBatchId",
        ],
        (ReportGeneration::G3, _) => &[
            "settlementBatchId",
            "customerId",
            "PSP",
            "ARN",
            "referenceMerchantId",
            "referenceStoreId",
            "transactionId",
            "transactionRequestId",
            "originalTransactionRequestId",
            "referenceTransactionId",
            "paymentMethodType",
            "wallet",
            "transactionType",
            "transactionCreationTime",
            "settlementInitiatedDate",
            "transactionAmountValue",
            "transactionCurrency",
            "convertedTransactionAmountValue",
            "convertedCurrency",
            "settlementAmountValue",
            "settlementCurrency",
            "quoteCurrencyPair",
            "quotePrice",
            "paymentMethodFeeAmountValue",
            "paymentMethodFeeCurrency",
        ],
        (ReportGeneration::G2, ReportKind::TransactionDetails) => &[
            "customerId",
            "acquirer",
            "acquirerReferenceNo",
            "referenceMerchantId",
            "referenceStoreId",
            "transactionId",
            "originalTransactionId",
            "transactionRequestId",
            "originalTransactionRequestId",
            "referenceTransactionId",
            "orderDescription",
            "paymentMethodType",
            "pspName",
            "transactionType",
            "paymentTime",
            "transactionAmountValue",
            "transactionCurrency",
            "settlementAmountValue",
            "settlementCurrency",
            "feeAmountValue",
            "feeCurrency",
            "settlementBatchId",
        ],
        (ReportGeneration::G2, _) => &[
            "settlementBatchId",
            "customerId",
            "acquirer",
            "acquirerReferenceNo",
            "referenceMerchantId",
            "referenceStoreId",
            "transactionId",
            "originalTransactionId",
            "transactionRequestId",
            "originalTransactionRequestId",
            "referenceTransactionId",
            "paymentMethodType",
            "pspName",
            "transactionType",
            "paymentTime",
            "settlementTime",
            "transactionAmountValue",
            "transactionCurrency",
            "settlementAmountValue",
            "settlementCurrency",
            "quoteCurrencyPair",
            "quotePrice",
            "feeAmountValue",
            "feeCurrency",
        ],
    }
}

fn details_csv(
    entries: &[Entry],
    settings: &ReportSettings,
    generation: ReportGeneration,
    kind: ReportKind,
    day: &Day,
) -> String {
    let header = details_header(generation, kind);
    let mut text = header.join(",");
    text.push('\n');
    let settlement_date = day.date.next_day().unwrap_or(day.date);
    let currencies: BTreeSet<Currency> = entries.iter().map(|entry| entry.settlement.currency).collect();
    for entry in entries {
        let settled = &entry.settlement;
        let converted = settled.currency != entry.amount_currency;
        let cells: Vec<String> = header
            .iter()
            .map(|column| match *column {
                "settlementBatchId" => batch_id(settlement_date, &currencies, settled.currency),
                "customerId" => settings.customer_id.clone(),
                "PSP" => "Antom".to_owned(),
                "acquirer" => "Alipay_SG".to_owned(),
                // G3: the paymentId for every type (Antom's Chinese G3 pages); G2: the refundId of a refund.
                "transactionId" => match (generation, &entry.refund_id) {
                    (ReportGeneration::G2, Some(refund_id)) => refund_id.clone(),
                    _ => entry.payment_id.clone(),
                },
                "originalTransactionId" => match entry.refund_id {
                    Some(_) => entry.payment_id.clone(),
                    None => String::new(),
                },
                "transactionRequestId" => entry.request_id.clone(),
                "paymentMethodType" => entry.method.clone(),
                "transactionType" => entry.row_type.to_owned(),
                "status" => entry.status.to_owned(),
                "transactionCreationTime" | "paymentTime" => timestamp(entry.created, day.offset),
                "settlementInitiatedDate" => compact_dashed(settlement_date),
                "settlementTime" => timestamp(day.end, day.offset),
                "transactionAmountValue" => major(entry.amount_minor, entry.amount_currency),
                "transactionCurrency" => entry.amount_currency.code().to_owned(),
                "convertedTransactionAmountValue" if converted => major(settled.gross_minor, settled.currency),
                "convertedCurrency" if converted => settled.currency.code().to_owned(),
                "settlementAmountValue" => major(settled.net_minor(), settled.currency),
                "settlementCurrency" => settled.currency.code().to_owned(),
                "quoteCurrencyPair" => settled
                    .quote
                    .map(|quote| format!("{}/{}", quote.base, quote.quote))
                    .unwrap_or_default(),
                "quotePrice" => settled.quote.map(|quote| quote.price.to_string()).unwrap_or_default(),
                "paymentMethodFeeAmountValue" | "feeAmountValue" => major(settled.fee_minor, settled.currency),
                "paymentMethodFeeCurrency" | "feeCurrency" => settled.currency.code().to_owned(),
                _ => String::new(),
            })
            .collect();
        push_row(&mut text, &cells);
    }
    text
}

/// The summary of a batch (`batch`: its settlement currency and id), each row of a type named in `offsets`
/// moved by its minor units.
fn summary_csv(
    entries: &[Entry],
    settings: &ReportSettings,
    generation: ReportGeneration,
    batch: (Currency, &str),
    day: &Day,
    offsets: &[(String, i64)],
) -> Result<String, SimError> {
    let (currency, batch) = batch;
    let settlement_date = day.date.next_day().unwrap_or(day.date);
    let (acquirer_column, time_column, fee_column, fee_currency_column, acquirer, time) = match generation {
        ReportGeneration::G3 => (
            "PSP",
            "settlementInitiatedDate",
            "paymentMethodFeeAmountValue",
            "paymentMethodFeeCurrency",
            "Antom",
            compact_dashed(settlement_date),
        ),
        ReportGeneration::G2 => (
            "acquirer",
            "settlementTime",
            "feeAmountValue",
            "feeCurrency",
            "Alipay_SG",
            timestamp(day.end, day.offset),
        ),
    };
    let mut text = format!(
        "settlementBatchId,customerId,{acquirer_column},summaryType,{time_column},count,settlementAmountValue,\
         settlementCurrency,{fee_column},{fee_currency_column}\n"
    );
    let mut types: Vec<&'static str> = entries.iter().map(|entry| entry.row_type).collect();
    types.sort_unstable();
    types.dedup();
    if let Some((unknown, _)) = offsets
        .iter()
        .find(|(name, _)| name != "TOTAL" && !types.contains(&name.as_str()))
    {
        return Err(report_error(format!(
            "summaryOff {unknown:?}: the batch has no row of this type"
        )));
    }
    let mut total = (0usize, 0i64, 0i64);
    for row_type in types.into_iter().chain(std::iter::once("TOTAL")) {
        let (count, net, fee) = if row_type == "TOTAL" {
            total
        } else {
            let of_type: Vec<&Entry> = entries.iter().filter(|entry| entry.row_type == row_type).collect();
            let sums = (
                of_type.len(),
                of_type.iter().map(|entry| entry.settlement.net_minor()).sum::<i64>(),
                of_type.iter().map(|entry| entry.settlement.fee_minor).sum::<i64>(),
            );
            total = (total.0 + sums.0, total.1 + sums.1, total.2 + sums.2);
            sums
        };
        let off: i64 = offsets
            .iter()
            .filter(|(name, _)| name == row_type)
            .map(|(_, delta)| delta)
            .sum();
        let net = net + off;
        let cells = [
            batch.to_owned(),
            settings.customer_id.clone(),
            acquirer.to_owned(),
            row_type.to_owned(),
            time.clone(),
            count.to_string(),
            major(net, currency),
            currency.code().to_owned(),
            major(fee, currency),
            currency.code().to_owned(),
        ];
        push_row(&mut text, &cells);
    }
    Ok(text)
}

fn compact_dashed(date: Date) -> String {
    date.format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// One CSV line; a cell with a comma, quote or line break is quoted (RFC 4180).
fn push_row(text: &mut String, cells: &[String]) {
    for (index, cell) in cells.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        if cell.contains([',', '"', '\n', '\r']) {
            let _infallible = write!(text, "\"{}\"", cell.replace('"', "\"\""));
        } else {
            text.push_str(cell);
        }
    }
    text.push('\n');
}

#[cfg(test)]
mod tests {
    use crate::report_settings::FEE_BPS_MAX;
    use domain::{PaymentId, PaymentMethodType, RefundId, RefundRequestId};
    use time::macros::{date, datetime};

    use super::*;

    fn money(currency: &str, minor: u64) -> Money {
        Money::parse("a", currency, &minor.to_string()).unwrap()
    }

    fn snapshot() -> Snapshot {
        let paid = datetime!(2026-03-04 10:15:02 +08:00);
        let payment = |id: &str, amount| {
            PaymentSeed::captured(
                PaymentId::parse(id).unwrap(),
                amount,
                PaymentMethodType::parse("CARD").unwrap(),
                paid,
            )
        };
        let refund = |id: &str, payment: &str, amount, number: u64, state| RefundRecord {
            refund_request_id: RefundRequestId::parse(id).unwrap(),
            refund_id: RefundId::parse(&format!("SIMREF{number:018}")).unwrap(),
            payment_id: PaymentId::parse(payment).unwrap(),
            refund_amount: amount,
            accepted_at: datetime!(2026-03-04 16:40:11 +08:00),
            state,
        };
        let succeeded = RefundState::Succeeded {
            refund_time: datetime!(2026-03-04 16:40:11 +08:00),
        };
        Snapshot {
            payments: vec![payment("P1", money("USD", 10_000)), payment("P2", money("JPY", 5_000))],
            refunds: vec![
                refund("R1", "P1", money("USD", 3_000), 1, succeeded.clone()),
                refund("R2", "P2", money("JPY", 1_200), 2, succeeded),
                refund(
                    "R3",
                    "P1",
                    money("USD", 100),
                    3,
                    RefundState::Processing {
                        settle_at: datetime!(2026-03-04 16:40:13 +08:00),
                        will_succeed: true,
                    },
                ),
            ],
        }
    }

    fn usd_settlement() -> ReportSettings {
        ReportSettings {
            settlement_currency: Some(Currency::parse("c", "USD").unwrap()),
            quotes: vec![QuoteSpec::parse("JPY/USD=0.0066").unwrap()],
            ..ReportSettings::default()
        }
    }

    fn report(kind: ReportKind, generation: ReportGeneration, discrepancies: &Discrepancies) -> ReportFile {
        try_report(kind, generation, discrepancies).unwrap()
    }

    fn try_report(
        kind: ReportKind,
        generation: ReportGeneration,
        discrepancies: &Discrepancies,
    ) -> Result<ReportFile, SimError> {
        build(
            &snapshot(),
            &usd_settlement(),
            kind,
            date!(2026 - 03 - 04),
            None,
            generation,
            discrepancies,
        )
    }

    #[test]
    fn the_transaction_details_of_a_day_in_g3() {
        let file = report(
            ReportKind::TransactionDetails,
            ReportGeneration::G3,
            &Discrepancies::default(),
        );
        assert_eq!(file.name, "transactionItems_20260304_000.csv");
        assert_eq!(file.directory, "v1/settlements/2188120000000001/20260304");
        let lines: Vec<&str> = file.text.lines().collect();
        assert_eq!(lines.len(), 7, "{}", file.text);
        assert!(lines[1].contains(",PAYMENT,SUCCESS,2026-03-04T10:15:02+08:00,100.00,USD,,,96.80,USD,,,-3.20,USD,"));
        assert!(
            lines[3]
                .contains(",P1,R1,,,,,,REFUND,SUCCESS,2026-03-04T16:40:11+08:00,-30.00,USD,,,-30.00,USD,,,0.00,USD,"),
            "{}",
            lines[3]
        );
        assert!(
            lines[4].contains(
                ",REFUND,SUCCESS,2026-03-04T16:40:11+08:00,-1200,JPY,-7.92,USD,-7.92,USD,JPY/USD,0.0066,0.00,USD,"
            ),
            "{}",
            lines[4]
        );
        assert!(lines[5].contains(",R3,,,,,,REFUND,PROCESSING,"));
        assert_eq!(lines[6], "<END>");
    }

    #[test]
    fn a_batch_in_g2_with_its_summary() {
        let details = report(
            ReportKind::SettlementDetails,
            ReportGeneration::G2,
            &Discrepancies::default(),
        );
        assert_eq!(details.name, "settlementItems_USD_2026030500000000001_000.csv");
        assert_eq!(details.directory, "v1/settlements/2188120000000001/20260305");
        // G2: transactionId is the refundId, originalTransactionId the paymentId; no PROCESSING refund.
        assert!(
            details.text.contains(",SIMREF000000000000000001,P1,R1,"),
            "{}",
            details.text
        );
        assert!(!details.text.contains("R3"));
        let summary = report(
            ReportKind::SettlementSummary,
            ReportGeneration::G2,
            &Discrepancies::default(),
        );
        let lines: Vec<&str> = summary.text.lines().collect();
        assert!(lines[0].starts_with("settlementBatchId,customerId,acquirer,summaryType,settlementTime,count,"));
        // 96.80 + 48.40 (5000 JPY * 0.0066 = 33.00, fee -1.06 -> 31.94)... per row, then TOTAL.
        assert!(
            lines[1].contains(",PAYMENT,") && lines[1].contains(",2,128.74,USD,-4.26,USD"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].contains(",REFUND,") && lines[2].contains(",2,-37.92,USD,0.00,USD"),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].contains(",TOTAL,") && lines[3].contains(",4,90.82,USD,-4.26,USD"),
            "{}",
            lines[3]
        );
    }

    #[test]
    fn discrepancies_are_injected_where_asked() {
        let discrepancies = Discrepancies {
            drop: vec!["R1".into()],
            change_amount: vec![("R2".into(), 100)],
            extra_refund: vec!["DASH-1".into()],
            reverse: vec!["R2".into()],
            duplicate: vec!["R3".into()],
            truncate: true,
            ..Discrepancies::default()
        };
        let file = report(ReportKind::TransactionDetails, ReportGeneration::G3, &discrepancies);
        assert!(!file.text.contains(",R1,"));
        assert!(
            file.text.contains(",-1300,JPY,-8.58,USD,-8.58,USD,JPY/USD,0.0066,"),
            "{}",
            file.text
        );
        assert!(file.text.contains(",SIMPAY-DASHBOARD,DASH-1,"), "{}", file.text);
        assert!(
            file.text
                .contains(",REFUND_REVERSAL,SUCCESS,2026-03-04T16:40:12+08:00,1300,JPY,"),
            "{}",
            file.text
        );
        assert_eq!(file.text.matches(",R3,").count(), 2);
        assert!(!file.text.contains("<END>"));
        let unknown = Discrepancies {
            reverse: vec!["R3".into()],
            ..Discrepancies::default()
        };
        assert!(try_report(ReportKind::TransactionDetails, ReportGeneration::G3, &unknown).is_err());
    }

    #[test]
    fn statuses_and_settlement_amounts_are_injected_where_asked() {
        // R1 is reported failed, R3 (processing at the simulator) refunded; G2 leaves R3 out unless told.
        let statuses = Discrepancies {
            status: vec![("R1".into(), "FAIL"), ("R3".into(), "SUCCESS")],
            ..Discrepancies::default()
        };
        let g3 = report(ReportKind::TransactionDetails, ReportGeneration::G3, &statuses);
        assert!(g3.text.contains(",R1,,,,,,REFUND,FAIL,"), "{}", g3.text);
        assert!(g3.text.contains(",R3,,,,,,REFUND,SUCCESS,"), "{}", g3.text);
        let g2 = report(ReportKind::TransactionDetails, ReportGeneration::G2, &statuses);
        assert!(g2.text.contains(",SIMREF000000000000000003,P1,R3,"), "{}", g2.text);
        let unknown = Discrepancies {
            status: vec![("NOPE".into(), "FAIL")],
            ..Discrepancies::default()
        };
        assert!(try_report(ReportKind::TransactionDetails, ReportGeneration::G3, &unknown).is_err());

        // R1's settlement is 0.05 USD off its amount plus fees; the summary's REFUND row follows the rows, and
        // its PAYMENT row is moved 1.00 off the details.
        let settlement = Discrepancies {
            settlement_off: vec![("R1".into(), -5)],
            summary_off: vec![("PAYMENT".into(), 100)],
            ..Discrepancies::default()
        };
        let details = report(ReportKind::SettlementDetails, ReportGeneration::G3, &settlement);
        assert!(
            details
                .text
                .contains(",REFUND,2026-03-04T16:40:11+08:00,2026-03-05,-30.00,USD,,,-30.05,USD,,,0.00,USD"),
            "{}",
            details.text
        );
        let summary = report(ReportKind::SettlementSummary, ReportGeneration::G3, &settlement);
        let lines: Vec<&str> = summary.text.lines().collect();
        assert!(
            lines[1].contains(",PAYMENT,") && lines[1].contains(",2,129.74,USD,"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].contains(",REFUND,") && lines[2].contains(",2,-37.97,USD,"),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].contains(",TOTAL,") && lines[3].contains(",4,90.77,USD,"),
            "{}",
            lines[3]
        );
        assert_eq!(
            Discrepancies::parse_status("R1:processing").unwrap(),
            ("R1".to_owned(), "PROCESSING")
        );
        assert!(Discrepancies::parse_status("R1:LOST").is_err());
        assert!(Discrepancies::parse_status(":FAIL").is_err());
        let no_such_type = Discrepancies {
            summary_off: vec![("DISPUTE".into(), 1)],
            ..Discrepancies::default()
        };
        assert!(try_report(ReportKind::SettlementSummary, ReportGeneration::G3, &no_such_type).is_err());
    }

    #[test]
    fn without_a_settlement_currency_each_currency_is_its_own_batch() {
        let settings = ReportSettings::default();
        let snapshot = snapshot();
        let day = date!(2026 - 03 - 04);
        let currencies: Vec<&str> = settlement_currencies(&snapshot, &settings, day)
            .iter()
            .map(Currency::code)
            .collect();
        assert_eq!(currencies, vec!["JPY", "USD"]);
        let none = Discrepancies::default();
        assert!(
            build(
                &snapshot,
                &settings,
                ReportKind::SettlementDetails,
                day,
                None,
                ReportGeneration::G3,
                &none
            )
            .is_err()
        );
        let jpy = Currency::parse("c", "JPY").unwrap();
        let file = build(
            &snapshot,
            &settings,
            ReportKind::SettlementDetails,
            day,
            Some(jpy),
            ReportGeneration::G3,
            &none,
        )
        .unwrap();
        assert_eq!(file.name, "settlementItems_JPY_2026030500000000001_000.csv");
        assert!(file.text.contains(",5000,JPY,,,4840,JPY,,,-160,JPY"), "{}", file.text);
    }

    #[test]
    fn quotes_and_settings_are_checked() {
        assert!(QuoteSpec::parse("JPY/USD=0.0066").is_ok());
        for bad in [
            "JPYUSD=1",
            "JPY/USD",
            "JPY/XXX=1",
            "USD/USD=1",
            "JPY/USD=-1",
            "JPY/USD=abc",
        ] {
            assert!(QuoteSpec::parse(bad).is_err(), "{bad}");
        }
        let settings = ReportSettings {
            payment_fee_bps: FEE_BPS_MAX + 1,
            ..ReportSettings::default()
        };
        assert!(settings.validate().is_err());
        assert_eq!(Discrepancies::parse_change("R1:-250").unwrap(), ("R1".to_owned(), -250));
        assert!(Discrepancies::parse_change("R1:x").is_err());
        assert!(Discrepancies::parse_change("R1:-99999999999999999").is_err());
    }
}
