//! The one integration test binary of `apo` (one link, fast on 2 cores).
//!
//! Tests replay the signature vectors made with Antom's official Python SDK
//! (`shared/antom-vectors`, beside the repository) and exercise the public
//! API as the ledger and the simulator use it.

mod keys;
mod signing;
mod support;
