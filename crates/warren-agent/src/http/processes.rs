//! `/v1/processes` routes: thin handlers over [`crate::process::Supervisor`].
//! The streaming routes (`logs` with SSE, the WebSocket attach) are in
//! [`stream`].

mod stream;

use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use super::doc::{routes, Routes};
use warren_api::agent::{
    ProcessInfo, ProcessList, ResizeRequest, RunRequest, RunResponse, SignalRequest, StartRequest,
    StdinRequest,
};
use warren_api::extract::{Json, Query};
use warren_api::Problem;

use crate::{AgentError, AppState};

/// How long `?wait=true` waits when no `timeout_ms` is given.
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// Routes of this module.
pub fn routes(into: Routes) -> Routes {
    into.routes(routes!(run_process))
        .routes(routes!(list_processes, start_process))
        .routes(routes!(get_process, delete_process))
        .routes(routes!(stream::process_logs))
        .routes(routes!(stream::attach_process))
        .routes(routes!(write_stdin))
        .routes(routes!(signal_process))
        .routes(routes!(resize_terminal))
}

/// The `{id}` path segment; a malformed one is a problem like any bad input.
pub struct ProcessId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ProcessId {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(id)) => Ok(ProcessId(id)),
            Err(rejection) => Err(Problem::invalid(rejection.body_text())),
        }
    }
}

/// Query of `GET /v1/processes/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct GetQuery {
    /// Block until the process exits (or `timeout_ms` passes).
    wait: Option<bool>,
    /// Longest wait in milliseconds (default 30000).
    timeout_ms: Option<u64>,
}

/// Query of `DELETE /v1/processes/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeleteQuery {
    /// Kill a running process (SIGKILL to its group) before forgetting it.
    force: Option<bool>,
}

/// Runs a command to completion and returns its exit status and output.
///
/// `cmd` runs through `/bin/sh -c`; `argv` is exec'd directly. The process
/// gets its own process group; at `timeout_ms` the whole group is killed
/// (grandchildren included) and `timed_out` is true. A non-zero exit is a
/// 200 with that `exit_code`. Output beyond `max_output_bytes` per stream is
/// read and discarded, and the stream's `*_truncated` flag is set.
#[utoipa::path(post, path = "/v1/processes/run", tag = "processes",
    request_body = RunRequest,
    responses(
        (status = 200, description = "The process ran (whatever its exit code)", body = RunResponse),
        (status = 400, description = "Bad request: malformed JSON, neither or both of cmd/argv, program or cwd not found, bad limits",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "stdin or the body is over its limit", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many processes running", body = Problem, content_type = "application/problem+json"),
    ))]
async fn run_process(
    State(state): State<AppState>,
    Json(req): Json<RunRequest>,
) -> Result<Json<RunResponse>, AgentError> {
    Ok(Json(state.processes.run(req).await?))
}

/// Starts a managed process and returns at once.
///
/// The process runs in its own session and process group. With `tty: true`
/// it gets a pseudo-terminal (`TERM=xterm-256color`, `cols`×`rows`, default
/// 80×24) as stdin, stdout and stderr. Its output is kept in a ring buffer
/// read through `logs` and the WebSocket attach.
#[utoipa::path(post, path = "/v1/processes", tag = "processes",
    request_body = StartRequest,
    responses(
        (status = 201, description = "Started", body = ProcessInfo),
        (status = 400, description = "Bad request", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "stdin or the body is over its limit", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many processes running", body = Problem, content_type = "application/problem+json"),
    ))]
async fn start_process(
    State(state): State<AppState>,
    Json(req): Json<StartRequest>,
) -> Result<(StatusCode, Json<ProcessInfo>), AgentError> {
    Ok((StatusCode::CREATED, Json(state.processes.start(req)?)))
}

/// Lists the managed processes, running and recently exited, oldest first.
#[utoipa::path(get, path = "/v1/processes", tag = "processes",
    responses((status = 200, description = "The processes", body = ProcessList)))]
async fn list_processes(State(state): State<AppState>) -> Json<ProcessList> {
    Json(state.processes.list())
}

/// One managed process. With `wait=true`, answers when it has exited or
/// after `timeout_ms`, whichever comes first (check `state`).
#[utoipa::path(get, path = "/v1/processes/{id}", tag = "processes",
    params(("id" = String, Path, description = "Process id (`proc_…`)"), GetQuery),
    responses(
        (status = 200, description = "The process", body = ProcessInfo),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such process (`process_not_found`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_process(
    State(state): State<AppState>,
    ProcessId(id): ProcessId,
    Query(q): Query<GetQuery>,
) -> Result<Json<ProcessInfo>, AgentError> {
    let wait = q
        .wait
        .unwrap_or(false)
        .then(|| q.timeout_ms.map_or(DEFAULT_WAIT, Duration::from_millis));
    Ok(Json(state.processes.get(&id, wait).await?))
}

/// Forgets an exited process. A running one answers 409 unless
/// `force=true`, which kills its process group first.
#[utoipa::path(delete, path = "/v1/processes/{id}", tag = "processes",
    params(("id" = String, Path, description = "Process id (`proc_…`)"), DeleteQuery),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such process", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Still running and force not given (`conflict`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_process(
    State(state): State<AppState>,
    ProcessId(id): ProcessId,
    Query(q): Query<DeleteQuery>,
) -> Result<StatusCode, AgentError> {
    state
        .processes
        .remove(&id, q.force.unwrap_or(false))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Writes to the process's stdin (`utf8` or `base64` data); `eof: true`
/// closes it afterwards (on a terminal: sends Ctrl-D).
#[utoipa::path(post, path = "/v1/processes/{id}/stdin", tag = "processes",
    params(("id" = String, Path, description = "Process id (`proc_…`)")),
    request_body = StdinRequest,
    responses(
        (status = 204, description = "Written"),
        (status = 400, description = "Bad request or bad base64", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such process", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The process has exited or its stdin is closed", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Data over the stdin limit", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The process did not read its stdin in time", body = Problem, content_type = "application/problem+json"),
    ))]
async fn write_stdin(
    State(state): State<AppState>,
    ProcessId(id): ProcessId,
    Json(req): Json<StdinRequest>,
) -> Result<StatusCode, AgentError> {
    let data = state.processes.decode_stdin(&req.data, req.encoding)?;
    state.processes.write_stdin(&id, &data, req.eof).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a signal (`SIGTERM`, `TERM`, or a number) to the process's whole
/// process group, so children and grandchildren get it too.
#[utoipa::path(post, path = "/v1/processes/{id}/signal", tag = "processes",
    params(("id" = String, Path, description = "Process id (`proc_…`)")),
    request_body = SignalRequest,
    responses(
        (status = 204, description = "Sent"),
        (status = 400, description = "Unknown signal", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such process", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The process has exited (`process_not_running`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn signal_process(
    State(state): State<AppState>,
    ProcessId(id): ProcessId,
    Json(req): Json<SignalRequest>,
) -> Result<StatusCode, AgentError> {
    state.processes.signal(&id, &req.signal)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Resizes the terminal of a `tty` process (its foreground gets SIGWINCH).
#[utoipa::path(post, path = "/v1/processes/{id}/resize", tag = "processes",
    params(("id" = String, Path, description = "Process id (`proc_…`)")),
    request_body = ResizeRequest,
    responses(
        (status = 204, description = "Resized"),
        (status = 400, description = "Size out of range (1..=1000)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such process", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a tty process, or it has exited", body = Problem, content_type = "application/problem+json"),
    ))]
async fn resize_terminal(
    State(state): State<AppState>,
    ProcessId(id): ProcessId,
    Json(req): Json<ResizeRequest>,
) -> Result<StatusCode, AgentError> {
    state.processes.resize(&id, req.cols, req.rows)?;
    Ok(StatusCode::NO_CONTENT)
}
