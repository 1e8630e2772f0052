//! `apo-sim`: runs the Antom refund simulator as a standalone HTTP server
//! (for docker-compose, demos and benchmarks). Everything it does is in the
//! library; this file only turns flags and environment into a `SimConfig`.
//!
//! Keys are required: the simulator verifies the merchant's signatures and
//! signs as Antom, and `ring` cannot generate RSA keys, so there is no
//! built-in default. Pass key files or PEM/base64 text in the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use apo::keys::{PrivateKey, PublicKey};
use apo_sim::{FaultConfig, MethodPolicy, Policies, QuoteSpec, ReportGeneration, SimConfig, SimServer, Simulator};
use clap::Parser;

/// A faithful simulator of Antom's refund API (refund, inquiryRefund, notifyRefund) with fault injection.
#[derive(Debug, Parser)]
#[command(name = "apo-sim", version)]
struct Cli {
    /// Address to listen on. Keep it on loopback or a private network: the /sim/ admin API is unauthenticated.
    #[arg(long, env = "APO_SIM_LISTEN", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// The merchant's client id; other Client-Id headers get INVALID_CLIENT.
    #[arg(long, env = "APO_SIM_CLIENT_ID")]
    client_id: String,
    /// File with the merchant's public key (PEM or base64 X.509 SubjectPublicKeyInfo).
    /// Without it, the key text is read from APO_SIM_MERCHANT_PUBLIC_KEY.
    #[arg(long, env = "APO_SIM_MERCHANT_PUBLIC_KEY_FILE")]
    merchant_public_key: Option<PathBuf>,
    /// File with the private key the simulator signs with as Antom (PEM or base64 PKCS#8).
    /// Without it, the key text is read from APO_SIM_ANTOM_PRIVATE_KEY.
    #[arg(long, env = "APO_SIM_ANTOM_PRIVATE_KEY_FILE")]
    antom_private_key: Option<PathBuf>,
    /// Default notifyRefund URL (a request's refundNotifyUrl wins). Without both, no notifications.
    #[arg(long, env = "APO_SIM_NOTIFY_URL")]
    notify_url: Option<String>,
    /// Divides Antom's notification retry waits (0 s, 2 min, 10 min, ... 15 h); 60000 makes a minute a millisecond.
    #[arg(long, env = "APO_SIM_NOTIFY_COMPRESSION", default_value_t = 1)]
    notify_compression: u64,
    /// How long one notification attempt waits for the merchant.
    #[arg(long, env = "APO_SIM_NOTIFY_TIMEOUT_MS", default_value_t = 5_000)]
    notify_timeout_ms: u64,
    /// How long a U refund stays PROCESSING before it becomes final.
    #[arg(long, env = "APO_SIM_SETTLE_MS", default_value_t = 2_000)]
    settle_ms: u64,
    /// Seed of the fault generator: same seed and request order, same faults.
    #[arg(long, env = "APO_SIM_SEED", default_value_t = 0)]
    seed: u64,
    /// Benchmark mode: no latency and no faults, whatever the fault flags say.
    #[arg(long, env = "APO_SIM_BENCHMARK")]
    benchmark: bool,
    /// JSON file with an array of payments to seed at startup, each shaped like the body of POST /sim/payments.
    #[arg(long, env = "APO_SIM_PAYMENTS_FILE")]
    payments: Option<PathBuf>,
    /// Policy of every method without its own: e.g. "window_days=365,minimum=1,partial=true,multiple=true".
    #[arg(long, env = "APO_SIM_DEFAULT_POLICY")]
    default_policy: Option<String>,
    /// Policy of one method, repeatable: "CARD:window_days=180,partial=false,multiple=false,minimum=100".
    #[arg(long = "method-policy", value_name = "METHOD:SPEC")]
    method_policies: Vec<String>,
    /// Latency added to every answer.
    #[arg(long, env = "APO_SIM_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
    /// Share (0..=1) of accepted refunds answered U, settled after --settle-ms.
    #[arg(long, env = "APO_SIM_U_SHARE", default_value_t = 0.0)]
    u_share: f64,
    /// Share of U refunds that end FAIL.
    #[arg(long, env = "APO_SIM_U_FAIL_SHARE", default_value_t = 0.0)]
    u_fail_share: f64,
    /// Share of requests held without an answer (not applied).
    #[arg(long, env = "APO_SIM_TIMEOUT_SHARE", default_value_t = 0.0)]
    timeout_share: f64,
    /// Share of refunds applied, then held without an answer.
    #[arg(long, env = "APO_SIM_ACCEPTED_TIMEOUT_SHARE", default_value_t = 0.0)]
    accepted_timeout_share: f64,
    /// Share of requests answered HTTP 500 (not applied).
    #[arg(long, env = "APO_SIM_SERVER_ERROR_SHARE", default_value_t = 0.0)]
    server_error_share: f64,
    /// Share of requests answered HTTP 429 (not applied).
    #[arg(long, env = "APO_SIM_RATE_LIMIT_SHARE", default_value_t = 0.0)]
    rate_limit_share: f64,
    /// Share of requests applied, then answered with a garbage body.
    #[arg(long, env = "APO_SIM_GARBAGE_SHARE", default_value_t = 0.0)]
    garbage_share: f64,
    /// Share of requests applied, then answered without a signature.
    #[arg(long, env = "APO_SIM_UNSIGNED_SHARE", default_value_t = 0.0)]
    unsigned_share: f64,
    /// Share of requests applied, then answered with a bad signature.
    #[arg(long, env = "APO_SIM_BAD_SIGNATURE_SHARE", default_value_t = 0.0)]
    bad_signature_share: f64,
    /// Share of notifications never sent.
    #[arg(long, env = "APO_SIM_NOTIFY_DROP_SHARE", default_value_t = 0.0)]
    notify_drop_share: f64,
    /// Share of notifications sent again after acknowledgement.
    #[arg(long, env = "APO_SIM_NOTIFY_DUPLICATE_SHARE", default_value_t = 0.0)]
    notify_duplicate_share: f64,
    /// Share of notifications held back by --notify-reorder-ms.
    #[arg(long, env = "APO_SIM_NOTIFY_REORDER_SHARE", default_value_t = 0.0)]
    notify_reorder_share: f64,
    /// Hold-back of reordered notifications.
    #[arg(long, env = "APO_SIM_NOTIFY_REORDER_MS", default_value_t = 1_000)]
    notify_reorder_ms: u64,
    /// Delay before every notification's first attempt.
    #[arg(long, env = "APO_SIM_NOTIFY_DELAY_MS", default_value_t = 0)]
    notify_delay_ms: u64,
    /// How long a timeout holds the connection before a bare 504.
    #[arg(long, env = "APO_SIM_TIMEOUT_HOLD_MS", default_value_t = 30_000)]
    timeout_hold_ms: u64,
    /// Directory for Antom's reconciliation reports (SFTP layout v1/settlements/<customerId>/<yyyyMMdd>/):
    /// written by POST /sim/reports/<date>/files, and for every active day at shutdown.
    #[arg(long, env = "APO_SIM_REPORTS_DIR")]
    reports_dir: Option<PathBuf>,
    /// Report format generation written by default: g3 (current) or g2.
    #[arg(long, env = "APO_SIM_REPORT_GENERATION", default_value = "g3")]
    report_generation: String,
    /// Antom's merchant id in the reports (customerId).
    #[arg(long, env = "APO_SIM_CUSTOMER_ID", default_value = "2188120000000001")]
    customer_id: String,
    /// Offset of the report day T, e.g. +08:00 (Antom's older cut-off) or +00:00.
    #[arg(long, env = "APO_SIM_REPORT_OFFSET", default_value = "+08:00")]
    report_offset: String,
    /// Fee on payments in the settlement reports, basis points of the gross (320 = 3.20 %).
    #[arg(long, env = "APO_SIM_PAYMENT_FEE_BPS", default_value_t = 320)]
    payment_fee_bps: u32,
    /// Fee on refunds, basis points of the gross.
    #[arg(long, env = "APO_SIM_REFUND_FEE_BPS", default_value_t = 0)]
    refund_fee_bps: u32,
    /// Settle everything in this currency where a --quote relates it to the transaction currency.
    #[arg(long, env = "APO_SIM_SETTLEMENT_CURRENCY")]
    settlement_currency: Option<String>,
    /// A fixed FX rate, repeatable: "JPY/USD=0.0066" (one JPY is 0.0066 USD).
    #[arg(long = "quote", value_name = "BASE/QUOTE=PRICE")]
    quotes: Vec<String>,
}

impl Cli {
    fn faults(&self) -> FaultConfig {
        FaultConfig {
            latency_ms: self.latency_ms,
            u_share: self.u_share,
            u_fail_share: self.u_fail_share,
            timeout_share: self.timeout_share,
            accepted_timeout_share: self.accepted_timeout_share,
            server_error_share: self.server_error_share,
            rate_limit_share: self.rate_limit_share,
            garbage_share: self.garbage_share,
            unsigned_share: self.unsigned_share,
            bad_signature_share: self.bad_signature_share,
            notify_drop_share: self.notify_drop_share,
            notify_duplicate_share: self.notify_duplicate_share,
            notify_reorder_share: self.notify_reorder_share,
            notify_reorder_ms: self.notify_reorder_ms,
            notify_delay_ms: self.notify_delay_ms,
            timeout_hold_ms: self.timeout_hold_ms,
        }
    }

    fn policies(&self) -> Result<Policies> {
        let mut policies = Policies::default();
        if let Some(spec) = &self.default_policy {
            policies.default = MethodPolicy::parse_spec(spec).context("--default-policy")?;
        }
        for entry in &self.method_policies {
            let Some((method, spec)) = entry.split_once(':') else {
                bail!("--method-policy {entry:?}: expected METHOD:SPEC, e.g. CARD:window_days=180");
            };
            let policy = MethodPolicy::parse_spec(spec).with_context(|| format!("--method-policy {entry:?}"))?;
            policies = policies.with_method(method.trim(), policy);
        }
        Ok(policies)
    }

    fn report_settings(&self, reports: &mut apo_sim::ReportSettings) -> Result<()> {
        reports.reports_dir = self.reports_dir.clone();
        reports.generation = self
            .report_generation
            .parse::<ReportGeneration>()
            .context("--report-generation")?;
        reports.customer_id = self.customer_id.clone();
        reports.day_offset = time::UtcOffset::parse(
            &self.report_offset,
            time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]"),
        )
        .with_context(|| format!("--report-offset {:?}: expected e.g. +08:00", self.report_offset))?;
        reports.payment_fee_bps = self.payment_fee_bps;
        reports.refund_fee_bps = self.refund_fee_bps;
        reports.settlement_currency = self
            .settlement_currency
            .as_deref()
            .map(|code| domain::Currency::parse("--settlement-currency", code))
            .transpose()?;
        reports.quotes = self
            .quotes
            .iter()
            .map(|spec| QuoteSpec::parse(spec))
            .collect::<Result<_, _>>()
            .context("--quote")?;
        Ok(())
    }

    fn config(&self) -> Result<SimConfig> {
        let merchant_public_key = match &self.merchant_public_key {
            Some(path) => PublicKey::from_file(path)
                .with_context(|| format!("loading the merchant public key from {}", path.display()))?,
            None => PublicKey::from_env("APO_SIM_MERCHANT_PUBLIC_KEY").context(
                "no merchant public key: pass --merchant-public-key FILE or set APO_SIM_MERCHANT_PUBLIC_KEY(_FILE)",
            )?,
        };
        let antom_private_key = match &self.antom_private_key {
            Some(path) => PrivateKey::from_file(path)
                .with_context(|| format!("loading the Antom private key from {}", path.display()))?,
            None => PrivateKey::from_env("APO_SIM_ANTOM_PRIVATE_KEY").context(
                "no Antom private key: pass --antom-private-key FILE or set APO_SIM_ANTOM_PRIVATE_KEY(_FILE)",
            )?,
        };
        let mut config = SimConfig::new(self.client_id.clone(), merchant_public_key, antom_private_key);
        config.notify_url = self.notify_url.clone();
        config.notify_compression = self.notify_compression;
        config.notify_timeout_ms = self.notify_timeout_ms;
        config.settle_ms = self.settle_ms;
        config.seed = self.seed;
        config.policies = self.policies()?;
        config.faults = self.faults();
        self.report_settings(&mut config.reports)?;
        if self.benchmark {
            config = config.benchmark();
        }
        config.validate().context("checking the options")?;
        Ok(config)
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let cli = Cli::parse();
    let config = cli.config()?;
    tracing::info!(?config, "starting apo-sim");
    let simulator = Simulator::new(config).context("building the simulator")?;
    if let Some(path) = &cli.payments {
        // Seeded before the socket opens, so no request sees a half-seeded simulator.
        let json =
            std::fs::read_to_string(path).with_context(|| format!("reading the payments file {}", path.display()))?;
        let count = simulator
            .seed_payments_json(&json)
            .with_context(|| format!("seeding payments from {}", path.display()))?;
        tracing::info!(count, "payments seeded");
    }
    let server = SimServer::serve(simulator, cli.listen)
        .await
        .with_context(|| format!("starting the simulator on {}", cli.listen))?;
    tracing::info!(base_url = %server.base_url(), "apo-sim ready");
    shutdown_signal().await.context("waiting for Ctrl-C or SIGTERM")?;
    tracing::info!("shutting down");
    let simulator = server.simulator().clone();
    server.shutdown().await.context("stopping the server")?;
    if cli.reports_dir.is_some() {
        let paths = simulator
            .write_all_reports()
            .context("writing the reconciliation reports")?;
        tracing::info!(count = paths.len(), "reconciliation reports written");
    }
    Ok(())
}

/// Ctrl-C anywhere, and SIGTERM on Unix (what docker stop sends).
async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            ctrl_c = tokio::signal::ctrl_c() => ctrl_c,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
