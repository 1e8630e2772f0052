//! The conformance suite on KurrentDB, against the server `KURRENTDB_URL` names (for example
//! `kurrentdb://127.0.0.1:2113?tls=false`; `docker compose --profile kurrentdb up kurrentdb` starts one).
//!
//! Each case gets a namespace of its own (`t{uuid}`), so a shared server gives every case a fresh, empty log;
//! the namespaces stay on the server afterwards. Without `KURRENTDB_URL` every case prints
//! `skipped: KURRENTDB_URL not set (case)` and does nothing: no KurrentDB server can run on the machines this
//! project is built on, so CI builds and lints this backend and runs its unit tests, and this suite runs
//! where a server is at hand.

use std::sync::Arc;
use std::time::Duration;

use eventlog::chain::StreamChainVerifier;
use eventlog::seal::{SEAL_STREAM, Seal, SealVerifier};
use eventlog::{EventStore, ExpectedRevision, KurrentDbStore, StoreError, StreamName};
use uuid::Uuid;

use crate::conformance::{Harness, event, stream};

struct KurrentDbHarness {
    url: String,
}

/// A harness on a fresh namespace, `None` without `KURRENTDB_URL`.
async fn fresh() -> Option<KurrentDbHarness> {
    let server = std::env::var("KURRENTDB_URL").ok().filter(|url| !url.is_empty())?;
    let separator = if server.contains('?') { '&' } else { '?' };
    // A short seal interval, so that the sealer runs while the cases do.
    let url = format!(
        "{server}{separator}namespace=t{}&sealIntervalMs=50",
        Uuid::new_v4().simple()
    );
    Some(KurrentDbHarness { url })
}

impl Harness for KurrentDbHarness {
    type Store = KurrentDbStore;

    async fn open(&self) -> Arc<KurrentDbStore> {
        let store = KurrentDbStore::connect(&self.url).await;
        Arc::new(store.expect("connect to KurrentDB at KURRENTDB_URL"))
    }

    async fn finish(self) {}
}

conformance_suite!(optional fresh(), "KURRENTDB_URL not set");

/// The sealer covers every event in log order, the seals chain and check, and the seal stream is the
/// store's own: callers cannot append to it and `read_all` leaves it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seals_cover_the_log_in_order_and_are_the_stores_own() {
    let Some(harness) = fresh().await else {
        #[allow(clippy::print_stdout, reason = "the skip is reported where test output goes")]
        {
            println!("skipped: KURRENTDB_URL not set (seals_cover_the_log_in_order_and_are_the_stores_own)");
        }
        return;
    };
    let store = harness.open().await;
    for index in 0..30 {
        let stream = stream(&format!("payment-{}", index % 4));
        store
            .append(&stream, ExpectedRevision::Any, vec![event(&index.to_string())])
            .await
            .expect("append");
    }
    store.seal_now().await.expect("seal");
    let seal_stream = StreamName::parse(SEAL_STREAM).expect("valid");
    match store
        .append(&seal_stream, ExpectedRevision::Any, vec![event("forged")])
        .await
    {
        Err(StoreError::InvalidStreamName { .. }) => {}
        other => panic!("a caller appended to the seal stream: {other:?}"),
    }
    let log = store.read_all(0, 1_000).await.expect("read");
    assert_eq!(log.len(), 30, "read_all holds the ledger's events only");
    let seals = store.read_stream(&seal_stream, 0, 1_000).await.expect("read seals");
    assert!(!seals.is_empty());
    let mut verifier = SealVerifier::default();
    for recorded in &seals {
        let seal = Seal::from_payload(recorded.position, &recorded.payload).expect("decode");
        verifier.add_seal(recorded.position, seal).expect("seals chain");
    }
    let mut chains = StreamChainVerifier::default();
    for recorded in &log {
        chains.check(recorded).expect("stream chains");
        verifier.check_event(recorded).expect("sealed as stored");
    }
    verifier.check_end().expect("every sealed event is there");
    assert_eq!((verifier.sealed_events(), verifier.unsealed_events()), (30, 0));

    // A second handle's sealer and this one race; the seal stream still has one seal per run of events.
    let other = harness.open().await;
    for index in 0..5 {
        let stream = stream("payment-9");
        other
            .append(&stream, ExpectedRevision::Any, vec![event(&index.to_string())])
            .await
            .expect("append");
    }
    let (left, right) = tokio::join!(store.seal_now(), other.seal_now());
    left.expect("seal");
    right.expect("seal");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seals = store.read_stream(&seal_stream, 0, 1_000).await.expect("read seals");
    let mut verifier = SealVerifier::default();
    for recorded in &seals {
        let seal = Seal::from_payload(recorded.position, &recorded.payload).expect("decode");
        verifier.add_seal(recorded.position, seal).expect("one chain of seals");
    }
    for recorded in store.read_all(0, 1_000).await.expect("read") {
        verifier.check_event(&recorded).expect("sealed once");
    }
    assert_eq!(verifier.sealed_events(), 35);
}
