//! Exports at the edge: `refund-ledger export journal|refunds [--format csv|jsonl] [--from T] [--to T]
//! [--currency C] [--output FILE]` and `GET /exports/{journal|refunds}.{csv|jsonl}?from=&to=&currency=`
//! (any key, viewer and up). Both stream the chunks [`audit::JournalExport`] and [`audit::RefundsExport`]
//! produce, one bounded batch at a time, straight to the file, stdout or the HTTP body.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use audit::{Accounts, AuditError, ExportFilter, Format, JournalExport, RefundsExport};
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::Currency;
use eventlog::EventStore;
use projections::ReadModels;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

use crate::state::AppState;
use crate::store;

/// Bytes buffered before a write to the output file or stdout.
const OUTPUT_BUFFER_BYTES: usize = 1024 * 1024;

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExportKind {
    /// Double-entry journal lines of succeeded refunds, from the log.
    Journal,
    /// One row per refund with its current status, from the read models.
    Refunds,
}

/// A running export of either kind.
enum Export {
    Journal(JournalExport),
    Refunds(RefundsExport),
}

impl Export {
    fn new(
        kind: ExportKind,
        store: Arc<dyn EventStore>,
        read_models: Arc<dyn ReadModels>,
        format: Format,
        accounts: Accounts,
        filter: ExportFilter,
    ) -> Export {
        match kind {
            ExportKind::Journal => Export::Journal(JournalExport::new(store, format, accounts, filter)),
            ExportKind::Refunds => Export::Refunds(RefundsExport::new(read_models, format, filter)),
        }
    }

    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, AuditError> {
        match self {
            Export::Journal(export) => export.next_chunk().await,
            Export::Refunds(export) => export.next_chunk().await,
        }
    }
}

/// `T` as RFC 3339 (`2026-11-01T00:00:00Z`) or a UTC date (`2026-11-01`, its midnight).
pub(crate) fn parse_time(field: &'static str, text: &str) -> Result<OffsetDateTime, AuditError> {
    if let Ok(time) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(time);
    }
    Date::parse(text, time::macros::format_description!("[year]-[month]-[day]"))
        .map(|date| date.midnight().assume_utc())
        .map_err(|_| AuditError::BadInput {
            field,
            reason: format!("expected an RFC 3339 time or a date like 2026-11-01, got {text:?}"),
        })
}

/// The filter from the textual arguments both edges take.
pub(crate) fn parse_filter(
    from: Option<&str>,
    to: Option<&str>,
    currency: Option<&str>,
) -> Result<ExportFilter, AuditError> {
    Ok(ExportFilter {
        from: from.map(|text| parse_time("from", text)).transpose()?,
        to: to.map(|text| parse_time("to", text)).transpose()?,
        currency: currency
            .map(|code| {
                Currency::parse("currency", code).map_err(|error| AuditError::BadInput {
                    field: "currency",
                    reason: error.to_string(),
                })
            })
            .transpose()?,
    })
}

/// The CLI's arguments of `export`.
#[derive(Debug)]
pub(crate) struct ExportArgs<'a> {
    pub(crate) kind: ExportKind,
    pub(crate) format: &'a str,
    pub(crate) from: Option<&'a str>,
    pub(crate) to: Option<&'a str>,
    pub(crate) currency: Option<&'a str>,
    pub(crate) output: Option<&'a Path>,
}

/// `refund-ledger export`: streams the export to `--output` or stdout.
pub(crate) async fn run(settings: &crate::config::Settings, args: ExportArgs<'_>) -> anyhow::Result<()> {
    let format: Format = args.format.parse()?;
    let filter = parse_filter(args.from, args.to, args.currency)?;
    let store = store::open(&settings.store).await?;
    let read_models = store::open_projection_store(settings).await?.into_read_models();
    let mut export = Export::new(args.kind, store, read_models, format, settings.accounts.clone(), filter);
    let sink: Box<dyn Write> = match args.output {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating the output file {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut sink = std::io::BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, sink);
    let mut bytes = 0_usize;
    while let Some(chunk) = export.next_chunk().await.context("exporting")? {
        sink.write_all(&chunk).context("writing the export")?;
        bytes += chunk.len();
    }
    sink.flush().context("writing the export")?;
    tracing::info!(kind = ?args.kind, bytes, "export written");
    Ok(())
}

/// The query string of `GET /exports/...`.
#[derive(Debug, Deserialize)]
pub(crate) struct ExportQuery {
    from: Option<String>,
    to: Option<String>,
    currency: Option<String>,
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response()
}

/// `GET /exports/{journal|refunds}.{csv|jsonl}`: streams the export as the response body.
#[tracing::instrument(skip(state, headers, query))]
pub(crate) async fn download(
    State(state): State<AppState>,
    UrlPath(file): UrlPath<String>,
    headers: HeaderMap,
    Query(query): Query<ExportQuery>,
) -> Response {
    let Some(principal) = state.principal(&headers) else {
        return state.unauthenticated();
    };
    let Some((kind, format)) = file.split_once('.') else {
        return bad_request("expected /exports/{journal|refunds}.{csv|jsonl}");
    };
    let kind = match kind {
        "journal" => ExportKind::Journal,
        "refunds" => ExportKind::Refunds,
        _ => return (StatusCode::NOT_FOUND, "no such export\n").into_response(),
    };
    let format: Format = match format.parse() {
        Ok(format) => format,
        Err(_) => return (StatusCode::NOT_FOUND, "no such export format\n").into_response(),
    };
    let filter = match parse_filter(query.from.as_deref(), query.to.as_deref(), query.currency.as_deref()) {
        Ok(filter) => filter,
        Err(error) => return bad_request(&error.to_string()),
    };
    tracing::info!(actor = %principal.name, ?kind, "export requested");
    let export = Export::new(
        kind,
        state.store.clone(),
        state.read_models.clone(),
        format,
        state.accounts.clone(),
        filter,
    );
    let chunks = futures_util::stream::unfold(Some(export), |export| async move {
        let mut export = export?;
        match export.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(Bytes::from(chunk)), Some(export))),
            Ok(None) => None,
            Err(error) => {
                // The status is sent already: cutting the body short is how the client learns of it.
                tracing::error!(error = %error, "export failed midway");
                Some((Err(error), None))
            }
        }
    });
    let disposition = format!("attachment; filename=\"{file}\"");
    (
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(chunks),
    )
        .into_response()
}
