//! Integration tests of the audit crate on real stores.
