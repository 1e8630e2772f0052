//! What `verify` reports, whatever the log's layout: the digest an auditor keeps, the first finding, and the
//! report of a run. `verify` (a dense, chained log) and `verify_sealed` (a sparse, sealed one) both produce it.

use std::fmt;
use std::str::FromStr;

use eventlog::RecordedEvent;
use eventlog::chain::GENESIS_HASH;

use crate::error::AuditError;

/// Events read per `read_all` call while verifying.
pub const VERIFY_BATCH_EVENTS_MAX: usize = 5_000;

/// Where the log stood: the position of its last event and that event's hash, written `position:hash` (hash
/// in lowercase hex). An empty log's digest is `0:` followed by 64 zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest {
    /// Position of the last event (0: empty log).
    pub position: u64,
    /// Its hash (the genesis hash for an empty log).
    pub hash: [u8; 32],
}

impl Digest {
    /// The digest of an empty log.
    pub const GENESIS: Digest = Digest {
        position: 0,
        hash: GENESIS_HASH,
    };

    /// The digest of a log whose last event is `event`.
    pub fn of(event: &RecordedEvent) -> Digest {
        Digest {
            position: event.position,
            hash: event.hash,
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.position, hex::encode(self.hash))
    }
}

impl FromStr for Digest {
    type Err = AuditError;

    /// Parses `position:hash` as [`Digest`]'s `Display` writes it.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| AuditError::BadInput {
            field: "digest",
            reason: format!("{reason}; expected POSITION:HASH as verify prints it"),
        };
        let (position, hash) = text.trim().split_once(':').ok_or_else(|| bad("no ':'"))?;
        let position = position
            .parse::<u64>()
            .map_err(|_| bad("the position is not a whole number"))?;
        let bytes = hex::decode(hash).map_err(|_| bad("the hash is not hex"))?;
        let hash: [u8; 32] = bytes.try_into().map_err(|_| bad("the hash is not 32 bytes"))?;
        Ok(Digest { position, hash })
    }
}

/// The first thing wrong with the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The first bad position (for a missing event: where it should be).
    pub position: u64,
    /// The stream of the bad event, when it can be told (a deleted event's stream is told by the revision gap
    /// it leaves in its stream).
    pub stream: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stream = self.stream.as_deref().unwrap_or("unknown");
        write!(
            formatter,
            "position {} (stream {stream}): {}",
            self.position, self.reason
        )
    }
}

/// What `verify` concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events verified before the first finding (all of them when intact).
    pub events: u64,
    /// Distinct streams among them.
    pub streams: u64,
    /// The digest of the last verified event.
    pub digest: Digest,
    /// The earlier digest the log was checked to extend, if one was given and it holds.
    pub extends: Option<Digest>,
    /// Events after the last seal of a sealed log, covered by their stream chains only so far (always 0 on a
    /// dense log, whose chain covers every event at once).
    pub unsealed: u64,
    /// The first problem; `None` when the log is intact.
    pub finding: Option<Finding>,
}

impl VerifyReport {
    /// Whether the log verified (and extends the given digest, if any).
    pub fn is_intact(&self) -> bool {
        self.finding.is_none()
    }
}
