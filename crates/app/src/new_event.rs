//! The one place a domain event becomes an event to append: its stored form, its id and who caused it (payment
//! events through `batch`, reconciliation events through `reconciliation`).

use domain::StoredEventData;
use eventlog::NewEvent;
use uuid::Uuid;

/// The event to append for `stored`, with `event_id`, caused by `actor`.
pub(crate) fn new_event(stored: StoredEventData, event_id: Uuid, actor: &str) -> NewEvent {
    NewEvent {
        event_id,
        event_type: stored.event_type.to_owned(),
        schema_version: stored.schema_version,
        payload: stored.data,
        actor: actor.to_owned(),
    }
}
