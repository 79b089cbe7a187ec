//! `warren agent`: the daemon inside every sandbox (and standalone on any
//! Linux host). It serves the agent API of `API.md` over TCP and unix sockets.
//!
//! Layout:
//! - [`config`]: [`AgentConfig`], everything the command line sets.
//! - [`http`]: the axum router, auth, OpenAPI; handlers are thin and call the
//!   domain modules below.
//! - [`process`]: the process supervisor (spawn, process groups, PTYs, output
//!   rings with byte cursors, the SIGCHLD reaper).
//! - [`files`]: file operations under an optional root jail, tar, inotify watch.
//! - [`sessions`]: coding-agent sessions (Claude Code, Codex, OpenCode, mock)
//!   and their event streams.
//! - [`desktop`]: a virtual display driven by mouse, keyboard, windows and
//!   screenshots (Xvfb, Openbox, xdotool, ffmpeg).
//! - [`envd`]: E2B's in-sandbox API (Connect RPC and `/files`) over the
//!   same process and file code, for E2B's SDKs.
//! - [`error`]: [`AgentError`], every failure mapped to one problem code.
//! - [`serve`]: binds listeners and runs until SIGTERM, then stops every
//!   process it started.

pub mod config;
pub mod desktop;
pub mod envd;
pub mod error;
pub mod files;
pub mod http;
pub mod process;
pub mod serve;
pub mod sessions;

pub use config::AgentConfig;
pub use error::AgentError;
pub use serve::{run, signal_ready_if_listening, Listen};

use std::sync::Arc;

/// Shared state handed to every handler: one reference-counted
/// [`AgentState`], so that a clone is one atomic increment. axum clones the
/// state into every route and layer as the router is built, and into every
/// request's extractors: with the parts cloned one by one (some twenty
/// counters and a path), that was a fifth of a cold agent's start.
#[derive(Clone)]
pub struct AppState(Arc<AgentState>);

/// What [`AppState`] shares.
pub struct AgentState {
    /// Immutable configuration.
    pub config: Arc<AgentConfig>,
    /// The process supervisor.
    pub processes: process::Supervisor,
    /// File operations (path resolution under the jail).
    pub files: files::Files,
    /// Coding-agent sessions.
    pub sessions: sessions::Sessions,
    /// envd's own state (process tags, polling watchers).
    pub envd: envd::Envd,
    /// The desktop (display, window manager, input).
    pub desktop: desktop::Desktop,
    /// The desktop's browser (Chromium and its DevTools endpoint).
    pub browser: desktop::browser::Browser,
}

impl std::ops::Deref for AppState {
    type Target = AgentState;

    fn deref(&self) -> &AgentState {
        &self.0
    }
}

impl AppState {
    /// State for a configuration. Must be called inside a tokio runtime (the
    /// supervisor starts its reaper task).
    pub fn new(config: AgentConfig) -> Self {
        let config = Arc::new(config);
        let processes = process::Supervisor::new(config.clone());
        AppState(Arc::new(AgentState {
            sessions: sessions::Sessions::new(config.clone(), processes.clone()),
            desktop: desktop::Desktop::new(
                processes.clone(),
                config.state_dir.clone(),
                config.env.clone(),
            ),
            browser: desktop::browser::Browser::default(),
            processes,
            files: files::Files::new(config.clone()),
            envd: envd::Envd::default(),
            config,
        }))
    }
}
