//! Antom's gateway as the settings configure it (the client and what notifications are checked against), and
//! the ledger a CLI command settles refunds through. `startup` (the service) and the CLI commands both build
//! on it, so neither imports the other.

use std::sync::Arc;

use anyhow::{Context, bail};
use apo::{ApoClient, ApoConfig, PrivateKey, PublicKey};
use apo_sim::SimServer;
use app::{Ledger, SystemClock};

use crate::config::Settings;
use crate::state::NotifyVerifier;

/// Antom's client, what its notifications are checked against, and the in-process simulator in demo mode.
pub(crate) type Gateway = (ApoClient, NotifyVerifier, Option<SimServer>);

/// The ledger a CLI command settles refunds through: on the configured Antom gateway, reading `read_models`
/// (which the command keeps up to date with a projection runner of its own) so refunds are found by id. `None`,
/// with the reason logged, when no gateway is configured: the findings then say the settle worker will settle
/// them.
pub(crate) async fn cli_ledger(
    settings: &Settings,
    event_store: Arc<dyn eventlog::EventStore>,
    read_models: Arc<dyn projections::ReadModels>,
) -> Option<Ledger> {
    let (client, _, _) = match configured_gateway(settings) {
        Ok(gateway) => gateway,
        Err(error) => {
            tracing::info!(error = %format!("{error:#}"), "no Antom gateway: open refunds are left to the settle worker");
            return None;
        }
    };
    Some(Ledger::new(
        event_store,
        read_models,
        Arc::new(client),
        settings.policy.clone(),
        Arc::new(SystemClock),
    ))
}

/// Antom's gateway as `[antom]` and `REFUND_LEDGER_ANTOM_*` configure it; an error naming what to set when
/// none is.
pub(crate) fn configured_gateway(settings: &Settings) -> anyhow::Result<Gateway> {
    let Some(antom) = &settings.antom else {
        bail!("antom: no gateway configured; set REFUND_LEDGER_ANTOM_* (see README) or run `serve --demo`");
    };
    let merchant_private = PrivateKey::from_file(&antom.merchant_private_key_file).with_context(|| {
        format!(
            "reading the merchant private key {}",
            antom.merchant_private_key_file.display()
        )
    })?;
    let antom_public = PublicKey::from_file(&antom.antom_public_key_file)
        .with_context(|| format!("reading Antom's public key {}", antom.antom_public_key_file.display()))?;
    let mut config = ApoConfig::new(
        &antom.base_url,
        &antom.client_id,
        merchant_private,
        antom_public.clone(),
    );
    config.request_timeout_ms = antom.request_timeout_ms;
    let client = ApoClient::new(config).context("antom client")?;
    let verifier = NotifyVerifier {
        antom_public_key: antom_public,
        client_id: antom.client_id.clone(),
        clock_skew_max_ms: settings.notify_clock_skew_seconds.saturating_mul(1_000),
    };
    Ok((client, verifier, None))
}
