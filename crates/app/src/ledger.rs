//! The [`Ledger`]: what the application layer is built from, and its one way into a payment's stream.
//!
//! Every step (payments in `payments.rs`, the refund saga in `saga.rs`, the settle worker in `worker.rs`,
//! Antom's notifications in `notify.rs`) reaches the log through [`Ledger::decide`] and [`Ledger::read`],
//! which go through the payment's command queue (`queue.rs`); no step calls another's helpers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use domain::{InputError, PaymentCommand, PaymentId, Policy};
use eventlog::{ACTOR_BYTES_MAX, EventStore, StreamName};
use projections::ReadModels;

use crate::clock::Clock;
use crate::error::AppError;
use crate::gateway::RefundGateway;
use crate::observe::{NoObserver, Observer};
use crate::queue::{Decided, PaymentQueues};

/// How long a refund stays requested or processing before the worker asks Antom about it, by default.
pub const SETTLE_AFTER_MS_DEFAULT: u64 = 5_000;
/// Most open refunds one worker pass settles (the read models' page limit is higher).
pub const SETTLE_BATCH_REFUNDS_MAX: usize = 100;
/// How long a lookup by refundRequestId waits for the read models to catch up with the log.
pub const LOOKUP_WAIT_MS_MAX: u64 = 2_000;

/// Settings of a [`Ledger`] beyond its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerOptions {
    /// Sent to Antom as `refundNotifyUrl` with every refund; `None` leaves Antom's configured default.
    pub refund_notify_url: Option<String>,
    /// How long a refund stays requested or processing before the worker settles it.
    pub settle_after: Duration,
    /// Most open refunds one worker pass handles (at most `projections::PAGE_SIZE_MAX`).
    pub settle_batch_refunds_max: usize,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        Self {
            refund_notify_url: None,
            settle_after: Duration::from_millis(SETTLE_AFTER_MS_DEFAULT),
            settle_batch_refunds_max: SETTLE_BATCH_REFUNDS_MAX,
        }
    }
}

/// The application layer: payment commands, the refund saga, the settle worker and notifications.
///
/// Cheap to clone (one `Arc`); clones share one set of payment queues. Any number of ledgers, in one process
/// or many, may share a store: every decision is appended with the stream revision it was made on.
#[derive(Clone)]
pub struct Ledger {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// The payment queues, with the store, policy and clock they decide with.
    pub(crate) queues: Arc<PaymentQueues>,
    pub(crate) read_models: Arc<dyn ReadModels>,
    pub(crate) gateway: Arc<dyn RefundGateway>,
    pub(crate) options: LedgerOptions,
    /// What this instance observed of its worker and Antom (shared by the clones of `with_options`).
    pub(crate) observed: Arc<crate::running::Observed>,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Ledger")
            .field("gateway", &self.inner.gateway)
            .field("options", &self.inner.options)
            .field("queues", &self.inner.queues)
            .finish_non_exhaustive()
    }
}

impl Ledger {
    /// A ledger on `store`, finding refunds by id through `read_models`, calling Antom through `gateway`,
    /// deciding under `policy` at `clock`'s time, with default [`LedgerOptions`].
    pub fn new(
        store: Arc<dyn EventStore>,
        read_models: Arc<dyn ReadModels>,
        gateway: Arc<dyn RefundGateway>,
        policy: Policy,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                queues: Arc::new(PaymentQueues::new(store, policy, clock, Arc::new(NoObserver))),
                read_models,
                gateway,
                options: LedgerOptions::default(),
                observed: Arc::default(),
            }),
        }
    }

    /// The same ledger (the same payment queues) with `options`.
    ///
    /// A `refund_notify_url` longer than Antom accepts, or a `settle_batch_refunds_max` of 0 or above
    /// `projections::PAGE_SIZE_MAX`, is an [`AppError::Input`] naming the field.
    pub fn with_options(self, options: LedgerOptions) -> Result<Self, AppError> {
        let batch = options.settle_batch_refunds_max;
        if batch == 0 || batch > projections::PAGE_SIZE_MAX {
            return Err(InputError::Invalid {
                field: "settle_batch_refunds_max".to_owned(),
                reason: format!("must be 1..={}, got {batch}", projections::PAGE_SIZE_MAX),
            }
            .into());
        }
        if let Some(url) = &options.refund_notify_url {
            let len = url.chars().count();
            if len > apo::refund::REFUND_NOTIFY_URL_CHARS_MAX {
                return Err(InputError::TooLong {
                    field: "refundNotifyUrl".to_owned(),
                    len,
                    max: apo::refund::REFUND_NOTIFY_URL_CHARS_MAX,
                }
                .into());
            }
        }
        let inner = Inner {
            queues: Arc::clone(&self.inner.queues),
            read_models: Arc::clone(&self.inner.read_models),
            gateway: Arc::clone(&self.inner.gateway),
            options,
            observed: Arc::clone(&self.inner.observed),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The same ledger reporting its facts (refunds decided and settled, anomalies, conflict retries, settle
    /// passes) to `observer`. It gets a fresh set of payment queues, so call it before the ledger is used or
    /// cloned: clones made before keep the old observer.
    pub fn with_observer(self, observer: Arc<dyn Observer>) -> Self {
        let queues = &self.inner.queues;
        let inner = Inner {
            queues: Arc::new(PaymentQueues::new(
                Arc::clone(queues.store()),
                queues.policy().clone(),
                Arc::clone(queues.clock()),
                observer,
            )),
            read_models: Arc::clone(&self.inner.read_models),
            gateway: Arc::clone(&self.inner.gateway),
            options: self.inner.options.clone(),
            observed: Arc::clone(&self.inner.observed),
        };
        Self { inner: Arc::new(inner) }
    }

    /// How many appends this ledger (and its clones) had refused because another writer had moved the
    /// payment's stream since the decision, each followed by deciding again; since it was created. Commands
    /// on one payment inside one ledger never conflict with each other (they share the payment's queue), so
    /// this counts only other instances' writes.
    pub fn conflict_retries(&self) -> u64 {
        self.inner.queues.conflict_retries()
    }

    /// The payment as the log holds it now (a strong read, unlike the read models), or `None` when the
    /// ledger does not know it.
    #[tracing::instrument(skip(self), fields(payment_id = %payment_id))]
    pub async fn payment(&self, payment_id: &PaymentId) -> Result<Option<domain::PaymentState>, AppError> {
        let read = self.read(payment_id).await?;
        Ok(read.payment.state().cloned())
    }

    /// Decides `command` on `payment_id`'s stream as `actor` and appends its events: the one write path.
    pub(crate) async fn decide(
        &self,
        actor: &str,
        payment_id: &PaymentId,
        command: PaymentCommand,
    ) -> Result<Decided, AppError> {
        check_actor(actor)?;
        let stream = stream_of(payment_id)?;
        self.inner.queues.submit(&stream, Some(command), actor).await
    }

    /// The payment as the log holds it now, read through its queue (so it is never older than the call).
    pub(crate) async fn read(&self, payment_id: &PaymentId) -> Result<Decided, AppError> {
        let stream = stream_of(payment_id)?;
        self.inner.queues.submit(&stream, None, "read").await
    }

    pub(crate) fn store(&self) -> &Arc<dyn EventStore> {
        self.inner.queues.store()
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        self.inner.queues.clock()
    }

    pub(crate) fn observer(&self) -> &Arc<dyn Observer> {
        self.inner.queues.observer()
    }
}

/// The stream of a payment.
fn stream_of(payment_id: &PaymentId) -> Result<StreamName, AppError> {
    Ok(StreamName::parse(domain::payment_stream_name(payment_id)).map_err(eventlog::StoreError::from)?)
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
