//! Cursor parsing through the public API.

use projections::{Cursor, ProjectionError};

#[test]
fn text_that_is_not_a_cursor_is_refused() {
    for text in ["", "not base64!", "YWJj"] {
        assert!(
            matches!(Cursor::parse(text), Err(ProjectionError::InvalidCursor { .. })),
            "{text:?}"
        );
    }
}
