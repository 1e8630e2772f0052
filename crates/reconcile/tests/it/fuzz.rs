//! Property tests: the parser never panics on arbitrary bytes or on mutated valid reports, never reads a file
//! as complete without its `<END>` line, and reads any cut-off prefix as an error.

use proptest::prelude::*;
use reconcile::{ReportReader, reconcile_settlement_batch, reconcile_transaction_details};

use crate::fixtures::{DETAILS_NAME, EVERY_GENERATION, SETTLEMENT_NAME, SUMMARY_NAME, agreeing_ledger};

/// Reads everything the way a caller would; the result only says whether the file was accepted.
fn read_all(name: &str, bytes: &[u8]) -> bool {
    let Ok(mut reader) = ReportReader::open(name, bytes) else {
        return false;
    };
    loop {
        match reader.next_row() {
            Ok(Some(row)) => {
                // Touch everything a matcher would.
                let _keys = reconcile::row_key(&row);
                let _ids = row.antom_ids();
                let _check = reconcile::check_settlement_row(&row, &std::sync::Arc::from(name));
            }
            Ok(None) => return reader.finish().is_ok(),
            Err(_) => return false,
        }
    }
}

fn has_end_line(bytes: &[u8]) -> bool {
    String::from_utf8_lossy(bytes)
        .split('\n')
        .any(|line| line.trim_end_matches(['\r', ',']).trim().trim_matches('"') == "<END>")
}

fn fixture_bytes() -> impl Strategy<Value = (&'static str, Vec<u8>)> {
    let files: Vec<(&'static str, &'static str)> = EVERY_GENERATION.iter().flat_map(|fixture| fixture.all()).collect();
    proptest::sample::select(files).prop_map(|(name, text)| (name, text.as_bytes().to_vec()))
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop_oneof![
        Just(b','),
        Just(b'"'),
        Just(b'\n'),
        Just(b'\r'),
        Just(b'-'),
        Just(b'.'),
        Just(b'0'),
        Just(b'9'),
        Just(0xff),
        any::<u8>(),
    ];
    prop_oneof![
        (any::<usize>(), interesting.clone()).prop_map(|(at, byte)| Mutation::Replace(at, byte)),
        (any::<usize>(), interesting).prop_map(|(at, byte)| Mutation::Insert(at, byte)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match *mutation {
        Mutation::Replace(at, byte) => {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        Mutation::Insert(at, byte) => bytes.insert(at % (bytes.len() + 1), byte),
        Mutation::Delete(at) => {
            bytes.remove(at % bytes.len());
        }
        Mutation::Truncate(at) => bytes.truncate(at % bytes.len()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let accepted = read_all(DETAILS_NAME, &bytes);
        prop_assert!(!accepted || has_end_line(&bytes));
        let _details = reconcile_transaction_details(vec![(DETAILS_NAME.to_owned(), &bytes[..])], &agreeing_ledger(), None);
        let _batch = reconcile_settlement_batch(
            vec![(SETTLEMENT_NAME.to_owned(), &bytes[..])],
            (SUMMARY_NAME.to_owned(), &bytes[..]),
            &agreeing_ledger(),
        );
    }

    #[test]
    fn mutated_reports_never_panic_and_are_complete_only_with_end(
        (name, mut bytes) in fixture_bytes(),
        mutations in proptest::collection::vec(mutation(), 1..8),
    ) {
        for mutation in &mutations {
            apply(&mut bytes, mutation);
        }
        let accepted = read_all(name, &bytes);
        prop_assert!(!accepted || has_end_line(&bytes), "accepted without <END>: {:?}", String::from_utf8_lossy(&bytes));
        let _run = reconcile_transaction_details(vec![(name.to_owned(), &bytes[..])], &agreeing_ledger(), None);
    }

    #[test]
    fn every_prefix_cut_before_end_is_an_error((name, bytes) in fixture_bytes(), cut in any::<usize>()) {
        let end = bytes.windows(5).position(|window| window == b"<END>").unwrap();
        let prefix = &bytes[..cut % (end + 1)];
        prop_assert!(!read_all(name, prefix));
    }
}
