//! What every resolver can reach: the ledger (writes), the read models, the
//! event log (events and as-of reads) and the read-your-writes bound.

use std::sync::Arc;
use std::time::Duration;

use app::Ledger;
use domain::{Payment as DomainPayment, PaymentId};
use eventlog::{EventStore, RecordedEvent, StreamName};
use projections::{FoldedStream, ProjectionStore, ReadModels};
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
    /// The read models' writer side, for `rebuildReadModels`.
    pub projections: Arc<dyn ProjectionStore>,
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

/// Which of a payment's events to read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventWindow {
    /// Events at or after this global position.
    pub(crate) from_position: u64,
    /// Events at or before this global position, if given.
    pub(crate) upto_position: Option<u64>,
    /// At most this many.
    pub(crate) limit: usize,
}

/// Whether to go on reading a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visit {
    Continue,
    Stop,
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

    /// The stored events of a payment within `window`, read one bounded batch at a time.
    pub(crate) async fn payment_events(
        &self,
        payment_id: &str,
        window: EventWindow,
    ) -> Result<Vec<RecordedEvent>, ApiError> {
        let mut events = Vec::new();
        self.visit_payment_events(payment_id, |event| {
            if window.upto_position.is_some_and(|upto| event.position > upto) || events.len() >= window.limit {
                return Visit::Stop;
            }
            if event.position >= window.from_position {
                events.push(event);
            }
            Visit::Continue
        })
        .await?;
        Ok(events)
    }

    /// Hands a payment's events to `visit` in stream order, one batch at a time, until it says stop.
    async fn visit_payment_events(
        &self,
        payment_id: &str,
        mut visit: impl FnMut(RecordedEvent) -> Visit,
    ) -> Result<(), ApiError> {
        let stream = payment_stream(payment_id)?;
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
                if visit(event) == Visit::Stop {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// A payment folded from its stream up to `cutoff`, with the last position folded.
    pub(crate) async fn fold_payment(
        &self,
        payment_id: &str,
        cutoff: Cutoff,
    ) -> Result<Option<(DomainPayment, u64)>, ApiError> {
        let stream = payment_stream(payment_id)?;
        let past = |recorded: &RecordedEvent| match cutoff {
            Cutoff::Position(position) => recorded.position > position,
            Cutoff::Time(time) => recorded.recorded_at > time,
        };
        let fold = projections::fold_payment_stream(
            self.store.as_ref(),
            &stream,
            FoldedStream::default(),
            STREAM_BATCH_EVENTS_MAX,
            past,
        );
        let (folded, _) = fold.await.map_err(|error| ApiError::internal(&error))?;
        Ok(folded
            .payment
            .state()
            .is_some()
            .then_some((folded.payment, folded.position)))
    }
}

/// The stream of the payment `payment_id` names (bad input when it names none).
fn payment_stream(payment_id: &str) -> Result<StreamName, ApiError> {
    let payment_id = PaymentId::parse(payment_id).map_err(|error| ApiError::from_input("", &error))?;
    StreamName::parse(domain::payment_stream_name(&payment_id)).map_err(|error| ApiError::BadInput {
        field: "paymentId".to_owned(),
        message: format!("paymentId: {error}"),
    })
}
