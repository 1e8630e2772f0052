//! The double-entry journal, pure part: which events make journal lines and how the lines read.
//!
//! Each succeeded refund makes one balanced pair, dated when the ledger recorded the success: a debit of the
//! refunds account and a credit of the Antom clearing account, both of the refund amount. Every line carries
//! the position and hash of the `RefundSucceeded` event, so an auditor can trace it to the verified log.
//! The amount is not in `RefundSucceeded`: [`JournalBuilder`] remembers the amounts of open refunds it saw
//! requested (at most [`OPEN_REFUNDS_REMEMBERED_MAX`]) and asks its caller to look up any other.
//!
//! A reconciled settlement batch (a `ReconciliationRecorded` of kind `SETTLEMENT_BATCH`) adds the settlement
//! side: for each settled REFUND row of the batch, lines that clear the clearing account against the
//! settlement account, each fee column as its own line, and, when the settlement currency differs, the
//! conversion and its difference ([`settlement_lines`]). They are dated on the row's settlement date as the report
//! prints it (G3 `settlementInitiatedDate`, the date of G1/G2 `settlementTime`), or, for a row without one, on the
//! day the run was recorded; `recordedAt` is the run's time (the export's range selects by it), and they carry the
//! run event's position and hash, the run id, the report file and its line.

use std::collections::HashMap;

use domain::{
    Currency, LegAccount, Money, PaymentEvent, PaymentId, RECONCILIATION_STREAM_PREFIX, ReconciliationEvent,
    RecordedFinding, RefundId, RefundRequestId, RefundRequested, RefundSucceeded, UnbookableSettlement,
    settlement_date, settlement_legs,
};
use eventlog::RecordedEvent;
use projections::PAYMENT_STREAM_PREFIX;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::encode::{Cell, Encoder, decimal_text};
use crate::error::AuditError;

/// Most open refunds whose amounts the builder remembers; past it, amounts are looked up in the stream.
pub const OPEN_REFUNDS_REMEMBERED_MAX: usize = 100_000;

/// The journal's columns, in order.
pub const JOURNAL_COLUMNS: &[&str] = &[
    "date",
    "recordedAt",
    "refundRequestId",
    "refundId",
    "paymentId",
    "currency",
    "account",
    "debit",
    "credit",
    "position",
    "hash",
    "runId",
    "file",
    "line",
];

/// The report kind of a reconciliation run whose settled rows the journal books.
pub const SETTLEMENT_BATCH: &str = "SETTLEMENT_BATCH";

/// The accounts of the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounts {
    /// Debited with each succeeded refund (the merchant's refunds expense or contra-revenue account).
    pub refunds: String,
    /// Credited with each succeeded refund (what Antom settles), debited when a batch settles it.
    pub clearing: String,
    /// The accounts of a reconciled settlement batch.
    pub settlement: SettlementAccounts,
}

/// The accounts a reconciled settlement batch books to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementAccounts {
    /// The merchant's settlement account at Antom: credited with what each settled refund took from it.
    pub settlement: String,
    /// Fees: each fee column books to `{fees}:{column}` (`antom-fees:paymentMethodFee`).
    pub fees: String,
    /// Where a refund in one currency becomes money in the settlement currency: credited in the transaction
    /// currency, debited in the settlement currency; its balance per currency is the batch's FX position.
    pub fx_conversion: String,
    /// The rounding of a conversion: what the report's settlement differs from the quoted gross plus the fees.
    pub fx_difference: String,
    /// The same difference in one currency (a row whose settlement is not its amount plus its fees).
    pub settlement_difference: String,
}

impl Default for SettlementAccounts {
    fn default() -> Self {
        Self {
            settlement: "antom-settlement".to_owned(),
            fees: "antom-fees".to_owned(),
            fx_conversion: "fx-conversion".to_owned(),
            fx_difference: "fx-difference".to_owned(),
            settlement_difference: "settlement-difference".to_owned(),
        }
    }
}

/// One succeeded refund: the source of a balanced pair of journal lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Position of the `RefundSucceeded` event.
    pub position: u64,
    /// Its hash.
    pub hash: [u8; 32],
    /// When the ledger recorded the success.
    pub recorded_at: OffsetDateTime,
    /// The merchant's idempotency key.
    pub refund_request_id: RefundRequestId,
    /// Antom's refund id.
    pub refund_id: RefundId,
    /// The payment refunded.
    pub payment_id: PaymentId,
    /// The refund amount.
    pub amount: Money,
}

impl JournalEntry {
    /// Appends the entry's two lines: the debit of `accounts.refunds`, then the credit of `accounts.clearing`.
    pub fn encode(&self, encoder: &Encoder, accounts: &Accounts, out: &mut Vec<u8>) {
        let recorded_at = self
            .recorded_at
            .format(&Rfc3339)
            .unwrap_or_else(|_| self.recorded_at.to_string());
        let date = recorded_at.get(..10).unwrap_or(&recorded_at);
        let currency = self.amount.currency();
        let exponent = currency.exponent();
        let amount = decimal_text(self.amount.minor_units(), exponent);
        let zero = decimal_text(0, exponent);
        let hash = hex::encode(self.hash);
        let sides = [
            (&accounts.refunds, &amount, &zero),
            (&accounts.clearing, &zero, &amount),
        ];
        for (account, debit, credit) in sides {
            encoder.row(
                out,
                &[
                    Cell::Text(date),
                    Cell::Text(&recorded_at),
                    Cell::Text(self.refund_request_id.as_str()),
                    Cell::Text(self.refund_id.as_str()),
                    Cell::Text(self.payment_id.as_str()),
                    Cell::Text(currency.code()),
                    Cell::Text(account),
                    Cell::Text(debit),
                    Cell::Text(credit),
                    Cell::Number(self.position),
                    Cell::Text(&hash),
                    Cell::Missing,
                    Cell::Missing,
                    Cell::Missing,
                ],
            );
        }
    }
}

/// A reconciled settlement batch: the source of the settlement lines of its settled rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementRun {
    /// Position of the run's `ReconciliationRecorded`.
    pub position: u64,
    /// Its hash.
    pub hash: [u8; 32],
    /// When the run was recorded.
    pub recorded_at: OffsetDateTime,
    /// The run's id (its stream is `reconciliation-{runId}`).
    pub run_id: String,
    /// Findings in the run's chunks (before its `ReconciliationRecorded` on its stream).
    pub findings_count: u64,
}

/// One line of a settled row: `amount` in minor units of `currency`, a debit when positive, a credit when
/// negative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementLine {
    /// The line's currency.
    pub currency: Currency,
    /// The account.
    pub account: String,
    /// Signed minor units: debit positive, credit negative.
    pub amount: i128,
}

/// The settlement lines of one finding of a settlement batch, or none when it carries no settlement side (not a
/// settled REFUND row's first finding): [`domain::settlement_legs`] with the accounts named (`clearing` the
/// refunds' clearing account, each fee `{fees}:{column}`). Every currency's lines add up to zero.
///
/// An error (the row's lines are then left out; the run recorded a `SETTLEMENT_NOT_BOOKED` finding for it, with
/// the same reason) when a currency is unknown, a quote is missing or does not relate the currencies, or a fee
/// is in a third currency.
pub fn settlement_lines(
    finding: &RecordedFinding,
    accounts: &SettlementAccounts,
    clearing: &str,
) -> Result<Vec<SettlementLine>, UnbookableSettlement> {
    Ok(settlement_legs(finding)?
        .into_iter()
        .map(|leg| SettlementLine {
            currency: leg.currency,
            account: match leg.account {
                LegAccount::Clearing => clearing.to_owned(),
                LegAccount::FxConversion => accounts.fx_conversion.clone(),
                LegAccount::Fee(kind) => format!("{}:{kind}", accounts.fees),
                LegAccount::FxDifference => accounts.fx_difference.clone(),
                LegAccount::SettlementDifference => accounts.settlement_difference.clone(),
                LegAccount::Settlement => accounts.settlement.clone(),
            },
            amount: leg.amount,
        })
        .collect())
}

impl SettlementRun {
    /// Appends the lines of `finding` (one of the run's) in the currencies `wanted` accepts.
    pub fn encode(
        &self,
        encoder: &Encoder,
        accounts: &Accounts,
        finding: &RecordedFinding,
        wanted: impl Fn(Currency) -> bool,
        out: &mut Vec<u8>,
    ) {
        let lines = match settlement_lines(finding, &accounts.settlement, &accounts.clearing) {
            Ok(lines) => lines,
            Err(reason) => {
                tracing::warn!(
                    run_id = %self.run_id,
                    seq = finding.seq,
                    %reason,
                    "settled row left out of the journal (the run recorded it SETTLEMENT_NOT_BOOKED)"
                );
                return;
            }
        };
        let recorded_at = self
            .recorded_at
            .format(&Rfc3339)
            .unwrap_or_else(|_| self.recorded_at.to_string());
        // The batch's settlement date as the report printed it; a row without one (the run warned about it, and
        // findings recorded before the date was) books on the day the run was recorded.
        let settled_on = settlement_date(finding).map(|date| date.to_string());
        if settled_on.is_none() && !lines.is_empty() {
            tracing::debug!(run_id = %self.run_id, seq = finding.seq, "settled row without a settlement date: dated at the run");
        }
        let date = settled_on
            .as_deref()
            .unwrap_or_else(|| recorded_at.get(..10).unwrap_or(&recorded_at));
        let hash = hex::encode(self.hash);
        for line in lines.iter().filter(|line| wanted(line.currency)) {
            let exponent = line.currency.exponent();
            // Amounts are at most sixteen digits of minor units (the parser's bound), far inside u64.
            let amount = decimal_text(u64::try_from(line.amount.unsigned_abs()).unwrap_or(u64::MAX), exponent);
            let zero = decimal_text(0, exponent);
            let (debit, credit) = if line.amount > 0 {
                (&amount, &zero)
            } else {
                (&zero, &amount)
            };
            let number = |value: Option<u64>| value.map_or(Cell::Missing, Cell::Number);
            encoder.row(
                out,
                &[
                    Cell::Text(date),
                    Cell::Text(&recorded_at),
                    finding.refund_request_id.as_deref().into(),
                    finding.refund_id.as_deref().into(),
                    Cell::Missing,
                    Cell::Text(line.currency.code()),
                    Cell::Text(&line.account),
                    Cell::Text(debit),
                    Cell::Text(credit),
                    Cell::Number(self.position),
                    Cell::Text(&hash),
                    Cell::Text(&self.run_id),
                    finding.file.as_deref().into(),
                    number(finding.line),
                ],
            );
        }
    }
}

/// What one event means for the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// Nothing to write.
    Nothing,
    /// A complete entry.
    Entry(JournalEntry),
    /// A refund succeeded whose request the builder did not see: look up its amount (in the payment's
    /// stream) and complete the entry with [`PendingEntry::complete`].
    NeedsAmount(PendingEntry),
    /// A settlement batch was reconciled: read its findings (the run's stream before this event) and write
    /// their settlement lines with [`SettlementRun::encode`].
    Settlement(SettlementRun),
}

/// A journal entry waiting for its refund amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    entry_position: u64,
    hash: [u8; 32],
    recorded_at: OffsetDateTime,
    succeeded: RefundSucceeded,
    payment_id: PaymentId,
}

impl PendingEntry {
    /// The refund whose amount is needed.
    pub fn refund_request_id(&self) -> &RefundRequestId {
        &self.succeeded.refund_request_id
    }

    /// The payment whose stream holds the request.
    pub fn payment_id(&self) -> &PaymentId {
        &self.payment_id
    }

    /// The entry with the amount found.
    pub fn complete(self, amount: Money) -> JournalEntry {
        JournalEntry {
            position: self.entry_position,
            hash: self.hash,
            recorded_at: self.recorded_at,
            refund_request_id: self.succeeded.refund_request_id,
            refund_id: self.succeeded.refund_id,
            payment_id: self.payment_id,
            amount,
        }
    }
}

/// Turns events, in position order, into journal entries.
#[derive(Debug, Clone, Default)]
pub struct JournalBuilder {
    open: HashMap<RefundRequestId, Money>,
}

impl JournalBuilder {
    /// Looks at the next event.
    pub fn observe(&mut self, event: &RecordedEvent) -> Result<Observation, AuditError> {
        let Some(payment_id) = event.stream.as_str().strip_prefix(PAYMENT_STREAM_PREFIX) else {
            return settlement_run(event);
        };
        match event.event_type.as_str() {
            "RefundRequested" => {
                let requested = decode_requested(event)?;
                if self.open.len() < OPEN_REFUNDS_REMEMBERED_MAX {
                    self.open.insert(requested.refund_request_id, requested.refund_amount);
                }
                Ok(Observation::Nothing)
            }
            "RefundFailed" => {
                if let PaymentEvent::RefundFailed(failed) = decode_any(event)? {
                    self.open.remove(&failed.refund_request_id);
                }
                Ok(Observation::Nothing)
            }
            "RefundSucceeded" => {
                let succeeded = decode_succeeded(event)?;
                let payment_id = PaymentId::parse(payment_id).map_err(|error| replay_error(event, error))?;
                let pending = PendingEntry {
                    entry_position: event.position,
                    hash: event.hash,
                    recorded_at: event.recorded_at,
                    succeeded,
                    payment_id,
                };
                Ok(match self.open.remove(pending.refund_request_id()) {
                    Some(amount) => Observation::Entry(pending.complete(amount)),
                    None => Observation::NeedsAmount(pending),
                })
            }
            _ => Ok(Observation::Nothing),
        }
    }
}

/// A reconciled settlement batch's `ReconciliationRecorded`, or nothing.
fn settlement_run(event: &RecordedEvent) -> Result<Observation, AuditError> {
    if !event.stream.as_str().starts_with(RECONCILIATION_STREAM_PREFIX) || event.event_type != "ReconciliationRecorded"
    {
        return Ok(Observation::Nothing);
    }
    let decoded = ReconciliationEvent::from_stored(&event.event_type, event.schema_version, &event.payload)
        .map_err(|error| replay_error(event, error))?;
    Ok(match decoded {
        ReconciliationEvent::ReconciliationRecorded(run) if run.report_kind == SETTLEMENT_BATCH => {
            Observation::Settlement(SettlementRun {
                position: event.position,
                hash: event.hash,
                recorded_at: event.recorded_at,
                run_id: run.run_id,
                findings_count: run.findings_count,
            })
        }
        _ => Observation::Nothing,
    })
}

fn replay_error(event: &RecordedEvent, error: impl std::fmt::Display) -> AuditError {
    AuditError::Replay {
        position: event.position,
        reason: error.to_string(),
    }
}

/// Decodes the payload of a current-version event straight into its struct (the hot path of an export);
/// older versions go through the domain's upcasting decoder.
fn decode_with<T: serde::de::DeserializeOwned>(
    event: &RecordedEvent,
    extract: fn(PaymentEvent) -> Option<T>,
) -> Result<T, AuditError> {
    let current = domain::EVENT_TYPES
        .iter()
        .any(|(name, version)| *name == event.event_type && *version == event.schema_version);
    if current {
        return serde_json::from_slice(&event.payload).map_err(|error| replay_error(event, error));
    }
    extract(decode_any(event)?).ok_or_else(|| replay_error(event, "another event type after upcasting"))
}

fn decode_requested(event: &RecordedEvent) -> Result<RefundRequested, AuditError> {
    decode_with(event, |event| match event {
        PaymentEvent::RefundRequested(requested) => Some(requested),
        _ => None,
    })
}

fn decode_succeeded(event: &RecordedEvent) -> Result<RefundSucceeded, AuditError> {
    decode_with(event, |event| match event {
        PaymentEvent::RefundSucceeded(succeeded) => Some(succeeded),
        _ => None,
    })
}

fn decode_any(event: &RecordedEvent) -> Result<PaymentEvent, AuditError> {
    PaymentEvent::from_stored(&event.event_type, event.schema_version, &event.payload, &[])
        .map_err(|error| replay_error(event, error))
}
