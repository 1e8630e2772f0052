//! Conversion at the edge: Antom's wire values into domain values, each
//! failure naming the JSON field, so a bad response or notification says
//! exactly what was wrong without echoing the whole body into a log.

use domain::{Money, ResultCode, ResultStatus};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use time::format_description::well_known::{Iso8601, Rfc3339};

use crate::error::MalformedField;
use crate::wire::{AmountWire, ResultWire};

/// Antom's `result` object in domain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApoResult {
    /// `resultCode`; open set, unknown codes kept verbatim.
    pub code: ResultCode,
    /// `resultStatus`: what the ledger keys its decisions on.
    pub status: ResultStatus,
    /// `resultMessage`, free text (empty when absent).
    pub message: String,
}

/// Parses a JSON body into a wire struct; errors name the JSON path.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, MalformedField> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        // serde_path_to_error writes "?" when the error is before any field (broken JSON).
        let field = if path.is_empty() || path == "?" {
            ".".to_owned()
        } else {
            path
        };
        MalformedField::new(field, error.into_inner().to_string())
    })
}

pub(crate) fn parse_result(field: &str, wire: &ResultWire) -> Result<ApoResult, MalformedField> {
    let status = match wire.result_status.as_str() {
        "S" => ResultStatus::S,
        "F" => ResultStatus::F,
        "U" => ResultStatus::U,
        other => {
            return Err(MalformedField::new(
                format!("{field}.resultStatus"),
                format!("{other:?} is not S, F or U"),
            ));
        }
    };
    if wire.result_code.is_empty() {
        return Err(MalformedField::new(format!("{field}.resultCode"), "is empty"));
    }
    Ok(ApoResult {
        code: ResultCode::parse(&wire.result_code),
        status,
        message: wire.result_message.clone().unwrap_or_default(),
    })
}

pub(crate) fn parse_money(field: &str, wire: &AmountWire) -> Result<Money, MalformedField> {
    Money::parse(field, &wire.currency, &wire.value).map_err(MalformedField::from)
}

pub(crate) fn parse_optional_money(field: &str, wire: Option<&AmountWire>) -> Result<Option<Money>, MalformedField> {
    wire.map(|amount| parse_money(field, amount)).transpose()
}

pub(crate) fn required<'a, T>(field: &str, value: Option<&'a T>) -> Result<&'a T, MalformedField>
where
    T: ?Sized,
{
    value.ok_or_else(|| MalformedField::missing(field))
}

/// Parses an id with a domain `parse_field`-style constructor.
pub(crate) fn parse_id<T>(
    field: &str,
    value: Option<&str>,
    parse: fn(&str, &str) -> Result<T, domain::InputError>,
) -> Result<T, MalformedField> {
    let value = required(field, value)?;
    parse(field, value).map_err(MalformedField::from)
}

/// Parses an optional id; absent stays `None`, present must be valid.
pub(crate) fn parse_optional_id<T>(
    field: &str,
    value: Option<&str>,
    parse: fn(&str, &str) -> Result<T, domain::InputError>,
) -> Result<Option<T>, MalformedField> {
    value
        .map(|value| parse(field, value).map_err(MalformedField::from))
        .transpose()
}

/// Antom's times are ISO-8601 with an offset (`2026-01-01T08:00:01+08:00`).
pub(crate) fn parse_time(field: &str, value: &str) -> Result<OffsetDateTime, MalformedField> {
    OffsetDateTime::parse(value, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(value, &Iso8601::DEFAULT))
        .map_err(|_| MalformedField::new(field, format!("{value:?} is not an ISO-8601 time with an offset")))
}

pub(crate) fn parse_optional_time(field: &str, value: Option<&str>) -> Result<Option<OffsetDateTime>, MalformedField> {
    value.map(|value| parse_time(field, value)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::RefundResponseWire;

    #[test]
    fn json_errors_name_the_path() {
        let error = parse_json::<RefundResponseWire>(
            br#"{"result":{"resultCode":"SUCCESS","resultStatus":"S"},"refundAmount":{"currency":"USD","value":1000}}"#,
        )
        .unwrap_err();
        assert_eq!(error.field, "refundAmount.value");
        let error = parse_json::<RefundResponseWire>(br#"{"refundId":"x"}"#).unwrap_err();
        assert_eq!(error.field, ".");
        assert!(error.reason.contains("result"), "{error}");
        let error = parse_json::<RefundResponseWire>(b"<html>").unwrap_err();
        assert_eq!(error.field, ".");
        let error = parse_json::<RefundResponseWire>(b"{not json").unwrap_err();
        assert_eq!(error.field, ".");
    }

    #[test]
    fn results_and_times() {
        let wire = ResultWire {
            result_code: "NEW_CODE".into(),
            result_status: "F".into(),
            result_message: None,
        };
        let result = parse_result("result", &wire).unwrap();
        assert_eq!(result.code, ResultCode::Other("NEW_CODE".into()));
        assert_eq!(result.status, ResultStatus::F);
        let bad = ResultWire {
            result_status: "X".into(),
            ..wire.clone()
        };
        assert_eq!(parse_result("result", &bad).unwrap_err().field, "result.resultStatus");
        let empty = ResultWire {
            result_code: String::new(),
            ..wire
        };
        assert_eq!(parse_result("result", &empty).unwrap_err().field, "result.resultCode");

        let time = parse_time("refundTime", "2026-01-01T08:00:01+08:00").unwrap();
        assert_eq!(time.unix_timestamp(), 1_767_225_601);
        assert_eq!(parse_time("refundTime", "2026-01-01T00:00:01Z").unwrap(), time);
        assert_eq!(parse_time("refundTime", "2026-01-01T00:00:01.000Z").unwrap(), time);
        assert_eq!(parse_time("refundTime", "yesterday").unwrap_err().field, "refundTime");
    }

    #[test]
    fn money_errors_name_the_wire_field() {
        let wire = AmountWire {
            currency: "USD".into(),
            value: "-1".into(),
        };
        let error = parse_money("refundAmount", &wire).unwrap_err();
        assert_eq!(error.field, "refundAmount.value");
        assert!(!error.reason.starts_with("refundAmount"), "{error}");
    }
}
