//! Property tests of the invariants: whatever commands arrive in whatever
//! order, `refunded + pending <= captured` after every event, and replaying
//! the produced events gives the same state.

use domain::{
    ChargebackResolution, Currency, DisputeId, MINOR_UNITS_MAX, Money, OutcomeSource, Payment, PaymentCommand,
    PaymentEvent, PaymentMethodType, Policy, RefundId, ResultCode, decide, evolve,
};
use proptest::prelude::*;
use time::Duration;

use crate::scenario::{T0, payment_id, refund_id, usd};

#[derive(Debug, Clone)]
enum Op {
    Record {
        minor_units: u64,
        card: bool,
        capture_required: Option<bool>,
    },
    Capture {
        minor_units: u64,
    },
    OpenChargeback {
        dispute: u8,
        minor_units: u64,
    },
    ResolveChargeback {
        dispute: u8,
        resolution: u8,
    },
    Refund {
        id: u8,
        minor_units: u64,
        reason: bool,
    },
    Processing {
        id: u8,
    },
    Succeed {
        id: u8,
        antom_id: u8,
    },
    Fail {
        id: u8,
    },
    Wait {
        days: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (1u64..=100_000, any::<bool>(), proptest::option::of(any::<bool>()))
            .prop_map(|(minor_units, card, capture_required)| Op::Record { minor_units, card, capture_required }),
        1 => (0u64..=120_000).prop_map(|minor_units| Op::Capture { minor_units }),
        1 => (0u8..3, 0u64..=60_000).prop_map(|(dispute, minor_units)| Op::OpenChargeback { dispute, minor_units }),
        1 => (0u8..3, 0u8..3).prop_map(|(dispute, resolution)| Op::ResolveChargeback { dispute, resolution }),
        4 => (0u8..20, 0u64..=60_000, any::<bool>()).prop_map(|(id, minor_units, reason)| Op::Refund { id, minor_units, reason }),
        2 => (0u8..20).prop_map(|id| Op::Processing { id }),
        2 => (0u8..20, 0u8..2).prop_map(|(id, antom_id)| Op::Succeed { id, antom_id }),
        2 => (0u8..20).prop_map(|id| Op::Fail { id }),
        1 => (0i64..200).prop_map(|days| Op::Wait { days }),
    ]
}

fn command(op: &Op) -> Option<PaymentCommand> {
    let refund = |id: u8| refund_id(&format!("R{id}"));
    let dispute = |id: u8| DisputeId::parse(&format!("D{id}")).unwrap();
    Some(match op {
        Op::Record {
            minor_units,
            card,
            capture_required,
        } => PaymentCommand::RecordPayment {
            payment_id: payment_id(),
            payment_amount: usd(&minor_units.to_string()),
            payment_method_type: PaymentMethodType::parse(if *card { "CARD" } else { "ALIPAY_CN" }).unwrap(),
            payment_time: T0,
            capture_required: *capture_required,
        },
        Op::Capture { minor_units } => PaymentCommand::CapturePayment {
            payment_id: payment_id(),
            capture_id: None,
            capture_amount: usd(&minor_units.to_string()),
            capture_time: T0,
        },
        Op::OpenChargeback {
            dispute: id,
            minor_units,
        } => PaymentCommand::OpenChargeback {
            payment_id: payment_id(),
            dispute_id: dispute(*id),
            dispute_amount: usd(&minor_units.to_string()),
        },
        Op::ResolveChargeback {
            dispute: id,
            resolution,
        } => PaymentCommand::ResolveChargeback {
            payment_id: payment_id(),
            dispute_id: dispute(*id),
            resolution: [
                ChargebackResolution::MerchantWon,
                ChargebackResolution::CustomerWon,
                ChargebackResolution::Cancelled,
            ][usize::from(*resolution)],
        },
        Op::Refund {
            id,
            minor_units,
            reason,
        } => PaymentCommand::RequestRefund {
            refund_request_id: refund(*id),
            payment_id: payment_id(),
            refund_amount: usd(&minor_units.to_string()),
            refund_reason: reason.then(|| "customer request".to_owned()),
        },
        Op::Processing { id } => PaymentCommand::MarkRefundProcessing {
            refund_request_id: refund(*id),
            reason: "U".into(),
        },
        Op::Succeed { id, antom_id } => PaymentCommand::ConfirmRefundSucceeded {
            refund_request_id: refund(*id),
            refund_id: RefundId::parse(&format!("A{id}-{antom_id}")).unwrap(),
            refund_time: T0,
            source: OutcomeSource::Inquiry,
        },
        Op::Fail { id } => PaymentCommand::ConfirmRefundFailed {
            refund_request_id: refund(*id),
            result_code: ResultCode::ProcessFail,
            result_message: "failed".into(),
            source: OutcomeSource::Notification,
        },
        Op::Wait { .. } => return None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn balance_invariant_holds_after_every_event_and_replay_agrees(ops in proptest::collection::vec(op(), 1..80)) {
        let policy = Policy::default();
        let mut now = T0 + Duration::hours(1);
        let mut payment = Payment::Unknown;
        let mut log: Vec<PaymentEvent> = Vec::new();
        for op in &ops {
            if let Op::Wait { days } = op {
                now += Duration::days(*days);
                continue;
            }
            let Some(command) = command(op) else { continue };
            let Ok(events) = decide(&payment, &command, &policy, now) else { continue };
            for event in events {
                payment = evolve(payment, &event).unwrap();
                if let Some(state) = payment.state() {
                    let used = state.refunded.minor_units() + state.pending.minor_units();
                    prop_assert!(used <= state.captured.minor_units(), "{used} > {} after {event:?}", state.captured);
                    prop_assert!(state.captured.minor_units() <= state.payment_amount.minor_units());
                }
                log.push(event);
            }
            // Deciding the same command again right away must change nothing more
            // for the idempotent commands.
            if matches!(op, Op::Record { .. } | Op::Refund { .. } | Op::Succeed { .. } | Op::Fail { .. })
                && let Ok(again) = decide(&payment, &command, &policy, now)
            {
                prop_assert!(again.is_empty(), "second {command:?} produced {again:?}");
            }
        }
        prop_assert_eq!(crate::replay(&log), payment);
        // Every event survives its stored form.
        for event in &log {
            let stored = event.to_stored();
            let back = PaymentEvent::from_stored(stored.event_type, stored.schema_version, &stored.data, &[]).unwrap();
            prop_assert_eq!(&back, event);
        }
    }

    #[test]
    fn money_round_trips_through_decimal_json_and_antoms_string(
        code in prop::sample::select(vec!["USD", "JPY", "KWD", "IDR", "EUR", "CLP", "BHD"]),
        minor_units in 0u64..=MINOR_UNITS_MAX,
    ) {
        let currency = Currency::parse("currency", code).unwrap();
        let minor_units = minor_units - minor_units % currency.antom_multiple();
        let money = Money::from_minor_units("amount", currency, minor_units).unwrap();
        prop_assert_eq!(Money::from_decimal("amount", currency, money.to_decimal()).unwrap(), money);
        prop_assert_eq!(money.to_decimal().scale(), currency.exponent());
        let json = serde_json::to_string(&money).unwrap();
        prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
        prop_assert_eq!(Money::parse("amount", code, &money.value_string()).unwrap(), money);
    }
}
