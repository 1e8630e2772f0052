//! Read-model pages as Relay connections, and the read models' errors as the API's: shared by every list
//! resolver.

use async_graphql::connection::{Connection, Edge};
use projections::ProjectionError;

use crate::error::ApiError;

/// A read model's refusal as the API's error: a bad cursor names `after`; anything else is internal.
pub(crate) fn projection_error(error: ProjectionError) -> ApiError {
    match error {
        ProjectionError::InvalidCursor { reason } => ApiError::BadInput {
            field: "after".to_owned(),
            message: format!("after: {reason}"),
        },
        other => ApiError::internal(&other),
    }
}

/// A Relay connection of a read-model page.
pub(crate) fn connection<View, Node: async_graphql::OutputType + From<View>>(
    page: projections::Page<View>,
    has_previous_page: bool,
) -> Connection<String, Node> {
    let mut connection = Connection::new(has_previous_page, page.has_next_page);
    connection.edges.extend(
        page.items
            .into_iter()
            .map(|(cursor, view)| Edge::new(cursor.as_str().to_owned(), view.into())),
    );
    connection
}
