//! The read models as callers see them: one row per payment, one per refund, daily totals, and the filters
//! and keyset pages that list them.
//!
//! These are plain domain-typed values: the GraphQL layer converts them for the wire, so nothing here derives
//! `Serialize`. Every amount is a [`Money`] (integer minor units and an ISO 4217 currency), never a float.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::{Currency, Money, PaymentId, PaymentMethodType, RefundId, RefundRequestId, RefundStatus, ResultCode};
use time::{Date, OffsetDateTime};

use crate::error::ProjectionError;

/// Most rows one page ([`crate::ReadModels::payments`], [`crate::ReadModels::refunds`]) or work list
/// ([`crate::ReadModels::open_refunds`]) returns; asking for more is [`ProjectionError::PageSizeTooLarge`].
pub const PAGE_SIZE_MAX: usize = 500;

/// A payment's balances as of the read models' checkpoint.
///
/// `refunded + pending <= captured` always holds (the balance invariant of docs/domain.md), and
/// `refundable = captured - refunded - pending - charged_back` (floored at zero), exactly as
/// [`domain::PaymentState::refundable`] computes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentView {
    /// Antom's id of the payment.
    pub payment_id: PaymentId,
    /// The amount paid.
    pub payment_amount: Money,
    /// Antom's payment method type (`CARD`, `ALIPAY_CN`, ...).
    pub payment_method_type: PaymentMethodType,
    /// When the payment was made.
    pub payment_time: OffsetDateTime,
    /// Whether the payment must be captured before it can be refunded.
    pub capture_required: bool,
    /// Money captured: the payment amount for payments without capture, zero until a capture otherwise.
    pub captured: Money,
    /// Sum of succeeded refunds.
    pub refunded: Money,
    /// Sum of refunds requested or processing (reserved, outcome not final).
    pub pending: Money,
    /// Sum of disputes the customer won.
    pub charged_back: Money,
    /// What can still be refunded.
    pub refundable: Money,
    /// Where the payment stands, derived from the balances.
    pub status: PaymentStatus,
    /// Whether a dispute with undetermined liability is open (no refund is allowed meanwhile).
    pub open_chargeback: bool,
    /// Refunds of this payment in any status, rejected ones included.
    pub refund_count: u32,
    /// Global position of the last event of this payment's stream applied.
    pub last_position: u64,
    /// When that event was recorded.
    pub updated_at: OffsetDateTime,
}

/// Where a payment stands, derived from its balances; the first that applies wins, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// A dispute with undetermined liability is open: no refund is allowed until it is resolved.
    InDispute,
    /// The payment must be captured before any refund, and is not captured yet.
    AwaitingCapture,
    /// Some money was refunded, nothing is pending and nothing is left to refund.
    FullyRefunded,
    /// Some money is refunded or reserved by a refund in flight, and the payment is not fully refunded.
    PartiallyRefunded,
    /// Captured, with no refund succeeded or pending. (`refundable` may still be zero when a dispute the
    /// customer won took the whole amount.)
    Refundable,
}

impl PaymentStatus {
    /// Every status, in the order of precedence.
    pub const ALL: [PaymentStatus; 5] = [
        Self::InDispute,
        Self::AwaitingCapture,
        Self::FullyRefunded,
        Self::PartiallyRefunded,
        Self::Refundable,
    ];

    /// Derives the status from a payment's balances (see the variants for the rules).
    pub fn derive(
        open_chargeback: bool,
        capture_required: bool,
        captured: Money,
        refunded: Money,
        pending: Money,
        refundable: Money,
    ) -> Self {
        if open_chargeback {
            Self::InDispute
        } else if capture_required && captured.is_zero() {
            // A capture of zero is refused by the aggregate, so zero means "not captured".
            Self::AwaitingCapture
        } else if !refunded.is_zero() && pending.is_zero() && refundable.is_zero() {
            Self::FullyRefunded
        } else if !refunded.is_zero() || !pending.is_zero() {
            Self::PartiallyRefunded
        } else {
            Self::Refundable
        }
    }

    /// The stored and wire code, e.g. `PARTIALLY_REFUNDED`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InDispute => "IN_DISPUTE",
            Self::AwaitingCapture => "AWAITING_CAPTURE",
            Self::FullyRefunded => "FULLY_REFUNDED",
            Self::PartiallyRefunded => "PARTIALLY_REFUNDED",
            Self::Refundable => "REFUNDABLE",
        }
    }

    /// Reads a code written by [`PaymentStatus::as_str`].
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == code)
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One refund as of the read models' checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundView {
    /// The merchant's idempotency key, unique across all payments.
    pub refund_request_id: RefundRequestId,
    /// The payment refunded.
    pub payment_id: PaymentId,
    /// The amount asked for.
    pub refund_amount: Money,
    /// The merchant's reason, if given.
    pub refund_reason: Option<String>,
    /// Where the refund stands.
    pub status: RefundStatus,
    /// Antom's (or the ledger's) result code once final: `SUCCESS` on success.
    pub result_code: Option<ResultCode>,
    /// The result message of a failure or rejection.
    pub result_message: Option<String>,
    /// Antom's refund id once it succeeded.
    pub refund_id: Option<RefundId>,
    /// When the ledger accepted (or rejected) the request.
    pub requested_at: OffsetDateTime,
    /// When the refund reached a terminal status.
    pub settled_at: Option<OffsetDateTime>,
    /// The actor of the request event (API key name, `apo-notify`, `worker`).
    pub requested_by: String,
    /// Contradicting outcome reports recorded for operators (see `RefundOutcomeAnomaly`).
    pub anomaly_count: u32,
    /// Global position of the last event that changed this refund.
    pub last_position: u64,
    /// When that event was recorded.
    pub updated_at: OffsetDateTime,
}

/// The refunds of one day, currency and status: how many and how much.
///
/// A refund counts under the UTC date it was requested on and under its *current* status, so when a refund
/// moves from `PROCESSING` to `SUCCEEDED` its contribution moves between the two rows of that date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyTotal {
    /// UTC date of `requested_at`.
    pub date: Date,
    /// The refunds' currency.
    pub currency: Currency,
    /// Their current status.
    pub status: RefundStatus,
    /// How many refunds.
    pub count: u64,
    /// Their summed `refund_amount`. (A day whose sum passes `domain::MINOR_UNITS_MAX` cannot be a `Money`
    /// and reads as [`ProjectionError::CorruptRow`]; at 16 digits of minor units that is out of reach.)
    pub amount: Money,
}

/// Which payments [`crate::ReadModels::payments`] lists; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentFilter {
    /// Only payments in this currency.
    pub currency: Option<Currency>,
    /// Only payments with this derived status.
    pub status: Option<PaymentStatus>,
    /// Only payments made at or after this time (inclusive).
    pub paid_from: Option<OffsetDateTime>,
    /// Only payments made before this time (exclusive).
    pub paid_to: Option<OffsetDateTime>,
}

/// Which refunds [`crate::ReadModels::refunds`] lists; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefundFilter {
    /// Only refunds of this payment.
    pub payment_id: Option<PaymentId>,
    /// Only refunds in this status.
    pub status: Option<RefundStatus>,
    /// Only refunds in this currency.
    pub currency: Option<Currency>,
    /// Only refunds requested at or after this time (inclusive).
    pub requested_from: Option<OffsetDateTime>,
    /// Only refunds requested before this time (exclusive).
    pub requested_to: Option<OffsetDateTime>,
}

/// One page of a keyset-paged list: each item with the cursor to pass as `after` to continue behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows, in list order, each with its cursor.
    pub items: Vec<(Cursor, T)>,
    /// Whether more rows follow the last one.
    pub has_next_page: bool,
}

/// Which list a cursor belongs to; a cursor of one list is refused by the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CursorKind {
    /// Payments ordered by `(payment_time, payment_id)`.
    Payment,
    /// Refunds ordered by `(requested_at, refund_request_id)`.
    Refund,
    /// Anomalies ordered by position (the keyset's time is the position).
    Anomaly,
}

impl CursorKind {
    fn tag(self) -> &'static str {
        match self {
            Self::Payment => "p",
            Self::Refund => "r",
            Self::Anomaly => "a",
        }
    }
}

/// An opaque paging cursor: the base64 (URL-safe, unpadded) of a row's keyset position.
///
/// Clients must treat it as opaque; it stays valid as rows are added, because it names a position in the
/// order rather than an offset.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Cursor(String);

/// A decoded cursor: the sort time in nanoseconds since the Unix epoch (UTC) and the tie-breaking id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keyset {
    pub(crate) time_ns: i64,
    pub(crate) id: String,
}

impl Cursor {
    /// Parses a cursor a client sent back; anything this crate did not issue is
    /// [`ProjectionError::InvalidCursor`].
    pub fn parse(text: &str) -> Result<Cursor, ProjectionError> {
        let cursor = Cursor(text.to_owned());
        // A cursor is valid if it decodes for one of the lists.
        cursor
            .decode(CursorKind::Payment)
            .or_else(|_| cursor.decode(CursorKind::Refund))
            .or_else(|_| cursor.decode(CursorKind::Anomaly))?;
        Ok(cursor)
    }

    /// The cursor as text, to hand to clients.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn encode(kind: CursorKind, time_ns: i64, id: &str) -> Cursor {
        Cursor(URL_SAFE_NO_PAD.encode(format!("{}:{time_ns}:{id}", kind.tag())))
    }

    /// The keyset position, if this is a cursor of the `kind` list.
    pub(crate) fn decode(&self, kind: CursorKind) -> Result<Keyset, ProjectionError> {
        let invalid = |reason: &str| ProjectionError::InvalidCursor {
            reason: reason.to_owned(),
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(self.0.as_bytes())
            .map_err(|_| invalid("is not base64"))?;
        let text = String::from_utf8(bytes).map_err(|_| invalid("is not a cursor of this API"))?;
        let mut parts = text.splitn(3, ':');
        let (Some(tag), Some(time_ns), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(invalid("is not a cursor of this API"));
        };
        if tag != kind.tag() {
            return Err(invalid("belongs to another list"));
        }
        let time_ns = time_ns
            .parse::<i64>()
            .map_err(|_| invalid("is not a cursor of this API"))?;
        if id.is_empty() || !id.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(invalid("is not a cursor of this API"));
        }
        Ok(Keyset {
            time_ns,
            id: id.to_owned(),
        })
    }
}

impl std::str::FromStr for Cursor {
    type Err = ProjectionError;

    fn from_str(text: &str) -> Result<Cursor, ProjectionError> {
        Cursor::parse(text)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Cursor({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_foreign_text() {
        let cursor = Cursor::encode(CursorKind::Refund, -5, "rr:1");
        let parsed = Cursor::parse(cursor.as_str()).unwrap();
        assert_eq!(
            parsed.decode(CursorKind::Refund).unwrap(),
            Keyset {
                time_ns: -5,
                id: "rr:1".into()
            }
        );
        assert!(matches!(
            parsed.decode(CursorKind::Payment),
            Err(ProjectionError::InvalidCursor { .. })
        ));
        for garbage in [
            "",
            "!!!",
            "abc",
            &URL_SAFE_NO_PAD.encode("p:x:id"),
            &URL_SAFE_NO_PAD.encode("p:1:"),
        ] {
            assert!(
                matches!(Cursor::parse(garbage), Err(ProjectionError::InvalidCursor { .. })),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn payment_status_codes_round_trip() {
        for status in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(PaymentStatus::parse("OTHER"), None);
    }
}

/// Upper bounds of the age buckets of [`OpenRefundStats`], in seconds: under 1 minute, 1 to 5 minutes, 5 to 15
/// minutes, 15 minutes to 1 hour, 1 hour to 1 day; the last bucket holds everything older.
pub const OPEN_REFUND_AGE_BOUNDS_SECONDS: [u64; 5] = [60, 300, 900, 3_600, 86_400];

/// The open refunds of one state (`REQUESTED` or `PROCESSING`), counted by age, as of a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenRefundAges {
    /// Refunds per age bucket: `counts[i]` are younger than `OPEN_REFUND_AGE_BOUNDS_SECONDS[i]` and not
    /// younger than the bound before; the last entry counts those at least the last bound old.
    pub counts: [u64; OPEN_REFUND_AGE_BOUNDS_SECONDS.len() + 1],
    /// When the oldest of them was requested (`None`: no open refund in this state).
    pub oldest_requested_at: Option<OffsetDateTime>,
}

impl OpenRefundAges {
    /// How many refunds are open in this state.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Open refunds (requested or processing) by state and age: the metrics' gauge, computed from the read models
/// on each scrape with the status index (`projection_refunds_by_status`), so it costs what the open refunds
/// cost, not what all refunds cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenRefundStats {
    /// Refunds `REQUESTED` (accepted, Antom not yet known to be called).
    pub requested: OpenRefundAges,
    /// Refunds `PROCESSING` (sent, outcome not final or not known).
    pub processing: OpenRefundAges,
}
