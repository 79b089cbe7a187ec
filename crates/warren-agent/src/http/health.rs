//! `GET /v1/health`.

use super::doc::{routes, Routes};
use warren_api::agent::Health;
use warren_api::extract::Json;

/// Routes of this module.
pub fn routes(into: Routes) -> Routes {
    into.routes(routes!(health))
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
