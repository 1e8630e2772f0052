//! Opens the event store a `--store` / `REFUND_LEDGER_STORE` URL names.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use eventlog::{EventStore, PostgresStore, SqliteStore};

/// Opens `sqlite://PATH` (creating the file and its folder) or `postgres://...`.
pub(crate) async fn open(url: &str) -> anyhow::Result<Arc<dyn EventStore>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = Path::new(path);
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("creating the folder {}", parent.display()))?;
        }
        let store = SqliteStore::open(path)
            .await
            .with_context(|| format!("opening SQLite store {}", path.display()))?;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // The URL may hold a password: name only the scheme in errors.
        let store = PostgresStore::connect(url)
            .await
            .context("connecting to the PostgreSQL store")?;
        return Ok(Arc::new(store));
    }
    bail!("store: expected sqlite://PATH or postgres://..., got a URL with another scheme")
}
