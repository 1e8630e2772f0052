//! `refund-ledger rebuild`: rebuild every read model from the log into one transaction and swap it in with the
//! checkpoint ([`projections::rebuild_read_models`]); a progress bar on a terminal.

use std::io::Write;

use anyhow::Context;

use crate::config::Settings;
use crate::replay::progress_bar;
use crate::store;
use crate::verify::Verdict;

/// Runs the rebuild and prints the new checkpoint on stdout.
pub(crate) async fn run(settings: &Settings) -> anyhow::Result<Verdict> {
    let store = store::open(&settings.store).await?;
    let projections = store::open_projection_store(settings).await?;
    let bar = progress_bar("rebuild", 0);
    let progress_bar = bar.clone();
    let checkpoint = projections::rebuild_read_models(store, projections.as_ref(), &mut move |position, end| {
        progress_bar.set_length(end);
        progress_bar.set_position(position);
    })
    .await
    .context("rebuilding the read models")?;
    bar.finish_and_clear();
    writeln!(
        std::io::stdout().lock(),
        "rebuild: OK, the read models were rebuilt from the log and swapped in at position {checkpoint}"
    )?;
    Ok(Verdict::Intact)
}
