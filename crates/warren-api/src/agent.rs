//! Request and response bodies of the in-sandbox agent API (`/v1/processes`,
//! `/v1/files`, `/v1/health`). The server forwards these unchanged under
//! `/v1/sandboxes/{id}/...`, and the clients speak them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `GET /v1/health`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `"ok"` when the service answers.
    pub status: String,
    /// The Warren version.
    pub version: String,
}

/// `GET` and `PATCH /v1/environment`: the default environment of every
/// process the agent starts from now on (a request's own `env` goes over it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Environment {
    /// Variables; a `PATCH` sets these over the current ones.
    pub env: BTreeMap<String, String>,
}

/// What to run: exactly one of `cmd` (through `/bin/sh -c`) or `argv` (exec'd directly).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RunRequest {
    /// A shell command line, run by `/bin/sh -c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// A program and its arguments, exec'd directly (no shell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// Working directory; relative paths are resolved against the agent's workdir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Environment, merged over the agent's default environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// Run as this user (a name from `/etc/passwd`, or a numeric uid):
    /// its uid, primary and supplementary groups, and `HOME`, `USER` and
    /// `LOGNAME` (unless `env` sets them). Default: the agent's own user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Bytes written to the process's stdin, which is then closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// Kill the whole process group after this long (default 60000, capped by the agent's maximum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Keep at most this many bytes of each stream (default 1 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_bytes: Option<u64>,
}

/// Result of `POST /v1/processes/run`. A non-zero exit is a result, not an error.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RunResponse {
    /// Exit status, or null when the process was killed by a signal.
    pub exit_code: Option<i32>,
    /// The signal number that ended the process, if any.
    pub signal: Option<i32>,
    /// Standard output, decoded as UTF-8 (invalid sequences replaced).
    pub stdout: String,
    /// Standard error, decoded as UTF-8 (invalid sequences replaced).
    pub stderr: String,
    /// Whether the timeout fired and the process group was killed.
    pub timed_out: bool,
    /// Whether stdout was cut at `max_output_bytes`.
    pub stdout_truncated: bool,
    /// Whether stderr was cut at `max_output_bytes`.
    pub stderr_truncated: bool,
    /// Wall time from spawn to exit.
    pub duration_ms: u64,
    /// Id of the checkpoint taken after the command (server, `auto_checkpoint` sandboxes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}

/// `POST /v1/processes`: a managed process.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct StartRequest {
    /// A shell command line, run by `/bin/sh -c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// A program and its arguments, exec'd directly (no shell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// Working directory; relative paths are resolved against the agent's workdir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Environment, merged over the agent's default environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// Run as this user (a name from `/etc/passwd`, or a numeric uid):
    /// its uid, primary and supplementary groups, and `HOME`, `USER` and
    /// `LOGNAME` (unless `env` sets them). Default: the agent's own user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Bytes written to stdin right after start (stdin stays open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// Kill the process group after this long; no limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Allocate a pseudo-terminal (stdout and stderr become one stream).
    #[serde(default)]
    pub tty: bool,
    /// Terminal width (tty only, default 80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cols: Option<u16>,
    /// Terminal height (tty only, default 24).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u16>,
}

/// Lifecycle state of a managed process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProcessState {
    /// Still running.
    Running,
    /// Exited (or killed); `exit_code` or `signal` says how.
    Exited,
}

/// A managed process.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProcessInfo {
    /// `proc_…`.
    pub id: String,
    /// Host (or sandbox) pid; also the process group and session id.
    pub pid: i32,
    /// The shell command, when started with `cmd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// The argv, when started with `argv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// Whether it runs on a pseudo-terminal.
    pub tty: bool,
    /// `running` or `exited`.
    pub state: ProcessState,
    /// Alias of `state`, for clients that expect `status`.
    pub status: ProcessState,
    /// Exit status once exited normally.
    pub exit_code: Option<i32>,
    /// Signal number once killed by a signal.
    pub signal: Option<i32>,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC, once exited.
    pub exited_at: Option<String>,
    /// Byte cursor one past the last output byte produced so far.
    pub output_cursor: u64,
}

/// A list of managed processes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProcessList {
    /// The processes, oldest first.
    pub items: Vec<ProcessInfo>,
    /// Always null: the agent lists everything it holds.
    pub next_cursor: Option<String>,
}

/// Encoding of `data` in stdin writes and output events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// UTF-8 text.
    #[default]
    Utf8,
    /// Standard base64 with padding.
    Base64,
}

/// `POST /v1/processes/{id}/stdin`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct StdinRequest {
    /// Bytes to write, in `encoding`.
    #[serde(default)]
    pub data: String,
    /// `utf8` (default) or `base64`.
    #[serde(default)]
    pub encoding: Encoding,
    /// Close stdin after writing.
    #[serde(default)]
    pub eof: bool,
}

/// A signal by name (`SIGTERM`, `TERM`) or number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SignalSpec {
    /// A name such as `SIGTERM` or `TERM`.
    Name(String),
    /// A signal number.
    Number(i32),
}

/// `POST /v1/processes/{id}/signal`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignalRequest {
    /// The signal, delivered to the whole process group.
    pub signal: SignalSpec,
}

/// `POST /v1/processes/{id}/resize`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResizeRequest {
    /// Columns, 1..=1000.
    pub cols: u16,
    /// Rows, 1..=1000.
    pub rows: u16,
}

/// Which stream an output chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StreamKind {
    /// Standard output (and the terminal, for tty processes).
    Stdout,
    /// Standard error.
    Stderr,
}

/// Buffered output returned by `GET /v1/processes/{id}/logs` without `follow`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogsResponse {
    /// Chunks from the requested cursor on, in order.
    pub chunks: Vec<OutputChunk>,
    /// Cursor to ask for next time (one past the last byte returned).
    pub next_cursor: u64,
    /// Bytes asked for that have already left the ring buffer (0 when none were lost).
    pub dropped_bytes: u64,
    /// Whether the process has exited (no more output will come).
    pub exited: bool,
}

/// One chunk of output, as carried in `logs` responses and SSE `output` events.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OutputChunk {
    /// `stdout` or `stderr`.
    pub stream: StreamKind,
    /// Byte cursor of the chunk's first byte (one counter over both streams).
    pub cursor: u64,
    /// The bytes, in `encoding`.
    pub data: String,
    /// `utf8` when the bytes are valid UTF-8, else `base64`.
    pub encoding: Encoding,
}

/// Control messages on the attach WebSocket (JSON text frames), both directions.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WsControl {
    /// Client → agent: write to stdin.
    Stdin {
        /// The bytes, in `encoding`.
        data: String,
        /// `utf8` (default) or `base64`.
        #[serde(default)]
        encoding: Encoding,
        /// Close stdin afterwards.
        #[serde(default)]
        eof: bool,
    },
    /// Client → agent: resize the terminal.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Client → agent: signal the process group.
    Signal {
        /// The signal.
        signal: SignalSpec,
    },
    /// Agent → client: output before `cursor` has left the ring and was skipped.
    Dropped {
        /// How many bytes were lost.
        bytes: u64,
        /// Where the replay resumed.
        cursor: u64,
    },
    /// Agent → client: the process exited; the socket closes after this.
    Exit {
        /// Exit status, if exited normally.
        exit_code: Option<i32>,
        /// Signal number, if killed.
        signal: Option<i32>,
        /// Cursor one past the last output byte.
        cursor: u64,
    },
    /// Agent → client: something went wrong with a control message.
    Error {
        /// Stable problem code.
        code: String,
        /// Human detail.
        detail: String,
    },
}

/// `?path=` for the file routes.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PathQuery {
    /// Absolute, or relative to the agent's workdir.
    pub path: String,
}

/// `PUT /v1/files?path=&mode=`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WriteQuery {
    /// Absolute, or relative to the agent's workdir.
    pub path: String,
    /// Permission bits in octal, e.g. `644` or `0755`. Default: an existing
    /// file keeps its mode, a new one gets 0666 minus the agent's umask.
    #[serde(default)]
    pub mode: Option<String>,
}

/// `DELETE /v1/files?path=&recursive=`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Absolute, or relative to the agent's workdir.
    pub path: String,
    /// Remove a non-empty directory and everything in it.
    #[serde(default)]
    pub recursive: bool,
}

/// `GET /v1/files/watch?path=&recursive=`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WatchQuery {
    /// The directory to watch: absolute, or relative to the agent's workdir.
    pub path: String,
    /// Watch every subdirectory too, including ones created later.
    #[serde(default)]
    pub recursive: bool,
}

/// Raw bytes: how the OpenAPI document describes binary bodies (`GET` and
/// `PUT /v1/files`, tar `upload` and `download`), which travel as they are.
#[derive(Debug, Clone, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct RawBytes(pub Vec<u8>);

/// One directory entry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileEntry {
    /// File name.
    pub name: String,
    /// Full path as the caller names it.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether it is a directory.
    pub is_dir: bool,
    /// Whether it is a symbolic link.
    #[serde(default)]
    pub is_symlink: bool,
    /// Permission bits, e.g. 420 for 0644.
    pub mode: u32,
    /// RFC 3339 UTC.
    pub modified_at: String,
}

/// `GET /v1/files/list`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileList {
    /// Entries sorted by name.
    pub items: Vec<FileEntry>,
}

/// `GET /v1/files/stat`: never 404.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileStat {
    /// Whether anything exists at the path.
    pub exists: bool,
    /// Regular file.
    pub is_file: bool,
    /// Directory.
    pub is_dir: bool,
    /// Size in bytes (0 when missing).
    pub size: u64,
    /// Permission bits (0 when missing).
    pub mode: u32,
    /// RFC 3339 UTC, null when missing.
    pub modified_at: Option<String>,
}

/// `POST /v1/files/move`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MoveRequest {
    /// Source path.
    pub from: String,
    /// Destination path; parents are created.
    pub to: String,
    /// Replace an existing destination.
    #[serde(default)]
    pub overwrite: bool,
}

/// `POST /v1/files/edit`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EditRequest {
    /// File to edit.
    pub path: String,
    /// Text that must occur exactly once.
    pub old_text: String,
    /// Its replacement.
    pub new_text: String,
}

/// Result of `edit`, `move`, `mkdir`, `upload`, `delete` and `PUT`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileWritten {
    /// The path acted on.
    pub path: String,
    /// Bytes written (PUT, upload), or the new size (edit).
    #[serde(default)]
    pub bytes: u64,
}

/// Kind of a file-system event on `watch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WatchEventKind {
    /// Created.
    Create,
    /// Content or metadata changed.
    Modify,
    /// Removed.
    Delete,
    /// Renamed (`from` set when known).
    Rename,
}

/// Payload of the SSE `event: ready` of `watch` (sent once the watch is
/// armed: changes after it are reported) and of `event: overflow` (the kernel
/// queue overflowed and events were lost: rescan).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WatchInfo {
    /// The watched directory, as the caller named it.
    pub path: String,
    /// Whether subdirectories are watched too.
    pub recursive: bool,
}

/// One SSE `event: fs` payload of `watch`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WatchEvent {
    /// What happened.
    pub kind: WatchEventKind,
    /// Path affected.
    pub path: String,
    /// Old path of a rename, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Whether the path is a directory.
    pub is_dir: bool,
}
