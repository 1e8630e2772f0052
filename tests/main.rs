//! End-to-end tests of the `refund-ledger` binary: they start the real
//! binary on a random port with a fresh store (a temp SQLite file, or a
//! fresh PostgreSQL database) and drive it over HTTP with GraphQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod as_of;
mod audit_support;
mod backup;
mod cli;
mod e2e_crash;
mod e2e_inquiry;
mod e2e_metrics;
mod e2e_race;
mod e2e_settle;
mod e2e_support;
mod export;
mod graphiql;
mod graphql;
mod limits;
mod notify;
mod operations;
mod rebuild;
mod reconcile;
mod replay;
mod subscription;
mod support;
mod traces;
mod verify;
