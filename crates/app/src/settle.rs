//! Step 3 of the saga: settling open refunds with Antom's `inquiryRefund`, by the worker (every pass lists the
//! refunds the read models show as requested or processing for longer than `settle_after`) or by hand
//! ([`Ledger::inquiry_refund`]):
//!
//! | inquiry says | the ledger records |
//! | --- | --- |
//! | SUCCESS | `RefundSucceeded` (source `INQUIRY`) |
//! | FAIL | `RefundFailed` with `PROCESS_FAIL` (the inquiry carries no code) |
//! | PROCESSING | nothing: asked again next pass |
//! | not found (`ORDER_NOT_EXIST`) | the refund is sent again with the same refundRequestId (Antom deduplicates on it), its answer recorded as in step 2 |
//! | unknown (timeout, unsigned, ...) | nothing: asked again next pass |
//!
//! Each refund is read from the log before Antom is asked, so a refund the read models still show open but
//! that is final is left alone (and an inquiry by hand about a final refund asks Antom nothing).

use std::future::Future;
use std::time::Duration;

use apo::InquiryOutcome;
use domain::{OutcomeSource, PaymentCommand, PaymentId, RefundRequestId, RefundStatus, ResultCode};
use tokio::task::JoinHandle;

use crate::actor::WORKER_ACTOR;
use crate::answer::{RefundResult, SettleReport, answer, refused, snapshot, unknown_refund};
use crate::error::AppError;
use crate::ledger::Ledger;

/// How often the worker sweeps the findings of reconciliation runs that were never recorded.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(3_600);

/// How old a cut run's first findings chunk must be before the sweeper removes its rows: a day (a run takes
/// seconds, so no run still appending is that old).
pub const UNRECORDED_FINDINGS_GRACE: Duration = Duration::from_secs(24 * 3_600);

/// How long a sweep waits for the read models to reach the log's head: not at all (the worker's pass must not
/// wait; a sweep skipped for a lagging runner is tried again next pass).
const SWEEP_READ_MODELS_WAIT: Duration = Duration::ZERO;

/// The message recorded on a refund Antom's inquiry reported as FAIL (the inquiry gives no code).
pub const INQUIRY_FAIL_MESSAGE: &str = "inquiryRefund reported refundStatus FAIL";

/// What settling one refund did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settlement {
    Succeeded,
    Failed,
    Processing,
    Resent,
    Unknown,
    AlreadyFinal,
}

impl SettleReport {
    fn count(&mut self, settlement: Settlement, position: u64) {
        match settlement {
            Settlement::Succeeded => self.succeeded += 1,
            Settlement::Failed => self.failed += 1,
            Settlement::Processing => self.processing += 1,
            Settlement::Resent => self.resent += 1,
            Settlement::Unknown => self.unknown += 1,
            Settlement::AlreadyFinal => self.already_final += 1,
        }
        self.position = self.position.max(position);
    }
}

impl Ledger {
    /// One pass of the settle worker over refunds requested or processing since before
    /// `now - older_than` (at most `settle_batch_refunds_max` of them, oldest first).
    ///
    /// A refund that fails to settle (store or read-model trouble) is counted in `errors`, logged and
    /// retried next pass; only failing to list the open refunds is an error of the pass.
    /// The pass's span is at debug level, so that (with the usual info filter) each refund it settles starts
    /// a trace of its own, named `saga.settle` and carrying the refund's ids, instead of every pass's refunds
    /// sharing one.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn settle_open_refunds(&self, older_than: Duration) -> Result<SettleReport, AppError> {
        let now = self.clock().now();
        let requested_before = time::Duration::try_from(older_than)
            .ok()
            .and_then(|older_than| now.checked_sub(older_than))
            .unwrap_or(now);
        let open = self
            .open_refunds(requested_before, self.inner.options.settle_batch_refunds_max)
            .await?;
        let mut report = SettleReport {
            examined: open.len(),
            ..SettleReport::default()
        };
        for view in open {
            match self.settle_one(&view.payment_id, &view.refund_request_id).await {
                Ok((settlement, position)) => report.count(settlement, position),
                Err(error) => {
                    report.errors += 1;
                    tracing::warn!(
                        %error,
                        payment_id = %view.payment_id,
                        refund_request_id = %view.refund_request_id,
                        "settling a refund failed; retried next pass"
                    );
                }
            }
        }
        if report.examined > 0 {
            tracing::info!(?report, "settle pass done");
        }
        self.observer().settle_pass(&report);
        Ok(report)
    }

    /// Asks Antom about one refund now and records a final answer, as the worker would (a refund Antom never
    /// saw is sent again with the same refundRequestId), as `actor`; answers with the refund as it then stands.
    /// A refund that is already final is answered from the log without asking Antom; an unknown
    /// refundRequestId is F `ORDER_NOT_EXIST`. (The read-only question is the read models' refund query.)
    #[tracing::instrument(
        skip(self),
        fields(refund_request_id = %refund_request_id, payment_id = tracing::field::Empty)
    )]
    pub async fn inquiry_refund(
        &self,
        actor: &str,
        refund_request_id: &RefundRequestId,
    ) -> Result<RefundResult, AppError> {
        let Some(payment_id) = self.locate(refund_request_id).await? else {
            return Ok(refused(unknown_refund(refund_request_id), 0));
        };
        tracing::Span::current().record("payment_id", tracing::field::display(&payment_id));
        let (_, settled) = self.settle_as(actor, &payment_id, refund_request_id).await?;
        Ok(settled)
    }

    /// Spawns the settle worker: a pass every `interval` over refunds open longer than
    /// `settle_after`, until `shutdown` completes. A pass in flight at shutdown is dropped; every step
    /// is idempotent, so the next start finishes it. Must be called inside a Tokio runtime.
    pub fn spawn_worker(
        &self,
        interval: Duration,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> JoinHandle<()> {
        let ledger = self.clone();
        ledger.note_worker_interval(interval);
        let settle_after = self.inner.options.settle_after;
        tokio::spawn(async move {
            tokio::pin!(shutdown);
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut swept_at: Option<tokio::time::Instant> = None;
            loop {
                tokio::select! {
                    () = &mut shutdown => break,
                    _ = ticker.tick() => {}
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    pass = ledger.settle_open_refunds(settle_after) => {
                        match pass {
                            Ok(_) => ledger.note_worker_run(),
                            Err(error) => tracing::warn!(%error, "settle pass failed; retried next interval"),
                        }
                    }
                }
                if swept_at.is_some_and(|at| at.elapsed() < SWEEP_INTERVAL) {
                    continue;
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    swept = ledger.sweep_unrecorded_findings() => match swept {
                        Ok(Some(_)) => swept_at = Some(tokio::time::Instant::now()),
                        // The read models are behind the log: tried again next pass.
                        Ok(None) => {}
                        Err(error) => {
                            swept_at = Some(tokio::time::Instant::now());
                            tracing::warn!(%error, "sweeping unrecorded reconciliation findings failed; retried later");
                        }
                    }
                }
            }
            tracing::info!("settle worker stopped");
        })
    }

    /// Removes the findings read-model rows of reconciliation runs cut between their appends
    /// ([`crate::reconciliation::sweep_unrecorded_findings`] with a grace of [`UNRECORDED_FINDINGS_GRACE`]);
    /// the worker calls it every [`SWEEP_INTERVAL`]. Answers the rows removed, `None` when the read models were
    /// behind the log (nothing swept).
    pub async fn sweep_unrecorded_findings(&self) -> Result<Option<u64>, crate::reconciliation::ReconciliationError> {
        crate::reconciliation::sweep_unrecorded_findings(
            self.store().as_ref(),
            self.inner.read_models.as_ref(),
            self.clock().now(),
            UNRECORDED_FINDINGS_GRACE,
            SWEEP_READ_MODELS_WAIT,
        )
        .await
    }

    async fn settle_one(
        &self,
        payment_id: &PaymentId,
        refund_request_id: &RefundRequestId,
    ) -> Result<(Settlement, u64), AppError> {
        let (settlement, settled) = self.settle_as(WORKER_ACTOR, payment_id, refund_request_id).await?;
        let wrote = matches!(
            settlement,
            Settlement::Succeeded | Settlement::Failed | Settlement::Resent
        );
        Ok((settlement, if wrote { settled.position } else { 0 }))
    }

    /// Settles one open refund with an inquiry; answers what happened and the refund as it then stands.
    #[tracing::instrument(
        name = "saga.settle",
        skip(self),
        fields(payment_id = %payment_id, refund_request_id = %refund_request_id)
    )]
    async fn settle_as(
        &self,
        actor: &str,
        payment_id: &PaymentId,
        refund_request_id: &RefundRequestId,
    ) -> Result<(Settlement, RefundResult), AppError> {
        let read = self.read(payment_id).await?;
        let (Some(state), Some(found)) = (read.payment.state(), snapshot(&read.payment, refund_request_id)) else {
            return Err(AppError::UnknownRefund {
                refund_request_id: refund_request_id.clone(),
            });
        };
        let unchanged = |settlement| Ok((settlement, answer(found.clone(), read.position)));
        if !found.refund.status.is_pending() {
            return unchanged(Settlement::AlreadyFinal);
        }
        let outcome = self.inner.gateway.inquiry(refund_request_id).await;
        if !matches!(outcome, InquiryOutcome::Unknown { .. }) {
            self.note_antom_answer();
        }
        let command = match outcome {
            InquiryOutcome::Succeeded {
                refund_id, refund_time, ..
            } => PaymentCommand::ConfirmRefundSucceeded {
                refund_request_id: refund_request_id.clone(),
                refund_id,
                refund_time,
                source: OutcomeSource::Inquiry,
            },
            InquiryOutcome::Failed { .. } => PaymentCommand::ConfirmRefundFailed {
                refund_request_id: refund_request_id.clone(),
                result_code: ResultCode::ProcessFail,
                result_message: INQUIRY_FAIL_MESSAGE.to_owned(),
                source: OutcomeSource::Inquiry,
            },
            InquiryOutcome::Processing => return unchanged(Settlement::Processing),
            InquiryOutcome::NotFound { code, .. } => {
                tracing::info!(%code, "antom never saw the refund; sending it again");
                let resent = self.send_refund(actor, state, &found.refund, read.position).await?;
                return Ok((Settlement::Resent, resent));
            }
            InquiryOutcome::Unknown { reason } => {
                tracing::warn!(%reason, "inquiry outcome unknown; asked again later");
                return unchanged(Settlement::Unknown);
            }
        };
        let settled = self
            .record_outcome(actor, payment_id, refund_request_id, command)
            .await?;
        let status = settled.refund.as_ref().map(|snapshot| snapshot.refund.status);
        let settlement = match status {
            Some(RefundStatus::Succeeded) => Settlement::Succeeded,
            Some(RefundStatus::Failed) => Settlement::Failed,
            _ => Settlement::AlreadyFinal,
        };
        Ok((settlement, settled))
    }
}
