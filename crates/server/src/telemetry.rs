//! Logs and traces. Logs: every span and event through `tracing` to stderr, filtered by `RUST_LOG`, as lines
//! or JSON. Traces, when `OTEL_EXPORTER_OTLP_ENDPOINT` names a collector: the spans at info level and above,
//! exported in batches over OTLP/HTTP with JSON bodies to `{endpoint}/v1/traces` (docs/adr/009). Off by
//! default.
//!
//! A refund's trace runs from the HTTP request through the saga, the payment queue's append and the Antom
//! call to the recorded answer; spans carry `refund_request_id` and `payment_id`, never an amount or a key.
//! Its settlement later (the worker's inquiry, a notification, an inquiry by hand) is on the same trace: every
//! unit of work about one refund starts its root span on the trace id derived from the refundRequestId
//! ([`join_refund_trace`]).

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use opentelemetry::trace::{TraceContextExt as _, TraceId, TracerProvider as _};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use sha2::{Digest as _, Sha256};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Level, Metadata, Subscriber};
use tracing_opentelemetry::OtelData;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::registry::{Extensions, ExtensionsMut, LookupSpan, Registry};
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// The `service.name` of the exported spans.
const SERVICE_NAME: &str = "refund-ledger";
/// Where OTLP/HTTP takes spans, below the endpoint (the OTLP exporter specification's path for traces).
const TRACES_PATH: &str = "/v1/traces";
/// What the logs show when `RUST_LOG` says nothing.
const LOG_FILTER_DEFAULT: &str = "info,tower_http=info";

/// The target of the HTTP request spans (`crate::http`), where a request's trace starts.
const HTTP_SPAN_TARGET: &str = "refund_ledger::http";
/// Spans that start or carry on a refund's trace outside a request: the settle worker settling one refund, and
/// a payment queue's batch (a child of its first command's span, given explicitly on another task).
const WORK_SPANS_OUTSIDE_REQUESTS: &[&str] = &["saga.settle", "payment_queue.batch"];

/// The span field naming a refund, whose root spans go on the refund's trace.
const REFUND_FIELD: &str = "refund_request_id";
/// Whether spans are exported (so that work only tracing needs is skipped otherwise).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// The installed subscriber's exporter, if any; [`Telemetry::shutdown`] sends what it still holds.
#[derive(Debug)]
pub(crate) struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Installs the global subscriber: the log layer and, with `otlp_endpoint`, the OTLP export. Call it before the
/// async runtime starts: the exporter's blocking HTTP client must not be built inside it.
pub(crate) fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(LOG_FILTER_DEFAULT));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Json => logs.json().with_filter(filter).boxed(),
        LogFormat::Pretty => logs.with_filter(filter).boxed(),
    };
    let provider = otlp_endpoint.map(tracer_provider).transpose()?;
    let traces = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(SERVICE_NAME))
            .with_filter(WorkTraces)
    });
    let refund_roots = provider.as_ref().map(|_| RefundTraceRoots);
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .with(refund_roots)
        .init();
    EXPORTING.store(provider.is_some(), Ordering::Relaxed);
    Ok(Telemetry { provider })
}

impl Telemetry {
    /// Exports the spans still waiting in the batch and stops the exporter. Call it outside the async runtime.
    pub(crate) fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(error) = provider.shutdown() {
                tracing::warn!(%error, "exporting the last spans failed");
            }
        }
    }
}

/// What is exported: spans and events at info level and above that belong to a unit of work, a request or a
/// refund settled by the worker, and nothing from the background loops (projection polls, the log's reads
/// for subscriptions, the in-process simulator of `--demo`), which would make a trace of each poll.
#[derive(Debug, Clone, Copy)]
struct WorkTraces;

impl<S> Filter<S> for WorkTraces
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn enabled(&self, metadata: &Metadata<'_>, context: &Context<'_, S>) -> bool {
        if *metadata.level() > Level::INFO {
            return false;
        }
        // `lookup_current` sees only spans this filter let through: a span is exported inside an exported one.
        !metadata.is_span()
            || context.lookup_current().is_some()
            || metadata.target() == HTTP_SPAN_TARGET
            || WORK_SPANS_OUTSIDE_REQUESTS.contains(&metadata.name())
    }
}

/// Whether spans are exported.
pub(crate) fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The trace id of every unit of work about refund `refund_request_id`: the first 16 bytes of a SHA-256 of it,
/// so that the request, the worker's inquiry hours later on another instance, and Antom's notification land on
/// one trace without the trace context being stored anywhere.
fn refund_trace_id(refund_request_id: &str) -> TraceId {
    let digest = Sha256::digest(format!("refund-ledger refund trace {refund_request_id}"));
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    TraceId::from_bytes(bytes)
}

/// Puts `span` on the trace of refund `refund_request_id` if it is exported as a root span. Call it before the
/// span has children (they take their trace id from it when they start).
pub(crate) fn join_refund_trace(span: &tracing::Span, refund_request_id: &str) {
    span.with_subscriber(|(id, dispatch)| {
        if let Some(span) = dispatch
            .downcast_ref::<Registry>()
            .and_then(|registry| registry.span(id))
        {
            join(&mut span.extensions_mut(), refund_request_id);
        }
    });
}

fn join(extensions: &mut ExtensionsMut<'_>, refund_request_id: &str) {
    if let Some(data) = extensions.get_mut::<OtelData>() {
        if !data.parent_cx.has_active_span() {
            data.builder.trace_id = Some(refund_trace_id(refund_request_id));
        }
    }
}

/// Puts every exported root span that names a refund in a `refund_request_id` field (the worker's
/// `saga.settle`) on that refund's trace as it starts. Installed after the exporting layer, which makes the
/// span's OpenTelemetry data first.
#[derive(Debug, Clone, Copy)]
struct RefundTraceRoots;

impl<S> Layer<S> for RefundTraceRoots
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: tracing_subscriber::layer::Context<'_, S>) {
        if attributes.metadata().fields().field(REFUND_FIELD).is_none() {
            return;
        }
        let Some(span) = context.span(id) else {
            return;
        };
        if !is_exported_root(&span.extensions()) {
            return;
        }
        let mut refund = RefundField(None);
        attributes.record(&mut refund);
        if let Some(refund_request_id) = refund.0 {
            join(&mut span.extensions_mut(), &refund_request_id);
        }
    }
}

fn is_exported_root(extensions: &Extensions<'_>) -> bool {
    extensions
        .get::<OtelData>()
        .is_some_and(|data| !data.parent_cx.has_active_span())
}

/// Reads the `refund_request_id` field of a span's attributes.
struct RefundField(Option<String>);

impl Visit for RefundField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == REFUND_FIELD {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == REFUND_FIELD {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// The batch pipeline to the collector at `endpoint` (OTLP/HTTP, JSON bodies).
fn tracer_provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let traces_url = format!("{}{TRACES_PATH}", endpoint.trim_end_matches('/'));
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(traces_url)
        .build()
        .with_context(|| format!("OTEL_EXPORTER_OTLP_ENDPOINT: cannot export spans to {endpoint:?}"))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(SERVICE_NAME).build())
        .build())
}
