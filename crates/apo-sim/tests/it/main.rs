//! apo-sim's integration tests: one binary (link once, run fast on 2 cores),
//! everything over real HTTP on 127.0.0.1 with random ports.

// Helpers outside #[test] functions panic on purpose: the panic is the test failure.
#![allow(clippy::unwrap_used)]

mod adapter;
mod admin;
mod binary;
mod faults;
mod helpers;
mod inquiry;
mod notifications;
mod property;
mod reports;
mod rules;
mod signatures;
