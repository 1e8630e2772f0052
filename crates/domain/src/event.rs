//! The events of a payment stream (`payment-{paymentId}`) and their stored
//! JSON form.
//!
//! Stored form: the event type (`PaymentRecorded`, ...), a schema version and
//! the `data` object with camelCase fields named as Antom names them. The
//! wrapped form `{"type": ..., "data": ...}` is what [`PaymentEvent`]
//! serializes to; the event log keeps `type` and `data` in separate columns.
//! `schema/events.json` holds one example of every event in this form and a
//! test fails when the code drifts from it.
//!
//! Old versions still load through [`Upcaster`]s: a stored `(type, version,
//! data)` is lifted version by version to the current one before it is
//! deserialized, so the enum only ever knows the current shape.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::id::{CaptureId, DisputeId, PaymentId, PaymentMethodType, RefundId, RefundRequestId};
use crate::money::Money;
use crate::result_code::ResultCode;

/// A payment known to the ledger (from Antom's payment notification, an import or a mutation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRecorded {
    pub payment_id: PaymentId,
    pub payment_amount: Money,
    pub payment_method_type: PaymentMethodType,
    #[serde(with = "time::serde::rfc3339")]
    pub payment_time: OffsetDateTime,
    /// Card-like payments must be captured before any refund; others are captured at payment.
    pub capture_required: bool,
}

/// Money captured on a payment that needed capture; only captured money is refundable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCaptured {
    pub payment_id: PaymentId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_id: Option<CaptureId>,
    pub capture_amount: Money,
    #[serde(with = "time::serde::rfc3339")]
    pub capture_time: OffsetDateTime,
}

/// A dispute was opened; while its liability is undetermined no refund is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargebackOpened {
    pub payment_id: PaymentId,
    pub dispute_id: DisputeId,
    pub dispute_amount: Money,
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
}

/// Who carries a dispute once it is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChargebackResolution {
    /// The merchant won: the money stays with the merchant and stays refundable.
    MerchantWon,
    /// The customer won: the disputed amount went back to the customer and is no longer refundable.
    CustomerWon,
    /// The dispute was withdrawn.
    Cancelled,
}

/// A dispute's liability was determined (or the dispute was withdrawn).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargebackResolved {
    pub payment_id: PaymentId,
    pub dispute_id: DisputeId,
    pub resolution: ChargebackResolution,
    #[serde(with = "time::serde::rfc3339")]
    pub resolved_at: OffsetDateTime,
}

/// The ledger accepted a refund request and reserved its amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundRequested {
    pub refund_request_id: RefundRequestId,
    pub payment_id: PaymentId,
    pub refund_amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
}

/// The ledger refused a request before sending it to Antom, with Antom's result code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundRejected {
    pub refund_request_id: RefundRequestId,
    pub payment_id: PaymentId,
    pub refund_amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_reason: Option<String>,
    pub result_code: ResultCode,
    pub result_message: String,
    #[serde(with = "time::serde::rfc3339")]
    pub rejected_at: OffsetDateTime,
}

/// Antom answered U / PROCESSING, or the outcome of the call is unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundProcessing {
    pub refund_request_id: RefundRequestId,
    /// Why the outcome is open: Antom's U code, a timeout, a transport error.
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
}

/// Antom confirmed the refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundSucceeded {
    pub refund_request_id: RefundRequestId,
    pub refund_id: RefundId,
    #[serde(with = "time::serde::rfc3339")]
    pub refund_time: OffsetDateTime,
    pub source: OutcomeSource,
}

/// Antom confirmed the refund failed; the reservation is released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundFailed {
    pub refund_request_id: RefundRequestId,
    pub result_code: ResultCode,
    pub result_message: String,
    #[serde(with = "time::serde::rfc3339")]
    pub failed_at: OffsetDateTime,
    pub source: OutcomeSource,
}

/// Where an outcome came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutcomeSource {
    /// The synchronous answer to the refund call.
    RefundResponse,
    /// An inquiryRefund answer.
    Inquiry,
    /// Antom's refund notification.
    Notification,
    /// A reconciliation run against Antom's reports (docs/adr/003-reconciliation.md).
    Reconciliation,
}

/// A final outcome as reported by Antom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReportedOutcome {
    /// Antom says the refund succeeded.
    #[serde(rename_all = "camelCase")]
    Success { refund_id: RefundId },
    /// Antom says the refund failed.
    #[serde(rename_all = "camelCase")]
    Fail { result_code: ResultCode },
    /// Antom took the refund back (a REFUND_REVERSAL row of its reports: the acquirer rejected it and the money
    /// returned to the merchant).
    Reversed,
    /// Antom's report lists the refund as refunded without naming its refundId (a current-format row, whose
    /// `transactionId` is the paymentId): recorded when the ledger holds the refund FAILED or REJECTED.
    Refunded,
}

/// A report that contradicts a refund's terminal state. Recorded for
/// operators, never applied: terminal states do not change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundOutcomeAnomaly {
    pub refund_request_id: RefundRequestId,
    /// The state the ledger holds (and keeps).
    pub recorded_status: crate::status::RefundStatus,
    pub reported: ReportedOutcome,
    pub source: OutcomeSource,
    #[serde(with = "time::serde::rfc3339")]
    pub reported_at: OffsetDateTime,
}

/// Longest note an operator may give when acknowledging an anomaly, in characters.
pub const ANOMALY_NOTE_CHARS_MAX: usize = 1_000;

/// An operator acknowledged a recorded [`RefundOutcomeAnomaly`] with a note. Nothing about the refund
/// changes: the acknowledgement is recorded so that who looked at the contradiction, when and what they
/// concluded is part of the audited log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnomalyAcknowledged {
    pub refund_request_id: RefundRequestId,
    /// Which anomaly of the refund: 1 for its first `RefundOutcomeAnomaly`, 2 for the second, ...
    pub anomaly: u32,
    /// What the operator found or did (1 to [`ANOMALY_NOTE_CHARS_MAX`] characters).
    pub note: String,
    #[serde(with = "time::serde::rfc3339")]
    pub acknowledged_at: OffsetDateTime,
}

/// Every event of a payment stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum PaymentEvent {
    PaymentRecorded(PaymentRecorded),
    PaymentCaptured(PaymentCaptured),
    ChargebackOpened(ChargebackOpened),
    ChargebackResolved(ChargebackResolved),
    RefundRequested(RefundRequested),
    RefundRejected(RefundRejected),
    RefundProcessing(RefundProcessing),
    RefundSucceeded(RefundSucceeded),
    RefundFailed(RefundFailed),
    RefundOutcomeAnomaly(RefundOutcomeAnomaly),
    AnomalyAcknowledged(AnomalyAcknowledged),
}

/// Every event type with its current schema version.
pub const EVENT_TYPES: &[(&str, u32)] = &[
    ("PaymentRecorded", 1),
    ("PaymentCaptured", 1),
    ("ChargebackOpened", 1),
    ("ChargebackResolved", 1),
    ("RefundRequested", 1),
    ("RefundRejected", 1),
    ("RefundProcessing", 1),
    ("RefundSucceeded", 1),
    ("RefundFailed", 1),
    ("RefundOutcomeAnomaly", 1),
    ("AnomalyAcknowledged", 1),
];

/// An event as the log stores it: type, schema version and the `data` JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEventData {
    pub event_type: &'static str,
    pub schema_version: u32,
    pub data: Vec<u8>,
}

/// A stored event that cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventDecodeError {
    /// The type is not one this version knows. Stop and upgrade: skipping it would corrupt balances.
    #[error("unknown event type {event_type:?}")]
    UnknownType { event_type: String },
    /// The stored version is newer than this code knows. Stop and upgrade.
    #[error("event type {event_type} has schema version {version}, this build knows up to {current}")]
    FutureVersion {
        event_type: String,
        version: u32,
        current: u32,
    },
    /// No upcaster lifts this old version. Register one.
    #[error("event type {event_type} version {version} has no upcaster to version {}", version + 1)]
    MissingUpcaster { event_type: String, version: u32 },
    /// An upcaster refused the data.
    #[error("upcasting {event_type} from version {version} failed: {reason}")]
    Upcast {
        event_type: String,
        version: u32,
        reason: String,
    },
    /// The data does not match the event's schema.
    #[error("event type {event_type} data does not parse: {reason}")]
    Malformed { event_type: String, reason: String },
}

/// Lifts the data of one event type from `source_version()` to `source_version() + 1`.
pub trait Upcaster: Send + Sync {
    /// The event type this upcaster is for.
    fn event_type(&self) -> &str;
    /// The version it reads; it produces the next one.
    fn source_version(&self) -> u32;
    /// Rewrites the data; an error names what is missing or malformed.
    fn upcast(&self, data: serde_json::Value) -> Result<serde_json::Value, String>;
}

impl PaymentEvent {
    /// The stored type name (`RefundRequested`, ...).
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::PaymentRecorded(_) => "PaymentRecorded",
            Self::PaymentCaptured(_) => "PaymentCaptured",
            Self::ChargebackOpened(_) => "ChargebackOpened",
            Self::ChargebackResolved(_) => "ChargebackResolved",
            Self::RefundRequested(_) => "RefundRequested",
            Self::RefundRejected(_) => "RefundRejected",
            Self::RefundProcessing(_) => "RefundProcessing",
            Self::RefundSucceeded(_) => "RefundSucceeded",
            Self::RefundFailed(_) => "RefundFailed",
            Self::RefundOutcomeAnomaly(_) => "RefundOutcomeAnomaly",
            Self::AnomalyAcknowledged(_) => "AnomalyAcknowledged",
        }
    }

    /// The current schema version of this event's type.
    pub fn schema_version(&self) -> u32 {
        current_version(self.event_type()).unwrap_or(1)
    }

    /// The payment this event belongs to, when the event names it.
    pub fn payment_id(&self) -> Option<&PaymentId> {
        match self {
            Self::PaymentRecorded(e) => Some(&e.payment_id),
            Self::PaymentCaptured(e) => Some(&e.payment_id),
            Self::ChargebackOpened(e) => Some(&e.payment_id),
            Self::ChargebackResolved(e) => Some(&e.payment_id),
            Self::RefundRequested(e) => Some(&e.payment_id),
            Self::RefundRejected(e) => Some(&e.payment_id),
            Self::RefundProcessing(_)
            | Self::RefundSucceeded(_)
            | Self::RefundFailed(_)
            | Self::RefundOutcomeAnomaly(_)
            | Self::AnomalyAcknowledged(_) => None,
        }
    }

    /// The refund this event is about, if any.
    pub fn refund_request_id(&self) -> Option<&RefundRequestId> {
        match self {
            Self::RefundRequested(e) => Some(&e.refund_request_id),
            Self::RefundRejected(e) => Some(&e.refund_request_id),
            Self::RefundProcessing(e) => Some(&e.refund_request_id),
            Self::RefundSucceeded(e) => Some(&e.refund_request_id),
            Self::RefundFailed(e) => Some(&e.refund_request_id),
            Self::RefundOutcomeAnomaly(e) => Some(&e.refund_request_id),
            Self::AnomalyAcknowledged(e) => Some(&e.refund_request_id),
            Self::PaymentRecorded(_)
            | Self::PaymentCaptured(_)
            | Self::ChargebackOpened(_)
            | Self::ChargebackResolved(_) => None,
        }
    }

    /// The stored form: type, version and the `data` object as JSON bytes.
    pub fn to_stored(&self) -> StoredEventData {
        let data = match serde_json::to_value(self) {
            // The enum is adjacently tagged, so its JSON is always {"type":..,"data":..}.
            Ok(serde_json::Value::Object(mut wrapped)) => wrapped.remove("data").unwrap_or(serde_json::Value::Null),
            _ => serde_json::Value::Null,
        };
        StoredEventData {
            event_type: self.event_type(),
            schema_version: self.schema_version(),
            data: data.to_string().into_bytes(),
        }
    }

    /// Reads a stored event, lifting old versions with `upcasters` first.
    pub fn from_stored(
        event_type: &str,
        schema_version: u32,
        data: &[u8],
        upcasters: &[&dyn Upcaster],
    ) -> Result<Self, EventDecodeError> {
        let malformed = |reason: String| EventDecodeError::Malformed {
            event_type: event_type.to_owned(),
            reason,
        };
        let current = known_version(EVENT_TYPES, event_type, schema_version)?;
        if schema_version == current {
            // The stored form is current: read the bytes straight into the event, with no JSON tree between.
            return Self::decode_current(event_type, data).map_err(|e| malformed(e.to_string()));
        }
        let mut value: serde_json::Value = serde_json::from_slice(data).map_err(|e| malformed(e.to_string()))?;
        for version in schema_version..current {
            let upcaster = upcasters
                .iter()
                .find(|u| u.event_type() == event_type && u.source_version() == version)
                .ok_or_else(|| EventDecodeError::MissingUpcaster {
                    event_type: event_type.to_owned(),
                    version,
                })?;
            value = upcaster.upcast(value).map_err(|reason| EventDecodeError::Upcast {
                event_type: event_type.to_owned(),
                version,
                reason,
            })?;
        }
        let wrapped = serde_json::json!({ "type": event_type, "data": value });
        serde_json::from_value(wrapped).map_err(|e| malformed(e.to_string()))
    }
}

impl PaymentEvent {
    /// Reads `data` as the current version of `event_type` (a name of [`EVENT_TYPES`]). The same as reading
    /// `{"type": event_type, "data": data}` into the tagged enum, without building that JSON first.
    fn decode_current(event_type: &str, data: &[u8]) -> Result<Self, serde_json::Error> {
        use serde::de::Error as _;
        Ok(match event_type {
            "PaymentRecorded" => Self::PaymentRecorded(serde_json::from_slice(data)?),
            "PaymentCaptured" => Self::PaymentCaptured(serde_json::from_slice(data)?),
            "ChargebackOpened" => Self::ChargebackOpened(serde_json::from_slice(data)?),
            "ChargebackResolved" => Self::ChargebackResolved(serde_json::from_slice(data)?),
            "RefundRequested" => Self::RefundRequested(serde_json::from_slice(data)?),
            "RefundRejected" => Self::RefundRejected(serde_json::from_slice(data)?),
            "RefundProcessing" => Self::RefundProcessing(serde_json::from_slice(data)?),
            "RefundSucceeded" => Self::RefundSucceeded(serde_json::from_slice(data)?),
            "RefundFailed" => Self::RefundFailed(serde_json::from_slice(data)?),
            "RefundOutcomeAnomaly" => Self::RefundOutcomeAnomaly(serde_json::from_slice(data)?),
            "AnomalyAcknowledged" => Self::AnomalyAcknowledged(serde_json::from_slice(data)?),
            // Unreachable: callers check the type against EVENT_TYPES first.
            other => return Err(serde_json::Error::custom(format!("unknown event type {other}"))),
        })
    }
}

fn current_version(event_type: &str) -> Option<u32> {
    version_in(EVENT_TYPES, event_type)
}

/// The current version of `event_type` in `types`.
pub(crate) fn version_in(types: &[(&str, u32)], event_type: &str) -> Option<u32> {
    types
        .iter()
        .find(|(name, _)| *name == event_type)
        .map(|(_, version)| *version)
}

/// The current version of `event_type` in `types`, checking that a stored `schema_version` is not newer:
/// [`EventDecodeError::UnknownType`] or [`EventDecodeError::FutureVersion`] otherwise.
pub(crate) fn known_version(
    types: &[(&str, u32)],
    event_type: &str,
    schema_version: u32,
) -> Result<u32, EventDecodeError> {
    let current = version_in(types, event_type).ok_or_else(|| EventDecodeError::UnknownType {
        event_type: event_type.to_owned(),
    })?;
    if schema_version > current {
        return Err(EventDecodeError::FutureVersion {
            event_type: event_type.to_owned(),
            version: schema_version,
            current,
        });
    }
    Ok(current)
}
