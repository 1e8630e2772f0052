//! The folds event by event, as the runner and audit replay apply them.

use domain::{
    ChargebackOpened, ChargebackResolution, Currency, DisputeId, Money, PaymentCaptured, PaymentEvent, PaymentId,
    PaymentMethodType, PaymentRecorded, RefundProcessing, RefundRequestId, RefundRequested, RefundStatus,
    RefundSucceeded,
};
use eventlog::{RecordedEvent, StreamName};
use time::macros::{date, datetime};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::{Batch, BatchFold, Envelope};
use crate::error::ProjectionError;
use crate::model::PaymentStatus;

const PAID_AT: OffsetDateTime = datetime!(2026-03-01 09:00 UTC);

fn usd(minor_units: u64) -> Money {
    Money::from_minor_units("amount", Currency::parse("currency", "USD").unwrap(), minor_units).unwrap()
}

fn payment_id(id: &str) -> PaymentId {
    PaymentId::parse(id).unwrap()
}

fn refund_id(id: &str) -> RefundRequestId {
    RefundRequestId::parse(id).unwrap()
}

fn envelope(position: u64, payment: &str, event: PaymentEvent) -> Envelope {
    Envelope {
        position,
        payment_id: payment_id(payment),
        revision: position,
        recorded_at: PAID_AT + time::Duration::minutes(i64::try_from(position).unwrap()),
        actor: "tester".to_owned(),
        event,
    }
}

fn recorded(payment: &str, amount: u64, capture_required: bool) -> PaymentEvent {
    PaymentEvent::PaymentRecorded(PaymentRecorded {
        payment_id: payment_id(payment),
        payment_amount: usd(amount),
        payment_method_type: PaymentMethodType::parse("CARD").unwrap(),
        payment_time: PAID_AT,
        capture_required,
    })
}

fn requested(payment: &str, refund: &str, amount: u64, at: OffsetDateTime) -> PaymentEvent {
    PaymentEvent::RefundRequested(RefundRequested {
        refund_request_id: refund_id(refund),
        payment_id: payment_id(payment),
        refund_amount: usd(amount),
        refund_reason: None,
        requested_at: at,
    })
}

fn processing(refund: &str) -> PaymentEvent {
    PaymentEvent::RefundProcessing(RefundProcessing {
        refund_request_id: refund_id(refund),
        reason: "timeout".to_owned(),
        recorded_at: PAID_AT,
    })
}

fn succeeded(refund: &str, at: OffsetDateTime) -> PaymentEvent {
    PaymentEvent::RefundSucceeded(RefundSucceeded {
        refund_request_id: refund_id(refund),
        refund_id: domain::RefundId::parse("antom-1").unwrap(),
        refund_time: at,
        source: domain::OutcomeSource::Inquiry,
    })
}

fn deltas(fold: &BatchFold) -> Vec<(Date, RefundStatus, i64, i64)> {
    fold.daily_deltas()
        .map(|(key, delta)| (key.date, key.status.0, delta.count, delta.amount_minor_units))
        .collect()
}

#[test]
fn balances_follow_requests_and_outcomes() {
    let late_evening = datetime!(2026-03-02 23:59 UTC);
    let mut fold = BatchFold::default();
    fold.apply(&envelope(1, "p1", recorded("p1", 1_000, true))).unwrap();
    assert_eq!(
        fold.payment(&payment_id("p1")).unwrap().status(),
        PaymentStatus::AwaitingCapture
    );
    let capture = PaymentEvent::PaymentCaptured(PaymentCaptured {
        payment_id: payment_id("p1"),
        capture_id: None,
        capture_amount: usd(800),
        capture_time: PAID_AT,
    });
    fold.apply(&envelope(2, "p1", capture)).unwrap();
    fold.apply(&envelope(3, "p1", requested("p1", "r1", 300, late_evening)))
        .unwrap();
    let row = fold.payment(&payment_id("p1")).unwrap();
    assert_eq!(
        (row.captured, row.pending, row.refundable()),
        (usd(800), usd(300), usd(500))
    );
    assert_eq!(
        (row.status(), row.refund_count, row.last_position),
        (PaymentStatus::PartiallyRefunded, 1, 3)
    );
    fold.apply(&envelope(4, "p1", processing("r1"))).unwrap();
    fold.apply(&envelope(5, "p1", succeeded("r1", datetime!(2026-03-03 08:00 UTC))))
        .unwrap();
    let row = fold.payment(&payment_id("p1")).unwrap();
    assert_eq!(
        (row.refunded, row.pending, row.refundable()),
        (usd(300), usd(0), usd(500))
    );
    let refund = fold.refund(&refund_id("r1")).unwrap();
    assert_eq!(
        (refund.status, refund.last_position, refund.requested_by.as_str()),
        (RefundStatus::Succeeded, 5, "tester")
    );
    // Requested, processing and succeeded in one batch: only the final status counts, under the
    // requested date (not the settled one).
    assert_eq!(
        deltas(&fold),
        vec![(date!(2026 - 03 - 02), RefundStatus::Succeeded, 1, 300)]
    );
    assert_eq!(fold.changed_refunds().count(), 1);
    assert_eq!(fold.last_position(), Some(5));
}

#[test]
fn a_status_change_moves_the_daily_total_between_statuses() {
    let mut first = BatchFold::default();
    first.apply(&envelope(1, "p1", recorded("p1", 1_000, false))).unwrap();
    first
        .apply(&envelope(2, "p1", requested("p1", "r1", 400, PAID_AT)))
        .unwrap();
    first.apply(&envelope(3, "p1", processing("r1"))).unwrap();
    assert_eq!(
        deltas(&first),
        vec![(date!(2026 - 03 - 01), RefundStatus::Processing, 1, 400)]
    );

    let stored_payment = first.payment(&payment_id("p1")).unwrap().clone();
    let stored_refund = first.refund(&refund_id("r1")).unwrap().clone();
    let mut second = BatchFold::new(vec![stored_payment], vec![stored_refund]);
    second
        .apply(&envelope(4, "p1", succeeded("r1", datetime!(2026-03-05 08:00 UTC))))
        .unwrap();
    assert_eq!(
        deltas(&second),
        vec![
            (date!(2026 - 03 - 01), RefundStatus::Processing, -1, -400),
            (date!(2026 - 03 - 01), RefundStatus::Succeeded, 1, 400),
        ]
    );
    // A second success report changes nothing (the aggregate records it as an anomaly instead).
    second.apply(&envelope(5, "p1", succeeded("r1", PAID_AT))).unwrap();
    assert_eq!(second.payment(&payment_id("p1")).unwrap().refunded, usd(400));
    assert_eq!(second.refund(&refund_id("r1")).unwrap().last_position, 4);
}

#[test]
fn a_chargeback_blocks_until_resolved_and_a_lost_one_is_not_refundable() {
    let mut fold = BatchFold::default();
    fold.apply(&envelope(1, "p1", recorded("p1", 1_000, false))).unwrap();
    let opened = PaymentEvent::ChargebackOpened(ChargebackOpened {
        payment_id: payment_id("p1"),
        dispute_id: DisputeId::parse("d1").unwrap(),
        dispute_amount: usd(600),
        opened_at: PAID_AT,
    });
    fold.apply(&envelope(2, "p1", opened)).unwrap();
    assert_eq!(
        fold.payment(&payment_id("p1")).unwrap().status(),
        PaymentStatus::InDispute
    );
    let resolved = PaymentEvent::ChargebackResolved(domain::ChargebackResolved {
        payment_id: payment_id("p1"),
        dispute_id: DisputeId::parse("d1").unwrap(),
        resolution: ChargebackResolution::CustomerWon,
        resolved_at: PAID_AT,
    });
    fold.apply(&envelope(3, "p1", resolved)).unwrap();
    let row = fold.payment(&payment_id("p1")).unwrap();
    assert_eq!(
        (row.status(), row.charged_back, row.refundable()),
        (PaymentStatus::Refundable, usd(600), usd(400))
    );
}

#[test]
fn events_the_aggregate_ignores_change_no_balance() {
    let mut fold = BatchFold::default();
    // Before PaymentRecorded: nothing to apply it to.
    fold.apply(&envelope(1, "p1", requested("p1", "r0", 10, PAID_AT)))
        .unwrap();
    assert!(fold.payment(&payment_id("p1")).is_none() && fold.refund(&refund_id("r0")).is_none());
    fold.apply(&envelope(2, "p1", recorded("p1", 1_000, false))).unwrap();
    fold.apply(&envelope(3, "p2", recorded("p2", 1_000, false))).unwrap();
    fold.apply(&envelope(4, "p1", requested("p1", "r1", 100, PAID_AT)))
        .unwrap();
    // An outcome in p2's stream for p1's refund: the aggregate of p2 does not know r1.
    fold.apply(&envelope(5, "p2", succeeded("r1", PAID_AT))).unwrap();
    assert_eq!(fold.refund(&refund_id("r1")).unwrap().status, RefundStatus::Requested);
    assert_eq!(fold.payment(&payment_id("p2")).unwrap().refunded, usd(0));
    // A second PaymentRecorded is ignored too.
    fold.apply(&envelope(6, "p1", recorded("p1", 9_999, false))).unwrap();
    assert_eq!(fold.payment(&payment_id("p1")).unwrap().payment_amount, usd(1_000));
}

#[test]
fn contradictions_are_refused_and_leave_the_fold_unchanged() {
    let mut fold = BatchFold::default();
    fold.apply(&envelope(1, "p1", recorded("p1", 1_000, false))).unwrap();
    fold.apply(&envelope(2, "p2", recorded("p2", 1_000, false))).unwrap();
    fold.apply(&envelope(3, "p1", requested("p1", "r1", 100, PAID_AT)))
        .unwrap();
    let before = (
        fold.payment(&payment_id("p2")).cloned(),
        fold.refund(&refund_id("r1")).cloned(),
    );
    let reused = fold.apply(&envelope(4, "p2", requested("p2", "r1", 100, PAID_AT)));
    assert!(
        matches!(reused, Err(ProjectionError::Inconsistent { position: 4, .. })),
        "{reused:?}"
    );
    let foreign = fold.apply(&envelope(5, "p2", requested("p1", "r2", 100, PAID_AT)));
    assert!(
        matches!(foreign, Err(ProjectionError::Inconsistent { position: 5, .. })),
        "{foreign:?}"
    );
    let backwards = fold.apply(&envelope(3, "p2", processing("r1")));
    assert!(
        matches!(backwards, Err(ProjectionError::Inconsistent { position: 3, .. })),
        "{backwards:?}"
    );
    // Refused half-way through folding the payment (its position and time were already moved): put back whole.
    let euros = Money::from_minor_units("amount", Currency::parse("currency", "EUR").unwrap(), 100).unwrap();
    let other_currency = PaymentEvent::RefundRequested(RefundRequested {
        refund_request_id: refund_id("r3"),
        payment_id: payment_id("p2"),
        refund_amount: euros,
        refund_reason: None,
        requested_at: PAID_AT,
    });
    let mismatched = fold.apply(&envelope(6, "p2", other_currency));
    assert!(
        matches!(mismatched, Err(ProjectionError::Inconsistent { position: 6, .. })),
        "{mismatched:?}"
    );
    assert!(fold.refund(&refund_id("r3")).is_none());
    assert_eq!(
        (
            fold.payment(&payment_id("p2")).cloned(),
            fold.refund(&refund_id("r1")).cloned()
        ),
        before
    );
    assert_eq!(fold.last_position(), Some(3));
}

#[test]
fn an_outcome_refused_half_way_leaves_its_refund_as_it_was() {
    let mut setup = BatchFold::default();
    setup.apply(&envelope(1, "p1", recorded("p1", 1_000, false))).unwrap();
    setup
        .apply(&envelope(2, "p1", requested("p1", "r1", 100, PAID_AT)))
        .unwrap();
    let consistent_payment = setup.payment(&payment_id("p1")).cloned().unwrap();
    let refund = setup.refund(&refund_id("r1")).cloned().unwrap();
    // Stored rows that contradict each other: a pending refund of 100 on a payment with nothing pending, so
    // the success is refused after the refund was found (and would have changed).
    let mut payment = consistent_payment.clone();
    payment.pending = usd(0);
    let mut fold = BatchFold::new(vec![payment.clone()], vec![refund.clone()]);
    let refused = fold.apply(&envelope(3, "p1", succeeded("r1", PAID_AT)));
    assert!(
        matches!(refused, Err(ProjectionError::Inconsistent { position: 3, .. })),
        "{refused:?}"
    );
    assert_eq!(fold.refund(&refund_id("r1")), Some(&refund));
    assert_eq!(fold.payment(&payment_id("p1")), Some(&payment));
    assert_eq!(fold.changed_refunds().count(), 0);
    assert_eq!(fold.changed_payments().count(), 0);
    assert_eq!(fold.daily_deltas().count(), 0);
    // The same outcome on consistent rows changes the refund where it is held.
    let mut fold = BatchFold::new(vec![consistent_payment], vec![refund]);
    fold.apply(&envelope(3, "p1", succeeded("r1", PAID_AT))).unwrap();
    let settled = fold.refund(&refund_id("r1")).unwrap();
    assert_eq!((settled.status, settled.last_position), (RefundStatus::Succeeded, 3));
    assert_eq!(fold.changed_refunds().count(), 1);
    assert_eq!(
        deltas(&fold),
        vec![
            (PAID_AT.date(), RefundStatus::Requested, -1, -100),
            (PAID_AT.date(), RefundStatus::Succeeded, 1, 100),
        ]
    );
}

#[test]
fn batches_must_continue_from_the_stored_checkpoint() {
    let batch = Batch {
        after_position: 10,
        last_position: 12,
        events: vec![envelope(12, "p1", recorded("p1", 1, false))],
        reconciliations: Vec::new(),
    };
    assert!(batch.check(10).is_ok());
    assert!(matches!(
        batch.check(11),
        Err(ProjectionError::CheckpointMoved {
            expected: 10,
            actual: 11
        })
    ));
    let outside = Batch {
        last_position: 11,
        ..batch.clone()
    };
    assert!(matches!(
        outside.check(10),
        Err(ProjectionError::Inconsistent { position: 12, .. })
    ));
}

fn stored(stream: &str, event_type: &str, payload: &[u8]) -> RecordedEvent {
    RecordedEvent {
        position: 7,
        stream: StreamName::parse(stream).unwrap(),
        revision: 0,
        event_id: Uuid::nil(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        payload: payload.to_vec(),
        actor: "tester".to_owned(),
        recorded_at: PAID_AT,
        prev_hash: [0; 32],
        hash: [0; 32],
    }
}

#[test]
fn only_payment_streams_are_decoded_and_a_bad_event_is_an_error() {
    assert_eq!(
        Envelope::decode(&stored("refund-request-r1", "Claimed", b"{}")).unwrap(),
        None
    );
    let stored_event = recorded("p1", 1_000, false).to_stored();
    let decoded = Envelope::decode(&stored("payment-p1", stored_event.event_type, &stored_event.data))
        .unwrap()
        .unwrap();
    assert_eq!((decoded.position, decoded.payment_id.as_str()), (7, "p1"));
    assert!(matches!(
        Envelope::decode(&stored("payment-p1", "PaymentTeleported", b"{}")),
        Err(ProjectionError::Decode { position: 7, .. })
    ));
    assert!(matches!(
        Envelope::decode(&stored("payment-p1", "PaymentRecorded", b"{\"paymentId\":1}")),
        Err(ProjectionError::Decode { position: 7, .. })
    ));
}
