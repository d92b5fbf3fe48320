//! The admin web UI: one hand-written page (`index.html`, `app.css`,
//! `app.js`) embedded in the binary and served by every node at `/ui/` on
//! its API port. No build step, no third-party code, nothing loaded from
//! outside the node: the page reads and writes the same `/v1/...` API as
//! `topoctl` (its graph from `GET /v1/cluster/links`, live updates from
//! `GET /v1/events`, with polling when that fails).
//!
//! This module owns only the serving of the assets; everything the page
//! shows comes from the API.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use axum::routing::get;
use axum::Router;

/// The page.
pub const INDEX_HTML: &str = include_str!("index.html");
/// Its style sheet.
pub const APP_CSS: &str = include_str!("app.css");
/// Its script.
pub const APP_JS: &str = include_str!("app.js");

/// The assets: (path, content type, body).
pub const ASSETS: [(&str, &str, &str); 3] = [
    ("/ui/", "text/html; charset=utf-8", INDEX_HTML),
    ("/ui/app.css", "text/css; charset=utf-8", APP_CSS),
    ("/ui/app.js", "text/javascript; charset=utf-8", APP_JS),
];

/// Optional API features the page uses when present, as
/// `GET /ui/features.json` (the page asks this instead of probing routes
/// that may answer 404): `analysis` is the cluster analysis and `dry_run`
/// a switch's dry-run (issue 9, not built yet). Set a flag when its route
/// lands.
pub const FEATURES_JSON: &str = r#"{"analysis":false,"dry_run":false}"#;

/// The page may load only from its own node (the API included).
const CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

/// The UI's routes (stateless; merged into the API router).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(redirect))
        .route("/ui/", get(|| async { asset(ASSETS[0].1, ASSETS[0].2) }))
        .route(
            "/ui/index.html",
            get(|| async { asset(ASSETS[0].1, ASSETS[0].2) }),
        )
        .route(
            "/ui/app.css",
            get(|| async { asset(ASSETS[1].1, ASSETS[1].2) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset(ASSETS[2].1, ASSETS[2].2) }),
        )
        .route(
            "/ui/features.json",
            get(|| async { asset("application/json", FEATURES_JSON) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The assets change with the binary: revalidate rather than cache.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

async fn redirect() -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    resp.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/ui/"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page weight goal of issue 14: all assets within 100 KB.
    #[test]
    fn assets_stay_within_the_page_weight_budget() {
        let total: usize = ASSETS.iter().map(|(_, _, body)| body.len()).sum();
        assert!(total <= 100 * 1024, "assets weigh {total} bytes");
    }

    /// The page loads its own assets and nothing from another origin.
    #[test]
    fn page_references_only_its_own_assets() {
        assert!(INDEX_HTML.contains("src=\"/ui/app.js\""));
        assert!(INDEX_HTML.contains("href=\"/ui/app.css\""));
        for body in [INDEX_HTML, APP_CSS, APP_JS] {
            // The SVG namespace is a name, not a URL the page loads.
            let body = body.replace("http://www.w3.org/2000/svg", "");
            assert!(!body.contains("http://"), "absolute URL in an asset");
            assert!(!body.contains("https://"), "absolute URL in an asset");
        }
    }
}
