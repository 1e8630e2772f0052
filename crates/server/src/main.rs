//! `refund-ledger`: the refund ledger's binary.
//!
//! - `serve [--demo]`: the GraphQL service (demo: embedded store, built-in Antom simulator, a printed key).
//! - `verify [--digest POSITION:HASH]`: verify the hash chain, positions and stream revisions of the whole log
//!   and print its digest (`check` is a hidden alias).
//! - `replay [--to-position N | --as-of TIME]`: rebuild the projections from the log and compare them with
//!   the read models.
//! - `rebuild`: rebuild every read model from the log in one transaction and swap it in with the checkpoint,
//!   while a running service keeps serving the old rows.
//! - `export journal|refunds [--format csv|jsonl] [--from T] [--to T] [--currency C] [--output FILE]`: the
//!   double-entry journal or the refunds report, streamed.
//! - `reconcile FILE... [--format csv|jsonl] [--output FILE] [--actor NAME]`: reconcile Antom's reports against
//!   the ledger, record the run, write the findings (exit 0 all matched, 1 findings, 2 unreadable input).
//! - `healthcheck [--url]`: exit 0 when the service answers `/healthz` (for container health checks).

mod auth;
mod config;
mod documents;
mod export;
mod gateway;
mod graphiql;
mod http;
mod metrics;
mod mirror;
mod notify;
mod rebuild;
mod reconcile;
mod replay;
mod startup;
mod state;
mod store;
mod telemetry;
mod verify;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

/// Longest wait of `healthcheck`.
const HEALTHCHECK_TIMEOUT_MS: u64 = 3_000;

#[derive(Debug, Parser)]
#[command(
    name = "refund-ledger",
    version,
    about = "An event-sourced refund ledger for Antom merchants"
)]
struct Cli {
    /// A TOML config file (also REFUND_LEDGER_CONFIG); REFUND_LEDGER_* variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// The event store, overriding the config: `sqlite://PATH` or `postgres://USER@HOST/DB`.
    #[arg(long, global = true)]
    store: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the GraphQL service.
    Serve {
        /// Use the built-in Antom simulator and print a demo operator key when none is configured.
        #[arg(long)]
        demo: bool,
    },
    /// Verify the hash chain, positions and stream revisions of the whole log and print its digest.
    ///
    /// Exit 0 when intact, 1 at the first bad position (printed with its stream), 2 on bad usage.
    #[command(alias = "check")]
    Verify {
        /// An earlier digest (`POSITION:HASH`, as verify printed it): also prove the log still extends it.
        #[arg(long)]
        digest: Option<String>,
    },
    /// Rebuild every projection from the log and compare it row by row with the live read models.
    ///
    /// Exit 0 when they match, 1 with every difference printed. With --to-position or --as-of, print the
    /// rebuilt state's summary and digest at that point instead.
    Replay {
        /// Rebuild up to this global position.
        #[arg(long, conflicts_with = "as_of")]
        to_position: Option<u64>,
        /// Rebuild up to the last event recorded at or before this time (RFC 3339 or a UTC date).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Rebuild every read model from the log and swap it in, with the checkpoint, in one transaction.
    ///
    /// Safe while servers run: their projection writer waits for the swap and resumes after it; queries see
    /// the old rows until then. Run `replay` first to see what differs.
    Rebuild,
    /// Export the journal (double-entry lines of succeeded refunds) or the refunds report, streamed.
    Export {
        /// `journal` or `refunds`.
        #[arg(value_enum)]
        kind: export::ExportKind,
        /// `csv` (RFC 4180) or `jsonl` (JSON Lines).
        #[arg(long, default_value = "csv")]
        format: String,
        /// From this time (RFC 3339 or a UTC date), inclusive.
        #[arg(long)]
        from: Option<String>,
        /// Before this time (RFC 3339 or a UTC date), exclusive.
        #[arg(long)]
        to: Option<String>,
        /// Only this currency (ISO 4217 code).
        #[arg(long)]
        currency: Option<String>,
        /// Write here instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Reconcile Antom's reports (a day's transactionItems files, or a batch's settlementItems and
    /// settlementSummary) against the ledger, record the run in the log and write its findings.
    ///
    /// Exit 0 when every row matched, 1 when there are findings, 2 on unreadable input (a file cut before
    /// <END>: nothing is recorded).
    Reconcile {
        /// The report files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// `csv` (RFC 4180) or `jsonl` (JSON Lines).
        #[arg(long, default_value = "csv")]
        format: String,
        /// Write the findings here instead of stdout (the summary then goes to stdout, else to stderr).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Who ran it, recorded as the run event's actor (default `cli:$USER`).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Exit 0 when the service answers.
    Healthcheck {
        /// What to probe (default: /healthz on the configured listen address).
        #[arg(long)]
        url: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let environment = |key: &str| std::env::var(key).ok();
    let mut settings = match config::load(cli.config.as_deref(), &environment) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    if let Some(store) = cli.store {
        settings.store = store;
    }
    let telemetry = match telemetry::init(settings.log_format, settings.otlp_endpoint.as_deref()) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve { demo } => serve(settings, demo).await.map(|()| verify::Verdict::Intact),
            Command::Verify { digest } => verify::run(store::open(&settings.store).await?, digest.as_deref()).await,
            Command::Replay { to_position, as_of } => replay::run(&settings, to_position, as_of.as_deref()).await,
            Command::Rebuild => rebuild::run(&settings).await,
            Command::Export {
                kind,
                format,
                from,
                to,
                currency,
                output,
            } => {
                let args = export::ExportArgs {
                    kind,
                    format: &format,
                    from: from.as_deref(),
                    to: to.as_deref(),
                    currency: currency.as_deref(),
                    output: output.as_deref(),
                };
                export::run(&settings, args).await.map(|()| verify::Verdict::Intact)
            }
            Command::Reconcile {
                files,
                format,
                output,
                actor,
            } => {
                let args = reconcile::ReconcileArgs {
                    files: &files,
                    format: &format,
                    output: output.as_deref(),
                    actor: actor.as_deref(),
                };
                reconcile::run(&settings, args).await
            }
            Command::Healthcheck { url } => healthcheck(url, &settings).await.map(|()| verify::Verdict::Intact),
        }
    });
    telemetry.shutdown();
    match result {
        Ok(verify::Verdict::Intact) => ExitCode::SUCCESS,
        Ok(verify::Verdict::Broken) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn serve(settings: config::Settings, demo: bool) -> anyhow::Result<()> {
    let store = settings.store.split("://").next().unwrap_or("store").to_owned();
    let application = startup::Application::build(settings, demo).await?;
    let port = application.port();
    let mut out = std::io::stdout().lock();
    writeln!(out, "refund-ledger serving on port {port} ({store} store)")?;
    writeln!(out, "GraphiQL: http://127.0.0.1:{port}/graphql")?;
    if let Some(key) = application.demo().and_then(|demo| demo.operator_key.as_ref()) {
        writeln!(
            out,
            "demo key (admin role, valid until this process stops): {}",
            key.expose_secret()
        )?;
        writeln!(
            out,
            "  put {{\"Authorization\": \"Bearer {}\"}} in GraphiQL's Headers tab",
            key.expose_secret()
        )?;
    }
    out.flush()?;
    drop(out);
    application.run_until_stopped(shutdown_signal()).await
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(error = %error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

async fn healthcheck(url: Option<String>, settings: &config::Settings) -> anyhow::Result<()> {
    let url = url.unwrap_or_else(|| {
        let port = settings.listen.port();
        format!("http://127.0.0.1:{port}/healthz")
    });
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(HEALTHCHECK_TIMEOUT_MS))
        .build()
        .context("building the HTTP client")?;
    let response = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("probing {url}"))?;
    anyhow::ensure!(response.status().is_success(), "{url} answered {}", response.status());
    Ok(())
}
