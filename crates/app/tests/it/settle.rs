//! Settling what the synchronous call left open: the worker's inquiry pass, Antom's notifications,
//! a notification contradicting a final state, a crash between recording the request and calling
//! Antom, and a refund Antom accepted but answered with a timeout.

use std::sync::Arc;
use std::time::Duration;

use apo::{InquiryOutcome, NotificationCheck, RefundOutcome, RefundRequest};
use apo_sim::Fault;
use app::{Ledger, LedgerOptions, NOTIFY_ACTOR, RefundGateway};
use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use domain::{OutcomeSource, PaymentEvent, PaymentId, RefundRequestId, RefundStatus, ResultCode, ResultStatus};
use time::OffsetDateTime;

use crate::helpers::{Backend, CLIENT_ID, Harness, WAIT_MS_MAX, refund_id, refund_input, refund_notification, usd};

const OLDER_THAN: Duration = Duration::from_secs(5);

/// The refund's events as stored, with their actors.
async fn refund_events(harness: &Harness, payment: &PaymentId, id: &RefundRequestId) -> Vec<(PaymentEvent, String)> {
    let stream = eventlog::StreamName::parse(domain::payment_stream_name(payment)).unwrap();
    let recorded = harness.store.read_stream(&stream, 0, 1_000).await.unwrap();
    recorded
        .into_iter()
        .map(|event| {
            let decoded =
                PaymentEvent::from_stored(&event.event_type, event.schema_version, &event.payload, &[]).unwrap();
            (decoded, event.actor)
        })
        .filter(|(event, _)| event.refund_request_id() == Some(id))
        .collect()
}

/// The refund's status as the log holds it, read without asking Antom (an inquiry would settle it).
async fn status_of(ledger: &Ledger, payment: &PaymentId, id: &RefundRequestId) -> RefundStatus {
    let state = ledger.payment(payment).await.unwrap().expect("payment known");
    state.refunds.get(id).expect("refund known").status
}

/// Waits until the simulator has settled its U refund (PROCESSING ends after `settle_ms`).
async fn sim_settled(harness: &Harness, id: &RefundRequestId) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    while !harness
        .simulator()
        .refund(id)
        .is_some_and(|record| record.state.is_final())
    {
        assert!(tokio::time::Instant::now() < deadline, "simulator never settled {id}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_left_processing_is_settled_by_the_worker() {
    let harness = Harness::start(Backend::Sqlite).await;
    let payment = harness.payment("P-U", 1000).await;
    harness
        .simulator()
        .script_faults("R-U", vec![vec![Fault::Processing]])
        .unwrap();
    harness
        .simulator()
        .script_faults("R-U-FAIL", vec![vec![Fault::ProcessingThenFail]])
        .unwrap();

    for id in ["R-U", "R-U-FAIL"] {
        let answer = harness
            .ledger
            .refund("op", refund_input(id, &payment, usd(400)))
            .await
            .unwrap();
        assert_eq!(answer.result.status, ResultStatus::U, "{:?}", answer.result);
        assert_eq!(answer.refund.unwrap().refund.status, RefundStatus::Processing);
    }
    // Too young for the worker.
    let head = harness.store.head().await.unwrap().position;
    harness.caught_up(head).await;
    let report = harness.ledger.settle_open_refunds(OLDER_THAN).await.unwrap();
    assert_eq!(report.examined, 0);

    sim_settled(&harness, &refund_id("R-U")).await;
    sim_settled(&harness, &refund_id("R-U-FAIL")).await;
    harness.age_refunds().await;
    let report = harness.ledger.settle_open_refunds(OLDER_THAN).await.unwrap();
    assert_eq!(
        (report.examined, report.succeeded, report.failed, report.errors),
        (2, 1, 1, 0),
        "{report:?}"
    );

    assert_eq!(
        status_of(&harness.ledger, &payment, &refund_id("R-U")).await,
        RefundStatus::Succeeded
    );
    let failed = harness
        .ledger
        .inquiry_refund("op", &refund_id("R-U-FAIL"))
        .await
        .unwrap();
    assert_eq!(
        (failed.result.status, failed.result.code),
        (ResultStatus::F, ResultCode::ProcessFail)
    );
    let state = harness.ledger.payment(&payment).await.unwrap().unwrap();
    assert_eq!((state.refunded, state.pending), (usd(400), usd(0)));

    harness.caught_up(report.position).await;
    let again = harness.ledger.settle_open_refunds(OLDER_THAN).await.unwrap();
    assert_eq!(again.examined, 0, "nothing left open");
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spawned_worker_settles_and_stops_on_shutdown() {
    let harness = Harness::start(Backend::Sqlite).await;
    let payment = harness.payment("P-W", 1000).await;
    harness
        .simulator()
        .script_faults("R-W", vec![vec![Fault::Processing]])
        .unwrap();
    let answer = harness
        .ledger
        .refund("op", refund_input("R-W", &payment, usd(100)))
        .await
        .unwrap();
    assert_eq!(answer.result.status, ResultStatus::U);
    sim_settled(&harness, &refund_id("R-W")).await;
    harness.age_refunds().await;

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = harness.ledger.spawn_worker(Duration::from_millis(50), async move {
        let _stopped = stopped.await;
    });
    let deadline = tokio::time::Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    while status_of(&harness.ledger, &payment, &refund_id("R-W")).await != RefundStatus::Succeeded {
        assert!(tokio::time::Instant::now() < deadline, "the worker never settled R-W");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), worker)
        .await
        .expect("worker stops")
        .expect("worker task");
    harness.finish().await;
}

/// The merchant's notification endpoint: verifies as `server` will, then applies.
#[derive(Clone)]
struct Receiver {
    ledger: Ledger,
    antom_public: apo::PublicKey,
}

async fn receive(State(receiver): State<Receiver>, uri: Uri, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let check = NotificationCheck {
        antom_public_key: &receiver.antom_public,
        client_id: CLIENT_ID,
        clock_skew_max_ms: apo::notification::CLOCK_SKEW_MS_DEFAULT,
    };
    let notification =
        match apo::verify_notification(&check, "POST", uri.path(), &headers, &body, OffsetDateTime::now_utc()) {
            Ok(apo::Notification::Refund(notification)) => notification,
            Ok(other) => return (StatusCode::BAD_REQUEST, format!("not a refund notification: {other:?}")),
            Err(error) => return (StatusCode::UNAUTHORIZED, error.to_string()),
        };
    match receiver
        .ledger
        .apply_refund_notification(NOTIFY_ACTOR, &notification)
        .await
    {
        Ok(_) => (StatusCode::OK, apo::NOTIFICATION_ACK_BODY.to_owned()),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

const NOTIFY_PATH: &str = "/apo/notify/refund";

async fn start_receiver(harness: &Harness) -> String {
    let receiver = Receiver {
        ledger: harness.ledger.clone(),
        antom_public: harness.keys.antom_public.clone(),
    };
    let app = Router::new().route(NOTIFY_PATH, post(receive)).with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{NOTIFY_PATH}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver serves") });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_left_processing_is_settled_by_antoms_notification() {
    let harness = Harness::start(Backend::Sqlite).await;
    let url = start_receiver(&harness).await;
    let options = LedgerOptions {
        refund_notify_url: Some(url),
        ..LedgerOptions::default()
    };
    let ledger = harness.ledger.clone().with_options(options).unwrap();
    let payment = harness.payment("P-N", 1000).await;
    harness
        .simulator()
        .script_faults("R-N", vec![vec![Fault::Processing]])
        .unwrap();
    let answer = ledger
        .refund("op", refund_input("R-N", &payment, usd(250)))
        .await
        .unwrap();
    assert_eq!(answer.result.status, ResultStatus::U);

    let id = refund_id("R-N");
    let deadline = tokio::time::Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    while status_of(&ledger, &payment, &id).await != RefundStatus::Succeeded {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the notification never settled R-N"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events = refund_events(&harness, &payment, &id).await;
    let settled: Vec<_> = events
        .iter()
        .filter_map(|(event, actor)| match event {
            PaymentEvent::RefundSucceeded(succeeded) => Some((succeeded.source, actor.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(settled, vec![(OutcomeSource::Notification, NOTIFY_ACTOR)]);
    harness.finish().await;
}

/// A notifyRefund signed with the test Antom key, as Antom would POST it to `path`.
fn signed_notification(harness: &Harness, path: &str, body: &str) -> HeaderMap {
    let request_time = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).to_string();
    let signature = apo::signature::sign(
        &harness.keys.antom_private,
        "POST",
        path,
        CLIENT_ID,
        &request_time,
        body.as_bytes(),
    )
    .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("Client-Id", CLIENT_ID.parse().unwrap());
    headers.insert("Request-Time", request_time.parse().unwrap());
    headers.insert("Signature", signature.parse().unwrap());
    headers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_contradicting_a_final_state_is_an_anomaly() {
    let harness = Harness::start(Backend::Sqlite).await;
    let payment = harness.payment("P-A", 1000).await;
    let answer = harness
        .ledger
        .refund("op", refund_input("R-A", &payment, usd(300)))
        .await
        .unwrap();
    assert_eq!(answer.result.status, ResultStatus::S);
    let refund_id_at_antom = answer.refund.unwrap().refund.refund_id.unwrap();

    let body = serde_json_body("R-A", refund_id_at_antom.as_str());
    let headers = signed_notification(&harness, NOTIFY_PATH, &body);
    let check = NotificationCheck {
        antom_public_key: &harness.keys.antom_public,
        client_id: CLIENT_ID,
        clock_skew_max_ms: apo::notification::CLOCK_SKEW_MS_DEFAULT,
    };
    let apo::Notification::Refund(notification) = apo::verify_notification(
        &check,
        "POST",
        NOTIFY_PATH,
        &headers,
        body.as_bytes(),
        OffsetDateTime::now_utc(),
    )
    .unwrap() else {
        panic!("a refund notification");
    };
    harness.caught_up(answer.position).await;
    let position = harness
        .ledger
        .apply_refund_notification(NOTIFY_ACTOR, &notification)
        .await
        .unwrap();
    assert!(position > answer.position);

    let id = refund_id("R-A");
    let refund = harness
        .ledger
        .inquiry_refund("op", &id)
        .await
        .unwrap()
        .refund
        .unwrap()
        .refund;
    assert_eq!(refund.status, RefundStatus::Succeeded, "a final state never flips");
    assert_eq!(refund.anomalies.len(), 1);
    let state = harness.ledger.payment(&payment).await.unwrap().unwrap();
    assert_eq!(state.refunded, usd(300));

    // The same report again adds nothing.
    let again = harness
        .ledger
        .apply_refund_notification(NOTIFY_ACTOR, &notification)
        .await
        .unwrap();
    assert_eq!(again, position);
    let anomalies = refund_events(&harness, &payment, &id)
        .await
        .into_iter()
        .filter(|(event, _)| matches!(event, PaymentEvent::RefundOutcomeAnomaly(_)))
        .count();
    assert_eq!(anomalies, 1);
    harness.finish().await;
}

fn serde_json_body(refund_request_id: &str, refund_id: &str) -> String {
    format!(
        concat!(
            r#"{{"notifyType":"REFUND_RESULT","#,
            r#""result":{{"resultCode":"PROCESS_FAIL","resultStatus":"F","resultMessage":"refund failed"}},"#,
            r#""refundStatus":"FAIL","refundRequestId":"{}","refundId":"{}","#,
            r#""refundAmount":{{"currency":"USD","value":"300"}}}}"#
        ),
        refund_request_id, refund_id
    )
}

/// Antom as a crashed server sees it: the call never completes.
#[derive(Debug)]
struct NeverAnswers;

#[async_trait]
impl RefundGateway for NeverAnswers {
    async fn refund(&self, _request: &RefundRequest) -> RefundOutcome {
        std::future::pending().await
    }

    async fn inquiry(&self, _refund_request_id: &RefundRequestId) -> InquiryOutcome {
        std::future::pending().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_recording_and_calling_antom_loses_nothing_on_sqlite() {
    crash_between_recording_and_calling_antom(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_recording_and_calling_antom_loses_nothing_on_postgres() {
    crash_between_recording_and_calling_antom(Backend::Postgres).await;
}

async fn crash_between_recording_and_calling_antom(backend: Backend) {
    let harness = Harness::start(backend).await;
    let payment = harness.payment("P-CRASH", 1000).await;
    let crashing = harness.ledger_with(Arc::clone(&harness.store), Arc::new(NeverAnswers));
    let interrupted = tokio::time::timeout(
        Duration::from_millis(300),
        crashing.refund("op", refund_input("R-C", &payment, usd(700))),
    )
    .await;
    assert!(interrupted.is_err(), "the saga stopped at the Antom call");
    drop(crashing);
    let id = refund_id("R-C");
    assert!(harness.simulator().refund(&id).is_none(), "Antom never heard of it");

    // A fresh ledger (a restarted server) on the same database (a new handle where the backend allows).
    let restarted = harness.ledger_on(harness.second_store().await);
    assert_eq!(status_of(&restarted, &payment, &id).await, RefundStatus::Requested);
    // The reservation held meanwhile.
    let answer = restarted
        .refund("op", refund_input("R-C2", &payment, usd(301)))
        .await
        .unwrap();
    assert_eq!(answer.result.code, ResultCode::RefundAmountExceed);

    harness.age_refunds().await;
    let report = restarted.settle_open_refunds(OLDER_THAN).await.unwrap();
    assert_eq!((report.examined, report.resent, report.errors), (1, 1, 0), "{report:?}");
    assert_eq!(status_of(&restarted, &payment, &id).await, RefundStatus::Succeeded);
    harness.caught_up(report.position).await;
    let again = restarted.settle_open_refunds(OLDER_THAN).await.unwrap();
    assert_eq!(again.examined, 0);
    let totals = harness.simulator().totals(&payment).unwrap();
    assert_eq!(
        (totals.refund_count, totals.succeeded_minor_units),
        (1, 700),
        "one refund at Antom"
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_accepted_but_answered_with_a_timeout_settles_once() {
    let harness = Harness::start(Backend::Sqlite).await;
    let payment = harness.payment("P-TIMEOUT", 1000).await;
    harness
        .simulator()
        .script_faults("R-T", vec![vec![Fault::AcceptedTimeout]])
        .unwrap();
    let answer = harness
        .ledger
        .refund("op", refund_input("R-T", &payment, usd(600)))
        .await
        .unwrap();
    assert_eq!(answer.result.status, ResultStatus::U, "{:?}", answer.result);
    let id = refund_id("R-T");
    assert_eq!(
        status_of(&harness.ledger, &payment, &id).await,
        RefundStatus::Processing
    );

    harness.age_refunds().await;
    let report = harness.ledger.settle_open_refunds(OLDER_THAN).await.unwrap();
    assert_eq!(
        (report.examined, report.succeeded, report.resent),
        (1, 1, 0),
        "{report:?}"
    );
    // A second worker pass and a retry by the merchant change nothing.
    harness.caught_up(report.position).await;
    assert_eq!(
        harness.ledger.settle_open_refunds(OLDER_THAN).await.unwrap().examined,
        0
    );
    let retry = harness
        .ledger
        .refund("op", refund_input("R-T", &payment, usd(600)))
        .await
        .unwrap();
    assert_eq!(retry.result.status, ResultStatus::S);
    let totals = harness.simulator().totals(&payment).unwrap();
    assert_eq!((totals.refund_count, totals.succeeded_minor_units), (1, 600));
    let state = harness.ledger.payment(&payment).await.unwrap().unwrap();
    assert_eq!((state.refunded, state.pending), (usd(600), usd(0)));
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_settles_one_refund_now_and_unknown_refunds_are_errors() {
    let harness = Harness::start(Backend::Sqlite).await;
    let payment = harness.payment("P-OP", 1000).await;
    harness
        .simulator()
        .script_faults("R-OP", vec![vec![Fault::Processing]])
        .unwrap();
    let answer = harness
        .ledger
        .refund("op", refund_input("R-OP", &payment, usd(100)))
        .await
        .unwrap();
    assert_eq!(answer.result.status, ResultStatus::U);

    // Still PROCESSING at Antom: nothing changes.
    let id = refund_id("R-OP");
    let early = harness.ledger.inquiry_refund("operator", &id).await.unwrap();
    if !harness.simulator().refund(&id).unwrap().state.is_final() {
        assert_eq!(early.result.status, ResultStatus::U);
    }
    sim_settled(&harness, &id).await;
    let settled = harness.ledger.inquiry_refund("operator", &id).await.unwrap();
    assert_eq!(settled.result.status, ResultStatus::S, "{:?}", settled.result);
    let actors: Vec<String> = refund_events(&harness, &payment, &id)
        .await
        .into_iter()
        .filter(|(event, _)| matches!(event, PaymentEvent::RefundSucceeded(_)))
        .map(|(_, actor)| actor)
        .collect();
    assert_eq!(actors, vec!["operator".to_owned()]);

    let unknown = harness
        .ledger
        .inquiry_refund("operator", &refund_id("R-NONE"))
        .await
        .unwrap();
    assert_eq!(unknown.result.code, ResultCode::OrderNotExist);
    let notification = refund_notification(
        "R-NONE",
        apo::notification::RefundNotificationOutcome::Failed {
            refund_id: None,
            code: ResultCode::ProcessFail,
            message: "failed".to_owned(),
        },
    );
    let error = harness
        .ledger
        .apply_refund_notification(NOTIFY_ACTOR, &notification)
        .await
        .unwrap_err();
    assert!(matches!(error, app::AppError::UnknownRefund { .. }), "{error}");

    let error = harness
        .ledger
        .refund("", refund_input("R-X", &payment, usd(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(error, app::AppError::Input(ref input) if input.field() == "actor"),
        "{error}"
    );
    harness.finish().await;
}
