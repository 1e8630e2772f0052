//! What the SQLite and PostgreSQL backends share: the stored form of the rows, the conversions between rows
//! and that form, and the SQL of the queries, written once with the placeholder syntax of each dialect.
//!
//! Stored form: amounts are integer minor units beside a currency code (never floats), times are integer
//! nanoseconds since the Unix epoch in UTC (exact, and ordered the same in both databases; PostgreSQL's
//! `TIMESTAMPTZ` would cut nanoseconds and break cursors), dates are ISO `YYYY-MM-DD` text, statuses are their
//! upper-case codes. Both backends read and write rows through [`PaymentRecord`] and [`RefundRecord`], so the
//! parsing that guards against a corrupt row exists once.

use std::collections::BTreeMap;

use domain::{
    ChargebackResolution, Currency, DisputeId, Money, PaymentId, PaymentMethodType, RefundId, RefundRequestId,
    ResultCode,
};
use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime};

use crate::error::ProjectionError;
use crate::fold::{DailyDelta, DailyKey, Dispute, PaymentRow, parse_refund_status, refund_status_code};
use crate::model::{
    CursorKind, DailyTotal, Keyset, OPEN_REFUND_AGE_BOUNDS_SECONDS, OpenRefundAges, OpenRefundStats, PAGE_SIZE_MAX,
    Page, PaymentFilter, RefundFilter, RefundView,
};

/// Columns of `projection_payments` in the order [`PaymentRecord`] reads and writes them.
pub(crate) const PAYMENT_COLUMNS: &str = "payment_id, currency, payment_amount, payment_method_type, payment_time_ns, \
     capture_required, captured, refunded, pending, charged_back, refundable, status, open_chargeback, disputes, \
     refund_count, last_position, updated_at_ns";

/// Columns of `projection_refunds` in the order [`RefundRecord`] reads and writes them.
pub(crate) const REFUND_COLUMNS: &str = "refund_request_id, payment_id, currency, refund_amount, refund_reason, \
     status, result_code, result_message, refund_id, requested_at_ns, settled_at_ns, requested_by, anomaly_count, \
     last_position, updated_at_ns";

/// Columns of `projection_daily_totals` as [`DailyRecord`] reads them.
pub(crate) const DAILY_COLUMNS: &str = "date, currency, status, count, amount";

/// A payment row in its stored form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PaymentRecord {
    pub(crate) payment_id: String,
    pub(crate) currency: String,
    pub(crate) payment_amount: i64,
    pub(crate) payment_method_type: String,
    pub(crate) payment_time_ns: i64,
    pub(crate) capture_required: bool,
    pub(crate) captured: i64,
    pub(crate) refunded: i64,
    pub(crate) pending: i64,
    pub(crate) charged_back: i64,
    pub(crate) refundable: i64,
    pub(crate) status: String,
    pub(crate) open_chargeback: bool,
    pub(crate) disputes: String,
    pub(crate) refund_count: i64,
    pub(crate) last_position: i64,
    pub(crate) updated_at_ns: i64,
}

/// A refund row in its stored form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefundRecord {
    pub(crate) refund_request_id: String,
    pub(crate) payment_id: String,
    pub(crate) currency: String,
    pub(crate) refund_amount: i64,
    pub(crate) refund_reason: Option<String>,
    pub(crate) status: String,
    pub(crate) result_code: Option<String>,
    pub(crate) result_message: Option<String>,
    pub(crate) refund_id: Option<String>,
    pub(crate) requested_at_ns: i64,
    pub(crate) settled_at_ns: Option<i64>,
    pub(crate) requested_by: String,
    pub(crate) anomaly_count: i64,
    pub(crate) last_position: i64,
    pub(crate) updated_at_ns: i64,
}

/// A daily total in its stored form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DailyRecord {
    pub(crate) date: String,
    pub(crate) currency: String,
    pub(crate) status: String,
    pub(crate) count: i64,
    pub(crate) amount: i64,
}

/// One dispute inside the `disputes` JSON column.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredDispute {
    dispute_id: DisputeId,
    dispute_amount: u64,
    resolution: Option<ChargebackResolution>,
}

/// Nanoseconds since the epoch of a time a row stores; a time outside 1677..2262 cannot be stored.
pub(crate) fn time_to_ns(position: u64, field: &str, time: OffsetDateTime) -> Result<i64, ProjectionError> {
    i64::try_from(time.unix_timestamp_nanos()).map_err(|_| ProjectionError::Inconsistent {
        position,
        reason: format!("{field} {time} is outside the storable range"),
    })
}

/// Nanoseconds of a filter bound, saturated to the storable range (a bound outside it filters nothing more).
pub(crate) fn bound_to_ns(time: OffsetDateTime) -> i64 {
    let nanos = time.unix_timestamp_nanos();
    i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX })
}

/// The ISO date text of a daily total.
pub(crate) fn date_text(date: Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

pub(crate) fn position_i64(position: u64) -> i64 {
    // Positions count events; they stay far below 2^63.
    i64::try_from(position).unwrap_or(i64::MAX)
}

fn minor_i64(money: Money) -> i64 {
    // Money holds at most MINOR_UNITS_MAX (< 2^54).
    i64::try_from(money.minor_units()).unwrap_or(i64::MAX)
}

/// Reads stored values back, naming the row in every error.
pub(crate) struct RowReader<'a> {
    pub(crate) table: &'static str,
    pub(crate) key: &'a str,
}

impl RowReader<'_> {
    pub(crate) fn corrupt(&self, reason: impl Into<String>) -> ProjectionError {
        ProjectionError::CorruptRow {
            table: self.table,
            key: self.key.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn currency(&self, code: &str) -> Result<Currency, ProjectionError> {
        Currency::parse("currency", code).map_err(|error| self.corrupt(error.to_string()))
    }

    pub(crate) fn money(&self, field: &str, currency: Currency, minor_units: i64) -> Result<Money, ProjectionError> {
        let minor_units = u64::try_from(minor_units).map_err(|_| self.corrupt(format!("{field} is negative")))?;
        Money::from_minor_units(field, currency, minor_units).map_err(|error| self.corrupt(error.to_string()))
    }

    pub(crate) fn time(&self, field: &str, nanos: i64) -> Result<OffsetDateTime, ProjectionError> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
            .map_err(|_| self.corrupt(format!("{field} is out of range")))
    }

    pub(crate) fn unsigned(&self, field: &str, value: i64) -> Result<u64, ProjectionError> {
        u64::try_from(value).map_err(|_| self.corrupt(format!("{field} is negative")))
    }

    pub(crate) fn count(&self, field: &str, value: i64) -> Result<u32, ProjectionError> {
        u32::try_from(value).map_err(|_| self.corrupt(format!("{field} is out of range")))
    }

    pub(crate) fn id<T>(
        &self,
        parse: fn(&str) -> Result<T, domain::InputError>,
        value: &str,
    ) -> Result<T, ProjectionError> {
        parse(value).map_err(|error| self.corrupt(error.to_string()))
    }
}

impl PaymentRecord {
    /// The stored form of `row`.
    pub(crate) fn from_row(row: &PaymentRow) -> Result<PaymentRecord, ProjectionError> {
        let disputes: Vec<StoredDispute> = row
            .disputes
            .iter()
            .map(|(dispute_id, dispute)| StoredDispute {
                dispute_id: dispute_id.clone(),
                dispute_amount: dispute.dispute_amount.minor_units(),
                resolution: dispute.resolution,
            })
            .collect();
        let disputes = serde_json::to_string(&disputes).map_err(|error| ProjectionError::Inconsistent {
            position: row.last_position,
            reason: format!("disputes of {} do not serialize: {error}", row.payment_id),
        })?;
        Ok(PaymentRecord {
            payment_id: row.payment_id.to_string(),
            currency: row.payment_amount.currency().code().to_owned(),
            payment_amount: minor_i64(row.payment_amount),
            payment_method_type: row.payment_method_type.to_string(),
            payment_time_ns: time_to_ns(row.last_position, "paymentTime", row.payment_time)?,
            capture_required: row.capture_required,
            captured: minor_i64(row.captured),
            refunded: minor_i64(row.refunded),
            pending: minor_i64(row.pending),
            charged_back: minor_i64(row.charged_back),
            refundable: minor_i64(row.refundable()),
            status: row.status().as_str().to_owned(),
            open_chargeback: row.open_chargeback(),
            disputes,
            refund_count: i64::from(row.refund_count),
            last_position: position_i64(row.last_position),
            updated_at_ns: time_to_ns(row.last_position, "recordedAt", row.updated_at)?,
        })
    }

    /// The row this record stores.
    pub(crate) fn into_row(self) -> Result<PaymentRow, ProjectionError> {
        let reader = RowReader {
            table: "projection_payments",
            key: &self.payment_id,
        };
        let currency = reader.currency(&self.currency)?;
        let stored: Vec<StoredDispute> =
            serde_json::from_str(&self.disputes).map_err(|error| reader.corrupt(format!("disputes: {error}")))?;
        let mut disputes = BTreeMap::new();
        for dispute in stored {
            let dispute_amount = i64::try_from(dispute.dispute_amount).unwrap_or(i64::MAX);
            let value = Dispute {
                dispute_amount: reader.money("disputeAmount", currency, dispute_amount)?,
                resolution: dispute.resolution,
            };
            disputes.insert(dispute.dispute_id, value);
        }
        Ok(PaymentRow {
            payment_id: reader.id(PaymentId::parse, &self.payment_id)?,
            payment_amount: reader.money("paymentAmount", currency, self.payment_amount)?,
            payment_method_type: reader.id(PaymentMethodType::parse, &self.payment_method_type)?,
            payment_time: reader.time("paymentTime", self.payment_time_ns)?,
            capture_required: self.capture_required,
            captured: reader.money("captured", currency, self.captured)?,
            refunded: reader.money("refunded", currency, self.refunded)?,
            pending: reader.money("pending", currency, self.pending)?,
            charged_back: reader.money("chargedBack", currency, self.charged_back)?,
            disputes,
            refund_count: reader.count("refundCount", self.refund_count)?,
            last_position: reader.unsigned("lastPosition", self.last_position)?,
            updated_at: reader.time("updatedAt", self.updated_at_ns)?,
        })
    }
}

impl RefundRecord {
    /// The stored form of `refund`.
    pub(crate) fn from_view(refund: &RefundView) -> Result<RefundRecord, ProjectionError> {
        let position = refund.last_position;
        Ok(RefundRecord {
            refund_request_id: refund.refund_request_id.to_string(),
            payment_id: refund.payment_id.to_string(),
            currency: refund.refund_amount.currency().code().to_owned(),
            refund_amount: minor_i64(refund.refund_amount),
            refund_reason: refund.refund_reason.clone(),
            status: refund_status_code(refund.status).to_owned(),
            result_code: refund.result_code.as_ref().map(|code| code.as_str().to_owned()),
            result_message: refund.result_message.clone(),
            refund_id: refund.refund_id.as_ref().map(ToString::to_string),
            requested_at_ns: time_to_ns(position, "requestedAt", refund.requested_at)?,
            settled_at_ns: refund
                .settled_at
                .map(|settled_at| time_to_ns(position, "settledAt", settled_at))
                .transpose()?,
            requested_by: refund.requested_by.clone(),
            anomaly_count: i64::from(refund.anomaly_count),
            last_position: position_i64(position),
            updated_at_ns: time_to_ns(position, "recordedAt", refund.updated_at)?,
        })
    }

    /// The refund this record stores.
    pub(crate) fn into_view(self) -> Result<RefundView, ProjectionError> {
        let reader = RowReader {
            table: "projection_refunds",
            key: &self.refund_request_id,
        };
        let currency = reader.currency(&self.currency)?;
        let status = parse_refund_status(&self.status)
            .ok_or_else(|| reader.corrupt(format!("unknown status {:?}", self.status)))?;
        Ok(RefundView {
            refund_request_id: reader.id(RefundRequestId::parse, &self.refund_request_id)?,
            payment_id: reader.id(PaymentId::parse, &self.payment_id)?,
            refund_amount: reader.money("refundAmount", currency, self.refund_amount)?,
            refund_reason: self.refund_reason,
            status,
            result_code: self.result_code.as_deref().map(ResultCode::parse),
            result_message: self.result_message,
            refund_id: self
                .refund_id
                .as_deref()
                .map(|refund_id| reader.id(RefundId::parse, refund_id))
                .transpose()?,
            requested_at: reader.time("requestedAt", self.requested_at_ns)?,
            settled_at: self
                .settled_at_ns
                .map(|nanos| reader.time("settledAt", nanos))
                .transpose()?,
            requested_by: self.requested_by,
            anomaly_count: reader.count("anomalyCount", self.anomaly_count)?,
            last_position: reader.unsigned("lastPosition", self.last_position)?,
            updated_at: reader.time("updatedAt", self.updated_at_ns)?,
        })
    }
}

impl DailyRecord {
    /// The stored form of a delta's key, with the delta as count and amount.
    pub(crate) fn from_delta(key: &DailyKey, delta: &DailyDelta) -> DailyRecord {
        DailyRecord {
            date: date_text(key.date),
            currency: key.currency.code().to_owned(),
            status: refund_status_code(key.status.0).to_owned(),
            count: delta.count,
            amount: delta.amount_minor_units,
        }
    }

    /// The total this record stores.
    pub(crate) fn into_total(self) -> Result<DailyTotal, ProjectionError> {
        let key = format!("{}/{}/{}", self.date, self.currency, self.status);
        let reader = RowReader {
            table: "projection_daily_totals",
            key: &key,
        };
        let currency = reader.currency(&self.currency)?;
        Ok(DailyTotal {
            date: parse_date(&self.date).ok_or_else(|| reader.corrupt("date is not YYYY-MM-DD"))?,
            currency,
            status: parse_refund_status(&self.status)
                .ok_or_else(|| reader.corrupt(format!("unknown status {:?}", self.status)))?,
            count: reader.unsigned("count", self.count)?,
            amount: reader.money("amount", currency, self.amount)?,
        })
    }
}

fn parse_date(text: &str) -> Option<Date> {
    let mut parts = text.splitn(3, '-');
    let year = parts.next()?.parse::<i32>().ok()?;
    let month = Month::try_from(parts.next()?.parse::<u8>().ok()?).ok()?;
    let day = parts.next()?.parse::<u8>().ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

/// A bound query parameter; each backend converts it to its driver's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    Text(String),
    Integer(i64),
}

/// The placeholder syntax of a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `?1`, `?2`, ...
    Sqlite,
    /// `$1`, `$2`, ...
    Postgres,
}

/// A statement with its parameters, built for one dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Query {
    pub(crate) sql: String,
    pub(crate) params: Vec<Param>,
}

/// Builds the conjunction of conditions of a list query.
pub(crate) struct Conditions {
    dialect: Dialect,
    clauses: Vec<String>,
    params: Vec<Param>,
}

impl Conditions {
    pub(crate) fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            clauses: Vec::new(),
            params: Vec::new(),
        }
    }

    /// The placeholder of a new parameter.
    fn bind(&mut self, param: Param) -> String {
        self.params.push(param);
        match self.dialect {
            Dialect::Sqlite => format!("?{}", self.params.len()),
            Dialect::Postgres => format!("${}", self.params.len()),
        }
    }

    /// Adds `column op parameter`.
    pub(crate) fn compare(&mut self, column: &str, op: &str, param: Param) {
        let placeholder = self.bind(param);
        self.clauses.push(format!("{column} {op} {placeholder}"));
    }

    /// Adds `(time_column, id_column) > (keyset)`.
    pub(crate) fn after(&mut self, time_column: &str, id_column: &str, keyset: Keyset) {
        let time = self.bind(Param::Integer(keyset.time_ns));
        let id = self.bind(Param::Text(keyset.id));
        self.clauses
            .push(format!("({time_column}, {id_column}) > ({time}, {id})"));
    }

    pub(crate) fn into_query(mut self, select: &str, order_and_limit: impl FnOnce(&mut Self) -> String) -> Query {
        let tail = order_and_limit(&mut self);
        let filter = if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        };
        Query {
            sql: format!("{select}{filter}{tail}"),
            params: self.params,
        }
    }
}

/// Refuses a page larger than [`PAGE_SIZE_MAX`].
pub(crate) fn check_page_size(requested: usize) -> Result<(), ProjectionError> {
    if requested > PAGE_SIZE_MAX {
        return Err(ProjectionError::PageSizeTooLarge {
            requested,
            max: PAGE_SIZE_MAX,
        });
    }
    Ok(())
}

pub(crate) fn limit_clause(conditions: &mut Conditions, limit: usize) -> String {
    // Bounded by PAGE_SIZE_MAX + 1.
    let limit = conditions.bind(Param::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    format!(" LIMIT {limit}")
}

/// One page of payments: `first + 1` rows so the caller learns whether a next page exists.
pub(crate) fn payments_page(dialect: Dialect, filter: &PaymentFilter, after: Option<Keyset>, first: usize) -> Query {
    let mut conditions = Conditions::new(dialect);
    if let Some(currency) = filter.currency {
        conditions.compare("currency", "=", Param::Text(currency.code().to_owned()));
    }
    if let Some(status) = filter.status {
        conditions.compare("status", "=", Param::Text(status.as_str().to_owned()));
    }
    if let Some(paid_from) = filter.paid_from {
        conditions.compare("payment_time_ns", ">=", Param::Integer(bound_to_ns(paid_from)));
    }
    if let Some(paid_to) = filter.paid_to {
        conditions.compare("payment_time_ns", "<", Param::Integer(bound_to_ns(paid_to)));
    }
    if let Some(keyset) = after {
        conditions.after("payment_time_ns", "payment_id", keyset);
    }
    let select = format!("SELECT {PAYMENT_COLUMNS} FROM projection_payments");
    conditions.into_query(&select, |conditions| {
        format!(
            " ORDER BY payment_time_ns, payment_id{}",
            limit_clause(conditions, first + 1)
        )
    })
}

/// One page of refunds: `first + 1` rows so the caller learns whether a next page exists.
pub(crate) fn refunds_page(dialect: Dialect, filter: &RefundFilter, after: Option<Keyset>, first: usize) -> Query {
    let mut conditions = Conditions::new(dialect);
    if let Some(payment_id) = &filter.payment_id {
        conditions.compare("payment_id", "=", Param::Text(payment_id.to_string()));
    }
    if let Some(status) = filter.status {
        conditions.compare("status", "=", Param::Text(refund_status_code(status).to_owned()));
    }
    if let Some(currency) = filter.currency {
        conditions.compare("currency", "=", Param::Text(currency.code().to_owned()));
    }
    if let Some(requested_from) = filter.requested_from {
        conditions.compare("requested_at_ns", ">=", Param::Integer(bound_to_ns(requested_from)));
    }
    if let Some(requested_to) = filter.requested_to {
        conditions.compare("requested_at_ns", "<", Param::Integer(bound_to_ns(requested_to)));
    }
    if let Some(keyset) = after {
        conditions.after("requested_at_ns", "refund_request_id", keyset);
    }
    let select = format!("SELECT {REFUND_COLUMNS} FROM projection_refunds");
    conditions.into_query(&select, |conditions| {
        format!(
            " ORDER BY requested_at_ns, refund_request_id{}",
            limit_clause(conditions, first + 1)
        )
    })
}

/// The settle worker's work list.
pub(crate) fn open_refunds(dialect: Dialect, requested_before: OffsetDateTime, limit: usize) -> Query {
    open_refunds_after(dialect, requested_before, None, limit)
}

/// The open refunds behind `after` (a refunds cursor's keyset), at most `limit`.
pub(crate) fn open_refunds_after(
    dialect: Dialect,
    requested_before: OffsetDateTime,
    after: Option<Keyset>,
    limit: usize,
) -> Query {
    let mut conditions = Conditions::new(dialect);
    if let Some(keyset) = after {
        conditions.after("requested_at_ns", "refund_request_id", keyset);
    }
    let requested = conditions.bind(Param::Text(
        refund_status_code(domain::RefundStatus::Requested).to_owned(),
    ));
    let processing = conditions.bind(Param::Text(
        refund_status_code(domain::RefundStatus::Processing).to_owned(),
    ));
    conditions
        .clauses
        .push(format!("status IN ({requested}, {processing})"));
    conditions.compare("requested_at_ns", "<", Param::Integer(bound_to_ns(requested_before)));
    let select = format!("SELECT {REFUND_COLUMNS} FROM projection_refunds");
    conditions.into_query(&select, |conditions| {
        format!(
            " ORDER BY requested_at_ns, refund_request_id{}",
            limit_clause(conditions, limit)
        )
    })
}

/// Open refunds by state as of `now`: one row per open state that has refunds ([`OpenRefundRow`]'s columns).
/// The status index (`status, requested_at_ns, ...`) covers it, so it reads only the open refunds' entries.
pub(crate) fn open_refund_stats(dialect: Dialect, now: OffsetDateTime) -> Query {
    let mut conditions = Conditions::new(dialect);
    let requested = conditions.bind(Param::Text(
        refund_status_code(domain::RefundStatus::Requested).to_owned(),
    ));
    let processing = conditions.bind(Param::Text(
        refund_status_code(domain::RefundStatus::Processing).to_owned(),
    ));
    let mut columns = vec![
        "status".to_owned(),
        "COUNT(*)".to_owned(),
        "MIN(requested_at_ns)".to_owned(),
    ];
    for bound in OPEN_REFUND_AGE_BOUNDS_SECONDS {
        let since = now
            .checked_sub(time::Duration::seconds(i64::try_from(bound).unwrap_or(i64::MAX)))
            .unwrap_or(now);
        let since = conditions.bind(Param::Integer(bound_to_ns(since)));
        columns.push(format!("SUM(CASE WHEN requested_at_ns > {since} THEN 1 ELSE 0 END)"));
    }
    Query {
        sql: format!(
            "SELECT {} FROM projection_refunds WHERE status IN ({requested}, {processing}) GROUP BY status",
            columns.join(", ")
        ),
        params: conditions.params,
    }
}

/// A row of [`open_refund_stats`]: the state, how many, the oldest request time, and for each age bound how many
/// are younger than it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenRefundRow {
    pub(crate) status: String,
    pub(crate) count: i64,
    pub(crate) oldest_requested_at_ns: i64,
    pub(crate) younger_than: [i64; OPEN_REFUND_AGE_BOUNDS_SECONDS.len()],
}

/// The statistics the rows of [`open_refund_stats`] describe.
pub(crate) fn open_refund_stats_of(rows: &[OpenRefundRow]) -> Result<OpenRefundStats, ProjectionError> {
    let mut stats = OpenRefundStats::default();
    for row in rows {
        let reader = RowReader {
            table: "projection_refunds",
            key: &row.status,
        };
        let ages = match parse_refund_status(&row.status) {
            Some(domain::RefundStatus::Requested) => &mut stats.requested,
            Some(domain::RefundStatus::Processing) => &mut stats.processing,
            _ => return Err(reader.corrupt("an open-refund count of a status that is not open")),
        };
        let count = reader.unsigned("count", row.count)?;
        let mut counts = [0_u64; OPEN_REFUND_AGE_BOUNDS_SECONDS.len() + 1];
        let mut previous = 0_u64;
        for (bucket, younger) in row.younger_than.iter().enumerate() {
            let younger = reader.unsigned("count by age", *younger)?;
            counts[bucket] = younger
                .checked_sub(previous)
                .ok_or_else(|| reader.corrupt("counts by age do not grow with the age"))?;
            previous = younger;
        }
        counts[OPEN_REFUND_AGE_BOUNDS_SECONDS.len()] = count
            .checked_sub(previous)
            .ok_or_else(|| reader.corrupt("more refunds by age than in all"))?;
        *ages = OpenRefundAges {
            counts,
            oldest_requested_at: Some(reader.time("requested_at", row.oldest_requested_at_ns)?),
        };
    }
    Ok(stats)
}

/// Daily totals of `from..=to`.
pub(crate) fn daily_totals(dialect: Dialect, from: Date, to: Date, currency: Option<Currency>) -> Query {
    let mut conditions = Conditions::new(dialect);
    conditions.compare("date", ">=", Param::Text(date_text(from)));
    conditions.compare("date", "<=", Param::Text(date_text(to)));
    if let Some(currency) = currency {
        conditions.compare("currency", "=", Param::Text(currency.code().to_owned()));
    }
    conditions.clauses.push("count <> 0".to_owned());
    let select = format!("SELECT {DAILY_COLUMNS} FROM projection_daily_totals");
    conditions.into_query(&select, |_| " ORDER BY date, currency, status".to_owned())
}

/// Upsert of a payment row; parameters in [`PAYMENT_COLUMNS`] order.
pub(crate) fn upsert_payment_sql(dialect: Dialect) -> String {
    upsert_sql(dialect, "projection_payments", PAYMENT_COLUMNS, "payment_id")
}

/// Upsert of a refund row; parameters in [`REFUND_COLUMNS`] order.
pub(crate) fn upsert_refund_sql(dialect: Dialect) -> String {
    upsert_sql(dialect, "projection_refunds", REFUND_COLUMNS, "refund_request_id")
}

/// Adds a delta to a daily total; parameters in [`DAILY_COLUMNS`] order.
pub(crate) fn add_daily_sql(dialect: Dialect) -> String {
    let placeholders = placeholders(dialect, 5);
    format!(
        "INSERT INTO projection_daily_totals ({DAILY_COLUMNS}) VALUES ({placeholders}) \
         ON CONFLICT (date, currency, status) DO UPDATE SET \
         count = projection_daily_totals.count + excluded.count, \
         amount = projection_daily_totals.amount + excluded.amount"
    )
}

pub(crate) fn placeholders(dialect: Dialect, count: usize) -> String {
    (1..=count)
        .map(|index| match dialect {
            Dialect::Sqlite => format!("?{index}"),
            Dialect::Postgres => format!("${index}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn upsert_sql(dialect: Dialect, table: &str, columns: &str, key: &str) -> String {
    let names: Vec<&str> = columns.split(',').map(str::trim).collect();
    let updates = names
        .iter()
        .filter(|name| **name != key)
        .map(|name| format!("{name} = excluded.{name}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO {table} ({columns}) VALUES ({}) ON CONFLICT ({key}) DO UPDATE SET {updates}",
        placeholders(dialect, names.len())
    )
}

/// Splits a fetched `first + 1` rows into a page.
pub(crate) fn into_page<T>(
    mut rows: Vec<T>,
    first: usize,
    kind: CursorKind,
    key: impl Fn(&T) -> (OffsetDateTime, String),
) -> crate::model::Page<T> {
    let has_next_page = rows.len() > first;
    rows.truncate(first);
    let items = rows
        .into_iter()
        .map(|row| {
            let (time, id) = key(&row);
            (crate::model::Cursor::encode(kind, bound_to_ns(time), &id), row)
        })
        .collect();
    crate::model::Page { items, has_next_page }
}

/// Splits fetched refund rows (`first + 1` records) into a page of the refunds list.
pub(crate) fn refund_page(records: Vec<RefundRecord>, first: usize) -> Result<Page<RefundView>, ProjectionError> {
    let views = records
        .into_iter()
        .map(RefundRecord::into_view)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(into_page(views, first, CursorKind::Refund, |view| {
        (view.requested_at, view.refund_request_id.to_string())
    }))
}

/// The keyset of an `after` cursor for list `kind`.
pub(crate) fn keyset(
    after: Option<&crate::model::Cursor>,
    kind: CursorKind,
) -> Result<Option<Keyset>, ProjectionError> {
    after.map(|cursor| cursor.decode(kind)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_as_iso_text() {
        let date = Date::from_calendar_date(2026, Month::February, 3).unwrap();
        assert_eq!(date_text(date), "2026-02-03");
        assert_eq!(parse_date("2026-02-03"), Some(date));
        assert_eq!(parse_date("2026-02-30"), None);
        assert_eq!(parse_date("x"), None);
    }

    #[test]
    fn queries_number_their_placeholders_per_dialect() {
        let filter = PaymentFilter {
            currency: Some(Currency::parse("currency", "USD").unwrap()),
            ..PaymentFilter::default()
        };
        let keyset = Keyset {
            time_ns: 7,
            id: "p1".into(),
        };
        let query = payments_page(Dialect::Postgres, &filter, Some(keyset.clone()), 10);
        assert!(query.sql.contains("currency = $1"), "{}", query.sql);
        assert!(
            query.sql.contains("(payment_time_ns, payment_id) > ($2, $3)"),
            "{}",
            query.sql
        );
        assert!(query.sql.ends_with("LIMIT $4"), "{}", query.sql);
        assert_eq!(query.params.last(), Some(&Param::Integer(11)));
        let query = payments_page(Dialect::Sqlite, &filter, Some(keyset), 10);
        assert!(query.sql.contains("currency = ?1"), "{}", query.sql);
        assert!(upsert_refund_sql(Dialect::Sqlite).contains("?15)"));
        assert!(upsert_payment_sql(Dialect::Postgres).contains("$17)"));
    }
}
