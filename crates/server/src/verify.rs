//! `refund-ledger verify [--digest POSITION:HASH]`: verify the whole log (hash chain, dense positions,
//! gapless stream revisions) with [`audit::verify_log`], print the digest to keep, and, given an earlier
//! digest, whether the log still extends it. `check` is a hidden alias kept for old scripts.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use audit::Digest;
use eventlog::EventStore;

/// What a CLI command concluded: its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing wrong: exit 0.
    Intact,
    /// A verification failure or a difference was printed: exit 1.
    Broken,
}

/// Verifies the log and prints the outcome on stdout.
pub(crate) async fn run(store: Arc<dyn EventStore>, digest: Option<&str>) -> anyhow::Result<Verdict> {
    let expected = digest.map(str::parse::<Digest>).transpose()?;
    let report = audit::verify_log(store.as_ref(), expected)
        .await
        .context("verifying the log")?;
    let mut out = std::io::stdout().lock();
    if let Some(finding) = &report.finding {
        writeln!(out, "verify: FAILED at {finding}")?;
        writeln!(
            out,
            "verified before it: {} events; last good digest {}",
            report.events, report.digest
        )?;
        return Ok(Verdict::Broken);
    }
    writeln!(
        out,
        "verify: OK, {} events in {} streams; digest {}",
        report.events, report.streams, report.digest
    )?;
    if report.unsealed > 0 {
        writeln!(
            out,
            "verify: {} events after the last seal are covered by their stream chains only until the sealer \
             seals them",
            report.unsealed
        )?;
    }
    if let Some(extended) = report.extends {
        writeln!(out, "verify: the log extends digest {extended}")?;
    }
    Ok(Verdict::Intact)
}
