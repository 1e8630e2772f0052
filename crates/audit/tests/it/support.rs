//! A log with interleaved payments, refund requests and outcomes, each in its own append (so each has its
//! own `recorded_at`, and a time range can cut between a request and its outcome).

use std::sync::Arc;

use domain::{
    Currency, Money, OutcomeSource, PaymentEvent, PaymentId, PaymentMethodType, PaymentRecorded, RefundFailed,
    RefundId, RefundRequestId, RefundRequested, RefundSucceeded, ResultCode,
};
use eventlog::{EventStore, ExpectedRevision, SparseMemoryStore, SqliteStore, StreamName};
use testkit::log::new_event;
use time::OffsetDateTime;

pub(crate) const PAYMENTS: u64 = 12;
pub(crate) const REFUNDS_PER_PAYMENT: u64 = 3;

async fn append(store: &dyn EventStore, payment: u64, event: PaymentEvent) {
    let stream = StreamName::parse(format!("payment-P{payment}")).unwrap();
    let new = new_event(&event, "test");
    store.append(&stream, ExpectedRevision::Any, vec![new]).await.unwrap();
}

/// Writes the log into a new SQLite file in `folder`; every third refund fails, the rest succeed.
pub(crate) async fn interleaved_log(folder: &std::path::Path) -> Arc<dyn EventStore> {
    let store: Arc<dyn EventStore> = Arc::new(SqliteStore::open(folder.join("ledger.db")).await.unwrap());
    write_interleaved(store.as_ref()).await;
    store
}

/// The same log in the in-memory sparse store (KurrentDB's shape), sealed up to its head; the handle's clone
/// lets a test seal more or tamper.
pub(crate) async fn interleaved_sparse_log() -> (SparseMemoryStore, Arc<dyn EventStore>) {
    let log = SparseMemoryStore::new();
    write_interleaved(&log).await;
    log.seal_now().unwrap();
    (log.clone(), Arc::new(log))
}

async fn write_interleaved(store: &dyn EventStore) {
    let time = OffsetDateTime::from_unix_timestamp(1_793_491_200).unwrap();
    let currency = |payment: u64| Currency::parse("c", ["USD", "JPY", "KWD"][(payment % 3) as usize]).unwrap();
    for payment in 0..PAYMENTS {
        append(
            store,
            payment,
            PaymentEvent::PaymentRecorded(PaymentRecorded {
                payment_id: PaymentId::parse(&format!("P{payment}")).unwrap(),
                payment_amount: Money::from_minor_units("p", currency(payment), 100_000).unwrap(),
                payment_method_type: PaymentMethodType::parse("ALIPAY_CN").unwrap(),
                payment_time: time,
                capture_required: false,
            }),
        )
        .await;
    }
    for refund in 0..REFUNDS_PER_PAYMENT {
        for payment in 0..PAYMENTS {
            append(
                store,
                payment,
                PaymentEvent::RefundRequested(RefundRequested {
                    refund_request_id: RefundRequestId::parse(&format!("R{payment}-{refund}")).unwrap(),
                    payment_id: PaymentId::parse(&format!("P{payment}")).unwrap(),
                    refund_amount: Money::from_minor_units("r", currency(payment), 1_001 + payment * 7 + refund)
                        .unwrap(),
                    refund_reason: Some("line one\nline \"two\", with comma".to_owned()),
                    requested_at: time,
                }),
            )
            .await;
        }
        for payment in (0..PAYMENTS).rev() {
            let refund_request_id = RefundRequestId::parse(&format!("R{payment}-{refund}")).unwrap();
            let outcome = if (payment + refund) % 3 == 0 {
                PaymentEvent::RefundFailed(RefundFailed {
                    refund_request_id,
                    result_code: ResultCode::parse("REFUND_FAIL"),
                    result_message: "declined".to_owned(),
                    failed_at: time,
                    source: OutcomeSource::Inquiry,
                })
            } else {
                PaymentEvent::RefundSucceeded(RefundSucceeded {
                    refund_request_id,
                    refund_id: RefundId::parse(&format!("A{payment}-{refund}")).unwrap(),
                    refund_time: time,
                    source: OutcomeSource::RefundResponse,
                })
            };
            append(store, payment, outcome).await;
        }
    }
}
