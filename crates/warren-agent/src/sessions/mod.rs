//! Coding-agent sessions: Claude Code, Codex, OpenCode and the built-in mock,
//! driven by the agent, their output mapped to one event stream.
//!
//! - [`session`]: one session: its object, state machine, pending requests.
//! - [`log`]: its numbered events, in memory and in `events.jsonl`.
//! - [`items`]: the item shapes every driver emits.
//! - [`agents`]: which agents are installed, their versions, installing one.
//! - [`mock`], [`claude`], [`codex`], [`opencode`]: the drivers, one per agent.
//! - [`lines`]: bounded line reading of an agent's output.
//! - [`transcript`]: native session files, downloaded and uploaded.
//!
//! Sessions live on the sandbox's disk (`<state>/sessions/<id>/`), so a
//! checkpoint, a restore or a fork carries them: an agent that starts finds
//! the sessions of the disk it runs on, each resumable from its native
//! session.

pub mod agents;
pub mod claude;
pub mod codex;
pub mod items;
pub mod lines;
pub mod log;
pub mod mock;
pub mod opencode;
pub mod session;
pub mod transcript;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use warren_api::ids::{self, IdKind};
use warren_api::session::{
    AgentKind, CreateSession, PermissionDecision, Session, SessionList, SessionState,
};

use self::session::{Command, Ending, Options, Reply, SessionEntry};
use crate::process::Supervisor;
use crate::{AgentConfig, AgentError};

/// Sub-directory of the state dir that holds one directory per session.
pub const SESSIONS_DIR: &str = "sessions";
/// Default `max_turns`.
pub const DEFAULT_MAX_TURNS: u32 = 50;
/// Largest `max_turns`.
const MAX_TURNS: u32 = 10_000;
/// Largest prompt or message, in bytes.
const MAX_PROMPT: usize = 1 << 20;
/// Sessions whose agent runs at once.
const MAX_LIVE_SESSIONS: usize = 64;
/// Largest accepted `request_timeout_secs`.
const MAX_REQUEST_TIMEOUT: u64 = 7 * 24 * 3600;

/// Every session of this agent. Cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<AgentConfig>,
    processes: Supervisor,
    table: Mutex<BTreeMap<String, Arc<SessionEntry>>>,
    drivers: Mutex<HashMap<String, AbortHandle>>,
    agents: Arc<agents::Agents>,
    /// Set at shutdown: drivers that end now leave their sessions resumable.
    stopping: AtomicBool,
}

/// Everything a driver starts from.
pub struct DriverStart {
    /// The session.
    pub entry: Arc<SessionEntry>,
    /// The agent's working directory (absolute, existing).
    pub cwd: PathBuf,
    /// The agent process's environment (request `env` over the defaults).
    pub env: BTreeMap<String, String>,
    /// A native session to continue.
    pub resume: Option<String>,
    /// Spawns the agent's process.
    pub processes: Supervisor,
    /// The agent's state directory.
    pub state_dir: PathBuf,
    /// Where the program was found.
    pub program: Option<PathBuf>,
}

impl Sessions {
    /// The sessions of `config.state_dir`, loaded from disk.
    pub fn new(config: Arc<AgentConfig>, processes: Supervisor) -> Self {
        let sessions = Sessions {
            inner: Arc::new(Inner {
                agents: Arc::new(agents::Agents::new(processes.clone())),
                config,
                processes,
                table: Mutex::default(),
                drivers: Mutex::default(),
                stopping: AtomicBool::new(false),
            }),
        };
        sessions.load();
        sessions
    }

    fn table(&self) -> MutexGuard<'_, BTreeMap<String, Arc<SessionEntry>>> {
        self.inner
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn dir(&self) -> PathBuf {
        self.inner.config.state_dir.join(SESSIONS_DIR)
    }

    /// The agent registry (`GET /v1/agents`, install).
    pub fn agents(&self) -> Arc<agents::Agents> {
        self.inner.agents.clone()
    }

    fn load(&self) {
        let Ok(dir) = std::fs::read_dir(self.dir()) else {
            return;
        };
        let mut table = self.table();
        for entry in dir.flatten().take(10_000) {
            if let Some(session) = SessionEntry::load(&entry.path()) {
                table.insert(session.id.clone(), session);
            }
        }
        tracing::debug!(count = table.len(), "sessions loaded");
    }

    /// Creates a session and starts its agent (`POST /v1/sessions`).
    pub fn create(&self, req: CreateSession) -> Result<Session, AgentError> {
        let kind = AgentKind::parse(&req.agent)
            .ok_or_else(|| AgentError::UnknownAgent(req.agent.clone()))?;
        check_supported(kind, &req)?;
        let program = self.program(kind)?;
        if let Some(prompt) = &req.prompt {
            check_prompt(prompt)?;
        }
        let max_turns = req.max_turns.unwrap_or(DEFAULT_MAX_TURNS);
        if max_turns == 0 || max_turns > MAX_TURNS {
            return Err(AgentError::InvalidRequest(format!(
                "max_turns must be between 1 and {MAX_TURNS}"
            )));
        }
        let request_timeout_secs = req
            .request_timeout_secs
            .unwrap_or(self.inner.config.limits.request_timeout.as_secs());
        if request_timeout_secs == 0 || request_timeout_secs > MAX_REQUEST_TIMEOUT {
            return Err(AgentError::InvalidRequest(format!(
                "request_timeout_secs must be between 1 and {MAX_REQUEST_TIMEOUT}"
            )));
        }
        if let Some(resume) = &req.resume {
            if resume.is_empty() || resume.len() > 256 || resume.contains(['/', '\0']) {
                return Err(AgentError::InvalidRequest(
                    "resume must be a native session id".into(),
                ));
            }
        }
        let cwd = self.cwd(req.cwd.as_deref())?;
        let env = self.env(req.env.as_ref())?;
        if self.live_count() >= MAX_LIVE_SESSIONS {
            return Err(AgentError::TooManySessions(MAX_LIVE_SESSIONS));
        }
        let options = Options {
            model: req.model,
            system_prompt: req.system_prompt,
            allowed_tools: req.allowed_tools.unwrap_or_default(),
            permission_mode: req.permission_mode.unwrap_or_default(),
            max_turns,
            mcp_servers: req.mcp_servers.unwrap_or_default(),
            request_timeout_secs,
        };
        let id = ids::new_id(IdKind::Session);
        let entry = SessionEntry::create(
            id.clone(),
            self.dir().join(&id),
            kind,
            cwd.display().to_string(),
            options,
        )?;
        entry.emit_daemon(
            "session.started",
            json!({
                "agent": kind,
                "model": entry.options().model,
                "cwd": cwd.display().to_string(),
                "resume": req.resume,
            }),
        );
        self.table().insert(id.clone(), entry.clone());
        self.start_driver(&entry, kind, cwd, env, req.resume, program);
        match req.prompt {
            Some(prompt) => {
                entry.prompt(prompt);
            }
            None => entry.set_idle(),
        }
        Ok(entry.info())
    }

    fn program(&self, kind: AgentKind) -> Result<Option<PathBuf>, AgentError> {
        match agents::program_name(kind) {
            None => Ok(None),
            Some(name) => match self.inner.processes.find_program(name) {
                Some(path) => Ok(Some(path)),
                None => Err(AgentError::AgentNotInstalled(kind.as_str().to_string())),
            },
        }
    }

    fn cwd(&self, cwd: Option<&str>) -> Result<PathBuf, AgentError> {
        let workdir = &self.inner.config.workdir;
        let dir = match cwd {
            Some(c) if c.contains('\0') => {
                return Err(AgentError::InvalidRequest("cwd contains a NUL byte".into()))
            }
            Some(c) if !c.is_empty() => workdir.join(c),
            _ => workdir.clone(),
        };
        std::fs::create_dir_all(&dir).map_err(|source| AgentError::BadCwd {
            cwd: dir.display().to_string(),
            source,
        })?;
        Ok(dir)
    }

    fn env(
        &self,
        request: Option<&BTreeMap<String, String>>,
    ) -> Result<BTreeMap<String, String>, AgentError> {
        let mut env = (*self.inner.config.env.get()).clone();
        for (k, v) in request.into_iter().flatten() {
            if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
                return Err(AgentError::InvalidRequest(format!(
                    "invalid environment variable {k:?}"
                )));
            }
            env.insert(k.clone(), v.clone());
        }
        Ok(env)
    }

    fn live_count(&self) -> usize {
        let mut drivers = self
            .inner
            .drivers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        drivers.retain(|_, handle| !handle.is_finished());
        drivers.len()
    }

    /// Starts the session's driver task; when it returns, the session ends.
    fn start_driver(
        &self,
        entry: &Arc<SessionEntry>,
        kind: AgentKind,
        cwd: PathBuf,
        env: BTreeMap<String, String>,
        resume: Option<String>,
        program: Option<PathBuf>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        entry.attach_driver(tx);
        let start = DriverStart {
            entry: entry.clone(),
            cwd,
            env,
            resume,
            processes: self.inner.processes.clone(),
            state_dir: self.inner.config.state_dir.clone(),
            program,
        };
        let this = self.clone();
        let task_entry = entry.clone();
        let handle = tokio::spawn(async move {
            let ending = match kind {
                AgentKind::Mock => {
                    mock::run(
                        start.entry.clone(),
                        start.cwd,
                        start.state_dir,
                        start.resume,
                        rx,
                    )
                    .await
                }
                AgentKind::Claude => claude::run(start, rx).await,
                AgentKind::Codex => codex::run(start, rx).await,
                AgentKind::Opencode => opencode::run(start, rx).await,
            };
            if !this.inner.stopping.load(Ordering::SeqCst) {
                task_entry.end(ending);
            }
        });
        self.inner
            .drivers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(entry.id.clone(), handle.abort_handle());
    }

    /// Every session, oldest first.
    pub fn list(&self) -> SessionList {
        let mut items: Vec<Session> = self.table().values().map(|e| e.info()).collect();
        items.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        SessionList { items }
    }

    /// One session's entry.
    pub fn entry(&self, id: &str) -> Result<Arc<SessionEntry>, AgentError> {
        self.table()
            .get(id)
            .cloned()
            .ok_or_else(|| AgentError::SessionNotFound(id.to_string()))
    }

    /// A follow-up prompt (`POST /v1/sessions/{id}/messages`). A session whose
    /// agent is gone (after a restart, a restore, or in a fork) is resumed
    /// from its native session first; `env` is then its environment again.
    pub fn send(
        &self,
        id: &str,
        text: String,
        env: Option<&BTreeMap<String, String>>,
    ) -> Result<(), AgentError> {
        check_prompt(&text)?;
        let entry = self.entry(id)?;
        if entry.state() == SessionState::Ended {
            return Err(AgentError::SessionEnded(id.to_string()));
        }
        if !entry.has_driver() {
            let kind = entry.agent();
            let program = self.program(kind)?;
            let cwd = PathBuf::from(entry.info().cwd);
            let env = self.env(env)?;
            if self.live_count() >= MAX_LIVE_SESSIONS {
                return Err(AgentError::TooManySessions(MAX_LIVE_SESSIONS));
            }
            let resume = entry.native_id();
            entry.reopen();
            let item = items::item(
                &format!("resumed_{}", entry.log.last_sequence() + 1),
                items::Kind::Status,
                None,
                "resumed",
                json!([{ "type": "text", "text": "resumed", "native_session_id": resume }]),
            );
            entry.emit_daemon("item.completed", json!({ "item": item }));
            self.start_driver(&entry, kind, cwd, env, resume, program);
        }
        if !entry.prompt(text) {
            return Err(AgentError::SessionEnded(id.to_string()));
        }
        Ok(())
    }

    /// Stops the current turn (`POST /v1/sessions/{id}/interrupt`).
    pub fn interrupt(&self, id: &str) -> Result<(), AgentError> {
        let entry = self.entry(id)?;
        if entry.state() == SessionState::Ended {
            return Err(AgentError::SessionEnded(id.to_string()));
        }
        entry.command(Command::Interrupt);
        Ok(())
    }

    /// Kills the agent and ends the session (`DELETE /v1/sessions/{id}`).
    /// Killing an ended session is a no-op.
    pub fn kill(&self, id: &str) -> Result<Session, AgentError> {
        let entry = self.entry(id)?;
        let handle = self
            .inner
            .drivers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        if let Some(handle) = handle {
            // Dropping the driver's future drops its child, which kills
            // the agent's whole process group.
            handle.abort();
        }
        entry.end(Ending {
            reason: "killed",
            exit_code: None,
            message: None,
        });
        Ok(entry.info())
    }

    /// Answers a permission request.
    pub fn answer_permission(
        &self,
        id: &str,
        permission_id: &str,
        decision: PermissionDecision,
    ) -> Result<(), AgentError> {
        let entry = self.entry(id)?;
        if entry.state() == SessionState::Ended {
            return Err(AgentError::SessionEnded(id.to_string()));
        }
        entry.answer_permission(permission_id, decision)
    }

    /// Answers (or refuses) a question.
    pub fn answer_question(
        &self,
        id: &str,
        question_id: &str,
        reply: Reply,
    ) -> Result<(), AgentError> {
        let entry = self.entry(id)?;
        if entry.state() == SessionState::Ended {
            return Err(AgentError::SessionEnded(id.to_string()));
        }
        entry.answer_question(question_id, reply)
    }

    /// At agent shutdown: stop the drivers without ending their sessions,
    /// which the next agent on this disk finds resumable.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        let handles: Vec<AbortHandle> = self
            .inner
            .drivers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, h)| h)
            .collect();
        for handle in &handles {
            handle.abort();
        }
        let _ = tokio::time::timeout(grace, async {
            while handles.iter().any(|h| !h.is_finished()) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }

    /// The state directory (for transcripts).
    pub fn state_dir(&self) -> &Path {
        &self.inner.config.state_dir
    }

    /// The directory relative paths resolve against.
    pub fn workdir(&self) -> &Path {
        &self.inner.config.workdir
    }

    /// The agent's default environment (to find `HOME`).
    pub fn default_env(&self) -> std::sync::Arc<BTreeMap<String, String>> {
        self.inner.config.env.get()
    }
}

/// Refuses options the agent's driver cannot pass on, rather than
/// dropping them silently.
fn check_supported(kind: AgentKind, req: &CreateSession) -> Result<(), AgentError> {
    let per_turn = matches!(kind, AgentKind::Codex | AgentKind::Opencode);
    let given = [
        ("system_prompt", req.system_prompt.is_some()),
        (
            "allowed_tools",
            req.allowed_tools.as_ref().is_some_and(|t| !t.is_empty()),
        ),
        (
            "mcp_servers",
            req.mcp_servers.as_ref().is_some_and(|m| !m.is_empty()),
        ),
    ];
    match given.iter().find(|(_, given)| per_turn && *given) {
        Some((name, _)) => Err(AgentError::InvalidRequest(format!(
            "{name} is not supported for {kind}: Warren's {kind} driver cannot pass it on (see docs/sessions.md)"
        ))),
        None => Ok(()),
    }
}

fn check_prompt(text: &str) -> Result<(), AgentError> {
    if text.len() > MAX_PROMPT {
        return Err(AgentError::TooLarge {
            what: "the prompt",
            limit: MAX_PROMPT as u64,
        });
    }
    if text.contains('\0') {
        return Err(AgentError::InvalidRequest(
            "the prompt contains a NUL byte".into(),
        ));
    }
    Ok(())
}
