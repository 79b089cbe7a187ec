//! The namespace runtime: every sandbox is the `warren agent` as PID 1 of new
//! user, pid, mount, uts, ipc, net and cgroup namespaces, in its own cgroups.
//!
//! [`NamespaceRuntime::start`] runs in the multithreaded server, where
//! forking and then allocating is unsafe, so it only spawns
//! `warren __sandbox-init` (a fresh single-threaded process, see [`init`]),
//! hands it the spec over one end of a socket pair (its stdin), reads one
//! report line and waits for one byte on that socket pair: the agent's
//! signal that it accepts connections (no polling of its socket; the
//! sandbox's init listens on the socket before it execs the agent).
//! Everything else ([`stop`](NamespaceRuntime::stop), freeze, finding
//! sandboxes) works on the cgroups alone, so it works the same after a
//! server restart.
//!
//! Security layers of a sandbox: a user namespace mapping its ids 0..65535 to
//! host ids [`SANDBOX_ID_BASE`]..; Docker's default capability set
//! ([`caps`]); a Docker-like seccomp denylist ([`seccomp`]; set-id files
//! work, as in Docker, so `sudo` does: its root is the sandbox's);
//! a minimal `/dev`, read-only `/sys`, masked `/proc` entries ([`mounts`]);
//! cgroup limits on cpu, memory and pids ([`crate::cgroups`]).

pub mod caps;
mod child;
mod etc;
mod exits;
mod handoff;
mod resources;
pub use child::USER_COUNT_LIMITS;
pub use resources::validate_resources;
pub mod init;
mod mounts;
mod process;
pub mod seccomp;
pub mod shells;
mod staging;
pub mod zygote;

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use self::process::{
    is_live_init, log_tail, namespace_pids, peer_pid, pidfd, wait_readable, Lines,
};
use crate::cgroups::{self, Backend};
use crate::gate::RootGate;
use crate::network::Network;
use crate::{NetworkPolicy, Resources, Runtime, RuntimeError, SandboxSpec, Started};

/// The agent's entry point: `argv` as `warren agent` takes it (its first
/// item the program name), the exit code as the answer. See
/// [`set_agent_main`].
pub type AgentMain = fn(Vec<String>) -> i32;

/// The entry point [`set_agent_main`] registered.
static AGENT_MAIN: std::sync::OnceLock<AgentMain> = std::sync::OnceLock::new();

/// Registers the agent's entry point in the process that runs the zygote
/// ([`zygote::serve`]) or the helper ([`init::run`]): the `warren` binary
/// does, before either. Every sandbox's init, a fork of that process,
/// becomes the agent by calling it instead of exec'ing the binary again:
/// the binary is already mapped and linked there, so a start saves the
/// exec, the dynamic loader's relocations and the program's start-up
/// (about 2 ms), and the agent's relocated pages stay shared with the
/// zygote's. The init first resets its signals, environment and
/// descriptors and drops its capabilities, as an exec would have needed.
/// A helper without it fails every start at the `agent` stage.
pub fn set_agent_main(main: AgentMain) {
    let _ = AGENT_MAIN.set(main);
}

/// The registered entry point, if any.
fn agent_main() -> Option<AgentMain> {
    AGENT_MAIN.get().copied()
}

/// A command running the `warren` binary's hidden `subcommand` (the zygote
/// or the helper) with nothing of the server's environment but `PATH` and
/// the log settings: the sandboxes' inits are forks of these processes, so
/// a secret in the server's environment (an admin key) must not be in
/// their memory.
fn helper_command(binary: &Path, subcommand: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(binary);
    // Every agent's `/proc/1/cmdline` is this process's: `warren
    // __sandbox-zygote`, not the binary's host path.
    command.arg0("warren").arg(subcommand).env_clear();
    for key in ["PATH", "RUST_LOG"] {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    command
}

/// The agent's socket as the sandbox sees it (`run_dir` is `/run/warren`).
pub const AGENT_SOCKET_IN_SANDBOX: &str = "/run/warren/agent.sock";

/// File names in a sandbox's run directory.
pub const AGENT_SOCKET: &str = "agent.sock";
/// The agent's stdout and stderr, appended.
pub const AGENT_LOG: &str = "agent.log";
/// Host pid of the sandbox's init (informational: the cgroup is authoritative).
pub const PID_FILE: &str = "pid";

/// Mount options of the tmpfs each sandbox's run directory is (the host
/// side of its `/run/warren`): the sandbox can write there, so what it can
/// put on the host is a few MiB of memory and a few inodes, never the
/// host's disk. The agent's socket, its log and the pid file are all it
/// holds; a log that fills it stops growing.
pub const RUN_DIR_TMPFS: &str = "size=8m,nr_inodes=64,mode=0755";

/// Removes a run directory that [`Runtime::start`] made: its tmpfs is
/// detached first, then the directory is removed. Removing one that does
/// not exist (or was never mounted) is not an error.
pub fn remove_run_dir(run_dir: &Path) -> std::io::Result<()> {
    loop {
        match nix::mount::umount2(
            run_dir,
            nix::mount::MntFlags::MNT_DETACH | nix::mount::MntFlags::UMOUNT_NOFOLLOW,
        ) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => break,
            Err(e) => return Err(e.into()),
        }
    }
    match std::fs::remove_dir_all(run_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The hidden subcommand of the `warren` binary that runs [`init::run`].
pub const INIT_SUBCOMMAND: &str = "__sandbox-init";

/// The stage the helper reports when the sandbox's cgroup already has
/// processes: nothing was made, so nothing may be cleaned up.
const STAGE_ALREADY_RUNNING: &str = "already running";

/// How long the helper may take to set a sandbox up.
const HELPER_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the agent may take to accept connections once exec'd.
const AGENT_TIMEOUT: Duration = Duration::from_secs(20);
/// `sun_path` is 108 bytes, NUL included.
const MAX_SOCKET_PATH: usize = 107;

/// How long a stop waits for the init to take its pid namespace down
/// before it kills the cgroup's processes one by one.
const QUICK_KILL_TIMEOUT: Duration = Duration::from_secs(1);

/// A step of starting a sandbox that failed, as reported by the helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageError {
    /// The step (e.g. "cgroup", "unshare", "mounts", "pivot_root", "exec").
    pub stage: String,
    /// What it reported.
    pub reason: String,
}

impl StageError {
    /// A failure of `stage`.
    pub fn new(stage: impl Into<String>, reason: impl Into<String>) -> Self {
        StageError {
            stage: stage.into(),
            reason: reason.into(),
        }
    }
}

/// Runs sandboxes in Linux namespaces with cgroup limits.
#[derive(Debug)]
pub struct NamespaceRuntime {
    cgroups: Box<dyn Backend>,
    cgroup_parent: String,
    /// The sandbox network; without it every sandbox has loopback only.
    network: Option<Network>,
    /// A pidfd of each running sandbox's PID 1, in one epoll set: which
    /// exited ([`Runtime::exits`]) costs what exited, not what runs.
    exits: Mutex<exits::Exits>,
    /// The single-threaded helper that forks each sandbox's set-up.
    zygote: zygote::Zygote,
    /// The checked connection each start made to its agent, until the
    /// first request takes it ([`Runtime::take_agent_connection`]).
    handoffs: handoff::Handoffs,
}

impl NamespaceRuntime {
    /// A runtime whose sandboxes live under the `warren` cgroup.
    pub fn new() -> Result<Self, RuntimeError> {
        Self::with_cgroup_parent(cgroups::DEFAULT_PARENT)
    }

    /// A runtime whose sandboxes live under the cgroup `parent` (one name,
    /// used in every hierarchy). Two runtimes with different parents do not
    /// see each other's sandboxes.
    pub fn with_cgroup_parent(parent: &str) -> Result<Self, RuntimeError> {
        let cgroups = cgroups::detect(parent).map_err(|source| RuntimeError::Cgroup {
            op: "detect",
            id: String::new(),
            source,
        })?;
        if let Err(e) = cgroups.hold_freezer() {
            tracing::debug!(error = %e, "cannot keep the freezer switched on");
        }
        Ok(NamespaceRuntime {
            cgroups,
            cgroup_parent: parent.to_string(),
            network: None,
            exits: Mutex::default(),
            zygote: zygote::Zygote::new(parent),
            handoffs: handoff::Handoffs::default(),
        })
    }

    /// This runtime with outbound networking: sandboxes whose policy asks
    /// for it get an interface on `network`, and every sandbox's
    /// `/etc/resolv.conf` names its resolver.
    pub fn with_network(mut self, network: Network) -> Self {
        self.network = Some(network);
        self
    }

    /// The sandbox network, if there is one.
    pub fn network(&self) -> Option<&Network> {
        self.network.as_ref()
    }

    /// The cgroup layout in use.
    pub fn cgroups(&self) -> &dyn Backend {
        self.cgroups.as_ref()
    }

    /// Ids of every sandbox with a cgroup, live or not (a dead one is left
    /// by a sandbox whose agent exited; [`Runtime::stop`] removes it).
    pub fn known(&self) -> Vec<String> {
        self.cgroups.list()
    }

    fn start_failed(&self, id: &str, stage: &str, reason: impl Into<String>) -> RuntimeError {
        if let Err(e) = self.stop(id) {
            tracing::warn!(id, error = %e, "cleaning up after a failed start");
        }
        RuntimeError::Start {
            id: id.to_string(),
            stage: stage.to_string(),
            reason: reason.into(),
        }
    }

    /// Spawns the helper and returns its final report, and the channel the
    /// sandbox's agent signals readiness on. `forked` is called with the
    /// init's host pid as soon as the helper reports it, while the init is
    /// still setting the sandbox up.
    /// [`Runtime::start_reporting`], or [`Runtime::start_gated`] with `gate`.
    fn start_with(
        &self,
        spec: &SandboxSpec,
        gate: Option<RootGate>,
        init_exists: &mut dyn FnMut(i32),
    ) -> Result<Started, RuntimeError> {
        let resources = validate_resources(&spec.resources)?;
        let start_error = |stage: &str, reason: String| RuntimeError::Start {
            id: spec.id.clone(),
            stage: stage.to_string(),
            reason,
        };
        validate_id(&spec.id).map_err(|reason| start_error("spec", reason))?;
        let agent_socket = spec.run_dir.join(AGENT_SOCKET);
        if agent_socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(start_error(
                "spec",
                format!(
                    "socket path {} is longer than {MAX_SOCKET_PATH} bytes",
                    agent_socket.display()
                ),
            ));
        }
        if !spec.rootfs.is_absolute()
            || !spec.run_dir.is_absolute()
            || !spec.warren_binary.is_absolute()
        {
            return Err(start_error(
                "spec",
                "rootfs, run_dir and warren_binary must be absolute paths".into(),
            ));
        }
        if self.cgroups.exists(&spec.id) && !self.cgroups.pids(&spec.id).is_empty() {
            return Err(RuntimeError::AlreadyRunning(spec.id.clone()));
        }
        let network_error = |source| RuntimeError::Network {
            id: spec.id.clone(),
            source,
        };
        let begun = Instant::now();
        // The sandbox's rules go in before the helper starts it; its
        // interface follows once it exists.
        let prepared = match (&self.network, spec.network.needs_interface()) {
            (Some(network), true) => network
                .prepare(&spec.id, &spec.network)
                .map_err(network_error)?,
            (None, true) => return Err(RuntimeError::NetworkUnavailable(spec.id.clone())),
            (_, false) => None,
        };
        let network_prepared = begun.elapsed();
        let mut spec = spec.clone();
        spec.resources = resources;
        let helper_begun = Instant::now();
        // As soon as the init (and its network namespace) exists, while it
        // sets the sandbox up: the caller hears its pid (and commits the
        // sandbox's state meanwhile), and its interface is wired.
        let mut prepared = prepared;
        let mut wired = None;
        let mut reported = false;
        let mut on_forked = |pid: i32| {
            if std::mem::replace(&mut reported, true) {
                return;
            }
            init_exists(pid);
            if let (Some(network), Some(prepared)) = (&self.network, prepared.take()) {
                wired = Some(network.connect(prepared, pid));
            }
        };
        let helper_result = self.run_helper(&spec, gate, &mut on_forked);
        let helper = helper_begun.elapsed();
        let (report, ready) = match helper_result {
            Ok((report, ready)) => (Ok(report), Some(ready)),
            Err(e) => (Err(e), None),
        };
        let pid = match report {
            Ok(init::InitReport::Started { pid }) => pid,
            Ok(init::InitReport::Failed { stage, .. }) if stage == STAGE_ALREADY_RUNNING => {
                return Err(RuntimeError::AlreadyRunning(spec.id.clone()))
            }
            Ok(init::InitReport::Failed { stage, reason }) => {
                return Err(self.start_failed(&spec.id, &stage, reason))
            }
            // `run_helper` reads past these; never the final line.
            Ok(init::InitReport::Forked { .. }) => {
                return Err(self.start_failed(&spec.id, "protocol", "no final report"))
            }
            Err((stage, reason)) => return Err(self.start_failed(&spec.id, &stage, reason)),
        };
        // Now if the helper did not report the pid early.
        on_forked(pid);
        if let Some(Err(e)) = wired {
            return Err(self.start_failed(&spec.id, "network", e.to_string()));
        }
        let set_up = begun.elapsed();
        let ready = ready.expect("a started helper has a readiness channel");
        let connection = match wait_for_agent(&ready, &agent_socket, pid, AGENT_TIMEOUT) {
            Ok(connection) => connection,
            Err(reason) => {
                let log = log_tail(&spec.run_dir.join(AGENT_LOG));
                return Err(self.start_failed(
                    &spec.id,
                    "agent",
                    format!("{reason}; agent log: {log}"),
                ));
            }
        };
        self.handoffs.keep(&spec.id, connection);
        // Its exit is watched from now on ([`Runtime::exits`]); a pidfd
        // that cannot be opened leaves it to the slow look, later.
        match pidfd(pid) {
            Ok(fd) => self.exits.lock().expect("exits lock").watch(&spec.id, fd),
            Err(_) => self.exits.lock().expect("exits lock").pend(&spec.id),
        }
        tracing::debug!(
            id = %spec.id,
            pid,
            ?network_prepared,
            ?helper,
            ?set_up,
            total = ?begun.elapsed(),
            "sandbox started"
        );
        Ok(Started { pid, agent_socket })
    }

    fn run_helper(
        &self,
        spec: &SandboxSpec,
        gate: Option<RootGate>,
        forked: &mut dyn FnMut(i32),
    ) -> Result<(init::InitReport, UnixStream), (String, String)> {
        let fail =
            |what: &str, e: &dyn std::fmt::Display| ("helper".to_string(), format!("{what}: {e}"));
        let request = init::InitRequest {
            spec: spec.clone(),
            cgroup_parent: self.cgroup_parent.clone(),
            resolver: self.network.as_ref().map(Network::gateway),
        };
        let body = init::frame_request(&request).map_err(|e| fail("encoding the request", &e))?;
        // The request goes over a socket pair rather than a pipe: the same
        // socket, inherited by the agent, later carries its readiness.
        // After the request, the same socket says whether the root exists
        // (`gate`): at once when there is no gate.
        let (ours, theirs) = UnixStream::pair().map_err(|e| fail("a socket pair", &e))?;
        let mut gate = gate;
        let mut send = |report: Result<OwnedFd, String>| {
            use std::io::Write;
            let report = report.map_err(|e| fail("starting the helper", &e))?;
            (&ours)
                .write_all(&body)
                .map_err(|e| fail("sending the request", &e))?;
            match gate.take() {
                Some(gate) => gate.forward(
                    ours.try_clone()
                        .map_err(|e| fail("a copy of the request socket", &e))?,
                ),
                None => (&ours)
                    .write_all(&[crate::gate::GO])
                    .and_then(|()| ours.shutdown(std::net::Shutdown::Write))
                    .map_err(|e| fail("sending the request", &e))?,
            }
            let mut lines = Lines::new(report, HELPER_TIMEOUT);
            loop {
                let line = lines
                    .next_line()
                    .map_err(|e| fail("reading the report", &e))?;
                match serde_json::from_str(&line) {
                    Ok(init::InitReport::Forked { pid }) => forked(pid),
                    _ => return Ok::<_, (String, String)>(line),
                }
            }
        };
        // A worker forked by the zygote; an exec'd helper if the zygote
        // cannot be started.
        let (report_r, report_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| fail("a pipe", &e))?;
        let forked = self.zygote.request(&spec.warren_binary, &theirs, report_w);
        let (line, status) = match forked {
            Ok(()) => {
                drop(theirs);
                (send(Ok(report_r)), None)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the sandbox zygote is unavailable; exec'ing the helper");
                drop(report_r);
                let mut helper = helper_command(&spec.warren_binary, INIT_SUBCOMMAND)
                    .stdin(Stdio::from(OwnedFd::from(theirs)))
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .map_err(|e| fail(&format!("running {}", spec.warren_binary.display()), &e))?;
                let stdout = helper.stdout.take().expect("piped stdout");
                let line = send(Ok(stdout.into()));
                if line.is_err() {
                    let _ = helper.kill();
                }
                (line, helper.wait().ok())
            }
        };
        let line = line?;
        let report = serde_json::from_str(&line).map_err(|e| {
            let status = status.map(|s| s.to_string()).unwrap_or_default();
            fail(&format!("bad report {line:?} ({status})"), &e)
        })?;
        Ok((report, ours))
    }
}

impl Runtime for NamespaceRuntime {
    /// Checks that a connection made to a sandbox's agent socket reached
    /// that sandbox's agent. The sandbox's root can replace
    /// `run_dir/agent.sock` with a symlink (to another sandbox's socket, or
    /// any host socket), so the server must check every connection before
    /// sending anything: the listening peer (`SO_PEERCRED`, recorded by the
    /// kernel at `listen`) must be a process in the sandbox's cgroup, and
    /// PID 1 of a pid namespace one level below the server's: the agent
    /// itself. Code in the sandbox can unlink the socket and listen there
    /// itself; such an impostor is a process of the cgroup too, but never
    /// the sandbox's PID 1 (nor PID 1 one level down: it cannot make pid
    /// namespaces).
    fn verify_agent(&self, id: &str, connection: BorrowedFd<'_>) -> Result<(), RuntimeError> {
        let untrusted = |reason: String| RuntimeError::UntrustedAgent {
            id: id.to_string(),
            reason,
        };
        let pid = peer_pid(connection).map_err(|e| untrusted(format!("reading the peer: {e}")))?;
        if !self.cgroups.pids(id).contains(&pid) {
            return Err(untrusted(format!(
                "the socket is served by pid {pid}, which is not in the sandbox"
            )));
        }
        let own_depth = namespace_pids("self")
            .map_err(|e| untrusted(format!("reading our own pid namespaces: {e}")))?
            .len();
        let peer = namespace_pids(&pid.to_string())
            .map_err(|e| untrusted(format!("reading the pid namespaces of pid {pid}: {e}")))?;
        if peer.len() == own_depth + 1 && peer.last() == Some(&1) {
            Ok(())
        } else {
            Err(untrusted(format!(
                "the socket is served by pid {pid} ({peer:?} in its pid namespaces), not the sandbox's PID 1"
            )))
        }
    }

    fn start_reporting(
        &self,
        spec: &SandboxSpec,
        init_exists: &mut dyn FnMut(i32),
    ) -> Result<Started, RuntimeError> {
        self.start_with(spec, None, init_exists)
    }

    /// Begins at once; the intermediate process waits for the gate just
    /// before it stages the root (see [`init::run`]).
    fn start_gated(
        &self,
        spec: &SandboxSpec,
        gate: RootGate,
        init_exists: &mut dyn FnMut(i32),
    ) -> Result<Started, RuntimeError> {
        self.start_with(spec, Some(gate), init_exists)
    }

    fn stop(&self, id: &str) -> Result<(), RuntimeError> {
        // The init's pidfd, to wait for it below: a process leaves its
        // cgroup's list early in its exit, before it is a zombie, so an
        // empty cgroup does not yet mean a dead init.
        let init = self.exits.lock().expect("exits lock").forget(id);
        self.handoffs.forget(id);
        let init = init.or_else(|| {
            let pid = self.pid(id)?;
            let fd = pidfd(pid).ok()?;
            // The pid cannot be reused under an open pidfd, so the look
            // after the open is the one that counts (the pidfd is signalled
            // below).
            (self.pid(id) == Some(pid)).then_some(fd)
        });
        if let Some(network) = &self.network {
            // Its interface goes with its network namespace, once the kill
            // below has ended the last process in it.
            network.forget(id).map_err(|source| RuntimeError::Network {
                id: id.to_string(),
                source,
            })?;
        }
        if !self.cgroups.exists(id) {
            return Ok(());
        }
        let cgroup = |op: &'static str| {
            move |source| RuntimeError::Cgroup {
                op,
                id: id.to_string(),
                source,
            }
        };
        // The quick way: SIGKILL to the sandbox's init ends its whole pid
        // namespace (the kernel kills every other process in it), and the
        // init's pidfd reads as exited only once they are all gone; no
        // freeze, no polling of the cgroups. Thawed first: a frozen task
        // dies only when thawed. Whatever is left in the cgroup after it
        // (nothing, unless something outside the namespace joined it) is
        // killed the thorough way below.
        if let Some(init) = &init {
            let _ = self.cgroups.thaw(id);
            let ended = process::pidfd_kill(init.as_raw_fd()).is_ok()
                && wait_readable(init.as_raw_fd(), QUICK_KILL_TIMEOUT).unwrap_or(false);
            if ended && self.cgroups.pids(id).is_empty() {
                return self.cgroups.remove(id).map_err(cgroup("remove"));
            }
        }
        self.cgroups.kill_all(id).map_err(cgroup("kill"))?;
        if let Some(init) = init {
            // A pidfd is readable once its process has exited.
            let exited = wait_readable(init.as_raw_fd(), crate::cgroups::KILL_TIMEOUT);
            if !exited.unwrap_or(false) {
                tracing::warn!(id, "the init outlived its emptied cgroup");
            }
        }
        self.cgroups.remove(id).map_err(cgroup("remove"))
    }

    fn pid(&self, id: &str) -> Option<i32> {
        self.cgroups
            .pids(id)
            .into_iter()
            .find(|&pid| is_live_init(pid))
    }

    fn exits(&self) -> Vec<String> {
        let pending = self.exits.lock().expect("exits lock").take_pending();
        for id in pending {
            self.watch(&id);
        }
        self.exits.lock().expect("exits lock").take()
    }

    fn watch(&self, id: &str) {
        // The slow look, through the cgroup; the pid cannot be reused under
        // an open pidfd, so the look after the open is the one that counts.
        // Both looks read /proc, so they are done before the lock is taken.
        let found = self.pid(id).map(|pid| (pid, pidfd(pid)));
        let confirmed = matches!(&found, Some((pid, Ok(_))) if self.pid(id) == Some(*pid));
        let mut exits = self.exits.lock().expect("exits lock");
        match found {
            Some((_, Ok(fd))) if confirmed => exits.watch(id, fd),
            Some((_, Err(e))) if e.raw_os_error() != Some(libc::ESRCH) => exits.pend(id),
            _ => exits.gone(id),
        }
    }

    fn freeze(&self, id: &str) -> Result<(), RuntimeError> {
        if !self.cgroups.exists(id) {
            return Err(RuntimeError::NotRunning(id.to_string()));
        }
        self.cgroups
            .freeze(id)
            .map_err(|source| RuntimeError::Cgroup {
                op: "freeze",
                id: id.to_string(),
                source,
            })
    }

    fn thaw(&self, id: &str) -> Result<(), RuntimeError> {
        if !self.cgroups.exists(id) {
            return Err(RuntimeError::NotRunning(id.to_string()));
        }
        self.cgroups
            .thaw(id)
            .map_err(|source| RuntimeError::Cgroup {
                op: "thaw",
                id: id.to_string(),
                source,
            })
    }

    fn is_frozen(&self, id: &str) -> bool {
        self.cgroups.exists(id) && self.cgroups.is_frozen(id)
    }

    fn usage(&self, id: &str) -> cgroups::Usage {
        self.cgroups.usage(id)
    }

    fn running(&self) -> Vec<String> {
        self.cgroups
            .list()
            .into_iter()
            .filter(|id| self.pid(id).is_some())
            .collect()
    }

    fn set_network(&self, id: &str, policy: &NetworkPolicy) -> Result<(), RuntimeError> {
        let Some(network) = &self.network else {
            return if policy.needs_interface() {
                Err(RuntimeError::NetworkUnavailable(id.to_string()))
            } else {
                Ok(())
            };
        };
        let pid = self
            .pid(id)
            .ok_or_else(|| RuntimeError::NotRunning(id.to_string()))?;
        network
            .apply(id, pid, policy)
            .map_err(|source| RuntimeError::Network {
                id: id.to_string(),
                source,
            })
    }

    fn egress_available(&self) -> bool {
        self.network.is_some()
    }

    fn set_resources(&self, id: &str, resources: &Resources) -> Result<(), RuntimeError> {
        let resources = validate_resources(resources)?;
        if !self.cgroups.exists(id) {
            return Err(RuntimeError::NotRunning(id.to_string()));
        }
        self.cgroups
            .set_limits(id, &resources)
            .map_err(|source| RuntimeError::Cgroup {
                op: "set limits",
                id: id.to_string(),
                source,
            })
    }

    fn take_agent_connection(&self, id: &str) -> Option<UnixStream> {
        self.handoffs.take(id)
    }
}

/// Sandbox ids name cgroups, the hostname and run files: 1..=63 characters
/// of `[A-Za-z0-9_-]`, not starting with `-`.
fn validate_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 63
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bad sandbox id {id:?}: 1 to 63 characters of A-Z a-z 0-9 _ -"
        ))
    }
}

/// Waits until the agent signals on `ready` that it accepts connections
/// on `socket` (one byte; end-of-file means every holder of the channel's
/// other end, the agent last, is gone), then connects and checks that the
/// socket's listener is the sandbox's init, `pid`; returns that connection.
fn wait_for_agent(
    ready: &UnixStream,
    socket: &Path,
    pid: i32,
    timeout: Duration,
) -> Result<UnixStream, String> {
    if !wait_readable(ready.as_raw_fd(), timeout).map_err(|e| e.to_string())? {
        return Err(format!(
            "the agent did not listen on {} within {timeout:?}",
            socket.display()
        ));
    }
    let mut byte = [0u8; 1];
    match (&*ready).read(&mut byte) {
        Ok(1) => {}
        Ok(_) => return Err(format!("the agent (pid {pid}) exited before listening")),
        Err(e) => return Err(format!("reading the agent's readiness: {e}")),
    }
    let stream = UnixStream::connect(socket)
        .map_err(|e| format!("connecting to {}: {e}", socket.display()))?;
    match peer_pid(stream.as_fd()) {
        Ok(peer) if peer == pid => Ok(stream),
        Ok(peer) => Err(format!(
            "{} is served by pid {peer}, not the agent",
            socket.display()
        )),
        Err(e) => Err(format!("reading the peer of {}: {e}", socket.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(validate_id("sbx_01HXYZ-abc").is_ok());
        for bad in ["", "-x", "a/b", "a b", "..", &"x".repeat(64)] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }
}
