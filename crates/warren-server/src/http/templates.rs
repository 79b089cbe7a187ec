//! `/v1/templates` routes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::{router::OpenApiRouter, routes};
use warren_api::extract::Json;
use warren_api::server::TemplateList;
use warren_api::Problem;

use crate::auth::AdminOnly;
use crate::templates::TemplateError;
use crate::AppState;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(delete))
}

/// Every template on the host.
#[utoipa::path(get, path = "/v1/templates", tag = "templates",
    responses((status = 200, description = "The templates", body = TemplateList)))]
async fn list(State(app): State<AppState>) -> Result<Json<TemplateList>, TemplateError> {
    Ok(Json(app.templates.list().await?))
}

/// Delete a template (admin key). Sandboxes made from it keep their disks.
#[utoipa::path(delete, path = "/v1/templates/{name}", tag = "templates",
    params(("name" = String, Path, description = "Template name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not the admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template", body = Problem, content_type = "application/problem+json")))]
async fn delete(
    State(app): State<AppState>,
    _: AdminOnly,
    Path(name): Path<String>,
) -> Result<StatusCode, TemplateError> {
    app.templates.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
