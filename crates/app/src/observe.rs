//! What the ledger tells an observer (the server's metrics): facts as they happen, with bounded values only
//! (outcome classes, result codes, states, who settled), never an id or an amount.
//!
//! The facts about refunds come from the events a decision appended (`plan_batch` notes them beside the events,
//! the queue reports them once the append committed), so each is reported exactly once per instance that wrote
//! it, whichever path wrote it. The app crate knows no metrics library: the server implements [`Observer`].

use std::fmt;

use domain::{OutcomeSource, PaymentEvent, RefundStatus, ReportedOutcome, ResultCode, ResultStatus};

use crate::actor::WORKER_ACTOR;
use crate::answer::SettleReport;

/// Receives the ledger's facts. Every method has a no-op default; implementations must be cheap and must not
/// block (they are called on the write path).
pub trait Observer: Send + Sync + fmt::Debug {
    /// A refund got its first answer: F refused by the ledger (`RefundRejected`), or Antom's answer to the
    /// refund call: S, verified F (with Antom's code), U (outcome unknown, left processing).
    fn refund_decided(&self, _status: ResultStatus, _code: &ResultCode) {}
    /// An open refund became final (`Succeeded` or `Failed`), settled `by` whom.
    fn refund_settled(&self, _status: RefundStatus, _by: SettledBy) {}
    /// A report contradicting a final refund was recorded (`RefundOutcomeAnomaly`).
    fn anomaly_recorded(&self, _kind: AnomalyKind) {}
    /// An append was refused because another writer had moved the stream; the batch is decided again.
    fn conflict_retry(&self) {}
    /// The settle worker finished a pass (also when it found nothing to do).
    fn settle_pass(&self, _report: &SettleReport) {}
}

/// An observer that ignores everything (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}

/// Who made an open refund final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SettledBy {
    /// Antom's answer to the refund call.
    Answer,
    /// The settle worker (its inquiry, or its resend's answer).
    Worker,
    /// Antom's refund notification.
    Notification,
    /// An inquiry by hand (`inquiryRefund` mutation).
    Inquiry,
    /// A reconciliation run (Antom's report, confirmed by inquiry).
    Reconciliation,
}

impl SettledBy {
    /// The label value: `answer`, `worker`, `notification`, `inquiry`, `reconciliation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answer => "answer",
            Self::Worker => "worker",
            Self::Notification => "notification",
            Self::Inquiry => "inquiry",
            Self::Reconciliation => "reconciliation",
        }
    }

    fn of(source: OutcomeSource, actor: &str) -> Self {
        match source {
            OutcomeSource::Notification => Self::Notification,
            OutcomeSource::Reconciliation => Self::Reconciliation,
            _ if actor == WORKER_ACTOR => Self::Worker,
            OutcomeSource::RefundResponse => Self::Answer,
            OutcomeSource::Inquiry => Self::Inquiry,
        }
    }
}

/// What kind of contradiction an anomaly records: the ledger's final status against Antom's report, and where
/// the report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnomalyKind {
    /// The status the ledger holds (and keeps).
    pub recorded: RefundStatus,
    /// Whether Antom reported success (`true`) or failure.
    pub reported_success: bool,
    /// Where the report came from.
    pub source: OutcomeSource,
}

impl AnomalyKind {
    /// The `kind` label: `SUCCEEDED_REPORTED_FAIL`, `FAILED_REPORTED_SUCCESS`, `SUCCEEDED_REPORTED_SUCCESS`
    /// (another refundId), ...
    pub fn as_str(&self) -> &'static str {
        match (self.recorded, self.reported_success) {
            (RefundStatus::Succeeded, false) => "SUCCEEDED_REPORTED_FAIL",
            (RefundStatus::Succeeded, true) => "SUCCEEDED_REPORTED_SUCCESS",
            (RefundStatus::Failed, true) => "FAILED_REPORTED_SUCCESS",
            (RefundStatus::Failed, false) => "FAILED_REPORTED_FAIL",
            (RefundStatus::Rejected, true) => "REJECTED_REPORTED_SUCCESS",
            (RefundStatus::Rejected, false) => "REJECTED_REPORTED_FAIL",
            (RefundStatus::Requested | RefundStatus::Processing, true) => "OPEN_REPORTED_SUCCESS",
            (RefundStatus::Requested | RefundStatus::Processing, false) => "OPEN_REPORTED_FAIL",
        }
    }

    /// The `source` label: `REFUND_RESPONSE`, `INQUIRY`, `NOTIFICATION`, `RECONCILIATION`.
    pub fn source_str(&self) -> &'static str {
        source_str(self.source)
    }
}

fn source_str(source: OutcomeSource) -> &'static str {
    match source {
        OutcomeSource::RefundResponse => "REFUND_RESPONSE",
        OutcomeSource::Inquiry => "INQUIRY",
        OutcomeSource::Notification => "NOTIFICATION",
        OutcomeSource::Reconciliation => "RECONCILIATION",
    }
}

/// A fact noted while planning, reported once its events committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fact {
    Decided(ResultStatus, ResultCode),
    Settled(RefundStatus, SettledBy),
    Anomaly(AnomalyKind),
}

/// Notes the facts an appended event states (`actor` is who appended it) in `facts`.
///
/// A refund Antom answered S or F at once is decided and settled by the answer; a U answer is decided U. The
/// worker's resend of a refund Antom never saw answers a refund decided long before, so it settles (or leaves
/// open) but decides nothing.
pub(crate) fn note_facts(event: &PaymentEvent, actor: &str, facts: &mut Vec<Fact>) {
    let first_answer = actor != WORKER_ACTOR;
    match event {
        PaymentEvent::RefundRejected(rejected) => {
            facts.push(Fact::Decided(ResultStatus::F, rejected.result_code.clone()))
        }
        PaymentEvent::RefundProcessing(_) if first_answer => facts.push(Fact::Decided(
            ResultStatus::U,
            ResultCode::parse(crate::answer::REFUND_IN_PROCESS),
        )),
        PaymentEvent::RefundSucceeded(succeeded) => {
            let by = SettledBy::of(succeeded.source, actor);
            if by == SettledBy::Answer {
                facts.push(Fact::Decided(ResultStatus::S, ResultCode::Success));
            }
            facts.push(Fact::Settled(RefundStatus::Succeeded, by));
        }
        PaymentEvent::RefundFailed(failed) => {
            let by = SettledBy::of(failed.source, actor);
            if by == SettledBy::Answer {
                facts.push(Fact::Decided(ResultStatus::F, failed.result_code.clone()));
            }
            facts.push(Fact::Settled(RefundStatus::Failed, by));
        }
        PaymentEvent::RefundOutcomeAnomaly(anomaly) => facts.push(Fact::Anomaly(AnomalyKind {
            recorded: anomaly.recorded_status,
            reported_success: matches!(
                anomaly.reported,
                ReportedOutcome::Success { .. } | ReportedOutcome::Refunded
            ),
            source: anomaly.source,
        })),
        _ => {}
    }
}

/// Reports committed facts.
pub(crate) fn report(observer: &dyn Observer, facts: &[Fact]) {
    for fact in facts {
        match fact {
            Fact::Decided(status, code) => observer.refund_decided(*status, code),
            Fact::Settled(status, by) => observer.refund_settled(*status, *by),
            Fact::Anomaly(kind) => observer.anomaly_recorded(*kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use domain::{RefundFailed, RefundId, RefundOutcomeAnomaly, RefundProcessing, RefundRequestId, RefundSucceeded};
    use time::macros::datetime;

    use super::*;

    fn id() -> RefundRequestId {
        RefundRequestId::parse("r-1").unwrap()
    }

    fn succeeded(source: OutcomeSource) -> PaymentEvent {
        PaymentEvent::RefundSucceeded(RefundSucceeded {
            refund_request_id: id(),
            refund_id: RefundId::parse("a-1").unwrap(),
            refund_time: datetime!(2026-12-01 0:00 UTC),
            source,
        })
    }

    fn facts(event: &PaymentEvent, actor: &str) -> Vec<Fact> {
        let mut facts = Vec::new();
        note_facts(event, actor, &mut facts);
        facts
    }

    #[test]
    fn an_answer_decides_and_settles_later_sources_only_settle() {
        assert_eq!(
            facts(&succeeded(OutcomeSource::RefundResponse), "merchant"),
            [
                Fact::Decided(ResultStatus::S, ResultCode::Success),
                Fact::Settled(RefundStatus::Succeeded, SettledBy::Answer)
            ]
        );
        assert_eq!(
            facts(&succeeded(OutcomeSource::RefundResponse), WORKER_ACTOR),
            [Fact::Settled(RefundStatus::Succeeded, SettledBy::Worker)]
        );
        assert_eq!(
            facts(&succeeded(OutcomeSource::Inquiry), WORKER_ACTOR),
            [Fact::Settled(RefundStatus::Succeeded, SettledBy::Worker)]
        );
        assert_eq!(
            facts(&succeeded(OutcomeSource::Inquiry), "operator"),
            [Fact::Settled(RefundStatus::Succeeded, SettledBy::Inquiry)]
        );
        assert_eq!(
            facts(&succeeded(OutcomeSource::Notification), crate::NOTIFY_ACTOR),
            [Fact::Settled(RefundStatus::Succeeded, SettledBy::Notification)]
        );
        let failed = PaymentEvent::RefundFailed(RefundFailed {
            refund_request_id: id(),
            result_code: ResultCode::MerchantBalanceNotEnough,
            result_message: "no balance".to_owned(),
            failed_at: datetime!(2026-12-01 0:00 UTC),
            source: OutcomeSource::RefundResponse,
        });
        assert_eq!(
            facts(&failed, "merchant"),
            [
                Fact::Decided(ResultStatus::F, ResultCode::MerchantBalanceNotEnough),
                Fact::Settled(RefundStatus::Failed, SettledBy::Answer)
            ]
        );
        let processing = PaymentEvent::RefundProcessing(RefundProcessing {
            refund_request_id: id(),
            reason: "timeout".to_owned(),
            recorded_at: datetime!(2026-12-01 0:00 UTC),
        });
        assert_eq!(
            facts(&processing, "merchant"),
            [Fact::Decided(
                ResultStatus::U,
                ResultCode::parse(crate::REFUND_IN_PROCESS)
            )]
        );
        // The worker's resend answered U again: decided long before, nothing new.
        assert!(facts(&processing, WORKER_ACTOR).is_empty());
    }

    #[test]
    fn anomalies_are_reported_by_kind() {
        let anomaly = PaymentEvent::RefundOutcomeAnomaly(RefundOutcomeAnomaly {
            refund_request_id: id(),
            recorded_status: RefundStatus::Succeeded,
            reported: ReportedOutcome::Fail {
                result_code: ResultCode::ProcessFail,
            },
            source: OutcomeSource::Notification,
            reported_at: datetime!(2026-12-01 0:00 UTC),
        });
        let noted = facts(&anomaly, crate::NOTIFY_ACTOR);
        let [Fact::Anomaly(kind)] = noted.as_slice() else {
            panic!("one anomaly expected: {noted:?}");
        };
        assert_eq!(kind.as_str(), "SUCCEEDED_REPORTED_FAIL");
        assert_eq!(kind.source_str(), "NOTIFICATION");
    }
}
