//! Shifting a rootfs made by host root (debootstrap) into the sandbox id
//! range, so that the sandbox's root owns its files.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::{SANDBOX_ID_BASE, SANDBOX_ID_COUNT};

/// The xattr holding file capabilities; `chown` drops it.
const CAPABILITY_XATTR: &str = "security.capability";

/// Changes the owner of every file under `root` (the root included, same
/// file system only, symlinks not followed) from `id` to
/// `SANDBOX_ID_BASE + id`. Ids already in the sandbox range are left alone,
/// so a rerun after a crash is harmless. `chown` clears setuid/setgid bits
/// and file capabilities: both are put back. Returns the number of entries.
pub(crate) fn shift_ownership(root: &Path) -> io::Result<u64> {
    let dev = fs::symlink_metadata(root)?.dev();
    let mut count = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path)?;
        if meta.dev() != dev {
            continue;
        }
        if meta.is_dir() {
            for entry in fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        }
        shift_one(&path, &meta)?;
        count += 1;
    }
    Ok(count)
}

fn shift_id(id: u32) -> u32 {
    if (SANDBOX_ID_BASE..SANDBOX_ID_BASE + SANDBOX_ID_COUNT).contains(&id) {
        id
    } else {
        super::shift_id(u64::from(id))
    }
}

fn shift_one(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    let (uid, gid) = (shift_id(meta.uid()), shift_id(meta.gid()));
    if (uid, gid) == (meta.uid(), meta.gid()) {
        return Ok(());
    }
    let caps = if meta.is_file() {
        xattr::get(path, CAPABILITY_XATTR)?
    } else {
        None
    };
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if !meta.file_type().is_symlink() && meta.mode() & 0o7000 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    if let Some(caps) = caps {
        xattr::set(path, CAPABILITY_XATTR, &caps)?;
    }
    Ok(())
}
