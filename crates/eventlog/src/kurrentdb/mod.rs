//! The KurrentDB (EventStoreDB) backend, on the official `kurrentdb` client (docs/adr/005 to 008).
//!
//! KurrentDB gives per-stream expected revisions, one global order (`$all`) whose positions are log offsets,
//! and no transaction across streams. The modules map the trait's promises onto that, one concern each:
//!
//! - [`url`]: the store URL (the client's connection string plus the ledger's namespace and seal interval);
//! - `mapping`: names, envelope, positions, revisions and errors between the ledger and the server;
//! - `claim`: event ids unique across streams through one claim stream per id;
//! - `store`: [`KurrentDbStore`], the IO around them, and the sealer that chains `$all` after the fact
//!   ([`crate::seal`]).
//!
//! The pure parts are unit- and property-tested here; the whole store runs the conformance suite against a
//! server named by `KURRENTDB_URL` (tests/it/kurrentdb.rs).

//! Only [`url`] is built without the `kurrentdb` feature, so that a binary built without the backend can
//! still recognise a KurrentDB URL and say what it lacks.

#[cfg(feature = "kurrentdb")]
mod claim;
#[cfg(feature = "kurrentdb")]
mod mapping;
#[cfg(feature = "kurrentdb")]
mod store;
pub mod url;

#[cfg(feature = "kurrentdb")]
pub use store::{APPEND_ANY_ATTEMPTS_MAX, CLAIMS_IN_FLIGHT_MAX, KurrentDbStore, OPERATION_DEADLINE_MS};
