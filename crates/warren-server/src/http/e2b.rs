//! E2B's control-plane routes (`/sandboxes`, `/v2/sandboxes`, `/snapshots`,
//! ...), thin over [`crate::e2b`]: parse, call, render in E2B's shapes.
//!
//! They take the key as `X-API-KEY` (what the SDKs send) or as Warren's
//! bearer, and every error, a missing key included, is E2B's body
//! (`{"code", "message"}`). Not in the OpenAPI document: the contract of
//! these routes is E2B's.

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, RawQuery, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

use crate::auth::{Auth, Caller};
use crate::e2b::views::parse_list_query;
use crate::e2b::wire::{
    ConnectSandbox, ForkRequest, NetworkConfig, NewSandbox, SandboxLogs, SandboxLogsV2,
    SandboxesWithMetrics, SnapshotRequest,
};
use crate::e2b::{E2b, E2bError};
use crate::AppState;

/// The header of the next page's token.
const NEXT_TOKEN: HeaderName = HeaderName::from_static("x-next-token");

/// The routes, with their own key check; merged beside Warren's API.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/sandboxes", post(create).get(list_running))
        .route("/v2/sandboxes", post(create).get(list))
        .route("/sandboxes/metrics", get(metrics_of))
        .route("/sandboxes/{id}", get(get_one).delete(kill))
        .route("/sandboxes/{id}/timeout", post(set_timeout))
        .route("/sandboxes/{id}/refreshes", post(refresh))
        .route("/sandboxes/{id}/pause", post(pause))
        .route("/sandboxes/{id}/resume", post(resume))
        .route("/sandboxes/{id}/connect", post(connect))
        .route("/v2/sandboxes/{id}/connect", post(connect))
        .route("/sandboxes/{id}/snapshots", post(snapshot))
        .route("/snapshots", get(snapshots))
        .route("/templates/{id}", delete(delete_template))
        .route("/sandboxes/{id}/fork", post(fork))
        .route("/sandboxes/{id}/metrics", get(metrics))
        .route("/sandboxes/{id}/logs", get(logs))
        .route("/v2/sandboxes/{id}/logs", get(logs_v2))
        .route("/sandboxes/{id}/network", put(network))
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

async fn create(
    State(app): State<AppState>,
    caller: Caller,
    Body(req): Body<NewSandbox>,
) -> Result<Response, E2bError> {
    let created = e2b(&app).create(&caller, req).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

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

async fn get_one(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, E2bError> {
    Ok(Json(e2b(&app).get(&caller, &id).await?).into_response())
}

async fn kill(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, E2bError> {
    e2b(&app).kill(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"timeout": seconds}`.
#[derive(Debug, Default, serde::Deserialize)]
struct TimeoutBody {
    timeout: Option<u64>,
}

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
#[derive(Debug, Default, serde::Deserialize)]
struct RefreshBody {
    duration: Option<u64>,
}

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

async fn pause(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, E2bError> {
    e2b(&app).pause(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn resume(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<ConnectSandbox>,
) -> Result<Response, E2bError> {
    let (created, _) = e2b(&app).connect(&caller, &id, req.timeout, true).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

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

async fn snapshot(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<SnapshotRequest>,
) -> Result<Response, E2bError> {
    let info = e2b(&app).snapshot(&caller, &id, req.name).await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

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

async fn fork(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<ForkRequest>,
) -> Result<Response, E2bError> {
    let results = e2b(&app).fork(&caller, &id, req.timeout, req.count).await?;
    Ok((StatusCode::CREATED, Json(results)).into_response())
}

async fn metrics(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, E2bError> {
    Ok(Json(e2b(&app).metrics(&caller, &id).await?).into_response())
}

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

async fn network(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<NetworkConfig>,
) -> Result<StatusCode, E2bError> {
    e2b(&app).update_network(&caller, &id, req).await?;
    Ok(StatusCode::NO_CONTENT)
}
