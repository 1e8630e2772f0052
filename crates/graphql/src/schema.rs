//! Building the schema with its limits, and printing its SDL.

use async_graphql::Schema;

use crate::context::ApiContext;
use crate::mutation::Mutation;
use crate::query::Query;
use crate::subscription::Subscription;

/// The ledger's GraphQL schema.
pub type LedgerSchema = Schema<Query, Mutation, Subscription>;

/// Bounds on what one request may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest selection nesting.
    pub depth_max: usize,
    /// Largest complexity (fields, with connections counted by their page size).
    pub complexity_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            depth_max: 12,
            complexity_max: 2_000,
        }
    }
}

/// The schema with its services and limits.
pub fn build(context: ApiContext, limits: Limits) -> LedgerSchema {
    Schema::build(Query, Mutation, Subscription)
        .data(context)
        .limit_depth(limits.depth_max)
        .limit_complexity(limits.complexity_max)
        .finish()
}

/// The SDL of the schema (checked in as `schema/ledger.graphql`).
pub fn sdl() -> String {
    Schema::build(Query, Mutation, Subscription).finish().sdl()
}
