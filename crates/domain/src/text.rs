//! Strings read through serde without a copy when the input lends them (JSON text without escapes): ids,
//! currency codes and amounts are checked on the borrowed text and copied once, if at all.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer;
use serde::de::{Error, Visitor};

/// A string from `deserializer`: borrowed from the input when it can be, owned otherwise. Expects the same as
/// `String::deserialize` (so errors read the same).
pub(crate) fn deserialize_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Cow<'de, str>, D::Error> {
    deserializer.deserialize_str(TextVisitor)
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a string")
    }

    fn visit_borrowed_str<E: Error>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(value))
    }

    fn visit_str<E: Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(value.to_owned()))
    }

    fn visit_string<E: Error>(self, value: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<Cow<'_, str>, serde_json::Error> {
        deserialize_text(&mut serde_json::Deserializer::from_str(json))
    }

    #[test]
    fn plain_text_is_borrowed_and_escaped_text_owned() {
        assert!(matches!(read(r#""BIG-1""#), Ok(Cow::Borrowed("BIG-1"))));
        let escaped = read(r#""a\"b""#).unwrap();
        assert!(matches!(&escaped, Cow::Owned(_)));
        assert_eq!(escaped, "a\"b");
        let from_value = deserialize_text(serde_json::Value::String("x".into())).unwrap();
        assert_eq!(from_value, "x");
    }

    #[test]
    fn a_non_string_is_refused_as_string_deserialize_refuses_it() {
        let ours = read("5").unwrap_err().to_string();
        let strings = serde_json::from_str::<String>("5").unwrap_err().to_string();
        assert_eq!(ours, strings);
    }
}
