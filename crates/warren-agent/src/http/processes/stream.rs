//! Streaming output: `GET /v1/processes/{id}/logs` (JSON or SSE) and the
//! WebSocket attach `GET /v1/processes/{id}/ws`. Both are a
//! [`Follower`](crate::process::Follower) rendered in a wire format.

use std::convert::Infallible;

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use utoipa::IntoParams;
use warren_api::agent::{LogsResponse, StreamKind, WsControl};
use warren_api::extract::{Json, Query};
use warren_api::Problem;

use super::ProcessId;
use crate::http::sse::{json_event, last_event_id, wants_event_stream};
use crate::process::{output_chunk, FollowEvent, FollowFormat, Follower, Supervisor};
use crate::{AgentError, AppState};

/// Most bytes in one SSE `output` event.
const SSE_CHUNK: usize = 32 * 1024;
/// Most bytes in one WebSocket binary frame.
const WS_CHUNK: usize = 64 * 1024;
/// First byte of a binary output frame: stdout (and the terminal).
const FRAME_STDOUT: u8 = 0x01;
/// First byte of a binary output frame: stderr.
const FRAME_STDERR: u8 = 0x02;

/// Query of `GET /v1/processes/{id}/logs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct LogsQuery {
    /// Byte cursor to start from (default 0: the oldest output kept). For
    /// SSE, the `Last-Event-ID` header is used when this is absent.
    cursor: Option<u64>,
    /// Stream as server-sent events until the process exits.
    follow: Option<bool>,
}

/// Query of `GET /v1/processes/{id}/ws`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AttachQuery {
    /// Byte cursor to replay from (default 0: the oldest output kept).
    cursor: Option<u64>,
}

/// Output of a managed process from `cursor`.
///
/// Without `follow` (and without `Accept: text/event-stream`): the buffered
/// chunks as JSON, with `next_cursor` for the next call and `dropped_bytes`
/// when part of what was asked for has left the ring.
///
/// With `follow=true` or `Accept: text/event-stream`: server-sent events,
/// replaying the buffer from `cursor`, then live output, with no gap:
/// - `output`: an `OutputChunk` (`stream`, `cursor`, `data`, `encoding`);
///   the event `id` is the cursor to resume from (one past the chunk), so
///   reconnecting with `Last-Event-ID` continues exactly;
/// - `dropped`: `{type, bytes, cursor}` when output asked for had left the
///   ring (a slow reader); the stream continues at `cursor`;
/// - `exit`: `{type, exit_code, signal, cursor}` once the process has
///   exited and all its output was sent; then the stream ends.
#[utoipa::path(get, path = "/v1/processes/{id}/logs", tag = "processes",
    params(("id" = String, Path, description = "Process id (`proc_…`)"), LogsQuery),
    responses(
        (status = 200, description = "Buffered output (JSON), or an SSE stream with follow",
            content((LogsResponse = "application/json"), (String = "text/event-stream"))),
        (status = 400, description = "Bad query, or a cursor past the end of the output", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such process", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn process_logs(
    State(state): State<AppState>,
    ProcessId(id): ProcessId,
    Query(q): Query<LogsQuery>,
    headers: HeaderMap,
) -> Result<Response, AgentError> {
    if !(q.follow.unwrap_or(false) || wants_event_stream(&headers)) {
        return Ok(Json(state.processes.logs(&id, q.cursor)?).into_response());
    }
    let cursor = q.cursor.or_else(|| last_event_id(&headers));
    let follower = state
        .processes
        .follow(&id, cursor, FollowFormat::Text, SSE_CHUNK)?;
    let events = futures::stream::unfold(follower, |mut follower| async move {
        let event = follower.next().await?;
        Some((Ok::<_, Infallible>(sse_event(event)), follower))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn sse_event(event: FollowEvent) -> Event {
    match event {
        FollowEvent::Output {
            stream,
            cursor,
            data,
        } => {
            let next = cursor + data.len() as u64;
            json_event("output", &output_chunk(stream, cursor, &data)).id(next.to_string())
        }
        FollowEvent::Dropped { bytes, cursor } => {
            json_event("dropped", &WsControl::Dropped { bytes, cursor })
        }
        FollowEvent::Exit { status, cursor } => json_event(
            "exit",
            &WsControl::Exit {
                exit_code: status.code,
                signal: status.signal,
                cursor,
            },
        ),
    }
}

/// Attach to a managed process over a WebSocket (connect with
/// `?access_token=` when headers cannot be set).
///
/// The agent first replays output from `cursor`, then sends live output,
/// with no gap. Agent → client:
/// - **binary** frames carry output: the first byte is the stream (`0x01`
///   stdout or the terminal, `0x02` stderr), the rest are the raw bytes;
/// - **text** frames are JSON control messages: `{"type":"dropped","bytes",
///   "cursor"}` when output asked for had left the ring, `{"type":"error",
///   "code","detail"}` when a control message failed, and
///   `{"type":"exit","exit_code","signal","cursor"}` when the process has
///   exited, after which the agent closes the socket.
///
/// Client → agent:
/// - **binary** frames are raw bytes for stdin (keystrokes on a terminal);
/// - **text** frames are JSON control messages:
///   `{"type":"stdin","data","encoding","eof"}`,
///   `{"type":"resize","cols","rows"}`, `{"type":"signal","signal"}`.
#[utoipa::path(get, path = "/v1/processes/{id}/ws", tag = "processes",
    params(("id" = String, Path, description = "Process id (`proc_…`)"), AttachQuery),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket request, or a bad cursor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such process", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn attach_process(
    State(state): State<AppState>,
    ProcessId(id): ProcessId,
    Query(q): Query<AttachQuery>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, Problem> {
    let follower = state
        .processes
        .follow(&id, q.cursor, FollowFormat::Bytes, WS_CHUNK)?;
    let upgrade = upgrade.map_err(|rejection| {
        Problem::invalid(format!(
            "{}: this route needs a WebSocket client",
            rejection.body_text()
        ))
    })?;
    let processes = state.processes.clone();
    Ok(upgrade.on_upgrade(move |socket| attach_session(socket, follower, processes, id)))
}

/// Pumps output to the socket and control messages from it until the
/// process exits or the client leaves.
async fn attach_session(
    socket: WebSocket,
    mut follower: Follower,
    processes: Supervisor,
    id: String,
) {
    let (mut tx, mut rx) = socket.split();
    loop {
        // Both arms are cancel-safe: `Follower::next` consumes nothing
        // unless it returns, and `rx.next()` is a stream read.
        let (outgoing, exited) = tokio::select! {
            event = follower.next() => match event {
                Some(event) => {
                    let exited = matches!(event, FollowEvent::Exit { .. });
                    (event_message(event), exited)
                }
                None => break,
            },
            incoming = rx.next() => match incoming {
                Some(Ok(message)) => match handle_incoming(&processes, &id, message).await {
                    Ok(()) => continue,
                    Err(err) => (error_message(err), false),
                },
                // Closed by the client, or the connection broke.
                _ => break,
            },
        };
        if tx.send(outgoing).await.is_err() {
            return;
        }
        if exited {
            let close = CloseFrame {
                code: close_code::NORMAL,
                reason: "process exited".into(),
            };
            let _ = tx.send(Message::Close(Some(close))).await;
            // Finish the closing handshake: read (and drop) what the client
            // still sends until its Close arrives. Dropping the socket with
            // unread input would reset the connection, and a proxy in
            // between could then lose the frames just sent.
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                while let Some(Ok(message)) = rx.next().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
            return;
        }
    }
}

/// How long the agent waits for the client's Close after its own.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

fn event_message(event: FollowEvent) -> Message {
    match event {
        FollowEvent::Output { stream, data, .. } => {
            let mut frame = Vec::with_capacity(data.len() + 1);
            frame.push(match stream {
                StreamKind::Stdout => FRAME_STDOUT,
                StreamKind::Stderr => FRAME_STDERR,
            });
            frame.extend_from_slice(&data);
            Message::Binary(frame.into())
        }
        FollowEvent::Dropped { bytes, cursor } => {
            control_message(&WsControl::Dropped { bytes, cursor })
        }
        FollowEvent::Exit { status, cursor } => control_message(&WsControl::Exit {
            exit_code: status.code,
            signal: status.signal,
            cursor,
        }),
    }
}

fn control_message(control: &WsControl) -> Message {
    Message::Text(serde_json::to_string(control).unwrap_or_default().into())
}

fn error_message(err: AgentError) -> Message {
    let problem = Problem::from(err);
    control_message(&WsControl::Error {
        code: problem.code.as_str().to_string(),
        detail: problem.detail,
    })
}

/// Applies one client frame: stdin bytes, or a JSON control message.
async fn handle_incoming(
    processes: &Supervisor,
    id: &str,
    message: Message,
) -> Result<(), AgentError> {
    match message {
        Message::Binary(bytes) => {
            processes.check_stdin_size(bytes.len())?;
            processes.write_stdin(id, &bytes, false).await
        }
        Message::Text(text) => {
            let control: WsControl = serde_json::from_str(text.as_str())
                .map_err(|e| AgentError::InvalidRequest(format!("bad control message: {e}")))?;
            match control {
                WsControl::Stdin {
                    data,
                    encoding,
                    eof,
                } => {
                    let data = processes.decode_stdin(&data, encoding)?;
                    processes.write_stdin(id, &data, eof).await
                }
                WsControl::Resize { cols, rows } => processes.resize(id, cols, rows),
                WsControl::Signal { signal } => processes.signal(id, &signal),
                WsControl::Dropped { .. } | WsControl::Exit { .. } | WsControl::Error { .. } => {
                    Err(AgentError::InvalidRequest(
                        "dropped, exit and error messages are sent by the agent, not to it".into(),
                    ))
                }
            }
        }
        // Pings are answered by axum; pongs and the rest need nothing.
        _ => Ok(()),
    }
}
