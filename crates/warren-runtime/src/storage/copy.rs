//! The copy driver: volumes are plain directories, snapshots full copies.
//!
//! For hosts without btrfs. Same behaviour as the btrfs driver, O(size)
//! instead of O(1):
//!
//! - **A volume** is a directory carrying the xattr `trusted.warren.volume`
//!   (`rw` or `ro`); a plain directory is not a volume. `trusted.*` xattrs
//!   are root-only, so a sandbox cannot forge or strip the marker.
//! - **A snapshot** copies the tree preserving file types, ownership, modes
//!   (set after the chown so setuid/setgid bits survive), symlinks, device
//!   nodes, fifos, xattrs (ACLs and file capabilities included, where the
//!   destination file system takes them), timestamps and hard links within
//!   the volume. File data goes through `copy_file_range`, which reflinks on
//!   file systems that can (xfs). Volumes nested in the source become empty
//!   directories, as with btrfs snapshots.
//! - **Read-only** is the `ro` marker plus `FS_IMMUTABLE_FL` (`chattr +i`)
//!   on every directory and regular file, which stops writes even by root.
//!   Where the file system has no such flag the marker alone records the
//!   state: Warren honours it, the kernel does not enforce it (logged once).
//!   Modes are never changed, so a writable snapshot of a read-only volume
//!   gets the original modes back.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;

use super::{StorageDriver, StorageError};

/// The xattr that makes a directory a volume; its value is `rw` or `ro`.
const MARKER: &str = "trusted.warren.volume";
/// `FS_IMMUTABLE_FL` from `linux/fs.h`.
const FS_IMMUTABLE_FL: libc::c_int = 0x10;

nix::ioctl_read_bad!(
    /// `FS_IOC_GETFLAGS` (the kernel reads and writes an int, despite the macro's long).
    fs_ioc_getflags,
    libc::FS_IOC_GETFLAGS,
    libc::c_int
);
nix::ioctl_write_ptr_bad!(
    /// `FS_IOC_SETFLAGS`.
    fs_ioc_setflags,
    libc::FS_IOC_SETFLAGS,
    libc::c_int
);

/// Set once we have warned that read-only cannot be enforced here.
static WARNED_ADVISORY: AtomicBool = AtomicBool::new(false);

/// Volumes are marked directories; see the module docs.
#[derive(Debug, Default, Clone, Copy)]
pub struct CopyDriver;

impl CopyDriver {
    /// A driver; it holds no state.
    pub fn new() -> Self {
        CopyDriver
    }
}

fn marker(path: &Path) -> Option<Vec<u8>> {
    xattr::get(path, MARKER).ok().flatten()
}

impl StorageDriver for CopyDriver {
    fn name(&self) -> &'static str {
        "copy"
    }

    fn create_volume(&self, path: &Path) -> Result<(), StorageError> {
        match fs::create_dir(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StorageError::AlreadyExists(path.display().to_string()))
            }
            Err(e) => return Err(StorageError::io("create volume", path, e)),
        }
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))
            .and_then(|()| xattr::set(path, MARKER, b"rw"))
            .map_err(|e| {
                let _ = fs::remove_dir(path);
                StorageError::io("mark volume", path, e)
            })
    }

    fn snapshot(&self, src: &Path, dst: &Path, readonly: bool) -> Result<(), StorageError> {
        if !self.is_volume(src) {
            return Err(match fs::symlink_metadata(src) {
                Ok(_) => StorageError::NotAVolume(src.display().to_string()),
                Err(_) => StorageError::NotFound(src.display().to_string()),
            });
        }
        if fs::symlink_metadata(dst).is_ok() {
            return Err(StorageError::AlreadyExists(dst.display().to_string()));
        }
        let copied = copy_tree(src, dst, None).and_then(|()| xattr::set(dst, MARKER, b"rw"));
        if let Err(e) = copied {
            // Do not leave a partial copy that looks like a volume.
            let _ = force_remove(dst);
            return Err(match e.kind() {
                io::ErrorKind::AlreadyExists => {
                    StorageError::AlreadyExists(dst.display().to_string())
                }
                _ => StorageError::io("snapshot", dst, e),
            });
        }
        if readonly {
            self.set_readonly(dst, true)?;
        }
        Ok(())
    }

    fn delete(&self, path: &Path) -> Result<(), StorageError> {
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StorageError::io("stat volume", path, e)),
            Ok(_) if !self.is_volume(path) => {
                return Err(StorageError::NotAVolume(path.display().to_string()))
            }
            Ok(_) => {}
        }
        // remove_dir_all would descend into a mount and empty it. Deleting a
        // btrfs subvolume detaches the mounts inside it: do the same first.
        let mounts =
            super::mounts_under(path).map_err(|e| StorageError::io("read mounts", path, e))?;
        for mount in mounts {
            nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH)
                .map_err(|e| StorageError::io("detach mount", &mount, io::Error::from(e)))?;
        }
        force_remove(path).map_err(|e| StorageError::io("delete volume", path, e))
    }

    fn set_readonly(&self, path: &Path, readonly: bool) -> Result<(), StorageError> {
        if !self.is_volume(path) {
            return Err(StorageError::NotAVolume(path.display().to_string()));
        }
        // The immutable flag also freezes the root's xattrs: write the marker
        // before setting it and after clearing it.
        if readonly {
            xattr::set(path, MARKER, b"ro")
                .map_err(|e| StorageError::io("mark volume", path, e))?;
        }
        let enforced = set_immutable_tree(path, readonly)
            .map_err(|e| StorageError::io("set immutable flags", path, e))?;
        if !enforced && readonly && !WARNED_ADVISORY.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                path = %path.display(),
                "file system has no immutable flag: read-only volumes are not enforced"
            );
        }
        if !readonly {
            xattr::set(path, MARKER, b"rw")
                .map_err(|e| StorageError::io("mark volume", path, e))?;
        }
        Ok(())
    }

    /// Plain directories share their file system: nothing to enforce a
    /// limit with.
    fn limit_size(&self, _path: &Path, _bytes: Option<u64>) -> Result<bool, StorageError> {
        Ok(false)
    }

    fn is_volume(&self, path: &Path) -> bool {
        fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) && marker(path).is_some()
    }

    /// A walk of both trees (a live root is walked as it is: nothing here
    /// can make a cheap read-only view of it).
    fn diff(
        &self,
        from: &Path,
        to: &Path,
        _scratch: &Path,
        limits: super::diff::DiffLimits,
    ) -> Result<super::diff::Diff, StorageError> {
        for volume in [from, to] {
            if !self.is_volume(volume) {
                return Err(StorageError::NotFound(volume.display().to_string()));
            }
        }
        super::diff::walk(from, to, limits).map_err(|e| StorageError::io("diff", to, e))
    }
}

/// Whether the copy volume at `path` is marked read-only.
pub fn is_readonly(path: &Path) -> bool {
    marker(path).as_deref() == Some(b"ro")
}

/// Removes a tree, clearing immutable flags if they are in the way.
fn force_remove(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            set_immutable_tree(path, false)?;
            fs::remove_dir_all(path)
        }
        Err(e) => Err(e),
    }
}

/// Sets or clears `FS_IMMUTABLE_FL` on every directory and regular file
/// under `root` (same file system only). Returns `false` when the file
/// system has no such flag.
fn set_immutable_tree(root: &Path, on: bool) -> io::Result<bool> {
    let dev = fs::symlink_metadata(root)?.dev();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if !set_immutable(&dir, on)? {
            return Ok(false);
        }
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let meta = fs::symlink_metadata(&path)?;
            if meta.dev() != dev {
                continue;
            }
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() && !set_immutable(&path, on)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn set_immutable(path: &Path, on: bool) -> io::Result<bool> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let mut flags: libc::c_int = 0;
    // SAFETY: `file` is open for the call and `flags` a valid int for the
    // kernel to write.
    match unsafe { fs_ioc_getflags(file.as_raw_fd(), &mut flags) } {
        Ok(_) => {}
        Err(Errno::ENOTTY | Errno::EOPNOTSUPP | Errno::EINVAL) => return Ok(false),
        Err(e) => return Err(io::Error::from(e)),
    }
    let wanted = if on {
        flags | FS_IMMUTABLE_FL
    } else {
        flags & !FS_IMMUTABLE_FL
    };
    if wanted != flags {
        // SAFETY: as above; the kernel only reads `wanted`.
        match unsafe { fs_ioc_setflags(file.as_raw_fd(), &wanted) } {
            Ok(_) => {}
            Err(Errno::ENOTTY | Errno::EOPNOTSUPP | Errno::EINVAL) => return Ok(false),
            Err(e) => return Err(io::Error::from(e)),
        }
    }
    Ok(true)
}

/// Copies `src` (a file, directory, symlink or special file) to `dst`,
/// which must not exist, preserving everything the module docs list.
/// With `owner`, every copied file gets that uid/gid instead of its own.
/// Volumes nested below `src` are copied as empty directories.
pub(crate) fn copy_tree(src: &Path, dst: &Path, owner: Option<(u32, u32)>) -> io::Result<()> {
    let meta = fs::symlink_metadata(src)?;
    let mut copier = Copier {
        dev: meta.dev(),
        owner,
        links: HashMap::new(),
    };
    copier.entry(src, dst, &meta, true)
}

struct Copier {
    /// Device of the source root: mounts below it are not descended into.
    dev: u64,
    owner: Option<(u32, u32)>,
    /// First copy of each multiply-linked source inode, for hard links.
    links: HashMap<(u64, u64), std::path::PathBuf>,
}

impl Copier {
    fn entry(&mut self, src: &Path, dst: &Path, meta: &fs::Metadata, root: bool) -> io::Result<()> {
        let ft = meta.file_type();
        if ft.is_dir() {
            fs::create_dir(dst)?;
            let nested_volume = !root && marker(src).is_some();
            if meta.dev() == self.dev && !nested_volume {
                for entry in fs::read_dir(src)? {
                    let entry = entry?;
                    let from = entry.path();
                    let child = fs::symlink_metadata(&from)?;
                    self.entry(&from, &dst.join(entry.file_name()), &child, false)?;
                }
            }
        } else if ft.is_file() {
            let key = (meta.dev(), meta.ino());
            if meta.nlink() > 1 {
                if let Some(first) = self.links.get(&key) {
                    return fs::hard_link(first, dst);
                }
            }
            let mut from = File::open(src)?;
            let mut to = File::create_new(dst)?;
            io::copy(&mut from, &mut to)?;
            if meta.nlink() > 1 {
                self.links.insert(key, dst.to_path_buf());
            }
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(src)?, dst)?;
        } else {
            nix::sys::stat::mknod(
                dst,
                SFlag::from_bits_truncate(meta.mode() & libc::S_IFMT),
                Mode::from_bits_truncate(meta.mode() & 0o7777),
                meta.rdev(),
            )?;
        }
        self.attributes(src, dst, meta, root)
    }

    fn attributes(
        &self,
        src: &Path,
        dst: &Path,
        meta: &fs::Metadata,
        root: bool,
    ) -> io::Result<()> {
        let (uid, gid) = self.owner.unwrap_or((meta.uid(), meta.gid()));
        std::os::unix::fs::lchown(dst, Some(uid), Some(gid))?;
        let symlink = meta.file_type().is_symlink();
        if !symlink {
            // After the chown, which clears setuid/setgid bits.
            fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
        // After the chown too: it drops security.capability.
        for name in xattr::list(src)? {
            if root && name == MARKER {
                continue;
            }
            let Some(value) = xattr::get(src, &name)? else {
                continue;
            };
            if let Err(e) = xattr::set(dst, &name, &value) {
                // "Where possible": e.g. user.* on a symlink, or a file
                // system without that namespace.
                tracing::debug!(path = %dst.display(), name = ?name, error = %e, "xattr not copied");
            }
        }
        let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
        let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
        nix::sys::stat::utimensat(
            None,
            dst,
            &atime,
            &mtime,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )?;
        Ok(())
    }
}
