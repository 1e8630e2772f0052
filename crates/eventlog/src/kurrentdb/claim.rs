//! Event ids unique across the whole log without a transaction across streams: claims (docs/adr/007).
//!
//! KurrentDB checks an expected revision per stream and nothing across streams, so the trait's promise "an
//! event id already stored anywhere is refused" is kept by a claim stream per event id,
//! `{namespace}$claim-{eventId}`. Every attempt to append an event first appends, to the id's claim stream and
//! with the claim stream's expected revision, where it means to put the event (stream and revision, decided
//! from the stream's last event it just read), and only then appends to the stream with that expected revision.
//! Before it claims, it looks at every earlier attempt the claim stream records:
//!
//! - an earlier attempt's event is at its recorded place → the id is stored: `DuplicateEventId`;
//! - an earlier attempt for another stream whose place is still free → it may still land:
//!   `DuplicateEventId` (a place taken by another event means it never will, and is no obstacle);
//! - otherwise (no attempt, or attempts on this same stream that did not land) → claim and append.
//!
//! Two attempts on one stream are then ordered by the stream's expected revision: each decided its revision
//! after the other's claim or before the other's read, so at most one lands (the proof is in the ADR; the
//! model test below runs every interleaving of a few attempts, crashes included). A crash between claim and
//! append leaves a claim whose place stays free: a retry on the same stream claims again and lands, which is
//! how the half-done case resolves; nothing was stored, so nothing is lost or doubled.

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::stream::StreamName;

/// Claim events one claim stream may hold: one per attempt, so this bounds the retries of one event id.
pub(crate) const CLAIM_ATTEMPTS_MAX: usize = 64;

/// One attempt to append an event id, as its claim event records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClaimEntry {
    /// The ledger stream the attempt appends to.
    pub(crate) stream: String,
    /// The revision the event gets if the attempt lands.
    pub(crate) revision: u64,
}

impl ClaimEntry {
    /// The claim event's payload.
    pub(crate) fn to_payload(&self) -> Vec<u8> {
        // A struct of a string and an integer always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A claim event's payload read back; `position` names it in the error.
    pub(crate) fn from_payload(position: u64, payload: &[u8]) -> Result<ClaimEntry, StoreError> {
        serde_json::from_slice(payload)
            .map_err(|error| StoreError::corrupt(position, format!("claim payload: {error}")))
    }
}

/// What an earlier attempt's recorded place holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Landing {
    /// The event with this id: the attempt landed.
    Stored,
    /// Another event: the attempt can never land.
    Other,
    /// Nothing yet: the attempt may be in flight, or its writer died.
    NotYet,
}

/// What an attempt does after looking at the earlier ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClaimDecision {
    /// Refuse with `DuplicateEventId`.
    Duplicate,
    /// Claim (append an entry at the claim stream's next revision) and append the event.
    Proceed,
}

/// Decides an attempt on `stream` from the earlier attempts and what their places hold.
pub(crate) fn decide(stream: &StreamName, earlier: &[(ClaimEntry, Landing)]) -> ClaimDecision {
    let blocked = earlier.iter().any(|(entry, landing)| match landing {
        Landing::Stored => true,
        Landing::NotYet => entry.stream != stream.as_str(),
        Landing::Other => false,
    });
    if blocked {
        ClaimDecision::Duplicate
    } else {
        ClaimDecision::Proceed
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn entry(stream: &str, revision: u64) -> ClaimEntry {
        ClaimEntry {
            stream: stream.to_owned(),
            revision,
        }
    }

    fn payment(name: &str) -> StreamName {
        StreamName::parse(name).unwrap()
    }

    #[test]
    fn the_rules() {
        let here = payment("payment-a");
        assert_eq!(decide(&here, &[]), ClaimDecision::Proceed, "a first attempt");
        for (earlier, expected, case) in [
            (
                vec![(entry("payment-a", 3), Landing::Stored)],
                ClaimDecision::Duplicate,
                "landed here",
            ),
            (
                vec![(entry("payment-b", 0), Landing::Stored)],
                ClaimDecision::Duplicate,
                "landed elsewhere",
            ),
            (
                vec![(entry("payment-a", 3), Landing::NotYet)],
                ClaimDecision::Proceed,
                "a retry here",
            ),
            (
                vec![(entry("payment-b", 0), Landing::NotYet)],
                ClaimDecision::Duplicate,
                "maybe landing elsewhere",
            ),
            (
                vec![(entry("payment-b", 0), Landing::Other)],
                ClaimDecision::Proceed,
                "died elsewhere",
            ),
            (
                vec![
                    (entry("payment-a", 3), Landing::Other),
                    (entry("payment-a", 4), Landing::Stored),
                ],
                ClaimDecision::Duplicate,
                "every attempt counts, not only the last",
            ),
        ] {
            assert_eq!(decide(&here, &earlier), expected, "{case}");
        }
    }

    #[test]
    fn claim_payloads_round_trip_and_garbage_is_corrupt() {
        let claim = entry("payment-a", 7);
        assert_eq!(ClaimEntry::from_payload(1, &claim.to_payload()).unwrap(), claim);
        assert!(matches!(
            ClaimEntry::from_payload(9, b"{\"stream\":1}"),
            Err(StoreError::Corrupt { position: 9, .. })
        ));
    }

    /// A model of the server (streams with revision checks, claim streams) and of attempts that run the
    /// protocol one server call at a time, so a scheduler can interleave them and kill them anywhere.
    #[derive(Debug, Default)]
    struct Server {
        /// Per stream, the event id at each revision.
        streams: HashMap<String, Vec<u8>>,
        /// Per event id, the claim entries.
        claims: HashMap<u8, Vec<ClaimEntry>>,
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Outcome {
        Stored,
        Duplicate,
        Conflict,
    }

    #[derive(Debug, Clone)]
    enum Step {
        ReadTip,
        ReadClaims {
            last: Option<u64>,
        },
        Observe {
            last: Option<u64>,
            entries: Vec<ClaimEntry>,
            seen: Vec<(ClaimEntry, Landing)>,
        },
        Claim {
            last: Option<u64>,
            claims_len: usize,
        },
        Append {
            last: Option<u64>,
        },
        Done(Outcome),
    }

    #[derive(Debug, Clone)]
    struct Attempt {
        id: u8,
        stream: String,
        step: Step,
    }

    impl Attempt {
        fn new(id: u8, stream: &str) -> Attempt {
            Attempt {
                id,
                stream: stream.to_owned(),
                step: Step::ReadTip,
            }
        }

        /// One server call (or pure decision), as the store's append runs them.
        fn advance(&mut self, server: &mut Server) {
            let step = std::mem::replace(&mut self.step, Step::ReadTip);
            self.step = match step {
                Step::ReadTip => {
                    let last = server
                        .streams
                        .get(&self.stream)
                        .and_then(|events| events.len().checked_sub(1));
                    Step::ReadClaims {
                        last: last.map(|last| last as u64),
                    }
                }
                Step::ReadClaims { last } => Step::Observe {
                    last,
                    entries: server.claims.get(&self.id).cloned().unwrap_or_default(),
                    seen: Vec::new(),
                },
                Step::Observe {
                    last,
                    entries,
                    mut seen,
                } if seen.len() < entries.len() => {
                    let entry = entries[seen.len()].clone();
                    let at = server
                        .streams
                        .get(&entry.stream)
                        .and_then(|events| events.get(entry.revision as usize));
                    let landing = match at {
                        Some(id) if *id == self.id => Landing::Stored,
                        Some(_) => Landing::Other,
                        None => Landing::NotYet,
                    };
                    seen.push((entry, landing));
                    Step::Observe { last, entries, seen }
                }
                Step::Observe { last, seen, .. } => match decide(&payment(&self.stream), &seen) {
                    ClaimDecision::Duplicate => Step::Done(Outcome::Duplicate),
                    ClaimDecision::Proceed => Step::Claim {
                        last,
                        claims_len: seen.len(),
                    },
                },
                Step::Claim { last, claims_len } => {
                    let claims = server.claims.entry(self.id).or_default();
                    if claims.len() == claims_len {
                        claims.push(entry(&self.stream, last.map_or(0, |last| last + 1)));
                        Step::Append { last }
                    } else {
                        Step::ReadClaims { last }
                    }
                }
                Step::Append { last } => {
                    let events = server.streams.entry(self.stream.clone()).or_default();
                    if events.len().checked_sub(1).map(|last| last as u64) == last {
                        events.push(self.id);
                        Step::Done(Outcome::Stored)
                    } else {
                        Step::Done(Outcome::Conflict)
                    }
                }
                Step::Done(outcome) => Step::Done(outcome),
            };
        }

        fn outcome(&self) -> Option<&Outcome> {
            match &self.step {
                Step::Done(outcome) => Some(outcome),
                _ => None,
            }
        }
    }

    /// Streams `a` and `b`; ids 1..=3 are contested, and every 0 becomes an id of its own (100 and up) that only
    /// moves its stream on, so attempts of one id decide against streams that grew in between.
    fn attempt_strategy() -> impl Strategy<Value = Vec<(u8, bool)>> {
        proptest::collection::vec((0_u8..=3, any::<bool>()), 2..9).prop_map(|attempts| {
            (100_u8..)
                .zip(attempts)
                .map(|(filler, (id, on_b))| (if id == 0 { filler } else { id }, on_b))
                .collect()
        })
    }

    /// Runs `attempt` until it is done.
    fn finish(attempt: &mut Attempt, server: &mut Server) {
        while attempt.outcome().is_none() {
            attempt.advance(server);
        }
    }

    /// Advances `attempt` by `count` server calls.
    fn steps(attempt: &mut Attempt, server: &mut Server, count: usize) {
        for _ in 0..count {
            attempt.advance(server);
        }
    }

    /// The interleaving that a check of the last claim entry alone gets wrong: A reads the stream while it is
    /// empty, B reads it after a filler moved it on and claims revision 1, A then claims revision 0 (B's place
    /// still free), B lands the id at revision 1 and A conflicts. The last entry names revision 0, which holds
    /// the filler: a retry must still find the id stored at revision 1.
    #[test]
    fn every_earlier_attempt_counts_not_only_the_last() {
        let mut server = Server::default();
        let mut first = Attempt::new(1, "payment-a");
        steps(&mut first, &mut server, 1);
        finish(&mut Attempt::new(100, "payment-a"), &mut server);
        let mut second = Attempt::new(1, "payment-a");
        steps(&mut second, &mut server, 4);
        assert_eq!(server.claims[&1], vec![entry("payment-a", 1)]);
        steps(&mut first, &mut server, 4);
        assert_eq!(server.claims[&1], vec![entry("payment-a", 1), entry("payment-a", 0)]);
        finish(&mut second, &mut server);
        finish(&mut first, &mut server);
        assert_eq!(
            (second.outcome(), first.outcome()),
            (Some(&Outcome::Stored), Some(&Outcome::Conflict))
        );
        let mut retry = Attempt::new(1, "payment-a");
        finish(&mut retry, &mut server);
        assert_eq!(retry.outcome(), Some(&Outcome::Duplicate));
        assert_eq!(server.streams["payment-a"], vec![100, 1]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4_000))]

        /// Any interleaving of attempts (some killed midway): every id is stored at most once, and a Duplicate
        /// is only ever answered when another attempt of the id exists.
        #[test]
        fn an_id_is_stored_at_most_once_whatever_the_interleaving(
            attempts in attempt_strategy(),
            schedule in proptest::collection::vec((any::<prop::sample::Index>(), 0_u8..30), 0..300),
        ) {
            let mut server = Server::default();
            let mut running: Vec<Attempt> = attempts
                .iter()
                .map(|(id, on_b)| Attempt::new(*id, if *on_b { "payment-b" } else { "payment-a" }))
                .collect();
            let mut killed = vec![false; running.len()];
            for (pick, roll) in schedule {
                let index = pick.index(running.len());
                if roll == 0 {
                    killed[index] = true;
                } else if !killed[index] {
                    running[index].advance(&mut server);
                }
            }
            // The survivors run to the end, one after another.
            for (attempt, killed) in running.iter_mut().zip(&killed) {
                while !*killed && attempt.outcome().is_none() {
                    attempt.advance(&mut server);
                }
            }
            let mut stored: HashMap<u8, usize> = HashMap::new();
            for id in server.streams.values().flatten() {
                *stored.entry(*id).or_default() += 1;
            }
            for (id, count) in &stored {
                prop_assert!(*count == 1, "id {} stored {} times: {:?}", id, count, server);
            }
            for attempt in &running {
                if attempt.outcome() == Some(&Outcome::Duplicate) {
                    let others = running.iter().filter(|other| other.id == attempt.id).count();
                    prop_assert!(others > 1, "a duplicate with no other attempt");
                }
            }

            // Half-done claims resolve: a retry on a stream every earlier attempt of the id used stores the id
            // or finds it stored.
            for id in [1_u8, 2, 3] {
                let streams: Vec<&str> = attempts
                    .iter()
                    .filter(|(attempt_id, _)| *attempt_id == id)
                    .map(|(_, on_b)| if *on_b { "payment-b" } else { "payment-a" })
                    .collect();
                let Some(first) = streams.first() else { continue };
                if streams.iter().any(|stream| stream != first) {
                    continue;
                }
                let mut retry = Attempt::new(id, first);
                while retry.outcome().is_none() {
                    retry.advance(&mut server);
                }
                let now_stored = server.streams.values().flatten().filter(|stored| **stored == id).count();
                prop_assert_eq!(now_stored, 1, "id {} after a retry: {:?}", id, retry.outcome());
            }
        }
    }
}
