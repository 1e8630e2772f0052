//! Opens the event store a `--store` / `REFUND_LEDGER_STORE` URL names, and the read models beside it.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use eventlog::kurrentdb::url::is_kurrentdb_url;
use eventlog::{EventStore, PostgresStore, SqliteStore};
use projections::{PostgresReadModels, ProjectionStore, SqliteReadModels};

use crate::config::Settings;

/// Opens `sqlite://PATH` (creating the file and its folder), `postgres://...`, or (in a build with the
/// `kurrentdb` feature) `kurrentdb://...` / `esdb://...`.
pub(crate) async fn open(url: &str) -> anyhow::Result<Arc<dyn EventStore>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = Path::new(path);
        create_parent(path)?;
        let store = SqliteStore::open(path)
            .await
            .with_context(|| format!("opening SQLite store {}", path.display()))?;
        return Ok(Arc::new(store));
    }
    if is_postgres(url) {
        // The URL may hold a password: name only the scheme in errors.
        let store = PostgresStore::connect(url)
            .await
            .context("connecting to the PostgreSQL store")?;
        return Ok(Arc::new(store));
    }
    if is_kurrentdb_url(url) {
        return open_kurrentdb(url).await;
    }
    bail!("store: expected sqlite://PATH, postgres://... or kurrentdb://..., got a URL with another scheme")
}

#[cfg(feature = "kurrentdb")]
async fn open_kurrentdb(url: &str) -> anyhow::Result<Arc<dyn EventStore>> {
    // The URL may hold a password: the store's errors never repeat it.
    let store = eventlog::KurrentDbStore::connect(url)
        .await
        .context("connecting to the KurrentDB store")?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "kurrentdb"))]
async fn open_kurrentdb(_url: &str) -> anyhow::Result<Arc<dyn EventStore>> {
    bail!("store: this build has no KurrentDB backend; build refund-ledger with `--features kurrentdb`")
}

/// Opens the read models the settings name: beside the log on a SQLite or PostgreSQL store, and where
/// `read_models` says (SQLite by default) on a KurrentDB store, which holds the log only.
pub(crate) async fn open_projection_store(settings: &Settings) -> anyhow::Result<Arc<dyn ProjectionStore>> {
    let Some(url) = settings.read_models_url()? else {
        return projections::open_projection_store(&settings.store)
            .await
            .context("opening the read models");
    };
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = Path::new(path);
        create_parent(path)?;
        let read_models = SqliteReadModels::open(path)
            .await
            .with_context(|| format!("opening the read models {}", path.display()))?;
        return Ok(Arc::new(read_models));
    }
    if is_postgres(&url) {
        let read_models = PostgresReadModels::connect(&url)
            .await
            .context("connecting to the PostgreSQL read models")?;
        return Ok(Arc::new(read_models));
    }
    bail!("read_models: expected sqlite://PATH or postgres://...")
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn create_parent(path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating the folder {}", parent.display()))?;
    }
    Ok(())
}
