//! Cgroups of sandboxes: limits (cpu, memory, pids), freezing, killing and
//! finding them again after a restart.
//!
//! Two layouts, detected at run time by [`detect`]:
//! - [`v2::V2`] when `/sys/fs/cgroup` is a cgroup2 mount: one directory
//!   `/sys/fs/cgroup/<parent>/<id>` with `cpu.max`, `memory.max`, `pids.max`,
//!   `cgroup.freeze` and `cgroup.kill`.
//! - [`v1::V1`] on v1 and hybrid hosts: one directory per hierarchy,
//!   `/sys/fs/cgroup/<controller>/<parent>/<id>`, limits in the cpu, memory
//!   and pids controllers, the freezer for freeze and stop. The sandbox also
//!   joins the `name=systemd` and unified hierarchies so that a service
//!   manager stopping the server does not take its sandboxes along.
//!
//! Every sandbox is a leaf under one parent (`warren` unless configured), so
//! [`Backend::list`] finds every sandbox on the machine by listing one
//! directory.

pub mod v1;
pub mod v2;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::Resources;

/// The default parent cgroup of every sandbox.
pub const DEFAULT_PARENT: &str = "warren";

/// CFS period used for the cpu quota, in microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;

/// Names of spare cgroups ([`Backend::make_spare`]) start with this; no
/// sandbox id does, so [`Backend::list`] leaves them out.
pub const SPARE_PREFIX: &str = "spare-";

/// How long `kill` waits for a cgroup to empty before giving up.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long freezing may take before it is reported as failed.
pub const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// One cgroup layout: everything the runtime does with cgroups.
///
/// Failures are `io::Error`s; the runtime wraps them with the operation and
/// the sandbox id.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// `"v1"` or `"v2"`.
    fn name(&self) -> &'static str;
    /// Creates the sandbox's cgroups (and parents) and writes its limits.
    fn create(&self, id: &str, resources: &Resources) -> io::Result<()>;
    /// Writes the limits of an existing sandbox's cgroups (a pooled sandbox
    /// gets its owner's at hand-over). Lowering memory below what the
    /// sandbox uses fails (`EBUSY`), and nothing is killed for it.
    fn set_limits(&self, id: &str, resources: &Resources) -> io::Result<()>;
    /// How a new process joins the sandbox's cgroups; see [`Join`].
    fn join(&self, id: &str) -> Join;
    /// Whether the sandbox's cgroup exists.
    fn exists(&self, id: &str) -> bool;
    /// Host pids of every process in the sandbox.
    fn pids(&self, id: &str) -> Vec<i32>;
    /// Freezes every process and waits until the freeze is complete.
    fn freeze(&self, id: &str) -> io::Result<()>;
    /// Thaws the sandbox.
    fn thaw(&self, id: &str) -> io::Result<()>;
    /// Whether the sandbox is frozen or freezing (false when its cgroup is
    /// gone).
    fn is_frozen(&self, id: &str) -> bool;
    /// SIGKILLs every process (frozen first, so that nothing forks away) and
    /// waits, bounded by [`KILL_TIMEOUT`], until the cgroup is empty.
    fn kill_all(&self, id: &str) -> io::Result<()>;
    /// Removes the sandbox's cgroup directories (they must be empty).
    /// Missing directories are not an error.
    fn remove(&self, id: &str) -> io::Result<()>;
    /// Ids of every sandbox cgroup under the parent, live or not (spares
    /// are not sandboxes: see [`Backend::spares`]).
    fn list(&self) -> Vec<String>;
    /// Makes a spare: the cgroups of a sandbox-to-be named `name` (which
    /// starts with [`SPARE_PREFIX`]), with the limits of `resources`, made
    /// ahead of a start so that [`Backend::adopt`] gives it a sandbox's id
    /// instead of making cgroups (and writing a cpu quota, which walks every
    /// cgroup of the host) while the start waits. `Unsupported` where
    /// cgroups cannot be renamed (cgroup2).
    fn make_spare(&self, name: &str, resources: &Resources) -> io::Result<()> {
        let _ = (name, resources);
        Err(io::ErrorKind::Unsupported.into())
    }
    /// Renames the spare `spare` to the sandbox `id`, whose cgroups must not
    /// exist, and writes what of `resources` differs from its limits. On
    /// failure what is left of either name is removed; the caller then
    /// [`Backend::create`]s.
    fn adopt(&self, spare: &str, id: &str, resources: &Resources) -> io::Result<()> {
        let _ = (spare, id, resources);
        Err(io::ErrorKind::Unsupported.into())
    }
    /// Names of every spare under the parent.
    fn spares(&self) -> Vec<String> {
        Vec::new()
    }
    /// What the sandbox's cgroups have counted so far (nothing once they
    /// are gone).
    fn usage(&self, id: &str) -> Usage;
    /// Keeps the kernel's freezer switched on between freezes, where that
    /// makes a freeze and a thaw cheaper (see `v1::FREEZER_HOLD`). Best
    /// effort: without it, freezes work as before.
    fn hold_freezer(&self) -> io::Result<()> {
        Ok(())
    }
}

/// What a sandbox's cgroups count: `None` where the host does not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Memory charged to the sandbox now, bytes (page cache included).
    pub memory_bytes: Option<u64>,
    /// CPU time used since the sandbox started, microseconds.
    pub cpu_usec: Option<u64>,
}

/// A number read from a cgroup file holding one.
fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// How the sandbox's first process enters its cgroups without paying for a
/// migration of a whole thread group (`cgroup.procs` writes take a global
/// lock whose first writer waits for an RCU grace period, 10+ ms here):
/// - it is cloned straight into `cgroup2` with `clone3(CLONE_INTO_CGROUP)`
///   (the v2 cgroup, or the unified hierarchy of a hybrid host);
/// - then, single-threaded, it moves only itself into each v1 hierarchy by
///   writing `0` to the `tasks` files (no global lock for that).
#[derive(Debug, Clone, Default)]
pub struct Join {
    /// A cgroup2 directory to clone the process into.
    pub cgroup2: Option<PathBuf>,
    /// v1 `tasks` files the process writes `0` into.
    pub v1_tasks: Vec<PathBuf>,
}

/// Where the host mounts its cgroups.
const ROOT: &str = "/sys/fs/cgroup";

/// The layout under [`ROOT`], as [`remember`] found it.
static REMEMBERED: OnceLock<Layout> = OnceLock::new();

/// Which hierarchies a host has, whatever the parent.
#[derive(Debug, Clone)]
enum Layout {
    V2,
    V1(v1::V1),
}

/// Finds the layout under `root`.
fn layout(root: &Path) -> io::Result<Layout> {
    if is_cgroup2(root)? {
        Ok(Layout::V2)
    } else {
        Ok(Layout::V1(v1::V1::new(root, "")?))
    }
}

/// Looks up the layout under `/sys/fs/cgroup` once, for this process and
/// the processes it forks: the sandbox zygote calls it before it forks a
/// worker per start, so that a start does not find the hierarchies again
/// (statfs and canonicalize on each, about 0.25 ms). The layout is fixed
/// while the server runs; a restart looks again.
pub fn remember() {
    if let Ok(found) = layout(Path::new(ROOT)) {
        let _ = REMEMBERED.set(found);
    }
}

/// Detects the host's layout under `/sys/fs/cgroup` (or takes the one
/// [`remember`] found) with `parent` as the parent of every sandbox cgroup.
pub fn detect(parent: &str) -> io::Result<Box<dyn Backend>> {
    detect_at(Path::new(ROOT), parent)
}

/// [`detect`] with another mount root (for hosts that mount it elsewhere).
pub fn detect_at(root: &Path, parent: &str) -> io::Result<Box<dyn Backend>> {
    if parent.is_empty() || parent.contains("..") || parent.starts_with('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad cgroup parent {parent:?}"),
        ));
    }
    let found = match REMEMBERED.get() {
        Some(found) if root == Path::new(ROOT) => found.clone(),
        _ => layout(root)?,
    };
    Ok(match found {
        Layout::V2 => Box::new(v2::V2::new(root, parent)),
        Layout::V1(v1) => Box::new(v1.with_parent(parent)),
    })
}

/// Whether `path` is a cgroup2 mount.
fn is_cgroup2(path: &Path) -> io::Result<bool> {
    let fs = nix::sys::statfs::statfs(path).map_err(io::Error::from)?;
    Ok(fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// Writes `value` into a cgroup control file.
fn write_file(path: &Path, value: &str) -> io::Result<()> {
    std::fs::write(path, value).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("writing {value:?} to {}: {e}", path.display()),
        )
    })
}

/// Reads the pids in a `cgroup.procs` file (missing file: none).
fn read_pids(procs: &Path) -> Vec<i32> {
    std::fs::read_to_string(procs)
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Creates `dir` and its missing parents; an existing directory is fine.
fn mkdir_all(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", dir.display())))
}

/// Removes a cgroup directory, retrying while the kernel still counts exiting
/// tasks (EBUSY). A missing directory is fine.
fn rmdir(dir: &Path) -> io::Result<()> {
    let deadline = Instant::now() + KILL_TIMEOUT;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("removing {}: {e}", dir.display()),
                ))
            }
        }
    }
}

/// Sends SIGKILL to every pid (already-gone pids are ignored).
fn kill_pids(pids: &[i32]) {
    for &pid in pids {
        // A pid that exited in between answers ESRCH, which is what we want.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Polls `done` until it holds or `timeout` passes: first after 20 µs, then
/// twice as long each time, up to 5 ms. A freeze or a kill is usually over
/// in a few tens of microseconds (the tasks only have to be scheduled once),
/// and a fork or checkpoint waits for its freeze before its snapshot.
fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(20);
    loop {
        if done() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{what} did not happen within {timeout:?}"),
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// Sandbox ids among the directories of `dir` (spares left out).
fn sandbox_subdirs(dir: &Path) -> Vec<String> {
    let mut ids = subdirs(dir);
    ids.retain(|name| !name.starts_with(SPARE_PREFIX));
    ids
}

/// Spares among the directories of `dir`.
fn spare_subdirs(dir: &Path) -> Vec<String> {
    let mut names = subdirs(dir);
    names.retain(|name| name.starts_with(SPARE_PREFIX));
    names
}

/// Lists the subdirectories of `dir` (missing: none).
fn subdirs(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    ids
}

/// CPU quota in microseconds per [`CPU_PERIOD_US`] for a number of CPUs
/// (at least 1 ms, the kernel's minimum).
fn cpu_quota_us(cpus: f64) -> u64 {
    ((cpus * CPU_PERIOD_US as f64).round() as u64).max(1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_scales_with_cpus_and_has_a_floor() {
        assert_eq!(cpu_quota_us(1.0), 100_000);
        assert_eq!(cpu_quota_us(1.5), 150_000);
        assert_eq!(cpu_quota_us(0.001), 1_000);
    }

    #[test]
    fn bad_parents_are_refused() {
        for parent in ["", "../x", "/abs"] {
            assert!(detect(parent).is_err(), "{parent:?} accepted");
        }
    }
}
