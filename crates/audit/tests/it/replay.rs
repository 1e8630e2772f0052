//! Replay folds in order across many scan batches, and stops at the first event it cannot replay: an event
//! that does not decode, or one the fold refuses, whichever comes first in the log.

use domain::{
    Currency, Money, OutcomeSource, PaymentEvent, PaymentId, PaymentMethodType, PaymentRecorded, RefundId,
    RefundRequestId, RefundRequested, RefundSucceeded,
};
use eventlog::{EventStore, ExpectedRevision, NewEvent, SqliteStore, StreamName};
use projections::Envelope;
use projections::fold::{BatchFold, refund_status_code};
use testkit::log::{new_event, payment_stream};
use time::OffsetDateTime;

/// More refunds than one scan batch holds events, so the rebuild crosses several batches.
const REFUNDS: u64 = 1_500;

fn time() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_793_491_200).unwrap()
}

fn payment_id(payment: u64) -> PaymentId {
    PaymentId::parse(&format!("P{payment}")).unwrap()
}

fn recorded(payment: u64) -> PaymentEvent {
    PaymentEvent::PaymentRecorded(PaymentRecorded {
        payment_id: payment_id(payment),
        payment_amount: Money::from_minor_units("p", Currency::parse("c", "USD").unwrap(), 100_000_000).unwrap(),
        payment_method_type: PaymentMethodType::parse("ALIPAY_CN").unwrap(),
        payment_time: time(),
        capture_required: false,
    })
}

fn requested(payment: u64, refund: &str) -> PaymentEvent {
    PaymentEvent::RefundRequested(RefundRequested {
        refund_request_id: RefundRequestId::parse(refund).unwrap(),
        payment_id: payment_id(payment),
        refund_amount: Money::from_minor_units("r", Currency::parse("c", "USD").unwrap(), 100).unwrap(),
        refund_reason: None,
        requested_at: time(),
    })
}

fn succeeded(refund: &str) -> PaymentEvent {
    PaymentEvent::RefundSucceeded(RefundSucceeded {
        refund_request_id: RefundRequestId::parse(refund).unwrap(),
        refund_id: RefundId::parse(&format!("A-{refund}")).unwrap(),
        refund_time: time(),
        source: OutcomeSource::RefundResponse,
    })
}

async fn append(store: &dyn EventStore, payment: u64, events: Vec<NewEvent>) {
    store
        .append(&payment_stream(&payment_id(payment)), ExpectedRevision::Any, events)
        .await
        .unwrap();
}

/// Two payments whose requests and outcomes alternate, in appends of 100 events; every fifth refund has
/// no outcome.
async fn write_log(store: &dyn EventStore) {
    append(store, 0, vec![new_event(&recorded(0), "test")]).await;
    append(store, 1, vec![new_event(&recorded(1), "test")]).await;
    for chunk in 0..REFUNDS / 50 {
        let payment = chunk % 2;
        let mut events = Vec::new();
        for index in chunk * 50..(chunk + 1) * 50 {
            let refund = format!("R{index}");
            events.push(new_event(&requested(payment, &refund), "test"));
            if index % 5 != 0 {
                events.push(new_event(&succeeded(&refund), "test"));
            }
        }
        append(store, payment, events).await;
    }
}

#[tokio::test]
async fn replay_across_many_batches_equals_folding_event_by_event() {
    let folder = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(folder.path().join("ledger.db")).await.unwrap();
    write_log(&store).await;
    let head = store.head().await.unwrap().position;
    let mut progress = Vec::new();
    let rebuilt = audit::replay::rebuild(&store, head, &mut |position| progress.push(position))
        .await
        .unwrap();
    assert_eq!(progress.last(), Some(&head));
    assert!(progress.windows(2).all(|pair| pair[0] <= pair[1]), "{progress:?}");
    assert_eq!((rebuilt.last_position, rebuilt.events), (head, head));
    assert_eq!((rebuilt.payment_count(), rebuilt.refund_count()), (2, REFUNDS as usize));

    let mut reference = BatchFold::default();
    let mut from = 1;
    loop {
        let page = store.read_all(from, 500).await.unwrap();
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        for event in &page {
            reference.apply(&Envelope::decode(event).unwrap().unwrap()).unwrap();
        }
    }
    let expected: Vec<_> = reference
        .daily_deltas()
        .filter(|(_, delta)| delta.count != 0)
        .map(|(key, delta)| {
            (
                (key.date, key.currency.code(), refund_status_code(key.status.0)),
                (delta.count, delta.amount_minor_units),
            )
        })
        .collect();
    assert_eq!(rebuilt.daily_totals().into_iter().collect::<Vec<_>>(), expected);
    let succeeded = REFUNDS - REFUNDS / 5;
    assert_eq!(
        expected.iter().map(|(_, (count, _))| *count).collect::<Vec<_>>(),
        vec![(REFUNDS / 5) as i64, succeeded as i64]
    );
}

fn undecodable() -> NewEvent {
    NewEvent {
        event_id: uuid::Uuid::new_v4(),
        event_type: "RefundRequested".to_owned(),
        schema_version: 1,
        payload: b"{\"refundRequestId\": 5}".to_vec(),
        actor: "test".to_owned(),
    }
}

/// The position of the first event appended after [`write_log`]'s: two payments and their refunds' events.
const FIRST_AFTER_THE_LOG: u64 = 2 + REFUNDS + REFUNDS - REFUNDS / 5 + 1;

/// The replay error of [`write_log`]'s log followed by `events` (each with its payment), one append each.
async fn replay_error_after_the_log(events: Vec<(u64, NewEvent)>) -> (u64, String) {
    let folder = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(folder.path().join("ledger.db")).await.unwrap();
    write_log(&store).await;
    assert_eq!(store.head().await.unwrap().position + 1, FIRST_AFTER_THE_LOG);
    for (payment, event) in events {
        append(&store, payment, vec![event]).await;
    }
    let head = store.head().await.unwrap().position;
    match audit::replay::rebuild(&store, head, &mut |_| {}).await {
        Err(audit::AuditError::Replay { position, reason }) => (position, reason),
        other => panic!(
            "expected a replay error, got {:?}",
            other.map(|rebuilt| rebuilt.last_position)
        ),
    }
}

#[tokio::test]
async fn replay_stops_at_an_event_that_does_not_decode_after_many_batches() {
    let (position, reason) =
        replay_error_after_the_log(vec![(0, undecodable()), (1, new_event(&requested(1, "after"), "test"))]).await;
    assert_eq!(position, FIRST_AFTER_THE_LOG);
    assert!(reason.contains("RefundRequested"), "{reason}");
}

#[tokio::test]
async fn a_refused_event_before_an_undecodable_one_is_the_error() {
    // R7 is a refund of payment 0 already: requesting it again is refused by the fold, and the
    // undecodable event right after it (in the same scan batch) is never reached.
    let (position, reason) =
        replay_error_after_the_log(vec![(0, new_event(&requested(0, "R7"), "test")), (0, undecodable())]).await;
    assert_eq!(position, FIRST_AFTER_THE_LOG);
    assert!(reason.contains("R7"), "{reason}");
}

#[tokio::test]
async fn other_streams_are_passed_over_but_counted_in_the_position() {
    let folder = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(folder.path().join("ledger.db")).await.unwrap();
    append(&store, 0, vec![new_event(&recorded(0), "test")]).await;
    let claim = StreamName::parse("refund-request-R1").unwrap();
    store
        .append(
            &claim,
            ExpectedRevision::NoStream,
            vec![new_event(&requested(0, "R1"), "test")],
        )
        .await
        .unwrap();
    let head = store.head().await.unwrap().position;
    let rebuilt = audit::replay::rebuild(&store, head, &mut |_| {}).await.unwrap();
    assert_eq!((rebuilt.last_position, rebuilt.events), (2, 1));
    assert_eq!(rebuilt.refund_count(), 0);
}
