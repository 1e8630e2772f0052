//! The decision at the heart of a payment's command queue, as a pure function: the commands waiting on one
//! payment are decided one after another against one folded state, each seeing the events of the commands
//! before it, and their events become one append.
//!
//! [`plan_batch`] does no IO and keeps nothing: the queue (`queue.rs`) appends the planned events with the
//! stream revision the plan was made on, and only if that append succeeds does the planned state become the
//! payment's state. So a batch is exactly as safe as deciding the same commands one at a time: on a conflict
//! the queue folds what another instance wrote and plans the batch again.
//!
//! Event ids: `RefundRequested` and `RefundRejected` get a UUIDv5 derived from the refundRequestId
//! ([`refund_request_event_id`]), so the store refuses a second request with the same id on any other payment,
//! from any instance; every other event gets a fresh v4 id (its idempotency comes from `decide`, which answers
//! "already applied" on the folded state).

use std::ops::Range;

use domain::{FoldError, Payment, PaymentCommand, PaymentEvent, Policy, RefundRequestId, Rejection, decide, evolve};
use eventlog::{BATCH_EVENTS_MAX, NewEvent};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::observe::{Fact, note_facts};

/// Most commands one batch decides and appends together; the rest wait for the next batch.
pub const BATCH_COMMANDS_MAX: usize = 128;

/// Namespace of the UUIDv5 event ids derived from refundRequestIds.
const REFUND_REQUEST_NAMESPACE: Uuid = Uuid::from_u128(0x7e3f_1c2a_9b4d_4e8f_a1c3_5d7e_9f0b_2c4d);

/// The event id of the `RefundRequested` or `RefundRejected` event of a refundRequestId: one per id
/// across the whole log, so the store refuses a second request with it wherever it is appended.
pub fn refund_request_event_id(refund_request_id: &RefundRequestId) -> Uuid {
    Uuid::new_v5(&REFUND_REQUEST_NAMESPACE, refund_request_id.as_str().as_bytes())
}

/// What a decision did to the payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Events were appended.
    Appended,
    /// Already applied, nothing to change, or a read.
    Unchanged,
    /// Refused without an event.
    Refused(Rejection),
    /// The store refused the event id: an event with it is stored on another stream (a refundRequestId used on
    /// another payment).
    DuplicateElsewhere(Uuid),
}

/// A command waiting in a batch: what to decide, as whom. `None` asks for the payment as it stands.
pub(crate) type BatchCommand<'a> = (Option<&'a PaymentCommand>, &'a str);

/// One command's part of a planned batch.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub(crate) verdict: Verdict,
    /// Its events: this range of [`BatchPlan::events`] (empty when it writes nothing).
    pub(crate) events: Range<usize>,
    /// The payment as it stands after this command (and every command before it in the batch).
    pub(crate) payment: Payment,
}

/// The plan for a batch: every event to append, in order, and what each command gets.
#[derive(Debug)]
pub(crate) struct BatchPlan {
    /// One plan per command, for the first `planned.len()` commands; later commands did not fit into this
    /// batch ([`BATCH_EVENTS_MAX`]) and wait for the next.
    pub(crate) planned: Vec<Planned>,
    pub(crate) events: Vec<NewEvent>,
    /// What the events state for an observer, reported once they committed.
    pub(crate) facts: Vec<Fact>,
    /// The payment after the whole batch.
    pub(crate) payment: Payment,
}

impl BatchPlan {
    /// Whether the batch writes nothing.
    pub(crate) fn is_read_only(&self) -> bool {
        self.events.is_empty()
    }
}

/// Decides `commands` in order against `payment`, each against the state the commands before it left.
///
/// A command's events are folded before the next is decided, so two refunds in one batch reserve their
/// amounts one after the other exactly as if each had been appended on its own. Fails only if the decided
/// events do not fold, which means `decide` and `evolve` disagree (a bug, reported, never appended).
pub(crate) fn plan_batch(
    payment: &Payment,
    commands: &[BatchCommand<'_>],
    policy: &Policy,
    now: OffsetDateTime,
) -> Result<BatchPlan, FoldError> {
    let mut payment = payment.clone();
    let mut planned = Vec::with_capacity(commands.len());
    let mut events = Vec::new();
    let mut facts = Vec::new();
    for (command, actor) in commands.iter().take(BATCH_COMMANDS_MAX) {
        let Some(command) = command else {
            planned.push(unchanged(&payment, events.len()));
            continue;
        };
        let decided = match decide(&payment, command, policy, now) {
            Err(rejection) => {
                planned.push(Planned {
                    verdict: Verdict::Refused(rejection),
                    events: events.len()..events.len(),
                    payment: payment.clone(),
                });
                continue;
            }
            Ok(decided) if decided.is_empty() => {
                planned.push(unchanged(&payment, events.len()));
                continue;
            }
            Ok(decided) => decided,
        };
        if events.len() + decided.len() > BATCH_EVENTS_MAX {
            break;
        }
        let first = events.len();
        for event in &decided {
            payment = evolve(payment, event)?;
            note_facts(event, actor, &mut facts);
            events.push(new_event(event, actor));
        }
        planned.push(Planned {
            verdict: Verdict::Appended,
            events: first..events.len(),
            payment: payment.clone(),
        });
    }
    Ok(BatchPlan {
        planned,
        events,
        facts,
        payment,
    })
}

fn unchanged(payment: &Payment, at: usize) -> Planned {
    Planned {
        verdict: Verdict::Unchanged,
        events: at..at,
        payment: payment.clone(),
    }
}

fn event_id_of(event: &PaymentEvent) -> Uuid {
    match event {
        PaymentEvent::RefundRequested(requested) => refund_request_event_id(&requested.refund_request_id),
        PaymentEvent::RefundRejected(rejected) => refund_request_event_id(&rejected.refund_request_id),
        _ => Uuid::new_v4(),
    }
}

fn new_event(event: &PaymentEvent, actor: &str) -> NewEvent {
    crate::new_event::new_event(event.to_stored(), event_id_of(event), actor)
}

#[cfg(test)]
mod tests {
    use domain::{Money, PaymentId, PaymentMethodType, PaymentRecorded, RefundId, RefundStatus, ResultCode, evolve};

    use super::*;

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-11-01 12:00 UTC)
    }

    fn usd(minor_units: u64) -> Money {
        Money::parse("amount", "USD", &minor_units.to_string()).unwrap()
    }

    fn payment(amount: u64) -> Payment {
        let recorded = PaymentEvent::PaymentRecorded(PaymentRecorded {
            payment_id: PaymentId::parse("P1").unwrap(),
            payment_amount: usd(amount),
            payment_method_type: PaymentMethodType::parse("ALIPAY_CN").unwrap(),
            payment_time: now() - time::Duration::hours(1),
            capture_required: false,
        });
        evolve(Payment::Unknown, &recorded).unwrap()
    }

    fn refund(id: &str, amount: u64) -> PaymentCommand {
        PaymentCommand::RequestRefund {
            refund_request_id: RefundRequestId::parse(id).unwrap(),
            payment_id: PaymentId::parse("P1").unwrap(),
            refund_amount: usd(amount),
            refund_reason: None,
        }
    }

    fn plan(payment: &Payment, commands: &[PaymentCommand]) -> BatchPlan {
        let batch: Vec<BatchCommand<'_>> = commands.iter().map(|command| (Some(command), "op")).collect();
        plan_batch(payment, &batch, &Policy::default(), now()).unwrap()
    }

    #[test]
    fn each_command_sees_the_reservations_of_those_before_it() {
        let commands = [
            refund("R1", 600),
            refund("R2", 300),
            refund("R3", 200),
            refund("R4", 100),
        ];
        let plan = plan(&payment(1_000), &commands);
        let verdicts: Vec<_> = plan.planned.iter().map(|planned| planned.verdict.clone()).collect();
        assert_eq!(verdicts, vec![Verdict::Appended; 4]);
        // R3 asked for more than was left after R1 and R2: recorded as rejected, so its retry sees the same answer.
        let statuses: Vec<_> = ["R1", "R2", "R3", "R4"]
            .iter()
            .map(|id| {
                plan.payment
                    .refund(&RefundRequestId::parse(id).unwrap())
                    .unwrap()
                    .status
            })
            .collect();
        assert_eq!(
            statuses,
            [
                RefundStatus::Requested,
                RefundStatus::Requested,
                RefundStatus::Rejected,
                RefundStatus::Requested
            ]
        );
        let state = plan.payment.state().unwrap();
        assert_eq!((state.pending, state.refundable()), (usd(1_000), usd(0)));
        assert_eq!(plan.events.len(), 4);
        assert_eq!(plan.planned[2].events, 2..3);
        assert_eq!(plan.events[2].event_type, "RefundRejected");
        assert_eq!(
            plan.events[0].event_id,
            refund_request_event_id(&RefundRequestId::parse("R1").unwrap())
        );
        // Each answer carries the payment as that command left it.
        assert_eq!(plan.planned[0].payment.state().unwrap().pending, usd(600));
    }

    #[test]
    fn a_repeat_within_a_batch_is_answered_from_the_first() {
        let commands = [refund("R1", 100), refund("R1", 100), refund("R1", 200)];
        let plan = plan(&payment(1_000), &commands);
        assert_eq!(plan.planned[0].verdict, Verdict::Appended);
        assert_eq!(plan.planned[1].verdict, Verdict::Unchanged);
        assert!(matches!(
            &plan.planned[2].verdict,
            Verdict::Refused(rejection) if rejection.code == ResultCode::RepeatReqInconsistent
        ));
        assert_eq!(plan.events.len(), 1);
        assert!(plan.planned[1].events.is_empty() && plan.planned[1].events.start == 1);
    }

    #[test]
    fn reads_and_refusals_write_nothing() {
        let unknown = Payment::Unknown;
        let command = refund("R1", 100);
        let batch: Vec<BatchCommand<'_>> = vec![(None, "op"), (Some(&command), "op")];
        let plan = plan_batch(&unknown, &batch, &Policy::default(), now()).unwrap();
        assert!(plan.is_read_only());
        assert_eq!(plan.planned[0].verdict, Verdict::Unchanged);
        assert!(matches!(
            &plan.planned[1].verdict,
            Verdict::Refused(rejection) if rejection.code == ResultCode::OrderNotExist
        ));
    }

    #[test]
    fn outcomes_follow_their_requests_in_the_same_batch() {
        let commands = [
            refund("R1", 100),
            PaymentCommand::ConfirmRefundSucceeded {
                refund_request_id: RefundRequestId::parse("R1").unwrap(),
                refund_id: RefundId::parse("A1").unwrap(),
                refund_time: now(),
                source: domain::OutcomeSource::RefundResponse,
            },
        ];
        let plan = plan(&payment(1_000), &commands);
        let state = plan.payment.state().unwrap();
        assert_eq!((state.refunded, state.pending), (usd(100), usd(0)));
        assert_ne!(plan.events[1].event_id, plan.events[0].event_id);
    }

    #[test]
    fn a_batch_stops_before_the_event_limit_and_at_the_command_limit() {
        let commands: Vec<_> = (0..BATCH_COMMANDS_MAX + 5)
            .map(|index| refund(&format!("R{index}"), 1))
            .collect();
        let plan = plan(&payment(1_000_000), &commands);
        assert_eq!(plan.planned.len(), BATCH_COMMANDS_MAX);
        assert_eq!(plan.events.len(), BATCH_COMMANDS_MAX);
        const { assert!(BATCH_COMMANDS_MAX <= BATCH_EVENTS_MAX) };
    }

    #[test]
    fn the_planned_state_is_not_the_callers() {
        let before = payment(1_000);
        let plan = plan(&before, &[refund("R1", 100)]);
        assert!(before.refund(&RefundRequestId::parse("R1").unwrap()).is_none());
        assert!(plan.payment.refund(&RefundRequestId::parse("R1").unwrap()).is_some());
    }
}
