//! graphql: under construction.
