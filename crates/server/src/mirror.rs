//! Demo stacks only: mirrors payments recorded in the ledger into the Antom
//! simulator, so a refund of a payment recorded with `recordPayment` finds
//! it at "Antom". Real Antom knows its payments already; production runs
//! never start a mirror.
//!
//! The mirror tails the log from the start (the simulator starts empty) and
//! is idempotent: seeding a payment the simulator knows is not an error.

use std::sync::Arc;
use std::time::Duration;

use apo::{ApoClient, InquiryOutcome, RefundOutcome, RefundRequest};
use apo_sim::{Chargeback, PaymentSeed, PaymentUpdate, Simulator};
use app::RefundGateway;
use domain::{ChargebackResolution, PaymentEvent};
use eventlog::EventStore;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Longest wait of a refund call for the mirror to catch up with the log.
const MIRROR_WAIT_MS: u64 = 2_000;
/// The stored types of the events [`mirror`] passes on; the mirror decodes no other event (refund events,
/// several per refund, change nothing at the simulator).
const MIRRORED_EVENT_TYPES: &[&str] = &[
    "PaymentRecorded",
    "PaymentCaptured",
    "ChargebackOpened",
    "ChargebackResolved",
];

/// Where mirrored payments go.
#[derive(Clone)]
pub(crate) enum MirrorTarget {
    /// The in-process simulator of `serve --demo`.
    InProcess(Simulator),
    /// A separate `apo-sim` through its admin API (docker-compose).
    Admin { base_url: String, client: reqwest::Client },
}

/// Starts the mirror; it ends when `shutdown` completes. The receiver tells the last position mirrored.
pub(crate) fn spawn(
    store: Arc<dyn EventStore>,
    target: MirrorTarget,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> (JoinHandle<()>, watch::Receiver<u64>) {
    let (mirrored, receiver) = watch::channel(0_u64);
    let task = tokio::spawn(async move {
        let mut events = eventlog::catch_up(store, 1);
        tokio::pin!(shutdown);
        loop {
            let next = tokio::select! {
                () = &mut shutdown => break,
                next = events.next() => next,
            };
            let Some(next) = next else { break };
            let recorded = match next {
                Ok(recorded) => recorded,
                Err(error) => {
                    tracing::error!(error = %error, "simulator mirror stopped");
                    break;
                }
            };
            if MIRRORED_EVENT_TYPES.contains(&recorded.event_type.as_str())
                && let Ok(event) =
                    PaymentEvent::from_stored(&recorded.event_type, recorded.schema_version, &recorded.payload, &[])
                && let Err(error) = mirror(&target, &event).await
            {
                tracing::warn!(error = %error, position = recorded.position, "could not mirror a payment into the simulator");
            }
            mirrored.send_replace(recorded.position);
        }
    });
    (task, receiver)
}

/// The Antom client of a demo stack: a refund waits until the mirror has
/// given the simulator every payment recorded before the refund's request
/// (or, without its position, so far), so a payment recorded a moment ago is
/// known at "Antom" too.
pub(crate) struct MirroredGateway {
    inner: ApoClient,
    store: Arc<dyn EventStore>,
    mirrored: watch::Receiver<u64>,
}

impl std::fmt::Debug for MirroredGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirroredGateway")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl MirroredGateway {
    pub(crate) fn new(inner: ApoClient, store: Arc<dyn EventStore>, mirrored: watch::Receiver<u64>) -> Self {
        Self { inner, store, mirrored }
    }

    /// Waits until the mirror has handled the log up to the head.
    async fn caught_up(&self) {
        let head = match self.store.head().await {
            Ok(head) => head.position,
            Err(error) => {
                tracing::warn!(error = %error, "cannot read the log head; calling the simulator anyway");
                return;
            }
        };
        self.mirrored_up_to(head).await;
    }

    /// Waits until the mirror has handled the log up to `position`.
    async fn mirrored_up_to(&self, position: u64) {
        let mut mirrored = self.mirrored.clone();
        let wait = mirrored.wait_for(|mirrored| *mirrored >= position);
        if tokio::time::timeout(Duration::from_millis(MIRROR_WAIT_MS), wait)
            .await
            .is_err()
        {
            tracing::warn!(position, "the simulator mirror is behind; calling the simulator anyway");
        }
    }
}

#[async_trait::async_trait]
impl RefundGateway for MirroredGateway {
    async fn refund(&self, request: &RefundRequest) -> RefundOutcome {
        self.caught_up().await;
        RefundGateway::refund(&self.inner, request).await
    }

    /// The refund's payment (with its capture) precedes its request in the payment's stream, so the log up to
    /// `log_position` holds it, whichever instance recorded it: no read of the head.
    async fn refund_after(&self, request: &RefundRequest, log_position: u64) -> RefundOutcome {
        self.mirrored_up_to(log_position).await;
        RefundGateway::refund(&self.inner, request).await
    }

    async fn inquiry(&self, refund_request_id: &domain::RefundRequestId) -> InquiryOutcome {
        RefundGateway::inquiry(&self.inner, refund_request_id).await
    }
}

async fn mirror(target: &MirrorTarget, event: &PaymentEvent) -> anyhow::Result<()> {
    match (target, event) {
        (MirrorTarget::InProcess(simulator), PaymentEvent::PaymentRecorded(recorded)) => {
            let mut seed = PaymentSeed::captured(
                recorded.payment_id.clone(),
                recorded.payment_amount,
                recorded.payment_method_type.clone(),
                recorded.payment_time,
            );
            if recorded.capture_required {
                seed.captured_amount = None;
            }
            if simulator.payment(&recorded.payment_id).is_none() {
                simulator.seed_payment(seed)?;
            }
        }
        (MirrorTarget::InProcess(simulator), other) => {
            if let Some((payment_id, update)) = update_of(other) {
                simulator.update_payment(payment_id, update)?;
            }
        }
        (MirrorTarget::Admin { base_url, client }, PaymentEvent::PaymentRecorded(recorded)) => {
            let mut body = serde_json::json!({
                "paymentId": recorded.payment_id.as_str(),
                "paymentAmount": { "currency": recorded.payment_amount.currency().code(), "value": recorded.payment_amount.value_string() },
                "paymentMethodType": recorded.payment_method_type.as_str(),
                "paymentTime": recorded.payment_time.format(&time::format_description::well_known::Rfc3339)?,
            });
            body["captureNeeded"] = recorded.capture_required.into();
            let response = client
                .post(format!("{base_url}/sim/payments"))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(&body)?)
                .send()
                .await?;
            // 409 or 400 for a payment the simulator knows already is fine: the mirror replays from the start.
            tracing::debug!(status = %response.status(), payment_id = %recorded.payment_id, "mirrored payment");
        }
        (MirrorTarget::Admin { base_url, client }, other) => {
            if let Some((payment_id, update)) = update_of(other) {
                let mut body = serde_json::Map::new();
                if let Some(captured) = update.captured_amount {
                    body.insert(
                        "capturedAmount".into(),
                        serde_json::json!({ "currency": captured.currency().code(), "value": captured.value_string() }),
                    );
                }
                if let Some(chargeback) = update.chargeback {
                    body.insert("chargeback".into(), serde_json::to_value(chargeback)?);
                }
                client
                    .post(format!("{base_url}/sim/payments/{payment_id}"))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(serde_json::to_vec(&body)?)
                    .send()
                    .await?;
            }
        }
    }
    Ok(())
}

fn update_of(event: &PaymentEvent) -> Option<(&domain::PaymentId, PaymentUpdate)> {
    let none = PaymentUpdate {
        captured_amount: None,
        chargeback: None,
        cancelled: None,
    };
    match event {
        PaymentEvent::PaymentCaptured(captured) => Some((
            &captured.payment_id,
            PaymentUpdate {
                captured_amount: Some(captured.capture_amount),
                ..none
            },
        )),
        PaymentEvent::ChargebackOpened(opened) => Some((
            &opened.payment_id,
            PaymentUpdate {
                chargeback: Some(Chargeback::Undetermined),
                ..none
            },
        )),
        PaymentEvent::ChargebackResolved(resolved) => {
            let chargeback = match resolved.resolution {
                ChargebackResolution::Cancelled => Chargeback::None,
                ChargebackResolution::MerchantWon | ChargebackResolution::CustomerWon => Chargeback::Judged,
            };
            Some((
                &resolved.payment_id,
                PaymentUpdate {
                    chargeback: Some(chargeback),
                    ..none
                },
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::MIRRORED_EVENT_TYPES;

    #[test]
    fn the_mirrored_types_are_the_payment_events_the_mirror_passes_on() {
        for name in MIRRORED_EVENT_TYPES {
            assert!(
                domain::EVENT_TYPES.iter().any(|(known, _)| known == name),
                "{name} is no event type"
            );
        }
        // Refund events change nothing at the simulator: `update_of` passes them over.
        for (name, _) in domain::EVENT_TYPES {
            assert_eq!(
                MIRRORED_EVENT_TYPES.contains(name),
                !name.starts_with("Refund") && *name != "AnomalyAcknowledged",
                "{name}"
            );
        }
    }
}
