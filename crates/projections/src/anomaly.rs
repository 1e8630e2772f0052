//! The anomalies read model: every contradicting outcome report the ledger recorded
//! (`RefundOutcomeAnomaly`), with the operator's acknowledgement (`AnomalyAcknowledged`) once there is one.
//!
//! One row per anomaly, keyed by the global position of its `RefundOutcomeAnomaly` event. Within its refund an
//! anomaly has a number (1 for the refund's first, 2 for the second, ...), the number the domain's
//! `AcknowledgeAnomaly` command names; the row keeps both.

use domain::{
    AnomalyAcknowledged, OutcomeSource, PaymentId, RefundOutcomeAnomaly, RefundRequestId, RefundStatus, ReportedOutcome,
};
use time::OffsetDateTime;

use crate::error::ProjectionError;
use crate::fold::{Envelope, parse_refund_status, refund_status_code};
use crate::model::{CursorKind, Keyset};
use crate::storage::{self, Conditions, Dialect, Param, Query, RowReader, position_i64, time_to_ns};

/// One contradicting outcome report, as of the read models' checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalyView {
    /// Global position of the `RefundOutcomeAnomaly` event: the anomaly's identity.
    pub position: u64,
    /// The refund it is about.
    pub refund_request_id: RefundRequestId,
    /// That refund's payment.
    pub payment_id: PaymentId,
    /// Which anomaly of the refund it is: 1 for the first.
    pub anomaly: u32,
    /// What the ledger held (and keeps): the refund's terminal status when the report came.
    pub recorded_status: RefundStatus,
    /// What Antom said.
    pub reported: ReportedOutcome,
    /// Where Antom said it (answer, inquiry, notification).
    pub source: OutcomeSource,
    /// When the report came.
    pub reported_at: OffsetDateTime,
    /// When the log recorded the anomaly.
    pub recorded_at: OffsetDateTime,
    /// The operator's acknowledgement, once given.
    pub acknowledgement: Option<AnomalyAcknowledgement>,
}

/// An operator's acknowledgement of an anomaly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalyAcknowledgement {
    /// Global position of the `AnomalyAcknowledged` event.
    pub position: u64,
    /// The actor who acknowledged it (the API key's name).
    pub acknowledged_by: String,
    /// The operator's note.
    pub note: String,
    /// When.
    pub acknowledged_at: OffsetDateTime,
}

impl AnomalyView {
    /// The anomaly `anomaly` (number `number` of its refund) recorded by `envelope`.
    pub(crate) fn recorded(envelope: &Envelope, anomaly: &RefundOutcomeAnomaly, number: u32) -> AnomalyView {
        AnomalyView {
            position: envelope.position,
            refund_request_id: anomaly.refund_request_id.clone(),
            payment_id: envelope.payment_id.clone(),
            anomaly: number,
            recorded_status: anomaly.recorded_status,
            reported: anomaly.reported.clone(),
            source: anomaly.source,
            reported_at: anomaly.reported_at,
            recorded_at: envelope.recorded_at,
            acknowledgement: None,
        }
    }

    /// This anomaly acknowledged by `envelope`.
    pub(crate) fn acknowledged(mut self, envelope: &Envelope, acknowledged: &AnomalyAcknowledged) -> AnomalyView {
        self.acknowledgement = Some(AnomalyAcknowledgement {
            position: envelope.position,
            acknowledged_by: envelope.actor.clone(),
            note: acknowledged.note.clone(),
            acknowledged_at: acknowledged.acknowledged_at,
        });
        self
    }

    /// The key the folds hold it under: its refund and number.
    pub fn key(&self) -> (RefundRequestId, u32) {
        (self.refund_request_id.clone(), self.anomaly)
    }
}

/// The stored code of an outcome source, as in the event JSON.
pub fn outcome_source_code(source: OutcomeSource) -> &'static str {
    match source {
        OutcomeSource::RefundResponse => "REFUND_RESPONSE",
        OutcomeSource::Inquiry => "INQUIRY",
        OutcomeSource::Notification => "NOTIFICATION",
        OutcomeSource::Reconciliation => "RECONCILIATION",
    }
}

fn parse_outcome_source(code: &str) -> Option<OutcomeSource> {
    [
        OutcomeSource::RefundResponse,
        OutcomeSource::Inquiry,
        OutcomeSource::Notification,
        OutcomeSource::Reconciliation,
    ]
    .into_iter()
    .find(|source| outcome_source_code(*source) == code)
}

/// Columns of `projection_anomalies` in the order [`AnomalyRecord`] reads and writes them.
pub(crate) const ANOMALY_COLUMNS: &str = "position, refund_request_id, anomaly, payment_id, recorded_status, \
     reported, source, reported_at_ns, recorded_at_ns, acknowledged_position, acknowledged_by, acknowledged_note, \
     acknowledged_at_ns";

/// The table, the same in both databases (the migrations add it).
pub(crate) const ANOMALY_TABLE_SQL: &str = "
    CREATE TABLE projection_anomalies (
        position             BIGINT PRIMARY KEY,
        refund_request_id    TEXT   NOT NULL,
        anomaly              BIGINT NOT NULL,
        payment_id           TEXT   NOT NULL,
        recorded_status      TEXT   NOT NULL,
        reported             TEXT   NOT NULL,
        source               TEXT   NOT NULL,
        reported_at_ns       BIGINT NOT NULL,
        recorded_at_ns       BIGINT NOT NULL,
        acknowledged_position BIGINT,
        acknowledged_by      TEXT,
        acknowledged_note    TEXT,
        acknowledged_at_ns   BIGINT,
        UNIQUE (refund_request_id, anomaly)
    );";

/// An anomaly row in its stored form: the reported outcome as the event's JSON of it, codes as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AnomalyRecord {
    pub(crate) position: i64,
    pub(crate) refund_request_id: String,
    pub(crate) anomaly: i64,
    pub(crate) payment_id: String,
    pub(crate) recorded_status: String,
    pub(crate) reported: String,
    pub(crate) source: String,
    pub(crate) reported_at_ns: i64,
    pub(crate) recorded_at_ns: i64,
    pub(crate) acknowledged_position: Option<i64>,
    pub(crate) acknowledged_by: Option<String>,
    pub(crate) acknowledged_note: Option<String>,
    pub(crate) acknowledged_at_ns: Option<i64>,
}

impl AnomalyRecord {
    /// The stored form of `view`.
    pub(crate) fn from_view(view: &AnomalyView) -> Result<AnomalyRecord, ProjectionError> {
        let position = view.position;
        let reported = serde_json::to_string(&view.reported).map_err(|error| ProjectionError::Inconsistent {
            position,
            reason: format!("reported outcome does not serialize: {error}"),
        })?;
        let acknowledgement = view.acknowledgement.as_ref();
        Ok(AnomalyRecord {
            position: position_i64(position),
            refund_request_id: view.refund_request_id.to_string(),
            anomaly: i64::from(view.anomaly),
            payment_id: view.payment_id.to_string(),
            recorded_status: refund_status_code(view.recorded_status).to_owned(),
            reported,
            source: outcome_source_code(view.source).to_owned(),
            reported_at_ns: time_to_ns(position, "reportedAt", view.reported_at)?,
            recorded_at_ns: time_to_ns(position, "recordedAt", view.recorded_at)?,
            acknowledged_position: acknowledgement.map(|ack| position_i64(ack.position)),
            acknowledged_by: acknowledgement.map(|ack| ack.acknowledged_by.clone()),
            acknowledged_note: acknowledgement.map(|ack| ack.note.clone()),
            acknowledged_at_ns: acknowledgement
                .map(|ack| time_to_ns(position, "acknowledgedAt", ack.acknowledged_at))
                .transpose()?,
        })
    }

    /// The anomaly this record stores.
    pub(crate) fn into_view(self) -> Result<AnomalyView, ProjectionError> {
        let key = self.position.to_string();
        let reader = RowReader {
            table: "projection_anomalies",
            key: &key,
        };
        let acknowledgement = match (
            self.acknowledged_position,
            self.acknowledged_by,
            self.acknowledged_note,
            self.acknowledged_at_ns,
        ) {
            (None, None, None, None) => None,
            (Some(position), Some(acknowledged_by), Some(note), Some(at_ns)) => Some(AnomalyAcknowledgement {
                position: reader.unsigned("acknowledgedPosition", position)?,
                acknowledged_by,
                note,
                acknowledged_at: reader.time("acknowledgedAt", at_ns)?,
            }),
            _ => return Err(reader.corrupt("acknowledgement columns are partly empty")),
        };
        Ok(AnomalyView {
            position: reader.unsigned("position", self.position)?,
            refund_request_id: reader.id(RefundRequestId::parse, &self.refund_request_id)?,
            payment_id: reader.id(PaymentId::parse, &self.payment_id)?,
            anomaly: reader.count("anomaly", self.anomaly)?,
            recorded_status: parse_refund_status(&self.recorded_status)
                .ok_or_else(|| reader.corrupt(format!("unknown status {:?}", self.recorded_status)))?,
            reported: serde_json::from_str(&self.reported)
                .map_err(|error| reader.corrupt(format!("reported: {error}")))?,
            source: parse_outcome_source(&self.source)
                .ok_or_else(|| reader.corrupt(format!("unknown source {:?}", self.source)))?,
            reported_at: reader.time("reportedAt", self.reported_at_ns)?,
            recorded_at: reader.time("recordedAt", self.recorded_at_ns)?,
            acknowledgement,
        })
    }
}

/// Upsert of an anomaly row; parameters in [`ANOMALY_COLUMNS`] order.
pub(crate) fn upsert_anomaly_sql(dialect: Dialect) -> String {
    storage::upsert_sql(dialect, "projection_anomalies", ANOMALY_COLUMNS, "position")
}

/// One page of anomalies by position: `first + 1` rows so the caller learns whether a next page exists.
pub(crate) fn anomalies_page(dialect: Dialect, after: Option<Keyset>, first: usize) -> Query {
    let mut conditions = Conditions::new(dialect);
    if let Some(keyset) = after {
        // The keyset's time is the position; positions are unique, so the id only breaks no tie.
        conditions.compare("position", ">", Param::Integer(keyset.time_ns));
    }
    let select = format!("SELECT {ANOMALY_COLUMNS} FROM projection_anomalies");
    conditions.into_query(&select, |conditions| {
        format!(" ORDER BY position{}", storage::limit_clause(conditions, first + 1))
    })
}

/// One anomaly by the position of its event.
pub(crate) fn anomaly_at(dialect: Dialect, position: u64) -> Query {
    let mut conditions = Conditions::new(dialect);
    conditions.compare("position", "=", Param::Integer(position_i64(position)));
    let select = format!("SELECT {ANOMALY_COLUMNS} FROM projection_anomalies");
    conditions.into_query(&select, |_| String::new())
}

/// Splits fetched anomaly rows into a page.
pub(crate) fn into_anomaly_page(rows: Vec<AnomalyView>, first: usize) -> crate::model::Page<AnomalyView> {
    let has_next_page = rows.len() > first;
    let items = rows
        .into_iter()
        .take(first)
        .map(|view| {
            let cursor = crate::model::Cursor::encode(
                CursorKind::Anomaly,
                position_i64(view.position),
                view.refund_request_id.as_str(),
            );
            (cursor, view)
        })
        .collect();
    crate::model::Page { items, has_next_page }
}

#[cfg(test)]
mod tests {
    use domain::RefundId;
    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_record_round_trips_with_and_without_acknowledgement() {
        let mut view = AnomalyView {
            position: 42,
            refund_request_id: RefundRequestId::parse("R1").unwrap(),
            payment_id: PaymentId::parse("P1").unwrap(),
            anomaly: 2,
            recorded_status: RefundStatus::Failed,
            reported: ReportedOutcome::Success {
                refund_id: RefundId::parse("ANTOM-1").unwrap(),
            },
            source: OutcomeSource::Notification,
            reported_at: datetime!(2026-03-01 09:00 UTC),
            recorded_at: datetime!(2026-03-01 09:00:01 UTC),
            acknowledgement: None,
        };
        let record = AnomalyRecord::from_view(&view).unwrap();
        assert_eq!(record.reported, r#"{"status":"SUCCESS","refundId":"ANTOM-1"}"#);
        assert_eq!(record.clone().into_view().unwrap(), view);
        view.acknowledgement = Some(AnomalyAcknowledgement {
            position: 50,
            acknowledged_by: "ops".into(),
            note: "checked".into(),
            acknowledged_at: datetime!(2026-03-02 09:00 UTC),
        });
        let record = AnomalyRecord::from_view(&view).unwrap();
        assert_eq!(record.clone().into_view().unwrap(), view);
        let partly = AnomalyRecord {
            acknowledged_note: None,
            ..record
        };
        assert!(matches!(partly.into_view(), Err(ProjectionError::CorruptRow { .. })));
    }
}
