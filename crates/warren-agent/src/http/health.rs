//! `GET /v1/health`.

use utoipa_axum::router::OpenApiRouter;

use super::doc::routes;
use warren_api::agent::Health;
use warren_api::extract::Json;

use crate::AppState;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// Liveness: answers when the agent serves requests. Needs no token.
#[utoipa::path(get, path = "/v1/health", tag = "health", security(()),
    responses((status = 200, description = "The agent is up", body = Health)))]
async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: warren_api::VERSION.into(),
    })
}
