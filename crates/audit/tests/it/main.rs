//! Integration tests of the audit crate on a real SQLite event store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod journal;
mod support;
