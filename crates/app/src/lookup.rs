//! Finding a refund's payment by its refundRequestId: first among the refunds
//! this instance saw recorded ([`crate::refund_payments::RefundPayments`]), then through the read
//! models. The log is authoritative; the read models only say which stream
//! to load, and a miss is retried once they have caught up with the log.

use std::time::Duration;

use domain::{PaymentId, RefundRequestId};
use projections::RefundView;
use time::OffsetDateTime;

use crate::error::AppError;
use crate::ledger::{LOOKUP_WAIT_MS_MAX, Ledger};

fn read_models_error(operation: &'static str) -> impl FnOnce(projections::ProjectionError) -> AppError {
    move |error| AppError::ReadModels {
        operation,
        source: Box::new(error),
    }
}

impl Ledger {
    /// The payment of a refund (from memory when this instance saw the refund recorded), or `None` when the
    /// read models do not know it even once they caught up
    /// with the log's head (waiting at most [`LOOKUP_WAIT_MS_MAX`]).
    pub(crate) async fn locate(&self, refund_request_id: &RefundRequestId) -> Result<Option<PaymentId>, AppError> {
        if let Some(payment_id) = self.inner.queues.refund_payment(refund_request_id) {
            return Ok(Some(payment_id));
        }
        if let Some(view) = self.refund_view(refund_request_id).await? {
            return Ok(Some(view.payment_id));
        }
        let head = self.store().head().await?.position;
        let caught_up = self
            .inner
            .read_models
            .wait_for_position(head, Duration::from_millis(LOOKUP_WAIT_MS_MAX))
            .await
            .map_err(read_models_error("wait for the read models"))?;
        if !caught_up {
            tracing::warn!(head, "read models lag the log; a refund may look unknown");
        }
        Ok(self.refund_view(refund_request_id).await?.map(|view| view.payment_id))
    }

    async fn refund_view(&self, refund_request_id: &RefundRequestId) -> Result<Option<RefundView>, AppError> {
        self.inner
            .read_models
            .refund(refund_request_id)
            .await
            .map_err(read_models_error("look up a refund"))
    }

    /// The worker's list: refunds requested or processing since before `requested_before`, oldest first.
    pub(crate) async fn open_refunds(
        &self,
        requested_before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<RefundView>, AppError> {
        self.inner
            .read_models
            .open_refunds(requested_before, limit)
            .await
            .map_err(read_models_error("list open refunds"))
    }
}
