//! `/v1/agents`, `/v1/sessions` and `/v1/transcripts`: thin handlers over
//! [`crate::sessions::Sessions`].

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::doc::{routes, Routes};
use warren_api::extract::{Json, Query};
use warren_api::session::{
    AgentInfo, AgentKind, AgentList, CreateSession, Event, EventPage, InstallEvent,
    PermissionAnswer, QuestionAnswer, SendMessage, Session, SessionList, TranscriptUploaded,
};
use warren_api::Problem;

use super::sse::{json_event, last_event_id, wants_event_stream};
use crate::sessions::session::{Reply, SessionEntry};
use crate::sessions::transcript;
use crate::{AgentError, AppState};

const PROBLEM: &str = "application/problem+json";
/// Default and largest page of `GET .../events`.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
/// Events sent per wake-up of an SSE follower.
const SSE_BATCH: usize = 256;

/// Routes of this module.
pub fn routes(into: Routes) -> Routes {
    into.routes(routes!(list_agents))
        .routes(routes!(install_agent))
        .routes(routes!(create_session, list_sessions))
        .routes(routes!(get_session, kill_session))
        .routes(routes!(send_message))
        .routes(routes!(session_events))
        .routes(routes!(answer_permission))
        .routes(routes!(answer_question))
        .routes(routes!(interrupt_session))
        .routes(routes!(download_transcript))
        .routes(routes!(upload_transcript))
}

/// A path segment; a malformed one is a problem like any bad input.
pub struct Segment<const N: usize>(pub Vec<String>);

impl<S: Send + Sync, const N: usize> FromRequestParts<S> for Segment<N> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Path::<Vec<String>>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) if v.len() == N => Ok(Segment(v)),
            Ok(_) => Err(Problem::invalid("unexpected path parameters")),
            Err(rejection) => Err(Problem::invalid(rejection.body_text())),
        }
    }
}

/// Lists the coding agents Warren knows: whether each is installed in this
/// sandbox, its version and what Warren's driver of it supports.
#[utoipa::path(get, path = "/v1/agents", tag = "sessions",
    responses((status = 200, description = "Every agent", body = AgentList)))]
async fn list_agents(State(state): State<AppState>) -> Json<AgentList> {
    Json(state.sessions.agents().list().await)
}

/// Installs an agent from the npm registry (`npm install -g`), streaming
/// progress as server-sent events (`event: install`, data `InstallEvent`
/// with `phase` `started`, `output`, `done` or `error`). Idempotent: an
/// installed agent answers `done` at once. Needs `npm` in the sandbox (the
/// `agents` template has it, with all three agents preinstalled).
#[utoipa::path(post, path = "/v1/agents/{agent}/install", tag = "sessions",
    params(("agent" = String, Path, description = "`claude`, `codex` or `opencode`")),
    responses(
        (status = 200, description = "Progress, as SSE", content_type = "text/event-stream", body = InstallEvent),
        (status = 404, description = "`agent_not_found`", content_type = PROBLEM, body = Problem),
        (status = 409, description = "`conflict`: the sandbox has no npm", content_type = PROBLEM, body = Problem)))]
async fn install_agent(
    State(state): State<AppState>,
    Segment(p): Segment<1>,
) -> Result<Response, AgentError> {
    let kind = AgentKind::parse(&p[0]).ok_or_else(|| AgentError::UnknownAgent(p[0].clone()))?;
    let agents = state.sessions.agents();
    let info: AgentInfo = agents.info(kind).await;
    if !info.installed && state.processes.find_program("npm").is_none() {
        return Err(AgentError::Missing(
            "npm is not installed in this sandbox: use the agents template, or install nodejs and npm first".into(),
        ));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<InstallEvent>(64);
    tokio::spawn(async move { agents.install(kind, tx).await });
    let events = futures::stream::unfold(rx, |mut rx| async move {
        let event = rx.recv().await?;
        Some((Ok::<_, Infallible>(json_event("install", &event)), rx))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Starts a coding-agent session: the agent runs in the sandbox (in `cwd`,
/// with `env` over the sandbox's environment) and its output becomes the
/// session's event stream. With `prompt`, the first turn starts at once.
/// `env` is never logged, returned or written to the session's files.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions",
    request_body = CreateSession,
    responses(
        (status = 201, description = "Started", body = Session),
        (status = 400, description = "Bad request", content_type = PROBLEM, body = Problem),
        (status = 404, description = "`agent_not_found`", content_type = PROBLEM, body = Problem),
        (status = 409, description = "`agent_not_installed`", content_type = PROBLEM, body = Problem),
        (status = 429, description = "Too many sessions running", content_type = PROBLEM, body = Problem)))]
async fn create_session(
    State(state): State<AppState>,
    Json(req): Json<CreateSession>,
) -> Result<(StatusCode, Json<Session>), AgentError> {
    Ok((StatusCode::CREATED, Json(state.sessions.create(req)?)))
}

/// Lists the sessions on this sandbox's disk, oldest first (after a
/// restore or in a fork: the sessions as of the checkpoint).
#[utoipa::path(get, path = "/v1/sessions", tag = "sessions",
    responses((status = 200, description = "The sessions", body = SessionList)))]
async fn list_sessions(State(state): State<AppState>) -> Json<SessionList> {
    Json(state.sessions.list())
}

/// One session.
#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "`ses_…`")),
    responses(
        (status = 200, description = "The session", body = Session),
        (status = 404, description = "`session_not_found`", content_type = PROBLEM, body = Problem)))]
async fn get_session(
    State(state): State<AppState>,
    Segment(p): Segment<1>,
) -> Result<Json<Session>, AgentError> {
    Ok(Json(state.sessions.entry(&p[0])?.info()))
}

/// Kills the agent and ends the session (`session.ended`, reason
/// `killed`). Its events and transcript stay readable.
#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "`ses_…`")),
    responses(
        (status = 200, description = "The ended session", body = Session),
        (status = 404, description = "`session_not_found`", content_type = PROBLEM, body = Problem)))]
async fn kill_session(
    State(state): State<AppState>,
    Segment(p): Segment<1>,
) -> Result<Json<Session>, AgentError> {
    Ok(Json(state.sessions.kill(&p[0])?))
}

/// Sends a follow-up prompt. It runs after the current turn. A session
/// whose agent is no longer running (after a restore, in a fork, after the
/// sandbox restarted) is resumed from its native session first.
#[utoipa::path(post, path = "/v1/sessions/{id}/messages", tag = "sessions",
    params(("id" = String, Path, description = "`ses_…`")),
    request_body = SendMessage,
    responses(
        (status = 202, description = "Accepted", body = Session),
        (status = 404, description = "`session_not_found`", content_type = PROBLEM, body = Problem),
        (status = 409, description = "`session_ended`", content_type = PROBLEM, body = Problem)))]
async fn send_message(
    State(state): State<AppState>,
    Segment(p): Segment<1>,
    Json(req): Json<SendMessage>,
) -> Result<(StatusCode, Json<Session>), AgentError> {
    state.sessions.send(&p[0], req.text, req.env.as_ref())?;
    Ok((
        StatusCode::ACCEPTED,
        Json(state.sessions.entry(&p[0])?.info()),
    ))
}

/// Query of `GET /v1/sessions/{id}/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// Events after this sequence (default 0: from the first). For SSE, the
    /// `Last-Event-ID` header is used when this is absent.
    after: Option<u64>,
    /// Page size of the JSON form (default 100, at most 1000).
    limit: Option<usize>,
    /// Stream as server-sent events: replay, then live until the session ends.
    follow: Option<bool>,
    /// Add the agent's native payload to each event (`raw`).
    include_raw: Option<bool>,
}

/// A session's events after a sequence. As JSON, one page with
/// `next_after`. With `follow=true` or `Accept: text/event-stream`,
/// server-sent events (each `id` is the sequence, `data` the event):
/// the events after `after`, then live ones with no gap, until the session
/// has ended and every event was sent.
#[utoipa::path(get, path = "/v1/sessions/{id}/events", tag = "sessions",
    params(("id" = String, Path, description = "`ses_…`"), EventsQuery),
    responses(
        (status = 200, description = "A page (JSON), or an SSE stream",
            content((EventPage = "application/json"), (Event = "text/event-stream"))),
        (status = 400, description = "Bad query", content_type = PROBLEM, body = Problem),
        (status = 404, description = "`session_not_found`", content_type = PROBLEM, body = Problem)))]
async fn session_events(
    State(state): State<AppState>,
    Segment(p): Segment<1>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, AgentError> {
    let entry = state.sessions.entry(&p[0])?;
    let raw = q.include_raw.unwrap_or(false);
    if !(q.follow.unwrap_or(false) || wants_event_stream(&headers)) {
        let after = q.after.unwrap_or(0);
        let limit = q.limit.unwrap_or(DEFAULT_PAGE);
        if limit == 0 || limit > MAX_PAGE {
            return Err(AgentError::InvalidRequest(format!(
                "limit must be between 1 and {MAX_PAGE}"
            )));
        }
        let items: Vec<Event> = entry
            .log
            .after(after, limit)
            .iter()
            .map(|e| shown(e, raw))
            .collect();
        let next_after = items.last().map_or(after, |e| e.sequence);
        return Ok(Json(EventPage { items, next_after }).into_response());
    }
    let after = q.after.or_else(|| last_event_id(&headers)).unwrap_or(0);
    let follower = Follower {
        rx: entry.log.changed(),
        entry,
        cursor: after,
        batch: std::collections::VecDeque::new(),
        raw,
    };
    let events = futures::stream::unfold(follower, |mut f| async move {
        let event = f.next().await?;
        let sse = SseEvent::default()
            .id(event.sequence.to_string())
            .data(serde_json::to_string(&event).unwrap_or_default());
        Some((Ok::<_, Infallible>(sse), f))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// An event as shown: without `raw` unless it was asked for.
fn shown(event: &Event, raw: bool) -> Event {
    let mut event = event.clone();
    if !raw {
        event.raw = None;
    }
    event
}

/// Replay-then-live over one session's log.
struct Follower {
    entry: Arc<SessionEntry>,
    rx: tokio::sync::watch::Receiver<u64>,
    cursor: u64,
    batch: std::collections::VecDeque<Arc<Event>>,
    raw: bool,
}

impl Follower {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.batch.pop_front() {
                self.cursor = event.sequence;
                return Some(shown(&event, self.raw));
            }
            // Mark the current version seen before reading, so an append
            // between the read and the wait still wakes us.
            self.rx.borrow_and_update();
            let closed = self.entry.log.is_closed();
            self.batch
                .extend(self.entry.log.after(self.cursor, SSE_BATCH));
            if !self.batch.is_empty() {
                continue;
            }
            if closed {
                return None;
            }
            self.rx.changed().await.ok()?;
        }
    }
}

/// Answers a pending permission request: `once` allows this use, `always`
/// the tool for the rest of the session, `reject` refuses it.
#[utoipa::path(post, path = "/v1/sessions/{id}/permissions/{permission_id}", tag = "sessions",
    params(("id" = String, Path, description = "`ses_…`"), ("permission_id" = String, Path, description = "`perm_…`")),
    request_body = PermissionAnswer,
    responses(
        (status = 204, description = "Answered"),
        (status = 404, description = "`session_not_found`, or `request_not_found` (no such pending request)", content_type = PROBLEM, body = Problem),
        (status = 409, description = "`session_ended`", content_type = PROBLEM, body = Problem)))]
async fn answer_permission(
    State(state): State<AppState>,
    Segment(p): Segment<2>,
    Json(req): Json<PermissionAnswer>,
) -> Result<StatusCode, AgentError> {
    state
        .sessions
        .answer_permission(&p[0], &p[1], req.decision)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Answers a pending question (`answers`), or refuses it (`reject: true`).
#[utoipa::path(post, path = "/v1/sessions/{id}/questions/{question_id}", tag = "sessions",
    params(("id" = String, Path, description = "`ses_…`"), ("question_id" = String, Path, description = "`q_…`")),
    request_body = QuestionAnswer,
    responses(
        (status = 204, description = "Answered"),
        (status = 400, description = "Neither answers nor reject", content_type = PROBLEM, body = Problem),
        (status = 404, description = "`session_not_found`, or `request_not_found`", content_type = PROBLEM, body = Problem),
        (status = 409, description = "`session_ended`", content_type = PROBLEM, body = Problem)))]
async fn answer_question(
    State(state): State<AppState>,
    Segment(p): Segment<2>,
    Json(req): Json<QuestionAnswer>,
) -> Result<StatusCode, AgentError> {
    let reply = match (req.answers, req.reject) {
        (_, Some(true)) => Reply::Rejected,
        (Some(answers), _) if answers.len() <= 64 => Reply::Answers(answers),
        _ => {
            return Err(AgentError::InvalidRequest(
                "give answers (at most 64) or reject: true".into(),
            ))
        }
    };
    state.sessions.answer_question(&p[0], &p[1], reply)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stops the current turn; the session stays and takes the next message.
#[utoipa::path(post, path = "/v1/sessions/{id}/interrupt", tag = "sessions",
    params(("id" = String, Path, description = "`ses_…`")),
    responses(
        (status = 204, description = "Interrupted (or nothing was running)"),
        (status = 404, description = "`session_not_found`", content_type = PROBLEM, body = Problem),
        (status = 409, description = "`session_ended`", content_type = PROBLEM, body = Problem)))]
async fn interrupt_session(
    State(state): State<AppState>,
    Segment(p): Segment<1>,
) -> Result<StatusCode, AgentError> {
    state.sessions.interrupt(&p[0])?;
    Ok(StatusCode::NO_CONTENT)
}

/// The agent's own session file (Claude Code's `.jsonl`, the mock's
/// history, ...), gzip-compressed: upload it into another sandbox with
/// `POST /v1/transcripts` and `resume` it there.
#[utoipa::path(get, path = "/v1/sessions/{id}/transcript", tag = "sessions",
    params(("id" = String, Path, description = "`ses_…`")),
    responses(
        (status = 200, description = "The native session file, gzip", content_type = "application/gzip", body = Vec<u8>),
        (status = 404, description = "`session_not_found`, or `file_not_found` (the agent has written none yet)", content_type = PROBLEM, body = Problem)))]
async fn download_transcript(
    State(state): State<AppState>,
    Segment(p): Segment<1>,
) -> Result<Response, AgentError> {
    let entry = state.sessions.entry(&p[0])?;
    let sessions = state.sessions.clone();
    let gz = tokio::task::spawn_blocking(move || transcript::download(&sessions, &entry))
        .await
        .map_err(|e| AgentError::Io {
            op: "reading the transcript",
            source: std::io::Error::other(e.to_string()),
        })??;
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"transcript.jsonl.gz\"",
            ),
        ],
        Body::from(gz),
    )
        .into_response())
}

/// Query of `POST /v1/transcripts`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UploadQuery {
    /// The agent whose session file this is.
    agent: String,
    /// The working directory the resumed session will run in (default: the
    /// agent's workdir); Claude Code keys its sessions by it.
    cwd: Option<String>,
}

/// Uploads a gzip transcript (from `GET .../transcript`, possibly of
/// another sandbox) and returns the native session id to pass as `resume`.
#[utoipa::path(post, path = "/v1/transcripts", tag = "sessions",
    params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The gzip file (any content type is accepted)"),
    responses(
        (status = 201, description = "Stored", body = TranscriptUploaded),
        (status = 400, description = "`invalid_transcript`: not gzip, or not the agent's session format", content_type = PROBLEM, body = Problem),
        (status = 404, description = "`agent_not_found`", content_type = PROBLEM, body = Problem),
        (status = 413, description = "Over the size limit", content_type = PROBLEM, body = Problem)))]
async fn upload_transcript(
    State(state): State<AppState>,
    Query(q): Query<UploadQuery>,
    body: Body,
) -> Result<(StatusCode, Json<TranscriptUploaded>), AgentError> {
    let kind =
        AgentKind::parse(&q.agent).ok_or_else(|| AgentError::UnknownAgent(q.agent.clone()))?;
    // Read here, not by an extractor: transcripts may be larger than the
    // JSON body limit.
    let limited = http_body_util::Limited::new(body, transcript::MAX_GZIP);
    let body: Bytes = match http_body_util::BodyExt::collect(limited).await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(AgentError::TooLarge {
                what: "the transcript",
                limit: transcript::MAX_GZIP as u64,
            })
        }
        Err(e) => return Err(AgentError::BodyRead(e.to_string())),
    };
    let sessions = state.sessions.clone();
    let id = tokio::task::spawn_blocking(move || {
        transcript::upload(&sessions, kind, q.cwd.as_deref(), &body)
    })
    .await
    .map_err(|e| AgentError::Io {
        op: "storing the transcript",
        source: std::io::Error::other(e.to_string()),
    })??;
    Ok((
        StatusCode::CREATED,
        Json(TranscriptUploaded {
            native_session_id: id,
        }),
    ))
}
