//! The double-entry journal, pure part: which events make journal lines and how the lines read.
//!
//! Each succeeded refund makes one balanced pair, dated when the ledger recorded the success: a debit of the
//! refunds account and a credit of the Antom clearing account, both of the refund amount. Every line carries
//! the position and hash of the `RefundSucceeded` event, so an auditor can trace it to the verified log.
//! The amount is not in `RefundSucceeded`: [`JournalBuilder`] remembers the amounts of open refunds it saw
//! requested (at most [`OPEN_REFUNDS_REMEMBERED_MAX`]) and asks its caller to look up any other.

use std::collections::HashMap;

use domain::{Money, PaymentEvent, PaymentId, RefundId, RefundRequestId, RefundRequested, RefundSucceeded};
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
];

/// The two accounts every succeeded refund moves money between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounts {
    /// Debited with each succeeded refund (the merchant's refunds expense or contra-revenue account).
    pub refunds: String,
    /// Credited with each succeeded refund (what Antom settles).
    pub clearing: String,
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
            return Ok(Observation::Nothing);
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
