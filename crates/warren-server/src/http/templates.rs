//! `/v1/templates` routes.

use axum::body::Body;
use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use utoipa_axum::{router::OpenApiRouter, routes};
use warren_api::extract::{Json, Query};
use warren_api::server::{Template, TemplateBuildQuery, TemplateList};
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
    // Its pooled sandboxes go too, rather than at the next refill.
    app.sandboxes.templates_changed();
    Ok(StatusCode::NO_CONTENT)
}

/// Build (or rebuild) a template (admin key), from either
/// - a spec.toml sent as the body (`application/toml`, or any type but a
///   tar): `base`, `apt`, `run`, `env`, `workdir`, `start`, `user`; `files`
///   is refused over the API (the server reads no host paths for a
///   caller); or
/// - a build context sent as an uncompressed tar archive
///   (`application/x-tar`) holding a Dockerfile (`dockerfile`, default
///   `Dockerfile`), built with `build_args`; `COPY` and `ADD` read the
///   context.
///
/// Each step is a cached layer (the answer's `layers` says which were
/// cached). Answers when the build is done (minutes for apt steps).
#[utoipa::path(post, path = "/v1/templates/{name}/build", tag = "templates",
    params(("name" = String, Path, description = "Template name"), TemplateBuildQuery),
    request_body(description = "a spec.toml, or a build context (tar) with a Dockerfile", content(
        (String = "application/toml"),
        (Vec<u8> = "application/x-tar"))),
    responses(
        (status = 201, description = "Built", body = Template),
        (status = 400, description = "A bad spec or Dockerfile (the line is named), or a step failed (its output is in the detail)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such parent template", body = Problem, content_type = "application/problem+json")))]
async fn build(
    State(app): State<AppState>,
    _: AdminOnly,
    Path(name): Path<String>,
    Query(query): Query<TemplateBuildQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Template>), TemplateError> {
    let is_tar = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| matches!(v.trim(), "application/x-tar" | "application/tar"));
    let template = if is_tar {
        let build_args = match query.build_args.as_deref() {
            None | Some("") => BTreeMap::new(),
            Some(json) => {
                serde_json::from_str(json).map_err(|e| TemplateError::BuildArgs(e.to_string()))?
            }
        };
        let context = receive(&app, body).await?;
        app.templates
            .build_dockerfile(&name, context, query.dockerfile, build_args)
            .await?
    } else {
        let bytes = axum::body::to_bytes(body, MAX_SPEC)
            .await
            .map_err(|e| TemplateError::Upload(std::io::Error::other(e)))?;
        let spec = String::from_utf8(bytes.to_vec())
            .map_err(|e| TemplateError::Upload(std::io::Error::other(e)))?;
        app.templates.build(&name, spec).await?
    };
    Ok((StatusCode::CREATED, Json(template)))
}

/// Largest spec.toml.
const MAX_SPEC: usize = 1 << 20;

/// Streams an upload to a file in the server's upload directory.
async fn receive(app: &AppState, body: Body) -> Result<tempfile::TempPath, TemplateError> {
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
    Ok(path)
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
    let path = receive(&app, body).await?;
    let template = app.templates.import(&name, path).await?;
    Ok((StatusCode::CREATED, Json(template)))
}
