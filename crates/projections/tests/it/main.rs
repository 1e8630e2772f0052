//! projections integration tests, one binary: the read-model conformance suite instantiated per backend
//! against real, fresh stores (temporary SQLite files; a fresh PostgreSQL database per test; a sparse in-memory
//! log like KurrentDB's with SQLite read models), backend-specific
//! cases, and a property test against the `Payment` aggregate.

mod support;

#[macro_use]
mod conformance;
mod cursors;
mod postgres;
mod property;
mod sparse;
mod sqlite;
