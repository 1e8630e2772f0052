//! Contract tests of the GraphQL layer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sdl;
