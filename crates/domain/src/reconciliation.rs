//! The events of a reconciliation stream (`reconciliation-{runId}`): a run of Antom's reports against the
//! ledger, its findings and their acknowledgements (docs/adr/003-reconciliation.md).
//!
//! A run is appended only after every file reached `<END>`: its findings in [`ReconciliationFindingsRecorded`]
//! chunks of at most [`FINDINGS_PER_CHUNK_MAX`], in report order, then [`ReconciliationRecorded`] (what was
//! reconciled, the files' SHA-256, the counts per finding kind), in as few appends as the log's limits allow;
//! the run exists once its `ReconciliationRecorded` does. The
//! findings are thus covered by the hash chain and `verify`, and a replay of the log rebuilds the findings read
//! model exactly. An admin's [`ReconciliationFindingAcknowledged`] is appended later with the stream's
//! expected revision.
//!
//! The stored form follows the payment events' conventions (type, schema version, camelCase `data`);
//! `schema/events.json` holds an example of each.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::event::{EventDecodeError, StoredEventData, known_version, version_in};
use crate::status::RefundStatus;

/// The prefix of a reconciliation run's stream: `reconciliation-{runId}`.
pub const RECONCILIATION_STREAM_PREFIX: &str = "reconciliation-";

/// Findings per [`ReconciliationFindingsRecorded`] event (keeps each event well under the log's payload limit:
/// a finding's stored form is a few hundred bytes).
pub const FINDINGS_PER_CHUNK_MAX: usize = 1_000;

/// The stream name of a run.
pub fn reconciliation_stream_name(run_id: &str) -> String {
    format!("{RECONCILIATION_STREAM_PREFIX}{run_id}")
}

/// One report file of a run, as it was read to its `<END>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconciledFile {
    /// The file name as given (the path's last component).
    pub name: String,
    /// `TRANSACTION_DETAILS`, `SETTLEMENT_DETAILS` or `SETTLEMENT_SUMMARY`.
    pub report_kind: String,
    /// The format generation (`G1`, `G2`, `G3`).
    pub generation: String,
    /// SHA-256 of the bytes read, lowercase hex.
    pub sha256: String,
    /// Bytes read.
    pub bytes: u64,
    /// Data rows.
    pub rows: u64,
    /// The line of `<END>`.
    pub end_line: u64,
    /// What the reader accepted without fully understanding it, one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A reconciliation run: what was reconciled, by whom (the envelope's actor), and the result in counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconciliationRecorded {
    /// The run's id (the stream's suffix).
    pub run_id: String,
    /// `TRANSACTION_DETAILS` (day T) or `SETTLEMENT_BATCH`.
    pub report_kind: String,
    /// Every file read, in the order given.
    pub files: Vec<ReconciledFile>,
    /// Day T (`2026-03-04`) of a transaction details report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// The settlement batch id of a settlement batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement_batch_id: Option<String>,
    /// The global position the ledger was read at.
    pub ledger_position: u64,
    /// Findings per kind code (`MATCHED`, `DIFFERS`, ...); kinds with none are absent.
    pub counts: BTreeMap<String, u64>,
    /// Rows of types the ledger does not reconcile (payments, disputes...), per type.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_rows: BTreeMap<String, u64>,
    /// Findings in the run's [`ReconciliationFindingsRecorded`] events, all chunks together.
    pub findings_count: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub reconciled_at: OffsetDateTime,
}

/// An amount as a report states it: signed minor units of a currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportedAmount {
    /// ISO 4217 code.
    pub currency: String,
    /// Minor units, signed, as a decimal string (`"-2500"`).
    pub value: String,
}

/// One finding of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedFinding {
    /// 1-based order of the finding in the run.
    pub seq: u64,
    /// The kind code (`MATCHED`, `DIFFERS`, `UNKNOWN_TO_LEDGER`, ...).
    pub kind: String,
    /// The report file the finding is about (none for a refund missing from the report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The line in that file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    /// The row's amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_amount: Option<ReportedAmount>,
    /// The position of the ledger event the finding is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_position: Option<u64>,
    /// The ledger's status of the refund when the run read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_status: Option<RefundStatus>,
    /// The ledger's amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_amount: Option<crate::money::Money>,
    /// The row's `status` as the report states it (`SUCCESS`, `FAIL`, `PROCESSING`; G3 transaction details).
    /// Added after the first runs: older findings have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_status: Option<String>,
    /// The settlement side of a settled REFUND row of a settlement batch (on the row's first finding only): what
    /// the journal's settlement lines are made of. Added after the first runs: older findings have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement: Option<RecordedSettlement>,
    /// A sentence for people: what differs, what was done.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// The settlement side of a settlement details row, as the report states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedSettlement {
    /// `settlementAmountValue` in `settlementCurrency` (net of fees; negative for a refund).
    pub amount: ReportedAmount,
    /// `convertedTransactionAmountValue` in `convertedCurrency` (G3): the gross after FX, as Antom rounded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted: Option<ReportedAmount>,
    /// Every non-empty fee cell, in the report's column order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fees: Vec<RecordedFee>,
    /// The FX quote of the row, when the currencies differ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<RecordedQuote>,
    /// The row's settlement date (`2026-03-06`): G3's `settlementInitiatedDate`, or the date G1/G2's
    /// `settlementTime` prints, in the report's own offset; the journal books the row's lines on it. None when the
    /// row has no date the parser can read (and in findings recorded before it was added): the journal then books
    /// on the day the run was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

/// One fee cell of a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedFee {
    /// The column's G3 stem: `paymentMethodFee`, `taxFee`, `fxFee`, ...
    pub kind: String,
    /// Its amount (charged fees are negative).
    pub amount: ReportedAmount,
}

/// `quoteCurrencyPair` and `quotePrice`: one `base` is `price` `quote`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedQuote {
    /// Left side of the pair (ISO 4217).
    pub base: String,
    /// Right side of the pair.
    pub quote: String,
    /// The rate exactly as the report printed it (its digits are the precision the report shows).
    pub price: String,
}

/// A chunk of a run's findings, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconciliationFindingsRecorded {
    pub run_id: String,
    /// 0-based chunk number.
    pub chunk: u64,
    pub findings: Vec<RecordedFinding>,
}

/// An admin looked at a finding and said what was done about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconciliationFindingAcknowledged {
    pub run_id: String,
    /// The finding's `seq`.
    pub seq: u64,
    pub note: String,
    #[serde(with = "time::serde::rfc3339")]
    pub acknowledged_at: OffsetDateTime,
}

/// Every event of a reconciliation stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ReconciliationEvent {
    ReconciliationRecorded(ReconciliationRecorded),
    ReconciliationFindingsRecorded(ReconciliationFindingsRecorded),
    ReconciliationFindingAcknowledged(ReconciliationFindingAcknowledged),
}

/// Every reconciliation event type with its current schema version.
pub const RECONCILIATION_EVENT_TYPES: &[(&str, u32)] = &[
    ("ReconciliationRecorded", 1),
    ("ReconciliationFindingsRecorded", 1),
    ("ReconciliationFindingAcknowledged", 1),
];

impl ReconciliationEvent {
    /// The stored type name.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::ReconciliationRecorded(_) => "ReconciliationRecorded",
            Self::ReconciliationFindingsRecorded(_) => "ReconciliationFindingsRecorded",
            Self::ReconciliationFindingAcknowledged(_) => "ReconciliationFindingAcknowledged",
        }
    }

    /// The current schema version of this event's type.
    pub fn schema_version(&self) -> u32 {
        version_in(RECONCILIATION_EVENT_TYPES, self.event_type()).unwrap_or(1)
    }

    /// The run the event belongs to.
    pub fn run_id(&self) -> &str {
        match self {
            Self::ReconciliationRecorded(e) => &e.run_id,
            Self::ReconciliationFindingsRecorded(e) => &e.run_id,
            Self::ReconciliationFindingAcknowledged(e) => &e.run_id,
        }
    }

    /// The stored form: type, version and the `data` object as JSON bytes.
    pub fn to_stored(&self) -> StoredEventData {
        let data = match self {
            Self::ReconciliationRecorded(e) => serde_json::to_vec(e),
            Self::ReconciliationFindingsRecorded(e) => serde_json::to_vec(e),
            Self::ReconciliationFindingAcknowledged(e) => serde_json::to_vec(e),
        };
        StoredEventData {
            event_type: self.event_type(),
            schema_version: self.schema_version(),
            // Serializing these plain structs (strings, integers, maps with string keys) cannot fail.
            data: data.unwrap_or_default(),
        }
    }

    /// Reads a stored reconciliation event (every type is at its first version).
    pub fn from_stored(event_type: &str, schema_version: u32, data: &[u8]) -> Result<Self, EventDecodeError> {
        let current = known_version(RECONCILIATION_EVENT_TYPES, event_type, schema_version)?;
        if schema_version < current {
            return Err(EventDecodeError::MissingUpcaster {
                event_type: event_type.to_owned(),
                version: schema_version,
            });
        }
        let malformed = |error: serde_json::Error| EventDecodeError::Malformed {
            event_type: event_type.to_owned(),
            reason: error.to_string(),
        };
        Ok(match event_type {
            "ReconciliationRecorded" => Self::ReconciliationRecorded(serde_json::from_slice(data).map_err(malformed)?),
            "ReconciliationFindingsRecorded" => {
                Self::ReconciliationFindingsRecorded(serde_json::from_slice(data).map_err(malformed)?)
            }
            _ => Self::ReconciliationFindingAcknowledged(serde_json::from_slice(data).map_err(malformed)?),
        })
    }
}
