//! Children the agent drives itself (coding agents, installers): piped
//! stdio, their own session, a process slot, registered with the reaper,
//! and killed with their whole group when the handle is dropped.

use std::collections::BTreeMap;

use tokio::net::unix::pipe;

use super::command::Launch;
use super::reaper::{self, ExitWaiter};
use super::slots::Slot;
use super::Supervisor;
use crate::AgentError;

/// A running child with pipes. Dropping it kills its process group.
pub struct Child {
    /// Its pid, also its process group id.
    pub pid: i32,
    /// Resolves when it has exited (and been reaped).
    pub exit: ExitWaiter,
    /// Its stdin (take it to write, drop it to close).
    pub stdin: Option<pipe::Sender>,
    /// Its stdout.
    pub stdout: Option<pipe::Receiver>,
    /// Its stderr.
    pub stderr: Option<pipe::Receiver>,
    _slot: Slot,
}

impl Child {
    /// Sends `signal` to its process group; false once it has been reaped.
    pub fn signal(&self, signal: i32) -> bool {
        reaper::signal_group(self.pid, signal)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // A no-op once reaped: the reaper's table makes this safe against
        // pid reuse.
        reaper::signal_group(self.pid, libc::SIGKILL);
    }
}

impl Supervisor {
    /// Starts `argv` in `cwd` with `env` over the agent's defaults, stdin,
    /// stdout and stderr on pipes, in its own session. Takes a process slot.
    pub fn spawn_child(
        &self,
        argv: &[String],
        cwd: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<Child, AgentError> {
        let launch = Launch::new(
            &self.inner.config,
            None,
            Some(argv),
            Some(cwd),
            Some(env),
            false,
        )?;
        let mut slot = self.inner.slots.acquire()?;
        let spawned = launch.spawn_managed()?;
        slot.bind(spawned.pid);
        Ok(Child {
            pid: spawned.pid,
            exit: spawned.exit,
            stdin: spawned.io.stdin,
            stdout: Some(spawned.io.stdout),
            stderr: Some(spawned.io.stderr),
            _slot: slot,
        })
    }

    /// Where `program` is found in the agent's default `PATH`, if anywhere.
    pub fn find_program(&self, program: &str) -> Option<std::path::PathBuf> {
        let config = &self.inner.config;
        let path_var = config
            .env
            .get()
            .get("PATH")
            .cloned()
            .or_else(|| std::env::var("PATH").ok())
            .unwrap_or_else(|| super::command::DEFAULT_PATH.to_string());
        super::command::find_program(program, &path_var, &config.workdir)
    }
}
