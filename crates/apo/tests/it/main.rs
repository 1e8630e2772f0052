//! The one integration test binary of `apo` (one link, fast on 2 cores).
//!
//! Tests replay the signature vectors made with Antom's official Python SDK
//! (`testdata/antom`), map every kind of answer Antom (or the network) can
//! give, and run the client over loopback against a tiny signed stand-in for
//! Antom.

mod client;
mod inquiry_outcome;
mod keys;
mod notifications;
mod refund_outcome;
mod requests;
mod signing;
mod support;
