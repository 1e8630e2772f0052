//! The refund policy: per payment method, what the merchant's agreement with
//! Antom allows. Loaded from the config file by the server; the defaults
//! here are conservative and documented in README's configuration section.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::id::PaymentMethodType;
use crate::money::Currency;

/// Default refund window when neither the method nor the config says otherwise.
pub const REFUND_WINDOW_DAYS_DEFAULT: u32 = 365;

/// What refunds one payment method allows.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", default, deny_unknown_fields)]
pub struct MethodPolicy {
    /// Whether the method can be refunded at all (`REFUND_NOT_SUPPORTED` otherwise).
    pub refund_supported: bool,
    /// Days after the payment time during which a refund may be requested (`REFUND_WINDOW_EXCEED`).
    pub refund_window_days: u32,
    /// Whether a refund may be for less than the captured amount (`PARTIAL_REFUND_NOT_SUPPORTED`).
    pub partial_refund_allowed: bool,
    /// Whether more than one refund may be made on a payment (`MULTIPLE_REFUNDS_NOT_SUPPORTED`).
    pub multiple_refunds_allowed: bool,
    /// Whether payments of this method must be captured before a refund (`ORDER_STATUS_INVALID`).
    /// Used when the payment itself does not say.
    pub capture_required: bool,
    /// Smallest refund per currency, in minor units (`REFUND_AMOUNT_EXCEED` below it).
    /// A currency not listed has a minimum of one minor unit.
    pub minimum_refund_minor_units: BTreeMap<Currency, u64>,
}

impl Default for MethodPolicy {
    fn default() -> Self {
        Self {
            refund_supported: true,
            refund_window_days: REFUND_WINDOW_DAYS_DEFAULT,
            partial_refund_allowed: true,
            multiple_refunds_allowed: true,
            capture_required: false,
            minimum_refund_minor_units: BTreeMap::new(),
        }
    }
}

impl MethodPolicy {
    /// The smallest refund in `currency`, in minor units (at least 1).
    pub fn minimum_refund(&self, currency: Currency) -> u64 {
        self.minimum_refund_minor_units
            .get(&currency)
            .copied()
            .unwrap_or(1)
            .max(1)
    }
}

/// The refund policy of a merchant: a default and overrides per payment method type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", default, deny_unknown_fields)]
pub struct Policy {
    /// Used for every method not listed in `methods`.
    pub default: MethodPolicy,
    /// Overrides keyed by Antom's `paymentMethodType` (`CARD`, `ALIPAY_CN`, ...).
    pub methods: BTreeMap<String, MethodPolicy>,
}

impl Default for Policy {
    /// Cards must be captured before a refund; everything else may be refunded
    /// in part and more than once within 365 days.
    fn default() -> Self {
        let card = MethodPolicy {
            capture_required: true,
            ..MethodPolicy::default()
        };
        Self {
            default: MethodPolicy::default(),
            methods: BTreeMap::from([("CARD".to_owned(), card)]),
        }
    }
}

impl Policy {
    /// The rules for one payment method type.
    pub fn for_method(&self, method: &PaymentMethodType) -> &MethodPolicy {
        self.methods.get(method.as_str()).unwrap_or(&self.default)
    }
}
