//! Daily totals, kept as deltas: a refund counts under the UTC date it was requested on and its current status.

use domain::{Currency, RefundStatus};
use time::{Date, UtcOffset};

use super::refunds::refund_status_code;
use crate::model::RefundView;

/// The key of one daily total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DailyKey {
    /// UTC date the refunds were requested on.
    pub date: Date,
    /// Their currency.
    pub currency: Currency,
    /// Their status, by its stored code (so keys order as the stored rows do).
    pub status: StatusKey,
}

/// A [`RefundStatus`] that orders by its stored code, for [`DailyKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusKey(pub RefundStatus);

impl PartialOrd for StatusKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for StatusKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        refund_status_code(self.0).cmp(refund_status_code(other.0))
    }
}

/// How one daily total changes: added to the stored count and amount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DailyDelta {
    /// Change of the number of refunds.
    pub count: i64,
    /// Change of their summed amount, in minor units.
    pub amount_minor_units: i64,
}

/// Where a refund counts in the daily totals: its key and its amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DailyEntry {
    key: DailyKey,
    amount_minor_units: i64,
}

impl DailyEntry {
    /// Where `refund` counts now.
    pub(super) fn of(refund: &RefundView) -> DailyEntry {
        DailyEntry {
            key: DailyKey {
                date: refund.requested_at.to_offset(UtcOffset::UTC).date(),
                currency: refund.refund_amount.currency(),
                status: StatusKey(refund.status),
            },
            // Amounts are at most MINOR_UNITS_MAX (< 2^54), so they fit an i64.
            amount_minor_units: i64::try_from(refund.refund_amount.minor_units()).unwrap_or(i64::MAX),
        }
    }
}

/// The daily-total changes of a refund moving from `before` (absent: new) to `after`: none when it still counts
/// under the same key, else a -1 under the old key (if any) and a +1 under the new one.
pub(super) fn daily_change(
    before: Option<DailyEntry>,
    after: &RefundView,
) -> impl Iterator<Item = (DailyKey, DailyDelta)> {
    let after = DailyEntry::of(after);
    let unchanged = before.is_some_and(|before| before.key == after.key);
    let removed = before.filter(|_| !unchanged).map(|before| {
        (
            before.key,
            DailyDelta {
                count: -1,
                amount_minor_units: -before.amount_minor_units,
            },
        )
    });
    let added = (!unchanged).then_some((
        after.key,
        DailyDelta {
            count: 1,
            amount_minor_units: after.amount_minor_units,
        },
    ));
    removed.into_iter().chain(added)
}
