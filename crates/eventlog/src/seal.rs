//! Seals: the global order of a [`LogLayout::SparseSealed`](crate::LogLayout) log, hash-chained after the fact.
//!
//! A store without one global write lock (KurrentDB) cannot chain every event to the one before it in the log
//! at append time without serialising every writer, so it chains each stream at append time
//! ([`crate::chain::stream_event_hash`]) and a sealer chains the global order afterwards
//! (docs/adr/008-kurrentdb-tamper-evidence.md). A seal lists, in log order, the next at most
//! [`SEAL_EVENTS_MAX`] events after the previous seal (each one's position, stream, revision and stream-chain
//! hash) and is itself chained to the previous seal:
//!
//! ```text
//! hash = SHA-256(prev_hash || canonical seal bytes)
//! ```
//!
//! with `prev_hash` of seal 1 = 32 zero bytes, and canonical seal bytes (integers big-endian, `len` an 8-byte
//! byte count): the 30 ASCII bytes `refund-ledger/eventlog/seal/v1`, the seal number (u64, from 1), the entry
//! count (u64), then per entry the position (u64), the stream (len, UTF-8 bytes), the revision (u64) and the
//! event's hash (32 bytes). Seals are appended to [`SEAL_STREAM`] with the expected revision, so concurrent
//! sealers in several instances write each seal once. Its JSON payload carries the same fields, hashes in
//! lowercase hex, for people and scripts reading the stream.
//!
//! [`next_seal`] plans a seal and [`SealVerifier`] checks seals against the log; both are pure.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::chain::GENESIS_HASH;
use crate::error::StoreError;
use crate::event::{RecordedEvent, check_positions_increasing};
use crate::stream::StreamName;

/// The stream seals are appended to. A `$` name: a sparse store keeps such names for itself, so no caller's
/// stream can be mistaken for it, and its events are not part of `read_all`.
pub const SEAL_STREAM: &str = "$ledger-seals";

/// The event type of a seal.
pub const SEAL_EVENT_TYPE: &str = "LogSealed";

/// Most events one seal covers: about 120 bytes each in the payload, so a seal stays near 120 KiB, well under
/// KurrentDB's default 1 MiB append.
pub const SEAL_EVENTS_MAX: usize = 1_000;

/// Identifies version 1 of the seal encoding; the first bytes of every encoded seal.
pub const SEAL_FORMAT_TAG: &[u8] = b"refund-ledger/eventlog/seal/v1";

/// One sealed event: where it stood in the log and the hash it had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealEntry {
    /// Its global position.
    pub position: u64,
    /// Its stream.
    pub stream: StreamName,
    /// Its revision in the stream.
    pub revision: u64,
    /// Its stream-chain hash.
    pub hash: [u8; 32],
}

impl SealEntry {
    /// The entry that seals `event`.
    pub fn of(event: &RecordedEvent) -> SealEntry {
        SealEntry {
            position: event.position,
            stream: event.stream.clone(),
            revision: event.revision,
            hash: event.hash,
        }
    }
}

/// A run of consecutive events of the log, sealed and chained to the previous seal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    /// 1 for the first seal, then one more each.
    pub number: u64,
    /// The previous seal's hash (32 zero bytes for seal 1).
    pub prev_hash: [u8; 32],
    /// The sealed events in log order; never empty.
    pub entries: Vec<SealEntry>,
    /// [`seal_hash`] of the above.
    pub hash: [u8; 32],
}

impl Seal {
    /// The position of its first event.
    pub fn first_position(&self) -> u64 {
        self.entries.first().map_or(0, |entry| entry.position)
    }

    /// The position of its last event.
    pub fn last_position(&self) -> u64 {
        self.entries.last().map_or(0, |entry| entry.position)
    }

    /// The JSON payload stored in [`SEAL_STREAM`].
    pub fn to_payload(&self) -> Vec<u8> {
        let wire = WireSeal {
            seal: self.number,
            prev_hash: hex::encode(self.prev_hash),
            hash: hex::encode(self.hash),
            events: self
                .entries
                .iter()
                .map(|entry| WireEntry {
                    position: entry.position,
                    stream: entry.stream.as_str().to_owned(),
                    revision: entry.revision,
                    hash: hex::encode(entry.hash),
                })
                .collect(),
        };
        // Serializing plain strings and integers cannot fail.
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// Reads a seal back from the payload of the event at `position`; anything malformed is
    /// [`StoreError::Corrupt`] at that position. The hash is read, not checked: [`SealVerifier`] checks it.
    pub fn from_payload(position: u64, payload: &[u8]) -> Result<Seal, StoreError> {
        let corrupt = |reason: String| StoreError::corrupt(position, format!("seal payload: {reason}"));
        let wire: WireSeal = serde_json::from_slice(payload).map_err(|error| corrupt(error.to_string()))?;
        let entries = wire
            .events
            .into_iter()
            .map(|entry| {
                Ok(SealEntry {
                    position: entry.position,
                    stream: StreamName::parse(entry.stream).map_err(|error| corrupt(error.to_string()))?,
                    revision: entry.revision,
                    hash: decode_hash(&entry.hash)
                        .ok_or_else(|| corrupt("an event hash is not 64 hex digits".into()))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        if entries.is_empty() {
            return Err(corrupt("no events".to_owned()));
        }
        Ok(Seal {
            number: wire.seal,
            prev_hash: decode_hash(&wire.prev_hash).ok_or_else(|| corrupt("prevHash is not 64 hex digits".into()))?,
            entries,
            hash: decode_hash(&wire.hash).ok_or_else(|| corrupt("hash is not 64 hex digits".into()))?,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireSeal {
    seal: u64,
    prev_hash: String,
    hash: String,
    events: Vec<WireEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEntry {
    position: u64,
    stream: String,
    revision: u64,
    hash: String,
}

fn decode_hash(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok()?.try_into().ok()
}

/// `SHA-256(prev_hash || canonical seal bytes)` of a seal with `number` and `entries`, as documented above.
pub fn seal_hash(number: u64, prev_hash: &[u8; 32], entries: &[SealEntry]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(SEAL_FORMAT_TAG);
    hasher.update(number.to_be_bytes());
    // usize -> u64 is lossless on every platform Rust supports.
    hasher.update((entries.len() as u64).to_be_bytes());
    for entry in entries {
        hasher.update(entry.position.to_be_bytes());
        let stream = entry.stream.as_str().as_bytes();
        hasher.update((stream.len() as u64).to_be_bytes());
        hasher.update(stream);
        hasher.update(entry.revision.to_be_bytes());
        hasher.update(entry.hash);
    }
    hasher.finalize().into()
}

/// The seal after `previous` over `events` (the log's next events after `previous`, in order; at most
/// [`SEAL_EVENTS_MAX`] are taken), or `None` when there is nothing to seal.
///
/// Refuses (as [`StoreError::Corrupt`]) events that do not come after `previous` in strictly increasing order:
/// a sealer must never seal a log it read out of order.
pub fn next_seal(previous: Option<&Seal>, events: &[RecordedEvent]) -> Result<Option<Seal>, StoreError> {
    let floor = previous.map_or(1, |seal| seal.last_position().saturating_add(1));
    let taken = &events[..events.len().min(SEAL_EVENTS_MAX)];
    check_positions_increasing(floor, taken)?;
    if taken.is_empty() {
        return Ok(None);
    }
    let number = previous.map_or(1, |seal| seal.number.saturating_add(1));
    let prev_hash = previous.map_or(GENESIS_HASH, |seal| seal.hash);
    let entries: Vec<SealEntry> = taken.iter().map(SealEntry::of).collect();
    let hash = seal_hash(number, &prev_hash, &entries);
    Ok(Some(Seal {
        number,
        prev_hash,
        entries,
        hash,
    }))
}

/// What is wrong where, as a seal check found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealFinding {
    /// The position of the first bad event (for a missing event: the position it was sealed at).
    pub position: u64,
    /// Its stream, when known.
    pub stream: Option<StreamName>,
    /// What is wrong.
    pub reason: String,
}

/// Checks a sparse log against its seals: seals chained one to the next, and the log's events, read in
/// order, exactly the sealed ones at the sealed positions, then an unsealed tail.
///
/// Feed it the seals in order ([`SealVerifier::add_seal`]) ahead of the events they cover, and every event of
/// the log in order ([`SealVerifier::check_event`]); [`SealVerifier::check_end`] once the log is read. It names
/// the first event that was changed after sealing (hash or place differs), removed (a sealed position never
/// comes) or inserted (a position between sealed ones that no seal lists).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealVerifier {
    last_seal: Option<(u64, u64, [u8; 32])>,
    pending: std::collections::VecDeque<(u64, SealEntry)>,
    sealed_events: u64,
    unsealed_events: u64,
}

impl SealVerifier {
    /// Checks `seal` (the next one of [`SEAL_STREAM`], read at `position`) and queues its entries.
    pub fn add_seal(&mut self, position: u64, seal: Seal) -> Result<(), SealFinding> {
        let finding = |reason: String| SealFinding {
            position,
            stream: StreamName::parse(SEAL_STREAM).ok(),
            reason,
        };
        let (expected_number, expected_prev, floor) = self
            .last_seal
            .map_or((1, GENESIS_HASH, 1), |(number, last_position, hash)| {
                (number.saturating_add(1), hash, last_position.saturating_add(1))
            });
        if seal.number != expected_number {
            return Err(finding(format!(
                "seal {} where seal {expected_number} was due",
                seal.number
            )));
        }
        if seal.prev_hash != expected_prev {
            return Err(finding(format!(
                "seal {}: prevHash does not match the previous seal's hash",
                seal.number
            )));
        }
        if seal_hash(seal.number, &seal.prev_hash, &seal.entries) != seal.hash {
            return Err(finding(format!(
                "seal {}: hash does not match its content",
                seal.number
            )));
        }
        let mut next_floor = floor;
        for entry in &seal.entries {
            if entry.position < next_floor {
                return Err(finding(format!(
                    "seal {} lists position {} where at least {next_floor} was due",
                    seal.number, entry.position
                )));
            }
            next_floor = entry.position.saturating_add(1);
        }
        self.last_seal = Some((seal.number, seal.last_position(), seal.hash));
        self.pending
            .extend(seal.entries.into_iter().map(|entry| (seal.number, entry)));
        Ok(())
    }

    /// Whether every queued sealed event has been matched: the caller adds the next seal (if any) before
    /// the next event.
    pub fn needs_seal(&self) -> bool {
        self.pending.is_empty()
    }

    /// Checks the next event of the log against the sealed entry due (or counts it as unsealed after the last
    /// seal). The event's own stream chain is [`crate::chain::StreamChainVerifier`]'s business.
    pub fn check_event(&mut self, event: &RecordedEvent) -> Result<(), SealFinding> {
        let Some((number, entry)) = self.pending.front() else {
            let last_sealed = self.last_seal.map_or(0, |(_, last_position, _)| last_position);
            if event.position <= last_sealed {
                return Err(SealFinding {
                    position: event.position,
                    stream: Some(event.stream.clone()),
                    reason: format!(
                        "position {} is not after the last sealed position {last_sealed}",
                        event.position
                    ),
                });
            }
            self.unsealed_events += 1;
            return Ok(());
        };
        if event.position > entry.position {
            return Err(SealFinding {
                position: entry.position,
                stream: Some(entry.stream.clone()),
                reason: format!(
                    "revision {} of stream {}, sealed by seal {number}, is missing (the log goes on at position {})",
                    entry.revision, entry.stream, event.position
                ),
            });
        }
        if event.position < entry.position {
            return Err(SealFinding {
                position: event.position,
                stream: Some(event.stream.clone()),
                reason: format!(
                    "the event is in no seal: seal {number} goes on at position {}",
                    entry.position
                ),
            });
        }
        if event.stream != entry.stream || event.revision != entry.revision || event.hash != entry.hash {
            return Err(SealFinding {
                position: event.position,
                stream: Some(event.stream.clone()),
                reason: format!(
                    "differs from seal {number}, which sealed revision {} of stream {} with hash {}",
                    entry.revision,
                    entry.stream,
                    hex::encode(entry.hash)
                ),
            });
        }
        self.pending.pop_front();
        self.sealed_events += 1;
        Ok(())
    }

    /// Once the whole log was fed: every sealed event must have come.
    pub fn check_end(&self) -> Result<(), SealFinding> {
        match self.pending.front() {
            None => Ok(()),
            Some((number, entry)) => Err(SealFinding {
                position: entry.position,
                stream: Some(entry.stream.clone()),
                reason: format!(
                    "revision {} of stream {}, sealed by seal {number}, is missing (the log ends before it)",
                    entry.revision, entry.stream
                ),
            }),
        }
    }

    /// The last seal checked: its number, last position and hash.
    pub fn last_seal(&self) -> Option<(u64, u64, [u8; 32])> {
        self.last_seal
    }

    /// Events matched to a seal so far.
    pub fn sealed_events(&self) -> u64 {
        self.sealed_events
    }

    /// Events after the last seal so far (covered by their stream chains only, until the sealer catches up).
    pub fn unsealed_events(&self) -> u64 {
        self.unsealed_events
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;
    use crate::chain::stream_event_hash;

    /// A sparse, stream-chained log: `streams[i]` is the stream of event i, positions grow by uneven steps.
    fn log(streams: &[u8]) -> Vec<RecordedEvent> {
        let mut tips: std::collections::HashMap<u8, (u64, [u8; 32])> = std::collections::HashMap::new();
        let mut position = 0;
        streams
            .iter()
            .enumerate()
            .map(|(index, stream)| {
                position += 100 + (index as u64 % 7) * 31;
                let (revision, prev_hash) = tips
                    .get(stream)
                    .map_or((0, GENESIS_HASH), |(revision, hash)| (revision + 1, *hash));
                let mut event = RecordedEvent {
                    position,
                    stream: StreamName::parse(format!("payment-{stream}")).unwrap(),
                    revision,
                    event_id: Uuid::from_u128(index as u128),
                    event_type: "T".to_owned(),
                    schema_version: 1,
                    payload: format!("{{\"i\":{index}}}").into_bytes(),
                    actor: "test".to_owned(),
                    recorded_at: OffsetDateTime::UNIX_EPOCH,
                    prev_hash,
                    hash: [0; 32],
                };
                event.hash = stream_event_hash(&prev_hash, &event);
                tips.insert(*stream, (revision, event.hash));
                event
            })
            .collect()
    }

    /// Seals `events` in runs of `run` events.
    fn seals(events: &[RecordedEvent], run: usize) -> Vec<Seal> {
        let mut sealed: Vec<Seal> = Vec::new();
        for chunk in events.chunks(run) {
            let seal = next_seal(sealed.last(), chunk).unwrap().unwrap();
            sealed.push(seal);
        }
        sealed
    }

    /// Feeds seals then events the way `verify` does; the first finding, if any.
    fn verify(seals: &[Seal], events: &[RecordedEvent]) -> Result<SealVerifier, SealFinding> {
        let mut verifier = SealVerifier::default();
        let mut seals = seals.iter().cloned();
        for event in events {
            while verifier.needs_seal() {
                match seals.next() {
                    Some(seal) => verifier.add_seal(seal.last_position(), seal)?,
                    None => break,
                }
            }
            verifier.check_event(event)?;
        }
        for seal in seals {
            verifier.add_seal(seal.last_position(), seal)?;
        }
        verifier.check_end()?;
        Ok(verifier)
    }

    #[test]
    fn a_seal_round_trips_through_its_payload() {
        let events = log(&[1, 2, 1]);
        let seal = next_seal(None, &events).unwrap().unwrap();
        assert_eq!((seal.number, seal.prev_hash), (1, GENESIS_HASH));
        assert_eq!(Seal::from_payload(7, &seal.to_payload()).unwrap(), seal);
        assert!(matches!(
            Seal::from_payload(7, b"{\"seal\":1}"),
            Err(StoreError::Corrupt { position: 7, .. })
        ));
    }

    #[test]
    fn pinned_hash_of_a_seal() {
        // Computed independently from the documented layout (Python hashlib), not copied from this code's output.
        let entries = vec![
            SealEntry {
                position: 1_000,
                stream: StreamName::parse("payment-1").unwrap(),
                revision: 0,
                hash: [0x11; 32],
            },
            SealEntry {
                position: 2_500,
                stream: StreamName::parse("payment-2").unwrap(),
                revision: 3,
                hash: [0x22; 32],
            },
        ];
        assert_eq!(hex::encode(seal_hash(2, &[0x33; 32], &entries)), PINNED_SEAL_HASH_HEX);
    }

    const PINNED_SEAL_HASH_HEX: &str = "9375742cb08ac32a1012dd1d6d24c0f44397bedc2388bd159e4ab5568d38e94b";

    #[test]
    fn next_seal_continues_the_chain_and_bounds_its_size() {
        let events = log(&[1; 2_500]);
        let first = next_seal(None, &events).unwrap().unwrap();
        assert_eq!(first.entries.len(), SEAL_EVENTS_MAX);
        let second = next_seal(Some(&first), &events[SEAL_EVENTS_MAX..]).unwrap().unwrap();
        assert_eq!((second.number, second.prev_hash), (2, first.hash));
        assert_eq!(next_seal(Some(&second), &[]).unwrap(), None);
        assert!(
            next_seal(Some(&second), &events[..1]).is_err(),
            "an event before the previous seal's end is refused"
        );
    }

    #[test]
    fn an_intact_log_verifies_with_an_unsealed_tail() {
        let events = log(&[1, 2, 1, 3, 2, 2, 1]);
        let sealed = seals(&events[..5], 2);
        let verifier = verify(&sealed, &events).unwrap();
        assert_eq!((verifier.sealed_events(), verifier.unsealed_events()), (5, 2));
        assert_eq!(verifier.last_seal().map(|(number, _, _)| number), Some(3));
    }

    #[test]
    fn a_removed_stream_tail_is_named_by_the_seal() {
        let events = log(&[1, 2, 1, 2, 3]);
        let sealed = seals(&events, 2);
        let mut without_tail = events.clone();
        without_tail.remove(3);
        let finding = verify(&sealed, &without_tail).unwrap_err();
        assert_eq!(finding.position, events[3].position);
        assert_eq!(finding.stream.as_ref().map(StreamName::as_str), Some("payment-2"));
        assert!(finding.reason.contains("missing"), "{}", finding.reason);

        let finding = verify(&sealed, &events[..4]).unwrap_err();
        assert_eq!(finding.position, events[4].position, "removed at the end");
    }

    #[test]
    fn a_changed_or_inserted_event_and_a_forged_seal_are_named() {
        let events = log(&[1, 2, 1, 2]);
        let sealed = seals(&events, 4);
        let mut changed = events.clone();
        changed[1].hash = [9; 32];
        assert_eq!(verify(&sealed, &changed).unwrap_err().position, events[1].position);

        let mut inserted = events.clone();
        let mut extra = events[1].clone();
        extra.position = events[1].position + 1;
        inserted.insert(2, extra);
        assert_eq!(verify(&sealed, &inserted).unwrap_err().position, events[1].position + 1);

        let mut forged = sealed.clone();
        forged[0].entries[0].hash = [8; 32];
        assert!(
            verify(&forged, &events)
                .unwrap_err()
                .reason
                .contains("hash does not match")
        );
        let mut rechained = seals(&events, 2);
        rechained.remove(0);
        assert!(
            verify(&rechained, &events)
                .unwrap_err()
                .reason
                .contains("seal 2 where seal 1"),
            "a removed seal breaks the seal chain"
        );
    }

    proptest! {
        /// Whatever the log and however it was sealed, removing any one event is found, at its position.
        #[test]
        fn removing_any_sealed_event_is_found_at_its_position(
            streams in proptest::collection::vec(0_u8..4, 1..40),
            run in 1_usize..7,
            pick in any::<prop::sample::Index>(),
        ) {
            let events = log(&streams);
            let sealed = seals(&events, run);
            prop_assert!(verify(&sealed, &events).is_ok());
            let removed = pick.index(events.len());
            let mut tampered = events.clone();
            tampered.remove(removed);
            let finding = verify(&sealed, &tampered).unwrap_err();
            prop_assert_eq!(finding.position, events[removed].position);
        }
    }
}
