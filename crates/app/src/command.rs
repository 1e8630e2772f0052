//! The one write path: load a payment stream, fold it, decide, append with
//! the revision decided on; on a conflict reload and decide again.
//!
//! Event ids: `RefundRequested` and `RefundRejected` get a UUIDv5 derived
//! from the refundRequestId ([`refund_request_event_id`]), so the store
//! refuses a second request with the same id on any other payment, from any
//! instance (`DuplicateEventId`). Every other event gets a fresh v4 id: its
//! idempotency comes from `decide`, which answers "already applied" on the
//! reloaded state.

use std::time::Duration;

use domain::InputError;
use domain::{Payment, PaymentCommand, PaymentEvent, PaymentId, RefundRequestId, Rejection, decide, evolve};
use eventlog::{ACTOR_BYTES_MAX, ExpectedRevision, NewEvent, StoreError, StreamName};
use uuid::Uuid;

use crate::error::AppError;
use crate::ledger::Ledger;

/// Attempts to decide and append one command before giving up on a contended stream
/// (50 concurrent refunds on one payment need up to 50).
pub const DECIDE_ATTEMPTS_MAX: usize = 100;
/// Events read per call while loading a stream.
pub const LOAD_BATCH_EVENTS_MAX: usize = 1_000;
/// Longest pause after a conflict before deciding again (the pause is random up to this, growing
/// with the attempt, so contenders spread out).
pub const CONFLICT_BACKOFF_MS_MAX: u64 = 20;
/// Namespace of the UUIDv5 event ids derived from refundRequestIds.
const REFUND_REQUEST_NAMESPACE: Uuid = Uuid::from_u128(0x7e3f_1c2a_9b4d_4e8f_a1c3_5d7e_9f0b_2c4d);

/// The event id of the `RefundRequested` or `RefundRejected` event of a refundRequestId: one per id
/// across the whole log, so the store refuses a second request with it wherever it is appended.
pub fn refund_request_event_id(refund_request_id: &RefundRequestId) -> Uuid {
    Uuid::new_v5(&REFUND_REQUEST_NAMESPACE, refund_request_id.as_str().as_bytes())
}

/// The stream of a payment.
pub(crate) fn stream_of(payment_id: &PaymentId) -> Result<StreamName, AppError> {
    Ok(StreamName::parse(domain::payment_stream_name(payment_id))?)
}

/// Checks the actor recorded on every event: 1..=[`ACTOR_BYTES_MAX`] bytes, no control characters.
fn check_actor(actor: &str) -> Result<(), AppError> {
    let field = || "actor".to_owned();
    if actor.trim().is_empty() {
        return Err(InputError::Empty { field: field() }.into());
    }
    if actor.len() > ACTOR_BYTES_MAX {
        let error = InputError::TooLong {
            field: field(),
            len: actor.len(),
            max: ACTOR_BYTES_MAX,
        };
        return Err(error.into());
    }
    if let Some((position, found)) = actor.chars().enumerate().find(|(_, character)| character.is_control()) {
        return Err(InputError::InvalidCharacter {
            field: field(),
            position,
            found,
        }
        .into());
    }
    Ok(())
}

/// A stream folded.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) payment: Payment,
    /// The stream's last revision; `None` when it does not exist.
    pub(crate) revision: Option<u64>,
}

/// What deciding a command did.
#[derive(Debug)]
pub(crate) enum Decided {
    /// Events were appended; `payment` includes them.
    Appended {
        payment: Payment,
        /// Global position of the last event appended.
        position: u64,
    },
    /// Already applied, or nothing to change.
    Unchanged { payment: Payment },
    /// Refused without an event.
    Refused { payment: Payment, rejection: Rejection },
    /// The store refused the event id: an event with it is stored on another stream (a refundRequestId
    /// used on another payment).
    DuplicateElsewhere { payment: Payment, event_id: Uuid },
}

impl Decided {
    /// The payment as it stands after the command.
    pub(crate) fn payment(&self) -> &Payment {
        match self {
            Self::Appended { payment, .. }
            | Self::Unchanged { payment }
            | Self::Refused { payment, .. }
            | Self::DuplicateElsewhere { payment, .. } => payment,
        }
    }
}

fn event_id_of(event: &PaymentEvent) -> Uuid {
    match event {
        PaymentEvent::RefundRequested(requested) => refund_request_event_id(&requested.refund_request_id),
        PaymentEvent::RefundRejected(rejected) => refund_request_event_id(&rejected.refund_request_id),
        _ => Uuid::new_v4(),
    }
}

fn new_event(event: &PaymentEvent, actor: &str) -> NewEvent {
    let stored = event.to_stored();
    NewEvent {
        event_id: event_id_of(event),
        event_type: stored.event_type.to_owned(),
        schema_version: stored.schema_version,
        payload: stored.data,
        actor: actor.to_owned(),
    }
}

async fn backoff(attempt: usize) {
    let ceiling_ms = (attempt as u64).clamp(1, CONFLICT_BACKOFF_MS_MAX);
    // Jitter without a random number generator of our own: a v4 UUID is random.
    let pause_ms = (Uuid::new_v4().as_u128() % u128::from(ceiling_ms + 1)) as u64;
    tokio::time::sleep(Duration::from_millis(pause_ms)).await;
}

impl Ledger {
    /// Loads and folds `stream`, reading in batches of [`LOAD_BATCH_EVENTS_MAX`].
    pub(crate) async fn load(&self, stream: &StreamName) -> Result<Loaded, AppError> {
        let (mut payment, mut revision) = match self.inner.stream_cache.get(stream.as_str()) {
            Some((payment, revision)) => (payment, Some(revision)),
            None => (Payment::Unknown, None),
        };
        loop {
            let from = revision.map_or(0, |last| last + 1);
            let batch = self
                .inner
                .store
                .read_stream(stream, from, LOAD_BATCH_EVENTS_MAX)
                .await?;
            for recorded in &batch {
                debug_assert_eq!(
                    recorded.revision,
                    revision.map_or(0, |last| last + 1),
                    "revisions are dense"
                );
                let event =
                    PaymentEvent::from_stored(&recorded.event_type, recorded.schema_version, &recorded.payload, &[])
                        .map_err(|source| AppError::Decode {
                            position: recorded.position,
                            source,
                        })?;
                payment = evolve(payment, &event);
                revision = Some(recorded.revision);
            }
            if batch.len() < LOAD_BATCH_EVENTS_MAX {
                if let Some(last) = revision {
                    self.inner.stream_cache.put(stream.as_str(), payment.clone(), last);
                }
                return Ok(Loaded { payment, revision });
            }
        }
    }

    /// Decides `command` on `stream` and appends its events as `actor`, reloading on conflicts, at most
    /// [`DECIDE_ATTEMPTS_MAX`] times.
    pub(crate) async fn execute(
        &self,
        stream: &StreamName,
        command: &PaymentCommand,
        actor: &str,
    ) -> Result<Decided, AppError> {
        check_actor(actor)?;
        let mut duplicate: Option<Uuid> = None;
        for attempt in 1..=DECIDE_ATTEMPTS_MAX {
            let Loaded { payment, revision } = self.load(stream).await?;
            let events = match decide(&payment, command, &self.inner.policy, self.inner.clock.now()) {
                Err(rejection) => return Ok(Decided::Refused { payment, rejection }),
                Ok(events) if events.is_empty() => return Ok(Decided::Unchanged { payment }),
                Ok(events) => events,
            };
            let new_events: Vec<NewEvent> = events.iter().map(|event| new_event(event, actor)).collect();
            // Refused once, and still not in this stream after reloading: it lives on another stream.
            if let Some(event_id) = duplicate
                && new_events.iter().any(|event| event.event_id == event_id)
            {
                return Ok(Decided::DuplicateElsewhere { payment, event_id });
            }
            let expected = revision.map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact);
            match self.inner.store.append(stream, expected, new_events).await {
                Ok(outcome) => {
                    let payment = events.iter().fold(payment, evolve);
                    return Ok(Decided::Appended {
                        payment,
                        position: outcome.last_position,
                    });
                }
                Err(StoreError::Conflict { .. }) => {
                    tracing::debug!(attempt, %stream, "stream moved; deciding again");
                    backoff(attempt).await;
                }
                // Maybe a concurrent append of the same decision on this stream: reload to find out.
                Err(StoreError::DuplicateEventId { event_id }) => duplicate = Some(event_id),
                Err(error) => return Err(error.into()),
            }
        }
        Err(AppError::Contention {
            stream: stream.to_string(),
            attempts: DECIDE_ATTEMPTS_MAX,
        })
    }

    /// The position to answer with: the last one written, or the log's head when nothing was written.
    pub(crate) async fn position_of(&self, decided: &Decided) -> Result<u64, AppError> {
        match decided {
            Decided::Appended { position, .. } => Ok(*position),
            Decided::Unchanged { .. } | Decided::Refused { .. } | Decided::DuplicateElsewhere { .. } => {
                Ok(self.inner.store.head().await?.position)
            }
        }
    }
}
