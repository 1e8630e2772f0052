//! eventlog: under construction.
