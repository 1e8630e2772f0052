//! The balance invariant under concurrency: 50 refunds of 5.00 at once on a 100.00 payment. Exactly
//! 20 succeed, the rest are refused, and refunded + pending never exceeds captured, on one ledger
//! and on two ledgers (two server instances) sharing a PostgreSQL database.

use app::Ledger;
use domain::{PaymentId, ResultCode, ResultStatus};

use crate::helpers::{Backend, Harness, refund_input, usd};

const REFUNDS: usize = 50;
const PAYMENT_MINOR_UNITS: u64 = 10_000;
const REFUND_MINOR_UNITS: u64 = 500;

async fn fifty_refunds_at_once(harness: &Harness, ledgers: [Ledger; 2], payment: &PaymentId) {
    let mut tasks = Vec::new();
    for index in 0..REFUNDS {
        let ledger = ledgers[index % 2].clone();
        let input = refund_input(&format!("R-{index}"), payment, usd(REFUND_MINOR_UNITS));
        tasks.push(tokio::spawn(async move { ledger.refund("op", input).await }));
    }
    let mut succeeded = 0;
    let mut exceeded = 0;
    for task in tasks {
        let answer = task.await.expect("task").expect("refund answered");
        match (answer.result.status, &answer.result.code) {
            (ResultStatus::S, _) => succeeded += 1,
            (ResultStatus::F, ResultCode::RefundAmountExceed) => exceeded += 1,
            other => panic!("unexpected answer {other:?}: {}", answer.result.message),
        }
    }
    assert_eq!((succeeded, exceeded), (20, 30));

    let state = ledgers[0].payment(payment).await.unwrap().expect("payment");
    assert_eq!((state.refunded, state.pending), (usd(PAYMENT_MINOR_UNITS), usd(0)));
    assert!(state.invariant_holds());
    let totals = harness.simulator().totals(payment).unwrap();
    assert_eq!(
        (totals.succeeded_minor_units, totals.refund_count),
        (PAYMENT_MINOR_UNITS, 20)
    );

    // Replay the stream event by event: the invariant held at every position.
    let stream = eventlog::StreamName::parse(domain::payment_stream_name(payment)).unwrap();
    let recorded = harness.store.read_stream(&stream, 0, 1_000).await.unwrap();
    let mut folded = domain::Payment::Unknown;
    for event in &recorded {
        let event =
            domain::PaymentEvent::from_stored(&event.event_type, event.schema_version, &event.payload, &[]).unwrap();
        folded = domain::evolve(folded, &event).expect("the stream folds");
        if let Some(state) = folded.state() {
            assert!(state.invariant_holds(), "refunded + pending exceeded captured");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_refunds_on_sqlite() {
    let harness = Harness::start(Backend::Sqlite).await;
    let payment = harness.payment("P-RUSH", PAYMENT_MINOR_UNITS).await;
    let ledgers = [harness.ledger.clone(), harness.ledger.clone()];
    fifty_refunds_at_once(&harness, ledgers, &payment).await;
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_refunds_on_postgres() {
    let harness = Harness::start(Backend::Postgres).await;
    let payment = harness.payment("P-RUSH", PAYMENT_MINOR_UNITS).await;
    let ledgers = [harness.ledger.clone(), harness.ledger.clone()];
    fifty_refunds_at_once(&harness, ledgers, &payment).await;
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_refunds_on_two_instances_of_postgres() {
    let harness = Harness::start(Backend::Postgres).await;
    let payment = harness.payment("P-RUSH", PAYMENT_MINOR_UNITS).await;
    let second = harness.ledger_on(harness.second_store().await);
    let ledgers = [harness.ledger.clone(), second];
    fifty_refunds_at_once(&harness, ledgers, &payment).await;
    harness.finish().await;
}

/// Each ledger keeps folded streams between commands: a ledger that folded a payment must still see
/// what another ledger (another server instance) wrote since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_sees_what_another_instance_wrote_after_it_folded_the_payment() {
    let harness = Harness::start(Backend::Sqlite).await;
    let payment = harness.payment("P-TWO", PAYMENT_MINOR_UNITS).await;
    let first = harness.ledger.clone();
    let second = harness.ledger_on(harness.store.clone());
    let answer = first
        .refund("op", refund_input("T-1", &payment, usd(6_000)))
        .await
        .unwrap();
    assert_eq!(answer.result.status, ResultStatus::S);
    let answer = second
        .refund("op", refund_input("T-2", &payment, usd(4_000)))
        .await
        .unwrap();
    assert_eq!(answer.result.status, ResultStatus::S);
    let answer = first.refund("op", refund_input("T-3", &payment, usd(1))).await.unwrap();
    assert_eq!(
        (answer.result.status, answer.result.code),
        (ResultStatus::F, ResultCode::RefundAmountExceed),
        "the first ledger decided on a stale fold"
    );
    let state = first.payment(&payment).await.unwrap().expect("payment");
    assert_eq!(state.refunded, usd(PAYMENT_MINOR_UNITS));
    harness.finish().await;
}
