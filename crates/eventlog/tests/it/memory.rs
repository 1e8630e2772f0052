//! The conformance suite on the in-memory sparse store: the suite's sparse-layout checks run here on every
//! build, whether or not a KurrentDB server is at hand.

use std::sync::Arc;

use eventlog::SparseMemoryStore;

use crate::conformance::Harness;

struct MemoryHarness {
    store: SparseMemoryStore,
}

async fn fresh() -> MemoryHarness {
    MemoryHarness {
        store: SparseMemoryStore::new(),
    }
}

impl Harness for MemoryHarness {
    type Store = SparseMemoryStore;

    /// Every handle shares the one log, as handles on one database do.
    async fn open(&self) -> Arc<SparseMemoryStore> {
        Arc::new(self.store.clone())
    }

    async fn finish(self) {}
}

conformance_suite!(fresh());
