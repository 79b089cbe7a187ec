//! Coding-agent sessions (`/v1/agents`, `/v1/sessions`, `/v1/transcripts`):
//! the bodies of API.md's "Coding-agent sessions". The agent serves them; the
//! server forwards them under `/v1/sandboxes/{id}/`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The coding agents Warren can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    /// Claude Code (`@anthropic-ai/claude-code`).
    Claude,
    /// OpenAI Codex CLI (`@openai/codex`).
    Codex,
    /// OpenCode (`opencode-ai`).
    Opencode,
    /// The deterministic agent built into `warren agent`: no model needed.
    Mock,
}

impl AgentKind {
    /// Every agent, in the order `GET /v1/agents` lists them.
    pub const ALL: [AgentKind; 4] = [
        AgentKind::Claude,
        AgentKind::Codex,
        AgentKind::Opencode,
        AgentKind::Mock,
    ];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::Claude => "claude",
            AgentKind::Codex => "codex",
            AgentKind::Opencode => "opencode",
            AgentKind::Mock => "mock",
        }
    }

    /// The agent of this name, if Warren knows one.
    pub fn parse(name: &str) -> Option<AgentKind> {
        AgentKind::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl std::fmt::Display for AgentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an agent's driver can do.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct AgentCapabilities {
    /// Text arrives as `item.delta` events while it is generated.
    pub streaming_deltas: bool,
    /// Tool calls and their results are reported as items.
    pub tool_calls: bool,
    /// Tool uses can wait for a `permission.requested` answer.
    pub permissions: bool,
    /// The agent can ask questions (`question.requested`).
    pub questions: bool,
    /// Reasoning is reported as items.
    pub reasoning: bool,
    /// Token counts (and cost, where known) arrive as `usage` events.
    pub usage: bool,
    /// A session can be resumed from its native session id.
    pub resume: bool,
    /// `GET .../transcript` returns the agent's native session file.
    pub transcript: bool,
    /// A turn can be interrupted while the session goes on.
    pub interrupt: bool,
    /// `mcp_servers` is passed on to the agent.
    pub mcp_servers: bool,
}

/// One entry of `GET /v1/agents`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentInfo {
    /// `claude`, `codex`, `opencode` or `mock`.
    pub agent: AgentKind,
    /// Whether its program is found in the sandbox.
    pub installed: bool,
    /// What the program reports as its version, when installed.
    pub version: Option<String>,
    /// What Warren's driver of this agent supports.
    pub capabilities: AgentCapabilities,
}

/// `GET /v1/agents`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentList {
    /// Every agent Warren knows, installed or not.
    pub items: Vec<AgentInfo>,
}

/// One progress event of `POST /v1/agents/{agent}/install` (SSE `data`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstallEvent {
    /// `started`, `output` (a line of the installer), `done` or `error`.
    pub phase: String,
    /// The installer's line, or what went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The agent as it is after a `done`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentInfo>,
}

/// How freely the agent may use tools.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PermissionMode {
    /// Every tool use outside `allowed_tools` asks (`permission.requested`).
    #[default]
    Default,
    /// File edits go ahead; other tools ask.
    AcceptEdits,
    /// The agent plans and changes nothing.
    Plan,
    /// Every tool use goes ahead without asking.
    Bypass,
}

impl PermissionMode {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionMode::Default => "default",
            PermissionMode::AcceptEdits => "accept_edits",
            PermissionMode::Plan => "plan",
            PermissionMode::Bypass => "bypass",
        }
    }
}

/// `POST /v1/sessions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateSession {
    /// `claude`, `codex`, `opencode` or `mock`.
    pub agent: String,
    /// The first prompt; without one the session waits for a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The model, as the agent names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Replaces the agent's system prompt (where the agent allows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Tools that never ask for permission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_tools: Option<Vec<String>>,
    /// Default `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_mode: Option<PermissionMode>,
    /// Most agent turns per prompt (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u32>,
    /// Working directory of the agent; relative to the agent's workdir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Environment of the agent (credentials such as `ANTHROPIC_API_KEY`).
    /// Never logged, returned or written to the session's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// MCP servers, name → configuration, in the agents' common
    /// `{command, args, env}` or `{type: "http", url}` form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub mcp_servers: Option<BTreeMap<String, Value>>,
    /// A native session id to continue (from an earlier session, or from
    /// `POST /v1/transcripts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
    /// How long a permission or question request waits for an answer
    /// before it counts as rejected (default: the agent's, 600 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout_secs: Option<u64>,
}

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// The agent is being started.
    Starting,
    /// A turn is in progress.
    Running,
    /// The turn is done; the agent awaits a message.
    Idle,
    /// A permission or question request is pending.
    Waiting,
    /// The session is over.
    Ended,
}

/// A session object.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Session {
    /// `ses_…`.
    pub id: String,
    /// The agent driving it.
    pub agent: AgentKind,
    /// Where it is.
    pub state: SessionState,
    /// The model, when one was asked for or the agent reported one.
    pub model: Option<String>,
    /// The agent's own id of the conversation (usable as `resume`).
    pub native_session_id: Option<String>,
    /// The agent's working directory.
    pub cwd: String,
    /// The permission mode it runs under.
    pub permission_mode: PermissionMode,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, once ended.
    pub ended_at: Option<String>,
    /// The sequence of its newest event (0 before the first).
    pub last_sequence: u64,
}

/// `GET /v1/sessions`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionList {
    /// Oldest first.
    pub items: Vec<Session>,
}

/// `POST /v1/sessions/{id}/messages`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SendMessage {
    /// The follow-up prompt.
    pub text: String,
    /// The agent's environment, when this message resumes a session whose
    /// agent is no longer running (after a restore, in a fork): credentials
    /// are never written down, so they are given again here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
}

/// Who produced an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventSource {
    /// Mapped from the agent's own output.
    Agent,
    /// Warren's agent daemon (start, end, time-outs, errors of its own).
    Daemon,
}

/// One event of a session's stream.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// 1, 2, … per session, without gaps.
    pub sequence: u64,
    /// RFC 3339 with milliseconds.
    pub time: String,
    /// The session.
    pub session_id: String,
    /// `session.started`, `session.ended`, `item.started`, `item.delta`,
    /// `item.completed`, `permission.requested`, `permission.resolved`,
    /// `question.requested`, `question.resolved`, `usage`, `error`,
    /// `agent.unparsed`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Who produced it.
    pub source: EventSource,
    /// The type's fields (see API.md).
    #[schema(value_type = Object)]
    pub data: Value,
    /// The agent's native payload, with `?include_raw=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub raw: Option<Value>,
}

/// `GET /v1/sessions/{id}/events` as paged JSON.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    /// Events after `after`, oldest first.
    pub items: Vec<Event>,
    /// Pass as `after` for the next page (the last item's sequence, or
    /// `after` itself when there was none).
    pub next_after: u64,
}

/// An answer to a permission request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PermissionDecision {
    /// Allow this one use.
    Once,
    /// Allow this tool for the rest of the session.
    Always,
    /// Refuse; the agent is told and goes on without the tool.
    Reject,
}

/// `POST /v1/sessions/{id}/permissions/{permission_id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PermissionAnswer {
    /// `once`, `always` or `reject`.
    pub decision: PermissionDecision,
}

/// `POST /v1/sessions/{id}/questions/{question_id}`: `answers`, or `reject`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct QuestionAnswer {
    /// One answer per question asked (an option's label, or free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<Vec<String>>,
    /// Refuse to answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject: Option<bool>,
}

/// `POST /v1/transcripts?agent=`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TranscriptUploaded {
    /// Pass as `resume` to `POST /v1/sessions`.
    pub native_session_id: String,
}
