//! What every resolver can reach: the ledger (writes), the read models, the
//! event log (events and as-of reads) and the read-your-writes bound.

use std::sync::Arc;
use std::time::Duration;

use app::Ledger;
use domain::{Payment as DomainPayment, PaymentEvent, PaymentId};
use eventlog::{EventStore, RecordedEvent, StreamName};
use projections::ReadModels;
use time::OffsetDateTime;

use crate::error::ApiError;

/// Events read per call while folding a stream.
const STREAM_BATCH_EVENTS_MAX: usize = 1_000;

/// The services behind the schema.
#[derive(Clone)]
pub struct ApiContext {
    /// Writes: commands and the refund saga.
    pub ledger: Ledger,
    /// Reads: balances, refunds, totals.
    pub read_models: Arc<dyn ReadModels>,
    /// The event log: events and as-of reads.
    pub store: Arc<dyn EventStore>,
    /// Longest wait for `atLeastPosition`.
    pub wait_for_position_max: Duration,
}

impl std::fmt::Debug for ApiContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiContext")
            .field("wait_for_position_max", &self.wait_for_position_max)
            .finish_non_exhaustive()
    }
}

/// Where an as-of read stops.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cutoff {
    /// Events at or before this global position.
    Position(u64),
    /// Events recorded at or before this time.
    Time(OffsetDateTime),
}

impl ApiContext {
    /// Waits until the read models reflect `position` (read-your-writes).
    pub(crate) async fn wait_for(&self, position: Option<i64>) -> Result<(), ApiError> {
        let Some(position) = position else { return Ok(()) };
        let position = u64::try_from(position).map_err(|_| ApiError::BadInput {
            field: "atLeastPosition".to_owned(),
            message: "atLeastPosition: must not be negative".to_owned(),
        })?;
        let reached = self
            .read_models
            .wait_for_position(position, self.wait_for_position_max)
            .await
            .map_err(|error| ApiError::internal(&error))?;
        if reached {
            Ok(())
        } else {
            Err(ApiError::NotCaughtUp { position })
        }
    }

    /// The stored events of a payment, up to a global position.
    pub(crate) async fn payment_events(
        &self,
        payment_id: &str,
        upto_position: Option<u64>,
    ) -> Result<Vec<RecordedEvent>, ApiError> {
        let payment_id = PaymentId::parse(payment_id).map_err(|error| ApiError::from_input("", &error))?;
        let stream =
            StreamName::parse(domain::payment_stream_name(&payment_id)).map_err(|error| ApiError::BadInput {
                field: "paymentId".to_owned(),
                message: format!("paymentId: {error}"),
            })?;
        let mut events = Vec::new();
        let mut from_revision = 0;
        loop {
            let batch = self
                .store
                .read_stream(&stream, from_revision, STREAM_BATCH_EVENTS_MAX)
                .await
                .map_err(|error| ApiError::internal(&error))?;
            let full = batch.len() == STREAM_BATCH_EVENTS_MAX;
            for event in batch {
                from_revision = event.revision + 1;
                if upto_position.is_some_and(|upto| event.position > upto) {
                    return Ok(events);
                }
                events.push(event);
            }
            if !full {
                return Ok(events);
            }
        }
    }

    /// A payment folded from its stream up to `cutoff`, with the last position folded.
    pub(crate) async fn fold_payment(
        &self,
        payment_id: &str,
        cutoff: Cutoff,
    ) -> Result<Option<(DomainPayment, u64)>, ApiError> {
        let upto = match cutoff {
            Cutoff::Position(position) => Some(position),
            Cutoff::Time(_) => None,
        };
        let events = self.payment_events(payment_id, upto).await?;
        let mut payment = DomainPayment::Unknown;
        let mut last_position = 0;
        for recorded in &events {
            if let Cutoff::Time(time) = cutoff
                && recorded.recorded_at > time
            {
                break;
            }
            let event =
                PaymentEvent::from_stored(&recorded.event_type, recorded.schema_version, &recorded.payload, &[])
                    .map_err(|error| ApiError::internal(&error))?;
            payment = domain::evolve(payment, &event).map_err(|error| ApiError::internal(&error))?;
            last_position = recorded.position;
        }
        Ok(payment.state().is_some().then_some((payment, last_position)))
    }
}
