//! What operators read and do beyond payments and refunds: the anomalies the ledger recorded and their
//! acknowledgement. The resolvers sit in [`crate::query`] and [`crate::mutation`]; the types and the work
//! are here.

use async_graphql::connection::Connection;
use async_graphql::{Enum, ID, SimpleObject};
use domain::{OutcomeSource as DomainOutcomeSource, RefundRequestId, ReportedOutcome};
use projections::AnomalyView;
use time::OffsetDateTime;

use crate::context::ApiContext;
use crate::error::ApiError;
use crate::input::refund_request_id as parse_refund_request_id;
use crate::types::LedgerRefundStatus;

/// What Antom reported, in its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ReportedStatus {
    /// Antom said the refund succeeded.
    Success,
    /// Antom said the refund failed.
    Fail,
    /// Antom took the refund back (a REFUND_REVERSAL row of its reports).
    Reversed,
}

/// Where an outcome report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum OutcomeSource {
    /// The synchronous answer to the refund call.
    RefundResponse,
    /// An inquiryRefund answer.
    Inquiry,
    /// Antom's refund notification.
    Notification,
    /// A reconciliation run against Antom's reports.
    Reconciliation,
}

impl From<DomainOutcomeSource> for OutcomeSource {
    fn from(source: DomainOutcomeSource) -> Self {
        match source {
            DomainOutcomeSource::RefundResponse => Self::RefundResponse,
            DomainOutcomeSource::Inquiry => Self::Inquiry,
            DomainOutcomeSource::Notification => Self::Notification,
            DomainOutcomeSource::Reconciliation => Self::Reconciliation,
        }
    }
}

/// A contradicting outcome report: Antom said one thing about a refund whose final state the ledger already
/// held. The ledger keeps its state and records the report for an operator.
#[derive(Debug, Clone, SimpleObject)]
pub struct Anomaly {
    /// `{refundRequestId}#{number}`: pass it (or `position`) to `acknowledgeAnomaly`.
    pub id: ID,
    /// Global position of the `RefundOutcomeAnomaly` event.
    pub position: i64,
    /// The refund it is about.
    pub refund_request_id: String,
    /// That refund's payment.
    pub payment_id: String,
    /// Which anomaly of the refund it is: 1 for the first.
    pub number: i32,
    /// What the ledger held (and keeps).
    pub ledger_status: LedgerRefundStatus,
    /// What Antom said.
    pub reported_status: ReportedStatus,
    /// Antom's refund id, when it said SUCCESS.
    pub reported_refund_id: Option<String>,
    /// Antom's result code, when it said FAIL.
    pub reported_result_code: Option<String>,
    /// Where Antom said it.
    pub source: OutcomeSource,
    /// When the report came.
    pub reported_at: OffsetDateTime,
    /// When the ledger recorded it.
    pub recorded_at: OffsetDateTime,
    /// The operator's acknowledgement, once given.
    pub acknowledgement: Option<AnomalyAcknowledgement>,
}

/// An operator's acknowledgement of an anomaly.
#[derive(Debug, Clone, SimpleObject)]
pub struct AnomalyAcknowledgement {
    /// Global position of the `AnomalyAcknowledged` event.
    pub position: i64,
    /// The API key that acknowledged it.
    pub acknowledged_by: String,
    /// The operator's note.
    pub note: String,
    /// When.
    pub acknowledged_at: OffsetDateTime,
}

/// The answer to `acknowledgeAnomaly`.
#[derive(Debug, Clone, SimpleObject)]
pub struct AcknowledgeAnomalyResult {
    /// The anomaly acknowledged, `{refundRequestId}#{number}`.
    pub id: ID,
    /// The refund whose anomaly it is.
    pub refund_request_id: String,
    /// The anomaly's number within the refund.
    pub number: i32,
    /// The position of the acknowledgement: pass it as `atLeastPosition` to read it back.
    pub position: i64,
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn anomaly_id(refund_request_id: &RefundRequestId, number: u32) -> ID {
    ID(format!("{refund_request_id}#{number}"))
}

impl From<AnomalyView> for Anomaly {
    fn from(view: AnomalyView) -> Self {
        let (reported_status, reported_refund_id, reported_result_code) = match view.reported {
            ReportedOutcome::Success { refund_id } => (ReportedStatus::Success, Some(refund_id.to_string()), None),
            ReportedOutcome::Fail { result_code } => (ReportedStatus::Fail, None, Some(result_code.to_string())),
            ReportedOutcome::Reversed => (ReportedStatus::Reversed, None, None),
        };
        Self {
            id: anomaly_id(&view.refund_request_id, view.anomaly),
            position: signed(view.position),
            refund_request_id: view.refund_request_id.to_string(),
            payment_id: view.payment_id.to_string(),
            number: i32::try_from(view.anomaly).unwrap_or(i32::MAX),
            ledger_status: view.recorded_status.into(),
            reported_status,
            reported_refund_id,
            reported_result_code,
            source: view.source.into(),
            reported_at: view.reported_at,
            recorded_at: view.recorded_at,
            acknowledgement: view.acknowledgement.map(|ack| AnomalyAcknowledgement {
                position: signed(ack.position),
                acknowledged_by: ack.acknowledged_by,
                note: ack.note,
                acknowledged_at: ack.acknowledged_at,
            }),
        }
    }
}

/// One page of `anomalies`.
pub(crate) async fn anomalies(
    api: &ApiContext,
    after: Option<&projections::Cursor>,
    first: usize,
) -> Result<Connection<String, Anomaly>, ApiError> {
    let page = api
        .read_models
        .anomalies(after, first)
        .await
        .map_err(crate::query::projection_error)?;
    Ok(crate::query::connection(page, after.is_some()))
}

/// Parses the anomaly `acknowledgeAnomaly` names: exactly one of `position` and `id`.
pub(crate) fn anomaly_target(position: Option<i64>, id: Option<&ID>) -> Result<app::AnomalyTarget, ApiError> {
    let bad = |field: &str, message: String| ApiError::BadInput {
        field: field.to_owned(),
        message: format!("{field}: {message}"),
    };
    match (position, id) {
        (Some(position), None) => u64::try_from(position)
            .ok()
            .filter(|position| *position > 0)
            .map(app::AnomalyTarget::Position)
            .ok_or_else(|| bad("position", "must be a position of the log (1 or more)".to_owned())),
        (None, Some(id)) => {
            let expected = || {
                bad(
                    "id",
                    "expected an anomaly id like R1#1 (refundRequestId#number)".to_owned(),
                )
            };
            let (refund_request_id, number) = id.as_str().rsplit_once('#').ok_or_else(expected)?;
            let anomaly = number
                .parse::<u32>()
                .ok()
                .filter(|number| *number > 0)
                .ok_or_else(expected)?;
            Ok(app::AnomalyTarget::Number {
                refund_request_id: parse_refund_request_id("id", refund_request_id)?,
                anomaly,
            })
        }
        (Some(_), Some(_)) => Err(bad("position", "give position or id, not both".to_owned())),
        (None, None) => Err(bad("position", "give the anomaly's position or id".to_owned())),
    }
}

/// Records an acknowledgement through the ledger.
pub(crate) async fn acknowledge(
    api: &ApiContext,
    actor: &str,
    target: app::AnomalyTarget,
    note: &str,
) -> Result<AcknowledgeAnomalyResult, ApiError> {
    let acknowledged = api
        .ledger
        .acknowledge_anomaly(actor, target, note)
        .await
        .map_err(|error| match error {
            app::AppError::Input(input) => ApiError::from_input("", &input),
            app::AppError::UnknownAnomaly { .. } => ApiError::AnomalyNotFound {
                message: error.to_string(),
            },
            app::AppError::AnomalyAlreadyAcknowledged { .. } => ApiError::AnomalyAlreadyAcknowledged {
                message: error.to_string(),
            },
            other => ApiError::internal(&other),
        })?;
    Ok(AcknowledgeAnomalyResult {
        id: anomaly_id(&acknowledged.refund_request_id, acknowledged.anomaly),
        refund_request_id: acknowledged.refund_request_id.to_string(),
        number: i32::try_from(acknowledged.anomaly).unwrap_or(i32::MAX),
        position: signed(acknowledged.position),
    })
}
