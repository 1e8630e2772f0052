//! One command queue per payment stream in each ledger instance: the one write path.
//!
//! Commands on one payment never race each other through the log inside one instance. Each payment with
//! waiting commands has one task that owns the payment's folded state; it takes every command waiting (up to
//! [`BATCH_COMMANDS_MAX`](crate::batch::BATCH_COMMANDS_MAX)), decides them one after another with
//! [`plan_batch`], appends their events together with the stream revision the plan was made on, and answers
//! each command. A hot payment therefore gets cheaper per refund under load instead of dearer: sixteen
//! concurrent refunds cost one decision pass and one append, not sixteen appends of which fifteen conflict.
//!
//! Other instances may write the same stream; the log's expected revision catches that: on a conflict the task
//! reads what was written since its state, folds it and plans the batch again. A batch that writes nothing
//! (reads, repeats, refusals) is answered only from a state read after the commands arrived, so an answer
//! never describes a payment older than the request; the one exception is a batch of outcome reports on refunds
//! the fold already holds as final, which no later event can change (see `reports_on_final_refund`).
//!
//! When its queue runs empty the task ends and leaves the folded state in a bounded cache
//! ([`STREAM_CACHE_PAYMENTS_MAX`] payments), so the next command on the payment reads only the events
//! appended since. The task, not the caller, does the work, so a caller that goes away (a closed HTTP
//! connection) never leaves a decision half recorded.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use domain::{EventDecodeError, FoldError, Payment, PaymentCommand, PaymentId, Policy, RefundRequestId};
use eventlog::{EventStore, ExpectedRevision, StoreError, StreamName};
use projections::{FoldedStream, StreamFoldError, fold_payment_stream};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;
use uuid::Uuid;

use crate::batch::{BATCH_COMMANDS_MAX, BatchCommand, BatchPlan, Planned, Verdict, plan_batch};
use crate::clock::Clock;
use crate::error::AppError;
use crate::observe::{self, Observer};
use crate::refund_payments::RefundPayments;

/// Commands that may wait on one payment; beyond it a command is refused with [`AppError::Busy`].
pub const STREAM_QUEUE_COMMANDS_MAX: usize = 1_024;
/// Attempts to decide and append one batch before its commands are answered with [`AppError::Contention`]
/// (only other instances writing the same payment make an attempt fail).
pub const DECIDE_ATTEMPTS_MAX: usize = 100;
/// Events read per call while folding a stream.
pub const LOAD_BATCH_EVENTS_MAX: usize = 1_000;
/// Longest pause after repeated conflicts before deciding again (random up to this, growing with the attempt,
/// so two instances writing one payment fall out of step).
pub const CONFLICT_BACKOFF_MS_MAX: u64 = 20;
/// Conflicts in a row a batch takes without a pause: the fresh read is usually enough.
const CONFLICTS_BEFORE_BACKOFF: usize = 2;
/// Payments whose folded streams are kept while no command waits on them; the oldest goes first.
pub const STREAM_CACHE_PAYMENTS_MAX: usize = 10_000;

/// A payment stream folded up to a point (the same fold as-of reads and audit use).
pub(crate) type Folded = FoldedStream;

/// The revision an append after `folded` expects.
fn expected(folded: &Folded) -> ExpectedRevision {
    folded
        .revision
        .map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact)
}

/// What a command (or a read) got.
#[derive(Debug, Clone)]
pub(crate) struct Decided {
    pub(crate) verdict: Verdict,
    /// The payment as it stands after the command.
    pub(crate) payment: Payment,
    /// The global position a reader waits for to see this answer in the read models: the command's last event,
    /// or the stream's last event when it wrote nothing (0 for a payment the log does not know).
    pub(crate) position: u64,
}

/// A command waiting on its payment's queue.
#[derive(Debug)]
struct Request {
    /// `None` reads the payment as it stands.
    command: Option<PaymentCommand>,
    actor: String,
    reply: oneshot::Sender<Result<Decided, AppError>>,
    /// The caller's span: the batch that decides the command is traced inside it.
    span: tracing::Span,
}

/// Why a batch could not be decided; every command of the batch gets it.
#[derive(Debug, Clone)]
enum BatchFailure {
    Store(StoreError),
    Decode { position: u64, source: EventDecodeError },
    Fold { position: u64, source: FoldError },
    Contention { stream: String },
}

impl From<BatchFailure> for AppError {
    fn from(failure: BatchFailure) -> Self {
        match failure {
            BatchFailure::Store(error) => AppError::Store(error),
            BatchFailure::Decode { position, source } => AppError::Decode { position, source },
            BatchFailure::Fold { position, source } => AppError::Fold { position, source },
            BatchFailure::Contention { stream } => AppError::Contention {
                stream,
                attempts: DECIDE_ATTEMPTS_MAX,
            },
        }
    }
}

/// The command queues of one ledger instance, and what their tasks decide with.
pub(crate) struct PaymentQueues {
    store: Arc<dyn EventStore>,
    policy: Policy,
    clock: Arc<dyn Clock>,
    observer: Arc<dyn Observer>,
    conflict_retries: AtomicU64,
    streams: Mutex<Streams>,
    /// The payments of refunds this instance saw recorded, for Antom's notifications.
    refund_payments: Mutex<RefundPayments>,
}

/// The running queues and the folds of idle payments, under one lock: a command is queued, and a queue that
/// ran empty is retired, each while holding it, so no command can reach a queue whose task has ended.
#[derive(Default)]
struct Streams {
    running: HashMap<StreamName, mpsc::Sender<Request>>,
    /// Each idle payment's fold, with the stamp of its latest entry in `idle_arrival`.
    idle: HashMap<StreamName, (Folded, u64)>,
    /// Idle payments in the order they were parked, each with its stamp. A payment that runs and is parked again
    /// gets a new entry; its older ones no longer match `idle` (stale) and are skipped, or dropped once the
    /// list holds twice the cache's bound, so the list stays bounded however often one payment is used.
    idle_arrival: VecDeque<(StreamName, u64)>,
    /// Stamps handed out so far.
    parked: u64,
}

impl Streams {
    fn park(&mut self, stream: StreamName, folded: Folded) {
        self.parked += 1;
        let stamp = self.parked;
        self.idle.insert(stream.clone(), (folded, stamp));
        self.idle_arrival.push_back((stream, stamp));
        if self.idle_arrival.len() > 2 * STREAM_CACHE_PAYMENTS_MAX {
            let idle = &self.idle;
            self.idle_arrival
                .retain(|(stream, stamp)| idle.get(stream).is_some_and(|(_, current)| current == stamp));
        }
        while self.idle.len() > STREAM_CACHE_PAYMENTS_MAX {
            let Some((oldest, stamp)) = self.idle_arrival.pop_front() else {
                break;
            };
            if self.idle.get(&oldest).is_some_and(|(_, current)| *current == stamp) {
                self.idle.remove(&oldest);
            }
        }
    }

    fn unpark(&mut self, stream: &StreamName) -> Option<Folded> {
        // The arrival list keeps the entry; it is stale from now on.
        self.idle.remove(stream).map(|(folded, _)| folded)
    }
}

impl std::fmt::Debug for PaymentQueues {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PaymentQueues")
            .field("conflict_retries", &self.conflict_retries)
            .finish_non_exhaustive()
    }
}

impl PaymentQueues {
    pub(crate) fn new(
        store: Arc<dyn EventStore>,
        policy: Policy,
        clock: Arc<dyn Clock>,
        observer: Arc<dyn Observer>,
    ) -> Self {
        Self {
            store,
            policy,
            clock,
            observer,
            conflict_retries: AtomicU64::new(0),
            streams: Mutex::new(Streams::default()),
            refund_payments: Mutex::new(RefundPayments::default()),
        }
    }

    pub(crate) fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub(crate) fn observer(&self) -> &Arc<dyn Observer> {
        &self.observer
    }

    pub(crate) fn policy(&self) -> &Policy {
        &self.policy
    }

    pub(crate) fn conflict_retries(&self) -> u64 {
        self.conflict_retries.load(Ordering::Relaxed)
    }

    /// Remembers that the log holds `refund_request_id` on `payment_id`.
    pub(crate) fn remember_refund(&self, refund_request_id: &RefundRequestId, payment_id: &PaymentId) {
        // A panic while the lock was held leaves a map that is still whole.
        let mut payments = self.refund_payments.lock().unwrap_or_else(PoisonError::into_inner);
        payments.remember(refund_request_id, payment_id);
    }

    /// The payment of `refund_request_id`, if this instance saw it recorded.
    pub(crate) fn refund_payment(&self, refund_request_id: &RefundRequestId) -> Option<PaymentId> {
        let payments = self.refund_payments.lock().unwrap_or_else(PoisonError::into_inner);
        payments.payment_of(refund_request_id)
    }

    /// Decides `command` on `stream` as `actor` (or, with `None`, reads the payment as it stands) through the
    /// stream's queue.
    pub(crate) async fn submit(
        self: &Arc<Self>,
        stream: &StreamName,
        command: Option<PaymentCommand>,
        actor: &str,
    ) -> Result<Decided, AppError> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            command,
            actor: actor.to_owned(),
            reply,
            span: tracing::Span::current(),
        };
        self.enqueue(stream, request)?;
        answer.await.map_err(|_| AppError::Interrupted {
            stream: stream.to_string(),
        })?
    }

    fn lock(&self) -> MutexGuard<'_, Streams> {
        // Nothing panics while the lock is held (map operations and a non-blocking send); if something did, the
        // maps are still whole.
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn enqueue(self: &Arc<Self>, stream: &StreamName, request: Request) -> Result<(), AppError> {
        let mut streams = self.lock();
        let request = match streams.running.get(stream) {
            Some(queue) => match queue.try_send(request) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    return Err(AppError::Busy {
                        stream: stream.to_string(),
                        waiting_max: STREAM_QUEUE_COMMANDS_MAX,
                    });
                }
                // The task ended without retiring its queue (it panicked): start a new one.
                Err(mpsc::error::TrySendError::Closed(request)) => request,
            },
            None => request,
        };
        let folded = streams.unpark(stream);
        let (queue, receiver) = mpsc::channel(STREAM_QUEUE_COMMANDS_MAX);
        if queue.try_send(request).is_err() {
            // Unreachable: a new channel with room and a live receiver accepts its first message.
            return Err(AppError::Interrupted {
                stream: stream.to_string(),
            });
        }
        streams.running.insert(stream.clone(), queue);
        drop(streams);
        let worker = StreamWorker {
            queues: Arc::clone(self),
            stream: stream.clone(),
            folded,
        };
        tokio::spawn(worker.run(receiver));
        Ok(())
    }
}

/// The task that owns one payment's queue and folded state while commands wait on it.
struct StreamWorker {
    queues: Arc<PaymentQueues>,
    stream: StreamName,
    /// The fold the next batch is decided on; `None` until the stream is read.
    folded: Option<Folded>,
}

impl StreamWorker {
    async fn run(mut self, mut queue: mpsc::Receiver<Request>) {
        let mut waiting: Vec<Request> = Vec::new();
        loop {
            while waiting.len() < BATCH_COMMANDS_MAX {
                match queue.try_recv() {
                    Ok(request) => waiting.push(request),
                    Err(_) => break,
                }
            }
            if waiting.is_empty() && !self.retire(&mut queue, &mut waiting) {
                return;
            }
            let span = self.batch_span(&waiting);
            waiting = self.process(waiting).instrument(span).await;
        }
    }

    /// The span of one batch: a child of its first command's caller's span (so a lone command's trace runs on
    /// through the append), following from the other callers' spans.
    fn batch_span(&self, batch: &[Request]) -> tracing::Span {
        let parent = batch.first().and_then(|request| request.span.id());
        let span =
            tracing::info_span!(parent: parent, "payment_queue.batch", stream = %self.stream, commands = batch.len());
        for request in batch.iter().skip(1) {
            span.follows_from(&request.span);
        }
        span
    }

    /// Ends the task if no command arrived, keeping the fold for the next one; false when it ended.
    fn retire(&mut self, queue: &mut mpsc::Receiver<Request>, waiting: &mut Vec<Request>) -> bool {
        let mut streams = self.queues.lock();
        // Commands are queued under the same lock, so an empty queue now stays empty once retired.
        if let Ok(request) = queue.try_recv() {
            waiting.push(request);
            return true;
        }
        streams.running.remove(&self.stream);
        if let Some(folded) = self.folded.take() {
            streams.park(self.stream.clone(), folded);
        }
        false
    }

    /// Decides and answers a batch; returns the commands that did not fit into it.
    async fn process(&mut self, mut batch: Vec<Request>) -> Vec<Request> {
        // Whether the fold was read from the store after these commands arrived: then an answer that writes
        // nothing may be given from it.
        let mut fresh = false;
        let mut conflicts = 0;
        for _attempt in 1..=DECIDE_ATTEMPTS_MAX {
            let folded = match self.folded.take() {
                Some(folded) => folded,
                None => {
                    fresh = true;
                    match self.read_since(Folded::default()).await {
                        Ok((folded, _)) => folded,
                        Err(failure) => {
                            fail(batch, &failure);
                            return Vec::new();
                        }
                    }
                }
            };
            let plan = match self.plan(&folded, &batch) {
                Ok(plan) => plan,
                Err(failure) => {
                    fail(batch, &failure);
                    return Vec::new();
                }
            };
            let leftover = batch.split_off(plan.planned.len());
            if plan.is_read_only() {
                if !fresh
                    && !batch
                        .iter()
                        .all(|request| reports_on_final_refund(&folded.payment, request))
                {
                    fresh = true;
                    match self.read_since(folded).await {
                        Ok((folded, _)) => self.folded = Some(folded),
                        Err(failure) => {
                            fail(batch, &failure);
                            return leftover;
                        }
                    }
                    batch.extend(leftover);
                    continue;
                }
                answer(batch, plan.planned, folded.position, folded.position);
                self.folded = Some(folded);
                return leftover;
            }
            let BatchPlan {
                planned,
                events,
                facts,
                payment,
            } = plan;
            match self.queues.store.append(&self.stream, expected(&folded), events).await {
                Ok(outcome) => {
                    let before = folded.position;
                    let first_position = outcome.first_position;
                    self.folded = Some(Folded {
                        payment,
                        revision: Some(outcome.last_revision),
                        position: outcome.last_position,
                    });
                    observe::report(&*self.queues.observer, &facts);
                    answer(batch, planned, before, first_position);
                    return leftover;
                }
                Err(StoreError::Conflict { .. }) => {
                    self.queues.conflict_retries.fetch_add(1, Ordering::Relaxed);
                    self.queues.observer.conflict_retry();
                    conflicts += 1;
                    tracing::debug!(stream = %self.stream, conflicts, "stream moved; deciding again");
                    if conflicts > CONFLICTS_BEFORE_BACKOFF {
                        backoff(conflicts).await;
                    }
                    fresh = true;
                    match self.read_since(folded).await {
                        Ok((folded, _)) => self.folded = Some(folded),
                        Err(failure) => {
                            fail(batch, &failure);
                            return leftover;
                        }
                    }
                }
                Err(StoreError::DuplicateEventId { event_id }) => {
                    batch = answer_duplicate(batch, &folded, event_id);
                    self.folded = Some(folded);
                }
                Err(error) => {
                    // The append may have committed (a connection lost at the commit): the fold stays as it was,
                    // and the next append's expected revision finds out.
                    self.folded = Some(folded);
                    fail(batch, &BatchFailure::Store(error));
                    return leftover;
                }
            }
            batch.extend(leftover);
        }
        let failure = BatchFailure::Contention {
            stream: self.stream.to_string(),
        };
        fail(batch, &failure);
        Vec::new()
    }

    fn plan(&self, folded: &Folded, batch: &[Request]) -> Result<BatchPlan, BatchFailure> {
        let commands: Vec<BatchCommand<'_>> = batch
            .iter()
            .map(|request| (request.command.as_ref(), request.actor.as_str()))
            .collect();
        let queues = &self.queues;
        plan_batch(&folded.payment, &commands, &queues.policy, queues.clock.now()).map_err(|source| {
            BatchFailure::Fold {
                position: folded.position,
                source,
            }
        })
    }

    /// Reads and folds the events appended to the stream after `folded`; true when there were any.
    async fn read_since(&self, folded: Folded) -> Result<(Folded, bool), BatchFailure> {
        let read = fold_payment_stream(
            self.queues.store.as_ref(),
            &self.stream,
            folded,
            LOAD_BATCH_EVENTS_MAX,
            |_| false,
        );
        read.await.map_err(|error| match error {
            StreamFoldError::Store(error) => BatchFailure::Store(error),
            StreamFoldError::Decode { position, source } => BatchFailure::Decode { position, source },
            StreamFoldError::Fold { position, source } => BatchFailure::Fold { position, source },
        })
    }
}

/// Whether `request` reports an outcome (Antom's answer, an inquiry's, a notification's) of a refund that
/// `payment` holds as final. What such a report decides depends only on the refund's final status, its refundId
/// and the anomalies it recorded, which later events never change or take away: if it writes nothing on
/// `payment`, it writes nothing on any later state of the stream, and the refund it answers with is the one the
/// log holds. So a batch of such reports that writes nothing is answered from the fold without reading the
/// stream first (Antom's notification of a refund whose answer was recorded already, on every refund).
fn reports_on_final_refund(payment: &Payment, request: &Request) -> bool {
    let refund_request_id = match &request.command {
        Some(
            PaymentCommand::ConfirmRefundSucceeded { refund_request_id, .. }
            | PaymentCommand::ConfirmRefundFailed { refund_request_id, .. }
            | PaymentCommand::MarkRefundProcessing { refund_request_id, .. },
        ) => refund_request_id,
        _ => return false,
    };
    payment
        .state()
        .and_then(|state| state.refunds.get(refund_request_id))
        .is_some_and(|refund| !refund.status.is_pending())
}

/// Answers a decided batch. Each command gets the position of its own last event; a command that wrote
/// nothing gets the position of the last event before it (`position_before` when none in the batch).
/// `first_position` is where the batch's events start (unused when it wrote none).
fn answer(batch: Vec<Request>, planned: Vec<Planned>, position_before: u64, first_position: u64) {
    let mut position = position_before;
    for (request, planned) in batch.into_iter().zip(planned) {
        if !planned.events.is_empty() {
            // Event counts are at most BATCH_EVENTS_MAX, far below u64::MAX.
            position = first_position + planned.events.end as u64 - 1;
        }
        reply(
            request,
            Ok(Decided {
                verdict: planned.verdict,
                payment: planned.payment,
                position,
            }),
        );
    }
}

/// The store refused `event_id` although the stream had not moved (the revision held): the event lives on
/// another stream. Answers the command whose event it is and returns the others to be planned again.
fn answer_duplicate(batch: Vec<Request>, folded: &Folded, event_id: Uuid) -> Vec<Request> {
    let mut rest = Vec::with_capacity(batch.len());
    let mut answered = false;
    for request in batch {
        let names_it = !answered
            && request
                .command
                .as_ref()
                .is_some_and(|command| command_event_id(command) == Some(event_id));
        if names_it {
            answered = true;
            reply(
                request,
                Ok(Decided {
                    verdict: Verdict::DuplicateElsewhere(event_id),
                    payment: folded.payment.clone(),
                    position: folded.position,
                }),
            );
        } else {
            rest.push(request);
        }
    }
    if !answered {
        // Only refund-request ids are derived, so only they can be duplicates; anything else is the store's fault.
        tracing::error!(%event_id, "the store refused an event id no command of the batch derived");
        fail(rest, &BatchFailure::Store(StoreError::DuplicateEventId { event_id }));
        return Vec::new();
    }
    rest
}

/// The derived event id a command's first event would carry (refund requests only).
fn command_event_id(command: &PaymentCommand) -> Option<Uuid> {
    match command {
        PaymentCommand::RequestRefund { refund_request_id, .. } => {
            Some(crate::batch::refund_request_event_id(refund_request_id))
        }
        _ => None,
    }
}

/// Answers every command of `batch` with `failure`.
fn fail(batch: Vec<Request>, failure: &BatchFailure) {
    for request in batch {
        reply(request, Err(failure.clone().into()));
    }
}

fn reply(request: Request, answer: Result<Decided, AppError>) {
    if request.reply.send(answer).is_err() {
        // The caller stopped waiting; what was decided stands either way.
        tracing::debug!("a command's caller went away before its answer");
    }
}

async fn backoff(conflicts: usize) {
    let ceiling_ms = (conflicts as u64).clamp(1, CONFLICT_BACKOFF_MS_MAX);
    // Jitter without a random number generator of our own: a v4 UUID is random.
    let pause_ms = (Uuid::new_v4().as_u128() % u128::from(ceiling_ms + 1)) as u64;
    tokio::time::sleep(Duration::from_millis(pause_ms)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(index: usize) -> StreamName {
        StreamName::parse(format!("payment-P{index}")).unwrap()
    }

    #[test]
    fn a_payment_used_again_and_again_keeps_the_idle_list_bounded() {
        let mut streams = Streams::default();
        for _ in 0..3 * STREAM_CACHE_PAYMENTS_MAX {
            let folded = streams.unpark(&stream(0)).unwrap_or_default();
            streams.park(stream(0), folded);
        }
        assert_eq!(streams.idle.len(), 1);
        assert!(
            streams.idle_arrival.len() <= 2 * STREAM_CACHE_PAYMENTS_MAX,
            "{} entries",
            streams.idle_arrival.len()
        );
    }

    #[test]
    fn the_payment_parked_longest_ago_goes_first_even_if_it_ran_in_between() {
        let mut streams = Streams::default();
        for index in 0..STREAM_CACHE_PAYMENTS_MAX {
            streams.park(stream(index), Folded::default());
        }
        // Payment 0 runs again: its first entry is stale, so payment 1 is now the oldest.
        let folded = streams.unpark(&stream(0)).unwrap();
        streams.park(stream(0), folded);
        streams.park(stream(STREAM_CACHE_PAYMENTS_MAX), Folded::default());
        assert_eq!(streams.idle.len(), STREAM_CACHE_PAYMENTS_MAX);
        assert!(streams.idle.contains_key(&stream(0)), "used most recently but one");
        assert!(!streams.idle.contains_key(&stream(1)), "parked longest ago");
        assert!(streams.idle.contains_key(&stream(STREAM_CACHE_PAYMENTS_MAX)));
    }
}
