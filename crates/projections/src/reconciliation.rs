//! The reconciliation read models: runs and their findings, folded from the `reconciliation-*` streams
//! (docs/adr/003-reconciliation.md), so a rebuild from the log yields the same rows.
//!
//! A `ReconciliationRecorded` becomes a run row; each finding of a `ReconciliationFindingsRecorded` a finding
//! row keyed `(runId, seq)`; a `ReconciliationFindingAcknowledged` fills the finding's acknowledgement (the
//! first one counts: the command refuses a second, and the fold keeps the first should the log hold two).
//! Rows are stored as the event's JSON next to the keys the queries use.

use domain::{RECONCILIATION_STREAM_PREFIX, ReconciliationEvent, ReconciliationRecorded, RecordedFinding};
use eventlog::{EventView, RecordedEvent};
use time::OffsetDateTime;

use crate::error::ProjectionError;

/// Findings per page at most.
pub const FINDINGS_PAGE_MAX: usize = 1_000;

/// A decoded event of a reconciliation stream with the envelope fields the read models keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconciliationEnvelope {
    /// Global position.
    pub position: u64,
    /// When the log recorded it.
    pub recorded_at: OffsetDateTime,
    /// Who caused it.
    pub actor: String,
    /// The event.
    pub event: ReconciliationEvent,
}

impl ReconciliationEnvelope {
    /// Decodes an event of a `reconciliation-*` stream; `Ok(None)` for other streams, [`ProjectionError::Decode`]
    /// when it does not decode.
    pub fn decode(recorded: &RecordedEvent) -> Result<Option<Self>, ProjectionError> {
        Self::decode_view(&recorded.view())
    }

    /// [`ReconciliationEnvelope::decode`] of an event read as an [`EventView`] (from a scan's batch).
    pub fn decode_view(recorded: &EventView<'_>) -> Result<Option<Self>, ProjectionError> {
        if !recorded.stream.starts_with(RECONCILIATION_STREAM_PREFIX) {
            return Ok(None);
        }
        let event = ReconciliationEvent::from_stored(recorded.event_type, recorded.schema_version, recorded.payload)
            .map_err(|source| ProjectionError::Decode {
                position: recorded.position,
                event_type: recorded.event_type.to_owned(),
                source,
            })?;
        Ok(Some(Self {
            position: recorded.position,
            recorded_at: recorded.recorded_at,
            actor: recorded.actor.to_owned(),
            event,
        }))
    }
}

/// A recorded reconciliation run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconciliationView {
    /// The position of its `ReconciliationRecorded`.
    pub position: u64,
    /// When it was recorded.
    pub recorded_at: OffsetDateTime,
    /// Who ran it.
    pub actor: String,
    /// The run as recorded.
    pub run: ReconciliationRecorded,
}

/// An admin's acknowledgement of a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    /// The admin key's name.
    pub by: String,
    /// When.
    pub at: OffsetDateTime,
    /// What was done about it.
    pub note: String,
    /// The acknowledging event's position.
    pub position: u64,
}

/// One finding of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingView {
    /// The run.
    pub run_id: String,
    /// The finding as recorded.
    pub finding: RecordedFinding,
    /// Whether (and how) an admin acknowledged it.
    pub acknowledgement: Option<Acknowledgement>,
}

/// Which findings of a run to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingFilter {
    /// Only this kind code (`DIFFERS`, ...).
    pub kind: Option<String>,
    /// Only findings after this `seq`.
    pub after_seq: Option<u64>,
}

/// A row change of the reconciliation read models, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReconciliationChange {
    Run {
        run_id: String,
        position: u64,
        recorded_at: String,
        actor: String,
        data: String,
    },
    Finding {
        run_id: String,
        seq: u64,
        kind: String,
        data: String,
    },
    Acknowledged {
        run_id: String,
        seq: u64,
        by: String,
        at: String,
        note: String,
        position: u64,
    },
}

/// The row changes of a batch's reconciliation events.
pub(crate) fn changes(envelopes: &[ReconciliationEnvelope]) -> Result<Vec<ReconciliationChange>, ProjectionError> {
    let mut changes = Vec::new();
    for envelope in envelopes {
        let json = |value: Result<String, serde_json::Error>| {
            value.map_err(|error| ProjectionError::Inconsistent {
                position: envelope.position,
                reason: format!("reconciliation event does not serialize: {error}"),
            })
        };
        match &envelope.event {
            ReconciliationEvent::ReconciliationRecorded(run) => changes.push(ReconciliationChange::Run {
                run_id: run.run_id.clone(),
                position: envelope.position,
                recorded_at: time_text(envelope.recorded_at, envelope.position)?,
                actor: envelope.actor.clone(),
                data: json(serde_json::to_string(run))?,
            }),
            ReconciliationEvent::ReconciliationFindingsRecorded(chunk) => {
                for finding in &chunk.findings {
                    changes.push(ReconciliationChange::Finding {
                        run_id: chunk.run_id.clone(),
                        seq: finding.seq,
                        kind: finding.kind.clone(),
                        data: json(serde_json::to_string(finding))?,
                    });
                }
            }
            ReconciliationEvent::ReconciliationFindingAcknowledged(acknowledged) => {
                changes.push(ReconciliationChange::Acknowledged {
                    run_id: acknowledged.run_id.clone(),
                    seq: acknowledged.seq,
                    by: envelope.actor.clone(),
                    at: time_text(acknowledged.acknowledged_at, envelope.position)?,
                    note: acknowledged.note.clone(),
                    position: envelope.position,
                });
            }
        }
    }
    Ok(changes)
}

fn time_text(time: OffsetDateTime, position: u64) -> Result<String, ProjectionError> {
    time.format(&time::format_description::well_known::Rfc3339)
        .map_err(|error| ProjectionError::Inconsistent {
            position,
            reason: format!("time does not format: {error}"),
        })
}

fn parse_time(table: &'static str, key: &str, text: &str) -> Result<OffsetDateTime, ProjectionError> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(|error| {
        ProjectionError::CorruptRow {
            table,
            key: key.to_owned(),
            reason: format!("time {text:?}: {error}"),
        }
    })
}

/// A run row read back: `(position, recorded_at, actor, data)`.
pub(crate) fn run_view(
    position: i64,
    recorded_at: &str,
    actor: String,
    data: &str,
) -> Result<ReconciliationView, ProjectionError> {
    let key = position.to_string();
    let run = serde_json::from_str(data).map_err(|error| ProjectionError::CorruptRow {
        table: "projection_reconciliations",
        key: key.clone(),
        reason: error.to_string(),
    })?;
    Ok(ReconciliationView {
        position: u64::try_from(position).unwrap_or_default(),
        recorded_at: parse_time("projection_reconciliations", &key, recorded_at)?,
        actor,
        run,
    })
}

/// A finding row read back.
pub(crate) fn finding_view(
    run_id: String,
    data: &str,
    by: Option<String>,
    at: Option<String>,
    note: Option<String>,
    position: Option<i64>,
) -> Result<FindingView, ProjectionError> {
    let corrupt = |reason: String| ProjectionError::CorruptRow {
        table: "projection_reconciliation_findings",
        key: run_id.clone(),
        reason,
    };
    let finding = serde_json::from_str(data).map_err(|error| corrupt(error.to_string()))?;
    let acknowledgement = match (by, at, note, position) {
        (Some(by), Some(at), Some(note), Some(position)) => Some(Acknowledgement {
            by,
            at: parse_time("projection_reconciliation_findings", &run_id, &at)?,
            note,
            position: u64::try_from(position).unwrap_or_default(),
        }),
        _ => None,
    };
    Ok(FindingView {
        run_id,
        finding,
        acknowledgement,
    })
}

/// Checks a page size.
pub(crate) fn check_findings_page(first: usize) -> Result<(), ProjectionError> {
    if first > FINDINGS_PAGE_MAX {
        return Err(ProjectionError::PageSizeTooLarge {
            requested: first,
            max: FINDINGS_PAGE_MAX,
        });
    }
    Ok(())
}

/// The reconciliation read models in memory, folded from the log exactly as the stores fold them (for
/// `replay`, which rebuilds every read model from position 0 and compares).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconciliationFold {
    /// Runs by id.
    pub runs: std::collections::BTreeMap<String, ReconciliationView>,
    /// Findings by run and seq.
    pub findings: std::collections::BTreeMap<(String, u64), FindingView>,
}

impl ReconciliationFold {
    /// Folds one event of a reconciliation stream.
    pub fn apply(&mut self, envelope: &ReconciliationEnvelope) {
        match &envelope.event {
            ReconciliationEvent::ReconciliationRecorded(run) => {
                self.runs.insert(
                    run.run_id.clone(),
                    ReconciliationView {
                        position: envelope.position,
                        recorded_at: envelope.recorded_at,
                        actor: envelope.actor.clone(),
                        run: run.clone(),
                    },
                );
            }
            ReconciliationEvent::ReconciliationFindingsRecorded(chunk) => {
                for finding in &chunk.findings {
                    self.findings.insert(
                        (chunk.run_id.clone(), finding.seq),
                        FindingView {
                            run_id: chunk.run_id.clone(),
                            finding: finding.clone(),
                            acknowledgement: None,
                        },
                    );
                }
            }
            ReconciliationEvent::ReconciliationFindingAcknowledged(acknowledged) => {
                let key = (acknowledged.run_id.clone(), acknowledged.seq);
                if let Some(finding) = self.findings.get_mut(&key)
                    && finding.acknowledgement.is_none()
                {
                    finding.acknowledgement = Some(Acknowledgement {
                        by: envelope.actor.clone(),
                        at: acknowledged.acknowledged_at,
                        note: acknowledged.note.clone(),
                        position: envelope.position,
                    });
                }
            }
        }
    }
}
