//! The application layer against the real stores (SQLite, PostgreSQL), the read models and the Antom
//! simulator over loopback HTTP.

// Helpers outside #[test] functions panic on purpose: the panic is the test failure.
#![allow(clippy::unwrap_used)]

mod chaos;
mod concurrency;
mod helpers;
mod queue;
mod reconciliation;
mod refunds;
mod settle;
