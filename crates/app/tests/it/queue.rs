//! The per-payment command queue under real concurrency, on both stores: many commands on one payment in one
//! instance are decided one after another (never a conflict, never an over-refund), two instances on one payment
//! still serialise through the log, an answer that writes nothing is never given from a stale fold, a
//! refundRequestId raced onto two payments is accepted once, and callers that go away leave nothing half done.
//! An outcome report on a refund the fold holds as final (Antom's notification after its answer was recorded)
//! is the one answer that writes nothing given without reading the stream.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use app::{Ledger, NOTIFY_ACTOR, RefundResult};
use async_trait::async_trait;
use domain::{Payment, PaymentEvent, PaymentId, RefundStatus, ResultCode, ResultStatus};
use eventlog::{
    AppendOutcome, EventStore, ExpectedRevision, Head, LocalCommit, LogLayout, NewEvent, RecordedEvent, ScanReceiver,
    StoreError, StreamName,
};

use crate::helpers::{Backend, Harness, payment_id, refund_id, refund_input, refund_notification, usd};

/// Refunds raced onto one payment: more than it can take.
const RACERS: usize = 120;
/// The payment's amount, in refunds of one unit each.
const ROOM: u64 = 90;
const REFUND_MINOR_UNITS: u64 = 100;

/// Sends `RACERS` refunds of one unit at once, spread over `ledgers`, and counts the answers.
async fn race(ledgers: &[Ledger], payment: &PaymentId, prefix: &str) -> HashMap<(ResultStatus, ResultCode), usize> {
    let mut tasks = Vec::new();
    for index in 0..RACERS {
        let ledger = ledgers[index % ledgers.len()].clone();
        let input = refund_input(&format!("{prefix}-{index}"), payment, usd(REFUND_MINOR_UNITS));
        tasks.push(tokio::spawn(async move { ledger.refund("op", input).await }));
    }
    let mut answers = HashMap::new();
    for task in tasks {
        let answer: RefundResult = task.await.expect("task").expect("answered");
        *answers.entry((answer.result.status, answer.result.code)).or_insert(0) += 1;
    }
    answers
}

/// Folds the payment's stream event by event, checking the balance invariant at every position, and returns
/// the refunds' final statuses.
async fn replayed_statuses(harness: &Harness, payment: &PaymentId) -> HashMap<RefundStatus, usize> {
    let stream = StreamName::parse(domain::payment_stream_name(payment)).unwrap();
    let recorded = harness.store.read_stream(&stream, 0, 10_000).await.unwrap();
    let mut folded = Payment::Unknown;
    let mut requested = std::collections::HashSet::new();
    for event in &recorded {
        let event = PaymentEvent::from_stored(&event.event_type, event.schema_version, &event.payload, &[]).unwrap();
        if let PaymentEvent::RefundRequested(request) = &event {
            assert!(
                requested.insert(request.refund_request_id.clone()),
                "{} requested twice",
                request.refund_request_id
            );
        }
        folded = domain::evolve(folded, &event).expect("every position folds within the invariant");
    }
    let mut statuses = HashMap::new();
    for refund in folded.state().expect("payment").refunds.values() {
        *statuses.entry(refund.status).or_insert(0) += 1;
    }
    statuses
}

/// Exactly `ROOM` refunds were accepted (S, or U when Antom's answer was late under this load and the worker
/// settles it) and the rest refused for the amount.
fn assert_exactly_room_accepted(answers: &HashMap<(ResultStatus, ResultCode), usize>) {
    let accepted: usize = answers
        .iter()
        .filter(|((status, _), _)| matches!(status, ResultStatus::S | ResultStatus::U))
        .map(|(_, count)| count)
        .sum();
    let exceeded = answers
        .get(&(ResultStatus::F, ResultCode::RefundAmountExceed))
        .copied()
        .unwrap_or(0);
    assert_eq!(
        (accepted, exceeded),
        (ROOM as usize, RACERS - ROOM as usize),
        "{answers:?}"
    );
}

/// Lets the settle worker finish what Antom answered late, until nothing is open.
async fn settle_everything(harness: &Harness, ledger: &Ledger) {
    for _ in 0..20 {
        harness.age_refunds().await;
        let report = ledger
            .settle_open_refunds(std::time::Duration::from_secs(5))
            .await
            .unwrap();
        if report.examined == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("refunds still open after 20 worker passes");
}

async fn one_instance_never_conflicts(backend: Backend) {
    let harness = Harness::start(backend).await;
    let payment = harness.payment("P-HOT", ROOM * REFUND_MINOR_UNITS).await;
    let ledger = harness.ledger.clone();
    let conflicts_before = ledger.conflict_retries();
    let answers = race(std::slice::from_ref(&ledger), &payment, "R").await;
    assert_exactly_room_accepted(&answers);
    assert_eq!(
        ledger.conflict_retries(),
        conflicts_before,
        "commands on one payment in one instance never race through the log"
    );
    settle_everything(&harness, &ledger).await;
    let statuses = replayed_statuses(&harness, &payment).await;
    assert_eq!(statuses.get(&RefundStatus::Succeeded), Some(&(ROOM as usize)));
    assert_eq!(statuses.get(&RefundStatus::Rejected), Some(&(RACERS - ROOM as usize)));
    let totals = harness.simulator().totals(&payment).unwrap();
    assert_eq!(
        (totals.refund_count, totals.succeeded_minor_units),
        (ROOM as usize, ROOM * REFUND_MINOR_UNITS),
        "Antom refunded exactly what the ledger did"
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_refunds_on_one_payment_in_one_instance_never_conflict_on_sqlite() {
    one_instance_never_conflicts(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_refunds_on_one_payment_in_one_instance_never_conflict_on_postgres() {
    one_instance_never_conflicts(Backend::Postgres).await;
}

async fn two_instances_never_over_refund(backend: Backend) {
    let harness = Harness::start(backend).await;
    let payment = harness.payment("P-HOT2", ROOM * REFUND_MINOR_UNITS).await;
    // A second handle on the same database (SQLite: on the same file), as another server instance holds.
    let ledgers = [harness.ledger.clone(), harness.ledger_on(harness.second_store().await)];
    let answers = race(&ledgers, &payment, "R").await;
    assert_exactly_room_accepted(&answers);
    settle_everything(&harness, &ledgers[0]).await;
    let statuses = replayed_statuses(&harness, &payment).await;
    assert_eq!(statuses.get(&RefundStatus::Succeeded), Some(&(ROOM as usize)));
    let totals = harness.simulator().totals(&payment).unwrap();
    assert_eq!(totals.succeeded_minor_units, ROOM * REFUND_MINOR_UNITS);
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_hot_payment_never_over_refund_on_sqlite() {
    two_instances_never_over_refund(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_hot_payment_never_over_refund_on_postgres() {
    two_instances_never_over_refund(Backend::Postgres).await;
}

/// An instance that knows a payment as unknown must not refuse a refund with `ORDER_NOT_EXIST` after another
/// instance recorded the payment: a decision that writes nothing is checked against a fresh read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_never_decided_on_a_stale_fold() {
    let harness = Harness::start(Backend::Postgres).await;
    let first = harness.ledger.clone();
    let second = harness.ledger_on(harness.second_store().await);
    let late = payment_id("P-LATE");
    assert!(
        first.payment(&late).await.unwrap().is_none(),
        "unknown to the first instance"
    );
    let early = first
        .refund("op", refund_input("R-EARLY", &late, usd(100)))
        .await
        .unwrap();
    assert_eq!(early.result.code, ResultCode::OrderNotExist);

    // The payment is recorded through the second instance (and made known to Antom).
    harness.payment_through(&second, "P-LATE", 1_000).await;
    let answer = first
        .refund("op", refund_input("R-LATE", &late, usd(100)))
        .await
        .unwrap();
    assert_eq!(answer.result.status, ResultStatus::S, "{:?}", answer.result);
    assert!(answer.position > 0);
    harness.finish().await;
}

/// One refundRequestId sent to two payments at once by many callers: one payment gets it, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_request_id_raced_onto_two_payments_is_accepted_once() {
    let harness = Harness::start(Backend::Postgres).await;
    let left = harness.payment("P-LEFT", 10_000).await;
    let right = harness.payment("P-RIGHT", 10_000).await;
    let ledgers = [harness.ledger.clone(), harness.ledger_on(harness.second_store().await)];
    let mut tasks = Vec::new();
    for index in 0..40 {
        let ledger = ledgers[index % 2].clone();
        let payment = if index % 4 < 2 { left.clone() } else { right.clone() };
        let input = refund_input("R-TWICE", &payment, usd(700));
        tasks.push(tokio::spawn(async move { (payment, ledger.refund("op", input).await) }));
    }
    let mut accepted_on = std::collections::HashSet::new();
    for task in tasks {
        let (payment, answer) = task.await.unwrap();
        let answer = answer.unwrap();
        match (answer.result.status, &answer.result.code) {
            // U: a repeat answered while the first request was still with Antom.
            (ResultStatus::S | ResultStatus::U, _) => {
                accepted_on.insert(payment);
            }
            (ResultStatus::F, ResultCode::RepeatReqInconsistent) => {}
            other => panic!("unexpected answer {other:?}: {}", answer.result.message),
        }
    }
    assert_eq!(accepted_on.len(), 1, "one payment holds R-TWICE");
    let totals_left = harness.simulator().totals(&left).unwrap().refund_count;
    let totals_right = harness.simulator().totals(&right).unwrap().refund_count;
    assert_eq!(totals_left + totals_right, 1, "Antom refunded R-TWICE once");
    harness.finish().await;
}

/// Callers that stop waiting (a closed HTTP connection) do not stop the payment's queue: what was decided is
/// recorded whole, the invariant holds, and the payment takes new commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_go_away_leave_nothing_half_done() {
    let harness = Harness::start(Backend::Sqlite).await;
    let payment = harness.payment("P-GONE", ROOM * REFUND_MINOR_UNITS).await;
    let mut tasks = Vec::new();
    for index in 0..40 {
        let ledger = harness.ledger.clone();
        let input = refund_input(&format!("R-GONE-{index}"), &payment, usd(REFUND_MINOR_UNITS));
        tasks.push(tokio::spawn(async move { ledger.refund("op", input).await }));
    }
    for (index, task) in tasks.iter().enumerate() {
        if index % 2 == 0 {
            task.abort();
        }
    }
    for task in tasks {
        if let Ok(answer) = task.await {
            answer.expect("an answered caller gets an answer, not an error");
        }
    }
    let statuses = replayed_statuses(&harness, &payment).await;
    let recorded: usize = statuses.values().sum();
    assert!(recorded >= 20, "every caller that waited was recorded: {statuses:?}");
    let after = harness
        .ledger
        .refund("op", refund_input("R-AFTER", &payment, usd(REFUND_MINOR_UNITS)))
        .await
        .unwrap();
    assert_eq!(after.result.status, ResultStatus::S, "{:?}", after.result);
    harness.finish().await;
}

/// A store that counts the stream reads made through it.
struct CountingStreamReads {
    inner: Arc<dyn EventStore>,
    stream_reads: AtomicUsize,
}

impl CountingStreamReads {
    fn reads(&self) -> usize {
        self.stream_reads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl EventStore for CountingStreamReads {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.inner.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from_revision: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.stream_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read_stream(stream, from_revision, limit).await
    }

    async fn read_all(&self, from_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(from_position, limit).await
    }

    async fn open_scan(&self, from_position: u64, to_position: u64) -> Result<Option<ScanReceiver>, StoreError> {
        self.inner.open_scan(from_position, to_position).await
    }

    async fn head(&self) -> Result<Head, StoreError> {
        self.inner.head().await
    }

    async fn wait_for_position_after(&self, position: u64, timeout: Duration) -> Result<Head, StoreError> {
        self.inner.wait_for_position_after(position, timeout).await
    }

    fn local_commits(&self) -> Option<tokio::sync::broadcast::Receiver<LocalCommit>> {
        self.inner.local_commits()
    }

    fn layout(&self) -> LogLayout {
        self.inner.layout()
    }
}

/// Antom's notification of a refund whose answer is recorded already decides nothing new on any later state of
/// the stream (a final refund never changes), so it is answered from the fold without a read; a contradicting
/// one is still recorded as an anomaly, and a read of the payment still reads the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_on_a_final_refund_is_answered_without_reading_the_stream() {
    let harness = Harness::start(Backend::Sqlite).await;
    let store = Arc::new(CountingStreamReads {
        inner: Arc::clone(&harness.store),
        stream_reads: AtomicUsize::new(0),
    });
    let ledger = harness.ledger_on(Arc::clone(&store) as Arc<dyn EventStore>);
    let payment = harness.payment_through(&ledger, "P-FINAL", 1_000).await;
    let answer = ledger
        .refund("op", refund_input("R-FINAL", &payment, usd(100)))
        .await
        .unwrap();
    assert_eq!(answer.result.status, ResultStatus::S, "{:?}", answer.result);
    let state = ledger.payment(&payment).await.unwrap().unwrap();
    let refund = state.refunds.get(&refund_id("R-FINAL")).unwrap().clone();
    let antom_refund_id = refund.refund_id.clone().unwrap();

    let reads = store.reads();
    let repeat = apo::notification::RefundNotificationOutcome::Succeeded {
        refund_id: antom_refund_id,
        refund_time: time::OffsetDateTime::now_utc(),
    };
    let position = ledger
        .apply_refund_notification(NOTIFY_ACTOR, &refund_notification("R-FINAL", repeat))
        .await
        .unwrap();
    assert_eq!(store.reads(), reads, "the repeat was answered from the fold");
    assert_eq!(position, answer.position, "and wrote nothing");

    let contradiction = apo::notification::RefundNotificationOutcome::Failed {
        refund_id: None,
        code: ResultCode::ProcessFail,
        message: "failed".to_owned(),
    };
    let anomaly = ledger
        .apply_refund_notification(NOTIFY_ACTOR, &refund_notification("R-FINAL", contradiction.clone()))
        .await
        .unwrap();
    assert!(anomaly > position, "a contradicting report is recorded");
    let again = ledger
        .apply_refund_notification(NOTIFY_ACTOR, &refund_notification("R-FINAL", contradiction))
        .await
        .unwrap();
    assert_eq!(again, anomaly, "once");
    assert_eq!(store.reads(), reads, "neither needed a read");

    let state = ledger.payment(&payment).await.unwrap().unwrap();
    assert!(store.reads() > reads, "a read of the payment still reads the stream");
    let refund = state.refunds.get(&refund_id("R-FINAL")).unwrap();
    assert_eq!(refund.status, RefundStatus::Succeeded);
    assert_eq!(refund.anomalies.len(), 1);
    harness.finish().await;
}
