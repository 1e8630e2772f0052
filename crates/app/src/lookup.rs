//! Finding a refund's payment by its refundRequestId: first among the refunds
//! this instance saw recorded ([`RefundPayments`]), then through the read
//! models. The log is authoritative; the read models only say which stream
//! to load, and a miss is retried once they have caught up with the log.

use std::collections::{HashMap, VecDeque};
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

/// Refund payments this instance keeps in memory, at most this many (the oldest goes first).
pub(crate) const REFUND_PAYMENTS_KEPT: usize = 10_000;

/// The payments of refunds this instance saw recorded in the log, so that Antom's notification of a refund
/// finds its payment without asking the read models.
///
/// A refundRequestId belongs to one payment for good once the log holds its `RefundRequested` (the ledger
/// accepts each id once, on one payment), so an entry never goes stale; a miss asks the read models as before.
#[derive(Debug, Default)]
pub(crate) struct RefundPayments {
    payments: HashMap<RefundRequestId, PaymentId>,
    arrival: VecDeque<RefundRequestId>,
}

impl RefundPayments {
    /// Remembers that the log holds `refund_request_id` on `payment_id`.
    pub(crate) fn remember(&mut self, refund_request_id: &RefundRequestId, payment_id: &PaymentId) {
        if self.payments.contains_key(refund_request_id) {
            return;
        }
        self.payments.insert(refund_request_id.clone(), payment_id.clone());
        self.arrival.push_back(refund_request_id.clone());
        while self.payments.len() > REFUND_PAYMENTS_KEPT {
            let Some(oldest) = self.arrival.pop_front() else {
                break;
            };
            self.payments.remove(&oldest);
        }
    }

    pub(crate) fn payment_of(&self, refund_request_id: &RefundRequestId) -> Option<PaymentId> {
        self.payments.get(refund_request_id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refund(index: usize) -> RefundRequestId {
        RefundRequestId::parse(&format!("R-{index}")).unwrap()
    }

    #[test]
    fn remembers_each_refund_once_and_forgets_the_oldest_beyond_the_bound() {
        let mut payments = RefundPayments::default();
        let first = PaymentId::parse("P-1").unwrap();
        let second = PaymentId::parse("P-2").unwrap();
        payments.remember(&refund(0), &first);
        payments.remember(&refund(0), &second);
        assert_eq!(
            payments.payment_of(&refund(0)),
            Some(first.clone()),
            "the first payment stays"
        );
        for index in 1..=REFUND_PAYMENTS_KEPT {
            payments.remember(&refund(index), &second);
        }
        assert_eq!(payments.payment_of(&refund(0)), None, "the oldest went first");
        assert_eq!(payments.payment_of(&refund(1)), Some(second.clone()));
        assert_eq!(payments.payment_of(&refund(REFUND_PAYMENTS_KEPT)), Some(second));
        assert_eq!(payments.payments.len(), REFUND_PAYMENTS_KEPT);
        assert_eq!(payments.arrival.len(), REFUND_PAYMENTS_KEPT);
    }
}
