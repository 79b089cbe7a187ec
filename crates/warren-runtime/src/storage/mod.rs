//! Storage: where templates, sandbox roots and checkpoints live.
//!
//! A [`StorageDriver`] makes volumes (directories that can be snapshotted)
//! and snapshots of them. With btrfs ([`btrfs::BtrfsDriver`]) every volume is
//! a subvolume and every snapshot O(1) in the size of the data; the copy
//! driver ([`copy::CopyDriver`]) does the same with plain directories and
//! `cp -a`-like copies (slower, same behaviour).
//!
//! The [`Pool`] owns the on-disk layout under the state directory (see
//! [`pool`] for how it is found, created and mounted):
//!
//! ```text
//! STATE_DIR/
//!   pool.driver         "btrfs" or "copy": the driver this pool was made with
//!   pool.lock           flock held while a process opens or closes the pool
//!   pool.img            sparse btrfs image (only when STATE_DIR is not on btrfs)
//!   pool/               the pool root (the image's mount point, or a plain dir)
//!     templates/<name>  read-only volume: a template's root file system
//!     sandboxes/<id>    writable volume: a sandbox's root
//!     checkpoints/<id>  read-only volume: a checkpoint of a sandbox
//!     layers/<hash>     read-only volume: a cached template build step
//!     tmp/              volumes under construction, lock files
//!     trash/            discarded volumes waiting to be deleted ([`reclaim`])
//! ```

pub mod btrfs;
pub mod copy;
pub mod diff;
mod loopdev;
pub mod pool;
pub mod reclaim;
mod send;

use std::path::Path;

pub(crate) use loopdev::mounts_under;
pub use pool::{Driver, Pool, PoolOptions};
pub use reclaim::Busy;

/// Errors of storage operations; each names the operation and path.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An I/O or ioctl failure.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation (e.g. "snapshot", "delete subvolume").
        op: &'static str,
        /// The path acted on.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// An external command (mkfs.btrfs, losetup, mount, debootstrap) failed.
    #[error("{command} failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// What it printed on stderr (tail).
        stderr: String,
    },
    /// The volume does not exist.
    #[error("no volume at {0}")]
    NotFound(String),
    /// The destination already exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The path exists but is not a volume of this driver (a plain directory
    /// or file), so the driver refuses to snapshot or delete it.
    #[error("{0} is not a volume")]
    NotAVolume(String),
    /// A template name, sandbox id, checkpoint id or layer hash that cannot be
    /// used as one path component.
    #[error("invalid name {0:?}: use 1 to 128 of [A-Za-z0-9._-], not starting with '.' or '-'")]
    InvalidName(String),
    /// The pool was made with another driver than the one asked for.
    #[error("the pool in {state_dir} uses the {found} driver, not {requested}")]
    DriverMismatch {
        /// The state directory.
        state_dir: String,
        /// Driver recorded in `pool.driver`.
        found: String,
        /// Driver asked for.
        requested: &'static str,
    },
    /// Something else is mounted where the pool should be.
    #[error("{path} is a mount of {fstype}, not a btrfs pool")]
    ForeignMount {
        /// The pool directory.
        path: String,
        /// File system type found there.
        fstype: String,
    },
}

impl StorageError {
    /// Shorthand for [`StorageError::Io`].
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        StorageError::Io {
            op,
            path: path.display().to_string(),
            source,
        }
    }
}

/// The storage seam: volumes and snapshots.
///
/// Paths are host paths inside the pool. A snapshot does not include the
/// contents of volumes nested inside its source: they appear as empty
/// directories (btrfs semantics, which the copy driver reproduces).
pub trait StorageDriver: Send + Sync + 'static {
    /// `"btrfs"` or `"copy"`.
    fn name(&self) -> &'static str;
    /// Creates an empty writable volume at `path` (its parent must exist).
    fn create_volume(&self, path: &Path) -> Result<(), StorageError>;
    /// Makes `dst` a snapshot of the volume `src`: read-only if asked, else writable.
    /// O(1) on btrfs. A writable snapshot of a read-only volume is allowed.
    fn snapshot(&self, src: &Path, dst: &Path, readonly: bool) -> Result<(), StorageError>;
    /// Makes `dst` a read-only snapshot of the volume `src`, whose writers
    /// are stopped (a checkpoint), that is on disk when this returns, with
    /// every write made to `src` before the call, written back or not. The
    /// default snapshots, then flushes the file system of `dst` (`syncfs`).
    fn snapshot_durable(&self, src: &Path, dst: &Path) -> Result<(), StorageError> {
        self.snapshot(src, dst, true)?;
        sync_fs(dst)
    }
    /// Deletes the volume at `path` and everything in it, read-only or not,
    /// including volumes nested inside it. Deleting a missing volume is not
    /// an error. Mounts inside the volume are detached (btrfs does so when
    /// it deletes a subvolume; the copy driver does it before deleting).
    fn delete(&self, path: &Path) -> Result<(), StorageError>;
    /// Asks the file system holding `dir` to start reclaiming what the
    /// volumes deleted so far held, now rather than at a moment of its own
    /// choosing. The default does nothing (the copy driver frees space as
    /// it deletes).
    fn reclaim_deleted(&self, dir: &Path) -> Result<(), StorageError> {
        let _ = dir;
        Ok(())
    }
    /// Makes an existing volume read-only or writable again (templates and
    /// layers are built writable, then frozen before they are published).
    fn set_readonly(&self, path: &Path, readonly: bool) -> Result<(), StorageError>;
    /// Whether `path` is a volume of this driver.
    fn is_volume(&self, path: &Path) -> bool;
    /// Limits what the volume at `path` may write to `bytes` (`None`: no
    /// limit); `Ok(false)` when this driver cannot enforce a limit at all
    /// (the copy driver: plain directories share their file system).
    fn limit_size(&self, path: &Path, bytes: Option<u64>) -> Result<bool, StorageError>;
    /// What changed from the read-only volume `from` to the volume `to`
    /// (see [`diff`]). `to` may be writable (a sandbox's live root): a
    /// driver that needs a read-only view of it makes one at `scratch` (a
    /// free path in the pool's `tmp/`) and deletes it when done.
    fn diff(
        &self,
        from: &Path,
        to: &Path,
        scratch: &Path,
        limits: diff::DiffLimits,
    ) -> Result<diff::Diff, StorageError>;
}

/// Flushes the file system holding `path` to disk (`syncfs(2)`).
pub(crate) fn sync_fs(path: &Path) -> Result<(), StorageError> {
    let dir =
        std::fs::File::open(path).map_err(|e| StorageError::io("open for syncfs", path, e))?;
    // SAFETY: syncfs takes an open descriptor, which `dir` keeps alive.
    if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dir)) } != 0 {
        return Err(StorageError::io(
            "syncfs",
            path,
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Checks that `name` can be used as one path component of the pool layout.
pub fn validate_name(name: &str) -> Result<(), StorageError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidName(name.to_string()))
    }
}

/// Finds an executable in `PATH` and the sbin directories (which a root
/// `PATH` may lack when set by a service manager).
pub(crate) fn find_program(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(Into::into))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Runs `cmd` to completion (stdin closed) and maps failure to
/// [`StorageError::Command`] with the tail of its stderr.
pub(crate) fn run_command(cmd: &mut std::process::Command) -> Result<(), StorageError> {
    let line = format!("{cmd:?}");
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| StorageError::Command {
            command: line.clone(),
            stderr: e.to_string(),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
    Err(StorageError::Command {
        command: line,
        stderr: format!(
            "{}: {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ),
    })
}

/// Splits a volume path into its parent directory and final component.
pub(crate) fn split_path(path: &Path) -> Result<(&Path, &std::ffi::OsStr), StorageError> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            Ok((parent, name))
        }
        _ => Err(StorageError::io(
            "split path",
            path,
            std::io::Error::from(std::io::ErrorKind::InvalidInput),
        )),
    }
}

/// Most bytes one [`warm`] reads, all files together: a tenant who puts
/// large files where a root's libc and shell are (a fork's or a restore's
/// root is its own disk) makes each fork read at most this, on the host's
/// account.
const WARM_BUDGET: u64 = 8 << 20;
/// Bytes one `readahead(2)` call of [`warm`] asks for.
const WARM_STEP: u64 = 2 << 20;

/// Asks the kernel to read the regular files `files` (paths relative to
/// `root`, resolved inside it: a symlink cannot lead out, as `root` may be
/// an imported image or a tenant's disk) into the page cache, in order,
/// [`WARM_BUDGET`] bytes at most in all (`readahead(2)`: the reads are queued, not
/// waited for, and nothing is copied out). Anything else (missing, not a
/// regular file, unreadable) is skipped; a FIFO is opened without blocking.
pub fn warm(root: &Path, files: &[&str]) {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let Ok(dir) = std::fs::File::open(root) else {
        return;
    };
    let mut budget = WARM_BUDGET;
    for file in files {
        if budget == 0 {
            return;
        }
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let Ok(fd) = nix::fcntl::openat2(dir.as_raw_fd(), *file, how) else {
            continue;
        };
        // SAFETY: `openat2` just returned this fd and nothing else owns it.
        let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let Ok(meta) = file.metadata() else {
            continue;
        };
        if meta.is_file() {
            let len = meta.len().min(budget);
            budget -= len;
            // One call reads at most the device's read-ahead window (4 MiB
            // on btrfs), so larger files go in steps.
            for offset in (0..len).step_by(WARM_STEP as usize) {
                let step = (len - offset).min(WARM_STEP) as usize;
                // SAFETY: a plain syscall on an fd this function owns.
                unsafe { libc::readahead(file.as_raw_fd(), offset as i64, step) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["base", "sbx_01J", "a.b-c_d", "0"] {
            validate_name(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "-x",
            "a/b",
            "a b",
            &"x".repeat(129),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }
}
