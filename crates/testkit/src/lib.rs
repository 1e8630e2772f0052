//! testkit: the test support the workspace's tests and benches share (a dev-dependency only).
//!
//! - [`postgres`]: a scratch database of its own per test on the PostgreSQL server `DATABASE_URL` names
//!   (default [`postgres::DEFAULT_DATABASE_URL`]), dropped with it; SQL through the driver, no `psql`.
//! - [`antom`]: the test-only keys and the signature vectors made with Antom's SDK (`testdata/antom`).
//! - `log` (feature `log`): domain events written straight to an event log, and a large valid log.
//! - `server` (feature `server`): the `refund-ledger` binary started on a loopback port and driven over HTTP.
//!
//! Everything here fails by panicking with the reason: in a test, the panic is the failure.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a panic is the test's failure"
)]

pub mod antom;
#[cfg(feature = "log")]
pub mod log;
pub mod postgres;
#[cfg(feature = "server")]
pub mod server;
