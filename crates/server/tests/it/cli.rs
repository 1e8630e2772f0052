use std::path::Path;
use std::process::{Command, Output};

fn run(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_refund-ledger"))
        .args(args)
        .env("REFUND_LEDGER_STORE", format!("sqlite://{}", store.display()))
        .output()
        .expect("the refund-ledger binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn demo_records_through_the_aggregate_and_the_log_verifies() {
    let folder = tempfile::tempdir().unwrap();
    let store = folder.path().join("nested/ledger.db");
    let first = run(&store, &["demo"]);
    assert!(first.status.success(), "{first:?}");
    let text = stdout(&first);
    assert!(text.contains("RefundRejected"), "{text}");
    assert!(text.contains("REFUND_AMOUNT_EXCEED"), "{text}");
    assert!(
        text.contains("refunded 25.00 USD, pending 0.00 USD, refundable 75.00 USD"),
        "{text}"
    );
    assert!(text.contains("verify: OK, 5 events in 1 streams; digest 5:"), "{text}");

    let second = run(&store, &["demo"]);
    assert!(second.status.success(), "{second:?}");
    assert!(
        stdout(&second).contains("verify: OK, 10 events in 2 streams; digest 10:"),
        "{}",
        stdout(&second)
    );
}

#[test]
fn check_names_the_first_tampered_position() {
    let folder = tempfile::tempdir().unwrap();
    let store = folder.path().join("ledger.db");
    assert!(run(&store, &["demo"]).status.success());
    let intact = run(&store, &["check"]);
    assert_eq!(intact.status.code(), Some(0), "{intact:?}");

    let connection = rusqlite::Connection::open(&store).unwrap();
    let changed = connection
        .execute(
            "UPDATE eventlog_events SET payload = CAST(replace(CAST(payload AS TEXT), '2500', '2600') AS BLOB) WHERE position = 3",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(connection);

    let broken = run(&store, &["check"]);
    assert_eq!(broken.status.code(), Some(1), "{broken:?}");
    assert!(stdout(&broken).contains("FAILED at position 3"), "{}", stdout(&broken));
}

#[test]
fn an_unknown_store_scheme_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_refund-ledger"))
        .args(["check", "--store", "mysql://nope"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("store: expected sqlite://PATH or postgres://"));
}
