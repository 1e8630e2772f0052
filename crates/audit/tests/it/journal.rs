//! The journal of any time range balances per currency, adjacent ranges add up to the whole journal (so a
//! range starting after a refund's request still finds its amount), and the same range gives the same bytes;
//! replay of the same log gives the same state bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use audit::{Accounts, ExportFilter, Format, JournalExport};
use eventlog::EventStore;
use time::OffsetDateTime;

use crate::support::{PAYMENTS, REFUNDS_PER_PAYMENT, interleaved_log, interleaved_sparse_log};

fn accounts() -> Accounts {
    Accounts {
        refunds: "6100 Refunds".to_owned(),
        clearing: "1130 Antom, clearing".to_owned(),
    }
}

async fn export(store: &Arc<dyn EventStore>, format: Format, filter: ExportFilter) -> String {
    let mut export = JournalExport::new(Arc::clone(store), format, accounts(), filter);
    let mut out = Vec::new();
    while let Some(chunk) = export.next_chunk().await.unwrap() {
        out.extend_from_slice(&chunk);
    }
    String::from_utf8(out).unwrap()
}

/// Debits minus credits per currency, in minor units (exact: the decimal point is dropped).
fn imbalance(jsonl: &str) -> BTreeMap<String, i128> {
    let mut sums = BTreeMap::new();
    for line in jsonl.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let minor = |field: &str| row[field].as_str().unwrap().replace('.', "").parse::<i128>().unwrap();
        *sums.entry(row["currency"].as_str().unwrap().to_owned()).or_default() += minor("debit") - minor("credit");
    }
    sums
}

#[tokio::test]
async fn any_range_balances_and_adjacent_ranges_make_the_whole_journal() {
    let folder = tempfile::tempdir().unwrap();
    check_ranges(&interleaved_log(folder.path()).await).await;
}

/// The same on a sparse log (KurrentDB's shape), where the journal reads the whole log and keeps the range.
#[tokio::test]
async fn any_range_of_a_sparse_log_balances_and_adjacent_ranges_make_the_whole_journal() {
    let (_, store) = interleaved_sparse_log().await;
    check_ranges(&store).await;
}

async fn check_ranges(store: &Arc<dyn EventStore>) {
    let store = Arc::clone(store);
    let whole = export(&store, Format::JsonLines, ExportFilter::default()).await;
    let succeeded = (0..PAYMENTS)
        .flat_map(|payment| (0..REFUNDS_PER_PAYMENT).map(move |refund| (payment + refund) % 3 != 0))
        .filter(|succeeded| *succeeded)
        .count();
    assert_eq!(whole.lines().count(), succeeded * 2);
    assert!(imbalance(&whole).values().all(|sum| *sum == 0), "{whole}");
    assert_eq!(imbalance(&whole).len(), 3, "USD, JPY and KWD");
    assert!(
        whole.contains("\"currency\":\"KWD\",\"account\":\"6100 Refunds\",\"debit\":\"1."),
        "{whole}"
    );

    let events = store.read_all(1, 1_000).await.unwrap();
    let times: Vec<OffsetDateTime> = events.iter().map(|event| event.recorded_at).collect();
    assert_eq!(
        events.last().map(|event| event.position),
        Some(store.head().await.unwrap().position)
    );
    for cut in (1..times.len()).step_by(5) {
        let at = times[cut];
        let before = export(
            &store,
            Format::JsonLines,
            ExportFilter {
                to: Some(at),
                ..ExportFilter::default()
            },
        )
        .await;
        let after = export(
            &store,
            Format::JsonLines,
            ExportFilter {
                from: Some(at),
                ..ExportFilter::default()
            },
        )
        .await;
        assert!(imbalance(&before).values().all(|sum| *sum == 0), "before {at}");
        assert!(imbalance(&after).values().all(|sum| *sum == 0), "after {at}");
        assert_eq!(
            format!("{before}{after}"),
            whole,
            "ranges cut at {at} add up to the whole"
        );
        let again = export(
            &store,
            Format::JsonLines,
            ExportFilter {
                from: Some(at),
                ..ExportFilter::default()
            },
        )
        .await;
        assert_eq!(again, after, "the same range gives the same bytes");
    }
}

#[tokio::test]
async fn csv_quotes_account_names_and_ends_lines_with_crlf() {
    let folder = tempfile::tempdir().unwrap();
    let store = interleaved_log(folder.path()).await;
    let usd = domain::Currency::parse("c", "USD").unwrap();
    let csv = export(
        &store,
        Format::Csv,
        ExportFilter {
            currency: Some(usd),
            ..ExportFilter::default()
        },
    )
    .await;
    let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(
        lines[0],
        "date,recordedAt,refundRequestId,refundId,paymentId,currency,account,debit,credit,position,hash"
    );
    assert!(!csv.replace("\r\n", "").contains('\n'));
    for pair in lines[1..].chunks(2) {
        assert!(pair[0].contains(",USD,6100 Refunds,"), "{}", pair[0]);
        assert!(pair[1].contains(",USD,\"1130 Antom, clearing\",0.00,"), "{}", pair[1]);
    }
}

#[tokio::test]
async fn replay_of_the_same_log_gives_the_same_bytes() {
    let folder = tempfile::tempdir().unwrap();
    check_replay(interleaved_log(folder.path()).await).await;
}

#[tokio::test]
async fn replay_of_a_sparse_log_gives_the_same_bytes_and_stops_where_asked() {
    let (_, store) = interleaved_sparse_log().await;
    check_replay(store).await;
}

async fn check_replay(store: Arc<dyn EventStore>) {
    let head = store.head().await.unwrap().position;
    let mut positions = Vec::new();
    let first = audit::replay::rebuild(store.as_ref(), head, &mut |position| positions.push(position))
        .await
        .unwrap();
    assert_eq!(positions.last(), Some(&head));
    let second = audit::replay::rebuild(store.as_ref(), head, &mut |_| {}).await.unwrap();
    assert_eq!(first.canonical_bytes(), second.canonical_bytes());
    assert_eq!(first.state_digest(), second.state_digest());
    assert_eq!(first.payment_count() as u64, PAYMENTS);
    assert_eq!(first.refund_count() as u64, PAYMENTS * REFUNDS_PER_PAYMENT);
    let events = store.read_all(1, 1_000).await.unwrap();
    let middle = &events[events.len() / 2];
    let halfway = audit::replay::rebuild(store.as_ref(), middle.position, &mut |_| {})
        .await
        .unwrap();
    assert_ne!(halfway.state_digest(), first.state_digest());
    assert_eq!(halfway.last_position, middle.position);
    assert_eq!(
        halfway.events,
        (events.len() / 2 + 1) as u64,
        "exactly the events up to the middle one"
    );
    let as_of = audit::replay::end_position(store.as_ref(), audit::replay::ReplayEnd::AsOf(middle.recorded_at), head)
        .await
        .unwrap();
    let last_at_that_time = events
        .iter()
        .take_while(|event| event.recorded_at <= middle.recorded_at)
        .last()
        .unwrap();
    assert_eq!(
        as_of, last_at_that_time.position,
        "as-of ends after the last event recorded by then"
    );
}
