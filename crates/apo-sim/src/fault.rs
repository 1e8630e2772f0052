//! Faults: what can go wrong between the merchant and Antom, and how one
//! request's faults are chosen.
//!
//! A request's faults come from exactly one source, in this order: the
//! `X-Sim-Fault` header, then the next scripted entry for its
//! refundRequestId, then random draws from the run's [`FaultConfig`]. An
//! explicit choice replaces the random one so that a test says precisely
//! what happens.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use rand::rngs::StdRng;

use crate::config::{FaultConfig, LATENCY_MS_MAX};
use crate::error::SimError;

/// The request header that picks faults for one request: a comma-separated
/// list of fault names, e.g. `X-Sim-Fault: u, notify-duplicate`.
pub const FAULT_HEADER: &str = "x-sim-fault";
/// Most faults one header or script entry may name.
pub const FAULTS_PER_REQUEST_MAX: usize = 8;

/// One fault. Names (for the header, the CLI and the admin API) in brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// No fault at all (`none`); in a script, one clean call.
    None,
    /// Extra latency in milliseconds (`latency=250`, at most [`LATENCY_MS_MAX`]).
    Latency(u64),
    /// Accept the refund as U, PROCESSING, ending SUCCESS (`u`).
    Processing,
    /// Accept the refund as U, PROCESSING, ending FAIL (`u-fail`).
    ProcessingThenFail,
    /// Hold the connection without answering; the refund is not applied (`timeout`).
    Timeout,
    /// Apply the refund, then hold the connection without answering (`accepted-timeout`).
    AcceptedTimeout,
    /// HTTP 500 before processing; nothing applied (`5xx`).
    ServerError,
    /// HTTP 429 `REQUEST_TRAFFIC_EXCEED_LIMIT` (U) before processing; nothing applied (`429`).
    RateLimited,
    /// Apply, then answer HTTP 200 with a body that is not JSON (`garbage`).
    Garbage,
    /// Apply, then answer without a `Signature` header (`unsigned`).
    Unsigned,
    /// Apply, then answer with a signature that does not verify (`bad-signature`).
    BadSignature,
    /// Never send this refund's notification (`notify-drop`).
    NotifyDrop,
    /// Send this refund's notification again after it was acknowledged (`notify-duplicate`).
    NotifyDuplicate,
    /// Hold this refund's notification back so later ones overtake it (`notify-reorder`).
    NotifyReorder,
}

impl FromStr for Fault {
    type Err = SimError;

    fn from_str(name: &str) -> Result<Self, SimError> {
        let name = name.trim();
        let unknown = || SimError::UnknownFault { name: name.to_owned() };
        if let Some(ms) = name.strip_prefix("latency=") {
            return match ms.parse::<u64>() {
                Ok(ms) if ms <= LATENCY_MS_MAX => Ok(Fault::Latency(ms)),
                _ => Err(unknown()),
            };
        }
        Ok(match name {
            "none" => Fault::None,
            "u" => Fault::Processing,
            "u-fail" => Fault::ProcessingThenFail,
            "timeout" => Fault::Timeout,
            "accepted-timeout" => Fault::AcceptedTimeout,
            "5xx" => Fault::ServerError,
            "429" => Fault::RateLimited,
            "garbage" => Fault::Garbage,
            "unsigned" => Fault::Unsigned,
            "bad-signature" => Fault::BadSignature,
            "notify-drop" => Fault::NotifyDrop,
            "notify-duplicate" => Fault::NotifyDuplicate,
            "notify-reorder" => Fault::NotifyReorder,
            _ => return Err(unknown()),
        })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Fault::None => "none",
            Fault::Latency(ms) => return write!(f, "latency={ms}"),
            Fault::Processing => "u",
            Fault::ProcessingThenFail => "u-fail",
            Fault::Timeout => "timeout",
            Fault::AcceptedTimeout => "accepted-timeout",
            Fault::ServerError => "5xx",
            Fault::RateLimited => "429",
            Fault::Garbage => "garbage",
            Fault::Unsigned => "unsigned",
            Fault::BadSignature => "bad-signature",
            Fault::NotifyDrop => "notify-drop",
            Fault::NotifyDuplicate => "notify-duplicate",
            Fault::NotifyReorder => "notify-reorder",
        };
        f.write_str(name)
    }
}

/// Parses a comma-separated fault list (`"u, notify-drop"`).
pub fn parse_fault_list(list: &str) -> Result<Vec<Fault>, SimError> {
    let faults = list
        .split(',')
        .filter(|name| !name.trim().is_empty())
        .map(Fault::from_str)
        .collect::<Result<Vec<_>, _>>()?;
    if faults.len() > FAULTS_PER_REQUEST_MAX {
        return Err(SimError::Config {
            field: "faults".to_owned(),
            reason: format!(
                "at most {FAULTS_PER_REQUEST_MAX} faults per request, got {}",
                faults.len()
            ),
        });
    }
    Ok(faults)
}

/// What happens on the wire for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Transport {
    /// A normal, signed answer.
    #[default]
    Normal,
    /// See [`Fault::Timeout`].
    Timeout,
    /// See [`Fault::AcceptedTimeout`].
    AcceptedTimeout,
    /// See [`Fault::ServerError`].
    ServerError,
    /// See [`Fault::RateLimited`].
    RateLimited,
    /// See [`Fault::Garbage`].
    Garbage,
    /// See [`Fault::Unsigned`].
    Unsigned,
    /// See [`Fault::BadSignature`].
    BadSignature,
}

impl Transport {
    /// Whether the request reaches the refund rules (and may change state).
    pub fn applies(&self) -> bool {
        !matches!(self, Self::Timeout | Self::ServerError | Self::RateLimited)
    }
}

/// How an accepted refund is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Processing {
    /// S at once.
    #[default]
    Immediate,
    /// U, then SUCCESS after the settle delay.
    ThenSucceed,
    /// U, then FAIL after the settle delay.
    ThenFail,
}

/// What happens to a refund's notification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NotifyFault {
    /// Sent, retried until acknowledged.
    #[default]
    Normal,
    /// Never sent.
    Drop,
    /// Sent once more after the acknowledgement.
    Duplicate,
    /// Held back by the reorder delay first.
    Reorder,
}

/// All faults of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Latency added before answering.
    pub latency_ms: u64,
    /// What the wire does.
    pub transport: Transport,
    /// How an accepted refund is answered.
    pub processing: Processing,
    /// What the notification does.
    pub notify: NotifyFault,
}

impl FaultPlan {
    /// The plan named by an explicit fault list; later faults of a kind win.
    pub fn from_faults(faults: &[Fault]) -> Self {
        let mut plan = FaultPlan::default();
        for fault in faults {
            match *fault {
                Fault::None => {}
                Fault::Latency(ms) => plan.latency_ms = ms,
                Fault::Processing => plan.processing = Processing::ThenSucceed,
                Fault::ProcessingThenFail => plan.processing = Processing::ThenFail,
                Fault::Timeout => plan.transport = Transport::Timeout,
                Fault::AcceptedTimeout => plan.transport = Transport::AcceptedTimeout,
                Fault::ServerError => plan.transport = Transport::ServerError,
                Fault::RateLimited => plan.transport = Transport::RateLimited,
                Fault::Garbage => plan.transport = Transport::Garbage,
                Fault::Unsigned => plan.transport = Transport::Unsigned,
                Fault::BadSignature => plan.transport = Transport::BadSignature,
                Fault::NotifyDrop => plan.notify = NotifyFault::Drop,
                Fault::NotifyDuplicate => plan.notify = NotifyFault::Duplicate,
                Fault::NotifyReorder => plan.notify = NotifyFault::Reorder,
            }
        }
        plan
    }

    /// Draws a plan from the run's shares. Always draws the same number of
    /// values so that one request's faults do not shift the next one's.
    pub fn draw(config: &FaultConfig, rng: &mut StdRng) -> Self {
        let transport_roll: f64 = rng.random();
        let u_roll: f64 = rng.random();
        let u_fail_roll: f64 = rng.random();
        let notify_roll: f64 = rng.random();
        let transport_shares = [
            (config.timeout_share, Transport::Timeout),
            (config.accepted_timeout_share, Transport::AcceptedTimeout),
            (config.server_error_share, Transport::ServerError),
            (config.rate_limit_share, Transport::RateLimited),
            (config.garbage_share, Transport::Garbage),
            (config.unsigned_share, Transport::Unsigned),
            (config.bad_signature_share, Transport::BadSignature),
        ];
        let notify_shares = [
            (config.notify_drop_share, NotifyFault::Drop),
            (config.notify_duplicate_share, NotifyFault::Duplicate),
            (config.notify_reorder_share, NotifyFault::Reorder),
        ];
        let processing = match (u_roll < config.u_share, u_fail_roll < config.u_fail_share) {
            (false, _) => Processing::Immediate,
            (true, false) => Processing::ThenSucceed,
            (true, true) => Processing::ThenFail,
        };
        FaultPlan {
            latency_ms: config.latency_ms,
            transport: pick(transport_roll, &transport_shares),
            processing,
            notify: pick(notify_roll, &notify_shares),
        }
    }
}

/// The first entry whose cumulative share exceeds `roll`, or the default.
fn pick<T: Copy + Default>(roll: f64, shares: &[(f64, T)]) -> T {
    let mut cumulative = 0.0;
    for (share, value) in shares {
        cumulative += share;
        if roll < cumulative {
            return *value;
        }
    }
    T::default()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn names_round_trip() {
        for name in [
            "none",
            "latency=25",
            "u",
            "u-fail",
            "timeout",
            "accepted-timeout",
            "5xx",
            "429",
            "garbage",
            "unsigned",
            "bad-signature",
            "notify-drop",
            "notify-duplicate",
            "notify-reorder",
        ] {
            assert_eq!(name.parse::<Fault>().unwrap().to_string(), name);
        }
        assert!(matches!("nope".parse::<Fault>(), Err(SimError::UnknownFault { .. })));
        assert!(format!("latency={}", LATENCY_MS_MAX + 1).parse::<Fault>().is_err());
        assert_eq!(
            parse_fault_list("u, notify-drop").unwrap(),
            vec![Fault::Processing, Fault::NotifyDrop]
        );
    }

    #[test]
    fn draws_are_deterministic_and_follow_shares() {
        let config = FaultConfig {
            garbage_share: 0.5,
            u_share: 1.0,
            ..FaultConfig::default()
        };
        let draw_many = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..200).map(|_| FaultPlan::draw(&config, &mut rng)).collect::<Vec<_>>()
        };
        let plans = draw_many(7);
        assert_eq!(plans, draw_many(7));
        let garbage = plans.iter().filter(|plan| plan.transport == Transport::Garbage).count();
        assert!((60..140).contains(&garbage), "about half garbage, got {garbage}");
        assert!(plans.iter().all(|plan| plan.processing == Processing::ThenSucceed));
        let none = FaultPlan::draw(&FaultConfig::default(), &mut StdRng::seed_from_u64(1));
        assert_eq!(none, FaultPlan::default());
    }
}
