//! `/v1/sandboxes/{id}/previews` routes: parse, call [`crate::previews`],
//! render. The previews themselves are served by
//! [`crate::previews::forward::dispatch`], outside the API's routing.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::{router::OpenApiRouter, routes};
use warren_api::extract::Json;
use warren_api::server::{CreatePreviewRequest, Preview, PreviewList};
use warren_api::Problem;

use crate::auth::Caller;
use crate::previews::PreviewError;
use crate::AppState;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_one, delete))
}

/// Expose a port of the sandbox as a preview URL (replacing that port's
/// preview, token included). The URL forms: `{port}-{id without sbx_}.{domain}`
/// by Host, and `/v1/sandboxes/{id}/ports/{port}/...` by path; a `token`
/// preview needs `X-Warren-Preview-Token`, `?token=` or the cookie a
/// `?token=` visit sets, and answers 401 without. No API key is needed to
/// open a preview.
#[utoipa::path(post, path = "/v1/sandboxes/{id}/previews", tag = "previews",
    params(("id" = String, Path, description = "`sbx_…`")),
    request_body = CreatePreviewRequest,
    responses(
        (status = 201, description = "The preview and its URL (and token)", body = Preview),
        (status = 400, description = "Invalid port or domain", body = Problem),
        (status = 404, description = "No such sandbox", body = Problem)))]
async fn create(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<CreatePreviewRequest>,
) -> Result<(StatusCode, Json<Preview>), PreviewError> {
    let preview = app.previews.create(&caller, &id, req).await?;
    Ok((StatusCode::CREATED, Json(preview)))
}

/// The sandbox's previews, in port order.
#[utoipa::path(get, path = "/v1/sandboxes/{id}/previews", tag = "previews",
    params(("id" = String, Path, description = "`sbx_…`")),
    responses(
        (status = 200, description = "Its previews", body = PreviewList),
        (status = 404, description = "No such sandbox", body = Problem)))]
async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PreviewList>, PreviewError> {
    Ok(Json(app.previews.list(&caller, &id).await?))
}

/// One preview, by port.
#[utoipa::path(get, path = "/v1/sandboxes/{id}/previews/{port}", tag = "previews",
    params(
        ("id" = String, Path, description = "`sbx_…`"),
        ("port" = u16, Path, description = "The previewed port")),
    responses(
        (status = 200, description = "The preview", body = Preview),
        (status = 404, description = "`preview_not_found` or `sandbox_not_found`", body = Problem)))]
async fn get_one(
    State(app): State<AppState>,
    caller: Caller,
    Path((id, port)): Path<(String, String)>,
) -> Result<Json<Preview>, PreviewError> {
    let port = parse_port(&id, &port)?;
    Ok(Json(app.previews.get(&caller, &id, port).await?))
}

/// Remove a preview: its URL stops answering (404).
#[utoipa::path(delete, path = "/v1/sandboxes/{id}/previews/{port}", tag = "previews",
    params(
        ("id" = String, Path, description = "`sbx_…`"),
        ("port" = u16, Path, description = "The previewed port")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "`preview_not_found` or `sandbox_not_found`", body = Problem)))]
async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    Path((id, port)): Path<(String, String)>,
) -> Result<StatusCode, PreviewError> {
    let port = parse_port(&id, &port)?;
    app.previews.delete(&caller, &id, port).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A port that is not a number 1..=65535 has no preview.
fn parse_port(id: &str, port: &str) -> Result<u16, PreviewError> {
    port.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
        PreviewError::Invalid(format!(
            "port {port:?} of sandbox {id} is not between 1 and 65535"
        ))
    })
}
