//! From a request to a started child: program lookup, environment, working
//! directory, stdio wiring, and the spawn itself (registered with the reaper).
//!
//! Everything that can be checked before the spawn is (program in `PATH`,
//! working directory, environment names), so a bad request gets a precise
//! 400 instead of a bare `ENOENT` from exec.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tokio::net::unix::pipe;

use super::pty::{self, Master};
use super::reaper::{self, ExitWaiter};
use crate::{AgentConfig, AgentError};

/// `PATH` for processes when neither the agent's defaults, the request nor
/// the agent's own environment has one.
pub(super) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `TERM` of processes on a pseudo-terminal, unless the request sets one.
const TTY_TERM: &str = "xterm-256color";

/// A validated command, ready to spawn.
#[derive(Debug)]
pub struct Launch {
    /// Resolved program path (never a bare name, so std keeps posix_spawn).
    program: PathBuf,
    /// `argv[0]` as the caller gave it.
    argv0: String,
    args: Vec<String>,
    cwd: PathBuf,
    /// Whether the caller named `cwd` (else a user's home replaces the workdir).
    cwd_given: bool,
    env: BTreeMap<String, String>,
    /// Who it runs as: uid, gid, every group (allocated before the fork).
    user: Option<(u32, u32, Vec<libc::gid_t>)>,
}

/// A started child, registered with the reaper.
pub struct Spawned<T> {
    /// Its pid, also its process group id.
    pub pid: i32,
    /// Resolves when the reaper collects it.
    pub exit: ExitWaiter,
    /// Its stdio, on the agent's side.
    pub io: T,
}

/// The agent's ends of a child's pipes, non-blocking on the reactor.
pub struct Pipes {
    /// stdin, when it was asked for.
    pub stdin: Option<pipe::Sender>,
    /// stdout.
    pub stdout: pipe::Receiver,
    /// stderr.
    pub stderr: pipe::Receiver,
}

impl Launch {
    /// Validates what to run and where. Exactly one of `cmd` (run by
    /// `/bin/sh -c`) and `argv` (exec'd directly) must be given.
    pub fn new(
        config: &AgentConfig,
        cmd: Option<&str>,
        argv: Option<&[String]>,
        cwd: Option<&str>,
        env: Option<&BTreeMap<String, String>>,
        tty: bool,
    ) -> Result<Launch, AgentError> {
        let cwd_arg_given = cwd.is_some();
        let cwd = resolve_cwd(&config.workdir, cwd)?;
        let env = merge_env(&config.env.get(), env, tty)?;
        let (program, argv0, args) = match (cmd, argv) {
            (Some(cmd), None) => {
                no_nul("cmd", cmd)?;
                let args = vec!["-c".to_string(), cmd.to_string()];
                (PathBuf::from("/bin/sh"), "sh".to_string(), args)
            }
            (None, Some([first, rest @ ..])) => {
                if first.is_empty() {
                    return Err(AgentError::InvalidRequest("argv[0] is empty".into()));
                }
                for arg in std::iter::once(first).chain(rest) {
                    no_nul("argv", arg)?;
                }
                let path_var = env.get("PATH").map_or(DEFAULT_PATH, String::as_str);
                let program = if first.contains('/') {
                    PathBuf::from(first)
                } else {
                    find_program(first, path_var, &cwd).ok_or_else(|| {
                        AgentError::ProgramNotFound {
                            program: first.clone(),
                            path: path_var.to_string(),
                        }
                    })?
                };
                (program, first.clone(), rest.to_vec())
            }
            (None, Some([])) => {
                return Err(AgentError::InvalidRequest("argv is empty".into()));
            }
            (None, None) => {
                return Err(AgentError::InvalidRequest(
                    "give what to run: cmd (a shell command line) or argv (a program and its arguments)"
                        .into(),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(AgentError::InvalidRequest(
                    "give either cmd or argv, not both".into(),
                ));
            }
        };
        Ok(Launch {
            program,
            argv0,
            args,
            cwd,
            cwd_given: cwd_arg_given,
            env,
            user: None,
        })
    }

    /// Runs it as `user` (a name or a uid; `None`: the agent's own), with
    /// that user's `HOME`, `USER` and `LOGNAME` unless `request_env` sets
    /// them, and in that user's home when no `cwd` was given and the home
    /// exists (the workdir, often `/root`, is seldom the user's to enter).
    pub fn run_as(
        mut self,
        user: Option<&str>,
        request_env: Option<&BTreeMap<String, String>>,
    ) -> Result<Launch, AgentError> {
        let Some(spec) = user else {
            return Ok(self);
        };
        let user = super::user::lookup(spec)?;
        let given = |k: &str| request_env.is_some_and(|e| e.contains_key(k));
        for (key, value) in [
            ("HOME", &user.home),
            ("USER", &user.name),
            ("LOGNAME", &user.name),
        ] {
            if !given(key) {
                self.env.insert(key.to_string(), value.clone());
            }
        }
        if !self.cwd_given && Path::new(&user.home).is_dir() {
            self.cwd = PathBuf::from(&user.home);
        }
        self.user = Some((user.uid, user.gid, user.groups));
        Ok(self)
    }

    /// Registers the switch to the launch's user, if any, as the last thing
    /// before exec (after the session and terminal set-up, which need no
    /// privilege but must come first).
    fn switch_user(&self, cmd: &mut Command) {
        if let Some((uid, gid, groups)) = self.user.clone() {
            // SAFETY: the closure makes raw system calls only, on `groups`,
            // which was allocated before the fork.
            unsafe { cmd.pre_exec(move || super::user::become_user(uid, gid, &groups)) };
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg0(&self.argv0)
            .args(&self.args)
            .env_clear()
            .envs(&self.env)
            .current_dir(&self.cwd);
        cmd
    }

    /// Spawns for a one-shot run: its own process group and no `pre_exec`,
    /// so std takes its posix_spawn (vfork) path: the run hot path.
    pub fn spawn_run(&self, with_stdin: bool) -> Result<Spawned<Pipes>, AgentError> {
        let mut cmd = self.command();
        cmd.process_group(0).stdin(if with_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        self.spawn_piped(cmd)
    }

    /// Spawns a managed process: its own session (and so its own process
    /// group), with stdin, stdout and stderr on pipes.
    pub fn spawn_managed(&self) -> Result<Spawned<Pipes>, AgentError> {
        let mut cmd = self.command();
        cmd.stdin(Stdio::piped());
        // SAFETY: the closure runs in the child between fork and exec and
        // only calls setsid(2), which is async-signal-safe.
        unsafe { cmd.pre_exec(new_session) };
        self.spawn_piped(cmd)
    }

    /// Spawns a managed process on a new pseudo-terminal: own session, the
    /// terminal as its controlling terminal and as stdin, stdout and stderr.
    pub fn spawn_pty(&self, cols: u16, rows: u16) -> Result<Spawned<Master>, AgentError> {
        let io_err = |op| move |source| AgentError::Io { op, source };
        let pair = pty::open(cols, rows).map_err(io_err("opening a pseudo-terminal"))?;
        let mut cmd = self.command();
        let dup = |fd: &OwnedFd| fd.try_clone().map_err(io_err("duplicating the terminal"));
        cmd.stdin(Stdio::from(dup(&pair.slave)?))
            .stdout(Stdio::from(dup(&pair.slave)?))
            .stderr(Stdio::from(pair.slave));
        // SAFETY: runs in the child between fork and exec; setsid(2) and
        // ioctl(2) are async-signal-safe and touch no parent memory.
        unsafe {
            cmd.pre_exec(|| {
                new_session()?;
                // fd 0 is the terminal's slave side by now (std sets up stdio
                // before running pre_exec closures).
                if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            })
        };
        self.switch_user(&mut cmd);
        let (pid, (), exit) = reaper::spawn_registered(|| {
            let child = cmd.spawn()?;
            Ok((child.id() as i32, ()))
        })
        .map_err(|e| self.spawn_error(e))?;
        // The Command holds the parent's copies of the slave: close them, or
        // the master never sees the hang-up when the process's side closes.
        drop(cmd);
        match pty::into_async(pair.master) {
            Ok(master) => Ok(Spawned {
                pid,
                exit,
                io: master,
            }),
            Err(source) => {
                reaper::signal_group(pid, libc::SIGKILL);
                Err(AgentError::Io {
                    op: "registering the terminal",
                    source,
                })
            }
        }
    }

    fn spawn_piped(&self, mut cmd: Command) -> Result<Spawned<Pipes>, AgentError> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        self.switch_user(&mut cmd);
        let (pid, mut child, exit) = reaper::spawn_registered(|| {
            let child = cmd.spawn()?;
            Ok((child.id() as i32, child))
        })
        .map_err(|e| self.spawn_error(e))?;
        // The std Child is only a bag of fds here: dropping it neither waits
        // nor kills, and its pid is the reaper's.
        let mut wrap = || -> io::Result<Pipes> {
            let stdin = match child.stdin.take() {
                Some(fd) => Some(pipe::Sender::from_owned_fd(OwnedFd::from(fd))?),
                None => None,
            };
            let stdout = child.stdout.take().map(OwnedFd::from);
            let stderr = child.stderr.take().map(OwnedFd::from);
            let missing = || io::Error::other("child pipe missing");
            Ok(Pipes {
                stdin,
                stdout: pipe::Receiver::from_owned_fd(stdout.ok_or_else(missing)?)?,
                stderr: pipe::Receiver::from_owned_fd(stderr.ok_or_else(missing)?)?,
            })
        };
        match wrap() {
            Ok(io) => Ok(Spawned { pid, exit, io }),
            Err(source) => {
                reaper::signal_group(pid, libc::SIGKILL);
                Err(AgentError::Io {
                    op: "registering the process's pipes",
                    source,
                })
            }
        }
    }

    fn spawn_error(&self, source: io::Error) -> AgentError {
        AgentError::Spawn {
            program: self.argv0.clone(),
            source,
        }
    }
}

fn new_session() -> io::Result<()> {
    // SAFETY: setsid(2) takes no arguments and touches no memory.
    if unsafe { libc::setsid() } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn no_nul(what: &str, s: &str) -> Result<(), AgentError> {
    if s.contains('\0') {
        return Err(AgentError::InvalidRequest(format!(
            "{what} contains a NUL byte"
        )));
    }
    Ok(())
}

/// The working directory: `cwd` resolved against the workdir, which must be
/// an existing directory.
fn resolve_cwd(workdir: &Path, cwd: Option<&str>) -> Result<PathBuf, AgentError> {
    if let Some(c) = cwd {
        no_nul("cwd", c)?;
    }
    let dir = match cwd {
        Some(c) if !c.is_empty() => workdir.join(c),
        _ => workdir.to_path_buf(),
    };
    let bad = |source| AgentError::BadCwd {
        cwd: dir.display().to_string(),
        source,
    };
    match std::fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() => Ok(dir),
        Ok(_) => Err(bad(io::Error::from(io::ErrorKind::NotADirectory))),
        Err(e) => Err(bad(e)),
    }
}

/// The agent's default environment, the request's over it, and the few
/// variables every process needs when neither sets them.
fn merge_env(
    defaults: &BTreeMap<String, String>,
    request: Option<&BTreeMap<String, String>>,
    tty: bool,
) -> Result<BTreeMap<String, String>, AgentError> {
    let mut env = defaults.clone();
    for (k, v) in request.into_iter().flatten() {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            return Err(AgentError::InvalidRequest(format!(
                "invalid environment variable name {k:?}"
            )));
        }
        no_nul("env", v)?;
        env.insert(k.clone(), v.clone());
    }
    if !env.contains_key("PATH") {
        let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_string());
        env.insert("PATH".into(), path);
    }
    if !env.contains_key("HOME") {
        if let Ok(home) = std::env::var("HOME") {
            env.insert("HOME".into(), home);
        }
    }
    if tty && !env.contains_key("TERM") {
        env.insert("TERM".into(), TTY_TERM.into());
    }
    Ok(env)
}

/// The first executable regular file named `name` in `path_var` (relative
/// entries are relative to `cwd`, as exec would see them).
pub(super) fn find_program(name: &str, path_var: &str, cwd: &Path) -> Option<PathBuf> {
    path_var.split(':').find_map(|dir| {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = cwd.join(dir).join(name);
        let meta = std::fs::metadata(&candidate).ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(candidate)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_in_path() {
        let sh = find_program("sh", "/nonexistent:/bin", Path::new("/")).unwrap();
        assert_eq!(sh, PathBuf::from("/bin/sh"));
        assert!(find_program("no-such-program-xyz", DEFAULT_PATH, Path::new("/")).is_none());
    }

    #[test]
    fn merges_env_over_defaults() {
        let defaults = BTreeMap::from([("A".to_string(), "1".to_string())]);
        let request = BTreeMap::from([
            ("A".to_string(), "2".to_string()),
            ("PATH".to_string(), "/x".to_string()),
        ]);
        let env = merge_env(&defaults, Some(&request), true).unwrap();
        assert_eq!(env["A"], "2");
        assert_eq!(env["PATH"], "/x");
        assert_eq!(env["TERM"], TTY_TERM);
        let bad = BTreeMap::from([("A=B".to_string(), String::new())]);
        assert!(merge_env(&defaults, Some(&bad), false).is_err());
    }
}
