//! notifyRefund: Antom tells the merchant a refund became final.
//!
//! Sent like a request from Antom to the merchant (Client-Id, Request-Time,
//! Signature over `POST <merchant path>\n<clientId>.<Request-Time>.<body>`,
//! signed with Antom's private key) and retried on Antom's schedule, divided
//! by the run's compression factor, until the merchant answers HTTP 200 with
//! `resultStatus` S. Faults can drop, duplicate or hold back a notification,
//! because real ones arrive late, twice or never.

use std::time::Duration;

use domain::ResultStatus;
use time::OffsetDateTime;

use crate::config::NOTIFY_SCHEDULE_MS;
use crate::fault::NotifyFault;
use crate::ledger::{RefundRecord, RefundState};
use crate::simulator::{NotificationAttempt, NotifyOutcome, Simulator, to_json};
use crate::wire::{AmountJson, NotifyAckJson, NotifyRefundJson, ResultJson, antom_time};

/// A notification to deliver: the body is fixed once, so every attempt and
/// every duplicate carries the same bytes (only Request-Time and Signature change).
#[derive(Debug, Clone)]
pub(crate) struct NotificationJob {
    refund_request_id: String,
    refund_status: String,
    url: String,
    body: Vec<u8>,
    fault: NotifyFault,
}

impl NotificationJob {
    /// The notification of a refund; `None` while it is still processing
    /// (Antom notifies final states only).
    pub(crate) fn new(record: &RefundRecord, url: String, fault: NotifyFault) -> Option<Self> {
        let (result, refund_time) = match &record.state {
            RefundState::Succeeded { refund_time } => {
                (ResultJson::new("SUCCESS", ResultStatus::S, "success"), *refund_time)
            }
            RefundState::Failed { code, refund_time } => (
                ResultJson::new(code.as_str(), ResultStatus::F, "refund failed"),
                *refund_time,
            ),
            RefundState::Processing { .. } => return None,
        };
        let json = NotifyRefundJson {
            notify_type: "REFUND_RESULT".to_owned(),
            result,
            refund_status: record.state.refund_status().to_owned(),
            refund_request_id: record.refund_request_id.to_string(),
            refund_id: record.refund_id.to_string(),
            refund_amount: AmountJson::from(record.refund_amount),
            refund_time: antom_time(refund_time),
        };
        Some(Self {
            refund_request_id: record.refund_request_id.to_string(),
            refund_status: record.state.refund_status().to_owned(),
            url,
            body: to_json(&json),
            fault,
        })
    }
}

/// Delivers one notification on Antom's schedule. Bounded: at most
/// `NOTIFY_SCHEDULE_MS.len()` attempts plus one duplicate; stops at shutdown.
pub(crate) async fn deliver(simulator: Simulator, job: NotificationJob) {
    if job.fault == NotifyFault::Drop {
        simulator.record_notification(log_line(&job, 0, false, NotifyOutcome::Dropped));
        return;
    }
    let faults = simulator.faults();
    let mut first_delay_ms = faults.notify_delay_ms;
    if job.fault == NotifyFault::Reorder {
        first_delay_ms += faults.notify_reorder_ms;
    }
    if !pause(&simulator, first_delay_ms).await {
        return;
    }
    let compression = simulator.config().notify_compression.max(1);
    for (index, wait_ms) in NOTIFY_SCHEDULE_MS.iter().enumerate() {
        if !pause(&simulator, wait_ms / compression).await {
            return;
        }
        let attempt = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let outcome = send_once(&simulator, &job).await;
        let acknowledged = outcome == NotifyOutcome::Acknowledged;
        simulator.record_notification(log_line(&job, attempt, false, outcome));
        if acknowledged {
            if job.fault == NotifyFault::Duplicate {
                let outcome = send_once(&simulator, &job).await;
                simulator.record_notification(log_line(&job, attempt, true, outcome));
            }
            return;
        }
    }
    tracing::warn!(refund_request_id = %job.refund_request_id, "notifyRefund never acknowledged; giving up");
    simulator.record_notification(log_line(&job, 0, false, NotifyOutcome::GaveUp));
}

/// Sleeps unless the simulator stops first; false when it stopped.
async fn pause(simulator: &Simulator, ms: u64) -> bool {
    if ms == 0 {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(Duration::from_millis(ms)) => true,
        () = simulator.stopped() => false,
    }
}

#[tracing::instrument(skip(simulator, job), fields(refund_request_id = %job.refund_request_id, url = %job.url))]
async fn send_once(simulator: &Simulator, job: &NotificationJob) -> NotifyOutcome {
    let config = simulator.config();
    let path = match reqwest::Url::parse(&job.url) {
        Ok(url) => url.path().to_owned(),
        Err(error) => {
            return NotifyOutcome::TransportError {
                reason: format!("notify url {}: {error}", job.url),
            };
        }
    };
    let request_time = antom_time(OffsetDateTime::now_utc());
    let signature = match apo::signature::sign(
        &config.antom_private_key,
        "POST",
        &path,
        &config.client_id,
        &request_time,
        &job.body,
    ) {
        Ok(signature) => signature,
        Err(error) => {
            return NotifyOutcome::TransportError {
                reason: format!("signing failed: {error}"),
            };
        }
    };
    let sent = simulator
        .http()
        .post(&job.url)
        .header("Content-Type", "application/json; charset=UTF-8")
        .header("Client-Id", &config.client_id)
        .header("Request-Time", &request_time)
        .header("Signature", signature)
        .body(job.body.clone())
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(%error, "notifyRefund attempt failed");
            return NotifyOutcome::TransportError {
                reason: error.to_string(),
            };
        }
    };
    let status = response.status().as_u16();
    let acknowledged = status == 200
        && response
            .bytes()
            .await
            .ok()
            .and_then(|body| serde_json::from_slice::<NotifyAckJson>(&body).ok())
            .is_some_and(|ack| ack.result.result_status == "S");
    if acknowledged {
        NotifyOutcome::Acknowledged
    } else {
        NotifyOutcome::NotAcknowledged { status }
    }
}

fn log_line(job: &NotificationJob, attempt: u32, duplicate: bool, outcome: NotifyOutcome) -> NotificationAttempt {
    NotificationAttempt {
        refund_request_id: job.refund_request_id.clone(),
        refund_status: job.refund_status.clone(),
        attempt,
        duplicate,
        outcome,
    }
}
