//! Domain events written straight to an event log, bypassing the service: for tests that need a log in a given
//! shape (interleaved, tampered, large) faster than the service would write it.

use domain::{
    Currency, Money, OutcomeSource, PaymentEvent, PaymentId, PaymentMethodType, PaymentRecorded, RefundId,
    RefundRequestId, RefundRequested, RefundSucceeded,
};
use eventlog::{EventStore, ExpectedRevision, NewEvent, StreamName};
use time::OffsetDateTime;

/// The event to append for `event`, caused by `actor`, with a fresh id.
pub fn new_event(event: &PaymentEvent, actor: &str) -> NewEvent {
    let stored = event.to_stored();
    NewEvent {
        event_id: uuid::Uuid::new_v4(),
        event_type: stored.event_type.to_owned(),
        schema_version: stored.schema_version,
        payload: stored.data,
        actor: actor.to_owned(),
    }
}

/// The stream of `payment_id`.
pub fn payment_stream(payment_id: &PaymentId) -> StreamName {
    StreamName::parse(domain::payment_stream_name(payment_id)).expect("payment stream names are valid")
}

/// Refunds per payment in [`write_big_log`]: `1 + 2 * 499` events fill one append of 1,000 events.
pub const BIG_LOG_REFUNDS_PER_PAYMENT: u64 = 499;

/// When every event of [`write_big_log`] happened (payment, request and Antom's refund time): 2026-11-01
/// 00:00 UTC, which is day 2026-11-01 of Antom's reports at +08:00.
pub const BIG_LOG_TIME_UNIX: i64 = 1_793_491_200;

/// Antom's file name of [`write_big_log_report`]'s report: transaction details of the big log's day.
pub const BIG_LOG_REPORT_NAME: &str = "transactionItems_20261101_000.csv";

/// The header of a G3 transaction details report.
const G3_TRANSACTION_HEADER: &str = "customerId,PSP,ARN,transactionId,transactionRequestId,\
originalTransactionRequestId,referenceTransactionId,orderDescription,paymentMethodType,wallet,transactionType,status,\
transactionCreationTime,transactionAmountValue,transactionCurrency,convertedTransactionAmountValue,convertedCurrency,\
settlementAmountValue,settlementCurrency,quoteCurrencyPair,quotePrice,paymentMethodFeeAmountValue,\
paymentMethodFeeCurrency,settlementBatchId\n";

/// Writes Antom's transaction details report (G3, [`BIG_LOG_REPORT_NAME`]) of the day of [`write_big_log`]'s
/// first `refunds` refunds: one SUCCESS REFUND row per refund, as the ledger holds it (so each one matches),
/// in the log's order, then `<END>`. Written as it goes, so a report of millions of rows needs no memory.
pub fn write_big_log_report(refunds: u64, out: &mut impl std::io::Write) -> std::io::Result<()> {
    out.write_all(G3_TRANSACTION_HEADER.as_bytes())?;
    for index in 0..refunds {
        let (payment, refund) = (index / BIG_LOG_REFUNDS_PER_PAYMENT, index % BIG_LOG_REFUNDS_PER_PAYMENT);
        let minor = 100 + refund;
        let (amount, currency, fee) = if payment % 2 == 0 {
            (format!("-{}.{:02}", minor / 100, minor % 100), "USD", "0.00")
        } else {
            (format!("-{minor}"), "JPY", "0")
        };
        writeln!(
            out,
            "2188120000000001,Antom,,A-{payment}-{refund},BIG-{payment}-{refund},BIG-{payment},,,ALIPAY_CN,,REFUND,\
             SUCCESS,2026-11-01T08:00:00+08:00,{amount},{currency},,,{amount},{currency},,,{fee},{currency},\
             2026110311000000001"
        )?;
    }
    out.write_all(b"<END>\n")
}

/// Appends a large, valid log in full batches (much faster than through the service) until `refunds`
/// succeeded refunds (two journal lines each) are in it: payments `BIG-{n}` of
/// [`BIG_LOG_REFUNDS_PER_PAYMENT`] refunds each, in USD and JPY.
pub async fn write_big_log(store: &dyn EventStore, refunds: u64) {
    let time = OffsetDateTime::from_unix_timestamp(BIG_LOG_TIME_UNIX).expect("a valid time");
    let payments = refunds.div_ceil(BIG_LOG_REFUNDS_PER_PAYMENT);
    let new_event = |event: PaymentEvent| new_event(&event, "bench");
    for payment in 0..payments {
        let code = if payment % 2 == 0 { "USD" } else { "JPY" };
        let currency = Currency::parse("c", code).expect("a valid currency");
        let payment_id = PaymentId::parse(&format!("BIG-{payment}")).expect("a valid payment id");
        let count = BIG_LOG_REFUNDS_PER_PAYMENT.min(refunds - payment * BIG_LOG_REFUNDS_PER_PAYMENT);
        let mut events = vec![new_event(PaymentEvent::PaymentRecorded(PaymentRecorded {
            payment_id: payment_id.clone(),
            payment_amount: Money::from_minor_units("p", currency, 1_000_000).expect("a valid amount"),
            payment_method_type: PaymentMethodType::parse("ALIPAY_CN").expect("a valid method"),
            payment_time: time,
            capture_required: false,
        }))];
        for refund in 0..count {
            let refund_request_id =
                RefundRequestId::parse(&format!("BIG-{payment}-{refund}")).expect("a valid refund request id");
            events.push(new_event(PaymentEvent::RefundRequested(RefundRequested {
                refund_request_id: refund_request_id.clone(),
                payment_id: payment_id.clone(),
                refund_amount: Money::from_minor_units("r", currency, 100 + refund).expect("a valid amount"),
                refund_reason: None,
                requested_at: time,
            })));
            events.push(new_event(PaymentEvent::RefundSucceeded(RefundSucceeded {
                refund_request_id,
                refund_id: RefundId::parse(&format!("A-{payment}-{refund}")).expect("a valid refund id"),
                refund_time: time,
                source: OutcomeSource::RefundResponse,
            })));
        }
        store
            .append(&payment_stream(&payment_id), ExpectedRevision::NoStream, events)
            .await
            .expect("append to a fresh stream");
    }
}
