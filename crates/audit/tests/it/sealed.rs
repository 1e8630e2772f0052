//! `verify` on a sparse, sealed log (KurrentDB's shape, in the in-memory sparse store): an intact log, its
//! digest (the last seal's) and unsealed tail; and each kind of tampering named at the first bad event.

use audit::{Digest, verify_log};
use eventlog::seal::SEAL_STREAM;
use eventlog::{ExpectedRevision, NewEvent, StreamName};

use crate::support::interleaved_sparse_log;

fn event(label: &str) -> NewEvent {
    NewEvent {
        event_id: uuid::Uuid::new_v4(),
        event_type: "NoteTaken".to_owned(),
        schema_version: 1,
        payload: format!(r#"{{"label":"{label}"}}"#).into_bytes(),
        actor: "test".to_owned(),
    }
}

#[tokio::test]
async fn an_intact_sealed_log_verifies_to_its_last_seal_and_counts_the_unsealed_tail() {
    let (log, store) = interleaved_sparse_log().await;
    let events = store.read_all(1, 1_000).await.unwrap();
    let report = verify_log(store.as_ref(), None).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.finding);
    assert_eq!(
        (report.events, report.streams, report.unsealed),
        (events.len() as u64, 12, 0)
    );
    let sealed = report.digest;
    assert_eq!(
        sealed.position,
        events.last().unwrap().position,
        "sealed up to the head"
    );

    let stream = StreamName::parse("payment-P1").unwrap();
    store
        .append(&stream, ExpectedRevision::Any, vec![event("late")])
        .await
        .unwrap();
    let report = verify_log(store.as_ref(), Some(sealed)).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.finding);
    assert_eq!(
        (report.unsealed, report.extends),
        (1, Some(sealed)),
        "covered by its stream chain only"
    );
    log.seal_now().unwrap();
    let report = verify_log(store.as_ref(), Some(sealed)).await.unwrap();
    assert_eq!((report.unsealed, report.extends), (0, Some(sealed)));
    assert_ne!(report.digest, sealed, "the digest moves to the new seal");

    let forged = Digest {
        position: sealed.position,
        hash: [7; 32],
    };
    let report = verify_log(store.as_ref(), Some(forged)).await.unwrap();
    assert!(report.finding.unwrap().reason.contains("does not extend"));
}

#[tokio::test]
async fn a_changed_event_is_named_by_its_stream_chain() {
    let (log, store) = interleaved_sparse_log().await;
    let events = store.read_all(1, 1_000).await.unwrap();
    let target = events[20].clone();
    log.tamper(|stored| {
        let event = stored
            .iter_mut()
            .find(|event| event.position == target.position)
            .unwrap();
        event.payload = event
            .payload
            .iter()
            .map(|byte| if *byte == b'1' { b'2' } else { *byte })
            .collect();
    });
    let finding = verify_log(store.as_ref(), None).await.unwrap().finding.unwrap();
    assert_eq!(
        (finding.position, finding.stream.as_deref()),
        (target.position, Some(target.stream.as_str()))
    );
    assert!(finding.reason.contains("hash does not match"), "{finding}");
}

#[tokio::test]
async fn a_removed_stream_tail_is_named_by_the_seal_even_with_its_chain_intact() {
    let (log, store) = interleaved_sparse_log().await;
    let events = store.read_all(1, 1_000).await.unwrap();
    // The last event of a stream: removing it leaves that stream's chain whole.
    let target = events
        .iter()
        .rev()
        .find(|event| event.stream.as_str() == "payment-P5")
        .unwrap()
        .clone();
    log.tamper(|stored| stored.retain(|event| event.position != target.position));
    let finding = verify_log(store.as_ref(), None).await.unwrap().finding.unwrap();
    assert_eq!(
        (finding.position, finding.stream.as_deref()),
        (target.position, Some("payment-P5"))
    );
    assert!(finding.reason.contains("missing"), "{finding}");
}

#[tokio::test]
async fn removing_every_event_of_the_last_seal_or_a_seal_itself_is_found() {
    let (log, store) = interleaved_sparse_log().await;
    let first_seal_end = verify_log(store.as_ref(), None).await.unwrap().digest.position;
    for index in 0..3 {
        let stream = StreamName::parse(format!("payment-X{index}")).unwrap();
        store
            .append(&stream, ExpectedRevision::NoStream, vec![event("x")])
            .await
            .unwrap();
    }
    log.seal_now().unwrap();
    log.tamper(|stored| {
        stored.retain(|event| event.position <= first_seal_end || event.stream.as_str() == SEAL_STREAM)
    });
    let finding = verify_log(store.as_ref(), None).await.unwrap().finding.unwrap();
    assert_eq!(finding.stream.as_deref(), Some("payment-X0"));
    assert!(finding.reason.contains("missing"), "{finding}");

    let (log, store) = interleaved_sparse_log().await;
    for index in 0..2 {
        let stream = StreamName::parse(format!("payment-Y{index}")).unwrap();
        store
            .append(&stream, ExpectedRevision::NoStream, vec![event("y")])
            .await
            .unwrap();
        log.seal_now().unwrap();
    }
    log.tamper(|stored| {
        let first_seal = stored
            .iter()
            .position(|event| event.stream.as_str() == SEAL_STREAM)
            .unwrap();
        stored.remove(first_seal);
    });
    let finding = verify_log(store.as_ref(), None).await.unwrap().finding.unwrap();
    assert_eq!(finding.stream.as_deref(), Some(SEAL_STREAM), "{finding}");
}
