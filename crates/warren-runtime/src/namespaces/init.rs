//! `warren __sandbox-init`: the single-threaded helper that starts one
//! sandbox and exits.
//!
//! ```text
//! server (multithreaded)
//!   └─ helper: reads the InitRequest on stdin, creates the cgroups,
//!      │        writes uid_map/gid_map, answers one InitReport line on stdout
//!      └─ intermediate: joins the cgroups, waits until the root exists (a
//!         │             fork's child starts while its root is snapshotted:
//!         │             [`crate::gate`]), stages the sandbox's sources in a
//!         │             private mount namespace, takes the sandbox's owner uid
//!         │             as its effective uid, unshare(user, pid, mount,
//!         │             uts, ipc, net, cgroup) (or, given a shell made ahead,
//!         │             joins its user namespace, unshares the others but
//!         │             net, joins its network namespace: [`super::shells`]),
//!         │             becomes root, forks, exits
//!         └─ sandbox init (PID 1 inside): mounts, pivot_root, hostname, lo,
//!                capabilities, seccomp, then the agent, in-process
//! ```
//!
//! The helper is a fresh process with one thread, so `fork` is safe and the
//! children may allocate. The intermediate exits as soon as the sandbox's
//! init exists, so that init is reparented away from the server: a `kill -9`
//! of the server leaves the sandbox running.
//!
//! Children report over one close-on-exec pipe: `Unshared` (not with a
//! shell, whose id maps are written), then the init's host pid, then either a failure or end-of-file, which means the init
//! closed it to run the agent: the sandbox is set up.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Gid, Pid, Uid};
use serde::{Deserialize, Serialize};

use super::shells::Shell;
use super::{child, StageError, AGENT_LOG, PID_FILE, STAGE_ALREADY_RUNNING};
use crate::cgroups::{self, Backend, Join};
use crate::{SandboxSpec, SANDBOX_ID_BASE, SANDBOX_ID_COUNT};

/// What the runtime sends the helper on stdin.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitRequest {
    /// The sandbox (resources already validated).
    pub spec: SandboxSpec,
    /// Parent cgroup of every sandbox.
    pub cgroup_parent: String,
    /// The nameserver written to the sandbox's `/etc/resolv.conf` (the
    /// network's gateway); `None` leaves the file alone.
    #[serde(default)]
    pub resolver: Option<std::net::Ipv4Addr>,
}

/// The helper's lines of answer on stdout: [`InitReport::Forked`] once the
/// sandbox's init exists, then one final line, `Started` or `Failed` (a
/// helper that fails before the init exists sends only the final line).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitReport {
    /// The sandbox's init exists (and its network namespace with it); it
    /// is still setting the sandbox up. The runtime wires the sandbox's
    /// interface meanwhile.
    Forked {
        /// Host pid of the sandbox's init.
        pid: i32,
    },
    /// The agent runs as PID 1 of the sandbox.
    Started {
        /// Host pid of the sandbox's init.
        pid: i32,
    },
    /// A step failed; everything it made was removed.
    Failed {
        /// The failing step.
        stage: String,
        /// What it reported.
        reason: String,
    },
}

/// Most bytes a request may have (a spec is a few KiB).
const MAX_REQUEST: u32 = 1 << 20;

/// Runs the helper: one request from `input`, its report lines to `output`.
/// The request is framed (its length, 4 bytes little-endian, then its
/// JSON); after it, `input` carries whether the sandbox's root exists
/// ([`crate::gate`]): one [`crate::gate::GO`] byte, read by the
/// intermediate process just before it needs the root, or end-of-file (the
/// root will not be made: the start fails). Everything before that step
/// (cgroups, the run directory, the intermediate itself) runs meanwhile.
/// `ready`, if given, is handed to the agent, which writes one byte to it
/// once it accepts connections (the runtime passes one end of a socket pair
/// as the helper's stdin, and waits on the other end instead of polling).
/// `shell`, if given, holds the sandbox's user and network namespaces,
/// made ahead ([`super::shells`]). Returns the process exit code (0 when
/// the sandbox started).
pub fn run(
    mut input: impl Read,
    mut output: impl Write,
    ready: Option<OwnedFd>,
    shell: Option<Shell>,
) -> i32 {
    let ready = ready.as_ref().map(AsRawFd::as_raw_fd);
    let mut forked = |pid: i32| write_report(&mut output, &InitReport::Forked { pid });
    let report = match read_request(&mut input) {
        Ok(request) => match launch(&request, &mut input, ready, shell.as_ref(), &mut forked) {
            Ok(pid) => InitReport::Started { pid },
            Err(e) => InitReport::Failed {
                stage: e.stage,
                reason: e.reason,
            },
        },
        Err(reason) => InitReport::Failed {
            stage: "request".into(),
            reason,
        },
    };
    let code = i32::from(!matches!(report, InitReport::Started { .. }));
    write_report(&mut output, &report);
    code
}

/// Frames `request` for [`run`].
pub(super) fn frame_request(request: &InitRequest) -> serde_json::Result<Vec<u8>> {
    let body = serde_json::to_vec(request)?;
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let mut framed = Vec::with_capacity(body.len() + 4);
    framed.extend_from_slice(&len.to_le_bytes());
    framed.extend_from_slice(&body);
    Ok(framed)
}

/// Reads one framed request (see [`run`]), and nothing after it.
fn read_request(input: &mut impl Read) -> Result<InitRequest, String> {
    let mut len = [0u8; 4];
    input
        .read_exact(&mut len)
        .map_err(|e| format!("reading its length: {e}"))?;
    let len = u32::from_le_bytes(len);
    if len > MAX_REQUEST {
        return Err(format!("{len} bytes, more than {MAX_REQUEST}"));
    }
    let mut body = vec![0u8; len as usize];
    input
        .read_exact(&mut body)
        .map_err(|e| format!("reading it: {e}"))?;
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// Writes one report line. If the runtime is gone nobody reads it; the
/// exit code still tells.
fn write_report(output: &mut impl Write, report: &InitReport) {
    let line = serde_json::to_string(report).expect("reports serialize");
    let _ = writeln!(output, "{line}").and_then(|()| output.flush());
}

/// Messages from the children to the helper.
enum Msg {
    Unshared,
    Pid(i32),
    Failed(StageError),
}

const TAG_UNSHARED: u8 = b'U';
const TAG_PID: u8 = b'P';
const TAG_FAILED: u8 = b'F';

/// Starts the sandbox; on failure removes what was made. `forked` hears
/// the init's host pid as soon as it exists.
fn launch(
    req: &InitRequest,
    root_gate: &mut dyn Read,
    ready: Option<RawFd>,
    shell: Option<&Shell>,
    forked: &mut dyn FnMut(i32),
) -> Result<i32, StageError> {
    let spec = &req.spec;
    let cg = cgroups::detect(&req.cgroup_parent)
        .map_err(|e| StageError::new("cgroup", e.to_string()))?;
    let exists = cg.exists(&spec.id);
    // The shell's spare cgroups, made ahead, become the sandbox's; a start
    // that cannot use them (its cgroups exist already) removes them.
    let spare = shell.and_then(|s| s.cgroup.as_deref());
    let adopted = match spare {
        Some(spare) if !exists => cg
            .adopt(spare, &spec.id, &spec.resources)
            .inspect_err(|e| tracing::warn!(id = %spec.id, error = %e, "adopting a spare cgroup"))
            .is_ok(),
        Some(spare) => {
            let _ = cg.remove(spare);
            false
        }
        None => false,
    };
    if exists && !cg.pids(&spec.id).is_empty() {
        return Err(StageError::new(
            STAGE_ALREADY_RUNNING,
            format!("sandbox {} is already running", spec.id),
        ));
    }
    if !adopted {
        cg.create(&spec.id, &spec.resources)
            .map_err(|e| StageError::new("cgroup", e.to_string()))?;
    }
    let result = launch_in(req, root_gate, cg.as_ref(), ready, shell, forked);
    if result.is_err() {
        if let Err(e) = cg.kill_all(&spec.id).and_then(|()| cg.remove(&spec.id)) {
            tracing::warn!(id = %spec.id, error = %e, "cleaning up after a failed start");
        }
    }
    result
}

fn launch_in(
    req: &InitRequest,
    root_gate: &mut dyn Read,
    cg: &dyn Backend,
    ready: Option<RawFd>,
    shell: Option<&Shell>,
    on_forked: &mut dyn FnMut(i32),
) -> Result<i32, StageError> {
    let spec = &req.spec;
    let stdio = prepare_run_dir(&spec.run_dir, spec.ca_bundle.is_some())?;
    let join = cg.join(&spec.id);
    let (report_r, report_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    let (forked, joined_cgroup2) = fork_into(join.cgroup2.as_deref())?;
    match forked {
        ForkResult::Child => {
            drop(report_r);
            drop(go_w);
            let join = Join {
                cgroup2: join.cgroup2.filter(|_| !joined_cgroup2),
                v1_tasks: join.v1_tasks,
            };
            intermediate(
                req,
                &join,
                &stdio,
                ready,
                shell,
                Links {
                    report: File::from(report_w),
                    go: File::from(go_r),
                    root_gate,
                },
            )
        }
        ForkResult::Parent { child } => {
            drop(report_w);
            drop(go_r);
            let result = supervise(
                child,
                File::from(report_r),
                go_w,
                shell.is_none(),
                on_forked,
            );
            // The intermediate exits on its own once it has reported (or on
            // end-of-file from us); reap it either way.
            let _ = waitpid(child, None);
            let pid = result?;
            write_pid_file(&spec.run_dir, pid)?;
            Ok(pid)
        }
    }
}

/// The helper's side of the protocol. With `maps` (the intermediate made
/// the user namespace itself), the id maps are written once it has, and it
/// is told to go on; a shell's namespace has its maps already.
fn supervise(
    child: Pid,
    mut report: File,
    go: OwnedFd,
    maps: bool,
    forked: &mut dyn FnMut(i32),
) -> Result<i32, StageError> {
    if maps {
        match read_msg(&mut report)? {
            Some(Msg::Unshared) => {}
            Some(Msg::Failed(e)) => return Err(e),
            other => return Err(unexpected(other)),
        }
        write_id_maps(child)?;
        File::from(go)
            .write_all(b"G")
            .map_err(|e| StageError::new("id map", e.to_string()))?;
    }
    let pid = match read_msg(&mut report)? {
        Some(Msg::Pid(pid)) => pid,
        Some(Msg::Failed(e)) => return Err(e),
        other => return Err(unexpected(other)),
    };
    forked(pid);
    // End-of-file: the init closed the pipe to become the agent.
    match read_msg(&mut report)? {
        None => Ok(pid),
        Some(Msg::Failed(e)) => Err(e),
        other => Err(unexpected(other)),
    }
}

fn unexpected(msg: Option<Msg>) -> StageError {
    let what = match msg {
        None => "end of file",
        Some(Msg::Unshared) => "a second unshare report",
        Some(Msg::Pid(_)) => "an early pid",
        Some(Msg::Failed(_)) => "a failure",
    };
    StageError::new(
        "protocol",
        format!("unexpected {what} from the sandbox's children"),
    )
}

/// Sandbox ids 0..65535 are host ids SANDBOX_ID_BASE.. . Written by the
/// helper (or the zygote, for a shell), which is root on the host, so
/// setgroups stays allowed inside.
pub(super) fn write_id_maps(child: Pid) -> Result<(), StageError> {
    let map = format!("0 {SANDBOX_ID_BASE} {SANDBOX_ID_COUNT}\n");
    for file in ["uid_map", "gid_map"] {
        let path = format!("/proc/{child}/{file}");
        std::fs::write(&path, &map)
            .map_err(|e| StageError::new("id map", format!("{path}: {e}")))?;
    }
    Ok(())
}

/// The intermediate's ways of hearing from and talking to the helper and
/// the runtime.
struct Links<'a> {
    /// Messages to the helper.
    report: File,
    /// The helper's go-ahead once it wrote the id maps.
    go: File,
    /// Whether the root exists ([`run`]).
    root_gate: &'a mut dyn Read,
}

/// The intermediate child: never returns.
fn intermediate(
    req: &InitRequest,
    join: &Join,
    stdio: &Stdio,
    ready: Option<RawFd>,
    shell: Option<&Shell>,
    links: Links<'_>,
) -> ! {
    let spec = &req.spec;
    let Links {
        report,
        mut go,
        root_gate,
    } = links;
    let result = (|| -> Result<i32, StageError> {
        stdio.install()?;
        join_cgroups(join)?;
        // Everything above runs while the root may still be in the making.
        let mut byte = [0u8; 1];
        match root_gate.read_exact(&mut byte) {
            Ok(()) if byte[0] == crate::gate::GO => {}
            _ => {
                return Err(StageError::new(
                    "root",
                    "the sandbox's root was not made".to_string(),
                ))
            }
        }
        let rootfs = std::fs::canonicalize(&spec.rootfs)
            .map_err(|e| StageError::new("rootfs", format!("{}: {e}", spec.rootfs.display())))?;
        let staged = super::mounts::stage(
            &rootfs,
            &spec.run_dir,
            spec.ca_bundle.as_deref(),
            shell.and_then(|shell| shell.sys.as_ref()),
        )?;
        match shell {
            // Host root has every capability in the shell's namespaces.
            Some(shell) => super::shells::enter(shell)
                .map_err(|e| StageError::new("unshare", format!("in made namespaces: {e}")))?,
            None => {
                become_owner(crate::namespace_owner(&spec.id))?;
                nix::sched::unshare(
                    CloneFlags::CLONE_NEWUSER
                        | CloneFlags::CLONE_NEWPID
                        | CloneFlags::CLONE_NEWNS
                        | CloneFlags::CLONE_NEWUTS
                        | CloneFlags::CLONE_NEWIPC
                        | CloneFlags::CLONE_NEWNET
                        | CloneFlags::CLONE_NEWCGROUP,
                )
                .map_err(|e| StageError::new("unshare", e.to_string()))?;
                send(&report, &Msg::Unshared);
                let mut byte = [0u8; 1];
                if go.read_exact(&mut byte).is_err() {
                    // The helper gave up; it reports why.
                    std::process::exit(1);
                }
            }
        }
        become_root()?;
        // SAFETY: this process is single-threaded (a fork of the helper).
        match unsafe { nix::unistd::fork() }.map_err(|e| StageError::new("fork", e.to_string()))? {
            ForkResult::Child => {
                let made = shell.is_some();
                let err = match child::setup_and_run(spec, &staged, req.resolver, ready, made) {
                    Ok(never) => match never {},
                    Err(e) => e,
                };
                send(&report, &Msg::Failed(err));
                // SAFETY: leave without running the parent's atexit handlers.
                unsafe { libc::_exit(1) }
            }
            ForkResult::Parent { child } => Ok(child.as_raw()),
        }
    })();
    let code = match result {
        Ok(pid) => {
            send(&report, &Msg::Pid(pid));
            0
        }
        Err(e) => {
            send(&report, &Msg::Failed(e));
            1
        }
    };
    // SAFETY: leave without running the helper's atexit handlers or flushing
    // its buffers twice.
    unsafe { libc::_exit(code) }
}

/// The fields of `struct clone_args` up to `cgroup` (Linux 5.7).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Forks, with the child born in the cgroup2 directory `cgroup` when one is
/// given (`clone3(CLONE_INTO_CGROUP)`, no migration). Returns whether that
/// worked; on kernels without it the child must join by itself.
fn fork_into(cgroup: Option<&Path>) -> Result<(ForkResult, bool), StageError> {
    if let Some(dir) = cgroup {
        let dir_fd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir)
            .map_err(|e| StageError::new("cgroup", format!("{}: {e}", dir.display())))?;
        let args = CloneArgs {
            flags: CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: dir_fd.as_raw_fd() as u64,
            ..CloneArgs::default()
        };
        // SAFETY: without CLONE_VM and with no stack, clone3 is a fork: the
        // child continues here on a copy of the address space. This process
        // has one thread and holds no lock, so the child may allocate. (The
        // child's glibc keeps the parent's tid in its thread block; nothing
        // the intermediate child calls depends on it.)
        let rc = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        match rc {
            0 => return Ok((ForkResult::Child, true)),
            pid if pid > 0 => {
                let child = Pid::from_raw(pid as i32);
                return Ok((ForkResult::Parent { child }, true));
            }
            _ => {
                let err = std::io::Error::last_os_error();
                let unsupported = [libc::ENOSYS, libc::E2BIG, libc::EINVAL];
                if !unsupported.contains(&err.raw_os_error().unwrap_or(0)) {
                    return Err(StageError::new("clone3", err.to_string()));
                }
            }
        }
    }
    // SAFETY: this process has a single thread (it is the freshly exec'd
    // helper), so the child may do anything the parent could.
    let forked =
        unsafe { nix::unistd::fork() }.map_err(|e| StageError::new("fork", e.to_string()))?;
    Ok((forked, false))
}

/// Moves the calling single-threaded process into the sandbox's cgroups:
/// its pid into `cgroup2` if still needed, then `0` (this thread, which is
/// the whole process) into every v1 `tasks` file.
fn join_cgroups(join: &Join) -> Result<(), StageError> {
    let write = |file: &Path, value: &str| {
        std::fs::write(file, value)
            .map_err(|e| StageError::new("cgroup", format!("joining {}: {e}", file.display())))
    };
    if let Some(dir) = &join.cgroup2 {
        write(&dir.join("cgroup.procs"), &std::process::id().to_string())?;
    }
    for tasks in &join.v1_tasks {
        write(tasks, "0")?;
    }
    Ok(())
}

/// Takes `owner` as the effective uid, so that the user namespace about to
/// be made is owned (and its per-user kernel counts charged) by it rather
/// than host root; see [`crate::namespace_owner`]. The real and saved uids
/// stay 0, so the permitted capabilities stay and the effective ones are
/// raised again: the namespace is still made by a privileged process (as
/// distributions that restrict unprivileged user namespaces require).
pub(super) fn become_owner(owner: u32) -> Result<(), StageError> {
    let root = Uid::from_raw(0);
    nix::unistd::setresuid(root, Uid::from_raw(owner), root)
        .map_err(|e| StageError::new("setuid", format!("to the namespace's owner: {e}")))?;
    super::caps::raise_effective()
        .map_err(|e| StageError::new("setuid", format!("as the namespace's owner: {e}")))
}

/// uid and gid 0 of the new user namespace, no supplementary groups.
fn become_root() -> Result<(), StageError> {
    let fail = |what: &str, e: nix::Error| StageError::new("setuid", format!("{what}: {e}"));
    let root_gid = Gid::from_raw(0);
    let root_uid = Uid::from_raw(0);
    nix::unistd::setresgid(root_gid, root_gid, root_gid).map_err(|e| fail("setresgid", e))?;
    nix::unistd::setgroups(&[]).map_err(|e| fail("setgroups", e))?;
    nix::unistd::setresuid(root_uid, root_uid, root_uid).map_err(|e| fail("setresuid", e))
}

/// Standard streams of the sandbox's init: stdin from /dev/null, stdout and
/// stderr appended to `run_dir/agent.log`.
struct Stdio {
    null: File,
    log: File,
}

impl Stdio {
    fn install(&self) -> Result<(), StageError> {
        let fail = |e: nix::Error| StageError::new("stdio", e.to_string());
        nix::unistd::dup2(self.null.as_raw_fd(), 0).map_err(fail)?;
        nix::unistd::dup2(self.log.as_raw_fd(), 1).map_err(fail)?;
        nix::unistd::dup2(self.log.as_raw_fd(), 2).map_err(fail)?;
        Ok(())
    }
}

/// Makes the run directory usable by the sandbox's root and opens the log.
///
/// The sandbox can write to its run directory, so nothing in it is trusted:
/// a stale socket is removed, and files the helper writes there are opened
/// without following symlinks and must be regular files.
fn prepare_run_dir(run_dir: &Path, ca_bundle: bool) -> Result<Stdio, StageError> {
    let fail = |what: &str, e: std::io::Error| {
        StageError::new("run_dir", format!("{what} {}: {e}", run_dir.display()))
    };
    std::fs::create_dir_all(run_dir).map_err(|e| fail("creating", e))?;
    if !is_mount_point(run_dir).map_err(|e| fail("inspecting", e))? {
        nix::mount::mount(
            Some("tmpfs"),
            run_dir,
            Some("tmpfs"),
            nix::mount::MsFlags::MS_NOSUID
                | nix::mount::MsFlags::MS_NODEV
                | nix::mount::MsFlags::MS_NOEXEC,
            Some(super::RUN_DIR_TMPFS),
        )
        .map_err(|e| fail("mounting a tmpfs on", e.into()))?;
    }
    std::os::unix::fs::chown(run_dir, Some(SANDBOX_ID_BASE), Some(SANDBOX_ID_BASE))
        .map_err(|e| fail("chown", e))?;
    match std::fs::remove_file(run_dir.join(super::AGENT_SOCKET)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(fail("removing the old socket in", e))
        }
        _ => {}
    }
    if ca_bundle {
        // What the shared bundle is mounted on.
        open_regular(&run_dir.join(crate::trust::bundle_file_name()), true)?;
    }
    let log = open_regular(&run_dir.join(AGENT_LOG), false)?;
    let null = File::open("/dev/null").map_err(|e| StageError::new("stdio", e.to_string()))?;
    Ok(Stdio { null, log })
}

/// Whether `dir` is the root of a mount (its device differs from its
/// parent's, or it is `/`).
fn is_mount_point(dir: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let own = std::fs::symlink_metadata(dir)?;
    let parent = std::fs::metadata(dir.join(".."))?;
    Ok(own.dev() != parent.dev() || own.ino() == parent.ino())
}

/// Opens `path` for appending (or creates it fresh with `truncate`), never
/// through a symlink and never anything but a regular file: whatever else
/// the sandbox left there is removed first.
fn open_regular(path: &Path, truncate: bool) -> Result<File, StageError> {
    let fail = |e: std::io::Error| StageError::new("run_dir", format!("{}: {e}", path.display()));
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if truncate || !meta.file_type().is_file() {
            std::fs::remove_file(path).map_err(fail)?;
        }
    }
    let mut options = std::fs::OpenOptions::new();
    if truncate {
        options.write(true).create_new(true);
    } else {
        options.append(true).create(true);
    }
    let file = options
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(fail)?;
    if !file.metadata().map_err(fail)?.file_type().is_file() {
        return Err(fail(std::io::Error::other("not a regular file")));
    }
    Ok(file)
}

fn write_pid_file(run_dir: &Path, pid: i32) -> Result<(), StageError> {
    let mut file = open_regular(&run_dir.join(PID_FILE), true)?;
    writeln!(file, "{pid}")
        .map_err(|e| StageError::new("run_dir", format!("writing the pid file: {e}")))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), StageError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| StageError::new("pipe", e.to_string()))
}

/// Sends one message: a tag byte, a u32 length, the payload. Messages are
/// small enough for one atomic pipe write. A helper that is gone cannot be
/// told anything, so errors are ignored.
fn send(mut report: &File, msg: &Msg) {
    let (tag, payload) = match msg {
        Msg::Unshared => (TAG_UNSHARED, Vec::new()),
        Msg::Pid(pid) => (TAG_PID, pid.to_le_bytes().to_vec()),
        Msg::Failed(e) => {
            let mut text = format!("{}\n{}", e.stage, e.reason).into_bytes();
            text.truncate(3000);
            (TAG_FAILED, text)
        }
    };
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(tag);
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&payload);
    let _ = report.write_all(&frame);
}

/// Reads one message; `None` at end-of-file.
fn read_msg(report: &mut File) -> Result<Option<Msg>, StageError> {
    let fail =
        |e: std::io::Error| StageError::new("protocol", format!("reading from the sandbox: {e}"));
    let mut header = [0u8; 5];
    match report.read(&mut header[..1]).map_err(fail)? {
        0 => return Ok(None),
        _ => report.read_exact(&mut header[1..]).map_err(fail)?,
    }
    let len = u32::from_le_bytes(header[1..5].try_into().expect("4 bytes")) as usize;
    let mut payload = vec![0u8; len.min(4096)];
    report.read_exact(&mut payload).map_err(fail)?;
    match header[0] {
        TAG_UNSHARED => Ok(Some(Msg::Unshared)),
        TAG_PID if len == 4 => Ok(Some(Msg::Pid(i32::from_le_bytes(
            payload[..4].try_into().expect("4 bytes"),
        )))),
        TAG_FAILED => {
            let text = String::from_utf8_lossy(&payload);
            let (stage, reason) = text.split_once('\n').unwrap_or(("sandbox", &text));
            Ok(Some(Msg::Failed(StageError::new(stage, reason))))
        }
        tag => Err(StageError::new(
            "protocol",
            format!("unknown message tag {tag}"),
        )),
    }
}
