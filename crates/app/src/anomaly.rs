//! Acknowledging an anomaly: an operator says they looked at a contradicting outcome report, with a note. The
//! acknowledgement is an event of the payment's stream (`AnomalyAcknowledged`), so it is audited like
//! everything else; the domain refuses an unknown anomaly and a second acknowledgement of one.

use std::time::Duration;

use domain::{PaymentCommand, PaymentId, RefundRequestId};

use crate::batch::Verdict;
use crate::error::AppError;
use crate::ledger::{LOOKUP_WAIT_MS_MAX, Ledger};

/// Which anomaly to acknowledge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnomalyTarget {
    /// The global position of its `RefundOutcomeAnomaly` event.
    Position(u64),
    /// Its refund and its number within the refund (1 for the refund's first anomaly).
    Number {
        /// The refund.
        refund_request_id: RefundRequestId,
        /// The anomaly's number, from 1.
        anomaly: u32,
    },
}

impl std::fmt::Display for AnomalyTarget {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Position(position) => write!(formatter, "anomaly at position {position}"),
            Self::Number {
                refund_request_id,
                anomaly,
            } => write!(formatter, "anomaly {anomaly} of refund {refund_request_id}"),
        }
    }
}

/// An acknowledgement recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledged {
    /// The refund whose anomaly it is.
    pub refund_request_id: RefundRequestId,
    /// The anomaly's number within the refund.
    pub anomaly: u32,
    /// The position of the `AnomalyAcknowledged` event: wait for it to read the acknowledgement back.
    pub position: u64,
}

impl Ledger {
    /// Records that `actor` acknowledged an anomaly with `note` (trimmed, 1 to
    /// [`domain::ANOMALY_NOTE_CHARS_MAX`] characters; otherwise [`AppError::Input`] naming `note`).
    ///
    /// [`AppError::UnknownAnomaly`] when the ledger recorded no such anomaly, and
    /// [`AppError::AnomalyAlreadyAcknowledged`] for a second acknowledgement; both write nothing.
    #[tracing::instrument(skip(self, note), fields(target = %target))]
    pub async fn acknowledge_anomaly(
        &self,
        actor: &str,
        target: AnomalyTarget,
        note: &str,
    ) -> Result<Acknowledged, AppError> {
        let note = domain::anomaly_note("note", note)?;
        let unknown = || AppError::UnknownAnomaly {
            anomaly: target.to_string(),
        };
        let Some((payment_id, refund_request_id, anomaly)) = self.anomaly_address(&target).await? else {
            return Err(unknown());
        };
        let command = PaymentCommand::AcknowledgeAnomaly {
            refund_request_id: refund_request_id.clone(),
            anomaly,
            note,
        };
        let decided = self.decide(actor, &payment_id, command).await?;
        match decided.verdict {
            Verdict::Appended | Verdict::Unchanged => Ok(Acknowledged {
                refund_request_id,
                anomaly,
                position: decided.position,
            }),
            Verdict::Refused(rejection) if rejection.code.as_str() == domain::ANOMALY_ALREADY_ACKNOWLEDGED => {
                Err(AppError::AnomalyAlreadyAcknowledged {
                    anomaly: target.to_string(),
                })
            }
            Verdict::Refused(rejection) if rejection.code.as_str() == domain::ANOMALY_NOT_FOUND => Err(unknown()),
            Verdict::Refused(rejection) => Err(AppError::Input(domain::InputError::Invalid {
                field: "note".to_owned(),
                reason: rejection.message,
            })),
            // An acknowledgement has a fresh event id; the store cannot hold it elsewhere.
            Verdict::DuplicateElsewhere(_) => Err(unknown()),
        }
    }

    /// The payment, refund and number of an anomaly, from the read models (waiting for them to reach the log's
    /// head once when they do not know it).
    async fn anomaly_address(
        &self,
        target: &AnomalyTarget,
    ) -> Result<Option<(PaymentId, RefundRequestId, u32)>, AppError> {
        match target {
            AnomalyTarget::Number {
                refund_request_id,
                anomaly,
            } => Ok(self
                .locate(refund_request_id)
                .await?
                .map(|payment_id| (payment_id, refund_request_id.clone(), *anomaly))),
            AnomalyTarget::Position(position) => {
                if let Some(found) = self.anomaly_at(*position).await? {
                    return Ok(Some(found));
                }
                let head = self.store().head().await?.position;
                if *position > head {
                    return Ok(None);
                }
                let read_models = &self.inner.read_models;
                read_models
                    .wait_for_position(head, Duration::from_millis(LOOKUP_WAIT_MS_MAX))
                    .await
                    .map_err(|error| AppError::ReadModels {
                        operation: "wait for the read models",
                        source: Box::new(error),
                    })?;
                self.anomaly_at(*position).await
            }
        }
    }

    async fn anomaly_at(&self, position: u64) -> Result<Option<(PaymentId, RefundRequestId, u32)>, AppError> {
        let view = self
            .inner
            .read_models
            .anomaly(position)
            .await
            .map_err(|error| AppError::ReadModels {
                operation: "look up an anomaly",
                source: Box::new(error),
            })?;
        Ok(view.map(|view| (view.payment_id, view.refund_request_id, view.anomaly)))
    }
}
