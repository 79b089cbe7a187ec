//! Managed processes (`POST /v1/processes`): a process, its output ring, its
//! stdin, and the tasks that pump its output and wait for its exit.
//!
//! Lifecycle: spawn → one pump task per output fd (two pipes, or the pty
//! master) appends to the ring and wakes followers → the supervise task gets
//! the exit status from the reaper, gives the pumps [`DRAIN_GRACE`] to reach
//! EOF (background grandchildren may hold the fds open forever), and only
//! then publishes the exit. So once a reader sees `exit`, every byte the
//! process wrote is in the ring and the exit's cursor is final.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use warren_api::agent::{ProcessInfo, ProcessState, StreamKind};

use super::clock::rfc3339;
use super::command::{Pipes, Spawned};
use super::pty::{self, Master};
use super::reaper::{self, ExitStatus, ExitWaiter};
use super::ring::{Read, ReadOpts, Ring};
use super::slots::Slot;
use crate::AgentError;

/// After the main process exits, how long output fds may stay open before
/// the pumps are stopped and the exit is published.
const DRAIN_GRACE: Duration = Duration::from_millis(100);

/// Bytes read from an output fd at a time.
const PUMP_CHUNK: usize = 16 * 1024;

/// How long a stdin write may wait for the process to read.
const STDIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The terminal's end-of-file character (Ctrl-D), sent for `eof` on a tty.
const VEOF: u8 = 0x04;

/// What a managed process was started with, for [`ProcessInfo`].
#[derive(Debug, Clone)]
pub struct Origin {
    /// `proc_…`.
    pub id: String,
    /// Start order, for listing.
    pub seq: u64,
    /// The shell command, when started with `cmd`.
    pub cmd: Option<String>,
    /// The argv, when started with `argv`.
    pub argv: Option<Vec<String>>,
}

/// A managed process.
pub struct Managed {
    origin: Origin,
    pid: i32,
    tty: bool,
    started_at: SystemTime,
    state: Mutex<State>,
    /// Woken on every append and at exit; followers wait on it.
    output: Notify,
    /// Becomes true when the exit is published.
    exited: watch::Sender<bool>,
    /// stdin: the pipe, or the pty master; `None` once closed. An async
    /// mutex: writers wait on the process reading, in turn.
    input: Arc<tokio::sync::Mutex<Option<Input>>>,
    /// The pty master, for resizes; dropped at exit.
    master: Mutex<Option<Arc<Master>>>,
}

/// What changes as the process runs.
#[derive(Debug)]
pub struct State {
    /// Output, both streams.
    pub ring: Ring,
    /// Set once the process exited and its output is drained.
    pub exit: Option<Exit>,
}

/// A published exit.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    /// How it ended.
    pub status: ExitStatus,
    /// When (wall clock).
    pub at: SystemTime,
    /// When (monotonic, for retention).
    pub instant: Instant,
}

enum Input {
    Pipe(pipe::Sender),
    Pty(Arc<Master>),
}

/// The fds output is pumped from.
enum Outputs {
    Pipes(pipe::Receiver, pipe::Receiver),
    Pty(Arc<Master>),
}

/// Where the child's I/O goes.
pub enum Io {
    /// stdin, stdout and stderr pipes.
    Pipes(Spawned<Pipes>),
    /// A pseudo-terminal.
    Pty(Spawned<Master>),
}

/// Everything [`Managed::start`] needs besides the spawned child.
pub struct StartOpts {
    /// Size of the output ring.
    pub ring_bytes: usize,
    /// Kill the group after this long.
    pub timeout: Option<Duration>,
    /// Written to stdin right after start.
    pub stdin: Option<Vec<u8>>,
}

impl Managed {
    /// Wraps a spawned child and starts its pump and supervise tasks.
    pub fn start(origin: Origin, io: Io, opts: StartOpts, slot: Slot) -> Arc<Managed> {
        let (pid, exit, input, master, outputs) = match io {
            Io::Pipes(spawned) => {
                let Pipes {
                    stdin,
                    stdout,
                    stderr,
                } = spawned.io;
                let outputs = Outputs::Pipes(stdout, stderr);
                (
                    spawned.pid,
                    spawned.exit,
                    stdin.map(Input::Pipe),
                    None,
                    outputs,
                )
            }
            Io::Pty(spawned) => {
                let master = Arc::new(spawned.io);
                let input = Some(Input::Pty(master.clone()));
                let outputs = Outputs::Pty(master.clone());
                (spawned.pid, spawned.exit, input, Some(master), outputs)
            }
        };
        let proc = Arc::new(Managed {
            origin,
            pid,
            tty: master.is_some(),
            started_at: SystemTime::now(),
            state: Mutex::new(State {
                ring: Ring::new(opts.ring_bytes),
                exit: None,
            }),
            output: Notify::new(),
            exited: watch::Sender::new(false),
            input: Arc::new(tokio::sync::Mutex::new(input)),
            master: Mutex::new(master),
        });
        let pumps = match outputs {
            Outputs::Pipes(stdout, stderr) => vec![
                tokio::spawn(proc.clone().pump_pipe(stdout, StreamKind::Stdout)),
                tokio::spawn(proc.clone().pump_pipe(stderr, StreamKind::Stderr)),
            ],
            Outputs::Pty(master) => vec![tokio::spawn(proc.clone().pump_pty(master))],
        };
        // The stdin lock is taken before returning (nobody else can hold it
        // yet), so writes that arrive later queue behind the initial data.
        if let (Some(data), Ok(mut input)) = (opts.stdin, proc.input.clone().try_lock_owned()) {
            tokio::spawn(async move {
                if let Some(sink) = input.as_mut() {
                    let _ = tokio::time::timeout(STDIN_TIMEOUT, sink.write(&data)).await;
                }
            });
        }
        tokio::spawn(proc.clone().supervise(exit, pumps, opts.timeout, slot));
        proc
    }

    async fn pump_pipe(self: Arc<Self>, mut rx: pipe::Receiver, stream: StreamKind) {
        let mut buf = vec![0; PUMP_CHUNK];
        while let Ok(n @ 1..) = rx.read(&mut buf).await {
            self.append(stream, &buf[..n]);
        }
    }

    async fn pump_pty(self: Arc<Self>, master: Arc<Master>) {
        let mut buf = vec![0; PUMP_CHUNK];
        while let Ok(n @ 1..) = pty::read(&master, &mut buf).await {
            self.append(StreamKind::Stdout, &buf[..n]);
        }
    }

    fn append(&self, stream: StreamKind, data: &[u8]) {
        self.lock_state().ring.push(stream, data);
        self.output.notify_waiters();
    }

    /// Waits for the exit (killing the group at the timeout), drains, publishes.
    async fn supervise(
        self: Arc<Self>,
        exit: ExitWaiter,
        pumps: Vec<tokio::task::JoinHandle<()>>,
        timeout: Option<Duration>,
        slot: Slot,
    ) {
        let mut exit = std::pin::pin!(exit);
        let status = match timeout {
            Some(t) => tokio::select! {
                status = &mut exit => status,
                _ = tokio::time::sleep(t) => {
                    reaper::signal_group(self.pid, libc::SIGKILL);
                    exit.await
                }
            },
            None => exit.await,
        };
        let aborts: Vec<_> = pumps.iter().map(|p| p.abort_handle()).collect();
        let mut pumps = std::pin::pin!(futures::future::join_all(pumps));
        if tokio::time::timeout(DRAIN_GRACE, &mut pumps).await.is_err() {
            aborts.iter().for_each(|a| a.abort());
            // Wait for the aborts to land, so no append follows the exit.
            pumps.await;
        }
        self.lock_state().exit = Some(Exit {
            status,
            at: SystemTime::now(),
            instant: Instant::now(),
        });
        self.output.notify_waiters();
        self.exited.send_replace(true);
        drop(slot);
        // Close our ends of stdin and the terminal.
        self.lock_master().take();
        self.input.lock().await.take();
    }

    /// Locks the mutable state (ring and exit).
    pub fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_master(&self) -> MutexGuard<'_, Option<Arc<Master>>> {
        self.master.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.origin.id
    }

    /// Start order.
    pub fn seq(&self) -> u64 {
        self.origin.seq
    }

    /// Waits for the output to change (arm it before checking the state).
    pub fn output_changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.output.notified()
    }

    /// The published exit, if any.
    pub fn exit(&self) -> Option<Exit> {
        self.lock_state().exit
    }

    /// Reads the ring (see [`Ring::read`]), with the exit when published.
    pub fn read(&self, cursor: u64, max: usize, utf8: bool) -> (Read, Option<Exit>) {
        let state = self.lock_state();
        let opts = ReadOpts {
            max,
            utf8,
            live: state.exit.is_none(),
        };
        (state.ring.read(cursor, opts), state.exit)
    }

    /// Waits up to `timeout` for the exit to be published.
    pub async fn wait_exit(&self, timeout: Duration) {
        let mut rx = self.exited.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|exited| *exited)).await;
    }

    /// The process as the API shows it.
    pub fn info(&self) -> ProcessInfo {
        let state = self.lock_state();
        let exit = state.exit;
        let status = match exit {
            Some(_) => ProcessState::Exited,
            None => ProcessState::Running,
        };
        ProcessInfo {
            id: self.origin.id.clone(),
            pid: self.pid,
            cmd: self.origin.cmd.clone(),
            argv: self.origin.argv.clone(),
            tty: self.tty,
            state: status,
            status,
            exit_code: exit.and_then(|e| e.status.code),
            signal: exit.and_then(|e| e.status.signal),
            started_at: rfc3339(self.started_at),
            exited_at: exit.map(|e| rfc3339(e.at)),
            output_cursor: state.ring.end(),
        }
    }

    /// Sends `signal` to the process group.
    pub fn signal(&self, signal: i32) -> Result<(), AgentError> {
        if self.exit().is_some() || !reaper::signal_group(self.pid, signal) {
            return Err(AgentError::ProcessNotRunning(self.origin.id.clone()));
        }
        Ok(())
    }

    /// Resizes the terminal.
    pub fn resize(&self, cols: u16, rows: u16) -> Result<(), AgentError> {
        if !self.tty {
            return Err(AgentError::NotATty(self.origin.id.clone()));
        }
        let master = self.lock_master();
        let Some(master) = master.as_ref().filter(|_| self.exit().is_none()) else {
            return Err(AgentError::ProcessNotRunning(self.origin.id.clone()));
        };
        pty::set_size(master.get_ref(), cols, rows).map_err(|source| AgentError::Io {
            op: "resizing the terminal",
            source,
        })
    }

    /// Writes to stdin; `eof` closes it afterwards (on a terminal, sends the
    /// end-of-file character, Ctrl-D, instead).
    pub async fn write_stdin(&self, data: &[u8], eof: bool) -> Result<(), AgentError> {
        let id = &self.origin.id;
        if self.exit().is_some() {
            return Err(AgentError::ProcessNotRunning(id.clone()));
        }
        let write = async {
            let mut input = self.input.lock().await;
            let Some(sink) = input.as_mut() else {
                return Err(AgentError::StdinClosed(id.clone()));
            };
            let mut result = sink.write(data).await;
            if result.is_ok() && eof {
                result = match sink {
                    Input::Pipe(_) => {
                        *input = None;
                        Ok(())
                    }
                    Input::Pty(master) => pty::write_all(master, &[VEOF]).await,
                };
            }
            if result.is_err() {
                // EPIPE or EIO: the process's side is closed for good.
                *input = None;
                return Err(AgentError::StdinClosed(id.clone()));
            }
            Ok(())
        };
        tokio::time::timeout(STDIN_TIMEOUT, write)
            .await
            .map_err(|_| AgentError::StdinStalled {
                id: id.clone(),
                secs: STDIN_TIMEOUT.as_secs(),
            })?
    }
}

impl Input {
    async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Input::Pipe(tx) => tx.write_all(data).await,
            Input::Pty(master) => pty::write_all(master, data).await,
        }
    }
}
