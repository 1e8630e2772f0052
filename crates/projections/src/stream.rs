//! A payment's stream folded into the `domain` aggregate, read from the log a page at a time: the one path by
//! which the command side (`app`'s payment queues), the as-of reads (`graphql`) and the audit exports fold a
//! stream. The read models fold the *global* log instead ([`crate::fold`]); both decode events the same way.

use domain::{EventDecodeError, FoldError, Payment, PaymentEvent, evolve};
use eventlog::{EventStore, RecordedEvent, StoreError, StreamName};

/// A payment stream folded up to a point.
#[derive(Debug, Clone, Default)]
pub struct FoldedStream {
    /// The aggregate.
    pub payment: Payment,
    /// The stream's last revision folded; `None` when none was.
    pub revision: Option<u64>,
    /// Global position of the last event folded; 0 when none was.
    pub position: u64,
}

/// Why a stream could not be folded.
#[derive(Debug, thiserror::Error)]
pub enum StreamFoldError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event does not decode.
    #[error("the event at position {position} does not decode: {source}")]
    Decode {
        /// Its position.
        position: u64,
        /// Why.
        source: EventDecodeError,
    },
    /// A stored event does not fold onto the payment (the log contradicts the aggregate).
    #[error("the event at position {position} does not fold: {source}")]
    Fold {
        /// Its position.
        position: u64,
        /// Why.
        source: FoldError,
    },
}

/// Folds the events of `stream` after `folded` (the whole stream from `FoldedStream::default()`) onto it,
/// reading `page_events` at a time, and stops before the first event that `past` says lies beyond the cut
/// (`|_| false` folds to the end). Answers the folded stream and whether any event was folded.
pub async fn fold_payment_stream(
    store: &dyn EventStore,
    stream: &StreamName,
    mut folded: FoldedStream,
    page_events: usize,
    mut past: impl FnMut(&RecordedEvent) -> bool,
) -> Result<(FoldedStream, bool), StreamFoldError> {
    let mut moved = false;
    loop {
        let from = folded.revision.map_or(0, |last| last + 1);
        let page = store.read_stream(stream, from, page_events).await?;
        for recorded in &page {
            if past(recorded) {
                return Ok((folded, moved));
            }
            let position = recorded.position;
            let event =
                PaymentEvent::from_stored(&recorded.event_type, recorded.schema_version, &recorded.payload, &[])
                    .map_err(|source| StreamFoldError::Decode { position, source })?;
            folded.payment =
                evolve(folded.payment, &event).map_err(|source| StreamFoldError::Fold { position, source })?;
            folded.revision = Some(recorded.revision);
            folded.position = position;
            moved = true;
        }
        if page.len() < page_events {
            return Ok((folded, moved));
        }
    }
}
