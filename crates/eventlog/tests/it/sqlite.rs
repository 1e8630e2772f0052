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

/// Removes position 3 behind the store's back: reads and subscriptions must report the gap, never skip it, and
/// the chain verifier must name the first bad position after a payload is edited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_or_an_edit_in_the_file_is_reported_as_corrupt() {
    use eventlog::chain::ChainVerifier;
    use eventlog::{EventStore, ExpectedRevision, NewEvent, StoreError, StreamName};

    let harness = fresh().await;
    let store = harness.open().await;
    let stream = StreamName::parse("payment-1").expect("valid");
    for index in 0..5 {
        let event = NewEvent {
            event_id: uuid::Uuid::new_v4(),
            event_type: "TestHappened".to_owned(),
            schema_version: 1,
            payload: format!(r#"{{"index":{index}}}"#).into_bytes(),
            actor: "test".to_owned(),
        };
        store
            .append(&stream, ExpectedRevision::Any, vec![event])
            .await
            .expect("append");
    }
    let tamper = rusqlite::Connection::open(harness.path()).expect("open the file directly");
    tamper
        .execute("UPDATE eventlog_events SET payload = x'7b7d' WHERE position = 4", [])
        .expect("edit");
    let events = store.read_all(0, 10).await.expect("an edit still decodes");
    let mut verifier = ChainVerifier::default();
    let first_bad = events.iter().find_map(|event| verifier.check(event).err());
    assert!(
        matches!(first_bad, Some(StoreError::Corrupt { position: 4, .. })),
        "{first_bad:?}"
    );

    tamper
        .execute("DELETE FROM eventlog_events WHERE position = 3", [])
        .expect("delete");
    match store.read_all(1, 10).await {
        Err(StoreError::Corrupt { position: 3, .. }) => {}
        other => panic!("read_all over a gap: {other:?}"),
    }
    match store.read_stream(&stream, 0, 10).await {
        Err(StoreError::Corrupt { .. }) => {}
        other => panic!("read_stream over a revision gap: {other:?}"),
    }
    let mut subscription = eventlog::catch_up(Arc::clone(&store), 3);
    match subscription.next().await {
        Some(Err(StoreError::Corrupt { position: 3, .. })) => {}
        other => panic!("subscription over a gap: {other:?}"),
    }
    assert!(
        subscription.next().await.is_none(),
        "the subscription ends after the error"
    );
    harness.finish().await;
}

#[tokio::test]
async fn a_schema_from_a_newer_release_is_refused() {
    let harness = fresh().await;
    drop(harness.open().await);
    let connection = rusqlite::Connection::open(harness.path()).expect("open");
    connection
        .execute(
            "INSERT INTO eventlog_migrations (version, applied_at_ns) VALUES (99, 0)",
            [],
        )
        .expect("insert");
    match eventlog::SqliteStore::open(harness.path()).await {
        Err(eventlog::StoreError::SchemaTooNew { found: 99, known: 1 }) => {}
        other => panic!("opening a newer schema: {other:?}"),
    }
    harness.finish().await;
}
