//! `verify` on a sparse, sealed log (KurrentDB; eventlog's docs/adr/008): every stream's hash chain, every seal
//! chained to the one before, and the log read in order equal to what the seals list, then the unsealed tail.
//!
//! [`SealedLogVerifier`] is the pure core (feed it seals and events in order); [`verify_sealed`] drives it over
//! an [`EventStore`], loading seals from [`SEAL_STREAM`] just ahead of the events they cover, so memory holds
//! one seal page and the stream tips, never the log. The digest is the last seal's: its last position and its
//! hash. Events after the last seal are covered by their stream chains only and counted in the report
//! (`unsealed`); the sealer normally covers them within a second.

use eventlog::chain::StreamChainVerifier;
use eventlog::seal::{SEAL_STREAM, Seal, SealFinding, SealVerifier};
use eventlog::{EventStore, RecordedEvent, StoreError, StreamName};

use crate::error::AuditError;
use crate::report::{Digest, Finding, VERIFY_BATCH_EVENTS_MAX, VerifyReport};

/// Seal events read per `read_stream` call while verifying (each seal lists at most
/// [`eventlog::seal::SEAL_EVENTS_MAX`] events).
pub const VERIFY_SEALS_PER_READ_MAX: usize = 10;

/// Checks a sparse log fed in order: its seals, and its events against their streams and the seals.
#[derive(Debug, Clone)]
pub struct SealedLogVerifier {
    chains: StreamChainVerifier,
    seal_chain: StreamChainVerifier,
    seals: SealVerifier,
    events: u64,
    expected: Option<Digest>,
    extends: Option<Digest>,
}

impl SealedLogVerifier {
    /// A verifier from the start of the log that also checks the seals extend `expected`, if given.
    pub fn new(expected: Option<Digest>) -> SealedLogVerifier {
        SealedLogVerifier {
            chains: StreamChainVerifier::default(),
            seal_chain: StreamChainVerifier::default(),
            seals: SealVerifier::default(),
            events: 0,
            expected,
            extends: expected.filter(|digest| *digest == Digest::GENESIS),
        }
    }

    /// Whether the next event needs the next seal loaded first.
    pub fn needs_seal(&self) -> bool {
        self.seals.needs_seal()
    }

    /// Checks the next event of [`SEAL_STREAM`]: its own stream chain, the seal chain, and the expected digest.
    pub fn add_seal(&mut self, recorded: &RecordedEvent) -> Result<(), Finding> {
        self.seal_chain
            .check(recorded)
            .map_err(|error| store_finding(error, recorded))?;
        let seal =
            Seal::from_payload(recorded.position, &recorded.payload).map_err(|error| store_finding(error, recorded))?;
        let digest = Digest {
            position: seal.last_position(),
            hash: seal.hash,
        };
        self.seals.add_seal(recorded.position, seal).map_err(seal_finding)?;
        if let Some(expected) = self.expected.filter(|expected| expected.position == digest.position) {
            if expected.hash != digest.hash {
                return Err(Finding {
                    position: recorded.position,
                    stream: Some(SEAL_STREAM.to_owned()),
                    reason: format!(
                        "the seal ending at position {} has hash {}, the digest {}: the log does not extend the digest",
                        digest.position,
                        hex::encode(digest.hash),
                        hex::encode(expected.hash)
                    ),
                });
            }
            self.extends = Some(expected);
        }
        Ok(())
    }

    /// Checks the next event of the log.
    pub fn check_event(&mut self, event: &RecordedEvent) -> Result<(), Finding> {
        self.chains.check(event).map_err(|error| store_finding(error, event))?;
        self.seals.check_event(event).map_err(seal_finding)?;
        self.events += 1;
        Ok(())
    }

    /// Once the log and the seals are read: every sealed event came, and the expected digest was met.
    pub fn check_end(&self) -> Result<(), Finding> {
        self.seals.check_end().map_err(seal_finding)?;
        match self.expected {
            Some(expected) if self.extends.is_none() => Err(Finding {
                position: expected.position,
                stream: Some(SEAL_STREAM.to_owned()),
                reason: format!(
                    "no seal ends at the digest's position {}: seals were removed, or the digest is not of this log",
                    expected.position
                ),
            }),
            _ => Ok(()),
        }
    }

    /// The digest of the last seal checked ([`Digest::GENESIS`] before the first).
    pub fn digest(&self) -> Digest {
        self.seals
            .last_seal()
            .map_or(Digest::GENESIS, |(_, position, hash)| Digest { position, hash })
    }

    /// The report, with `finding` if verification stopped at one.
    pub fn report(self, finding: Option<Finding>) -> VerifyReport {
        VerifyReport {
            events: self.events,
            // A count of streams always fits in u64.
            streams: self.chains.stream_count() as u64,
            digest: self.digest(),
            extends: if finding.is_none() { self.extends } else { None },
            unsealed: self.seals.unsealed_events(),
            finding,
        }
    }
}

fn store_finding(error: StoreError, event: &RecordedEvent) -> Finding {
    match error {
        StoreError::Corrupt { position, reason } => Finding {
            position,
            stream: Some(event.stream.as_str().to_owned()),
            reason,
        },
        other => Finding {
            position: event.position,
            stream: Some(event.stream.as_str().to_owned()),
            reason: other.to_string(),
        },
    }
}

fn seal_finding(finding: SealFinding) -> Finding {
    Finding {
        position: finding.position,
        stream: finding.stream.map(|stream| stream.as_str().to_owned()),
        reason: finding.reason,
    }
}

/// Where the seals are read from and up to where.
struct SealCursor {
    stream: StreamName,
    next_revision: u64,
    exhausted: bool,
}

impl SealCursor {
    /// Loads the next page of seals into `verifier`; marks the cursor exhausted when there is none.
    async fn load(
        &mut self,
        store: &dyn EventStore,
        verifier: &mut SealedLogVerifier,
    ) -> Result<Result<(), Finding>, AuditError> {
        let page = match store
            .read_stream(&self.stream, self.next_revision, VERIFY_SEALS_PER_READ_MAX)
            .await
        {
            Ok(page) => page,
            Err(StoreError::Corrupt { position, reason }) => {
                return Ok(Err(Finding {
                    position,
                    stream: Some(SEAL_STREAM.to_owned()),
                    reason,
                }));
            }
            Err(other) => return Err(other.into()),
        };
        if page.is_empty() {
            self.exhausted = true;
        }
        for recorded in &page {
            if let Err(finding) = verifier.add_seal(recorded) {
                return Ok(Err(finding));
            }
            self.next_revision = recorded.revision + 1;
        }
        Ok(Ok(()))
    }
}

/// Verifies a sparse, sealed log (see the module docs); findings are part of the report, an error means the
/// store could not be read.
#[tracing::instrument(skip(store))]
pub async fn verify_sealed(store: &dyn EventStore, expected: Option<Digest>) -> Result<VerifyReport, AuditError> {
    let mut verifier = SealedLogVerifier::new(expected);
    let mut seals = SealCursor {
        stream: StreamName::parse(SEAL_STREAM).map_err(StoreError::from)?,
        next_revision: 0,
        exhausted: false,
    };
    let mut next = 1;
    loop {
        let batch = match store.read_all(next, VERIFY_BATCH_EVENTS_MAX).await {
            Ok(batch) => batch,
            Err(StoreError::Corrupt { position, reason }) => {
                let finding = Finding {
                    position,
                    stream: None,
                    reason,
                };
                return Ok(verifier.report(Some(finding)));
            }
            Err(other) => return Err(other.into()),
        };
        let Some(last) = batch.last() else {
            // The seals not read yet list events written before them: load the next page and read again, so
            // a seal written meanwhile finds its events, and one whose events were all removed names them.
            if verifier.needs_seal() && !seals.exhausted {
                if let Err(finding) = seals.load(store, &mut verifier).await? {
                    return Ok(verifier.report(Some(finding)));
                }
                continue;
            }
            break;
        };
        next = last.position + 1;
        for event in &batch {
            while verifier.needs_seal() && !seals.exhausted {
                if let Err(finding) = seals.load(store, &mut verifier).await? {
                    return Ok(verifier.report(Some(finding)));
                }
            }
            if let Err(finding) = verifier.check_event(event) {
                return Ok(verifier.report(Some(finding)));
            }
        }
    }
    let finding = verifier.check_end().err();
    tracing::info!(
        events = verifier.events,
        intact = finding.is_none(),
        "sealed log verified"
    );
    Ok(verifier.report(finding))
}
