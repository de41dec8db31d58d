//! HTTP: the axum router of the daemon, served on `http.listen`. Today `GET /metrics`
//! (OpenMetrics text, SPEC §6), `GET /healthz` (the process answers) and `GET /readyz`
//! (listeners bound and engine task alive, else 503 with the reason); [`ws`] adds the
//! wallboard's `GET /ws` and [`wallboard`] its page `GET /`; the inspector REST routes
//! join here.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

pub mod wallboard;
pub mod ws;

use crate::daemon::Health;
use crate::sinks::metrics::Metrics;

pub mod inspect;

/// OpenMetrics text, which carries the ring-time exemplars; Prometheus asks for it.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the handlers read.
#[derive(Clone)]
pub struct ApiState {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(s): State<ApiState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        s.metrics.encode(),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<ApiState>) -> impl IntoResponse {
    match s.health.ready() {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}
