//! `GET /v1/health` and `GET /metrics`.

use axum::extract::State;
use axum::response::IntoResponse;
use utoipa_axum::{router::OpenApiRouter, routes};
use warren_api::agent::Health;
use warren_api::extract::Json;
use warren_api::Problem;

use crate::auth::AdminOnly;
use crate::AppState;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(metrics))
}

/// Liveness: answers when the server serves requests. Needs no key.
#[utoipa::path(get, path = "/v1/health", tag = "health", security(()),
    responses((status = 200, description = "The server is up", body = Health)))]
async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: warren_api::VERSION.into(),
    })
}

/// Prometheus metrics in the text exposition format (admin key).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "Metrics", content_type = "text/plain; version=0.0.4", body = String),
        (status = 403, description = "Not the admin key", body = Problem, content_type = "application/problem+json")))]
async fn metrics(State(app): State<AppState>, _: AdminOnly) -> axum::response::Response {
    match app.store.count_by_state().await {
        Ok(counts) => {
            let counts: Vec<_> = counts.into_iter().map(|(s, n)| (s.api(), n)).collect();
            app.metrics.set_sandbox_counts(&counts);
        }
        Err(e) => tracing::error!(error = %e, "counting sandboxes for the metrics"),
    }
    (
        [(http::header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        app.metrics.render(),
    )
        .into_response()
}
