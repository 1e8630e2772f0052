//! The conformance suite on SQLite (each case in its own temporary folder), and what is SQLite's own: the
//! read models' file beside the log, its journal mode, and two processes' runners on one file.

use std::path::PathBuf;
use std::sync::Arc;

use eventlog::{EventStore, SqliteStore};
use projections::{ProjectionStore, SqliteReadModels, open_projection_store, read_model_path};

use crate::conformance::{SCENARIO_PAYMENTS, assert_matches_domain, write_scenario};
use crate::support::{Harness, Ledger, Running, caught_up, head};

pub(crate) struct SqliteHarness {
    directory: tempfile::TempDir,
}

impl SqliteHarness {
    pub(crate) fn log_path(&self) -> PathBuf {
        self.directory.path().join("ledger.db")
    }
}

pub(crate) async fn fresh() -> SqliteHarness {
    SqliteHarness {
        directory: tempfile::tempdir().expect("temporary directory"),
    }
}

impl Harness for SqliteHarness {
    async fn store(&self) -> Arc<dyn EventStore> {
        Arc::new(SqliteStore::open(self.log_path()).await.expect("open sqlite store"))
    }

    async fn projections(&self) -> Arc<dyn ProjectionStore> {
        let path = read_model_path(&self.log_path());
        Arc::new(SqliteReadModels::open(path).await.expect("open sqlite read models"))
    }

    async fn finish(self) {
        self.directory.close().expect("remove the temporary directory");
    }
}

conformance_suite!(fresh());

#[tokio::test]
async fn the_store_url_opens_a_wal_file_beside_the_log() {
    let harness = fresh().await;
    let url = format!("sqlite://{}", harness.log_path().display());
    let projections = open_projection_store(&url).await.expect("open by url");
    assert_eq!(projections.checkpoint().await.expect("checkpoint"), 0);
    let file = harness.directory.path().join("ledger.read.db");
    assert!(file.exists(), "{} exists", file.display());
    let connection = rusqlite::Connection::open(&file).expect("open");
    let mode: String = connection
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("pragma");
    assert_eq!(mode, "wal");
    let versions: Vec<i64> = connection
        .prepare("SELECT version FROM projection_migrations")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(versions, vec![1, 2, 3, 4], "every migration once");
    drop(projections);
    let reopened = projections::open_read_models(&url)
        .await
        .expect("reopen migrates nothing");
    assert_eq!(reopened.checkpoint().await.expect("checkpoint"), 0);
    assert!(matches!(
        projections::open_read_models("mysql://localhost/x").await,
        Err(projections::ProjectionError::InvalidStoreUrl { .. })
    ));
    harness.finish().await;
}

/// Two processes on one file cannot share a lease; the checkpoint check inside each batch's transaction
/// keeps them from applying anything twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_on_two_handles_of_one_file_never_apply_twice() {
    let harness = fresh().await;
    let mut ledger = Ledger::new(harness.store().await);
    let (left, right) = (harness.projections().await, harness.projections().await);
    let left_runner = Running::start(Arc::clone(&ledger.store), Arc::clone(&left));
    let right_runner = Running::start(harness.store().await, Arc::clone(&right));
    write_scenario(&mut ledger).await;
    let last = head(&*ledger.store).await;
    caught_up(&*left, last).await;
    caught_up(&*right, last).await;
    for id in SCENARIO_PAYMENTS {
        assert_matches_domain(&*left, &ledger, id).await;
    }
    left_runner.stop().await.expect("clean shutdown");
    right_runner.stop().await.expect("clean shutdown");
    harness.finish().await;
}
