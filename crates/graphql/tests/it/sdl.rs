//! `schema/ledger.graphql` is the SDL printed from the code: finance tools
//! code against it, so a change must be deliberate. `UPDATE_SNAPSHOTS=1`
//! rewrites the file.

use std::path::PathBuf;

#[test]
fn the_checked_in_sdl_is_what_the_code_prints() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schema/ledger.graphql");
    let printed = graphql::sdl();
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &printed).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).expect("schema/ledger.graphql is missing: UPDATE_SNAPSHOTS=1");
    assert!(
        checked_in == printed,
        "schema/ledger.graphql is out of date: review the change, then UPDATE_SNAPSHOTS=1"
    );
}

#[test]
fn the_contract_names_are_in_the_schema() {
    let sdl = graphql::sdl();
    for name in [
        "input AmountInput",
        "type Amount",
        "enum ResultStatus",
        "enum RefundStatus",
        "type Result",
        "payment(paymentId: ID!, asOf: DateTime, atPosition: Int, atLeastPosition: Int): Payment",
        "refund(refundRequestId: ID!, atLeastPosition: Int): Refund",
        "recordPayment(input: RecordPaymentInput!): PaymentResult!",
        "refund(input: RefundInput!): RefundResult!",
        "inquiryRefund(refundRequestId: ID!): RefundResult!",
        "refundUpdated(paymentId: ID): Refund!",
        "payments(first: Int, after: String, filter: PaymentFilter): PaymentConnection!",
        "refunds(first: Int, after: String, filter: RefundFilter): RefundConnection!",
        "events(fromPosition: Int, first: Int, paymentId: ID): [LedgerEvent!]!",
        "refundableAmount: Amount!",
        "pendingRefundAmount: Amount!",
    ] {
        assert!(sdl.contains(name), "the SDL lacks {name:?}:\n{sdl}");
    }
}
