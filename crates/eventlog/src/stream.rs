//! Streams: validated stream names, and the revision an append expects a stream to be at.
//!
//! A stream name reaches SQL text columns, log lines and KurrentDB, so it is parsed once at the edge into a
//! type that is valid by construction: 1..=200 bytes of printable ASCII, no spaces.

use std::fmt;

/// Longest accepted stream name, in bytes.
pub const STREAM_NAME_BYTES_MAX: usize = 200;

/// How much of a rejected name an error message repeats, in bytes.
const REJECTED_NAME_ECHO_BYTES_MAX: usize = 64;

/// The name of one event stream, e.g. `payment-20240101000001`.
///
/// Valid by construction: 1..=[`STREAM_NAME_BYTES_MAX`] bytes, each a printable ASCII character other than
/// space (`'!'..='~'`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamName(String);

impl StreamName {
    /// Parses `name`, refusing empty, over-long and non-printable names with [`InvalidStreamName`] (which
    /// converts into [`crate::StoreError::InvalidStreamName`]).
    pub fn parse(name: impl Into<String>) -> Result<Self, InvalidStreamName> {
        let name = name.into();
        match name_problem(&name) {
            None => Ok(Self(name)),
            Some(reason) => Err(InvalidStreamName {
                name: echo(&name),
                reason,
            }),
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` would parse, without making a `StreamName` of it.
    pub(crate) fn is_valid(name: &str) -> bool {
        name_problem(name).is_none()
    }
}

/// The rule `name` breaks, if any.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("empty")
    } else if name.len() > STREAM_NAME_BYTES_MAX {
        Some("longer than 200 bytes")
    } else if !name.bytes().all(|byte| byte.is_ascii_graphic()) {
        Some("not printable ascii without spaces")
    } else {
        None
    }
}

/// A stream name failed validation. Fix the input; retrying the same name fails the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stream name {name:?} is invalid: {reason}")]
pub struct InvalidStreamName {
    /// The rejected name, cut to its first 64 bytes.
    pub name: String,
    /// Which rule it broke.
    pub reason: &'static str,
}

/// The first bytes of a rejected name, cut on a character boundary, for the error message.
fn echo(name: &str) -> String {
    let mut end = name.len().min(REJECTED_NAME_ECHO_BYTES_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

impl fmt::Display for StreamName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for StreamName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, formatter)
    }
}

impl AsRef<str> for StreamName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for StreamName {
    type Error = InvalidStreamName;

    fn try_from(name: &str) -> Result<Self, Self::Error> {
        Self::parse(name)
    }
}

/// The stream revision an append expects to find, checked atomically with the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectedRevision {
    /// Append whatever the stream holds (or create it).
    Any,
    /// The stream must not exist yet: its first event gets revision 0.
    NoStream,
    /// The stream's last event must have exactly this revision.
    Exact(u64),
}

impl ExpectedRevision {
    /// Whether a stream whose last revision is `actual` (`None`: no stream) satisfies this expectation.
    pub fn is_satisfied_by(self, actual: Option<u64>) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual.is_none(),
            Self::Exact(expected) => actual == Some(expected),
        }
    }
}

impl fmt::Display for ExpectedRevision {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => formatter.write_str("any"),
            Self::NoStream => formatter.write_str("none (no stream)"),
            Self::Exact(revision) => write!(formatter, "{revision}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_payment_stream_names_and_the_length_limit() {
        assert_eq!(
            StreamName::parse("payment-20240101")
                .map(|name| name.to_string())
                .ok()
                .as_deref(),
            Some("payment-20240101")
        );
        assert!(StreamName::parse("x".repeat(STREAM_NAME_BYTES_MAX)).is_ok());
        assert!(StreamName::parse("a").is_ok());
    }

    #[test]
    fn expected_revision_rules() {
        assert!(ExpectedRevision::Any.is_satisfied_by(None));
        assert!(ExpectedRevision::Any.is_satisfied_by(Some(3)));
        assert!(ExpectedRevision::NoStream.is_satisfied_by(None));
        assert!(!ExpectedRevision::NoStream.is_satisfied_by(Some(0)));
        assert!(ExpectedRevision::Exact(3).is_satisfied_by(Some(3)));
        assert!(!ExpectedRevision::Exact(3).is_satisfied_by(Some(2)));
        assert!(!ExpectedRevision::Exact(0).is_satisfied_by(None));
    }

    #[test]
    fn refuses_empty_long_spaced_and_non_ascii_names() {
        for (name, reason) in [
            (String::new(), "empty"),
            ("x".repeat(STREAM_NAME_BYTES_MAX + 1), "longer than 200 bytes"),
            ("payment 1".to_owned(), "not printable ascii without spaces"),
            ("payment-\n".to_owned(), "not printable ascii without spaces"),
            ("paiement-é".to_owned(), "not printable ascii without spaces"),
        ] {
            match StreamName::parse(name.clone()) {
                Err(InvalidStreamName {
                    reason: actual,
                    name: echoed,
                }) => {
                    assert_eq!(actual, reason, "{name:?}");
                    assert!(echoed.len() <= REJECTED_NAME_ECHO_BYTES_MAX);
                }
                other => panic!("{name:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn echo_cuts_on_a_character_boundary() {
        let name = format!("{}é", "x".repeat(REJECTED_NAME_ECHO_BYTES_MAX - 1));
        assert_eq!(echo(&name), "x".repeat(REJECTED_NAME_ECHO_BYTES_MAX - 1));
    }
}
