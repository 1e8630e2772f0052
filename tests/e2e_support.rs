//! The out-of-process setup of the end-to-end tests: the `apo-sim` binary as
//! Antom, and `refund-ledger serve` (not demo) pointed at it with the demo
//! keys, mirroring recorded payments through the simulator's admin API.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::antom::{CLIENT_ID, demo_key};
use testkit::server::{OPERATOR_KEY, Server, VIEWER_KEY};

use crate::support::binary;

/// How long the simulator keeps a U refund PROCESSING: longer than the ledger client's own retries of a U
/// answer (200 ms, then 400 ms), which would otherwise see the refund settled already.
const SIM_SETTLE_MS: u64 = 3_000;
/// How long a `timeout` fault holds the ledger's connection.
const SIM_TIMEOUT_HOLD_MS: u64 = 20_000;
/// Pause between settle-worker passes of the ledgers under test.
const WORKER_INTERVAL_MS: u64 = 200;
/// Longest wait for anything the tests poll for (a start, a settlement).
pub(crate) const POLL_DEADLINE: Duration = Duration::from_secs(30);
/// Pause between polls.
const POLL_PAUSE: Duration = Duration::from_millis(50);

pub(crate) const RECORD: &str = "mutation($id: ID!, $value: String!) {
  recordPayment(input: { paymentId: $id, paymentAmount: { currency: \"USD\", value: $value },
                         paymentMethodType: \"ALIPAY_CN\", paymentTime: \"2026-11-01T00:00:00Z\" }) {
    result { resultCode resultStatus } position } }";

pub(crate) const REFUND: &str = "mutation($rid: ID!, $pid: ID!, $value: String!) {
  refund(input: { refundRequestId: $rid, paymentId: $pid, refundAmount: { currency: \"USD\", value: $value } }) {
    result { resultCode resultStatus resultMessage } refund { status ledgerStatus } position } }";

const REFUND_STATUS: &str = "query($rid: ID!) { refund(refundRequestId: $rid) { status ledgerStatus } }";

const PAYMENT: &str = "query($id: ID!, $at: Int) { payment(paymentId: $id, atLeastPosition: $at) {
  refundedAmount { value } pendingRefundAmount { value } refundableAmount { value } } }";

const EVENTS: &str = "query($pid: ID!) { events(paymentId: $pid, first: 500) { position type actor data } }";

/// A loopback port free right now (the ledger needs its port before it starts: the simulator
/// sends notifications to it, and a restarted ledger must come back on it).
pub(crate) fn free_loopback_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Polls `probe` until it gives a value or `POLL_DEADLINE` passes.
pub(crate) fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + POLL_DEADLINE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(POLL_PAUSE);
    }
}

/// The `apo-sim` binary next to `refund-ledger` in the target directory: `cargo test --workspace` builds it
/// (apo-sim's own tests run it). When it is missing (`cargo test -p refund-ledger` on a fresh target), it
/// is built once into a directory of its own: Cargo holds the target directory's lock while tests run, so
/// a nested build there would wait forever.
fn apo_sim_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let name = format!("apo-sim{}", std::env::consts::EXE_SUFFIX);
        let ledger = binary();
        let beside = ledger.with_file_name(&name);
        if beside.exists() {
            return beside;
        }
        let target_dir = ledger.parent().and_then(Path::parent).unwrap().join("e2e-apo-sim");
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "apo-sim", "--bin", "apo-sim", "--manifest-path"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target_dir)
            .status()
            .expect("cargo builds apo-sim");
        assert!(status.success(), "cannot build apo-sim; run `cargo build -p apo-sim`");
        target_dir.join("debug").join(name)
    })
}

/// An `apo-sim` process standing in for Antom; killed on drop.
pub(crate) struct Antom {
    child: Child,
    port: u16,
    client: reqwest::blocking::Client,
}

impl Antom {
    /// Starts the simulator; its notifications go to a ledger on `ledger_port`.
    pub(crate) fn start(ledger_port: u16) -> Self {
        Self::start_with(ledger_port, &[])
    }

    /// [`Antom::start`] with more `apo-sim` arguments (report settings: `--settlement-currency`, `--quote`...).
    pub(crate) fn start_with(ledger_port: u16, arguments: &[&str]) -> Self {
        let port = free_loopback_port();
        let child = Command::new(apo_sim_binary())
            .args(["--listen", &format!("127.0.0.1:{port}"), "--client-id", CLIENT_ID])
            .arg("--merchant-public-key")
            .arg(demo_key("merchant_public.pem"))
            .arg("--antom-private-key")
            .arg(demo_key("antom_private_pkcs8.pem"))
            .args([
                "--notify-url",
                &format!("http://127.0.0.1:{ledger_port}/apo/notify/refund"),
                "--notify-compression",
                "60000",
                "--settle-ms",
                &SIM_SETTLE_MS.to_string(),
                "--timeout-hold-ms",
                &SIM_TIMEOUT_HOLD_MS.to_string(),
            ])
            .args(arguments)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("apo-sim starts");
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let antom = Self { child, port, client };
        eventually("apo-sim to answer", || {
            antom
                .client
                .get(format!("{}/sim/faults", antom.base_url()))
                .send()
                .ok()
                .filter(|response| response.status().is_success())
        });
        antom
    }

    pub(crate) fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The faults of the next refund calls with `refund_request_id`, one entry per call.
    pub(crate) fn script(&self, refund_request_id: &str, calls: &[&str]) {
        let response = self
            .client
            .post(format!("{}/sim/scripts", self.base_url()))
            .json(&json!({ "refundRequestId": refund_request_id, "calls": calls }))
            .send()
            .unwrap();
        assert!(response.status().is_success(), "{}", response.text().unwrap());
    }

    /// The simulator's view of a payment: totals and refunds.
    pub(crate) fn payment(&self, payment_id: &str) -> Value {
        let response = self
            .client
            .get(format!("{}/sim/payments/{payment_id}", self.base_url()))
            .send()
            .unwrap();
        assert!(response.status().is_success(), "simulator has no payment {payment_id}");
        response.json().unwrap()
    }

    /// The notification log.
    pub(crate) fn notifications(&self) -> Value {
        self.client
            .get(format!("{}/sim/notifications", self.base_url()))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }
}

impl Drop for Antom {
    fn drop(&mut self) {
        let _killed = self.child.kill();
        let _reaped = self.child.wait();
    }
}

/// When the ledger's settle worker takes an open refund up.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Worker {
    /// After a second: the worker settles.
    Eager,
    /// After an hour: only a notification settles within a test.
    Idle,
}

/// Starts `refund-ledger serve` (not demo) on `store` and `port` with `antom` as its gateway.
pub(crate) fn start_ledger(store: &str, folder: &Path, antom: &Antom, port: u16, worker: Worker) -> Server {
    Server::spawn(ledger_command(store, folder, antom, port, worker))
}

/// The command [`start_ledger`] runs, to be changed before [`Server::spawn`].
pub(crate) fn ledger_command(store: &str, folder: &Path, antom: &Antom, port: u16, worker: Worker) -> Command {
    let config = folder.join("ledger.toml");
    std::fs::write(&config, format!("[worker]\ninterval_ms = {WORKER_INTERVAL_MS}\n")).unwrap();
    let settle_after_seconds = match worker {
        Worker::Eager => "1",
        Worker::Idle => "3600",
    };
    let mut command = Command::new(binary());
    command
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .current_dir(folder)
        .env("REFUND_LEDGER_STORE", store)
        .env("REFUND_LEDGER_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "REFUND_LEDGER_API_KEYS",
            format!("ops:operator:{OPERATOR_KEY},fin:viewer:{VIEWER_KEY}"),
        )
        .env("REFUND_LEDGER_SETTLE_AFTER_SECONDS", settle_after_seconds)
        .env("REFUND_LEDGER_ANTOM_BASE_URL", antom.base_url())
        .env("REFUND_LEDGER_ANTOM_CLIENT_ID", CLIENT_ID)
        .env(
            "REFUND_LEDGER_ANTOM_MERCHANT_PRIVATE_KEY_FILE",
            demo_key("merchant_private_pkcs8.pem"),
        )
        .env("REFUND_LEDGER_ANTOM_PUBLIC_KEY_FILE", demo_key("antom_public.pem"))
        .env("REFUND_LEDGER_ANTOM_SIMULATOR_ADMIN_URL", antom.base_url())
        .env("RUST_LOG", "error");
    command
}

/// Records a USD payment of `value` minor units.
pub(crate) fn record_payment(server: &Server, payment_id: &str, value: &str) {
    let recorded = server.graphql(RECORD, json!({ "id": payment_id, "value": value }));
    assert_eq!(recorded["recordPayment"]["result"]["resultStatus"], "S", "{recorded}");
}

/// Asks for a refund of `value` minor units of USD; answers `RefundResult`.
pub(crate) fn refund(server: &Server, refund_request_id: &str, payment_id: &str, value: &str) -> Value {
    server.graphql(
        REFUND,
        json!({ "rid": refund_request_id, "pid": payment_id, "value": value }),
    )["refund"]
        .clone()
}

/// The ledger's status of a refund (`REQUESTED`, `PROCESSING`, `SUCCEEDED`, ...), `None` when unknown.
pub(crate) fn ledger_status(server: &Server, refund_request_id: &str) -> Option<String> {
    let data = server.graphql(REFUND_STATUS, json!({ "rid": refund_request_id }));
    data["refund"]["ledgerStatus"].as_str().map(str::to_owned)
}

/// Waits until the refund reaches `status` in the read models.
pub(crate) fn wait_for_status(server: &Server, refund_request_id: &str, status: &str) {
    eventually(&format!("{refund_request_id} to become {status}"), || {
        (ledger_status(server, refund_request_id).as_deref() == Some(status)).then_some(())
    });
}

/// (refunded, pending, refundable) of a payment in minor units, as the read models show it now.
pub(crate) fn balance(server: &Server, payment_id: &str) -> (u64, u64, u64) {
    let payment = server.graphql(PAYMENT, json!({ "id": payment_id, "at": Value::Null }))["payment"].clone();
    let minor = |field: &str| -> u64 { payment[field]["value"].as_str().unwrap().parse().unwrap() };
    (
        minor("refundedAmount"),
        minor("pendingRefundAmount"),
        minor("refundableAmount"),
    )
}

/// The payment's stream as stored.
pub(crate) fn events(server: &Server, payment_id: &str) -> Vec<Value> {
    server.graphql(EVENTS, json!({ "pid": payment_id }))["events"]
        .as_array()
        .unwrap()
        .clone()
}

/// The events of `refund_request_id` with type `event_type`.
pub(crate) fn events_of(events: &[Value], refund_request_id: &str, event_type: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|event| event["type"] == event_type && event["data"]["refundRequestId"] == refund_request_id)
        .cloned()
        .collect()
}

/// Posts a refund notification for `refund_request_id` signed with `key` (or not signed at all).
pub(crate) fn notify_refund(server: &Server, refund_request_id: &str, key: Option<&apo::PrivateKey>) -> (u16, String) {
    let body = json!({
        "notifyType": "REFUND_RESULT",
        "result": { "resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "success" },
        "refundStatus": "SUCCESS",
        "refundRequestId": refund_request_id,
        "refundId": "2026112800000001",
        "refundAmount": { "currency": "USD", "value": "2500" },
        "refundTime": "2026-11-28T08:00:00+08:00",
    })
    .to_string();
    let path = "/apo/notify/refund";
    let request_time = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).to_string();
    let mut request = reqwest::blocking::Client::new()
        .post(server.url(path))
        .header("content-type", "application/json")
        .header("Client-Id", CLIENT_ID)
        .header("Request-Time", &request_time)
        .body(body.clone());
    if let Some(key) = key {
        let signature = apo::sign(key, "POST", path, CLIENT_ID, &request_time, body.as_bytes()).unwrap();
        request = request.header("Signature", signature);
    }
    let response = request.send().unwrap();
    (response.status().as_u16(), response.text().unwrap())
}
