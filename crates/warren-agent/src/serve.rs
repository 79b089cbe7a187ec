//! Running the agent: bind listeners, serve, and shut down cleanly on SIGTERM.
//!
//! Shutdown protocol: on SIGTERM or SIGINT the listeners stop accepting, the
//! supervisor sends SIGTERM to every process group it started, waits up to
//! [`SHUTDOWN_GRACE`], sends SIGKILL to what is left, and `run` returns.
//! When the agent is PID 1 of a sandbox, returning ends the sandbox.
//!
//! Start-up order, for a fast cold start: the listeners are taken first (a
//! sandbox's init binds and listens on the agent's socket before it execs
//! the agent and hands it over as `fd:N`, so connections queue in its
//! backlog from then on), readiness is signalled (`ready`, an inherited
//! pipe the runtime waits on instead of polling the socket), and only then
//! is the router built; connections that arrived meanwhile are served as
//! soon as it is.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::{TcpListener, UnixListener};

use crate::{http, AgentConfig, AppState};

/// How long processes get between SIGTERM and SIGKILL at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Where to listen: `HOST:PORT`, `unix:/path` or `fd:N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A TCP address.
    Tcp(String),
    /// A unix socket path (an existing socket file is replaced).
    Unix(PathBuf),
    /// An inherited unix socket, already bound and listening (a sandbox's
    /// init makes it before it execs the agent).
    Fd(i32),
}

impl FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(fd) = s.strip_prefix("fd:") {
            return match fd.parse::<i32>() {
                Ok(fd) if fd > 2 => Ok(Listen::Fd(fd)),
                _ => Err(format!("fd: needs a descriptor number above 2, got {fd:?}")),
            };
        }
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a path".into());
            }
            Ok(Listen::Unix(PathBuf::from(path)))
        } else if s.contains(':') {
            Ok(Listen::Tcp(s.to_string()))
        } else {
            Err(format!("expected HOST:PORT, unix:/path or fd:N, got {s:?}"))
        }
    }
}

/// A listener taken before the router exists.
enum Bound {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// Takes one listener: binds it, or adopts the inherited descriptor.
async fn bind(listen: Listen) -> anyhow::Result<Bound> {
    Ok(match listen {
        Listen::Tcp(addr) => {
            let listener = TcpListener::bind(&addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
            tracing::info!(addr = %listener.local_addr()?, "agent listening");
            Bound::Tcp(listener)
        }
        Listen::Unix(path) => {
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path)
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), "agent listening");
            Bound::Unix(listener)
        }
        Listen::Fd(fd) => {
            let listener = adopt_unix_listener(fd)?;
            tracing::debug!(fd, "agent listening on an inherited socket");
            Bound::Unix(listener)
        }
    })
}

/// Takes ownership of inherited descriptor `fd`, which must be a unix
/// stream socket in the listening state.
fn adopt_unix_listener(fd: i32) -> anyhow::Result<UnixListener> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let fail = |what: &str| anyhow::anyhow!("fd:{fd}: {what}");
    let mut accepting: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes one int into `accepting`, whose size is `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut accepting as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(fail(&std::io::Error::last_os_error().to_string()));
    }
    if accepting == 0 {
        return Err(fail("not a listening socket"));
    }
    // SAFETY: the descriptor was handed to this process to own (nothing
    // else in it refers to it); it is a listening socket, checked above.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let std_listener = std::os::unix::net::UnixListener::from(owned);
    std_listener.set_nonblocking(true)?;
    // The agent's children must not inherit it.
    // SAFETY: F_SETFD only changes this descriptor's flags.
    if unsafe { libc::fcntl(std_listener.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(UnixListener::from_std(std_listener)?)
}

/// Tells whoever started the agent that it accepts connections: one byte
/// on the inherited pipe `fd`, which is then closed.
fn signal_ready(fd: i32) {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    // SAFETY: the descriptor was handed to this process for this one write;
    // nothing else in it refers to it.
    let mut pipe = unsafe { std::fs::File::from_raw_fd(fd) };
    if let Err(e) = pipe.write_all(b"R") {
        tracing::warn!(fd, error = %e, "cannot signal readiness");
    }
}

/// Signals readiness on `ready` at once when every listener is inherited
/// (already bound and listening: connections queue in its backlog), before
/// the caller builds its runtime, so that whoever waits goes on with its
/// own work meanwhile; then returns `None`. Otherwise returns `ready`, for
/// [`run`] to signal once it has bound the listeners.
pub fn signal_ready_if_listening(listens: &[Listen], ready: Option<i32>) -> Option<i32> {
    let fd = ready?;
    if listens.is_empty() || !listens.iter().all(|l| matches!(l, Listen::Fd(_))) {
        return Some(fd);
    }
    signal_ready(fd);
    None
}

/// Binds every listener, signals readiness on `ready` (an inherited pipe,
/// if any, unless [`signal_ready_if_listening`] did), serves until
/// SIGTERM/SIGINT, then stops the processes.
pub async fn run(
    config: AgentConfig,
    listens: Vec<Listen>,
    ready: Option<i32>,
) -> anyhow::Result<()> {
    if std::process::id() == 1 {
        // The sandbox's other processes run as the same user: without this
        // they could ptrace the agent, or read its memory through /proc.
        // SAFETY: prctl(PR_SET_DUMPABLE, 0) changes only this process's flag.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "cannot make the agent non-dumpable");
        }
        // A fork of the runtime's zygote, the agent would show under the
        // zygote's name in `ps`.
        // SAFETY: PR_SET_NAME reads a NUL-terminated name of at most 16 bytes.
        unsafe { libc::prctl(libc::PR_SET_NAME, c"warren".as_ptr(), 0, 0, 0) };
    }
    let mut bound = Vec::with_capacity(listens.len());
    for listen in listens {
        bound.push(bind(listen).await?);
    }
    // Connections queue in the listeners' backlogs until the router below
    // serves them: ready now, so the router is built while the caller goes
    // on with its own work.
    if let Some(fd) = ready {
        signal_ready(fd);
    }
    let state = AppState::new(config);
    let app = http::router(state.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    // Each listener serves `app.into_make_service()`: a connection gets a
    // clone of the router (one `Arc`) rather than the copy of every route
    // axum builds per connection for a plain `Router` (the server opens a
    // connection for a sandbox's first request, which would wait for it).
    for listener in bound {
        let app = app.clone();
        let mut stop = stop_rx.clone();
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        match listener {
            Bound::Tcp(listener) => {
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                servers.spawn(async move {
                    axum::serve(listener, app.into_make_service())
                        .with_graceful_shutdown(shutdown)
                        .await
                });
            }
            Bound::Unix(listener) => {
                servers.spawn(async move {
                    axum::serve(listener, app.into_make_service())
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
