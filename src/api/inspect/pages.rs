//! The inspector pages: one self-contained page (HTML, CSS and script inline, no CDN),
//! embedded in the binary and served at `/inspect/`, in zh-CN and English. It holds no
//! data: it logs in through `POST /api/login`, keeps the token in the tab's session
//! storage and reads everything through the API, so the API's roles, masking and audit
//! apply to it too. Views: the review queue with filters, a call (timeline, SIP ladder
//! drawn as a diagram, media figures, verdict buttons), the quarterly scorecards.

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

pub const INDEX_HTML: &str = include_str!("pages/index.html");

/// Served with the page: no framing, no sniffing, scripts and styles only inline,
/// requests only to this server.
const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
         connect-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'; \
         base-uri 'none'; form-action 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
    ("x-frame-options", "DENY"),
];

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/inspect",
            get(|| async { Redirect::permanent("/inspect/") }),
        )
        .route("/inspect/", get(index))
}

async fn index() -> Response {
    let mut r = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
        .into_response();
    for (k, v) in SECURITY_HEADERS {
        r.headers_mut()
            .insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    r
}
