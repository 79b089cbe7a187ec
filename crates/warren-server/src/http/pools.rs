//! `/v1/admin/pools` (admin key only): the warm pools of ready sandboxes
//! (see [`crate::sandboxes::pool`]).

use axum::extract::{Path, State};
use utoipa_axum::{router::OpenApiRouter, routes};
use warren_api::extract::Json;
use warren_api::server::{SetWarmPoolRequest, WarmPool, WarmPoolList};
use warren_api::Problem;

use crate::auth::AdminOnly;
use crate::sandboxes::SandboxError;
use crate::AppState;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_pools))
        .routes(routes!(set_pool))
}

/// Every template's warm pool: its size and how many sandboxes are ready.
#[utoipa::path(get, path = "/v1/admin/pools", tag = "admin",
    responses(
        (status = 200, description = "The pools", body = WarmPoolList),
        (status = 403, description = "Not the admin key", body = Problem, content_type = "application/problem+json")))]
async fn list_pools(State(app): State<AppState>, _: AdminOnly) -> Json<WarmPoolList> {
    Json(WarmPoolList {
        items: app.sandboxes.pools(),
    })
}

/// Sets how many ready sandboxes of a template the server keeps; creates of
/// the template take one instead of starting one. 0 turns the pool off and
/// destroys its ready sandboxes.
#[utoipa::path(put, path = "/v1/admin/pools/{template}", tag = "admin",
    params(("template" = String, Path, description = "Template name")),
    request_body = SetWarmPoolRequest,
    responses(
        (status = 200, description = "The pool now (it fills in the background)", body = WarmPool),
        (status = 400, description = "Size over the maximum", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template", body = Problem, content_type = "application/problem+json")))]
async fn set_pool(
    State(app): State<AppState>,
    _: AdminOnly,
    Path(template): Path<String>,
    Json(req): Json<SetWarmPoolRequest>,
) -> Result<Json<WarmPool>, SandboxError> {
    Ok(Json(app.sandboxes.set_pool(&template, req.size).await?))
}
