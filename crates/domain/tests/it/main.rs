//! Integration tests of the pure domain: one binary, one module per concern.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod aggregate;
mod event_json;
mod fold;
mod properties;
mod scenario;

/// Folds a whole stream of decided events; every test stream folds.
pub(crate) fn replay<'a>(events: impl IntoIterator<Item = &'a domain::PaymentEvent>) -> domain::Payment {
    events
        .into_iter()
        .try_fold(domain::Payment::Unknown, domain::evolve)
        .expect("the events fold")
}
