//! Storage: where templates, sandbox roots and checkpoints live.
//!
//! A [`StorageDriver`] makes volumes (directories that can be snapshotted)
//! and snapshots of them. With btrfs every volume is a subvolume and every
//! snapshot O(1) in the size of the data; the copy driver does the same with
//! plain directories and `cp -a`-like copies (slower, same behaviour).
//!
//! The [`Pool`] owns the on-disk layout under the state directory:
//! `templates/<name>`, `sandboxes/<id>`, `checkpoints/<id>`, `layers/<hash>`.

use std::path::Path;

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
}

/// The storage seam: volumes and snapshots.
pub trait StorageDriver: Send + Sync + 'static {
    /// `"btrfs"` or `"copy"`.
    fn name(&self) -> &'static str;
    /// Creates an empty writable volume at `path` (its parent must exist).
    fn create_volume(&self, path: &Path) -> Result<(), StorageError>;
    /// Makes `dst` a snapshot of the volume `src`: read-only if asked, else writable.
    /// O(1) on btrfs.
    fn snapshot(&self, src: &Path, dst: &Path, readonly: bool) -> Result<(), StorageError>;
    /// Deletes the volume at `path` and everything in it. Deleting a missing
    /// volume is not an error.
    fn delete(&self, path: &Path) -> Result<(), StorageError>;
    /// Whether `path` is a volume of this driver.
    fn is_volume(&self, path: &Path) -> bool;
}
