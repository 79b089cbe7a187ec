//! `/v1/templates` routes.

use axum::body::Body;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::convert::Infallible;

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
/// cached). Answers when the build is done (minutes for apt steps). With
/// `Accept: text/event-stream` it answers at once with server-sent events
/// instead: `log` (`{"line"}`, each line of the build's output, cut at
/// 4 KiB) as the build runs, then `done` (the template) or `error` (the
/// problem it would have answered).
#[utoipa::path(post, path = "/v1/templates/{name}/build", tag = "templates",
    params(("name" = String, Path, description = "Template name"), TemplateBuildQuery),
    request_body(description = "a spec.toml, or a build context (tar) with a Dockerfile", content(
        (String = "application/toml"),
        (Vec<u8> = "application/x-tar"))),
    responses(
        (status = 201, description = "Built", body = Template),
        (status = 200, description = "With `Accept: text/event-stream`: the build's `log` events, then `done` or `error`", content_type = "text/event-stream", body = String),
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
) -> Result<Response, TemplateError> {
    let is_tar = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| matches!(v.trim(), "application/x-tar" | "application/tar"));
    let wants_events = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"));
    // The body is read (and a bad one refused) before any event is sent.
    let source = if is_tar {
        let build_args = match query.build_args.as_deref() {
            None | Some("") => BTreeMap::new(),
            Some(json) => {
                serde_json::from_str(json).map_err(|e| TemplateError::BuildArgs(e.to_string()))?
            }
        };
        Source::Dockerfile {
            context: receive(&app, body).await?,
            dockerfile: query.dockerfile,
            build_args,
        }
    } else {
        let bytes = axum::body::to_bytes(body, MAX_SPEC)
            .await
            .map_err(|e| TemplateError::Upload(std::io::Error::other(e)))?;
        let spec = String::from_utf8(bytes.to_vec())
            .map_err(|e| TemplateError::Upload(std::io::Error::other(e)))?;
        Source::Spec(spec)
    };
    if !wants_events {
        let template = source.build(&app, &name, |_| {}).await?;
        return Ok((StatusCode::CREATED, Json(template)).into_response());
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Event>(LOG_BUFFER);
    let log_tx = tx.clone();
    tokio::spawn(async move {
        // A client gone away only stops the events, not the build.
        let log = move |line: &str| {
            let _ =
                log_tx.blocking_send(json_event("log", &serde_json::json!({ "line": cut(line) })));
        };
        let last = match source.build(&app, &name, log).await {
            Ok(template) => json_event("done", &template),
            Err(e) => json_event("error", &Problem::from(e)),
        };
        let _ = tx.send(last).await;
    });
    let events =
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|e| e.map(Ok::<_, Infallible>)));
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// What a build starts from.
enum Source {
    /// A spec.toml's text.
    Spec(String),
    /// A received build context with a Dockerfile.
    Dockerfile {
        context: tempfile::TempPath,
        dockerfile: Option<String>,
        build_args: BTreeMap<String, String>,
    },
}

impl Source {
    /// Builds template `name` from this source, each output line to `log`.
    async fn build(
        self,
        app: &AppState,
        name: &str,
        log: impl FnMut(&str) + Send + 'static,
    ) -> Result<Template, TemplateError> {
        match self {
            Source::Spec(spec) => app.templates.build(name, spec, log).await,
            Source::Dockerfile {
                context,
                dockerfile,
                build_args,
            } => {
                app.templates
                    .build_dockerfile(name, context, dockerfile, build_args, log)
                    .await
            }
        }
    }
}

/// Build output lines buffered for a slow event reader before the build
/// waits for it.
const LOG_BUFFER: usize = 256;

/// Longest build output line sent as an event.
const MAX_LINE: usize = 4096;

/// `line` cut to [`MAX_LINE`] bytes, at a character boundary.
fn cut(line: &str) -> &str {
    if line.len() <= MAX_LINE {
        return line;
    }
    let mut end = MAX_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

/// An SSE event named `name` carrying `data` as JSON.
fn json_event(name: &str, data: &impl serde::Serialize) -> Event {
    // Serializing the API's plain structs cannot fail.
    let json = serde_json::to_string(data).unwrap_or_else(|_| "null".into());
    Event::default().event(name).data(json)
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
