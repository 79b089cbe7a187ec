//! Spare roots: one writable snapshot per template, made ahead of time, so
//! that a create renames a ready root into place instead of waiting for a
//! snapshot (a btrfs snapshot commits a transaction: 2 ms on a quiet disk,
//! 15 and more on a busy one). Only disks are kept spare: no process, no
//! cgroup, nothing of any sandbox, so a spare root is exactly what a
//! snapshot at create time would have been.
//!
//! Layout: `POOL/spares/<template>@<key>`, where the key names the template
//! volume the spare was taken of (its device number, a volume's own, and
//! its inode change time): a template rebuilt or replaced has another key,
//! and its stale spares are removed instead of used. Taking is a `rename`,
//! atomic, so two creates never get the same spare; the loser snapshots.
//! After a take (or a miss) one refill runs on a thread of its own, one at
//! a time per template. Spares survive a restart and are used after it if
//! their template is unchanged.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use warren_runtime::storage::Pool;

/// Directory of the spare roots under the pool's root.
const SPARES_DIR: &str = "spares";

/// The spare roots of one pool; cheap to clone.
#[derive(Clone, Default)]
pub struct Spares {
    refilling: Arc<Mutex<HashSet<String>>>,
}

impl Spares {
    /// Moves a spare root of `template` (whose volume is `source`) to
    /// `rootfs`; false when there is none (the caller snapshots), and a
    /// refill starts either way.
    pub fn take(&self, pool: &Pool, template: &str, source: &Path, rootfs: &Path) -> bool {
        let Some(key) = key(source) else {
            return false;
        };
        let spare = dir(pool).join(format!("{template}@{key}"));
        let taken = std::fs::rename(&spare, rootfs).is_ok();
        self.refill(pool, template, source, key);
        taken
    }

    fn refill(&self, pool: &Pool, template: &str, source: &Path, key: String) {
        {
            let mut refilling = self.refilling.lock().unwrap_or_else(|e| e.into_inner());
            if !refilling.insert(template.to_string()) {
                return;
            }
        }
        let (this, pool, name, source) = (
            self.clone(),
            pool.clone(),
            template.to_string(),
            source.to_path_buf(),
        );
        let spawned = std::thread::Builder::new()
            .name("spare-root".into())
            .spawn(move || {
                if let Err(e) = make(&pool, &name, &source, &key) {
                    tracing::debug!(template = name, error = %e, "making a spare root");
                }
                this.refilling
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&name);
            });
        if spawned.is_err() {
            self.refilling
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(template);
        }
    }
}

/// Removes every spare root of `template` (deleted: its spares would only
/// take disk space, never be used).
pub fn remove(pool: &Pool, template: &str) {
    let Ok(entries) = std::fs::read_dir(dir(pool)) else {
        return;
    };
    let prefix = format!("{template}@");
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.trim_start_matches('.').starts_with(&prefix) {
            let _ = pool.driver().delete(&entry.path());
        }
    }
}

fn dir(pool: &Pool) -> PathBuf {
    pool.root().join(SPARES_DIR)
}

/// What identifies the template volume at `source`.
fn key(source: &Path) -> Option<String> {
    let meta = std::fs::symlink_metadata(source).ok()?;
    Some(format!(
        "{:x}-{}.{:09}",
        meta.dev(),
        meta.ctime(),
        meta.ctime_nsec()
    ))
}

/// Removes `template`'s spares of other keys, then snapshots `source` into
/// a new spare unless one exists.
fn make(pool: &Pool, template: &str, source: &Path, key: &str) -> Result<(), String> {
    let dir = dir(pool);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let prefix = format!("{template}@");
    let wanted = format!("{template}@{key}");
    let mut have = false;
    for entry in std::fs::read_dir(&dir)
        .map_err(|e| e.to_string())?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == wanted {
            have = true;
        } else if name.trim_start_matches('.').starts_with(&prefix) {
            // Another key's spare, or one half made by a server that died
            // (one refill per template runs at a time).
            let _ = pool.driver().delete(&entry.path());
        }
    }
    if have {
        return Ok(());
    }
    // Made under a temporary name and renamed: a spare is whole or absent.
    let staged = dir.join(format!(".{wanted}.{}", std::process::id()));
    let _ = pool.driver().delete(&staged);
    pool.driver()
        .snapshot(source, &staged, false)
        .map_err(|e| e.to_string())?;
    warm(&staged);
    std::fs::rename(&staged, dir.join(&wanted)).map_err(|e| {
        let _ = pool.driver().delete(&staged);
        e.to_string()
    })
}

/// Files of a root read ahead: what every sandbox reads first (the agent's
/// loader and libraries, then a shell and `true`).
const WARM: [&str; 10] = [
    "etc/ld.so.cache",
    "lib64/ld-linux-x86-64.so.2",
    "lib/x86_64-linux-gnu/libc.so.6",
    "lib/x86_64-linux-gnu/libm.so.6",
    "lib/x86_64-linux-gnu/libgcc_s.so.1",
    "lib/x86_64-linux-gnu/libtinfo.so.6",
    "bin/bash",
    "bin/sh",
    "bin/dash",
    "bin/true",
];

/// Reads [`WARM`] in the new root, so that their pages are cached when a
/// sandbox starts on it: a snapshot's files share their data with the
/// template's on disk but not in the page cache, so each new root would
/// otherwise read its loader and libc from disk again (milliseconds).
fn warm(root: &Path) {
    warren_runtime::storage::warm(root, &WARM);
}
