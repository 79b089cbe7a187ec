//! The process supervisor: every process the agent starts, one-shot or
//! managed, and the init duties of PID 1.
//!
//! - [`reaper`]: the one `waitpid(-1)` loop on SIGCHLD; exit statuses go to
//!   registered waiters, orphans are reaped.
//! - [`command`]: request → validated [`command::Launch`] → spawned child
//!   (pipes or a pty, own process group or session).
//! - [`run`]: one-shot runs with stdin, output caps and the timeout.
//! - [`managed`]: managed processes: output ring, stdin, signals, resize.
//! - [`follow`]: replay-then-live readers over a process's ring.
//! - [`child`]: children the agent drives itself (coding agents, installers).
//! - [`user`]: running a process as another user of the system.
//! - [`ring`], [`pty`], [`slots`], [`signal`], [`clock`]: the pieces.
//!
//! All I/O with children is non-blocking on the tokio reactor; no blocking
//! thread is spent per process or per read.

mod child;
mod clock;
mod command;
mod follow;
mod managed;
mod pty;
mod reaper;
mod ring;
mod run;
mod signal;
mod slots;
mod user;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::Engine;
use tokio::time::Instant;
use warren_api::agent::{
    Encoding, LogsResponse, ProcessInfo, ProcessList, RunRequest, RunResponse, SignalSpec,
    StartRequest,
};
use warren_api::ids::{self, IdKind};

use self::command::Launch;

use self::managed::{Io, Managed, Origin, StartOpts};
use self::ring::Read;
use self::slots::Slots;
use crate::config::Limits;
use crate::{AgentConfig, AgentError};

pub use self::child::Child;
pub use self::clock::rfc3339;
pub use self::follow::{output_chunk, FollowEvent, Follower};
pub use self::reaper::ExitStatus;
pub use self::user::{lookup as lookup_user, IdNames, User};

/// Terminal size when a tty process is started without `cols`/`rows`.
const DEFAULT_COLS: u16 = 80;
const DEFAULT_ROWS: u16 = 24;
/// Largest terminal dimension accepted.
const MAX_TERM_DIM: u16 = 1000;

/// Most output bytes one `logs` response carries; `next_cursor` continues.
const MAX_LOGS_BYTES: usize = 4 << 20;
/// Most bytes in one chunk of a `logs` response.
const LOGS_CHUNK: usize = 64 * 1024;

/// How long `DELETE ?force=true` waits for a killed process to be reaped.
const FORCE_WAIT: Duration = Duration::from_secs(5);
/// After SIGKILL at shutdown, how long to wait for the reaper.
const KILL_WAIT: Duration = Duration::from_secs(1);

/// Owns every process the agent started. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<AgentConfig>,
    slots: Arc<Slots>,
    table: Mutex<Table>,
}

/// Managed processes by id. Lock order: the table before a process's state.
#[derive(Default)]
struct Table {
    procs: HashMap<String, Arc<Managed>>,
    next_seq: u64,
}

/// Output framing of a follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowFormat {
    /// Text chunks (SSE, JSON): never split a UTF-8 sequence.
    Text,
    /// Raw bytes (WebSocket binary frames).
    Bytes,
}

impl Supervisor {
    /// A supervisor for this configuration. Must be called inside a tokio
    /// runtime: it starts the reaper task there.
    pub fn new(config: Arc<AgentConfig>) -> Self {
        if let Err(e) = reaper::start() {
            tracing::error!(error = %e, "cannot watch SIGCHLD: exited children will not be reaped");
        }
        Supervisor {
            inner: Arc::new(Inner {
                slots: Slots::new(config.limits.max_processes),
                config,
                table: Mutex::default(),
            }),
        }
    }

    fn limits(&self) -> &Limits {
        &self.inner.config.limits
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.inner
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a command to completion (`POST /v1/processes/run`).
    pub async fn run(&self, req: RunRequest) -> Result<RunResponse, AgentError> {
        let limits = self.limits();
        let timeout = match req.timeout_ms {
            Some(ms) => check_timeout(ms, limits)?,
            None => limits.default_run_timeout,
        };
        let max_output = req.max_output_bytes.unwrap_or(limits.default_max_output);
        if max_output > limits.max_output_cap {
            return Err(AgentError::InvalidRequest(format!(
                "max_output_bytes is over the agent's maximum of {}",
                limits.max_output_cap
            )));
        }
        let stdin = req
            .stdin
            .map(|s| decode_stdin(&s, Encoding::Utf8, limits.max_stdin_bytes))
            .transpose()?;
        let launch = Launch::new(
            &self.inner.config,
            req.cmd.as_deref(),
            req.argv.as_deref(),
            req.cwd.as_deref(),
            req.env.as_ref(),
            false,
        )?
        .run_as(req.user.as_deref(), req.env.as_ref())?;
        let slot = self.inner.slots.acquire()?;
        run::run(&launch, stdin, timeout, max_output as usize, slot).await
    }

    /// Starts a managed process (`POST /v1/processes`).
    pub fn start(&self, req: StartRequest) -> Result<ProcessInfo, AgentError> {
        let limits = self.limits();
        let timeout = req
            .timeout_ms
            .map(|ms| check_timeout(ms, limits))
            .transpose()?;
        let cols = check_dim("cols", req.cols.unwrap_or(DEFAULT_COLS))?;
        let rows = check_dim("rows", req.rows.unwrap_or(DEFAULT_ROWS))?;
        let stdin = req
            .stdin
            .as_deref()
            .map(|s| decode_stdin(s, Encoding::Utf8, limits.max_stdin_bytes))
            .transpose()?;
        let launch = Launch::new(
            &self.inner.config,
            req.cmd.as_deref(),
            req.argv.as_deref(),
            req.cwd.as_deref(),
            req.env.as_ref(),
            req.tty,
        )?
        .run_as(req.user.as_deref(), req.env.as_ref())?;
        let mut slot = self.inner.slots.acquire()?;
        let io = if req.tty {
            Io::Pty(launch.spawn_pty(cols, rows)?)
        } else {
            Io::Pipes(launch.spawn_managed()?)
        };
        slot.bind(match &io {
            Io::Pipes(s) => s.pid,
            Io::Pty(s) => s.pid,
        });
        let mut table = self.table();
        table.prune(limits);
        let origin = Origin {
            id: ids::new_id(IdKind::Process),
            seq: table.next_seq,
            cmd: req.cmd,
            argv: req.argv,
        };
        table.next_seq += 1;
        let opts = StartOpts {
            ring_bytes: limits.ring_bytes,
            timeout,
            stdin,
        };
        let proc = Managed::start(origin, io, opts, slot);
        table.procs.insert(proc.id().to_string(), proc.clone());
        drop(table);
        Ok(proc.info())
    }

    /// Every managed process still kept, oldest first.
    pub fn list(&self) -> ProcessList {
        let mut procs: Vec<_> = {
            let mut table = self.table();
            table.prune(self.limits());
            table.procs.values().cloned().collect()
        };
        procs.sort_by_key(|p| p.seq());
        ProcessList {
            items: procs.iter().map(|p| p.info()).collect(),
            next_cursor: None,
        }
    }

    /// One process; with `wait`, after it exits or `wait` has passed.
    pub async fn get(&self, id: &str, wait: Option<Duration>) -> Result<ProcessInfo, AgentError> {
        let proc = self.find(id)?;
        if let Some(wait) = wait {
            proc.wait_exit(wait.min(self.limits().max_run_timeout))
                .await;
        }
        Ok(proc.info())
    }

    /// Buffered output from `cursor` (default: the oldest kept), without waiting.
    pub fn logs(&self, id: &str, cursor: Option<u64>) -> Result<LogsResponse, AgentError> {
        let proc = self.find(id)?;
        let mut cursor = cursor.unwrap_or(0);
        check_cursor(&proc, cursor)?;
        let mut chunks = Vec::new();
        let mut dropped_bytes = 0;
        let mut budget = MAX_LOGS_BYTES;
        let exited = loop {
            let (read, exit) = proc.read(cursor, LOGS_CHUNK.min(budget), true);
            match read {
                Read::Data { stream, bytes } => {
                    chunks.push(output_chunk(stream, cursor, &bytes));
                    cursor += bytes.len() as u64;
                    budget -= bytes.len();
                    if budget < 4 {
                        break exit.is_some();
                    }
                }
                Read::Lost { resume } => {
                    dropped_bytes += resume - cursor;
                    cursor = resume;
                }
                Read::Empty => break exit.is_some(),
            }
        };
        Ok(LogsResponse {
            chunks,
            next_cursor: cursor,
            dropped_bytes,
            exited,
        })
    }

    /// A follower of a process's output from `cursor` (default 0).
    pub fn follow(
        &self,
        id: &str,
        cursor: Option<u64>,
        format: FollowFormat,
        max_chunk: usize,
    ) -> Result<Follower, AgentError> {
        let proc = self.find(id)?;
        let cursor = cursor.unwrap_or(0);
        check_cursor(&proc, cursor)?;
        Ok(Follower::new(
            proc,
            cursor,
            max_chunk,
            format == FollowFormat::Text,
        ))
    }

    /// Writes `data` to a process's stdin; `eof` closes it afterwards.
    pub async fn write_stdin(&self, id: &str, data: &[u8], eof: bool) -> Result<(), AgentError> {
        self.find(id)?.write_stdin(data, eof).await
    }

    /// Decodes stdin data as sent in JSON, within the stdin size limit.
    pub fn decode_stdin(&self, data: &str, encoding: Encoding) -> Result<Vec<u8>, AgentError> {
        decode_stdin(data, encoding, self.limits().max_stdin_bytes)
    }

    /// Fails with `TooLarge` when raw stdin bytes are over the stdin limit.
    pub fn check_stdin_size(&self, len: usize) -> Result<(), AgentError> {
        let limit = self.limits().max_stdin_bytes;
        if len > limit {
            return Err(AgentError::TooLarge {
                what: "stdin data",
                limit: limit as u64,
            });
        }
        Ok(())
    }

    /// Sends a signal to a process's whole group.
    pub fn signal(&self, id: &str, signal: &SignalSpec) -> Result<(), AgentError> {
        let proc = self.find(id)?;
        proc.signal(signal::parse(signal)?)
    }

    /// Resizes a tty process's terminal.
    pub fn resize(&self, id: &str, cols: u16, rows: u16) -> Result<(), AgentError> {
        let proc = self.find(id)?;
        proc.resize(check_dim("cols", cols)?, check_dim("rows", rows)?)
    }

    /// Forgets an exited process; a running one only with `force` (killed first).
    pub async fn remove(&self, id: &str, force: bool) -> Result<(), AgentError> {
        let proc = self.find(id)?;
        if proc.exit().is_none() {
            if !force {
                return Err(AgentError::ProcessStillRunning(id.to_string()));
            }
            // Not sent when the main process is already reaped (only its
            // output is draining): the exit follows within the drain grace.
            let _ = proc.signal(libc::SIGKILL);
            proc.wait_exit(FORCE_WAIT).await;
            if proc.exit().is_none() {
                return Err(AgentError::ProcessStillRunning(id.to_string()));
            }
        }
        self.table().procs.remove(id);
        Ok(())
    }

    /// Ends every running process group: SIGTERM, then SIGKILL after `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        for pid in self.inner.slots.pids() {
            reaper::signal_group(pid, libc::SIGTERM);
        }
        if self.inner.slots.wait_idle(Instant::now() + grace).await {
            return;
        }
        self.kill_all();
        self.inner.slots.wait_idle(Instant::now() + KILL_WAIT).await;
    }

    /// Sends SIGKILL to every running process group at once.
    pub fn kill_all(&self) {
        for pid in self.inner.slots.pids() {
            reaper::signal_group(pid, libc::SIGKILL);
        }
    }

    /// The managed process `id`, or `ProcessNotFound`. An exited process past
    /// its retention time is forgotten here.
    fn find(&self, id: &str) -> Result<Arc<Managed>, AgentError> {
        let not_found = || AgentError::ProcessNotFound(id.to_string());
        if !ids::is_valid(IdKind::Process, id) {
            return Err(not_found());
        }
        let mut table = self.table();
        let proc = table.procs.get(id).cloned().ok_or_else(not_found)?;
        if let Some(exit) = proc.exit() {
            if exit.instant.elapsed() > self.limits().exited_ttl {
                table.procs.remove(id);
                return Err(not_found());
            }
        }
        Ok(proc)
    }
}

impl Table {
    /// Forgets exited processes past their time, then the oldest exited ones
    /// over the count limit.
    fn prune(&mut self, limits: &Limits) {
        let mut exited: Vec<(Instant, String)> = self
            .procs
            .iter()
            .filter_map(|(id, p)| p.exit().map(|e| (e.instant, id.clone())))
            .collect();
        exited.sort();
        let expired = exited
            .iter()
            .take_while(|(at, _)| at.elapsed() > limits.exited_ttl)
            .count();
        let excess = exited.len().saturating_sub(limits.max_exited_kept);
        for (_, id) in exited.iter().take(expired.max(excess)) {
            self.procs.remove(id);
        }
    }
}

fn check_timeout(ms: u64, limits: &Limits) -> Result<Duration, AgentError> {
    let timeout = Duration::from_millis(ms);
    if ms == 0 || timeout > limits.max_run_timeout {
        return Err(AgentError::InvalidRequest(format!(
            "timeout_ms must be between 1 and {}",
            limits.max_run_timeout.as_millis()
        )));
    }
    Ok(timeout)
}

fn check_dim(what: &str, value: u16) -> Result<u16, AgentError> {
    if value == 0 || value > MAX_TERM_DIM {
        return Err(AgentError::InvalidRequest(format!(
            "{what} must be between 1 and {MAX_TERM_DIM}"
        )));
    }
    Ok(value)
}

fn check_cursor(proc: &Managed, cursor: u64) -> Result<(), AgentError> {
    let end = proc.lock_state().ring.end();
    if cursor > end {
        return Err(AgentError::InvalidRequest(format!(
            "cursor {cursor} is past the end of the output ({end})"
        )));
    }
    Ok(())
}

fn decode_stdin(data: &str, encoding: Encoding, limit: usize) -> Result<Vec<u8>, AgentError> {
    let too_large = || AgentError::TooLarge {
        what: "stdin data",
        limit: limit as u64,
    };
    let bytes = match encoding {
        Encoding::Utf8 if data.len() > limit => return Err(too_large()),
        Encoding::Utf8 => data.as_bytes().to_vec(),
        Encoding::Base64 => {
            // Reject before decoding what cannot fit anyway.
            if data.len() / 4 * 3 > limit + 3 {
                return Err(too_large());
            }
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|e| AgentError::BadStdinEncoding(e.to_string()))?
        }
    };
    if bytes.len() > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Makes this process a child subreaper, so orphaned descendants are
/// reparented to it and reaped by the supervisor (PID 1 is one already).
pub fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag and
    // touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}
