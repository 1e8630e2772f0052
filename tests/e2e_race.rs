//! Concurrency on PostgreSQL: two server instances on one database racing
//! on one payment never over-refund, and 50 concurrent refunds of 5.00 on a
//! 100.00 payment refund exactly 20.

use serde_json::json;
use testkit::postgres::ScratchDatabase;
use testkit::server::{Server, check, temp_folder};

use crate::e2e_support::{
    Antom, REFUND, Worker, balance, events, eventually, free_loopback_port, record_payment, refund, start_ledger,
};
use crate::support::binary;

/// Refund request ids raced; each is sent to both instances at once.
const RACED_REFUND_REQUESTS: usize = 30;

fn result_code(answer: &serde_json::Value) -> String {
    answer["result"]["resultCode"].as_str().unwrap().to_owned()
}

#[test]
fn two_instances_on_one_postgres_racing_on_one_payment_never_over_refund() {
    let (_guard_a, folder_a) = temp_folder();
    let (_guard_b, folder_b) = temp_folder();
    let database = ScratchDatabase::create("e2e");
    let port_a = free_loopback_port();
    let antom = Antom::start(port_a);
    let instance_a = start_ledger(&database.url, &folder_a, &antom, port_a, Worker::Eager);
    let instance_b = start_ledger(&database.url, &folder_b, &antom, free_loopback_port(), Worker::Eager);
    record_payment(&instance_a, "PAY-R", "10000");

    // 30 refunds of 5.00 on 100.00, every refundRequestId sent to both instances at the same time.
    let answers: Vec<(usize, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..RACED_REFUND_REQUESTS)
            .flat_map(|index| [(index, &instance_a), (index, &instance_b)])
            .map(|(index, instance)| {
                scope.spawn(move || {
                    (
                        index,
                        result_code(&refund(instance, &format!("R-{index}"), "PAY-R", "500")),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    for (_, code) in &answers {
        assert!(
            ["SUCCESS", "REFUND_IN_PROCESS", "REFUND_AMOUNT_EXCEED"].contains(&code.as_str()),
            "{answers:?}"
        );
    }
    // An id refused on one instance is refused on the other: the two never split on one request.
    for index in 0..RACED_REFUND_REQUESTS {
        let codes: Vec<&str> = answers
            .iter()
            .filter(|(answered, _)| *answered == index)
            .map(|(_, code)| code.as_str())
            .collect();
        let refused = codes.iter().filter(|code| **code == "REFUND_AMOUNT_EXCEED").count();
        assert!(refused == 0 || refused == 2, "R-{index}: {codes:?}");
    }

    // Whatever was still open when answered is settled by either worker; then both agree.
    for instance in [&instance_a, &instance_b] {
        eventually("every raced refund to settle", || {
            (balance(instance, "PAY-R").1 == 0).then_some(())
        });
        assert_eq!(balance(instance, "PAY-R"), (10000, 0, 0));
    }
    let stream = events(&instance_b, "PAY-R");
    let requested = stream.iter().filter(|event| event["type"] == "RefundRequested").count();
    let succeeded = stream.iter().filter(|event| event["type"] == "RefundSucceeded").count();
    assert_eq!((requested, succeeded), (20, 20), "{stream:?}");
    let at_antom = antom.payment("PAY-R");
    assert_eq!(at_antom["succeededMinorUnits"], 10000, "{at_antom}");
    assert_eq!(at_antom["refunds"].as_array().unwrap().len(), 20, "{at_antom}");
    instance_a.stop();
    instance_b.stop();
    assert!(
        check(binary(), &database.url).status.success(),
        "the shared log is intact"
    );
}

#[test]
fn fifty_concurrent_refunds_of_five_on_a_hundred_refund_exactly_twenty_on_postgres() {
    let (_guard, folder) = temp_folder();
    let database = ScratchDatabase::create("e2e");
    let server = Server::start(binary(), &database.url, &folder);
    record_payment(&server, "PAY-C", "10000");
    let codes: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|index| {
                let server = &server;
                scope.spawn(move || result_code(&refund(server, &format!("C-{index}"), "PAY-C", "500")))
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    let accepted = codes
        .iter()
        .filter(|code| *code == "SUCCESS" || *code == "REFUND_IN_PROCESS")
        .count();
    let exceeded = codes.iter().filter(|code| *code == "REFUND_AMOUNT_EXCEED").count();
    assert_eq!((accepted, exceeded), (20, 30), "{codes:?}");
    // The demo simulator answers some refunds U; the worker settles them, all to success.
    let settled = eventually("the U refunds to settle", || {
        let balance = balance(&server, "PAY-C");
        (balance.1 == 0).then_some(balance)
    });
    assert_eq!(settled, (10000, 0, 0));
    let raw = server.graphql(REFUND, json!({ "rid": "C-late", "pid": "PAY-C", "value": "1" }));
    assert_eq!(raw["refund"]["result"]["resultCode"], "REFUND_AMOUNT_EXCEED", "{raw}");
    server.stop();
}
