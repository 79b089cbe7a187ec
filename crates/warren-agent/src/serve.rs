//! Running the agent: bind listeners, serve, and shut down cleanly on SIGTERM.
//!
//! Shutdown protocol: on SIGTERM or SIGINT the listeners stop accepting, the
//! supervisor sends SIGTERM to every process group it started, waits up to
//! [`SHUTDOWN_GRACE`], sends SIGKILL to what is left, and `run` returns.
//! When the agent is PID 1 of a sandbox, returning ends the sandbox.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::{TcpListener, UnixListener};

use crate::{http, AgentConfig, AppState};

/// How long processes get between SIGTERM and SIGKILL at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Where to listen: `HOST:PORT` or `unix:/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A TCP address.
    Tcp(String),
    /// A unix socket path (an existing socket file is replaced).
    Unix(PathBuf),
}

impl FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a path".into());
            }
            Ok(Listen::Unix(PathBuf::from(path)))
        } else if s.contains(':') {
            Ok(Listen::Tcp(s.to_string()))
        } else {
            Err(format!("expected HOST:PORT or unix:/path, got {s:?}"))
        }
    }
}

/// Binds every listener, serves until SIGTERM/SIGINT, then stops the processes.
pub async fn run(config: AgentConfig, listens: Vec<Listen>) -> anyhow::Result<()> {
    if std::process::id() == 1 {
        // The sandbox's other processes run as the same user: without this
        // they could ptrace the agent, or read its memory through /proc.
        // SAFETY: prctl(PR_SET_DUMPABLE, 0) changes only this process's flag.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "cannot make the agent non-dumpable");
        }
    }
    let state = AppState::new(config);
    let app = http::router(state.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    for listen in listens {
        let app = app.clone();
        let mut stop = stop_rx.clone();
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        match listen {
            Listen::Tcp(addr) => {
                let listener = TcpListener::bind(&addr)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
                tracing::info!(addr = %listener.local_addr()?, "agent listening");
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                servers.spawn(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await
                });
            }
            Listen::Unix(path) => {
                let _ = std::fs::remove_file(&path);
                let listener = UnixListener::bind(&path)
                    .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", path.display()))?;
                tracing::info!(path = %path.display(), "agent listening");
                servers.spawn(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await
                });
            }
        }
    }

    wait_for_stop_signal().await?;
    tracing::info!("stopping: ending processes");
    let _ = stop_tx.send(true);
    state.sessions.shutdown(SHUTDOWN_GRACE).await;
    state.processes.shutdown(SHUTDOWN_GRACE).await;
    // Long-lived streams (follow, attach, watch) would hold graceful shutdown
    // open forever; give them a moment, then drop them.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while servers.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

async fn wait_for_stop_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
