//! app: under construction.
