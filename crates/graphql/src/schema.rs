//! Building the schema with its limits, and printing its SDL.

use async_graphql::Schema;

use crate::context::ApiContext;
use crate::limits::{ExpensiveQueries, Limits, QueryLimits};
use crate::mutation::Mutation;
use crate::query::Query;
use crate::subscription::Subscription;

/// The ledger's GraphQL schema.
pub type LedgerSchema = Schema<Query, Mutation, Subscription>;

/// The schema with its services and limits (enforced by one extension, see [`crate::limits`]).
pub fn build(context: ApiContext, limits: Limits) -> LedgerSchema {
    with_limits(limits).data(context).finish()
}

/// The schema builder with the limits' extension, without services (tests of the limits use it alone).
pub(crate) fn with_limits(limits: Limits) -> async_graphql::SchemaBuilder<Query, Mutation, Subscription> {
    let (extension, expensive) = QueryLimits::new(limits);
    Schema::build(Query, Mutation, Subscription)
        .extension(extension)
        .data(expensive)
}

/// Expensive queries running now in the service behind `schema` (a gauge for `/metrics`).
pub fn expensive_queries_running(schema: &LedgerSchema) -> usize {
    schema.data::<ExpensiveQueries>().map_or(0, ExpensiveQueries::running)
}

/// The SDL of the schema (checked in as `schema/ledger.graphql`).
pub fn sdl() -> String {
    Schema::build(Query, Mutation, Subscription).finish().sdl()
}
