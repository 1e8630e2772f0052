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
    // A scan hands out every event before the gap, then the same error, then ends.
    let mut scan = eventlog::scan(&*store, 1, u64::MAX).await.expect("open a scan");
    let before: Vec<u64> = scan
        .next()
        .await
        .expect("the events before the gap")
        .expect("a batch")
        .iter()
        .map(|event| event.position)
        .collect();
    assert_eq!(before, [1, 2]);
    match scan.next().await {
        Some(Err(StoreError::Corrupt { position: 3, .. })) => {}
        other => panic!("scan over a gap: {other:?}"),
    }
    assert!(scan.next().await.is_none(), "the scan ends after the error");
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

/// Counts the log reads of a wrapped store and passes its own commits through, as a wrapper should.
struct CountingStore {
    inner: Arc<SqliteStore>,
    reads: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl eventlog::EventStore for CountingStore {
    async fn append(
        &self,
        stream: &eventlog::StreamName,
        expected: eventlog::ExpectedRevision,
        events: Vec<eventlog::NewEvent>,
    ) -> Result<eventlog::AppendOutcome, eventlog::StoreError> {
        self.inner.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &eventlog::StreamName,
        from_revision: u64,
        limit: usize,
    ) -> Result<Vec<eventlog::RecordedEvent>, eventlog::StoreError> {
        self.inner.read_stream(stream, from_revision, limit).await
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<eventlog::RecordedEvent>, eventlog::StoreError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.read_all(from_position, limit).await
    }

    async fn head(&self) -> Result<eventlog::Head, eventlog::StoreError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.head().await
    }

    async fn wait_for_position_after(
        &self,
        position: u64,
        timeout: std::time::Duration,
    ) -> Result<eventlog::Head, eventlog::StoreError> {
        self.inner.wait_for_position_after(position, timeout).await
    }

    fn local_commits(&self) -> Option<tokio::sync::broadcast::Receiver<eventlog::LocalCommit>> {
        self.inner.local_commits()
    }
}

fn note(index: usize, payload_bytes: usize) -> eventlog::NewEvent {
    let mut payload = format!(r#"{{"index":{index},"pad":""#).into_bytes();
    payload.resize(payload_bytes.max(payload.len()), b'x');
    payload.extend_from_slice(br#""}"#);
    eventlog::NewEvent {
        event_id: uuid::Uuid::new_v4(),
        event_type: "TestHappened".to_owned(),
        schema_version: 1,
        payload,
        actor: "test".to_owned(),
    }
}

/// A subscriber on a handle takes that handle's commits from memory: 200 appends, each awaited by the
/// subscriber before the next, cost a few polls of the log, not a read each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_follows_its_own_handle_without_reading_each_commit() {
    use eventlog::{EventStore, ExpectedRevision, StreamName};
    const APPENDS: usize = 200;

    let harness = fresh().await;
    let store = Arc::new(CountingStore {
        inner: harness.open().await,
        reads: std::sync::atomic::AtomicUsize::new(0),
    });
    let mut subscription = eventlog::catch_up(Arc::clone(&store) as Arc<dyn EventStore>, 0);
    let stream = StreamName::parse("payment-1").expect("valid");
    for index in 0..APPENDS {
        let appended = store
            .append(&stream, ExpectedRevision::Any, vec![note(index, 0)])
            .await
            .expect("append");
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), subscription.next())
            .await
            .expect("delivered")
            .expect("open")
            .expect("no error");
        assert_eq!(event.position, appended.last_position);
        assert_eq!(event.revision, index as u64);
    }
    let reads = store.reads.load(std::sync::atomic::Ordering::Relaxed);
    assert!(reads < APPENDS / 4, "{reads} reads of the log for {APPENDS} commits");
    drop(subscription);
    drop(store);
    harness.finish().await;
}

/// Two handles on one file append concurrently, some commits too large for the feed, while a subscriber on
/// the first handle does not read until every writer is done, so its buffer fills and the feed runs past what it
/// keeps: the subscriber still gets every event once, densely and in the log's order (the other handle's
/// commits, the large ones and what it missed are read from the log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_subscriber_gets_every_commit_of_both_handles_once_and_in_order() {
    use eventlog::{EventStore, ExpectedRevision, StreamName};
    const TASKS_PER_HANDLE: usize = 4;
    const APPENDS_PER_TASK: usize = 150;

    let harness = fresh().await;
    let handles = [harness.open().await, harness.open().await];
    let mut subscription = eventlog::catch_up(Arc::clone(&handles[0]), 0);
    let mut writers = Vec::new();
    for (handle_index, handle) in handles.iter().enumerate() {
        for task in 0..TASKS_PER_HANDLE {
            let store = Arc::clone(handle);
            writers.push(tokio::spawn(async move {
                let stream = StreamName::parse(format!("payment-{handle_index}-{task}")).expect("valid");
                for index in 0..APPENDS_PER_TASK {
                    // Every 25th append carries 300 KiB: more than a commit the feed hands over.
                    let payload = if index % 25 == 24 { 300 * 1024 } else { 0 };
                    store
                        .append(&stream, ExpectedRevision::Any, vec![note(index, payload)])
                        .await
                        .expect("append");
                }
            }));
        }
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    let total = 2 * TASKS_PER_HANDLE * APPENDS_PER_TASK;
    assert!(
        total > eventlog::SUBSCRIPTION_BUFFER_EVENTS_MAX + eventlog::LOCAL_COMMITS_KEPT,
        "more than the subscription buffers and the feed keeps"
    );
    let mut revisions = std::collections::HashMap::new();
    for expected_position in 1..=total as u64 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(30), subscription.next())
            .await
            .expect("delivered")
            .expect("open")
            .expect("no error");
        assert_eq!(event.position, expected_position, "dense and in order");
        let revision = revisions.entry(event.stream.clone()).or_insert(0_u64);
        assert_eq!(event.revision, *revision, "stream {} in order", event.stream);
        *revision += 1;
    }
    let log = handles[1].read_all(1, total + 1).await.expect("read");
    assert_eq!(log.len(), total);
    let extra = tokio::time::timeout(std::time::Duration::from_millis(200), subscription.next()).await;
    assert!(extra.is_err(), "nothing beyond what was written: {extra:?}");
    drop(subscription);
    drop(handles);
    harness.finish().await;
}
