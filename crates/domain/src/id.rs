//! Identifiers as validated newtypes: non-empty, at most 64 characters,
//! printable ASCII without spaces (Antom's ids are at most 64 characters).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::InputError;

/// Longest identifier Antom accepts (`refundRequestId`, `paymentId`, ...).
pub const ID_LEN_MAX: usize = 64;

fn validate(field: &str, value: &str) -> Result<(), InputError> {
    if value.is_empty() {
        return Err(InputError::Empty {
            field: field.to_owned(),
        });
    }
    if let Some((position, found)) = value.chars().enumerate().find(|(_, c)| !c.is_ascii_graphic()) {
        return Err(InputError::InvalidCharacter {
            field: field.to_owned(),
            position,
            found,
        });
    }
    if value.len() > ID_LEN_MAX {
        return Err(InputError::TooLong {
            field: field.to_owned(),
            len: value.len(),
            max: ID_LEN_MAX,
        });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The field name used in errors when no other is given.
            pub const FIELD: &'static str = $field;

            /// Validates `value` as this id; errors name `field`.
            pub fn parse_field(field: &str, value: &str) -> Result<Self, InputError> {
                validate(field, value)?;
                Ok(Self(value.to_owned()))
            }

            /// Validates `value` as this id; errors name the id's own field.
            pub fn parse(value: &str) -> Result<Self, InputError> {
                Self::parse_field(Self::FIELD, value)
            }

            /// The id as sent on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                // Checked on the borrowed text, then copied once.
                let value = crate::text::deserialize_text(deserializer)?;
                validate(Self::FIELD, &value).map_err(serde::de::Error::custom)?;
                Ok(Self(value.into_owned()))
            }
        }
    };
}

id_type!(
    /// Antom's id of the original payment (`paymentId`).
    PaymentId, "paymentId"
);
id_type!(
    /// The merchant's idempotency key of a refund (`refundRequestId`), unique across all payments.
    RefundRequestId, "refundRequestId"
);
id_type!(
    /// Antom's id of a refund (`refundId`).
    RefundId, "refundId"
);
id_type!(
    /// Antom's id of a capture (`captureId`).
    CaptureId, "captureId"
);
id_type!(
    /// Antom's id of a dispute (`disputeId`).
    DisputeId, "disputeId"
);
id_type!(
    /// A payment method type as Antom names it (`CARD`, `ALIPAY_CN`, `GCASH`, ...).
    PaymentMethodType, "paymentMethodType"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert_eq!(PaymentId::parse("2024-abc_1").unwrap().as_str(), "2024-abc_1");
        assert_eq!(
            RefundRequestId::parse(""),
            Err(InputError::Empty {
                field: "refundRequestId".into()
            })
        );
        let long = "x".repeat(70);
        assert_eq!(
            RefundRequestId::parse(&long),
            Err(InputError::TooLong {
                field: "refundRequestId".into(),
                len: 70,
                max: 64
            })
        );
        assert!(RefundRequestId::parse(&"x".repeat(64)).is_ok());
        assert_eq!(
            PaymentId::parse("a b"),
            Err(InputError::InvalidCharacter {
                field: "paymentId".into(),
                position: 1,
                found: ' '
            })
        );
        assert!(matches!(
            PaymentId::parse("é"),
            Err(InputError::InvalidCharacter { position: 0, .. })
        ));
        assert!(matches!(
            PaymentId::parse("a\n"),
            Err(InputError::InvalidCharacter { position: 1, .. })
        ));
        assert!(matches!(
            PaymentId::parse_field("input.paymentId", ""),
            Err(InputError::Empty { field }) if field == "input.paymentId"
        ));
    }
}
