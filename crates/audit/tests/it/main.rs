//! Integration tests of the audit crate on a real SQLite event store, and on the in-memory sparse store (the
//! shape of a KurrentDB log).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod journal;
mod replay;
mod sealed;
mod support;
