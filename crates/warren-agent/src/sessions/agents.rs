//! Which coding agents the sandbox has (`GET /v1/agents`) and installing
//! one from the npm registry (`POST /v1/agents/{agent}/install`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use warren_api::session::{AgentCapabilities, AgentInfo, AgentKind, AgentList, InstallEvent};

use crate::process::Supervisor;

/// How long `--version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(20);
/// How long an install may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);
/// Longest installer line passed on.
const MAX_INSTALL_LINE: usize = 4096;

/// The program an agent runs as (`None` for the built-in mock).
pub fn program_name(kind: AgentKind) -> Option<&'static str> {
    match kind {
        AgentKind::Claude => Some("claude"),
        AgentKind::Codex => Some("codex"),
        AgentKind::Opencode => Some("opencode"),
        AgentKind::Mock => None,
    }
}

/// The npm package an agent installs from.
pub fn npm_package(kind: AgentKind) -> Option<&'static str> {
    match kind {
        AgentKind::Claude => Some("@anthropic-ai/claude-code"),
        AgentKind::Codex => Some("@openai/codex"),
        AgentKind::Opencode => Some("opencode-ai"),
        AgentKind::Mock => None,
    }
}

/// What Warren's driver of each agent supports.
pub fn capabilities(kind: AgentKind) -> AgentCapabilities {
    let all = AgentCapabilities {
        streaming_deltas: true,
        tool_calls: true,
        permissions: true,
        questions: true,
        reasoning: true,
        usage: true,
        resume: true,
        transcript: true,
        interrupt: true,
        mcp_servers: true,
    };
    match kind {
        AgentKind::Mock => AgentCapabilities {
            mcp_servers: false,
            ..all
        },
        AgentKind::Claude => all,
        // One `exec` per turn: approvals are decided by the policy given at
        // start, not asked; an interrupt kills the turn's process.
        AgentKind::Codex => AgentCapabilities {
            permissions: false,
            questions: false,
            streaming_deltas: false,
            mcp_servers: false,
            transcript: false,
            ..all
        },
        AgentKind::Opencode => AgentCapabilities {
            questions: false,
            mcp_servers: false,
            transcript: false,
            ..all
        },
    }
}

/// A program's version, known for its file's modification time and size.
type Version = (SystemTime, u64, Option<String>);

/// The agent registry: installed programs and their versions (cached by
/// the program file's identity, since `--version` of a Node CLI costs a
/// few hundred milliseconds).
pub struct Agents {
    processes: Supervisor,
    versions: Mutex<HashMap<PathBuf, Version>>,
    installing: tokio::sync::Mutex<()>,
}

impl Agents {
    /// A registry that runs programs through `processes`.
    pub fn new(processes: Supervisor) -> Self {
        Agents {
            processes,
            versions: Mutex::default(),
            installing: tokio::sync::Mutex::new(()),
        }
    }

    /// Every agent, installed or not.
    pub async fn list(&self) -> AgentList {
        let mut items = Vec::new();
        for kind in AgentKind::ALL {
            items.push(self.info(kind).await);
        }
        AgentList { items }
    }

    /// One agent.
    pub async fn info(&self, kind: AgentKind) -> AgentInfo {
        let (installed, version) = match program_name(kind) {
            None => (true, Some(warren_api::VERSION.to_string())),
            Some(name) => match self.processes.find_program(name) {
                None => (false, None),
                Some(path) => (true, self.version(&path).await),
            },
        };
        AgentInfo {
            agent: kind,
            installed,
            version,
            capabilities: capabilities(kind),
        }
    }

    async fn version(&self, path: &PathBuf) -> Option<String> {
        let meta = std::fs::metadata(path).ok()?;
        let key = (meta.modified().ok()?, meta.len());
        if let Some((m, l, v)) = self
            .versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
        {
            if (*m, *l) == key {
                return v.clone();
            }
        }
        let argv = vec![path.display().to_string(), "--version".to_string()];
        let version = match self.processes.spawn_child(&argv, "/", &Default::default()) {
            Ok(mut child) => {
                let mut out = String::new();
                let read = async {
                    let Some(stdout) = child.stdout.as_mut() else {
                        return;
                    };
                    let mut lines = BufReader::new(stdout).lines();
                    if let Ok(Some(line)) = lines.next_line().await {
                        out = line;
                    }
                };
                let _ = tokio::time::timeout(VERSION_TIMEOUT, read).await;
                // `2.1.197 (Claude Code)`, `codex-cli 0.171.0`, `1.18.33`.
                let v = out
                    .split_whitespace()
                    .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
                    .map(str::to_string);
                v.filter(|s| !s.is_empty() && s.len() < 64)
            }
            Err(_) => None,
        };
        self.versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.clone(), (key.0, key.1, version.clone()));
        version
    }

    /// Installs an agent with `npm install -g`, sending progress to `tx`.
    /// Idempotent: an installed agent is reported `done` at once. Installs
    /// run one at a time.
    pub async fn install(self: &Arc<Self>, kind: AgentKind, tx: mpsc::Sender<InstallEvent>) {
        let send = |phase: &str, message: Option<String>| InstallEvent {
            phase: phase.to_string(),
            message,
            agent: None,
        };
        let _one = self.installing.lock().await;
        let info = self.info(kind).await;
        if info.installed {
            let _ = tx
                .send(InstallEvent {
                    agent: Some(info),
                    ..send("done", Some("already installed".into()))
                })
                .await;
            return;
        }
        let Some(package) = npm_package(kind) else {
            return;
        };
        let _ = tx
            .send(send("started", Some(format!("npm install -g {package}"))))
            .await;
        let result = self.run_npm(package, &tx).await;
        match result {
            Ok(()) => {
                let info = self.info(kind).await;
                let (phase, message) = if info.installed {
                    ("done", None)
                } else {
                    (
                        "error",
                        Some(format!("npm finished but {} is not in PATH", kind)),
                    )
                };
                let _ = tx
                    .send(InstallEvent {
                        agent: Some(info),
                        ..send(phase, message)
                    })
                    .await;
            }
            Err(message) => {
                let _ = tx.send(send("error", Some(message))).await;
            }
        }
    }

    async fn run_npm(&self, package: &str, tx: &mpsc::Sender<InstallEvent>) -> Result<(), String> {
        let argv: Vec<String> = [
            "npm",
            "install",
            "-g",
            "--no-fund",
            "--no-audit",
            "--loglevel=http",
            package,
        ]
        .map(String::from)
        .to_vec();
        let mut child = self
            .processes
            .spawn_child(&argv, "/", &Default::default())
            .map_err(|e| e.to_string())?;
        drop(child.stdin.take());
        let (out_tx, mut out_rx) = mpsc::channel::<String>(64);
        let forward = |pipe, out_tx: mpsc::Sender<String>| async move {
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            while let Ok(n) =
                super::lines::read_line(&mut reader, &mut line, MAX_INSTALL_LINE).await
            {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                if !text.is_empty() && out_tx.send(text).await.is_err() {
                    break;
                }
            }
        };
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            return Err("npm's output pipes are missing".into());
        };
        let stdout = tokio::spawn(forward(out, out_tx.clone()));
        let stderr = tokio::spawn(forward(err, out_tx));
        let mut tail: Vec<String> = Vec::new();
        let run = async {
            while let Some(line) = out_rx.recv().await {
                tail.push(line.clone());
                if tail.len() > 20 {
                    tail.remove(0);
                }
                let _ = tx
                    .send(InstallEvent {
                        phase: "output".into(),
                        message: Some(line),
                        agent: None,
                    })
                    .await;
            }
            (&mut child.exit).await
        };
        let status = tokio::time::timeout(INSTALL_TIMEOUT, run)
            .await
            .map_err(|_| "npm did not finish in time".to_string())?;
        let _ = stdout.await;
        let _ = stderr.await;
        if status.code == Some(0) {
            Ok(())
        } else {
            Err(format!(
                "npm install failed (exit {:?}): {}",
                status.code,
                tail.join("\n")
            ))
        }
    }
}
