//! FIXME(projections runner): a stand-in for the projections crate's read models until its runner
//! and backends land: it answers the two queries the ledger asks (a refund by id, the open refunds)
//! by folding the whole log on every call. Replace with the real runner.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::{Currency, PaymentEvent, PaymentId, RefundRequestId, RefundStatus};
use eventlog::EventStore;
use projections::{
    Cursor, DailyTotal, Page, PaymentFilter, PaymentView, ProjectionError, ReadModels, RefundFilter, RefundView,
};
use time::{Date, OffsetDateTime};

pub(crate) struct TestReadModels {
    store: Arc<dyn EventStore>,
}

impl TestReadModels {
    pub(crate) fn new(store: Arc<dyn EventStore>) -> Self {
        Self { store }
    }

    async fn refunds_now(&self) -> Result<BTreeMap<RefundRequestId, RefundView>, ProjectionError> {
        let mut refunds = BTreeMap::new();
        let mut from = 1;
        loop {
            let batch = self.store.read_all(from, 1_000).await?;
            let Some(last) = batch.last() else { break };
            from = last.position + 1;
            for recorded in &batch {
                let event =
                    PaymentEvent::from_stored(&recorded.event_type, recorded.schema_version, &recorded.payload, &[])
                        .map_err(|source| ProjectionError::Decode {
                            position: recorded.position,
                            event_type: recorded.event_type.clone(),
                            source,
                        })?;
                apply(&mut refunds, &event, recorded);
            }
        }
        Ok(refunds)
    }
}

fn apply(
    refunds: &mut BTreeMap<RefundRequestId, RefundView>,
    event: &PaymentEvent,
    recorded: &eventlog::RecordedEvent,
) {
    let view = |id: &RefundRequestId, payment_id: &PaymentId, amount, reason: &Option<String>, status, at| RefundView {
        refund_request_id: id.clone(),
        payment_id: payment_id.clone(),
        refund_amount: amount,
        refund_reason: reason.clone(),
        status,
        result_code: None,
        result_message: None,
        refund_id: None,
        requested_at: at,
        settled_at: None,
        requested_by: recorded.actor.clone(),
        anomaly_count: 0,
        last_position: recorded.position,
        updated_at: recorded.recorded_at,
    };
    match event {
        PaymentEvent::RefundRequested(e) => {
            let v = view(
                &e.refund_request_id,
                &e.payment_id,
                e.refund_amount,
                &e.refund_reason,
                RefundStatus::Requested,
                e.requested_at,
            );
            refunds.insert(e.refund_request_id.clone(), v);
        }
        PaymentEvent::RefundRejected(e) => {
            let v = view(
                &e.refund_request_id,
                &e.payment_id,
                e.refund_amount,
                &e.refund_reason,
                RefundStatus::Rejected,
                e.rejected_at,
            );
            refunds.insert(e.refund_request_id.clone(), v);
        }
        PaymentEvent::RefundProcessing(e) => set(refunds, &e.refund_request_id, RefundStatus::Processing),
        PaymentEvent::RefundSucceeded(e) => set(refunds, &e.refund_request_id, RefundStatus::Succeeded),
        PaymentEvent::RefundFailed(e) => set(refunds, &e.refund_request_id, RefundStatus::Failed),
        _ => {}
    }
}

fn set(refunds: &mut BTreeMap<RefundRequestId, RefundView>, id: &RefundRequestId, status: RefundStatus) {
    if let Some(view) = refunds.get_mut(id)
        && view.status.is_pending()
    {
        view.status = status;
    }
}

#[async_trait]
impl ReadModels for TestReadModels {
    async fn checkpoint(&self) -> Result<u64, ProjectionError> {
        Ok(self.store.head().await?.position)
    }

    async fn wait_for_position(&self, _position: u64, _timeout: Duration) -> Result<bool, ProjectionError> {
        Ok(true)
    }

    async fn payment(&self, _payment_id: &PaymentId) -> Result<Option<PaymentView>, ProjectionError> {
        Ok(None)
    }

    async fn payments(
        &self,
        _filter: &PaymentFilter,
        _after: Option<&Cursor>,
        _first: usize,
    ) -> Result<Page<PaymentView>, ProjectionError> {
        Ok(Page {
            items: Vec::new(),
            has_next_page: false,
        })
    }

    async fn refund(&self, refund_request_id: &RefundRequestId) -> Result<Option<RefundView>, ProjectionError> {
        Ok(self.refunds_now().await?.remove(refund_request_id))
    }

    async fn refunds(
        &self,
        _filter: &RefundFilter,
        _after: Option<&Cursor>,
        _first: usize,
    ) -> Result<Page<RefundView>, ProjectionError> {
        Ok(Page {
            items: Vec::new(),
            has_next_page: false,
        })
    }

    async fn open_refunds(
        &self,
        requested_before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<RefundView>, ProjectionError> {
        let mut open: Vec<RefundView> = self
            .refunds_now()
            .await?
            .into_values()
            .filter(|view| view.status.is_pending() && view.requested_at < requested_before)
            .collect();
        open.sort_by(|a, b| (a.requested_at, &a.refund_request_id).cmp(&(b.requested_at, &b.refund_request_id)));
        open.truncate(limit);
        Ok(open)
    }

    async fn daily_totals(
        &self,
        _from: Date,
        _to: Date,
        _currency: Option<Currency>,
    ) -> Result<Vec<DailyTotal>, ProjectionError> {
        Ok(Vec::new())
    }
}
