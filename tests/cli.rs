//! The CLI around the service: `check` after a real run, tamper detection, usage errors.

use std::process::Command;

use serde_json::json;
use testkit::server::{Server, check, sqlite_store, temp_folder};

use crate::support::binary;

#[test]
fn check_verifies_a_real_log_and_names_the_first_tampered_position() {
    let (_guard, folder) = temp_folder();
    let store = sqlite_store(&folder);
    let server = Server::start(binary(), &store, &folder);
    server.graphql(
        "mutation { recordPayment(input: { paymentId: \"P\", paymentAmount: { currency: \"USD\", value: \"10000\" },
           paymentMethodType: \"ALIPAY_CN\", paymentTime: \"2026-11-01T00:00:00Z\" }) { position } }",
        json!({}),
    );
    server.graphql(
        "mutation { refund(input: { refundRequestId: \"R\", paymentId: \"P\",
           refundAmount: { currency: \"USD\", value: \"2500\" } }) { position } }",
        json!({}),
    );
    server.stop();

    let intact = check(binary(), &store);
    assert_eq!(intact.status.code(), Some(0), "{intact:?}");
    let text = String::from_utf8_lossy(&intact.stdout);
    assert!(text.contains("verify: OK"), "{text}");

    let connection = rusqlite::Connection::open(folder.join("ledger.db")).unwrap();
    let changed = connection
        .execute(
            "UPDATE eventlog_events SET payload = CAST(replace(CAST(payload AS TEXT), '2500', '2600') AS BLOB)
             WHERE position = 2",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(connection);

    let broken = check(binary(), &store);
    assert_eq!(broken.status.code(), Some(1), "{broken:?}");
    assert!(
        String::from_utf8_lossy(&broken.stdout).contains("FAILED at position 2"),
        "{broken:?}"
    );
}

/// A KurrentDB URL is recognised in every build: without the `kurrentdb` feature the binary says so, with it
/// the connection fails (nothing listens on port 9); either way it exits 2 and never repeats the password.
#[test]
fn a_kurrentdb_store_url_is_recognised_and_its_password_never_printed() {
    let output = Command::new(binary())
        .args([
            "verify",
            "--store",
            "kurrentdb://admin:hunter2@127.0.0.1:9?tls=false&defaultDeadline=2000&maxDiscoverAttempts=1",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = if cfg!(feature = "kurrentdb") {
        "KurrentDB store"
    } else {
        "build refund-ledger with `--features kurrentdb`"
    };
    assert!(stderr.contains(expected), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("hunter2"));
}

#[test]
fn an_unknown_store_scheme_is_a_usage_error() {
    let output = Command::new(binary())
        .args(["verify", "--store", "mysql://nope"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("store: expected sqlite://PATH, postgres://... or kurrentdb://...")
    );
}

#[test]
fn serve_without_a_gateway_says_how_to_configure_one() {
    let (_guard, folder) = temp_folder();
    let output = Command::new(binary())
        .arg("serve")
        .current_dir(&folder)
        .env("REFUND_LEDGER_STORE", sqlite_store(&folder))
        .env("REFUND_LEDGER_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("serve --demo"),
        "{output:?}"
    );
}
