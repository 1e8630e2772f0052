//! The simulator: the ledger, the fault generator and the notification log
//! behind one mutex, plus the decisions that turn a parsed request into an
//! answer and a list of effects (notifications to send, refunds to settle).
//!
//! Everything random or stateful happens under the lock, in request order,
//! so a seeded run is reproducible; everything slow (sleeping, HTTP) happens
//! after the lock is released.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use domain::{Money, PaymentId, RefundRequestId, ResultCode, ResultStatus};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::config::{FaultConfig, NOTIFICATION_LOG_MAX, SCRIPT_LEN_MAX, SimConfig};
use crate::error::SimError;
use crate::fault::{Fault, FaultPlan, NotifyFault, Processing};
use crate::ledger::{
    Disposition, Ledger, PaymentSeed, PaymentTotals, PaymentUpdate, RefundCommand, RefundDecision, RefundRecord,
    RefundState,
};
use crate::notify::{self, NotificationJob};
use crate::report::{self, Discrepancies, ReportFile, ReportKind, Snapshot};
use crate::report_settings::ReportGeneration;
use crate::wire::{AmountJson, InquiryResponseJson, RefundResponseJson, ResultJson, antom_time};

/// Antom's U code for a refund still being processed.
pub const REFUND_IN_PROCESS: &str = "REFUND_IN_PROCESS";

/// How one notification attempt ended, as the simulator's log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum NotifyOutcome {
    /// The merchant answered HTTP 200 with `resultStatus` S.
    Acknowledged,
    /// The merchant answered, but not with an acknowledgement.
    NotAcknowledged {
        /// HTTP status of the answer.
        status: u16,
    },
    /// The request failed (connection refused, timeout, ...).
    TransportError {
        /// What failed.
        reason: String,
    },
    /// The `notify-drop` fault: never sent.
    Dropped,
    /// Every attempt of Antom's schedule failed; Antom gives up.
    GaveUp,
}

/// One line of the notification log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationAttempt {
    /// The refund notified about.
    pub refund_request_id: String,
    /// `SUCCESS` or `FAIL`.
    pub refund_status: String,
    /// 1-based attempt number within Antom's schedule (0 for drop / give-up lines).
    pub attempt: u32,
    /// Whether this is the extra copy of a `notify-duplicate` fault.
    pub duplicate: bool,
    /// How it ended.
    pub outcome: NotifyOutcome,
}

/// Something to do once the state lock is released.
#[derive(Debug)]
pub(crate) enum Effect {
    /// Send a notification.
    Notify(NotificationJob),
    /// Settle PROCESSING refunds after this delay.
    SettleAfter(Duration),
}

/// The answer to a refund or inquiry call before the transport faults shape it.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The faults of this call.
    pub plan: FaultPlan,
    /// The JSON body of a normal answer (absent when the call never reached processing).
    pub body: Option<Vec<u8>>,
    /// What to do after the lock is released.
    pub effects: Vec<Effect>,
}

#[derive(Debug)]
struct RefundMeta {
    notify_url: Option<String>,
    notify_fault: NotifyFault,
}

#[derive(Debug)]
struct SimState {
    ledger: Ledger,
    rng: StdRng,
    faults: FaultConfig,
    scripts: HashMap<String, VecDeque<Vec<Fault>>>,
    refund_meta: HashMap<RefundRequestId, RefundMeta>,
    notifications: Vec<NotificationAttempt>,
}

#[derive(Debug)]
struct Inner {
    config: SimConfig,
    state: Mutex<SimState>,
    shutdown: watch::Sender<bool>,
    http: reqwest::Client,
}

/// A simulated Antom. Cheap to clone (shared); serve it with [`Simulator::router`]
/// or [`crate::SimServer`].
#[derive(Debug, Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl Simulator {
    /// Builds a simulator; fails if the config is out of range.
    pub fn new(config: SimConfig) -> Result<Self, SimError> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.notify_timeout_ms))
            .build()
            .map_err(|error| SimError::Config {
                field: "notifyClient".to_owned(),
                reason: error.to_string(),
            })?;
        let state = SimState {
            ledger: Ledger::default(),
            rng: StdRng::seed_from_u64(config.seed),
            faults: config.faults.clone(),
            scripts: HashMap::new(),
            refund_meta: HashMap::new(),
            notifications: Vec::new(),
        };
        let (shutdown, _) = watch::channel(false);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(state),
                shutdown,
                http,
            }),
        })
    }

    /// The configuration the simulator was built with (faults may have changed since).
    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    /// Stores a payment Antom holds.
    pub fn seed_payment(&self, seed: PaymentSeed) -> Result<(), SimError> {
        self.lock().ledger.seed_payment(seed)
    }

    /// Captures, disputes or cancels a seeded payment.
    pub fn update_payment(&self, payment_id: &PaymentId, update: PaymentUpdate) -> Result<(), SimError> {
        self.lock().ledger.update_payment(payment_id, update)
    }

    /// The seeded payment as it stands.
    pub fn payment(&self, payment_id: &PaymentId) -> Option<PaymentSeed> {
        self.lock().ledger.payment(payment_id).cloned()
    }

    /// The refunds of a payment, in the order they were accepted.
    pub fn refunds_of(&self, payment_id: &PaymentId) -> Vec<RefundRecord> {
        self.lock().ledger.refunds_of(payment_id)
    }

    /// A payment's captured, succeeded, processing and refundable amounts.
    pub fn totals(&self, payment_id: &PaymentId) -> Result<PaymentTotals, SimError> {
        self.lock().ledger.totals(payment_id)
    }

    /// The refund accepted under this refundRequestId, if any.
    pub fn refund(&self, refund_request_id: &RefundRequestId) -> Option<RefundRecord> {
        self.lock().ledger.refund_by_request_id(refund_request_id).cloned()
    }

    /// Replaces the run's fault mix.
    pub fn set_faults(&self, faults: FaultConfig) -> Result<(), SimError> {
        faults.validate()?;
        self.lock().faults = faults;
        Ok(())
    }

    /// The run's fault mix.
    pub fn faults(&self) -> FaultConfig {
        self.lock().faults.clone()
    }

    /// Queues faults for the next refund calls with this refundRequestId: call
    /// n gets `calls[n]` (an empty list or `[Fault::None]` is a clean call);
    /// calls past the script draw from the run's mix again.
    pub fn script_faults(&self, refund_request_id: &str, calls: Vec<Vec<Fault>>) -> Result<(), SimError> {
        if calls.len() > SCRIPT_LEN_MAX {
            return Err(SimError::Config {
                field: "calls".to_owned(),
                reason: format!("at most {SCRIPT_LEN_MAX} scripted calls, got {}", calls.len()),
            });
        }
        self.lock()
            .scripts
            .insert(refund_request_id.to_owned(), calls.into_iter().collect());
        Ok(())
    }

    /// A reconciliation report of `date` (day T at the configured report offset) for what the simulator
    /// processed: the transaction details of the day, or the settlement details or summary of the day's batch
    /// in `currency` (default: the configured settlement currency, else the day's only one). `generation`
    /// defaults to the configured one.
    pub fn report(
        &self,
        kind: ReportKind,
        date: time::Date,
        currency: Option<domain::Currency>,
        generation: Option<ReportGeneration>,
        discrepancies: &Discrepancies,
    ) -> Result<ReportFile, SimError> {
        let settings = &self.inner.config.reports;
        let generation = generation.unwrap_or(settings.generation);
        report::build(
            &self.snapshot(),
            settings,
            kind,
            date,
            currency,
            generation,
            discrepancies,
        )
    }

    /// Writes the three reports of `date` (settlement reports once per settlement currency) under the
    /// configured reports directory, in Antom's SFTP layout; returns the paths written.
    pub fn write_reports(
        &self,
        date: time::Date,
        generation: Option<ReportGeneration>,
        discrepancies: &Discrepancies,
    ) -> Result<Vec<std::path::PathBuf>, SimError> {
        let settings = &self.inner.config.reports;
        let Some(root) = &settings.reports_dir else {
            return Err(SimError::Report {
                reason: "no reports directory configured (--reports-dir)".to_owned(),
            });
        };
        let snapshot = self.snapshot();
        let generation = generation.unwrap_or(settings.generation);
        let mut files = vec![report::build(
            &snapshot,
            settings,
            ReportKind::TransactionDetails,
            date,
            None,
            generation,
            discrepancies,
        )?];
        for currency in report::settlement_currencies(&snapshot, settings, date) {
            for kind in [ReportKind::SettlementDetails, ReportKind::SettlementSummary] {
                files.push(report::build(
                    &snapshot,
                    settings,
                    kind,
                    date,
                    Some(currency),
                    generation,
                    discrepancies,
                )?);
            }
        }
        files.iter().map(|file| write_file(root, file)).collect()
    }

    /// Writes the clean reports of every day on which anything was paid or refunded (the binary does this at
    /// shutdown when given a reports directory).
    pub fn write_all_reports(&self) -> Result<Vec<std::path::PathBuf>, SimError> {
        let dates = report::active_dates(&self.snapshot(), &self.inner.config.reports);
        let mut paths = Vec::new();
        for date in dates {
            paths.extend(self.write_reports(date, None, &Discrepancies::default())?);
        }
        Ok(paths)
    }

    fn snapshot(&self) -> Snapshot {
        let state = self.lock();
        Snapshot {
            payments: state.ledger.payments().cloned().collect(),
            refunds: state.ledger.refunds().cloned().collect(),
        }
    }

    /// Every notification attempt so far, oldest first.
    pub fn notifications(&self) -> Vec<NotificationAttempt> {
        self.lock().notifications.clone()
    }

    /// Makes every PROCESSING refund whose settle time has passed final and
    /// sends their notifications. Runs by itself after `settle_ms`; tests may
    /// call it. Call it inside a Tokio runtime: notifications are spawned tasks.
    pub fn settle_due(&self) {
        let effects = {
            let mut state = self.lock();
            settle_locked(&mut state, OffsetDateTime::now_utc())
        };
        self.run_effects(effects);
    }

    /// Stops background work: held `timeout` connections are released and
    /// pending notifications are abandoned. Idempotent.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Resolves when [`Simulator::shutdown`] was called.
    pub(crate) async fn stopped(&self) {
        let mut receiver = self.inner.shutdown.subscribe();
        // An Err means the sender is gone, which only happens when the simulator is dropped: stop too.
        let _stopped = receiver.wait_for(|stopped| *stopped).await;
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn record_notification(&self, attempt: NotificationAttempt) {
        let mut state = self.lock();
        if state.notifications.len() < NOTIFICATION_LOG_MAX {
            state.notifications.push(attempt);
        }
    }

    /// The lock. It is poisoned only by a panic while it was held, which in
    /// practice is a failed invariant assertion: the state can no longer be
    /// trusted, so every later call fails loudly too instead of hiding the bug.
    fn lock(&self) -> MutexGuard<'_, SimState> {
        match self.inner.state.lock() {
            Ok(guard) => guard,
            Err(_poisoned) => panic!("apo-sim state poisoned: an invariant failed earlier (see the first panic)"),
        }
    }

    /// Decides a refund call: faults, rules, state change, answer body.
    pub(crate) fn process_refund(
        &self,
        request: Result<ParsedRefund, String>,
        header_faults: Option<Vec<Fault>>,
    ) -> Answer {
        let now = OffsetDateTime::now_utc();
        let mut state = self.lock();
        let mut effects = settle_locked(&mut state, now);
        let scripted = request
            .as_ref()
            .ok()
            .and_then(|parsed| state.scripts.get_mut(parsed.command.refund_request_id.as_str()))
            .and_then(VecDeque::pop_front);
        let plan = state.plan(header_faults.or(scripted));
        let body = match request {
            _ if !plan.transport.applies() => None,
            Err(message) => Some(refund_failure(ResultCode::ParamIllegal, &message)),
            Ok(parsed) => Some(self.decide_refund(&mut state, parsed, plan, now, &mut effects)),
        };
        Answer { plan, body, effects }
    }

    /// Applies the rules to a well-formed refund and records what follows from it.
    fn decide_refund(
        &self,
        state: &mut SimState,
        parsed: ParsedRefund,
        plan: FaultPlan,
        now: OffsetDateTime,
        effects: &mut Vec<Effect>,
    ) -> Vec<u8> {
        let config = &self.inner.config;
        let settle_delay = Duration::from_millis(config.settle_ms);
        let disposition = match plan.processing {
            Processing::Immediate => Disposition::Immediate,
            Processing::ThenSucceed | Processing::ThenFail => Disposition::Deferred {
                settle_at: now + settle_delay,
                will_succeed: plan.processing == Processing::ThenSucceed,
            },
        };
        let record = match state.ledger.refund(&parsed.command, &config.policies, disposition, now) {
            RefundDecision::Rejected(code) => return refund_failure(code.clone(), &rejection_message(&code)),
            RefundDecision::Replayed(record) => return refund_answer(&record),
            RefundDecision::Accepted(record) => record,
        };
        state.refund_meta.insert(
            record.refund_request_id.clone(),
            RefundMeta {
                notify_url: parsed.notify_url.or_else(|| config.notify_url.clone()),
                notify_fault: plan.notify,
            },
        );
        if record.state.is_final() {
            effects.extend(notification_effect(state, &record));
        } else {
            effects.push(Effect::SettleAfter(settle_delay));
        }
        refund_answer(&record)
    }

    /// Decides an inquiry call.
    pub(crate) fn process_inquiry(
        &self,
        request: Result<InquiryKey, String>,
        header_faults: Option<Vec<Fault>>,
    ) -> Answer {
        let now = OffsetDateTime::now_utc();
        let mut state = self.lock();
        let effects = settle_locked(&mut state, now);
        let plan = state.plan(header_faults);
        if !plan.transport.applies() {
            return Answer {
                plan,
                body: None,
                effects,
            };
        }
        let found = match &request {
            Err(_) => None,
            Ok(InquiryKey::RefundId(id)) => state.ledger.refund_by_refund_id(id),
            Ok(InquiryKey::RefundRequestId(id)) => state.ledger.refund_by_request_id(id),
        };
        let response = match (request.as_ref(), found) {
            (Err(message), _) => inquiry_failure(ResultCode::ParamIllegal, message),
            (Ok(_), None) => inquiry_failure(ResultCode::OrderNotExist, "no refund with this id"),
            (Ok(_), Some(record)) => inquiry_answer(record),
        };
        Answer {
            plan,
            body: Some(to_json(&response)),
            effects,
        }
    }

    /// Spawns the work an answer asked for. Needs a Tokio runtime (the HTTP
    /// handlers run in one); without one the work is logged and dropped
    /// rather than panicking.
    pub(crate) fn run_effects(&self, effects: Vec<Effect>) {
        if effects.is_empty() {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            tracing::error!(
                count = effects.len(),
                "no Tokio runtime: notifications and settle timers dropped"
            );
            return;
        }
        for effect in effects {
            let simulator = self.clone();
            match effect {
                Effect::Notify(job) => {
                    tokio::spawn(notify::deliver(simulator, job));
                }
                Effect::SettleAfter(delay) => {
                    tokio::spawn(async move {
                        tokio::select! {
                            () = tokio::time::sleep(delay) => simulator.settle_due(),
                            () = simulator.stopped() => {}
                        }
                    });
                }
            }
        }
    }
}

fn write_file(root: &std::path::Path, file: &ReportFile) -> Result<std::path::PathBuf, SimError> {
    let directory = root.join(&file.directory);
    let path = directory.join(&file.name);
    let failed = |source| SimError::ReportFile {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(&directory).map_err(failed)?;
    std::fs::write(&path, &file.text).map_err(failed)?;
    Ok(path)
}

/// A refund request that passed the field checks.
#[derive(Debug, Clone)]
pub(crate) struct ParsedRefund {
    pub command: RefundCommand,
    pub notify_url: Option<String>,
}

/// What an inquiry asks about.
#[derive(Debug, Clone)]
pub(crate) enum InquiryKey {
    RefundId(domain::RefundId),
    RefundRequestId(RefundRequestId),
}

impl SimState {
    /// The faults of one call: the explicit ones if any, else a draw from the run's mix.
    fn plan(&mut self, explicit: Option<Vec<Fault>>) -> FaultPlan {
        match explicit {
            Some(faults) => FaultPlan::from_faults(&faults),
            None => FaultPlan::draw(&self.faults, &mut self.rng),
        }
    }
}

fn settle_locked(state: &mut SimState, now: OffsetDateTime) -> Vec<Effect> {
    let settled = state.ledger.settle_due(now);
    settled
        .iter()
        .filter_map(|record| notification_effect(state, record))
        .collect()
}

/// The notification of a refund that just became final, if it has somewhere to go.
fn notification_effect(state: &SimState, record: &RefundRecord) -> Option<Effect> {
    let meta = state.refund_meta.get(&record.refund_request_id)?;
    let url = meta.notify_url.clone()?;
    NotificationJob::new(record, url, meta.notify_fault).map(Effect::Notify)
}

fn rejection_message(code: &ResultCode) -> String {
    match code {
        ResultCode::CurrencyNotSupport => "refund currency differs from the payment currency",
        ResultCode::RefundAmountExceed => "refund amount is below the minimum or above the refundable amount",
        ResultCode::OrderStatusInvalid => "payment is not captured or under an undetermined chargeback",
        ResultCode::RefundWindowExceed => "refund is outside the payment method's refund window",
        ResultCode::RepeatReqInconsistent => "refundRequestId was used before with different content",
        ResultCode::OrderNotExist => "payment does not exist",
        ResultCode::OrderIsCanceled => "payment was cancelled",
        ResultCode::MultipleRefundsNotSupported => "payment method allows one refund only",
        ResultCode::PartialRefundNotSupported => "payment method allows full refunds only",
        ResultCode::UnknownException => "refund capacity of the simulator exhausted",
        _ => "refund refused",
    }
    .to_owned()
}

fn status_of(code: &ResultCode) -> ResultStatus {
    match code {
        ResultCode::Success => ResultStatus::S,
        ResultCode::UnknownException | ResultCode::RequestTrafficExceedLimit => ResultStatus::U,
        _ => ResultStatus::F,
    }
}

fn refund_failure(code: ResultCode, message: &str) -> Vec<u8> {
    to_json(&RefundResponseJson {
        result: ResultJson::new(code.as_str(), status_of(&code), message),
        refund_request_id: None,
        refund_id: None,
        payment_id: None,
        refund_amount: None,
        refund_time: None,
    })
}

/// The refund answer for a refund as it stands: S, U (processing) or F (failed after U).
fn refund_answer(record: &RefundRecord) -> Vec<u8> {
    let (result, refund_time) = match &record.state {
        RefundState::Succeeded { refund_time } => (
            ResultJson::new("SUCCESS", ResultStatus::S, "success"),
            Some(antom_time(*refund_time)),
        ),
        RefundState::Processing { .. } => (
            ResultJson::new(REFUND_IN_PROCESS, ResultStatus::U, "refund is processing"),
            None,
        ),
        RefundState::Failed { code, .. } => (ResultJson::new(code.as_str(), ResultStatus::F, "refund failed"), None),
    };
    to_json(&RefundResponseJson {
        result,
        refund_request_id: Some(record.refund_request_id.to_string()),
        refund_id: Some(record.refund_id.to_string()),
        payment_id: Some(record.payment_id.to_string()),
        refund_amount: Some(AmountJson::from(record.refund_amount)),
        refund_time,
    })
}

fn inquiry_failure(code: ResultCode, message: &str) -> InquiryResponseJson {
    InquiryResponseJson {
        result: ResultJson::new(code.as_str(), status_of(&code), message),
        refund_id: None,
        refund_request_id: None,
        refund_amount: None,
        refund_status: None,
        refund_time: None,
    }
}

fn inquiry_answer(record: &RefundRecord) -> InquiryResponseJson {
    let refund_time = match &record.state {
        RefundState::Succeeded { refund_time } => Some(antom_time(*refund_time)),
        RefundState::Processing { .. } | RefundState::Failed { .. } => None,
    };
    InquiryResponseJson {
        result: ResultJson::new("SUCCESS", ResultStatus::S, "success"),
        refund_id: Some(record.refund_id.to_string()),
        refund_request_id: Some(record.refund_request_id.to_string()),
        refund_amount: Some(AmountJson::from(record.refund_amount)),
        refund_status: Some(record.state.refund_status().to_owned()),
        refund_time,
    }
}

/// Serializes a response struct. Our structs hold only strings and options,
/// which always serialize; the fallback keeps the server answering regardless.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|_| {
        br#"{"result":{"resultCode":"UNKNOWN_EXCEPTION","resultStatus":"U","resultMessage":"serialization failed"}}"#
            .to_vec()
    })
}

/// Checks a refund body's fields as Antom does; the error names the field.
pub(crate) fn parse_refund(body: &[u8]) -> Result<ParsedRefund, String> {
    let json: crate::wire::RefundRequestJson =
        serde_json::from_slice(body).map_err(|error| format!("malformed request body: {error}"))?;
    let required = |value: Option<String>, field: &str| value.ok_or_else(|| format!("{field}: is required"));
    let refund_request_id = RefundRequestId::parse(&required(json.refund_request_id, "refundRequestId")?)
        .map_err(|error| error.to_string())?;
    let payment_id = PaymentId::parse(&required(json.payment_id, "paymentId")?).map_err(|error| error.to_string())?;
    let amount = json
        .refund_amount
        .ok_or_else(|| "refundAmount: is required".to_owned())?;
    let refund_amount =
        Money::parse("refundAmount", &amount.currency, &amount.value).map_err(|error| error.to_string())?;
    check_len("refundReason", json.refund_reason.as_deref(), 256)?;
    check_len("referenceRefundId", json.reference_refund_id.as_deref(), 64)?;
    check_len("refundNotifyUrl", json.refund_notify_url.as_deref(), 1024)?;
    check_len("captureId", json.capture_id.as_deref(), 64)?;
    Ok(ParsedRefund {
        command: RefundCommand {
            refund_request_id,
            payment_id,
            refund_amount,
        },
        notify_url: json.refund_notify_url,
    })
}

/// Checks an inquiry body: at least one id; `refundId` wins.
pub(crate) fn parse_inquiry(body: &[u8]) -> Result<InquiryKey, String> {
    let json: crate::wire::InquiryRequestJson =
        serde_json::from_slice(body).map_err(|error| format!("malformed request body: {error}"))?;
    if let Some(refund_id) = json.refund_id {
        return domain::RefundId::parse(&refund_id)
            .map(InquiryKey::RefundId)
            .map_err(|error| error.to_string());
    }
    match json.refund_request_id {
        Some(id) => RefundRequestId::parse(&id)
            .map(InquiryKey::RefundRequestId)
            .map_err(|error| error.to_string()),
        None => Err("refundRequestId and refundId: one is required".to_owned()),
    }
}

fn check_len(field: &str, value: Option<&str>, max: usize) -> Result<(), String> {
    match value {
        Some(value) if value.chars().count() > max => Err(format!(
            "{field}: is {} characters long, at most {max} are allowed",
            value.chars().count()
        )),
        _ => Ok(()),
    }
}
