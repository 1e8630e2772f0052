//! `refund-ledger rebuild` on both stores: read-model rows edited behind the ledger's back make `replay` fail;
//! `rebuild` runs while refunds keep flowing through the service; afterwards `replay` finds the read models
//! equal to the log, every refund of the log in them once. The admin mutation `rebuildReadModels` repairs a row
//! the same way inside the running service.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use testkit::server::OPERATOR_KEY;

use crate::audit_support::{ADMIN_KEY, AuditServer, Log, payment_with_refunds, run, stdout};
use crate::replay::{PAYMENTS, write_many};

const REBUILD: &str = "mutation { rebuildReadModels { position } }";

/// The `N refunds` count a replay printed.
fn refunds_rebuilt(text: &str) -> u64 {
    let (_, after) = text.split_once("payments, ").expect("replay prints its counts");
    after.split(' ').next().unwrap().parse().unwrap()
}

fn rebuild_tests(log: &Log) {
    log.write_with(|store| async move { write_many(store.as_ref()).await });
    let server = AuditServer::start(&log.url(), &log.folder());
    payment_with_refunds(&server, "LIVE-1", "USD", &["100", "200"]);
    server.wait_projected();
    // Stopped so that the saga's worker does not move the read models while replay compares them.
    server.stop();
    log.execute_on_read_models(
        "UPDATE projection_payments SET refunded = refunded + 1 WHERE payment_id = 'MANY-7';
         DELETE FROM projection_refunds WHERE refund_request_id = 'MANY-8-R';
         UPDATE projection_daily_totals SET count = count + 1;",
    );
    let broken = run(log, &["replay"]);
    assert_eq!(broken.status.code(), Some(1), "{broken:?}");
    let refunds_before = refunds_rebuilt(&stdout(&broken));

    let server = AuditServer::start(&log.url(), &log.folder());

    let done = AtomicBool::new(false);
    let flowed = AtomicUsize::new(0);
    let rebuilt = std::thread::scope(|scope| {
        let flow = scope.spawn(|| {
            while !done.load(Ordering::Acquire) || flowed.load(Ordering::Acquire) < 3 {
                let index = flowed.load(Ordering::Acquire);
                payment_with_refunds(&server, &format!("FLOW-{index}"), "EUR", &["10", "20"]);
                flowed.fetch_add(1, Ordering::AcqRel);
            }
        });
        while flowed.load(Ordering::Acquire) == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        let rebuilt = run(log, &["rebuild"]);
        done.store(true, Ordering::Release);
        flow.join().unwrap();
        rebuilt
    });
    assert_eq!(rebuilt.status.code(), Some(0), "{rebuilt:?}");
    assert!(
        stdout(&rebuilt).contains("rebuild: OK, the read models were rebuilt from the log and swapped in at position "),
        "{rebuilt:?}"
    );
    server.wait_projected();

    // The admin mutation does the same inside the running service; an operator may not.
    let forbidden = server.graphql_as(OPERATOR_KEY, REBUILD, json!({}));
    assert_eq!(forbidden["errors"][0]["extensions"]["code"], "FORBIDDEN", "{forbidden}");
    log.execute_on_read_models("DELETE FROM projection_refunds WHERE refund_request_id = 'MANY-9-R';");
    let answer = server.graphql_as(ADMIN_KEY, REBUILD, json!({}));
    let position = answer["data"]["rebuildReadModels"]["position"].as_u64();
    assert!(position.is_some_and(|position| position > 0), "{answer}");
    server.wait_projected();
    server.stop();

    let flowed = flowed.into_inner();
    let replayed = run(log, &["replay"]);
    assert_eq!(replayed.status.code(), Some(0), "{replayed:?}");
    let text = stdout(&replayed);
    assert!(text.contains("replay: OK, the read models match the log"), "{text}");
    assert!(
        text.contains(&format!("rebuilt {} payments", PAYMENTS + 1 + flowed as u64)),
        "{text}"
    );
    assert_eq!(refunds_rebuilt(&text), refunds_before + 2 * flowed as u64, "{text}");
}

#[test]
fn rebuild_repairs_the_read_models_while_refunds_flow_on_sqlite() {
    rebuild_tests(&Log::sqlite());
}

#[test]
fn rebuild_repairs_the_read_models_while_refunds_flow_on_postgres() {
    rebuild_tests(&Log::postgres());
}
