//! The conformance suite over a log with KurrentDB's shape (sparse positions, per-stream chains): the
//! in-memory sparse store, with SQLite read models in a temporary folder. The runner must apply it exactly as
//! a dense log, holes in the positions being the log's own and no gap.

use std::sync::Arc;

use eventlog::{EventStore, SparseMemoryStore};
use projections::{ProjectionStore, SqliteReadModels};

use crate::support::Harness;

pub(crate) struct SparseHarness {
    log: SparseMemoryStore,
    directory: tempfile::TempDir,
}

pub(crate) async fn fresh() -> SparseHarness {
    SparseHarness {
        log: SparseMemoryStore::new(),
        directory: tempfile::tempdir().expect("temporary directory"),
    }
}

impl Harness for SparseHarness {
    async fn store(&self) -> Arc<dyn EventStore> {
        Arc::new(self.log.clone())
    }

    async fn projections(&self) -> Arc<dyn ProjectionStore> {
        let path = self.directory.path().join("ledger.read.db");
        Arc::new(SqliteReadModels::open(path).await.expect("open sqlite read models"))
    }

    async fn finish(self) {
        self.directory.close().expect("remove the temporary directory");
    }
}

conformance_suite!(fresh());
