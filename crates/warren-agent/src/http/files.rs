//! `/v1/files` routes: thin handlers over [`crate::files::Files`].
//!
//! Paths are absolute or relative to the agent's workdir; with `--root`
//! every path must resolve (symlinks and `..` included) inside the root, or
//! the answer is `403 path_not_allowed`. Raw bodies (`PUT`, `upload`) are
//! streamed, not held in memory, so the JSON body limit does not apply to
//! them; `upload` has its own limit.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::doc::{routes, Routes};
use warren_api::agent::{
    DeleteQuery, EditRequest, FileList, FileStat, FileWritten, MoveRequest, PathQuery, RawBytes,
    WatchEvent, WatchQuery, WriteQuery,
};
use warren_api::extract::{Json, Query};
use warren_api::Problem;

use crate::files::WatchMessage;
use crate::http::sse::json_event;
use crate::{AgentError, AppState};

/// Routes of this module.
pub fn routes(into: Routes) -> Routes {
    into.routes(routes!(read_file, write_file, delete_file))
        .routes(routes!(list_dir))
        .routes(routes!(stat_path))
        .routes(routes!(make_dir))
        .routes(routes!(move_path))
        .routes(routes!(edit_file))
        .routes(routes!(upload_tar))
        .routes(routes!(download_tar))
        .routes(routes!(watch_dir))
}

const PROBLEM: &str = "application/problem+json";

/// Reads a file's raw bytes. `Range: bytes=a-b`, `bytes=a-` and `bytes=-n`
/// answer 206 with `Content-Range`; a malformed header or several ranges
/// are ignored (200, whole file).
#[utoipa::path(get, path = "/v1/files", tag = "files",
    params(PathQuery,
        ("Range" = Option<String>, Header, description = "One byte range: `bytes=a-b`, `bytes=a-` or `bytes=-n`")),
    responses(
        (status = 200, description = "The whole file", content_type = "application/octet-stream", body = inline(RawBytes)),
        (status = 206, description = "The requested range", content_type = "application/octet-stream", body = inline(RawBytes)),
        (status = 400, description = "Bad path, or a directory or device", content_type = PROBLEM, body = Problem),
        (status = 403, description = "Outside the root, or permission denied", content_type = PROBLEM, body = Problem),
        (status = 404, description = "`file_not_found`", content_type = PROBLEM, body = Problem),
        (status = 416, description = "`range_not_satisfiable`", content_type = PROBLEM, body = Problem)))]
async fn read_file(
    State(state): State<AppState>,
    Query(q): Query<PathQuery>,
    headers: HeaderMap,
) -> Response {
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let file = match state.files.read(q.path, range).await {
        Ok(file) => file,
        Err(err @ AgentError::RangeNotSatisfiable { size }) => {
            let mut resp = err.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return resp;
        }
        Err(err) => return err.into_response(),
    };
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, file.len())
        .header(header::ACCEPT_RANGES, "bytes");
    builder = match file.range {
        Some(r) => builder.status(StatusCode::PARTIAL_CONTENT).header(
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", r.start, r.start + r.len - 1, file.size),
        ),
        None => builder.status(StatusCode::OK),
    };
    builder
        .body(Body::from_stream(file.into_stream()))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Writes the raw body to a file, atomically (a reader sees the old file or
/// the new one). Missing parents are created.
#[utoipa::path(put, path = "/v1/files", tag = "files", params(WriteQuery),
    request_body(content = inline(RawBytes), content_type = "application/octet-stream", description = "The file's new contents"),
    responses(
        (status = 200, description = "Written", body = FileWritten),
        (status = 400, description = "Bad path or mode, or the path is a directory", content_type = PROBLEM, body = Problem),
        (status = 403, description = "Outside the root, or permission denied", content_type = PROBLEM, body = Problem),
        (status = 507, description = "No space left", content_type = PROBLEM, body = Problem)))]
async fn write_file(
    State(state): State<AppState>,
    Query(q): Query<WriteQuery>,
    body: Body,
) -> Result<Json<FileWritten>, AgentError> {
    let written = state
        .files
        .write(q.path, q.mode, body.into_data_stream())
        .await?;
    Ok(Json(written))
}

/// Removes a file, a symlink (not its target) or a directory. A non-empty
/// directory needs `recursive=true`.
#[utoipa::path(delete, path = "/v1/files", tag = "files", params(DeleteQuery),
    responses(
        (status = 200, description = "Removed", body = FileWritten),
        (status = 400, description = "Bad path", content_type = PROBLEM, body = Problem),
        (status = 403, description = "Outside the root, or permission denied", content_type = PROBLEM, body = Problem),
        (status = 404, description = "`file_not_found`", content_type = PROBLEM, body = Problem),
        (status = 409, description = "`directory_not_empty`", content_type = PROBLEM, body = Problem)))]
async fn delete_file(
    State(state): State<AppState>,
    Query(q): Query<DeleteQuery>,
) -> Result<Json<FileWritten>, AgentError> {
    Ok(Json(state.files.delete(q.path, q.recursive).await?))
}

/// Lists a directory, sorted by name.
#[utoipa::path(get, path = "/v1/files/list", tag = "files", params(PathQuery),
    responses(
        (status = 200, description = "The directory's entries", body = FileList),
        (status = 400, description = "Bad path, or not a directory", content_type = PROBLEM, body = Problem),
        (status = 403, description = "Outside the root, or permission denied", content_type = PROBLEM, body = Problem),
        (status = 404, description = "`file_not_found`", content_type = PROBLEM, body = Problem)))]
async fn list_dir(
    State(state): State<AppState>,
    Query(q): Query<PathQuery>,
) -> Result<Json<FileList>, AgentError> {
    Ok(Json(state.files.list(q.path).await?))
}

/// What is at a path (symlinks followed). Never 404: a missing path is
/// `exists: false`.
#[utoipa::path(get, path = "/v1/files/stat", tag = "files", params(PathQuery),
    responses(
        (status = 200, description = "The path's status", body = FileStat),
        (status = 400, description = "Bad path", content_type = PROBLEM, body = Problem),
        (status = 403, description = "Outside the root, or permission denied", content_type = PROBLEM, body = Problem)))]
async fn stat_path(
    State(state): State<AppState>,
    Query(q): Query<PathQuery>,
) -> Result<Json<FileStat>, AgentError> {
    Ok(Json(state.files.stat(q.path).await?))
}

/// `mkdir -p`: an existing directory is fine.
#[utoipa::path(post, path = "/v1/files/mkdir", tag = "files", params(PathQuery),
    responses(
        (status = 200, description = "The directory exists", body = FileWritten),
        (status = 400, description = "Bad path, or a parent is not a directory", content_type = PROBLEM, body = Problem),
        (status = 403, description = "Outside the root, or permission denied", content_type = PROBLEM, body = Problem),
        (status = 409, description = "`already_exists`: a file is in the way", content_type = PROBLEM, body = Problem)))]
async fn make_dir(
    State(state): State<AppState>,
    Query(q): Query<PathQuery>,
) -> Result<Json<FileWritten>, AgentError> {
    Ok(Json(state.files.mkdir(q.path).await?))
}

/// Moves or renames; `to`'s parents are created. An existing `to` needs
/// `overwrite: true`.
#[utoipa::path(post, path = "/v1/files/move", tag = "files", request_body = MoveRequest,
    responses(
        (status = 200, description = "Moved; `path` is the destination", body = FileWritten),
        (status = 400, description = "Bad paths", content_type = PROBLEM, body = Problem),
        (status = 403, description = "Outside the root, or permission denied", content_type = PROBLEM, body = Problem),
        (status = 404, description = "`file_not_found`: no `from`", content_type = PROBLEM, body = Problem),
        (status = 409, description = "`already_exists`, or `directory_not_empty`", content_type = PROBLEM, body = Problem)))]
async fn move_path(
    State(state): State<AppState>,
    Json(req): Json<MoveRequest>,
) -> Result<Json<FileWritten>, AgentError> {
    Ok(Json(state.files.rename(req).await?))
}

/// Replaces the one occurrence of `old_text` with `new_text`; the file is
/// rewritten atomically with its mode kept.
#[utoipa::path(post, path = "/v1/files/edit", tag = "files", request_body = EditRequest,
    responses(
        (status = 200, description = "Edited; `bytes` is the new size", body = FileWritten),
        (status = 400, description = "Bad request, or not a regular file", content_type = PROBLEM, body = Problem),
        (status = 403, description = "Outside the root, or permission denied", content_type = PROBLEM, body = Problem),
        (status = 404, description = "`file_not_found`", content_type = PROBLEM, body = Problem),
        (status = 409, description = "`edit_conflict`: `old_text` occurs 0 or several times (the detail says how many)", content_type = PROBLEM, body = Problem),
        (status = 413, description = "The file is too large to edit", content_type = PROBLEM, body = Problem)))]
async fn edit_file(
    State(state): State<AppState>,
    Json(req): Json<EditRequest>,
) -> Result<Json<FileWritten>, AgentError> {
    Ok(Json(state.files.edit(req).await?))
}

/// Extracts an `application/x-tar` body under the directory `path`
/// (created if missing), streaming. Entries that are absolute, contain
/// `..` or pass through a symlink are refused with `403 path_not_allowed`
/// (entries before the refused one stay extracted).
#[utoipa::path(post, path = "/v1/files/upload", tag = "files", params(PathQuery),
    request_body(description = "A tar archive (any content type is accepted)", content(
        (inline(RawBytes) = "application/x-tar"),
        (inline(RawBytes) = "application/octet-stream"))),
    responses(
        (status = 200, description = "Extracted; `bytes` counts file contents written", body = FileWritten),
        (status = 400, description = "Bad path, or not a tar archive", content_type = PROBLEM, body = Problem),
        (status = 403, description = "Outside the root, or an entry escapes the target", content_type = PROBLEM, body = Problem),
        (status = 413, description = "Larger than the upload limit", content_type = PROBLEM, body = Problem)))]
async fn upload_tar(
    State(state): State<AppState>,
    Query(q): Query<PathQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<FileWritten>, AgentError> {
    let limit = state.config.limits.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(AgentError::TooLarge {
            what: "tar upload",
            limit,
        });
    }
    let written = state.files.upload(q.path, body.into_data_stream()).await?;
    Ok(Json(written))
}

/// A tar of a file (one entry, its name) or a directory (its contents,
/// relative names; symlinks kept as symlinks), produced while it is sent.
#[utoipa::path(get, path = "/v1/files/download", tag = "files", params(PathQuery),
    responses(
        (status = 200, description = "A tar archive", content_type = "application/x-tar", body = inline(RawBytes)),
        (status = 400, description = "Bad path, or a device", content_type = PROBLEM, body = Problem),
        (status = 403, description = "Outside the root, or permission denied", content_type = PROBLEM, body = Problem),
        (status = 404, description = "`file_not_found`", content_type = PROBLEM, body = Problem)))]
async fn download_tar(
    State(state): State<AppState>,
    Query(q): Query<PathQuery>,
) -> Result<Response, AgentError> {
    let stream = state.files.download(q.path).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/x-tar")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Server-sent events of changes in a directory. The first event is
/// `event: ready` (data: `WatchInfo`): from then on, every change is
/// reported as `event: fs` (data: `WatchEvent`, kind `create`, `modify`,
/// `delete` or `rename`). `event: overflow` means events were lost and the
/// client should rescan. The stream ends when the directory is deleted or
/// moved away; closing it removes the watch.
#[utoipa::path(get, path = "/v1/files/watch", tag = "files", params(WatchQuery),
    responses(
        (status = 200, description = "An SSE stream: `ready`, then `fs` events", content_type = "text/event-stream", body = WatchEvent),
        (status = 400, description = "Bad path, or not a directory", content_type = PROBLEM, body = Problem),
        (status = 403, description = "Outside the root, or permission denied", content_type = PROBLEM, body = Problem),
        (status = 404, description = "`file_not_found`", content_type = PROBLEM, body = Problem),
        (status = 429, description = "Too many watches", content_type = PROBLEM, body = Problem)))]
async fn watch_dir(
    State(state): State<AppState>,
    Query(q): Query<WatchQuery>,
) -> Result<Response, AgentError> {
    let stream = state.files.watch(q.path, q.recursive).await?;
    let events = stream.map(|message| {
        Ok::<_, Infallible>(match message {
            WatchMessage::Ready(info) => json_event("ready", &info),
            WatchMessage::Event(event) => json_event("fs", &event),
            WatchMessage::Overflow(info) => json_event("overflow", &info),
        })
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}
