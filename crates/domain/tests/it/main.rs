//! Integration tests of the pure domain: one binary, one module per concern.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod aggregate;
mod event_json;
mod properties;
mod scenario;
