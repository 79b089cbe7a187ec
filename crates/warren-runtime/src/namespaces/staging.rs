//! A small mount namespace to stage sandboxes from, so that a start costs
//! the same however many sandboxes are alive.
//!
//! Every sandbox's run directory is a tmpfs mounted in the host's mount
//! namespace (the server reaches the agent's socket there), so with 1,000
//! sandboxes alive the host has 1,000 more mounts. A mount namespace made
//! from the host's copies them all, and `make_private`, the sandbox's own
//! namespace, `pivot_root` and the teardown walk them again: about 7 ms per
//! start at 1,000 alive. The zygote makes, once, a private copy of the
//! host's namespace with only `/`, `/proc`, `/sys` and `/dev` ([`make`]);
//! later host mounts do not propagate into it. [`super::mounts::stage`] then clones the
//! sandbox's sources (its root, its run directory and its shared CA bundle, which
//! [`read_only`] locks down) in the host's namespace ([`clone_tree`]), enters
//! this one, makes its own staging namespace from it and attaches the clones
//! there ([`attach`]).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::OnceLock;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use super::StageError;

/// The staging namespace, when the zygote made one.
static NAMESPACE: OnceLock<OwnedFd> = OnceLock::new();

/// `open_tree(2)` flag: a detached copy of the mount rather than an `O_PATH`.
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `move_mount(2)` flag: the source is the descriptor itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

/// Makes the staging namespace: a private copy of this process's mount
/// namespace with only the basic mounts; this process returns to
/// its own namespace. Must be called while the process has one thread.
/// An error leaves no staging namespace (starts copy the host's, as before);
/// an error returning to the host's namespace is returned as `Err(true)`:
/// the process must not serve starts then.
pub fn make() -> Result<(), bool> {
    let host = File::open("/proc/self/ns/mnt").map_err(|_| false)?;
    unshare(CloneFlags::CLONE_NEWNS).map_err(|_| false)?;
    let made = (|| {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .ok()?;
        detach_all_but_the_basics();
        File::open("/proc/self/ns/mnt").ok()
    })();
    setns(host.as_fd(), CloneFlags::CLONE_NEWNS).map_err(|_| true)?;
    if let Some(ns) = made {
        let _ = NAMESPACE.set(ns.into());
    }
    Ok(())
}

/// Whether the zygote made the staging namespace.
pub fn available() -> bool {
    NAMESPACE.get().is_some()
}

/// Detaches, in this namespace, every mount but `/` and those at or under
/// `/proc`, `/sys` and `/dev` (what staging and the sandbox's own mounts
/// use; the sources come as clones). Above all, no sandbox's run directory
/// and no storage pool: a mount held here would keep its file system (and
/// a pool's loop device) busy for as long as the zygote lives, after the
/// host unmounted it.
fn detach_all_but_the_basics() {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let kept = |point: &str| {
        point == "/"
            || ["/proc", "/sys", "/dev"]
                .iter()
                .any(|top| point == *top || point.starts_with(&format!("{top}/")))
    };
    for line in table.lines() {
        let Some(point) = line.split(' ').nth(4) else {
            continue;
        };
        if !kept(point) {
            // A mount below one already detached is gone: errors are fine.
            let _ = umount2(point, MntFlags::MNT_DETACH);
        }
    }
}

/// A detached copy of the mount at `path` (with the mounts below it when
/// `recursive`), made in the calling process's current namespace.
pub fn clone_tree(path: &Path, recursive: bool) -> Result<OwnedFd, StageError> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|e| StageError::new("mounts", format!("{}: {e}", path.display())))?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: open_tree with a valid C string; the result is a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c_path.as_ptr(), flags) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(StageError::new(
            "mounts",
            format!("cloning {}: {e}", path.display()),
        ));
    }
    // SAFETY: the kernel returned a descriptor this process now owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `mount_setattr(2)` flags: read-only, no set-id, no devices, no exec.
const MOUNT_ATTR_LOCKED_DOWN: u64 = 0x1 | 0x2 | 0x4 | 0x8;

/// `struct mount_attr` (Linux 5.12).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Makes the detached `tree` (a clone of `path`) read-only, without
/// set-id, devices or exec, and private. A clone joins its source's peer
/// group: a file of the host's root file system would join the host's `/`
/// group, and every mount the host then makes or removes (a run
/// directory's tmpfs at every create and delete) would walk one more
/// mount per live sandbox.
pub fn read_only(tree: &OwnedFd, path: &Path) -> Result<(), StageError> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_LOCKED_DOWN,
        attr_clr: 0,
        propagation: libc::MS_PRIVATE,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr on a descriptor this process owns, an empty C
    // path and a mount_attr of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        return Err(StageError::new(
            "mounts",
            format!("making {} read-only: {e}", path.display()),
        ));
    }
    Ok(())
}

/// Enters the staging namespace (the caller then unshares its own from it).
pub fn enter() -> Result<(), StageError> {
    let ns = NAMESPACE
        .get()
        .ok_or_else(|| StageError::new("mounts", "no staging namespace"))?;
    setns(ns.as_fd(), CloneFlags::CLONE_NEWNS)
        .map_err(|e| StageError::new("mounts", format!("entering the staging namespace: {e}")))
}

/// Attaches a tree from [`clone_tree`] on `target`.
pub fn attach(tree: &OwnedFd, target: &Path) -> Result<(), StageError> {
    let c_target = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())
        .map_err(|e| StageError::new("mounts", format!("{}: {e}", target.display())))?;
    // SAFETY: move_mount with a valid descriptor and C strings.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c_target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        return Err(StageError::new(
            "mounts",
            format!("attaching on {}: {e}", target.display()),
        ));
    }
    Ok(())
}

/// `fsopen(2)` and `fsmount(2)` flag: close on exec.
const FS_CLOEXEC: libc::c_uint = 1;
/// `fsconfig(2)` command: make the superblock.
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

/// A detached, read-only sysfs of the network namespace `net` (which shows
/// that namespace's interfaces), for a sandbox that will join it
/// ([`super::shells`]). Made here, ahead of the start, because mounting a
/// sysfs walks every sysfs superblock of the host, one per live sandbox's
/// network namespace (0.8 ms per start with 1,000 alive). The calling
/// process (host root, one thread) joins `net` for the mount and returns
/// to its own network namespace; it aborts if it cannot return, rather
/// than go on in a sandbox's namespace.
pub fn sysfs_of(net: &OwnedFd) -> std::io::Result<OwnedFd> {
    let own = File::open("/proc/self/ns/net")?;
    setns(net.as_fd(), CloneFlags::CLONE_NEWNET)?;
    let made = detached_sysfs();
    if setns(own.as_fd(), CloneFlags::CLONE_NEWNET).is_err() {
        std::process::abort();
    }
    made
}

/// A new sysfs of this process's network namespace, as a detached mount.
fn detached_sysfs() -> std::io::Result<OwnedFd> {
    let check = |r: libc::c_long| {
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(r as i32)
        }
    };
    // SAFETY: fsopen with a valid C string; the result is a new descriptor.
    let fs = check(unsafe { libc::syscall(libc::SYS_fsopen, c"sysfs".as_ptr(), FS_CLOEXEC) })?;
    // SAFETY: the kernel returned a descriptor this process now owns.
    let fs = unsafe { OwnedFd::from_raw_fd(fs) };
    // SAFETY: fsconfig on a descriptor this process owns, no key or value.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })?;
    // SAFETY: fsmount on a descriptor this process owns; the result is a
    // new descriptor.
    let mnt = check(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            FS_CLOEXEC,
            MOUNT_ATTR_LOCKED_DOWN as libc::c_uint,
        )
    })?;
    // SAFETY: as above.
    Ok(unsafe { OwnedFd::from_raw_fd(mnt) })
}
