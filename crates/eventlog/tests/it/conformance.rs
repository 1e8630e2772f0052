//! The backend-independent contract of `EventStore`, written once as generic async functions.
//!
//! A backend module implements [`Harness`] and invokes `conformance_suite!`, which turns every case below into
//! a `#[tokio::test]` for that backend.
//!
//! Positions are checked as the store's [`LogLayout`] promises them: on a dense store (SQLite, PostgreSQL)
//! they must be exactly 1, 2, 3, ..; on a sparse one (KurrentDB, the in-memory sparse store) strictly
//! increasing, and every position a case expects is the n-th position the log itself reports. The hash
//! chain is checked the same way: across the log on a dense store, per stream on a sparse one.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventlog::chain::{ChainVerifier, StreamChainVerifier, event_hash, stream_event_hash};
use eventlog::{
    BATCH_EVENTS_MAX, EventStore, ExpectedRevision, Head, LogLayout, NewEvent, PAYLOAD_BYTES_MAX, RecordedEvent,
    SCAN_BATCH_EVENTS_MAX, STREAM_NAME_BYTES_MAX, StoreError, StreamName,
};
use uuid::Uuid;

/// A backend under test: opens handles on one fresh database, and removes it at the end.
pub(crate) trait Harness {
    type Store: EventStore;

    /// A new handle on this harness's database (every call opens the same database).
    async fn open(&self) -> Arc<Self::Store>;

    /// Removes the database once the case passed.
    async fn finish(self);
}

/// Generates one `#[tokio::test]` per conformance case, each with a fresh harness from `$harness`; with
/// `optional`, `$harness` yields an `Option` and a case without a harness prints `skipped: REASON (case)`.
macro_rules! conformance_suite {
    (optional $harness:expr, $reason:literal) => {
        conformance_suite!(@each optional ($harness, $reason));
    };
    (@each $mode:ident $arguments:tt) => {
        conformance_suite!(@$mode $arguments;
            expected_revision_rules,
            one_stream_under_contention_gets_one_winner_per_revision,
            concurrent_appends_reach_a_subscriber_once_and_in_order,
            duplicate_event_ids_are_refused_and_nothing_is_written,
            reopened_store_reads_back_identically,
            garbage_is_refused_with_typed_errors_and_nothing_is_written,
            hash_chain_links_every_event,
            read_all_honours_from_and_limit,
            a_scan_reads_what_read_all_reads,
            large_read_all_pages_stay_dense_while_appends_run,
            read_stream_honours_from_revision_and_limit,
            waiting_wakes_on_appends_from_this_and_other_handles,
            subscription_starts_mid_log_and_follows_new_events,
        );
    };
    (@optional ($harness:expr, $reason:literal); $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(harness) = $harness.await else {
                    #[allow(clippy::print_stdout, reason = "the skip is reported where test output goes")]
                    {
                        println!(concat!("skipped: ", $reason, " (", stringify!($case), ")"));
                    }
                    return;
                };
                crate::conformance::$case(&harness).await;
                crate::conformance::Harness::finish(harness).await;
            }
        )*
    };
    (@required ($harness:expr); $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = $harness.await;
                crate::conformance::$case(&harness).await;
                crate::conformance::Harness::finish(harness).await;
            }
        )*
    };
    ($harness:expr) => {
        conformance_suite!(@each required ($harness));
    };
}

pub(crate) fn stream(name: &str) -> StreamName {
    StreamName::parse(name).expect("test stream names are valid")
}

pub(crate) fn event(label: &str) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "TestHappened".to_owned(),
        schema_version: 1,
        payload: format!(r#"{{"label":"{label}"}}"#).into_bytes(),
        actor: "conformance".to_owned(),
    }
}

/// The whole log, read page after page from the last position plus one (as every reader does), with its
/// positions checked against the layout.
async fn read_everything(store: &dyn EventStore) -> Vec<RecordedEvent> {
    let mut events: Vec<RecordedEvent> = Vec::new();
    loop {
        let from = events.last().map_or(1, |last| last.position + 1);
        let page = store.read_all(from, 1_000).await.expect("read_all");
        if page.is_empty() {
            assert_positions_as_promised(store.layout(), &events);
            return events;
        }
        events.extend(page);
    }
}

/// The positions of the whole log, in order: the n-th event of the log is at `positions[n - 1]`.
async fn positions(store: &dyn EventStore) -> Vec<u64> {
    read_everything(store)
        .await
        .iter()
        .map(|event| event.position)
        .collect()
}

/// Dense stores number 1, 2, 3, ..; sparse ones strictly increase.
fn assert_positions_as_promised(layout: LogLayout, events: &[RecordedEvent]) {
    let positions: Vec<u64> = events.iter().map(|event| event.position).collect();
    if layout.positions_dense() {
        assert_eq!(
            positions,
            (1..=positions.len() as u64).collect::<Vec<_>>(),
            "dense positions"
        );
    } else {
        assert!(
            positions.windows(2).all(|pair| pair[0] < pair[1]) && positions.first().is_none_or(|first| *first >= 1),
            "strictly increasing positions: {positions:?}"
        );
    }
}

/// Checks the whole log's hash chain as the layout defines it.
fn verify_chain(layout: LogLayout, events: &[RecordedEvent]) {
    match layout {
        LogLayout::DenseChained => {
            let mut verifier = ChainVerifier::default();
            for event in events {
                verifier.check(event).expect("chain verifies");
            }
        }
        LogLayout::SparseSealed => {
            let mut verifier = StreamChainVerifier::default();
            for event in events {
                verifier.check(event).expect("stream chains verify");
            }
        }
    }
}

async fn assert_log_is_empty(store: &dyn EventStore) {
    assert_eq!(store.head().await.expect("head"), Head::EMPTY);
    assert!(store.read_all(0, 10).await.expect("read_all").is_empty());
}

pub(crate) async fn expected_revision_rules<H: Harness>(harness: &H) {
    let store = harness.open().await;
    let payment = stream("payment-1");

    let first = store
        .append(&payment, ExpectedRevision::NoStream, vec![event("a"), event("b")])
        .await
        .expect("create");
    assert_eq!(first.last_revision, 1);

    match store
        .append(&payment, ExpectedRevision::NoStream, vec![event("c")])
        .await
    {
        Err(StoreError::Conflict {
            stream,
            expected: ExpectedRevision::NoStream,
            actual: Some(1),
        }) => {
            assert_eq!(stream, payment);
        }
        other => panic!("NoStream on an existing stream: {other:?}"),
    }
    match store
        .append(&payment, ExpectedRevision::Exact(0), vec![event("c")])
        .await
    {
        Err(StoreError::Conflict {
            expected: ExpectedRevision::Exact(0),
            actual: Some(1),
            ..
        }) => {}
        other => panic!("stale Exact: {other:?}"),
    }
    match store
        .append(&stream("payment-2"), ExpectedRevision::Exact(0), vec![event("c")])
        .await
    {
        Err(StoreError::Conflict { actual: None, .. }) => {}
        other => panic!("Exact on a missing stream: {other:?}"),
    }

    let exact = store
        .append(&payment, ExpectedRevision::Exact(1), vec![event("c")])
        .await
        .expect("exact");
    assert_eq!(exact.last_revision, 2);
    let any = store
        .append(&payment, ExpectedRevision::Any, vec![event("d")])
        .await
        .expect("any, existing");
    assert_eq!(any.last_revision, 3);
    let fresh = store
        .append(&stream("payment-3"), ExpectedRevision::Any, vec![event("e")])
        .await
        .expect("any, new");
    assert_eq!(fresh.last_revision, 0);
    let at = positions(&*store).await;
    assert_eq!(at.len(), 5, "refused appends wrote nothing");
    assert_eq!(
        [
            (first.first_position, first.last_position),
            (exact.first_position, exact.last_position),
            (fresh.first_position, fresh.last_position),
        ],
        [(at[0], at[1]), (at[2], at[2]), (at[4], at[4])],
        "outcomes name the positions the events landed at"
    );

    let revisions: Vec<u64> = store
        .read_stream(&payment, 0, 100)
        .await
        .expect("read")
        .iter()
        .map(|event| event.revision)
        .collect();
    assert_eq!(revisions, vec![0, 1, 2, 3], "refused appends wrote nothing");
    assert_eq!(store.head().await.expect("head").position, at[4]);
}

/// 32 tasks race to append 5 events each to one stream, each with the revision it last saw; a conflict makes it
/// re-read and try again. Every revision must have exactly one winner and nothing may be lost or doubled.
pub(crate) async fn one_stream_under_contention_gets_one_winner_per_revision<H: Harness>(harness: &H) {
    const TASKS: usize = 32;
    const APPENDS_PER_TASK: usize = 5;
    const ATTEMPTS_MAX: usize = 10_000;
    let store = harness.open().await;
    let contended = stream("payment-contended");
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        let contended = contended.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            let mut expected = ExpectedRevision::NoStream;
            for append in 0..APPENDS_PER_TASK {
                let new = event(&format!("{task}-{append}"));
                let event_id = new.event_id;
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    assert!(attempts < ATTEMPTS_MAX, "task {task} starved");
                    match store.append(&contended, expected, vec![new.clone()]).await {
                        Ok(outcome) => {
                            won.push((outcome.last_revision, event_id));
                            expected = ExpectedRevision::Exact(outcome.last_revision);
                            break;
                        }
                        Err(StoreError::Conflict { actual, .. }) => {
                            expected = actual.map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact);
                        }
                        Err(other) => panic!("task {task}: {other:?}"),
                    }
                }
            }
            won
        }));
    }
    let mut winners = BTreeMap::new();
    for task in tasks {
        for (revision, event_id) in task.await.expect("task") {
            assert!(
                winners.insert(revision, event_id).is_none(),
                "revision {revision} won twice"
            );
        }
    }
    let total = TASKS * APPENDS_PER_TASK;
    assert_eq!(
        winners.keys().copied().collect::<Vec<_>>(),
        (0..total as u64).collect::<Vec<_>>()
    );

    let stored = store.read_stream(&contended, 0, total + 10).await.expect("read");
    assert_eq!(stored.len(), total);
    for event in &stored {
        assert_eq!(
            winners.get(&event.revision),
            Some(&event.event_id),
            "revision {} holds its winner",
            event.revision
        );
    }
    let at = positions(&*store).await;
    assert_eq!(at.len(), total);
    assert_eq!(Some(store.head().await.expect("head").position), at.last().copied());
}

/// Writers on several handles append to many streams while a subscriber tails the log from the start: it must
/// see every event exactly once, at positions 1..=N in order, with each stream's revisions dense.
pub(crate) async fn concurrent_appends_reach_a_subscriber_once_and_in_order<H: Harness>(harness: &H) {
    const HANDLES: usize = 2;
    const TASKS_PER_HANDLE: usize = 4;
    const EVENTS_PER_TASK: usize = 50;
    let handles: Vec<Arc<H::Store>> = futures_join_all(HANDLES, || harness.open()).await;
    let mut subscription = eventlog::catch_up(Arc::clone(&handles[0]), 0);

    let mut writers = Vec::new();
    for (handle_index, handle) in handles.iter().enumerate() {
        for task in 0..TASKS_PER_HANDLE {
            let store = Arc::clone(handle);
            writers.push(tokio::spawn(async move {
                let name = stream(&format!("payment-{handle_index}-{task}"));
                let mut ids = Vec::new();
                for index in 0..EVENTS_PER_TASK {
                    // Alternate one- and two-event appends, so groups mix batch sizes.
                    let batch: Vec<NewEvent> = (0..1 + index % 2)
                        .map(|part| event(&format!("{index}.{part}")))
                        .collect();
                    ids.extend(batch.iter().map(|event| event.event_id));
                    store.append(&name, ExpectedRevision::Any, batch).await.expect("append");
                }
                ids
            }));
        }
    }
    let mut written = HashSet::new();
    for writer in writers {
        written.extend(writer.await.expect("writer"));
    }
    let total = written.len();

    let mut seen = HashSet::new();
    let mut delivered = Vec::with_capacity(total);
    let mut last_revisions: BTreeMap<StreamName, u64> = BTreeMap::new();
    for _ in 0..total {
        let next = tokio::time::timeout(Duration::from_secs(30), subscription.next()).await;
        let event = next
            .expect("subscriber keeps up")
            .expect("subscription open")
            .expect("no error");
        delivered.push(event.position);
        assert!(seen.insert(event.event_id), "event {} delivered twice", event.event_id);
        let expected_revision = last_revisions.get(&event.stream).map_or(0, |last| last + 1);
        assert_eq!(
            event.revision, expected_revision,
            "stream {} revisions dense",
            event.stream
        );
        last_revisions.insert(event.stream.clone(), event.revision);
    }
    assert_eq!(seen, written, "the subscriber saw exactly what was written");
    assert_eq!(
        delivered,
        positions(&*handles[1]).await,
        "in log order (and 1..=N on a dense store)"
    );
    let extra = tokio::time::timeout(Duration::from_millis(200), subscription.next()).await;
    assert!(extra.is_err(), "nothing beyond what was written: {extra:?}");
}

/// Opens `count` handles one after another.
async fn futures_join_all<S, F, Fut>(count: usize, mut open: F) -> Vec<S>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    let mut opened = Vec::with_capacity(count);
    for _ in 0..count {
        opened.push(open().await);
    }
    opened
}

pub(crate) async fn duplicate_event_ids_are_refused_and_nothing_is_written<H: Harness>(harness: &H) {
    let store = harness.open().await;
    let stored = event("stored");
    store
        .append(&stream("payment-1"), ExpectedRevision::Any, vec![stored.clone()])
        .await
        .expect("first");
    let before = read_everything(&*store).await.len();

    let mut reused = event("reused id");
    reused.event_id = stored.event_id;
    let batch = vec![event("fresh"), reused];
    match store.append(&stream("payment-2"), ExpectedRevision::Any, batch).await {
        Err(StoreError::DuplicateEventId { event_id }) => assert_eq!(event_id, stored.event_id),
        other => panic!("an id stored in another stream: {other:?}"),
    }
    let twice = event("twice");
    match store
        .append(
            &stream("payment-2"),
            ExpectedRevision::Any,
            vec![twice.clone(), twice.clone()],
        )
        .await
    {
        Err(StoreError::DuplicateEventId { event_id }) => assert_eq!(event_id, twice.event_id),
        other => panic!("an id twice in one batch: {other:?}"),
    }
    // Two concurrent appends carrying the same id: exactly one may win.
    let racing = event("racing");
    let (left_stream, right_stream) = (stream("payment-3"), stream("payment-4"));
    let (left, right) = tokio::join!(
        store.append(&left_stream, ExpectedRevision::Any, vec![racing.clone()]),
        store.append(&right_stream, ExpectedRevision::Any, vec![racing.clone()]),
    );
    assert!(
        matches!(
            (&left, &right),
            (Ok(_), Err(StoreError::DuplicateEventId { .. })) | (Err(StoreError::DuplicateEventId { .. }), Ok(_))
        ),
        "one winner: {left:?} {right:?}"
    );

    let after = read_everything(&*store).await;
    assert_eq!(after.len(), before + 1, "only the racing winner was added");
    assert!(
        store
            .read_stream(&stream("payment-2"), 0, 10)
            .await
            .expect("read")
            .is_empty()
    );
}

pub(crate) async fn reopened_store_reads_back_identically<H: Harness>(harness: &H) {
    let store = harness.open().await;
    for index in 0..20 {
        let name = stream(&format!("payment-{}", index % 3));
        store
            .append(&name, ExpectedRevision::Any, vec![event(&index.to_string())])
            .await
            .expect("append");
    }
    let before = read_everything(&*store).await;
    let head_before = store.head().await.expect("head");
    drop(store);

    let reopened = harness.open().await;
    assert_eq!(
        read_everything(&*reopened).await,
        before,
        "every field, hashes included, reads back"
    );
    assert_eq!(reopened.head().await.expect("head"), head_before);
    let next = reopened
        .append(&stream("payment-0"), ExpectedRevision::Exact(6), vec![event("after")])
        .await
        .expect("append after reopen");
    let last_before = before.last().expect("events were written").position;
    if reopened.layout().positions_dense() {
        assert_eq!(next.first_position, 21, "the chain continues where it stopped");
    } else {
        assert!(next.first_position > last_before, "the log continues after its head");
    }
    verify_chain(reopened.layout(), &read_everything(&*reopened).await);
}

pub(crate) async fn garbage_is_refused_with_typed_errors_and_nothing_is_written<H: Harness>(harness: &H) {
    let store = harness.open().await;
    for name in [
        String::new(),
        "x".repeat(STREAM_NAME_BYTES_MAX + 1),
        "payment 1".to_owned(),
    ] {
        assert!(
            matches!(
                StreamName::parse(name.clone()).map_err(StoreError::from),
                Err(StoreError::InvalidStreamName { .. })
            ),
            "{name:?}"
        );
    }
    let payment = stream("payment-1");
    let mut oversized = event("big");
    oversized.payload = vec![b' '; PAYLOAD_BYTES_MAX + 1];
    let oversized_id = oversized.event_id;
    let mut untyped = event("untyped");
    untyped.event_type = String::new();
    let mut anonymous = event("anonymous");
    anonymous.actor = String::new();
    let too_many: Vec<NewEvent> = (0..=BATCH_EVENTS_MAX).map(|index| event(&index.to_string())).collect();

    let refusals = [
        (vec![], "empty batch"),
        (vec![event("ok"), oversized], "oversized payload"),
        (too_many, "too many events"),
        (vec![untyped], "empty event_type"),
        (vec![anonymous], "empty actor"),
    ];
    for (events, case) in refusals {
        let result = store.append(&payment, ExpectedRevision::Any, events).await;
        let matched = match case {
            "empty batch" => matches!(result, Err(StoreError::EmptyBatch { .. })),
            "oversized payload" => {
                matches!(result, Err(StoreError::PayloadTooLarge { event_id, size, max: PAYLOAD_BYTES_MAX })
                    if event_id == oversized_id && size == PAYLOAD_BYTES_MAX + 1)
            }
            "too many events" => matches!(
                result,
                Err(StoreError::BatchTooLarge { max: BATCH_EVENTS_MAX, count, .. }) if count == BATCH_EVENTS_MAX + 1
            ),
            "empty event_type" => matches!(
                result,
                Err(StoreError::InvalidEventField {
                    field: "event_type",
                    ..
                })
            ),
            "empty actor" => matches!(result, Err(StoreError::InvalidEventField { field: "actor", .. })),
            _ => unreachable!("every case is listed"),
        };
        assert!(matched, "{case}: {result:?}");
    }
    assert_log_is_empty(&*store).await;

    let mut at_limit = event("at limit");
    at_limit.payload = vec![b' '; PAYLOAD_BYTES_MAX];
    store
        .append(&payment, ExpectedRevision::NoStream, vec![at_limit.clone()])
        .await
        .expect("a payload at the limit");
    let stored = store.read_stream(&payment, 0, 1).await.expect("read");
    assert_eq!(stored[0].payload, at_limit.payload);
}

pub(crate) async fn hash_chain_links_every_event<H: Harness>(harness: &H) {
    let store = harness.open().await;
    for index in 0..12_usize {
        let name = stream(&format!("payment-{}", index % 4));
        let batch: Vec<NewEvent> = (0..1 + index % 3)
            .map(|part| event(&format!("{index}.{part}")))
            .collect();
        store.append(&name, ExpectedRevision::Any, batch).await.expect("append");
    }
    let events = read_everything(&*store).await;
    match store.layout() {
        LogLayout::DenseChained => check_log_chain(&events),
        LogLayout::SparseSealed => check_stream_chains(&events),
    }
    verify_chain(store.layout(), &events);
    let last = events.last().expect("events were written");
    let head = store.head().await.expect("head");
    assert_eq!(
        (head.position, head.hash, head.recorded_at),
        (last.position, last.hash, Some(last.recorded_at))
    );
}

/// Dense: each event links to the previous event of the log, and times never go back along it.
fn check_log_chain(events: &[RecordedEvent]) {
    assert_eq!(events[0].prev_hash, [0; 32], "the genesis link is 32 zero bytes");
    for pair in events.windows(2) {
        assert_eq!(
            pair[1].prev_hash, pair[0].hash,
            "position {} links to its predecessor",
            pair[1].position
        );
        assert!(
            pair[1].recorded_at >= pair[0].recorded_at,
            "recorded_at never goes backwards"
        );
    }
    for event in events {
        assert_eq!(
            event.hash,
            event_hash(&event.prev_hash, event),
            "position {} hash recomputes",
            event.position
        );
    }
    let mut tampered = events[5].clone();
    tampered.payload = br#"{"label":"forged"}"#.to_vec();
    let mut verifier = ChainVerifier::after(events[4].position, events[4].hash);
    assert!(matches!(
        verifier.check(&tampered),
        Err(StoreError::Corrupt { position: 6, .. })
    ));
}

/// Sparse: each event links to the previous event of its stream (revision 0 to the genesis), and times never
/// go back along a stream.
fn check_stream_chains(events: &[RecordedEvent]) {
    let mut tips: BTreeMap<&StreamName, &RecordedEvent> = BTreeMap::new();
    for event in events {
        match tips.get(&event.stream) {
            None => assert_eq!(
                (event.revision, event.prev_hash),
                (0, [0; 32]),
                "a stream's first event links to the genesis"
            ),
            Some(previous) => {
                assert_eq!(
                    event.prev_hash, previous.hash,
                    "position {} links to its stream",
                    event.position
                );
                assert!(
                    event.recorded_at >= previous.recorded_at,
                    "recorded_at never goes back in a stream"
                );
            }
        }
        assert_eq!(
            event.hash,
            stream_event_hash(&event.prev_hash, event),
            "hash recomputes"
        );
        tips.insert(&event.stream, event);
    }
    let mut tampered = events.to_vec();
    tampered[5].payload = br#"{"label":"forged"}"#.to_vec();
    let mut verifier = StreamChainVerifier::default();
    let first_bad = tampered.iter().find_map(|event| verifier.check(event).err());
    assert!(
        matches!(first_bad, Some(StoreError::Corrupt { position, .. }) if position == events[5].position),
        "{first_bad:?}"
    );
}

pub(crate) async fn read_all_honours_from_and_limit<H: Harness>(harness: &H) {
    let store = harness.open().await;
    for index in 0..10 {
        store
            .append(
                &stream(&format!("payment-{index}")),
                ExpectedRevision::NoStream,
                vec![event("x")],
            )
            .await
            .expect("append");
    }
    let at = positions(&*store).await;
    let read = |from: u64, limit: usize| {
        let store = Arc::clone(&store);
        async move {
            let events = store.read_all(from, limit).await.expect("read");
            events.iter().map(|event| event.position).collect::<Vec<_>>()
        }
    };
    assert_eq!(read(0, 3).await, at[..3], "0 means the start");
    assert_eq!(read(1, 3).await, at[..3], "1 means the start too");
    assert_eq!(read(at[0], 3).await, at[..3], "from is inclusive");
    assert_eq!(read(at[3], 100).await, at[3..]);
    assert_eq!(
        read(at[2] + 1, 2).await,
        at[3..5],
        "the last position read plus one reads on"
    );
    assert_eq!(read(at[9], 5).await, at[9..]);
    assert!(read(at[9] + 1, 5).await.is_empty(), "past the head");
    assert!(read(u64::MAX, 5).await.is_empty(), "far past the head");
    assert!(read(1, 0).await.is_empty(), "limit 0");
}

/// Every event of `from..=to` by `eventlog::scan`, batch sizes checked.
async fn scan_everything(store: &dyn EventStore, from: u64, to: u64) -> Vec<RecordedEvent> {
    let mut scan = eventlog::scan(store, from, to).await.expect("open a scan");
    let mut events = Vec::new();
    while let Some(batch) = scan.next().await {
        let batch = batch.expect("scan");
        assert!(!batch.is_empty(), "a scan never yields an empty batch");
        assert!(
            batch.len() <= SCAN_BATCH_EVENTS_MAX.max(eventlog::READ_EVENTS_MAX),
            "{} events in a batch",
            batch.len()
        );
        assert_eq!(batch.last(), batch.iter().last());
        events.extend(batch.to_recorded().expect("views of stored events copy back"));
    }
    events
}

/// A scan yields the events `read_all` reads, in order and with the same content (so the same hashes), for
/// any range, across batches, and a scan dropped half-way leaves the store as it was.
pub(crate) async fn a_scan_reads_what_read_all_reads<H: Harness>(harness: &H) {
    let store = harness.open().await;
    assert!(scan_everything(&*store, 0, u64::MAX).await.is_empty(), "an empty log");
    for index in 0..3 {
        let events: Vec<NewEvent> = (0..1_000).map(|item| event(&format!("{index}.{item}"))).collect();
        store
            .append(&stream(&format!("payment-{index}")), ExpectedRevision::NoStream, events)
            .await
            .expect("append");
        store
            .append(&stream("payment-small"), ExpectedRevision::Any, vec![event("small")])
            .await
            .expect("append");
    }
    let everything = read_everything(&*store).await;
    assert_eq!(everything.len(), 3_003);
    assert_eq!(
        scan_everything(&*store, 0, u64::MAX).await,
        everything,
        "0 means the start"
    );
    assert_eq!(scan_everything(&*store, 1, u64::MAX).await, everything);
    let at: Vec<u64> = everything.iter().map(|event| event.position).collect();
    assert_eq!(
        scan_everything(&*store, at[999], at[2_001]).await,
        everything[999..=2_001],
        "from and to are inclusive"
    );
    assert_eq!(
        scan_everything(&*store, at[5] + 1, at[5]).await,
        everything[..0],
        "an empty range"
    );
    assert!(
        scan_everything(&*store, at[3_002] + 1, u64::MAX).await.is_empty(),
        "past the head"
    );
    for event in &everything {
        assert_eq!(event.view().to_recorded().expect("copy"), *event);
    }
    verify_chain(store.layout(), &scan_everything(&*store, 0, u64::MAX).await);
    // Scans dropped after their first batch, more of them than a store keeps read connections, leave the
    // store readable.
    for _ in 0..10 {
        let mut scan = eventlog::scan(&*store, 0, u64::MAX).await.expect("open a scan");
        let first = scan.next().await.expect("a batch").expect("scan");
        assert_eq!(first.get(0).map(|view| view.position), Some(at[0]));
    }
    assert_eq!(store.read_all(0, 5).await.expect("read").len(), 5);
}

/// Pages of thousands of events (which a backend may fetch in parts) must be gapless prefixes of what is left
/// of the log, also while appends keep moving the head inside the page being read.
pub(crate) async fn large_read_all_pages_stay_dense_while_appends_run<H: Harness>(harness: &H) {
    const BATCHES: usize = 6;
    let store = harness.open().await;
    let dense = store.layout().positions_dense();
    let writer_store = Arc::clone(&store);
    let writer = tokio::spawn(async move {
        for batch in 0..BATCHES {
            let events: Vec<NewEvent> = (0..BATCH_EVENTS_MAX)
                .map(|index| event(&format!("{batch}.{index}")))
                .collect();
            writer_store
                .append(&stream(&format!("payment-{batch}")), ExpectedRevision::NoStream, events)
                .await
                .expect("append");
        }
    });
    let total = BATCHES * BATCH_EVENTS_MAX;
    let mut next = 1;
    let mut read_so_far = 0;
    let started = Instant::now();
    while read_so_far < total {
        assert!(started.elapsed() < Duration::from_secs(60), "reader stuck at {next}");
        let page = store
            .read_all(next, 4_000)
            .await
            .expect("a gapless page, never Corrupt");
        if let Some(last) = page.last() {
            if dense {
                assert_eq!(page[0].position, next);
            }
            assert_eq!(page.len() % BATCH_EVENTS_MAX, 0, "whole appends only");
            read_so_far += page.len();
            next = last.position + 1;
        } else {
            tokio::task::yield_now().await;
        }
    }
    writer.await.expect("writer");
    let at: Vec<u64> = store
        .read_all(0, 10_000)
        .await
        .expect("read")
        .iter()
        .map(|event| event.position)
        .collect();
    assert_eq!(at, positions(&*store).await);
    assert_eq!(at.len(), total);
    let tail = store.read_all(at[total - 100], 10_000).await.expect("read");
    assert_eq!(tail.len(), 100, "a short first part ends the page");
    let middle = store.read_all(at[1_000], 3_001).await.expect("read");
    assert_eq!(
        middle.iter().map(|event| event.position).collect::<Vec<_>>(),
        at[1_000..4_001]
    );
}

pub(crate) async fn read_stream_honours_from_revision_and_limit<H: Harness>(harness: &H) {
    let store = harness.open().await;
    let payment = stream("payment-1");
    let other = stream("payment-2");
    for index in 0..5 {
        store
            .append(&payment, ExpectedRevision::Any, vec![event(&index.to_string())])
            .await
            .expect("append");
        store
            .append(&other, ExpectedRevision::Any, vec![event(&index.to_string())])
            .await
            .expect("append");
    }
    let revisions = |events: Vec<RecordedEvent>| events.iter().map(|event| event.revision).collect::<Vec<_>>();
    assert_eq!(
        revisions(store.read_stream(&payment, 0, 100).await.expect("read")),
        vec![0, 1, 2, 3, 4]
    );
    assert_eq!(
        revisions(store.read_stream(&payment, 2, 100).await.expect("read")),
        vec![2, 3, 4]
    );
    assert_eq!(
        revisions(store.read_stream(&payment, 1, 2).await.expect("read")),
        vec![1, 2]
    );
    assert!(store.read_stream(&payment, 5, 10).await.expect("read").is_empty());
    assert!(
        store
            .read_stream(&stream("payment-unknown"), 0, 10)
            .await
            .expect("read")
            .is_empty()
    );
    let stored = store.read_stream(&payment, 0, 100).await.expect("read");
    assert!(
        stored.iter().all(|event| event.stream == payment),
        "only the stream asked for"
    );
    assert_eq!(
        stored.iter().map(|event| event.position).collect::<Vec<_>>(),
        positions(&*store).await.into_iter().step_by(2).collect::<Vec<_>>()
    );
}

pub(crate) async fn waiting_wakes_on_appends_from_this_and_other_handles<H: Harness>(harness: &H) {
    let waiter = harness.open().await;
    let other = harness.open().await;

    let started = Instant::now();
    let head = waiter
        .wait_for_position_after(0, Duration::from_millis(150))
        .await
        .expect("wait");
    assert_eq!(head.position, 0, "a timeout returns the unchanged head");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "it waited the whole timeout"
    );

    let local = Arc::clone(&waiter);
    let appender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        local
            .append(&stream("payment-1"), ExpectedRevision::Any, vec![event("local")])
            .await
            .expect("append");
    });
    let head = waiter
        .wait_for_position_after(0, Duration::from_secs(10))
        .await
        .expect("wait");
    appender.await.expect("appender");
    let first = positions(&*waiter).await;
    assert_eq!(head.position, first[0], "woken by this handle's append");

    let started = Instant::now();
    let remote = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        other
            .append(&stream("payment-1"), ExpectedRevision::Any, vec![event("remote")])
            .await
            .expect("append");
    });
    let head = waiter
        .wait_for_position_after(first[0], Duration::from_secs(10))
        .await
        .expect("wait");
    assert_eq!(
        Some(head.position),
        positions(&*waiter).await.get(1).copied(),
        "woken by another handle's append"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "within the poll interval, not the timeout"
    );
    remote.await.expect("remote appender");
}

pub(crate) async fn subscription_starts_mid_log_and_follows_new_events<H: Harness>(harness: &H) {
    let store = harness.open().await;
    for index in 0..5 {
        store
            .append(
                &stream("payment-1"),
                ExpectedRevision::Any,
                vec![event(&index.to_string())],
            )
            .await
            .expect("append");
    }
    let at = positions(&*store).await;
    let dyn_store: Arc<dyn EventStore> = store.clone();
    let mut subscription = eventlog::catch_up(dyn_store, at[3]);
    let mut delivered = Vec::new();
    for _ in 0..2 {
        delivered.push(subscription.next().await.expect("open").expect("event").position);
    }
    assert_eq!(delivered, at[3..5]);
    store
        .append(&stream("payment-2"), ExpectedRevision::Any, vec![event("late")])
        .await
        .expect("append");
    let late = tokio::time::timeout(Duration::from_secs(10), subscription.next()).await;
    let late = late.expect("the new event arrives").expect("open").expect("event");
    let at = positions(&*store).await;
    assert_eq!((late.position, late.stream.as_str()), (at[5], "payment-2"));
}
