//! eventlog integration tests: one conformance suite, instantiated per backend against a real, fresh store
//! (a temporary SQLite file; a fresh PostgreSQL database per test; the in-memory sparse store; with the
//! `kurrentdb` feature, a fresh namespace on the KurrentDB server `KURRENTDB_URL` names, or a printed skip).

#[macro_use]
mod conformance;
#[cfg(feature = "kurrentdb")]
mod kurrentdb;
mod memory;
mod postgres;
mod sqlite;
