//! Integration tests of the reconcile crate: one set of cases run against every generation's fixtures, the
//! finding kinds end to end through whole in-memory runs, property tests over arbitrary and mutated bytes, and
//! the parser against an independent writer (the apo-sim simulator's reports over HTTP).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conformance;
mod findings;
mod fixtures;
mod fuzz;
