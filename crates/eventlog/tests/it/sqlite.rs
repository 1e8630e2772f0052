//! The conformance suite on SQLite: each case gets its own file in a temporary directory.

use std::path::PathBuf;
use std::sync::Arc;

use eventlog::SqliteStore;

use crate::conformance::Harness;

struct SqliteHarness {
    directory: tempfile::TempDir,
}

impl SqliteHarness {
    fn path(&self) -> PathBuf {
        self.directory.path().join("eventlog.sqlite")
    }
}

async fn fresh() -> SqliteHarness {
    SqliteHarness {
        directory: tempfile::tempdir().expect("temporary directory"),
    }
}

impl Harness for SqliteHarness {
    type Store = SqliteStore;

    async fn open(&self) -> Arc<SqliteStore> {
        Arc::new(SqliteStore::open(self.path()).await.expect("open sqlite store"))
    }

    async fn finish(self) {
        self.directory.close().expect("remove the temporary directory");
    }
}

conformance_suite!(fresh());

#[tokio::test]
async fn the_schema_is_versioned_and_reopening_does_not_migrate_twice() {
    let harness = fresh().await;
    drop(harness.open().await);
    drop(harness.open().await);
    let connection = rusqlite::Connection::open(harness.path()).expect("open");
    let versions: Vec<i64> = connection
        .prepare("SELECT version FROM eventlog_migrations ORDER BY version")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(versions, vec![1]);
    let mode: String = connection
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("pragma");
    assert_eq!(mode, "wal");
    harness.finish().await;
}
