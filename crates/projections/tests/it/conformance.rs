//! The backend-independent contract of the read models and the runner, written once as generic async
//! functions over a [`Harness`]; `conformance_suite!` turns every case into a `#[tokio::test]` per backend.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use domain::{
    OutcomeSource, Payment, PaymentCommand, PaymentEvent, RefundId, RefundStatus, ReportedOutcome, ResultCode,
};
use eventlog::{EventStore, ExpectedRevision, NewEvent};
use projections::fold::{Batch, BatchFold};
use projections::{
    Cursor, DailyTotal, Envelope, PAGE_SIZE_MAX, PaymentFilter, PaymentStatus, PaymentView, ProjectionError,
    RUNNER_BATCH_EVENTS_MAX, ReadModels, RebuildStep, RefundFilter, RefundView, projection_lag, rebuild_read_models,
};
use time::macros::{date, datetime};
use time::{Duration as TimeDuration, OffsetDateTime};
use uuid::Uuid;

use crate::support::{
    CATCH_UP_TIMEOUT, Harness, Ledger, Running, T0, caught_up, currency, head, money, payment_id, refund_request_id,
    stream,
};

/// Generates one `#[tokio::test]` per case, each with a fresh harness from `$harness`.
macro_rules! conformance_suite {
    ($harness:expr) => {
        conformance_suite!(@cases $harness;
            projects_balances_refunds_and_daily_totals,
            waits_for_a_position_to_read_its_own_write,
            pages_with_cursors_through_every_filter,
            refuses_foreign_cursors_and_oversized_pages,
            restarted_runner_resumes_at_the_checkpoint,
            a_batch_is_applied_at_most_once,
            a_rebuild_swaps_in_on_commit_and_fences_the_writer,
            undecodable_event_stops_the_runner_after_what_precedes_it,
            read_models_equal_a_replay_from_position_zero,
            a_long_log_is_applied_in_bounded_batches,
            folds_reconciliation_runs_findings_and_acknowledgements,
            lists_and_acknowledges_anomalies,
            a_ledger_view_is_pinned_and_keeps_the_report_keys,
            unrecorded_findings_are_listed_and_removed,
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = $harness.await;
                crate::conformance::$case(&harness).await;
                crate::support::Harness::finish(harness).await;
            }
        )*
    };
}

/// Day 2 and day 3 of the scenario, when refunds are requested.
const DAY_2: OffsetDateTime = datetime!(2026-03-02 10:00 UTC);
const DAY_3: OffsetDateTime = datetime!(2026-03-03 11:00 UTC);

/// A realistic history over three days: three payments (one needing capture, one in JPY under dispute),
/// refunds in every status, an anomaly, and an event of a foreign stream. Returns the last position.
pub(crate) async fn write_scenario(ledger: &mut Ledger) -> u64 {
    ledger.now = T0 + TimeDuration::hours(1);
    ledger.record("p-alipay", money("USD", 10_000), "ALIPAY_CN", T0).await;
    ledger
        .record("p-card", money("USD", 5_000), "CARD", T0 + TimeDuration::minutes(10))
        .await;
    ledger
        .record("p-jpy", money("JPY", 3_000), "GCASH", T0 + TimeDuration::minutes(20))
        .await;
    ledger.capture("p-card", money("USD", 4_000)).await;

    ledger.now = DAY_2;
    ledger.refund("p-alipay", "r-a1", money("USD", 3_000)).await;
    ledger.processing("p-alipay", "r-a1").await;
    ledger.refund("p-alipay", "r-a2", money("USD", 2_000)).await;
    ledger.fail("p-alipay", "r-a2").await;
    ledger.refund("p-card", "r-c1", money("USD", 4_000)).await;
    ledger.succeed("p-card", "r-c1").await;
    ledger.append_foreign("refund-request-r-a1").await;

    ledger.now = DAY_3;
    ledger.succeed("p-alipay", "r-a1").await;
    ledger.refund("p-alipay", "r-a3", money("USD", 1_000)).await;
    ledger.refund("p-alipay", "r-a4", money("USD", 20_000)).await;
    ledger.refund("p-alipay", "r-a5", money("USD", 500)).await;
    ledger.processing("p-alipay", "r-a5").await;
    // A failure reported for a refund that succeeded: recorded as an anomaly, never applied.
    ledger.fail("p-alipay", "r-a1").await;
    ledger.open_chargeback("p-jpy", "d-1", money("JPY", 1_000)).await;
    ledger
        .refund("p-jpy", "r-j1", money("JPY", 500))
        .await
        .expect("written")
}

/// Compares a projected payment with the aggregate's state of the same stream.
pub(crate) async fn assert_matches_domain(read_models: &dyn ReadModels, ledger: &Ledger, id: &str) {
    let (payment, _) = ledger.load(&payment_id(id)).await;
    let view = read_models.payment(&payment_id(id)).await.expect("payment");
    let (Payment::Known(state), Some(view)) = (&payment, &view) else {
        assert!(
            payment.state().is_none() && view.is_none(),
            "{id}: {payment:?} vs {view:?}"
        );
        return;
    };
    assert_eq!(
        (
            view.captured,
            view.refunded,
            view.pending,
            view.charged_back,
            view.refundable
        ),
        (
            state.captured,
            state.refunded,
            state.pending,
            state.charged_back,
            state.refundable()
        ),
        "{id}: balances"
    );
    assert_eq!(
        view.open_chargeback,
        state.has_open_chargeback(),
        "{id}: open chargeback"
    );
    assert_eq!(view.refund_count as usize, state.refunds.len(), "{id}: refund count");
    for (refund_request_id, refund) in &state.refunds {
        let projected = read_models
            .refund(refund_request_id)
            .await
            .expect("refund")
            .expect("projected");
        assert_eq!(
            (
                projected.status,
                projected.refund_amount,
                projected.settled_at,
                &projected.refund_id
            ),
            (
                refund.status,
                refund.refund_amount,
                refund.settled_at,
                &refund.refund_id
            ),
            "{id}/{refund_request_id}"
        );
        assert_eq!(projected.anomaly_count as usize, refund.anomalies.len());
    }
}

pub(crate) async fn projects_balances_refunds_and_daily_totals<H: Harness>(harness: &H) {
    let mut ledger = Ledger::new(harness.store().await);
    let last = write_scenario(&mut ledger).await;
    let projections = harness.projections().await;
    let lag = projection_lag(&*ledger.store, &*Arc::clone(&projections).into_read_models()).await;
    assert_eq!(lag.expect("lag"), last, "nothing applied before the runner starts");
    let runner = Running::start(Arc::clone(&ledger.store), Arc::clone(&projections));
    caught_up(&*projections, last).await;
    assert_eq!(
        projections.checkpoint().await.expect("checkpoint"),
        head(&*ledger.store).await
    );
    let lag = projection_lag(&*ledger.store, &*Arc::clone(&projections).into_read_models()).await;
    assert_eq!(lag.expect("lag"), 0);

    let alipay = projections
        .payment(&payment_id("p-alipay"))
        .await
        .expect("read")
        .expect("projected");
    assert_eq!(
        (alipay.captured, alipay.refunded, alipay.pending, alipay.refundable),
        (
            money("USD", 10_000),
            money("USD", 3_000),
            money("USD", 1_500),
            money("USD", 5_500)
        )
    );
    assert_eq!(
        (alipay.status, alipay.refund_count, alipay.open_chargeback),
        (PaymentStatus::PartiallyRefunded, 5, false)
    );
    assert_eq!(alipay.payment_time, T0);
    let card = projections
        .payment(&payment_id("p-card"))
        .await
        .expect("read")
        .expect("projected");
    assert_eq!(
        (card.captured, card.refundable, card.status),
        (money("USD", 4_000), money("USD", 0), PaymentStatus::FullyRefunded)
    );
    let jpy = projections
        .payment(&payment_id("p-jpy"))
        .await
        .expect("read")
        .expect("projected");
    assert_eq!(
        (jpy.status, jpy.open_chargeback, jpy.refund_count),
        (PaymentStatus::InDispute, true, 1)
    );
    assert_eq!(jpy.last_position, head(&*ledger.store).await);
    assert!(
        projections
            .payment(&payment_id("p-none"))
            .await
            .expect("read")
            .is_none()
    );

    let succeeded = projections
        .refund(&refund_request_id("r-a1"))
        .await
        .expect("read")
        .expect("projected");
    assert_eq!(succeeded.status, RefundStatus::Succeeded);
    assert_eq!(succeeded.refund_id.as_ref().map(|id| id.as_str()), Some("antom-r-a1"));
    assert_eq!((succeeded.requested_at, succeeded.settled_at), (DAY_2, Some(DAY_3)));
    assert_eq!(
        (succeeded.result_code.clone(), succeeded.anomaly_count),
        (Some(ResultCode::Success), 1)
    );
    assert_eq!(succeeded.requested_by, "api-key-finance");
    assert_eq!(succeeded.refund_reason.as_deref(), Some("reason of r-a1"));
    let failed = projections
        .refund(&refund_request_id("r-a2"))
        .await
        .expect("read")
        .expect("projected");
    assert_eq!(
        (failed.status, failed.result_code),
        (RefundStatus::Failed, Some(ResultCode::MerchantBalanceNotEnough))
    );
    let rejected = projections
        .refund(&refund_request_id("r-a4"))
        .await
        .expect("read")
        .expect("projected");
    assert_eq!(
        (rejected.status, rejected.result_code),
        (RefundStatus::Rejected, Some(ResultCode::RefundAmountExceed))
    );
    let in_dispute = projections
        .refund(&refund_request_id("r-j1"))
        .await
        .expect("read")
        .expect("projected");
    assert_eq!(
        (in_dispute.status, in_dispute.result_code),
        (RefundStatus::Rejected, Some(ResultCode::OrderStatusInvalid))
    );
    assert!(
        projections
            .refund(&refund_request_id("r-none"))
            .await
            .expect("read")
            .is_none()
    );

    let open = projections
        .open_refunds(datetime!(2027-01-01 0:00 UTC), 10)
        .await
        .expect("open refunds");
    let open_ids: Vec<&str> = open.iter().map(|refund| refund.refund_request_id.as_str()).collect();
    assert_eq!(open_ids, ["r-a3", "r-a5"]);
    assert_eq!(open[1].status, RefundStatus::Processing);
    assert!(
        projections
            .open_refunds(DAY_3, 10)
            .await
            .expect("open refunds")
            .is_empty()
    );
    assert_eq!(
        projections
            .open_refunds(DAY_3 + TimeDuration::SECOND, 1)
            .await
            .expect("open")
            .len(),
        1
    );

    // r-a3 (requested) and r-a5 (processing) are open, both requested at DAY_3.
    let stats = projections
        .open_refund_stats(DAY_3 + TimeDuration::minutes(10))
        .await
        .expect("open refund stats");
    assert_eq!(stats.requested.counts, [0, 0, 1, 0, 0, 0]);
    assert_eq!(stats.processing.counts, [0, 0, 1, 0, 0, 0]);
    assert_eq!(stats.requested.oldest_requested_at, Some(DAY_3));
    assert_eq!(stats.processing.oldest_requested_at, Some(DAY_3));
    let later = projections
        .open_refund_stats(DAY_3 + TimeDuration::days(2))
        .await
        .expect("open refund stats");
    assert_eq!(later.requested.counts, [0, 0, 0, 0, 0, 1]);
    assert_eq!(later.processing.total(), 1);
    let before = projections
        .open_refund_stats(DAY_3 - TimeDuration::SECOND)
        .await
        .expect("open refund stats");
    // Requested after `now` (a clock behind the log): counted as the youngest, never lost.
    assert_eq!(before.requested.counts, [1, 0, 0, 0, 0, 0]);

    assert_daily_totals(&*projections).await;
    for id in ["p-alipay", "p-card", "p-jpy"] {
        assert_matches_domain(&*projections, &ledger, id).await;
    }
    runner.stop().await.expect("clean shutdown");
}

async fn assert_daily_totals(read_models: &dyn ReadModels) {
    let total = |date, code, status, count, amount| DailyTotal {
        date,
        currency: currency(code),
        status,
        count,
        amount: money(code, amount),
    };
    let expected = vec![
        total(date!(2026 - 03 - 02), "USD", RefundStatus::Failed, 1, 2_000),
        total(date!(2026 - 03 - 02), "USD", RefundStatus::Succeeded, 2, 7_000),
        total(date!(2026 - 03 - 03), "JPY", RefundStatus::Rejected, 1, 500),
        total(date!(2026 - 03 - 03), "USD", RefundStatus::Processing, 1, 500),
        total(date!(2026 - 03 - 03), "USD", RefundStatus::Rejected, 1, 20_000),
        total(date!(2026 - 03 - 03), "USD", RefundStatus::Requested, 1, 1_000),
    ];
    let all = read_models
        .daily_totals(date!(2026 - 03 - 01), date!(2026 - 03 - 31), None)
        .await
        .expect("daily totals");
    assert_eq!(
        all, expected,
        "r-a1 moved from PROCESSING to SUCCEEDED under its requested date"
    );
    let jpy = read_models
        .daily_totals(date!(2026 - 03 - 01), date!(2026 - 03 - 31), Some(currency("JPY")))
        .await
        .expect("daily totals");
    assert_eq!(jpy, expected[2..3]);
    let day_2 = read_models
        .daily_totals(date!(2026 - 03 - 02), date!(2026 - 03 - 02), None)
        .await
        .expect("daily totals");
    assert_eq!(day_2, expected[..2]);
}

pub(crate) async fn waits_for_a_position_to_read_its_own_write<H: Harness>(harness: &H) {
    let ledger = Ledger::new(harness.store().await);
    let projections = harness.projections().await;
    let runner = Running::start(Arc::clone(&ledger.store), Arc::clone(&projections));
    let position = ledger
        .record("p-1", money("EUR", 1_000), "ALIPAY_CN", T0)
        .await
        .expect("written");
    assert!(
        projections
            .wait_for_position(position, CATCH_UP_TIMEOUT)
            .await
            .expect("wait")
    );
    let view = projections.payment(&payment_id("p-1")).await.expect("read");
    assert_eq!(
        view.map(|view| view.last_position),
        Some(position),
        "the write is visible once waited for"
    );

    // A reader on another handle (as in another instance) sees it too, through the stored checkpoint.
    let other = harness.projections().await.into_read_models();
    assert!(other.wait_for_position(position, CATCH_UP_TIMEOUT).await.expect("wait"));

    let started = std::time::Instant::now();
    let reached = projections
        .wait_for_position(position + 1, Duration::from_millis(200))
        .await
        .expect("wait");
    assert!(!reached, "no event at {}: the wait times out", position + 1);
    assert!(started.elapsed() >= Duration::from_millis(200));

    let waiter = {
        let other = Arc::clone(&other);
        tokio::spawn(async move { other.wait_for_position(position + 1, CATCH_UP_TIMEOUT).await })
    };
    let next = ledger.refund("p-1", "r-1", money("EUR", 100)).await.expect("written");
    if ledger.store.layout().positions_dense() {
        assert_eq!(next, position + 1);
    } else {
        assert!(next > position, "{next} follows {position}");
    }
    assert!(
        waiter.await.expect("join").expect("wait"),
        "a pending wait wakes on the new position"
    );
    let refund = other.refund(&refund_request_id("r-1")).await.expect("read");
    assert_eq!(refund.map(|refund| refund.status), Some(RefundStatus::Requested));
    runner.stop().await.expect("clean shutdown");
}

/// Ten payments in USD and EUR, with pairs sharing a payment time so ids break ties, and refunds on some.
async fn write_paging_fixture(ledger: &mut Ledger) -> u64 {
    ledger.now = T0 + TimeDuration::days(1);
    for index in 0..10_u64 {
        let code = if index % 3 == 0 { "EUR" } else { "USD" };
        let paid_at = T0 + TimeDuration::minutes(i64::try_from(index / 2).expect("small"));
        // Ids in reverse order of index, so time order and id order differ.
        let id = format!("p-{:02}", 20 - index);
        ledger
            .record(&id, money(code, 1_000 + index), "ALIPAY_CN", paid_at)
            .await;
        if index % 2 == 1 {
            ledger.now += TimeDuration::minutes(1);
            let refund = format!("r-{:02}", 20 - index);
            ledger.refund(&id, &refund, money(code, 100)).await;
            if index % 4 == 1 {
                ledger.succeed(&id, &refund).await;
            }
        }
    }
    head(&*ledger.store).await
}

/// Every item of a list, walking pages of `first`, checking each page's cursor continues the list.
async fn walk<T, F, Fut>(first: usize, mut page: F) -> Vec<T>
where
    F: FnMut(Option<Cursor>) -> Fut,
    Fut: std::future::Future<Output = Result<projections::Page<T>, ProjectionError>>,
{
    let mut items = Vec::new();
    let mut after = None;
    for _ in 0..100 {
        let current = page(after.clone()).await.expect("page");
        assert!(current.items.len() <= first);
        let has_next = current.has_next_page;
        if has_next {
            assert_eq!(current.items.len(), first, "only the last page is short");
        }
        after = current.items.last().map(|(cursor, _)| cursor.clone());
        items.extend(current.items.into_iter().map(|(_, item)| item));
        if !has_next {
            return items;
        }
    }
    panic!("paging did not end");
}

pub(crate) async fn pages_with_cursors_through_every_filter<H: Harness>(harness: &H) {
    let mut ledger = Ledger::new(harness.store().await);
    let last = write_paging_fixture(&mut ledger).await;
    let projections = harness.projections().await;
    let runner = Running::start(Arc::clone(&ledger.store), Arc::clone(&projections));
    caught_up(&*projections, last).await;

    let mut all_payments = Vec::new();
    for index in 0..10 {
        let view = projections
            .payment(&payment_id(&format!("p-{:02}", 20 - index)))
            .await
            .expect("read");
        all_payments.push(view.expect("projected"));
    }
    all_payments
        .sort_by(|left, right| (left.payment_time, &left.payment_id).cmp(&(right.payment_time, &right.payment_id)));
    let paid_from = T0 + TimeDuration::minutes(1);
    let paid_to = T0 + TimeDuration::minutes(4);
    let payment_filters = [
        PaymentFilter::default(),
        PaymentFilter {
            currency: Some(currency("EUR")),
            ..PaymentFilter::default()
        },
        PaymentFilter {
            status: Some(PaymentStatus::PartiallyRefunded),
            ..PaymentFilter::default()
        },
        PaymentFilter {
            status: Some(PaymentStatus::Refundable),
            currency: Some(currency("USD")),
            ..PaymentFilter::default()
        },
        PaymentFilter {
            paid_from: Some(paid_from),
            paid_to: Some(paid_to),
            ..PaymentFilter::default()
        },
        PaymentFilter {
            currency: Some(currency("GBP")),
            ..PaymentFilter::default()
        },
    ];
    for filter in &payment_filters {
        let expected: Vec<&PaymentView> = all_payments
            .iter()
            .filter(|view| payment_matches(filter, view))
            .collect();
        for first in [1, 3, 4, PAGE_SIZE_MAX] {
            let listed = walk(first, |after| {
                let projections = Arc::clone(&projections);
                let filter = filter.clone();
                async move { projections.payments(&filter, after.as_ref(), first).await }
            })
            .await;
            assert_eq!(listed.iter().collect::<Vec<_>>(), expected, "{filter:?}, first {first}");
        }
    }
    assert!(
        all_payments
            .iter()
            .any(|view| view.status == PaymentStatus::PartiallyRefunded)
    );
    assert_refund_pages(&*projections).await;
    runner.stop().await.expect("clean shutdown");
}

fn payment_matches(filter: &PaymentFilter, view: &PaymentView) -> bool {
    filter
        .currency
        .is_none_or(|code| view.payment_amount.currency() == code)
        && filter.status.is_none_or(|status| view.status == status)
        && filter.paid_from.is_none_or(|from| view.payment_time >= from)
        && filter.paid_to.is_none_or(|to| view.payment_time < to)
}

fn refund_matches(filter: &RefundFilter, view: &RefundView) -> bool {
    filter.payment_id.as_ref().is_none_or(|id| view.payment_id == *id)
        && filter.status.is_none_or(|status| view.status == status)
        && filter.currency.is_none_or(|code| view.refund_amount.currency() == code)
        && filter.requested_from.is_none_or(|from| view.requested_at >= from)
        && filter.requested_to.is_none_or(|to| view.requested_at < to)
}

async fn assert_refund_pages(read_models: &dyn ReadModels) {
    let mut all_refunds = Vec::new();
    for index in (1..10).step_by(2) {
        let view = read_models
            .refund(&refund_request_id(&format!("r-{:02}", 20 - index)))
            .await
            .expect("read");
        all_refunds.push(view.expect("projected"));
    }
    all_refunds.sort_by(|left, right| {
        (left.requested_at, &left.refund_request_id).cmp(&(right.requested_at, &right.refund_request_id))
    });
    let middle = all_refunds[2].requested_at;
    let refund_filters = [
        RefundFilter::default(),
        RefundFilter {
            payment_id: Some(payment_id("p-19")),
            ..RefundFilter::default()
        },
        RefundFilter {
            status: Some(RefundStatus::Succeeded),
            ..RefundFilter::default()
        },
        RefundFilter {
            status: Some(RefundStatus::Requested),
            currency: Some(currency("USD")),
            ..RefundFilter::default()
        },
        RefundFilter {
            currency: Some(currency("EUR")),
            ..RefundFilter::default()
        },
        RefundFilter {
            requested_from: Some(middle),
            ..RefundFilter::default()
        },
        RefundFilter {
            requested_to: Some(middle),
            ..RefundFilter::default()
        },
    ];
    for filter in &refund_filters {
        let expected: Vec<&RefundView> = all_refunds.iter().filter(|view| refund_matches(filter, view)).collect();
        assert!(
            !expected.is_empty() || filter.currency.is_some(),
            "{filter:?} selects something"
        );
        for first in [1, 2, PAGE_SIZE_MAX] {
            let listed = walk(first, |after| {
                let filter = filter.clone();
                async move { read_models.refunds(&filter, after.as_ref(), first).await }
            })
            .await;
            assert_eq!(listed.iter().collect::<Vec<_>>(), expected, "{filter:?}, first {first}");
        }
    }
}

pub(crate) async fn refuses_foreign_cursors_and_oversized_pages<H: Harness>(harness: &H) {
    let mut ledger = Ledger::new(harness.store().await);
    let last = write_paging_fixture(&mut ledger).await;
    let projections = harness.projections().await;
    let runner = Running::start(Arc::clone(&ledger.store), Arc::clone(&projections));
    caught_up(&*projections, last).await;

    let filter = PaymentFilter::default();
    let payments = projections.payments(&filter, None, 2).await.expect("page");
    let refunds = projections
        .refunds(&RefundFilter::default(), None, 2)
        .await
        .expect("page");
    let payment_cursor = payments.items[0].0.clone();
    let refund_cursor = refunds.items[0].0.clone();
    let reparsed = Cursor::parse(payment_cursor.as_str()).expect("an issued cursor parses");
    assert_eq!(
        projections
            .payments(&filter, Some(&reparsed), 2)
            .await
            .expect("page")
            .items[0]
            .1,
        payments.items[1].1
    );
    assert!(matches!(
        projections.payments(&filter, Some(&refund_cursor), 2).await,
        Err(ProjectionError::InvalidCursor { .. })
    ));
    assert!(matches!(
        projections
            .refunds(&RefundFilter::default(), Some(&payment_cursor), 2)
            .await,
        Err(ProjectionError::InvalidCursor { .. })
    ));
    for garbage in ["", "***", "cDox", "cDp4OnAtMQ"] {
        assert!(
            matches!(Cursor::parse(garbage), Err(ProjectionError::InvalidCursor { .. })),
            "{garbage:?}"
        );
    }
    assert!(matches!(
        projections.payments(&filter, None, PAGE_SIZE_MAX + 1).await,
        Err(ProjectionError::PageSizeTooLarge { requested, max: PAGE_SIZE_MAX }) if requested == PAGE_SIZE_MAX + 1
    ));
    assert!(matches!(
        projections
            .refunds(&RefundFilter::default(), None, PAGE_SIZE_MAX + 1)
            .await,
        Err(ProjectionError::PageSizeTooLarge { .. })
    ));
    assert!(matches!(
        projections.open_refunds(T0, PAGE_SIZE_MAX + 1).await,
        Err(ProjectionError::PageSizeTooLarge { .. })
    ));
    let empty = projections.payments(&filter, None, 0).await.expect("page of none");
    assert!(empty.items.is_empty() && empty.has_next_page);
    runner.stop().await.expect("clean shutdown");
}

/// Everything the read models hold about the given payments and refunds, for before/after comparisons.
async fn snapshot(read_models: &dyn ReadModels, payments: &[&str], refunds: &[&str]) -> String {
    let mut text = String::new();
    for id in payments {
        text.push_str(&format!(
            "{:?}\n",
            read_models.payment(&payment_id(id)).await.expect("read")
        ));
    }
    for id in refunds {
        text.push_str(&format!(
            "{:?}\n",
            read_models.refund(&refund_request_id(id)).await.expect("read")
        ));
    }
    let totals = read_models
        .daily_totals(date!(2000 - 01 - 01), date!(2100 - 01 - 01), None)
        .await
        .expect("daily totals");
    text.push_str(&format!("{totals:?}"));
    text
}

pub(crate) const SCENARIO_PAYMENTS: [&str; 3] = ["p-alipay", "p-card", "p-jpy"];
const SCENARIO_REFUNDS: [&str; 7] = ["r-a1", "r-a2", "r-a3", "r-a4", "r-a5", "r-c1", "r-j1"];

pub(crate) async fn restarted_runner_resumes_at_the_checkpoint<H: Harness>(harness: &H) {
    let mut ledger = Ledger::new(harness.store().await);
    let last = write_scenario(&mut ledger).await;
    let projections = harness.projections().await;
    let runner = Running::start(Arc::clone(&ledger.store), Arc::clone(&projections));
    caught_up(&*projections, last).await;
    runner.stop().await.expect("clean shutdown");
    let before = snapshot(&*projections, &SCENARIO_PAYMENTS, &SCENARIO_REFUNDS).await;

    // Restarted on fresh handles with nothing new: nothing changes.
    let projections = harness.projections().await;
    let store = harness.store().await;
    let runner = Running::start(Arc::clone(&store), Arc::clone(&projections));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(projections.checkpoint().await.expect("checkpoint"), last);
    assert_eq!(
        snapshot(&*projections, &SCENARIO_PAYMENTS, &SCENARIO_REFUNDS).await,
        before
    );
    assert_eq!(
        runner.handle.batches_applied(),
        0,
        "nothing to apply after a restart at the head"
    );
    runner.stop().await.expect("clean shutdown");

    // Events written while no runner runs are applied once by the next one.
    ledger.now = DAY_3 + TimeDuration::hours(1);
    ledger.succeed("p-alipay", "r-a3").await;
    ledger
        .resolve_chargeback("p-jpy", "d-1", domain::ChargebackResolution::CustomerWon)
        .await;
    let resumed_to = ledger.fail("p-alipay", "r-a5").await.expect("written");
    let runner = Running::start(store, Arc::clone(&projections));
    caught_up(&*projections, resumed_to).await;
    let alipay = projections
        .payment(&payment_id("p-alipay"))
        .await
        .expect("read")
        .expect("projected");
    assert_eq!(
        (alipay.refunded, alipay.pending, alipay.refund_count),
        (money("USD", 4_000), money("USD", 0), 5)
    );
    let totals = projections
        .daily_totals(date!(2026 - 03 - 03), date!(2026 - 03 - 03), Some(currency("USD")))
        .await;
    let counts: Vec<(RefundStatus, u64)> = totals
        .expect("daily totals")
        .iter()
        .map(|total| (total.status, total.count))
        .collect();
    assert_eq!(
        counts,
        [
            (RefundStatus::Failed, 1),
            (RefundStatus::Rejected, 1),
            (RefundStatus::Succeeded, 1)
        ]
    );
    for id in SCENARIO_PAYMENTS {
        assert_matches_domain(&*projections, &ledger, id).await;
    }
    runner.stop().await.expect("clean shutdown");
}

/// Every event of the log from `after + 1`, decoded into one batch.
pub(crate) async fn batch_from(store: &dyn EventStore, after: u64) -> Batch {
    let recorded = store.read_all(after + 1, 10_000).await.expect("read all");
    let mut batch = Batch {
        after_position: after,
        last_position: recorded.last().map_or(after, |event| event.position),
        events: Vec::new(),
        reconciliations: Vec::new(),
    };
    for event in &recorded {
        if let Some(envelope) = Envelope::decode(event).expect("decodes") {
            batch.events.push(envelope);
        }
    }
    batch
}

pub(crate) async fn a_batch_is_applied_at_most_once<H: Harness>(harness: &H) {
    let mut ledger = Ledger::new(harness.store().await);
    let last = write_scenario(&mut ledger).await;
    let projections = harness.projections().await;
    let mut writer = projections.try_writer().await.expect("lease").expect("free");
    assert!(
        projections.try_writer().await.expect("lease").is_none(),
        "one writer per read models"
    );
    assert_eq!(writer.checkpoint().await.expect("checkpoint"), 0);

    let batch = batch_from(&*ledger.store, 0).await;
    assert_eq!(writer.apply(batch.clone()).await.expect("apply"), last);
    let applied = snapshot(&*projections, &SCENARIO_PAYMENTS, &SCENARIO_REFUNDS).await;
    match writer.apply(batch).await {
        Err(ProjectionError::CheckpointMoved { expected: 0, actual }) => assert_eq!(actual, last),
        other => panic!("a batch applied twice: {other:?}"),
    }
    assert_eq!(
        snapshot(&*projections, &SCENARIO_PAYMENTS, &SCENARIO_REFUNDS).await,
        applied
    );
    assert_eq!(projections.checkpoint().await.expect("checkpoint"), last);

    // A batch whose events break the folds' invariants is refused whole.
    let mut broken = batch_from(&*ledger.store, 0).await;
    broken.after_position = last;
    broken.last_position += last;
    for envelope in &mut broken.events {
        envelope.position += last;
    }
    assert!(matches!(
        writer.apply(broken).await,
        Err(ProjectionError::Inconsistent { .. })
    ));
    assert_eq!(projections.checkpoint().await.expect("checkpoint"), last);
    assert_eq!(
        snapshot(&*projections, &SCENARIO_PAYMENTS, &SCENARIO_REFUNDS).await,
        applied
    );
    drop(writer);
    // On PostgreSQL the lease is an advisory lock that the server releases once it sees the dropped writer's
    // connection close, which happens in the background: the lease is free again soon, not at once.
    let freed = tokio::time::timeout(CATCH_UP_TIMEOUT, async {
        loop {
            if projections.try_writer().await.expect("lease").is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(freed.is_ok(), "a dropped lease is free again");
}

pub(crate) async fn a_rebuild_swaps_in_on_commit_and_fences_the_writer<H: Harness>(harness: &H) {
    let mut ledger = Ledger::new(harness.store().await);
    let last = write_scenario(&mut ledger).await;
    let projections = harness.projections().await;
    let mut writer = projections.try_writer().await.expect("lease").expect("free");
    assert_eq!(
        writer.apply(batch_from(&*ledger.store, 0).await).await.expect("apply"),
        last
    );
    let applied = snapshot(&*projections, &SCENARIO_PAYMENTS, &SCENARIO_REFUNDS).await;

    // A rebuild in flight: readers keep the old rows; cut off before the end, it commits nothing.
    let (steps, received) = tokio::sync::mpsc::channel(2);
    let (locked, locked_received) = tokio::sync::oneshot::channel();
    let rebuilding = {
        let projections = Arc::clone(&projections);
        tokio::spawn(async move { projections.rebuild(received, locked).await })
    };
    assert_eq!(locked_received.await.expect("locked"), last);
    let mut first = batch_from(&*ledger.store, 0).await;
    first.events.truncate(3);
    first.last_position = first.events.last().expect("three events").position;
    steps.send(RebuildStep::Batch(first)).await.expect("sent");
    assert_eq!(
        snapshot(&*projections, &SCENARIO_PAYMENTS, &SCENARIO_REFUNDS).await,
        applied,
        "readers see the old rows during a rebuild"
    );
    drop(steps);
    assert!(matches!(
        rebuilding.await.expect("joins"),
        Err(ProjectionError::RebuildAborted { .. })
    ));
    assert_eq!(
        snapshot(&*projections, &SCENARIO_PAYMENTS, &SCENARIO_REFUNDS).await,
        applied
    );
    assert_eq!(projections.checkpoint().await.expect("checkpoint"), last);

    // An event the writer has not applied yet: the rebuild takes it, and the writer's batch for it is refused.
    ledger.now = DAY_3 + TimeDuration::hours(1);
    let newer = ledger.succeed("p-alipay", "r-a3").await.expect("written");
    let mut positions = Vec::new();
    let checkpoint = rebuild_read_models(Arc::clone(&ledger.store), &*projections, &mut |position, end| {
        positions.push((position, end));
    })
    .await
    .expect("rebuilt");
    assert_eq!(checkpoint, newer);
    assert_eq!(positions.last(), Some(&(newer, newer)));
    match writer.apply(batch_from(&*ledger.store, last).await).await {
        Err(ProjectionError::CheckpointMoved { expected, actual }) => assert_eq!((expected, actual), (last, newer)),
        other => panic!("a fenced writer applied a batch: {other:?}"),
    }
    assert_eq!(projections.checkpoint().await.expect("checkpoint"), newer);
    for id in SCENARIO_PAYMENTS {
        assert_matches_domain(&*projections, &ledger, id).await;
    }
    let rebuilt = snapshot(&*projections, &SCENARIO_PAYMENTS, &SCENARIO_REFUNDS).await;
    assert_ne!(rebuilt, applied, "the newer success is in the rebuilt rows");
}

pub(crate) async fn undecodable_event_stops_the_runner_after_what_precedes_it<H: Harness>(harness: &H) {
    let ledger = Ledger::new(harness.store().await);
    let recorded = ledger
        .record("p-1", money("USD", 1_000), "ALIPAY_CN", T0)
        .await
        .expect("written");
    let bogus = NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "PaymentTeleported".to_owned(),
        schema_version: 1,
        payload: b"{}".to_vec(),
        actor: "test".to_owned(),
    };
    let bad = ledger
        .store
        .append(&stream(&payment_id("p-1")), ExpectedRevision::Exact(0), vec![bogus])
        .await
        .expect("append")
        .last_position;
    let projections = harness.projections().await;
    let runner = Running::start(Arc::clone(&ledger.store), Arc::clone(&projections));
    let outcome = tokio::time::timeout(CATCH_UP_TIMEOUT, runner.handle.join())
        .await
        .expect("the runner stops");
    match outcome {
        Err(ProjectionError::Decode {
            position, event_type, ..
        }) => {
            assert_eq!((position, event_type.as_str()), (bad, "PaymentTeleported"));
        }
        other => panic!("an undecodable event must stop the runner: {other:?}"),
    }
    assert_eq!(
        projections.checkpoint().await.expect("checkpoint"),
        recorded,
        "stopped right before it"
    );
    assert!(projections.payment(&payment_id("p-1")).await.expect("read").is_some());
}

pub(crate) async fn read_models_equal_a_replay_from_position_zero<H: Harness>(harness: &H) {
    let mut ledger = Ledger::new(harness.store().await);
    write_scenario(&mut ledger).await;
    let projections = harness.projections().await;
    let runner = Running::start(Arc::clone(&ledger.store), Arc::clone(&projections));
    // Events arriving while the runner runs land in several batches.
    ledger.now = DAY_3 + TimeDuration::hours(2);
    for index in 0..20 {
        let id = format!("p-late-{index}");
        ledger.record(&id, money("USD", 700), "ALIPAY_CN", DAY_3).await;
        ledger.refund(&id, &format!("r-late-{index}"), money("USD", 300)).await;
    }
    let last = head(&*ledger.store).await;
    caught_up(&*projections, last).await;
    runner.stop().await.expect("clean shutdown");

    let batch = batch_from(&*ledger.store, 0).await;
    let replay: BatchFold = batch.fold(Vec::new(), Vec::new()).expect("replay folds");
    for row in replay.payments() {
        let stored = projections
            .payment(&row.payment_id)
            .await
            .expect("read")
            .expect("projected");
        assert_eq!(stored, row.view(), "payment {}", row.payment_id);
    }
    for refund in replay.refunds() {
        let stored = projections
            .refund(&refund.refund_request_id)
            .await
            .expect("read")
            .expect("projected");
        assert_eq!(&stored, refund, "refund {}", refund.refund_request_id);
    }
    let mut replayed_totals: BTreeMap<(time::Date, String, String), (i64, i64)> = BTreeMap::new();
    for (key, delta) in replay.daily_deltas() {
        let entry = replayed_totals
            .entry((key.date, key.currency.code().to_owned(), format!("{:?}", key.status.0)))
            .or_default();
        entry.0 += delta.count;
        entry.1 += delta.amount_minor_units;
    }
    replayed_totals.retain(|_, (count, _)| *count != 0);
    let stored: BTreeMap<_, _> = projections
        .daily_totals(date!(2000 - 01 - 01), date!(2100 - 01 - 01), None)
        .await
        .expect("daily totals")
        .into_iter()
        .map(|total| {
            let amount = i64::try_from(total.amount.minor_units()).expect("fits");
            let count = i64::try_from(total.count).expect("fits");
            (
                (
                    total.date,
                    total.currency.code().to_owned(),
                    format!("{:?}", total.status),
                ),
                (count, amount),
            )
        })
        .collect();
    assert_eq!(stored, replayed_totals);
    assert_eq!(replay.payments().count(), 23);
    // The payment events of the log, decoded, are what the replay folded.
    let decoded = batch
        .events
        .iter()
        .filter(|envelope| matches!(envelope.event, PaymentEvent::RefundRequested(_)))
        .count();
    assert_eq!(decoded, 5 + 20);
}

pub(crate) async fn a_long_log_is_applied_in_bounded_batches<H: Harness>(harness: &H) {
    let ledger = Ledger::new(harness.store().await);
    let payments = RUNNER_BATCH_EVENTS_MAX + 50;
    for index in 0..payments {
        let id = payment_id(&format!("p-{index:04}"));
        let recorded = PaymentEvent::PaymentRecorded(domain::PaymentRecorded {
            payment_id: id.clone(),
            payment_amount: money("USD", 1_000),
            payment_method_type: domain::PaymentMethodType::parse("ALIPAY_CN").expect("method"),
            payment_time: T0,
            capture_required: false,
        });
        let requested = PaymentEvent::RefundRequested(domain::RefundRequested {
            refund_request_id: refund_request_id(&format!("r-{index:04}")),
            payment_id: id.clone(),
            refund_amount: money("USD", 10),
            refund_reason: None,
            requested_at: DAY_2,
        });
        let events = [recorded, requested]
            .iter()
            .map(|event| {
                let stored = event.to_stored();
                NewEvent {
                    event_id: Uuid::new_v4(),
                    event_type: stored.event_type.to_owned(),
                    schema_version: stored.schema_version,
                    payload: stored.data,
                    actor: "importer".to_owned(),
                }
            })
            .collect();
        ledger
            .store
            .append(&stream(&id), ExpectedRevision::NoStream, events)
            .await
            .expect("append");
    }
    let last = head(&*ledger.store).await;
    let written = 2 * payments;
    if ledger.store.layout().positions_dense() {
        assert_eq!(last, written as u64);
    }
    let projections = harness.projections().await;
    let runner = Running::start(Arc::clone(&ledger.store), Arc::clone(&projections));
    caught_up(&*projections, last).await;
    let mut checkpoint = runner.handle.checkpoint();
    tokio::time::timeout(CATCH_UP_TIMEOUT, checkpoint.wait_for(|checkpoint| *checkpoint >= last))
        .await
        .expect("the runner publishes its checkpoint")
        .expect("checkpoint watch");
    let batches = runner.handle.batches_applied();
    assert!(
        batches >= written.div_ceil(RUNNER_BATCH_EVENTS_MAX) as u64,
        "{batches} batches for {written} events"
    );
    let totals = projections
        .daily_totals(DAY_2.date(), DAY_2.date(), None)
        .await
        .expect("daily totals");
    assert_eq!(totals.len(), 1);
    assert_eq!(
        (totals[0].count, totals[0].amount),
        (payments as u64, money("USD", 10 * payments as u64))
    );
    runner.stop().await.expect("clean shutdown");
}

/// The settlement side of a settlement details row with a fee, a converted amount, a quote and a date.
fn settled_row() -> domain::RecordedSettlement {
    let amount = |currency: &str, value: &str| domain::ReportedAmount {
        currency: currency.to_owned(),
        value: value.to_owned(),
    };
    domain::RecordedSettlement {
        amount: amount("USD", "-802"),
        converted: Some(amount("USD", "-792")),
        fees: vec![domain::RecordedFee {
            kind: "paymentMethodFee".to_owned(),
            amount: amount("USD", "-10"),
        }],
        quote: Some(domain::RecordedQuote {
            base: "JPY".to_owned(),
            quote: "USD".to_owned(),
            price: "0.0066".to_owned(),
        }),
        date: Some("2026-03-06".to_owned()),
    }
}

/// A reconciliation run with `findings` findings (every third one DIFFERS, the rest MATCHED), appended as
/// the run's stream: the run event, then chunks of `FINDINGS_PER_CHUNK_MAX`. Returns the last position.
async fn append_reconciliation(store: &dyn EventStore, run_id: &str, findings: u64) -> u64 {
    use domain::{
        FINDINGS_PER_CHUNK_MAX, ReconciliationEvent, ReconciliationFindingsRecorded, ReconciliationRecorded,
        RecordedFinding,
    };
    let kind = |seq: u64| if seq % 3 == 0 { "DIFFERS" } else { "MATCHED" };
    let all: Vec<RecordedFinding> = (1..=findings)
        .map(|seq| RecordedFinding {
            seq,
            kind: kind(seq).to_owned(),
            file: Some("transactionItems_20260304_000.csv".to_owned()),
            line: Some(seq + 1),
            refund_request_id: Some(format!("r-{seq}")),
            refund_id: None,
            report_amount: None,
            ledger_position: Some(seq),
            ledger_status: Some(RefundStatus::Succeeded),
            ledger_amount: Some(money("USD", 100)),
            // The first finding carries every optional field, which the stores keep as recorded.
            report_status: (seq == 1).then(|| "SUCCESS".to_owned()),
            settlement: (seq == 1).then(settled_row),
            message: String::new(),
        })
        .collect();
    let mut counts = BTreeMap::new();
    for finding in &all {
        *counts.entry(finding.kind.clone()).or_insert(0) += 1;
    }
    let mut events = vec![ReconciliationEvent::ReconciliationRecorded(ReconciliationRecorded {
        run_id: run_id.to_owned(),
        report_kind: "TRANSACTION_DETAILS".to_owned(),
        files: Vec::new(),
        period: Some("2026-03-04".to_owned()),
        settlement_batch_id: None,
        ledger_position: 0,
        counts,
        other_rows: BTreeMap::new(),
        findings_count: findings,
        reconciled_at: T0,
    })];
    for (chunk, part) in all.chunks(FINDINGS_PER_CHUNK_MAX).enumerate() {
        events.push(ReconciliationEvent::ReconciliationFindingsRecorded(
            ReconciliationFindingsRecorded {
                run_id: run_id.to_owned(),
                chunk: chunk as u64,
                findings: part.to_vec(),
            },
        ));
    }
    append_reconciliation_events(store, run_id, ExpectedRevision::NoStream, &events).await
}

async fn append_reconciliation_events(
    store: &dyn EventStore,
    run_id: &str,
    expected: ExpectedRevision,
    events: &[domain::ReconciliationEvent],
) -> u64 {
    let stream = eventlog::StreamName::parse(domain::reconciliation_stream_name(run_id)).expect("stream name");
    let new_events = events
        .iter()
        .map(|event| {
            let stored = event.to_stored();
            NewEvent {
                event_id: Uuid::new_v4(),
                event_type: stored.event_type.to_owned(),
                schema_version: stored.schema_version,
                payload: stored.data,
                actor: "auditor".to_owned(),
            }
        })
        .collect();
    store
        .append(&stream, expected, new_events)
        .await
        .expect("append")
        .last_position
}

pub(crate) async fn folds_reconciliation_runs_findings_and_acknowledgements<H: Harness>(harness: &H) {
    use domain::{ReconciliationEvent, ReconciliationFindingAcknowledged};
    use projections::FindingFilter;

    let mut ledger = Ledger::new(harness.store().await);
    write_scenario(&mut ledger).await;
    let store = Arc::clone(&ledger.store);
    let first_run = append_reconciliation(&*store, "run-1", 1_500).await;
    append_reconciliation(&*store, "run-2", 2).await;
    let acknowledge = |seq: u64, note: &str| {
        ReconciliationEvent::ReconciliationFindingAcknowledged(ReconciliationFindingAcknowledged {
            run_id: "run-1".to_owned(),
            seq,
            note: note.to_owned(),
            acknowledged_at: T0 + TimeDuration::hours(1),
        })
    };
    // Two acknowledgements of seq 3 (the command refuses the second; the fold keeps the first regardless).
    let last = append_reconciliation_events(
        &*store,
        "run-1",
        ExpectedRevision::Exact(2),
        &[
            acknowledge(3, "refund made by hand, ticket FIN-1"),
            acknowledge(3, "again"),
        ],
    )
    .await;
    let projections = harness.projections().await;
    let runner = Running::start(Arc::clone(&store), Arc::clone(&projections));
    caught_up(&*projections, last).await;

    let runs = projections.reconciliations(None, 10).await.expect("runs");
    let ids: Vec<&str> = runs.iter().map(|run| run.run.run_id.as_str()).collect();
    assert_eq!(ids, ["run-2", "run-1"], "newest first");
    assert_eq!(runs[1].actor, "auditor");
    let older = projections
        .reconciliations(Some(runs[0].position), 10)
        .await
        .expect("runs");
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].run.run_id, "run-1");
    assert!(older[0].position < first_run);
    let run = projections.reconciliation("run-1").await.expect("run").expect("exists");
    assert_eq!(run.run.findings_count, 1_500);
    assert_eq!(run.run.counts.get("DIFFERS"), Some(&500));
    assert!(projections.reconciliation("run-3").await.expect("run").is_none());

    let all = projections
        .reconciliation_findings("run-1", &FindingFilter::default(), 1_000)
        .await
        .expect("findings");
    assert_eq!(all.len(), 1_000);
    let rest = projections
        .reconciliation_findings(
            "run-1",
            &FindingFilter {
                kind: None,
                after_seq: Some(1_000),
            },
            1_000,
        )
        .await
        .expect("findings");
    assert_eq!(
        (
            all[0].finding.report_status.as_deref(),
            all[0].finding.settlement.clone()
        ),
        (Some("SUCCESS"), Some(settled_row())),
        "the report's status and the settlement side, as recorded"
    );
    assert_eq!(rest.len(), 500, "the second chunk");
    assert_eq!(rest.last().map(|finding| finding.finding.seq), Some(1_500));
    let differs = projections
        .reconciliation_findings(
            "run-1",
            &FindingFilter {
                kind: Some("DIFFERS".to_owned()),
                after_seq: None,
            },
            2,
        )
        .await
        .expect("findings");
    let seqs: Vec<u64> = differs.iter().map(|finding| finding.finding.seq).collect();
    assert_eq!(seqs, [3, 6]);
    let acknowledged = differs[0].acknowledgement.as_ref().expect("acknowledged");
    assert_eq!(
        (acknowledged.by.as_str(), acknowledged.note.as_str()),
        ("auditor", "refund made by hand, ticket FIN-1")
    );
    assert!(differs[1].acknowledgement.is_none());
    assert!(matches!(
        projections
            .reconciliation_findings("run-1", &FindingFilter::default(), 1_001)
            .await,
        Err(ProjectionError::PageSizeTooLarge { .. })
    ));
    runner.stop().await.expect("clean shutdown");
}

/// Every contradicting outcome becomes an anomaly row in position order, numbered within its refund; an
/// acknowledgement fills in its row (and only its row), and the rows equal a replay from position zero.
pub(crate) async fn lists_and_acknowledges_anomalies<H: Harness>(harness: &H) {
    let mut ledger = Ledger::new(harness.store().await);
    write_scenario(&mut ledger).await;
    ledger.now = DAY_3 + TimeDuration::hours(1);
    // The scenario's anomaly is r-a1's first (a failure reported after its success); two more follow.
    let second = ledger
        .execute(
            &payment_id("p-alipay"),
            PaymentCommand::ConfirmRefundSucceeded {
                refund_request_id: refund_request_id("r-a1"),
                refund_id: RefundId::parse("antom-other").expect("refund id"),
                refund_time: ledger.now,
                source: OutcomeSource::Notification,
            },
        )
        .await
        .expect("an anomaly is written");
    let third = ledger.fail("p-card", "r-c1").await.expect("an anomaly is written");
    let projections = harness.projections().await;
    let runner = Running::start(Arc::clone(&ledger.store), Arc::clone(&projections));
    caught_up(&*projections, third).await;

    let listed = walk(1, |after| {
        let projections = Arc::clone(&projections);
        async move { projections.anomalies(after.as_ref(), 1).await }
    })
    .await;
    let summary: Vec<(String, u32, RefundStatus, bool)> = listed
        .iter()
        .map(|anomaly| {
            (
                anomaly.refund_request_id.to_string(),
                anomaly.anomaly,
                anomaly.recorded_status,
                matches!(anomaly.reported, ReportedOutcome::Success { .. }),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("r-a1".to_owned(), 1, RefundStatus::Succeeded, false),
            ("r-a1".to_owned(), 2, RefundStatus::Succeeded, true),
            ("r-c1".to_owned(), 1, RefundStatus::Succeeded, false),
        ]
    );
    assert!(listed.windows(2).all(|pair| pair[0].position < pair[1].position));
    assert_eq!(listed[1].position, second);
    assert_eq!(listed[2].position, third);
    assert_eq!(listed[1].source, OutcomeSource::Notification);
    assert!(listed.iter().all(|anomaly| anomaly.acknowledgement.is_none()));
    assert_eq!(
        projections.anomaly(second).await.expect("read").as_ref(),
        Some(&listed[1])
    );
    assert_eq!(projections.anomaly(second + 1_000).await.expect("read"), None);
    let payments_cursor = projections
        .payments(&PaymentFilter::default(), None, 1)
        .await
        .expect("page")
        .items
        .remove(0)
        .0;
    assert!(matches!(
        projections.anomalies(Some(&payments_cursor), 1).await,
        Err(ProjectionError::InvalidCursor { .. })
    ));

    ledger.actor = "ops-admin".to_owned();
    let acknowledged = ledger
        .execute(
            &payment_id("p-alipay"),
            PaymentCommand::AcknowledgeAnomaly {
                refund_request_id: refund_request_id("r-a1"),
                anomaly: 2,
                note: "Antom's notification named another refund id; confirmed by their support".to_owned(),
            },
        )
        .await
        .expect("an acknowledgement is written");
    caught_up(&*projections, acknowledged).await;
    let after = walk(PAGE_SIZE_MAX, |after| {
        let projections = Arc::clone(&projections);
        async move { projections.anomalies(after.as_ref(), PAGE_SIZE_MAX).await }
    })
    .await;
    let acknowledgement = after[1].acknowledgement.as_ref().expect("acknowledged");
    assert_eq!(
        (acknowledgement.position, acknowledgement.acknowledged_by.as_str()),
        (acknowledged, "ops-admin")
    );
    assert!(acknowledgement.note.starts_with("Antom's notification"));
    assert_eq!(acknowledgement.acknowledged_at, ledger.now);
    assert_eq!(
        (&after[0], &after[2]),
        (&listed[0], &listed[2]),
        "the others are unchanged"
    );
    let refund = projections
        .refund(&refund_request_id("r-a1"))
        .await
        .expect("read")
        .expect("projected");
    assert_eq!(refund.anomaly_count, 2);
    runner.stop().await.expect("clean shutdown");

    let replay = batch_from(&*ledger.store, 0)
        .await
        .fold(Vec::new(), Vec::new())
        .expect("replay folds");
    let replayed: Vec<_> = replay.anomalies().cloned().collect();
    let mut stored = after;
    stored.sort_by_key(projections::AnomalyView::key);
    assert_eq!(stored, replayed);
}

/// A report key of the view tests.
fn report_key(row_type: &str, kind: projections::KeyKind, key: &str, line: u64) -> projections::ReportKey {
    projections::ReportKey {
        row_type: row_type.to_owned(),
        kind,
        key: key.to_owned(),
        file: "transactionItems_20260303_000.csv".to_owned(),
        line,
    }
}

/// One page of one refund of `view`'s unreported refunds in `window`, after `after`.
async fn unreported(
    view: &mut Box<dyn projections::LedgerView>,
    window: projections::SucceededWindow,
    after: Option<RefundView>,
) -> Vec<RefundView> {
    view.unreported_refunds("REFUND", window, after.as_ref(), 1)
        .await
        .expect("unreported")
}

fn ids(refunds: &[RefundView]) -> Vec<String> {
    let mut ids: Vec<String> = refunds
        .iter()
        .map(|refund| refund.refund_request_id.as_str().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// A reconciliation run's view: refunds looked up by either id, answers as of the position it was opened at
/// while the runner moves on, duplicates answered by its key table (per row type), the day's succeeded refunds
/// no REFUND key names in pages, and nothing of its keys left for the next view.
pub(crate) async fn a_ledger_view_is_pinned_and_keeps_the_report_keys<H: Harness>(harness: &H) {
    use projections::{FirstSeen, KeyKind, SucceededWindow};

    let mut ledger = Ledger::new(harness.store().await);
    let last = write_scenario(&mut ledger).await;
    let projections = harness.projections().await;
    let runner = Running::start(Arc::clone(&ledger.store), Arc::clone(&projections));
    caught_up(&*projections, last).await;

    let mut view = projections.ledger_view().await.expect("view");
    assert_eq!(view.position(), last);
    let found = view
        .refunds(
            &["r-c1".to_owned(), "r-a5".to_owned(), "unknown".to_owned()],
            &["antom-r-a1".to_owned()],
        )
        .await
        .expect("refunds");
    assert_eq!(ids(&found), ["r-a1", "r-a5", "r-c1"]);
    let by_antom_id = found
        .iter()
        .find(|refund| refund.refund_request_id.as_str() == "r-a1")
        .expect("found by Antom's refundId");
    assert_eq!(by_antom_id.status, RefundStatus::Succeeded);

    // The runner moves on; the view does not.
    ledger.now = DAY_3 + TimeDuration::hours(1);
    let settled = ledger.succeed("p-alipay", "r-a5").await.expect("written");
    caught_up(&*projections, settled).await;
    let pinned = view.refunds(&["r-a5".to_owned()], &[]).await.expect("refunds");
    assert_eq!(pinned[0].status, RefundStatus::Processing, "as of the view's position");
    let live = projections.refund(&refund_request_id("r-a5")).await.expect("refund");
    assert_eq!(live.expect("r-a5").status, RefundStatus::Succeeded);

    let seen_at = |line: u64| {
        Some(FirstSeen {
            file: "transactionItems_20260303_000.csv".to_owned(),
            line,
        })
    };
    let answers = view
        .record_keys(&[
            report_key("REFUND", KeyKind::RefundRequestId, "r-c1", 2),
            report_key("REFUND", KeyKind::RefundRequestId, "r-x", 3),
            report_key("REFUND", KeyKind::RefundRequestId, "r-c1", 4),
            report_key("REFUND_REVERSAL", KeyKind::RefundRequestId, "r-c1", 5),
            report_key("REFUND", KeyKind::RefundId, "r-c1", 6),
        ])
        .await
        .expect("keys");
    assert_eq!(answers, [None, None, seen_at(2), None, None]);
    let answers = view
        .record_keys(&[report_key("REFUND", KeyKind::RefundRequestId, "r-x", 9)])
        .await
        .expect("keys");
    assert_eq!(answers, [seen_at(3)], "a key of an earlier batch");

    // r-c1 succeeded on day 2 (named above), r-a1 on day 3 (not yet), r-a5 after the view's position.
    let day = |start: OffsetDateTime| SucceededWindow {
        start,
        end: start + TimeDuration::days(1),
    };
    let day_2 = day(datetime!(2026-03-02 00:00 UTC));
    let day_3 = day(datetime!(2026-03-03 00:00 UTC));
    assert!(unreported(&mut view, day_2, None).await.is_empty());
    let missing = unreported(&mut view, day_3, None).await;
    assert_eq!(ids(&missing), ["r-a1"]);
    // A REFUND_REVERSAL row does not list a refund; a REFUND row with its Antom refundId does.
    view.record_keys(&[report_key("REFUND_REVERSAL", KeyKind::RefundRequestId, "r-a1", 10)])
        .await
        .expect("keys");
    assert_eq!(ids(&unreported(&mut view, day_3, None).await), ["r-a1"]);
    view.record_keys(&[report_key("REFUND", KeyKind::RefundId, "antom-r-a1", 11)])
        .await
        .expect("keys");
    assert!(unreported(&mut view, day_3, None).await.is_empty());
    drop(view);

    // A new view: its own (empty) key table, the new position, pages of one in refund-time order.
    let mut view = projections.ledger_view().await.expect("view");
    assert_eq!(view.position(), settled);
    let answers = view
        .record_keys(&[report_key("REFUND", KeyKind::RefundRequestId, "r-c1", 2)])
        .await
        .expect("keys");
    assert_eq!(answers, [None]);
    let both_days = SucceededWindow {
        start: day_2.start,
        end: day_3.end,
    };
    let first = unreported(&mut view, both_days, None).await;
    assert_eq!(ids(&first), ["r-a1"]);
    let second = unreported(&mut view, both_days, first.last().cloned()).await;
    assert_eq!(ids(&second), ["r-a5"]);
    assert!(
        unreported(&mut view, both_days, second.last().cloned())
            .await
            .is_empty()
    );
    drop(view);
    runner.stop().await.expect("clean shutdown");
}

/// Findings of a run that never appended its `ReconciliationRecorded` are listed as unrecorded and can be
/// removed; a recorded run's findings cannot.
pub(crate) async fn unrecorded_findings_are_listed_and_removed<H: Harness>(harness: &H) {
    use domain::{ReconciliationEvent, ReconciliationFindingsRecorded};
    use projections::FindingFilter;

    let ledger = Ledger::new(harness.store().await);
    let store = Arc::clone(&ledger.store);
    append_reconciliation(&*store, "run-recorded", 5).await;
    let cut = ReconciliationEvent::ReconciliationFindingsRecorded(ReconciliationFindingsRecorded {
        run_id: "run-cut".to_owned(),
        chunk: 0,
        findings: Vec::new(),
    });
    let mut chunk = cut.clone();
    if let ReconciliationEvent::ReconciliationFindingsRecorded(chunk) = &mut chunk {
        chunk.findings = (1..=3)
            .map(|seq| domain::RecordedFinding {
                seq,
                kind: "MATCHED".to_owned(),
                file: None,
                line: Some(seq + 1),
                refund_request_id: Some(format!("r-{seq}")),
                refund_id: None,
                report_amount: None,
                ledger_position: None,
                ledger_status: None,
                ledger_amount: None,
                report_status: None,
                settlement: None,
                message: String::new(),
            })
            .collect();
    }
    let last = append_reconciliation_events(&*store, "run-cut", ExpectedRevision::NoStream, &[chunk]).await;
    let projections = harness.projections().await;
    let runner = Running::start(Arc::clone(&store), Arc::clone(&projections));
    caught_up(&*projections, last).await;

    let findings = |run: &'static str| {
        let projections = Arc::clone(&projections);
        async move {
            projections
                .reconciliation_findings(run, &FindingFilter::default(), 100)
                .await
                .expect("findings")
                .len()
        }
    };
    assert_eq!(findings("run-cut").await, 3, "folded, though no query lists the run");
    assert_eq!(
        projections.unrecorded_finding_runs(10).await.expect("runs"),
        ["run-cut"]
    );
    assert_eq!(
        projections
            .remove_unrecorded_findings("run-recorded")
            .await
            .expect("remove"),
        0
    );
    assert_eq!(
        projections.remove_unrecorded_findings("run-cut").await.expect("remove"),
        3
    );
    assert_eq!(findings("run-cut").await, 0);
    assert_eq!(findings("run-recorded").await, 5);
    assert!(projections.unrecorded_finding_runs(10).await.expect("runs").is_empty());
    runner.stop().await.expect("clean shutdown");
}
