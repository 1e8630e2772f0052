//! The payments of refunds this instance saw recorded in the log, kept in memory within a bound, so that
//! Antom's notification of a refund finds its payment without asking the read models. Knows nothing of the
//! ledger: the payment queues fill it, `lookup` reads it.

use std::collections::{HashMap, VecDeque};

use domain::{PaymentId, RefundRequestId};

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
