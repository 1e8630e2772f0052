//! Who is calling: the server authenticates the API key and puts a [`Principal`] (the key's name and
//! [`Role`]) into each request.

use std::fmt;

/// What a key may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Queries, subscriptions and exports.
    Viewer,
    /// Plus refund and payment mutations.
    Operator,
    /// Plus audit and admin operations.
    Admin,
}

impl Role {
    /// Parses `viewer`, `operator` or `admin`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "viewer" => Some(Self::Viewer),
            "operator" => Some(Self::Operator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller: the key's name (the actor on every event it causes) and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The API key's name.
    pub name: String,
    /// Its role.
    pub role: Role,
}
