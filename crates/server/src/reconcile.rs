//! `refund-ledger reconcile FILE... [--format csv|jsonl] [--output FILE] [--actor NAME]`: reconciles Antom's
//! reports (a day's transaction details, or a settlement batch's details and summary) against the ledger with
//! [`app::reconciliation::reconcile_reports`], records the run in the log, prints a summary and writes the
//! findings. Exit 0 when everything matched, 1 when there are findings, 2 on unreadable input (nothing is
//! recorded then).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use app::reconciliation::{FileSource, ReportSource, RunOutcome, for_each_finding, reconcile_reports};
use audit::{Cell, Encoder, Format};
use domain::RecordedFinding;
use time::OffsetDateTime;

use crate::verify::Verdict;

/// The columns of the findings file.
pub(crate) const FINDING_COLUMNS: &[&str] = &[
    "runId",
    "seq",
    "kind",
    "file",
    "line",
    "refundRequestId",
    "refundId",
    "reportCurrency",
    "reportAmount",
    "ledgerPosition",
    "ledgerStatus",
    "ledgerAmount",
    "reportStatus",
    "settlementDate",
    "settlementCurrency",
    "settlementAmount",
    "convertedCurrency",
    "convertedAmount",
    "fees",
    "quoteCurrencyPair",
    "quotePrice",
    "message",
];

/// A finding's fee cells as one field: `kind currency minorUnits` per fee, `;` between fees
/// (`paymentMethodFee EUR -28;taxFee EUR -5`), in the report's column order.
fn fees_text(settlement: &domain::RecordedSettlement) -> String {
    settlement
        .fees
        .iter()
        .map(|fee| format!("{} {} {}", fee.kind, fee.amount.currency, fee.amount.value))
        .collect::<Vec<_>>()
        .join(";")
}

/// How long the command waits for the read models to reach the log's head before it reconciles.
const READ_MODELS_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Encoded findings buffered before a write.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// The CLI's arguments of `reconcile`.
#[derive(Debug)]
pub(crate) struct ReconcileArgs<'a> {
    pub(crate) files: &'a [PathBuf],
    pub(crate) format: &'a str,
    pub(crate) output: Option<&'a Path>,
    pub(crate) actor: Option<&'a str>,
}

/// `refund-ledger reconcile`.
pub(crate) async fn run(settings: &crate::config::Settings, args: ReconcileArgs<'_>) -> anyhow::Result<Verdict> {
    let format: Format = args.format.parse()?;
    let actor = match args.actor {
        Some(actor) => actor.to_owned(),
        None => format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned())),
    };
    let store = crate::store::open(&settings.store).await?;
    // The run reads the ledger from the read models at the log's head: a runner of this process brings them
    // there (standing by when a service already runs one) and then stops, so it does not fold the run's own
    // findings chunks beside it (a service's runner does that).
    let projection_store = crate::store::open_projection_store(settings).await?;
    let (stop_runner, runner_stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = projections::ProjectionRunner::start(Arc::clone(&store), Arc::clone(&projection_store), async {
        runner_stopped.await.unwrap_or(());
    });
    let read_models = projection_store.into_read_models();
    let head = store.head().await?.position;
    let caught_up = read_models.wait_for_position(head, READ_MODELS_WAIT).await?;
    // A runner that already stopped says why in its error; either way the run waits for the head itself.
    let _ = stop_runner.send(());
    if let Err(error) = runner.join().await {
        tracing::warn!(%error, "the projection runner of this command stopped with an error");
    }
    if !caught_up {
        anyhow::bail!(
            "the read models did not reach the log's head (position {head}) within {} s",
            READ_MODELS_WAIT.as_secs()
        );
    }
    let ledger = crate::gateway::cli_ledger(settings, Arc::clone(&store), Arc::clone(&read_models)).await;
    let sources: Vec<Arc<dyn ReportSource>> = args
        .files
        .iter()
        .map(|path| Arc::new(FileSource::new(path.clone())) as Arc<dyn ReportSource>)
        .collect();
    let outcome = reconcile_reports(
        Arc::clone(&store),
        read_models.as_ref(),
        ledger.as_ref(),
        sources,
        &actor,
        OffsetDateTime::now_utc(),
    )
    .await?;
    // The findings as recorded, read back from the log chunk by chunk and written as they come.
    let mut out: Box<dyn Write> = match args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let encoder = Encoder::new(format, FINDING_COLUMNS);
    let mut buffer = Vec::new();
    encoder.header(&mut buffer);
    let mut written = Ok(());
    for_each_finding(store.as_ref(), &outcome.recorded, |finding| {
        encode_finding(&encoder, &outcome.recorded.run_id, finding, &mut buffer);
        if buffer.len() >= WRITE_BUFFER_BYTES && written.is_ok() {
            written = out.write_all(&buffer);
            buffer.clear();
        }
    })
    .await?;
    written
        .and_then(|()| out.write_all(&buffer))
        .and_then(|()| out.flush())
        .context("writing the findings")?;
    drop(out);
    let summary = summary(&outcome);
    if args.output.is_some() {
        std::io::stdout().lock().write_all(summary.as_bytes())?;
    } else {
        std::io::stderr().lock().write_all(summary.as_bytes())?;
    }
    Ok(if outcome.discrepancies() == 0 {
        Verdict::Intact
    } else {
        Verdict::Broken
    })
}

/// A few lines for people: the run, its files, the counts.
pub(crate) fn summary(outcome: &RunOutcome) -> String {
    let run = &outcome.recorded;
    let mut text = format!(
        "reconciliation {} ({}) recorded at position {}, ledger read at position {}\n",
        run.run_id, run.report_kind, outcome.position, run.ledger_position
    );
    if let Some(day) = &run.period {
        text.push_str(&format!("  day: {day}\n"));
    }
    if let Some(batch) = &run.settlement_batch_id {
        text.push_str(&format!("  settlement batch: {batch}\n"));
    }
    for file in &run.files {
        text.push_str(&format!(
            "  file {} ({} {}, {} rows, sha256 {})\n",
            file.name, file.report_kind, file.generation, file.rows, file.sha256
        ));
        for warning in &file.warnings {
            text.push_str(&format!("    warning: {warning}\n"));
        }
    }
    for (kind, count) in &run.counts {
        text.push_str(&format!("  {kind}: {count}\n"));
    }
    for (row_type, count) in &run.other_rows {
        text.push_str(&format!("  rows of type {row_type} (not reconciled): {count}\n"));
    }
    text.push_str(&format!(
        "  {} findings, {} discrepancies\n",
        run.findings_count,
        outcome.discrepancies()
    ));
    let (not_settled, no_anomaly) = outcome.left_undone();
    if not_settled > 0 {
        text.push_str(&format!(
            "  no Antom gateway configured: {not_settled} LEDGER_PENDING refund(s) NOT settled by this run; the settle \
             worker of a running service, or a later run with REFUND_LEDGER_ANTOM_* set, will settle them\n"
        ));
    }
    if no_anomaly > 0 {
        text.push_str(&format!(
            "  no Antom gateway configured: {no_anomaly} finding(s) whose RefundOutcomeAnomaly was NOT recorded by \
             this run; upload the report (POST /reconciliations) or run again with REFUND_LEDGER_ANTOM_* set to \
             record them\n"
        ));
    }
    text
}

fn encode_finding(encoder: &Encoder, run_id: &str, finding: &RecordedFinding, out: &mut Vec<u8>) {
    let ledger_amount = finding.ledger_amount.map(|amount| amount.minor_units().to_string());
    let number = |value: Option<u64>| value.map_or(Cell::Missing, Cell::Number);
    let settlement = finding.settlement.as_ref();
    let converted = settlement.and_then(|settlement| settlement.converted.as_ref());
    let quote = settlement.and_then(|settlement| settlement.quote.as_ref());
    let fees = settlement.map(fees_text).filter(|text| !text.is_empty());
    let pair = quote.map(|quote| format!("{}/{}", quote.base, quote.quote));
    encoder.row(
        out,
        &[
            Cell::Text(run_id),
            Cell::Number(finding.seq),
            Cell::Text(&finding.kind),
            finding.file.as_deref().into(),
            number(finding.line),
            finding.refund_request_id.as_deref().into(),
            finding.refund_id.as_deref().into(),
            finding
                .report_amount
                .as_ref()
                .map(|amount| amount.currency.as_str())
                .into(),
            finding
                .report_amount
                .as_ref()
                .map(|amount| amount.value.as_str())
                .into(),
            number(finding.ledger_position),
            finding.ledger_status.map(|status| status.as_str()).into(),
            ledger_amount.as_deref().into(),
            finding.report_status.as_deref().into(),
            settlement.and_then(|settlement| settlement.date.as_deref()).into(),
            settlement.map(|settlement| settlement.amount.currency.as_str()).into(),
            settlement.map(|settlement| settlement.amount.value.as_str()).into(),
            converted.map(|amount| amount.currency.as_str()).into(),
            converted.map(|amount| amount.value.as_str()).into(),
            fees.as_deref().into(),
            pair.as_deref().into(),
            quote.map(|quote| quote.price.as_str()).into(),
            Cell::Text(&finding.message),
        ],
    );
}

/// The query string of `POST /reconciliations`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct UploadQuery {
    /// The report's file name as Antom named it (it says what the file is and which day); without it the
    /// kind is read from the header row. Only for a single-file body: multipart parts carry their own names.
    name: Option<String>,
}

/// Most files one upload may carry (a day or a batch split in parts, plus a summary).
pub(crate) const UPLOAD_FILES_MAX: usize = 1_000;

/// An error answer of the upload: `status`, a GraphQL-style body with `code` and `message`.
fn upload_error(status: axum::http::StatusCode, code: &str, message: String) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, axum::Json(body)).into_response()
}

/// Whether `name` may name an uploaded file: 1 to 255 bytes, no path separators or line breaks.
fn valid_file_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && !name.contains(['/', '\\', '\n', '\r'])
}

const FILE_NAME_RULE: &str = "a file name of 1 to 255 bytes without path separators or line breaks";

/// The files of an upload: the body as one file named by `?name=`, or, for `multipart/form-data`, one file per
/// part, named by the part's `filename`. An error answer when the body cannot be read or a name is refused.
async fn upload_files(
    state: &crate::state::AppState,
    name: Option<String>,
    request: axum::extract::Request,
) -> Result<Vec<Arc<dyn ReportSource>>, axum::response::Response> {
    use axum::extract::FromRequest as _;
    use axum::http::StatusCode;

    let multipart = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    let too_large = || crate::state::payload_too_large(state.report_bytes_max);
    let unreadable = |reason: String| {
        upload_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            format!("the request body could not be read: {reason}"),
        )
    };
    let bad_name = |field: String| {
        upload_error(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            format!("{field}: {FILE_NAME_RULE}"),
        )
    };
    if !multipart {
        let name = name.unwrap_or_else(|| "upload.csv".to_owned());
        if !valid_file_name(&name) {
            return Err(bad_name("name".to_owned()));
        }
        let body = match axum::body::Bytes::from_request(request, state).await {
            Ok(body) => body,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(rejection) => return Err(unreadable(rejection.to_string())),
        };
        return Ok(vec![Arc::new(app::reconciliation::BytesSource::new(
            name,
            Arc::from(&body[..]),
        ))]);
    }
    let mut form = match axum::extract::Multipart::from_request(request, state).await {
        Ok(form) => form,
        Err(rejection) => return Err(unreadable(rejection.to_string())),
    };
    let mut files: Vec<Arc<dyn ReportSource>> = Vec::new();
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) if error.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(error) => return Err(unreadable(error.body_text())),
        };
        let part = files.len() + 1;
        let Some(name) = field
            .file_name()
            .map(str::to_owned)
            .filter(|name| valid_file_name(name))
        else {
            return Err(bad_name(format!("part {part} filename")));
        };
        if files.iter().any(|file| file.name() == name) {
            return Err(upload_error(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                format!("part {part} filename: {name} is in the upload twice"),
            ));
        }
        if files.len() == UPLOAD_FILES_MAX {
            return Err(upload_error(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                format!("at most {UPLOAD_FILES_MAX} files per upload"),
            ));
        }
        let bytes = match field.bytes().await {
            Ok(bytes) => bytes,
            Err(error) if error.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(error) => return Err(unreadable(error.body_text())),
        };
        files.push(Arc::new(app::reconciliation::BytesSource::new(
            name,
            Arc::from(&bytes[..]),
        )));
    }
    if files.is_empty() {
        return Err(upload_error(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "the multipart body has no file part".to_owned(),
        ));
    }
    Ok(files)
}

/// `POST /reconciliations` (admin only; up to `[limits] report_bytes_max` in all): reconciles Antom's report
/// files, either one file as the body (`?name=FILE`) or several as `multipart/form-data`, one part per file with
/// its `filename` (a settlement batch's details and summary in one run), records the run and answers 201 with its
/// id, position, counts and files. A file that cannot be read (cut before `<END>`, malformed), or files that do
/// not make one run, are a 422 naming the file: nothing is recorded.
#[tracing::instrument(skip(state, request))]
pub(crate) async fn upload(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
    axum::extract::Query(query): axum::extract::Query<UploadQuery>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse as _;

    let Some(principal) = state.principal(request.headers()) else {
        return state.unauthenticated();
    };
    let error = upload_error;
    if principal.role < graphql::Role::Admin {
        return error(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "reconciling a report needs the admin role".to_owned(),
        );
    }
    let sources = match upload_files(&state, query.name, request).await {
        Ok(sources) => sources,
        Err(refused) => return refused,
    };
    tracing::info!(actor = %principal.name, files = sources.len(), "reconciliation upload");
    match reconcile_reports(
        Arc::clone(&state.store),
        state.read_models.as_ref(),
        Some(&state.ledger),
        sources,
        &principal.name,
        OffsetDateTime::now_utc(),
    )
    .await
    {
        Ok(outcome) => {
            let body = serde_json::json!({
                "runId": outcome.recorded.run_id,
                "position": outcome.position,
                "reportKind": outcome.recorded.report_kind,
                "files": outcome.recorded.files.iter().map(|file| file.name.as_str()).collect::<Vec<_>>(),
                "counts": outcome.recorded.counts,
                "findingsCount": outcome.recorded.findings_count,
                "discrepancies": outcome.discrepancies(),
            });
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        Err(app::reconciliation::ReconciliationError::Store(store_error)) => {
            tracing::error!(error = %store_error, "reconciliation not recorded");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "STORE_UNAVAILABLE",
                format!("the run was not recorded: event store: {store_error}"),
            )
        }
        Err(
            unreadable @ (app::reconciliation::ReconciliationError::Report(_)
            | app::reconciliation::ReconciliationError::Files(_)),
        ) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "REPORT_UNREADABLE",
            unreadable.to_string(),
        ),
        Err(internal) => {
            tracing::error!(error = %internal, "reconciliation failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", internal.to_string())
        }
    }
}
