//! `refund-ledger check`: walk the whole log in position order and verify the
//! hash chain and dense stream revisions; name the first bad position.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use eventlog::EventStore;
use eventlog::chain::ChainVerifier;

/// Events read per batch while verifying.
const CHECK_BATCH_EVENTS_MAX: usize = 5_000;

/// What `check` concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every event links and hashes correctly.
    Intact,
    /// The first problem was printed.
    Broken,
}

/// Verifies the whole log and prints the digest (last position and hash).
pub(crate) async fn run(store: Arc<dyn EventStore>) -> anyhow::Result<Verdict> {
    let mut verifier = ChainVerifier::default();
    let mut revisions: HashMap<String, u64> = HashMap::new();
    let mut last_hash = [0_u8; 32];
    let mut count = 0_u64;
    let mut out = std::io::stdout().lock();
    loop {
        let batch = store
            .read_all(verifier.next_position(), CHECK_BATCH_EVENTS_MAX)
            .await
            .context("reading the log")?;
        if batch.is_empty() {
            break;
        }
        for event in &batch {
            if let Err(error) = verifier.check(event) {
                writeln!(
                    out,
                    "verify: FAILED at position {} (stream {}): {error}",
                    event.position, event.stream
                )?;
                return Ok(Verdict::Broken);
            }
            let expected_revision = revisions.get(event.stream.as_str()).map_or(0, |last| last + 1);
            if event.revision != expected_revision {
                writeln!(
                    out,
                    "verify: FAILED at position {} (stream {}): revision {} where {expected_revision} was expected",
                    event.position, event.stream, event.revision
                )?;
                return Ok(Verdict::Broken);
            }
            revisions.insert(event.stream.as_str().to_owned(), event.revision);
            last_hash = event.hash;
            count += 1;
        }
    }
    writeln!(
        out,
        "verify: OK, {count} events in {} streams; digest {}:{}",
        revisions.len(),
        verifier.next_position() - 1,
        hex::encode(last_hash)
    )?;
    Ok(Verdict::Intact)
}
