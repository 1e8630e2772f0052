//! projections: the refund ledger's read models, folded from the global event log.
//!
//! Queries (GraphQL, the refund saga's settle worker) never replay streams: they read rows that a single
//! runner keeps up to date by tailing the log in global order. This crate owns that path:
//!
//! - [`fold`]: pure folds from events to rows (payment balances, refunds, daily totals). No IO, so audit replay
//!   and tests run the very same code.
//! - [`ReadModels`]: the query API, with keyset [`Page`]s and read-your-writes through
//!   [`ReadModels::wait_for_position`].
//! - [`ProjectionStore`] / [`ProjectionWriter`]: the writer side, implemented by the SQLite and PostgreSQL
//!   backends; a batch of events and the checkpoint commit in one transaction, so a crash never applies an
//!   event twice or skips one.
//!
//! Architecture invariants: the folds do no IO and read no clock (times come from the events); the only
//! tables this crate writes are its own (`projection_*`, or its own SQLite file beside the log); an event of
//! a payment stream that does not decode stops the runner, it is never skipped.

mod error;
mod model;
mod read_models;

pub mod fold;

pub use error::ProjectionError;
pub use model::{
    Cursor, DailyTotal, PAGE_SIZE_MAX, Page, PaymentFilter, PaymentStatus, PaymentView, RefundFilter, RefundView,
};
pub use read_models::{ProjectionStore, ProjectionWriter, ReadModels};
