//! `refund-ledger demo`: the real decide-then-append loop on the configured
//! store, with a demo card payment.
//!
//! Each command loads the payment's stream, folds it, lets the aggregate
//! decide at the current time, and appends the events with the revision it
//! loaded; a conflict reloads and decides again. Event ids of refund
//! requests are derived from the refundRequestId, so the store refuses a
//! second request with the same id even on another payment.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, bail};
use domain::{
    Money, OutcomeSource, Payment, PaymentCommand, PaymentEvent, PaymentId, PaymentMethodType, Policy, RefundId,
    RefundRequestId, decide, evolve,
};
use eventlog::{EventStore, ExpectedRevision, NewEvent, StoreError, StreamName};
use time::OffsetDateTime;
use uuid::Uuid;

/// Attempts of one command before giving up on a hot stream.
const DECIDE_ATTEMPTS_MAX: usize = 16;
/// Events read per call while loading a stream.
const LOAD_BATCH_EVENTS_MAX: usize = 1_000;
/// Namespace of the UUIDv5 event ids derived from refundRequestIds.
const REFUND_REQUEST_NAMESPACE: Uuid = Uuid::from_u128(0x7e3f_1c2a_9b4d_4e8f_a1c3_5d7e_9f0b_2c4d);
/// The actor recorded on demo events.
const DEMO_ACTOR: &str = "demo";

/// Runs the demo and prints what was stored.
pub(crate) async fn run(store: Arc<dyn EventStore>) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc();
    let suffix = now.unix_timestamp_nanos();
    let payment_id = PaymentId::parse(&format!("DEMO-{suffix}"))?;
    let usd = |minor_units: &str| Money::parse("amount", "USD", minor_units);
    let refund_id = |name: &str| RefundRequestId::parse(&format!("{name}-{suffix}"));
    let commands = vec![
        PaymentCommand::RecordPayment {
            payment_id: payment_id.clone(),
            payment_amount: usd("10000")?,
            payment_method_type: PaymentMethodType::parse("CARD")?,
            payment_time: now,
            capture_required: None,
        },
        PaymentCommand::CapturePayment {
            payment_id: payment_id.clone(),
            capture_id: None,
            capture_amount: usd("10000")?,
            capture_time: now,
        },
        PaymentCommand::RequestRefund {
            refund_request_id: refund_id("R1")?,
            payment_id: payment_id.clone(),
            refund_amount: usd("2500")?,
            refund_reason: Some("customer request".to_owned()),
        },
        PaymentCommand::RequestRefund {
            refund_request_id: refund_id("R2")?,
            payment_id: payment_id.clone(),
            refund_amount: usd("8000")?,
            refund_reason: None,
        },
        PaymentCommand::ConfirmRefundSucceeded {
            refund_request_id: refund_id("R1")?,
            refund_id: RefundId::parse(&format!("DEMO-REFUND-{suffix}"))?,
            refund_time: now,
            source: OutcomeSource::RefundResponse,
        },
    ];
    let stream = StreamName::parse(domain::payment_stream_name(&payment_id))?;
    let policy = Policy::default();
    let mut out = std::io::stdout().lock();
    writeln!(out, "demo payment {payment_id} on stream {stream}")?;
    for command in &commands {
        execute(store.as_ref(), &stream, command, &policy, &mut out).await?;
    }
    let payment = load(store.as_ref(), &stream).await?.0;
    if let Some(state) = payment.state() {
        writeln!(
            out,
            "balance: captured {}, refunded {}, pending {}, refundable {}",
            state.captured,
            state.refunded,
            state.pending,
            state.refundable()
        )?;
    }
    Ok(())
}

async fn execute(
    store: &dyn EventStore,
    stream: &StreamName,
    command: &PaymentCommand,
    policy: &Policy,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    for _ in 0..DECIDE_ATTEMPTS_MAX {
        let (payment, revision) = load(store, stream).await?;
        let events = match decide(&payment, command, policy, OffsetDateTime::now_utc()) {
            Ok(events) => events,
            Err(rejection) => {
                writeln!(out, "  refused without an event: {rejection}")?;
                return Ok(());
            }
        };
        if events.is_empty() {
            writeln!(out, "  already applied")?;
            return Ok(());
        }
        let expected = revision.map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact);
        let new_events = events.iter().map(new_event).collect();
        match store.append(stream, expected, new_events).await {
            Ok(outcome) => {
                let stored = store.read_all(outcome.first_position, events.len()).await?;
                for (event, recorded) in events.iter().zip(&stored) {
                    writeln!(
                        out,
                        "  #{} {} {}",
                        recorded.position,
                        describe(event),
                        hex::encode(&recorded.hash[..8])
                    )?;
                }
                return Ok(());
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(error) => return Err(error).context("appending to the log"),
        }
    }
    bail!("stream {stream} kept changing under {DECIDE_ATTEMPTS_MAX} attempts")
}

/// Loads and folds a payment stream; returns the state and the last revision.
async fn load(store: &dyn EventStore, stream: &StreamName) -> anyhow::Result<(Payment, Option<u64>)> {
    let mut payment = Payment::Unknown;
    let mut last_revision = None;
    loop {
        let from = last_revision.map_or(0, |revision: u64| revision + 1);
        let batch = store
            .read_stream(stream, from, LOAD_BATCH_EVENTS_MAX)
            .await
            .context("reading the stream")?;
        for recorded in &batch {
            let event =
                PaymentEvent::from_stored(&recorded.event_type, recorded.schema_version, &recorded.payload, &[])
                    .with_context(|| format!("decoding the event at position {}", recorded.position))?;
            payment = evolve(payment, &event);
            last_revision = Some(recorded.revision);
        }
        if batch.len() < LOAD_BATCH_EVENTS_MAX {
            return Ok((payment, last_revision));
        }
    }
}

fn new_event(event: &PaymentEvent) -> NewEvent {
    let stored = event.to_stored();
    let event_id = match event {
        // One refund request per refundRequestId across the whole log: the store refuses a second.
        PaymentEvent::RefundRequested(requested) => refund_request_event_id(&requested.refund_request_id),
        PaymentEvent::RefundRejected(rejected) => refund_request_event_id(&rejected.refund_request_id),
        _ => Uuid::new_v4(),
    };
    NewEvent {
        event_id,
        event_type: stored.event_type.to_owned(),
        schema_version: stored.schema_version,
        payload: stored.data,
        actor: DEMO_ACTOR.to_owned(),
    }
}

fn refund_request_event_id(refund_request_id: &RefundRequestId) -> Uuid {
    Uuid::new_v5(&REFUND_REQUEST_NAMESPACE, refund_request_id.as_str().as_bytes())
}

fn describe(event: &PaymentEvent) -> String {
    match event {
        PaymentEvent::RefundRejected(rejected) => {
            format!(
                "RefundRejected {} {}: {}",
                rejected.refund_request_id, rejected.result_code, rejected.result_message
            )
        }
        PaymentEvent::RefundRequested(requested) => {
            format!(
                "RefundRequested {} {}",
                requested.refund_request_id, requested.refund_amount
            )
        }
        other => other.event_type().to_owned(),
    }
}
