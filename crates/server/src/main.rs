//! `refund-ledger`: the refund ledger's binary.
//!
//! Until the HTTP service lands, it offers the commands that exercise the
//! real domain and event log on the configured store: `demo` records a demo
//! payment and refunds through the `Payment` aggregate, `check` verifies the
//! hash chain of the whole log.

mod check;
mod demo;
mod store;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The default embedded store.
const STORE_DEFAULT: &str = "sqlite://./data/ledger.db";

#[derive(Debug, Parser)]
#[command(
    name = "refund-ledger",
    version,
    about = "An event-sourced refund ledger for Antom merchants"
)]
struct Cli {
    /// The event store: `sqlite://PATH` (embedded) or `postgres://USER@HOST/DB`.
    #[arg(long, global = true, env = "REFUND_LEDGER_STORE", default_value = STORE_DEFAULT)]
    store: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Record a demo payment and refunds through the aggregate, print the stored events, verify the log.
    Demo,
    /// Verify the hash chain, positions and stream revisions of the whole log.
    Check,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        let store = store::open(&cli.store).await?;
        match cli.command {
            Command::Demo => {
                demo::run(store.clone()).await?;
                check::run(store).await
            }
            Command::Check => check::run(store).await,
        }
    });
    match result {
        Ok(check::Verdict::Intact) => ExitCode::SUCCESS,
        Ok(check::Verdict::Broken) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
