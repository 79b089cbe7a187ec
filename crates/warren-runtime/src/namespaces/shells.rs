//! Namespaces made ahead of starts: a user namespace, with its owner and
//! its id maps, and a network namespace it owns, with loopback up.
//!
//! Making a network namespace is the dearest `unshare` of a start (about
//! 0.6 ms here), and the user namespace beside it needs its id maps written
//! by the helper in a round trip, then loopback brought up from inside: a
//! millisecond of every start, none of which depends on the sandbox. The
//! zygote makes a few [`Shell`]s while it is idle ([`Shells`]) and hands one
//! to each worker it forks; the sandbox's intermediate joins the shell's
//! user namespace, makes its other namespaces in it (so they are owned by
//! it, as when they were all made at once), then joins the shell's network
//! namespace (see [`super::init`]). A start that finds none makes its own,
//! as before. The shell also brings the sandbox's `/sys`, mounted for its
//! network namespace ahead ([`super::staging::sysfs_of`]): a sysfs mount
//! costs more with every sandbox alive.
//!
//! Where cgroups can be renamed (v1 and hybrid hosts), a shell also brings
//! spare cgroups ([`crate::cgroups::Backend::make_spare`]) with the default
//! limits, which the start renames to its sandbox's id: making them and
//! writing their cpu quota (a write that walks every cgroup of the host, so
//! dearer with every sandbox alive) happen while the zygote is idle. The
//! spares of shells never handed out are removed when the zygote ends
//! ([`Shells::release`]); a zygote killed leaves them to the next one
//! ([`Shells::remove_stale`]).
//!
//! A shell has never held a process of any sandbox: the child that made it
//! ran nothing else and is gone before the shell is handed out, and each
//! shell goes to one sandbox only. Its owner is a uid of the owner range
//! picked at random ([`crate::namespace_owner`] for why an owner of its
//! own).

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::sched::CloneFlags;
use nix::unistd::{ForkResult, Pid};

use crate::cgroups::{Backend, SPARE_PREFIX};
use crate::{Resources, OWNER_UID_BASE, OWNER_UID_COUNT};

/// Shells the zygote keeps ready.
pub const KEEP: usize = 4;

/// How long the zygote must have had no request before it makes a shell:
/// one made while a start runs would take the CPU from it.
pub const IDLE: Duration = Duration::from_millis(15);

/// What the zygote makes ahead of one start: a user namespace (id maps
/// written, owned by a uid of the owner range) and a network namespace it
/// owns (loopback up), held by descriptors, with that namespace's sysfs and,
/// where the host can rename cgroups, spare cgroups.
#[derive(Debug)]
pub struct Shell {
    /// `/proc/<pid>/ns/user` of the child that made it.
    pub user: OwnedFd,
    /// `/proc/<pid>/ns/net` of the child that made it.
    pub net: OwnedFd,
    /// A detached read-only sysfs of `net`, for the sandbox's `/sys`
    /// (`None` if it could not be made: the sandbox's init mounts one).
    pub sys: Option<OwnedFd>,
    /// The name of spare cgroups for the sandbox (`None` where there are
    /// none: the start makes its own).
    pub cgroup: Option<String>,
}

/// The zygote's shells.
#[derive(Debug, Default)]
pub struct Shells {
    ready: Vec<Shell>,
    /// Set after a shell could not be made: starts make their own.
    broken: bool,
    /// Where the spare cgroups go; `None` once one could not be made.
    cgroups: Option<Box<dyn Backend>>,
    /// Spares made so far, which numbers the next.
    spares: u64,
}

impl Shells {
    /// Shells whose spare cgroups are made under `cgroups`' parent (none
    /// without it).
    pub fn new(cgroups: Option<Box<dyn Backend>>) -> Shells {
        Shells {
            cgroups,
            ..Shells::default()
        }
    }

    /// One shell, if any is ready.
    pub fn take(&mut self) -> Option<Shell> {
        self.ready.pop()
    }

    /// Whether another shell is wanted.
    pub fn wanted(&self) -> bool {
        !self.broken && self.ready.len() < KEEP
    }

    /// Makes one more shell; after a failure (logged once) makes no more.
    pub fn refill(&mut self) {
        match make() {
            Ok(mut shell) => {
                shell.cgroup = self.spare_cgroup();
                self.ready.push(shell);
            }
            Err(e) => {
                tracing::warn!(error = %e, "zygote: cannot make namespaces ahead of starts; each start makes its own");
                self.broken = true;
            }
        }
    }

    /// Closes every shell (a worker keeps only the one it was given; the
    /// spares of the others stay the zygote's).
    pub fn clear(&mut self) {
        self.ready.clear();
    }

    /// Closes every shell and removes their spare cgroups: the zygote ends.
    pub fn release(&mut self) {
        for shell in self.ready.drain(..) {
            if let (Some(cgroups), Some(name)) = (&self.cgroups, &shell.cgroup) {
                if let Err(e) = cgroups.remove(name) {
                    tracing::warn!(name, error = %e, "zygote: removing a spare cgroup");
                }
            }
        }
    }

    /// Removes the spare cgroups left by zygotes that are gone (killed
    /// before they could [`Shells::release`] them).
    pub fn remove_stale(&self) {
        let Some(cgroups) = &self.cgroups else { return };
        for name in cgroups.spares() {
            let alive = spare_owner(&name).is_some_and(|pid| {
                pid == std::process::id()
                    || nix::sys::signal::kill(Pid::from_raw(pid as i32), None).is_ok()
            });
            if !alive {
                if let Err(e) = cgroups.remove(&name) {
                    tracing::warn!(name, error = %e, "zygote: removing a stale spare cgroup");
                }
            }
        }
    }

    /// Makes the spare cgroups of the next shell; after a failure (logged
    /// once, unless the host cannot rename cgroups) makes no more.
    fn spare_cgroup(&mut self) -> Option<String> {
        let cgroups = self.cgroups.as_ref()?;
        self.spares += 1;
        let name = format!("{SPARE_PREFIX}{}-{}", std::process::id(), self.spares);
        match cgroups.make_spare(&name, &Resources::default()) {
            Ok(()) => Some(name),
            Err(e) => {
                if e.kind() != std::io::ErrorKind::Unsupported {
                    tracing::warn!(error = %e, "zygote: cannot make cgroups ahead of starts; each start makes its own");
                }
                self.cgroups = None;
                None
            }
        }
    }
}

/// The zygote pid in a spare's name (`spare-<pid>-<n>`).
fn spare_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(SPARE_PREFIX)?;
    rest.split('-').next()?.parse().ok()
}

/// Makes a shell: a child takes the owner as its effective uid, makes the
/// namespaces and brings loopback up; this process (host root) opens them
/// and writes the id maps, and the child exits. Must be called while the
/// process has one thread.
pub fn make() -> std::io::Result<Shell> {
    let owner = random_owner()?;
    let (done_r, done_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (exit_r, exit_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: the caller has one thread and holds no lock, so the child may
    // do anything the parent could; it leaves with _exit.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Child => {
            drop((done_r, exit_w));
            let made = (|| -> std::io::Result<()> {
                super::init::become_owner(owner).map_err(|e| std::io::Error::other(e.reason))?;
                nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET)?;
                super::child::loopback_up()
            })();
            let mut done = std::fs::File::from(done_w);
            let _ = done.write_all(if made.is_ok() { b"U" } else { b"F" });
            // Alive until the maps are written: end-of-file says so.
            let _ = std::fs::File::from(exit_r).read(&mut [0u8; 1]);
            // SAFETY: leave without the zygote's atexit handlers.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop((done_w, exit_r));
            let made = adopt(child, done_r);
            // The child exits once this end closes (the zygote ignores
            // SIGCHLD, so it is reaped without a wait).
            drop(exit_w);
            made
        }
    }
}

/// The parent's side of [`make`].
fn adopt(child: Pid, done: OwnedFd) -> std::io::Result<Shell> {
    let mut byte = [0u8; 1];
    let n = std::fs::File::from(done).read(&mut byte)?;
    if n != 1 || byte[0] != b'U' {
        return Err(std::io::Error::other(
            "the child could not make the namespaces",
        ));
    }
    let open = |name: &str| -> std::io::Result<OwnedFd> {
        Ok(std::fs::File::open(format!("/proc/{child}/ns/{name}"))?.into())
    };
    let user = open("user")?;
    let net = open("net")?;
    super::init::write_id_maps(child).map_err(|e| std::io::Error::other(e.reason))?;
    let sys = super::staging::sysfs_of(&net)
        .inspect_err(|e| tracing::debug!(error = %e, "zygote: no sysfs made ahead"))
        .ok();
    Ok(Shell {
        user,
        net,
        sys,
        cgroup: None,
    })
}

/// A uid of the owner range, at random.
fn random_owner() -> std::io::Result<u32> {
    let mut bytes = [0u8; 4];
    // SAFETY: getrandom writes at most `len` bytes to the buffer given.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        return Err(std::io::Error::last_os_error());
    }
    Ok(OWNER_UID_BASE + u32::from_le_bytes(bytes) % OWNER_UID_COUNT)
}

/// In the intermediate (host root, one thread, in its staging mount
/// namespace): joins `shell`'s user namespace, makes the sandbox's other
/// namespaces in it (pid, mount, uts, ipc, cgroup), then joins its network
/// namespace.
pub fn enter(shell: &Shell) -> nix::Result<()> {
    nix::sched::setns(shell.user.as_fd(), CloneFlags::CLONE_NEWUSER)?;
    nix::sched::unshare(
        CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWCGROUP,
    )?;
    nix::sched::setns(shell.net.as_fd(), CloneFlags::CLONE_NEWNET)
}
