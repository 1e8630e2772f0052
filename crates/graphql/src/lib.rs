//! The refund ledger's GraphQL API: queries over the read models and the
//! log, mutations through the `app` ledger, and refund subscriptions.
//!
//! Architecture invariant: only this crate knows GraphQL types. It converts
//! domain values for the wire (amounts as Antom's `{currency, value}` plus
//! an exact decimal) and parses inputs into domain values before anything is
//! written, so bad input changes nothing. Clients get stable
//! `extensions.code`s; causes go to the log.

mod access;
mod context;
mod cost;
mod error;
pub mod input;
pub mod limits;
pub mod mutation;
pub mod operations;
mod page;
pub mod query;
pub mod reconciliation;
mod role;
mod schema;
pub mod subscription;
pub mod types;

pub use access::RoleGuard;
pub use context::ApiContext;
pub use error::ApiError;
pub use limits::{Limits, bound_message, retry_after_seconds};
pub use role::{Principal, Role};
pub use schema::{LedgerSchema, build, expensive_queries_running, sdl};
