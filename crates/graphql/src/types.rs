//! GraphQL output types. They are built from the read models
//! (`projections`), from a stream folded by the aggregate (as-of reads), or
//! from the event log, and convert domain values for the wire here: amounts
//! keep Antom's `{currency, value}` shape plus an exact `decimal`.

use async_graphql::{ComplexObject, Context, Enum, Json, Object, SimpleObject};
use domain::{Money, PaymentState, Refund as DomainRefund, RefundStatus as DomainRefundStatus};
use eventlog::RecordedEvent;
use projections::{PAGE_SIZE_MAX, PaymentStatus as ViewPaymentStatus, PaymentView, RefundFilter, RefundView};
use rust_decimal::Decimal;
use time::OffsetDateTime;

use crate::context::{ApiContext, EventWindow};
use crate::cost::{self, EVENTS_PAGE_MAX, NESTED_LIST_DEFAULT, first_bound};
use crate::error::ApiError;

/// An amount as Antom writes it, with its exact decimal value.
#[derive(Debug, Clone, SimpleObject)]
pub struct Amount {
    /// ISO 4217 code.
    pub currency: String,
    /// Whole minor units as a string of digits (1000 = 10.00 USD).
    pub value: String,
    /// The amount in major units with the currency's exponent (10.00).
    pub decimal: Decimal,
}

impl From<Money> for Amount {
    fn from(money: Money) -> Self {
        Self {
            currency: money.currency().code().to_owned(),
            value: money.value_string(),
            decimal: money.to_decimal(),
        }
    }
}

/// Antom's `resultStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ResultStatus {
    /// Succeeded.
    S,
    /// Failed for good.
    F,
    /// Unknown or processing: the ledger settles it with Antom.
    U,
}

impl From<domain::ResultStatus> for ResultStatus {
    fn from(status: domain::ResultStatus) -> Self {
        match status {
            domain::ResultStatus::S => Self::S,
            domain::ResultStatus::F => Self::F,
            domain::ResultStatus::U => Self::U,
        }
    }
}

/// Antom's `refundStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum RefundStatus {
    /// Requested or sent; not final.
    Processing,
    /// Refunded.
    Success,
    /// Refused by the ledger or failed at Antom.
    Fail,
}

/// The ledger's finer refund state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum LedgerRefundStatus {
    /// Accepted and reserved; Antom not yet (known to be) called.
    Requested,
    /// Sent; Antom's outcome is open.
    Processing,
    /// Antom confirmed it.
    Succeeded,
    /// Antom refused it; the reservation was released.
    Failed,
    /// The ledger refused it before sending (Antom's rule codes).
    Rejected,
}

impl From<DomainRefundStatus> for LedgerRefundStatus {
    fn from(status: DomainRefundStatus) -> Self {
        match status {
            DomainRefundStatus::Requested => Self::Requested,
            DomainRefundStatus::Processing => Self::Processing,
            DomainRefundStatus::Succeeded => Self::Succeeded,
            DomainRefundStatus::Failed => Self::Failed,
            DomainRefundStatus::Rejected => Self::Rejected,
        }
    }
}

impl From<LedgerRefundStatus> for DomainRefundStatus {
    fn from(status: LedgerRefundStatus) -> Self {
        match status {
            LedgerRefundStatus::Requested => Self::Requested,
            LedgerRefundStatus::Processing => Self::Processing,
            LedgerRefundStatus::Succeeded => Self::Succeeded,
            LedgerRefundStatus::Failed => Self::Failed,
            LedgerRefundStatus::Rejected => Self::Rejected,
        }
    }
}

fn antom_status(status: DomainRefundStatus) -> RefundStatus {
    match status {
        DomainRefundStatus::Requested | DomainRefundStatus::Processing => RefundStatus::Processing,
        DomainRefundStatus::Succeeded => RefundStatus::Success,
        DomainRefundStatus::Failed | DomainRefundStatus::Rejected => RefundStatus::Fail,
    }
}

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum PaymentStatus {
    /// A dispute with undetermined liability is open: no refund allowed.
    InDispute,
    /// Needs capture before any refund.
    AwaitingCapture,
    /// Everything refundable was refunded.
    FullyRefunded,
    /// Some refunds succeeded or are pending.
    PartiallyRefunded,
    /// Nothing refunded yet.
    Refundable,
}

impl From<ViewPaymentStatus> for PaymentStatus {
    fn from(status: ViewPaymentStatus) -> Self {
        match status {
            ViewPaymentStatus::InDispute => Self::InDispute,
            ViewPaymentStatus::AwaitingCapture => Self::AwaitingCapture,
            ViewPaymentStatus::FullyRefunded => Self::FullyRefunded,
            ViewPaymentStatus::PartiallyRefunded => Self::PartiallyRefunded,
            ViewPaymentStatus::Refundable => Self::Refundable,
        }
    }
}

impl From<PaymentStatus> for ViewPaymentStatus {
    fn from(status: PaymentStatus) -> Self {
        match status {
            PaymentStatus::InDispute => Self::InDispute,
            PaymentStatus::AwaitingCapture => Self::AwaitingCapture,
            PaymentStatus::FullyRefunded => Self::FullyRefunded,
            PaymentStatus::PartiallyRefunded => Self::PartiallyRefunded,
            PaymentStatus::Refundable => Self::Refundable,
        }
    }
}

/// Antom's `result` triple.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "Result")]
pub struct ResultInfo {
    /// Antom's result code (`SUCCESS`, `REFUND_AMOUNT_EXCEED`, ...).
    pub result_code: String,
    /// S, F or U.
    pub result_status: ResultStatus,
    /// A message naming the field or id concerned.
    pub result_message: String,
}

impl From<app::ResultInfo> for ResultInfo {
    fn from(result: app::ResultInfo) -> Self {
        Self {
            result_code: result.code.as_str().to_owned(),
            result_status: result.status.into(),
            result_message: result.message,
        }
    }
}

/// A refund.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub struct Refund {
    /// The merchant's idempotency key.
    pub refund_request_id: String,
    /// The refunded payment.
    pub payment_id: String,
    /// The amount refunded (or asked for).
    pub refund_amount: Amount,
    /// The merchant's reason.
    pub refund_reason: Option<String>,
    /// Antom's view: PROCESSING, SUCCESS or FAIL.
    pub status: RefundStatus,
    /// The ledger's finer state.
    pub ledger_status: LedgerRefundStatus,
    /// Antom's refund id, once it succeeded.
    pub refund_id: Option<String>,
    /// When the ledger accepted (or refused) the request.
    pub requested_at: OffsetDateTime,
    /// When it reached a final state.
    pub settled_at: Option<OffsetDateTime>,
    /// The API key (or `worker`, `apo-notify`) that asked for it; absent on as-of reads.
    pub requested_by: Option<String>,
    /// Contradicting reports from Antom recorded for operators.
    pub anomaly_count: i32,
    #[graphql(skip)]
    pub(crate) result_code: Option<String>,
    #[graphql(skip)]
    pub(crate) result_message: Option<String>,
}

#[ComplexObject]
impl Refund {
    /// The refund's result as Antom would report it.
    async fn result(&self) -> ResultInfo {
        let (code, status, default_message) = match self.status {
            RefundStatus::Success => ("SUCCESS".to_owned(), ResultStatus::S, "refund succeeded"),
            RefundStatus::Fail => (
                self.result_code.clone().unwrap_or_else(|| "PROCESS_FAIL".to_owned()),
                ResultStatus::F,
                "refund failed",
            ),
            RefundStatus::Processing => (
                app::REFUND_IN_PROCESS.to_owned(),
                ResultStatus::U,
                "refund is being processed",
            ),
        };
        let message = match self.status {
            RefundStatus::Fail => self
                .result_message
                .clone()
                .unwrap_or_else(|| default_message.to_owned()),
            _ => default_message.to_owned(),
        };
        ResultInfo {
            result_code: code,
            result_status: status,
            result_message: message,
        }
    }
}

impl From<RefundView> for Refund {
    fn from(view: RefundView) -> Self {
        Self {
            refund_request_id: view.refund_request_id.to_string(),
            payment_id: view.payment_id.to_string(),
            refund_amount: view.refund_amount.into(),
            refund_reason: view.refund_reason,
            status: antom_status(view.status),
            ledger_status: view.status.into(),
            refund_id: view.refund_id.map(|id| id.to_string()),
            requested_at: view.requested_at,
            settled_at: view.settled_at,
            requested_by: Some(view.requested_by),
            anomaly_count: i32::try_from(view.anomaly_count).unwrap_or(i32::MAX),
            result_code: view.result_code.map(|code| code.as_str().to_owned()),
            result_message: view.result_message,
        }
    }
}

impl Refund {
    /// A refund as folded from its payment's stream.
    pub(crate) fn from_domain(payment_id: &domain::PaymentId, refund: &DomainRefund) -> Self {
        Self {
            refund_request_id: refund.refund_request_id.to_string(),
            payment_id: payment_id.to_string(),
            refund_amount: refund.refund_amount.into(),
            refund_reason: refund.refund_reason.clone(),
            status: antom_status(refund.status),
            ledger_status: refund.status.into(),
            refund_id: refund.refund_id.as_ref().map(|id| id.to_string()),
            requested_at: refund.requested_at,
            settled_at: refund.settled_at,
            requested_by: None,
            anomaly_count: i32::try_from(refund.anomalies.len()).unwrap_or(i32::MAX),
            result_code: refund.result_code.as_ref().map(|code| code.as_str().to_owned()),
            result_message: refund.result_message.clone(),
        }
    }
}

/// Where the refunds of a payment come from.
#[derive(Debug, Clone)]
pub(crate) enum RefundSource {
    /// The read models (current state).
    ReadModels,
    /// The stream folded up to a point (as-of reads).
    Folded(Vec<Refund>),
}

/// A payment and its balance.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub struct Payment {
    /// Antom's payment id.
    pub payment_id: String,
    /// The amount paid.
    pub payment_amount: Amount,
    /// Captured money: only this is refundable.
    pub captured_amount: Amount,
    /// Sum of succeeded refunds.
    pub refunded_amount: Amount,
    /// Sum of requested and processing refunds.
    pub pending_refund_amount: Amount,
    /// Disputes the customer won.
    pub charged_back_amount: Amount,
    /// captured - refunded - pending - charged back.
    pub refundable_amount: Amount,
    /// Where the payment stands.
    pub status: PaymentStatus,
    /// Antom's payment method type.
    pub payment_method_type: String,
    /// When the customer paid.
    pub payment_time: OffsetDateTime,
    /// Whether the payment needs capture before a refund.
    pub capture_required: bool,
    /// Whether a dispute with undetermined liability is open.
    pub open_chargeback: bool,
    /// The global position this view reflects.
    pub position: i64,
    #[graphql(skip)]
    pub(crate) refund_source: RefundSource,
}

#[ComplexObject]
impl Payment {
    /// The payment's refunds, oldest first: the first `first` (default 100, at most 500); the root
    /// `refunds(filter: { paymentId })` pages through all of them.
    #[graphql(complexity = "cost::store_list(first, NESTED_LIST_DEFAULT, PAGE_SIZE_MAX, child_complexity)")]
    async fn refunds(&self, context: &Context<'_>, first: Option<i32>) -> async_graphql::Result<Vec<Refund>> {
        let limit = first_bound(first, NESTED_LIST_DEFAULT, PAGE_SIZE_MAX)?;
        match &self.refund_source {
            RefundSource::Folded(refunds) => Ok(refunds.iter().take(limit).cloned().collect()),
            RefundSource::ReadModels => {
                let api = context.data::<ApiContext>()?;
                let payment_id =
                    domain::PaymentId::parse(&self.payment_id).map_err(|error| ApiError::from_input("", &error))?;
                let filter = RefundFilter {
                    payment_id: Some(payment_id),
                    ..RefundFilter::default()
                };
                let page = api
                    .read_models
                    .refunds(&filter, None, limit)
                    .await
                    .map_err(|error| ApiError::internal(&error))?;
                Ok(page.items.into_iter().map(|(_, view)| view.into()).collect())
            }
        }
    }

    /// The payment's events, with position, time, actor and hashes: the first `first` (default 100, at
    /// most 1000); the root `events(paymentId:, fromPosition:)` pages through all of them.
    #[graphql(complexity = "cost::store_list(first, NESTED_LIST_DEFAULT, EVENTS_PAGE_MAX, child_complexity)")]
    async fn events(&self, context: &Context<'_>, first: Option<i32>) -> async_graphql::Result<Vec<LedgerEvent>> {
        let limit = first_bound(first, NESTED_LIST_DEFAULT, EVENTS_PAGE_MAX)?;
        let api = context.data::<ApiContext>()?;
        let window = EventWindow {
            from_position: 0,
            upto_position: Some(u64::try_from(self.position).unwrap_or(0)),
            limit,
        };
        let events = api.payment_events(&self.payment_id, window).await?;
        Ok(events.into_iter().map(LedgerEvent::from).collect())
    }
}

impl From<PaymentView> for Payment {
    fn from(view: PaymentView) -> Self {
        Self {
            payment_id: view.payment_id.to_string(),
            payment_amount: view.payment_amount.into(),
            captured_amount: view.captured.into(),
            refunded_amount: view.refunded.into(),
            pending_refund_amount: view.pending.into(),
            charged_back_amount: view.charged_back.into(),
            refundable_amount: view.refundable.into(),
            status: view.status.into(),
            payment_method_type: view.payment_method_type.to_string(),
            payment_time: view.payment_time,
            capture_required: view.capture_required,
            open_chargeback: view.open_chargeback,
            position: i64::try_from(view.last_position).unwrap_or(i64::MAX),
            refund_source: RefundSource::ReadModels,
        }
    }
}

impl Payment {
    /// A payment folded from its stream up to `position`.
    pub(crate) fn from_state(state: &PaymentState, position: u64) -> Self {
        let status = ViewPaymentStatus::derive(
            state.has_open_chargeback(),
            state.capture_required,
            state.captured,
            state.refunded,
            state.pending,
            state.refundable(),
        );
        let mut refunds: Vec<Refund> = state
            .refunds
            .values()
            .map(|refund| Refund::from_domain(&state.payment_id, refund))
            .collect();
        refunds.sort_by(|a, b| (a.requested_at, &a.refund_request_id).cmp(&(b.requested_at, &b.refund_request_id)));
        Self {
            payment_id: state.payment_id.to_string(),
            payment_amount: state.payment_amount.into(),
            captured_amount: state.captured.into(),
            refunded_amount: state.refunded.into(),
            pending_refund_amount: state.pending.into(),
            charged_back_amount: state.charged_back.into(),
            refundable_amount: state.refundable().into(),
            status: status.into(),
            payment_method_type: state.payment_method_type.to_string(),
            payment_time: state.payment_time,
            capture_required: state.capture_required,
            open_chargeback: state.has_open_chargeback(),
            position: i64::try_from(position).unwrap_or(i64::MAX),
            refund_source: RefundSource::Folded(refunds),
        }
    }
}

/// One stored event with its envelope.
#[derive(Debug, Clone)]
pub struct LedgerEvent(pub(crate) RecordedEvent);

impl From<RecordedEvent> for LedgerEvent {
    fn from(event: RecordedEvent) -> Self {
        Self(event)
    }
}

#[Object]
impl LedgerEvent {
    /// Global position (dense, from 1).
    async fn position(&self) -> i64 {
        i64::try_from(self.0.position).unwrap_or(i64::MAX)
    }
    /// The stream, `payment-{paymentId}`.
    async fn stream(&self) -> &str {
        self.0.stream.as_str()
    }
    /// Revision in the stream (dense, from 0).
    async fn stream_revision(&self) -> i64 {
        i64::try_from(self.0.revision).unwrap_or(i64::MAX)
    }
    /// The event's id.
    async fn event_id(&self) -> String {
        self.0.event_id.to_string()
    }
    /// The event type (`RefundRequested`, ...).
    #[graphql(name = "type")]
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    /// The schema version of `data`.
    async fn schema_version(&self) -> i32 {
        i32::try_from(self.0.schema_version).unwrap_or(i32::MAX)
    }
    /// When the store committed it.
    async fn recorded_at(&self) -> OffsetDateTime {
        self.0.recorded_at
    }
    /// Who caused it: an API key name, `worker` or `apo-notify`.
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    /// The event's data as stored (see schema/events.json).
    async fn data(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_slice(&self.0.payload).unwrap_or(serde_json::Value::Null))
    }
    /// SHA-256 over the previous hash and this event (hex).
    async fn hash(&self) -> String {
        hex::encode(self.0.hash)
    }
    /// The previous event's hash (hex; zeros for position 1).
    async fn prev_hash(&self) -> String {
        hex::encode(self.0.prev_hash)
    }
}

/// What a refund mutation answers.
#[derive(Debug, Clone, SimpleObject)]
pub struct RefundResult {
    /// Antom's result triple: S, F with the rule's code, or U while the outcome is open.
    pub result: ResultInfo,
    /// The refund as it stands (absent when nothing was recorded, e.g. ORDER_NOT_EXIST).
    pub refund: Option<Refund>,
    /// The global position written; pass it as `atLeastPosition` to read your write.
    pub position: i64,
}

impl From<app::RefundResult> for RefundResult {
    fn from(result: app::RefundResult) -> Self {
        Self {
            result: result.result.into(),
            refund: result
                .refund
                .map(|snapshot| Refund::from_domain(&snapshot.payment_id, &snapshot.refund)),
            position: i64::try_from(result.position).unwrap_or(i64::MAX),
        }
    }
}

/// What a payment mutation answers.
#[derive(Debug, Clone, SimpleObject)]
pub struct PaymentResult {
    /// Antom's result triple.
    pub result: ResultInfo,
    /// The payment as it stands after the command.
    pub payment: Option<Payment>,
    /// The global position written; pass it as `atLeastPosition` to read your write.
    pub position: i64,
}

impl From<app::CommandResult> for PaymentResult {
    fn from(result: app::CommandResult) -> Self {
        Self {
            result: result.result.into(),
            payment: result
                .payment
                .as_ref()
                .map(|state| Payment::from_state(state, result.position)),
            position: i64::try_from(result.position).unwrap_or(i64::MAX),
        }
    }
}

/// Refund totals of one day, currency and status.
#[derive(Debug, Clone, SimpleObject)]
pub struct DailyTotal {
    /// The UTC date refunds were requested on.
    pub date: String,
    /// ISO 4217 code.
    pub currency: String,
    /// The ledger's refund state.
    pub status: LedgerRefundStatus,
    /// Number of refunds.
    pub count: i64,
    /// Their sum.
    pub amount: Amount,
}

impl From<projections::DailyTotal> for DailyTotal {
    fn from(total: projections::DailyTotal) -> Self {
        Self {
            date: total.date.to_string(),
            currency: total.currency.code().to_owned(),
            status: total.status.into(),
            count: i64::try_from(total.count).unwrap_or(i64::MAX),
            amount: total.amount.into(),
        }
    }
}
