//! Reconciliation runs and their findings (docs/adr/003-reconciliation.md), from the read models folded from
//! the `reconciliation-*` streams.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{ComplexObject, Context, SimpleObject};
use projections::{FINDINGS_PAGE_MAX, FindingFilter, FindingView, ReconciliationView};
use time::OffsetDateTime;

use crate::context::ApiContext;
use crate::cost::{PAGE_SIZE_DEFAULT, first_bound};
use crate::error::ApiError;
use crate::types::{Amount, LedgerRefundStatus};

/// A reconciliation run: Antom's reports checked against the ledger, as recorded in the log.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub struct Reconciliation {
    /// The run's id (its stream is `reconciliation-{runId}`).
    pub run_id: String,
    /// The global position of the run's event.
    pub position: i64,
    /// When it was recorded.
    pub recorded_at: OffsetDateTime,
    /// Who ran it (the API key's name, or the CLI's actor).
    pub actor: String,
    /// `TRANSACTION_DETAILS` or `SETTLEMENT_BATCH`.
    pub report_kind: String,
    /// Day T of a transaction details report.
    pub period: Option<String>,
    /// The settlement batch.
    pub settlement_batch_id: Option<String>,
    /// The position the ledger was read at.
    pub ledger_position: i64,
    /// Findings of the run.
    pub findings_count: i64,
    /// Findings per kind.
    pub counts: Vec<FindingCount>,
    /// The files, each with its SHA-256.
    pub files: Vec<ReconciledFile>,
}

/// How many findings of one kind.
#[derive(Debug, Clone, SimpleObject)]
pub struct FindingCount {
    /// `MATCHED`, `DIFFERS`, `UNKNOWN_TO_LEDGER`, ...
    pub kind: String,
    /// How many.
    pub count: i64,
}

/// A report file of a run.
#[derive(Debug, Clone, SimpleObject)]
pub struct ReconciledFile {
    /// The file name.
    pub name: String,
    /// `TRANSACTION_DETAILS`, `SETTLEMENT_DETAILS` or `SETTLEMENT_SUMMARY`.
    pub report_kind: String,
    /// `G1`, `G2` or `G3`.
    pub generation: String,
    /// SHA-256 of the bytes read, hex.
    pub sha256: String,
    /// Bytes.
    pub bytes: i64,
    /// Data rows.
    pub rows: i64,
    /// What the reader accepted without fully understanding it.
    pub warnings: Vec<String>,
}

/// An amount as a report states it: signed minor units.
#[derive(Debug, Clone, SimpleObject)]
pub struct ReportAmount {
    /// ISO 4217 code.
    pub currency: String,
    /// Signed minor units (a refund is negative in Antom's reports).
    pub value: String,
}

/// The settlement side of a settlement details row, as the report states it.
#[derive(Debug, Clone, SimpleObject)]
pub struct FindingSettlement {
    /// `settlementAmountValue` in `settlementCurrency`: what left the settlement account (net of fees; negative
    /// for a refund).
    pub amount: ReportAmount,
    /// `convertedTransactionAmountValue` in `convertedCurrency` (G3): the gross after FX, as Antom rounded it.
    pub converted: Option<ReportAmount>,
    /// Every non-empty fee cell, in the report's column order.
    pub fees: Vec<SettlementFee>,
    /// `quoteCurrencyPair` and `quotePrice`, when the row has them.
    pub quote: Option<SettlementQuote>,
    /// The row's settlement date (`2026-03-06`: G3 `settlementInitiatedDate`, the date G1/G2 `settlementTime`
    /// prints), what the journal books the row on; none when the row has none the parser can read (the journal
    /// then books on the day the run was recorded).
    pub date: Option<String>,
}

/// One fee cell of a settlement details row.
#[derive(Debug, Clone, SimpleObject)]
pub struct SettlementFee {
    /// The column's G3 stem: `paymentMethodFee`, `taxFee`, `fxFee`, ...
    pub kind: String,
    /// Its amount (charged fees are negative).
    pub amount: ReportAmount,
}

/// An FX quote of a row: one `base` is `price` `quote`.
#[derive(Debug, Clone, SimpleObject)]
pub struct SettlementQuote {
    /// Left side of the pair (ISO 4217).
    pub base: String,
    /// Right side of the pair.
    pub quote: String,
    /// The rate exactly as the report printed it.
    pub price: String,
}

fn report_amount(amount: domain::ReportedAmount) -> ReportAmount {
    ReportAmount {
        currency: amount.currency,
        value: amount.value,
    }
}

impl From<domain::RecordedSettlement> for FindingSettlement {
    fn from(settlement: domain::RecordedSettlement) -> Self {
        Self {
            amount: report_amount(settlement.amount),
            converted: settlement.converted.map(report_amount),
            fees: settlement
                .fees
                .into_iter()
                .map(|fee| SettlementFee {
                    kind: fee.kind,
                    amount: report_amount(fee.amount),
                })
                .collect(),
            quote: settlement.quote.map(|quote| SettlementQuote {
                base: quote.base,
                quote: quote.quote,
                price: quote.price,
            }),
            date: settlement.date,
        }
    }
}

/// An admin's acknowledgement of a finding.
#[derive(Debug, Clone, SimpleObject)]
pub struct FindingAcknowledgement {
    /// The admin key's name.
    pub by: String,
    /// When.
    pub at: OffsetDateTime,
    /// What was done about it.
    pub note: String,
    /// The acknowledging event's position.
    pub position: i64,
}

/// One finding of a run.
#[derive(Debug, Clone, SimpleObject)]
pub struct ReconciliationFinding {
    /// Its order in the run, from 1.
    pub seq: i64,
    /// `MATCHED`, `DIFFERS`, `UNKNOWN_TO_LEDGER`, `LEDGER_PENDING`, `LEDGER_NOT_SUCCEEDED`, `STATUS_DIFFERS`,
    /// `MISSING_FROM_REPORT`, `REFUND_REVERSAL`, `DUPLICATE`, `SUMMARY_MISMATCH`, `SETTLEMENT_MISMATCH`,
    /// `NOT_UNDERSTOOD`, `SETTLEMENT_NOT_BOOKED`.
    pub kind: String,
    /// The report file (none for a refund missing from the report).
    pub file: Option<String>,
    /// The line in it.
    pub line: Option<i64>,
    /// The merchant's refundRequestId.
    pub refund_request_id: Option<String>,
    /// Antom's refundId.
    pub refund_id: Option<String>,
    /// The row's amount.
    pub report_amount: Option<ReportAmount>,
    /// The position of the ledger event the finding is about.
    pub ledger_position: Option<i64>,
    /// The ledger's status when the run read it.
    pub ledger_status: Option<LedgerRefundStatus>,
    /// The ledger's amount.
    pub ledger_amount: Option<Amount>,
    /// The row's `status` as the report states it (`SUCCESS`, `FAIL`, `PROCESSING`, or a value not understood;
    /// G3 transaction details), none when the row has no status.
    pub report_status: Option<String>,
    /// The settlement side of a settled REFUND row of a settlement batch (on the row's first finding only): what
    /// the journal's settlement lines are made of.
    pub settlement: Option<FindingSettlement>,
    /// What differs, what was done.
    pub message: String,
    /// Set once an admin acknowledged it.
    pub acknowledged: Option<FindingAcknowledgement>,
}

fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl From<ReconciliationView> for Reconciliation {
    fn from(view: ReconciliationView) -> Self {
        let run = view.run;
        Self {
            run_id: run.run_id,
            position: int(view.position),
            recorded_at: view.recorded_at,
            actor: view.actor,
            report_kind: run.report_kind,
            period: run.period,
            settlement_batch_id: run.settlement_batch_id,
            ledger_position: int(run.ledger_position),
            findings_count: int(run.findings_count),
            counts: run
                .counts
                .into_iter()
                .map(|(kind, count)| FindingCount {
                    kind,
                    count: int(count),
                })
                .collect(),
            files: run
                .files
                .into_iter()
                .map(|file| ReconciledFile {
                    name: file.name,
                    report_kind: file.report_kind,
                    generation: file.generation,
                    sha256: file.sha256,
                    bytes: int(file.bytes),
                    rows: int(file.rows),
                    warnings: file.warnings,
                })
                .collect(),
        }
    }
}

impl From<FindingView> for ReconciliationFinding {
    fn from(view: FindingView) -> Self {
        let finding = view.finding;
        Self {
            seq: int(finding.seq),
            kind: finding.kind,
            file: finding.file,
            line: finding.line.map(int),
            refund_request_id: finding.refund_request_id,
            refund_id: finding.refund_id,
            report_amount: finding.report_amount.map(report_amount),
            ledger_position: finding.ledger_position.map(int),
            ledger_status: finding.ledger_status.map(Into::into),
            ledger_amount: finding.ledger_amount.map(Into::into),
            report_status: finding.report_status,
            settlement: finding.settlement.map(Into::into),
            message: finding.message,
            acknowledged: view.acknowledgement.map(|acknowledgement| FindingAcknowledgement {
                by: acknowledgement.by,
                at: acknowledgement.at,
                note: acknowledgement.note,
                position: int(acknowledgement.position),
            }),
        }
    }
}

/// A cursor of these connections: a position or a seq, as a decimal string.
fn number_cursor(after: Option<&str>) -> Result<Option<u64>, ApiError> {
    after
        .map(|text| {
            text.parse::<u64>().map_err(|_| ApiError::BadInput {
                field: "after".to_owned(),
                message: format!("after: {text:?} is not a cursor of this list"),
            })
        })
        .transpose()
}

fn read_models_error(error: projections::ProjectionError) -> ApiError {
    ApiError::internal(&error)
}

/// A page of `first` nodes from `views` (which holds one more when there is a next page), each with its
/// number as the cursor.
fn page<View, Node: async_graphql::OutputType + From<View>>(
    mut views: Vec<View>,
    first: usize,
    has_previous_page: bool,
    number: impl Fn(&View) -> u64,
) -> Connection<String, Node> {
    let has_next_page = views.len() > first;
    views.truncate(first);
    let mut connection = Connection::new(has_previous_page, has_next_page);
    connection.edges.extend(
        views
            .into_iter()
            .map(|view| Edge::new(number(&view).to_string(), view.into())),
    );
    connection
}

#[ComplexObject]
impl Reconciliation {
    /// The run's findings in order, optionally of one kind: `first` (default 50, at most 1000) per page.
    #[graphql(complexity = "crate::cost::store_list(first, PAGE_SIZE_DEFAULT, FINDINGS_PAGE_MAX, child_complexity)")]
    async fn findings(
        &self,
        context: &Context<'_>,
        kind: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, ReconciliationFinding>> {
        let api = context.data::<ApiContext>()?;
        let first = first_bound(first, PAGE_SIZE_DEFAULT, FINDINGS_PAGE_MAX)?;
        let after_seq = number_cursor(after.as_deref())?;
        let filter = FindingFilter { kind, after_seq };
        let views = api
            .read_models
            .reconciliation_findings(&self.run_id, &filter, (first + 1).min(FINDINGS_PAGE_MAX))
            .await
            .map_err(read_models_error)?;
        Ok(page(views, first, after_seq.is_some(), |view| view.finding.seq))
    }
}

/// `reconciliations(first, after)`: newest first.
pub(crate) async fn reconciliations(
    api: &ApiContext,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<Connection<String, Reconciliation>> {
    let first = first_bound(first, PAGE_SIZE_DEFAULT, projections::PAGE_SIZE_MAX)?;
    let before = number_cursor(after.as_deref())?;
    let views = api
        .read_models
        .reconciliations(before, (first + 1).min(projections::PAGE_SIZE_MAX))
        .await
        .map_err(read_models_error)?;
    Ok(page(views, first, before.is_some(), |view| view.position))
}

/// `reconciliation(runId)`.
pub(crate) async fn reconciliation(api: &ApiContext, run_id: &str) -> async_graphql::Result<Option<Reconciliation>> {
    Ok(api
        .read_models
        .reconciliation(run_id)
        .await
        .map_err(read_models_error)?
        .map(Into::into))
}

/// The answer to `acknowledgeReconciliationFinding`.
#[derive(Debug, Clone, SimpleObject)]
pub struct AcknowledgeResult {
    /// The global position of the acknowledgement event (wait for it with `atLeastPosition`).
    pub position: i64,
}

/// `acknowledgeReconciliationFinding(runId, seq, note)`.
pub(crate) async fn acknowledge(
    api: &ApiContext,
    actor: &str,
    run_id: &str,
    seq: i64,
    note: &str,
) -> async_graphql::Result<AcknowledgeResult> {
    let seq = u64::try_from(seq).map_err(|_| ApiError::BadInput {
        field: "seq".to_owned(),
        message: "seq: must not be negative".to_owned(),
    })?;
    let position = app::reconciliation::acknowledge_finding(
        api.store.as_ref(),
        api.read_models.as_ref(),
        actor,
        run_id,
        seq,
        note,
        OffsetDateTime::now_utc(),
    )
    .await
    .map_err(|error| match error {
        app::reconciliation::ReconciliationError::Acknowledgement { field, message } => ApiError::BadInput {
            field: field.to_owned(),
            message: format!("{field}: {message}"),
        },
        other => ApiError::internal(&other),
    })?;
    Ok(AcknowledgeResult {
        position: int(position),
    })
}
