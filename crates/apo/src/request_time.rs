//! `Request-Time` / `Response-Time` values. Antom's SDKs disagree (Java and
//! Go send epoch milliseconds, Python and PHP ISO-8601), so we send the
//! configured style and accept both when receiving. The header is signed
//! verbatim, so formatting happens once and the same string is sent and signed.

use time::OffsetDateTime;
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::macros::format_description;

/// How this adapter writes `Request-Time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestTimeStyle {
    /// Milliseconds since the Unix epoch, e.g. `1767225600123` (Java and Go SDKs).
    #[default]
    EpochMillis,
    /// ISO-8601 in UTC with a numeric offset, e.g. `2026-01-01T00:00:00+00:00` (Python SDK).
    Iso8601,
}

/// Formats `now` as a `Request-Time` header value.
pub fn format_request_time(style: RequestTimeStyle, now: OffsetDateTime) -> String {
    match style {
        RequestTimeStyle::EpochMillis => (now.unix_timestamp_nanos() / 1_000_000).to_string(),
        RequestTimeStyle::Iso8601 => {
            let format = format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
            );
            let utc = now.to_offset(time::UtcOffset::UTC);
            // The format has no component a valid OffsetDateTime cannot fill;
            // fall back to RFC 3339 rather than panic if that ever changes.
            utc.format(&format)
                .or_else(|_| utc.format(&Rfc3339))
                .unwrap_or_else(|_| (now.unix_timestamp_nanos() / 1_000_000).to_string())
        }
    }
}

/// Reads a `Request-Time` or `Response-Time` value: epoch milliseconds (all
/// digits) or ISO-8601 with an offset. `None` when it is neither.
pub fn parse_request_time(value: &str) -> Option<OffsetDateTime> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        let millis: i128 = value.parse().ok()?;
        return OffsetDateTime::from_unix_timestamp_nanos(millis.checked_mul(1_000_000)?).ok();
    }
    OffsetDateTime::parse(value, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(value, &Iso8601::DEFAULT))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_both_styles() {
        let now = OffsetDateTime::from_unix_timestamp_nanos(1_767_225_600_123_456_789).unwrap();
        assert_eq!(format_request_time(RequestTimeStyle::EpochMillis, now), "1767225600123");
        assert_eq!(
            format_request_time(RequestTimeStyle::Iso8601, now),
            "2026-01-01T00:00:00+00:00"
        );
        assert_eq!(RequestTimeStyle::default(), RequestTimeStyle::EpochMillis);
    }

    #[test]
    fn parses_both_styles() {
        let expected = OffsetDateTime::from_unix_timestamp(1_767_225_605).unwrap();
        assert_eq!(parse_request_time("2026-01-01T08:00:05+08:00"), Some(expected));
        assert_eq!(parse_request_time("1767225605000"), Some(expected));
        assert_eq!(parse_request_time("2026-01-01T00:00:05Z"), Some(expected));
        for style in [RequestTimeStyle::EpochMillis, RequestTimeStyle::Iso8601] {
            assert_eq!(
                parse_request_time(&format_request_time(style, expected)),
                Some(expected)
            );
        }
        for bad in [
            "",
            "soon",
            "-5",
            "99999999999999999999999999999999999999",
            "2026-13-01T00:00:00Z",
        ] {
            assert_eq!(parse_request_time(bad), None, "{bad:?}");
        }
    }
}
