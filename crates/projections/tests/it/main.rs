//! projections integration tests: the read models against real stores, one binary.

mod cursors;
