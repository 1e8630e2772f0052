//! GraphiQL, served from the binary: the page at `GET /graphql` and its assets under `/graphql/assets/`.
//!
//! GraphiQL and React are the npm registry's builds at pinned versions, checked in under
//! `crates/server/assets/graphiql` (its README and `fetch.sh` say how they were fetched and check their
//! sums) and embedded here, so the page works on a network without outbound access. The page's
//! Content-Security-Policy lets it load scripts, styles and connections from this server only.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The page: loads the assets below, nothing else.
const PAGE_HTML: &str = include_str!("graphiql/index.html");

/// Scripts, styles and connections from this server only; fonts and images also as data URIs (GraphiQL's
/// CSS inlines its fonts); inline styles, which React and CodeMirror set.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     font-src 'self' data:; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Assets whose name carries their version are cached for a year: a new version is a new URL.
const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The page and its own script and style sheet change with the binary: browsers revalidate them.
const CACHE_REVALIDATE: &str = "no-cache";

/// One file under `/graphql/assets/`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    cache_control: &'static str,
    body: &'static [u8],
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The vendored builds (the version is in the name) and the page's own script and style sheet.
const ASSETS: &[Asset] = &[
    Asset::vendored(
        "graphiql-3.9.0.min.js",
        JAVASCRIPT,
        include_bytes!("../assets/graphiql/graphiql-3.9.0.min.js"),
    ),
    Asset::vendored(
        "graphiql-3.9.0.min.css",
        CSS,
        include_bytes!("../assets/graphiql/graphiql-3.9.0.min.css"),
    ),
    Asset::vendored(
        "react-18.3.1.production.min.js",
        JAVASCRIPT,
        include_bytes!("../assets/graphiql/react-18.3.1.production.min.js"),
    ),
    Asset::vendored(
        "react-dom-18.3.1.production.min.js",
        JAVASCRIPT,
        include_bytes!("../assets/graphiql/react-dom-18.3.1.production.min.js"),
    ),
    Asset::own("page.js", JAVASCRIPT, include_bytes!("graphiql/page.js")),
    Asset::own("page.css", CSS, include_bytes!("graphiql/page.css")),
];

impl Asset {
    /// A vendored build, whose name carries its version: cached for a year.
    const fn vendored(name: &'static str, content_type: &'static str, body: &'static [u8]) -> Self {
        Self {
            name,
            content_type,
            cache_control: CACHE_IMMUTABLE,
            body,
        }
    }

    /// The page's own file, which changes with the binary: revalidated.
    const fn own(name: &'static str, content_type: &'static str, body: &'static [u8]) -> Self {
        Self {
            name,
            content_type,
            cache_control: CACHE_REVALIDATE,
            body,
        }
    }
}

/// `GET /graphql` without a query: the GraphiQL page.
pub(crate) fn page() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(CACHE_REVALIDATE)),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        PAGE_HTML,
    )
        .into_response()
}

/// `GET /graphql/assets/{file}`: one of the embedded files, 404 for any other name.
pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|asset| asset.name == file) else {
        return (StatusCode::NOT_FOUND, "no such asset\n").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(asset.cache_control)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every asset the page names is embedded, and the page names nothing from another host.
    #[test]
    fn the_page_loads_only_embedded_assets() {
        let mut named = 0;
        for reference in PAGE_HTML.split(['"', '\'']).filter(|part| part.contains("/assets/")) {
            let name = reference
                .strip_prefix("/graphql/assets/")
                .unwrap_or_else(|| panic!("{reference} is not under /graphql/assets/"));
            assert!(ASSETS.iter().any(|asset| asset.name == name), "{name} is not embedded");
            named += 1;
        }
        assert_eq!(named, ASSETS.len(), "every embedded asset is used by the page");
        assert!(!PAGE_HTML.contains("://"), "the page names no other host");
    }
}
