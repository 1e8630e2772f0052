//! apo-sim: under construction.
