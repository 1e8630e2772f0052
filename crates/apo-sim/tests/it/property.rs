//! The simulator's promise under any fault sequence, driven through the
//! adapter: retrying the same refundRequestId until a final answer never
//! refunds twice and never refunds more than the payment.

use std::time::Duration;

use apo::{InquiryOutcome, InquiryRefundRequest, RefundOutcome, RetryPolicy};
use apo_sim::{Fault, RefundState};
use domain::RefundRequestId;
use proptest::prelude::*;

use crate::adapter::{client, request};
use crate::helpers::{TestSim, captured_payment, config, payment_id};

/// Longest fault script per refundRequestId.
const SCRIPT_LEN_MAX: usize = 4;
/// Calls per refundRequestId before the test gives up (scripted faults, then U settling).
const CALLS_MAX: usize = 40;
const PAYMENT_MINOR_UNITS: u64 = 1000;

fn any_fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        Just(Fault::None),
        Just(Fault::Processing),
        Just(Fault::ProcessingThenFail),
        Just(Fault::Timeout),
        Just(Fault::AcceptedTimeout),
        Just(Fault::ServerError),
        Just(Fault::RateLimited),
        Just(Fault::Garbage),
        Just(Fault::Unsigned),
        Just(Fault::BadSignature),
        Just(Fault::NotifyDuplicate),
    ]
}

/// Refund until the adapter reports a final outcome (refund S/F, or an
/// inquiry that found a final refund). Returns whether it succeeded.
async fn refund_until_final(sim: &TestSim, id: &str, amount: u64) -> bool {
    let apo = client(sim, RetryPolicy::none());
    let refund = request(id, "P1", amount);
    let inquiry = InquiryRefundRequest::by_refund_request_id(RefundRequestId::parse(id).unwrap());
    for _ in 0..CALLS_MAX {
        match apo.refund(&refund).await.unwrap() {
            RefundOutcome::Succeeded { .. } => return true,
            RefundOutcome::Failed { .. } => return false,
            RefundOutcome::Unknown { .. } => {}
        }
        match apo.inquiry_refund(&inquiry).await.unwrap() {
            InquiryOutcome::Succeeded { .. } => return true,
            InquiryOutcome::Failed { .. } => return false,
            InquiryOutcome::Processing | InquiryOutcome::NotFound { .. } | InquiryOutcome::Unknown { .. } => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{id}: no final outcome after {CALLS_MAX} calls");
}

async fn run_case(scripts: [Vec<Fault>; 2], amounts: [u64; 2]) {
    let mut config = config();
    config.settle_ms = 30;
    config.faults.timeout_hold_ms = 600;
    let sim = TestSim::start_with(config).await;
    sim.sim()
        .seed_payment(captured_payment("P1", PAYMENT_MINOR_UNITS))
        .unwrap();
    let mut succeeded = Vec::new();
    for (index, (script, amount)) in scripts.into_iter().zip(amounts).enumerate() {
        let id = format!("R{index}");
        sim.sim()
            .script_faults(&id, script.into_iter().map(|fault| vec![fault]).collect())
            .unwrap();
        succeeded.push(refund_until_final(&sim, &id, amount).await);
    }
    let refunds = sim.sim().refunds_of(&payment_id("P1"));
    let totals = sim.sim().totals(&payment_id("P1")).unwrap();
    assert!(
        refunds.len() <= 2,
        "one refund per refundRequestId at most: {refunds:?}"
    );
    assert!(totals.succeeded_minor_units <= PAYMENT_MINOR_UNITS, "{totals:?}");
    let mut succeeded_sum = 0;
    for (index, (&succeeded, &amount)) in succeeded.iter().zip(&amounts).enumerate() {
        let id = RefundRequestId::parse(&format!("R{index}")).unwrap();
        let record = sim.sim().refund(&id);
        if succeeded {
            succeeded_sum += amount;
            let record = record.expect("a succeeded refund is recorded");
            assert!(matches!(record.state, RefundState::Succeeded { .. }), "{record:?}");
            assert_eq!(record.refund_amount.minor_units(), amount);
        } else {
            assert!(record.is_none_or(|record| matches!(record.state, RefundState::Failed { .. })));
        }
    }
    // What the merchant was told matches what Antom holds, to the minor unit.
    assert_eq!(totals.succeeded_minor_units, succeeded_sum);
    assert_eq!(totals.processing_minor_units, 0, "every refund reached a final state");
    sim.server.shutdown().await.unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn retrying_until_final_never_refunds_twice_or_too_much(
        first in proptest::collection::vec(any_fault(), 0..=SCRIPT_LEN_MAX),
        second in proptest::collection::vec(any_fault(), 0..=SCRIPT_LEN_MAX),
        first_amount in 1..=PAYMENT_MINOR_UNITS,
        second_amount in 1..=PAYMENT_MINOR_UNITS,
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run_case([first, second], [first_amount, second_amount]));
    }
}
