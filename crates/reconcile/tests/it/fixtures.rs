//! The fixture reports of each generation (the same three rows: a payment, a USD refund and a JPY refund settled
//! in USD) and transformations that must not change what a parser reads from them.

use domain::{Money, PaymentId, RefundId, RefundRequestId, RefundStatus};
use reconcile::{LedgerRefund, ReconcileError, ReportReader, Row};
use time::macros::datetime;

/// A generation's fixture set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fixture {
    G1,
    G2,
    G3,
}

pub(crate) const EVERY_GENERATION: [Fixture; 3] = [Fixture::G1, Fixture::G2, Fixture::G3];

pub(crate) const DETAILS_NAME: &str = "transactionItems_20260304_000.csv";
pub(crate) const SETTLEMENT_NAME: &str = "settlementItems_USD_2026030611000000001_000.csv";
pub(crate) const SUMMARY_NAME: &str = "settlementSummary_USD_2026030611000000001_000.csv";

impl Fixture {
    pub(crate) fn transaction_details(&self) -> &'static str {
        match self {
            Self::G1 => include_str!("fixtures/g1/transactionItems_20260304_000.csv"),
            Self::G2 => include_str!("fixtures/g2/transactionItems_20260304_000.csv"),
            Self::G3 => include_str!("fixtures/g3/transactionItems_20260304_000.csv"),
        }
    }

    pub(crate) fn settlement_details(&self) -> &'static str {
        match self {
            Self::G1 => include_str!("fixtures/g1/settlementItems_USD_2026030611000000001_000.csv"),
            Self::G2 => include_str!("fixtures/g2/settlementItems_USD_2026030611000000001_000.csv"),
            Self::G3 => include_str!("fixtures/g3/settlementItems_USD_2026030611000000001_000.csv"),
        }
    }

    pub(crate) fn settlement_summary(&self) -> &'static str {
        match self {
            Self::G1 => include_str!("fixtures/g1/settlementSummary_USD_2026030611000000001_000.csv"),
            Self::G2 => include_str!("fixtures/g2/settlementSummary_USD_2026030611000000001_000.csv"),
            Self::G3 => include_str!("fixtures/g3/settlementSummary_USD_2026030611000000001_000.csv"),
        }
    }

    /// The three files with their names.
    pub(crate) fn all(&self) -> [(&'static str, &'static str); 3] {
        [
            (DETAILS_NAME, self.transaction_details()),
            (SETTLEMENT_NAME, self.settlement_details()),
            (SUMMARY_NAME, self.settlement_summary()),
        ]
    }

    pub(crate) fn generation(&self) -> reconcile::Generation {
        match self {
            Self::G1 => reconcile::Generation::G1,
            Self::G2 => reconcile::Generation::G2,
            Self::G3 => reconcile::Generation::G3,
        }
    }
}

/// Every row of a report, or the first error.
pub(crate) fn parse(name: &str, text: &str) -> Result<Vec<Row>, ReconcileError> {
    let mut reader = ReportReader::open(name, text.as_bytes())?;
    let mut rows = Vec::new();
    while let Some(row) = reader.next_row()? {
        rows.push(row);
    }
    reader.finish()?;
    Ok(rows)
}

/// The ledger that agrees with the fixtures: both refunds succeeded on 2026-03-04 (GMT+8).
pub(crate) fn agreeing_ledger() -> Vec<LedgerRefund> {
    vec![
        ledger_refund(
            "rf-req-9001",
            "20260304194010800100188000000001",
            "USD",
            3000,
            "20260304194010800100188000000101",
            7,
        ),
        ledger_refund(
            "rf-req-9002",
            "20260227194010800100188000000042",
            "JPY",
            1200,
            "20260304194010800100188000000102",
            9,
        ),
    ]
}

pub(crate) fn ledger_refund(
    request_id: &str,
    payment_id: &str,
    currency: &str,
    minor_units: u64,
    refund_id: &str,
    position: u64,
) -> LedgerRefund {
    LedgerRefund {
        refund_request_id: RefundRequestId::parse(request_id).unwrap(),
        payment_id: PaymentId::parse(payment_id).unwrap(),
        status: RefundStatus::Succeeded,
        refund_amount: Money::parse("refundAmount", currency, &minor_units.to_string()).unwrap(),
        refund_id: Some(RefundId::parse(refund_id).unwrap()),
        refund_time: Some(datetime!(2026-03-04 16:40:11 +08:00)),
        position,
    }
}

/// The rows of an unquoted fixture as cells (header first, `<END>` left out).
fn table(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|line| *line != "<END>")
        .map(|line| line.split(',').map(str::to_owned).collect())
        .collect()
}

fn join(rows: &[Vec<String>], quote: bool, line_end: &str) -> String {
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .map(|cell| {
                if quote {
                    format!("\"{}\"", cell.replace('"', "\"\""))
                } else {
                    cell.clone()
                }
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push_str(line_end);
    }
    out.push_str("<END>");
    out.push_str(line_end);
    out
}

/// The same report with its columns in reverse order.
pub(crate) fn reversed_columns(text: &str) -> String {
    let rows: Vec<Vec<String>> = table(text)
        .into_iter()
        .map(|mut row| {
            // A stray trailing empty cell (G1) stays last, as Antom writes it.
            let trailing = (row.len() > table(text)[0].len()).then(|| row.pop()).flatten();
            row.reverse();
            row.extend(trailing);
            row
        })
        .collect();
    join(&rows, false, "\n")
}

/// The same report with every cell quoted, CRLF line ends and a byte order mark.
pub(crate) fn quoted_crlf_bom(text: &str) -> String {
    format!("\u{feff}{}", join(&table(text), true, "\r\n"))
}

/// The same report with a column Antom does not document inserted second.
pub(crate) fn with_unknown_column(text: &str) -> String {
    let rows: Vec<Vec<String>> = table(text)
        .into_iter()
        .enumerate()
        .map(|(index, mut row)| {
            let value = if index == 0 {
                "merchantNote".to_owned()
            } else {
                format!("note {index}")
            };
            row.insert(1, value);
            row
        })
        .collect();
    join(&rows, false, "\n")
}

/// The report without its `<END>` line.
pub(crate) fn without_end(text: &str) -> String {
    text.replace("<END>\n", "")
}
