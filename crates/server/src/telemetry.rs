//! Logs and traces. Logs: every span and event through `tracing` to stderr, filtered by `RUST_LOG`, as lines
//! or JSON. Traces, when `OTEL_EXPORTER_OTLP_ENDPOINT` names a collector: the spans at info level and above,
//! exported in batches over OTLP/HTTP with JSON bodies to `{endpoint}/v1/traces` (docs/adr/009). Off by
//! default.
//!
//! A refund's trace runs from the HTTP request through the saga, the payment queue's append and the Antom
//! call to the recorded answer; spans carry `refund_request_id` and `payment_id`, never an amount or a key.

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
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
    tracing_subscriber::registry().with(logs).with(traces).init();
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
