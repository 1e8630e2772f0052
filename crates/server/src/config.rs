//! Configuration: a TOML file (`--config` or `REFUND_LEDGER_CONFIG`) and
//! `REFUND_LEDGER_*` environment variables over it; the environment wins.
//!
//! Every key of the file has an environment twin (listed in
//! [`ENVIRONMENT_KEYS`]; README's configuration section and
//! `docker-compose.yml` use the same names, and a test checks the compose
//! file against this list). Secrets (API keys, key files' contents) are
//! held in `SecretString` and never printed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use domain::Policy;
use secrecy::SecretString;
use serde::Deserialize;

use crate::auth::{ApiKey, parse_role};

/// Where the service listens by default.
pub(crate) const LISTEN_DEFAULT: &str = "127.0.0.1:8080";
/// The default embedded store.
pub(crate) const STORE_DEFAULT: &str = "sqlite://./data/ledger.db";
/// Where the read models live when the log is on KurrentDB and `read_models` names nothing: a SQLite file
/// where the default store's read models would be.
pub(crate) const READ_MODELS_DEFAULT: &str = "sqlite://./data/ledger.read.db";
/// The largest request body when none is configured.
pub(crate) const BODY_BYTES_MAX_DEFAULT: usize = 256 * 1024;
/// The default `[limits] report_bytes_max`: the largest report `POST /reconciliations` accepts.
pub(crate) const REPORT_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;
/// The journal's debited account when none is configured.
pub(crate) const REFUNDS_ACCOUNT_DEFAULT: &str = "refunds";
/// The journal's credited account when none is configured.
pub(crate) const CLEARING_ACCOUNT_DEFAULT: &str = "antom-clearing";

/// Every environment variable the server reads (a test holds this list to
/// what `load` asks for, and docker-compose.yml to this list).
#[cfg(test)]
pub(crate) const ENVIRONMENT_KEYS: &[&str] = &[
    "REFUND_LEDGER_CONFIG",
    "REFUND_LEDGER_LISTEN",
    "REFUND_LEDGER_STORE",
    "REFUND_LEDGER_READ_MODELS",
    "REFUND_LEDGER_API_KEYS",
    "REFUND_LEDGER_LOG_FORMAT",
    "REFUND_LEDGER_ANTOM_BASE_URL",
    "REFUND_LEDGER_ANTOM_CLIENT_ID",
    "REFUND_LEDGER_ANTOM_MERCHANT_PRIVATE_KEY_FILE",
    "REFUND_LEDGER_ANTOM_PUBLIC_KEY_FILE",
    "REFUND_LEDGER_ANTOM_REQUEST_TIMEOUT_MS",
    "REFUND_LEDGER_ANTOM_SIMULATOR_ADMIN_URL",
    "REFUND_LEDGER_NOTIFY_PATH",
    "REFUND_LEDGER_SETTLE_AFTER_SECONDS",
    "REFUND_LEDGER_EXPORTS_REFUNDS_ACCOUNT",
    "REFUND_LEDGER_EXPORTS_CLEARING_ACCOUNT",
    "REFUND_LEDGER_EXPORTS_SETTLEMENT_ACCOUNT",
    "REFUND_LEDGER_EXPORTS_FEES_ACCOUNT",
    "REFUND_LEDGER_EXPORTS_FX_CONVERSION_ACCOUNT",
    "REFUND_LEDGER_EXPORTS_FX_DIFFERENCE_ACCOUNT",
    "REFUND_LEDGER_EXPORTS_SETTLEMENT_DIFFERENCE_ACCOUNT",
    "REFUND_LEDGER_DEMO_SIMULATOR",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// How the in-process simulator of `serve --demo` behaves (`REFUND_LEDGER_DEMO_SIMULATOR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum DemoSimulator {
    /// `demo` (default): some refunds answered U and settled a few seconds later, so the worker and
    /// notifications have work to show.
    #[default]
    Demo,
    /// `benchmark`: every refund answered S at once: no latency, no U, no faults (`cargo bench --bench load`).
    Benchmark,
}

/// The file's shape. Every field is optional; defaults are documented on [`Settings`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    store: Option<String>,
    read_models: Option<String>,
    log_format: Option<LogFormat>,
    #[serde(default)]
    api_keys: Vec<FileApiKey>,
    antom: Option<FileAntom>,
    worker: Option<FileWorker>,
    limits: Option<FileLimits>,
    policy: Option<Policy>,
    exports: Option<FileExports>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileApiKey {
    name: String,
    role: String,
    /// Hex SHA-256 of the secret: the file never needs the secret itself.
    secret_sha256: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAntom {
    base_url: Option<String>,
    client_id: Option<String>,
    merchant_private_key_file: Option<PathBuf>,
    antom_public_key_file: Option<PathBuf>,
    request_timeout_ms: Option<u64>,
    notify_path: Option<String>,
    notify_clock_skew_seconds: Option<u64>,
    simulator_admin_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWorker {
    settle_after_seconds: Option<u64>,
    interval_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    body_bytes_max: Option<usize>,
    report_bytes_max: Option<usize>,
    query_depth_max: Option<usize>,
    query_complexity_max: Option<usize>,
    query_fields_max: Option<usize>,
    response_bytes_max: Option<usize>,
    expensive_query_complexity_min: Option<usize>,
    expensive_queries_max: Option<usize>,
    wait_for_position_ms_max: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileExports {
    refunds_account: Option<String>,
    clearing_account: Option<String>,
    settlement_account: Option<String>,
    fees_account: Option<String>,
    fx_conversion_account: Option<String>,
    fx_difference_account: Option<String>,
    settlement_difference_account: Option<String>,
}

/// Antom gateway settings.
#[derive(Debug, Clone)]
pub(crate) struct AntomSettings {
    /// Gateway base URL without path.
    pub(crate) base_url: String,
    /// The merchant's client id.
    pub(crate) client_id: String,
    /// PEM or base64 PKCS#8 file of the merchant private key.
    pub(crate) merchant_private_key_file: PathBuf,
    /// PEM or base64 SPKI file of Antom's public key.
    pub(crate) antom_public_key_file: PathBuf,
    /// Whole-request timeout in milliseconds.
    pub(crate) request_timeout_ms: u64,
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Listen address (default 127.0.0.1:8080).
    pub(crate) listen: SocketAddr,
    /// Event store URL (default `sqlite://./data/ledger.db`).
    pub(crate) store: String,
    /// Where the read models live when the store is KurrentDB (`sqlite://PATH` or `postgres://...`); see
    /// [`Settings::read_models_url`].
    pub(crate) read_models: Option<String>,
    /// Log format (default pretty).
    pub(crate) log_format: LogFormat,
    /// API keys; only hashes are kept.
    pub(crate) api_keys: Vec<ApiKey>,
    /// Antom gateway; `None` only in demo mode, where the built-in simulator is used.
    pub(crate) antom: Option<AntomSettings>,
    /// An apo-sim to mirror recorded payments into (demo stacks only; see docker-compose.yml).
    pub(crate) simulator_admin_url: Option<String>,
    /// Path Antom posts refund notifications to (default `/apo/notify/refund`).
    pub(crate) notify_path: String,
    /// Allowed clock skew of notification `Request-Time`, seconds (default 300).
    pub(crate) notify_clock_skew_seconds: u64,
    /// The worker settles refunds open longer than this (default 5 s).
    pub(crate) settle_after_seconds: u64,
    /// Pause between worker passes, milliseconds (default 1000).
    pub(crate) worker_interval_ms: u64,
    /// Largest accepted request body and WebSocket message (default 256 KiB).
    pub(crate) body_bytes_max: usize,
    /// Largest report body `POST /reconciliations` accepts (default 64 MiB); the upload is held in memory.
    pub(crate) report_bytes_max: usize,
    /// What one GraphQL request may ask (`[limits] query_depth_max` (12), `query_complexity_max` (20000),
    /// `query_fields_max` (500), `response_bytes_max` (4 MiB), `expensive_query_complexity_min` (5000),
    /// `expensive_queries_max` (4)).
    pub(crate) query_limits: graphql::Limits,
    /// Longest `atLeastPosition` wait, milliseconds (default 5000).
    pub(crate) wait_for_position_ms_max: u64,
    /// The refund policy per payment method.
    pub(crate) policy: Policy,
    /// Account names of the journal export (default `refunds` and `antom-clearing`).
    pub(crate) accounts: audit::Accounts,
    /// The behaviour of the demo's in-process simulator (ignored without `--demo`).
    pub(crate) demo_simulator: DemoSimulator,
    /// The OTLP collector the spans go to (`OTEL_EXPORTER_OTLP_ENDPOINT`, the OpenTelemetry standard's name;
    /// `http://host:4318`): none, or empty, exports nothing.
    pub(crate) otlp_endpoint: Option<String>,
}

/// Reads the file (if any) and the environment.
pub(crate) fn load(file: Option<&Path>, environment: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Settings> {
    let file_path = file
        .map(Path::to_path_buf)
        .or_else(|| environment("REFUND_LEDGER_CONFIG").map(PathBuf::from));
    let file_config = match &file_path {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
            toml::from_str::<FileConfig>(&text).with_context(|| format!("parsing config {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    resolve(file_config, environment)
}

fn resolve(file: FileConfig, environment: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Settings> {
    let env_u64 = |key: &str| -> anyhow::Result<Option<u64>> {
        environment(key)
            .map(|value| {
                value
                    .parse::<u64>()
                    .with_context(|| format!("{key}: not a whole number"))
            })
            .transpose()
    };
    let listen_text = environment("REFUND_LEDGER_LISTEN")
        .or(file.listen)
        .unwrap_or_else(|| LISTEN_DEFAULT.to_owned());
    let listen = listen_text
        .parse()
        .with_context(|| format!("listen: {listen_text:?} is not an address like 127.0.0.1:8080"))?;
    let store = environment("REFUND_LEDGER_STORE")
        .or(file.store)
        .unwrap_or_else(|| STORE_DEFAULT.to_owned());
    let read_models = environment("REFUND_LEDGER_READ_MODELS").or(file.read_models);
    let log_format = match environment("REFUND_LEDGER_LOG_FORMAT").as_deref() {
        None => file.log_format.unwrap_or_default(),
        Some("json") => LogFormat::Json,
        Some("pretty") => LogFormat::Pretty,
        Some(other) => bail!("REFUND_LEDGER_LOG_FORMAT: expected json or pretty, got {other:?}"),
    };
    let demo_simulator = match environment("REFUND_LEDGER_DEMO_SIMULATOR").as_deref() {
        None | Some("demo") => DemoSimulator::Demo,
        Some("benchmark") => DemoSimulator::Benchmark,
        Some(other) => bail!("REFUND_LEDGER_DEMO_SIMULATOR: expected demo or benchmark, got {other:?}"),
    };
    let mut api_keys = Vec::new();
    for key in &file.api_keys {
        api_keys.push(ApiKey::from_hash(&key.name, parse_role(&key.role)?, &key.secret_sha256).context("api_keys")?);
    }
    if let Some(list) = environment("REFUND_LEDGER_API_KEYS") {
        api_keys.extend(parse_api_keys(&SecretString::from(list))?);
    }
    let antom_file = file.antom.unwrap_or_default();
    let antom = resolve_antom(
        &antom_file,
        environment,
        env_u64("REFUND_LEDGER_ANTOM_REQUEST_TIMEOUT_MS")?,
    )?;
    let worker = file.worker.unwrap_or_default();
    let limits = file.limits.unwrap_or_default();
    let settings = Settings {
        listen,
        store,
        read_models,
        log_format,
        api_keys,
        antom,
        simulator_admin_url: environment("REFUND_LEDGER_ANTOM_SIMULATOR_ADMIN_URL")
            .or_else(|| antom_file.simulator_admin_url.clone()),
        notify_path: environment("REFUND_LEDGER_NOTIFY_PATH")
            .or(antom_file.notify_path)
            .unwrap_or_else(|| "/apo/notify/refund".to_owned()),
        notify_clock_skew_seconds: antom_file.notify_clock_skew_seconds.unwrap_or(300),
        settle_after_seconds: env_u64("REFUND_LEDGER_SETTLE_AFTER_SECONDS")?
            .or(worker.settle_after_seconds)
            .unwrap_or(5),
        worker_interval_ms: worker.interval_ms.unwrap_or(1_000),
        body_bytes_max: limits.body_bytes_max.unwrap_or(BODY_BYTES_MAX_DEFAULT),
        report_bytes_max: limits.report_bytes_max.unwrap_or(REPORT_BYTES_MAX_DEFAULT),
        query_limits: resolve_query_limits(&limits)?,
        wait_for_position_ms_max: limits.wait_for_position_ms_max.unwrap_or(5_000),
        policy: file.policy.unwrap_or_default(),
        demo_simulator,
        otlp_endpoint: environment("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|endpoint| !endpoint.trim().is_empty()),
        accounts: resolve_accounts(file.exports.unwrap_or_default(), environment)?,
    };
    settings.read_models_url()?;
    Ok(settings)
}

impl Settings {
    /// Where the read models live apart from the log: `None` on a SQLite or PostgreSQL store (they live beside
    /// the log, in its file or database); on a KurrentDB store, which holds the log only, `read_models` or
    /// [`READ_MODELS_DEFAULT`]. Naming `read_models` with another store is refused, so that a typo never puts
    /// the read models somewhere nobody looks.
    pub(crate) fn read_models_url(&self) -> anyhow::Result<Option<String>> {
        if eventlog::kurrentdb::url::is_kurrentdb_url(&self.store) {
            let url = self
                .read_models
                .clone()
                .unwrap_or_else(|| READ_MODELS_DEFAULT.to_owned());
            let known =
                url.starts_with("sqlite://") || url.starts_with("postgres://") || url.starts_with("postgresql://");
            if !known {
                bail!("read_models (REFUND_LEDGER_READ_MODELS): expected sqlite://PATH or postgres://...");
            }
            return Ok(Some(url));
        }
        match self.read_models {
            None => Ok(None),
            Some(_) => bail!(
                "read_models (REFUND_LEDGER_READ_MODELS) applies to a kurrentdb store only: on a SQLite or PostgreSQL \
                 store the read models live beside the log"
            ),
        }
    }
}

/// The GraphQL limits of `[limits]`, each at least 1 (a zero would refuse every query).
fn resolve_query_limits(file: &FileLimits) -> anyhow::Result<graphql::Limits> {
    let default = graphql::Limits::default();
    let limits = graphql::Limits {
        depth_max: file.query_depth_max.unwrap_or(default.depth_max),
        complexity_max: file.query_complexity_max.unwrap_or(default.complexity_max),
        fields_max: file.query_fields_max.unwrap_or(default.fields_max),
        response_bytes_max: file.response_bytes_max.unwrap_or(default.response_bytes_max),
        expensive_complexity_min: file
            .expensive_query_complexity_min
            .unwrap_or(default.expensive_complexity_min),
        expensive_concurrent_max: file.expensive_queries_max.unwrap_or(default.expensive_concurrent_max),
    };
    for (key, value) in [
        ("query_depth_max", limits.depth_max),
        ("query_complexity_max", limits.complexity_max),
        ("query_fields_max", limits.fields_max),
        ("response_bytes_max", limits.response_bytes_max),
        ("expensive_query_complexity_min", limits.expensive_complexity_min),
        ("expensive_queries_max", limits.expensive_concurrent_max),
    ] {
        if value == 0 {
            bail!("[limits] {key}: must be at least 1");
        }
    }
    Ok(limits)
}

/// The journal's account names: environment over file over defaults; each a non-empty name without
/// control characters.
fn resolve_accounts(
    file: FileExports,
    environment: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<audit::Accounts> {
    let account = |key: &str, from_file: Option<String>, default: &str| -> anyhow::Result<String> {
        let name = environment(key).or(from_file).unwrap_or_else(|| default.to_owned());
        if name.trim().is_empty() || name.chars().any(char::is_control) {
            bail!("{key}: an account name must be non-empty text without control characters");
        }
        Ok(name)
    };
    let settlement = audit::SettlementAccounts::default();
    Ok(audit::Accounts {
        refunds: account(
            "REFUND_LEDGER_EXPORTS_REFUNDS_ACCOUNT",
            file.refunds_account,
            REFUNDS_ACCOUNT_DEFAULT,
        )?,
        clearing: account(
            "REFUND_LEDGER_EXPORTS_CLEARING_ACCOUNT",
            file.clearing_account,
            CLEARING_ACCOUNT_DEFAULT,
        )?,
        settlement: audit::SettlementAccounts {
            settlement: account(
                "REFUND_LEDGER_EXPORTS_SETTLEMENT_ACCOUNT",
                file.settlement_account,
                &settlement.settlement,
            )?,
            fees: account(
                "REFUND_LEDGER_EXPORTS_FEES_ACCOUNT",
                file.fees_account,
                &settlement.fees,
            )?,
            fx_conversion: account(
                "REFUND_LEDGER_EXPORTS_FX_CONVERSION_ACCOUNT",
                file.fx_conversion_account,
                &settlement.fx_conversion,
            )?,
            fx_difference: account(
                "REFUND_LEDGER_EXPORTS_FX_DIFFERENCE_ACCOUNT",
                file.fx_difference_account,
                &settlement.fx_difference,
            )?,
            settlement_difference: account(
                "REFUND_LEDGER_EXPORTS_SETTLEMENT_DIFFERENCE_ACCOUNT",
                file.settlement_difference_account,
                &settlement.settlement_difference,
            )?,
        },
    })
}

fn resolve_antom(
    file: &FileAntom,
    environment: &dyn Fn(&str) -> Option<String>,
    request_timeout_ms: Option<u64>,
) -> anyhow::Result<Option<AntomSettings>> {
    let base_url = environment("REFUND_LEDGER_ANTOM_BASE_URL").or_else(|| file.base_url.clone());
    let client_id = environment("REFUND_LEDGER_ANTOM_CLIENT_ID").or_else(|| file.client_id.clone());
    let private_key = environment("REFUND_LEDGER_ANTOM_MERCHANT_PRIVATE_KEY_FILE")
        .map(PathBuf::from)
        .or_else(|| file.merchant_private_key_file.clone());
    let public_key = environment("REFUND_LEDGER_ANTOM_PUBLIC_KEY_FILE")
        .map(PathBuf::from)
        .or_else(|| file.antom_public_key_file.clone());
    match (base_url, client_id, private_key, public_key) {
        (None, None, None, None) => Ok(None),
        (Some(base_url), Some(client_id), Some(merchant_private_key_file), Some(antom_public_key_file)) => {
            Ok(Some(AntomSettings {
                base_url,
                client_id,
                merchant_private_key_file,
                antom_public_key_file,
                request_timeout_ms: request_timeout_ms.or(file.request_timeout_ms).unwrap_or(10_000),
            }))
        }
        _ => bail!(
            "antom: base_url, client_id, merchant_private_key_file and antom_public_key_file must be given together"
        ),
    }
}

/// Parses `name:role:secret,name:role:secret`; secrets are hashed at once.
pub(crate) fn parse_api_keys(list: &SecretString) -> anyhow::Result<Vec<ApiKey>> {
    use secrecy::ExposeSecret;
    let mut keys = Vec::new();
    for (index, entry) in list
        .expose_secret()
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .enumerate()
    {
        let mut parts = entry.splitn(3, ':');
        let (Some(name), Some(role), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
            bail!("REFUND_LEDGER_API_KEYS: entry {} is not name:role:secret", index + 1);
        };
        let role = parse_role(role).with_context(|| format!("REFUND_LEDGER_API_KEYS: entry {}", index + 1))?;
        keys.push(
            ApiKey::from_secret(name, role, &SecretString::from(secret.to_owned()))
                .with_context(|| format!("REFUND_LEDGER_API_KEYS: entry {}", index + 1))?,
        );
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn defaults_apply_without_file_or_environment() {
        let settings = resolve(FileConfig::default(), &env(&[])).unwrap();
        assert_eq!(settings.listen.to_string(), LISTEN_DEFAULT);
        assert_eq!(settings.store, STORE_DEFAULT);
        assert!(settings.antom.is_none());
        assert!(settings.api_keys.is_empty());
        assert_eq!(settings.policy, Policy::default());
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let file: FileConfig = toml::from_str(
            r#"
            listen = "127.0.0.1:9000"
            store = "sqlite:///var/lib/ledger.db"
            [policy.default]
            refund_window_days = 90
            [policy.methods.CARD]
            capture_required = true
            minimum_refund_minor_units = { USD = 100 }
            "#,
        )
        .unwrap();
        let settings = resolve(
            file,
            &env(&[
                ("REFUND_LEDGER_STORE", "postgres://db/ledger"),
                ("REFUND_LEDGER_API_KEYS", "fin:viewer:s3cret-viewer"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.listen.port(), 9000);
        assert_eq!(settings.store, "postgres://db/ledger");
        assert_eq!(settings.policy.default.refund_window_days, 90);
        assert_eq!(settings.api_keys.len(), 1);
        assert!(
            !format!("{settings:?}").contains("s3cret-viewer"),
            "secrets never reach Debug"
        );
    }

    #[test]
    fn the_documented_environment_keys_are_exactly_the_ones_read() {
        let asked = std::cell::RefCell::new(std::collections::BTreeSet::new());
        let recorder = |key: &str| {
            asked.borrow_mut().insert(key.to_owned());
            None
        };
        load(None, &recorder).unwrap();
        let documented: std::collections::BTreeSet<String> =
            ENVIRONMENT_KEYS.iter().map(|key| (*key).to_owned()).collect();
        assert_eq!(asked.into_inner(), documented);
    }

    /// The repository's `docker-compose.yml`, as JSON.
    fn compose_file() -> serde_json::Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docker-compose.yml");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        yaml_to_json(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
    }

    /// A one-document YAML text as JSON, the data model the Compose schema is written for.
    fn yaml_to_json(text: &str) -> Result<serde_json::Value, String> {
        let documents = yaml_rust2::YamlLoader::load_from_str(text).map_err(|error| error.to_string())?;
        match documents.as_slice() {
            [document] => yaml_value_to_json(document),
            _ => Err(format!("expected one YAML document, found {}", documents.len())),
        }
    }

    fn yaml_value_to_json(value: &yaml_rust2::Yaml) -> Result<serde_json::Value, String> {
        use yaml_rust2::Yaml;
        Ok(match value {
            Yaml::Null => serde_json::Value::Null,
            Yaml::Boolean(flag) => serde_json::Value::Bool(*flag),
            Yaml::Integer(number) => serde_json::Value::from(*number),
            Yaml::Real(text) => serde_json::from_str(text).map_err(|_| format!("unsupported YAML number {text}"))?,
            Yaml::String(text) => serde_json::Value::String(text.clone()),
            Yaml::Array(items) => items.iter().map(yaml_value_to_json).collect::<Result<_, _>>()?,
            Yaml::Hash(entries) => {
                let mut object = serde_json::Map::new();
                let mut merged = Vec::new();
                for (key, item) in entries {
                    let Yaml::String(key) = key else {
                        return Err(format!("a mapping key that is not a string: {key:?}"));
                    };
                    // YAML's merge key (`<<: *anchor`), which Compose files use to share settings: the merged
                    // mappings' entries apply where the mapping does not set the key itself.
                    if key == "<<" {
                        merged.push(item);
                        continue;
                    }
                    object.insert(key.clone(), yaml_value_to_json(item)?);
                }
                for item in merged {
                    let sources = match item {
                        Yaml::Array(sources) => sources.iter().collect(),
                        source => vec![source],
                    };
                    for source in sources {
                        let serde_json::Value::Object(entries) = yaml_value_to_json(source)? else {
                            return Err("a merge key whose value is not a mapping".to_owned());
                        };
                        for (key, value) in entries {
                            object.entry(key).or_insert(value);
                        }
                    }
                }
                serde_json::Value::Object(object)
            }
            Yaml::Alias(_) | Yaml::BadValue => return Err(format!("unsupported YAML node {value:?}")),
        })
    }

    /// Validates `document` against the Compose Specification's JSON schema, as `docker compose config`
    /// does, without Docker tooling. The error lists every violation with its location.
    ///
    /// The schema is `schema/compose-spec.json` of the compose-spec/compose-spec repository, vendored in
    /// `testdata/compose-spec` unchanged from the copy the PyPI package check-jsonschema 0.39.0 ships
    /// (sha256 d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64; its README says how to
    /// update it).
    fn compose_schema_check(document: &serde_json::Value) -> Result<(), String> {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/compose-spec/compose-spec.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        let schema: serde_json::Value = serde_json::from_str(&text).expect("the Compose schema is JSON");
        // Only a name for the schema: it is added from the file above, nothing is fetched.
        let location = "https://compose-spec.io/compose-spec.json";
        let mut compiler = boon::Compiler::new();
        compiler.add_resource(location, schema).expect("an absolute schema URL");
        let mut schemas = boon::Schemas::new();
        let index = compiler
            .compile(location, &mut schemas)
            .unwrap_or_else(|error| panic!("the Compose schema compiles: {error}"));
        schemas.validate(document, index).map_err(|error| format!("{error}"))
    }

    #[test]
    fn yaml_merge_keys_fill_in_what_a_mapping_does_not_set() {
        let text = "base: &base\n  a: 1\n  b: 2\nservice:\n  <<: *base\n  b: 3\n";
        let document = yaml_to_json(text).unwrap();
        assert_eq!(document["service"], serde_json::json!({ "a": 1, "b": 3 }));
    }

    /// docker-compose.yml is valid Compose and sets only variables the server reads.
    #[test]
    fn docker_compose_is_valid_and_sets_only_keys_the_server_reads() {
        let document = compose_file();
        if let Err(errors) = compose_schema_check(&document) {
            panic!("docker-compose.yml breaks the Compose schema:\n{errors}");
        }
        for service in ["refund-ledger", "refund-ledger-kurrentdb"] {
            let environment = document["services"][service]["environment"]
                .as_object()
                .unwrap_or_else(|| panic!("{service}: an environment map"));
            assert!(
                environment.len() >= 5,
                "{service} is configured through its environment"
            );
            for key in environment.keys() {
                assert!(
                    ENVIRONMENT_KEYS.contains(&key.as_str()),
                    "docker-compose.yml sets {key} on {service}, which the server does not read"
                );
            }
        }
        let ledger = &document["services"]["refund-ledger"];
        let store = ledger["environment"]["REFUND_LEDGER_STORE"].as_str().unwrap();
        assert!(store.starts_with("postgres://"), "the default stack runs on PostgreSQL");
        assert_eq!(ledger["depends_on"]["postgres"]["condition"], "service_healthy");
        let base_url = ledger["environment"]["REFUND_LEDGER_ANTOM_BASE_URL"].as_str().unwrap();
        assert!(base_url.starts_with("http://apo-sim:"), "the simulator is the gateway");

        let on_kurrentdb = &document["services"]["refund-ledger-kurrentdb"];
        assert_eq!(on_kurrentdb["profiles"], serde_json::json!(["kurrentdb"]));
        assert_eq!(
            document["services"]["kurrentdb"]["profiles"],
            serde_json::json!(["kurrentdb"])
        );
        let store = on_kurrentdb["environment"]["REFUND_LEDGER_STORE"].as_str().unwrap();
        assert!(
            eventlog::kurrentdb::url::parse(store).is_ok(),
            "the kurrentdb profile's ledger runs on KurrentDB: {store}"
        );
        assert_eq!(on_kurrentdb["depends_on"]["kurrentdb"]["condition"], "service_healthy");
        assert_eq!(on_kurrentdb["build"]["args"]["LEDGER_FEATURES"], "kurrentdb");
        let image = document["services"]["kurrentdb"]["image"].as_str().unwrap();
        assert!(image.starts_with("docker.kurrent.io/"), "the official image: {image}");
    }

    /// A repository file, read as text.
    fn repository_file(path: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(path);
        std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
    }

    /// `--profile observability` wires Prometheus to the ledger's /metrics with the shipped alerts, and Grafana
    /// to that Prometheus with the shipped dashboard.
    #[test]
    fn the_observability_profile_scrapes_the_ledger_and_shows_the_dashboard() {
        let document = compose_file();
        let services = &document["services"];
        for service in ["prometheus", "grafana"] {
            assert_eq!(
                services[service]["profiles"],
                serde_json::json!(["observability"]),
                "{service}"
            );
        }
        let prometheus = &services["prometheus"];
        assert_eq!(
            prometheus["depends_on"]["refund-ledger"]["condition"],
            "service_healthy"
        );
        assert!(
            prometheus["volumes"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("./deploy/prometheus:/etc/prometheus:ro")),
            "{prometheus}"
        );
        let config = yaml_to_json(&repository_file("deploy/prometheus/prometheus.yml")).unwrap();
        assert_eq!(config["rule_files"], serde_json::json!(["alerts.yml"]));
        let job = &config["scrape_configs"][0];
        assert_eq!(job["metrics_path"], "/metrics");
        let listen = services["refund-ledger"]["environment"]["REFUND_LEDGER_LISTEN"]
            .as_str()
            .unwrap();
        let port = listen.rsplit_once(':').unwrap().1;
        assert_eq!(
            job["static_configs"][0]["targets"],
            serde_json::json!([format!("refund-ledger:{port}")]),
            "Prometheus scrapes the ledger where it listens"
        );

        let grafana = &services["grafana"];
        let volumes = grafana["volumes"].as_array().unwrap();
        assert!(volumes.contains(&serde_json::json!(
            "./deploy/grafana/refund-ledger.json:/var/lib/grafana/dashboards/refund-ledger.json:ro"
        )));
        assert!(volumes.contains(&serde_json::json!(
            "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro"
        )));
        let datasources = yaml_to_json(&repository_file(
            "deploy/grafana/provisioning/datasources/prometheus.yml",
        ))
        .unwrap();
        assert_eq!(datasources["datasources"][0]["url"], "http://prometheus:9090");
        let uid = datasources["datasources"][0]["uid"].clone();
        let providers = yaml_to_json(&repository_file(
            "deploy/grafana/provisioning/dashboards/refund-ledger.yml",
        ))
        .unwrap();
        assert_eq!(
            providers["providers"][0]["options"]["path"],
            "/var/lib/grafana/dashboards"
        );
        let dashboard: serde_json::Value =
            serde_json::from_str(&repository_file("deploy/grafana/refund-ledger.json")).unwrap();
        let panels = dashboard["panels"].as_array().unwrap();
        assert!(panels.len() >= 10, "a dashboard of the metrics");
        for panel in panels.iter().filter(|panel| panel["type"] != "row") {
            assert_eq!(panel["datasource"]["uid"], uid, "{}", panel["title"]);
            assert!(
                !panel["targets"].as_array().unwrap().is_empty(),
                "{} queries something",
                panel["title"]
            );
        }
    }

    #[test]
    fn read_models_live_apart_only_from_a_kurrentdb_log() {
        let beside = resolve(FileConfig::default(), &env(&[])).unwrap();
        assert_eq!(
            beside.read_models_url().unwrap(),
            None,
            "SQLite keeps them beside the log"
        );
        let kurrent = resolve(
            FileConfig::default(),
            &env(&[("REFUND_LEDGER_STORE", "kurrentdb://db:2113?tls=false")]),
        )
        .unwrap();
        assert_eq!(kurrent.read_models_url().unwrap().as_deref(), Some(READ_MODELS_DEFAULT));
        let file: FileConfig = toml::from_str("store = \"esdb://db:2113\"\nread_models = \"sqlite:///x.db\"").unwrap();
        let in_postgres = resolve(file, &env(&[("REFUND_LEDGER_READ_MODELS", "postgres://db/read")])).unwrap();
        assert_eq!(
            in_postgres.read_models_url().unwrap().as_deref(),
            Some("postgres://db/read"),
            "the environment wins over the file"
        );
        for (store, read_models, expected) in [
            (
                "sqlite://./x.db",
                "postgres://db/read",
                "applies to a kurrentdb store only",
            ),
            (
                "postgres://db/ledger",
                "sqlite://./r.db",
                "applies to a kurrentdb store only",
            ),
            (
                "kurrentdb://db:2113",
                "mysql://db",
                "expected sqlite://PATH or postgres://",
            ),
        ] {
            let error = resolve(
                FileConfig::default(),
                &env(&[
                    ("REFUND_LEDGER_STORE", store),
                    ("REFUND_LEDGER_READ_MODELS", read_models),
                ]),
            )
            .unwrap_err();
            assert!(
                format!("{error:#}").contains(expected),
                "{store} {read_models}: {error:#}"
            );
        }
    }

    /// The schema check catches what Compose refuses: each broken variant of the real file fails, naming
    /// where.
    #[test]
    fn a_broken_compose_document_fails_the_schema_check() {
        let valid = compose_file();
        // (JSON pointer of the value to put, the value, what the schema check must say): each breaks one rule.
        let breakages = [
            (
                "/services/refund-ledger/depends_on/postgres/condition",
                serde_json::json!("service_happy"),
                "at '/services/refund-ledger/depends_on/postgres/condition'",
            ),
            (
                "/services/postgres/healthcheck/retries",
                serde_json::json!([30]),
                "at '/services/postgres/healthcheck/retries': want number or string, but got array",
            ),
            (
                "/services/apo-sim/volumes",
                serde_json::json!("./deploy/demo-keys:/keys:ro"),
                "at '/services/apo-sim/volumes': want array, but got string",
            ),
            (
                "/servicess",
                serde_json::json!({}),
                "additionalProperties 'servicess' not allowed",
            ),
        ];
        for (pointer, value, expected) in breakages {
            let mut broken = valid.clone();
            let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
            broken
                .pointer_mut(parent)
                .and_then(serde_json::Value::as_object_mut)
                .unwrap_or_else(|| panic!("{parent} is a mapping of docker-compose.yml"))
                .insert(key.to_owned(), value);
            let errors = compose_schema_check(&broken).expect_err(pointer);
            assert!(errors.contains(expected), "expected {expected:?}, got:\n{errors}");
        }
        let not_a_mapping = yaml_to_json("services:\n  - refund-ledger\n").unwrap();
        assert!(compose_schema_check(&not_a_mapping).is_err());
        assert!(
            yaml_to_json("services: [unclosed").is_err(),
            "YAML syntax errors are reported"
        );
    }

    #[test]
    fn the_demo_simulator_is_demo_unless_benchmark_is_asked_for() {
        let default = resolve(FileConfig::default(), &env(&[])).unwrap();
        assert_eq!(default.demo_simulator, DemoSimulator::Demo);
        let benchmark = resolve(
            FileConfig::default(),
            &env(&[("REFUND_LEDGER_DEMO_SIMULATOR", "benchmark")]),
        )
        .unwrap();
        assert_eq!(benchmark.demo_simulator, DemoSimulator::Benchmark);
        let error = resolve(FileConfig::default(), &env(&[("REFUND_LEDGER_DEMO_SIMULATOR", "fast")])).unwrap_err();
        assert!(
            format!("{error:#}").contains("REFUND_LEDGER_DEMO_SIMULATOR"),
            "{error:#}"
        );
    }

    #[test]
    fn the_query_limits_come_from_the_file_and_are_never_zero() {
        let defaults = resolve(FileConfig::default(), &env(&[])).unwrap();
        assert_eq!(defaults.query_limits, graphql::Limits::default());
        assert_eq!(defaults.body_bytes_max, BODY_BYTES_MAX_DEFAULT);
        assert_eq!(defaults.report_bytes_max, REPORT_BYTES_MAX_DEFAULT);
        let file: FileConfig = toml::from_str(
            "[limits]\nquery_fields_max = 50\nresponse_bytes_max = 1000\nexpensive_query_complexity_min = 100\n\
             expensive_queries_max = 1\nquery_complexity_max = 900\nquery_depth_max = 5",
        )
        .unwrap();
        let settings = resolve(file, &env(&[])).unwrap();
        assert_eq!(
            settings.query_limits,
            graphql::Limits {
                depth_max: 5,
                complexity_max: 900,
                fields_max: 50,
                response_bytes_max: 1000,
                expensive_complexity_min: 100,
                expensive_concurrent_max: 1,
            }
        );
        let file: FileConfig = toml::from_str("[limits]\nexpensive_queries_max = 0").unwrap();
        let error = resolve(file, &env(&[])).unwrap_err();
        assert!(format!("{error:#}").contains("expensive_queries_max"), "{error:#}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let error = resolve(FileConfig::default(), &env(&[("REFUND_LEDGER_LISTEN", "nowhere")])).unwrap_err();
        assert!(format!("{error:#}").contains("listen"), "{error:#}");
        let error = resolve(FileConfig::default(), &env(&[("REFUND_LEDGER_API_KEYS", "fin:boss:x")])).unwrap_err();
        assert!(
            format!("{error:#}").contains("REFUND_LEDGER_API_KEYS: entry 1"),
            "{error:#}"
        );
        let error = resolve(FileConfig::default(), &env(&[("REFUND_LEDGER_ANTOM_CLIENT_ID", "C")])).unwrap_err();
        assert!(format!("{error:#}").contains("must be given together"), "{error:#}");
        assert!(
            toml::from_str::<FileConfig>("nonsense = 1").is_err(),
            "unknown keys are refused"
        );
    }
}
