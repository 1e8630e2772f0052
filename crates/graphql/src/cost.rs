//! How many items a list field returns, and what a field costs for the
//! complexity limit.
//!
//! The cost of a query bounds the values its response can hold, with a
//! surcharge per store read, so one number bounds both the work and the
//! size before anything runs:
//!
//! - a field costs 1 plus its children (async-graphql's default);
//! - a field that reads the store costs [`STORE_READ_COST`] plus its children;
//! - a list costs [`STORE_READ_COST`] plus its bound times one item, the
//!   bound being its `first` argument, or the list's default when omitted,
//!   clamped to the list's maximum (a larger `first` is refused when the
//!   field resolves, so it costs nothing). Nested lists multiply:
//!   `payments(first: 100) { nodes { events { hash } } }` costs about
//!   100 × (100 × 1).
//!
//! Every list in the schema has such a bound, nested ones included
//! (`Payment.refunds`, `Payment.events`), and `dailyTotals` is counted by the
//! days of its range.

use time::Date;

use crate::error::ApiError;

/// The surcharge of a field that reads the store (one round trip or more).
pub(crate) const STORE_READ_COST: usize = 10;
/// `verifyLedger` reads every event of the log: with the default limits it is an expensive query.
pub(crate) const VERIFY_LEDGER_COST: usize = 10_000;
/// Page size of `payments`, `refunds` and `events` when `first` is omitted.
pub(crate) const PAGE_SIZE_DEFAULT: usize = 50;
/// Most events one `events` query (or a payment's `events`) returns.
pub(crate) const EVENTS_PAGE_MAX: usize = 1_000;
/// Items of a payment's `refunds` and `events` when `first` is omitted; the root `refunds` and `events`
/// page through the rest.
pub(crate) const NESTED_LIST_DEFAULT: usize = 100;

/// The `YYYY-MM-DD` form of `dailyTotals`' range.
pub(crate) const DATE_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// The items a list returns: `first`, or `default` when omitted; refused outside `0..=max`.
pub(crate) fn first_bound(first: Option<i32>, default: usize, max: usize) -> Result<usize, ApiError> {
    match first {
        None => Ok(default),
        Some(first) => usize::try_from(first)
            .ok()
            .filter(|first| *first <= max)
            .ok_or_else(|| ApiError::BadInput {
                field: "first".to_owned(),
                message: format!("first: must be between 0 and {max}"),
            }),
    }
}

/// The cost of a field that reads the store once and returns one object.
pub(crate) fn store_read(child_complexity: usize) -> usize {
    STORE_READ_COST.saturating_add(child_complexity)
}

/// The cost of a list read from the store: its bound times one item (`child_complexity`).
pub(crate) fn store_list(first: Option<i32>, default: usize, max: usize, child_complexity: usize) -> usize {
    let bound = match first {
        None => default,
        Some(first) => usize::try_from(first).unwrap_or(0).min(max),
    };
    STORE_READ_COST.saturating_add(bound.saturating_mul(child_complexity))
}

/// The cost of `dailyTotals`: one row per day of the range (each row is a currency and state of that
/// day, so a range's real row count can be a few times this; the response size limit is the backstop).
/// A range that does not parse costs one read: the resolver refuses it.
pub(crate) fn daily_totals(from: &str, to: &str, child_complexity: usize) -> usize {
    let days = match (Date::parse(from, DATE_FORMAT), Date::parse(to, DATE_FORMAT)) {
        (Ok(from), Ok(to)) => usize::try_from((to - from).whole_days().saturating_add(1)).unwrap_or(0),
        _ => 0,
    };
    STORE_READ_COST.saturating_add(days.saturating_mul(child_complexity))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_costs_its_bound_times_one_item() {
        assert_eq!(store_list(Some(100), 50, 500, 3), STORE_READ_COST + 300);
        assert_eq!(store_list(None, 50, 500, 3), STORE_READ_COST + 150);
        assert_eq!(store_list(Some(0), 50, 500, 3), STORE_READ_COST);
    }

    #[test]
    fn a_first_out_of_range_costs_no_more_than_the_maximum_and_is_refused() {
        assert_eq!(store_list(Some(i32::MAX), 50, 500, 2), STORE_READ_COST + 1_000);
        assert_eq!(store_list(Some(-5), 50, 500, 2), STORE_READ_COST);
        assert_eq!(store_list(Some(i32::MAX), 50, usize::MAX, usize::MAX), usize::MAX);
        for first in [-1, 501, i32::MAX] {
            let Err(ApiError::BadInput { field, .. }) = first_bound(Some(first), 50, 500) else {
                panic!("first: {first} was accepted");
            };
            assert_eq!(field, "first");
        }
        assert_eq!(first_bound(Some(500), 50, 500).unwrap(), 500);
        assert_eq!(first_bound(None, 50, 500).unwrap(), 50);
    }

    #[test]
    fn daily_totals_cost_the_days_of_their_range() {
        assert_eq!(daily_totals("2026-01-01", "2026-01-31", 4), STORE_READ_COST + 31 * 4);
        assert_eq!(daily_totals("2026-01-31", "2026-01-01", 4), STORE_READ_COST);
        assert_eq!(daily_totals("yesterday", "2026-01-01", 4), STORE_READ_COST);
    }
}
