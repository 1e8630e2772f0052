//! `/metrics` of the real binary after refunds driven through the `apo-sim` binary with faults: a U refund shows
//! in the open refunds and leaves them once a notification settles it, a forged notification counts as refused
//! with its reason, Antom's attempts are counted by outcome class; and the stuck-refund alert of
//! `deploy/prometheus/alerts.yml` fires on series taken from that scrape (`promtool test rules`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use apo::PrivateKey;

use testkit::antom::demo_key;
use testkit::postgres::ScratchDatabase;
use testkit::server::{OPERATOR_KEY, Server, sqlite_store, temp_folder};

use crate::e2e_support::{
    Antom, Worker, free_loopback_port, notify_refund, record_payment, refund, start_ledger, wait_for_status,
};
use crate::support::required_tool;

/// One sample of an exposition: family name, labels, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text exposition (our label values hold no commas or quotes).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap();
                    (key.to_owned(), value.trim_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().unwrap_or_else(|_| panic!("a number in {line:?}")),
            }
        })
        .collect()
}

/// The sum of `name`'s samples whose labels include every pair of `matching`.
fn total(samples: &[Sample], name: &str, matching: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|sample| sample.name == name)
        .filter(|sample| {
            matching
                .iter()
                .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(*value))
        })
        .map(|sample| sample.value)
        .sum()
}

fn scrape(server: &Server) -> (String, Vec<Sample>) {
    let (status, text) = server.get("/metrics");
    assert_eq!(status, 200, "{text}");
    let samples = parse(&text);
    (text, samples)
}

/// Scrapes until `probe` holds (the read models follow the log a moment later).
fn scrape_until(server: &Server, what: &str, probe: impl Fn(&[Sample]) -> bool) -> (String, Vec<Sample>) {
    crate::e2e_support::eventually(what, || {
        let (text, samples) = scrape(server);
        probe(&samples).then_some((text, samples))
    })
}

fn metrics_follow_the_refunds(store: &str, folder: &Path) {
    let port = free_loopback_port();
    let antom = Antom::start(port);
    let server = start_ledger(store, folder, &antom, port, Worker::Idle);
    record_payment(&server, "PAY-M", "10000");
    // Antom's notifications of these refunds are dropped: only the ones this test sends arrive.
    antom.script("M-S", &["none,notify-drop"]);
    antom.script("M-U", &["u,notify-drop"]);
    antom.script("M-BAD", &["bad-signature,notify-drop"]);

    let ok = refund(&server, "M-S", "PAY-M", "1000");
    assert_eq!(ok["result"]["resultStatus"], "S", "{ok}");
    let open = refund(&server, "M-U", "PAY-M", "2500");
    assert_eq!(open["result"]["resultStatus"], "U", "{open}");
    let unsigned = refund(&server, "M-BAD", "PAY-M", "500");
    assert_eq!(unsigned["result"]["resultStatus"], "U", "{unsigned}");

    // A query the schema refuses: an error without a code.
    let (status, body) = server.graphql_with(Some(OPERATOR_KEY), "{ noSuchField }", serde_json::json!({}));
    assert!(status == 200 && body["errors"].is_array(), "{body}");

    let (text, samples) = scrape_until(&server, "both U refunds in the open refunds", |samples| {
        total(samples, "refund_ledger_open_refunds", &[("state", "PROCESSING")]) == 2.0
    });
    assert_eq!(total(&samples, "refund_ledger_read_models_up", &[]), 1.0, "{text}");
    assert_eq!(
        total(&samples, "refund_ledger_graphql_errors_total", &[("code", "NONE")]),
        1.0,
        "{text}"
    );
    assert!(
        total(
            &samples,
            "refund_ledger_graphql_request_duration_seconds_count",
            &[("operation", "mutation")]
        ) >= 4.0,
        "{text}"
    );
    assert_eq!(
        total(
            &samples,
            "refund_ledger_open_refunds",
            &[("state", "PROCESSING"), ("age", "lt_1m")]
        ),
        2.0,
        "{text}"
    );
    assert_eq!(
        total(&samples, "refund_ledger_open_refunds", &[("state", "REQUESTED")]),
        0.0,
        "{text}"
    );
    let oldest = total(
        &samples,
        "refund_ledger_open_refund_oldest_age_seconds",
        &[("state", "PROCESSING")],
    );
    assert!(oldest > 0.0 && oldest < 60.0, "{text}");
    let decided = |outcome, code| {
        total(
            &samples,
            "refund_ledger_refunds_decided_total",
            &[("outcome", outcome), ("result_code", code)],
        )
    };
    assert_eq!(decided("S", "SUCCESS"), 1.0, "{text}");
    assert_eq!(decided("U", "REFUND_IN_PROCESS"), 2.0, "{text}");
    assert_eq!(
        total(
            &samples,
            "refund_ledger_refunds_settled_total",
            &[("status", "SUCCEEDED"), ("by", "answer")]
        ),
        1.0,
        "{text}"
    );
    let attempts = |outcome| {
        total(
            &samples,
            "refund_ledger_antom_call_duration_seconds_count",
            &[("api", "refund"), ("outcome", outcome)],
        )
    };
    assert_eq!(attempts("S"), 1.0, "{text}");
    assert!(attempts("U") >= 1.0, "the U answer (and its retries): {text}");
    assert_eq!(attempts("bad_signature"), 1.0, "a bad signature is not retried: {text}");
    assert!(
        total(&samples, "refund_ledger_antom_last_success_timestamp_seconds", &[]) > 0.0,
        "{text}"
    );
    assert!(
        total(&samples, "refund_ledger_eventlog_append_duration_seconds_count", &[]) >= 4.0,
        "{text}"
    );
    assert_eq!(
        total(&samples, "refund_ledger_eventlog_group_appends_count", &[]),
        total(&samples, "refund_ledger_eventlog_append_duration_seconds_count", &[]),
        "every append reports the size of its group commit: {text}"
    );
    assert!(
        total(&samples, "refund_ledger_eventlog_group_appends_sum", &[])
            >= total(&samples, "refund_ledger_eventlog_group_appends_count", &[]),
        "a group holds at least its own append: {text}"
    );
    assert_eq!(total(&samples, "refund_ledger_anomalies_total", &[]), 0.0, "{text}");
    assert!(
        total(&samples, "refund_ledger_settle_worker_last_run_timestamp_seconds", &[]) > 0.0,
        "the worker passes (finding nothing old enough): {text}"
    );
    assert_stuck_alert_fires(&text);
    assert_shipped_queries_name_real_series(&text);

    // Forged: signed with the merchant's key, and not signed at all.
    let merchant_key = PrivateKey::from_file(&demo_key("merchant_private_pkcs8.pem")).unwrap();
    assert_eq!(notify_refund(&server, "M-U", Some(&merchant_key)).0, 401);
    assert_eq!(notify_refund(&server, "M-U", None).0, 401);
    let (text, samples) = scrape(&server);
    let refused = |reason| {
        total(
            &samples,
            "refund_ledger_notifications_refused_total",
            &[("reason", reason)],
        )
    };
    assert_eq!(refused("bad_signature"), 1.0, "{text}");
    assert_eq!(refused("missing_header"), 1.0, "{text}");
    assert_eq!(
        total(&samples, "refund_ledger_notifications_accepted_total", &[]),
        0.0,
        "{text}"
    );
    assert_eq!(
        total(&samples, "refund_ledger_open_refunds", &[("state", "PROCESSING")]),
        2.0,
        "{text}"
    );

    // Antom's own notification settles M-U: it leaves the open refunds.
    let antom_key = PrivateKey::from_file(&demo_key("antom_private_pkcs8.pem")).unwrap();
    assert_eq!(notify_refund(&server, "M-U", Some(&antom_key)).0, 200);
    wait_for_status(&server, "M-U", "SUCCEEDED");
    let (text, samples) = scrape_until(&server, "M-U to leave the open refunds", |samples| {
        total(samples, "refund_ledger_open_refunds", &[("state", "PROCESSING")]) == 1.0
    });
    assert_eq!(
        total(
            &samples,
            "refund_ledger_refunds_settled_total",
            &[("status", "SUCCEEDED"), ("by", "notification")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        total(&samples, "refund_ledger_notifications_accepted_total", &[]),
        1.0,
        "{text}"
    );
    assert_eq!(
        total(&samples, "refund_ledger_projection_lag_events", &[]),
        0.0,
        "{text}"
    );
    server.stop();
}

#[test]
fn metrics_follow_refunds_through_faults_on_sqlite() {
    let (_guard, folder) = temp_folder();
    metrics_follow_the_refunds(&sqlite_store(&folder), &folder);
}

#[test]
fn metrics_follow_refunds_through_faults_on_postgres() {
    let (_guard, folder) = temp_folder();
    let database = ScratchDatabase::create("e2e");
    metrics_follow_the_refunds(&database.url, &folder);
}

/// Every `refund_ledger_*` series the alerts and the dashboard query is declared in a real scrape (a renamed
/// metric would leave an alert that never fires and a panel that stays empty). A family with no sample yet (no
/// GraphQL error so far) still has its `# TYPE` line; a histogram's series are its `_bucket`, `_count`, `_sum`.
fn assert_shipped_queries_name_real_series(scrape: &str) {
    let mut declared = std::collections::BTreeSet::new();
    for line in scrape.lines() {
        let Some(declaration) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (family, kind) = declaration.split_once(' ').unwrap();
        declared.insert(family.to_owned());
        if kind == "histogram" {
            for suffix in ["_bucket", "_count", "_sum"] {
                declared.insert(format!("{family}{suffix}"));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for file in ["deploy/prometheus/alerts.yml", "deploy/grafana/refund-ledger.json"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let mut named = 0;
        for (start, _) in text.match_indices("refund_ledger_") {
            let name: String = text[start..]
                .chars()
                .take_while(|character| character.is_ascii_alphanumeric() || *character == '_')
                .collect();
            named += 1;
            assert!(
                declared.contains(&name),
                "{file} queries {name}, which the server does not expose"
            );
        }
        assert!(named >= 10, "{file} names the metrics");
    }
}

/// `promtool` (Debian's `prometheus`) on PATH, or a skip line (a failure in CI).
fn promtool(test: &str) -> Option<PathBuf> {
    required_tool(test, &["promtool"])
}

fn alerts_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/prometheus/alerts.yml")
}

#[test]
fn the_alert_rules_pass_promtool_check() {
    let Some(promtool) = promtool("the_alert_rules_pass_promtool_check") else {
        return;
    };
    let output = Command::new(promtool)
        .args(["check", "rules"])
        .arg(alerts_file())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Evaluates the stuck-refund rule with `promtool test rules` on the PROCESSING series of `scrape`: its labels
/// and value as the server gave them, ageing one minute per minute from there. The rule must not fire while the
/// refund is young, and must fire once it is older than the threshold for the rule's `for`.
fn assert_stuck_alert_fires(scrape: &str) {
    let Some(promtool) = promtool("the stuck-refund alert on a real scrape") else {
        return;
    };
    let samples = parse(scrape);
    let oldest = samples
        .iter()
        .find(|sample| {
            sample.name == "refund_ledger_open_refund_oldest_age_seconds"
                && sample.labels.get("state").map(String::as_str) == Some("PROCESSING")
        })
        .expect("the PROCESSING series in the scrape");
    let series_labels = |sample: &Sample| {
        let mut labels = sample.labels.clone();
        labels.insert("instance".to_owned(), "ledger-under-test".to_owned());
        labels.insert("job".to_owned(), "refund-ledger".to_owned());
        let pairs: Vec<String> = labels.iter().map(|(key, value)| format!("{key}=\"{value}\"")).collect();
        format!("{}{{{}}}", sample.name, pairs.join(","))
    };
    let alert = |state: &str| {
        format!(
            "ALERTS{{alertname=\"RefundLedgerRefundsStuckProcessing\",alertstate=\"{state}\",\
             instance=\"ledger-under-test\",severity=\"page\"}}"
        )
    };
    // 120 minutes of samples, one a minute, each 60 s older than the one before: over the hour's threshold
    // from minute 60 (pending), firing after the rule's 5 minutes.
    let start = oldest.value.round() as i64;
    let test = format!(
        r#"rule_files:
  - {rules}
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: '{series}'
        values: '{start}+60x120'
    promql_expr_test:
      - expr: ALERTS{{alertname="RefundLedgerRefundsStuckProcessing"}}
        eval_time: 30m
        exp_samples: []
      - expr: ALERTS{{alertname="RefundLedgerRefundsStuckProcessing"}}
        eval_time: 62m
        exp_samples:
          - labels: '{pending}'
            value: 1
      - expr: ALERTS{{alertname="RefundLedgerRefundsStuckProcessing"}}
        eval_time: 70m
        exp_samples:
          - labels: '{firing}'
            value: 1
"#,
        rules = alerts_file().display(),
        series = series_labels(oldest).replace('\'', "''"),
        pending = alert("pending"),
        firing = alert("firing"),
    );
    let folder = tempfile::tempdir().unwrap();
    let test_file = folder.path().join("stuck_test.yml");
    std::fs::write(&test_file, &test).unwrap();
    let output = Command::new(&promtool)
        .args(["test", "rules"])
        .arg(&test_file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "promtool test rules failed on\n{test}\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
