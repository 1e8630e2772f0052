//! The [`Ledger`]: what the application layer is built from, and the payment
//! commands (record, capture, chargebacks). The refund saga lives in
//! `saga.rs`, the worker in `worker.rs`, notifications in `notify.rs`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use domain::{PaymentCommand, PaymentId, Policy};
use eventlog::EventStore;
use projections::ReadModels;

use crate::answer::{CommandResult, ResultInfo};
use crate::clock::Clock;
use crate::command::{Decided, stream_of};
use crate::error::AppError;
use crate::gateway::RefundGateway;
use crate::input::{CapturePaymentInput, OpenChargebackInput, RecordPaymentInput, ResolveChargebackInput};
use crate::stream_cache::StreamCache;

/// The actor recorded on events the settle worker writes.
pub const WORKER_ACTOR: &str = "worker";
/// The actor to record on events from Antom's notifications.
pub const NOTIFY_ACTOR: &str = "apo-notify";
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
/// Cheap to clone (one `Arc`). Any number of ledgers, in one process or many, may share a store: every
/// decision is appended with the stream revision it was made on.
#[derive(Clone)]
pub struct Ledger {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) read_models: Arc<dyn ReadModels>,
    pub(crate) gateway: Arc<dyn RefundGateway>,
    pub(crate) policy: Policy,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) options: LedgerOptions,
    /// Folded streams between commands (see `stream_cache`).
    pub(crate) stream_cache: Arc<StreamCache>,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Ledger")
            .field("gateway", &self.inner.gateway)
            .field("clock", &self.inner.clock)
            .field("options", &self.inner.options)
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
                store,
                read_models,
                gateway,
                policy,
                clock,
                options: LedgerOptions::default(),
                stream_cache: Arc::new(StreamCache::default()),
            }),
        }
    }

    /// The same ledger with `options`.
    ///
    /// A `refund_notify_url` longer than Antom accepts, or a `settle_batch_refunds_max` of 0 or above
    /// `projections::PAGE_SIZE_MAX`, is an [`AppError::Input`] naming the field.
    pub fn with_options(self, options: LedgerOptions) -> Result<Self, AppError> {
        let batch = options.settle_batch_refunds_max;
        if batch == 0 || batch > projections::PAGE_SIZE_MAX {
            return Err(domain::InputError::Invalid {
                field: "settle_batch_refunds_max".to_owned(),
                reason: format!("must be 1..={}, got {batch}", projections::PAGE_SIZE_MAX),
            }
            .into());
        }
        if let Some(url) = &options.refund_notify_url {
            let len = url.chars().count();
            if len > apo::refund::REFUND_NOTIFY_URL_CHARS_MAX {
                return Err(domain::InputError::TooLong {
                    field: "refundNotifyUrl".to_owned(),
                    len,
                    max: apo::refund::REFUND_NOTIFY_URL_CHARS_MAX,
                }
                .into());
            }
        }
        let inner = Inner {
            store: Arc::clone(&self.inner.store),
            read_models: Arc::clone(&self.inner.read_models),
            gateway: Arc::clone(&self.inner.gateway),
            policy: self.inner.policy.clone(),
            clock: Arc::clone(&self.inner.clock),
            options,
            stream_cache: Arc::clone(&self.inner.stream_cache),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The options in force.
    pub fn options(&self) -> &LedgerOptions {
        &self.inner.options
    }

    /// The event store the ledger writes to.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.inner.store
    }

    /// The payment as the log holds it now (a strong read, unlike the read models), or `None` when the
    /// ledger does not know it.
    #[tracing::instrument(skip(self), fields(payment_id = %payment_id))]
    pub async fn payment(&self, payment_id: &PaymentId) -> Result<Option<domain::PaymentState>, AppError> {
        let loaded = self.load(&stream_of(payment_id)?).await?;
        Ok(loaded.payment.state().cloned())
    }

    /// Records a payment. Repeating it with the same content is a no-op (S); other content is
    /// `REPEAT_REQ_INCONSISTENT`.
    #[tracing::instrument(skip(self, input), fields(payment_id = %input.payment_id))]
    pub async fn record_payment(&self, actor: &str, input: RecordPaymentInput) -> Result<CommandResult, AppError> {
        let command = PaymentCommand::RecordPayment {
            payment_id: input.payment_id.clone(),
            payment_amount: input.payment_amount,
            payment_method_type: input.payment_method_type,
            payment_time: input.payment_time,
            capture_required: input.capture_required,
        };
        self.payment_command(actor, &input.payment_id, &command).await
    }

    /// Records the capture of a payment that needs one.
    #[tracing::instrument(skip(self, input), fields(payment_id = %input.payment_id))]
    pub async fn capture_payment(&self, actor: &str, input: CapturePaymentInput) -> Result<CommandResult, AppError> {
        let command = PaymentCommand::CapturePayment {
            payment_id: input.payment_id.clone(),
            capture_id: input.capture_id,
            capture_amount: input.capture_amount,
            capture_time: input.capture_time,
        };
        self.payment_command(actor, &input.payment_id, &command).await
    }

    /// Records a dispute; refunds are refused (`ORDER_STATUS_INVALID`) until it is resolved.
    #[tracing::instrument(skip(self, input), fields(payment_id = %input.payment_id, dispute_id = %input.dispute_id))]
    pub async fn open_chargeback(&self, actor: &str, input: OpenChargebackInput) -> Result<CommandResult, AppError> {
        let command = PaymentCommand::OpenChargeback {
            payment_id: input.payment_id.clone(),
            dispute_id: input.dispute_id,
            dispute_amount: input.dispute_amount,
        };
        self.payment_command(actor, &input.payment_id, &command).await
    }

    /// Records a dispute's resolution.
    #[tracing::instrument(skip(self, input), fields(payment_id = %input.payment_id, dispute_id = %input.dispute_id))]
    pub async fn resolve_chargeback(
        &self,
        actor: &str,
        input: ResolveChargebackInput,
    ) -> Result<CommandResult, AppError> {
        let command = PaymentCommand::ResolveChargeback {
            payment_id: input.payment_id.clone(),
            dispute_id: input.dispute_id,
            resolution: input.resolution,
        };
        self.payment_command(actor, &input.payment_id, &command).await
    }

    /// Runs any domain command on `payment_id`'s stream through the decide/append loop, as `actor`,
    /// without calling Antom: for imports, tools and the demo.
    ///
    /// Refund requests should go through [`Ledger::refund`], which runs the saga; a `RequestRefund`
    /// sent here is recorded but never sent to Antom until the settle worker finds it open.
    #[tracing::instrument(skip(self, command), fields(payment_id = %payment_id))]
    pub async fn execute_command(
        &self,
        actor: &str,
        payment_id: &PaymentId,
        command: &PaymentCommand,
    ) -> Result<CommandResult, AppError> {
        self.payment_command(actor, payment_id, command).await
    }

    async fn payment_command(
        &self,
        actor: &str,
        payment_id: &PaymentId,
        command: &PaymentCommand,
    ) -> Result<CommandResult, AppError> {
        let stream = stream_of(payment_id)?;
        let decided = self.execute(&stream, command, actor).await?;
        let position = self.position_of(&decided).await?;
        let result = match &decided {
            Decided::Appended { .. } => ResultInfo::success("applied"),
            Decided::Unchanged { .. } => ResultInfo::success("already applied"),
            Decided::Refused { rejection, .. } => ResultInfo::refused(rejection.clone()),
            Decided::DuplicateElsewhere { event_id, .. } => ResultInfo::failed(
                domain::ResultCode::RepeatReqInconsistent,
                format!("event {event_id} is already stored on another stream"),
            ),
        };
        Ok(CommandResult {
            result,
            payment: decided.payment().state().cloned(),
            position,
        })
    }
}
