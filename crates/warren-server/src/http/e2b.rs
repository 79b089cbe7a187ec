//! E2B's control-plane routes (`/sandboxes`, `/v2/sandboxes`, `/snapshots`,
//! ...), thin over [`crate::e2b`]: parse, call, render in E2B's shapes.
//!
//! They take the key as `X-API-KEY` (what the SDKs send) or as Warren's
//! bearer, and every error, a missing key included, is E2B's body
//! (`{"code", "message"}`). In the OpenAPI document under the tag `e2b`;
//! their contract is E2B's API.

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, RawQuery, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Auth, Caller};
use crate::e2b::views::parse_list_query;
use crate::e2b::wire::{
    ConnectSandbox, ErrorBody, ForkRequest, ForkResult, NetworkConfig, NewSandbox, SandboxCreated,
    SandboxDetail, SandboxLogs, SandboxLogsV2, SandboxMetric, SandboxesWithMetrics, SnapshotInfo,
    SnapshotRequest,
};
use crate::e2b::{E2b, E2bError};
use crate::AppState;

/// The header of the next page's token.
const NEXT_TOKEN: HeaderName = HeaderName::from_static("x-next-token");

/// The routes (and their OpenAPI paths), without layers.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_v1, list_running))
        .routes(routes!(create, list))
        .routes(routes!(metrics_of))
        .routes(routes!(get_one, kill))
        .routes(routes!(set_timeout))
        .routes(routes!(refresh))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(connect_v1))
        .routes(routes!(connect))
        .routes(routes!(snapshot))
        .routes(routes!(snapshots))
        .routes(routes!(delete_template))
        .routes(routes!(fork))
        .routes(routes!(metrics))
        .routes(routes!(logs))
        .routes(routes!(logs_v2))
        .routes(routes!(network))
}

/// `router` (these routes) with their own body limit and key check; merged
/// beside Warren's API, whose key check they do not go through.
pub fn layered(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    router
        .layer(axum::extract::DefaultBodyLimit::max(
            state.limits.max_json_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.auth.clone(),
            require_key,
        ))
}

/// Middleware: the caller from `X-API-KEY` or `Authorization: Bearer`, or
/// E2B's 401.
async fn require_key(State(auth): State<Auth>, mut req: Request, next: Next) -> Response {
    let headers = req.headers();
    let token = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .or_else(|| {
            let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .map(|t| t.trim().to_string())
        });
    let unauthorized = |message: &str| {
        E2bError(warren_api::Problem::new(
            warren_api::ErrorCode::Unauthorized,
            message,
        ))
        .into_response()
    };
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return unauthorized("missing API key: send X-API-KEY");
    };
    match auth.authenticate(&token).await {
        Ok(Some(caller)) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Ok(None) => unauthorized("invalid API key"),
        Err(err) => {
            tracing::error!(error = %err, "checking an API key failed");
            E2bError(warren_api::Problem::new(
                warren_api::ErrorCode::Internal,
                "the server failed to check the API key",
            ))
            .into_response()
        }
    }
}

/// A JSON body, `T::default()` when empty; rejections in E2B's body.
struct Body<T>(T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = E2bError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                E2bError(warren_api::Problem::new(
                    warren_api::ErrorCode::PayloadTooLarge,
                    "request body is too large",
                ))
            } else {
                E2bError::invalid(rejection.body_text())
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| E2bError::invalid(format!("invalid JSON body: {e}")))
    }
}

/// The query's pairs, percent-decoded once.
fn pairs(query: Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn with_next_token(mut response: Response, token: Option<String>) -> Response {
    if let Some(value) = token.and_then(|t| HeaderValue::from_str(&t).ok()) {
        response.headers_mut().insert(NEXT_TOKEN, value);
    }
    response
}

fn e2b(app: &AppState) -> &E2b {
    &app.e2b
}

/// Create a sandbox: `templateID` (`base`, `code-interpreter-v1`, a Warren
/// template or a snapshot id), `timeout` (time to live, s, default 300),
/// `autoPause`, `metadata`, `envVars`, network options.
#[utoipa::path(post, path = "/v2/sandboxes", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])),
    request_body = NewSandbox,
    responses(
        (status = 201, description = "The sandbox runs", body = SandboxCreated),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 404, description = "No such template or snapshot", body = ErrorBody)))]
async fn create(
    State(app): State<AppState>,
    caller: Caller,
    Body(req): Body<NewSandbox>,
) -> Result<Response, E2bError> {
    let created = e2b(&app).create(&caller, req).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Create a sandbox (E2B's old route; same as `POST /v2/sandboxes`).
#[utoipa::path(post, path = "/sandboxes", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])),
    request_body = NewSandbox,
    responses(
        (status = 201, description = "The sandbox runs", body = SandboxCreated),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 404, description = "No such template or snapshot", body = ErrorBody)))]
async fn create_v1(
    state: State<AppState>,
    caller: Caller,
    body: Body<NewSandbox>,
) -> Result<Response, E2bError> {
    create(state, caller, body).await
}

/// List sandboxes; the next page's token is the `x-next-token` header.
#[utoipa::path(get, path = "/v2/sandboxes", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])),
    params(
        ("metadata" = Option<String>, Query, description = "`k=v&k2=v2`, url-encoded; all must match"),
        ("state" = Option<String>, Query, description = "`running`, `paused` or both, comma-separated"),
        ("limit" = Option<u32>, Query, description = "Items per page"),
        ("nextToken" = Option<String>, Query, description = "`x-next-token` of the previous page")),
    responses(
        (status = 200, description = "A page of sandboxes", body = Vec<SandboxDetail>),
        (status = 400, description = "Invalid filter", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody)))]
async fn list(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, E2bError> {
    let query = parse_list_query(&pairs(query))?;
    let (items, next) = e2b(&app).list(&caller, query).await?;
    Ok(with_next_token(Json(items).into_response(), next))
}

/// The old list: running sandboxes only.
/// List running sandboxes (E2B's old route).
#[utoipa::path(get, path = "/sandboxes", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])),
    params(("metadata" = Option<String>, Query, description = "`k=v&k2=v2`, url-encoded")),
    responses(
        (status = 200, description = "The running sandboxes", body = Vec<SandboxDetail>),
        (status = 401, description = "Missing or invalid key", body = ErrorBody)))]
async fn list_running(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, E2bError> {
    let mut query = parse_list_query(&pairs(query))?;
    query.states = vec!["running".into()];
    let (items, next) = e2b(&app).list(&caller, query).await?;
    Ok(with_next_token(Json(items).into_response(), next))
}

/// One sandbox.
#[utoipa::path(get, path = "/sandboxes/{id}", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "The sandbox id, with or without `sbx_`")),
    responses(
        (status = 200, description = "The sandbox", body = SandboxDetail),
        (status = 401, description = "Missing or invalid key", body = ErrorBody), (status = 404, description = "No such sandbox (or another tenant's)", body = ErrorBody)))]
async fn get_one(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, E2bError> {
    Ok(Json(e2b(&app).get(&caller, &id).await?).into_response())
}

/// Kill a sandbox.
#[utoipa::path(delete, path = "/sandboxes/{id}", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "The sandbox id, with or without `sbx_`")),
    responses((status = 204, description = "Killed"), (status = 401, description = "Missing or invalid key", body = ErrorBody), (status = 404, description = "No such sandbox (or another tenant's)", body = ErrorBody)))]
async fn kill(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, E2bError> {
    e2b(&app).kill(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"timeout": seconds}`.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
struct TimeoutBody {
    timeout: Option<u64>,
}

/// Set the time to live, from now.
#[utoipa::path(post, path = "/sandboxes/{id}/timeout", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "The sandbox id, with or without `sbx_`")),
    request_body = TimeoutBody,
    responses((status = 204, description = "Set"), (status = 400, description = "No timeout", body = ErrorBody), (status = 401, description = "Missing or invalid key", body = ErrorBody), (status = 404, description = "No such sandbox (or another tenant's)", body = ErrorBody)))]
async fn set_timeout(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<TimeoutBody>,
) -> Result<StatusCode, E2bError> {
    let timeout = req
        .timeout
        .ok_or_else(|| E2bError::invalid("timeout is required"))?;
    e2b(&app).set_timeout(&caller, &id, timeout).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"duration": seconds}` (E2B's keep-alive).
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
struct RefreshBody {
    duration: Option<u64>,
}

/// Keep a sandbox alive `duration` seconds from now.
#[utoipa::path(post, path = "/sandboxes/{id}/refreshes", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "The sandbox id, with or without `sbx_`")),
    request_body = RefreshBody,
    responses((status = 204, description = "Set"), (status = 401, description = "Missing or invalid key", body = ErrorBody), (status = 404, description = "No such sandbox (or another tenant's)", body = ErrorBody)))]
async fn refresh(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<RefreshBody>,
) -> Result<StatusCode, E2bError> {
    let seconds = req.duration.unwrap_or(crate::e2b::DEFAULT_TIMEOUT_SECS);
    e2b(&app).set_timeout(&caller, &id, seconds).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pause (Warren's hibernate: files kept, memory and processes not).
#[utoipa::path(post, path = "/sandboxes/{id}/pause", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "The sandbox id, with or without `sbx_`")),
    responses((status = 204, description = "Paused"), (status = 401, description = "Missing or invalid key", body = ErrorBody), (status = 404, description = "No such sandbox (or another tenant's)", body = ErrorBody),
        (status = 409, description = "Already paused", body = ErrorBody)))]
async fn pause(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, E2bError> {
    e2b(&app).pause(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Resume a paused sandbox (E2B's old route).
#[utoipa::path(post, path = "/sandboxes/{id}/resume", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "The sandbox id, with or without `sbx_`")),
    request_body = ConnectSandbox,
    responses((status = 201, description = "Resumed", body = SandboxCreated), (status = 401, description = "Missing or invalid key", body = ErrorBody), (status = 404, description = "No such sandbox (or another tenant's)", body = ErrorBody),
        (status = 409, description = "Already running", body = ErrorBody)))]
async fn resume(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<ConnectSandbox>,
) -> Result<Response, E2bError> {
    let (created, _) = e2b(&app).connect(&caller, &id, req.timeout, true).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Connect (E2B's older route; same as the v2 one).
#[utoipa::path(post, path = "/sandboxes/{id}/connect", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "The sandbox id, with or without `sbx_`")),
    request_body = ConnectSandbox,
    responses((status = 200, description = "Running already", body = SandboxCreated),
        (status = 201, description = "Resumed", body = SandboxCreated), (status = 401, description = "Missing or invalid key", body = ErrorBody), (status = 404, description = "No such sandbox (or another tenant's)", body = ErrorBody)))]
async fn connect_v1(
    state: State<AppState>,
    caller: Caller,
    id: Path<String>,
    body: Body<ConnectSandbox>,
) -> Result<Response, E2bError> {
    connect(state, caller, id, body).await
}

/// Connect: resumes a paused sandbox and sets its time to live from now.
#[utoipa::path(post, path = "/v2/sandboxes/{id}/connect", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "The sandbox id, with or without `sbx_`")),
    request_body = ConnectSandbox,
    responses((status = 200, description = "Running already", body = SandboxCreated),
        (status = 201, description = "Resumed", body = SandboxCreated), (status = 401, description = "Missing or invalid key", body = ErrorBody), (status = 404, description = "No such sandbox (or another tenant's)", body = ErrorBody)))]
async fn connect(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<ConnectSandbox>,
) -> Result<Response, E2bError> {
    let (created, woken) = e2b(&app).connect(&caller, &id, req.timeout, false).await?;
    let status = if woken {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(created)).into_response())
}

/// Snapshot a sandbox (a Warren checkpoint; its id is a `templateID`).
#[utoipa::path(post, path = "/sandboxes/{id}/snapshots", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "The sandbox id, with or without `sbx_`")),
    request_body = SnapshotRequest,
    responses((status = 201, description = "Taken", body = SnapshotInfo), (status = 401, description = "Missing or invalid key", body = ErrorBody), (status = 404, description = "No such sandbox (or another tenant's)", body = ErrorBody)))]
async fn snapshot(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<SnapshotRequest>,
) -> Result<Response, E2bError> {
    let info = e2b(&app).snapshot(&caller, &id, req.name).await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// List snapshots; the next page's token is the `x-next-token` header.
#[utoipa::path(get, path = "/snapshots", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])),
    params(
        ("sandboxID" = Option<String>, Query, description = "Only this sandbox's"),
        ("name" = Option<String>, Query, description = "Only of this name"),
        ("limit" = Option<u32>, Query, description = "Items per page"),
        ("nextToken" = Option<String>, Query, description = "`x-next-token` of the previous page")),
    responses((status = 200, description = "A page of snapshots", body = Vec<SnapshotInfo>), (status = 401, description = "Missing or invalid key", body = ErrorBody)))]
async fn snapshots(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, E2bError> {
    let pairs = pairs(query);
    let limit = match first(&pairs, "limit") {
        Some(l) => Some(
            l.parse()
                .map_err(|_| E2bError::invalid(format!("limit {l:?} is not a number")))?,
        ),
        None => None,
    };
    let (items, next) = e2b(&app)
        .snapshots(
            &caller,
            first(&pairs, "sandboxID"),
            first(&pairs, "name"),
            limit,
            first(&pairs, "nextToken"),
        )
        .await?;
    Ok(with_next_token(Json(items).into_response(), next))
}

/// E2B deletes snapshots as templates; Warren's templates are not deleted
/// here.
/// Delete a snapshot (E2B deletes snapshots as templates).
#[utoipa::path(delete, path = "/templates/{id}", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "A snapshot id (`ckpt_…`)")),
    responses((status = 204, description = "Deleted"), (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 404, description = "No such snapshot", body = ErrorBody)))]
async fn delete_template(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, E2bError> {
    if !id.starts_with(warren_api::ids::IdKind::Checkpoint.prefix()) {
        return Err(E2bError(warren_api::Problem::new(
            warren_api::ErrorCode::NotFound,
            format!("no snapshot {id}"),
        )));
    }
    e2b(&app).delete_snapshot(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Fork a sandbox (`count` new ones from one checkpoint).
#[utoipa::path(post, path = "/sandboxes/{id}/fork", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "The sandbox id, with or without `sbx_`")),
    request_body = ForkRequest,
    responses((status = 201, description = "One result per fork", body = Vec<ForkResult>), (status = 401, description = "Missing or invalid key", body = ErrorBody), (status = 404, description = "No such sandbox (or another tenant's)", body = ErrorBody)))]
async fn fork(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<ForkRequest>,
) -> Result<Response, E2bError> {
    let results = e2b(&app).fork(&caller, &id, req.timeout, req.count).await?;
    Ok((StatusCode::CREATED, Json(results)).into_response())
}

/// A sandbox's metrics: memory and CPU use now (from its cgroups), limits.
#[utoipa::path(get, path = "/sandboxes/{id}/metrics", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "The sandbox id, with or without `sbx_`")),
    responses((status = 200, description = "Samples", body = Vec<SandboxMetric>), (status = 401, description = "Missing or invalid key", body = ErrorBody), (status = 404, description = "No such sandbox (or another tenant's)", body = ErrorBody)))]
async fn metrics(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, E2bError> {
    Ok(Json(e2b(&app).metrics(&caller, &id).await?).into_response())
}

/// The latest metrics of several sandboxes.
#[utoipa::path(get, path = "/sandboxes/metrics", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])),
    params(("sandbox_ids" = String, Query, description = "Comma-separated ids")),
    responses((status = 200, description = "Id to sample", body = SandboxesWithMetrics), (status = 401, description = "Missing or invalid key", body = ErrorBody)))]
async fn metrics_of(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, E2bError> {
    let pairs = pairs(query);
    let ids: Vec<String> = first(&pairs, "sandbox_ids")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let sandboxes = e2b(&app).metrics_of(&caller, &ids).await?;
    Ok(Json(SandboxesWithMetrics { sandboxes }).into_response())
}

fn limit_of(pairs: &[(String, String)]) -> Result<Option<usize>, E2bError> {
    match first(pairs, "limit") {
        Some(l) => Ok(Some(l.parse().map_err(|_| {
            E2bError::invalid(format!("limit {l:?} is not a number"))
        })?)),
        None => Ok(None),
    }
}

/// A sandbox's logs (the end of its agent's log).
#[utoipa::path(get, path = "/sandboxes/{id}/logs", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "The sandbox id, with or without `sbx_`")),
    params(("limit" = Option<usize>, Query, description = "Most lines, the last ones")),
    responses((status = 200, description = "Lines", body = SandboxLogs), (status = 401, description = "Missing or invalid key", body = ErrorBody), (status = 404, description = "No such sandbox (or another tenant's)", body = ErrorBody)))]
async fn logs(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, E2bError> {
    let limit = limit_of(&pairs(query))?;
    let entries = e2b(&app).logs(&caller, &id, limit).await?;
    Ok(Json(SandboxLogs {
        logs: E2b::old_logs(&entries),
        log_entries: entries,
    })
    .into_response())
}

/// A sandbox's logs as entries.
#[utoipa::path(get, path = "/v2/sandboxes/{id}/logs", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "The sandbox id, with or without `sbx_`")),
    params(("limit" = Option<usize>, Query, description = "Most entries, the last ones")),
    responses((status = 200, description = "Entries", body = SandboxLogsV2), (status = 401, description = "Missing or invalid key", body = ErrorBody), (status = 404, description = "No such sandbox (or another tenant's)", body = ErrorBody)))]
async fn logs_v2(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, E2bError> {
    let limit = limit_of(&pairs(query))?;
    let entries = e2b(&app).logs(&caller, &id, limit).await?;
    Ok(Json(SandboxLogsV2 { logs: entries }).into_response())
}

/// Replace a sandbox's egress rules (and whether its ports are public).
#[utoipa::path(put, path = "/sandboxes/{id}/network", tag = "e2b", security(("e2b_api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "The sandbox id, with or without `sbx_`")),
    request_body = NetworkConfig,
    responses((status = 204, description = "Replaced"), (status = 400, description = "Unsupported rule", body = ErrorBody), (status = 401, description = "Missing or invalid key", body = ErrorBody), (status = 404, description = "No such sandbox (or another tenant's)", body = ErrorBody)))]
async fn network(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<NetworkConfig>,
) -> Result<StatusCode, E2bError> {
    e2b(&app).update_network(&caller, &id, req).await?;
    Ok(StatusCode::NO_CONTENT)
}
