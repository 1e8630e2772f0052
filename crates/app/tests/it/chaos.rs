//! Every fault the simulator knows, drawn at random (seeded) on refund and inquiry calls, with
//! concurrent requests: once the worker has settled everything, the ledger and Antom agree refund
//! by refund, nothing is refunded twice, and refunded + pending never exceeded captured.

use std::time::Duration;

use apo_sim::{FaultConfig, RefundState};
use domain::{RefundStatus, ResultStatus};

use crate::helpers::{Backend, Harness, refund_input, usd};

const REFUNDS: usize = 24;
const SETTLE_PASSES_MAX: usize = 40;

fn faulty() -> FaultConfig {
    FaultConfig {
        u_share: 0.2,
        u_fail_share: 0.5,
        timeout_share: 0.08,
        accepted_timeout_share: 0.08,
        server_error_share: 0.08,
        rate_limit_share: 0.05,
        garbage_share: 0.05,
        unsigned_share: 0.05,
        bad_signature_share: 0.05,
        ..FaultConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_random_faults_the_ledger_and_antom_end_in_agreement() {
    let harness = Harness::start_with(Backend::Sqlite, |config| config.faults = faulty()).await;
    let payment = harness.payment("P-CHAOS", 10_000).await;
    let mut tasks = Vec::new();
    for index in 0..REFUNDS {
        let ledger = harness.ledger.clone();
        let input = refund_input(&format!("R-{index}"), &payment, usd(500));
        tasks.push(tokio::spawn(async move { ledger.refund("op", input).await }));
    }
    for task in tasks {
        let answer = task.await.unwrap().unwrap();
        assert!(
            matches!(
                answer.result.status,
                ResultStatus::S | ResultStatus::F | ResultStatus::U
            ),
            "{:?}",
            answer.result
        );
    }

    let mut passes = 0;
    loop {
        let state = harness.ledger.payment(&payment).await.unwrap().unwrap();
        assert!(state.invariant_holds());
        if state.pending.is_zero() {
            break;
        }
        passes += 1;
        assert!(
            passes <= SETTLE_PASSES_MAX,
            "refunds still open after {SETTLE_PASSES_MAX} passes"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        harness.age_refunds().await;
        let report = harness
            .ledger
            .settle_open_refunds(Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(report.errors, 0, "{report:?}");
    }

    let state = harness.ledger.payment(&payment).await.unwrap().unwrap();
    let totals = harness.simulator().totals(&payment).unwrap();
    assert_eq!(state.refunded.minor_units(), totals.succeeded_minor_units);
    assert_eq!(totals.processing_minor_units, 0);
    for refund in state.refunds.values() {
        let at_antom = harness
            .simulator()
            .refund(&refund.refund_request_id)
            .map(|record| record.state);
        match (refund.status, at_antom) {
            (RefundStatus::Succeeded, Some(RefundState::Succeeded { .. }))
            | (RefundStatus::Failed, Some(RefundState::Failed { .. }))
            | (RefundStatus::Rejected, None) => {}
            (status, at_antom) => panic!("{}: ledger {status:?}, Antom {at_antom:?}", refund.refund_request_id),
        }
    }
    harness.finish().await;
}
