//! Prometheus metrics through `prometheus-client` (docs/adr/010): one registry per service instance, every
//! family registered once, the text exposition (format 0.0.4) rendered on each scrape.
//!
//! The libraries know no metrics library: `app` reports its facts to an [`app::Observer`], `apo` each Antom
//! attempt to an [`apo::CallObserver`]; [`Metrics`] implements both. Appends are timed by [`ObservedStore`]
//! around the ledger's store; the gauges that describe state (open refunds, projection lag) are read from the
//! store and the read models at scrape time ([`ScrapeState`]).
//!
//! Label values come from small closed sets (outcome classes, result codes the ledger names, states,
//! reasons), never from ids or amounts, so the number of series stays bounded whatever the traffic.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use apo::{Api, CallClass, CallObserver};
use app::{AnomalyKind, Observer, SettleReport, SettledBy};
use async_trait::async_trait;
use domain::{OutcomeSource, RefundStatus, ResultCode, ResultStatus};
use eventlog::{
    AppendOutcome, EventStore, ExpectedRevision, Head, LocalCommit, LogLayout, NewEvent, RecordedEvent, ScanReceiver,
    StoreError, StreamName,
};
use projections::{OPEN_REFUND_AGE_BOUNDS_SECONDS, OpenRefundAges, OpenRefundStats};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use time::OffsetDateTime;

/// The `Content-Type` of the exposition.
pub(crate) const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Bucket bounds of Antom call latency, in seconds (the client's request timeout defaults to 20 s).
const ANTOM_SECONDS_BUCKETS: [f64; 11] = [0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0];
/// Bucket bounds of GraphQL request latency, in seconds.
const GRAPHQL_SECONDS_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
/// Bucket bounds of append latency, in seconds (one group commit: a lock, an insert, an fsync).
const APPEND_SECONDS_BUCKETS: [f64; 12] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];
/// Bucket bounds of events per append (a payment's batch of commands; at most `eventlog::BATCH_EVENTS_MAX`).
const APPEND_EVENTS_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
/// Bucket bounds of appends per group commit (at most the store's group bound, 128 requests).
const GROUP_APPENDS_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];
/// The `age` labels of the open-refund buckets, matching [`OPEN_REFUND_AGE_BOUNDS_SECONDS`].
const AGE_LABELS: [&str; OPEN_REFUND_AGE_BOUNDS_SECONDS.len() + 1] =
    ["lt_1m", "1m_5m", "5m_15m", "15m_1h", "1h_1d", "ge_1d"];
/// Longest `extensions.code` kept as a label value; longer or odd codes count as `OTHER`.
const ERROR_CODE_CHARS_MAX: usize = 48;

/// Labels of a family: fixed names, values from closed sets.
type Labels = Vec<(&'static str, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;
type SecondsGauge = Gauge<f64, AtomicU64>;

/// The service's metrics. Cheap to clone; clones share the registry.
#[derive(Clone)]
pub(crate) struct Metrics {
    inner: Arc<Families>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Metrics").finish_non_exhaustive()
    }
}

struct Families {
    registry: Registry,
    http_requests: Counter,
    http_unauthorized: Counter,
    graphql_requests: Counter,
    graphql_errors: Family<Labels, Counter>,
    graphql_busy: Counter,
    graphql_seconds: HistogramFamily,
    notifications_accepted: Counter,
    notifications_refused: Family<Labels, Counter>,
    refunds_decided: Family<Labels, Counter>,
    refunds_settled: Family<Labels, Counter>,
    anomalies: Family<Labels, Counter>,
    conflict_retries: Counter,
    settle_worker_last_run: Gauge,
    antom_seconds: HistogramFamily,
    antom_last_success: Gauge,
    append_seconds: Histogram,
    append_events: Histogram,
    group_appends: Histogram,
    log_head_position: Gauge,
    projection_checkpoint: Gauge,
    projection_lag_events: Gauge,
    projection_lag_seconds: SecondsGauge,
    read_models_up: Gauge,
    open_refunds: Family<Labels, Gauge>,
    open_refund_oldest: Family<Labels, SecondsGauge>,
    expensive_queries_running: Gauge,
}

/// What the scrape reads from the store and the read models.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ScrapeState {
    /// Last global position of the log.
    pub(crate) log_head_position: u64,
    /// Last position the read models reflect.
    pub(crate) projection_checkpoint: u64,
    /// How long the oldest event the read models lack has waited (zero when they are caught up).
    pub(crate) projection_lag: Duration,
    /// Open refunds by state and age; `None` when the read models could not be read.
    pub(crate) open_refunds: Option<OpenRefundStats>,
    /// When the open refunds were counted.
    pub(crate) now: Option<OffsetDateTime>,
    /// Expensive GraphQL queries running now.
    pub(crate) expensive_queries_running: usize,
}

/// Why a notification was refused (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotificationRefusal {
    /// Verification failed (signature, client id, time, body); the label says which check.
    Unverified(&'static str),
    /// Verified, but not applicable yet (its refund or payment is not known yet); Antom sends it again.
    NotApplicableYet,
    /// Verified, but applying it failed (store trouble).
    NotApplied,
}

impl NotificationRefusal {
    fn label(self) -> &'static str {
        match self {
            Self::Unverified(reason) => reason,
            Self::NotApplicableYet => "not_applicable_yet",
            Self::NotApplied => "not_applied",
        }
    }
}

/// Saturating conversion for gauges (i64 in the client library).
fn gauge_value(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs
        .into_iter()
        .map(|(name, value)| (name, value.to_owned()))
        .collect()
}

fn unix_seconds(time: OffsetDateTime) -> i64 {
    time.unix_timestamp()
}

fn antom_histogram() -> Histogram {
    Histogram::new(ANTOM_SECONDS_BUCKETS)
}

fn graphql_histogram() -> Histogram {
    Histogram::new(GRAPHQL_SECONDS_BUCKETS)
}

/// A result code as a label: the codes the ledger names (and its U code, `REFUND_IN_PROCESS`), `OTHER` for any
/// other (Antom may add codes; an unbounded label set is what this avoids).
fn code_label(code: &ResultCode) -> &str {
    match code {
        ResultCode::Other(code) if code == app::REFUND_IN_PROCESS => app::REFUND_IN_PROCESS,
        ResultCode::Other(_) => "OTHER",
        known => known.as_str(),
    }
}

/// An `extensions.code` as a label: upper-case words only, bounded, else `OTHER`.
fn error_code_label(code: Option<&str>) -> &str {
    match code {
        None => "NONE",
        Some(code)
            if !code.is_empty()
                && code.len() <= ERROR_CODE_CHARS_MAX
                && code.bytes().all(|byte| byte.is_ascii_uppercase() || byte == b'_') =>
        {
            code
        }
        Some(_) => "OTHER",
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every family registered.
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("refund_ledger");
        let http_requests = Counter::default();
        registry.register("http_requests", "HTTP requests served", http_requests.clone());
        let http_unauthorized = Counter::default();
        registry.register(
            "http_unauthorized",
            "requests refused for a missing or unknown key",
            http_unauthorized.clone(),
        );
        let graphql_requests = Counter::default();
        registry.register(
            "graphql_requests",
            "GraphQL operations executed",
            graphql_requests.clone(),
        );
        let graphql_errors = Family::<Labels, Counter>::default();
        registry.register(
            "graphql_errors",
            "errors in GraphQL responses, by extensions.code (NONE: no code, OTHER: an unexpected one)",
            graphql_errors.clone(),
        );
        let graphql_busy = Counter::default();
        registry.register(
            "graphql_busy",
            "expensive GraphQL queries refused with 429 because the most allowed were running",
            graphql_busy.clone(),
        );
        let graphql_seconds = HistogramFamily::new_with_constructor(graphql_histogram);
        registry.register_with_unit(
            "graphql_request_duration",
            "GraphQL request latency by operation type (query, mutation, subscription, invalid)",
            Unit::Seconds,
            graphql_seconds.clone(),
        );
        let notifications_accepted = Counter::default();
        registry.register(
            "notifications_accepted",
            "Antom notifications verified and applied",
            notifications_accepted.clone(),
        );
        let notifications_refused = Family::<Labels, Counter>::default();
        registry.register(
            "notifications_refused",
            "Antom notifications refused, by reason: verification (bad_signature, wrong_client, stale, \
             bad_request_time, missing_header, malformed_body, body_too_large, unknown_type) or not applicable \
             yet (not_applicable_yet, not_applied)",
            notifications_refused.clone(),
        );
        let refunds_decided = Family::<Labels, Counter>::default();
        registry.register(
            "refunds_decided",
            "refunds answered for the first time, by outcome (S, F, U) and result code",
            refunds_decided.clone(),
        );
        let refunds_settled = Family::<Labels, Counter>::default();
        registry.register(
            "refunds_settled",
            "refunds that became final, by status (SUCCEEDED, FAILED) and by whom (answer, worker, \
             notification, inquiry)",
            refunds_settled.clone(),
        );
        let anomalies = Family::<Labels, Counter>::default();
        registry.register(
            "anomalies",
            "reports contradicting a final refund (recorded, never applied), by kind and source",
            anomalies.clone(),
        );
        let conflict_retries = Counter::default();
        registry.register(
            "conflict_retries",
            "appends refused because another instance moved the payment's stream, decided again",
            conflict_retries.clone(),
        );
        let settle_worker_last_run = Gauge::default();
        registry.register(
            "settle_worker_last_run_timestamp_seconds",
            "when the settle worker last finished a pass (unix seconds; 0: not yet)",
            settle_worker_last_run.clone(),
        );
        let antom_seconds = HistogramFamily::new_with_constructor(antom_histogram);
        registry.register_with_unit(
            "antom_call_duration",
            "Antom call attempts, by API (refund, inquiryRefund) and outcome class (S, F, U, timeout, \
             transport, bad_signature)",
            Unit::Seconds,
            antom_seconds.clone(),
        );
        let antom_last_success = Gauge::default();
        registry.register(
            "antom_last_success_timestamp_seconds",
            "when Antom last gave a verified S or F answer (unix seconds; 0: not yet)",
            antom_last_success.clone(),
        );
        let append_seconds = Histogram::new(APPEND_SECONDS_BUCKETS);
        registry.register_with_unit(
            "eventlog_append_duration",
            "event-log append latency as the ledger waits for it (queue, group commit, fsync)",
            Unit::Seconds,
            append_seconds.clone(),
        );
        let append_events = Histogram::new(APPEND_EVENTS_BUCKETS);
        registry.register(
            "eventlog_append_events",
            "events per append (one payment's batch of decided commands)",
            append_events.clone(),
        );
        let group_appends = Histogram::new(GROUP_APPENDS_BUCKETS);
        registry.register(
            "eventlog_group_appends",
            "appends committed together in one group commit, observed once per append (a group of n counts n times)",
            group_appends.clone(),
        );
        let log_head_position = Gauge::default();
        registry.register(
            "log_head_position",
            "last global position of the event log",
            log_head_position.clone(),
        );
        let projection_checkpoint = Gauge::default();
        registry.register(
            "projection_checkpoint",
            "last position the read models reflect",
            projection_checkpoint.clone(),
        );
        let projection_lag_events = Gauge::default();
        registry.register(
            "projection_lag_events",
            "events the read models are behind the log",
            projection_lag_events.clone(),
        );
        let projection_lag_seconds = SecondsGauge::default();
        registry.register_with_unit(
            "projection_lag",
            "how long the oldest event the read models lack has been in the log (0: caught up)",
            Unit::Seconds,
            projection_lag_seconds.clone(),
        );
        let read_models_up = Gauge::default();
        registry.register(
            "read_models_up",
            "1 when this scrape could read the store and the read models, 0 when not (gauges then stale)",
            read_models_up.clone(),
        );
        let open_refunds = Family::<Labels, Gauge>::default();
        registry.register(
            "open_refunds",
            "refunds not final, by state (REQUESTED, PROCESSING) and age bucket",
            open_refunds.clone(),
        );
        let open_refund_oldest = Family::<Labels, SecondsGauge>::default();
        registry.register_with_unit(
            "open_refund_oldest_age",
            "age of the oldest refund not final, by state (0: none open)",
            Unit::Seconds,
            open_refund_oldest.clone(),
        );
        let expensive_queries_running = Gauge::default();
        registry.register(
            "graphql_expensive_queries_running",
            "expensive GraphQL queries running now",
            expensive_queries_running.clone(),
        );
        let families = Families {
            registry,
            http_requests,
            http_unauthorized,
            graphql_requests,
            graphql_errors,
            graphql_busy,
            graphql_seconds,
            notifications_accepted,
            notifications_refused,
            refunds_decided,
            refunds_settled,
            anomalies,
            conflict_retries,
            settle_worker_last_run,
            antom_seconds,
            antom_last_success,
            append_seconds,
            append_events,
            group_appends,
            log_head_position,
            projection_checkpoint,
            projection_lag_events,
            projection_lag_seconds,
            read_models_up,
            open_refunds,
            open_refund_oldest,
            expensive_queries_running,
        };
        // Series that alerts count increases of, or divide by, exist from the start at 0: `increase()` of a
        // series that appears with its first count would miss that count, and a rate would be absent rather
        // than 0 on a quiet instance. Each set is small and closed.
        for reason in NOTIFICATION_REFUSAL_REASONS {
            drop(
                families
                    .notifications_refused
                    .get_or_create(&labels([("reason", reason)])),
            );
        }
        for recorded in [
            RefundStatus::Requested,
            RefundStatus::Processing,
            RefundStatus::Succeeded,
            RefundStatus::Failed,
            RefundStatus::Rejected,
        ] {
            for reported_success in [true, false] {
                for source in [
                    OutcomeSource::RefundResponse,
                    OutcomeSource::Inquiry,
                    OutcomeSource::Notification,
                ] {
                    let kind = AnomalyKind {
                        recorded,
                        reported_success,
                        source,
                    };
                    drop(
                        families
                            .anomalies
                            .get_or_create(&labels([("kind", kind.as_str()), ("source", kind.source_str())])),
                    );
                }
            }
        }
        for api in [Api::Refund, Api::InquiryRefund] {
            for class in [
                CallClass::S,
                CallClass::F,
                CallClass::U,
                CallClass::Timeout,
                CallClass::Transport,
                CallClass::BadSignature,
            ] {
                drop(
                    families
                        .antom_seconds
                        .get_or_create(&labels([("api", api.as_str()), ("outcome", class.as_str())])),
                );
            }
        }
        for state in OPEN_STATES {
            for age in AGE_LABELS {
                drop(
                    families
                        .open_refunds
                        .get_or_create(&labels([("state", state), ("age", age)])),
                );
            }
            drop(families.open_refund_oldest.get_or_create(&labels([("state", state)])));
        }
        Self {
            inner: Arc::new(families),
        }
    }

    pub(crate) fn http_request(&self) {
        self.inner.http_requests.inc();
    }

    pub(crate) fn unauthorized(&self) {
        self.inner.http_unauthorized.inc();
    }

    /// One executed GraphQL operation of `operation` type that took `elapsed`, with its errors' codes.
    pub(crate) fn graphql_request<'a>(
        &self,
        operation: &str,
        elapsed: Duration,
        error_codes: impl IntoIterator<Item = Option<&'a str>>,
    ) {
        self.inner.graphql_requests.inc();
        self.inner
            .graphql_seconds
            .get_or_create(&labels([("operation", operation)]))
            .observe(elapsed.as_secs_f64());
        for code in error_codes {
            self.inner
                .graphql_errors
                .get_or_create(&labels([("code", error_code_label(code))]))
                .inc();
        }
    }

    pub(crate) fn expensive_query_refused(&self) {
        self.inner.graphql_busy.inc();
    }

    pub(crate) fn notification_accepted(&self) {
        self.inner.notifications_accepted.inc();
    }

    pub(crate) fn notification_refused(&self, refusal: NotificationRefusal) {
        self.inner
            .notifications_refused
            .get_or_create(&labels([("reason", refusal.label())]))
            .inc();
    }

    fn appended(&self, events: usize, group_appends: usize, elapsed: Duration) {
        self.inner.append_seconds.observe(elapsed.as_secs_f64());
        // A group holds at most eventlog's group bound of appends; f64 holds it exactly.
        self.inner.group_appends.observe(group_appends as f64);
        // Event counts per append are at most eventlog::BATCH_EVENTS_MAX; f64 holds them exactly.
        self.inner.append_events.observe(events as f64);
    }

    /// The exposition text, with the scrape-time gauges set from `state`.
    pub(crate) fn render(&self, state: &ScrapeState) -> String {
        let families = &self.inner;
        families.log_head_position.set(gauge_value(state.log_head_position));
        families
            .projection_checkpoint
            .set(gauge_value(state.projection_checkpoint));
        families.projection_lag_events.set(gauge_value(
            state.log_head_position.saturating_sub(state.projection_checkpoint),
        ));
        families.projection_lag_seconds.set(state.projection_lag.as_secs_f64());
        families.expensive_queries_running.set(gauge_value(
            u64::try_from(state.expensive_queries_running).unwrap_or(u64::MAX),
        ));
        match (state.open_refunds, state.now) {
            (Some(stats), Some(now)) => {
                families.read_models_up.set(1);
                self.set_open_refunds(&stats, now);
            }
            _ => {
                families.read_models_up.set(0);
            }
        }
        let mut text = String::new();
        // Writing into a String cannot fail; an encoder error would mean a family is broken, and an empty
        // scrape (the target shows as failing) is better than a partial one.
        if let Err(error) = prometheus_text::encode(&mut text, &families.registry) {
            tracing::error!(%error, "encoding the metrics failed");
            text.clear();
        }
        text
    }

    fn set_open_refunds(&self, stats: &OpenRefundStats, now: OffsetDateTime) {
        let states: [(&str, &OpenRefundAges); 2] =
            [(OPEN_STATES[0], &stats.requested), (OPEN_STATES[1], &stats.processing)];
        for (state, ages) in states {
            for (age, count) in AGE_LABELS.iter().zip(ages.counts) {
                self.inner
                    .open_refunds
                    .get_or_create(&labels([("state", state), ("age", age)]))
                    .set(gauge_value(count));
            }
            let oldest = ages
                .oldest_requested_at
                .map(|requested_at| (now - requested_at).as_seconds_f64().max(0.0))
                .unwrap_or(0.0);
            self.inner
                .open_refund_oldest
                .get_or_create(&labels([("state", state)]))
                .set(oldest);
        }
    }
}

/// Every `reason` of a refused notification (`notify.rs` and [`NotificationRefusal`]).
const NOTIFICATION_REFUSAL_REASONS: [&str; 10] = [
    "missing_header",
    "wrong_client",
    "bad_signature",
    "bad_request_time",
    "stale",
    "body_too_large",
    "malformed_body",
    "unknown_type",
    "not_applicable_yet",
    "not_applied",
];

/// The `state` labels of open refunds.
const OPEN_STATES: [&str; 2] = ["REQUESTED", "PROCESSING"];

impl Observer for Metrics {
    fn refund_decided(&self, status: ResultStatus, code: &ResultCode) {
        let outcome = match status {
            ResultStatus::S => "S",
            ResultStatus::F => "F",
            ResultStatus::U => "U",
        };
        self.inner
            .refunds_decided
            .get_or_create(&labels([("outcome", outcome), ("result_code", code_label(code))]))
            .inc();
    }

    fn refund_settled(&self, status: RefundStatus, by: SettledBy) {
        let status = projections::fold::refund_status_code(status);
        self.inner
            .refunds_settled
            .get_or_create(&labels([("status", status), ("by", by.as_str())]))
            .inc();
    }

    fn anomaly_recorded(&self, kind: AnomalyKind) {
        self.inner
            .anomalies
            .get_or_create(&labels([("kind", kind.as_str()), ("source", kind.source_str())]))
            .inc();
    }

    fn conflict_retry(&self) {
        self.inner.conflict_retries.inc();
    }

    fn settle_pass(&self, _report: &SettleReport) {
        self.inner
            .settle_worker_last_run
            .set(unix_seconds(OffsetDateTime::now_utc()));
    }
}

impl CallObserver for Metrics {
    fn antom_call(&self, api: Api, class: CallClass, elapsed: Duration) {
        self.inner
            .antom_seconds
            .get_or_create(&labels([("api", api.as_str()), ("outcome", class.as_str())]))
            .observe(elapsed.as_secs_f64());
        if matches!(class, CallClass::S | CallClass::F) {
            self.inner
                .antom_last_success
                .set(unix_seconds(OffsetDateTime::now_utc()));
        }
    }
}

/// The ledger's event store, its appends timed and counted.
pub(crate) struct ObservedStore {
    inner: Arc<dyn EventStore>,
    metrics: Metrics,
}

impl ObservedStore {
    pub(crate) fn wrap(inner: Arc<dyn EventStore>, metrics: Metrics) -> Arc<dyn EventStore> {
        Arc::new(Self { inner, metrics })
    }
}

#[async_trait]
impl EventStore for ObservedStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let count = events.len();
        let started = Instant::now();
        let outcome = self.inner.append(stream, expected, events).await;
        if let Ok(appended) = &outcome {
            self.metrics.appended(count, appended.group_appends, started.elapsed());
        }
        outcome
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from_revision: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, from_revision, limit).await
    }

    async fn read_all(&self, from_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(from_position, limit).await
    }

    async fn open_scan(&self, from_position: u64, to_position: u64) -> Result<Option<ScanReceiver>, StoreError> {
        self.inner.open_scan(from_position, to_position).await
    }

    async fn head(&self) -> Result<Head, StoreError> {
        self.inner.head().await
    }

    async fn wait_for_position_after(&self, position: u64, timeout: Duration) -> Result<Head, StoreError> {
        self.inner.wait_for_position_after(position, timeout).await
    }

    fn local_commits(&self) -> Option<tokio::sync::broadcast::Receiver<LocalCommit>> {
        self.inner.local_commits()
    }

    fn layout(&self) -> LogLayout {
        self.inner.layout()
    }
}

/// Reads what the scrape-time gauges show. A store or read-model failure is logged and leaves the read-model
/// gauges out (`read_models_up` 0); the counters are served all the same.
pub(crate) async fn scrape_state(
    store: &dyn EventStore,
    read_models: &dyn projections::ReadModels,
    expensive_queries_running: usize,
) -> ScrapeState {
    let now = OffsetDateTime::now_utc();
    let read = async {
        let head = store.head().await.map_err(|error| error.to_string())?;
        let checkpoint = read_models.checkpoint().await.map_err(|error| error.to_string())?;
        let lag = if head.position > checkpoint {
            // The oldest event the read models lack: the next one after the checkpoint.
            let next = store
                .read_all(checkpoint.saturating_add(1), 1)
                .await
                .map_err(|error| error.to_string())?;
            next.first()
                .map(|event| Duration::try_from(now - event.recorded_at).unwrap_or_default())
                .unwrap_or_default()
        } else {
            Duration::ZERO
        };
        let open = read_models
            .open_refund_stats(now)
            .await
            .map_err(|error| error.to_string())?;
        Ok::<_, String>((head.position, checkpoint, lag, open))
    };
    match read.await {
        Ok((log_head_position, projection_checkpoint, projection_lag, open)) => ScrapeState {
            log_head_position,
            projection_checkpoint,
            projection_lag,
            open_refunds: Some(open),
            now: Some(now),
            expensive_queries_running,
        },
        Err(error) => {
            tracing::warn!(%error, "metrics: the store or the read models could not be read");
            ScrapeState {
                expensive_queries_running,
                ..ScrapeState::default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_lag() {
        let metrics = Metrics::default();
        metrics.http_request();
        metrics.graphql_request("query", Duration::from_millis(3), [Some("BAD_USER_INPUT"), None]);
        metrics.expensive_query_refused();
        metrics.notification_refused(NotificationRefusal::Unverified("bad_signature"));
        metrics.notification_refused(NotificationRefusal::Unverified("bad_signature"));
        metrics.notification_refused(NotificationRefusal::NotApplicableYet);
        let text = metrics.render(&ScrapeState {
            log_head_position: 10,
            projection_checkpoint: 7,
            projection_lag: Duration::from_millis(1_500),
            expensive_queries_running: 2,
            ..ScrapeState::default()
        });
        assert!(text.contains("refund_ledger_http_requests_total 1\n"), "{text}");
        assert!(
            text.contains("refund_ledger_graphql_errors_total{code=\"BAD_USER_INPUT\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("refund_ledger_graphql_errors_total{code=\"NONE\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "refund_ledger_graphql_request_duration_seconds_bucket{le=\"0.005\",operation=\"query\"} 1\n"
            ) || text.contains(
                "refund_ledger_graphql_request_duration_seconds_bucket{operation=\"query\",le=\"0.005\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("refund_ledger_projection_lag_events 3\n"), "{text}");
        assert!(text.contains("refund_ledger_projection_lag_seconds 1.5\n"), "{text}");
        assert!(text.contains("refund_ledger_read_models_up 0\n"), "{text}");
        assert!(text.contains("refund_ledger_graphql_busy_total 1\n"), "{text}");
        assert!(
            text.contains("refund_ledger_graphql_expensive_queries_running 2\n"),
            "{text}"
        );
        assert!(
            text.contains("refund_ledger_notifications_refused_total{reason=\"bad_signature\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("refund_ledger_notifications_refused_total{reason=\"not_applicable_yet\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn observers_count_with_bounded_labels() {
        let metrics = Metrics::default();
        metrics.refund_decided(ResultStatus::F, &ResultCode::Other("CODE_FROM_2031".to_owned()));
        metrics.refund_decided(ResultStatus::U, &ResultCode::parse(app::REFUND_IN_PROCESS));
        metrics.refund_settled(RefundStatus::Succeeded, SettledBy::Worker);
        metrics.antom_call(Api::InquiryRefund, CallClass::Timeout, Duration::from_secs(20));
        metrics.antom_call(Api::Refund, CallClass::S, Duration::from_millis(80));
        let text = metrics.render(&ScrapeState::default());
        assert!(
            text.contains("refund_ledger_refunds_decided_total{outcome=\"F\",result_code=\"OTHER\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("refund_ledger_refunds_decided_total{outcome=\"U\",result_code=\"REFUND_IN_PROCESS\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("refund_ledger_refunds_settled_total{status=\"SUCCEEDED\",by=\"worker\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "refund_ledger_antom_call_duration_seconds_count{api=\"inquiryRefund\",outcome=\"timeout\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            !text.contains("refund_ledger_antom_last_success_timestamp_seconds 0\n"),
            "{text}"
        );
    }

    #[test]
    fn open_refunds_by_state_and_age() {
        let metrics = Metrics::default();
        let now = time::macros::datetime!(2026-12-01 12:00 UTC);
        let stats = OpenRefundStats {
            requested: OpenRefundAges::default(),
            processing: OpenRefundAges {
                counts: [2, 0, 0, 1, 0, 0],
                oldest_requested_at: Some(now - time::Duration::minutes(20)),
            },
        };
        let text = metrics.render(&ScrapeState {
            open_refunds: Some(stats),
            now: Some(now),
            ..ScrapeState::default()
        });
        assert!(
            text.contains("refund_ledger_open_refunds{state=\"PROCESSING\",age=\"lt_1m\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("refund_ledger_open_refunds{state=\"PROCESSING\",age=\"15m_1h\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("refund_ledger_open_refunds{state=\"REQUESTED\",age=\"ge_1d\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("refund_ledger_open_refund_oldest_age_seconds{state=\"PROCESSING\"} 1200.0\n"),
            "{text}"
        );
        assert!(text.contains("refund_ledger_read_models_up 1\n"), "{text}");
    }

    #[test]
    fn error_codes_outside_the_pattern_are_other() {
        assert_eq!(error_code_label(Some("UNAUTHENTICATED")), "UNAUTHENTICATED");
        assert_eq!(error_code_label(Some("x\"} 1\nfake 2")), "OTHER");
        assert_eq!(error_code_label(Some(&"A".repeat(ERROR_CODE_CHARS_MAX + 1))), "OTHER");
        assert_eq!(error_code_label(None), "NONE");
    }
}
