//! `/v1/templates` routes.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use utoipa_axum::{router::OpenApiRouter, routes};
use warren_api::extract::Json;
use warren_api::server::{Template, TemplateList};
use warren_api::Problem;

use crate::auth::AdminOnly;
use crate::templates::TemplateError;
use crate::AppState;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(delete))
        .routes(routes!(build))
        .routes(routes!(import))
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

/// Build (or rebuild) a template from a spec.toml sent as the body (admin
/// key): `base`, `apt`, `run`, `env`, `workdir`; each step is a cached
/// layer. `files` is refused over the API (the server reads no host paths
/// for a caller). Answers when the build is done (minutes for apt steps).
#[utoipa::path(post, path = "/v1/templates/{name}/build", tag = "templates",
    params(("name" = String, Path, description = "Template name")),
    request_body(content = String, content_type = "application/toml", description = "spec.toml"),
    responses(
        (status = 201, description = "Built", body = Template),
        (status = 400, description = "A bad spec, or a step failed (its output is in the detail)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such parent template", body = Problem, content_type = "application/problem+json")))]
async fn build(
    State(app): State<AppState>,
    _: AdminOnly,
    Path(name): Path<String>,
    spec: String,
) -> Result<(StatusCode, Json<Template>), TemplateError> {
    let template = app.templates.build(&name, spec).await?;
    Ok((StatusCode::CREATED, Json(template)))
}

/// Import a template from an OCI image layout or `docker save` tarball sent
/// as the body, streamed to disk first (admin key).
#[utoipa::path(post, path = "/v1/templates/{name}/import", tag = "templates",
    params(("name" = String, Path, description = "Template name")),
    request_body(content = Vec<u8>, content_type = "application/x-tar", description = "the image tarball"),
    responses(
        (status = 201, description = "Imported", body = Template),
        (status = 400, description = "Not an image this server can read", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the admin key", body = Problem, content_type = "application/problem+json")))]
async fn import(
    State(app): State<AppState>,
    _: AdminOnly,
    Path(name): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<Template>), TemplateError> {
    let file = tempfile::NamedTempFile::new_in(app.templates.upload_dir())
        .map_err(TemplateError::Upload)?;
    let (file, path) = file.into_parts();
    let mut file = tokio::io::BufWriter::new(tokio::fs::File::from_std(file));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| TemplateError::Upload(std::io::Error::other(e)))?;
        file.write_all(&chunk)
            .await
            .map_err(TemplateError::Upload)?;
    }
    file.flush().await.map_err(TemplateError::Upload)?;
    drop(file);
    let template = app.templates.import(&name, path).await?;
    Ok((StatusCode::CREATED, Json(template)))
}
