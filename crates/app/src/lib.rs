//! app: the refund ledger's application layer.
//!
//! It turns requests into `domain` commands, decides them against the
//! payment's stream and appends the events ([`Ledger`]'s command methods),
//! runs the refund saga (docs/domain.md) (record the request, call Antom, record
//! its answer), settles refunds whose outcome is open with a background
//! worker, and turns Antom's verified notifications (refunds, payments, captures, disputes) into commands.
//!
//! - [`Ledger`]: the one entry point; cheap to clone.
//! - [`RefundGateway`]: Antom as the saga sees it; implemented for [`apo::ApoClient`].
//! - [`Observer`]: the facts the server's metrics count (refunds decided and settled, anomalies, conflict
//!   retries, settle passes); the crate knows no metrics library.
//! - [`Clock`]: where "now" comes from ([`SystemClock`], [`ManualClock`] for tests).
//! - [`AppError`]: what went wrong that is not an answer. Refusals by Antom's
//!   rules (and "payment not found") are *answers* carrying Antom's result
//!   code ([`ResultInfo`]), never errors.
//!
//! Architecture invariants: every write goes through one path, the payment's
//! command queue (`queue.rs`), which decides the waiting commands one after
//! another against one folded state and appends them with the stream revision
//! they were decided on, so concurrent requests in one instance never race and
//! requests on any number of instances serialise through the event log;
//! Antom is called only after the refund's `RefundRequested` is durable, so a
//! crash loses nothing (the worker finds the open refund in the read models
//! and finishes it); every step is idempotent. This crate knows no GraphQL,
//! no SQL and no Antom JSON.

mod actor;
mod anomaly;
mod answer;
mod batch;
mod clock;
mod error;
mod gateway;
mod health;
mod input;
mod ledger;
mod lookup;
mod new_event;
mod notify;
mod observe;
mod payments;
mod queue;
pub mod reconciliation;
mod refund_payments;
mod running;
mod saga;
mod settle;

pub use actor::{NOTIFY_ACTOR, WORKER_ACTOR};
pub use anomaly::{Acknowledged, AnomalyTarget};
pub use answer::{CommandResult, REFUND_IN_PROCESS, RefundResult, RefundSnapshot, ResultInfo, SettleReport};
pub use batch::{BATCH_COMMANDS_MAX, refund_request_event_id};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::AppError;
pub use gateway::RefundGateway;
pub use health::Health;
pub use input::{CapturePaymentInput, OpenChargebackInput, RecordPaymentInput, RefundInput, ResolveChargebackInput};
pub use ledger::{LOOKUP_WAIT_MS_MAX, Ledger, LedgerOptions, SETTLE_AFTER_MS_DEFAULT, SETTLE_BATCH_REFUNDS_MAX};
pub use notify::NotificationAnswer;
pub use observe::{AnomalyKind, NoObserver, Observer, SettledBy};
pub use queue::{
    CONFLICT_BACKOFF_MS_MAX, DECIDE_ATTEMPTS_MAX, LOAD_BATCH_EVENTS_MAX, STREAM_CACHE_PAYMENTS_MAX,
    STREAM_QUEUE_COMMANDS_MAX,
};
pub use settle::{INQUIRY_FAIL_MESSAGE, SWEEP_INTERVAL, UNRECORDED_FINDINGS_GRACE};
