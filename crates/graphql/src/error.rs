//! Errors as GraphQL clients see them: a plain message and a stable
//! `extensions.code` (plus `extensions.field` for bad input). Causes of
//! internal failures go to the log, never to the client.

use async_graphql::ErrorExtensions;

use crate::role::Role;

/// What a refused expensive query is told to wait before retrying (`Retry-After`).
pub const BUSY_RETRY_AFTER_SECONDS: u64 = 1;

/// `extensions.code` of a query refused because too many expensive ones are running (HTTP 429).
pub(crate) const TOO_MANY_EXPENSIVE_QUERIES: &str = "TOO_MANY_EXPENSIVE_QUERIES";

/// An error a resolver returns.
///
/// It deliberately has no `Display`: async-graphql converts anything
/// displayable into an error without extensions, so only the explicit
/// conversion below (which sets `extensions.code`) can turn it into one.
#[derive(Debug)]
pub enum ApiError {
    /// Malformed input: the client fixes the named field; nothing was written.
    BadInput {
        /// The field as the client named it, e.g. `input.refundAmount.value`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// No or unknown API key.
    Unauthenticated,
    /// The key's role is too low.
    Forbidden {
        /// The caller's role.
        role: Role,
        /// The role needed.
        needed: Role,
    },
    /// `atLeastPosition` was not reached in time; the client may retry.
    NotCaughtUp {
        /// The position asked for.
        position: u64,
    },
    /// The query asks for too much (fields, depth or complexity); it did not run. The client asks for
    /// fewer items or fields, or splits the query.
    QueryTooComplex {
        /// Which limit it is over.
        limit: QueryLimit,
        /// What the query asks for.
        actual: usize,
        /// The limit.
        max: usize,
    },
    /// An expensive query was refused because the most allowed are running; the client retries later.
    TooManyExpensiveQueries,
    /// The response would be larger than allowed; nothing was sent. The client asks for less.
    ResponseTooLarge {
        /// The limit in bytes of serialized JSON data.
        bytes_max: usize,
    },
    /// `acknowledgeAnomaly` names an anomaly the ledger never recorded; nothing was written.
    AnomalyNotFound {
        /// Which anomaly, as the client named it.
        message: String,
    },
    /// `acknowledgeAnomaly` names an anomaly already acknowledged; nothing was written.
    AnomalyAlreadyAcknowledged {
        /// Which anomaly, as the client named it.
        message: String,
    },
    /// Something failed inside; the cause was logged with the request id.
    Internal,
}

impl ApiError {
    /// The stable code in `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadInput { .. } => "BAD_USER_INPUT",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden { .. } => "FORBIDDEN",
            Self::NotCaughtUp { .. } => "NOT_CAUGHT_UP",
            Self::QueryTooComplex { .. } => "QUERY_TOO_COMPLEX",
            Self::TooManyExpensiveQueries => TOO_MANY_EXPENSIVE_QUERIES,
            Self::ResponseTooLarge { .. } => "RESPONSE_TOO_LARGE",
            Self::AnomalyNotFound { .. } => domain::ANOMALY_NOT_FOUND,
            Self::AnomalyAlreadyAcknowledged { .. } => domain::ANOMALY_ALREADY_ACKNOWLEDGED,
            Self::Internal => "INTERNAL",
        }
    }

    /// Logs `cause` and returns the client-facing internal error.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::Internal
    }

    /// The message the client sees.
    pub fn message(&self) -> String {
        match self {
            Self::BadInput { message, .. }
            | Self::AnomalyNotFound { message }
            | Self::AnomalyAlreadyAcknowledged { message } => message.clone(),
            Self::Unauthenticated => "authentication required: send Authorization: Bearer <key>".to_owned(),
            Self::Forbidden { role, needed } => format!("the {role} role may not do this; it needs {needed}"),
            Self::NotCaughtUp { position } => {
                format!("the read models have not reached position {position} yet; retry")
            }
            Self::QueryTooComplex { limit, actual, max } => limit.refusal(*actual, *max),
            Self::TooManyExpensiveQueries => format!(
                "too many expensive queries are running; retry in {BUSY_RETRY_AFTER_SECONDS} s, or ask for fewer items"
            ),
            Self::ResponseTooLarge { bytes_max } => {
                format!("the response would be larger than {bytes_max} bytes; ask for fewer items or fields")
            }
            Self::Internal => "internal error; the cause was logged".to_owned(),
        }
    }

    /// Bad input from a domain parse error, with the field prefixed by where it sat (`input`).
    pub fn from_input(prefix: &str, error: &domain::InputError) -> Self {
        let field = if prefix.is_empty() {
            error.field().to_owned()
        } else {
            format!("{prefix}.{}", error.field())
        };
        let message = if prefix.is_empty() {
            error.to_string()
        } else {
            format!("{prefix}.{error}")
        };
        Self::BadInput { field, message }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(error: ApiError) -> Self {
        let message = error.message();
        async_graphql::Error::new(message).extend_with(|_, extensions| {
            extensions.set("code", error.code());
            match &error {
                ApiError::BadInput { field, .. } => extensions.set("field", field.as_str()),
                ApiError::QueryTooComplex { limit, actual, max } => {
                    extensions.set("limit", limit.as_str());
                    extensions.set("actual", *actual);
                    extensions.set("max", *max);
                }
                ApiError::TooManyExpensiveQueries => extensions.set("retryAfterSeconds", BUSY_RETRY_AFTER_SECONDS),
                ApiError::ResponseTooLarge { bytes_max } => extensions.set("bytesMax", *bytes_max),
                ApiError::Unauthenticated
                | ApiError::Forbidden { .. }
                | ApiError::NotCaughtUp { .. }
                | ApiError::AnomalyNotFound { .. }
                | ApiError::AnomalyAlreadyAcknowledged { .. }
                | ApiError::Internal => {}
            }
        })
    }
}

/// Which bound a query is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryLimit {
    /// [`crate::Limits::fields_max`].
    Fields,
    /// [`crate::Limits::depth_max`].
    Depth,
    /// [`crate::Limits::complexity_max`].
    Complexity,
}

impl QueryLimit {
    /// The name in `extensions.limit`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Fields => "fields",
            Self::Depth => "depth",
            Self::Complexity => "complexity",
        }
    }

    /// What the client is told.
    pub(crate) fn refusal(&self, actual: usize, max: usize) -> String {
        match self {
            Self::Fields => format!(
                "query too complex: it selects {actual} fields (each alias, and each fragment where it is \
                 spread), more than the {max} allowed; split it into several requests"
            ),
            Self::Depth => format!("query too complex: it nests {actual} levels deep, more than the {max} allowed"),
            Self::Complexity => format!(
                "query too complex: its complexity is {actual}, more than the {max} allowed (a list counts its \
                 `first` times its items, and nested lists multiply); ask for fewer items or fields"
            ),
        }
    }
}
