//! One-shot runs (`POST /v1/processes/run`): spawn, feed stdin, collect both
//! streams up to a cap, enforce the timeout, answer with the exit status.
//!
//! Everything happens in the request's own task: pipes are non-blocking on
//! the reactor, the exit comes from the reaper. If the client goes away the
//! future is dropped and the process group is killed.

use std::pin::pin;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::time::{sleep_until, Instant};
use warren_api::agent::RunResponse;

use super::command::{Launch, Pipes};
use super::reaper;
use super::slots::Slot;
use crate::AgentError;

/// After the process exits, how long to keep reading pipes that background
/// grandchildren still hold open before answering with what was buffered.
const DRAIN_GRACE: Duration = Duration::from_millis(100);

/// Bytes read from a pipe at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Runs `launch` to completion. `slot` is held until the process is gone.
pub async fn run(
    launch: &Launch,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    max_output: usize,
    mut slot: Slot,
) -> Result<RunResponse, AgentError> {
    let spawned = launch.spawn_run(stdin.is_some())?;
    let started = Instant::now();
    let pid = spawned.pid;
    slot.bind(pid);
    let mut kill = KillGroupOnDrop(Some(pid));
    let Pipes {
        stdin: sink,
        stdout,
        stderr,
    } = spawned.io;
    let mut out = Capture::new(max_output);
    let mut err = Capture::new(max_output);
    let deadline = started + timeout;
    let mut timed_out = false;
    let (status, ended) = {
        let io = async { tokio::join!(out.fill(stdout), err.fill(stderr), feed(sink, stdin)) };
        let mut io = pin!(io);
        let mut exit = pin!(spawned.exit);
        let mut io_done = false;
        let mut status = None;
        let mut drained = false;
        loop {
            if let Some(done) = status {
                if io_done || drained {
                    break done;
                }
            }
            let drain_deadline = status.map_or(deadline, |(_, at)| at + DRAIN_GRACE);
            tokio::select! {
                _ = &mut io, if !io_done => io_done = true,
                s = &mut exit, if status.is_none() => {
                    // Reaped: from now on the pid may be reused, never signal it.
                    kill.0 = None;
                    status = Some((s, Instant::now()));
                }
                _ = sleep_until(deadline), if status.is_none() && !timed_out => {
                    timed_out = true;
                    reaper::signal_group(pid, libc::SIGKILL);
                }
                _ = sleep_until(drain_deadline), if status.is_some() && !io_done => drained = true,
            }
        }
    };
    Ok(RunResponse {
        exit_code: status.code,
        signal: status.signal,
        stdout: String::from_utf8_lossy(&out.buf).into_owned(),
        stderr: String::from_utf8_lossy(&err.buf).into_owned(),
        timed_out,
        stdout_truncated: out.truncated,
        stderr_truncated: err.truncated,
        duration_ms: ended.duration_since(started).as_millis() as u64,
        checkpoint: None,
    })
}

/// Kills the process group if the run is abandoned (the client went away)
/// before the process was reaped.
struct KillGroupOnDrop(Option<i32>);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            reaper::signal_group(pid, libc::SIGKILL);
        }
    }
}

/// One output stream: keeps the first `max` bytes, drains and counts the rest.
struct Capture {
    buf: Vec<u8>,
    max: usize,
    truncated: bool,
}

impl Capture {
    fn new(max: usize) -> Self {
        Capture {
            buf: Vec::new(),
            max,
            truncated: false,
        }
    }

    /// Reads `rx` to EOF (or to the first error, which ends the stream too).
    async fn fill(&mut self, mut rx: pipe::Receiver) {
        let mut discard = Vec::new();
        loop {
            let room = self.max - self.buf.len();
            let n = if room > 0 {
                self.buf.reserve(room.min(READ_CHUNK));
                let n = rx.read_buf(&mut self.buf).await;
                if self.buf.len() > self.max {
                    self.buf.truncate(self.max);
                    self.truncated = true;
                }
                n
            } else {
                discard.resize(READ_CHUNK, 0);
                let n = rx.read(&mut discard).await;
                if matches!(n, Ok(1..)) {
                    self.truncated = true;
                }
                n
            };
            if !matches!(n, Ok(1..)) {
                return;
            }
        }
    }
}

/// Writes `data` to the process's stdin, then closes it. A process that
/// exits without reading makes the write fail with EPIPE, which is fine.
async fn feed(sink: Option<pipe::Sender>, data: Option<Vec<u8>>) {
    if let (Some(mut sink), Some(data)) = (sink, data) {
        let _ = sink.write_all(&data).await;
    }
}
