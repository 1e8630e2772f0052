//! The envelope: a stored event of a payment stream, decoded, with the fields the folds use.

use domain::{PaymentEvent, PaymentId};
use eventlog::{EventView, RecordedEvent};
use time::OffsetDateTime;

use crate::error::ProjectionError;

/// Prefix of the streams the projections read; every other stream is skipped (see [`Envelope::decode`]).
pub const PAYMENT_STREAM_PREFIX: &str = "payment-";

/// A decoded event of a payment stream with the envelope fields the folds use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Global position in the log.
    pub position: u64,
    /// The payment whose stream holds the event (from the stream name `payment-{paymentId}`; refund outcome
    /// events do not name their payment).
    pub payment_id: PaymentId,
    /// Revision in the payment's stream.
    pub revision: u64,
    /// When the log recorded it.
    pub recorded_at: OffsetDateTime,
    /// Who caused it (API key name, `apo-notify`, `worker`).
    pub actor: String,
    /// The event.
    pub event: PaymentEvent,
}

impl Envelope {
    /// Decodes a stored event: `Ok(None)` for an event of a stream that is not `payment-*` (other streams,
    /// such as a backend's `refund-request-{id}` uniqueness claims, carry no read-model facts and are passed
    /// over), [`ProjectionError::Decode`] for a payment event that does not decode.
    pub fn decode(recorded: &RecordedEvent) -> Result<Option<Envelope>, ProjectionError> {
        Envelope::decode_view(&recorded.view())
    }

    /// [`Envelope::decode`] of an event read as an [`EventView`] (from a scan's batch).
    pub fn decode_view(recorded: &EventView<'_>) -> Result<Option<Envelope>, ProjectionError> {
        let Some(payment_id) = recorded.stream.strip_prefix(PAYMENT_STREAM_PREFIX) else {
            return Ok(None);
        };
        let payment_id = PaymentId::parse(payment_id).map_err(|error| ProjectionError::Inconsistent {
            position: recorded.position,
            reason: format!("stream {} does not name a payment: {error}", recorded.stream),
        })?;
        let event = PaymentEvent::from_stored(recorded.event_type, recorded.schema_version, recorded.payload, &[])
            .map_err(|source| ProjectionError::Decode {
                position: recorded.position,
                event_type: recorded.event_type.to_owned(),
                source,
            })?;
        Ok(Some(Envelope {
            position: recorded.position,
            payment_id,
            revision: recorded.revision,
            recorded_at: recorded.recorded_at,
            actor: recorded.actor.to_owned(),
            event,
        }))
    }
}

/// An [`ProjectionError::Inconsistent`] at the envelope's position.
pub(super) fn inconsistent(envelope: &Envelope, reason: String) -> ProjectionError {
    ProjectionError::Inconsistent {
        position: envelope.position,
        reason,
    }
}

/// An event that names its payment must name the payment of its stream.
pub(super) fn check_payment_id(envelope: &Envelope) -> Result<(), ProjectionError> {
    match envelope.event.payment_id() {
        Some(named) if *named != envelope.payment_id => Err(inconsistent(
            envelope,
            format!("event names payment {named} in the stream of {}", envelope.payment_id),
        )),
        _ => Ok(()),
    }
}
