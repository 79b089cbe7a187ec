//! [`AgentError`]: every way an agent operation fails, each mapped to exactly
//! one problem code at the HTTP edge ([`From<AgentError> for Problem`]).
//! Internal errors are logged with their cause; the response says only that
//! something failed on our side.

use std::io;

use warren_api::{ErrorCode, Problem};

/// Failures of agent operations.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The request is malformed or names invalid values.
    #[error("{0}")]
    InvalidRequest(String),
    /// No managed process with this id.
    #[error("no process with id {0}")]
    ProcessNotFound(String),
    /// The process has exited, so it cannot take stdin, signals or resizes.
    #[error("process {0} is not running")]
    ProcessNotRunning(String),
    /// The process is still running and `force` was not given.
    #[error("process {0} is still running; pass force=true to kill it first")]
    ProcessStillRunning(String),
    /// Too many processes at once.
    #[error("too many processes running (limit {0})")]
    TooManyProcesses(usize),
    /// Too many watches at once.
    #[error("too many watches (limit {0})")]
    TooManyWatches(usize),
    /// A body or payload over its limit.
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit in bytes.
        limit: u64,
    },
    /// The program could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program that failed to start.
        program: String,
        /// Why.
        source: io::Error,
    },
    /// `argv[0]` names no executable file in `PATH`.
    #[error("program {program:?} not found in PATH ({path})")]
    ProgramNotFound {
        /// The program as given.
        program: String,
        /// The `PATH` that was searched.
        path: String,
    },
    /// The working directory cannot be used.
    #[error("working directory {cwd}: {source}")]
    BadCwd {
        /// The directory, resolved against the workdir.
        cwd: String,
        /// Why.
        source: io::Error,
    },
    /// A signal name or number that does not exist.
    #[error("unknown signal {0}: give a name such as SIGTERM or TERM, or a number")]
    UnknownSignal(String),
    /// `stdin` data that does not decode in its encoding.
    #[error("stdin data is not valid base64: {0}")]
    BadStdinEncoding(String),
    /// The process has no terminal, so it cannot be resized.
    #[error("process {0} has no terminal (start it with tty: true)")]
    NotATty(String),
    /// stdin was closed (by `eof`, or by the process).
    #[error("stdin of process {0} is closed")]
    StdinClosed(String),
    /// The process does not read its stdin, so the write could not finish.
    #[error("process {id} did not read its stdin within {secs} s")]
    StdinStalled {
        /// The process.
        id: String,
        /// How long the write waited.
        secs: u64,
    },
    /// Nothing exists at this path.
    #[error("no such file or directory: {0}")]
    FileNotFound(String),
    /// The path escapes the agent's root jail.
    #[error("path {0} is outside the agent's root")]
    PathNotAllowed(String),
    /// The destination already exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// `edit` found its text zero or several times.
    #[error("old_text occurs {count} times in {path}; it must occur exactly once")]
    EditConflict {
        /// The file edited.
        path: String,
        /// How many times `old_text` occurs.
        count: usize,
    },
    /// A `Range` header that cannot be satisfied.
    #[error("range not satisfiable for a file of {size} bytes")]
    RangeNotSatisfiable {
        /// The file's size.
        size: u64,
    },
    /// A file-system call on a caller's path failed; the code follows the
    /// errno (`ENOENT` is `file_not_found`, `EACCES` is `forbidden`, ...).
    #[error("{op} {path}: {source}")]
    Fs {
        /// The operation that failed.
        op: &'static str,
        /// The path as the caller named it.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// A file operation was asked of a directory.
    #[error("{0} is a directory")]
    IsADirectory(String),
    /// A directory operation was asked of something else.
    #[error("{0} is not a directory")]
    NotADirectory(String),
    /// The path names a device, socket or FIFO where a regular file is needed.
    #[error("{0} is not a regular file")]
    NotARegularFile(String),
    /// A non-empty directory and `recursive` was not asked.
    #[error("directory {0} is not empty; pass recursive=true to remove it and its contents")]
    DirectoryNotEmpty(String),
    /// The kernel's inotify limits (instances or watches per user) are reached.
    #[error("the system's inotify limit is reached: {0}")]
    InotifyLimit(io::Error),
    /// The tar stream of an upload is malformed.
    #[error("invalid tar archive: {0}")]
    InvalidTar(io::Error),
    /// An upload's tar entry would land outside the target directory.
    #[error("tar entry {0:?} is not allowed: {1}")]
    UnsafeTarEntry(String, &'static str),
    /// The request body could not be read to its end (the client went away).
    #[error("reading the request body failed: {0}")]
    BodyRead(String),
    /// No coding agent of this name.
    #[error("unknown agent {0:?}: use claude, codex, opencode or mock")]
    UnknownAgent(String),
    /// The agent's program is not in the sandbox.
    #[error("agent {0} is not installed in this sandbox; POST /v1/agents/{0}/install installs it")]
    AgentNotInstalled(String),
    /// No session with this id.
    #[error("no session with id {0}")]
    SessionNotFound(String),
    /// The session has ended.
    #[error("session {0} has ended")]
    SessionEnded(String),
    /// No pending permission or question with this id.
    #[error("no pending request with id {0}")]
    RequestNotFound(String),
    /// A transcript that cannot be used.
    #[error("invalid transcript: {0}")]
    InvalidTranscript(String),
    /// Too many sessions whose agent runs at once.
    #[error("too many sessions running (limit {0})")]
    TooManySessions(usize),
    /// Something the operation needs is missing from the sandbox.
    #[error("{0}")]
    Missing(String),
    /// The live view has its maximum of viewers.
    #[error("at most {0} live viewers at once")]
    TooManyViewers(usize),
    /// The desktop's display is not started (or its X server has exited).
    #[error("the desktop is not running: POST /v1/desktop/start starts it")]
    DesktopNotRunning,
    /// The desktop's browser is not started (or it has exited).
    #[error("the browser is not running: POST /v1/desktop/browser/start starts it")]
    BrowserNotRunning,
    /// The desktop is running in another shape, or no display is free.
    #[error("{0}")]
    DesktopConflict(String),
    /// No top-level window with this id on the display.
    #[error("no window with id {0}")]
    WindowNotFound(u32),
    /// No element with this ref on the browser's page.
    #[error(
        "no element with ref {0} on the page (refs come from GET /v1/desktop/browser/snapshot)"
    )]
    ElementNotFound(String),
    /// No recording with this id.
    #[error("no recording with id {0}")]
    RecordingNotFound(String),
    /// A desktop tool did not finish within its time limit (it was killed).
    #[error("{tool} did not finish within {secs} s")]
    ToolTimedOut {
        /// The program.
        tool: String,
        /// Its limit.
        secs: u64,
    },
    /// A desktop tool failed; the detail is logged, not returned.
    #[error("{tool} failed: {detail}")]
    ToolFailed {
        /// The program.
        tool: String,
        /// Its exit status and the start of its stderr.
        detail: String,
    },
    /// An I/O failure on the given operation, not caused by the request.
    #[error("{op}: {source}")]
    Io {
        /// The operation that failed.
        op: &'static str,
        /// Why.
        source: io::Error,
    },
}

impl AgentError {
    /// The stable problem code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            AgentError::Spawn { source, .. } if is_resource_exhaustion(source) => {
                ErrorCode::TooManyRequests
            }
            AgentError::InvalidRequest(_)
            | AgentError::Spawn { .. }
            | AgentError::ProgramNotFound { .. }
            | AgentError::BadCwd { .. }
            | AgentError::UnknownSignal(_)
            | AgentError::BadStdinEncoding(_) => ErrorCode::InvalidRequest,
            AgentError::ProcessNotFound(_) => ErrorCode::ProcessNotFound,
            AgentError::ProcessNotRunning(_) => ErrorCode::ProcessNotRunning,
            AgentError::ProcessStillRunning(_)
            | AgentError::NotATty(_)
            | AgentError::StdinClosed(_) => ErrorCode::Conflict,
            AgentError::StdinStalled { .. } => ErrorCode::Timeout,
            AgentError::TooManyProcesses(_) | AgentError::TooManyWatches(_) => {
                ErrorCode::TooManyRequests
            }
            AgentError::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            AgentError::FileNotFound(_) => ErrorCode::FileNotFound,
            AgentError::PathNotAllowed(_) => ErrorCode::PathNotAllowed,
            AgentError::AlreadyExists(_) => ErrorCode::AlreadyExists,
            AgentError::EditConflict { .. } => ErrorCode::EditConflict,
            AgentError::RangeNotSatisfiable { .. } => ErrorCode::RangeNotSatisfiable,
            AgentError::Fs { source, .. } => fs_code(source),
            AgentError::IsADirectory(_) => ErrorCode::IsADirectory,
            AgentError::NotADirectory(_) => ErrorCode::NotADirectory,
            AgentError::NotARegularFile(_)
            | AgentError::InvalidTar(_)
            | AgentError::BodyRead(_) => ErrorCode::InvalidRequest,
            AgentError::DirectoryNotEmpty(_) => ErrorCode::DirectoryNotEmpty,
            AgentError::InotifyLimit(_) => ErrorCode::TooManyRequests,
            AgentError::UnsafeTarEntry(..) => ErrorCode::PathNotAllowed,
            AgentError::UnknownAgent(_) => ErrorCode::AgentNotFound,
            AgentError::AgentNotInstalled(_) => ErrorCode::AgentNotInstalled,
            AgentError::SessionNotFound(_) => ErrorCode::SessionNotFound,
            AgentError::SessionEnded(_) => ErrorCode::SessionEnded,
            AgentError::RequestNotFound(_) => ErrorCode::RequestNotFound,
            AgentError::InvalidTranscript(_) => ErrorCode::InvalidTranscript,
            AgentError::TooManySessions(_) => ErrorCode::TooManyRequests,
            AgentError::Missing(_) => ErrorCode::Conflict,
            AgentError::DesktopNotRunning => ErrorCode::DesktopNotRunning,
            AgentError::TooManyViewers(_) => ErrorCode::TooManyRequests,
            AgentError::BrowserNotRunning => ErrorCode::BrowserNotRunning,
            AgentError::WindowNotFound(_) => ErrorCode::WindowNotFound,
            AgentError::ElementNotFound(_) => ErrorCode::ElementNotFound,
            AgentError::DesktopConflict(_) => ErrorCode::Conflict,
            AgentError::RecordingNotFound(_) => ErrorCode::RecordingNotFound,
            AgentError::ToolTimedOut { .. } => ErrorCode::Timeout,
            AgentError::ToolFailed { .. } => ErrorCode::Internal,
            AgentError::Io { .. } => ErrorCode::Internal,
        }
    }
}

/// The problem code of a failed file-system call on a caller's path: errors
/// the caller can cause or fix are 4xx; the rest are internal.
fn fs_code(err: &io::Error) -> ErrorCode {
    match err.raw_os_error() {
        Some(libc::ENOENT) => ErrorCode::FileNotFound,
        Some(libc::EACCES | libc::EPERM | libc::EROFS) => ErrorCode::Forbidden,
        Some(libc::ENOTDIR) => ErrorCode::NotADirectory,
        Some(libc::EISDIR) => ErrorCode::IsADirectory,
        Some(libc::ENOTEMPTY) => ErrorCode::DirectoryNotEmpty,
        Some(libc::EEXIST) => ErrorCode::AlreadyExists,
        Some(libc::ENOSPC | libc::EDQUOT) => ErrorCode::InsufficientStorage,
        Some(libc::EFBIG) => ErrorCode::PayloadTooLarge,
        // ENXIO/ENODEV: opening a socket or a device without a driver.
        Some(
            libc::ENAMETOOLONG
            | libc::ELOOP
            | libc::EINVAL
            | libc::EILSEQ
            | libc::ENXIO
            | libc::ENODEV,
        ) => ErrorCode::InvalidRequest,
        Some(libc::EXDEV | libc::EBUSY | libc::ETXTBSY | libc::EMLINK) => ErrorCode::Conflict,
        _ => ErrorCode::Internal,
    }
}

/// Whether a spawn failed for lack of resources (processes, memory, file
/// descriptors) rather than because of the request: worth a retry later.
fn is_resource_exhaustion(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EAGAIN | libc::ENOMEM | libc::EMFILE | libc::ENFILE)
    )
}

impl From<AgentError> for Problem {
    fn from(err: AgentError) -> Problem {
        let code = err.code();
        if code == ErrorCode::Internal {
            tracing::error!(error = %err, "internal error");
            Problem::new(code, "the agent failed to complete the operation")
        } else {
            Problem::new(code, err.to_string())
        }
    }
}

impl axum::response::IntoResponse for AgentError {
    fn into_response(self) -> axum::response::Response {
        Problem::from(self).into_response()
    }
}
