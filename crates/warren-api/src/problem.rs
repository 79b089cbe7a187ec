//! RFC 7807 problem details, the body of every Warren error.
//!
//! Each problem carries a stable snake_case [`ErrorCode`] that clients match
//! on; `title` and `detail` are for people and may change. The HTTP status is
//! derived from the code, so one code always answers with one status.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Stable machine-readable error codes. Adding a variant is fine; renaming one
/// breaks clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed: bad JSON, a missing or invalid field (400).
    InvalidRequest,
    /// No or a wrong credential (401).
    Unauthorized,
    /// The credential is valid but not allowed to do this (403).
    Forbidden,
    /// The route does not exist (404).
    NotFound,
    /// No such sandbox, or one the caller may not see (404).
    SandboxNotFound,
    /// No such managed process (404).
    ProcessNotFound,
    /// No such file or directory (404).
    FileNotFound,
    /// No such checkpoint (404).
    CheckpointNotFound,
    /// No such template (404).
    TemplateNotFound,
    /// No such tenant (404).
    TenantNotFound,
    /// No such API key (404).
    KeyNotFound,
    /// No such preview (404).
    PreviewNotFound,
    /// The coding agent named is not one Warren knows (404).
    AgentNotFound,
    /// The coding agent is known but not installed in the sandbox (409);
    /// `POST /v1/agents/{agent}/install` installs it.
    AgentNotInstalled,
    /// No such coding-agent session (404).
    SessionNotFound,
    /// The session has ended: it takes no messages or answers (409).
    SessionEnded,
    /// No pending permission or question request with this id (404).
    RequestNotFound,
    /// An uploaded transcript is not a gzip of the agent's session file (400).
    InvalidTranscript,
    /// The method is not allowed on this route (405).
    MethodNotAllowed,
    /// The request conflicts with the current state (409).
    Conflict,
    /// `edit` found its `old_text` zero or several times (409).
    EditConflict,
    /// The target already exists and `overwrite` was not asked (409).
    AlreadyExists,
    /// A directory is not empty and `recursive` was not asked (409).
    DirectoryNotEmpty,
    /// The path names a directory where a file is needed (400).
    IsADirectory,
    /// The path, or one of its parents, is not a directory where one is needed (400).
    NotADirectory,
    /// The file system is full or over its quota (507).
    InsufficientStorage,
    /// The process is not in a state that allows this (409).
    ProcessNotRunning,
    /// The body is larger than the limit (413).
    PayloadTooLarge,
    /// A `Range` header that cannot be satisfied (416).
    RangeNotSatisfiable,
    /// The body's media type is not supported (415).
    UnsupportedMediaType,
    /// A path escapes the agent's root, or is not allowed (403).
    PathNotAllowed,
    /// A limit or quota was reached; retry later (429).
    TooManyRequests,
    /// A per-tenant quota was reached (429).
    QuotaExceeded,
    /// The operation did not finish in time (504).
    Timeout,
    /// A dependency (a sandbox's agent, the runtime) is not reachable (503).
    Unavailable,
    /// Nothing accepts connections on a sandbox's port (502): a preview
    /// whose server is not (yet) listening.
    PortUnreachable,
    /// A patch of the checkpoint a sandbox is made from failed; the detail
    /// has its exit code and output (422).
    PatchFailed,
    /// The desktop's display is not started: `POST /v1/desktop/start` (409).
    DesktopNotRunning,
    /// No window with this id on the desktop's display (404).
    WindowNotFound,
    /// No desktop recording with this id (404).
    RecordingNotFound,
    /// An unexpected failure on our side (500). Details are logged, not returned.
    Internal,
}

impl ErrorCode {
    /// The HTTP status this code answers with.
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            InvalidRequest => 400,
            Unauthorized => 401,
            Forbidden | PathNotAllowed => 403,
            NotFound | SandboxNotFound | ProcessNotFound | FileNotFound | CheckpointNotFound
            | TemplateNotFound | TenantNotFound | KeyNotFound | PreviewNotFound | AgentNotFound
            | SessionNotFound | RequestNotFound | WindowNotFound | RecordingNotFound => 404,
            MethodNotAllowed => 405,
            IsADirectory | NotADirectory => 400,
            Conflict | EditConflict | AlreadyExists | DirectoryNotEmpty | ProcessNotRunning
            | AgentNotInstalled | SessionEnded | DesktopNotRunning => 409,
            InvalidTranscript => 400,
            PayloadTooLarge => 413,
            UnsupportedMediaType => 415,
            RangeNotSatisfiable => 416,
            TooManyRequests | QuotaExceeded => 429,
            PatchFailed => 422,
            Internal => 500,
            PortUnreachable => 502,
            Unavailable => 503,
            Timeout => 504,
            InsufficientStorage => 507,
        }
    }

    /// The snake_case string of the code, as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidRequest => "invalid_request",
            Unauthorized => "unauthorized",
            Forbidden => "forbidden",
            NotFound => "not_found",
            SandboxNotFound => "sandbox_not_found",
            ProcessNotFound => "process_not_found",
            FileNotFound => "file_not_found",
            CheckpointNotFound => "checkpoint_not_found",
            TemplateNotFound => "template_not_found",
            TenantNotFound => "tenant_not_found",
            KeyNotFound => "key_not_found",
            PreviewNotFound => "preview_not_found",
            AgentNotFound => "agent_not_found",
            AgentNotInstalled => "agent_not_installed",
            SessionNotFound => "session_not_found",
            SessionEnded => "session_ended",
            RequestNotFound => "request_not_found",
            InvalidTranscript => "invalid_transcript",
            MethodNotAllowed => "method_not_allowed",
            Conflict => "conflict",
            EditConflict => "edit_conflict",
            AlreadyExists => "already_exists",
            DirectoryNotEmpty => "directory_not_empty",
            IsADirectory => "is_a_directory",
            NotADirectory => "not_a_directory",
            InsufficientStorage => "insufficient_storage",
            ProcessNotRunning => "process_not_running",
            PayloadTooLarge => "payload_too_large",
            RangeNotSatisfiable => "range_not_satisfiable",
            UnsupportedMediaType => "unsupported_media_type",
            PathNotAllowed => "path_not_allowed",
            TooManyRequests => "too_many_requests",
            QuotaExceeded => "quota_exceeded",
            Timeout => "timeout",
            Unavailable => "unavailable",
            PortUnreachable => "port_unreachable",
            PatchFailed => "patch_failed",
            DesktopNotRunning => "desktop_not_running",
            WindowNotFound => "window_not_found",
            RecordingNotFound => "recording_not_found",
            Internal => "internal",
        }
    }

    /// A short human title for the code.
    pub fn title(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidRequest => "Invalid request",
            Unauthorized => "Unauthorized",
            Forbidden => "Forbidden",
            NotFound => "Not found",
            SandboxNotFound => "Sandbox not found",
            ProcessNotFound => "Process not found",
            FileNotFound => "File not found",
            CheckpointNotFound => "Checkpoint not found",
            TemplateNotFound => "Template not found",
            TenantNotFound => "Tenant not found",
            KeyNotFound => "Key not found",
            PreviewNotFound => "Preview not found",
            AgentNotFound => "Agent not found",
            AgentNotInstalled => "Agent not installed",
            SessionNotFound => "Session not found",
            SessionEnded => "Session ended",
            RequestNotFound => "Request not found",
            InvalidTranscript => "Invalid transcript",
            MethodNotAllowed => "Method not allowed",
            Conflict => "Conflict",
            EditConflict => "Edit conflict",
            AlreadyExists => "Already exists",
            DirectoryNotEmpty => "Directory not empty",
            IsADirectory => "Is a directory",
            NotADirectory => "Not a directory",
            InsufficientStorage => "Insufficient storage",
            ProcessNotRunning => "Process not running",
            PayloadTooLarge => "Payload too large",
            RangeNotSatisfiable => "Range not satisfiable",
            UnsupportedMediaType => "Unsupported media type",
            PathNotAllowed => "Path not allowed",
            TooManyRequests => "Too many requests",
            QuotaExceeded => "Quota exceeded",
            Timeout => "Timeout",
            Unavailable => "Unavailable",
            PortUnreachable => "Port unreachable",
            PatchFailed => "Patch failed",
            DesktopNotRunning => "Desktop not running",
            WindowNotFound => "Window not found",
            RecordingNotFound => "Recording not found",
            Internal => "Internal error",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An RFC 7807 `application/problem+json` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `https://warren.dev/problems/<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    /// A short human summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence, for people.
    pub detail: String,
    /// The stable machine-readable code.
    pub code: ErrorCode,
}

/// Media type of problem bodies.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

impl Problem {
    /// A problem with the given code and detail; status and title follow the code.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Problem {
            type_: format!("https://warren.dev/problems/{}", code.as_str()),
            title: code.title().to_string(),
            status: code.status(),
            detail: detail.into(),
            code,
        }
    }

    /// Shorthand for [`ErrorCode::InvalidRequest`].
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, detail)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.title, self.code, self.detail)
    }
}

impl std::error::Error for Problem {}

#[cfg(feature = "axum")]
impl axum::response::IntoResponse for Problem {
    fn into_response(self) -> axum::response::Response {
        let status = axum::http::StatusCode::from_u16(self.status)
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (
            status,
            [(axum::http::header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE)],
            body,
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_serializes_as_its_string() {
        for code in [
            ErrorCode::SandboxNotFound,
            ErrorCode::EditConflict,
            ErrorCode::Internal,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        let p = Problem::new(ErrorCode::FileNotFound, "no /x");
        let v: serde_json::Value = serde_json::to_value(&p).unwrap();
        assert_eq!(v["type"], "https://warren.dev/problems/file_not_found");
        assert_eq!(v["status"], 404);
        assert_eq!(v["code"], "file_not_found");
    }
}
