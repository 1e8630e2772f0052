//! The `apo-sim` binary: starts from flags, serves the admin API and the
//! signed refund API, and refuses to start without keys.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::{CLIENT_ID, keys, vectors_dir};

const BINARY: &str = env!("CARGO_BIN_EXE_apo-sim");

/// Kills the child when the test ends, pass or fail.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _killed = self.0.kill();
        let _reaped = self.0.wait();
    }
}

fn free_loopback_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn refuses_to_start_without_keys() {
    let output = Command::new(BINARY)
        .args(["--client-id", CLIENT_ID])
        .env_remove("APO_SIM_MERCHANT_PUBLIC_KEY")
        .env_remove("APO_SIM_MERCHANT_PUBLIC_KEY_FILE")
        .env_remove("APO_SIM_ANTOM_PRIVATE_KEY")
        .env_remove("APO_SIM_ANTOM_PRIVATE_KEY_FILE")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--merchant-public-key"), "{stderr}");
}

#[test]
fn refuses_out_of_range_options() {
    let dir = vectors_dir();
    let output = Command::new(BINARY)
        .args(["--client-id", CLIENT_ID, "--u-share", "1.5"])
        .arg("--merchant-public-key")
        .arg(dir.join("merchant_public.pem"))
        .arg("--antom-private-key")
        .arg(dir.join("antom_private_pkcs8.pem"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("uShare"));
}

#[tokio::test]
async fn serves_signed_refunds_from_keys_in_the_environment() {
    let dir = vectors_dir();
    let port = free_loopback_port();
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let payments = tempfile::NamedTempFile::new().unwrap();
    let seeded_at_start = serde_json::json!([{
        "paymentId": "P2", "paymentAmount": {"currency": "JPY", "value": "500"}, "paymentMethodType": "PAYPAY",
    }]);
    std::fs::write(payments.path(), seeded_at_start.to_string()).unwrap();
    let _child = Running(
        Command::new(BINARY)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--seed", "3"])
            .arg("--payments")
            .arg(payments.path())
            .args(["--method-policy", "CARD:partial=false"])
            .env("APO_SIM_CLIENT_ID", CLIENT_ID)
            .env("APO_SIM_MERCHANT_PUBLIC_KEY", read("merchant_public.pem"))
            .env("APO_SIM_ANTOM_PRIVATE_KEY", read("antom_private_pkcs8.pem"))
            .env_remove("APO_SIM_MERCHANT_PUBLIC_KEY_FILE")
            .env_remove("APO_SIM_ANTOM_PRIVATE_KEY_FILE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base_url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let seed = serde_json::json!({
        "paymentId": "P1", "paymentAmount": {"currency": "USD", "value": "1000"}, "paymentMethodType": "CARD",
    })
    .to_string();
    let mut seeded = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !seeded {
        assert!(std::time::Instant::now() < deadline, "the binary did not come up");
        let response = http
            .post(format!("{base_url}/sim/payments"))
            .header("content-type", "application/json")
            .body(seed.clone())
            .send()
            .await;
        seeded = response.is_ok_and(|response| response.status().as_u16() == 201);
        if !seeded {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let keys = keys();
    let mut config = apo::ApoConfig::new(&base_url, CLIENT_ID, keys.merchant_private, keys.antom_public);
    config.retry = apo::RetryPolicy::none();
    let apo = apo::ApoClient::new(config).unwrap();
    let partial = apo.refund(&crate::adapter::request("R1", "P1", 10)).await.unwrap();
    assert!(
        matches!(&partial, apo::RefundOutcome::Failed { code, .. } if *code == domain::ResultCode::PartialRefundNotSupported),
        "{partial:?}"
    );
    let full = apo.refund(&crate::adapter::request("R2", "P1", 1000)).await.unwrap();
    assert!(matches!(full, apo::RefundOutcome::Succeeded { .. }), "{full:?}");
    let yen = apo::RefundRequest::new(
        domain::RefundRequestId::parse("R3").unwrap(),
        crate::helpers::payment_id("P2"),
        domain::Money::parse("refundAmount", "JPY", "200").unwrap(),
    );
    let from_file = apo.refund(&yen).await.unwrap();
    assert!(
        matches!(from_file, apo::RefundOutcome::Succeeded { .. }),
        "{from_file:?}"
    );
}

#[tokio::test]
async fn fault_flags_reach_the_simulator() {
    let dir = vectors_dir();
    let port = free_loopback_port();
    let _child = Running(
        Command::new(BINARY)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--client-id", CLIENT_ID])
            .args(["--server-error-share", "1", "--latency-ms", "5", "--u-share", "0.5"])
            .arg("--merchant-public-key")
            .arg(dir.join("merchant_public.pem"))
            .arg("--antom-private-key")
            .arg(dir.join("antom_private_pkcs8.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/sim/faults");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let faults = loop {
        if let Ok(response) = http.get(&url).send().await {
            break serde_json::from_slice::<serde_json::Value>(&response.bytes().await.unwrap()).unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "the binary did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(faults["serverErrorShare"], 1.0);
    assert_eq!(faults["latencyMs"], 5);
    assert_eq!(faults["uShare"], 0.5);
}

#[tokio::test]
async fn report_flags_shape_the_files_written_at_shutdown() {
    let dir = vectors_dir();
    let port = free_loopback_port();
    let reports = tempfile::tempdir().unwrap();
    let payments = tempfile::NamedTempFile::new().unwrap();
    let paid = serde_json::json!([{
        "paymentId": "P9", "paymentAmount": {"currency": "JPY", "value": "5000"}, "paymentMethodType": "PAYPAY",
    }]);
    std::fs::write(payments.path(), paid.to_string()).unwrap();
    let mut child = Running(
        Command::new(BINARY)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--client-id", CLIENT_ID])
            .arg("--merchant-public-key")
            .arg(dir.join("merchant_public.pem"))
            .arg("--antom-private-key")
            .arg(dir.join("antom_private_pkcs8.pem"))
            .arg("--payments")
            .arg(payments.path())
            .arg("--reports-dir")
            .arg(reports.path())
            .args([
                "--report-generation",
                "g2",
                "--settlement-currency",
                "USD",
                "--quote",
                "JPY/USD=0.0066",
            ])
            .args([
                "--report-offset",
                "+00:00",
                "--customer-id",
                "77",
                "--payment-fee-bps",
                "100",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base_url = format!("http://127.0.0.1:{port}");
    let keys = keys();
    let mut config = apo::ApoConfig::new(&base_url, CLIENT_ID, keys.merchant_private, keys.antom_public);
    config.retry = apo::RetryPolicy::none();
    let apo = apo::ApoClient::new(config).unwrap();
    let yen = apo::RefundRequest::new(
        domain::RefundRequestId::parse("R9").unwrap(),
        crate::helpers::payment_id("P9"),
        domain::Money::parse("refundAmount", "JPY", "1200").unwrap(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(apo::RefundOutcome::Succeeded { .. }) = apo.refund(&yen).await {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the binary did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child.0),
        rustix::process::Signal::TERM,
    )
    .expect("SIGTERM is delivered");
    assert!(child.0.wait().unwrap().success());
    let today = time::OffsetDateTime::now_utc().date();
    let format = time::macros::format_description!("[year][month][day]");
    let day = today.format(format).unwrap();
    let details = reports
        .path()
        .join(format!("v1/settlements/77/{day}/transactionItems_{day}_000.csv"));
    let text = std::fs::read_to_string(&details).unwrap();
    assert!(text.starts_with("customerId,acquirer,"), "G2 header: {text}");
    assert!(
        text.contains(",R9,") && text.contains(",-1200,JPY,-7.92,USD,"),
        "{text}"
    );
    let settlement_day = today.next_day().unwrap().format(format).unwrap();
    let summary = reports.path().join(format!(
        "v1/settlements/77/{settlement_day}/settlementSummary_USD_{settlement_day}00000000001_000.csv"
    ));
    // 5000 JPY = 33.00 USD, fee 1 % = -0.33; the refund -7.92: TOTAL 24.75.
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.contains(",TOTAL,") && summary.contains(",2,24.75,USD,-0.33,USD"),
        "{summary}"
    );
}
