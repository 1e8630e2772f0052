//! apo: under construction.
