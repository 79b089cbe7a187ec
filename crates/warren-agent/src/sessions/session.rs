//! One session: its object, its event log, its pending permission and
//! question requests, and the channel to its driver.
//!
//! Drivers (one per agent kind) talk to their session only through the
//! methods here: `emit` for what the agent did, `ask_permission` and
//! `ask_question` to wait for a person, `turn_started`/`turn_done` and
//! `end`. The session keeps the state machine of API.md (`starting`,
//! `running`, `idle`, `waiting`, `ended`) from those calls.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use warren_api::ids::{self, IdKind};
use warren_api::session::{
    AgentKind, EventSource, PermissionDecision, PermissionMode, Session, SessionState,
};

use super::log::EventLog;
use crate::process::rfc3339;
use crate::AgentError;

/// File name of the session object in its directory.
pub const SESSION_FILE: &str = "session.json";
/// Largest `session.json` loaded back.
const MAX_SESSION_FILE: u64 = 1 << 20;

/// What a session was created with, minus what must never be written down
/// (`env`) and what is only used once (`prompt`). Kept in `session.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Options {
    /// The model asked for.
    pub model: Option<String>,
    /// Replaces the agent's system prompt.
    pub system_prompt: Option<String>,
    /// Tools that never ask.
    pub allowed_tools: Vec<String>,
    /// How freely tools may be used.
    pub permission_mode: PermissionMode,
    /// Most agent turns per prompt.
    pub max_turns: u32,
    /// MCP servers, name → configuration.
    pub mcp_servers: BTreeMap<String, Value>,
    /// How long a permission or question request waits for an answer.
    pub request_timeout_secs: u64,
}

/// What `session.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    session: Session,
    options: Options,
}

/// A command to a running driver.
#[derive(Debug)]
pub enum Command {
    /// A prompt: the first, or a follow-up.
    Prompt(String),
    /// Stop the current turn; the session goes on.
    Interrupt,
}

/// A question's answer, as the driver receives it.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The answers given.
    Answers(Vec<String>),
    /// Refused, or timed out.
    Rejected,
}

enum Pending {
    Permission {
        tool: String,
        tx: oneshot::Sender<PermissionDecision>,
    },
    Question {
        tx: oneshot::Sender<Reply>,
    },
}

/// How a session ended, for `session.ended`.
#[derive(Debug, Clone)]
pub struct Ending {
    /// `completed`, `error` or `killed`.
    pub reason: &'static str,
    /// The agent process's exit code, when it had one.
    pub exit_code: Option<i32>,
    /// What went wrong (the last lines of the agent's stderr, say).
    pub message: Option<String>,
}

impl Ending {
    /// The agent finished on its own.
    pub fn completed() -> Self {
        Ending {
            reason: "completed",
            exit_code: None,
            message: None,
        }
    }
}

/// One session. Shared between the table, the HTTP handlers and its driver.
pub struct SessionEntry {
    /// `ses_…`.
    pub id: String,
    /// Its directory (`<state>/sessions/<id>`).
    pub dir: PathBuf,
    /// Its events.
    pub log: EventLog,
    meta: Mutex<Stored>,
    pending: Mutex<HashMap<String, Pending>>,
    always: Mutex<HashSet<String>>,
    driver: Mutex<Option<mpsc::UnboundedSender<Command>>>,
    /// Prompts sent whose turn has not ended yet.
    prompts: AtomicUsize,
    /// Turns ended, for the ids of their status items.
    turns: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SessionEntry {
    /// A new session in `dir` (created here), in state `starting`.
    pub fn create(
        id: String,
        dir: PathBuf,
        agent: AgentKind,
        cwd: String,
        options: Options,
    ) -> Result<Arc<SessionEntry>, AgentError> {
        let io = |op| move |source| AgentError::Io { op, source };
        std::fs::create_dir_all(&dir).map_err(io("creating the session's directory"))?;
        let log = EventLog::create(&id, &dir).map_err(io("creating the session's event log"))?;
        let session = Session {
            id: id.clone(),
            agent,
            state: SessionState::Starting,
            model: options.model.clone(),
            native_session_id: None,
            cwd,
            permission_mode: options.permission_mode,
            created_at: rfc3339(SystemTime::now()),
            ended_at: None,
            last_sequence: 0,
        };
        let entry = Arc::new(SessionEntry {
            id,
            dir,
            log,
            meta: Mutex::new(Stored { session, options }),
            pending: Mutex::default(),
            always: Mutex::default(),
            driver: Mutex::default(),
            prompts: AtomicUsize::new(0),
            turns: AtomicU64::new(0),
        });
        entry.save()?;
        Ok(entry)
    }

    /// A session of an earlier agent, from its directory. A session that had
    /// not ended is `idle`: its agent process is gone, and the next message
    /// resumes it from its native session.
    pub fn load(dir: &Path) -> Option<Arc<SessionEntry>> {
        use std::io::Read;
        let mut text = Vec::new();
        std::fs::File::open(dir.join(SESSION_FILE))
            .ok()?
            .take(MAX_SESSION_FILE)
            .read_to_end(&mut text)
            .ok()?;
        let mut stored: Stored = serde_json::from_slice(&text).ok()?;
        let id = stored.session.id.clone();
        if !ids::is_valid(IdKind::Session, &id) || dir.file_name()?.to_str()? != id {
            return None;
        }
        let log = EventLog::load(&id, dir).ok()?;
        if stored.session.state == SessionState::Ended {
            log.close();
        } else {
            stored.session.state = SessionState::Idle;
        }
        Some(Arc::new(SessionEntry {
            id,
            dir: dir.to_path_buf(),
            log,
            meta: Mutex::new(stored),
            pending: Mutex::default(),
            always: Mutex::default(),
            driver: Mutex::default(),
            prompts: AtomicUsize::new(0),
            turns: AtomicU64::new(0),
        }))
    }

    /// Writes `session.json` (atomically: temp file, then rename).
    fn save(&self) -> Result<(), AgentError> {
        let text = serde_json::to_vec_pretty(&*lock(&self.meta)).unwrap_or_default();
        let tmp = self.dir.join(format!("{SESSION_FILE}.tmp"));
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, self.dir.join(SESSION_FILE)))
            .map_err(|source| AgentError::Io {
                op: "writing session.json",
                source,
            })
    }

    fn save_logged(&self) {
        if let Err(e) = self.save() {
            tracing::warn!(session = %self.id, error = %e, "cannot save the session");
        }
    }

    /// The session object as the API shows it.
    pub fn info(&self) -> Session {
        let mut session = lock(&self.meta).session.clone();
        session.last_sequence = self.log.last_sequence();
        session
    }

    /// Its options.
    pub fn options(&self) -> Options {
        lock(&self.meta).options.clone()
    }

    /// Its agent.
    pub fn agent(&self) -> AgentKind {
        lock(&self.meta).session.agent
    }

    /// Its state.
    pub fn state(&self) -> SessionState {
        lock(&self.meta).session.state
    }

    fn set_state(&self, state: SessionState) {
        let mut meta = lock(&self.meta);
        if meta.session.state != SessionState::Ended {
            meta.session.state = state;
        }
    }

    /// Records the agent's own id of the conversation (and the model it
    /// reports), saved at once so a checkpoint taken now can resume it.
    pub fn set_native(&self, native_id: Option<&str>, model: Option<&str>) {
        let changed = {
            let mut meta = lock(&self.meta);
            let mut changed = false;
            if let Some(id) = native_id {
                if meta.session.native_session_id.as_deref() != Some(id) {
                    meta.session.native_session_id = Some(id.to_string());
                    changed = true;
                }
            }
            if let Some(model) = model {
                if meta.session.model.as_deref() != Some(model) {
                    meta.session.model = Some(model.to_string());
                    changed = true;
                }
            }
            changed
        };
        if changed {
            self.save_logged();
        }
    }

    /// The agent's native session id, once known.
    pub fn native_id(&self) -> Option<String> {
        lock(&self.meta).session.native_session_id.clone()
    }

    /// Appends an event produced by the agent.
    pub fn emit(&self, type_: &str, data: Value, raw: Option<Value>) -> u64 {
        self.log.append(type_, EventSource::Agent, data, raw)
    }

    /// Appends an event of the daemon's own.
    pub fn emit_daemon(&self, type_: &str, data: Value) -> u64 {
        self.log.append(type_, EventSource::Daemon, data, None)
    }

    /// The driver started working on a prompt.
    pub fn turn_started(&self) {
        self.set_state(SessionState::Running);
    }

    /// A session created without a prompt waits for one.
    pub fn set_idle(&self) {
        self.set_state(SessionState::Idle);
    }

    /// The driver finished a turn: a `status` item (`status:
    /// "completed"`) says so, and the session is `idle` unless more
    /// prompts are queued.
    pub fn turn_done(&self) {
        let n = self.turns.fetch_add(1, Ordering::SeqCst) + 1;
        let left = self
            .prompts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| {
                Some(p.saturating_sub(1))
            })
            .unwrap_or(0)
            .saturating_sub(1);
        let item = super::items::item(
            &format!("turn_{n}"),
            super::items::Kind::Status,
            None,
            "completed",
            super::items::text("turn completed"),
        );
        self.emit_daemon("item.completed", json!({ "item": item }));
        if left == 0 {
            self.set_state(SessionState::Idle);
        }
    }

    /// A prompt goes to the driver: the session runs until its turn ends.
    pub fn prompt(&self, text: String) -> bool {
        self.prompts.fetch_add(1, Ordering::SeqCst);
        self.set_state(SessionState::Running);
        if self.command(Command::Prompt(text)) {
            true
        } else {
            self.prompts.fetch_sub(1, Ordering::SeqCst);
            false
        }
    }

    /// Attaches a running driver; commands go to it from now on.
    pub fn attach_driver(&self, tx: mpsc::UnboundedSender<Command>) {
        *lock(&self.driver) = Some(tx);
    }

    /// Sends a command to the running driver; `false` when none runs.
    pub fn command(&self, command: Command) -> bool {
        match &*lock(&self.driver) {
            Some(tx) => tx.send(command).is_ok(),
            None => false,
        }
    }

    /// Whether a driver is attached.
    pub fn has_driver(&self) -> bool {
        lock(&self.driver)
            .as_ref()
            .is_some_and(|tx| !tx.is_closed())
    }

    /// Reopens an ended or detached session for a resume.
    pub fn reopen(&self) {
        self.prompts.store(0, Ordering::SeqCst);
        {
            let mut meta = lock(&self.meta);
            meta.session.state = SessionState::Starting;
            meta.session.ended_at = None;
        }
        self.log.reopen();
        self.save_logged();
    }

    /// Ends the session: rejects what is pending, emits `session.ended`,
    /// saves, and wakes every follower for the last time.
    pub fn end(&self, ending: Ending) {
        {
            let mut meta = lock(&self.meta);
            if meta.session.state == SessionState::Ended {
                return;
            }
            meta.session.state = SessionState::Ended;
            meta.session.ended_at = Some(rfc3339(SystemTime::now()));
        }
        *lock(&self.driver) = None;
        lock(&self.pending).clear();
        let mut data = json!({ "reason": ending.reason });
        if let Some(code) = ending.exit_code {
            data["exit_code"] = json!(code);
        }
        if let Some(message) = ending.message {
            data["message"] = json!(message);
        }
        self.emit_daemon("session.ended", data);
        self.save_logged();
        self.log.close();
    }

    /// Whether the session allows `tool` without asking: the tool is in
    /// `allowed_tools`, or was answered `always` earlier in the session.
    pub fn pre_allowed(&self, tool: &str) -> bool {
        let allowed = lock(&self.meta)
            .options
            .allowed_tools
            .iter()
            .any(|t| t == tool || t.split('(').next() == Some(tool));
        allowed || lock(&self.always).contains(tool)
    }

    /// Asks a person whether `tool` may run with `input`: emits
    /// `permission.requested`, waits for the answer (or the time-out, a
    /// rejection), emits `permission.resolved`.
    pub async fn ask_permission(
        self: &Arc<Self>,
        tool: &str,
        input: Value,
        raw: Option<Value>,
    ) -> PermissionDecision {
        if self.pre_allowed(tool) {
            return PermissionDecision::Once;
        }
        let permission_id = ids::new_id(IdKind::Permission);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(
            permission_id.clone(),
            Pending::Permission {
                tool: tool.to_string(),
                tx,
            },
        );
        self.set_state(SessionState::Waiting);
        self.emit(
            "permission.requested",
            json!({ "permission_id": permission_id, "tool": tool, "input": input }),
            raw,
        );
        let timeout = Duration::from_secs(self.options().request_timeout_secs);
        let (decision, reason) = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(decision)) => (decision, "answered"),
            // Cancelled: `cancel_pending` has said so already.
            Ok(Err(_)) => return PermissionDecision::Reject,
            Err(_) => {
                lock(&self.pending).remove(&permission_id);
                (PermissionDecision::Reject, "timeout")
            }
        };
        if decision == PermissionDecision::Always {
            lock(&self.always).insert(tool.to_string());
        }
        self.emit_daemon(
            "permission.resolved",
            json!({ "permission_id": permission_id, "decision": decision, "reason": reason }),
        );
        self.after_request();
        decision
    }

    /// Asks a person a question with options: emits `question.requested`,
    /// waits for the answers (or the time-out, a rejection), emits
    /// `question.resolved`.
    pub async fn ask_question(
        self: &Arc<Self>,
        prompt: &str,
        options: Vec<String>,
        raw: Option<Value>,
    ) -> Reply {
        let question_id = ids::new_id(IdKind::Question);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(question_id.clone(), Pending::Question { tx });
        self.set_state(SessionState::Waiting);
        self.emit(
            "question.requested",
            json!({ "question_id": question_id, "prompt": prompt, "options": options }),
            raw,
        );
        let timeout = Duration::from_secs(self.options().request_timeout_secs);
        let (reply, reason) = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => (reply, "answered"),
            Ok(Err(_)) => return Reply::Rejected,
            Err(_) => {
                lock(&self.pending).remove(&question_id);
                (Reply::Rejected, "timeout")
            }
        };
        let data = match &reply {
            Reply::Answers(answers) => {
                json!({ "question_id": question_id, "answers": answers, "reason": reason })
            }
            Reply::Rejected => {
                json!({ "question_id": question_id, "rejected": true, "reason": reason })
            }
        };
        self.emit_daemon("question.resolved", data);
        self.after_request();
        reply
    }

    /// Withdraws every pending request (the turn was interrupted, or the
    /// agent withdrew it): each is resolved as rejected, reason `cancelled`.
    pub fn cancel_pending(&self) {
        let drained: Vec<(String, Pending)> = lock(&self.pending).drain().collect();
        for (id, pending) in drained {
            let data = match pending {
                Pending::Permission { .. } => {
                    json!({ "permission_id": id, "decision": "reject", "reason": "cancelled" })
                }
                Pending::Question { .. } => {
                    json!({ "question_id": id, "rejected": true, "reason": "cancelled" })
                }
            };
            let type_ = if id.starts_with("perm_") {
                "permission.resolved"
            } else {
                "question.resolved"
            };
            self.emit_daemon(type_, data);
        }
        self.after_request();
    }

    fn after_request(&self) {
        if lock(&self.pending).is_empty() && self.state() == SessionState::Waiting {
            self.set_state(SessionState::Running);
        }
    }

    /// Answers a pending permission request.
    pub fn answer_permission(
        &self,
        permission_id: &str,
        decision: PermissionDecision,
    ) -> Result<(), AgentError> {
        let mut pending = lock(&self.pending);
        match pending.remove(permission_id) {
            Some(Pending::Permission { tool, tx }) => {
                drop(pending);
                tracing::debug!(session = %self.id, %tool, ?decision, "permission answered");
                let _ = tx.send(decision);
                Ok(())
            }
            Some(other) => {
                pending.insert(permission_id.to_string(), other);
                Err(AgentError::RequestNotFound(permission_id.to_string()))
            }
            None => Err(AgentError::RequestNotFound(permission_id.to_string())),
        }
    }

    /// Answers a pending question.
    pub fn answer_question(&self, question_id: &str, reply: Reply) -> Result<(), AgentError> {
        let mut pending = lock(&self.pending);
        match pending.remove(question_id) {
            Some(Pending::Question { tx }) => {
                drop(pending);
                let _ = tx.send(reply);
                Ok(())
            }
            Some(other) => {
                pending.insert(question_id.to_string(), other);
                Err(AgentError::RequestNotFound(question_id.to_string()))
            }
            None => Err(AgentError::RequestNotFound(question_id.to_string())),
        }
    }
}
