//! The sandbox's file system view, built by its init inside the new mount and
//! user namespaces, then entered with `pivot_root`.
//!
//! Layout (like a Docker container's, plus Warren's run directory):
//!
//! | path | what |
//! |---|---|
//! | `/` | the sandbox's root (bound onto itself so it can be pivoted to) |
//! | `/proc` | the sandbox's own proc; kcore, keys, timer_list, timer_stats, sched_debug, latency_stats, acpi, asound, scsi masked; bus, fs, irq, sys, sysrq-trigger read-only |
//! | `/sys` | sysfs, read-only; `/sys/firmware` and `/sys/devices/virtual/powercap` masked |
//! | `/dev` | tmpfs with null, zero, full, random, urandom, tty bound from the host, a private devpts at `/dev/pts`, `/dev/shm`, `/dev/mqueue` and the usual symlinks |
//! | `/tmp` | tmpfs, half the memory limit ([`tmpfs_sizes`]) |
//! | `/run` | tmpfs; `/run/lock` |
//! | `/run/warren` | the host's run directory, itself a small tmpfs ([`super::RUN_DIR_TMPFS`]): the agent's socket and log |
//! | `/etc/hosts`, `/etc/resolv.conf` | bound from `/run/warren` by the init after the pivot, not written into the root ([`super::etc`]) |
//!
//! The agent needs no file of the host's in the sandbox: it runs in the
//! sandbox's init process, a fork of the already loaded `warren` binary
//! (see [`super::set_agent_main`]).
//!
//! The two host sources (root and run directory) live under the
//! state directory, which is 0700: the sandbox's root, unprivileged on the
//! host, could not walk to them. [`stage`] binds them under a fresh tmpfs
//! first, as host root, in a private mount namespace of the intermediate
//! process; the sandbox's namespaces copy that view and bind from it.
//!
//! Every mount happens in the sandbox's private mount namespace: even a
//! mount point that a hostile root file system turns into a symlink could
//! only land on the old root, which is detached after the pivot. Symlinked
//! mount points are refused anyway, so that the layout above is what the
//! sandbox gets.

use std::os::fd::OwnedFd;
use std::os::unix::fs::{symlink, DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};

use super::StageError;

/// Host device nodes bound into the sandbox's `/dev`.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Symlinks created in `/dev`: (name, target).
const DEV_LINKS: [(&str, &str); 5] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// `/proc` files hidden behind `/dev/null` (host-wide kernel state).
const PROC_MASKED_FILES: [&str; 6] = [
    "kcore",
    "keys",
    "timer_list",
    "timer_stats",
    "sched_debug",
    "latency_stats",
];

/// Directories hidden behind an empty read-only tmpfs.
const MASKED_DIRS: [&str; 5] = [
    "proc/acpi",
    "proc/asound",
    "proc/scsi",
    "sys/firmware",
    "sys/devices/virtual/powercap",
];

/// `/proc` entries made read-only.
const PROC_READONLY: [&str; 5] = ["bus", "fs", "irq", "sys", "sysrq-trigger"];

/// What the sandbox's root is made of, on the host side.
#[derive(Debug)]
pub struct RootPlan<'a> {
    /// The sandbox's root file system (absolute, canonical).
    pub rootfs: &'a Path,
    /// Host directory bound at `/run/warren`.
    pub run_dir: &'a Path,
    /// A sysfs made ahead for the sandbox's network namespace, bound at
    /// `/sys`; `None`: a new one is mounted there.
    pub sys: Option<&'a Path>,
    /// The sandbox's memory limit: its tmpfs mounts are sized from it.
    pub memory_mb: u64,
}

/// Where [`stage`] puts the sources, in the intermediate's mount namespace
/// only (a tmpfs over the host's `/tmp` there; the host never sees it).
const STAGE: &str = "/tmp";

/// The sandbox's sources as [`stage`] made them reachable.
#[derive(Debug)]
pub struct Staged {
    /// The root file system.
    pub rootfs: PathBuf,
    /// The run directory.
    pub run_dir: PathBuf,
    /// The sysfs made ahead, if the start got one.
    pub sys: Option<PathBuf>,
}

/// Makes a new mount namespace for the calling process (host root, before
/// it makes the sandbox's user namespace), private so that nothing
/// propagates to the host, and binds `rootfs` and `run_dir` under a tmpfs
/// at [`STAGE`], where the sandbox's
/// unprivileged root can reach them without a way into the state
/// directory. The sources are opened before the tmpfs goes on, so a state
/// directory under `/tmp` works too.
/// When the zygote made a [`super::staging`] namespace, the sources are
/// cloned here and the staging namespace is made from that one, so it does
/// not copy every sandbox's run directory from the host's.
/// A shared `ca_bundle` (`crate::trust::shared_bundle`) goes on the run
/// directory's bundle file, read-only, where the init's bind of the run
/// directory carries it to `/run/warren`. A detached `sys` (see
/// [`super::staging::sysfs_of`]) is attached there too, for the init to
/// bind at `/sys`.
pub fn stage(
    rootfs: &Path,
    run_dir: &Path,
    ca_bundle: Option<&Path>,
    sys: Option<&OwnedFd>,
) -> Result<Staged, StageError> {
    let clones = if super::staging::available() {
        let clones = [
            super::staging::clone_tree(rootfs, true)?,
            super::staging::clone_tree(run_dir, false)?,
        ];
        let bundle = match ca_bundle {
            Some(path) => {
                let tree = super::staging::clone_tree(path, false)?;
                super::staging::read_only(&tree, path)?;
                Some(tree)
            }
            None => None,
        };
        super::staging::enter()?;
        Some((clones, bundle))
    } else {
        None
    };
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| StageError::new("mounts", format!("a staging mount namespace: {e}")))?;
    make_private()?;
    let open = |path: &Path| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| StageError::new("mounts", format!("opening {}: {e}", path.display())))
    };
    let sources = match clones {
        Some(_) => None,
        None => Some([open(rootfs)?, open(run_dir)?]),
    };
    let bundle_source = match (&clones, ca_bundle) {
        (None, Some(path)) => Some(open(path)?),
        _ => None,
    };
    let stage = Path::new(STAGE);
    tmpfs(
        stage,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        "mode=755,size=64k,nr_inodes=16",
    )?;
    let staged = Staged {
        rootfs: make_dir(&stage.join("root"), 0o755)?,
        run_dir: make_dir(&stage.join("run"), 0o755)?,
        sys: match sys {
            Some(tree) => {
                let target = make_dir(&stage.join("sys"), 0o555)?;
                super::staging::attach(tree, &target)?;
                Some(target)
            }
            None => None,
        },
    };
    let targets = [&staged.rootfs, &staged.run_dir];
    let by_fd = |fd: &std::fs::File| {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
    };
    if let Some((trees, _)) = &clones {
        for (tree, target) in trees.iter().zip(targets.iter().copied()) {
            super::staging::attach(tree, target)?;
        }
    }
    for (source, target) in sources.iter().flatten().zip(targets) {
        bind(&by_fd(source), target, MsFlags::MS_REC)?;
    }
    let bundle_target = staged.run_dir.join(crate::trust::bundle_file_name());
    if let Some((_, Some(tree))) = &clones {
        super::staging::attach(tree, &bundle_target)?;
    }
    if let Some(source) = &bundle_source {
        bind(&by_fd(source), &bundle_target, MsFlags::empty())?;
        remount_bind(
            &bundle_target,
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        )?;
    }
    allow_setid(&staged.rootfs)?;
    Ok(staged)
}

/// Clears `nosuid` (inherited from the pool's mount) on the staged root's
/// bind, in this private namespace only, keeping its other flags and adding
/// `nodev`. Host root may; inside the sandbox's user namespace the flag
/// would be locked. The pool stays `nosuid` for the host, so a tenant's
/// set-id file grants nothing there; inside the sandbox it grants what the
/// sandbox's own ids may (`sudo` to the sandbox's root).
fn allow_setid(rootfs: &Path) -> Result<(), StageError> {
    let fail =
        |e: nix::Error| StageError::new("mounts", format!("remounting {}: {e}", rootfs.display()));
    let current = statvfs(rootfs).map_err(fail)?.flags();
    let mut keep = MsFlags::MS_NODEV;
    for (fs, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if current.contains(fs) {
            keep |= ms;
        }
    }
    mount(
        None::<&str>,
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | keep,
        None::<&str>,
    )
    .map_err(fail)
}

/// Sizes in MiB of `/tmp`, `/dev/shm` and `/run` for a sandbox with
/// `memory_mb` of memory. tmpfs pages count against the sandbox's memory
/// but no process owns them, so an OOM kill frees none of them: filled to
/// the limit they would leave the OOM killer only the agent to kill.
/// Together they take at most 11/16 of the memory, so a full `/tmp` answers
/// ENOSPC with room left for the processes.
pub fn tmpfs_sizes(memory_mb: u64) -> TmpfsSizes {
    TmpfsSizes {
        tmp: (memory_mb / 2).max(1),
        shm: (memory_mb / 8).clamp(1, 64),
        run: (memory_mb / 16).clamp(1, 16),
    }
}

/// See [`tmpfs_sizes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TmpfsSizes {
    /// `/tmp`, MiB.
    pub tmp: u64,
    /// `/dev/shm`, MiB.
    pub shm: u64,
    /// `/run`, MiB.
    pub run: u64,
}

/// Builds the layout under `plan.rootfs`, then pivots into it. On return the
/// calling process's root and working directory are the sandbox's `/`.
pub fn build_and_pivot(plan: &RootPlan<'_>) -> Result<(), StageError> {
    let root = plan.rootfs;
    make_private()?;
    // pivot_root needs the new root to be a mount point.
    bind(root, root, MsFlags::MS_REC)?;
    // Device nodes in the root (an imported image, a restored checkpoint)
    // must never open host devices: only the nodes bound into /dev work.
    remount_bind(root, MsFlags::MS_NODEV)?;

    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let proc = ensure_dir(root, "proc", 0o555)?;
    mount_fs(Some("proc"), &proc, Some("proc"), nosuid_nodev_noexec, None)?;
    super::child::limit_user_counts(&proc)?;
    let sys = ensure_dir(root, "sys", 0o555)?;
    match plan.sys {
        // Read-only, without set-id, devices or exec already.
        Some(made) => bind(made, &sys, MsFlags::MS_REC)?,
        None => mount_fs(
            Some("sysfs"),
            &sys,
            Some("sysfs"),
            nosuid_nodev_noexec | MsFlags::MS_RDONLY,
            None,
        )?,
    }
    let sizes = tmpfs_sizes(plan.memory_mb);
    dev(root, sizes.shm)?;
    let tmp = ensure_dir(root, "tmp", 0o1777)?;
    tmpfs(
        &tmp,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        &format!("mode=1777,size={}m", sizes.tmp),
    )?;
    run(root, plan, sizes.run)?;
    mask(root)?;
    pivot(root)
}

/// `/dev`: a small tmpfs with the host's harmless devices and a private devpts.
fn dev(root: &Path, shm_mb: u64) -> Result<(), StageError> {
    let dev = ensure_dir(root, "dev", 0o755)?;
    tmpfs(
        &dev,
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        "mode=755,size=65536k",
    )?;
    for name in DEVICES {
        let target = dev.join(name);
        create_file(&target, 0o666)?;
        bind(&Path::new("/dev").join(name), &target, MsFlags::empty())?;
    }
    let pts = make_dir(&dev.join("pts"), 0o755)?;
    mount_fs(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    for (name, target) in DEV_LINKS {
        symlink(target, dev.join(name)).map_err(|e| {
            StageError::new("mounts", format!("linking /dev/{name} to {target}: {e}"))
        })?;
    }
    let no_all = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let shm = make_dir(&dev.join("shm"), 0o1777)?;
    tmpfs(&shm, no_all, &format!("mode=1777,size={shm_mb}m"))?;
    let mqueue = make_dir(&dev.join("mqueue"), 0o755)?;
    mount_fs(Some("mqueue"), &mqueue, Some("mqueue"), no_all, None)
}

/// `/run`: a tmpfs holding the lock directory and the run directory (with
/// the shared CA bundle mounted in it, if there is one).
fn run(root: &Path, plan: &RootPlan<'_>, size_mb: u64) -> Result<(), StageError> {
    let run = ensure_dir(root, "run", 0o755)?;
    tmpfs(
        &run,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        &format!("mode=755,size={size_mb}m"),
    )?;
    make_dir(&run.join("lock"), 0o1777)?;
    let warren = make_dir(&run.join("warren"), 0o755)?;
    bind(plan.run_dir, &warren, MsFlags::MS_REC)?;
    remount_bind(
        &warren,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
    )?;
    Ok(())
}

/// Hides host-wide kernel state in `/proc` and `/sys`, as Docker does.
fn mask(root: &Path) -> Result<(), StageError> {
    for name in PROC_MASKED_FILES {
        let target = root.join("proc").join(name);
        if target.exists() {
            bind(Path::new("/dev/null"), &target, MsFlags::empty())?;
        }
    }
    for dir in MASKED_DIRS {
        let target = root.join(dir);
        if target.is_dir() {
            tmpfs(&target, MsFlags::MS_RDONLY, "mode=755,size=0")?;
        }
    }
    for name in PROC_READONLY {
        let target = root.join("proc").join(name);
        if target.exists() {
            bind(&target, &target, MsFlags::MS_REC)?;
            remount_bind(
                &target,
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            )?;
        }
    }
    Ok(())
}

/// `pivot_root(".", ".")` stacks the old root on top of the new one; a lazy
/// unmount of "." then drops it, and no directory for it is needed.
fn pivot(root: &Path) -> Result<(), StageError> {
    let fail = |what: &str, e: nix::Error| StageError::new("pivot_root", format!("{what}: {e}"));
    nix::unistd::chdir(root).map_err(|e| fail("entering the new root", e))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| fail("pivot_root", e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| fail("detaching the old root", e))?;
    nix::unistd::chdir("/").map_err(|e| fail("entering /", e))
}

/// `root/name` as a directory: created if missing, refused if it is a
/// symlink or something else.
fn ensure_dir(root: &Path, name: &str, mode: u32) -> Result<PathBuf, StageError> {
    let path = root.join(name);
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_dir() => Ok(path),
        Ok(meta) if meta.file_type().is_symlink() => Err(StageError::new(
            "mounts",
            format!("refusing to mount over /{name}: it is a symlink in the root file system"),
        )),
        Ok(_) => Err(StageError::new(
            "mounts",
            format!("/{name} in the root file system is not a directory"),
        )),
        Err(_) => make_dir(&path, mode),
    }
}

/// Creates a directory with exactly `mode` (no umask).
fn make_dir(path: &Path, mode: u32) -> Result<PathBuf, StageError> {
    std::fs::DirBuilder::new()
        .mode(mode)
        .create(path)
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        })
        .map_err(|e| StageError::new("mounts", format!("creating {}: {e}", path.display())))?;
    Ok(path.to_path_buf())
}

/// Creates an empty file to bind something onto.
fn create_file(path: &Path, mode: u32) -> Result<(), StageError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map(drop)
        .map_err(|e| StageError::new("mounts", format!("creating {}: {e}", path.display())))
}

fn mount_fs(
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), StageError> {
    mount(source, target, fstype, flags, data).map_err(|e| {
        StageError::new(
            "mounts",
            format!(
                "mounting {} on {}: {e}",
                fstype.or(source).unwrap_or("propagation"),
                target.display()
            ),
        )
    })
}

/// Makes every mount of this mount namespace private: nothing mounted in it
/// propagates back to the host.
fn make_private() -> Result<(), StageError> {
    mount_fs(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )
}

fn tmpfs(target: &Path, flags: MsFlags, data: &str) -> Result<(), StageError> {
    mount_fs(Some("tmpfs"), target, Some("tmpfs"), flags, Some(data))
}

fn bind(source: &Path, target: &Path, extra: MsFlags) -> Result<(), StageError> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | extra,
        None::<&str>,
    )
    .map_err(|e| {
        StageError::new(
            "mounts",
            format!("binding {} on {}: {e}", source.display(), target.display()),
        )
    })
}

/// Remounts a bind mount with `flags`, keeping the flags the kernel locks
/// for mounts inherited from a more privileged namespace (a remount that
/// would clear them is refused with EPERM).
fn remount_bind(target: &Path, flags: MsFlags) -> Result<(), StageError> {
    let fail =
        |e: nix::Error| StageError::new("mounts", format!("remounting {}: {e}", target.display()));
    let current = statvfs(target).map_err(fail)?.flags();
    let mut locked = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if current.contains(fs) {
            locked |= ms;
        }
    }
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | locked,
        None::<&str>,
    )
    .map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Docker's default `MaskedPaths` and `ReadonlyPaths` (moby
    /// `oci/defaults.go`): every one is masked or read-only here too.
    #[test]
    fn tmpfs_mounts_leave_room_for_the_processes() {
        for memory_mb in [16, 32, 100, 512, 4096, 65536] {
            let s = tmpfs_sizes(memory_mb);
            assert!(
                (s.tmp + s.shm + s.run) * 16 <= memory_mb * 11 + 48,
                "{memory_mb}: {s:?}"
            );
        }
        assert_eq!(
            tmpfs_sizes(512),
            TmpfsSizes {
                tmp: 256,
                shm: 64,
                run: 16
            }
        );
    }

    #[test]
    fn docker_s_masked_and_read_only_paths_are_covered() {
        let masked: Vec<String> = PROC_MASKED_FILES
            .iter()
            .map(|f| format!("/proc/{f}"))
            .chain(MASKED_DIRS.iter().map(|d| format!("/{d}")))
            .collect();
        for path in [
            "/proc/asound",
            "/proc/acpi",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/proc/scsi",
            "/sys/firmware",
            "/sys/devices/virtual/powercap",
        ] {
            assert!(masked.iter().any(|m| m == path), "{path} is not masked");
        }
        for name in ["bus", "fs", "irq", "sys", "sysrq-trigger"] {
            assert!(PROC_READONLY.contains(&name), "/proc/{name} is writable");
        }
    }
}
