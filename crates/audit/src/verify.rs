//! `verify`: walk the whole log in position order, recompute the hash chain, check that positions are dense
//! and every stream's revisions are gapless, and produce the digest (`position:hash` of the last event) an
//! auditor keeps. Given an earlier digest, also prove that the log still extends it.
//!
//! [`LogVerifier`] is the pure core (feed it events in order); [`verify_log`] drives it over an
//! [`EventStore`] and turns a store that refuses to read past a hole (a deleted row) into a finding that names
//! the missing position and, when the rest of the log tells, the stream it belonged to.
//!
//! That is a [`LogLayout::DenseChained`] log (SQLite, PostgreSQL). A [`LogLayout::SparseSealed`] one (KurrentDB)
//! has per-stream chains and seals instead, and [`verify_log`] hands it to
//! [`crate::verify_sealed::verify_sealed`]; the report and its digest have the same shape.

use std::collections::HashMap;
use std::ops::ControlFlow;

use eventlog::chain::ChainVerifier;
use eventlog::{EventBatch, EventStore, EventView, Head, LogLayout, RecordedEvent, StoreError};

use crate::error::AuditError;
use crate::read::for_each_batch;
pub use crate::report::{Digest, Finding, VERIFY_BATCH_EVENTS_MAX, VerifyReport};

/// Most events read past a hole in the log to find the stream the missing event belonged to.
pub const GAP_SCAN_EVENTS_MAX: u64 = 100_000;

/// What the head of the store says once every readable event was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadCheck {
    /// The head is the last verified event: done.
    Done,
    /// The head is further on: more events to read (appended meanwhile, or missing).
    Behind,
}

/// Checks events fed in position order; the pure core of `verify`.
#[derive(Debug, Clone)]
pub struct LogVerifier {
    chain: ChainVerifier,
    next_revision: HashMap<String, u64>,
    events: u64,
    last: Digest,
    expected: Option<Digest>,
    extends: Option<Digest>,
}

impl LogVerifier {
    /// A verifier from position 1 that also checks the log extends `expected`, if given.
    pub fn new(expected: Option<Digest>) -> LogVerifier {
        let extends = expected.filter(|digest| *digest == Digest::GENESIS);
        LogVerifier {
            chain: ChainVerifier::default(),
            next_revision: HashMap::new(),
            events: 0,
            last: Digest::GENESIS,
            expected,
            extends,
        }
    }

    /// The position the next event must have.
    pub fn next_position(&self) -> u64 {
        self.chain.next_position()
    }

    /// The revision the next event of `stream` must have.
    pub fn next_revision(&self, stream: &str) -> u64 {
        self.next_revision.get(stream).copied().unwrap_or(0)
    }

    /// Checks the next event: position, link, hash, its stream's revision, and the expected digest.
    pub fn check(&mut self, event: &RecordedEvent) -> Result<(), Finding> {
        self.check_view(&event.view())
    }

    /// [`LogVerifier::check`] of an event read as an [`EventView`] (from a scan's batch).
    pub fn check_view(&mut self, event: &EventView<'_>) -> Result<(), Finding> {
        let finding = |position: u64, reason: String| Finding {
            position,
            stream: Some(event.stream.to_owned()),
            reason,
        };
        if let Err(error) = self.chain.check_view(event) {
            return Err(match error {
                StoreError::Corrupt { position, reason } => finding(position, reason),
                other => finding(event.position, other.to_string()),
            });
        }
        let next_revision = self.next_revision.get_mut(event.stream);
        let expected_revision = next_revision.as_deref().copied().unwrap_or(0);
        if event.revision != expected_revision {
            return Err(finding(
                event.position,
                format!("stream revision {} where {expected_revision} was due", event.revision),
            ));
        }
        if let Some(digest) = self.expected.filter(|digest| digest.position == event.position) {
            if digest.hash != *event.hash {
                return Err(finding(
                    event.position,
                    format!(
                        "hash {} differs from the digest's {}: the log does not extend the digest",
                        hex::encode(event.hash),
                        hex::encode(digest.hash)
                    ),
                ));
            }
            self.extends = Some(digest);
        }
        // Only a stream's first event costs an allocation for its name.
        match next_revision {
            Some(next) => *next = event.revision + 1,
            None => {
                self.next_revision.insert(event.stream.to_owned(), event.revision + 1);
            }
        }
        self.events += 1;
        self.last = Digest {
            position: event.position,
            hash: *event.hash,
        };
        Ok(())
    }

    /// Compares the store's head with the last verified event once no more events can be read.
    pub fn check_head(&self, head: &Head) -> Result<HeadCheck, Finding> {
        if head.position > self.last.position {
            return Ok(HeadCheck::Behind);
        }
        if head.position < self.last.position {
            return Err(Finding {
                position: head.position + 1,
                stream: None,
                reason: format!(
                    "the log's head is {} but events up to {} are stored: events were inserted past the head",
                    head.position, self.last.position
                ),
            });
        }
        if head.hash != self.last.hash {
            return Err(Finding {
                position: head.position,
                stream: None,
                reason: "the head records a different hash than the last event's".to_owned(),
            });
        }
        Ok(HeadCheck::Done)
    }

    /// The finding when the log ends before the expected digest's position (events removed at the end).
    pub fn check_end(&self) -> Result<(), Finding> {
        match self.expected {
            Some(digest) if digest.position > self.last.position => Err(Finding {
                position: self.last.position + 1,
                stream: None,
                reason: format!(
                    "the log ends at position {} before the digest's position {}: events were removed",
                    self.last.position, digest.position
                ),
            }),
            _ => Ok(()),
        }
    }

    /// The report, with `finding` if verification stopped at one.
    pub fn report(self, finding: Option<Finding>) -> VerifyReport {
        VerifyReport {
            events: self.events,
            // A count of streams always fits in u64.
            streams: self.next_revision.len() as u64,
            digest: self.last,
            extends: if finding.is_none() { self.extends } else { None },
            unsealed: 0,
            finding,
        }
    }
}

/// Verifies the whole log of `store`, and that it extends `expected` if given, as its layout defines the chain.
///
/// The next batch is read while the current one is checked (the store reads on its own threads or
/// connections), so verifying costs about as long as reading the log.
///
/// Findings are part of the report; an error means the store could not be read.
pub async fn verify_log(store: &dyn EventStore, expected: Option<Digest>) -> Result<VerifyReport, AuditError> {
    match store.layout() {
        LogLayout::DenseChained => verify_dense(store, expected).await,
        LogLayout::SparseSealed => crate::verify_sealed::verify_sealed(store, expected).await,
    }
}

/// Verifies a dense log: one chain over positions 1, 2, 3, ...
///
/// The log is scanned once from the start (on SQLite in one read transaction, read ahead on the store's own
/// thread while this one hashes); when the scan ends the head says whether that was all, or whether more was
/// appended meanwhile (scanned next) or is missing (a finding).
#[tracing::instrument(skip(store))]
async fn verify_dense(store: &dyn EventStore, expected: Option<Digest>) -> Result<VerifyReport, AuditError> {
    let mut verifier = LogVerifier::new(expected);
    let mut head_ahead = None;
    loop {
        let before = verifier.next_position();
        if let Some(finding) = check_scan(store, &mut verifier).await? {
            return Ok(verifier.report(Some(finding)));
        }
        if let Some(head) = head_ahead.filter(|_| verifier.next_position() == before) {
            // The head was read before this scan: if the scan found nothing, events the head covers are gone.
            let finding = missing(&verifier, &head);
            return Ok(verifier.report(Some(finding)));
        }
        let head = store.head().await?;
        match verifier.check_head(&head) {
            Ok(HeadCheck::Done) => break,
            Ok(HeadCheck::Behind) => head_ahead = Some(head),
            Err(finding) => return Ok(verifier.report(Some(finding))),
        }
    }
    let finding = verifier.check_end().err();
    tracing::info!(events = verifier.events, intact = finding.is_none(), "log verified");
    Ok(verifier.report(finding))
}

/// Checks every event the store has from the verifier's next position on; the first finding, if any. A store
/// that reports the log corrupt at the next position (a hole, an undecodable row) is a finding too.
async fn check_scan(store: &dyn EventStore, verifier: &mut LogVerifier) -> Result<Option<Finding>, AuditError> {
    let mut scan = eventlog::scan(store, verifier.next_position(), u64::MAX).await?;
    let scanned = for_each_batch(&mut scan, |batch| match check_all(verifier, batch) {
        Ok(()) => ControlFlow::Continue(()),
        Err(finding) => ControlFlow::Break(finding),
    })
    .await;
    match scanned {
        Ok(finding) => Ok(finding),
        Err(StoreError::Corrupt { position, reason }) => {
            let stream = locate_stream(store, verifier, position).await?;
            Ok(Some(Finding {
                position,
                stream,
                reason,
            }))
        }
        Err(other) => Err(other.into()),
    }
}

fn check_all(verifier: &mut LogVerifier, batch: &EventBatch) -> Result<(), Finding> {
    batch.iter().try_for_each(|event| verifier.check_view(&event))
}

/// The finding when the head lies past the last event and nothing more can be read.
fn missing(verifier: &LogVerifier, head: &Head) -> Finding {
    Finding {
        position: verifier.next_position(),
        stream: None,
        reason: format!(
            "the log's head is {} but position {} is missing",
            head.position,
            verifier.next_position()
        ),
    }
}

/// The stream of the event missing (or unreadable) at `position`: the first stream after it whose revisions
/// skip one. `None` when the rest of the log does not tell (the event was its stream's last).
async fn locate_stream(
    store: &dyn EventStore,
    verifier: &LogVerifier,
    position: u64,
) -> Result<Option<String>, AuditError> {
    let mut next_revision: HashMap<String, u64> = HashMap::new();
    let mut from = position + 1;
    while from <= position + GAP_SCAN_EVENTS_MAX {
        let Ok(batch) = store.read_all(from, VERIFY_BATCH_EVENTS_MAX).await else {
            return Ok(None);
        };
        let Some(last) = batch.last() else {
            return Ok(None);
        };
        from = last.position + 1;
        for event in &batch {
            let stream = event.stream.as_str();
            let expected = next_revision
                .get(stream)
                .copied()
                .unwrap_or_else(|| verifier.next_revision(stream));
            if event.revision != expected {
                return Ok(Some(stream.to_owned()));
            }
            next_revision.insert(stream.to_owned(), event.revision + 1);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use eventlog::StreamName;
    use eventlog::chain::{GENESIS_HASH, event_hash};
    use time::OffsetDateTime;

    use super::*;

    fn chain(streams: &[&str]) -> Vec<RecordedEvent> {
        let mut revisions: HashMap<&str, u64> = HashMap::new();
        let mut prev = GENESIS_HASH;
        let mut events = Vec::new();
        for (index, stream) in (1_u64..).zip(streams) {
            let revision = revisions.entry(stream).or_default();
            let mut event = RecordedEvent {
                position: index,
                stream: StreamName::parse(*stream).unwrap(),
                revision: *revision,
                event_id: uuid::Uuid::from_u128(u128::from(index)),
                event_type: "T".to_owned(),
                schema_version: 1,
                payload: b"{}".to_vec(),
                actor: "test".to_owned(),
                recorded_at: OffsetDateTime::UNIX_EPOCH,
                prev_hash: prev,
                hash: [0; 32],
            };
            *revision += 1;
            event.hash = event_hash(&prev, &event);
            prev = event.hash;
            events.push(event);
        }
        events
    }

    fn run(events: &[RecordedEvent], expected: Option<Digest>) -> VerifyReport {
        let mut verifier = LogVerifier::new(expected);
        for event in events {
            if let Err(finding) = verifier.check(event) {
                return verifier.report(Some(finding));
            }
        }
        let finding = verifier.check_end().err();
        verifier.report(finding)
    }

    #[test]
    fn digest_round_trips_and_refuses_garbage() {
        let digest = Digest {
            position: 42,
            hash: [0xab; 32],
        };
        assert_eq!(digest.to_string().parse::<Digest>().unwrap(), digest);
        assert_eq!(Digest::GENESIS.to_string(), format!("0:{}", "0".repeat(64)));
        for bad in ["", "42", "x:ab", "42:zz", "42:abab"] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_intact_log_verifies_and_extends_its_earlier_digests() {
        let events = chain(&["payment-a", "payment-b", "payment-a"]);
        let report = run(&events, None);
        assert!(report.is_intact());
        assert_eq!((report.events, report.streams), (3, 2));
        assert_eq!(report.digest, Digest::of(&events[2]));
        let earlier = Digest::of(&events[1]);
        assert_eq!(run(&events, Some(earlier)).extends, Some(earlier));
        assert_eq!(run(&events, Some(Digest::GENESIS)).extends, Some(Digest::GENESIS));
    }

    #[test]
    fn a_changed_byte_names_the_position_and_stream() {
        let mut events = chain(&["payment-a", "payment-b", "payment-a"]);
        events[1].payload = b"{ }".to_vec();
        let finding = run(&events, None).finding.unwrap();
        assert_eq!((finding.position, finding.stream.as_deref()), (2, Some("payment-b")));
    }

    #[test]
    fn a_revision_gap_is_found_even_with_a_recomputed_chain() {
        let mut events = chain(&["payment-a", "payment-a"]);
        events[1].revision = 2;
        events[1].hash = event_hash(&events[0].hash, &events[1]);
        let finding = run(&events, None).finding.unwrap();
        assert_eq!(finding.position, 2);
        assert!(finding.reason.contains("revision 2 where 1"), "{finding}");
    }

    #[test]
    fn a_log_that_no_longer_extends_the_digest_fails() {
        let events = chain(&["payment-a", "payment-b"]);
        let other = chain(&["payment-a", "payment-c"]);
        let finding = run(&events, Some(Digest::of(&other[1]))).finding.unwrap();
        assert_eq!(finding.position, 2);
        assert!(finding.reason.contains("does not extend"), "{finding}");
        let truncated = run(&events[..1], Some(Digest::of(&events[1]))).finding.unwrap();
        assert_eq!(truncated.position, 2);
        assert!(truncated.reason.contains("removed"), "{truncated}");
    }

    #[test]
    fn the_head_must_agree_with_the_last_event() {
        let events = chain(&["payment-a", "payment-b"]);
        let mut verifier = LogVerifier::new(None);
        for event in &events {
            verifier.check(event).unwrap();
        }
        let head = |position, hash| Head {
            position,
            hash,
            recorded_at: None,
        };
        assert_eq!(verifier.check_head(&head(2, events[1].hash)), Ok(HeadCheck::Done));
        assert_eq!(verifier.check_head(&head(3, [1; 32])), Ok(HeadCheck::Behind));
        assert_eq!(verifier.check_head(&head(1, events[0].hash)).unwrap_err().position, 2);
        assert_eq!(verifier.check_head(&head(2, [1; 32])).unwrap_err().position, 2);
    }
}
