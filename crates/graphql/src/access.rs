//! What a caller may do: resolvers check the [`Principal`] the server put into the request with
//! [`RoleGuard`].

use async_graphql::{Context, Guard};

use crate::error::ApiError;
use crate::role::{Principal, Role};

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
