//! Where a refund stands: part of the state and of the stored anomaly event, so it lives apart from both.

use serde::{Deserialize, Serialize};

/// Where a refund stands in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    /// Accepted and reserved; Antom not yet (known to be) called.
    Requested,
    /// Sent; Antom's outcome is not final or not known.
    Processing,
    /// Antom confirmed it. Terminal.
    Succeeded,
    /// Antom refused it. Terminal; the reservation is released.
    Failed,
    /// The ledger refused it before sending. Terminal; nothing was reserved.
    Rejected,
}

impl RefundStatus {
    /// Whether the status can never change again.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Rejected)
    }

    /// The stored and wire code, e.g. `SUCCEEDED`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Requested => "REQUESTED",
            Self::Processing => "PROCESSING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Rejected => "REJECTED",
        }
    }

    /// Whether the refund's amount is reserved but not yet final.
    pub fn is_pending(&self) -> bool {
        matches!(self, Self::Requested | Self::Processing)
    }
}
