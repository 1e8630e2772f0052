//! Group commit: one writer per store handle answers many appends with one transaction.
//!
//! Callers validate their append, queue it on a bounded channel and wait on a oneshot reply. The backend's
//! writer takes the first queued append, gathers whatever else is queued or arrives within a moment (see
//! [`GroupBuilder`]; up to [`GROUP_REQUESTS_MAX`] appends, [`GROUP_EVENTS_MAX`] events and
//! [`GROUP_PAYLOAD_BYTES_MAX`] payload bytes), and commits them together: one global lock, one fsync, for the
//! whole group. Each append is still decided on its own: [`plan_group`] checks its expected
//! revision against the database *and* the appends before it in the group, and its event ids against the
//! database and the group, so one bad append is answered with its typed error while the others commit.
//!
//! The planning is pure (state in, rows and answers out), shared by every backend and unit-tested here; the
//! backends only read the state under their lock, insert the planned rows and commit.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use crate::chain::event_hash;
use crate::error::StoreError;
use crate::event::{AppendOutcome, Head, NewEvent, RecordedEvent, validate_append};
use crate::local_commits::LocalCommits;
use crate::stream::ExpectedRevision;
use crate::stream::StreamName;

/// Most appends one group commit carries.
pub(crate) const GROUP_REQUESTS_MAX: usize = 128;

/// Once a group holds this many events, the writer stops draining the queue and commits.
pub(crate) const GROUP_EVENTS_MAX: usize = 4_096;

/// Once a group's payloads add up to this many bytes (32 MiB), the writer stops draining the queue and commits;
/// bounds the memory of one transaction (the planned rows copy the payloads).
pub(crate) const GROUP_PAYLOAD_BYTES_MAX: usize = 32 * 1024 * 1024;

/// Appends that may wait in a writer's queue; callers beyond it wait for room (back-pressure).
pub(crate) const APPEND_QUEUE_REQUESTS_MAX: usize = 1_024;

/// The reply to one queued append.
pub(crate) type AppendReply = oneshot::Sender<Result<AppendOutcome, StoreError>>;

/// One validated append waiting for the writer.
#[derive(Debug)]
pub(crate) struct PendingAppend {
    pub(crate) stream: StreamName,
    pub(crate) expected: ExpectedRevision,
    pub(crate) events: Vec<NewEvent>,
    pub(crate) reply: AppendReply,
}

/// Validates an append and queues it for the store's writer; resolves with the writer's verdict.
/// A writer that is gone (store closed or crashed) answers [`StoreError::Closed`].
pub(crate) async fn submit(
    queue: &mpsc::Sender<PendingAppend>,
    stream: &StreamName,
    expected: ExpectedRevision,
    events: Vec<NewEvent>,
) -> Result<AppendOutcome, StoreError> {
    validate_append(stream, &events)?;
    let (reply, answer) = oneshot::channel();
    let pending = PendingAppend {
        stream: stream.clone(),
        expected,
        events,
        reply,
    };
    queue.send(pending).await.map_err(|_| StoreError::Closed)?;
    answer.await.map_err(|_| StoreError::Closed)?
}

/// What the writer needs from the database, read under the global write lock.
#[derive(Debug, Default)]
pub(crate) struct StoredState {
    /// Last revision of each stream of the group that exists; absent streams do not exist.
    pub(crate) last_revisions: HashMap<StreamName, u64>,
    /// The group's event ids that are already stored.
    pub(crate) stored_event_ids: HashSet<Uuid>,
}

/// What a writer that has not read the database assumes it holds for `group`: every stream as the group's first
/// append to it expects it, and none of the group's event ids stored. `None` when an append expects
/// [`ExpectedRevision::Any`], which names no revision to assume.
///
/// A plan made on this state is only right if the assumption holds: the writer commits it only after checking,
/// under the global write lock, that the head and each stream's last revision are as assumed (a stored event id
/// is refused by the unique index), and otherwise plans again on the state read under the lock.
pub(crate) fn assumed_state(group: &[PendingAppend]) -> Option<StoredState> {
    let mut state = StoredState::default();
    let mut seen = HashSet::new();
    for pending in group {
        if !seen.insert(&pending.stream) {
            continue;
        }
        match pending.expected {
            ExpectedRevision::Any => return None,
            ExpectedRevision::NoStream => {}
            ExpectedRevision::Exact(revision) => {
                state.last_revisions.insert(pending.stream.clone(), revision);
            }
        }
    }
    Some(state)
}

/// The rows to insert and the answer to each append of a group, in the group's order.
#[derive(Debug)]
pub(crate) struct GroupPlan {
    pub(crate) rows: Vec<RecordedEvent>,
    pub(crate) outcomes: Vec<Result<AppendOutcome, StoreError>>,
    /// The head once `rows` are committed.
    pub(crate) head: Head,
}

/// Longest a writer waits, after the first append of a group, for the callers of its previous group to come back,
/// in microseconds.
pub(crate) const GROUP_GATHER_WAIT_US: u64 = 200;

/// Collects one group: the first append, then whatever is queued, waiting briefly for more.
///
/// A writer that starts committing the instant one append arrives splits N concurrent callers into a group of 1
/// and a group of N-1, paying two fsyncs where one would do: the callers it just answered need a moment to
/// queue their next append. So a builder expects as many appends as the previous group had and, until the queue
/// has delivered that many, lets the writer yield for at most [`GROUP_GATHER_WAIT_US`]. A lone writer
/// (previous group of 1) never waits; a load that drops costs one wait before the expectation follows it.
///
/// Appends whose caller has gone away (reply receiver dropped) are skipped, so a cancelled append that the
/// writer has not started is not written.
#[derive(Debug)]
pub(crate) struct GroupBuilder {
    group: Vec<PendingAppend>,
    events: usize,
    payload_bytes: usize,
    expected_appends: usize,
    deadline: Instant,
}

impl GroupBuilder {
    /// Starts a group with `first`, expecting as many appends as the previous group (`previous_appends`).
    pub(crate) fn start(first: PendingAppend, previous_appends: usize) -> Self {
        let mut builder = Self {
            group: Vec::with_capacity(previous_appends.clamp(1, GROUP_REQUESTS_MAX)),
            events: 0,
            payload_bytes: 0,
            expected_appends: previous_appends.clamp(1, GROUP_REQUESTS_MAX),
            deadline: Instant::now() + Duration::from_micros(GROUP_GATHER_WAIT_US),
        };
        builder.push(first);
        builder
    }

    /// Takes every queued append that fits; true when the group is complete: full, as large as expected, or out
    /// of gathering time. The writer yields between calls that return false.
    pub(crate) fn drain(&mut self, queue: &mut mpsc::Receiver<PendingAppend>) -> bool {
        while !self.is_full() {
            match queue.try_recv() {
                Ok(pending) => self.push(pending),
                Err(_) => break,
            }
        }
        self.is_full() || self.group.len() >= self.expected_appends || Instant::now() >= self.deadline
    }

    /// The collected group (possibly empty if every caller went away).
    pub(crate) fn finish(self) -> Vec<PendingAppend> {
        self.group
    }

    fn is_full(&self) -> bool {
        self.group.len() >= GROUP_REQUESTS_MAX
            || self.events >= GROUP_EVENTS_MAX
            || self.payload_bytes >= GROUP_PAYLOAD_BYTES_MAX
    }

    fn push(&mut self, pending: PendingAppend) {
        if !pending.reply.is_closed() {
            self.events += pending.events.len();
            self.payload_bytes += pending.events.iter().map(|event| event.payload.len()).sum::<usize>();
            self.group.push(pending);
        }
    }
}

/// The distinct streams of a group, for the revision lookup.
pub(crate) fn group_streams(group: &[PendingAppend]) -> Vec<&StreamName> {
    let mut seen = HashSet::new();
    group
        .iter()
        .map(|pending| &pending.stream)
        .filter(|stream| seen.insert(*stream))
        .collect()
}

/// Every event id of a group, for the duplicate lookup.
pub(crate) fn group_event_ids(group: &[PendingAppend]) -> Vec<Uuid> {
    group
        .iter()
        .flat_map(|pending| pending.events.iter().map(|event| event.event_id))
        .collect()
}

/// The timestamp of a commit: now truncated to microseconds (what every backend stores exactly), but never
/// before the previous event, so `recorded_at` never goes backwards even if the clock does.
pub(crate) fn commit_timestamp(now: OffsetDateTime, previous: Option<OffsetDateTime>) -> OffsetDateTime {
    let truncated = now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000).unwrap_or(now);
    match previous {
        Some(previous) if previous > truncated => previous,
        _ => truncated,
    }
}

/// Decides every append of `group` in order against `stored` and the appends before it, assigns positions
/// after `head`, stamps and hashes the accepted events.
pub(crate) fn plan_group(head: &Head, now: OffsetDateTime, stored: &StoredState, group: &[PendingAppend]) -> GroupPlan {
    let recorded_at = commit_timestamp(now, head.recorded_at);
    let mut last_revisions: HashMap<&StreamName, u64> = stored
        .last_revisions
        .iter()
        .map(|(stream, revision)| (stream, *revision))
        .collect();
    let mut group_event_ids = HashSet::new();
    let mut rows = Vec::new();
    let mut position = head.position;
    let mut prev_hash = head.hash;
    let mut outcomes = Vec::with_capacity(group.len());
    for pending in group {
        let actual = last_revisions.get(&pending.stream).copied();
        if !pending.expected.is_satisfied_by(actual) {
            let stream = pending.stream.clone();
            outcomes.push(Err(StoreError::Conflict {
                stream,
                expected: pending.expected,
                actual,
            }));
            continue;
        }
        let duplicate = pending.events.iter().find(|event| {
            stored.stored_event_ids.contains(&event.event_id) || group_event_ids.contains(&event.event_id)
        });
        if let Some(duplicate) = duplicate {
            outcomes.push(Err(StoreError::DuplicateEventId {
                event_id: duplicate.event_id,
            }));
            continue;
        }
        let first_position = position + 1;
        let mut revision = actual.map_or(0, |last| last + 1);
        for event in &pending.events {
            position += 1;
            let mut row = RecordedEvent {
                position,
                stream: pending.stream.clone(),
                revision,
                event_id: event.event_id,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                payload: event.payload.clone(),
                actor: event.actor.clone(),
                recorded_at,
                prev_hash,
                hash: [0; 32],
            };
            row.hash = event_hash(&prev_hash, &row);
            prev_hash = row.hash;
            group_event_ids.insert(event.event_id);
            rows.push(row);
            revision += 1;
        }
        let last_revision = revision - 1;
        last_revisions.insert(&pending.stream, last_revision);
        outcomes.push(Ok(AppendOutcome {
            last_revision,
            first_position,
            last_position: position,
            group_appends: 0,
        }));
    }
    let group_appends = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    for outcome in outcomes.iter_mut().flatten() {
        outcome.group_appends = group_appends;
    }
    let head = match rows.last() {
        Some(last) => Head {
            position: last.position,
            hash: last.hash,
            recorded_at: Some(last.recorded_at),
        },
        None => *head,
    };
    GroupPlan { rows, outcomes, head }
}

/// Publishes a committed group's head and answers its appends.
pub(crate) fn deliver(group: Vec<PendingAppend>, plan: GroupPlan, published: &watch::Sender<Head>) {
    deliver_sharing(group, plan, published, None);
}

/// Like [`deliver`], handing the committed rows to the handle's own subscribers through `commits` first.
pub(crate) fn deliver_sharing(
    group: Vec<PendingAppend>,
    mut plan: GroupPlan,
    published: &watch::Sender<Head>,
    commits: Option<&LocalCommits>,
) {
    if !plan.rows.is_empty() {
        if let Some(commits) = commits {
            commits.send(&mut plan.rows);
        }
        published.send_replace(plan.head);
    }
    for (pending, outcome) in group.into_iter().zip(plan.outcomes) {
        answer(pending.reply, outcome);
    }
}

/// Answers every append of a group that failed as a whole with the same error.
pub(crate) fn fail_group(group: Vec<PendingAppend>, error: &StoreError) {
    tracing::warn!(%error, appends = group.len(), "group commit failed");
    for pending in group {
        answer(pending.reply, Err(error.clone()));
    }
}

fn answer(reply: AppendReply, outcome: Result<AppendOutcome, StoreError>) {
    if reply.send(outcome).is_err() {
        // The caller stopped waiting (timeout, cancellation); the outcome stands either way.
        tracing::debug!("append caller went away before its answer");
    }
}

/// Why a group's transaction failed.
#[derive(Debug)]
pub(crate) enum GroupFailure {
    /// A unique index (event id, or stream and revision) refused a row that the plan had accepted. This cannot
    /// happen while every writer takes the global lock; if it does, the group is retried one append at a time.
    UniqueViolation(StoreError),
    /// Anything else: every append of the group gets this error.
    Other(StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(name: &str) -> StreamName {
        StreamName::parse(name).unwrap()
    }

    fn pending(name: &str, expected: ExpectedRevision, event_ids: &[u128]) -> PendingAppend {
        let events = event_ids
            .iter()
            .map(|id| NewEvent {
                event_id: Uuid::from_u128(*id),
                event_type: "T".to_owned(),
                schema_version: 1,
                payload: b"{}".to_vec(),
                actor: "test".to_owned(),
            })
            .collect();
        PendingAppend {
            stream: stream(name),
            expected,
            events,
            reply: oneshot::channel().0,
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_000_000_999).unwrap()
    }

    #[test]
    fn each_append_is_decided_against_the_database_and_the_group_before_it() {
        let stored = StoredState {
            last_revisions: HashMap::from([(stream("a"), 4)]),
            stored_event_ids: HashSet::from([Uuid::from_u128(99)]),
        };
        let group = vec![
            pending("a", ExpectedRevision::Exact(4), &[1, 2]),
            pending("a", ExpectedRevision::Exact(4), &[3]),
            pending("b", ExpectedRevision::NoStream, &[4]),
            pending("b", ExpectedRevision::NoStream, &[5]),
            pending("c", ExpectedRevision::Any, &[6, 99]),
            pending("c", ExpectedRevision::Any, &[1]),
            pending("a", ExpectedRevision::Exact(6), &[7]),
        ];
        let head = Head {
            position: 10,
            hash: [3; 32],
            recorded_at: None,
        };
        let plan = plan_group(&head, now(), &stored, &group);

        let outcome = |index: usize| plan.outcomes[index].as_ref().ok().copied();
        assert_eq!(
            outcome(0),
            Some(AppendOutcome {
                last_revision: 6,
                first_position: 11,
                last_position: 12,
                group_appends: 3
            })
        );
        assert!(matches!(
            plan.outcomes[1],
            Err(StoreError::Conflict { actual: Some(6), .. })
        ));
        assert_eq!(
            outcome(2),
            Some(AppendOutcome {
                last_revision: 0,
                first_position: 13,
                last_position: 13,
                group_appends: 3
            })
        );
        assert!(matches!(
            plan.outcomes[3],
            Err(StoreError::Conflict { actual: Some(0), .. })
        ));
        assert!(matches!(plan.outcomes[4], Err(StoreError::DuplicateEventId { event_id }) if event_id.as_u128() == 99));
        assert!(matches!(plan.outcomes[5], Err(StoreError::DuplicateEventId { event_id }) if event_id.as_u128() == 1));
        assert_eq!(
            outcome(6),
            Some(AppendOutcome {
                last_revision: 7,
                first_position: 14,
                last_position: 14,
                group_appends: 3
            })
        );

        let positions: Vec<_> = plan
            .rows
            .iter()
            .map(|row| (row.position, row.stream.as_str(), row.revision))
            .collect();
        assert_eq!(positions, vec![(11, "a", 5), (12, "a", 6), (13, "b", 0), (14, "a", 7)]);
        assert_eq!(plan.rows[0].prev_hash, [3; 32]);
        for pair in plan.rows.windows(2) {
            assert_eq!(pair[1].prev_hash, pair[0].hash);
        }
        for row in &plan.rows {
            assert_eq!(row.hash, event_hash(&row.prev_hash, row));
        }
        assert_eq!(plan.head.position, 14);
        assert_eq!(plan.head.hash, plan.rows[3].hash);
    }

    #[test]
    fn the_assumed_state_is_what_each_streams_first_append_expects() {
        let group = vec![
            pending("a", ExpectedRevision::Exact(4), &[1]),
            pending("a", ExpectedRevision::Exact(9), &[2]),
            pending("b", ExpectedRevision::NoStream, &[3]),
        ];
        let assumed = assumed_state(&group).expect("no Any in the group");
        assert_eq!(assumed.last_revisions, HashMap::from([(stream("a"), 4)]));
        assert!(assumed.stored_event_ids.is_empty());
        let plan = plan_group(&Head::EMPTY, now(), &assumed, &group);
        assert!(plan.outcomes[0].is_ok() && plan.outcomes[2].is_ok());
        assert!(matches!(
            plan.outcomes[1],
            Err(StoreError::Conflict { actual: Some(5), .. })
        ));

        let with_any = vec![
            pending("a", ExpectedRevision::Exact(4), &[1]),
            pending("c", ExpectedRevision::Any, &[2]),
        ];
        assert!(assumed_state(&with_any).is_none(), "Any assumes nothing");
    }

    #[test]
    fn a_group_that_writes_nothing_keeps_the_head() {
        let group = vec![pending("a", ExpectedRevision::Exact(0), &[1])];
        let head = Head {
            position: 3,
            hash: [1; 32],
            recorded_at: Some(now()),
        };
        let plan = plan_group(&head, now(), &StoredState::default(), &group);
        assert!(plan.rows.is_empty());
        assert_eq!(plan.head, head);
        assert!(matches!(
            plan.outcomes[0],
            Err(StoreError::Conflict { actual: None, .. })
        ));
    }

    #[test]
    fn commit_timestamps_are_microseconds_and_never_go_backwards() {
        let stamped = commit_timestamp(now(), None);
        assert_eq!(stamped.unix_timestamp_nanos(), 1_700_000_000_000_000_000);
        let later = now() + time::Duration::seconds(5);
        assert_eq!(commit_timestamp(now(), Some(later)), later);
    }

    #[test]
    fn groups_are_bounded_and_skip_abandoned_appends() {
        let (sender, mut queue) = mpsc::channel(APPEND_QUEUE_REQUESTS_MAX);
        let mut receivers = Vec::new();
        for index in 0..(GROUP_REQUESTS_MAX as u128 + 10) {
            let (reply, receiver) = oneshot::channel();
            let mut append = pending("a", ExpectedRevision::Any, &[index]);
            append.reply = reply;
            if index != 1 {
                receivers.push(receiver);
            }
            sender.try_send(append).unwrap();
        }
        let first = queue.try_recv().unwrap();
        let mut builder = GroupBuilder::start(first, 1);
        assert!(builder.drain(&mut queue), "a full group is complete");
        let group = builder.finish();
        assert_eq!(group.len(), GROUP_REQUESTS_MAX);
        assert!(
            group.iter().all(|append| append.events[0].event_id.as_u128() != 1),
            "abandoned append skipped"
        );
    }

    #[test]
    fn a_group_waits_briefly_for_as_many_appends_as_the_previous_one() {
        let (sender, mut queue) = mpsc::channel(APPEND_QUEUE_REQUESTS_MAX);
        let mut receivers = Vec::new();
        let mut send = |id: u128| {
            let (reply, receiver) = oneshot::channel();
            receivers.push(receiver);
            let mut append = pending("a", ExpectedRevision::Any, &[id]);
            append.reply = reply;
            sender.try_send(append).unwrap();
        };
        send(1);
        let mut lone = GroupBuilder::start(queue.try_recv().unwrap(), 1);
        assert!(lone.drain(&mut queue), "a lone writer never waits");

        send(2);
        let mut builder = GroupBuilder::start(queue.try_recv().unwrap(), 3);
        assert!(!builder.drain(&mut queue), "expects 3, has 1");
        send(3);
        send(4);
        assert!(builder.drain(&mut queue), "3 arrived");
        assert_eq!(builder.finish().len(), 3);

        send(5);
        // Taken before the builder sets its deadline, so the bound below holds however the thread is scheduled.
        let started = Instant::now();
        let mut builder = GroupBuilder::start(queue.try_recv().unwrap(), 3);
        while !builder.drain(&mut queue) {
            std::thread::yield_now();
        }
        assert!(
            started.elapsed() >= Duration::from_micros(GROUP_GATHER_WAIT_US),
            "waited out the gather time"
        );
        assert_eq!(builder.finish().len(), 1);
    }

    #[test]
    fn a_group_stops_at_its_payload_budget() {
        let (sender, mut queue) = mpsc::channel(APPEND_QUEUE_REQUESTS_MAX);
        let mut receivers = Vec::new();
        for id in 0..3 {
            let (reply, receiver) = oneshot::channel();
            receivers.push(receiver);
            let mut append = pending("a", ExpectedRevision::Any, &[id]);
            append.events[0].payload = vec![0; GROUP_PAYLOAD_BYTES_MAX / 2];
            append.reply = reply;
            sender.try_send(append).unwrap();
        }
        let mut builder = GroupBuilder::start(queue.try_recv().unwrap(), 3);
        assert!(builder.drain(&mut queue), "the budget is spent");
        assert_eq!(builder.finish().len(), 2);
        assert!(queue.try_recv().is_ok(), "the third append waits for the next group");
    }
}
