//! What every test shares: the backend harness, a ledger that writes events the way the saga does (load the
//! stream, `domain::decide`, append with the expected revision), and shorthands for ids, money and times.

use std::sync::Arc;
use std::time::Duration;

use domain::{
    ChargebackResolution, Currency, DisputeId, Money, OutcomeSource, Payment, PaymentCommand, PaymentEvent, PaymentId,
    PaymentMethodType, Policy, RefundId, RefundRequestId, ResultCode, decide, evolve,
};
use eventlog::{EventStore, ExpectedRevision, NewEvent, StreamName};
use projections::{ProjectionRunner, ProjectionStore, ReadModels, RunnerHandle};
use testkit::log::new_event;
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::sync::oneshot;
use uuid::Uuid;

/// How long a test waits for the runner to reach a position before it fails.
pub(crate) const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(20);

/// A backend under test: one fresh event log and its read models.
pub(crate) trait Harness {
    /// A new handle on this harness's event log.
    async fn store(&self) -> Arc<dyn EventStore>;

    /// A new handle on this harness's read models (every call opens the same ones).
    async fn projections(&self) -> Arc<dyn ProjectionStore>;

    /// Removes the databases once the case passed.
    async fn finish(self);
}

pub(crate) fn payment_id(id: &str) -> PaymentId {
    PaymentId::parse(id).expect("test payment ids are valid")
}

pub(crate) fn refund_request_id(id: &str) -> RefundRequestId {
    RefundRequestId::parse(id).expect("test refund ids are valid")
}

pub(crate) fn currency(code: &str) -> Currency {
    Currency::parse("currency", code).expect("test currencies are valid")
}

pub(crate) fn money(code: &str, minor_units: u64) -> Money {
    Money::from_minor_units("amount", currency(code), minor_units).expect("test amounts are valid")
}

/// The time the test ledger starts at.
pub(crate) const T0: OffsetDateTime = datetime!(2026-03-01 09:00 UTC);

/// A running projection runner and the means to stop it.
pub(crate) struct Running {
    pub(crate) handle: RunnerHandle,
    stop: oneshot::Sender<()>,
}

impl Running {
    /// Starts a runner of `store` into `projections`.
    pub(crate) fn start(store: Arc<dyn EventStore>, projections: Arc<dyn ProjectionStore>) -> Running {
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = ProjectionRunner::start(store, projections, async move {
            // A dropped sender stops the runner too.
            stopped.await.unwrap_or(());
        });
        Running { handle, stop }
    }

    /// Shuts the runner down and returns how it ended.
    pub(crate) async fn stop(self) -> Result<(), projections::ProjectionError> {
        self.stop.send(()).expect("the runner listens for its shutdown");
        self.handle.join().await
    }
}

/// Waits until `read_models` applied `position`, failing the test after [`CATCH_UP_TIMEOUT`].
pub(crate) async fn caught_up(read_models: &dyn ReadModels, position: u64) {
    let reached = read_models
        .wait_for_position(position, CATCH_UP_TIMEOUT)
        .await
        .expect("wait for position");
    assert!(reached, "read models did not reach position {position}");
}

/// Writes events the way the refund saga does: load, decide, append with the expected revision.
pub(crate) struct Ledger {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) policy: Policy,
    pub(crate) now: OffsetDateTime,
    pub(crate) actor: String,
}

impl Ledger {
    pub(crate) fn new(store: Arc<dyn EventStore>) -> Ledger {
        Ledger {
            store,
            policy: Policy::default(),
            now: T0,
            actor: "api-key-finance".to_owned(),
        }
    }

    /// The payment's stream folded, with its last revision.
    pub(crate) async fn load(&self, payment_id: &PaymentId) -> (Payment, Option<u64>) {
        let stream = stream(payment_id);
        let mut payment = Payment::Unknown;
        let mut revision = None;
        let mut from = 0;
        loop {
            let page = self.store.read_stream(&stream, from, 1_000).await.expect("read stream");
            if page.is_empty() {
                return (payment, revision);
            }
            for recorded in &page {
                let event =
                    PaymentEvent::from_stored(&recorded.event_type, recorded.schema_version, &recorded.payload, &[])
                        .expect("stored events decode");
                payment = evolve(payment, &event).expect("decided events fold");
                revision = Some(recorded.revision);
            }
            from = revision.map_or(0, |revision| revision + 1);
        }
    }

    /// Decides `command` on `payment_id` at the ledger's clock, appends what it decided, and returns the last
    /// position written (`None`: nothing to write). A refusal fails the test.
    pub(crate) async fn execute(&self, payment_id: &PaymentId, command: PaymentCommand) -> Option<u64> {
        self.try_execute(payment_id, command).await.expect("command accepted")
    }

    /// Like [`Ledger::execute`], but a refusal is returned.
    pub(crate) async fn try_execute(
        &self,
        payment_id: &PaymentId,
        command: PaymentCommand,
    ) -> Result<Option<u64>, domain::Rejection> {
        let (payment, revision) = self.load(payment_id).await;
        let events = decide(&payment, &command, &self.policy, self.now)?;
        if events.is_empty() {
            return Ok(None);
        }
        let expected = revision.map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact);
        let new_events = events.iter().map(|event| new_event(event, &self.actor)).collect();
        let outcome = self
            .store
            .append(&stream(payment_id), expected, new_events)
            .await
            .expect("append");
        Ok(Some(outcome.last_position))
    }

    /// Appends an event to a stream that is not a payment's (as a KurrentDB backend's uniqueness claims are).
    pub(crate) async fn append_foreign(&self, stream_name: &str) -> u64 {
        let event = NewEvent {
            event_id: Uuid::new_v4(),
            event_type: "RefundRequestClaimed".to_owned(),
            schema_version: 1,
            payload: b"{}".to_vec(),
            actor: self.actor.clone(),
        };
        let stream = StreamName::parse(stream_name).expect("valid stream");
        self.store
            .append(&stream, ExpectedRevision::Any, vec![event])
            .await
            .expect("append")
            .last_position
    }

    pub(crate) async fn record(&self, id: &str, amount: Money, method: &str, paid_at: OffsetDateTime) -> Option<u64> {
        self.execute(
            &payment_id(id),
            PaymentCommand::RecordPayment {
                payment_id: payment_id(id),
                payment_amount: amount,
                payment_method_type: PaymentMethodType::parse(method).expect("method"),
                payment_time: paid_at,
                capture_required: None,
            },
        )
        .await
    }

    pub(crate) async fn capture(&self, id: &str, amount: Money) -> Option<u64> {
        self.execute(
            &payment_id(id),
            PaymentCommand::CapturePayment {
                payment_id: payment_id(id),
                capture_id: None,
                capture_amount: amount,
                capture_time: self.now,
            },
        )
        .await
    }

    pub(crate) async fn refund(&self, id: &str, refund: &str, amount: Money) -> Option<u64> {
        self.execute(
            &payment_id(id),
            PaymentCommand::RequestRefund {
                refund_request_id: refund_request_id(refund),
                payment_id: payment_id(id),
                refund_amount: amount,
                refund_reason: Some(format!("reason of {refund}")),
            },
        )
        .await
    }

    pub(crate) async fn processing(&self, id: &str, refund: &str) -> Option<u64> {
        self.execute(
            &payment_id(id),
            PaymentCommand::MarkRefundProcessing {
                refund_request_id: refund_request_id(refund),
                reason: "UNKNOWN_EXCEPTION".to_owned(),
            },
        )
        .await
    }

    pub(crate) async fn succeed(&self, id: &str, refund: &str) -> Option<u64> {
        self.execute(
            &payment_id(id),
            PaymentCommand::ConfirmRefundSucceeded {
                refund_request_id: refund_request_id(refund),
                refund_id: RefundId::parse(&format!("antom-{refund}")).expect("refund id"),
                refund_time: self.now,
                source: OutcomeSource::RefundResponse,
            },
        )
        .await
    }

    pub(crate) async fn fail(&self, id: &str, refund: &str) -> Option<u64> {
        self.execute(
            &payment_id(id),
            PaymentCommand::ConfirmRefundFailed {
                refund_request_id: refund_request_id(refund),
                result_code: ResultCode::MerchantBalanceNotEnough,
                result_message: "balance".to_owned(),
                source: OutcomeSource::Inquiry,
            },
        )
        .await
    }

    pub(crate) async fn open_chargeback(&self, id: &str, dispute: &str, amount: Money) -> Option<u64> {
        self.execute(
            &payment_id(id),
            PaymentCommand::OpenChargeback {
                payment_id: payment_id(id),
                dispute_id: DisputeId::parse(dispute).expect("dispute id"),
                dispute_amount: amount,
            },
        )
        .await
    }

    pub(crate) async fn resolve_chargeback(
        &self,
        id: &str,
        dispute: &str,
        resolution: ChargebackResolution,
    ) -> Option<u64> {
        self.execute(
            &payment_id(id),
            PaymentCommand::ResolveChargeback {
                payment_id: payment_id(id),
                dispute_id: DisputeId::parse(dispute).expect("dispute id"),
                resolution,
            },
        )
        .await
    }
}

pub(crate) use testkit::log::payment_stream as stream;

/// The head position of the log.
pub(crate) async fn head(store: &dyn EventStore) -> u64 {
    store.head().await.expect("head").position
}
