//! projections: under construction.
