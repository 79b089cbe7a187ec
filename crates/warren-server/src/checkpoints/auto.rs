//! A checkpoint after every command: `POST /v1/sandboxes/{id}/processes/run`
//! of a sandbox created with `auto_checkpoint: true` goes through here
//! instead of the streaming proxy.
//!
//! The request body is read (to record the command), forwarded to the agent,
//! and when the agent answers 200 (the command ran to completion, whatever
//! its exit code, timeouts included) a checkpoint named `cmd_<unix ms>` is
//! taken, recording the command and exit code, and its id is added to the
//! run response as `checkpoint`. Other answers (a bad request, an exec
//! failure) are passed through untouched and take no checkpoint. If the
//! checkpoint itself fails, the command's result is still returned (it ran),
//! with `checkpoint: null` and `checkpoint_error` saying why.
//!
//! Retention keeps the newest `auto_checkpoint_keep` automatic checkpoints
//! (100 by default); older ones are deleted as new ones are taken.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use http::header;
use serde_json::Value;
use warren_api::{ErrorCode, Problem};

use super::{AfterCommand, Checkpoints};
use crate::metrics::RouteLabel;
use crate::proxy::{forwardable, read_limited, ReadError, MAX_AGENT_REPLY};
use crate::sandboxes::registry::Entry;
use crate::time::now_ms;
use crate::AppState;

/// Largest run request taken through here (its `stdin` is the bulk).
pub const MAX_RUN_BODY: usize = 16 << 20;

/// Largest `max_output_bytes` of a run here: the answer is read whole
/// (JSON-escaped, each stream can take six times its bytes), so it must fit
/// well inside [`MAX_AGENT_REPLY`].
pub const MAX_OUTPUT: u64 = 2 << 20;

/// Longest command recorded in a checkpoint.
const MAX_COMMAND_LEN: usize = 4096;

/// Forwards `req` (already addressed to the agent, credentials removed) and
/// checkpoints after it.
pub async fn forward_run(
    app: &AppState,
    entry: Arc<Entry>,
    req: http::Request<Body>,
    route: &'static str,
) -> Response {
    let labelled = |mut response: Response| {
        response.extensions_mut().insert(RouteLabel(route));
        response
    };
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_RUN_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let detail = format!("a run request is at most {MAX_RUN_BODY} bytes here");
            let problem = Problem::new(ErrorCode::PayloadTooLarge, detail);
            return labelled(problem.into_response());
        }
    };
    if let Some(asked) = max_output_of(&bytes).filter(|&n| n > MAX_OUTPUT) {
        let detail = format!(
            "max_output_bytes: {asked} is more than the {MAX_OUTPUT} bytes a run of a sandbox with auto_checkpoint may keep (its answer is read whole to add the checkpoint)"
        );
        return labelled(Problem::invalid(detail).into_response());
    }
    let command = command_of(&bytes);
    let started = Instant::now();
    let response = match app
        .agent
        .send(http::Request::from_parts(parts, Body::from(bytes)))
        .await
    {
        Ok(response) => response,
        Err(err) => {
            tracing::warn!(sandbox = %entry.id, error = %err, "agent unreachable");
            return labelled(
                Problem::new(
                    ErrorCode::Unavailable,
                    "the sandbox's agent is not answering",
                )
                .into_response(),
            );
        }
    };
    app.metrics.observe_exec(started.elapsed());
    entry.touch();
    let (mut parts, body) = response.into_parts();
    parts.headers = forwardable(&parts.headers);
    parts.extensions = http::Extensions::new();
    if parts.status != http::StatusCode::OK {
        return labelled(Response::from_parts(parts, Body::new(body)));
    }
    let bytes = match read_limited(body, MAX_AGENT_REPLY).await {
        Ok(bytes) => bytes,
        Err(err @ ReadError::TooLong(_)) => {
            tracing::warn!(sandbox = %entry.id, error = %err, "the agent's run answer is too long");
            return labelled(
                Problem::new(
                    ErrorCode::Unavailable,
                    "the sandbox's agent answered more than the server reads",
                )
                .into_response(),
            );
        }
        Err(err) => {
            tracing::warn!(sandbox = %entry.id, error = %err, "reading the agent's run answer");
            return labelled(
                Problem::new(
                    ErrorCode::Unavailable,
                    "the sandbox's agent stopped answering",
                )
                .into_response(),
            );
        }
    };
    let Ok(Value::Object(mut result)) = serde_json::from_slice::<Value>(&bytes) else {
        return labelled(Response::from_parts(parts, Body::from(bytes)));
    };
    let exit_code = result
        .get("exit_code")
        .and_then(Value::as_i64)
        .and_then(|c| i32::try_from(c).ok());
    let after = AfterCommand {
        command: command.unwrap_or_default(),
        exit_code,
    };
    match take_after(&app.checkpoints, entry.clone(), after).await {
        Ok(id) => {
            result.insert("checkpoint".into(), Value::String(id));
        }
        Err(problem) => {
            tracing::warn!(sandbox = %entry.id, error = %problem, "automatic checkpoint failed");
            result.insert("checkpoint".into(), Value::Null);
            result.insert("checkpoint_error".into(), Value::String(problem.detail));
        }
    }
    let body = serde_json::to_vec(&result).expect("a JSON object serializes");
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    labelled(Response::from_parts(parts, Body::from(Bytes::from(body))))
}

async fn take_after(
    checkpoints: &Checkpoints,
    entry: Arc<Entry>,
    after: AfterCommand,
) -> Result<String, Problem> {
    let name = format!("cmd_{}", now_ms());
    match checkpoints.take(entry, name, Some(after)).await {
        Ok(record) => Ok(record.id),
        Err(err) => Err(Problem::from(err)),
    }
}

/// `max_output_bytes` of a run request, if it has one.
fn max_output_of(body: &[u8]) -> Option<u64> {
    let request: Value = serde_json::from_slice(body).ok()?;
    request.get("max_output_bytes")?.as_u64()
}

/// The command of a run request: `cmd`, or `argv` joined with spaces;
/// `None` when the body does not parse (the agent will say why).
fn command_of(body: &[u8]) -> Option<String> {
    let request: Value = serde_json::from_slice(body).ok()?;
    let mut command = match (request.get("cmd"), request.get("argv")) {
        (Some(Value::String(cmd)), _) => cmd.clone(),
        (_, Some(Value::Array(argv))) => argv
            .iter()
            .map(|a| a.as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" "),
        _ => return None,
    };
    if command.len() > MAX_COMMAND_LEN {
        let mut end = MAX_COMMAND_LEN;
        while !command.is_char_boundary(end) {
            end -= 1;
        }
        command.truncate(end);
        command.push('…');
    }
    Some(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_recorded_from_cmd_or_argv() {
        assert_eq!(
            command_of(br#"{"cmd":"rm -rf /etc"}"#).as_deref(),
            Some("rm -rf /etc")
        );
        assert_eq!(
            command_of(br#"{"argv":["ls","-l","/"]}"#).as_deref(),
            Some("ls -l /")
        );
        assert_eq!(command_of(b"not json"), None);
        assert_eq!(command_of(br#"{"cwd":"/"}"#), None);
        let long = format!(r#"{{"cmd":"{}"}}"#, "é".repeat(MAX_COMMAND_LEN));
        let cut = command_of(long.as_bytes()).unwrap();
        assert!(cut.len() <= MAX_COMMAND_LEN + '…'.len_utf8());
    }
}
