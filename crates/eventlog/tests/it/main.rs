//! eventlog integration tests: one conformance suite, instantiated per backend against a real, fresh store
//! (a temporary SQLite file; a fresh PostgreSQL database per test).

#[macro_use]
mod conformance;
mod memory;
mod postgres;
mod sqlite;
