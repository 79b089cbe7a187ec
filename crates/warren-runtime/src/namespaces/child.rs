//! The sandbox's init (PID 1 of its pid namespace) before it becomes the
//! agent: kernel count limits, file system, hostname, loopback, signal
//! dispositions left by the server, capabilities, seccomp, descriptors,
//! environment, and then the agent itself, in this process (see
//! [`super::set_agent_main`]).
//!
//! Runs in a child of the single-threaded `__sandbox-init` helper, already in
//! every new namespace, as root of its user namespace with all capabilities
//! of that namespace. Any failure is returned as a [`StageError`] that the
//! caller sends to the helper before exiting.

use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::path::Path;

use super::mounts::{build_and_pivot, RootPlan, Staged};
use super::{caps, seccomp, StageError, AGENT_SOCKET_IN_SANDBOX};
use crate::SandboxSpec;

/// `PATH` of the agent and, unless the spec's env overrides it, of every
/// process it starts.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Sets the sandbox up and runs the agent, never returning once it has
/// started; returns only on failure before that. `resolver`, if given,
/// becomes the sandbox's only nameserver; `loopback_is_up` when the network
/// namespace was made with it up ([`super::shells`]).
pub fn setup_and_run(
    spec: &SandboxSpec,
    sources: &Staged,
    resolver: Option<Ipv4Addr>,
    ready: Option<RawFd>,
    loopback_is_up: bool,
) -> Result<Infallible, StageError> {
    // Detach from the server's session and controlling terminal.
    nix::unistd::setsid().map_err(|e| StageError::new("setsid", e.to_string()))?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    build_and_pivot(&RootPlan {
        rootfs: &sources.rootfs,
        run_dir: &sources.run_dir,
        sys: sources.sys.as_deref(),
        memory_mb: spec.resources.memory_mb,
    })?;
    nix::unistd::sethostname(&spec.id).map_err(|e| StageError::new("hostname", e.to_string()))?;
    // Best effort: an image with an odd /etc/hosts still starts.
    let _ = super::etc::name_host(&spec.id);
    if !loopback_is_up {
        loopback_up().map_err(|e| StageError::new("loopback", e.to_string()))?;
    }
    if let Some(resolver) = resolver {
        super::etc::point_resolver(resolver)
            .map_err(|e| StageError::new("resolv.conf", e.to_string()))?;
    }
    workdir(&spec.workdir)?;
    if let Some(pem) = &spec.extra_ca_pem {
        let installed = match spec.ca_bundle {
            // The bundle is mounted already.
            Some(_) => crate::trust::write_extra(pem),
            None => crate::trust::install_in_sandbox(pem),
        };
        installed.map_err(|e| StageError::new("ca certificates", e.to_string()))?;
    }
    // The agent's socket is bound and listening before the agent runs:
    // from here on a connection waits in its backlog until the agent serves
    // it, and the listener's peer credentials (what `verify_agent` checks)
    // are this process's, which is the agent's.
    let listener =
        listen_agent_socket().map_err(|e| StageError::new("agent socket", e.to_string()))?;
    let argv = agent_argv(spec, listener.as_raw_fd(), ready)?;
    let env = agent_env(spec);
    let agent = super::agent_main().ok_or_else(|| {
        StageError::new(
            "agent",
            "this helper was started without the agent's entry point",
        )
    })?;
    // The server's signal dispositions must not reach the sandbox: under
    // `nohup` it ignores SIGHUP, and every process of every sandbox would
    // inherit that.
    reset_signals().map_err(|e| StageError::new("signals", e.to_string()))?;
    // The filter goes on while the init still holds CAP_SYS_ADMIN over its
    // user namespace, which loading it without no_new_privs needs (runc's
    // order too); the capability calls that follow are allowed by it.
    seccomp::install().map_err(|e| StageError::new("seccomp", e.to_string()))?;
    caps::drop_to_defaults().map_err(|e| StageError::new("capabilities", e.to_string()))?;
    // Nothing the server or the helper had open may reach the sandbox: an
    // inherited descriptor of a host directory would be a way out of the
    // new root. Only the agent's listener and its readiness channel (a
    // socket to the server that the agent writes one byte to and closes)
    // stay. Closing the report pipe tells the helper that the sandbox is
    // set up: nothing after this can fail but the agent itself.
    let keep: Vec<RawFd> = std::iter::once(listener.as_raw_fd()).chain(ready).collect();
    close_fds_except(&keep).map_err(|e| StageError::new("close fds", e.to_string()))?;
    // The agent adopts the listener by its number.
    let _ = listener.into_raw_fd();
    replace_environment(&env);
    // The agent runs in this process, which is already the `warren` binary
    // loaded and linked (a fork of the zygote or of the helper): no exec,
    // no dynamic linking, no second start-up of the runtime.
    let code = agent(argv);
    // SAFETY: the agent has returned (its runtime is shut down); leave
    // without the helper's atexit handlers.
    unsafe { libc::_exit(code) }
}

/// Limits on the kernel's per-user counts (`/proc/sys/user/max_*`) set in
/// each sandbox's user namespace by its init, before it drops its
/// capabilities (and the sandbox's `/proc/sys` is read-only after).
///
/// The namespace's owner is a host uid of its own
/// ([`crate::namespace_owner`]), so what the sandbox uses is counted for it
/// alone and the host's per-user limits apply to it as to any user; these
/// limits bound it below that. No sandbox may make namespaces (seccomp and
/// its capabilities refuse them too): the counts of those are zero.
/// Inotify watches pin inodes: 65536 of them suffice for a large project's
/// file watcher.
pub const USER_COUNT_LIMITS: [(&str, u64); 12] = [
    ("max_user_namespaces", 0),
    ("max_pid_namespaces", 0),
    ("max_net_namespaces", 0),
    ("max_mnt_namespaces", 0),
    ("max_ipc_namespaces", 0),
    ("max_uts_namespaces", 0),
    ("max_cgroup_namespaces", 0),
    ("max_time_namespaces", 0),
    ("max_inotify_instances", 128),
    ("max_inotify_watches", 65536),
    ("max_fanotify_groups", 16),
    ("max_fanotify_marks", 8192),
];

/// Writes [`USER_COUNT_LIMITS`] for this process's user namespace through
/// `proc`, the sandbox's own proc instance, mounted and not yet read-only
/// (the kernel keeps `/proc/sys/user` per user namespace and lets its root
/// with `CAP_SYS_RESOURCE` set them). Not through the host's `/proc`: its
/// dentries of `/proc/sys/user/*` are one per user namespace that looked
/// them up, all under one parent with the same name, so each lookup there
/// walks a chain as long as the number of sandboxes alive (about 8 ms per
/// sandbox with 1,000 alive); a fresh proc instance has chains of one.
/// A limit this kernel does not have is skipped.
pub(super) fn limit_user_counts(proc: &Path) -> Result<(), StageError> {
    for (name, value) in USER_COUNT_LIMITS {
        let path = proc.join("sys/user").join(name);
        match std::fs::write(&path, value.to_string()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StageError::new(
                    "user counts",
                    format!("setting {} to {value}: {e}", path.display()),
                ))
            }
        }
    }
    Ok(())
}

/// Creates the agent's working directory if needed (inside the new root) and
/// enters it.
fn workdir(dir: &str) -> Result<(), StageError> {
    if !dir.starts_with('/') {
        return Err(StageError::new(
            "workdir",
            format!("{dir:?} is not an absolute path"),
        ));
    }
    std::fs::create_dir_all(dir)
        .and_then(|()| std::env::set_current_dir(dir))
        .map_err(|e| StageError::new("workdir", format!("{dir}: {e}")))
}

/// Binds and listens on the agent's socket (inside the new root, as the
/// sandbox's root); a stale file there is replaced.
fn listen_agent_socket() -> std::io::Result<std::os::unix::net::UnixListener> {
    match std::fs::remove_file(AGENT_SOCKET_IN_SANDBOX) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::os::unix::net::UnixListener::bind(AGENT_SOCKET_IN_SANDBOX)
}

/// `warren agent --listen fd:N [--ready-fd M] --no-token --workdir DIR
/// --env K=V...`: `N` is the agent's socket (`/run/warren/agent.sock`),
/// already listening; `M` the readiness channel.
fn agent_argv(
    spec: &SandboxSpec,
    listener: RawFd,
    ready: Option<RawFd>,
) -> Result<Vec<String>, StageError> {
    let mut argv = vec![
        "warren".to_string(),
        "agent".to_string(),
        "--listen".to_string(),
        format!("fd:{listener}"),
        "--no-token".to_string(),
        "--workdir".to_string(),
        spec.workdir.clone(),
    ];
    if let Some(fd) = ready {
        argv.push(format!("--ready-fd={fd}"));
    }
    for (key, value) in &spec.env {
        if key.is_empty() || key.contains('=') || key.contains('\0') || value.contains('\0') {
            return Err(StageError::new(
                "agent",
                format!("bad environment variable {key:?}"),
            ));
        }
        argv.push("--env".to_string());
        argv.push(format!("{key}={value}"));
    }
    if spec.extra_ca_pem.is_some() {
        for (key, value) in crate::trust::env() {
            if !spec.env.contains_key(key) {
                argv.push("--env".to_string());
                argv.push(format!("{key}={value}"));
            }
        }
    }
    Ok(argv)
}

/// The agent's own environment: a minimal one, whatever the helper had.
fn agent_env(spec: &SandboxSpec) -> Vec<(String, String)> {
    let mut env = vec![
        ("PATH".to_string(), DEFAULT_PATH.to_string()),
        ("HOME".to_string(), "/root".to_string()),
        ("HOSTNAME".to_string(), spec.id.clone()),
    ];
    // The agent's own log level follows the server's.
    if let Ok(level) = std::env::var("RUST_LOG") {
        env.push(("RUST_LOG".to_string(), level));
    }
    env
}

/// Makes `env` this process's whole environment. Single-threaded callers
/// only (the sandbox's init before the agent starts its threads).
fn replace_environment(env: &[(String, String)]) {
    let keys: Vec<std::ffi::OsString> = std::env::vars_os().map(|(key, _)| key).collect();
    for key in keys {
        // SAFETY: this process has one thread (a fork of a single-threaded
        // helper); nothing reads the environment concurrently.
        unsafe { std::env::remove_var(key) };
    }
    for (key, value) in env {
        // SAFETY: as above.
        unsafe { std::env::set_var(key, value) };
    }
}

/// Gives the agent, and through it every process of the sandbox, the
/// default action for every signal and an empty signal mask, whatever the
/// server started with (runc does the same for a container's init).
fn reset_signals() -> std::io::Result<()> {
    // The kernel's `struct sigaction` with SIG_DFL (0), no flags and an
    // empty mask is all zeros, whatever its layout; the raw system call
    // also reaches the numbers glibc keeps for itself (32 and 33), which a
    // server started by some runtimes ignores.
    let default = [0u64; 4];
    for signal in 1..=64 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads `default` (large enough for the
        // kernel's struct) and writes nothing back (null old action).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                default.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    let empty = nix::sys::signal::SigSet::empty();
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&empty),
        None,
    )
    .map_err(std::io::Error::from)
}

/// Closes every descriptor above stderr but those in `keep`.
fn close_fds_except(keep: &[RawFd]) -> std::io::Result<()> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|&&fd| fd > 2)
        .map(|&fd| fd as u32)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut first = 3u32;
    for fd in keep.into_iter().chain(std::iter::once(u32::MAX)) {
        if fd > first {
            let last = if fd == u32::MAX { u32::MAX } else { fd - 1 };
            // SAFETY: close_range closes this process's descriptors only;
            // nothing in this single-threaded process uses those in range.
            let rc = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        first = fd.saturating_add(1);
    }
    Ok(())
}

/// Brings `lo` up in the sandbox's new network namespace (it starts down).
pub(super) fn loopback_up() -> std::io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: plain socket(2); the fd is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nothing else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS fills `req`, which lives across the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: after SIOCGIFFLAGS the union holds the flags.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS reads `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
