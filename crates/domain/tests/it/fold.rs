//! The fold is loud: events `decide` never produces (another currency, amounts that overflow, a reservation
//! above the captured amount) are errors naming the payment and the field, in release builds too.

use domain::{
    FoldError, MINOR_UNITS_MAX, Money, Payment, PaymentEvent, PaymentId, PaymentMethodType, PaymentRecorded,
    RefundRequestId, RefundRequested, evolve,
};
use time::macros::datetime;

fn money(currency: &str, minor_units: u64) -> Money {
    Money::parse("amount", currency, &minor_units.to_string()).unwrap()
}

fn recorded(amount: Money) -> Payment {
    let event = PaymentEvent::PaymentRecorded(PaymentRecorded {
        payment_id: PaymentId::parse("P1").unwrap(),
        payment_amount: amount,
        payment_method_type: PaymentMethodType::parse("ALIPAY_CN").unwrap(),
        payment_time: datetime!(2026-11-01 00:00 UTC),
        capture_required: false,
    });
    evolve(Payment::Unknown, &event).unwrap()
}

fn requested(id: &str, amount: Money) -> PaymentEvent {
    PaymentEvent::RefundRequested(RefundRequested {
        refund_request_id: RefundRequestId::parse(id).unwrap(),
        payment_id: PaymentId::parse("P1").unwrap(),
        refund_amount: amount,
        refund_reason: None,
        requested_at: datetime!(2026-11-01 01:00 UTC),
    })
}

#[test]
fn a_refund_in_another_currency_does_not_fold() {
    let payment = recorded(money("USD", 1_000));
    let error = evolve(payment, &requested("R1", money("EUR", 100))).unwrap_err();
    assert!(
        matches!(
            &error,
            FoldError::Arithmetic {
                field: "pending",
                operation: "+",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("payment P1: pending"), "{error}");
}

#[test]
fn a_reservation_above_the_captured_amount_breaks_the_invariant() {
    let payment = recorded(money("USD", 1_000));
    let error = evolve(payment, &requested("R1", money("USD", 1_001))).unwrap_err();
    assert_eq!(
        error,
        FoldError::BalanceInvariant {
            payment_id: PaymentId::parse("P1").unwrap(),
            refunded: money("USD", 0),
            pending: money("USD", 1_001),
            captured: money("USD", 1_000),
        }
    );
}

#[test]
fn sums_that_leave_the_range_of_amounts_do_not_fold() {
    let payment = recorded(money("USD", MINOR_UNITS_MAX));
    let payment = evolve(payment, &requested("R1", money("USD", MINOR_UNITS_MAX))).unwrap();
    let error = evolve(payment, &requested("R2", money("USD", 1))).unwrap_err();
    assert!(
        matches!(error, FoldError::Arithmetic { field: "pending", .. }),
        "{error:?}"
    );
}

#[test]
fn folding_a_clone_leaves_the_original_as_it_was() {
    let payment = recorded(money("USD", 1_000));
    let shared = payment.clone();
    let folded = evolve(shared, &requested("R1", money("USD", 100))).unwrap();
    assert_eq!(payment.state().unwrap().pending, money("USD", 0));
    assert!(payment.refund(&RefundRequestId::parse("R1").unwrap()).is_none());
    assert_eq!(folded.state().unwrap().pending, money("USD", 100));
}
