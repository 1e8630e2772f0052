//! The admin API under `/sim/`: seed and change payments, read refunds and
//! totals, set the fault mix, script faults per refundRequestId and read the
//! notification log. Plain JSON, unsigned: it is how tests and demos steer
//! the simulator from outside the process.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::{Money, PaymentId, PaymentMethodType};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::FaultConfig;
use crate::error::SimError;
use crate::fault::parse_fault_list;
use crate::ledger::{Chargeback, PaymentSeed, PaymentUpdate, RefundState};
use crate::report::{Discrepancies, ReportKind};
use crate::report_settings::ReportGeneration;
use crate::simulator::Simulator;
use crate::wire::{AmountJson, antom_time};

pub(crate) fn routes() -> Router<Simulator> {
    Router::new()
        .route("/sim/payments", post(seed_payment))
        .route("/sim/payments/{payment_id}", get(show_payment).post(update_payment))
        .route("/sim/faults", get(show_faults).post(set_faults))
        .route("/sim/scripts", post(script_faults))
        .route("/sim/notifications", get(show_notifications))
        .route("/sim/settle", post(settle))
        .route("/sim/reports/transactions/{date}", get(transaction_report))
        .route("/sim/reports/settlements/{date}/items", get(settlement_items))
        .route("/sim/reports/settlements/{date}/summary", get(settlement_summary))
        .route("/sim/reports/{date}/files", post(write_report_files))
}

/// Body of `POST /sim/payments`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SeedPaymentJson {
    payment_id: String,
    payment_amount: AmountJson,
    payment_method_type: String,
    /// ISO-8601; default now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    payment_time: Option<OffsetDateTime>,
    /// Default: the payment amount, or nothing when `captureNeeded`.
    captured_amount: Option<AmountJson>,
    #[serde(default)]
    capture_needed: bool,
    #[serde(default)]
    chargeback: Chargeback,
    #[serde(default)]
    cancelled: bool,
}

/// Body of `POST /sim/payments/{paymentId}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdatePaymentJson {
    captured_amount: Option<AmountJson>,
    chargeback: Option<Chargeback>,
    cancelled: Option<bool>,
}

/// Body of `POST /sim/scripts`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScriptJson {
    refund_request_id: String,
    /// One comma-separated fault list per upcoming call (`"none"` for a clean one).
    calls: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PaymentViewJson {
    payment_id: String,
    captured_minor_units: u64,
    succeeded_minor_units: u64,
    processing_minor_units: u64,
    refundable_minor_units: u64,
    refunds: Vec<RefundViewJson>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RefundViewJson {
    refund_request_id: String,
    refund_id: String,
    refund_amount: AmountJson,
    refund_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refund_time: Option<String>,
}

/// An admin failure: HTTP status and `{"error": "..."}`.
#[derive(Debug)]
struct AdminError(StatusCode, String);

impl From<SimError> for AdminError {
    fn from(error: SimError) -> Self {
        let status = match error {
            SimError::PaymentExists { .. } => StatusCode::CONFLICT,
            SimError::PaymentNotFound { .. } => StatusCode::NOT_FOUND,
            SimError::ReportFile { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        Self(status, error.to_string())
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn money(field: &str, amount: &AmountJson) -> Result<Money, AdminError> {
    Money::parse(field, &amount.currency, &amount.value).map_err(|error| SimError::from(error).into())
}

impl SeedPaymentJson {
    fn into_seed(self) -> Result<PaymentSeed, SimError> {
        let money = |field: &str, amount: &AmountJson| Money::parse(field, &amount.currency, &amount.value);
        let payment_amount = money("paymentAmount", &self.payment_amount)?;
        let captured_amount = match (&self.captured_amount, self.capture_needed) {
            (Some(captured), _) => Some(money("capturedAmount", captured)?),
            (None, true) => None,
            (None, false) => Some(payment_amount),
        };
        Ok(PaymentSeed {
            payment_id: PaymentId::parse(&self.payment_id)?,
            payment_amount,
            payment_method_type: PaymentMethodType::parse(&self.payment_method_type)?,
            payment_time: self.payment_time.unwrap_or_else(OffsetDateTime::now_utc),
            captured_amount,
            chargeback: self.chargeback,
            cancelled: self.cancelled,
        })
    }
}

/// Most payments one JSON seed file may hold.
pub const SEED_PAYMENTS_MAX: usize = 100_000;

impl Simulator {
    /// Seeds payments from a JSON array of objects shaped like the body of
    /// `POST /sim/payments` (e.g. a file given to the binary's `--payments`).
    /// Stops at the first bad entry; the error names its index.
    pub fn seed_payments_json(&self, json: &str) -> Result<usize, SimError> {
        let entries: Vec<SeedPaymentJson> = serde_json::from_str(json).map_err(|error| SimError::Config {
            field: "payments".to_owned(),
            reason: format!("not a JSON array of payments: {error}"),
        })?;
        if entries.len() > SEED_PAYMENTS_MAX {
            return Err(SimError::Config {
                field: "payments".to_owned(),
                reason: format!("at most {SEED_PAYMENTS_MAX} payments, got {}", entries.len()),
            });
        }
        let count = entries.len();
        for (index, entry) in entries.into_iter().enumerate() {
            let seed = entry.into_seed().map_err(|error| SimError::Config {
                field: format!("payments[{index}]"),
                reason: error.to_string(),
            })?;
            self.seed_payment(seed)?;
        }
        Ok(count)
    }
}

async fn seed_payment(
    State(simulator): State<Simulator>,
    Json(json): Json<SeedPaymentJson>,
) -> Result<StatusCode, AdminError> {
    simulator.seed_payment(json.into_seed()?)?;
    Ok(StatusCode::CREATED)
}

async fn update_payment(
    State(simulator): State<Simulator>,
    Path(payment_id): Path<String>,
    Json(json): Json<UpdatePaymentJson>,
) -> Result<Json<PaymentViewJson>, AdminError> {
    let payment_id = PaymentId::parse(&payment_id).map_err(SimError::from)?;
    let captured_amount = match &json.captured_amount {
        Some(captured) => Some(money("capturedAmount", captured)?),
        None => None,
    };
    let update = PaymentUpdate {
        captured_amount,
        chargeback: json.chargeback,
        cancelled: json.cancelled,
    };
    simulator.update_payment(&payment_id, update)?;
    payment_view(&simulator, &payment_id).map(Json)
}

async fn show_payment(
    State(simulator): State<Simulator>,
    Path(payment_id): Path<String>,
) -> Result<Json<PaymentViewJson>, AdminError> {
    let payment_id = PaymentId::parse(&payment_id).map_err(SimError::from)?;
    payment_view(&simulator, &payment_id).map(Json)
}

fn payment_view(simulator: &Simulator, payment_id: &PaymentId) -> Result<PaymentViewJson, AdminError> {
    let totals = simulator.totals(payment_id)?;
    let refunds = simulator
        .refunds_of(payment_id)
        .into_iter()
        .map(|refund| RefundViewJson {
            refund_request_id: refund.refund_request_id.to_string(),
            refund_id: refund.refund_id.to_string(),
            refund_amount: refund.refund_amount.into(),
            refund_status: refund.state.refund_status().to_owned(),
            refund_time: match refund.state {
                RefundState::Succeeded { refund_time } | RefundState::Failed { refund_time, .. } => {
                    Some(antom_time(refund_time))
                }
                RefundState::Processing { .. } => None,
            },
        })
        .collect();
    Ok(PaymentViewJson {
        payment_id: payment_id.to_string(),
        captured_minor_units: totals.captured_minor_units,
        succeeded_minor_units: totals.succeeded_minor_units,
        processing_minor_units: totals.processing_minor_units,
        refundable_minor_units: totals.refundable_minor_units,
        refunds,
    })
}

async fn show_faults(State(simulator): State<Simulator>) -> Json<FaultConfig> {
    Json(simulator.faults())
}

async fn set_faults(
    State(simulator): State<Simulator>,
    Json(faults): Json<FaultConfig>,
) -> Result<Json<FaultConfig>, AdminError> {
    simulator.set_faults(faults)?;
    Ok(Json(simulator.faults()))
}

async fn script_faults(
    State(simulator): State<Simulator>,
    Json(json): Json<ScriptJson>,
) -> Result<StatusCode, AdminError> {
    let calls = json
        .calls
        .iter()
        .map(|call| parse_fault_list(call))
        .collect::<Result<Vec<_>, _>>()?;
    simulator.script_faults(&json.refund_request_id, calls)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn show_notifications(State(simulator): State<Simulator>) -> impl IntoResponse {
    Json(simulator.notifications())
}

async fn settle(State(simulator): State<Simulator>) -> StatusCode {
    simulator.settle_due();
    StatusCode::NO_CONTENT
}

/// Query of the report endpoints: the generation, the settlement currency, and the discrepancies to inject
/// (comma-separated refundRequestIds).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReportQuery {
    generation: Option<String>,
    currency: Option<String>,
    drop: Option<String>,
    /// `R1` (100 minor units more) or `R1:-250`, comma-separated.
    change_amount: Option<String>,
    extra_refund: Option<String>,
    reverse: Option<String>,
    duplicate: Option<String>,
    /// `R1:FAIL`, `R2:SUCCESS`, `R3:PROCESSING`, comma-separated.
    status: Option<String>,
    /// `R1` (the settlement 1.00 off in minor units of 100) or `R1:-3`, comma-separated.
    settlement_off: Option<String>,
    /// `REFUND` or `TOTAL:250`, comma-separated: summary rows moved off the details.
    summary_off: Option<String>,
    #[serde(default)]
    truncate: bool,
}

impl ReportQuery {
    fn generation(&self) -> Result<Option<ReportGeneration>, SimError> {
        self.generation.as_deref().map(str::parse).transpose()
    }

    fn currency(&self) -> Result<Option<domain::Currency>, SimError> {
        let parse = |code: &str| domain::Currency::parse("currency", code).map_err(SimError::from);
        self.currency.as_deref().map(parse).transpose()
    }

    fn discrepancies(&self) -> Result<Discrepancies, SimError> {
        let list = |value: &Option<String>| -> Vec<String> {
            value
                .as_deref()
                .map(|ids| {
                    ids.split(',')
                        .map(str::trim)
                        .filter(|id| !id.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let discrepancies = Discrepancies {
            drop: list(&self.drop),
            change_amount: list(&self.change_amount)
                .iter()
                .map(|entry| Discrepancies::parse_change(entry))
                .collect::<Result<_, _>>()?,
            extra_refund: list(&self.extra_refund),
            reverse: list(&self.reverse),
            duplicate: list(&self.duplicate),
            status: list(&self.status)
                .iter()
                .map(|entry| Discrepancies::parse_status(entry))
                .collect::<Result<_, _>>()?,
            settlement_off: list(&self.settlement_off)
                .iter()
                .map(|entry| Discrepancies::parse_delta("settlementOff", "REFUND_REQUEST_ID", entry))
                .collect::<Result<_, _>>()?,
            summary_off: list(&self.summary_off)
                .iter()
                .map(|entry| Discrepancies::parse_delta("summaryOff", "SUMMARY_TYPE", entry))
                .collect::<Result<_, _>>()?,
            truncate: self.truncate,
        };
        discrepancies.validate()?;
        Ok(discrepancies)
    }
}

/// `yyyyMMdd` (Antom's directory form) or `yyyy-MM-dd`.
fn report_date(text: &str) -> Result<time::Date, SimError> {
    let compact = time::macros::format_description!("[year][month][day]");
    let dashed = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, compact)
        .or_else(|_| time::Date::parse(text, dashed))
        .map_err(|_| SimError::Report {
            reason: format!("date {text:?}: expected yyyyMMdd or yyyy-MM-dd"),
        })
}

fn csv_report(
    simulator: &Simulator,
    kind: ReportKind,
    date: &str,
    query: &ReportQuery,
) -> Result<Response, AdminError> {
    let file = simulator.report(
        kind,
        report_date(date)?,
        query.currency()?,
        query.generation()?,
        &query.discrepancies()?,
    )?;
    let disposition = format!("attachment; filename=\"{}\"", file.name);
    let headers = [
        (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
        (axum::http::header::CONTENT_DISPOSITION, disposition),
    ];
    Ok((headers, file.text).into_response())
}

async fn transaction_report(
    State(simulator): State<Simulator>,
    Path(date): Path<String>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, AdminError> {
    csv_report(&simulator, ReportKind::TransactionDetails, &date, &query)
}

async fn settlement_items(
    State(simulator): State<Simulator>,
    Path(date): Path<String>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, AdminError> {
    csv_report(&simulator, ReportKind::SettlementDetails, &date, &query)
}

async fn settlement_summary(
    State(simulator): State<Simulator>,
    Path(date): Path<String>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, AdminError> {
    csv_report(&simulator, ReportKind::SettlementSummary, &date, &query)
}

async fn write_report_files(
    State(simulator): State<Simulator>,
    Path(date): Path<String>,
    Query(query): Query<ReportQuery>,
) -> Result<Json<Vec<String>>, AdminError> {
    if query.currency.is_some() {
        return Err(SimError::Report {
            reason: "currency: files are written for every settlement currency of the day".to_owned(),
        }
        .into());
    }
    let paths = simulator.write_reports(report_date(&date)?, query.generation()?, &query.discrepancies()?)?;
    Ok(Json(paths.iter().map(|path| path.display().to_string()).collect()))
}
