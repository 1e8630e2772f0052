//! Antom as the saga sees it: a refund call and an inquiry, each answering
//! an outcome. A call that could not even be made is an unknown outcome too:
//! the refund stays pending and the worker settles it with the same
//! refundRequestId, which Antom deduplicates on.

use std::fmt;

use apo::{ApoClient, InquiryOutcome, InquiryRefundRequest, RefundOutcome, RefundRequest, UnknownReason};
use async_trait::async_trait;
use domain::RefundRequestId;

/// Antom's refund and inquiryRefund, as outcomes.
///
/// Implementations never fail: anything that is not a verified S or F (a
/// timeout, a transport error, an unsigned answer, a request that could not
/// be signed) is an `Unknown` outcome.
#[async_trait]
pub trait RefundGateway: Send + Sync + fmt::Debug {
    /// Sends `request` to Antom's `refund`.
    async fn refund(&self, request: &RefundRequest) -> RefundOutcome;
    /// Sends `request` to Antom's `refund` for a refund whose request the log holds at or before global
    /// position `log_position` (the saga passes it). A gateway that must see the log up to the refund's request
    /// before calling Antom (the demo stacks' simulator mirror) waits for that position instead of reading the
    /// log's head; by default the same as [`RefundGateway::refund`].
    async fn refund_after(&self, request: &RefundRequest, _log_position: u64) -> RefundOutcome {
        self.refund(request).await
    }
    /// Asks Antom's `inquiryRefund` about the refund with this refundRequestId.
    async fn inquiry(&self, refund_request_id: &RefundRequestId) -> InquiryOutcome;
}

#[async_trait]
impl RefundGateway for ApoClient {
    async fn refund(&self, request: &RefundRequest) -> RefundOutcome {
        match ApoClient::refund(self, request).await {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::error!(%error, "the refund call could not be made");
                RefundOutcome::Unknown {
                    reason: not_sent(&error),
                }
            }
        }
    }

    async fn inquiry(&self, refund_request_id: &RefundRequestId) -> InquiryOutcome {
        let request = InquiryRefundRequest::by_refund_request_id(refund_request_id.clone());
        match self.inquiry_refund(&request).await {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::error!(%error, "the inquiry call could not be made");
                InquiryOutcome::Unknown {
                    reason: not_sent(&error),
                }
            }
        }
    }
}

fn not_sent(error: &apo::ClientError) -> UnknownReason {
    UnknownReason::Transport {
        message: format!("request not sent: {error}"),
    }
}
