//! Mutations: payments and refunds. Every mutation needs the operator role;
//! the caller's key name is the actor on every event it causes. Refusals by
//! Antom's rules are *results* (`resultStatus: F` with the code), malformed
//! input is a `BAD_USER_INPUT` error that writes nothing.

use std::sync::Arc;

use async_graphql::{Context, ID, Object};

use crate::access::{RoleGuard, principal};
use crate::context::ApiContext;
use crate::error::ApiError;
use crate::input::{
    CapturePaymentInput, ChargebackInput, RecordPaymentInput, RefundInput, ResolveChargebackInput,
    refund_request_id as parse_refund_request_id,
};
use crate::operations::{self, AcknowledgeAnomalyResult};
use crate::role::Role;
use crate::types::{PaymentResult, RefundResult};

/// The root of all writes.
#[derive(Debug, Default)]
pub struct Mutation;

fn failed(error: app::AppError) -> ApiError {
    match error {
        app::AppError::Input(input) => ApiError::from_input("input", &input),
        other => ApiError::internal(&other),
    }
}

#[Object]
impl Mutation {
    /// Records a payment (from Antom's payment notification, an import, or by hand).
    #[graphql(guard = "RoleGuard::new(Role::Operator)")]
    async fn record_payment(
        &self,
        context: &Context<'_>,
        input: RecordPaymentInput,
    ) -> async_graphql::Result<PaymentResult> {
        let api = context.data::<ApiContext>()?;
        let actor = principal(context)?;
        let input = input.parse()?;
        let result = api.ledger.record_payment(&actor.name, input).await.map_err(failed)?;
        Ok(result.into())
    }

    /// Records the capture of a card payment: only captured money is refundable.
    #[graphql(guard = "RoleGuard::new(Role::Operator)")]
    async fn capture_payment(
        &self,
        context: &Context<'_>,
        input: CapturePaymentInput,
    ) -> async_graphql::Result<PaymentResult> {
        let api = context.data::<ApiContext>()?;
        let actor = principal(context)?;
        let input = input.parse()?;
        Ok(api
            .ledger
            .capture_payment(&actor.name, input)
            .await
            .map_err(failed)?
            .into())
    }

    /// Opens a dispute: no refund is allowed while its liability is undetermined.
    #[graphql(guard = "RoleGuard::new(Role::Operator)")]
    async fn open_chargeback(
        &self,
        context: &Context<'_>,
        input: ChargebackInput,
    ) -> async_graphql::Result<PaymentResult> {
        let api = context.data::<ApiContext>()?;
        let actor = principal(context)?;
        let input = input.parse()?;
        Ok(api
            .ledger
            .open_chargeback(&actor.name, input)
            .await
            .map_err(failed)?
            .into())
    }

    /// Resolves a dispute.
    #[graphql(guard = "RoleGuard::new(Role::Operator)")]
    async fn resolve_chargeback(
        &self,
        context: &Context<'_>,
        input: ResolveChargebackInput,
    ) -> async_graphql::Result<PaymentResult> {
        let api = context.data::<ApiContext>()?;
        let actor = principal(context)?;
        let input = input.parse()?;
        Ok(api
            .ledger
            .resolve_chargeback(&actor.name, input)
            .await
            .map_err(failed)?
            .into())
    }

    /// Refunds (part of) a payment through Antom. The same refundRequestId again returns the refund as it
    /// stands; with other content it is REPEAT_REQ_INCONSISTENT.
    #[graphql(guard = "RoleGuard::new(Role::Operator)")]
    async fn refund(&self, context: &Context<'_>, input: RefundInput) -> async_graphql::Result<RefundResult> {
        let api = context.data::<ApiContext>()?;
        let actor = principal(context)?;
        let input = input.parse()?;
        Ok(api.ledger.refund(&actor.name, input).await.map_err(failed)?.into())
    }

    /// Asks Antom for the refund's state now and records a final answer, as the calling key (operator or admin):
    /// SUCCESS or FAIL is recorded at once; a refund Antom never received (ORDER_NOT_EXIST) is sent again with the
    /// same refundRequestId and its answer recorded; an answer that fails verification, or a refund still
    /// processing at Antom, changes nothing. A final refund is answered from the log without asking Antom; an
    /// unknown refundRequestId is F ORDER_NOT_EXIST. The read-only question is the `refund` query.
    #[graphql(guard = "RoleGuard::new(Role::Operator)")]
    async fn inquiry_refund(
        &self,
        context: &Context<'_>,
        refund_request_id: ID,
    ) -> async_graphql::Result<RefundResult> {
        let api = context.data::<ApiContext>()?;
        let actor = principal(context)?;
        let id = parse_refund_request_id("refundRequestId", &refund_request_id)?;
        Ok(api
            .ledger
            .inquiry_refund(&actor.name, &id)
            .await
            .map_err(failed)?
            .into())
    }

    /// Acknowledges a reconciliation finding with a note saying what was done about it (admin only; once per
    /// finding). Recorded as an event on the run's stream.
    #[graphql(guard = "RoleGuard::new(Role::Admin)")]
    async fn acknowledge_reconciliation_finding(
        &self,
        context: &Context<'_>,
        run_id: ID,
        seq: i64,
        note: String,
    ) -> async_graphql::Result<crate::reconciliation::AcknowledgeResult> {
        let api = context.data::<ApiContext>()?;
        let actor = principal(context)?;
        crate::reconciliation::acknowledge(api, &actor.name, &run_id, seq, &note).await
    }

    /// Acknowledges a recorded anomaly (see `anomalies`) with a note, named by its `position` or its `id`
    /// (`R1#1`): an `AnomalyAcknowledged` event, so who looked at it, when and what they concluded is audited.
    /// Errors: `ANOMALY_NOT_FOUND`, `ANOMALY_ALREADY_ACKNOWLEDGED`, `BAD_USER_INPUT` (field `note`: empty or
    /// longer than 1000 characters; `position`/`id`). Admin only.
    #[graphql(guard = "RoleGuard::new(Role::Admin)")]
    async fn acknowledge_anomaly(
        &self,
        context: &Context<'_>,
        position: Option<i64>,
        id: Option<ID>,
        note: String,
    ) -> async_graphql::Result<AcknowledgeAnomalyResult> {
        let api = context.data::<ApiContext>()?;
        let actor = principal(context)?;
        let target = operations::anomaly_target(position, id.as_ref())?;
        Ok(operations::acknowledge(api, &actor.name, target, &note).await?)
    }

    /// Rebuilds every read model from the log and swaps it in, with the checkpoint, in one transaction (as
    /// `refund-ledger rebuild` does): queries keep reading the old rows until then, and the running projection
    /// writer waits and resumes after the swap. Answers once the swap committed. Admin only: it reads every
    /// event.
    #[graphql(guard = "RoleGuard::new(Role::Admin)")]
    async fn rebuild_read_models(&self, context: &Context<'_>) -> async_graphql::Result<ReadModelsRebuilt> {
        let api = context.data::<ApiContext>()?;
        let actor = principal(context)?;
        tracing::info!(actor = %actor.name, "read-model rebuild asked");
        let position =
            projections::rebuild_read_models(Arc::clone(&api.store), api.projections.as_ref(), &mut |_, _| {})
                .await
                .map_err(|error| ApiError::internal(&error))?;
        Ok(ReadModelsRebuilt {
            position: i64::try_from(position).unwrap_or(i64::MAX),
        })
    }
}

/// The answer to `rebuildReadModels`.
#[derive(Debug, Clone, async_graphql::SimpleObject)]
pub struct ReadModelsRebuilt {
    /// The checkpoint the rebuilt read models were swapped in at: they reflect the log up to this position.
    pub position: i64,
}
