//! Who is calling and what they may do. The server authenticates the API
//! key and puts a [`Principal`] into each request; resolvers check roles
//! with [`RoleGuard`].

use std::fmt;

use async_graphql::{Context, Guard};

use crate::error::ApiError;

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

/// Refuses a field to callers below `minimum` with `extensions.code = FORBIDDEN`.
#[derive(Debug, Clone, Copy)]
pub struct RoleGuard {
    minimum: Role,
}

impl RoleGuard {
    /// A guard that admits `minimum` and above.
    pub fn new(minimum: Role) -> Self {
        Self { minimum }
    }
}

impl Guard for RoleGuard {
    async fn check(&self, context: &Context<'_>) -> async_graphql::Result<()> {
        match context.data_opt::<Principal>() {
            None => Err(ApiError::Unauthenticated.into()),
            Some(principal) if principal.role >= self.minimum => Ok(()),
            Some(principal) => Err(ApiError::Forbidden {
                role: principal.role,
                needed: self.minimum,
            }
            .into()),
        }
    }
}

/// The caller of a request that passed a guard.
pub(crate) fn principal<'a>(context: &'a Context<'_>) -> async_graphql::Result<&'a Principal> {
    context
        .data_opt::<Principal>()
        .ok_or_else(|| ApiError::Unauthenticated.into())
}
