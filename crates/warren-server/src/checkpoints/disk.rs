//! The disk side of time travel, on the [`Node`]. Everything here blocks
//! (ioctls, renames); async callers go through `spawn_blocking`.
//!
//! - A checkpoint is a read-only snapshot `checkpoints/<ckpt>` of
//!   `sandboxes/<id>`, taken with the sandbox's processes frozen (cgroup
//!   freezer), so it holds no write half done, and on disk when it is
//!   acknowledged (`StorageDriver::snapshot_durable`).
//! - A restore or wipe stages a writable snapshot of the source in
//!   `tmp/tt-<id>-<random>`, then, with the sandbox stopped, swaps it with
//!   the root in one `renameat2(RENAME_EXCHANGE)` (a crash leaves either
//!   root, never none); what is then at the staged path, the old root, is
//!   deleted.
//! - A sandbox made from a checkpoint gets a writable snapshot of it as its
//!   root before it starts. A fork of one sandbox snapshots the frozen
//!   source twice instead, its root and the checkpoint at once, so that
//!   both share one commit ([`Node::fork_sandbox`]).
//!
//! On btrfs each of these is O(1) in the size of the disk; with the copy
//! driver they are copies.
//!
//! Leftovers of a crash (`tmp/tt-*`, checkpoint volumes without a row) are
//! removed at start-up by [`Node::sweep_time_travel`].

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rand::Rng;
use warren_runtime::storage::diff::{Diff, DiffLimits, Side};
use warren_runtime::storage::StorageError;
use warren_runtime::RuntimeError;

use crate::node::{Node, NodeError};

/// Prefix of every entry time travel makes in the pool's `tmp/`.
pub const TMP_PREFIX: &str = "tt-";

fn io_err(op: &'static str, path: &Path, source: std::io::Error) -> NodeError {
    NodeError::Storage(StorageError::Io {
        op,
        path: path.display().to_string(),
        source,
    })
}

/// A fresh name under the pool's `tmp/` for `what` of `id`.
pub fn tmp_name(what: &str) -> String {
    let n: u64 = rand::thread_rng().gen();
    format!("{TMP_PREFIX}{what}-{n:016x}")
}

/// Atomically swaps two paths on one file system (`RENAME_EXCHANGE`).
fn exchange(a: &Path, b: &Path) -> Result<(), NodeError> {
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes()).map_err(|_| {
            io_err(
                "exchange",
                p,
                std::io::Error::from(std::io::ErrorKind::InvalidInput),
            )
        })
    };
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: both paths are NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc != 0 {
        return Err(io_err("exchange", b, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Whether a storage error says the source volume does not exist.
pub fn is_missing(err: &NodeError) -> bool {
    matches!(err, NodeError::Storage(StorageError::NotFound(_)))
}

/// Thaws a sandbox when dropped while armed: the freeze of a checkpoint is
/// undone on every way out, unwinding included.
struct ThawOnDrop<'a> {
    node: &'a Node,
    id: &'a str,
    armed: bool,
}

impl Drop for ThawOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = self.node.thaw(self.id) {
                tracing::error!(id = %self.id, error = %e, "thawing after a failed checkpoint");
            }
        }
    }
}

/// The newer side of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffTarget {
    /// A checkpoint's volume.
    Checkpoint(String),
    /// A sandbox's live root (never frozen for a diff).
    Live(String),
}

impl Node {
    /// The volume of one side of a diff.
    fn diff_volume(&self, side: &DiffTarget) -> Result<PathBuf, NodeError> {
        match side {
            DiffTarget::Checkpoint(ckpt) => self.checkpoint_volume(ckpt),
            DiffTarget::Live(id) => Ok(self.pool().sandbox_path(id)?),
        }
    }

    /// What changed from checkpoint `from` to `to` (see
    /// `StorageDriver::diff`). A live root is snapshotted read-only at a
    /// `tmp/tt-diff-*` path on btrfs, which the start-up sweep removes if a
    /// crash left it.
    pub fn diff_disks(
        &self,
        from: &str,
        to: &DiffTarget,
        limits: DiffLimits,
    ) -> Result<Diff, NodeError> {
        let a = self.checkpoint_volume(from)?;
        let b = self.diff_volume(to)?;
        let scratch = self.pool().tmp_dir().join(tmp_name("diff"));
        Ok(self.pool().driver().diff(&a, &b, &scratch, limits)?)
    }

    /// At most `max` bytes of the file `rel` (relative to the root, checked)
    /// on one side of a diff, never through a symlink.
    pub fn read_for_diff(
        &self,
        side: &DiffTarget,
        rel: &[u8],
        max: usize,
    ) -> Result<Side, NodeError> {
        let root = self.diff_volume(side)?;
        if !self.pool().driver().is_volume(&root) {
            return Err(NodeError::Storage(StorageError::NotFound(
                root.display().to_string(),
            )));
        }
        warren_runtime::storage::diff::read_file(&root, rel, max)
            .map_err(|e| io_err("read for a diff", &root, e))
    }

    /// `checkpoints/<ckpt>` in the pool.
    pub fn checkpoint_volume(&self, ckpt: &str) -> Result<PathBuf, NodeError> {
        Ok(self.pool().checkpoint_path(ckpt)?)
    }

    /// Takes checkpoint `ckpt` of sandbox `id`: freeze (when `running`),
    /// durable read-only snapshot (`StorageDriver::snapshot_durable`),
    /// thaw. The sandbox is thawed whatever happened in between; a failed
    /// thaw fails the checkpoint (and removes it) rather than leave a
    /// frozen sandbox unnoticed.
    pub fn snapshot_sandbox(&self, id: &str, ckpt: &str, running: bool) -> Result<(), NodeError> {
        self.snapshot_frozen(id, ckpt, running, |checkpoint| checkpoint())
    }

    /// Forks sandbox `id`'s disk in one freeze of it: snapshots its root as
    /// sandbox `child`'s root and takes checkpoint `ckpt` (as
    /// [`Node::snapshot_sandbox`] does) on two threads at once, so that the
    /// two snapshots can share one btrfs commit (when the checkpoint's thread
    /// joins the transaction before the child's commit starts) and
    /// the child starts with none under way; `root_made` is called once the
    /// child's root exists (the child may start from then on). Both hold the
    /// disk of one moment. If the child's root fails, the checkpoint is
    /// removed; if the checkpoint fails, the child's root stays, for the
    /// caller to destroy with the child.
    pub fn fork_sandbox(
        &self,
        id: &str,
        child: &str,
        ckpt: &str,
        running: bool,
        root_made: impl FnOnce(),
    ) -> Result<(), NodeError> {
        let root = self.pool().sandbox_path(id)?;
        let child_root = self.pool().sandbox_path(child)?;
        self.snapshot_frozen(id, ckpt, running, |checkpoint| {
            // Both snapshots at once, so that they share one commit and the
            // child starts with none under way.
            std::thread::scope(|scope| {
                let taking = scope.spawn(checkpoint);
                let made = self.pool().driver().snapshot(&root, &child_root, false);
                if made.is_ok() {
                    root_made();
                }
                let taken = taking.join().unwrap_or_else(|_| {
                    Err(NodeError::Storage(StorageError::Io {
                        op: "checkpoint",
                        path: ckpt.to_string(),
                        source: std::io::Error::other("the snapshot's thread panicked"),
                    }))
                });
                match (made, taken) {
                    (Ok(()), taken) => taken,
                    (Err(e), Ok(())) => {
                        if let Err(removing) = self.delete_checkpoint_volume(ckpt) {
                            tracing::error!(%ckpt, error = %removing, "removing the checkpoint of a failed fork");
                        }
                        Err(e.into())
                    }
                    (Err(e), Err(_)) => Err(e.into()),
                }
            })
        })
    }

    /// Freezes sandbox `id` (when `running`), calls `with_frozen` with the
    /// taking of checkpoint `ckpt` (which it calls once, on any thread),
    /// and thaws it (see [`Node::snapshot_sandbox`]).
    fn snapshot_frozen(
        &self,
        id: &str,
        ckpt: &str,
        running: bool,
        with_frozen: impl FnOnce(&(dyn Fn() -> Result<(), NodeError> + Sync)) -> Result<(), NodeError>,
    ) -> Result<(), NodeError> {
        let root = self.pool().sandbox_path(id)?;
        let dst = self.checkpoint_volume(ckpt)?;
        let _busy = self.pool().busy();
        let begun = std::time::Instant::now();
        let frozen = running
            && match self.freeze(id) {
                Ok(()) => true,
                // Its init died under us (the reaper will notice): nothing
                // runs, so there is nothing to freeze.
                Err(NodeError::Runtime(RuntimeError::NotRunning(_))) => false,
                Err(e) => {
                    // A freeze that timed out leaves the cgroup FREEZING.
                    if let Err(thaw) = self.thaw(id) {
                        tracing::error!(%id, error = %thaw, "thawing after a failed freeze");
                    }
                    return Err(e);
                }
            };
        // Thaws even if what follows panics (this runs on a blocking thread
        // that a cancelled request cannot interrupt).
        let mut guard = ThawOnDrop {
            node: self,
            id,
            armed: frozen,
        };
        let froze = begun.elapsed();
        let taken = with_frozen(&|| {
            self.pool()
                .driver()
                .snapshot_durable(&root, &dst)
                .map_err(NodeError::from)
        });
        let snap = begun.elapsed();
        guard.armed = false;
        if frozen {
            if let Err(thaw) = self.thaw(id) {
                tracing::error!(%id, error = %thaw, "thawing after a checkpoint");
                if taken.is_ok() {
                    self.delete_checkpoint_volume(ckpt)?;
                }
                return Err(thaw);
            }
        }
        tracing::debug!(%id, %ckpt, ?froze, ?snap, total = ?begun.elapsed(), "checkpoint timings");
        taken
    }

    /// Deletes a checkpoint's volume (a missing one is fine). btrfs refuses
    /// (`EPERM`) to delete a subvolume a diff's send stream is reading:
    /// that lasts at most a diff's time limit, so it is retried until then.
    pub fn delete_checkpoint_volume(&self, ckpt: &str) -> Result<(), NodeError> {
        let path = self.checkpoint_volume(ckpt)?;
        let begun = std::time::Instant::now();
        loop {
            match self.pool().driver().delete(&path) {
                Err(StorageError::Io { source, .. })
                    if source.raw_os_error() == Some(libc::EPERM)
                        && begun.elapsed() < super::diff::TIME_LIMIT * 2 =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                done => return Ok(done?),
            }
        }
    }

    /// Makes sandbox `id`'s root a writable snapshot of checkpoint `ckpt`
    /// (before its first start).
    pub fn seed_root(&self, id: &str, ckpt: &str) -> Result<(), NodeError> {
        let root = self.pool().sandbox_path(id)?;
        let source = self.checkpoint_volume(ckpt)?;
        let _busy = self.pool().busy();
        Ok(self.pool().driver().snapshot(&source, &root, false)?)
    }

    /// A writable snapshot of `source` (a checkpoint or template volume) in
    /// `tmp/`, to become sandbox `id`'s root through [`Node::swap_root`].
    pub fn stage_root(&self, id: &str, source: &Path) -> Result<PathBuf, NodeError> {
        let staged = self.pool().tmp_dir().join(tmp_name(id));
        let _busy = self.pool().busy();
        self.pool().driver().snapshot(source, &staged, false)?;
        Ok(staged)
    }

    /// Makes `staged` sandbox `id`'s root. The sandbox must be stopped.
    /// Returns where the old root is now (`staged`), for the caller to
    /// delete, unless there was none.
    pub fn swap_root(&self, id: &str, staged: &Path) -> Result<Option<PathBuf>, NodeError> {
        let root = self.pool().sandbox_path(id)?;
        if self.pool().driver().is_volume(&root) {
            exchange(staged, &root)?;
            Ok(Some(staged.to_path_buf()))
        } else {
            std::fs::rename(staged, &root).map_err(|e| io_err("rename", &root, e))?;
            Ok(None)
        }
    }

    /// Deletes a staged or replaced root when the pool is quiet
    /// ([`Pool::discard`](warren_runtime::storage::Pool::discard); best
    /// effort, logged).
    pub fn discard_staged(&self, staged: &Path) {
        if let Err(e) = self.pool().discard(staged) {
            tracing::warn!(path = %staged.display(), error = %e, "deleting a staged root");
        }
    }

    /// Removes a `tmp/` entry made here: a volume, or an import directory
    /// with the volume `btrfs receive` made in it, if any.
    pub fn remove_tmp(&self, path: &Path) -> Result<(), NodeError> {
        let driver = self.pool().driver();
        if driver.is_volume(path) {
            return Ok(driver.delete(path)?);
        }
        for (_, inner) in entries(path) {
            driver.delete(&inner)?;
        }
        match std::fs::remove_dir(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("remove", path, e)),
            _ => Ok(()),
        }
    }

    /// Removes what an interrupted restore, wipe or import left in `tmp/`,
    /// and checkpoint volumes not in `known` (their row was never written,
    /// or was deleted before the volume). Returns how many were removed.
    pub fn sweep_time_travel(&self, known: &HashSet<String>) -> usize {
        let mut removed = 0;
        let driver = self.pool().driver();
        let tmp = self.pool().tmp_dir();
        for (name, path) in entries(&tmp) {
            if !name.starts_with(TMP_PREFIX) {
                continue;
            }
            match self.remove_tmp(&path) {
                Ok(()) => removed += 1,
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "sweeping tmp"),
            }
        }
        let checkpoints = self.pool().root().join("checkpoints");
        for (name, path) in entries(&checkpoints) {
            if known.contains(&name) || !driver.is_volume(&path) {
                continue;
            }
            match driver.delete(&path) {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "sweeping a checkpoint")
                }
            }
        }
        removed
    }
}

/// `(name, path)` of every entry of `dir` (none when it cannot be read).
pub fn entries(dir: &Path) -> Vec<(String, PathBuf)> {
    std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .filter_map(|e| Some((e.file_name().to_str()?.to_string(), e.path())))
                .collect()
        })
        .unwrap_or_default()
}
