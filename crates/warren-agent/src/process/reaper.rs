//! The reaper: the one place where the agent waits for children.
//!
//! Every child the agent starts is registered in one process-wide table,
//! pid → waiter. On SIGCHLD the reaper loops `waitpid(-1, WNOHANG)` and hands
//! each status to its pid's waiter; a pid nobody registered is an orphan that
//! was reparented to us (the agent is PID 1 of a sandbox, or a subreaper) and
//! is simply reaped, so no zombie is left behind.
//!
//! Why not `tokio::process` or `std::process::Child::wait`: both wait for
//! specific pids and would race a `waitpid(-1)` that must exist anyway for
//! orphans; whoever loses the race sees `ECHILD` and loses the exit status.
//!
//! The race between a child exiting and its registration is closed by the
//! table lock: [`spawn_registered`] holds it across spawn and registration,
//! and the reaper holds it across `waitpid` and dispatch, so no status can be
//! collected before its waiter exists. The same lock makes [`signal_group`]
//! safe against pid reuse: while a pid is registered it has not been reaped,
//! so neither the pid nor the process group it leads can belong to anyone else.
//!
//! The table is per process, not per supervisor, because `waitpid(-1)` is.
//! Each supervisor runs a reaper task on its runtime (the agent has one;
//! tests may host several agents in one process, on runtimes that come and
//! go), and any of them may dispatch any status.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;

/// How a process ended: an exit code, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// Exit code, when it exited normally.
    pub code: Option<i32>,
    /// Signal number, when a signal killed it.
    pub signal: Option<i32>,
}

impl ExitStatus {
    /// Decodes a raw `waitpid` status; `None` for stop/continue reports.
    fn from_raw(status: libc::c_int) -> Option<Self> {
        if libc::WIFEXITED(status) {
            Some(ExitStatus {
                code: Some(libc::WEXITSTATUS(status)),
                signal: None,
            })
        } else if libc::WIFSIGNALED(status) {
            Some(ExitStatus {
                code: None,
                signal: Some(libc::WTERMSIG(status)),
            })
        } else {
            None
        }
    }
}

/// Pid → where its exit status goes.
type Table = HashMap<i32, oneshot::Sender<ExitStatus>>;

fn table() -> MutexGuard<'static, Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    // A std mutex: it is held only for non-blocking syscalls (spawn, waitpid
    // with WNOHANG, kill), never across an await.
    TABLE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Resolves to the exit status of one registered child.
pub struct ExitWaiter(oneshot::Receiver<ExitStatus>);

impl Future for ExitWaiter {
    type Output = ExitStatus;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ExitStatus> {
        Pin::new(&mut self.0).poll(cx).map(|status| {
            // The sender lives in the table until the reaper sends on it, and
            // the table is never dropped, so a closed channel cannot happen;
            // report "unknown" rather than panic if it ever did.
            status.unwrap_or(ExitStatus {
                code: None,
                signal: None,
            })
        })
    }
}

/// Runs `spawn` (which returns the new child's pid and whatever else it
/// built) with the table locked, and registers the pid before unlocking.
pub fn spawn_registered<T>(
    spawn: impl FnOnce() -> io::Result<(i32, T)>,
) -> io::Result<(i32, T, ExitWaiter)> {
    let mut table = table();
    let (pid, built) = spawn()?;
    let (tx, rx) = oneshot::channel();
    table.insert(pid, tx);
    Ok((pid, built, ExitWaiter(rx)))
}

/// Sends `signal` to the process group led by `pid`, if that leader has not
/// been reaped yet. Returns whether the signal was sent.
pub fn signal_group(pid: i32, signal: i32) -> bool {
    let table = table();
    if !table.contains_key(&pid) {
        return false;
    }
    // SAFETY: kill(2) with a negative pid signals a process group and touches
    // no memory of ours. The pid is registered and unreaped (we hold the
    // lock), so the group is the one our child leads.
    unsafe { libc::kill(-pid, signal) == 0 }
}

/// Starts a reaper task on the current tokio runtime.
pub fn start() -> io::Result<()> {
    let mut sigchld = signal(SignalKind::child())?;
    // Children that exited before the handler was installed sent a SIGCHLD
    // nobody saw.
    reap_exited();
    tokio::spawn(async move {
        while sigchld.recv().await.is_some() {
            reap_exited();
        }
    });
    Ok(())
}

/// Collects every exited child and dispatches its status. SIGCHLDs coalesce,
/// so one signal may stand for many exits: loop until none is left.
fn reap_exited() {
    let mut table = table();
    loop {
        let mut raw = 0;
        // SAFETY: waitpid writes the status into `raw`, a live local.
        let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
        if pid > 0 {
            let Some(status) = ExitStatus::from_raw(raw) else {
                continue;
            };
            match table.remove(&pid) {
                // The waiter may be gone (a run whose client went away).
                Some(waiter) => drop(waiter.send(status)),
                None => tracing::debug!(pid, ?status, "reaped an orphan"),
            }
            continue;
        }
        if pid < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        // 0: children remain but none has exited; ECHILD: no children.
        break;
    }
}
