//! The projection folds: pure functions from the rows a batch touches and the batch's events to the new rows
//! and the additive changes of the daily totals.
//!
//! No IO happens here, so the same code serves the runner (rows loaded from and written back to a database),
//! audit replay (rows rebuilt in memory from position 0) and the tests. The folds mirror
//! [`domain::evolve`] event by event: an event the aggregate ignores (an outcome for an unknown refund, a
//! second `PaymentRecorded`) changes no balance here either, so a payment's projected balances always equal
//! the aggregate's state at the same position.
//!
//! Daily totals are kept as *deltas* rather than recomputed rows: a batch yields
//! `(date, currency, status) -> (count_delta, amount_delta)`, and the storage adds them to what it holds. A
//! refund counts under the UTC date it was requested on and its current status, so a status change is a
//! `-1` under the old status and a `+1` under the new one, both under the requested date.
//!
//! One module per concern: [`Envelope`] decodes stored events, the balances fold keeps [`PaymentRow`], the
//! refunds fold keeps [`RefundView`] rows and reservations, the daily totals follow the refund rows, and
//! [`BatchFold`] routes each event of a [`Batch`] to them.

mod balances;
mod batch;
mod daily;
mod envelope;
mod refunds;

#[cfg(test)]
mod tests;

pub use balances::{Dispute, PaymentRow};
pub use batch::{Batch, BatchFold, BatchKeys};
pub use daily::{DailyDelta, DailyKey, StatusKey};
pub use envelope::{Envelope, PAYMENT_STREAM_PREFIX};
pub use refunds::{parse_refund_status, refund_status_code};
