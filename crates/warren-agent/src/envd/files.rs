//! envd's HTTP routes: `GET /files` (download, gzip when the client
//! accepts it), `POST /files` (multipart with one part per file, its file
//! name being its path, or a raw `application/octet-stream` body to
//! `?path=`; `Content-Encoding: gzip` bodies are inflated as they arrive)
//! and `GET /health`.
//!
//! Errors are envd's JSON, `{"code": <status>, "message": ...}`, with the
//! statuses the SDKs map to their exceptions (400 invalid argument, 401
//! unknown user, 404 not found, 507 no space).

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{caller, owner, resolve};
use crate::process::User;
use crate::{AgentError, AppState};

/// Prefix of the headers carrying file metadata (lowercase, as `HeaderMap`
/// keeps names).
const METADATA_HEADER: &str = "x-metadata-";
/// Most metadata keys on one upload.
const MAX_METADATA: usize = 64;

/// Bytes read from an inflated body at a time.
const INFLATE_CHUNK: usize = 64 * 1024;

/// Query of `/files`.
#[derive(Debug, Default, Deserialize)]
pub struct FilesQuery {
    /// The file; for uploads, every part goes there when given.
    path: Option<String>,
    /// The user the call runs as.
    username: Option<String>,
}

/// An envd HTTP error.
struct HttpError(StatusCode, String);

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = json!({ "code": self.0.as_u16(), "message": self.1 }).to_string();
        (self.0, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

impl From<AgentError> for HttpError {
    fn from(err: AgentError) -> HttpError {
        let code = err.code();
        let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::BAD_REQUEST);
        // envd answers 400 for what Warren calls forbidden paths or
        // conflicts; the SDKs only distinguish 400, 401, 404, 429 and 507.
        let status = match status.as_u16() {
            404 | 429 | 507 => status,
            s if s >= 500 => {
                tracing::error!(error = %err, "envd files: internal error");
                return HttpError(
                    status,
                    "the sandbox failed to complete the operation".into(),
                );
            }
            413 => StatusCode::BAD_REQUEST,
            _ => StatusCode::BAD_REQUEST,
        };
        HttpError(status, err.to_string())
    }
}

fn user_of(headers: &HeaderMap, q: &FilesQuery) -> Result<User, HttpError> {
    caller(headers, q.username.as_deref())
        .map_err(|e| HttpError(StatusCode::UNAUTHORIZED, e.message))
}

/// `GET /envd/health`: envd answers 204.
pub async fn health() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// `GET /envd/files?path=&username=`.
pub async fn download(
    State(state): State<AppState>,
    Query(q): Query<FilesQuery>,
    headers: HeaderMap,
) -> Response {
    match download_inner(state, q, headers).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn download_inner(
    state: AppState,
    q: FilesQuery,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let user = user_of(&headers, &q)?;
    let Some(path) = q.path.as_deref() else {
        return Err(HttpError(
            StatusCode::BAD_REQUEST,
            "path is required".into(),
        ));
    };
    let path = resolve(path, &user);
    let file = state.files.read(path.clone(), None).await?;
    let name = path.rsplit('/').next().unwrap_or("file").replace('"', "");
    let gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| e.split(';').next().unwrap_or("").trim() == "gzip");
    let builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{name}\""),
        );
    let response = if gzip {
        builder
            .header(header::CONTENT_ENCODING, "gzip")
            .header(header::VARY, "Accept-Encoding")
            .body(Body::from_stream(gzip_stream(file.into_stream())))
    } else {
        builder
            .header(header::CONTENT_LENGTH, file.len())
            .body(Body::from_stream(file.into_stream()))
    };
    response.map_err(|e| HttpError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// Compresses a byte stream with gzip as it is read.
fn gzip_stream(
    input: impl Stream<Item = std::io::Result<Bytes>> + Send + 'static,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    futures::stream::unfold(
        (Box::pin(input), Some(encoder)),
        |(mut input, encoder)| async move {
            let mut encoder = encoder?;
            loop {
                match input.next().await {
                    Some(Ok(chunk)) => {
                        if let Err(e) = encoder.write_all(&chunk) {
                            return Some((Err(e), (input, None)));
                        }
                        let out = std::mem::take(encoder.get_mut());
                        if !out.is_empty() {
                            return Some((Ok(Bytes::from(out)), (input, Some(encoder))));
                        }
                    }
                    Some(Err(e)) => return Some((Err(e), (input, None))),
                    None => {
                        return match encoder.finish() {
                            Ok(rest) => Some((Ok(Bytes::from(rest)), (input, None))),
                            Err(e) => Some((Err(e), (input, None))),
                        }
                    }
                }
            }
        },
    )
}

/// `POST /envd/files?path=&username=`.
pub async fn upload(
    State(state): State<AppState>,
    Query(q): Query<FilesQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match upload_inner(state, q, headers, body).await {
        Ok(written) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            Value::Array(written).to_string(),
        )
            .into_response(),
        Err(err) => err.into_response(),
    }
}

type BodyStream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

async fn upload_inner(
    state: AppState,
    q: FilesQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Vec<Value>, HttpError> {
    let user = user_of(&headers, &q)?;
    let limit = state.config.limits.max_upload_bytes;
    let raw: BodyStream = Box::pin(body.into_data_stream().map_err(std::io::Error::other));
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let stream = capped(if gzip { inflate(raw) } else { raw }, limit);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let metadata = metadata_of(&headers)?;
    let entry = |path: &str| {
        let name = path.rsplit('/').next().unwrap_or(path);
        let mut entry = json!({ "name": name, "type": "file", "path": path });
        if !metadata.is_empty() {
            entry["metadata"] = json!(metadata);
        }
        entry
    };
    if media == "application/octet-stream" {
        let Some(path) = q.path.as_deref() else {
            return Err(HttpError(
                StatusCode::BAD_REQUEST,
                "path query parameter is required for raw body upload".into(),
            ));
        };
        let path = resolve(path, &user);
        state
            .files
            .write_as(path.clone(), None, owner(&user), stream)
            .await?;
        state
            .files
            .set_metadata(path.clone(), metadata.clone())
            .await?;
        return Ok(vec![entry(&path)]);
    }
    if !media.starts_with("multipart/") {
        return Err(HttpError(
            StatusCode::BAD_REQUEST,
            format!("unsupported content type: {content_type}, expected multipart/form-data or application/octet-stream"),
        ));
    }
    let boundary = multer::parse_boundary(content_type).map_err(|e| {
        HttpError(
            StatusCode::BAD_REQUEST,
            format!("invalid multipart body: {e}"),
        )
    })?;
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut written = Vec::new();
    let mut seen = HashSet::new();
    loop {
        let field = multipart.next_field().await.map_err(|e| {
            HttpError(
                StatusCode::BAD_REQUEST,
                format!("invalid multipart body: {e}"),
            )
        })?;
        let Some(field) = field else {
            break;
        };
        if field.name() != Some("file") {
            continue;
        }
        let named = q
            .path
            .clone()
            .or_else(|| field.file_name().map(str::to_string))
            .ok_or_else(|| {
                HttpError(
                    StatusCode::BAD_REQUEST,
                    "a file part has no file name".into(),
                )
            })?;
        let path = resolve(&named, &user);
        if !seen.insert(path.clone()) {
            return Err(HttpError(
                StatusCode::BAD_REQUEST,
                format!("you cannot upload multiple files to the same path '{path}' in one upload request"),
            ));
        }
        state
            .files
            .write_as(path.clone(), None, owner(&user), field)
            .await?;
        state
            .files
            .set_metadata(path.clone(), metadata.clone())
            .await?;
        written.push(entry(&path));
    }
    Ok(written)
}

/// The user metadata of an upload: its `X-Metadata-<key>` headers, keys
/// lowercased (as envd stores them), at most [`MAX_METADATA`] of them.
fn metadata_of(headers: &HeaderMap) -> Result<BTreeMap<String, String>, HttpError> {
    let mut out = BTreeMap::new();
    for (name, value) in headers {
        let Some(key) = name.as_str().strip_prefix(METADATA_HEADER) else {
            continue;
        };
        let value = value.to_str().map_err(|_| {
            HttpError(
                StatusCode::BAD_REQUEST,
                format!("metadata {key} must be printable US-ASCII"),
            )
        })?;
        if key.is_empty() || out.len() >= MAX_METADATA {
            return Err(HttpError(
                StatusCode::BAD_REQUEST,
                format!("at most {MAX_METADATA} non-empty metadata keys"),
            ));
        }
        out.insert(key.to_ascii_lowercase(), value.to_string());
    }
    Ok(out)
}

/// Fails the stream once more than `limit` bytes went through.
fn capped(stream: BodyStream, limit: u64) -> BodyStream {
    let mut total = 0u64;
    Box::pin(stream.map(move |chunk| {
        let chunk = chunk?;
        total += chunk.len() as u64;
        if total > limit {
            return Err(std::io::Error::other(format!(
                "the upload is larger than the limit of {limit} bytes"
            )));
        }
        Ok(chunk)
    }))
}

/// Inflates a gzip body as it arrives (on the blocking pool).
fn inflate(stream: BodyStream) -> BodyStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let reader = tokio_util::io::StreamReader::new(stream);
    tokio::task::spawn_blocking(move || {
        let bridge = tokio_util::io::SyncIoBridge::new(reader);
        let mut decoder = flate2::read::GzDecoder::new(bridge);
        loop {
            let mut buf = vec![0; INFLATE_CHUNK];
            match decoder.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(std::io::Error::new(
                        e.kind(),
                        format!("error decompressing request body: {e}"),
                    )));
                    return;
                }
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
