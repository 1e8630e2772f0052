//! The actors the ledger itself records on events it writes without a caller.

/// The actor recorded on events the settle worker writes.
pub const WORKER_ACTOR: &str = "worker";
/// The actor to record on events from Antom's notifications.
pub const NOTIFY_ACTOR: &str = "apo-notify";
