//! `GET /`: the floor wallboard page for a 1920x1080 TV (SPEC §6), self-contained: the
//! HTML, script and style sheet are embedded in the binary (no CDN, no web font: the
//! floor network has no internet) and served from here. The page reads everything from
//! `GET /ws` ([`super::ws`]); it shows no data of its own.
//!
//! Routes: `/` (the page, zh-CN by default, `?lang=en` for English),
//! `/wallboard/wallboard.js`, `/wallboard/wallboard.css`. Responses are not cached, so a
//! TV picks up a new version on its next reload; the page reloads itself when the
//! daemon's version changes.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const INDEX_HTML: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("wallboard.js");
const STYLE: &str = include_str!("wallboard.css");

/// Scripts and styles only from this origin; the websocket on the same host.
const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
                   style-src 'self'; script-src 'self'; base-uri 'none'; frame-ancestors 'self'";

pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/wallboard/wallboard.js", get(script))
        .route("/wallboard/wallboard.css", get(style))
}

fn page() -> String {
    INDEX_HTML.replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
}

async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        page(),
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        SCRIPT,
    )
}

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        STYLE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_self_contained() {
        let all = format!("{}{SCRIPT}{STYLE}", page());
        for bad in [
            "http://",
            "https://",
            "//cdn",
            "@import",
            "fonts.googleapis",
        ] {
            assert!(!all.contains(bad), "the page refers to {bad}");
        }
        assert!(page().contains(env!("CARGO_PKG_VERSION")));
        assert!(page().contains("lang=\"zh-CN\""));
    }
}
