//! Property: for any sequence of commands on a few payments, decided by the aggregate and appended through
//! the real event store while the runner runs, the projected balances and refunds equal the aggregate's
//! state (captured, refunded, pending, charged back, refundable, every refund's status). Run on SQLite.

use std::sync::Arc;

use domain::{ChargebackResolution, DisputeId, OutcomeSource, PaymentCommand, RefundId, ResultCode};
use eventlog::{EventStore, SqliteStore};
use projections::{ProjectionStore, SqliteReadModels, read_model_path};
use proptest::prelude::*;
use time::Duration as TimeDuration;

use crate::conformance::assert_matches_domain;
use crate::support::{Ledger, Running, T0, caught_up, head, money, payment_id, refund_request_id};

/// The payments of every case: (id, currency, amount, method). CARD needs a capture by the default policy.
const PAYMENTS: [(&str, &str, u64, &str); 3] = [
    ("p0", "USD", 10_000, "CARD"),
    ("p1", "USD", 5_000, "ALIPAY_CN"),
    ("p2", "JPY", 8_000, "GCASH"),
];

#[derive(Debug, Clone)]
enum Op {
    Capture { percent: u64 },
    Refund { refund: u8, percent: u64 },
    Processing { refund: u8 },
    Succeed { refund: u8 },
    Fail { refund: u8 },
    OpenChargeback { dispute: u8, percent: u64 },
    ResolveChargeback { dispute: u8, resolution: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (1..=100_u64).prop_map(|percent| Op::Capture { percent }),
        4 => (0..4_u8, 1..=70_u64).prop_map(|(refund, percent)| Op::Refund { refund, percent }),
        2 => (0..4_u8).prop_map(|refund| Op::Processing { refund }),
        3 => (0..4_u8).prop_map(|refund| Op::Succeed { refund }),
        2 => (0..4_u8).prop_map(|refund| Op::Fail { refund }),
        1 => (0..2_u8, 1..=100_u64).prop_map(|(dispute, percent)| Op::OpenChargeback { dispute, percent }),
        1 => (0..2_u8, 0..3_u8).prop_map(|(dispute, resolution)| Op::ResolveChargeback { dispute, resolution }),
    ]
}

fn command(payment: usize, op: &Op, ledger: &Ledger) -> PaymentCommand {
    let (id, code, amount, _) = PAYMENTS[payment];
    let share = |percent: u64| money(code, (amount * percent / 100).max(1));
    let refund_id = |refund: u8| refund_request_id(&format!("{id}-r{refund}"));
    let dispute_id = |dispute: u8| DisputeId::parse(&format!("{id}-d{dispute}")).expect("dispute id");
    match *op {
        Op::Capture { percent } => PaymentCommand::CapturePayment {
            payment_id: payment_id(id),
            capture_id: None,
            capture_amount: share(percent),
            capture_time: ledger.now,
        },
        Op::Refund { refund, percent } => PaymentCommand::RequestRefund {
            refund_request_id: refund_id(refund),
            payment_id: payment_id(id),
            refund_amount: share(percent),
            refund_reason: None,
        },
        Op::Processing { refund } => PaymentCommand::MarkRefundProcessing {
            refund_request_id: refund_id(refund),
            reason: "timeout".to_owned(),
        },
        Op::Succeed { refund } => PaymentCommand::ConfirmRefundSucceeded {
            refund_request_id: refund_id(refund),
            refund_id: RefundId::parse(&format!("antom-{id}-{refund}")).expect("refund id"),
            refund_time: ledger.now,
            source: OutcomeSource::Notification,
        },
        Op::Fail { refund } => PaymentCommand::ConfirmRefundFailed {
            refund_request_id: refund_id(refund),
            result_code: ResultCode::ProcessFail,
            result_message: "failed".to_owned(),
            source: OutcomeSource::Inquiry,
        },
        Op::OpenChargeback { dispute, percent } => PaymentCommand::OpenChargeback {
            payment_id: payment_id(id),
            dispute_id: dispute_id(dispute),
            dispute_amount: share(percent),
        },
        Op::ResolveChargeback { dispute, resolution } => PaymentCommand::ResolveChargeback {
            payment_id: payment_id(id),
            dispute_id: dispute_id(dispute),
            resolution: [
                ChargebackResolution::MerchantWon,
                ChargebackResolution::CustomerWon,
                ChargebackResolution::Cancelled,
            ][usize::from(resolution)],
        },
    }
}

async fn check(steps: Vec<(usize, Op)>) {
    let directory = tempfile::tempdir().expect("temporary directory");
    let log_path = directory.path().join("ledger.db");
    let store: Arc<dyn EventStore> = Arc::new(SqliteStore::open(&log_path).await.expect("open store"));
    let projections: Arc<dyn ProjectionStore> = Arc::new(
        SqliteReadModels::open(read_model_path(&log_path))
            .await
            .expect("open read models"),
    );
    let runner = Running::start(Arc::clone(&store), Arc::clone(&projections));
    let mut ledger = Ledger::new(store);
    ledger.now = T0 + TimeDuration::hours(1);
    for (id, code, amount, method) in PAYMENTS {
        ledger.record(id, money(code, amount), method, T0).await;
    }
    let mut refusals = 0_usize;
    for (payment, op) in &steps {
        ledger.now += TimeDuration::minutes(7);
        // Refusals (an unknown refund, an invalid capture) write nothing, as in production.
        let outcome = ledger
            .try_execute(&payment_id(PAYMENTS[*payment].0), command(*payment, op, &ledger))
            .await;
        refusals += usize::from(outcome.is_err());
    }
    assert!(refusals <= steps.len());
    caught_up(&*projections, head(&*ledger.store).await).await;
    for (id, ..) in PAYMENTS {
        assert_matches_domain(&*projections, &ledger, id).await;
        let view = projections
            .payment(&payment_id(id))
            .await
            .expect("read")
            .expect("projected");
        assert!(view.refunded.minor_units() + view.pending.minor_units() <= view.captured.minor_units());
    }
    runner.stop().await.expect("clean shutdown");
    directory.close().expect("remove the temporary directory");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn projected_balances_equal_the_aggregate(steps in prop::collection::vec((0..3_usize, op()), 1..40)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(check(steps));
    }
}
