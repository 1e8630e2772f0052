//! `given(events).when(command).then_expect(events)`: the aggregate's test
//! framework (after cqrs-es `TestFramework`).

use domain::{
    Money, PaymentCommand, PaymentEvent, PaymentId, PaymentMethodType, PaymentRecorded, Policy, RefundRequestId,
    Rejection, ResultCode, decide,
};
use time::OffsetDateTime;
use time::macros::datetime;

/// The payment time of every fixture.
pub(crate) const T0: OffsetDateTime = datetime!(2026-01-01 00:00:00 UTC);

pub(crate) fn usd(minor_units: &str) -> Money {
    Money::parse("amount", "USD", minor_units).unwrap()
}

pub(crate) fn payment_id() -> PaymentId {
    PaymentId::parse("PAY-1").unwrap()
}

pub(crate) fn refund_id(id: &str) -> RefundRequestId {
    RefundRequestId::parse(id).unwrap()
}

/// 100.00 USD paid with a wallet (no capture needed) at `T0`.
pub(crate) fn wallet_payment() -> PaymentEvent {
    PaymentEvent::PaymentRecorded(PaymentRecorded {
        payment_id: payment_id(),
        payment_amount: usd("10000"),
        payment_method_type: PaymentMethodType::parse("ALIPAY_CN").unwrap(),
        payment_time: T0,
        capture_required: false,
    })
}

/// 100.00 USD authorised on a card at `T0`, not captured yet.
pub(crate) fn card_payment() -> PaymentEvent {
    PaymentEvent::PaymentRecorded(PaymentRecorded {
        payment_id: payment_id(),
        payment_amount: usd("10000"),
        payment_method_type: PaymentMethodType::parse("CARD").unwrap(),
        payment_time: T0,
        capture_required: true,
    })
}

pub(crate) fn request_refund(id: &str, minor_units: &str) -> PaymentCommand {
    PaymentCommand::RequestRefund {
        refund_request_id: refund_id(id),
        payment_id: payment_id(),
        refund_amount: usd(minor_units),
        refund_reason: None,
    }
}

pub(crate) struct Given {
    events: Vec<PaymentEvent>,
    policy: Policy,
    now: OffsetDateTime,
}

pub(crate) fn given(events: Vec<PaymentEvent>) -> Given {
    Given {
        events,
        policy: Policy::default(),
        now: T0 + time::Duration::days(1),
    }
}

impl Given {
    pub(crate) fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    pub(crate) fn at(mut self, now: OffsetDateTime) -> Self {
        self.now = now;
        self
    }

    pub(crate) fn when(self, command: PaymentCommand) -> Then {
        let payment = crate::replay(&self.events);
        let result = decide(&payment, &command, &self.policy, self.now);
        Then { result, now: self.now }
    }
}

pub(crate) struct Then {
    result: Result<Vec<PaymentEvent>, Rejection>,
    now: OffsetDateTime,
}

impl Then {
    /// The decision time, for building expected events.
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.now
    }

    #[track_caller]
    pub(crate) fn then_expect(self, expected: Vec<PaymentEvent>) {
        assert_eq!(self.result, Ok(expected));
    }

    /// The command is already applied: no event.
    #[track_caller]
    pub(crate) fn then_nothing(self) {
        assert_eq!(self.result, Ok(vec![]));
    }

    /// Refused with no event.
    #[track_caller]
    pub(crate) fn then_reject(self, code: ResultCode) {
        match self.result {
            Err(rejection) => assert_eq!(rejection.code, code, "{rejection}"),
            Ok(events) => panic!("expected a rejection {code}, got events {events:?}"),
        }
    }

    /// Refused by the refund rules and recorded as `RefundRejected`.
    #[track_caller]
    pub(crate) fn then_record_rejection(self, code: ResultCode) {
        match self.result.as_deref() {
            Ok([PaymentEvent::RefundRejected(rejected)]) => {
                assert_eq!(rejected.result_code, code, "{}", rejected.result_message)
            }
            other => panic!("expected one RefundRejected {code}, got {other:?}"),
        }
    }

    /// Accepted: exactly one `RefundRequested`.
    #[track_caller]
    pub(crate) fn then_refund_requested(self) {
        match self.result.as_deref() {
            Ok([PaymentEvent::RefundRequested(_)]) => {}
            other => panic!("expected one RefundRequested, got {other:?}"),
        }
    }

    pub(crate) fn result(self) -> Result<Vec<PaymentEvent>, Rejection> {
        self.result
    }
}
