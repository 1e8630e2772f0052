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
    /// Antom's report lists the refund refunded without naming its refundId.
    Refunded,
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
            ReportedOutcome::Refunded => (ReportedStatus::Refunded, None, None),
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
        .map_err(crate::page::projection_error)?;
    Ok(crate::page::connection(page, after.is_some()))
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

/// A length of time, as ISO 8601 writes it: `PT30S`, `PT15M`, `PT2H`, `P1D`, `P1DT12H` (days, hours,
/// minutes and whole seconds; no years or months, whose length varies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsoDuration(pub time::Duration);

/// Longest duration accepted: 100 years of days.
const DURATION_DAYS_MAX: i64 = 36_500;

impl IsoDuration {
    /// Parses `text`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<IsoDuration, String> {
        let expected = || format!("expected an ISO 8601 duration such as PT15M or P1DT2H, got {text:?}");
        let rest = text.strip_prefix('P').ok_or_else(expected)?;
        let (date, time_part) = match rest.split_once('T') {
            Some((date, time_part)) if !time_part.is_empty() => (date, Some(time_part)),
            Some(_) => return Err(expected()),
            None => (rest, None),
        };
        if date.is_empty() && time_part.is_none() {
            return Err(expected());
        }
        let mut total = time::Duration::ZERO;
        let mut add = |part: &str, units: &[(char, i64)]| -> Result<(), String> {
            let mut number = String::new();
            let mut allowed = units.iter();
            for character in part.chars() {
                if character.is_ascii_digit() {
                    number.push(character);
                    continue;
                }
                let seconds = allowed
                    .by_ref()
                    .find(|(unit, _)| *unit == character)
                    .map(|(_, seconds)| *seconds)
                    .ok_or_else(expected)?;
                let value: i64 = number.parse().map_err(|_| expected())?;
                if value > DURATION_DAYS_MAX * 86_400 {
                    return Err(format!("{text:?} is longer than {DURATION_DAYS_MAX} days"));
                }
                total += time::Duration::seconds(value.saturating_mul(seconds));
                number.clear();
            }
            if number.is_empty() { Ok(()) } else { Err(expected()) }
        };
        add(date, &[('D', 86_400)])?;
        if let Some(time_part) = time_part {
            add(time_part, &[('H', 3_600), ('M', 60), ('S', 1)])?;
        }
        if total > time::Duration::days(DURATION_DAYS_MAX) {
            return Err(format!("{text:?} is longer than {DURATION_DAYS_MAX} days"));
        }
        Ok(IsoDuration(total))
    }
}

#[async_graphql::Scalar(name = "Duration")]
impl async_graphql::ScalarType for IsoDuration {
    fn parse(value: async_graphql::Value) -> async_graphql::InputValueResult<Self> {
        match &value {
            async_graphql::Value::String(text) => {
                IsoDuration::parse(text).map_err(async_graphql::InputValueError::custom)
            }
            _ => Err(async_graphql::InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> async_graphql::Value {
        async_graphql::Value::String(format!("PT{}S", self.0.whole_seconds()))
    }
}

/// A refund whose outcome is not final yet, as the settle worker sees it.
#[derive(Debug, Clone, SimpleObject)]
pub struct OpenRefund {
    /// The refund.
    pub refund: crate::types::Refund,
    /// How long ago it was requested, in whole seconds.
    pub age_seconds: i64,
    /// The last exchange with Antom the log recorded for it: when its call came back U or with no answer
    /// (`PROCESSING`); `null` while it is `REQUESTED` (Antom not yet known to be called). An inquiry that
    /// finds it still processing records nothing; see `health.workerLastRun` for the worker's last pass.
    pub last_antom_contact: Option<OffsetDateTime>,
    /// When this instance's settle worker will next ask Antom about it (`null`: this instance runs no worker).
    pub next_worker_attempt: Option<OffsetDateTime>,
}

/// One page of `openRefunds`.
pub(crate) async fn open_refunds(
    api: &ApiContext,
    older_than: IsoDuration,
    after: Option<&projections::Cursor>,
    first: usize,
) -> Result<Connection<String, OpenRefund>, ApiError> {
    let now = api.ledger.now();
    let requested_before = now.checked_sub(older_than.0).unwrap_or(now);
    let page = api
        .read_models
        .open_refunds_page(requested_before, after, first)
        .await
        .map_err(crate::page::projection_error)?;
    let mut connection = Connection::new(after.is_some(), page.has_next_page);
    connection.edges.extend(page.items.into_iter().map(|(cursor, view)| {
        let last_antom_contact = (view.status == domain::RefundStatus::Processing).then_some(view.updated_at);
        let open = OpenRefund {
            age_seconds: (now - view.requested_at).whole_seconds().max(0),
            last_antom_contact,
            next_worker_attempt: api.ledger.next_worker_attempt(view.requested_at),
            refund: view.into(),
        };
        async_graphql::connection::Edge::new(cursor.as_str().to_owned(), open)
    }));
    Ok(connection)
}

/// How the service is: what `health` answers (and `/readyz` serves as JSON).
#[derive(Debug, Clone, SimpleObject, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// Whether the event store answered.
    pub store_reachable: bool,
    /// The log's last position (`null` when the store did not answer).
    pub log_position: Option<i64>,
    /// The read models' checkpoint (`null` when they did not answer).
    pub projected_position: Option<i64>,
    /// Events the read models trail the log by (`null` when either did not answer).
    pub projection_lag: Option<i64>,
    /// When this instance's settle worker last finished a pass (`null`: not yet, or it runs none).
    #[serde(with = "time::serde::rfc3339::option")]
    pub worker_last_run: Option<OffsetDateTime>,
    /// How often it runs, in milliseconds (`null`: this instance runs no worker).
    pub worker_interval_ms: Option<i64>,
    /// When Antom last gave this instance a verified answer to a refund or an inquiry.
    #[serde(with = "time::serde::rfc3339::option")]
    pub antom_last_success: Option<OffsetDateTime>,
}

/// The health of the service with this store, these read models and this ledger (the GraphQL `health` and
/// the server's `/readyz`).
pub async fn health(
    store: &dyn eventlog::EventStore,
    read_models: &dyn projections::ReadModels,
    ledger: &app::Ledger,
) -> Health {
    let head = store.head().await;
    if let Err(error) = &head {
        tracing::warn!(%error, "health: the event store did not answer");
    }
    let log_position = head.ok().map(|head| signed(head.position));
    let checkpoint = read_models.checkpoint().await;
    if let Err(error) = &checkpoint {
        tracing::warn!(%error, "health: the read models did not answer");
    }
    let projected_position = checkpoint.ok().map(signed);
    let observed = ledger.health();
    Health {
        store_reachable: log_position.is_some(),
        log_position,
        projected_position,
        projection_lag: log_position
            .zip(projected_position)
            .map(|(log, projected)| log.saturating_sub(projected).max(0)),
        worker_last_run: observed.worker_last_run,
        worker_interval_ms: observed
            .worker_interval
            .map(|interval| i64::try_from(interval.as_millis()).unwrap_or(i64::MAX)),
        antom_last_success: observed.antom_last_success,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_durations_parse_days_hours_minutes_seconds_only() {
        let seconds = |text: &str| IsoDuration::parse(text).map(|duration| duration.0.whole_seconds());
        assert_eq!(seconds("PT30S"), Ok(30));
        assert_eq!(seconds("PT15M"), Ok(900));
        assert_eq!(seconds("PT2H"), Ok(7_200));
        assert_eq!(seconds("P1D"), Ok(86_400));
        assert_eq!(seconds("P1DT2H3M4S"), Ok(93_784));
        assert_eq!(seconds("PT0S"), Ok(0));
        for bad in [
            "", "P", "PT", "15M", "P1M", "P1Y", "PT1D", "PT5", "PTM", "PT1S2M", "P-1D", "P100000D",
        ] {
            assert!(IsoDuration::parse(bad).is_err(), "{bad:?}");
        }
    }
}
