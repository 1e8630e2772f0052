//! Configuration of a simulator run: who the merchant is, which keys sign,
//! the per-method refund policy (Antom's rules depend on the merchant's
//! agreement, so they are inputs, not constants) and the fault mix.
//!
//! Every knob has a named bound so a typo on the command line cannot make a
//! test hang for hours.

use std::collections::BTreeMap;

use apo::keys::{PrivateKey, PublicKey};
use domain::PaymentMethodType;
use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::report_settings::ReportSettings;

/// Antom's notifyRefund retry schedule in milliseconds: 0 s, 2 min, 10 min,
/// 10 min, 1 h, 2 h, 6 h, 15 h (docs/antom-protocol.md). Each wait is divided by
/// [`SimConfig::notify_compression`].
pub const NOTIFY_SCHEDULE_MS: [u64; 8] = [
    0,
    2 * 60_000,
    10 * 60_000,
    10 * 60_000,
    60 * 60_000,
    2 * 60 * 60_000,
    6 * 60 * 60_000,
    15 * 60 * 60_000,
];
/// Longest a `timeout` fault holds a connection before giving up with a bare 504.
pub const TIMEOUT_HOLD_MS_MAX: u64 = 120_000;
/// Longest artificial latency a run may add to each answer.
pub const LATENCY_MS_MAX: u64 = 60_000;
/// Longest a U refund may stay PROCESSING before it becomes final.
pub const SETTLE_MS_MAX: u64 = 24 * 60 * 60_000;
/// Longest extra delay of a delayed or reordered notification.
pub const NOTIFY_DELAY_MS_MAX: u64 = 10 * 60_000;
/// Longest the simulator waits for the merchant to answer one notification.
pub const NOTIFY_TIMEOUT_MS_MAX: u64 = 60_000;
/// Largest accepted request body; Antom's refund bodies are a few hundred bytes.
pub const REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;
/// Most refunds the simulator holds; past it a refund is answered U `UNKNOWN_EXCEPTION`
/// and not applied, so a runaway benchmark cannot exhaust memory.
pub const REFUNDS_MAX: usize = 1_000_000;
/// Most notification attempts kept in the log that tests read.
pub const NOTIFICATION_LOG_MAX: usize = 100_000;
/// Most scripted faults queued for one refundRequestId.
pub const SCRIPT_LEN_MAX: usize = 64;

/// What the merchant's agreement allows for one payment method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MethodPolicy {
    /// Days after the payment time during which a refund is accepted
    /// (`REFUND_WINDOW_EXCEED` after).
    pub refund_window_days: u32,
    /// Smallest refund in minor units (`REFUND_AMOUNT_EXCEED` below it).
    pub minimum_refund_minor_units: u64,
    /// Whether a refund may be smaller than the captured amount
    /// (`PARTIAL_REFUND_NOT_SUPPORTED` otherwise).
    pub partial_refunds: bool,
    /// Whether a payment may have more than one live refund
    /// (`MULTIPLE_REFUNDS_NOT_SUPPORTED` otherwise).
    pub multiple_refunds: bool,
}

impl Default for MethodPolicy {
    fn default() -> Self {
        Self {
            refund_window_days: 365,
            minimum_refund_minor_units: 1,
            partial_refunds: true,
            multiple_refunds: true,
        }
    }
}

impl MethodPolicy {
    /// Reads `key=value` pairs over the default policy:
    /// `window_days=180,minimum=100,partial=false,multiple=false` (any subset, any order).
    pub fn parse_spec(spec: &str) -> Result<Self, SimError> {
        let mut policy = Self::default();
        for pair in spec.split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| config_error("methodPolicy", format!("{pair:?} is not key=value")))?;
            let bad_value = || config_error("methodPolicy", format!("{key}: cannot read {value:?}"));
            match key.trim() {
                "window_days" => policy.refund_window_days = value.trim().parse().map_err(|_| bad_value())?,
                "minimum" => policy.minimum_refund_minor_units = value.trim().parse().map_err(|_| bad_value())?,
                "partial" => policy.partial_refunds = value.trim().parse().map_err(|_| bad_value())?,
                "multiple" => policy.multiple_refunds = value.trim().parse().map_err(|_| bad_value())?,
                other => {
                    return Err(config_error(
                        "methodPolicy",
                        format!("unknown key {other:?} (window_days, minimum, partial, multiple)"),
                    ));
                }
            }
        }
        Ok(policy)
    }
}

/// Refund policies: one per payment method type, and a default for the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Policies {
    /// The policy of methods not listed in `by_method`.
    pub default: MethodPolicy,
    /// Policies keyed by payment method type (`CARD`, `ALIPAY_CN`, ...).
    pub by_method: BTreeMap<String, MethodPolicy>,
}

impl Policies {
    /// The policy that applies to `method`.
    pub fn for_method(&self, method: &PaymentMethodType) -> &MethodPolicy {
        self.by_method.get(method.as_str()).unwrap_or(&self.default)
    }

    /// Sets the policy of one method.
    pub fn with_method(mut self, method: &str, policy: MethodPolicy) -> Self {
        self.by_method.insert(method.to_owned(), policy);
        self
    }
}

/// The fault mix of a run: each share is a probability in `0.0..=1.0` drawn
/// per request from the seeded generator. Transport shares
/// (`timeout`..`bad_signature`) are exclusive and must sum to at most 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultConfig {
    /// Latency added to every answer.
    pub latency_ms: u64,
    /// Share of accepted refunds answered U and left PROCESSING until settled.
    pub u_share: f64,
    /// Share of those U refunds that end FAIL (`PROCESS_FAIL`) instead of SUCCESS.
    pub u_fail_share: f64,
    /// Share of requests held without an answer; the refund is NOT applied.
    pub timeout_share: f64,
    /// Share of refunds applied but then held without an answer (the merchant never hears).
    pub accepted_timeout_share: f64,
    /// Share of requests answered HTTP 500 before processing.
    pub server_error_share: f64,
    /// Share of requests answered HTTP 429 `REQUEST_TRAFFIC_EXCEED_LIMIT` (U) before processing.
    pub rate_limit_share: f64,
    /// Share of requests processed, then answered with a garbage body.
    pub garbage_share: f64,
    /// Share of requests processed, then answered without a `Signature` header.
    pub unsigned_share: f64,
    /// Share of requests processed, then answered with a signature that does not verify.
    pub bad_signature_share: f64,
    /// Share of notifications never sent.
    pub notify_drop_share: f64,
    /// Share of notifications sent a second time after they were acknowledged.
    pub notify_duplicate_share: f64,
    /// Share of notifications held back by `notify_reorder_ms` so that later ones overtake them.
    pub notify_reorder_share: f64,
    /// Extra delay of reordered notifications.
    pub notify_reorder_ms: u64,
    /// Delay before the first attempt of every notification.
    pub notify_delay_ms: u64,
    /// How long a `timeout` fault holds the connection (then a bare 504).
    pub timeout_hold_ms: u64,
}

impl Default for FaultConfig {
    /// No faults; a `timeout` (when asked for) holds 30 s, a reorder delays 1 s.
    fn default() -> Self {
        Self {
            latency_ms: 0,
            u_share: 0.0,
            u_fail_share: 0.0,
            timeout_share: 0.0,
            accepted_timeout_share: 0.0,
            server_error_share: 0.0,
            rate_limit_share: 0.0,
            garbage_share: 0.0,
            unsigned_share: 0.0,
            bad_signature_share: 0.0,
            notify_drop_share: 0.0,
            notify_duplicate_share: 0.0,
            notify_reorder_share: 0.0,
            notify_reorder_ms: 1_000,
            notify_delay_ms: 0,
            timeout_hold_ms: 30_000,
        }
    }
}

impl FaultConfig {
    /// Checks ranges; the error names the field.
    pub fn validate(&self) -> Result<(), SimError> {
        let shares = [
            ("uShare", self.u_share),
            ("uFailShare", self.u_fail_share),
            ("timeoutShare", self.timeout_share),
            ("acceptedTimeoutShare", self.accepted_timeout_share),
            ("serverErrorShare", self.server_error_share),
            ("rateLimitShare", self.rate_limit_share),
            ("garbageShare", self.garbage_share),
            ("unsignedShare", self.unsigned_share),
            ("badSignatureShare", self.bad_signature_share),
            ("notifyDropShare", self.notify_drop_share),
            ("notifyDuplicateShare", self.notify_duplicate_share),
            ("notifyReorderShare", self.notify_reorder_share),
        ];
        for (field, share) in shares {
            if !(0.0..=1.0).contains(&share) {
                return Err(config_error(field, format!("must be within 0.0..=1.0, got {share}")));
            }
        }
        let transport_sum = self.timeout_share
            + self.accepted_timeout_share
            + self.server_error_share
            + self.rate_limit_share
            + self.garbage_share
            + self.unsigned_share
            + self.bad_signature_share;
        if transport_sum > 1.0 {
            return Err(config_error(
                "timeoutShare..badSignatureShare",
                format!("transport fault shares must sum to at most 1.0, got {transport_sum}"),
            ));
        }
        check_max("latencyMs", self.latency_ms, LATENCY_MS_MAX)?;
        check_max("timeoutHoldMs", self.timeout_hold_ms, TIMEOUT_HOLD_MS_MAX)?;
        check_max("notifyDelayMs", self.notify_delay_ms, NOTIFY_DELAY_MS_MAX)?;
        check_max("notifyReorderMs", self.notify_reorder_ms, NOTIFY_DELAY_MS_MAX)?;
        Ok(())
    }
}

/// Everything a simulator run needs.
///
/// Keys are cheap to clone (shared) and their `Debug` prints no key material.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The merchant's client id; requests with another `Client-Id` get `INVALID_CLIENT`.
    pub client_id: String,
    /// Verifies the merchant's request signatures.
    pub merchant_public_key: PublicKey,
    /// Signs responses and notifications as Antom.
    pub antom_private_key: PrivateKey,
    /// Where notifyRefund goes when the refund request has no `refundNotifyUrl`.
    /// `None` and no `refundNotifyUrl`: no notification.
    pub notify_url: Option<String>,
    /// Divides Antom's notification retry waits (1 = real time, 60_000 = a minute per millisecond).
    pub notify_compression: u64,
    /// How long one notification attempt waits for the merchant's answer.
    pub notify_timeout_ms: u64,
    /// How long a U refund stays PROCESSING before it becomes final.
    pub settle_ms: u64,
    /// Seed of the generator that draws faults; the same seed and request
    /// order give the same faults.
    pub seed: u64,
    /// Refund rules per payment method.
    pub policies: Policies,
    /// Fault mix of the run; change it later with `Simulator::set_faults`.
    pub faults: FaultConfig,
    /// How reconciliation reports are made (merchant id, day zone, fees, FX, directory).
    pub reports: ReportSettings,
}

impl SimConfig {
    /// A config with defaults: no notification URL, real-time retries,
    /// U refunds settled after 2 s, seed 0, permissive policies, no faults.
    pub fn new(client_id: impl Into<String>, merchant_public_key: PublicKey, antom_private_key: PrivateKey) -> Self {
        Self {
            client_id: client_id.into(),
            merchant_public_key,
            antom_private_key,
            notify_url: None,
            notify_compression: 1,
            notify_timeout_ms: 5_000,
            settle_ms: 2_000,
            seed: 0,
            policies: Policies::default(),
            faults: FaultConfig::default(),
            reports: ReportSettings::default(),
        }
    }

    /// Benchmark mode: no artificial latency and no faults, so the simulator
    /// measures the client, not itself. U refunds still settle after `settle_ms`.
    pub fn benchmark(mut self) -> Self {
        self.faults = FaultConfig::default();
        self
    }

    /// Checks every bound; the error names the option.
    pub fn validate(&self) -> Result<(), SimError> {
        if self.client_id.is_empty() {
            return Err(config_error("clientId", "must not be empty".to_owned()));
        }
        if self.notify_compression == 0 {
            return Err(config_error("notifyCompression", "must be at least 1".to_owned()));
        }
        if let Some(url) = &self.notify_url {
            let parsed =
                reqwest::Url::parse(url).map_err(|error| config_error("notifyUrl", format!("{url:?}: {error}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(config_error("notifyUrl", format!("{url:?}: must be http or https")));
            }
        }
        check_max("notifyTimeoutMs", self.notify_timeout_ms, NOTIFY_TIMEOUT_MS_MAX)?;
        check_max("settleMs", self.settle_ms, SETTLE_MS_MAX)?;
        self.reports.validate()?;
        self.faults.validate()
    }
}

fn config_error(field: &str, reason: String) -> SimError {
    SimError::Config {
        field: field.to_owned(),
        reason,
    }
}

fn check_max(field: &str, value: u64, max: u64) -> Result<(), SimError> {
    if value > max {
        return Err(config_error(field, format!("must be at most {max}, got {value}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_specs_parse_over_the_default() {
        let policy = MethodPolicy::parse_spec("window_days=30, partial=false").unwrap();
        assert_eq!(
            policy,
            MethodPolicy {
                refund_window_days: 30,
                partial_refunds: false,
                ..MethodPolicy::default()
            }
        );
        assert!(MethodPolicy::parse_spec("window=3").is_err());
        assert!(MethodPolicy::parse_spec("partial=maybe").is_err());
        assert_eq!(MethodPolicy::parse_spec("").unwrap(), MethodPolicy::default());
    }

    #[test]
    fn fault_shares_are_bounded() {
        let too_many = FaultConfig {
            timeout_share: 0.6,
            garbage_share: 0.6,
            ..FaultConfig::default()
        };
        assert!(matches!(too_many.validate(), Err(SimError::Config { .. })));
        let negative = FaultConfig {
            u_share: -0.1,
            ..FaultConfig::default()
        };
        assert!(negative.validate().is_err());
        let long_hold = FaultConfig {
            timeout_hold_ms: TIMEOUT_HOLD_MS_MAX + 1,
            ..FaultConfig::default()
        };
        assert!(long_hold.validate().is_err());
        assert!(FaultConfig::default().validate().is_ok());
    }
}
