//! End-to-end tests of the `refund-ledger` binary: they run the real binary
//! on a fresh SQLite store and read what it prints and how it exits.

mod cli;
