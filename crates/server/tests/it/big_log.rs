//! A large, valid log written straight to the EventStore in full batches (much faster than through the
//! service): payments of `REFUNDS_PER_PAYMENT` succeeded refunds each, in USD and JPY. Shared by the
//! export memory test and `benches/export.rs`.

use domain::{Currency, Money, OutcomeSource, PaymentEvent, PaymentId, PaymentMethodType, PaymentRecorded};
use domain::{RefundId, RefundRequestId, RefundRequested, RefundSucceeded};
use eventlog::{EventStore, ExpectedRevision, NewEvent, StreamName};
use time::OffsetDateTime;

/// Refunds per payment: `1 + 2 * 499` events fill one append of `BATCH_EVENTS_MAX` (1,000) events.
pub(crate) const REFUNDS_PER_PAYMENT: u64 = 499;

fn new_event(event: &PaymentEvent) -> NewEvent {
    let stored = event.to_stored();
    NewEvent {
        event_id: uuid::Uuid::new_v4(),
        event_type: stored.event_type.to_owned(),
        schema_version: stored.schema_version,
        payload: stored.data,
        actor: "bench".to_owned(),
    }
}

/// Appends payments until `refunds` succeeded refunds (each two journal lines) are in the log.
pub(crate) async fn write(store: &dyn EventStore, refunds: u64) {
    let time = OffsetDateTime::from_unix_timestamp(1_793_491_200).unwrap();
    let payments = refunds.div_ceil(REFUNDS_PER_PAYMENT);
    for payment in 0..payments {
        let currency = Currency::parse("c", if payment % 2 == 0 { "USD" } else { "JPY" }).unwrap();
        let payment_id = PaymentId::parse(&format!("BIG-{payment}")).unwrap();
        let count = REFUNDS_PER_PAYMENT.min(refunds - payment * REFUNDS_PER_PAYMENT);
        let mut events = vec![new_event(&PaymentEvent::PaymentRecorded(PaymentRecorded {
            payment_id: payment_id.clone(),
            payment_amount: Money::from_minor_units("p", currency, 1_000_000).unwrap(),
            payment_method_type: PaymentMethodType::parse("ALIPAY_CN").unwrap(),
            payment_time: time,
            capture_required: false,
        }))];
        for refund in 0..count {
            let refund_request_id = RefundRequestId::parse(&format!("BIG-{payment}-{refund}")).unwrap();
            events.push(new_event(&PaymentEvent::RefundRequested(RefundRequested {
                refund_request_id: refund_request_id.clone(),
                payment_id: payment_id.clone(),
                refund_amount: Money::from_minor_units("r", currency, 100 + refund).unwrap(),
                refund_reason: None,
                requested_at: time,
            })));
            events.push(new_event(&PaymentEvent::RefundSucceeded(RefundSucceeded {
                refund_request_id,
                refund_id: RefundId::parse(&format!("A-{payment}-{refund}")).unwrap(),
                refund_time: time,
                source: OutcomeSource::RefundResponse,
            })));
        }
        let stream = StreamName::parse(domain::payment_stream_name(&payment_id)).unwrap();
        store.append(&stream, ExpectedRevision::NoStream, events).await.unwrap();
    }
}
