//! `refund-ledger reconcile` end to end: the ledger and an `apo-sim` process refund, the simulator writes the
//! day's transaction details report with discrepancies injected, and the binary must find each of them, settle
//! the refund Antom says is final through inquiry, record one run in the log (covered by `verify`, ignored by
//! the projections' `replay`), and refuse a truncated file with exit 2 and nothing recorded. Both stores.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use testkit::antom::{CLIENT_ID, demo_key};
use testkit::postgres::ScratchDatabase;
use testkit::server::{OPERATOR_KEY, Server, sqlite_store, temp_folder};
use time::{OffsetDateTime, UtcOffset};

use crate::e2e_support::{
    Antom, Worker, events, events_of, eventually, free_loopback_port, record_payment, refund, start_ledger,
    wait_for_status,
};
use crate::support::binary;

/// Two tests running `$body(store, folder)`: on SQLite (`$sqlite`) and on a scratch PostgreSQL database
/// (`$postgres`), each in a folder of its own.
macro_rules! on_both_stores {
    ($sqlite:ident, $postgres:ident, $body:ident) => {
        #[test]
        fn $sqlite() {
            let (_guard, folder) = temp_folder();
            $body(&sqlite_store(&folder), &folder);
        }

        #[test]
        fn $postgres() {
            let (_guard, folder) = temp_folder();
            let database = ScratchDatabase::create("e2e");
            $body(&database.url, &folder);
        }
    };
}

on_both_stores!(
    every_finding_kind_end_to_end_on_sqlite,
    every_finding_kind_end_to_end_on_postgres,
    every_finding_kind_end_to_end
);

fn every_finding_kind_end_to_end(store: &str, folder: &Path) {
    let port = free_loopback_port();
    let antom = Antom::start(port);
    // Antom answers U and its notification is lost: the ledger holds it PROCESSING (the worker is idle), while
    // Antom settles it a few seconds later and lists it as refunded.
    antom.script("R-PEND", &["u,notify-drop"]);
    let server = start_ledger(store, folder, &antom, port, Worker::Idle);
    record_payment(&server, "P-1", "100000");
    for id in ["R-MATCH", "R-CHG", "R-DROP", "R-REV", "R-DUP"] {
        refund(&server, id, "P-1", "1000");
        wait_for_status(&server, id, "SUCCEEDED");
    }
    refund(&server, "R-PEND", "P-1", "1000");
    wait_for_status(&server, "R-PEND", "PROCESSING");
    eventually("Antom to settle R-PEND", || {
        let payment = antom.payment("P-1");
        (payment["succeededMinorUnits"].as_u64() == Some(6000)).then_some(())
    });
    server.stop();

    let date = report_date();
    let discrepancies = "drop=R-DROP&changeAmount=R-CHG&extraRefund=R-DASH&reverse=R-REV&duplicate=R-DUP";
    let report = fetch_report(&antom, &date, discrepancies, folder);

    let before = verified_events(store);
    let truncated = fetch_report(
        &antom,
        &date,
        &format!("{discrepancies}&truncate=true"),
        &folder.join("cut"),
    );
    let refused = reconcile(store, &antom, &[&truncated, "--format", "jsonl"]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains(&format!("transactionItems_{date}_000.csv")) && message.contains("nothing was imported"),
        "{message}"
    );
    assert_eq!(verified_events(store), before, "a truncated file records nothing");

    let output_file = folder.join("findings.jsonl");
    let run = reconcile(
        store,
        &antom,
        &[&report, "--format", "jsonl", "--output", output_file.to_str().unwrap()],
    );
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let summary = String::from_utf8_lossy(&run.stdout);
    assert!(summary.contains("TRANSACTION_DETAILS"), "{summary}");
    let findings: Vec<Value> = std::fs::read_to_string(&output_file)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kinds_of = |id: &str| -> Vec<String> {
        findings
            .iter()
            .filter(|finding| finding["refundRequestId"] == id)
            .map(|finding| finding["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(kinds_of("R-MATCH"), ["MATCHED"], "{findings:#?}");
    assert_eq!(kinds_of("R-CHG"), ["DIFFERS"], "{findings:#?}");
    assert_eq!(kinds_of("R-DROP"), ["MISSING_FROM_REPORT"], "{findings:#?}");
    assert_eq!(kinds_of("R-DASH"), ["UNKNOWN_TO_LEDGER"], "{findings:#?}");
    assert_eq!(kinds_of("R-DUP"), ["MATCHED", "DUPLICATE"], "{findings:#?}");
    assert!(
        kinds_of("R-REV").contains(&"REFUND_REVERSAL".to_owned()),
        "{findings:#?}"
    );
    assert_eq!(kinds_of("R-PEND"), ["LEDGER_PENDING"], "{findings:#?}");
    let pending = findings
        .iter()
        .find(|finding| finding["refundRequestId"] == "R-PEND")
        .unwrap();
    assert_eq!(pending["ledgerStatus"], "PROCESSING", "{pending}");
    assert!(
        pending["message"]
            .as_str()
            .unwrap()
            .contains("settled through inquiryRefund: the ledger now holds it SUCCEEDED"),
        "{pending}"
    );
    let reversal = findings
        .iter()
        .find(|finding| finding["refundRequestId"] == "R-REV" && finding["kind"] == "REFUND_REVERSAL")
        .unwrap();
    assert!(
        reversal["message"]
            .as_str()
            .unwrap()
            .contains("recorded for operators as a RefundOutcomeAnomaly"),
        "{reversal}"
    );
    let matched = findings
        .iter()
        .find(|finding| finding["refundRequestId"] == "R-MATCH")
        .unwrap();
    assert!(matched["line"].as_u64().unwrap() > 1, "{matched}");
    assert!(matched["ledgerPosition"].as_u64().unwrap() > 0, "{matched}");
    let run_id = matched["runId"].as_str().unwrap();
    assert!(summary.contains(run_id), "{summary}");

    // The run is in the log: one event for the run and one chunk of findings after the inquiry's events.
    let after = verified_events(store);
    assert!(after >= before + 2, "before {before}, after {after}");
    let replayed = run_binary(store, &["replay"]);
    assert_eq!(replayed.status.code(), Some(0), "{replayed:?}");
    let journal = run_binary(store, &["export", "journal", "--format", "jsonl"]);
    assert_eq!(journal.status.code(), Some(0), "{journal:?}");

    // The reversal is on the refund's own history, for operators; the refund stays SUCCEEDED.
    let server = start_ledger(store, folder, &antom, port, Worker::Idle);
    let history = events(&server, "P-1");
    let anomalies = events_of(&history, "R-REV", "RefundOutcomeAnomaly");
    assert_eq!(anomalies.len(), 1, "{history:#?}");
    assert_eq!(anomalies[0]["data"]["reported"]["status"], "REVERSED", "{anomalies:?}");
    assert_eq!(anomalies[0]["data"]["source"], "RECONCILIATION", "{anomalies:?}");
    wait_for_status(&server, "R-REV", "SUCCEEDED");
    server.stop();
}

on_both_stores!(
    report_statuses_end_to_end_on_sqlite,
    report_statuses_end_to_end_on_postgres,
    report_statuses_end_to_end
);

/// The report's statuses against the ledger's terminal states: a G2 day that lists a FAILED refund as refunded
/// (LEDGER_NOT_SUCCEEDED), first without an Antom gateway (the run says what it leaves undone), then with one
/// (the anomaly recorded, the open refund settled); a G3 day that reports a succeeded refund FAIL and another
/// still PROCESSING (STATUS_DIFFERS) and a REJECTED refund refunded (LEDGER_NOT_SUCCEEDED without a refundId).
fn report_statuses_end_to_end(store: &str, folder: &Path) {
    let port = free_loopback_port();
    let antom = Antom::start(port);
    antom.script("S-FAIL", &["u-fail"]);
    antom.script("S-PEND", &["u,notify-drop"]);
    let server = start_ledger(store, folder, &antom, port, Worker::Idle);
    record_payment(&server, "P-1", "100000");
    record_payment(&server, "P-2", "500");
    for id in ["S-OK1", "S-OK2"] {
        refund(&server, id, "P-1", "1000");
        wait_for_status(&server, id, "SUCCEEDED");
    }
    refund(&server, "S-FAIL", "P-1", "1000");
    refund(&server, "S-REJ", "P-2", "1000");
    wait_for_status(&server, "S-REJ", "REJECTED");
    refund(&server, "S-PEND", "P-1", "1000");
    wait_for_status(&server, "S-PEND", "PROCESSING");
    wait_for_status(&server, "S-FAIL", "FAILED");
    eventually("Antom to settle S-PEND", || {
        let payment = antom.payment("P-1");
        (payment["succeededMinorUnits"].as_u64() == Some(3000)).then_some(())
    });
    server.stop();

    let date = report_date();
    let g2 = fetch_report(&antom, &date, "generation=g2&status=S-FAIL:SUCCESS", &folder.join("g2"));
    let g3 = fetch_report(
        &antom,
        &date,
        "status=S-OK1:FAIL,S-OK2:PROCESSING&extraRefund=S-REJ",
        &folder.join("g3"),
    );

    // Without a gateway nothing is settled and no anomaly recorded, and the run says so.
    let undone = run_binary(store, &["reconcile", &g2, "--format", "jsonl"]);
    assert_eq!(undone.status.code(), Some(1), "{undone:?}");
    let summary = String::from_utf8_lossy(&undone.stderr);
    assert!(
        summary.contains("no Antom gateway configured: 1 LEDGER_PENDING refund(s) NOT settled by this run")
            && summary.contains("the settle worker of a running service"),
        "{summary}"
    );
    assert!(
        summary.contains("no Antom gateway configured: 1 finding(s) whose RefundOutcomeAnomaly was NOT recorded"),
        "{summary}"
    );
    let findings = jsonl(&undone.stdout);
    let pending = only(&findings, "S-PEND", "LEDGER_PENDING");
    assert_says(
        pending,
        "not settled by this run (no Antom gateway configured): the settle worker of a running service, or a \
             later run with a gateway, will settle it",
    );
    let not_succeeded = only(&findings, "S-FAIL", "LEDGER_NOT_SUCCEEDED");
    assert_says(not_succeeded, "no anomaly recorded by this run");

    // With the gateway: G2 says refunded (with Antom's refundId) what the ledger holds FAILED.
    let run = reconcile(store, &antom, &[&g2, "--format", "jsonl"]);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let findings = jsonl(&run.stdout);
    let not_succeeded = only(&findings, "S-FAIL", "LEDGER_NOT_SUCCEEDED");
    assert_says(not_succeeded, "recorded for operators as a RefundOutcomeAnomaly");
    assert_eq!(not_succeeded["ledgerStatus"], "FAILED");
    let pending = only(&findings, "S-PEND", "LEDGER_PENDING");
    assert_says(
        pending,
        "settled through inquiryRefund: the ledger now holds it SUCCEEDED",
    );

    // G3 says FAIL for a refund the ledger holds SUCCEEDED (an anomaly) and PROCESSING for another (not one),
    // and lists a refund the ledger REJECTED as refunded, without a refundId (an anomaly all the same).
    let run = reconcile(store, &antom, &[&g3, "--format", "jsonl"]);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let findings = jsonl(&run.stdout);
    let rejected = only(&findings, "S-REJ", "LEDGER_NOT_SUCCEEDED");
    assert_says(rejected, "recorded for operators as a RefundOutcomeAnomaly");
    assert_eq!(rejected["ledgerStatus"], "REJECTED");
    let failed = only(&findings, "S-OK1", "STATUS_DIFFERS");
    assert_eq!(failed["ledgerStatus"], "SUCCEEDED", "{failed}");
    assert_says(failed, "recorded for operators as a RefundOutcomeAnomaly");
    let processing = only(&findings, "S-OK2", "STATUS_DIFFERS");
    assert_says(processing, "no anomaly recorded: the report's status is not final");
    // The findings file carries the report's status of each row.
    assert_eq!(
        (&failed["reportStatus"], &processing["reportStatus"]),
        (&Value::from("FAIL"), &Value::from("PROCESSING"))
    );
    assert_eq!(only(&findings, "S-FAIL", "MATCHED")["reportStatus"], "FAIL");
    assert_eq!(kinds(&findings, "S-FAIL"), ["MATCHED"], "G3 lists it FAIL: agreed");
    assert_eq!(kinds(&findings, "S-PEND"), ["MATCHED"], "settled by the first run");

    // The anomalies are on the refunds' own histories, once each; no state changed.
    let server = start_ledger(store, folder, &antom, port, Worker::Idle);
    for (payment, id, reported) in [
        ("P-1", "S-FAIL", "SUCCESS"),
        ("P-2", "S-REJ", "REFUNDED"),
        ("P-1", "S-OK1", "FAIL"),
    ] {
        let history = events(&server, payment);
        let anomalies = events_of(&history, id, "RefundOutcomeAnomaly");
        assert_eq!(anomalies.len(), 1, "{id}: {history:#?}");
        assert_eq!(anomalies[0]["data"]["reported"]["status"], reported, "{anomalies:?}");
        assert_eq!(anomalies[0]["data"]["source"], "RECONCILIATION", "{anomalies:?}");
    }
    let history = events(&server, "P-1");
    assert!(
        events_of(&history, "S-OK2", "RefundOutcomeAnomaly").is_empty(),
        "{history:#?}"
    );
    wait_for_status(&server, "S-OK1", "SUCCEEDED");
    wait_for_status(&server, "S-FAIL", "FAILED");
    wait_for_status(&server, "S-REJ", "REJECTED");
    server.stop();
    assert!(verified_events(store) > 0);
}

on_both_stores!(
    settlement_batches_end_to_end_on_sqlite,
    settlement_batches_end_to_end_on_postgres,
    settlement_batches_end_to_end
);

/// A settlement batch in G3 and in G2 (refunds in USD settled in EUR at a fixed quote, with a refund fee): one
/// row's settlement moved off its amount plus fees (SETTLEMENT_MISMATCH) and the summary's REFUND row moved off
/// the details (SUMMARY_MISMATCH), reconciled as details and summary together; `export journal` then books each
/// settled row (clearing, FX conversion, the fee, the FX difference of the row that is off, the settlement
/// account), balanced per currency and traced to the run and the report line.
fn settlement_batches_end_to_end(store: &str, folder: &Path) {
    let port = free_loopback_port();
    let antom = Antom::start_with(
        port,
        &[
            "--settlement-currency",
            "EUR",
            "--quote",
            "EUR/USD=1.0850",
            "--refund-fee-bps",
            "150",
        ],
    );
    let server = start_ledger(store, folder, &antom, port, Worker::Idle);
    record_payment(&server, "P-1", "100000");
    for (id, value) in [("B-1", "1000"), ("B-2", "2000"), ("B-3", "3000")] {
        refund(&server, id, "P-1", value);
        wait_for_status(&server, id, "SUCCEEDED");
    }
    server.stop();

    let date = report_date();
    let settlement_date = day_after(&date);
    for generation in ["g3", "g2"] {
        let query = format!("generation={generation}&settlementOff=B-2:-7&summaryOff=REFUND:100");
        let into = folder.join(generation);
        let items = fetch(&antom, &format!("settlements/{date}/items"), &query, &into);
        let summary = fetch(&antom, &format!("settlements/{date}/summary"), &query, &into);
        let run = reconcile(store, &antom, &[&items, &summary, "--format", "jsonl"]);
        assert_eq!(run.status.code(), Some(1), "{generation}: {run:?}");
        let text = String::from_utf8_lossy(&run.stderr);
        assert!(
            text.contains("(SETTLEMENT_BATCH)") && text.contains("settlement batch: "),
            "{text}"
        );
        let findings = jsonl(&run.stdout);
        let items_name = Path::new(&items).file_name().unwrap().to_str().unwrap();
        let summary_name = Path::new(&summary).file_name().unwrap().to_str().unwrap();
        for id in ["B-1", "B-3"] {
            assert_eq!(kinds(&findings, id), ["MATCHED"], "{generation}: {findings:#?}");
        }
        assert_eq!(
            kinds(&findings, "B-2"),
            ["MATCHED", "SETTLEMENT_MISMATCH"],
            "{generation}: {findings:#?}"
        );
        let mismatch = only(&findings, "B-2", "SETTLEMENT_MISMATCH");
        assert_eq!(mismatch["file"], items_name, "{mismatch}");
        let mismatches: Vec<&Value> = findings
            .iter()
            .filter(|finding| finding["kind"] == "SUMMARY_MISMATCH")
            .collect();
        assert!(!mismatches.is_empty(), "{generation}: {findings:#?}");
        assert!(
            mismatches.iter().all(|finding| finding["file"] == summary_name),
            "{mismatches:#?}"
        );
        assert!(
            mismatches
                .iter()
                .any(|finding| finding["message"].as_str().unwrap().contains("REFUND")),
            "{mismatches:#?}"
        );
        let run_id = findings[0]["runId"].as_str().unwrap().to_owned();
        // The findings file carries the row's settlement side: 20.00 USD / 1.0850 is 18.43 EUR, a 0.28 EUR fee,
        // 18.78 EUR settled (0.07 more), on the batch's settlement date (the day after T).
        let settled = only(&findings, "B-2", "MATCHED");
        assert_eq!(
            (
                &settled["settlementDate"],
                &settled["settlementCurrency"],
                &settled["settlementAmount"],
                &settled["fees"],
                &settled["quoteCurrencyPair"]
            ),
            (
                &Value::from(settlement_date.as_str()),
                &Value::from("EUR"),
                &Value::from("-1878"),
                &Value::from("paymentMethodFee EUR -28"),
                &Value::from("EUR/USD")
            ),
            "{generation}: {settled}"
        );
        assert_eq!(
            settled["quotePrice"].as_str().unwrap().parse::<f64>().unwrap(),
            1.085,
            "{settled}"
        );
        let converted = if generation == "g3" {
            (Value::from("EUR"), Value::from("-1843"))
        } else {
            (Value::Null, Value::Null)
        };
        assert_eq!(
            (&settled["convertedCurrency"], &settled["convertedAmount"]),
            (&converted.0, &converted.1),
            "{generation}: {settled}"
        );
        assert_eq!(
            only(&findings, "B-2", "SETTLEMENT_MISMATCH")["settlementAmount"],
            Value::Null
        );

        // The journal books each settled row of the run, balanced per currency, on the row's line.
        let journal = run_binary(store, &["export", "journal", "--format", "jsonl"]);
        assert_eq!(journal.status.code(), Some(0), "{journal:?}");
        let lines: Vec<Value> = jsonl(&journal.stdout)
            .into_iter()
            .filter(|line| line["runId"] == run_id.as_str())
            .collect();
        let mut balance: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
        for line in &lines {
            let minor = |field: &str| line[field].as_str().unwrap().replace('.', "").parse::<i64>().unwrap();
            *balance
                .entry(line["currency"].as_str().unwrap().to_owned())
                .or_default() += minor("debit") - minor("credit");
            assert_eq!(line["file"], items_name, "{line}");
            let id = line["refundRequestId"].as_str().unwrap();
            let matched = only(&findings, id, "MATCHED");
            assert_eq!(line["line"], matched["line"], "{line}");
            // Booked on the batch's settlement date, not on the day the run was recorded.
            assert_eq!(line["date"], settlement_date.as_str(), "{line}");
        }
        assert_eq!(
            balance.into_iter().collect::<Vec<_>>(),
            [("EUR".to_owned(), 0), ("USD".to_owned(), 0)],
            "{generation}: {lines:#?}"
        );
        let accounts_of = |id: &str| -> Vec<String> {
            lines
                .iter()
                .filter(|line| line["refundRequestId"] == id)
                .map(|line| {
                    format!(
                        "{} {}",
                        line["currency"].as_str().unwrap(),
                        line["account"].as_str().unwrap()
                    )
                })
                .collect()
        };
        assert_eq!(
            accounts_of("B-1"),
            [
                "USD antom-clearing",
                "USD fx-conversion",
                "EUR fx-conversion",
                "EUR antom-fees:paymentMethodFee",
                "EUR antom-settlement"
            ],
            "{generation}: {lines:#?}"
        );
        // 20.00 USD / 1.0850 = 18.43 EUR, 0.28 EUR of fee; the report settled 0.07 EUR more.
        let difference: Vec<&Value> = lines
            .iter()
            .filter(|line| line["refundRequestId"] == "B-2" && line["account"] == "fx-difference")
            .collect();
        assert_eq!(difference.len(), 1, "{generation}: {lines:#?}");
        assert_eq!(
            (&difference[0]["debit"], &difference[0]["currency"]),
            (&Value::from("0.07"), &Value::from("EUR"))
        );
        assert!(
            lines.iter().any(|line| line["refundRequestId"] == "B-2"
                && line["account"] == "antom-settlement"
                && line["credit"] == "18.78"),
            "{lines:#?}"
        );
    }
    let replayed = run_binary(store, &["replay"]);
    assert_eq!(replayed.status.code(), Some(0), "{replayed:?}");
    assert!(verified_events(store) > 0);
}

/// `POST /reconciliations` as `multipart/form-data`: a settlement batch's details and summary in one run;
/// admin only, the reports' body limit, and a cut or missing file refused with nothing recorded.
#[test]
fn an_admin_uploads_a_settlement_batch_in_one_multipart_request() {
    let (_guard, folder) = temp_folder();
    let server = upload_server(&folder);
    let items = (
        "settlementItems_USD_2026030611000000001_000.csv",
        g3_fixture("settlementItems_USD_2026030611000000001_000.csv"),
    );
    let summary = (
        "settlementSummary_USD_2026030611000000001_000.csv",
        g3_fixture("settlementSummary_USD_2026030611000000001_000.csv"),
    );
    let client = reqwest::blocking::Client::new();
    let post = |key: &str, parts: &[(&str, Vec<u8>)]| {
        const BOUNDARY: &str = "----refund-ledger-test-7f3a";
        let mut body = Vec::new();
        for (name, bytes) in parts {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
                     Content-Type: text/csv\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        send(
            client
                .post(server.url("/reconciliations"))
                .bearer_auth(key)
                .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
                .body(body),
        )
    };
    let head = || ledger_head(&server);
    let before = head();

    let (status, body) = post(OPERATOR_KEY, &[items.clone(), summary.clone()]);
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["code"]),
        (403, &Value::from("FORBIDDEN"))
    );
    let (status, _) = post(ADMIN_KEY, &[items.clone(), ("big.csv", vec![b'x'; 9000])]);
    assert_eq!(status, 413);

    // A cut summary, a batch without its summary, a part without a file name: nothing recorded.
    let cut = (summary.0, summary.1[..summary.1.len() - 10].to_vec());
    let (status, body) = post(ADMIN_KEY, &[items.clone(), cut]);
    assert_eq!(status, 422, "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(summary.0) && message.contains("nothing was imported"),
        "{message}"
    );
    let (status, body) = post(ADMIN_KEY, std::slice::from_ref(&items));
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "REPORT_UNREADABLE", "{body}");
    let (status, body) = post(ADMIN_KEY, &[items.clone(), ("", summary.1.clone())]);
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["code"]),
        (400, &Value::from("BAD_USER_INPUT")),
        "{body}"
    );
    let (status, body) = post(ADMIN_KEY, &[items.clone(), items.clone(), summary.clone()]);
    assert_eq!(status, 400, "{body}");
    assert_eq!(head(), before, "nothing recorded");

    let (status, body) = post(ADMIN_KEY, &[items.clone(), summary.clone()]);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["reportKind"], "SETTLEMENT_BATCH", "{body}");
    assert_eq!(body["files"], serde_json::json!([items.0, summary.0]), "{body}");
    assert_eq!(head(), body["position"], "{body}");

    // GraphQL shows each settled row's settlement side as the report states it.
    let position = body["position"].as_i64().unwrap();
    eventually("the read models to reach the run", || {
        let head = server.graphql("{ ledgerHead { projectedPosition } }", serde_json::json!({}));
        (head["ledgerHead"]["projectedPosition"].as_i64() >= Some(position)).then_some(())
    });
    let page = server.graphql(
        "query($id: ID!) { reconciliation(runId: $id) { findings(first: 20) { nodes { kind refundRequestId
           reportStatus settlement { amount { currency value } converted { currency value }
             fees { kind amount { currency value } } quote { base quote price } date } } } } }",
        serde_json::json!({ "id": body["runId"] }),
    );
    let nodes = page["reconciliation"]["findings"]["nodes"].as_array().unwrap();
    let settled = nodes
        .iter()
        .find(|node| node["refundRequestId"] == "rf-req-9002" && node["kind"] == "UNKNOWN_TO_LEDGER")
        .unwrap_or_else(|| panic!("{page}"));
    assert_eq!(settled["reportStatus"], Value::Null, "{page}");
    assert_eq!(
        settled["settlement"],
        serde_json::json!({
            "amount": { "currency": "USD", "value": "-792" },
            "converted": null,
            "fees": [{ "kind": "paymentMethodFee", "amount": { "currency": "USD", "value": "0" } }],
            "quote": { "base": "JPY", "quote": "USD", "price": "0.0066" },
            "date": "2026-03-06"
        }),
        "{page}"
    );

    // The single-body form still takes a day's report.
    let day = client
        .post(server.url("/reconciliations?name=transactionItems_20260304_000.csv"))
        .bearer_auth(ADMIN_KEY)
        .body(g3_fixture("transactionItems_20260304_000.csv"))
        .send()
        .unwrap();
    assert_eq!(day.status().as_u16(), 201);
    server.stop();
}

/// Asserts that `finding`'s message says `text`.
fn assert_says(finding: &Value, text: &str) {
    let message = finding["message"].as_str().unwrap_or_default();
    assert!(message.contains(text), "{finding}");
}

/// Day T of reports made now (Antom's GMT+8 day), as `yyyyMMdd`.
fn report_date() -> String {
    let day = OffsetDateTime::now_utc()
        .to_offset(UtcOffset::from_hms(8, 0, 0).unwrap())
        .date();
    format!("{:04}{:02}{:02}", day.year(), u8::from(day.month()), day.day())
}

/// The day after `date` (`yyyyMMdd`), as `yyyy-MM-dd`: the settlement date of `apo-sim`'s batch of day `date`.
fn day_after(date: &str) -> String {
    let format = time::macros::format_description!("[year][month][day]");
    let day = time::Date::parse(date, format).unwrap().next_day().unwrap();
    day.to_string()
}

/// Findings printed as JSON Lines.
fn jsonl(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The kinds of the findings about refund `id`, in order.
fn kinds(findings: &[Value], id: &str) -> Vec<String> {
    findings
        .iter()
        .filter(|finding| finding["refundRequestId"] == id)
        .map(|finding| finding["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// The one finding of `kind` about refund `id`.
fn only<'a>(findings: &'a [Value], id: &str, kind: &str) -> &'a Value {
    let matching: Vec<&Value> = findings
        .iter()
        .filter(|finding| finding["refundRequestId"] == id && finding["kind"] == kind)
        .collect();
    assert_eq!(matching.len(), 1, "{id} {kind}: {findings:#?}");
    matching[0]
}

/// Downloads the day's transaction details report into `folder` under Antom's file name; answers its path.
fn fetch_report(antom: &Antom, date: &str, query: &str, folder: &Path) -> String {
    fetch(antom, &format!("transactions/{date}"), query, folder)
}

/// Downloads the report `/sim/reports/{report}?{query}` into `folder` under Antom's file name; answers its path.
fn fetch(antom: &Antom, report: &str, query: &str, folder: &Path) -> String {
    std::fs::create_dir_all(folder).unwrap();
    let response = reqwest::blocking::get(format!("{}/sim/reports/{report}?{query}", antom.base_url())).unwrap();
    assert!(response.status().is_success(), "{response:?}");
    let disposition = response.headers()["content-disposition"].to_str().unwrap().to_owned();
    let name = disposition
        .split("filename=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let path = folder.join(name);
    std::fs::write(&path, response.bytes().unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `refund-ledger reconcile ARGS` with the Antom gateway configured (for inquiries).
fn reconcile(store: &str, antom: &Antom, args: &[&str]) -> Output {
    let mut command = Command::new(binary());
    command.arg("reconcile").args(args).env("REFUND_LEDGER_STORE", store);
    command
        .env("REFUND_LEDGER_ANTOM_CLIENT_ID", CLIENT_ID)
        .env(
            "REFUND_LEDGER_ANTOM_MERCHANT_PRIVATE_KEY_FILE",
            demo_key("merchant_private_pkcs8.pem"),
        )
        .env("REFUND_LEDGER_ANTOM_PUBLIC_KEY_FILE", demo_key("antom_public.pem"))
        .env("RUST_LOG", "warn");
    command.env("REFUND_LEDGER_ANTOM_BASE_URL", antom.base_url());
    command.output().unwrap()
}

fn run_binary(store: &str, args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .env("REFUND_LEDGER_STORE", store)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// The events `verify` counts (and it must find the log intact).
fn verified_events(store: &str) -> u64 {
    let output = run_binary(store, &["verify"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.split("verify: OK, ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("{text}"))
}

const ADMIN_KEY: &str = "admin-secret-recon";

/// `POST /reconciliations`: admin only, its own body limit (`[limits] report_bytes_max`, here larger than the
/// API's), 201 with the run's id, and a truncated report refused with nothing recorded.
/// `serve --demo` on SQLite in `folder`, with an operator and an admin (`aud`) key, the API's body limit at 512
/// bytes and reports' at 8,192.
fn upload_server(folder: &Path) -> Server {
    let config = folder.join("ledger.toml");
    std::fs::write(&config, "[limits]\nbody_bytes_max = 512\nreport_bytes_max = 8192\n").unwrap();
    let mut command = Command::new(binary());
    command
        .arg("--config")
        .arg(&config)
        .args(["serve", "--demo"])
        .current_dir(folder)
        .env("REFUND_LEDGER_STORE", sqlite_store(folder))
        .env("REFUND_LEDGER_LISTEN", "127.0.0.1:0")
        .env(
            "REFUND_LEDGER_API_KEYS",
            format!("ops:operator:{OPERATOR_KEY},aud:admin:{ADMIN_KEY}"),
        )
        .env("RUST_LOG", "warn");
    Server::spawn(command)
}

/// Sends `request`: the status and the JSON body (null when there is none).
fn send(request: reqwest::blocking::RequestBuilder) -> (u16, Value) {
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json::<Value>().unwrap_or(Value::Null))
}

/// The log's head position as the service answers it.
fn ledger_head(server: &Server) -> Value {
    server.graphql("{ ledgerHead { position } }", serde_json::json!({}))["ledgerHead"]["position"].clone()
}

/// A file of `crates/reconcile`'s G3 fixtures.
fn g3_fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../reconcile/tests/it/fixtures/g3")
            .join(name),
    )
    .unwrap()
}

#[test]
fn an_admin_uploads_a_report_over_http() {
    let (_guard, folder) = temp_folder();
    let server = upload_server(&folder);
    let fixture = g3_fixture("transactionItems_20260304_000.csv");
    assert!(fixture.len() > 512, "the report is larger than the API's body limit");
    let client = reqwest::blocking::Client::new();
    let post = |key: &str, name: &str, body: Vec<u8>| {
        send(
            client
                .post(server.url(&format!("/reconciliations?name={name}")))
                .bearer_auth(key)
                .body(body),
        )
    };
    let head = || ledger_head(&server);

    let (status, body) = post(OPERATOR_KEY, "transactionItems_20260304_000.csv", fixture.clone());
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["code"]),
        (403, &Value::from("FORBIDDEN"))
    );

    let (status, body) = post(ADMIN_KEY, "transactionItems_20260304_000.csv", vec![b'x'; 9000]);
    assert_eq!(status, 413, "{body}");

    let before = head();
    let cut = fixture[..fixture.len() - 10].to_vec();
    let (status, body) = post(ADMIN_KEY, "transactionItems_20260304_000.csv", cut);
    assert_eq!(status, 422, "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("transactionItems_20260304_000.csv") && message.contains("nothing was imported"),
        "{message}"
    );
    assert_eq!(head(), before, "nothing recorded");

    let (status, body) = post(ADMIN_KEY, "transactionItems_20260304_000.csv", fixture);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["reportKind"], "TRANSACTION_DETAILS", "{body}");
    assert_eq!(body["counts"]["UNKNOWN_TO_LEDGER"], 2, "{body}");
    assert!(body["runId"].as_str().unwrap().len() == 36, "{body}");
    assert_eq!(head(), body["position"], "{body}");
    let run_id = body["runId"].as_str().unwrap().to_owned();

    // The run and its findings in GraphQL, once the read models reached the run's position.
    let position = body["position"].as_i64().unwrap();
    eventually("the read models to reach the run", || {
        let head = server.graphql("{ ledgerHead { projectedPosition } }", serde_json::json!({}));
        (head["ledgerHead"]["projectedPosition"].as_i64() >= Some(position)).then_some(())
    });
    let runs = server.graphql(
        "{ reconciliations(first: 5) { nodes { runId actor reportKind period findingsCount counts { kind count }
           files { name sha256 rows } } } }",
        serde_json::json!({}),
    );
    let run = &runs["reconciliations"]["nodes"][0];
    assert_eq!(run["runId"], run_id.as_str(), "{runs}");
    assert_eq!(run["actor"], "aud", "{runs}");
    assert_eq!(run["period"], "2026-03-04", "{runs}");
    assert_eq!(run["files"][0]["sha256"].as_str().unwrap().len(), 64, "{runs}");
    const FINDINGS: &str = "query($id: ID!) { reconciliation(runId: $id) {
        findings(kind: \"UNKNOWN_TO_LEDGER\", first: 1) { pageInfo { hasNextPage endCursor }
          nodes { seq kind line refundRequestId reportAmount { currency value } reportStatus settlement { date }
            acknowledged { by note } } } } }";
    let page = server.graphql(FINDINGS, serde_json::json!({ "id": run_id }));
    let findings = &page["reconciliation"]["findings"];
    assert_eq!(findings["pageInfo"]["hasNextPage"], true, "{page}");
    let first = &findings["nodes"][0];
    assert_eq!(
        (
            &first["kind"],
            &first["refundRequestId"],
            &first["reportAmount"]["value"]
        ),
        (
            &Value::from("UNKNOWN_TO_LEDGER"),
            &Value::from("rf-req-9001"),
            &Value::from("-3000")
        ),
        "{page}"
    );
    assert_eq!(
        (&first["reportStatus"], &first["settlement"]),
        (&Value::from("SUCCESS"), &Value::Null),
        "a day's transaction details settle nothing: {page}"
    );
    let seq = first["seq"].as_i64().unwrap();

    const ACKNOWLEDGE: &str = "mutation($id: ID!, $seq: Int!, $note: String!) {
        acknowledgeReconciliationFinding(runId: $id, seq: $seq, note: $note) { position } }";
    let variables = serde_json::json!({ "id": run_id, "seq": seq, "note": "made in Antom Dashboard, ticket FIN-7" });
    let (_, refused) = server.graphql_with(Some(OPERATOR_KEY), ACKNOWLEDGE, variables.clone());
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN", "{refused}");
    let (_, acknowledged) = server.graphql_with(Some(ADMIN_KEY), ACKNOWLEDGE, variables.clone());
    let ack_position = acknowledged["data"]["acknowledgeReconciliationFinding"]["position"]
        .as_i64()
        .unwrap_or_else(|| panic!("{acknowledged}"));
    let (_, twice) = server.graphql_with(Some(ADMIN_KEY), ACKNOWLEDGE, variables);
    assert_eq!(twice["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{twice}");
    assert!(
        twice["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("acknowledged already"),
        "{twice}"
    );
    let (_, unknown) = server.graphql_with(
        Some(ADMIN_KEY),
        ACKNOWLEDGE,
        serde_json::json!({ "id": run_id, "seq": 99, "note": "x" }),
    );
    assert_eq!(unknown["errors"][0]["extensions"]["field"], "seq", "{unknown}");
    eventually("the read models to reach the acknowledgement", || {
        let head = server.graphql("{ ledgerHead { projectedPosition } }", serde_json::json!({}));
        (head["ledgerHead"]["projectedPosition"].as_i64() >= Some(ack_position)).then_some(())
    });
    let page = server.graphql(FINDINGS, serde_json::json!({ "id": run_id }));
    let acknowledged = &page["reconciliation"]["findings"]["nodes"][0]["acknowledged"];
    assert_eq!(acknowledged["by"], "aud", "{page}");
    assert_eq!(acknowledged["note"], "made in Antom Dashboard, ticket FIN-7", "{page}");
    assert_eq!(head(), Value::from(ack_position), "one event for one acknowledgement");
    server.stop();

    // replay rebuilds the runs and findings (with the acknowledgement) from the log and finds them equal;
    // a finding changed behind the ledger's back is named.
    let store = sqlite_store(&folder);
    let replayed = run_binary(&store, &["replay"]);
    assert_eq!(replayed.status.code(), Some(0), "{replayed:?}");
    let connection = rusqlite::Connection::open(folder.join("ledger.read.db")).unwrap();
    let changed = connection
        .execute(
            "UPDATE projection_reconciliation_findings SET data = replace(data, '-1200', '-1300')
             WHERE data LIKE '%rf-req-9002%'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(connection);
    let replayed = run_binary(&store, &["replay"]);
    assert_eq!(replayed.status.code(), Some(1), "{replayed:?}");
    let text = String::from_utf8_lossy(&replayed.stdout);
    assert!(
        text.contains("reconciliation finding") && text.contains(&run_id),
        "{text}"
    );
}

/// Refunds (and report rows) of the shorter run of the flat-memory test: past the point where every bounded
/// buffer of a run is full (a batch of 4,096 rows, 8 MiB of findings chunks waiting for their append).
const SMALL_RECONCILE_REFUNDS: u64 = 30_000;
/// Most the peak may grow from the shorter run to the long one: allocator and page-cache growth that levels off
/// (measured in a debug build: 73,468 KiB for 30,000 rows, 89,836 KiB for 150,000; the release bench: 73.0 MiB
/// for 100,000 rows, 80.3 MiB for 1,000,000), far below what holding the report's keys and findings would add
/// (the in-memory run: 421 MiB at 1,000,000 rows).
const RECONCILE_PEAK_GROWTH_KIB_MAX: u64 = 24 * 1024;

/// Refunds of the long run: `REFUND_LEDGER_RECONCILE_TEST_ROWS`, 150,000 by default (the bench measures
/// 1,000,000).
fn big_reconcile_refunds() -> u64 {
    std::env::var("REFUND_LEDGER_RECONCILE_TEST_ROWS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(150_000)
}

/// A ledger of `refunds` succeeded refunds written straight to a SQLite log in `folder`, its read models folded,
/// and Antom's report of that day listing each of them; answers the store's URL and the report's path.
fn ledger_and_report(runtime: &tokio::runtime::Runtime, folder: &Path, refunds: u64) -> (String, std::path::PathBuf) {
    let store = sqlite_store(folder);
    runtime.block_on(async {
        let log: std::sync::Arc<dyn eventlog::EventStore> =
            std::sync::Arc::new(eventlog::SqliteStore::open(folder.join("ledger.db")).await.unwrap());
        testkit::log::write_big_log(log.as_ref(), refunds).await;
        let projections = projections::open_projection_store(&store).await.unwrap();
        projections::rebuild_read_models(log, projections.as_ref(), &mut |_, _| {})
            .await
            .unwrap();
    });
    let report = folder.join(testkit::log::BIG_LOG_REPORT_NAME);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&report).unwrap());
    testkit::log::write_big_log_report(refunds, &mut file).unwrap();
    std::io::Write::flush(&mut file).unwrap();
    (store, report)
}

/// Peak resident memory (KiB) of `refund-ledger reconcile` over `report` (every row matches: exit 0), and the
/// findings it wrote.
fn reconcile_peak_kib(store: &str, report: &Path, folder: &Path) -> (u64, usize) {
    let findings = folder.join("findings.csv");
    let mut child = Command::new(binary())
        .arg("reconcile")
        .arg(report)
        .arg("--output")
        .arg(&findings)
        .env("REFUND_LEDGER_STORE", store)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (exit, peak, samples) = testkit::server::wait_with_peak_rss(&mut child);
    assert_eq!(exit.code(), Some(0), "every row matches");
    assert!(
        samples >= 10,
        "the run ended after {samples} readings of its memory, too soon to measure"
    );
    let lines = std::fs::read_to_string(&findings).unwrap().lines().count();
    (peak, lines)
}

/// The run streams: its peak memory on a report five times longer (against a ledger five times larger) stays
/// within a few MiB of the shorter run's.
#[test]
fn a_long_report_reconciles_in_flat_memory() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_small_guard, small) = temp_folder();
    let (_big_guard, big) = temp_folder();
    let big_refunds = big_reconcile_refunds();
    let (small_store, small_report) = ledger_and_report(&runtime, &small, SMALL_RECONCILE_REFUNDS);
    let (big_store, big_report) = ledger_and_report(&runtime, &big, big_refunds);
    let (small_peak, small_lines) = reconcile_peak_kib(&small_store, &small_report, &small);
    let (big_peak, big_lines) = reconcile_peak_kib(&big_store, &big_report, &big);
    assert_eq!(small_lines as u64, SMALL_RECONCILE_REFUNDS + 1);
    assert_eq!(big_lines as u64, big_refunds + 1);
    eprintln!("peak memory: {small_peak} KiB for {small_lines} rows, {big_peak} KiB for {big_lines} rows");
    assert!(
        big_peak < small_peak + RECONCILE_PEAK_GROWTH_KIB_MAX,
        "memory grows with the report: {small_peak} KiB for {SMALL_RECONCILE_REFUNDS} rows, {big_peak} KiB for \
         {big_refunds}"
    );
}
