//! Queries: balances, refunds, totals and the events behind them. Every
//! query needs at least the viewer role.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object};
use projections::{Cursor, PAGE_SIZE_MAX, PaymentFilter as ViewPaymentFilter, RefundFilter as ViewRefundFilter};
use time::{Date, OffsetDateTime};

use crate::access::RoleGuard;
use crate::context::{ApiContext, Cutoff, EventWindow};
use crate::cost::{self, EVENTS_PAGE_MAX, PAGE_SIZE_DEFAULT, first_bound};
use crate::error::ApiError;
use crate::input::{currency, payment_id, refund_request_id as parse_refund_request_id};
use crate::operations::{self, Anomaly};
use crate::page::{connection, projection_error};
use crate::role::Role;
use crate::types::{DailyTotal, LedgerEvent, LedgerRefundStatus, Payment, PaymentStatus, Refund};

/// Filters of `payments`.
#[derive(Debug, Clone, Default, InputObject)]
pub struct PaymentFilter {
    /// Only this currency.
    pub currency: Option<String>,
    /// Only payments in this state.
    pub status: Option<PaymentStatus>,
    /// Paid at or after.
    pub paid_from: Option<OffsetDateTime>,
    /// Paid before.
    pub paid_to: Option<OffsetDateTime>,
}

/// Filters of `refunds`.
#[derive(Debug, Clone, Default, InputObject)]
pub struct RefundFilter {
    /// Only refunds of this payment.
    pub payment_id: Option<ID>,
    /// Only refunds in this state.
    pub status: Option<LedgerRefundStatus>,
    /// Only this currency.
    pub currency: Option<String>,
    /// Requested at or after.
    pub requested_from: Option<OffsetDateTime>,
    /// Requested before.
    pub requested_to: Option<OffsetDateTime>,
}

fn page_size(first: Option<i32>) -> Result<usize, ApiError> {
    first_bound(first, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX)
}

fn cursor(after: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    after
        .map(|text| {
            Cursor::parse(text).map_err(|error| ApiError::BadInput {
                field: "after".to_owned(),
                message: format!("after: {error}"),
            })
        })
        .transpose()
}

fn position(field: &str, value: Option<i64>) -> Result<Option<u64>, ApiError> {
    value
        .map(|value| {
            u64::try_from(value).map_err(|_| ApiError::BadInput {
                field: field.to_owned(),
                message: format!("{field}: must not be negative"),
            })
        })
        .transpose()
}

/// The root of all reads.
#[derive(Debug, Default)]
pub struct Query;

#[Object]
impl Query {
    /// A payment's balance: current (from the read models, after `atLeastPosition` if given), or as it stood
    /// at `asOf` / `atPosition` (folded from its stream).
    #[graphql(
        guard = "RoleGuard::new(Role::Viewer)",
        complexity = "cost::store_read(child_complexity)"
    )]
    async fn payment(
        &self,
        context: &Context<'_>,
        payment_id: ID,
        as_of: Option<OffsetDateTime>,
        at_position: Option<i64>,
        at_least_position: Option<i64>,
    ) -> async_graphql::Result<Option<Payment>> {
        let api = context.data::<ApiContext>()?;
        let id = payment_id_arg(&payment_id)?;
        let cutoff = match (as_of, position("atPosition", at_position)?) {
            (Some(_), Some(_)) => {
                return Err(ApiError::BadInput {
                    field: "asOf".to_owned(),
                    message: "asOf: give asOf or atPosition, not both".to_owned(),
                }
                .into());
            }
            (Some(time), None) => Some(Cutoff::Time(time)),
            (None, Some(position)) => Some(Cutoff::Position(position)),
            (None, None) => None,
        };
        if let Some(cutoff) = cutoff {
            let folded = api.fold_payment(id.as_str(), cutoff).await?;
            return Ok(folded
                .and_then(|(payment, position)| payment.state().map(|state| Payment::from_state(state, position))));
        }
        api.wait_for(at_least_position).await?;
        let view = api.read_models.payment(&id).await.map_err(projection_error)?;
        Ok(view.map(Payment::from))
    }

    /// Payments, oldest payment first, with Relay cursors: `first` (default 50, at most 500) per page.
    #[graphql(
        guard = "RoleGuard::new(Role::Viewer)",
        complexity = "cost::store_list(first, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, child_complexity)"
    )]
    async fn payments(
        &self,
        context: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<PaymentFilter>,
    ) -> async_graphql::Result<Connection<String, Payment>> {
        let api = context.data::<ApiContext>()?;
        let filter = filter.unwrap_or_default();
        let view_filter = ViewPaymentFilter {
            currency: filter
                .currency
                .as_deref()
                .map(|code| currency("filter.currency", code))
                .transpose()?,
            status: filter.status.map(Into::into),
            paid_from: filter.paid_from,
            paid_to: filter.paid_to,
        };
        let after = cursor(after.as_deref())?;
        let page = api
            .read_models
            .payments(&view_filter, after.as_ref(), page_size(first)?)
            .await
            .map_err(projection_error)?;
        Ok(connection(page, after.is_some()))
    }

    /// A refund by the merchant's refundRequestId.
    #[graphql(
        guard = "RoleGuard::new(Role::Viewer)",
        complexity = "cost::store_read(child_complexity)"
    )]
    async fn refund(
        &self,
        context: &Context<'_>,
        refund_request_id: ID,
        at_least_position: Option<i64>,
    ) -> async_graphql::Result<Option<Refund>> {
        let api = context.data::<ApiContext>()?;
        let id = parse_refund_request_id("refundRequestId", &refund_request_id)?;
        api.wait_for(at_least_position).await?;
        let view = api.read_models.refund(&id).await.map_err(projection_error)?;
        Ok(view.map(Refund::from))
    }

    /// Refunds, oldest request first, with Relay cursors: `first` (default 50, at most 500) per page.
    #[graphql(
        guard = "RoleGuard::new(Role::Viewer)",
        complexity = "cost::store_list(first, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, child_complexity)"
    )]
    async fn refunds(
        &self,
        context: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<RefundFilter>,
    ) -> async_graphql::Result<Connection<String, Refund>> {
        let api = context.data::<ApiContext>()?;
        let filter = filter.unwrap_or_default();
        let view_filter = ViewRefundFilter {
            payment_id: filter
                .payment_id
                .as_deref()
                .map(|id| payment_id("filter.paymentId", id))
                .transpose()?,
            status: filter.status.map(Into::into),
            currency: filter
                .currency
                .as_deref()
                .map(|code| currency("filter.currency", code))
                .transpose()?,
            requested_from: filter.requested_from,
            requested_to: filter.requested_to,
        };
        let after = cursor(after.as_deref())?;
        let page = api
            .read_models
            .refunds(&view_filter, after.as_ref(), page_size(first)?)
            .await
            .map_err(projection_error)?;
        Ok(connection(page, after.is_some()))
    }

    /// Stored events from a global position (all streams, or one payment's): `first` (default 50, at most
    /// 1000) per page.
    #[graphql(
        guard = "RoleGuard::new(Role::Viewer)",
        complexity = "cost::store_list(first, PAGE_SIZE_DEFAULT, EVENTS_PAGE_MAX, child_complexity)"
    )]
    async fn events(
        &self,
        context: &Context<'_>,
        from_position: Option<i64>,
        first: Option<i32>,
        payment_id: Option<ID>,
    ) -> async_graphql::Result<Vec<LedgerEvent>> {
        let api = context.data::<ApiContext>()?;
        let from = position("fromPosition", from_position)?.unwrap_or(1);
        let limit = first_bound(first, PAGE_SIZE_DEFAULT, EVENTS_PAGE_MAX)?;
        let events = match payment_id {
            Some(id) => {
                let id = payment_id_arg(&id)?;
                let window = EventWindow {
                    from_position: from,
                    upto_position: None,
                    limit,
                };
                api.payment_events(id.as_str(), window).await?
            }
            None => api
                .store
                .read_all(from, limit)
                .await
                .map_err(|error| ApiError::internal(&error))?,
        };
        Ok(events.into_iter().map(LedgerEvent::from).collect())
    }

    /// Refund totals per day (UTC date of the request), currency and state.
    #[graphql(
        guard = "RoleGuard::new(Role::Viewer)",
        complexity = "cost::daily_totals(&from, &to, child_complexity)"
    )]
    async fn daily_totals(
        &self,
        context: &Context<'_>,
        from: String,
        to: String,
        currency_code: Option<String>,
    ) -> async_graphql::Result<Vec<DailyTotal>> {
        let api = context.data::<ApiContext>()?;
        let date = |field: &str, text: &str| {
            Date::parse(text, cost::DATE_FORMAT).map_err(|_| ApiError::BadInput {
                field: field.to_owned(),
                message: format!("{field}: expected a date like 2026-01-31"),
            })
        };
        let from = date("from", &from)?;
        let to = date("to", &to)?;
        let currency = currency_code
            .as_deref()
            .map(|code| currency("currencyCode", code))
            .transpose()?;
        let totals = api
            .read_models
            .daily_totals(from, to, currency)
            .await
            .map_err(projection_error)?;
        Ok(totals.into_iter().map(DailyTotal::from).collect())
    }

    /// Reconciliation runs, newest first, with cursors: `first` (default 50, at most 500) per page.
    #[graphql(
        guard = "RoleGuard::new(Role::Viewer)",
        complexity = "cost::store_list(first, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, child_complexity)"
    )]
    async fn reconciliations(
        &self,
        context: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, crate::reconciliation::Reconciliation>> {
        crate::reconciliation::reconciliations(context.data::<ApiContext>()?, first, after).await
    }

    /// A reconciliation run by its id, with its findings.
    #[graphql(
        guard = "RoleGuard::new(Role::Viewer)",
        complexity = "cost::store_read(child_complexity)"
    )]
    async fn reconciliation(
        &self,
        context: &Context<'_>,
        run_id: ID,
    ) -> async_graphql::Result<Option<crate::reconciliation::Reconciliation>> {
        crate::reconciliation::reconciliation(context.data::<ApiContext>()?, &run_id).await
    }

    /// Refunds whose outcome is not final (`REQUESTED` or `PROCESSING`) and that were requested more than
    /// `olderThan` ago (an ISO 8601 duration, e.g. `PT15M`; default `PT0S`), oldest first, with the last
    /// exchange with Antom and the settle worker's next attempt: `first` (default 50, at most 500) per page.
    #[graphql(
        guard = "RoleGuard::new(Role::Viewer)",
        complexity = "cost::store_list(first, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, child_complexity)"
    )]
    async fn open_refunds(
        &self,
        context: &Context<'_>,
        older_than: Option<operations::IsoDuration>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, operations::OpenRefund>> {
        let api = context.data::<ApiContext>()?;
        let after = cursor(after.as_deref())?;
        let older_than = older_than.unwrap_or(operations::IsoDuration(time::Duration::ZERO));
        Ok(operations::open_refunds(api, older_than, after.as_ref(), page_size(first)?).await?)
    }

    /// How the service is: the store reachable, the read models' lag, the settle worker's last pass and
    /// Antom's last verified answer in this instance.
    #[graphql(
        guard = "RoleGuard::new(Role::Viewer)",
        complexity = "cost::store_read(child_complexity)"
    )]
    async fn health(&self, context: &Context<'_>) -> async_graphql::Result<operations::Health> {
        let api = context.data::<ApiContext>()?;
        Ok(operations::health(api.store.as_ref(), api.read_models.as_ref(), &api.ledger).await)
    }

    /// Every contradicting outcome report the ledger recorded (Antom said one thing about a refund whose final
    /// state the ledger already held), oldest first, with its acknowledgement: `first` (default 50, at most
    /// 500) per page.
    #[graphql(
        guard = "RoleGuard::new(Role::Viewer)",
        complexity = "cost::store_list(first, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, child_complexity)"
    )]
    async fn anomalies(
        &self,
        context: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        at_least_position: Option<i64>,
    ) -> async_graphql::Result<Connection<String, Anomaly>> {
        let api = context.data::<ApiContext>()?;
        let after = cursor(after.as_deref())?;
        api.wait_for(at_least_position).await?;
        Ok(operations::anomalies(api, after.as_ref(), page_size(first)?).await?)
    }

    /// The log's last position and hash, and how far the read models are.
    #[graphql(
        guard = "RoleGuard::new(Role::Viewer)",
        complexity = "cost::store_read(child_complexity)"
    )]
    async fn ledger_head(&self, context: &Context<'_>) -> async_graphql::Result<LedgerHead> {
        let api = context.data::<ApiContext>()?;
        let head = api.store.head().await.map_err(|error| ApiError::internal(&error))?;
        let checkpoint = api.read_models.checkpoint().await.map_err(projection_error)?;
        Ok(LedgerHead {
            position: i64::try_from(head.position).unwrap_or(i64::MAX),
            hash: hex::encode(head.hash),
            projected_position: i64::try_from(checkpoint).unwrap_or(i64::MAX),
        })
    }

    /// Verifies the whole log: recomputes the hash chain, checks positions are dense and every stream's
    /// revisions gapless, and returns the digest (`position:hash`) to keep. Given an earlier `digest`, also
    /// proves the log still extends it. Admin only: it reads every event.
    #[graphql(
        guard = "RoleGuard::new(Role::Admin)",
        complexity = "cost::VERIFY_LEDGER_COST.saturating_add(child_complexity)"
    )]
    async fn verify_ledger(
        &self,
        context: &Context<'_>,
        digest: Option<String>,
    ) -> async_graphql::Result<LedgerVerification> {
        let api = context.data::<ApiContext>()?;
        let expected = digest
            .as_deref()
            .map(str::parse::<audit::Digest>)
            .transpose()
            .map_err(|error| ApiError::BadInput {
                field: "digest".to_owned(),
                message: error.to_string(),
            })?;
        let report = audit::verify_log(api.store.as_ref(), expected)
            .await
            .map_err(|error| ApiError::internal(&error))?;
        Ok(LedgerVerification::from(report))
    }
}

/// What `verifyLedger` found.
#[derive(Debug, Clone, async_graphql::SimpleObject)]
pub struct LedgerVerification {
    /// Whether the log verified (and extends the given digest, if any).
    pub intact: bool,
    /// Events verified (before the failure, if any).
    pub events: i64,
    /// Distinct streams among them.
    pub streams: i64,
    /// `position:hash` of the last verified event: the digest to keep.
    pub digest: String,
    /// The earlier digest the log was proven to extend, when one was given and it holds.
    pub extends_digest: Option<String>,
    /// The first problem, when not intact.
    pub failure: Option<VerificationFailure>,
}

/// The first bad position of the log.
#[derive(Debug, Clone, async_graphql::SimpleObject)]
pub struct VerificationFailure {
    /// The first bad position (for a missing event: where it should be).
    pub position: i64,
    /// The stream of the bad event, when it can be told.
    pub stream: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl From<audit::VerifyReport> for LedgerVerification {
    fn from(report: audit::VerifyReport) -> Self {
        let count = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        Self {
            intact: report.is_intact(),
            events: count(report.events),
            streams: count(report.streams),
            digest: report.digest.to_string(),
            extends_digest: report.extends.map(|digest| digest.to_string()),
            failure: report.finding.map(|finding| VerificationFailure {
                position: count(finding.position),
                stream: finding.stream,
                reason: finding.reason,
            }),
        }
    }
}

/// The end of the log.
#[derive(Debug, Clone, async_graphql::SimpleObject)]
pub struct LedgerHead {
    /// Last global position.
    pub position: i64,
    /// Its hash (hex): the digest an auditor keeps.
    pub hash: String,
    /// Last position the read models reflect.
    pub projected_position: i64,
}

fn payment_id_arg(id: &ID) -> Result<domain::PaymentId, ApiError> {
    payment_id("paymentId", id)
}
