//! What changed since a checkpoint: the paths added, modified and deleted up
//! to another checkpoint or to its sandbox's live disk, and one text file's
//! unified diff.
//!
//! Both checkpoints must be visible to the caller (anything else is 404
//! `checkpoint_not_found`, as a missing one); the live disk needs the
//! checkpoint's sandbox to exist (`sandbox_not_found`). The sandbox is never
//! frozen or locked: on btrfs its disk is snapshotted read-only for the
//! diff (deleted afterwards), with the copy driver it is walked as it is.
//! The disk work runs on the blocking pool, bounded by [`MAX_ITEMS`],
//! [`TIME_LIMIT`], [`MAX_FILE_BYTES`] and, per tenant,
//! [`MAX_DIFFS_PER_TENANT`] at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use similar::{Algorithm, TextDiff};
use warren_api::checkpoint::{CheckpointDiff, DiffChange, DiffItem, DiffKind, FileDiff};
use warren_runtime::storage::diff::{Change, Diff, DiffLimits, Kind, Side};

use super::disk::{is_missing, DiffTarget};
use super::{blocking, CheckpointError, Checkpoints};
use crate::auth::Caller;
use crate::sandboxes::{ensure_settled, SandboxError};

/// Most paths one diff lists (then `truncated`).
pub const MAX_ITEMS: usize = 10_000;
/// How long one diff may look before it answers with what it found.
pub const TIME_LIMIT: Duration = Duration::from_secs(20);
/// Most bytes of each side a file diff reads.
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// How long computing one unified diff may take (then a coarser diff).
const TEXT_DIFF_TIMEOUT: Duration = Duration::from_secs(2);
/// Diffs one tenant (or the admin) may run at once; more answer 429.
pub const MAX_DIFFS_PER_TENANT: usize = 4;
/// Longest path accepted.
const MAX_PATH_LEN: usize = 4096;

/// Diffs in flight per tenant (`""` for the admin); cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct DiffSlots(Arc<Mutex<HashMap<String, usize>>>);

/// One diff in flight; its slot is given back on drop.
struct Slot {
    slots: DiffSlots,
    key: String,
}

impl DiffSlots {
    fn take(&self, caller: &Caller) -> Result<Slot, CheckpointError> {
        let key = caller.tenant().unwrap_or_default().to_string();
        let mut map = self.0.lock().expect("diff slots lock");
        let count = map.entry(key.clone()).or_insert(0);
        if *count >= MAX_DIFFS_PER_TENANT {
            return Err(CheckpointError::Busy);
        }
        *count += 1;
        Ok(Slot {
            slots: self.clone(),
            key,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self.slots.0.lock().expect("diff slots lock");
        if let Some(count) = map.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.key);
            }
        }
    }
}

impl Checkpoints {
    /// What changed from checkpoint `id` to checkpoint `to`, or to the live
    /// disk of `id`'s sandbox.
    pub async fn diff(
        &self,
        caller: &Caller,
        id: &str,
        to: Option<&str>,
    ) -> Result<CheckpointDiff, CheckpointError> {
        let (from, target) = self.diff_sides(caller, id, to).await?;
        let slot = self.inner.diffs.take(caller)?;
        let node = self.inner.node.clone();
        let limits = DiffLimits {
            max_items: MAX_ITEMS,
            deadline: Instant::now() + TIME_LIMIT,
        };
        let side = target.clone();
        // The slot goes with the work: a request dropped meanwhile does not
        // free it before the disk work ends.
        let diff = blocking("diff", move || {
            let _slot = slot;
            node.diff_disks(&from, &side, limits)
        })
        .await
        .map_err(|e| missing(e, id, &target))?;
        Ok(view(diff))
    }

    /// The unified diff of the text file at `path` (absolute, as the sandbox
    /// sees it) from checkpoint `id` to checkpoint `to` or the live disk.
    pub async fn diff_file(
        &self,
        caller: &Caller,
        id: &str,
        path: &str,
        to: Option<&str>,
    ) -> Result<FileDiff, CheckpointError> {
        let rel = checked_path(path)?;
        let (from, target) = self.diff_sides(caller, id, to).await?;
        let slot = self.inner.diffs.take(caller)?;
        let node = self.inner.node.clone();
        let side = target.clone();
        let (a, b) = blocking("file diff", move || {
            let _slot = slot;
            let a = node.read_for_diff(&DiffTarget::Checkpoint(from), &rel, MAX_FILE_BYTES)?;
            let b = node.read_for_diff(&side, &rel, MAX_FILE_BYTES)?;
            Ok((a, b))
        })
        .await
        .map_err(|e| missing(e, id, &target))?;
        file_diff(path, a, b)
    }

    /// The checkpoint `id` and what to compare it with, both visible to
    /// the caller.
    async fn diff_sides(
        &self,
        caller: &Caller,
        id: &str,
        to: Option<&str>,
    ) -> Result<(String, DiffTarget), CheckpointError> {
        let from = self.visible(caller, id).await?;
        let target = match to {
            Some(to) => DiffTarget::Checkpoint(self.visible(caller, to).await?.id),
            None => {
                let entry = self.inner.sandboxes.entry(caller, &from.sandbox_id)?;
                ensure_settled(&entry)?;
                DiffTarget::Live(entry.id.clone())
            }
        };
        Ok((from.id, target))
    }
}

/// A volume gone under a diff (deleted meanwhile): the 404 of what is gone.
fn missing(err: CheckpointError, id: &str, target: &DiffTarget) -> CheckpointError {
    match err {
        CheckpointError::Node(e) if is_missing(&e) => match target {
            DiffTarget::Live(sandbox) => SandboxError::NotFound(sandbox.clone()).into(),
            DiffTarget::Checkpoint(_) => CheckpointError::NotFound(id.to_string()),
        },
        other => other,
    }
}

/// `path` as a relative path below the disk's root: absolute, no `.` or
/// `..` component, no NUL, at most 4096 bytes and 255 per component.
pub fn checked_path(path: &str) -> Result<Vec<u8>, CheckpointError> {
    let bad = |reason: &str| Err(CheckpointError::invalid("path", reason.to_string()));
    if !path.starts_with('/') {
        return bad("an absolute path, as the sandbox sees it (/home/user/x.txt)");
    }
    if path.len() > MAX_PATH_LEN || path.contains('\0') {
        return bad("at most 4096 bytes, without NUL");
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return bad("a file, not the root directory");
    }
    if parts
        .iter()
        .any(|p| *p == "." || *p == ".." || p.len() > 255)
    {
        return bad("no '.' or '..' component, and at most 255 bytes per component");
    }
    Ok(parts.join("/").into_bytes())
}

fn view(diff: Diff) -> CheckpointDiff {
    CheckpointDiff {
        items: diff
            .items
            .into_iter()
            .map(|item| DiffItem {
                path: format!("/{}", String::from_utf8_lossy(&item.path)),
                change: match item.change {
                    Change::Added => DiffChange::Added,
                    Change::Modified => DiffChange::Modified,
                    Change::Deleted => DiffChange::Deleted,
                },
                size: item.size,
                kind: kind(item.kind),
            })
            .collect(),
        truncated: diff.truncated,
    }
}

fn kind(kind: Kind) -> DiffKind {
    match kind {
        Kind::File => DiffKind::File,
        Kind::Dir => DiffKind::Dir,
        Kind::Symlink => DiffKind::Symlink,
        Kind::Other => DiffKind::Other,
    }
}

/// The text of one side: `None` when it is not text (a NUL byte or invalid
/// UTF-8; an incomplete character cut off at the read limit is fine).
fn text(bytes: &[u8], truncated: bool) -> Option<&str> {
    if bytes.contains(&0) {
        return None;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(text),
        Err(e) if truncated && e.error_len().is_none() => {
            std::str::from_utf8(&bytes[..e.valid_up_to()]).ok()
        }
        Err(_) => None,
    }
}

/// The file diff of two sides of `path`.
fn file_diff(path: &str, a: Side, b: Side) -> Result<FileDiff, CheckpointError> {
    let change = match (&a, &b) {
        (Side::Missing, Side::Missing) => return Err(CheckpointError::FileNotFound(path.into())),
        (Side::NotAFile(Kind::Dir), _) | (_, Side::NotAFile(Kind::Dir)) => {
            return Err(CheckpointError::IsADirectory(path.into()))
        }
        (Side::Missing, _) => DiffChange::Added,
        (_, Side::Missing) => DiffChange::Deleted,
        (a, b) if a == b => DiffChange::Unchanged,
        _ => DiffChange::Modified,
    };
    // Each side as (text or None for binary, truncated); a missing side is
    // empty text.
    let side = |s: &Side| -> (Option<String>, bool) {
        match s {
            Side::Missing => (Some(String::new()), false),
            Side::NotAFile(_) => (None, false),
            Side::File { bytes, truncated } => {
                (text(bytes, *truncated).map(str::to_string), *truncated)
            }
        }
    };
    let ((old, a_cut), (new, b_cut)) = (side(&a), side(&b));
    let truncated = a_cut || b_cut;
    let (Some(old), Some(new)) = (old, new) else {
        return Ok(FileDiff {
            path: path.to_string(),
            change,
            binary: true,
            unified: None,
            truncated,
        });
    };
    let unified = if change == DiffChange::Unchanged {
        String::new()
    } else {
        let diff = TextDiff::configure()
            .algorithm(Algorithm::Myers)
            .timeout(TEXT_DIFF_TIMEOUT)
            .diff_lines(old.as_str(), new.as_str());
        let label = |missing: bool, prefix: &str| {
            if missing {
                "/dev/null".to_string()
            } else {
                format!("{prefix}{path}")
            }
        };
        diff.unified_diff()
            .context_radius(3)
            .header(
                &label(a == Side::Missing, "a"),
                &label(b == Side::Missing, "b"),
            )
            .to_string()
    };
    Ok(FileDiff {
        path: path.to_string(),
        change,
        binary: false,
        unified: Some(unified),
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Side {
        Side::File {
            bytes: text.as_bytes().to_vec(),
            truncated: false,
        }
    }

    #[test]
    fn paths_are_checked() {
        assert_eq!(
            checked_path("/home/user/x.txt").unwrap(),
            b"home/user/x.txt"
        );
        assert_eq!(checked_path("//etc//hosts/").unwrap(), b"etc/hosts");
        for bad in [
            "relative",
            "/",
            "/a/../b",
            "/./a",
            "/a\0b",
            &format!("/{}", "x".repeat(256)),
        ] {
            assert!(checked_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn text_files_get_a_unified_diff() {
        let d = file_diff("/x", file("one\ntwo\n"), file("one\nTWO\n")).unwrap();
        assert_eq!(d.change, DiffChange::Modified);
        assert!(!d.binary);
        assert_eq!(
            d.unified.unwrap(),
            "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n one\n-two\n+TWO\n"
        );
        let added = file_diff("/x", Side::Missing, file("new\n")).unwrap();
        assert_eq!(added.change, DiffChange::Added);
        assert!(added
            .unified
            .unwrap()
            .starts_with("--- /dev/null\n+++ b/x\n"));
        let same = file_diff("/x", file("a"), file("a")).unwrap();
        assert_eq!(
            (same.change, same.unified.as_deref()),
            (DiffChange::Unchanged, Some(""))
        );
    }

    #[test]
    fn binary_and_directories() {
        let bin = file_diff("/b", file("text\n"), file("a\0b")).unwrap();
        assert!(bin.binary && bin.unified.is_none());
        let bad_utf8 = Side::File {
            bytes: vec![b'a', 0xff, b'b'],
            truncated: false,
        };
        assert!(file_diff("/b", Side::Missing, bad_utf8).unwrap().binary);
        // A multi-byte character cut by the read limit is still text.
        let cut = Side::File {
            bytes: "é".as_bytes()[..1].to_vec(),
            truncated: true,
        };
        let d = file_diff("/c", Side::Missing, cut).unwrap();
        assert!(!d.binary && d.truncated);
        assert!(matches!(
            file_diff("/d", Side::NotAFile(Kind::Dir), Side::Missing),
            Err(CheckpointError::IsADirectory(_))
        ));
        assert!(matches!(
            file_diff("/e", Side::Missing, Side::Missing),
            Err(CheckpointError::FileNotFound(_))
        ));
    }
}
