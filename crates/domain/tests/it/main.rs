//! Integration tests of the pure domain: one binary, one module per concern.

mod aggregate;
mod event_json;
mod properties;
mod scenario;
